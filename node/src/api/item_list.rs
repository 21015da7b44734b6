//! The JSON of the inspection-item list (随机抽查事项清单, `ledger::campaign::item_list`): the
//! list in force with its version and history for the bureaus, the requests that change it,
//! and its public shape (`Public*`: code, name, legal basis and organising level, nothing else).

use ledger::campaign::departments::Departments;
use ledger::campaign::item_list::{
    CheckPoint, ItemList, ItemListStep, ItemListVersion, ItemOrigin, ItemSpec, ListedItem, OrganiserLevel,
};
use ledger::site_record::AnswerKind;
use ledger::Regions;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::time::format_ms;
use super::{bureau_json as bureau, region_name, ApiError};

/// One check point of an item's checklist.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemCheckPointJson {
    pub code: String,
    pub wording: String,
    /// `conformity`, `number` or `text`.
    pub answer: String,
    #[serde(default)]
    pub basis: String,
}

/// `POST /api/v1/inspection-items` (a province's addition) and
/// `POST /api/v1/inspection-items/{item}/revise`: the item whole, with the reason.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemRequest {
    pub code: String,
    pub name: String,
    /// The law it is checked under (依法增加).
    pub basis: String,
    /// The lowest level that may organise a campaign with it: `province`, `prefecture` or
    /// `county`.
    pub organiser: String,
    /// The directory's industry codes it applies to; empty for every industry.
    #[serde(default)]
    pub industries: Vec<String>,
    pub expertise: String,
    #[serde(default)]
    pub check_points: Vec<ItemCheckPointJson>,
    pub reason: String,
}

impl ItemRequest {
    /// The item and the reason, its words parsed (the ledger checks the rest).
    pub fn parse(self) -> Result<(ItemSpec, String), ApiError> {
        let organiser = OrganiserLevel::parse(&self.organiser)
            .ok_or_else(|| ApiError::invalid_field("organiser", format!("one of {}", OrganiserLevel::names())))?;
        let check_points = self
            .check_points
            .into_iter()
            .map(|point| {
                let answer = AnswerKind::parse(&point.answer).ok_or_else(|| {
                    ApiError::invalid_field("check_points.answer", format!("one of {}", AnswerKind::names()))
                })?;
                Ok(CheckPoint { code: point.code, wording: point.wording, answer, basis: point.basis })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        let item = ItemSpec {
            code: self.code,
            name: self.name,
            basis: self.basis,
            organiser,
            industries: self.industries,
            expertise: self.expertise,
            check_points,
        };
        ledger::campaign::item_list::check_item(&item)?;
        Ok((item, self.reason))
    }
}

/// `POST /api/v1/inspection-item-list/national`: adopt the national list this deployment
/// ships; `reason` is optional (e.g. the notice that issued it).
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdoptNationalRequest {
    #[serde(default)]
    pub reason: String,
}

/// `POST /api/v1/inspection-item-list/matters`: how many enforcement inspection matters
/// (执法检查事项) the caller's province has, for the list's coverage.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclareMattersRequest {
    pub total: u32,
    #[serde(default)]
    pub reason: String,
}

/// `POST /api/v1/inspection-items/{item}/retire`, with the reason.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetireItemRequest {
    pub reason: String,
}

/// `national`, the code of the province whose addition it is, or `department:` and the code of
/// the department whose item it is.
fn origin(origin: &ItemOrigin) -> String {
    match origin {
        ItemOrigin::National => "national".to_owned(),
        ItemOrigin::Addition(province) => bureau(*province),
        ItemOrigin::Department(code) => format!("department:{code}"),
    }
}

/// An item of the list in force, for the bureaus.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct InspectionItemJson {
    pub code: String,
    pub name: String,
    pub industries: Vec<String>,
    pub expertise: String,
    pub basis: String,
    /// `province`, `prefecture` or `county`: the lowest level that may organise it.
    pub organiser: String,
    /// `national`, the province that added it, or `department:<code>` for another
    /// department's item (joint inspections).
    pub origin: String,
    pub origin_name: String,
    /// The list versions that listed it and last changed it (0: the shipped list, not adopted).
    pub listed_in: u32,
    pub changed_in: u32,
    pub retired: bool,
    pub check_points: Vec<ItemCheckPointJson>,
}

impl InspectionItemJson {
    pub fn of(regions: &Regions, departments: &Departments, listed: &ListedItem) -> InspectionItemJson {
        let spec = &listed.spec;
        InspectionItemJson {
            code: spec.code.clone(),
            name: spec.name.clone(),
            industries: spec.industries.clone(),
            expertise: spec.expertise.clone(),
            basis: spec.basis.clone(),
            organiser: spec.organiser.to_string(),
            origin: origin(&listed.origin),
            origin_name: match &listed.origin {
                ItemOrigin::National => "市场监管总局".to_owned(),
                ItemOrigin::Addition(province) => region_name(regions, *province),
                ItemOrigin::Department(code) => {
                    departments.get(code).map_or_else(|| code.clone(), |department| department.name.clone())
                }
            },
            listed_in: listed.listed_in,
            changed_in: listed.changed_in,
            retired: listed.retired,
            check_points: spec
                .check_points
                .iter()
                .map(|point| ItemCheckPointJson {
                    code: point.code.clone(),
                    wording: point.wording.clone(),
                    answer: point.answer.to_string(),
                    basis: point.basis.clone(),
                })
                .collect(),
        }
    }
}

/// One version of the list.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ItemListVersionJson {
    pub number: u32,
    /// `adopted_national`, `added`, `revised`, `retired` or `declared_matters`.
    pub change: String,
    /// For `declared_matters`: the province's count of enforcement inspection matters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matters: Option<u32>,
    /// The codes it added, revised and retired (one of them for a province's change).
    pub added: Vec<String>,
    pub revised: Vec<String>,
    pub retired: Vec<String>,
    pub by: String,
    pub bureau: String,
    pub at: String,
    pub reason: String,
}

impl ItemListVersionJson {
    pub fn of(version: &ItemListVersion) -> ItemListVersionJson {
        let matters = match version.step {
            ItemListStep::DeclaredMatters { total } => Some(total),
            _ => None,
        };
        let (change, added, revised, retired) = match &version.step {
            ItemListStep::AdoptedNational { added, revised, retired } => {
                ("adopted_national", added.clone(), revised.clone(), retired.clone())
            }
            ItemListStep::Added { code } => ("added", vec![code.clone()], Vec::new(), Vec::new()),
            ItemListStep::Revised { code } => ("revised", Vec::new(), vec![code.clone()], Vec::new()),
            ItemListStep::Retired { code } => ("retired", Vec::new(), Vec::new(), vec![code.clone()]),
            ItemListStep::DeclaredMatters { .. } => ("declared_matters", Vec::new(), Vec::new(), Vec::new()),
        };
        ItemListVersionJson {
            number: version.number,
            change: change.to_owned(),
            matters,
            added,
            revised,
            retired,
            by: version.by.clone(),
            bureau: bureau(version.bureau),
            at: format_ms(version.at_ms),
            reason: version.reason.clone(),
        }
    }
}

/// `GET /api/v1/inspection-item-list`: the list in force, retired items included, and every
/// version that made it (newest last).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ItemListJson {
    /// 0 while the group runs on the list its configuration ships (not adopted).
    pub version: u32,
    pub adopted: bool,
    pub items: Vec<InspectionItemJson>,
    pub versions: Vec<ItemListVersionJson>,
    /// The caller's province's coverage of its enforcement inspection matters by the list.
    pub coverage: Option<CoverageJson>,
}

/// 随机抽查事项覆盖率: the current items open to a bureau, of its province's declared
/// enforcement inspection matters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CoverageJson {
    pub items: u64,
    pub matters: u32,
    pub rate: f64,
}

impl CoverageJson {
    pub fn of(regions: &Regions, list: &ItemList, bureau: ledger::BureauCode) -> Option<CoverageJson> {
        let (items, matters) = list.coverage(regions, bureau)?;
        Some(CoverageJson { items, matters, rate: items as f64 / f64::from(matters) })
    }
}

impl ItemListJson {
    /// The list as the caller of `bureau` reads it.
    pub fn of(
        regions: &Regions,
        departments: &Departments,
        list: &ItemList,
        bureau: ledger::BureauCode,
    ) -> ItemListJson {
        ItemListJson {
            version: list.version(),
            adopted: list.adopted(),
            items: list.items().map(|listed| InspectionItemJson::of(regions, departments, listed)).collect(),
            versions: list.versions().iter().map(ItemListVersionJson::of).collect(),
            coverage: CoverageJson::of(regions, list, bureau),
        }
    }
}

/// An item as the public sees it: what it is, under which law, and who organises it.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct PublicItemJson {
    pub code: String,
    pub name: String,
    pub basis: String,
    pub organiser: String,
    /// `national`, or the province that added it.
    pub origin: String,
    pub origin_name: String,
}

/// `GET /public/v1/inspection-items`: the current items of the group's list and its version.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct PublicItemListJson {
    pub version: u32,
    pub items: Vec<PublicItemJson>,
}

impl PublicItemListJson {
    pub fn of(regions: &Regions, departments: &Departments, list: &ItemList) -> PublicItemListJson {
        let items = list
            .items()
            .filter(|listed| !listed.retired)
            .map(|listed| {
                let full = InspectionItemJson::of(regions, departments, listed);
                PublicItemJson {
                    code: full.code,
                    name: full.name,
                    basis: full.basis,
                    organiser: full.organiser,
                    origin: full.origin,
                    origin_name: full.origin_name,
                }
            })
            .collect();
        PublicItemListJson { version: list.version(), items }
    }
}
