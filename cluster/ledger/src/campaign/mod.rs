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
//!
//! This module holds the programme's record types and limits; `checks` the checks of its
//! inputs, `apply` the ledger's commands, `draw_rules` the rules a draw's result keeps,
//! `public` what the public sees.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::bureau::{BureauCode, Regions};
use super::task::{wire_enum, CompletionOutcome, Subject, TaskId};
use super::uscc::Uscc;

pub mod annual_plan;
mod apply;
mod checks;
pub mod departments;
pub mod draw_parts;
mod draw_rules;
pub mod item_list;
pub mod plan_filing;
pub mod plan_handdown;
mod public;
pub mod register;
pub mod risk_files;

pub(crate) use checks::is_finding;
pub use checks::{
    check_inspector, check_spec, draws_a_class_thinly, is_hex_sha256, is_inspection_outcome, needs_follow_up,
};
pub use draw_parts::{DrawHeader, DrawSummary, DrawsInParts};
pub use draw_rules::{check_draw, check_result};
pub use public::PublicResult;

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
/// Inspections a draw in one entry (`ProgrammeAction::RecordDraw`, the form before draws in
/// parts) may create as tasks; a draw in parts (`draw_parts`) takes a province's.
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
/// The campaign an inspection received from another group's draw names (`InspectionRecord`):
/// none of this group's, whose ids count from 1.
pub const CAMPAIGN_ELSEWHERE: u64 = 0;
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
    /// The yearly cap the beacon froze (`risk_files::YearCap`): the entities it names are not
    /// drawn. Not in the encoding: cores written before caps hold inputs without it, so the
    /// ledger keeps it beside them (`RiskFiles`) and puts it back when a core is decoded
    /// (`Programme::restore_year_caps`); a proof carries it as `year_cap`.
    #[serde(skip)]
    pub year_cap: Option<risk_files::YearCap>,
}

impl DrawInputs {
    /// The draw's seed: SHA-256 over a version tag, the canonical encoding of every input, and
    /// the entity directory's hash (inside the spec). Nobody can choose it: the parameters are
    /// committed before the beacon, and the beacon is fixed once, by a second person.
    /// A draw under a yearly cap hashes the cap after the rest (v3), so a draw without one keeps
    /// the seed it always had.
    pub fn seed(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        match &self.year_cap {
            None => hasher.update(b"xietong-double-random-v2\0"),
            Some(_) => hasher.update(b"xietong-double-random-v3\0"),
        }
        hasher.update(crate::codec::encode(self).expect("draw inputs always encode"));
        if let Some(cap) = &self.year_cap {
            hasher.update(crate::codec::encode(cap).expect("a year cap always encodes"));
        }
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
    /// The version of the item list a change made.
    ItemList(Box<item_list::ItemListVersion>),
    /// A plan as a change left it, and the version the change made.
    AnnualPlan(Box<(annual_plan::AnnualPlan, annual_plan::PlanVersion)>),
    /// What became of each change of a batch of the register's feed, in its order.
    RegisterChanges(Vec<register::ChangeOutcome>),
    /// The yearly cap as a change left it (none: lifted).
    InspectionCap(Option<risk_files::InspectionCap>),
    /// A child group's plan as this group filed it.
    PlanFiled(Box<plan_filing::FiledPlan>),
    /// A department as its registration left it.
    Department(Box<departments::Department>),
}

impl ProgrammeRecord {
    /// The record as its encoding keeps it: a campaign's draw inputs without their yearly cap
    /// (`DrawInputs::year_cap`, left out of the encoding), so that a table of answers read back
    /// from a core is the table kept in memory.
    pub(crate) fn as_encoded(&self) -> ProgrammeRecord {
        match self {
            ProgrammeRecord::Campaign(campaign)
                if campaign.draw.as_ref().is_some_and(|draw| draw.inputs.year_cap.is_some()) =>
            {
                let mut kept = (**campaign).clone();
                if let Some(draw) = kept.draw.as_mut() {
                    draw.inputs.year_cap = None;
                }
                ProgrammeRecord::Campaign(Arc::new(kept))
            }
            other => other.clone(),
        }
    }
}

/// The programme's year: the inspection-item list and the annual plans. The ledger core's last
/// field (store format 6).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Planning {
    pub(crate) item_list: item_list::ItemList,
    pub(crate) plans: annual_plan::AnnualPlans,
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
    /// A campaign under the rule that the 3% floor holds on the total drawn, a class drawn
    /// more thinly (`check_spec`). `CreateCampaign` keeps the floor on every class it was
    /// committed under, so a log replays as it applied; a build before this variant cannot
    /// decode it and stops, where it would have refused the campaign and parted from the group
    /// (proposed only when every member reads `draw-floor-on-total-v1`).
    CreateCampaignOnTotal(Box<CampaignSpec>),
    /// A change of the inspection-item list (`item_list`); proposed only when every member
    /// reads `item-list-v1`.
    ItemList(Box<item_list::ItemListAction>),
    /// The follow-up task of an inspection whose result found something to follow
    /// (`corrected`: 整改复查; `case_opened`: 立案查处), for the bureau with jurisdiction, with
    /// the accepting node's deadlines. Proposed by the node in the same entry as the completion
    /// that entered the result, so the two commit together; once per inspection (proposed only
    /// when every member reads `follow-up-v1`).
    OpenFollowUp {
        inspection: TaskId,
        ack_deadline_ms: u64,
        complete_deadline_ms: u64,
    },
    /// A change of an annual plan (`annual_plan`); proposed only when every member reads
    /// `annual-plan-v1`.
    AnnualPlan(Box<annual_plan::PlanAction>),
    /// A campaign that carries out batch `batch` of its province's plan of `year`, under the
    /// floor on the total (`CreateCampaignOnTotal`) or per class.
    CreateCampaignInBatch {
        spec: Box<CampaignSpec>,
        floor_on_total: bool,
        year: i32,
        batch: u32,
    },
    /// An entity directory imported whole as the live register's base: it holds the journal's
    /// changes up to `through` (those recorded when its upload began, `register`). Proposed, in
    /// place of `RecordEntityDirectory`, only when every member reads `register-feed-v1`, as
    /// are the three below.
    ImportRegister {
        sha256: String,
        entities: u64,
        bytes: u64,
        through: u64,
    },
    /// A batch of the registration system's changes, from its source (`Role::Source`).
    RecordRegisterChanges(Vec<register::RegisterChange>),
    /// The current directory with the journal's changes up to `through` folded in, computed by
    /// the accepting node: the next directory version.
    FreezeRegister(Box<register::Freeze>),
    /// Fixes the beacon like `FixBeacon`, and the campaign draws from the directory version
    /// current at that moment (the register frozen just before), not the one it was planned on.
    FixBeaconOnRegister {
        campaign: u64,
        value: String,
    },
    /// The header of a draw committed in parts (`draw_parts`): the result less its
    /// inspections, and each part's hash and counts. Proposed only when every member reads
    /// `draw-in-parts-v1`, as is the command below.
    BeginDrawInParts(Box<DrawHeader>),
    /// Part `part` of a draw begun in parts: its inspections, whose tasks it creates, each
    /// worked here or handed to the group hosting its bureau (`placements`, one each).
    RecordDrawPart {
        campaign: u64,
        part: u32,
        inspections: Vec<DrawnInspection>,
        placements: Vec<draw_parts::DrawPlacement>,
    },
    /// The result of a drawn inspection handed to another group, as that group reported it
    /// (the mirror in the same entry): the organiser's record takes it and starts the
    /// publication clock, with the accepting node's deadline. Proposed by the node with the
    /// status report that completes it.
    EnterReportedResult {
        task: TaskId,
        publish_deadline_ms: u64,
    },
    /// The entities' risk files turned on, or the yearly cap set (`risk_files`); proposed only
    /// when every member reads `risk-files-v1`.
    RiskFiles(risk_files::RiskFilesAction),
    /// A child group's published plan filed here, or the version of this group's own plan its
    /// parent took (`plan_filing`); proposed only when every member reads `plan-filing-v1`.
    PlanFiling(plan_filing::PlanFilingAction),
    /// A department registered, its item listed, its inspectors enrolled, or its part of a
    /// joint inspection entered (`departments`); proposed only when every member reads
    /// `departments-v1`.
    Departments(departments::DepartmentAction),
    /// A province's published plan handed down to this group, the version a child group took,
    /// or a child group's progress on it (`plan_handdown`); proposed only when every member
    /// reads `plan-handdown-v1`.
    PlanHandDown(plan_handdown::PlanHandDownAction),
}

impl Programme {
    /// Puts back the yearly cap of every draw's inputs (frozen or committed), which their
    /// encoding leaves out (`DrawInputs::year_cap`), once a core is decoded.
    pub(crate) fn restore_year_caps(&mut self, files: &risk_files::RiskFiles) {
        for (id, inputs) in &mut self.sealed_inputs {
            inputs.year_cap = files.year_cap(*id).cloned();
        }
        for (id, campaign) in &mut self.campaigns {
            if campaign.draw.is_some() && files.year_cap(*id).is_some() {
                let drawn = Arc::make_mut(campaign).draw.as_mut().expect("checked: drawn");
                drawn.inputs.year_cap = files.year_cap(*id).cloned();
            }
        }
    }

    /// Every draw's inputs carry the cap its beacon froze, and only that; a cap is frozen only
    /// for a campaign whose beacon is fixed.
    pub(crate) fn check_year_caps(&self, files: &risk_files::RiskFiles) -> Result<(), String> {
        for id in files.campaigns_capped() {
            let fixed = self.campaigns.get(&id).is_some_and(|campaign| campaign.beacon.is_some());
            if !fixed {
                return Err(format!("a yearly cap is frozen for campaign {id}, whose beacon is not fixed"));
            }
        }
        let drawn = self.campaigns.iter().filter_map(|(id, c)| c.draw.as_ref().map(|draw| (id, &draw.inputs)));
        for (id, inputs) in self.sealed_inputs.iter().chain(drawn) {
            if inputs.year_cap.as_ref() != files.year_cap(*id) {
                return Err(format!("campaign {id}'s inputs carry another yearly cap than the one its beacon froze"));
            }
        }
        Ok(())
    }

    /// Whether the core keeps no last team (they are in the risk files once those are kept).
    pub(crate) fn last_teams_empty(&self) -> bool {
        self.last_team.is_empty()
    }

    /// The programme's own invariants, and those between it and the tasks (`task` finds one by
    /// id): for `Ledger::check_invariants`, so a programme decoded from outside is checked too.
    pub(crate) fn check(
        &self,
        task: impl Fn(TaskId) -> Option<std::sync::Arc<crate::task::Task>>,
    ) -> Result<(), String> {
        macro_rules! ensure {
            ($condition:expr, $($reason:tt)+) => {
                if !$condition {
                    return Err(format!($($reason)+));
                }
            };
        }
        for (position, version) in self.entity_directories.iter().enumerate() {
            ensure!(version.number == position as u64 + 1, "entity directory versions are numbered from 1");
            ensure!(is_hex_sha256(&version.sha256), "entity directory {} is named by a SHA-256", version.number);
        }
        ensure!(self.inspectors.len() <= INSPECTORS_MAX, "too many inspectors");
        for (id, inspector) in &self.inspectors {
            ensure!(*id == inspector.id, "inspector {} is filed as {id}", inspector.id);
            ensure!(inspector.active == inspector.retired_at_ms.is_none(), "inspector {id} is active or retired");
        }
        ensure!(self.conflicts.len() <= CONFLICTS_MAX, "too many declared conflicts");
        for ((inspector, uscc), conflict) in &self.conflicts {
            ensure!(
                conflict.inspector == *inspector && conflict.uscc == *uscc,
                "a conflict is filed under another inspector or entity"
            );
        }
        ensure!(self.campaigns.len() <= CAMPAIGNS_MAX, "too many campaigns");
        for (id, campaign) in &self.campaigns {
            ensure!(*id == campaign.id, "campaign {} is filed as {id}", campaign.id);
            ensure!(*id >= 1 && *id <= self.next_campaign, "campaign {id} did not come from the counter");
            let sealed = self.sealed_inputs.contains_key(id);
            ensure!(
                sealed == (campaign.beacon.is_some() && campaign.draw.is_none()),
                "campaign {id}'s inputs are frozen exactly while its beacon is fixed and it is not drawn"
            );
            if let Some(draw) = &campaign.draw {
                ensure!(campaign.beacon.is_some(), "campaign {id} was drawn without a beacon");
                ensure!(
                    draw.tasks.len() == draw.result.inspections.len(),
                    "campaign {id}'s draw has one task per inspection"
                );
                for task_id in &draw.tasks {
                    let inspection = task(*task_id).and_then(|t| t.inspection.clone());
                    ensure!(
                        inspection.is_some_and(|i| i.campaign == *id),
                        "campaign {id}'s draw names task {task_id}, which is not its inspection"
                    );
                }
            }
        }
        for id in self.sealed_inputs.keys() {
            ensure!(self.campaigns.contains_key(id), "frozen draw inputs of a missing campaign {id}");
        }
        Ok(())
    }

    pub fn entity_directory(&self) -> Option<&DirectoryVersion> {
        self.entity_directories.last()
    }

    pub fn entity_directories(&self) -> &[DirectoryVersion] {
        &self.entity_directories
    }

    /// The directory's inspector of this id, retired ones included.
    pub fn inspector(&self, id: &str) -> Option<&Inspector> {
        self.inspectors.get(id)
    }

    pub fn inspectors(&self) -> impl Iterator<Item = &Inspector> {
        self.inspectors.values()
    }

    /// SHA-256 of the whole inspector directory as it stands (every entry, retired ones too):
    /// its version, for an auditor comparing two readings. A draw's seed covers the part of it
    /// that the draw used (`DrawInputs::pool`).
    pub fn inspector_directory_sha256(&self) -> String {
        hex(&Sha256::digest(crate::codec::encode(&self.inspectors).expect("inspectors always encode")))
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
    /// The inspectors a campaign draws from: the bureau's own staff of the scope its mode
    /// allows, and the inspectors of the scope of each department whose item it has (a joint
    /// campaign, `departments`), whatever the mode.
    pub fn inspector_pool(
        &self,
        regions: &Regions,
        spec: &CampaignSpec,
        departments: &departments::Departments,
    ) -> Vec<Inspector> {
        let by_mode = |inspector: &Inspector| match &spec.inspector_mode {
            InspectorMode::WholeBureau | InspectorMode::OfficeAndStations => true,
            InspectorMode::Stations(stations) => inspector.station.as_ref().is_some_and(|s| stations.contains(s)),
            InspectorMode::Station(station) => inspector.station.as_ref() == Some(station),
        };
        let joins = |inspector: &Inspector| match departments.of_inspector(&inspector.id) {
            None => by_mode(inspector),
            Some(code) => {
                let tag = departments::department_tag(code);
                spec.items.iter().any(|item| item.expertise == tag)
            }
        };
        self.inspectors
            .values()
            .filter(|i| i.active && i.qualified && regions.is_within(i.bureau, spec.scope_region) && joins(i))
            .cloned()
            .collect()
    }
}

/// `population × ratio`, rounded up: a stratum of 10 at 3% draws 1, never 0.
pub fn ceil_ratio(population: u64, ratio_bp: u32) -> u64 {
    (population * u64::from(ratio_bp)).div_ceil(u64::from(BASIS_POINTS))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
