//! A task: one unit of work in the ledger (a risk alert, lead, emergency case, assignment,
//! referral or inspection), with its subject, bureaus, deadlines, state and timeline.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::bureau::BureauCode;
use super::campaign::InspectionRecord;
use super::complaint::ComplaintRecord;
use super::federation::{Received, RemoteHandling};
use super::intake::IntakeSummary;
use super::organisation::PersonId;
use super::uscc::Uscc;

/// Task ids are assigned by the ledger in commit order, starting at 1.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TaskId(pub u64);

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "T{}", self.0)
    }
}

/// Declares a closed enum with its snake_case wire names, so parsing and printing share one table.
macro_rules! wire_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The wire names, in declaration order.
            pub const WIRE_NAMES: &'static [&'static str] = &[$($wire),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }

            pub fn parse(text: &str) -> Option<$name> {
                match text { $($wire => Some($name::$variant),)+ _ => None }
            }

            /// The accepted wire names, for error messages.
            pub fn names() -> String {
                Self::WIRE_NAMES.join(", ")
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use wire_enum;

wire_enum! {
    pub enum TaskKind {
        RiskAlert = "risk_alert",
        Lead = "lead",
        Emergency = "emergency",
        Assignment = "assignment",
        Referral = "referral",
        Inspection = "inspection",
    }
}

wire_enum! {
    pub enum Severity {
        Low = "low",
        Normal = "normal",
        High = "high",
        Critical = "critical",
    }
}

wire_enum! {
    /// Where the matter came from (来源); not to be confused with the kind.
    pub enum Source {
        SpotCheck = "spot_check",
        Complaint = "complaint",
        BigData = "big_data",
        Referral = "referral",
        Assignment = "assignment",
        Media = "media",
        PublicOpinion = "public_opinion",
        ThirdParty = "third_party",
    }
}

wire_enum! {
    pub enum TaskState {
        /// 待派发: registered, no assignee working on it yet.
        Created = "created",
        /// 待签收: the ack deadline runs.
        Dispatched = "dispatched",
        /// 办理中: the assignee signed for it.
        Acknowledged = "acknowledged",
        /// 待审核: the assignee reported the result; the dispatcher reviews it.
        Completed = "completed",
        /// 已办结: the dispatcher accepted the result. Terminal.
        Closed = "closed",
        /// 已退回: the dispatcher sent the result back for more work; the assignee works on.
        Returned = "returned",
        /// 已撤销. Terminal.
        Cancelled = "cancelled",
    }
}

impl TaskState {
    /// Open tasks still count against their bureau; terminal ones never change again.
    pub fn is_terminal(self) -> bool {
        matches!(self, TaskState::Closed | TaskState::Cancelled)
    }
}

wire_enum! {
    /// The result an assignee reports when completing a task (办结结果).
    pub enum CompletionOutcome {
        NoViolation = "no_violation",
        Reminded = "reminded",
        Interviewed = "interviewed",
        Warned = "warned",
        Penalized = "penalized",
        Transferred = "transferred",
        /// An inspection found no problem (未发现问题).
        NoProblemFound = "no_problem_found",
        /// An inspection found problems that were corrected on order (发现问题已责令改正).
        Corrected = "corrected",
        /// The entity could not be found at its registered address (通过登记的住所无法联系).
        NotFoundAtAddress = "not_found_at_address",
        /// An inspection found a violation and a case was opened (发现问题待后续处理/立案).
        CaseOpened = "case_opened",
    }
}

wire_enum! {
    /// What a timeline entry records.
    pub enum TimelineAction {
        Create = "create",
        Dispatch = "dispatch",
        Ack = "ack",
        Feedback = "feedback",
        Complete = "complete",
        Close = "close",
        Return = "return",
        /// The assignee gave the task back as not its jurisdiction (退单).
        Decline = "decline",
        Cancel = "cancel",
        /// The assignee asks for more time (延期申请).
        RequestExtension = "request_extension",
        /// The dispatcher grants it: the completion deadline moves (批准延期).
        GrantExtension = "grant_extension",
        /// The dispatcher refuses it (驳回延期).
        RefuseExtension = "refuse_extension",
        /// A reminder to the assignee after a missed deadline (催办), by the leader's watch.
        Remind = "remind",
        /// The task made visible one tier up and the dispatcher alarmed (升级), by the watch.
        Escalate = "escalate",
        /// The assignee stops the completion clock (中止), e.g. for testing or appraisal.
        Pause = "pause",
        /// The clock runs again; the completion deadline moves by the paused working time.
        Resume = "resume",
        /// The ack deadline passed without an ack (超期未签收), recorded by the leader.
        AckMissed = "ack_missed",
        /// The completion deadline passed before the assignee completed (超期未办结).
        CompletionMissed = "completion_missed",
        /// Handed to another group: a lead to the group with jurisdiction (线索移送), or a
        /// dispatch to a bureau another group hosts.
        Forward = "forward",
        /// The receiving group committed the handover (移送已接收).
        ForwardDelivered = "forward_delivered",
        /// The receiving group refused a handover or instruction, with its reason.
        ForwardRefused = "forward_refused",
        /// Delivery has taken longer than the configured time (移送滞留): the console alarms.
        ForwardStuck = "forward_stuck",
        /// The task arrived from another group (first entry of a received task).
        Receive = "receive",
        /// The receiver disputed the jurisdiction; the lead went to the common parent (管辖争议).
        Dispute = "dispute",
        /// The common parent designated the handler (指定管辖).
        Designate = "designate",
        /// A merged signal raised the task's severity.
        SeverityRaised = "severity_raised",
        /// The complaint or tip-off was accepted (受理).
        AcceptComplaint = "accept_complaint",
        /// It was refused (不予受理), with the reason.
        RefuseComplaint = "refuse_complaint",
        /// The real-name reporter was told the decision (告知举报人).
        NotifyReporter = "notify_reporter",
        /// No decision within the acceptance period (超期未受理), recorded by the leader.
        AcceptanceMissed = "acceptance_missed",
        /// The real-name reporter was not told in time (超期未告知), recorded by the leader.
        NotificationMissed = "notification_missed",
        /// An inspection result was published (公示).
        Publish = "publish",
        /// A published result was withdrawn from the public routes (撤回公示), with the reason.
        Withdraw = "withdraw",
        /// The result was not published within 20 working days (超期未公示), recorded by the leader.
        PublicationMissed = "publication_missed",
        /// A handler of the unit took the task (认领): the lead from now on; also its 签收.
        Claim = "claim",
        /// The unit's head named the lead and supporting handlers (指派).
        Assign = "assign",
        /// The lead gave the task back to the unit (退回本单位), with the reason.
        Release = "release",
        /// The assignee county handed it down to one of its stations, or took it back (下派/收回).
        HandDown = "hand_down",
        /// An on-site record was made (现场检查记录); the task keeps it (`FieldWork::site_records`).
        RecordOnSite = "record_on_site",
        /// The follow-up task of the inspection's finding was opened for the bureau with
        /// jurisdiction (谁管辖、谁负责), with its number in the note.
        FollowUpOpened = "follow_up_opened",
        /// A department of a joint inspection (部门联合抽查) entered its part of the result, with
        /// its outcome; the task keeps it (`FieldWork::department_parts`).
        DepartmentPart = "department_part",
    }
}

/// The market entity concerned. Unlicensed traders (无照经营) have no USCC, so it is optional.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub uscc: Option<Uscc>,
    pub name: String,
    /// Where the entity is: the region that has jurisdiction over it.
    pub region_code: BureauCode,
    pub address: String,
}

/// One change in a task's life: the audit trail (监管痕迹) mirrors the ledger entry that made it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// The task version this change produced.
    pub version: u64,
    pub at_ms: u64,
    pub action: TimelineAction,
    pub actor_user: String,
    pub actor_bureau: BureauCode,
    pub note: String,
    /// For dispatch: the bureau the task was given to.
    pub assignee_bureau: Option<BureauCode>,
    /// For complete: the reported outcome.
    pub outcome: Option<CompletionOutcome>,
}

/// A task's handling: its state and everything the assignee side moves (dispatch, deadlines,
/// 签收, completion, review, extensions, reminders, escalation, pause). A record of a task
/// handed to another group mirrors exactly this from there (`StatusReport::fields`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handling {
    pub state: TaskState,
    pub assignee_bureau: Option<BureauCode>,
    pub ack_deadline_ms: Option<u64>,
    pub complete_deadline_ms: Option<u64>,
    pub dispatched_at_ms: Option<u64>,
    pub acked_at_ms: Option<u64>,
    pub completed_at_ms: Option<u64>,
    pub closed_at_ms: Option<u64>,
    pub outcome: Option<CompletionOutcome>,
    /// The ack deadline whose miss is on the record, if any: a miss is recorded once per
    /// deadline; a re-dispatch sets a new deadline that can be missed again.
    pub ack_missed_deadline_ms: Option<u64>,
    pub completion_missed_deadline_ms: Option<u64>,
    /// A pending extension request: the completion deadline it asks for.
    pub extension_requested_deadline_ms: Option<u64>,
    /// Extensions granted so far (the statutory lead rule allows one).
    pub extensions_granted: u32,
    /// Reminders sent for the clock that is overdue now; a dispatch or an ack starts over.
    pub reminders_sent: u32,
    /// Bureaus the task was escalated to, in order; their command centres see it too.
    pub escalated_to: Vec<BureauCode>,
    /// The last progress report, which may postpone the next reminder.
    pub last_feedback_ms: Option<u64>,
    /// Since when the completion clock is stopped (中止计时), if it is.
    pub paused_since_ms: Option<u64>,
}

impl Handling {
    /// A task as registered: created, with an intended assignee at most.
    fn registered(assignee_bureau: Option<BureauCode>) -> Handling {
        Handling {
            state: TaskState::Created,
            assignee_bureau,
            ack_deadline_ms: None,
            complete_deadline_ms: None,
            dispatched_at_ms: None,
            acked_at_ms: None,
            completed_at_ms: None,
            closed_at_ms: None,
            outcome: None,
            ack_missed_deadline_ms: None,
            completion_missed_deadline_ms: None,
            extension_requested_deadline_ms: None,
            extensions_granted: 0,
            reminders_sent: 0,
            escalated_to: Vec::new(),
            last_feedback_ms: None,
            paused_since_ms: None,
        }
    }

    /// The combinations of state and fields every task keeps: `Ledger::check_invariants` holds
    /// each task to them, and a status report from another group is held to them before
    /// anything of it is copied.
    pub fn check(&self) -> Result<(), String> {
        use TaskState::*;
        if !matches!(self.state, Created | Cancelled)
            && (self.assignee_bureau.is_none() || self.ack_deadline_ms.is_none())
        {
            return Err(format!("a {} task has an assignee and an ack deadline", self.state));
        }
        if matches!(self.state, Acknowledged | Completed | Closed) && self.acked_at_ms.is_none() {
            return Err(format!("a {} task was acknowledged", self.state));
        }
        if matches!(self.state, Completed | Closed | Returned) && self.outcome.is_none() {
            return Err(format!("a {} task has an outcome", self.state));
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub id: TaskId,
    pub kind: TaskKind,
    pub severity: Severity,
    pub title: String,
    pub description: String,
    pub subject: Subject,
    pub source: Source,
    pub origin_bureau: BureauCode,
    /// Starts at 1 on create; every change adds one. Equals the number of timeline entries.
    pub version: u64,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    pub handling: Handling,
    pub timeline: Vec<TimelineEntry>,
    /// Handed to another group: this record tracks the task there, and its clocks run there.
    pub remote: Option<RemoteHandling>,
    /// Arrived from another group, which tracks it.
    pub received: Option<Received>,
    /// The subject lies outside this group's jurisdiction and no configured group covers it:
    /// kept here, flagged for the command centre.
    pub jurisdiction_unrouted: bool,
    /// Registered by machine intake: the signals that went into it.
    pub intake: Option<IntakeSummary>,
    /// A complaint or tip-off: its clocks and decisions (the reporter is kept apart).
    pub complaint: Option<ComplaintRecord>,
    /// A drawn inspection (双随机抽查): campaign, items, team, result publication.
    pub inspection: Option<InspectionRecord>,
    /// Who works it on the ground and what they recorded there. Last, and left out of the
    /// encoding while empty: a task no person ever worked keeps the bytes (and the digest term)
    /// it had before people existed (`codec::decode_task`).
    #[serde(default, skip_serializing_if = "FieldWork::is_empty")]
    pub field_work: FieldWork,
}

/// A task's work by people: its handlers and its on-site records.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldWork {
    /// Who in the assignee's unit works it (主办/协办), and the station it was handed down to.
    pub handlers: Handlers,
    /// On-site inspection records (现场检查记录), numbered from 1, never changed.
    pub site_records: Vec<crate::site_record::SiteRecord>,
    /// The other departments' parts of a joint inspection's result, in the order entered (a
    /// department that enters again adds a part; its last counts). Last, and left out of the
    /// encoding while empty: field work written before joint inspections keeps its bytes and
    /// digest term (`codec::decode_task`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub department_parts: Vec<crate::campaign::departments::DepartmentPart>,
}

impl FieldWork {
    pub fn is_empty(&self) -> bool {
        self.handlers.is_empty() && self.site_records.is_empty() && self.department_parts.is_empty()
    }
}

/// A person as a task names them: their number, and their name as it was then.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandlerRef {
    pub id: PersonId,
    pub name: String,
}

/// The people working a task in its unit, and where it was handed down.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handlers {
    /// The station of the assignee county the task was handed down to (下派): it works the
    /// task, while the county stays the assignee its dispatcher holds to the deadlines.
    pub unit: Option<BureauCode>,
    /// The lead handler (主办人), who answers for it.
    pub lead: Option<HandlerRef>,
    /// Supporting handlers (协办人).
    pub supporting: Vec<HandlerRef>,
    /// A drawn inspection's team as people (the drawn inspectors linked to accounts when it
    /// was drawn): it shows to them as their own, and only they enter its result.
    pub team: Vec<HandlerRef>,
    /// Every change, with the task version it made: what names the handler on each entry.
    pub changes: Vec<HandlersChange>,
}

/// The handlers as a change left them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandlersChange {
    pub version: u64,
    pub unit: Option<BureauCode>,
    pub lead: Option<HandlerRef>,
    pub supporting: Vec<HandlerRef>,
}

impl Handlers {
    /// No handlers were ever named and nothing was handed down.
    pub fn is_empty(&self) -> bool {
        *self == Handlers::default()
    }

    /// The lead at task version `version` (who a reminder or escalation of then names).
    pub fn lead_at(&self, version: u64) -> Option<&HandlerRef> {
        self.changes.iter().rev().find(|change| change.version <= version).and_then(|change| change.lead.as_ref())
    }

    /// Whether `person` is named among them now (lead or supporting).
    pub fn names(&self, person: PersonId) -> bool {
        self.lead.as_ref().is_some_and(|lead| lead.id == person) || self.supporting.iter().any(|s| s.id == person)
    }

    /// Whether `person` is of the drawn team.
    pub fn on_team(&self, person: PersonId) -> bool {
        self.team.iter().any(|member| member.id == person)
    }

    /// Whether the task is `person`'s own: named as a handler, or of its team ("my tasks").
    pub fn concerns(&self, person: PersonId) -> bool {
        self.names(person) || self.on_team(person)
    }
}

wire_enum! {
    /// Which of a task's clocks.
    pub enum DeadlineKind {
        Ack = "ack",
        Completion = "completion",
        /// A complaint's decision to accept or refuse it.
        Acceptance = "acceptance",
        /// Telling a real-name reporter the decision.
        Notification = "notification",
        /// Publishing an inspection result (20 working days after its entry).
        Publication = "publication",
    }
}

impl Task {
    /// A newly registered task: state `Created`, version 1 with its first timeline entry.
    #[allow(clippy::too_many_arguments)]
    pub fn registered(
        id: TaskId,
        stamp_ms: u64,
        kind: TaskKind,
        severity: Severity,
        title: String,
        description: String,
        subject: Subject,
        source: Source,
        origin_bureau: BureauCode,
        assignee_bureau: Option<BureauCode>,
        first_entry: TimelineEntry,
    ) -> Task {
        assert_eq!(first_entry.version, 1, "the first entry makes version 1");
        Task {
            id,
            kind,
            severity,
            title,
            description,
            subject,
            source,
            origin_bureau,
            version: 1,
            created_at_ms: stamp_ms,
            updated_at_ms: stamp_ms,
            handling: Handling::registered(assignee_bureau),
            timeline: vec![first_entry],
            remote: None,
            received: None,
            jurisdiction_unrouted: false,
            intake: None,
            complaint: None,
            inspection: None,
            field_work: FieldWork::default(),
        }
    }

    /// The unit working the task: the station it was handed down to, or its assignee.
    pub fn unit(&self) -> Option<BureauCode> {
        self.field_work.handlers.unit.or(self.handling.assignee_bureau)
    }

    /// The one rule of which clocks run on a task now, each with its deadline, whether or not
    /// its miss is recorded: the ack clock until 签收; the completion clock from dispatch until
    /// completion, unless paused (中止); a complaint's acceptance clock until the decision (or
    /// a cancellation), and its telling clock until the real-name reporter is told; a drawn
    /// inspection's publication clock until the result is published or withdrawn.
    pub fn running_clocks(&self) -> impl Iterator<Item = (DeadlineKind, u64)> + '_ {
        let working =
            matches!(self.handling.state, TaskState::Dispatched | TaskState::Acknowledged | TaskState::Returned);
        DeadlineKind::ALL.iter().filter_map(move |kind| {
            let deadline_ms = match kind {
                DeadlineKind::Ack => {
                    self.handling.ack_deadline_ms.filter(|_| self.handling.state == TaskState::Dispatched)
                }
                DeadlineKind::Completion => {
                    self.handling.complete_deadline_ms.filter(|_| working && self.handling.paused_since_ms.is_none())
                }
                DeadlineKind::Acceptance => self
                    .complaint
                    .as_ref()
                    .filter(|c| c.decision.is_none() && !self.handling.state.is_terminal())
                    .map(|c| c.accept_deadline_ms),
                DeadlineKind::Notification => {
                    self.complaint.as_ref().filter(|c| c.notified_at_ms.is_none()).and_then(|c| c.notify_deadline_ms)
                }
                DeadlineKind::Publication => self
                    .inspection
                    .as_ref()
                    .filter(|i| i.published_at_ms.is_none() && i.withdrawn_at_ms.is_none())
                    .and_then(|i| i.publish_deadline_ms),
            };
            deadline_ms.map(|d| (*kind, d))
        })
    }

    /// Whether work is left on this task: it is not in a final state, or one of its clocks still
    /// runs (a closed complaint whose reporter is not yet told, a result not yet published).
    /// What is rebuilt from open work reads only such tasks.
    pub fn has_open_work(&self) -> bool {
        !self.handling.state.is_terminal() || self.running_clocks().next().is_some()
    }

    /// The deadline a console counts down and lists sort by: the earliest running clock.
    pub fn running_deadline_ms(&self) -> Option<u64> {
        self.running_clocks().map(|(_, deadline_ms)| deadline_ms).min()
    }

    /// Overdue as seen at `now_ms`: a running clock's deadline has passed. A read-side view,
    /// never stored.
    pub fn is_overdue_at(&self, now_ms: u64) -> bool {
        self.running_deadline_ms().is_some_and(|deadline_ms| now_ms > deadline_ms)
    }

    /// The deadline of `kind` whose miss is on the record (`None` while none is).
    fn missed_deadline_ms(&self, kind: DeadlineKind) -> Option<u64> {
        match kind {
            DeadlineKind::Ack => self.handling.ack_missed_deadline_ms,
            DeadlineKind::Completion => self.handling.completion_missed_deadline_ms,
            DeadlineKind::Acceptance => self.complaint.as_ref().and_then(|c| c.accept_missed_deadline_ms),
            DeadlineKind::Notification => self.complaint.as_ref().and_then(|c| c.notify_missed_deadline_ms),
            DeadlineKind::Publication => self.inspection.as_ref().and_then(|i| i.publish_missed_deadline_ms),
        }
    }

    /// The running clock of `kind` that this group's watch acts on: clocks of a task handed to
    /// another group run there (its record here only mirrors them).
    fn watched_clock_ms(&self, kind: DeadlineKind) -> Option<u64> {
        let runs_here = self.remote.is_none();
        self.running_clocks().find(|(k, _)| *k == kind).map(|(_, d)| d).filter(|_| runs_here)
    }

    /// The deadline of `kind` that still runs here and has not been recorded missed, if any:
    /// what the watch waits for.
    pub fn open_deadline_ms(&self, kind: DeadlineKind) -> Option<u64> {
        self.watched_clock_ms(kind).filter(|d| self.missed_deadline_ms(kind) != Some(*d))
    }

    /// The deadline of `kind` that was missed and is still overdue (the clock still runs),
    /// if any: reminders and escalations apply to it. A complaint's or a publication's miss
    /// alarms its command centre instead; the watch chases only the assignee's two clocks.
    pub fn overdue_deadline_ms(&self, kind: DeadlineKind) -> Option<u64> {
        let chased = match kind {
            DeadlineKind::Ack | DeadlineKind::Completion => true,
            DeadlineKind::Acceptance | DeadlineKind::Notification | DeadlineKind::Publication => false,
        };
        self.watched_clock_ms(kind).filter(|d| chased && self.missed_deadline_ms(kind) == Some(*d))
    }
}
