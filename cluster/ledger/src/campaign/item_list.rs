//! The inspection-item list (随机抽查事项清单), kept in the ledger and versioned: the national
//! list the group adopted, the additions its province made with their legal basis (省级…依法
//!增加本地区随机抽查事项), and which level of bureau may organise a campaign with each item
//! (checks of publicly disclosed information are drawn by the province; other items by a
//! county bureau or above). Every change is a numbered version with who made it, when and why;
//! an item is never removed, only retired, so every campaign and record keeps naming it.
//!
//! A group that never adopted a list decides as before it existed: campaigns carry the items
//! the accepting node's configuration lists and `apply` does not check them (a log written
//! before the list replays as it applied). Once a list is adopted, a campaign's items must be
//! current on it, exactly as listed, and open to its organiser's level.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{CampaignSpec, InspectionItem, LABELS_MAX, LABEL_CHARS_MAX};
use crate::bureau::{BureauCode, RegionLevel, Regions};
use crate::command::{conflict, Actor, ConflictCode, Rejection, Role};
use crate::site_record::{AnswerKind, CHECK_CODE_CHARS_MAX, CHECK_TEXT_CHARS_MAX};
use crate::task::wire_enum;
use crate::validate::{self, invalid};

/// Items a list holds, retired ones included: the national list has about a hundred, a
/// province adds tens.
pub const LISTED_ITEMS_MAX: usize = 1_000;
/// Changes a list keeps in its history: a few a year for decades.
pub const ITEM_LIST_CHANGES_MAX: usize = 10_000;
/// An item's name as published.
pub const ITEM_NAME_CHARS_MAX: usize = 100;
/// Check points of one item (检查要点).
pub const CHECK_POINTS_PER_ITEM_MAX: usize = 50;
/// A province's enforcement inspection matters (执法检查事项) at most: a few hundred in practice.
pub const ENFORCEMENT_MATTERS_MAX: u32 = 100_000;
/// A province declares its count of enforcement matters at most once in this long.
pub const DECLARATION_INTERVAL_MS: u64 = 24 * 60 * 60 * 1000;

wire_enum! {
    /// The lowest level of bureau that may organise a campaign with an item.
    pub enum OrganiserLevel {
        /// Only a provincial bureau (or the national one): e.g. 企业公示信息 checks.
        Province = "province",
        /// A prefecture's (city's) bureau or above.
        Prefecture = "prefecture",
        /// A county's bureau or above: the rule for most items.
        County = "county",
    }
}

impl OrganiserLevel {
    /// Whether a bureau of `level` may organise a campaign with the item.
    pub fn admits(self, level: RegionLevel) -> bool {
        let lowest = match self {
            OrganiserLevel::Province => RegionLevel::Province,
            OrganiserLevel::Prefecture => RegionLevel::Prefecture,
            OrganiserLevel::County => RegionLevel::County,
        };
        level <= lowest
    }
}

/// One check point of an item's checklist, as the list gives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckPoint {
    pub code: String,
    /// As the inspector reads it.
    pub wording: String,
    pub answer: AnswerKind,
    /// Its legal basis.
    pub basis: String,
}

/// An item as its author gives it: for the national list, or for an addition or revision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemSpec {
    /// Stable: campaigns, records and the public name it.
    pub code: String,
    /// Published with the results.
    pub name: String,
    /// The law, regulation or rule the item is checked under (依法).
    pub basis: String,
    pub organiser: OrganiserLevel,
    /// The industries it applies to; empty for every industry.
    pub industries: Vec<String>,
    /// The expertise an inspector needs for it.
    pub expertise: String,
    pub check_points: Vec<CheckPoint>,
}

impl ItemSpec {
    /// The item as a campaign carries it.
    pub fn as_campaign_item(&self) -> InspectionItem {
        InspectionItem {
            code: self.code.clone(),
            name: self.name.clone(),
            industries: self.industries.clone(),
            expertise: self.expertise.clone(),
        }
    }
}

/// Where a listed item comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ItemOrigin {
    /// SAMR's list (总局清单), as the group adopted it.
    National,
    /// Added by this provincial bureau for its region.
    Addition(BureauCode),
    /// An item of another department of the group (`departments`), by its code: for joint
    /// inspections, open to every bureau of the group.
    Department(String),
}

/// An item as the list holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedItem {
    pub spec: ItemSpec,
    pub origin: ItemOrigin,
    /// The list version that added it, and the one that last changed it.
    pub listed_in: u32,
    pub changed_in: u32,
    /// Taken off the list: no new campaign may use it; earlier ones keep naming it.
    pub retired: bool,
}

/// What one version of the list changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ItemListStep {
    /// The national list adopted (again): the codes it added, revised and retired.
    AdoptedNational {
        added: Vec<String>,
        revised: Vec<String>,
        retired: Vec<String>,
    },
    Added {
        code: String,
    },
    Revised {
        code: String,
    },
    Retired {
        code: String,
    },
    /// A province declared how many enforcement inspection matters it has.
    DeclaredMatters {
        total: u32,
    },
}

/// One version of the list: the change, who made it, when and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemListVersion {
    /// Numbered from 1.
    pub number: u32,
    pub step: ItemListStep,
    pub by: String,
    pub bureau: BureauCode,
    pub at_ms: u64,
    pub reason: String,
}

/// The list as it stands and every version that made it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemList {
    items: BTreeMap<String, ListedItem>,
    versions: Vec<ItemListVersion>,
    /// Each province's count of its enforcement inspection matters (执法检查事项), the
    /// denominator of the list's coverage (覆盖率: the seed's 70 %, then all of them).
    enforcement_matters: BTreeMap<BureauCode, u32>,
}

/// Commands on the list (variants of `ProgrammeAction`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ItemListAction {
    /// The national list as this build ships it: new codes are added, changed ones revised,
    /// national codes it no longer has retired. Additions are untouched.
    AdoptNational { items: Vec<ItemSpec>, reason: String },
    /// A province's addition, with its legal basis.
    Add { item: Box<ItemSpec>, reason: String },
    /// A province's addition changed by that province.
    Revise { item: Box<ItemSpec>, reason: String },
    /// An addition taken off by its province.
    Retire { code: String, reason: String },
    /// A province's count of its enforcement inspection matters, for the list's coverage.
    DeclareMatters { total: u32, reason: String },
}

impl ItemList {
    /// A list that is not in the ledger: what a group that never adopted one shows, the items
    /// its node's configuration ships as the national list (version 0).
    pub fn shipped(items: Vec<ItemSpec>) -> ItemList {
        let items = items
            .into_iter()
            .map(|spec| {
                let listed =
                    ListedItem { spec, origin: ItemOrigin::National, listed_in: 0, changed_in: 0, retired: false };
                (listed.spec.code.clone(), listed)
            })
            .collect();
        ItemList { items, versions: Vec::new(), enforcement_matters: BTreeMap::new() }
    }

    /// Whether the group adopted a list through its log (until then `apply` does not check
    /// campaigns' items).
    pub fn adopted(&self) -> bool {
        !self.versions.is_empty()
    }

    /// The version in force: the number of changes made (0 for a list never adopted).
    pub fn version(&self) -> u32 {
        self.versions.len() as u32
    }

    pub fn versions(&self) -> &[ItemListVersion] {
        &self.versions
    }

    /// Every item, retired ones included, by code.
    pub fn items(&self) -> impl Iterator<Item = &ListedItem> {
        self.items.values()
    }

    pub fn item(&self, code: &str) -> Option<&ListedItem> {
        self.items.get(code)
    }

    /// The item of this code that a new campaign may use.
    pub fn current(&self, code: &str) -> Option<&ListedItem> {
        self.items.get(code).filter(|item| !item.retired)
    }

    /// The current items a bureau's campaigns may choose from: the national ones and its
    /// province's additions.
    pub fn current_for(&self, regions: &Regions, bureau: BureauCode) -> impl Iterator<Item = &ListedItem> {
        let province = regions.province_of(bureau);
        self.items.values().filter(move |listed| {
            !listed.retired
                && match &listed.origin {
                    ItemOrigin::National | ItemOrigin::Department(_) => true,
                    ItemOrigin::Addition(by) => Some(*by) == province,
                }
        })
    }

    /// The coverage of `bureau`'s province's enforcement inspection matters by the list: its
    /// current items, of the matters the province declared (`None` before it declared them).
    pub fn coverage(&self, regions: &Regions, bureau: BureauCode) -> Option<(u64, u32)> {
        let total = *self.enforcement_matters.get(&regions.province_of(bureau)?)?;
        // The bureau's own matters: other departments' items are theirs.
        let own =
            self.current_for(regions, bureau).filter(|listed| !matches!(listed.origin, ItemOrigin::Department(_)));
        Some((own.count() as u64, total))
    }

    /// The refusal of a campaign whose items are not all current on the list exactly as
    /// listed, or not open to its organiser's level or region; `Ok` for a list never adopted.
    pub fn check_campaign(&self, regions: &Regions, spec: &CampaignSpec) -> Result<(), Rejection> {
        if !self.adopted() {
            return Ok(());
        }
        let level = regions.region(spec.bureau).map(|region| region.level);
        for item in &spec.items {
            let listed = self.current(&item.code).ok_or_else(|| {
                conflict(ConflictCode::ItemNotListed, format!("{} is not a current item of the list", item.code))
            })?;
            if listed.spec.as_campaign_item() != *item {
                return Err(conflict(
                    ConflictCode::ItemNotListed,
                    format!("{} differs from the list's version {}", item.code, listed.changed_in),
                ));
            }
            if !level.is_some_and(|level| listed.spec.organiser.admits(level)) {
                return Err(Rejection::Forbidden(format!(
                    "item {} is organised by a bureau of {} level or above; bureau {} may not plan it",
                    item.code, listed.spec.organiser, spec.bureau
                )));
            }
            if let ItemOrigin::Addition(province) = listed.origin.clone() {
                if !regions.is_within(spec.scope_region, province) {
                    return Err(Rejection::Forbidden(format!(
                        "item {} is an addition of bureau {province}; region {} lies outside it",
                        item.code, spec.scope_region
                    )));
                }
            }
        }
        Ok(())
    }

    /// Applies one command of the list: checked whole before anything changes.
    pub(crate) fn apply(
        &mut self,
        regions: &Regions,
        stamp_ms: u64,
        actor: &Actor,
        action: &ItemListAction,
    ) -> Result<ItemListVersion, Rejection> {
        let number = self.next_version(actor, matches!(action, ItemListAction::AdoptNational { .. }))?;
        let step = match action {
            ItemListAction::AdoptNational { items, reason } => {
                validate::note(reason, false)?;
                // The group's list changes for every bureau in it.
                of_group_level(regions, actor.bureau, "adopt the national list")?;
                self.adopt_national(number, items)?
            }
            ItemListAction::Add { item, reason } => {
                validate::note(reason, true)?;
                let province = provincial_bureau(regions, actor, "add items to the list")?;
                check_item(item)?;
                let prefix = addition_prefix(province);
                if !item.code.starts_with(&prefix) {
                    return Err(invalid(
                        "code",
                        format!("a province's own item's code starts with {prefix} (the national list's never do)"),
                    ));
                }
                self.add_item(number, item, ItemOrigin::Addition(province))?
            }
            ItemListAction::Revise { item, reason } => {
                validate::note(reason, true)?;
                check_item(item)?;
                let listed = self.own_addition(regions, actor, &item.code, "revise")?;
                if listed.spec == **item {
                    return Err(Rejection::NothingToRecord(format!("{} is listed like this already", item.code)));
                }
                listed.spec = (**item).clone();
                listed.changed_in = number;
                ItemListStep::Revised { code: item.code.clone() }
            }
            ItemListAction::Retire { code, reason } => {
                validate::note(reason, true)?;
                let listed = self.own_addition(regions, actor, code, "retire")?;
                if listed.retired {
                    return Err(Rejection::NothingToRecord(format!("{code} is retired already")));
                }
                listed.retired = true;
                listed.changed_in = number;
                ItemListStep::Retired { code: code.clone() }
            }
            ItemListAction::DeclareMatters { total, reason } => {
                validate::note(reason, false)?;
                let province = provincial_bureau(regions, actor, "declare its enforcement matters")?;
                if *total == 0 || *total > ENFORCEMENT_MATTERS_MAX {
                    return Err(invalid("total", format!("1 to {ENFORCEMENT_MATTERS_MAX} matters")));
                }
                if self.enforcement_matters.get(&province) == Some(total) {
                    return Err(Rejection::NothingToRecord(format!(
                        "bureau {province} declared {total} matters already"
                    )));
                }
                // A count that changes by the day is no count: one declaration a day, so the
                // list's history is not spent on them.
                let last = self
                    .versions
                    .iter()
                    .rev()
                    .find(|v| v.bureau == province && matches!(v.step, ItemListStep::DeclaredMatters { .. }));
                if last.is_some_and(|v| stamp_ms.saturating_sub(v.at_ms) < DECLARATION_INTERVAL_MS) {
                    return Err(Rejection::LimitReached(format!(
                        "one declaration of enforcement matters a day; bureau {province} declared within the last"
                    )));
                }
                self.enforcement_matters.insert(province, *total);
                ItemListStep::DeclaredMatters { total: *total }
            }
        };
        let reason = match action {
            ItemListAction::AdoptNational { reason, .. }
            | ItemListAction::Add { reason, .. }
            | ItemListAction::Revise { reason, .. }
            | ItemListAction::Retire { reason, .. }
            | ItemListAction::DeclareMatters { reason, .. } => reason.clone(),
        };
        Ok(self.record(number, step, actor, stamp_ms, reason))
    }

    /// The number of the version a change by `actor` makes: a command centre's, within the
    /// list's history, on an adopted list unless it is the adoption (a province builds on the
    /// national list: until one is adopted, the group runs on the list its configuration ships,
    /// and any other change would replace it).
    fn next_version(&self, actor: &Actor, adopting: bool) -> Result<u32, Rejection> {
        if actor.role != Role::Command {
            return Err(Rejection::Forbidden(format!("a {} user does not keep the item list", actor.role)));
        }
        if self.versions.len() >= ITEM_LIST_CHANGES_MAX {
            return Err(Rejection::LimitReached(format!("{ITEM_LIST_CHANGES_MAX} versions of the item list")));
        }
        if !self.adopted() && !adopting {
            return Err(conflict(
                ConflictCode::ListNotAdopted,
                "the national item list is not adopted yet: adopt it first (POST /api/v1/inspection-item-list/national)",
            ));
        }
        Ok(self.version() + 1)
    }

    /// A new item put on the list by version `number`.
    fn add_item(&mut self, number: u32, item: &ItemSpec, origin: ItemOrigin) -> Result<ItemListStep, Rejection> {
        if self.items.contains_key(&item.code) {
            return Err(conflict(ConflictCode::ItemListed, format!("{} is on the list already", item.code)));
        }
        if self.items.len() >= LISTED_ITEMS_MAX {
            return Err(Rejection::LimitReached(format!("{LISTED_ITEMS_MAX} listed items")));
        }
        let listed = ListedItem { spec: item.clone(), origin, listed_in: number, changed_in: number, retired: false };
        self.items.insert(item.code.clone(), listed);
        Ok(ItemListStep::Added { code: item.code.clone() })
    }

    /// Version `number`, the change `step` made: who, when and why.
    fn record(
        &mut self,
        number: u32,
        step: ItemListStep,
        actor: &Actor,
        at_ms: u64,
        reason: String,
    ) -> ItemListVersion {
        debug_assert_eq!(number, self.version() + 1, "versions are numbered in order");
        let version = ItemListVersion { number, step, by: actor.user.clone(), bureau: actor.bureau, at_ms, reason };
        self.versions.push(version.clone());
        version
    }

    /// Lists another department's item (`departments`, which checked the department, the
    /// item's code and tag): by a province's or a city's command centre, once the national list
    /// is adopted, as one version of the list.
    pub(crate) fn list_item_of(
        &mut self,
        regions: &Regions,
        stamp_ms: u64,
        actor: &Actor,
        item: &ItemSpec,
        origin: ItemOrigin,
        reason: &str,
    ) -> Result<ItemListVersion, Rejection> {
        let number = self.next_version(actor, false)?;
        validate::note(reason, true)?;
        of_group_level(regions, actor.bureau, "list departments' items")?;
        let step = self.add_item(number, item, origin)?;
        Ok(self.record(number, step, actor, stamp_ms, reason.to_owned()))
    }

    /// Merges the national list in: every check first, then the changes.
    fn adopt_national(&mut self, number: u32, items: &[ItemSpec]) -> Result<ItemListStep, Rejection> {
        if items.is_empty() || items.len() > LISTED_ITEMS_MAX {
            return Err(invalid("items", format!("1 to {LISTED_ITEMS_MAX} items")));
        }
        let mut codes = BTreeSet::new();
        for item in items {
            check_item(item)?;
            if is_addition_code(&item.code) {
                return Err(invalid("items", format!("{} reads like a province's own item's code", item.code)));
            }
            if !codes.insert(item.code.as_str()) {
                return Err(invalid("items", format!("{} is listed twice", item.code)));
            }
            if self.items.get(&item.code).is_some_and(|listed| listed.origin != ItemOrigin::National) {
                return Err(conflict(
                    ConflictCode::ItemListed,
                    format!("{} is a province's addition; the national list may not take its code", item.code),
                ));
            }
        }
        let added: Vec<String> =
            items.iter().filter(|i| !self.items.contains_key(&i.code)).map(|i| i.code.clone()).collect();
        if self.items.len() + added.len() > LISTED_ITEMS_MAX {
            return Err(Rejection::LimitReached(format!("{LISTED_ITEMS_MAX} listed items")));
        }
        let revised: Vec<String> = items
            .iter()
            .filter(|i| self.items.get(&i.code).is_some_and(|listed| listed.spec != **i || listed.retired))
            .map(|i| i.code.clone())
            .collect();
        let retired: Vec<String> = self
            .items
            .values()
            .filter(|listed| listed.origin == ItemOrigin::National && !listed.retired)
            .filter(|listed| !codes.contains(listed.spec.code.as_str()))
            .map(|listed| listed.spec.code.clone())
            .collect();
        if self.adopted() && added.is_empty() && revised.is_empty() && retired.is_empty() {
            return Err(Rejection::NothingToRecord("the national list is adopted as it stands".into()));
        }
        for item in items {
            let listed = self.items.entry(item.code.clone()).or_insert_with(|| ListedItem {
                spec: item.clone(),
                origin: ItemOrigin::National,
                listed_in: number,
                changed_in: number,
                retired: false,
            });
            if listed.spec != *item || listed.retired {
                listed.spec = item.clone();
                listed.retired = false;
                listed.changed_in = number;
            }
        }
        for code in &retired {
            let listed = self.items.get_mut(code).expect("retired codes are listed");
            listed.retired = true;
            listed.changed_in = number;
        }
        Ok(ItemListStep::AdoptedNational { added, revised, retired })
    }

    /// The addition `code`, for its own province's command centre to change.
    fn own_addition(
        &mut self,
        regions: &Regions,
        actor: &Actor,
        code: &str,
        what: &str,
    ) -> Result<&mut ListedItem, Rejection> {
        let province = provincial_bureau(regions, actor, &format!("{what} items of the list"))?;
        let listed = self.items.get_mut(code).ok_or_else(|| Rejection::NoSuch(format!("item {code}")))?;
        match listed.origin.clone() {
            ItemOrigin::Addition(by) if by == province => Ok(listed),
            ItemOrigin::Addition(by) => {
                Err(Rejection::Forbidden(format!("item {code} is bureau {by}'s addition; only it may {what} it")))
            }
            ItemOrigin::National => Err(Rejection::Forbidden(format!(
                "item {code} is on the national list; it changes only when the national list is adopted again"
            ))),
            ItemOrigin::Department(department) => {
                Err(Rejection::Forbidden(format!("item {code} is department {department}'s")))
            }
        }
    }

    /// The list's own invariants, for a ledger loaded from outside.
    /// `regions` is the table the ledger decides with: every addition's origin and every
    /// declaration is a province of it, and an addition's code bears its province's prefix.
    pub(crate) fn check(&self, regions: &Regions) -> Result<(), String> {
        let is_province = |code: BureauCode| regions.region(code).is_some_and(|r| r.level == RegionLevel::Province);
        if self.enforcement_matters.keys().any(|code| !is_province(*code)) {
            return Err("enforcement matters declared for a bureau that is no province".into());
        }
        for listed in self.items.values() {
            let sound = match &listed.origin {
                ItemOrigin::National => !is_addition_code(&listed.spec.code),
                ItemOrigin::Addition(province) => {
                    is_province(*province) && listed.spec.code.starts_with(&addition_prefix(*province))
                }
                ItemOrigin::Department(department) => {
                    listed.spec.code.starts_with(&super::departments::department_item_prefix(department))
                        && listed.spec.expertise == super::departments::department_tag(department)
                }
            };
            if !sound {
                return Err(format!("item {} does not come from where its code says", listed.spec.code));
            }
        }
        if self.items.len() > LISTED_ITEMS_MAX || self.versions.len() > ITEM_LIST_CHANGES_MAX {
            return Err("the item list is over its limits".into());
        }
        for (position, version) in self.versions.iter().enumerate() {
            if version.number as usize != position + 1 {
                return Err("item list versions are numbered from 1".into());
            }
        }
        if !self.adopted() && (!self.items.is_empty() || !self.enforcement_matters.is_empty()) {
            return Err("an item list with items but no version".into());
        }
        if self.enforcement_matters.values().any(|total| *total == 0 || *total > ENFORCEMENT_MATTERS_MAX) {
            return Err("a province's enforcement matters are out of bounds".into());
        }
        for (code, listed) in &self.items {
            check_item(&listed.spec).map_err(|e| format!("listed item {code}: {e}"))?;
            if *code != listed.spec.code {
                return Err(format!("item {} is filed as {code}", listed.spec.code));
            }
            let numbered = 1..=self.version();
            if !numbered.contains(&listed.listed_in)
                || !(listed.listed_in..=self.version()).contains(&listed.changed_in)
            {
                return Err(format!("item {code} names a version the list does not have"));
            }
        }
        Ok(())
    }
}

/// How a province's own items' codes begin: its two digits and a dash (`44-01`), which no
/// national item's code does, so a later national list never collides with an addition.
fn addition_prefix(province: BureauCode) -> String {
    format!("{}-", &province.to_string()[..2])
}

fn is_addition_code(code: &str) -> bool {
    let bytes = code.as_bytes();
    bytes.len() > 3 && bytes[..2].iter().all(u8::is_ascii_digit) && bytes[2] == b'-'
}

/// The refusal of a bureau below a city for what the whole group keeps (its list, its
/// departments): a province's or a city's (a city's own group) centre does it, never a county's.
pub(crate) fn of_group_level(regions: &Regions, bureau: BureauCode, what: &str) -> Result<(), Rejection> {
    let level = regions.region(bureau).map(|region| region.level);
    if level.is_none_or(|level| level > RegionLevel::Prefecture) {
        return Err(Rejection::Forbidden(format!(
            "bureau {bureau} may not {what} for its group (a province or city may)"
        )));
    }
    Ok(())
}

/// The provincial bureau a command user stands for: only a province adds to the list.
fn provincial_bureau(regions: &Regions, actor: &Actor, what: &str) -> Result<BureauCode, Rejection> {
    match regions.region(actor.bureau) {
        Some(region) if region.level == RegionLevel::Province => Ok(actor.bureau),
        _ => Err(Rejection::Forbidden(format!(
            "only a provincial bureau may {what}; bureau {} is not one",
            actor.bureau
        ))),
    }
}

fn code_text(field: &str, code: &str) -> Result<(), Rejection> {
    let fits = !code.is_empty() && code.len() <= CHECK_CODE_CHARS_MAX;
    if !fits || !code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.') {
        return Err(invalid(field, format!("{code:?}: 1 to {CHECK_CODE_CHARS_MAX} letters, digits, '-', '_' or '.'")));
    }
    Ok(())
}

/// An item's fields on their own (the API runs this too, for a fast 400).
pub fn check_item(item: &ItemSpec) -> Result<(), Rejection> {
    code_text("code", &item.code)?;
    validate::text("name", &item.name, ITEM_NAME_CHARS_MAX, true, false)?;
    validate::text("basis", &item.basis, CHECK_TEXT_CHARS_MAX, true, true)?;
    validate::text("expertise", &item.expertise, LABEL_CHARS_MAX, true, false)?;
    if item.industries.len() > LABELS_MAX {
        return Err(invalid("industries", format!("at most {LABELS_MAX}")));
    }
    for industry in &item.industries {
        validate::text("industries", industry, LABEL_CHARS_MAX, true, false)?;
    }
    if item.check_points.len() > CHECK_POINTS_PER_ITEM_MAX {
        return Err(invalid("check_points", format!("at most {CHECK_POINTS_PER_ITEM_MAX}")));
    }
    let mut codes = BTreeSet::new();
    for point in &item.check_points {
        code_text("check_points.code", &point.code)?;
        if !codes.insert(point.code.as_str()) {
            return Err(invalid("check_points.code", format!("{} appears twice", point.code)));
        }
        validate::text("check_points.wording", &point.wording, CHECK_TEXT_CHARS_MAX, true, true)?;
        validate::text("check_points.basis", &point.basis, CHECK_TEXT_CHARS_MAX, false, true)?;
    }
    Ok(())
}

/// A ledger core of store format 5 (written before the item list and the annual plans) in this
/// build's format: both are the core's last field (`Planning`), so a format 5 core is this
/// one's first bytes, and a ledger that never adopted a list ends with the encoding of
/// `Planning::default()`. Whether the result decodes is the caller's check, as for any core
/// read from outside.
pub fn core_of_format_5(core: &[u8]) -> Vec<u8> {
    let no_planning = crate::codec::encode(&super::Planning::default()).expect("empty planning encodes");
    [core, no_planning.as_slice()].concat()
}
