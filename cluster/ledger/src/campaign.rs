//! The "double random, one public" programme (双随机、一公开), the ledger's side: the versions of
//! the inspection-target directory (名录库, kept out of the log: only its hash, size and time are
//! recorded), the inspector directory (执法检查人员名录库, small: kept here as dated changes) with
//! declared conflicts of interest, campaigns (抽查计划) with the beacon a second person fixes, the
//! committed draw with its inputs, the inspection tasks it creates, their results and their
//! publication.
//!
//! The draw itself needs the entity directory, which is not in the ledger: the accepting node
//! computes it (crate `draw`) and proposes the result. `apply` re-derives everything it can from
//! its own state (the inspector pool, the entity history, the conflicts, the seed) and refuses a
//! draw whose inputs differ, then checks the result's rules (team size, qualification, recusals,
//! rotation, quotas, the 3% floor). `xietong draw verify` recomputes the selection from the
//! directory file.
//!
//! **Publication invariant:** risk classes, inspectors and draw inputs never reach a public view;
//! `PublicResult` and `PublicCampaign` are built field by field from what the rules publish.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::access::{self, within};
use super::apply::{push_entry, record_transition, timeline_has_room, Ledger};
use super::bureau::{BureauCode, Regions};
use super::command::{conflict, Actor, Applied, CommandResult, ConflictCode, NewTask, Rejection, Role, Transition};
use super::federation::Routing;
use super::policy::{self, TaskAction};
use super::task::{
    wire_enum, CompletionOutcome, Severity, Source, Subject, Task, TaskId, TaskKind, TaskState, TimelineAction,
};
use super::uscc::Uscc;
use super::validate::{self, invalid};

/// Inspector ids are badge numbers (执法证号) or staff numbers.
pub const INSPECTOR_ID_CHARS_MAX: usize = 32;
pub const INSPECTOR_NAME_CHARS_MAX: usize = 50;
/// Station (市场监管所) names and expertise tags.
pub const LABEL_CHARS_MAX: usize = 64;
/// Expertise tags per inspector and industries or items per campaign: a handful in practice.
pub const LABELS_MAX: usize = 32;
/// Inspectors in the directory: a province has a few tens of thousands of enforcement staff.
pub const INSPECTORS_MAX: usize = 100_000;
/// Inspectors enrolled by one command (a bureau's roster file): a county bureau has tens to a
/// few hundred enforcement staff; one entry stays small.
pub const INSPECTORS_PER_ENROLMENT_MAX: usize = 500;
/// Declared conflicts of interest kept.
pub const CONFLICTS_MAX: usize = 1_000_000;
/// Campaigns kept.
pub const CAMPAIGNS_MAX: usize = 100_000;
/// Inspections one draw may create as tasks (one Raft entry): a county's or city's campaign
/// draws hundreds to a few thousand; a province-wide draw larger than this is split by region.
pub const DRAW_INSPECTIONS_MAX: usize = 10_000;
/// Entity histories a draw carries as input (entities in scope that had tasks here).
pub const DRAW_HISTORIES_MAX: usize = 200_000;
/// Inspectors per inspection: at least two (never alone), at most a small team.
pub const TEAM_SIZE_MIN: u32 = 2;
pub const TEAM_SIZE_MAX: u32 = 8;
/// The rules' floor: no campaign draws less than 3% of the entities in its scope (比例不低于3%).
pub const DRAW_RATIO_FLOOR_BP: u32 = 300;
/// Ratios are in basis points (1/10,000) so they are exact integers in the log.
pub const BASIS_POINTS: u32 = 10_000;
/// A beacon value (a public random value, or a number a second person reads out).
pub const BEACON_CHARS_MAX: usize = 256;

wire_enum! {
    /// The risk class of a market entity (风险分类). Internal: never on a public route.
    pub enum RiskClass {
        High = "high",
        Normal = "normal",
        Low = "low",
    }
}

/// How a campaign picks inspectors (随机选派执法检查人员的方式), per the responsible bureau.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InspectorMode {
    /// 全局内随机: anyone of the bureau, its office or any of its stations.
    WholeBureau,
    /// 局机关与所随机: each team has at least one from the bureau's office and one from a station.
    OfficeAndStations,
    /// 若干所内随机: only inspectors of the named stations.
    Stations(Vec<String>),
    /// 单一所内随机: only inspectors of one station.
    Station(String),
}

/// One enforcement inspector in the directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inspector {
    pub id: String,
    pub name: String,
    /// The bureau (county or above) the inspector belongs to.
    pub bureau: BureauCode,
    /// The station (市场监管所) within it; `None` for the bureau's own office (局机关).
    pub station: Option<String>,
    /// Expertise tags (业务专长), sorted, matched against the items' required expertise.
    pub expertise: Vec<String>,
    /// Holds an administrative enforcement qualification (行政执法资格).
    pub qualified: bool,
    pub active: bool,
    /// When the inspector entered the directory, and when they left it.
    pub enrolled_at_ms: u64,
    pub retired_at_ms: Option<u64>,
}

/// One item of the inspection-item list (抽查事项清单), as the campaign's node resolved it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InspectionItem {
    pub code: String,
    pub name: String,
    /// The industries it applies to; empty for every industry.
    pub industries: Vec<String>,
    /// The expertise an inspector needs for it.
    pub expertise: String,
}

impl InspectionItem {
    pub fn applies_to(&self, industry: &str) -> bool {
        self.industries.is_empty() || self.industries.iter().any(|i| i == industry)
    }
}

/// The share of each risk class drawn, in basis points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskRatios {
    pub high_bp: u32,
    pub normal_bp: u32,
    pub low_bp: u32,
}

impl RiskRatios {
    pub fn of(&self, class: RiskClass) -> u32 {
        match class {
            RiskClass::High => self.high_bp,
            RiskClass::Normal => self.normal_bp,
            RiskClass::Low => self.low_bp,
        }
    }
}

/// How an entity's risk class is computed (configurable per deployment, carried in the
/// campaign so a draw can be recomputed anywhere): points for its credit status, industry,
/// region and history; at or above `high_from` is high, below `low_below` low.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskScoring {
    pub credit_points: Vec<(String, i32)>,
    pub industry_points: Vec<(String, i32)>,
    /// Points for entities within a region's subtree (the first matching region counts).
    pub region_points: Vec<(BureauCode, i32)>,
    pub points_per_finding: i32,
    pub points_per_complaint: i32,
    pub points_per_overdue_task: i32,
    pub high_from: i32,
    pub low_below: i32,
}

/// A campaign's committed parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignSpec {
    pub name: String,
    /// The organising bureau: it dispatches the inspections and publishes their results.
    pub bureau: BureauCode,
    pub items: Vec<InspectionItem>,
    /// Entities registered in this region's subtree.
    pub scope_region: BureauCode,
    /// A targeted campaign (定向抽查) names industries or risk classes; an untargeted one neither.
    pub targeted: bool,
    pub industries: Vec<String>,
    pub risk_classes: Vec<RiskClass>,
    pub ratios: RiskRatios,
    pub inspector_mode: InspectorMode,
    pub inspectors_per_inspection: u32,
    pub scoring: RiskScoring,
    /// The entity directory version the draw uses: the newest when the campaign was created.
    pub entity_directory: String,
    /// The inspections are due by then; without it, the deadline policy's period for
    /// inspections from the draw.
    pub complete_deadline_ms: Option<u64>,
}

/// The value fixed after the parameters were committed, by a second person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Beacon {
    pub value: String,
    pub entered_by: String,
    pub at_ms: u64,
}

/// What the ledger knows of an entity's past, as the draw's input: it raises the risk class,
/// and the last team that inspected it may not inspect it again next time.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EntityHistory {
    pub uscc: Uscc,
    /// Inspections and tasks that found a problem.
    pub findings: u32,
    pub complaints: u32,
    /// Tasks about it that missed a deadline.
    pub overdue_tasks: u32,
    /// The inspectors of its last inspection, sorted.
    pub last_team: Vec<String>,
}

/// Everything a draw depends on besides the entity directory; the ledger derives all of it
/// from its own state and refuses a draw computed from anything else.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawInputs {
    pub campaign: u64,
    pub spec: CampaignSpec,
    pub beacon: String,
    /// Active, qualified inspectors the mode allows, by id.
    pub pool: Vec<Inspector>,
    /// Declared conflicts of those inspectors: (inspector, USCC), sorted.
    pub conflicts: Vec<(String, Uscc)>,
    /// Histories of entities in scope, by USCC.
    pub histories: Vec<EntityHistory>,
}

impl DrawInputs {
    /// The draw's seed: SHA-256 over a version tag, the canonical encoding of every input, and
    /// the entity directory's hash (inside the spec). Nobody can choose it: the parameters are
    /// committed before the beacon, and the beacon is fixed once, by a second person.
    pub fn seed(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(b"xietong-double-random-v1\0");
        hasher.update(bincode::serialize(self).expect("draw inputs always serialize"));
        hasher.finalize().into()
    }
}

/// How many of a stratum (an item and a risk class) there were and were drawn.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stratum {
    pub item: String,
    pub class: RiskClass,
    pub population: u64,
    pub quota: u64,
}

/// One inspection of the draw: one entity, every item that fell on it (a joint inspection).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawnInspection {
    pub subject: Subject,
    pub industry: String,
    pub risk_class: RiskClass,
    /// Item codes, in the campaign's order.
    pub items: Vec<String>,
    /// Inspector ids, in the order drawn.
    pub inspectors: Vec<String>,
    /// The bureau responsible for the entity (its region's bureau): the task goes there.
    pub bureau: BureauCode,
    /// Drawn to bring the campaign up to the 3% floor, not by a stratum quota.
    pub top_up: bool,
}

/// An inspector the draw passed over for an entity because of a declared conflict (回避).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recusal {
    pub uscc: Uscc,
    pub inspector: String,
    pub reason: String,
}

/// A draw's result as the node computed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawResult {
    /// Hex of the seed.
    pub seed: String,
    /// Entities in the directory within the scope, before the items' industries.
    pub entities_in_scope: u64,
    /// Entities at least one item applies to: the population of the 3% floor.
    pub eligible: u64,
    pub strata: Vec<Stratum>,
    pub inspections: Vec<DrawnInspection>,
    pub recusals: Vec<Recusal>,
}

/// The committed draw: inputs and result, the proof that `xietong draw verify` checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawRecord {
    pub inputs: DrawInputs,
    pub result: DrawResult,
    pub ack_deadline_ms: u64,
    pub complete_deadline_ms: u64,
    pub drawn_at_ms: u64,
    pub drawn_by: String,
    /// The inspection tasks, in the order of `result.inspections`.
    pub tasks: Vec<TaskId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Campaign {
    pub id: u64,
    pub spec: CampaignSpec,
    pub created_by: String,
    pub created_at_ms: u64,
    pub beacon: Option<Beacon>,
    pub draw: Option<Box<DrawRecord>>,
}

/// One version of the entity directory: the file stays outside the log, its identity in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryVersion {
    pub number: u64,
    /// Hex SHA-256 of the file's bytes.
    pub sha256: String,
    pub entities: u64,
    pub bytes: u64,
    pub at_ms: u64,
    pub imported_by: String,
}

/// A declared conflict of interest (利害关系), kept on record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub inspector: String,
    pub uscc: Uscc,
    pub reason: String,
    pub declared_by: String,
    pub at_ms: u64,
}

wire_enum! {
    /// What happened to a published result.
    pub enum PublicationState {
        /// Entered, not yet published (the 20-working-day clock runs).
        Pending = "pending",
        Published = "published",
        /// Taken off the public routes.
        Withdrawn = "withdrawn",
    }
}

/// On an inspection task: its campaign, items, team, result and publication.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectionRecord {
    pub campaign: u64,
    pub campaign_name: String,
    pub items: Vec<InspectionItem>,
    pub inspectors: Vec<String>,
    pub risk_class: RiskClass,
    pub top_up: bool,
    /// When the result was entered (谁抽查、谁录入: by the inspecting bureau).
    pub result_entered_at_ms: Option<u64>,
    /// The result must be published by then (20 working days), computed by the accepting node.
    pub publish_deadline_ms: Option<u64>,
    pub publish_missed_deadline_ms: Option<u64>,
    pub published_at_ms: Option<u64>,
    pub withdrawn_at_ms: Option<u64>,
}

impl InspectionRecord {
    pub fn publication(&self) -> Option<PublicationState> {
        self.result_entered_at_ms?;
        Some(if self.withdrawn_at_ms.is_some() {
            PublicationState::Withdrawn
        } else if self.published_at_ms.is_some() {
            PublicationState::Published
        } else {
            PublicationState::Pending
        })
    }

    /// The organiser returned the task for rework: its result is no longer the inspection's
    /// result, so it leaves the public routes at once, and the result entered next waits for
    /// its own publication (一公开 publishes what the organiser reviewed, nothing else).
    pub fn returned_for_rework(&mut self) {
        self.result_entered_at_ms = None;
        self.publish_deadline_ms = None;
        self.published_at_ms = None;
        self.withdrawn_at_ms = None;
    }
}

/// What a programme command recorded, for its answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProgrammeRecord {
    EntityDirectory(DirectoryVersion),
    Inspector(Box<Inspector>),
    Conflict(Box<Conflict>),
    Campaign(Arc<Campaign>),
    /// Inspectors enrolled by one roster, in its order.
    Inspectors(Vec<Inspector>),
}

/// The programme's state in the ledger.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Programme {
    entity_directories: Vec<DirectoryVersion>,
    inspectors: BTreeMap<String, Inspector>,
    conflicts: BTreeMap<(String, Uscc), Conflict>,
    campaigns: BTreeMap<u64, Arc<Campaign>>,
    next_campaign: u64,
    /// The team of each entity's last inspection, with the entity's region.
    last_team: BTreeMap<Uscc, (BureauCode, Vec<String>)>,
    /// The draw inputs of each campaign whose beacon is fixed and which is not drawn yet,
    /// frozen when the beacon was fixed: once the beacon is known, no enrolment, retirement or
    /// declared conflict can change what is drawn (the draw's record keeps them after).
    sealed_inputs: BTreeMap<u64, DrawInputs>,
}

/// Commands of the programme (variants of `Action`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProgrammeAction {
    RecordEntityDirectory {
        sha256: String,
        entities: u64,
        bytes: u64,
    },
    EnrollInspector(Box<Inspector>),
    RetireInspector {
        id: String,
        note: String,
    },
    DeclareConflict {
        inspector: String,
        uscc: Uscc,
        reason: String,
    },
    CreateCampaign(Box<CampaignSpec>),
    FixBeacon {
        campaign: u64,
        value: String,
    },
    /// The draw computed by the accepting node, with the inspections' deadlines.
    RecordDraw {
        campaign: u64,
        result: Box<DrawResult>,
        ack_deadline_ms: u64,
        complete_deadline_ms: u64,
    },
    PublishResult {
        task: TaskId,
    },
    WithdrawResult {
        task: TaskId,
        note: String,
    },
    /// A roster of inspectors enrolled together: all of them, or none when one is refused.
    EnrollInspectors(Vec<Inspector>),
}

fn command_over(actor: &Actor, bureau: BureauCode, what: &str) -> Result<(), Rejection> {
    if actor.role == Role::Command && within(bureau, actor.bureau) {
        Ok(())
    } else {
        Err(Rejection::Forbidden(format!(
            "a {} user of bureau {} cannot {what} for bureau {bureau}",
            actor.role, actor.bureau
        )))
    }
}

fn labels(field: &str, values: &[String]) -> Result<(), Rejection> {
    if values.len() > LABELS_MAX {
        return Err(invalid(field, format!("has {} entries, at most {LABELS_MAX}", values.len())));
    }
    for value in values {
        validate::text(field, value, LABEL_CHARS_MAX, true, false)?;
    }
    Ok(())
}

pub fn is_hex_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The outcomes an inspection may have (抽查结果).
pub fn is_inspection_outcome(outcome: CompletionOutcome) -> bool {
    matches!(
        outcome,
        CompletionOutcome::NoProblemFound
            | CompletionOutcome::Corrected
            | CompletionOutcome::Penalized
            | CompletionOutcome::NotFoundAtAddress
            | CompletionOutcome::CaseOpened
    )
}

/// Outcomes that found a problem: they raise the entity's risk next time.
fn is_finding(outcome: CompletionOutcome) -> bool {
    matches!(
        outcome,
        CompletionOutcome::Corrected
            | CompletionOutcome::Penalized
            | CompletionOutcome::CaseOpened
            | CompletionOutcome::Warned
            | CompletionOutcome::NotFoundAtAddress
    )
}

/// Checks a campaign's parameters on their own (the API runs this too, for a fast 400).
pub fn check_spec(spec: &CampaignSpec) -> Result<(), Rejection> {
    validate::text("name", &spec.name, crate::limits::TITLE_CHARS_MAX, true, false)?;
    if !Regions::get().contains(spec.scope_region) || !within(spec.scope_region, spec.bureau) {
        return Err(invalid(
            "scope.region",
            format!("{} is not a region within the organising bureau {}", spec.scope_region, spec.bureau),
        ));
    }
    if spec.items.is_empty() || spec.items.len() > LABELS_MAX {
        return Err(invalid("items", format!("a campaign has 1 to {LABELS_MAX} inspection items")));
    }
    let codes: BTreeSet<&str> = spec.items.iter().map(|item| item.code.as_str()).collect();
    if codes.len() != spec.items.len() {
        return Err(invalid("items", "an item is listed twice"));
    }
    labels("scope.industries", &spec.industries)?;
    let restricted = !spec.industries.is_empty() || !spec.risk_classes.is_empty();
    if spec.targeted != restricted {
        return Err(invalid(
            "targeted",
            "a targeted campaign (定向抽查) names industries or risk classes; an untargeted one names neither",
        ));
    }
    for class in RiskClass::ALL {
        let ratio = spec.ratios.of(*class);
        let drawn_from = spec.risk_classes.is_empty() || spec.risk_classes.contains(class);
        if drawn_from && !(DRAW_RATIO_FLOOR_BP..=BASIS_POINTS).contains(&ratio) {
            return Err(invalid(
                &format!("ratios.{class}"),
                format!("{ratio} basis points: every class drawn from needs 3% to 100% (比例不低于3%)"),
            ));
        }
    }
    if !(TEAM_SIZE_MIN..=TEAM_SIZE_MAX).contains(&spec.inspectors_per_inspection) {
        return Err(invalid(
            "inspectors_per_inspection",
            format!("{TEAM_SIZE_MIN} to {TEAM_SIZE_MAX}: an inspector never inspects alone"),
        ));
    }
    match &spec.inspector_mode {
        InspectorMode::Stations(stations) if stations.is_empty() => {
            return Err(invalid("inspector_mode", "name the stations to draw from"))
        }
        InspectorMode::Stations(stations) => labels("inspector_mode.stations", stations)?,
        InspectorMode::Station(station) => {
            validate::text("inspector_mode.station", station, LABEL_CHARS_MAX, true, false)?
        }
        InspectorMode::WholeBureau | InspectorMode::OfficeAndStations => {}
    }
    if !is_hex_sha256(&spec.entity_directory) {
        return Err(invalid("entity_directory", "not a SHA-256 in hex"));
    }
    Ok(())
}

/// Checks an inspector entry on its own.
pub fn check_inspector(inspector: &Inspector) -> Result<(), Rejection> {
    validate::text("id", &inspector.id, INSPECTOR_ID_CHARS_MAX, true, false)?;
    if !inspector.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(invalid("id", "letters, digits, '-' and '_' only"));
    }
    validate::text("name", &inspector.name, INSPECTOR_NAME_CHARS_MAX, true, false)?;
    if !Regions::get().contains(inspector.bureau) {
        return Err(invalid("bureau", format!("{} is not a region code in GB/T 2260", inspector.bureau)));
    }
    if let Some(station) = &inspector.station {
        validate::text("station", station, LABEL_CHARS_MAX, true, false)?;
    }
    labels("expertise", &inspector.expertise)
}

impl Programme {
    pub fn entity_directory(&self) -> Option<&DirectoryVersion> {
        self.entity_directories.last()
    }

    pub fn entity_directories(&self) -> &[DirectoryVersion] {
        &self.entity_directories
    }

    pub fn inspectors(&self) -> impl Iterator<Item = &Inspector> {
        self.inspectors.values()
    }

    /// SHA-256 of the whole inspector directory as it stands (every entry, retired ones too):
    /// its version, for an auditor comparing two readings. A draw's seed covers the part of it
    /// that the draw used (`DrawInputs::pool`).
    pub fn inspector_directory_sha256(&self) -> String {
        hex(&Sha256::digest(bincode::serialize(&self.inspectors).expect("inspectors always serialize")))
    }

    pub fn campaign(&self, id: u64) -> Option<&Arc<Campaign>> {
        self.campaigns.get(&id)
    }

    /// Campaigns, newest first.
    pub fn campaigns(&self) -> impl Iterator<Item = &Arc<Campaign>> {
        self.campaigns.values().rev()
    }

    /// The inspectors a campaign may draw from: active, qualified, of a bureau within its scope
    /// (or the organiser's office), and allowed by its mode.
    pub fn inspector_pool(&self, spec: &CampaignSpec) -> Vec<Inspector> {
        let by_mode = |inspector: &Inspector| match &spec.inspector_mode {
            InspectorMode::WholeBureau | InspectorMode::OfficeAndStations => true,
            InspectorMode::Stations(stations) => inspector.station.as_ref().is_some_and(|s| stations.contains(s)),
            InspectorMode::Station(station) => inspector.station.as_ref() == Some(station),
        };
        self.inspectors
            .values()
            .filter(|i| i.active && i.qualified && within(i.bureau, spec.scope_region) && by_mode(i))
            .cloned()
            .collect()
    }
}

impl Ledger {
    pub fn programme(&self) -> &Programme {
        &self.programme
    }

    /// The inputs of campaign `id`'s draw: frozen when its beacon was fixed (what the node
    /// draws from, and what `apply` compares a proposed draw with), as the ledger stands now
    /// once it is drawn (its record keeps the inputs it was drawn from).
    pub fn draw_inputs(&self, id: u64) -> Result<DrawInputs, Rejection> {
        let campaign = self.programme.campaigns.get(&id).ok_or_else(|| Rejection::NoSuch(format!("campaign {id}")))?;
        if let Some(sealed) = self.programme.sealed_inputs.get(&id) {
            return Ok(sealed.clone());
        }
        self.live_draw_inputs(id, campaign)
    }

    /// The inputs as the ledger stands now: what the beacon freezes.
    fn live_draw_inputs(&self, id: u64, campaign: &Campaign) -> Result<DrawInputs, Rejection> {
        let beacon = campaign.beacon.as_ref().ok_or_else(|| {
            conflict(ConflictCode::NoBeacon, format!("campaign {id} has no beacon yet: a second person fixes it first"))
        })?;
        let spec = &campaign.spec;
        let pool = self.programme.inspector_pool(spec);
        let pool_ids: BTreeSet<&str> = pool.iter().map(|i| i.id.as_str()).collect();
        let conflicts = self
            .programme
            .conflicts
            .keys()
            .filter(|(inspector, _)| pool_ids.contains(inspector.as_str()))
            .cloned()
            .collect();
        Ok(DrawInputs {
            campaign: id,
            spec: spec.clone(),
            beacon: beacon.value.clone(),
            pool,
            conflicts,
            histories: self.entity_histories(spec.scope_region),
        })
    }

    /// What the ledger knows of the past of each entity registered within `region`.
    fn entity_histories(&self, region: BureauCode) -> Vec<EntityHistory> {
        let mut histories: BTreeMap<Uscc, EntityHistory> = BTreeMap::new();
        let empty = |uscc: &Uscc| EntityHistory {
            uscc: uscc.clone(),
            findings: 0,
            complaints: 0,
            overdue_tasks: 0,
            last_team: Vec::new(),
        };
        for task in self.tasks_newest_first(None) {
            let Some(uscc) = &task.subject.uscc else { continue };
            if !within(task.subject.region_code, region) {
                continue;
            }
            let found = task.outcome.is_some_and(is_finding);
            let complaint = task.source == Source::Complaint;
            let overdue = task.ack_missed_deadline_ms.is_some() || task.completion_missed_deadline_ms.is_some();
            if found || complaint || overdue {
                let history = histories.entry(uscc.clone()).or_insert_with(|| empty(uscc));
                history.findings += u32::from(found);
                history.complaints += u32::from(complaint);
                history.overdue_tasks += u32::from(overdue);
            }
        }
        for (uscc, (entity_region, team)) in &self.programme.last_team {
            if within(*entity_region, region) {
                histories.entry(uscc.clone()).or_insert_with(|| empty(uscc)).last_team = team.clone();
            }
        }
        histories.into_values().collect()
    }

    /// Enrols `inspectors` (a new id, or one whose earlier enrolment was retired), all of them
    /// or, when any is refused, none: every check runs before the directory changes.
    fn enroll_inspectors(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        inspectors: &[Inspector],
    ) -> Result<Vec<Inspector>, Rejection> {
        if inspectors.is_empty() || inspectors.len() > INSPECTORS_PER_ENROLMENT_MAX {
            return Err(invalid("inspectors", format!("1 to {INSPECTORS_PER_ENROLMENT_MAX} inspectors at once")));
        }
        let mut ids = BTreeSet::new();
        for inspector in inspectors {
            check_inspector(inspector)?;
            command_over(actor, inspector.bureau, "enrol inspectors")?;
            if !ids.insert(inspector.id.as_str()) {
                return Err(invalid("id", format!("inspector {} is listed twice", inspector.id)));
            }
            if self.programme.inspectors.get(&inspector.id).is_some_and(|i| i.active) {
                return Err(conflict(
                    ConflictCode::InspectorEnrolled,
                    format!("inspector {} is already in the directory", inspector.id),
                ));
            }
        }
        let new_ids = inspectors.iter().filter(|i| !self.programme.inspectors.contains_key(&i.id)).count();
        if self.programme.inspectors.len() + new_ids > INSPECTORS_MAX {
            return Err(Rejection::LimitReached(format!("{INSPECTORS_MAX} inspectors")));
        }
        let enrolled: Vec<Inspector> = inspectors
            .iter()
            .map(|inspector| {
                let mut entry = inspector.clone();
                entry.expertise.sort();
                entry.expertise.dedup();
                entry.active = true;
                entry.enrolled_at_ms = stamp_ms;
                entry.retired_at_ms = None;
                entry
            })
            .collect();
        for entry in &enrolled {
            self.programme.inspectors.insert(entry.id.clone(), entry.clone());
        }
        Ok(enrolled)
    }

    pub(super) fn apply_programme(&mut self, stamp_ms: u64, actor: &Actor, action: &ProgrammeAction) -> CommandResult {
        validate::actor(actor)?;
        match action {
            ProgrammeAction::RecordEntityDirectory { sha256, entities, bytes } => {
                command_over(actor, actor.bureau, "import the entity directory")?;
                if !is_hex_sha256(sha256) {
                    return Err(invalid("sha256", "not a SHA-256 in hex"));
                }
                if self.programme.entity_directory().is_some_and(|current| &current.sha256 == sha256) {
                    return Err(Rejection::NothingToRecord("this directory is already the current version".into()));
                }
                let version = DirectoryVersion {
                    number: self.programme.entity_directories.len() as u64 + 1,
                    sha256: sha256.clone(),
                    entities: *entities,
                    bytes: *bytes,
                    at_ms: stamp_ms,
                    imported_by: actor.user.clone(),
                };
                self.programme.entity_directories.push(version.clone());
                Ok(Applied::of_record(ProgrammeRecord::EntityDirectory(version), Vec::new()))
            }
            ProgrammeAction::EnrollInspector(inspector) => {
                let mut enrolled = self.enroll_inspectors(stamp_ms, actor, std::slice::from_ref(&**inspector))?;
                let entry = enrolled.pop().expect("one inspector in, one enrolled");
                Ok(Applied::of_record(ProgrammeRecord::Inspector(Box::new(entry)), Vec::new()))
            }
            ProgrammeAction::EnrollInspectors(inspectors) => {
                let enrolled = self.enroll_inspectors(stamp_ms, actor, inspectors)?;
                Ok(Applied::of_record(ProgrammeRecord::Inspectors(enrolled), Vec::new()))
            }
            ProgrammeAction::RetireInspector { id, note } => {
                validate::note(note, true)?;
                let inspector = self
                    .programme
                    .inspectors
                    .get_mut(id)
                    .filter(|i| i.active)
                    .ok_or_else(|| Rejection::NoSuch(format!("active inspector {id}")))?;
                command_over(actor, inspector.bureau, "retire inspectors")?;
                inspector.active = false;
                inspector.retired_at_ms = Some(stamp_ms);
                Ok(Applied::of_record(ProgrammeRecord::Inspector(Box::new(inspector.clone())), Vec::new()))
            }
            ProgrammeAction::DeclareConflict { inspector, uscc, reason } => {
                validate::note(reason, true)?;
                let found = self
                    .programme
                    .inspectors
                    .get(inspector)
                    .ok_or_else(|| Rejection::NoSuch(format!("inspector {inspector}")))?;
                let allowed =
                    matches!(actor.role, Role::Command | Role::Operator) && within(found.bureau, actor.bureau);
                if !allowed {
                    return Err(Rejection::Forbidden(format!(
                        "bureau {} cannot declare conflicts of inspectors of bureau {}",
                        actor.bureau, found.bureau
                    )));
                }
                let key = (inspector.clone(), uscc.clone());
                if self.programme.conflicts.contains_key(&key) {
                    return Err(Rejection::NothingToRecord(format!(
                        "{inspector} has declared a conflict with {}",
                        uscc.as_str()
                    )));
                }
                if self.programme.conflicts.len() >= CONFLICTS_MAX {
                    return Err(Rejection::LimitReached(format!("{CONFLICTS_MAX} conflicts")));
                }
                let conflict = Conflict {
                    inspector: inspector.clone(),
                    uscc: uscc.clone(),
                    reason: reason.clone(),
                    declared_by: actor.user.clone(),
                    at_ms: stamp_ms,
                };
                self.programme.conflicts.insert(key, conflict.clone());
                Ok(Applied::of_record(ProgrammeRecord::Conflict(Box::new(conflict)), Vec::new()))
            }
            ProgrammeAction::CreateCampaign(spec) => self.create_campaign(stamp_ms, actor, spec),
            ProgrammeAction::FixBeacon { campaign, value } => self.fix_beacon(stamp_ms, actor, *campaign, value),
            ProgrammeAction::RecordDraw { campaign, result, ack_deadline_ms, complete_deadline_ms } => {
                self.record_draw(stamp_ms, actor, *campaign, result, *ack_deadline_ms, *complete_deadline_ms)
            }
            ProgrammeAction::PublishResult { task } => self.publication_step(stamp_ms, actor, *task, None),
            ProgrammeAction::WithdrawResult { task, note } => self.publication_step(stamp_ms, actor, *task, Some(note)),
        }
    }

    fn create_campaign(&mut self, stamp_ms: u64, actor: &Actor, spec: &CampaignSpec) -> CommandResult {
        check_spec(spec)?;
        command_over(actor, spec.bureau, "plan campaigns")?;
        let current = self
            .programme
            .entity_directory()
            .ok_or_else(|| conflict(ConflictCode::NoDirectory, "no entity directory is imported yet"))?;
        if current.sha256 != spec.entity_directory {
            return Err(conflict(
                ConflictCode::DirectoryChanged,
                format!("the entity directory changed: version {} ({}) is current", current.number, current.sha256),
            ));
        }
        if self.programme.campaigns.len() >= CAMPAIGNS_MAX {
            return Err(Rejection::LimitReached(format!("{CAMPAIGNS_MAX} campaigns")));
        }
        self.programme.next_campaign += 1;
        let campaign = Arc::new(Campaign {
            id: self.programme.next_campaign,
            spec: spec.clone(),
            created_by: actor.user.clone(),
            created_at_ms: stamp_ms,
            beacon: None,
            draw: None,
        });
        self.programme.campaigns.insert(campaign.id, campaign.clone());
        Ok(Applied::of_record(ProgrammeRecord::Campaign(campaign), Vec::new()))
    }

    fn fix_beacon(&mut self, stamp_ms: u64, actor: &Actor, id: u64, value: &str) -> CommandResult {
        validate::text("beacon", value, BEACON_CHARS_MAX, true, false)?;
        let campaign =
            self.programme.campaigns.get_mut(&id).ok_or_else(|| Rejection::NoSuch(format!("campaign {id}")))?;
        command_over(actor, campaign.spec.bureau, "fix a campaign's beacon")?;
        if campaign.beacon.is_some() {
            return Err(conflict(
                ConflictCode::BeaconFixed,
                format!("campaign {id}'s beacon is fixed already; it is fixed once"),
            ));
        }
        if campaign.created_by == actor.user {
            return Err(Rejection::Forbidden(
                "the beacon is fixed by a second person, not by who planned the campaign".into(),
            ));
        }
        let shared = Arc::make_mut(campaign);
        shared.beacon = Some(Beacon { value: value.to_owned(), entered_by: actor.user.clone(), at_ms: stamp_ms });
        let campaign = campaign.clone();
        let inputs = self.live_draw_inputs(id, &campaign)?;
        self.programme.sealed_inputs.insert(id, inputs);
        Ok(Applied::of_record(ProgrammeRecord::Campaign(campaign), Vec::new()))
    }

    fn record_draw(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        id: u64,
        result: &DrawResult,
        ack_deadline_ms: u64,
        complete_deadline_ms: u64,
    ) -> CommandResult {
        let campaign = self.programme.campaigns.get(&id).ok_or_else(|| Rejection::NoSuch(format!("campaign {id}")))?;
        command_over(actor, campaign.spec.bureau, "draw campaigns")?;
        if campaign.draw.is_some() {
            return Err(conflict(ConflictCode::CampaignDrawn, format!("campaign {id} is drawn already")));
        }
        validate::dispatch(
            campaign.spec.bureau,
            campaign.spec.bureau,
            stamp_ms,
            ack_deadline_ms,
            complete_deadline_ms,
        )?;
        let inputs = self.draw_inputs(id)?;
        // Against the conflicts frozen with the beacon: one declared once the beacon is public
        // could otherwise veto the draw until the selection suits (finding 10's kin).
        check_draw(&inputs, result)?;
        let spec = inputs.spec.clone();

        let draw_actor = actor.clone();
        let mut tasks = Vec::with_capacity(result.inspections.len());
        for inspection in &result.inspections {
            let task = self.inspection_task(
                stamp_ms,
                &draw_actor,
                id,
                &spec,
                inspection,
                ack_deadline_ms,
                complete_deadline_ms,
            );
            let task = Arc::new(task);
            self.insert_task(task.clone());
            let mut team = inspection.inspectors.clone();
            team.sort();
            let uscc = inspection.subject.uscc.clone().expect("checked: every drawn entity has a USCC");
            self.programme.last_team.insert(uscc, (inspection.subject.region_code, team));
            tasks.push(task);
        }
        let record = DrawRecord {
            inputs,
            result: result.clone(),
            ack_deadline_ms,
            complete_deadline_ms,
            drawn_at_ms: stamp_ms,
            drawn_by: actor.user.clone(),
            tasks: tasks.iter().map(|t| t.id).collect(),
        };
        self.programme.sealed_inputs.remove(&id);
        let campaign = self.programme.campaigns.get_mut(&id).expect("found above");
        Arc::make_mut(campaign).draw = Some(Box::new(record));
        Ok(Applied::of_record(ProgrammeRecord::Campaign(campaign.clone()), tasks))
    }

    #[allow(clippy::too_many_arguments)]
    fn inspection_task(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        campaign: u64,
        spec: &CampaignSpec,
        inspection: &DrawnInspection,
        ack_deadline_ms: u64,
        complete_deadline_ms: u64,
    ) -> Task {
        let items: Vec<InspectionItem> =
            spec.items.iter().filter(|item| inspection.items.contains(&item.code)).cloned().collect();
        let item_names: Vec<&str> = items.iter().map(|item| item.name.as_str()).collect();
        let severity = if inspection.risk_class == RiskClass::High { Severity::High } else { Severity::Normal };
        let new_task = NewTask {
            kind: TaskKind::Inspection,
            severity,
            title: format!("双随机抽查：{}", spec.name),
            description: format!("抽查事项：{}", item_names.join("、")),
            subject: inspection.subject.clone(),
            source: Source::SpotCheck,
            origin_bureau: spec.bureau,
            assignee_bureau: Some(inspection.bureau),
            // Drawn within the organiser's scope: inspected here, never forwarded.
            routing: Routing::Keep,
        };
        let mut task = self.register(stamp_ms, actor, &new_task);
        let dispatch = Transition::Dispatch { assignee: inspection.bureau, ack_deadline_ms, complete_deadline_ms };
        let note = format!("执法检查人员：{}", inspection.inspectors.join("、"));
        record_transition(&mut task, stamp_ms, actor, &note, &dispatch, TaskState::Dispatched)
            .expect("a dispatch is a change in place");
        task.inspection = Some(InspectionRecord {
            campaign,
            campaign_name: spec.name.clone(),
            items,
            inspectors: inspection.inspectors.clone(),
            risk_class: inspection.risk_class,
            top_up: inspection.top_up,
            result_entered_at_ms: None,
            publish_deadline_ms: None,
            publish_missed_deadline_ms: None,
            published_at_ms: None,
            withdrawn_at_ms: None,
        });
        task
    }

    /// Publishes (note `None`) or withdraws an inspection result: the organiser's command centre.
    fn publication_step(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        task_id: TaskId,
        note: Option<&String>,
    ) -> CommandResult {
        if let Some(note) = note {
            validate::note(note, true)?;
        }
        let action = if note.is_some() { TaskAction::Withdraw } else { TaskAction::Publish };
        let task = self.task(task_id).filter(|t| access::can_see(actor, t)).ok_or(Rejection::TaskNotFound(task_id))?;
        access::may_write(actor)?;
        policy::open(task, action)?;
        policy::may_take(actor, task, action)?;
        let (action, text) = match note {
            None => (TimelineAction::Publish, String::new()),
            Some(note) => (TimelineAction::Withdraw, note.clone()),
        };
        timeline_has_room(task)?;
        let shared = self.task_mut(task_id).expect("found above");
        let task = Arc::make_mut(shared);
        let record = task.inspection.as_mut().expect("an inspection task");
        match action {
            TimelineAction::Publish => record.published_at_ms = Some(stamp_ms),
            _ => record.withdrawn_at_ms = Some(stamp_ms),
        }
        let assignee = task.assignee_bureau;
        push_entry(task, stamp_ms, actor, action, text, assignee);
        Ok(Applied::of_task(shared.clone()))
    }
}

/// A rule of the draw that a proposed result breaks: refused, never asserted, since the result
/// comes from a node and a bad one must not stop the replicas.
fn rule(holds: bool, rule: &str) -> Result<(), Rejection> {
    if holds {
        Ok(())
    } else {
        Err(invalid("draw", format!("the result breaks a rule of the draw: {rule}")))
    }
}

/// The rules a draw's result must keep, checked against the inputs the ledger derived: the
/// seed, teams (size, pool, qualification by expertise, conflicts with recusals on record, no
/// member of the entity's last team, the office-and-stations mix), items, strata quotas and the
/// 3% floor.
pub fn check_draw(inputs: &DrawInputs, result: &DrawResult) -> Result<(), Rejection> {
    let stale = |what: &str| conflict(ConflictCode::DrawOutdated, format!("{what}; draw again"));
    if result.seed != hex(&inputs.seed()) {
        return Err(stale("the draw was computed from other inputs (inspectors, history or beacon changed)"));
    }
    if result.inspections.len() > DRAW_INSPECTIONS_MAX {
        return Err(Rejection::LimitReached(format!(
            "a draw creates at most {DRAW_INSPECTIONS_MAX} inspections ({} drawn): split the campaign by region",
            result.inspections.len()
        )));
    }
    let floor = ceil_ratio(result.eligible, DRAW_RATIO_FLOOR_BP);
    rule(result.inspections.len() as u64 >= floor.min(result.eligible), "a draw never falls under the 3% floor")?;
    let spec = &inputs.spec;
    let pool: BTreeMap<&str, &Inspector> = inputs.pool.iter().map(|i| (i.id.as_str(), i)).collect();
    let histories: BTreeMap<&Uscc, &EntityHistory> = inputs.histories.iter().map(|h| (&h.uscc, h)).collect();
    let mut entities = BTreeSet::new();
    for inspection in &result.inspections {
        let uscc = inspection.subject.uscc.as_ref().ok_or_else(|| invalid("inspections", "an entity without USCC"))?;
        rule(entities.insert(uscc), "an entity is inspected once per draw (items merge)")?;
        let subject = &inspection.subject;
        validate::text("subject.name", &subject.name, crate::limits::SUBJECT_NAME_CHARS_MAX, true, false)?;
        validate::text("subject.address", &subject.address, crate::limits::SUBJECT_ADDRESS_CHARS_MAX, false, false)?;
        rule(within(inspection.subject.region_code, spec.scope_region), "drawn within the scope")?;
        rule(inspection.bureau == inspection.subject.region_code, "the entity's own bureau inspects")?;
        let items: Vec<&InspectionItem> = spec.items.iter().filter(|i| inspection.items.contains(&i.code)).collect();
        rule(!items.is_empty() && items.len() == inspection.items.len(), "items from the campaign")?;
        rule(inspection.inspectors.len() as u32 == spec.inspectors_per_inspection, "a full team")?;
        let team: BTreeSet<&String> = inspection.inspectors.iter().collect();
        rule(team.len() == inspection.inspectors.len(), "an inspector once per team")?;
        let last_team = histories.get(uscc).map(|h| h.last_team.as_slice()).unwrap_or_default();
        let mut office = false;
        let mut station = false;
        for id in &inspection.inspectors {
            let inspector = pool.get(id.as_str()).ok_or_else(|| stale("an inspector left the pool"))?;
            rule(inspector.bureau == inspection.bureau, "inspectors of the responsible bureau")?;
            rule(
                items.iter().any(|item| inspector.expertise.contains(&item.expertise)),
                "every inspector has expertise for an item",
            )?;
            let conflicted = inputs.conflicts.binary_search(&(id.clone(), uscc.clone())).is_ok();
            rule(!conflicted, "no inspector with a declared conflict")?;
            rule(!last_team.contains(id), "no inspector of the entity's last team")?;
            office |= inspector.station.is_none();
            station |= inspector.station.is_some();
        }
        for item in &items {
            rule(
                inspection.inspectors.iter().any(|id| pool[id.as_str()].expertise.contains(&item.expertise)),
                "the team covers every item's expertise",
            )?;
        }
        if spec.inspector_mode == InspectorMode::OfficeAndStations {
            rule(office && station, "an office member and a station member")?;
        }
    }
    for recusal in &result.recusals {
        rule(
            inputs.conflicts.binary_search(&(recusal.inspector.clone(), recusal.uscc.clone())).is_ok(),
            "a recusal rests on a declared conflict",
        )?;
    }
    for stratum in &result.strata {
        let ratio = spec.ratios.of(stratum.class);
        rule(stratum.quota == ceil_ratio(stratum.population, ratio), "quota = ratio of the population, rounded up")?;
        let drawn = result
            .inspections
            .iter()
            .filter(|i| !i.top_up && i.risk_class == stratum.class && i.items.contains(&stratum.item))
            .count() as u64;
        rule(drawn == stratum.quota, "each stratum drew its quota")?;
    }
    Ok(())
}

/// `population × ratio`, rounded up: a stratum of 10 at 3% draws 1, never 0.
pub fn ceil_ratio(population: u64, ratio_bp: u32) -> u64 {
    (population * u64::from(ratio_bp)).div_ceil(u64::from(BASIS_POINTS))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A published result as the public sees it (一公开): built field by field; nothing internal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicResult {
    pub task: TaskId,
    pub campaign: u64,
    pub campaign_name: String,
    pub uscc: Option<Uscc>,
    pub entity_name: String,
    pub region_code: BureauCode,
    pub items: Vec<String>,
    pub outcome: CompletionOutcome,
    pub inspected_at_ms: u64,
    pub published_at_ms: u64,
    pub organiser: BureauCode,
}

impl PublicResult {
    pub fn of(task: &Task) -> Option<PublicResult> {
        let record = task.inspection.as_ref()?;
        let settled = matches!(task.state, TaskState::Completed | TaskState::Closed);
        if !settled || record.publication() != Some(PublicationState::Published) {
            return None;
        }
        Some(PublicResult {
            task: task.id,
            campaign: record.campaign,
            campaign_name: record.campaign_name.clone(),
            uscc: task.subject.uscc.clone(),
            entity_name: task.subject.name.clone(),
            region_code: task.subject.region_code,
            items: record.items.iter().map(|item| item.name.clone()).collect(),
            outcome: task.outcome?,
            inspected_at_ms: record.result_entered_at_ms?,
            published_at_ms: record.published_at_ms?,
            organiser: task.origin_bureau,
        })
    }
}
