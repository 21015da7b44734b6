//! The JSON of the entities' risk files (`ledger::campaign::risk_files`): the file shown in the
//! enterprise file (internal: it feeds risk classes, which are never public) and the group's
//! yearly cap on inspections of one entity.

use ledger::campaign::risk_files::{InspectionCap, RiskFile, RiskFiles};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::time::format_ms;

/// Drawn inspections of an entity in one year (Beijing time).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct YearInspectionsJson {
    pub year: i32,
    pub inspections: u32,
}

/// What the ledger's events say of an entity's risk: the counts a draw's risk score adds, and
/// how often the programme inspected it.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct RiskFileJson {
    /// The region its newest task names.
    pub region_code: String,
    /// Inspections and tasks that found a problem.
    pub findings: u32,
    pub complaints: u32,
    /// Tasks about it that missed a deadline.
    pub overdue_tasks: u32,
    /// Inspectors of its last drawn inspection: the next draw keeps them away from it.
    pub last_team: Vec<String>,
    /// Drawn inspections by year, the newest years kept.
    pub inspections_by_year: Vec<YearInspectionsJson>,
    /// Drawn inspections this year.
    pub inspections_this_year: u32,
    /// The group's yearly cap, when one is set.
    pub yearly_cap: Option<u32>,
    /// Inspected as often this year as the cap allows: untargeted draws pass it by.
    pub at_cap: bool,
    /// The provincial credit-risk system's class (`high`, `normal`, `low`) as its feed last
    /// reported it, and when; absent before any report or once withdrawn.
    pub credit_risk_class: Option<String>,
    pub classified_at: Option<String>,
}

impl RiskFileJson {
    pub fn of(file: &RiskFile, files: &RiskFiles, this_year: i32) -> RiskFileJson {
        let inspections_this_year = file.inspections_in(this_year);
        let yearly_cap = files.cap().map(|cap| cap.yearly_max);
        RiskFileJson {
            region_code: file.region.to_string(),
            findings: file.findings,
            complaints: file.complaints,
            overdue_tasks: file.overdue_tasks,
            last_team: file.last_team.clone(),
            inspections_by_year: file
                .inspections
                .iter()
                .map(|(year, inspections)| YearInspectionsJson { year: *year, inspections: *inspections })
                .collect(),
            inspections_this_year,
            yearly_cap,
            at_cap: yearly_cap.is_some_and(|cap| inspections_this_year >= cap),
            credit_risk_class: file.assessed.map(|(class, _)| class.as_str().to_owned()),
            classified_at: file.assessed.map(|(_, at_ms)| format_ms(at_ms)),
        }
    }
}

/// `GET /api/v1/programme/inspection-cap`: the group's yearly cap.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct InspectionCapJson {
    /// The risk files are kept (the cap needs their counts); false until the leader turns them
    /// on, once every member reads them.
    pub risk_files_kept: bool,
    /// Entities with a risk file.
    pub risk_files: u64,
    /// At most this many drawn inspections of one entity a year; absent: no cap. Targeted
    /// campaigns on high-risk entities only are not held by it.
    pub yearly_max: Option<u32>,
    pub set_by: Option<String>,
    pub set_at: Option<String>,
}

impl InspectionCapJson {
    pub fn of(files: &RiskFiles) -> InspectionCapJson {
        InspectionCapJson::of_cap(files.kept(), files.count(), files.cap())
    }

    pub fn of_cap(kept: bool, count: u64, cap: Option<&InspectionCap>) -> InspectionCapJson {
        InspectionCapJson {
            risk_files_kept: kept,
            risk_files: count,
            yearly_max: cap.map(|cap| cap.yearly_max),
            set_by: cap.map(|cap| cap.set_by.clone()),
            set_at: cap.map(|cap| format_ms(cap.set_at_ms)),
        }
    }
}

/// `POST /api/v1/programme/inspection-cap`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InspectionCapRequest {
    /// 1 to 12 drawn inspections of one entity a year; null lifts the cap.
    pub yearly_max: Option<u32>,
}
