//! The ledger's commands (the payload of Raft log entries) and their results.
//!
//! **Architecture invariant:** time enters the ledger only as the `stamp_ms` of a `Command`,
//! stamped by the node that accepted the request; ids come from the ledger's counters or the client.
//! The log format is a compatibility surface: old entries must stay readable.

use serde::{Deserialize, Serialize};

use super::bureau::BureauCode;
use super::campaign::{ProgrammeAction, ProgrammeRecord};
use super::complaint::{ComplaintStep, NewComplaint};
use super::federation::{Message, Placement, Receipt, Routing, StatusReport};
use super::intake::Signal;
use super::policy::TaskAction;
use super::task::{
    wire_enum, CompletionOutcome, DeadlineKind, Severity, Source, Subject, Task, TaskId, TaskKind, TaskState,
};

wire_enum! {
    /// What a user may do; mapped from the bearer token in config.
    pub enum Role {
        /// Command-centre staff: create and dispatch, review (close/return), cancel, within the
        /// bureau's subtree; may also act as assignee for bureaus in the subtree.
        Command = "command",
        /// A lower bureau's operator: acknowledge, report and complete its own bureau's tasks.
        Operator = "operator",
        /// Reads metrics and tasks of the subtree; never writes.
        Leadership = "leadership",
        /// The group itself: the leader's deadline watch and courier. No token maps to it.
        System = "system",
        /// Another group, authenticated by its peer token: delivers handovers, instructions
        /// and status reports. No user token maps to it.
        Peer = "peer",
        /// A monitoring or partner system delivering signals (machine intake), authenticated by
        /// its source token. No user token maps to it.
        Source = "source",
        /// Another department's inspector of joint inspections (部门联合抽查), signed in as a
        /// person: sees only the drawn inspections of their team, enters their department's part
        /// of the result, and writes nothing else. No users-file token maps to it.
        Department = "department",
    }
}

/// Who proposed a command. Authorisation is decided in `apply` from this, so every replica
/// reaches the same verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub user: String,
    pub bureau: BureauCode,
    pub role: Role,
}

/// A client's `Idempotency-Key`, scoped to the user that sent it, with a fingerprint of the
/// request so that reusing a key for a different request is refused instead of silently
/// answered with the wrong result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyTag {
    pub key: String,
    pub fingerprint: [u8; 32],
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// Unix milliseconds read once by the accepting node; apply uses `max(stamp, last stamp)`.
    pub stamp_ms: u64,
    pub actor: Actor,
    pub idempotency: Option<IdempotencyTag>,
    pub action: Action,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    CreateTask(NewTask),
    ChangeTask(TaskChange),
    /// Proposed by the leader's deadline watch when a deadline has passed (the stamp is the
    /// leader's clock). Recorded once per deadline; a duplicate or stale one changes nothing.
    RecordMissedDeadline {
        task: TaskId,
        kind: DeadlineKind,
        deadline_ms: u64,
    },
    /// The watch's reminder number `sequence` about the overdue `deadline_ms`.
    RemindAssignee {
        task: TaskId,
        kind: DeadlineKind,
        deadline_ms: u64,
        sequence: u32,
    },
    /// The watch escalates the overdue task to bureau `to`.
    Escalate {
        task: TaskId,
        kind: DeadlineKind,
        deadline_ms: u64,
        to: BureauCode,
    },
    /// A message delivered by the peer group in the actor. `group` is this group's bureau,
    /// `placement` what to do with a handover (both from the accepting node).
    Receive {
        message: Box<Message>,
        group: BureauCode,
        placement: Placement,
    },
    /// The origin's courier commits the target group's answer to outbox message `seq`.
    RecordReceipt {
        seq: u64,
        answer: Receipt,
    },
    /// The courier alarms that outbox message `seq` has waited too long.
    FlagStuckForward {
        seq: u64,
    },
    /// A status report from the group a task was handed to.
    MirrorStatus(Box<StatusReport>),
    /// One signal from the intake source in the actor (a batch is one entry of these).
    IngestSignal(Box<Signal>),
    /// A complaint or tip-off registered by a bureau's desk.
    RegisterComplaint(Box<NewComplaint>),
    /// A decision on a complaint, or telling the reporter.
    ComplaintStep {
        task: TaskId,
        step: ComplaintStep,
        note: String,
    },
    /// The "double random, one public" programme: directories, campaigns, draws, results.
    Programme(Box<ProgrammeAction>),
    /// A region table or calendar adopted (see `reference`). Variants are encoded by their
    /// position: new ones go last, so entries written by older builds still decode.
    Reference(Box<crate::reference::ReferenceAction>),
    /// The organisation below the region tree: stations enrolled, renamed, closed (see
    /// `organisation`). Not answered from the idempotency table: its refusals (`station_exists`)
    /// tell a retry what is there.
    Organisation(Box<crate::organisation::OrganisationAction>),
}

/// The fields of a create request, already parsed into domain types.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTask {
    pub kind: TaskKind,
    pub severity: Severity,
    pub title: String,
    pub description: String,
    pub subject: Subject,
    pub source: Source,
    /// The dispatcher's bureau; defaults to the actor's bureau at the API.
    pub origin_bureau: BureauCode,
    /// An intended assignee, recorded but not dispatched: dispatch starts the deadlines.
    pub assignee_bureau: Option<BureauCode>,
    /// Where the accepting node routes it by the subject's region.
    pub routing: Routing,
}

/// A change to an existing task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskChange {
    pub task: TaskId,
    /// The version the actor decided on; a different current version refuses the change.
    pub expected_version: Option<u64>,
    pub note: String,
    pub transition: Transition,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Transition {
    /// Give the task to `assignee` (again, for 改派), starting both deadline clocks.
    Dispatch {
        assignee: BureauCode,
        ack_deadline_ms: u64,
        complete_deadline_ms: u64,
    },
    Ack,
    /// 退单: the assignee gives the task back (the reason in the note).
    Decline,
    Feedback,
    /// 办结. For a drawn inspection this enters its result, and `publication_deadline_ms` (the
    /// accepting node's reading of the calendar: 20 working days on) starts its publication
    /// clock; no other task takes one.
    Complete {
        outcome: CompletionOutcome,
        publication_deadline_ms: Option<u64>,
    },
    Close,
    Return,
    Cancel,
    /// Ask to move the completion deadline to `new_complete_deadline_ms` (computed from the
    /// policy by the accepting node); `extensions_allowed` is the policy's limit for the task.
    RequestExtension {
        new_complete_deadline_ms: u64,
        extensions_allowed: u32,
    },
    GrantExtension,
    RefuseExtension,
    /// Stop the completion clock (中止: testing, appraisal, hearing, suspension).
    Pause,
    /// Restart it; the accepting node computed the completion deadline moved by the paused
    /// working time.
    Resume {
        new_complete_deadline_ms: u64,
    },
    /// Hand the lead to group `to_group`: the one with jurisdiction over the subject, or the
    /// parent group that routes it on (线索移送).
    Forward {
        to_group: BureauCode,
        /// This group's bureau: it names the forward.
        from_group: BureauCode,
    },
    /// Dispatch to a bureau that group `to_group` hosts: the task is created there, and this
    /// record tracks it.
    DispatchAcross {
        assignee: BureauCode,
        ack_deadline_ms: u64,
        complete_deadline_ms: u64,
        to_group: BureauCode,
        from_group: BureauCode,
    },
    /// The receiver of a forwarded lead disputes the jurisdiction (with the reason in the
    /// note): the lead goes to `to_group`, the lowest common parent group of both sides.
    Dispute {
        to_group: BureauCode,
        from_group: BureauCode,
    },
    /// The common parent designates group `to_group` to handle a disputed lead.
    Designate {
        to_group: BureauCode,
        from_group: BureauCode,
    },
    /// The acting person takes the task as its lead handler (认领).
    Claim,
    /// The head names the lead and the supporting handlers (指派).
    Assign {
        lead: crate::organisation::PersonId,
        supporting: Vec<crate::organisation::PersonId>,
    },
    /// The lead gives the task back to the unit (退回本单位).
    Release,
    /// Hands the task down to station `unit` of the assignee county, or back to the county
    /// itself (`unit` the assignee).
    HandDown {
        unit: BureauCode,
    },
    /// An on-site record (现场检查记录) by a person of the task's team or unit; on a dispatched
    /// task it is also the 签收. The accepting node checked it against its checklist and holds
    /// every file it names, on a majority of the members.
    RecordOnSite(Box<crate::site_record::NewSiteRecord>),
}

impl Transition {
    /// The action this transition takes (a dispatch across groups is a dispatch).
    pub fn action(&self) -> TaskAction {
        match self {
            Transition::Dispatch { .. } | Transition::DispatchAcross { .. } => TaskAction::Dispatch,
            Transition::Ack => TaskAction::Ack,
            Transition::Decline => TaskAction::Decline,
            Transition::Feedback => TaskAction::Feedback,
            Transition::Complete { .. } => TaskAction::Complete,
            Transition::Close => TaskAction::Close,
            Transition::Return => TaskAction::Return,
            Transition::Cancel => TaskAction::Cancel,
            Transition::RequestExtension { .. } => TaskAction::RequestExtension,
            Transition::GrantExtension => TaskAction::GrantExtension,
            Transition::RefuseExtension => TaskAction::RefuseExtension,
            Transition::Pause => TaskAction::Pause,
            Transition::Resume { .. } => TaskAction::Resume,
            Transition::Forward { .. } => TaskAction::Forward,
            Transition::Dispute { .. } => TaskAction::Dispute,
            Transition::Designate { .. } => TaskAction::Designate,
            Transition::Claim => TaskAction::Claim,
            Transition::Assign { .. } => TaskAction::Assign,
            Transition::Release => TaskAction::Release,
            Transition::HandDown { .. } => TaskAction::HandDown,
            Transition::RecordOnSite(_) => TaskAction::RecordOnSite,
        }
    }

    /// A handover to another group: made by `Ledger::hand_over` with its outbox entry, never a
    /// change of the task in place.
    pub fn is_handover(&self) -> bool {
        match self {
            Transition::Forward { .. }
            | Transition::DispatchAcross { .. }
            | Transition::Dispute { .. }
            | Transition::Designate { .. } => true,
            Transition::Dispatch { .. }
            | Transition::Ack
            | Transition::Decline
            | Transition::Feedback
            | Transition::Complete { .. }
            | Transition::Close
            | Transition::Return
            | Transition::Cancel
            | Transition::RequestExtension { .. }
            | Transition::GrantExtension
            | Transition::RefuseExtension
            | Transition::Pause
            | Transition::Resume { .. }
            | Transition::Claim
            | Transition::Assign { .. }
            | Transition::Release
            | Transition::HandDown { .. }
            | Transition::RecordOnSite(_) => false,
        }
    }
}

wire_enum! {
    /// Which of the ledger's records stands in the way of a command: the `code` of its error.
    pub enum ConflictCode {
        /// A complaint is accepted (受理) before it is dispatched or forwarded.
        ComplaintNotAccepted = "complaint_not_accepted",
        /// The task was handed to another group; it is worked on there.
        HandedOver = "handed_over",
        /// A received lead is not passed on by its receiver: it disputes the jurisdiction.
        ReceivedLead = "received_lead",
        /// A designation by the common superior is final.
        DesignationFinal = "designation_final",
        /// The task was not forwarded here: there is no jurisdiction to dispute.
        NotForwarded = "not_forwarded",
        /// The task is no disputed lead awaiting designation.
        NotDisputed = "not_disputed",
        ExtensionPending = "extension_pending",
        NoExtensionPending = "no_extension_pending",
        AlreadyPaused = "already_paused",
        NotPaused = "not_paused",
        NotAnInspection = "not_an_inspection",
        /// An inspection's result is not entered yet.
        NoResult = "no_result",
        /// The result is not published, so it cannot be withdrawn.
        NotPublished = "not_published",
        NotAComplaint = "not_a_complaint",
        ComplaintDecided = "complaint_decided",
        /// A real-name reporter is told once, after the decision.
        ReporterTold = "reporter_told",
        /// A campaign's beacon is fixed before its draw, and once.
        NoBeacon = "no_beacon",
        BeaconFixed = "beacon_fixed",
        CampaignDrawn = "campaign_drawn",
        InspectorEnrolled = "inspector_enrolled",
        NoDirectory = "no_directory",
        /// The entity directory a campaign names is no longer the current one.
        DirectoryChanged = "directory_changed",
        /// The draw was computed from inputs that changed meanwhile: draw again.
        DrawOutdated = "draw_outdated",
        /// A drawn inspection is not given back (退单): its bureau and team were drawn.
        DrawnInspection = "drawn_inspection",
        /// A task dispatched from another group is not declined here (the decline would not
        /// reach its dispatcher there).
        ReceivedDispatch = "received_dispatch",
        /// A station of that number or name exists (codes are never given twice).
        StationExists = "station_exists",
        /// The unit is still needed: a county with open stations, a station's retired county.
        UnitInUse = "unit_in_use",
        /// A login is taken for good, also by a disabled account.
        LoginTaken = "login_taken",
        /// The account acting changed since the command was made (name, unit or roles).
        AccountChanged = "account_changed",
        /// Another handler claimed the task first.
        AlreadyClaimed = "already_claimed",
        /// The task has no lead handler.
        NotClaimed = "not_claimed",
        /// The inspector, or the person, is linked already.
        InspectorLinked = "inspector_linked",
        /// A campaign names an item that is not current on the group's item list, or not as
        /// listed.
        ItemNotListed = "item_not_listed",
        /// The item list has an item of that code already (codes are never given twice).
        ItemListed = "item_listed",
        /// The inspection's result calls for no follow-up (or it is not entered).
        NoFollowUpDue = "no_follow_up_due",
        /// A withdrawn batch of an annual plan stays as it was.
        BatchWithdrawn = "batch_withdrawn",
        /// A plan with no batch is not published.
        PlanEmpty = "plan_empty",
        /// The group's item list is changed only once the national list is adopted.
        ListNotAdopted = "list_not_adopted",
        /// A register change's id was recorded before with other content.
        ChangeIdReused = "change_id_reused",
        /// The current directory was imported without its place in the register's journal.
        RegisterUnbased = "register_unbased",
        /// An expertise tag is held or needed already, so it cannot become a department's.
        TagInUse = "tag_in_use",
        /// A joint inspection's result waits for a department's part (部门联合抽查).
        DepartmentPartsAwaited = "department_parts_awaited",
        /// A province's plan is changed by the group keeping it; this group holds a copy.
        PlanElsewhere = "plan_elsewhere",
        /// A group keeping a province's plan takes no copy of it from another group.
        PlanKeptHere = "plan_kept_here",
    }
}

/// A domain refusal. It is a value, not an error of the state machine: the command is committed
/// and every replica reaches the same refusal; the ledger does not change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Rejection {
    #[error("task {0} does not exist")]
    TaskNotFound(TaskId),
    #[error("cannot {action} a task that is {from}")]
    IllegalTransition { from: TaskState, action: String },
    #[error("task changed meanwhile: the action was decided on version {expected}, the task is at version {actual}")]
    VersionConflict { expected: u64, actual: u64 },
    #[error("{0}")]
    Forbidden(String),
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("the Idempotency-Key was already used for a different request")]
    IdempotencyKeyReused,
    #[error("limit reached: {0}")]
    LimitReached(String),
    #[error("nothing to record: {0}")]
    NothingToRecord(String),
    /// The ledger's records stand in the way (a pending request, a decision already made, a
    /// task worked on elsewhere); `code` names which, for clients to tell them apart.
    #[error("{reason}")]
    Conflict { code: ConflictCode, reason: String },
    /// A message between groups arrived before one it depends on; delivering it again later
    /// will succeed.
    #[error("not yet: {0}")]
    NotYet(String),
    /// Something other than a task that the command names does not exist.
    #[error("no such {0}")]
    NoSuch(String),
}

/// A `Rejection::Conflict` with its code.
pub fn conflict(code: ConflictCode, reason: impl Into<String>) -> Rejection {
    Rejection::Conflict { code, reason: reason.into() }
}

/// What a command did: the tasks as they stand after the change, and what it recorded besides.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// The tasks the command created or changed, in order: one for a task command, none for a
    /// change of the inspection directories or a campaign, one per inspection for a draw.
    /// Shared with the ledger: answering does not copy them.
    pub tasks: Vec<std::sync::Arc<Task>>,
    /// What a command about the inspection programme recorded (see `ledger::campaign`).
    pub record: Option<ProgrammeRecord>,
    /// True when this is the stored answer to an earlier request with the same idempotency key;
    /// nothing was written this time.
    pub replayed: bool,
    /// The version each of `tasks` had before this command (`None` for one it created), in the
    /// same order; empty in a replayed answer. For what is derived from changes (the response
    /// metrics take the old version's facts out); never sent to clients.
    #[serde(skip)]
    pub before: Vec<Option<std::sync::Arc<Task>>>,
    /// What an organisation command recorded (never stored: see `Action::Organisation`).
    #[serde(skip)]
    pub organisation: Option<crate::organisation::OrganisationRecord>,
}

impl Applied {
    /// The answer of a command that created or changed one task.
    pub fn of_task(task: std::sync::Arc<Task>) -> Applied {
        Applied { tasks: vec![task], ..Applied::default() }
    }

    /// The answer of a command about the inspection programme.
    pub fn of_record(record: ProgrammeRecord, tasks: Vec<std::sync::Arc<Task>>) -> Applied {
        Applied { tasks, record: Some(record), ..Applied::default() }
    }

    /// The one task of a task command (every task route's command answers with exactly one).
    pub fn task(&self) -> &std::sync::Arc<Task> {
        assert_eq!(self.tasks.len(), 1, "a task command answers with exactly one task");
        &self.tasks[0]
    }
}

pub type CommandResult = Result<Applied, Rejection>;
