//! The JSON of the "double random, one public" programme: directories, inspectors, campaigns
//! and draws for the bureaus, and the public results (一公开).
//!
//! **Publication invariant:** the `Public*` types are the only shapes the public routes answer
//! with, and they are built field by field from `PublicResult` and the campaign's public parts:
//! no risk class, no inspector, no draw input ever reaches them.

use ledger::campaign::{
    Campaign, Conflict, DirectoryVersion, DrawRecord, InspectionItem, InspectionRecord, Inspector, InspectorMode,
    PublicResult, RiskClass, BASIS_POINTS,
};
use ledger::Regions;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::time::format_ms;
use super::{bureau_json as bureau, region_name, ApiError};

/// `POST /api/v1/inspectors`: enrol an inspector (入库).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InspectorRequest {
    pub id: String,
    pub name: String,
    #[schemars(schema_with = "crate::api::schema::region_code")]
    pub bureau: String,
    /// The station (市场监管所); absent for the bureau's office (局机关).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub station: Option<String>,
    /// Expertise tags (业务专长), e.g. `food`, `pricing`.
    pub expertise: Vec<String>,
    /// Holds an administrative enforcement qualification (行政执法资格).
    pub qualified: bool,
}

/// `POST /api/v1/inspectors/{id}/retire` (出库), with the reason.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetireRequest {
    pub note: String,
}

/// `POST /api/v1/inspectors/{id}/conflicts`: a declared conflict of interest (利害关系).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConflictRequest {
    #[schemars(schema_with = "crate::api::schema::uscc")]
    pub uscc: String,
    pub reason: String,
}

/// `POST /api/v1/inspectors/roster`: the inspectors a roster enrolled, in its order.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct EnrolledInspectorsJson {
    pub inspectors: Vec<InspectorJson>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct InspectorJson {
    pub id: String,
    pub name: String,
    pub bureau: String,
    pub bureau_name: String,
    pub station: Option<String>,
    pub expertise: Vec<String>,
    pub qualified: bool,
    pub active: bool,
    pub enrolled_at: String,
    pub retired_at: Option<String>,
    /// The code of the other department whose inspector it is (joint inspections); absent for
    /// the bureau's own staff.
    pub department: Option<String>,
}

impl InspectorJson {
    pub fn of(regions: &Regions, inspector: &Inspector) -> InspectorJson {
        InspectorJson {
            id: inspector.id.clone(),
            name: inspector.name.clone(),
            bureau: bureau(inspector.bureau),
            bureau_name: region_name(regions, inspector.bureau),
            station: inspector.station.clone(),
            expertise: inspector.expertise.clone(),
            qualified: inspector.qualified,
            active: inspector.active,
            enrolled_at: format_ms(inspector.enrolled_at_ms),
            retired_at: inspector.retired_at_ms.map(format_ms),
            department: inspector
                .expertise
                .iter()
                .find_map(|tag| ledger::campaign::departments::department_of_tag(tag))
                .map(str::to_owned),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct InspectorsJson {
    /// The version of the whole inspector directory (SHA-256 of its entries in the ledger).
    pub directory_sha256: String,
    pub inspectors: Vec<InspectorJson>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ConflictJson {
    pub inspector: String,
    pub uscc: String,
    pub reason: String,
    pub declared_by: String,
    pub declared_at: String,
}

impl ConflictJson {
    pub fn of(conflict: &Conflict) -> ConflictJson {
        ConflictJson {
            inspector: conflict.inspector.clone(),
            uscc: conflict.uscc.as_str().to_owned(),
            reason: conflict.reason.clone(),
            declared_by: conflict.declared_by.clone(),
            declared_at: format_ms(conflict.at_ms),
        }
    }
}

/// One version of the entity directory (名录库).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct DirectoryVersionJson {
    pub number: u64,
    /// SHA-256 of the file: `GET /api/v1/directories/entities/{sha256}` serves it.
    pub sha256: String,
    pub entities: u64,
    pub bytes: u64,
    pub imported_at: String,
    pub imported_by: String,
}

impl DirectoryVersionJson {
    pub fn of(version: &DirectoryVersion) -> DirectoryVersionJson {
        DirectoryVersionJson {
            number: version.number,
            sha256: version.sha256.clone(),
            entities: version.entities,
            bytes: version.bytes,
            imported_at: format_ms(version.at_ms),
            imported_by: version.imported_by.clone(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct DirectoryVersionsJson {
    pub versions: Vec<DirectoryVersionJson>,
}

/// The scope of a campaign: a region's subtree, optionally narrowed (定向抽查).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeJson {
    #[schemars(schema_with = "crate::api::schema::region_code")]
    pub region: String,
    #[serde(default)]
    pub industries: Vec<String>,
    /// `high`, `normal`, `low`; empty for every class.
    #[serde(default)]
    pub risk_classes: Vec<String>,
}

/// The share of each risk class drawn, in percent (two decimals at most; at least 3).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RatiosJson {
    pub high: f64,
    pub normal: f64,
    pub low: f64,
}

/// How inspectors are drawn: `whole_bureau` (全局内随机), `office_and_stations` (局机关与所随机),
/// `stations` (若干所内随机, naming `stations`) or `station` (单一所内随机, naming one).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InspectorModeJson {
    pub mode: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stations: Vec<String>,
}

impl InspectorModeJson {
    pub fn of(mode: &InspectorMode) -> InspectorModeJson {
        let (name, stations) = match mode {
            InspectorMode::WholeBureau => ("whole_bureau", Vec::new()),
            InspectorMode::OfficeAndStations => ("office_and_stations", Vec::new()),
            InspectorMode::Stations(stations) => ("stations", stations.clone()),
            InspectorMode::Station(station) => ("station", vec![station.clone()]),
        };
        InspectorModeJson { mode: name.to_owned(), stations }
    }

    pub fn parse(&self) -> Result<InspectorMode, ApiError> {
        let invalid = |message: &str| ApiError::Invalid { code: "invalid_field", message: message.to_owned() };
        match (self.mode.as_str(), self.stations.len()) {
            ("whole_bureau", 0) => Ok(InspectorMode::WholeBureau),
            ("office_and_stations", 0) => Ok(InspectorMode::OfficeAndStations),
            ("stations", n) if n > 0 => Ok(InspectorMode::Stations(self.stations.clone())),
            ("station", 1) => Ok(InspectorMode::Station(self.stations[0].clone())),
            ("whole_bureau" | "office_and_stations", _) => Err(invalid("inspector_mode: this mode names no stations")),
            ("stations" | "station", _) => {
                Err(invalid("inspector_mode: name the station(s): one for `station`, one or more for `stations`"))
            }
            _ => Err(invalid("inspector_mode.mode is one of whole_bureau, office_and_stations, stations, station")),
        }
    }
}

/// `POST /api/v1/campaigns`: plan a campaign (抽查计划).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignRequest {
    pub name: String,
    /// The organising bureau; defaults to the caller's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::optional_region_code")]
    pub bureau: Option<String>,
    /// Item codes from the inspection-item list (抽查事项清单).
    pub items: Vec<String>,
    pub scope: ScopeJson,
    /// A targeted campaign (定向抽查) narrows the scope by industries or risk classes.
    pub targeted: bool,
    pub ratios_percent: RatiosJson,
    pub inspector_mode: InspectorModeJson,
    #[serde(default = "default_team")]
    pub inspectors_per_inspection: u32,
    /// When the inspections are due (RFC 3339); the deadline policy's period when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::optional_timestamp")]
    pub complete_by: Option<String>,
    /// The batch of the annual plan the campaign carries out (its organiser's province's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<super::annual_plan::BatchRefJson>,
}

fn default_team() -> u32 {
    2
}

/// `POST /api/v1/campaigns/{id}/draw`: the beacon (by a second person, once), then the draw.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrawRequest {
    /// A value fixed after the parameters were committed: a public random value or a number a
    /// second person reads out. Omit it to finish a draw whose beacon is fixed already.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beacon: Option<String>,
}

/// Percent with two decimals → basis points.
pub fn basis_points(field: &str, percent: f64) -> Result<u32, ApiError> {
    let bp = (percent * 100.0).round();
    if !(0.0..=f64::from(BASIS_POINTS)).contains(&bp) || ((percent * 100.0) - bp).abs() > 1e-6 {
        return Err(ApiError::Invalid {
            code: "invalid_field",
            message: format!("{field}: a percentage from 0 to 100 with at most two decimals"),
        });
    }
    Ok(bp as u32)
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ItemJson {
    pub code: String,
    pub name: String,
}

impl ItemJson {
    pub fn of(item: &InspectionItem) -> ItemJson {
        ItemJson { code: item.code.clone(), name: item.name.clone() }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct BeaconJson {
    pub value: String,
    pub entered_by: String,
    pub entered_at: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct StratumJson {
    pub item: String,
    pub risk_class: String,
    pub population: u64,
    pub quota: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct DrawSummaryJson {
    pub seed: String,
    pub drawn_at: String,
    pub drawn_by: String,
    pub entities_in_scope: u64,
    pub eligible: u64,
    pub inspections: usize,
    pub top_up: usize,
    pub recusals: usize,
    pub strata: Vec<StratumJson>,
    /// The inspection tasks created, in the draw's order: on the campaign's own page
    /// (`GET /api/v1/campaigns/{id}`) and the draw's answer, not in the listing (a province's
    /// draw makes a hundred thousand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<u64>>,
}

/// A draw committed in parts while its parts come in.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct DrawingJson {
    pub parts: usize,
    pub parts_recorded: usize,
    pub inspections: u64,
}

/// What a campaign's draw made, read from the ledger: a draw committed in parts keeps its
/// inspections in its tasks, not in the campaign's record.
pub struct DrawFacts {
    inspections: u64,
    top_ups: u64,
    tasks: Option<Vec<u64>>,
    drawing: Option<DrawingJson>,
}

impl DrawFacts {
    /// With the draw's task ids, for a campaign's own page.
    pub fn of(ledger: &ledger::Ledger, campaign: &Campaign) -> DrawFacts {
        let tasks = ledger.drawn_tasks(campaign.id).into_iter().map(|task| task.0).collect();
        DrawFacts { tasks: Some(tasks), ..DrawFacts::counted(ledger, campaign) }
    }

    /// Without them, for the listing.
    pub fn counted(ledger: &ledger::Ledger, campaign: &Campaign) -> DrawFacts {
        let drawing = ledger.drawing_in_parts(campaign.id).map(|drawing| DrawingJson {
            parts: drawing.header.parts.len(),
            parts_recorded: drawing.next_part(),
            inspections: drawing.header.inspections(),
        });
        let top_ups = match (ledger.drawn_in_parts(campaign.id), &campaign.draw) {
            (Some(parts), _) => parts.top_ups(),
            (None, Some(draw)) => draw.result.inspections.iter().filter(|i| i.top_up).count() as u64,
            (None, None) => 0,
        };
        DrawFacts { inspections: ledger.drawn_inspections(campaign.id), top_ups, tasks: None, drawing }
    }
}

/// A campaign as the bureaus see it (the full committed record, inputs included, is at
/// `GET /api/v1/campaigns/{id}/proof`).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct CampaignJson {
    pub id: u64,
    pub name: String,
    pub bureau: String,
    pub bureau_name: String,
    pub items: Vec<ItemJson>,
    pub scope: ScopeJson,
    pub targeted: bool,
    pub ratios_percent: RatiosJson,
    pub inspector_mode: InspectorModeJson,
    pub inspectors_per_inspection: u32,
    pub entity_directory: String,
    pub complete_by: Option<String>,
    pub created_by: String,
    pub created_at: String,
    /// `planned` (waiting for the beacon), `sealed` (beacon fixed, draw pending), `drawing`
    /// (a draw in parts, its parts coming in) or `drawn`.
    pub state: String,
    pub beacon: Option<BeaconJson>,
    pub draw: Option<DrawSummaryJson>,
    pub drawing: Option<DrawingJson>,
}

impl CampaignJson {
    pub fn of(regions: &Regions, campaign: &Campaign, facts: DrawFacts) -> CampaignJson {
        let spec = &campaign.spec;
        let percent = |bp: u32| f64::from(bp) / 100.0;
        let state = match (&campaign.beacon, &campaign.draw, &facts.drawing) {
            (_, Some(_), _) => "drawn",
            (Some(_), None, Some(_)) => "drawing",
            (Some(_), None, None) => "sealed",
            (None, _, _) => "planned",
        };
        CampaignJson {
            id: campaign.id,
            name: spec.name.clone(),
            bureau: bureau(spec.bureau),
            bureau_name: region_name(regions, spec.bureau),
            items: spec.items.iter().map(ItemJson::of).collect(),
            scope: ScopeJson {
                region: bureau(spec.scope_region),
                industries: spec.industries.clone(),
                risk_classes: spec.risk_classes.iter().map(ToString::to_string).collect(),
            },
            targeted: spec.targeted,
            ratios_percent: RatiosJson {
                high: percent(spec.ratios.high_bp),
                normal: percent(spec.ratios.normal_bp),
                low: percent(spec.ratios.low_bp),
            },
            inspector_mode: InspectorModeJson::of(&spec.inspector_mode),
            inspectors_per_inspection: spec.inspectors_per_inspection,
            entity_directory: spec.entity_directory.clone(),
            complete_by: spec.complete_deadline_ms.map(format_ms),
            created_by: campaign.created_by.clone(),
            created_at: format_ms(campaign.created_at_ms),
            state: state.to_owned(),
            beacon: campaign.beacon.as_ref().map(|b| BeaconJson {
                value: b.value.clone(),
                entered_by: b.entered_by.clone(),
                entered_at: format_ms(b.at_ms),
            }),
            draw: campaign.draw.as_ref().map(|draw| DrawSummaryJson {
                seed: draw.result.seed.clone(),
                drawn_at: format_ms(draw.drawn_at_ms),
                drawn_by: draw.drawn_by.clone(),
                entities_in_scope: draw.result.entities_in_scope,
                eligible: draw.result.eligible,
                inspections: facts.inspections as usize,
                top_up: facts.top_ups as usize,
                recusals: draw.result.recusals.len(),
                strata: draw
                    .result
                    .strata
                    .iter()
                    .map(|s| StratumJson {
                        item: s.item.clone(),
                        risk_class: s.class.to_string(),
                        population: s.population,
                        quota: s.quota,
                    })
                    .collect(),
                tasks: facts.tasks,
            }),
            drawing: facts.drawing,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct CampaignsJson {
    pub campaigns: Vec<CampaignJson>,
}

/// On a task: its drawn inspection.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct InspectionJson {
    pub campaign: u64,
    pub campaign_name: String,
    pub items: Vec<ItemJson>,
    /// Inspector ids (the team drawn).
    pub inspectors: Vec<String>,
    /// Internal (风险分类情况不对外公开).
    pub risk_class: String,
    pub top_up: bool,
    pub result_entered_at: Option<String>,
    pub publish_deadline: Option<String>,
    /// `pending`, `published` or `withdrawn`, once a result is entered.
    pub publication: Option<String>,
    pub published_at: Option<String>,
    pub withdrawn_at: Option<String>,
    /// The codes of the other departments whose items it has (a joint inspection, 部门联合抽查).
    pub departments: Vec<String>,
    /// Their parts of the result, in the order entered (a department's last counts).
    pub department_parts: Vec<super::departments::DepartmentPartJson>,
    /// The departments whose part the result still waits for.
    pub departments_awaited: Vec<String>,
}

impl InspectionJson {
    /// `drawn_here`: drawn by this group (one another group drew names that group's
    /// departments, whose parts are entered there).
    pub fn of(record: &InspectionRecord, field_work: &ledger::task::FieldWork, drawn_here: bool) -> InspectionJson {
        let departments = if drawn_here { super::departments::departments_of(record) } else { Vec::new() };
        let parts = &field_work.department_parts;
        InspectionJson {
            departments_awaited: departments
                .iter()
                .filter(|code| !parts.iter().any(|part| part.department == **code))
                .cloned()
                .collect(),
            departments,
            department_parts: parts.iter().map(super::departments::DepartmentPartJson::of).collect(),
            campaign: record.campaign,
            campaign_name: record.campaign_name.clone(),
            items: record.items.iter().map(ItemJson::of).collect(),
            inspectors: record.inspectors.clone(),
            risk_class: record.risk_class.to_string(),
            top_up: record.top_up,
            result_entered_at: record.result_entered_at_ms.map(format_ms),
            publish_deadline: record.publish_deadline_ms.map(format_ms),
            publication: record.publication().map(|p| p.to_string()),
            published_at: record.published_at_ms.map(format_ms),
            withdrawn_at: record.withdrawn_at_ms.map(format_ms),
        }
    }
}

pub fn parse_risk_class(text: &str) -> Result<RiskClass, ApiError> {
    super::parse_enum("scope.risk_classes", text, RiskClass::parse, RiskClass::names)
}

// --- Public (一公开): unauthenticated, nothing internal. ---

/// A published inspection result.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicResultJson {
    pub campaign: u64,
    pub campaign_name: String,
    pub uscc: Option<String>,
    pub entity_name: String,
    pub region_code: String,
    pub region_name: String,
    pub items: Vec<String>,
    /// `no_problem_found`, `corrected`, `penalized`, `not_found_at_address` or `case_opened`.
    pub result: String,
    pub inspected_at: String,
    pub published_at: String,
    pub organiser: String,
    pub organiser_name: String,
    /// The other departments' results of a joint inspection (部门联合抽查), each by its name.
    pub departments: Vec<PublicDepartmentResultJson>,
}

/// One department's result of a joint inspection, as published.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicDepartmentResultJson {
    pub department: String,
    pub result: String,
}

impl PublicResultJson {
    pub fn of(
        regions: &Regions,
        departments: &ledger::campaign::departments::Departments,
        result: &PublicResult,
    ) -> PublicResultJson {
        PublicResultJson {
            campaign: result.campaign,
            campaign_name: result.campaign_name.clone(),
            uscc: result.uscc.as_ref().map(|u| u.as_str().to_owned()),
            entity_name: result.entity_name.clone(),
            region_code: bureau(result.region_code),
            region_name: region_name(regions, result.region_code),
            items: result.items.clone(),
            result: result.outcome.to_string(),
            inspected_at: format_ms(result.inspected_at_ms),
            published_at: format_ms(result.published_at_ms),
            organiser: bureau(result.organiser),
            organiser_name: region_name(regions, result.organiser),
            departments: result
                .department_outcomes
                .iter()
                .map(|(code, outcome)| PublicDepartmentResultJson {
                    department: departments.get(code).map_or_else(|| code.clone(), |d| d.name.clone()),
                    result: outcome.to_string(),
                })
                .collect(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicResultsJson {
    pub results: Vec<PublicResultJson>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<u64>,
}

/// A campaign as the public sees it: what was inspected, where, and how many; not how
/// entities were classed or who inspected.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicCampaignJson {
    pub id: u64,
    pub name: String,
    pub organiser: String,
    pub organiser_name: String,
    pub items: Vec<ItemJson>,
    pub scope_region: String,
    pub scope_name: String,
    pub targeted: bool,
    pub drawn_at: Option<String>,
    pub inspections: usize,
    pub published_results: usize,
}

impl PublicCampaignJson {
    /// A drawn campaign, the inspections it drew, with how many of their results are
    /// published now.
    pub fn of(
        regions: &Regions,
        campaign: &Campaign,
        draw: &DrawRecord,
        inspections: u64,
        published_results: usize,
    ) -> PublicCampaignJson {
        let spec = &campaign.spec;
        PublicCampaignJson {
            id: campaign.id,
            name: spec.name.clone(),
            organiser: bureau(spec.bureau),
            organiser_name: region_name(regions, spec.bureau),
            items: spec.items.iter().map(ItemJson::of).collect(),
            scope_region: bureau(spec.scope_region),
            scope_name: region_name(regions, spec.scope_region),
            targeted: spec.targeted,
            drawn_at: Some(format_ms(draw.drawn_at_ms)),
            inspections: inspections as usize,
            published_results,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicCampaignsJson {
    pub campaigns: Vec<PublicCampaignJson>,
    /// Pass as `cursor` for the next page; absent on the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<u64>,
}

#[cfg(test)]
mod tests {
    use ledger::campaign::{InspectionItem, InspectionRecord, PublicResult, RiskClass};
    use ledger::{
        CompletionOutcome, Severity, Source, Subject, Task, TaskId, TaskKind, TaskState, TimelineAction, Uscc,
    };
    use serde_json::Value;

    use super::PublicResultJson;
    use crate::api::task_json;

    /// The fields the rules publish (一公开), by their names in the internal task JSON.
    const PUBLISHED: &[&str] = &[
        "campaign",
        "campaign_name",
        "uscc",
        "name",
        "region_code",
        "region_name",
        "items",
        "code",
        "outcome",
        "result_entered_at",
        "published_at",
        "origin_bureau",
        "publication",
        "id",
    ];

    /// Every (key, text) leaf of a JSON value.
    fn leaves(value: &Value, key: &str, into: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => map.iter().for_each(|(k, v)| leaves(v, k, into)),
            Value::Array(items) => items.iter().for_each(|v| leaves(v, key, into)),
            Value::Null | Value::Bool(_) => {}
            other => into.push((key.to_owned(), other.to_string().trim_matches('"').to_owned())),
        }
    }

    /// Every field of the internal model of a published inspection (the task, its inspection
    /// record, its timeline) holds a distinctive value; none of the values of an unpublished
    /// field may appear anywhere in the public answer.
    #[test]
    fn the_public_result_shows_no_field_of_the_internal_model_it_does_not_publish() {
        let uscc = Uscc::with_check_character("91440106MA5D0001X").expect("a USCC");
        let subject = Subject {
            uscc: Some(uscc),
            name: "广州市某某餐饮有限公司".into(),
            region_code: ledger::BureauCode::parse_compiled("440106").unwrap(),
            address: "内部地址-不公示-天河路9号".into(),
        };
        let entry = |action, note: &str, at_ms| ledger::task::TimelineEntry {
            version: 1,
            at_ms,
            action,
            actor_user: "internal-user-zhang".into(),
            actor_bureau: ledger::BureauCode::parse_compiled("440100").unwrap(),
            note: note.into(),
            assignee_bureau: None,
            outcome: None,
        };
        let mut task = Task::registered(
            TaskId(4242),
            1_780_000_000_000,
            TaskKind::Inspection,
            Severity::High,
            "内部标题-抽查任务".into(),
            "内部描述-不公示".into(),
            subject,
            Source::SpotCheck,
            ledger::BureauCode::parse_compiled("440100").unwrap(),
            ledger::BureauCode::parse_compiled("440106"),
            entry(TimelineAction::Create, "内部意见-创建", 1_780_000_000_000),
        );
        task.timeline.push(entry(TimelineAction::Complete, "内部意见-现场检查记录", 1_780_000_100_000));
        task.version = 2;
        task.handling.state = TaskState::Completed;
        task.handling.outcome = Some(CompletionOutcome::Corrected);
        task.handling.ack_deadline_ms = Some(1_780_000_900_000);
        task.handling.complete_deadline_ms = Some(1_780_009_900_000);
        task.inspection = Some(InspectionRecord {
            campaign: 7,
            campaign_name: "公开的抽查计划".into(),
            items: vec![InspectionItem {
                code: "A01".into(),
                name: "企业公示信息情况检查".into(),
                industries: vec!["internal_industry_list".into()],
                expertise: "internal_expertise_tag".into(),
            }],
            inspectors: vec!["INSPECTOR-SECRET-1".into(), "INSPECTOR-SECRET-2".into()],
            risk_class: RiskClass::High,
            top_up: true,
            result_entered_at_ms: Some(1_780_000_100_000),
            publish_deadline_ms: Some(1_780_777_000_000),
            publish_missed_deadline_ms: None,
            published_at_ms: Some(1_780_000_200_000),
            withdrawn_at_ms: None,
        });
        // A joint inspection: another department's part, whose outcome alone is public.
        task.field_work.department_parts.push(ledger::campaign::departments::DepartmentPart {
            department: "tax".into(),
            outcome: CompletionOutcome::Penalized,
            summary: "内部意见-部门检查情况".into(),
            inspector: "INSPECTOR-SECRET-2".into(),
            entered_by: "person:9:内部账户".into(),
            at_ms: 1_780_000_050_000,
        });
        let public = PublicResult::of(&task).expect("published");
        assert_eq!(public.department_outcomes, [("tax".to_owned(), CompletionOutcome::Penalized)]);
        let public =
            serde_json::to_string(&PublicResultJson::of(ledger::Regions::compiled(), &Default::default(), &public))
                .unwrap();
        let internal = serde_json::to_value(task_json(ledger::Regions::compiled(), &task)).unwrap();
        let mut fields = Vec::new();
        leaves(&internal, "", &mut fields);
        // A value the rules publish under one name may stand under another too (the assignee
        // is the entity's own bureau, its region): those are not internal.
        let published: Vec<String> =
            fields.iter().filter(|(key, _)| PUBLISHED.contains(&key.as_str())).map(|(_, v)| v.clone()).collect();
        let mut checked = 0;
        for (key, value) in fields {
            if PUBLISHED.contains(&key.as_str()) || published.contains(&value) || value.chars().count() < 4 {
                continue;
            }
            checked += 1;
            assert!(!public.contains(&value), "internal field {key} ({value}) appears in the public result: {public}");
        }
        assert!(checked >= 20, "the internal model's fields were checked: {checked}");
        for internal_only in ["INSPECTOR-SECRET", "high", "internal_", "内部"] {
            assert!(!public.contains(internal_only), "{internal_only} in {public}");
        }
    }
}
