//! The JSON of joint inspections with other departments (`ledger::campaign::departments`): the
//! departments registered in the group, the requests that register them, list their items and
//! enrol their inspectors, and a department's part of a joint inspection's result.

use ledger::campaign::departments::{departments_of_items, Department, DepartmentPart, Departments};
use ledger::campaign::InspectionRecord;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::item_list::ItemRequest;
use super::time::format_ms;

/// `POST /api/v1/departments`: a department registered by the group's command centre.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DepartmentRequest {
    /// Short and stable: 2 to 16 of a-z, 0-9 and '-' (e.g. `tax`, `health`).
    pub code: String,
    /// As the public reads it (e.g. 国家税务总局广州市税务局).
    pub name: String,
}

/// `POST /api/v1/departments/{code}/items`: an item of the department for the group's list;
/// its code starts `D-<code>-` and its expertise is the department's tag (`dept:<code>`).
pub type DepartmentItemRequest = ItemRequest;

/// One of a department's inspectors, as `POST /api/v1/departments/{code}/inspectors` enrols
/// them: they hold the department's tag and belong to no station.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DepartmentInspectorRequest {
    pub id: String,
    pub name: String,
    /// The region whose office of the department they work in.
    #[schemars(schema_with = "crate::api::schema::region_code")]
    pub bureau: String,
    /// Holds an administrative enforcement qualification (行政执法资格).
    pub qualified: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DepartmentInspectorsRequest {
    pub inspectors: Vec<DepartmentInspectorRequest>,
}

/// `POST /api/v1/tasks/{id}/department-part`: the department's part of a joint inspection's
/// result, by its inspector on the team.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DepartmentPartRequest {
    /// One of the inspection outcomes (`no_problem_found`, `corrected`, `penalized`,
    /// `not_found_at_address`, `case_opened`).
    pub outcome: String,
    /// What the department found, for its items.
    pub summary: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct DepartmentJson {
    pub code: String,
    pub name: String,
    /// The expertise tag its items need and its inspectors hold.
    pub tag: String,
    pub registered_at: String,
    pub registered_by: String,
    /// Inspectors it enrolled (retired ones included).
    pub inspectors: usize,
    /// The codes of its items on the group's list.
    pub items: Vec<String>,
}

impl DepartmentJson {
    /// `inspectors`: how many it enrolled; `items`: the codes of its items on the list.
    pub fn of(department: &Department, inspectors: usize, items: Vec<String>) -> DepartmentJson {
        DepartmentJson {
            code: department.code.clone(),
            name: department.name.clone(),
            tag: department.tag(),
            registered_at: format_ms(department.registered_at_ms),
            registered_by: department.registered_by.clone(),
            inspectors,
            items,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct DepartmentsJson {
    pub departments: Vec<DepartmentJson>,
    /// The caller's own department, when they are signed in as a department's inspector: the
    /// console offers them their part of the joint inspections of their team.
    pub mine: Option<String>,
}

impl DepartmentsJson {
    pub fn of(
        departments: &Departments,
        list: &ledger::campaign::item_list::ItemList,
        inspector: Option<&str>,
    ) -> DepartmentsJson {
        let items_of = |department: &Department| {
            let tag = department.tag();
            list.items().filter(|listed| listed.spec.expertise == tag).map(|listed| listed.spec.code.clone()).collect()
        };
        let counts = departments.member_counts();
        let enrolled = |department: &Department| counts.get(department.code.as_str()).copied().unwrap_or(0);
        DepartmentsJson {
            departments: departments
                .all()
                .map(|department| DepartmentJson::of(department, enrolled(department), items_of(department)))
                .collect(),
            mine: inspector.and_then(|id| departments.of_inspector(id)).map(str::to_owned),
        }
    }
}

/// A department's part of a joint inspection's result.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct DepartmentPartJson {
    pub department: String,
    pub outcome: String,
    pub summary: String,
    pub inspector: String,
    pub entered_by: String,
    pub at: String,
}

impl DepartmentPartJson {
    pub fn of(part: &DepartmentPart) -> DepartmentPartJson {
        DepartmentPartJson {
            department: part.department.clone(),
            outcome: part.outcome.to_string(),
            summary: part.summary.clone(),
            inspector: part.inspector.clone(),
            entered_by: part.entered_by.clone(),
            at: format_ms(part.at_ms),
        }
    }
}

/// The codes of the departments whose items an inspection has, sorted.
pub fn departments_of(record: &InspectionRecord) -> Vec<String> {
    departments_of_items(&record.items).into_iter().map(str::to_owned).collect()
}
