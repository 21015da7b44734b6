//! The one home of the task-action policy: the actions a user takes on a task, which side of
//! the task takes each, what the task's state and handling leave open, and the state each leads
//! to. `apply` decides with these functions, and the API sends their answer with every task, so
//! the console shows exactly the actions the ledger would accept.
//!
//! Every match here names every action (no wildcard arm): a new action does not compile until
//! each of them says what it is.

use super::access;
use super::bureau::Regions;
use super::command::{conflict, Actor, ConflictCode, Rejection, Role};
use super::federation::HandoverPurpose;
use super::task::{wire_enum, Task, TaskState};
use crate::campaign::PublicationState;

wire_enum! {
    /// An action a user takes on a task: the last segment of its route,
    /// `POST /api/v1/tasks/{id}/{action}`.
    pub enum TaskAction {
        /// Give the task to a bureau (again, for 改派), starting both deadline clocks; a
        /// bureau another group hosts is dispatched to across groups.
        Dispatch = "dispatch",
        /// 签收.
        Ack = "ack",
        /// 退单: the assignee gives the task back as not its jurisdiction, with the reason; the
        /// dispatcher dispatches it again (to another bureau) or cancels it.
        Decline = "decline",
        /// A progress report (反馈).
        Feedback = "feedback",
        /// 办结 with its outcome; a drawn inspection's result (谁抽查、谁录入).
        Complete = "complete",
        /// The dispatcher accepts the completion (审核通过).
        Close = "close",
        /// The dispatcher sends it back for rework (退回).
        Return = "return",
        /// 撤销.
        Cancel = "cancel",
        /// 延期申请.
        RequestExtension = "request_extension",
        GrantExtension = "grant_extension",
        RefuseExtension = "refuse_extension",
        /// Stop the completion clock (中止).
        Pause = "pause",
        Resume = "resume",
        /// Hand the lead to the group with jurisdiction (线索移送).
        Forward = "forward",
        /// The receiver of a forwarded lead disputes the jurisdiction.
        Dispute = "dispute",
        /// The common superior designates who handles a disputed lead (指定管辖).
        Designate = "designate",
        /// Publish a drawn inspection's result (一公开).
        Publish = "publish",
        /// Withdraw a published result (with the reason).
        Withdraw = "withdraw",
        /// 受理 a complaint or tip-off.
        AcceptComplaint = "accept_complaint",
        /// 不予受理, with the reason.
        RefuseComplaint = "refuse_complaint",
        /// The real-name reporter was told the decision (how, in the note).
        NotifyReporter = "notify_reporter",
        /// A handler of the unit takes the task (认领) as its lead; on a dispatched task it is
        /// also the 签收.
        Claim = "claim",
        /// The unit's head names the lead and supporting handlers (指派主办/协办).
        Assign = "assign",
        /// The lead gives the task back to the unit (退回本单位), with the reason.
        Release = "release",
        /// The assignee county hands the task down to one of its stations, or takes it back
        /// (下派/收回); the county stays the assignee.
        HandDown = "hand_down",
        /// An on-site record (现场检查记录) by one of the people inspecting: the checklist's
        /// answers, the firm's representative, the position, photos and signatures.
        RecordOnSite = "record_on_site",
    }
}

wire_enum! {
    /// Who takes an action, by their relation to the task.
    pub enum Side {
        /// A command user over the task's origin bureau: dispatches and reviews.
        Dispatcher = "dispatcher",
        /// The assignee bureau's operator, or a command user above the assignee: works it.
        Assignee = "assignee",
        /// The desk (command or operator) of the bureau that registered a complaint.
        Desk = "desk",
    }
}

impl TaskAction {
    /// The side of the task that takes this action.
    pub fn side(self) -> Side {
        use TaskAction::*;
        match self {
            Dispatch | Close | Return | Cancel | GrantExtension | RefuseExtension | Forward | Dispute | Designate
            | Publish | Withdraw => Side::Dispatcher,
            Ack | Decline | Feedback | Complete | RequestExtension | Pause | Resume | Claim | Assign | Release
            | HandDown | RecordOnSite => Side::Assignee,
            AcceptComplaint | RefuseComplaint | NotifyReporter => Side::Desk,
        }
    }

    /// Actions that must say why (退回, 撤销, 延期申请, 驳回, 中止, 不予受理, a dispute of
    /// jurisdiction, a withdrawal, and how the reporter was told).
    pub fn requires_note(self) -> bool {
        use TaskAction::*;
        match self {
            Return | Cancel | Decline | Dispute | RequestExtension | RefuseExtension | Pause | Withdraw
            | RefuseComplaint | NotifyReporter | Release => true,
            Dispatch | Ack | Feedback | Complete | Close | GrantExtension | Resume | Forward | Designate | Publish
            | AcceptComplaint | Claim | Assign | HandDown | RecordOnSite => false,
        }
    }

    /// The dispatcher's review of a task worked on in another group: the only decisions that
    /// flow down to it as instructions (and the only changes its tracking record here takes).
    pub fn flows_down(self) -> bool {
        use TaskAction::*;
        match self {
            Close | Return | Cancel | GrantExtension | RefuseExtension => true,
            Dispatch | Ack | Decline | Feedback | Complete | RequestExtension | Pause | Resume | Forward | Dispute
            | Designate | Publish | Withdraw | AcceptComplaint | RefuseComplaint | NotifyReporter | Claim | Assign
            | Release | HandDown | RecordOnSite => false,
        }
    }

    /// The state the action leads to from `from`; `None` where the action is illegal.
    pub fn next_state(self, from: TaskState) -> Option<TaskState> {
        use TaskState::*;
        let open = matches!(from, Created | Dispatched | Acknowledged | Returned);
        let worked_on = matches!(from, Acknowledged | Returned);
        let to = |allowed: bool, to: TaskState| allowed.then_some(to);
        match self {
            TaskAction::Dispatch => to(open, Dispatched),
            TaskAction::Ack => to(from == Dispatched, Acknowledged),
            // Given back before the work is done: the task waits for its dispatcher again.
            TaskAction::Decline => to(matches!(from, Dispatched | Acknowledged), Created),
            TaskAction::Feedback => to(worked_on, from),
            TaskAction::Complete => to(worked_on, Completed),
            TaskAction::Close => to(from == Completed, Closed),
            TaskAction::Return => to(from == Completed, Returned),
            TaskAction::Cancel => to(open, Cancelled),
            TaskAction::RequestExtension
            | TaskAction::GrantExtension
            | TaskAction::RefuseExtension
            | TaskAction::Pause
            | TaskAction::Resume => to(worked_on, from),
            TaskAction::Forward | TaskAction::Dispute => to(from == Created, Created),
            TaskAction::Designate => to(matches!(from, Dispatched | Acknowledged), from),
            // A result's publication has its own states (see `open`); the task's stays.
            TaskAction::Publish | TaskAction::Withdraw | TaskAction::NotifyReporter => Some(from),
            TaskAction::AcceptComplaint => to(from == Created, Created),
            TaskAction::RefuseComplaint => to(from == Created, Cancelled),
            // A claim, an assignment or a record made on site of a dispatched task is its 签收.
            TaskAction::Claim | TaskAction::Assign | TaskAction::RecordOnSite => match from {
                Dispatched => Some(Acknowledged),
                Acknowledged | Returned => Some(from),
                _ => None,
            },
            TaskAction::Release => to(worked_on, from),
            TaskAction::HandDown => to(matches!(from, Dispatched | Acknowledged | Returned), from),
        }
    }
}

/// Whether `task`'s state and handling leave `action` open, whoever asks, and the state it
/// leads to. The refusal says why, as the ledger answers it.
pub fn open(task: &Task, action: TaskAction) -> Result<TaskState, Rejection> {
    handling_allows(task, action)?;
    let next = action.next_state(task.handling.state).ok_or_else(|| Rejection::IllegalTransition {
        from: task.handling.state,
        action: action.as_str().to_owned(),
    })?;
    records_allow(task, action)?;
    Ok(next)
}

/// Whether `actor` stands on `side` of `task`.
pub fn stands_on(regions: &Regions, actor: &Actor, task: &Task, side: Side) -> bool {
    match side {
        Side::Dispatcher => actor.role == Role::Command && regions.is_within(task.origin_bureau, actor.bureau),
        Side::Assignee => match (actor.role, task.handling.assignee_bureau) {
            (Role::Operator, Some(assignee)) => {
                assignee == actor.bureau
                    || task.field_work.handlers.unit == Some(actor.bureau)
                    || access::on_team(actor, task)
            }
            (Role::Command, Some(assignee)) => regions.is_within(assignee, actor.bureau),
            _ => false,
        },
        // A complaint is decided where it was registered, not by the bureaus above it.
        Side::Desk => matches!(actor.role, Role::Command | Role::Operator) && task.origin_bureau == actor.bureau,
    }
}

/// May `actor` take `action` on `task`, on the side the action belongs to?
pub fn may_take(regions: &Regions, actor: &Actor, task: &Task, action: TaskAction) -> Result<(), Rejection> {
    if stands_on(regions, actor, task, action.side()) {
        return Ok(());
    }
    Err(Rejection::Forbidden(format!(
        "a {} user of bureau {} cannot {action} task {}: that is the {}'s",
        actor.role,
        actor.bureau,
        task.id,
        action.side()
    )))
}

/// The actions `actor` may take on `task` now: what the ledger would accept, parameters aside.
pub fn allowed_actions(regions: &Regions, actor: &Actor, task: &Task) -> Vec<TaskAction> {
    if !access::can_see(regions, actor, task) || access::may_write(actor).is_err() {
        return Vec::new();
    }
    TaskAction::ALL
        .iter()
        .copied()
        .filter(|action| open(task, *action).is_ok() && stands_on(regions, actor, task, action.side()))
        .collect()
}

/// The actions `task` leaves open to whoever stands on their side: what a console combines with
/// its user's sides (the same for every viewer, so it is sent with the task to all of them).
pub fn open_actions(task: &Task) -> impl Iterator<Item = TaskAction> + '_ {
    TaskAction::ALL.iter().copied().filter(|action| open(task, *action).is_ok())
}

/// What the task's handling allows: a complaint is accepted before it is sent on; a record
/// tracking a task in another group changes only by its dispatcher's decisions (which flow
/// down) and the organiser's publication of a drawn inspection's result; a received task's
/// dispatcher decides in its own group; a forwarded lead is not
/// passed on by its receiver.
fn handling_allows(task: &Task, action: TaskAction) -> Result<(), Rejection> {
    let sends_on = matches!(action, TaskAction::Dispatch | TaskAction::Forward);
    if sends_on && task.complaint.as_ref().is_some_and(|c| c.decision.is_none()) {
        return Err(conflict(
            ConflictCode::ComplaintNotAccepted,
            format!("complaint {} is not accepted yet: accept it first", task.id),
        ));
    }
    if let Some(remote) = &task.remote {
        // The organiser publishes a drawn inspection's result on its own record (一公开): that
        // stays here, nothing flows down.
        let organisers_own = matches!(action, TaskAction::Publish | TaskAction::Withdraw);
        if remote.purpose.hands_over_ownership() || !(action.flows_down() || organisers_own) {
            return Err(conflict(
                ConflictCode::HandedOver,
                format!(
                    "task {} was handed to group {} ({}); it is worked on there and this record follows it",
                    task.id, remote.to_group, remote.forward
                ),
            ));
        }
    }
    let received_as = task.received.as_ref().map(|r| r.purpose);
    if let Some(received) = &task.received {
        match received.purpose {
            HandoverPurpose::Dispatch if action.side() == Side::Dispatcher => {
                return Err(Rejection::Forbidden(format!(
                    "task {} was dispatched by bureau {} of group {}; its dispatcher decides there",
                    task.id, task.origin_bureau, received.from_group
                )));
            }
            HandoverPurpose::Dispatch if action == TaskAction::Decline => {
                return Err(conflict(ConflictCode::ReceivedDispatch, format!(
                    "task {} was dispatched here by group {}; its dispatcher there is told by feedback, a decline does not cross groups",
                    task.id, received.from_group
                )));
            }
            HandoverPurpose::Jurisdiction if action == TaskAction::Forward => {
                return Err(conflict(ConflictCode::ReceivedLead, format!(
                    "task {} was forwarded here by group {}; a receiver may not pass a lead on by itself, it disputes the jurisdiction instead",
                    task.id, received.from_group
                )));
            }
            HandoverPurpose::Designation if matches!(action, TaskAction::Forward | TaskAction::Dispute) => {
                return Err(conflict(
                    ConflictCode::DesignationFinal,
                    format!(
                    "task {} was designated to this group by the common superior (group {}); the designation is final",
                    task.id, received.from_group
                ),
                ));
            }
            _ => {}
        }
    }
    match action {
        TaskAction::Dispute if received_as != Some(HandoverPurpose::Jurisdiction) => Err(conflict(
            ConflictCode::NotForwarded,
            format!("task {} was not forwarded here; there is no jurisdiction to dispute", task.id),
        )),
        TaskAction::Designate if received_as != Some(HandoverPurpose::Dispute) => Err(conflict(
            ConflictCode::NotDisputed,
            format!("task {} is not a disputed lead awaiting designation", task.id),
        )),
        _ => Ok(()),
    }
}

/// What the task's own records leave open: a pending extension request, a paused clock, a
/// result to publish, a complaint to decide or to tell.
pub(crate) fn records_allow(task: &Task, action: TaskAction) -> Result<(), Rejection> {
    let extension_pending = task.handling.extension_requested_deadline_ms.is_some();
    let paused = task.handling.paused_since_ms.is_some();
    match action {
        TaskAction::RequestExtension if extension_pending => {
            Err(conflict(ConflictCode::ExtensionPending, "an extension request is already pending"))
        }
        TaskAction::GrantExtension | TaskAction::RefuseExtension if !extension_pending => {
            Err(conflict(ConflictCode::NoExtensionPending, "no extension request is pending"))
        }
        TaskAction::Pause if paused => {
            Err(conflict(ConflictCode::AlreadyPaused, "the completion clock is already paused"))
        }
        TaskAction::Resume if !paused => Err(conflict(ConflictCode::NotPaused, "the completion clock is not paused")),
        TaskAction::Publish | TaskAction::Withdraw => publication_allows(task, action),
        TaskAction::AcceptComplaint | TaskAction::RefuseComplaint | TaskAction::NotifyReporter => {
            complaint_allows(task, action)
        }
        TaskAction::Decline if task.inspection.is_some() => Err(conflict(
            ConflictCode::DrawnInspection,
            "a drawn inspection is not given back: its bureau and team were drawn (谁抽查、谁录入)",
        )),
        TaskAction::Claim if task.field_work.handlers.lead.is_some() => Err(conflict(
            ConflictCode::AlreadyClaimed,
            "the task already has a lead handler: it is theirs until released or reassigned by the head",
        )),
        TaskAction::Release if task.field_work.handlers.lead.is_none() => {
            Err(conflict(ConflictCode::NotClaimed, "the task has no lead handler to give it back"))
        }
        TaskAction::RecordOnSite
            if task.field_work.site_records.len() >= crate::site_record::SITE_RECORDS_PER_TASK_MAX =>
        {
            Err(Rejection::LimitReached(format!(
                "task {} has {} on-site records",
                task.id,
                crate::site_record::SITE_RECORDS_PER_TASK_MAX
            )))
        }
        TaskAction::Claim
        | TaskAction::Assign
        | TaskAction::Release
        | TaskAction::HandDown
        | TaskAction::RecordOnSite => Ok(()),
        TaskAction::Dispatch
        | TaskAction::Ack
        | TaskAction::Decline
        | TaskAction::Feedback
        | TaskAction::Complete
        | TaskAction::Close
        | TaskAction::Return
        | TaskAction::Cancel
        | TaskAction::RequestExtension
        | TaskAction::GrantExtension
        | TaskAction::RefuseExtension
        | TaskAction::Pause
        | TaskAction::Resume
        | TaskAction::Forward
        | TaskAction::Dispute
        | TaskAction::Designate => Ok(()),
    }
}

/// A result is published once it is entered, and withdrawn once published.
fn publication_allows(task: &Task, action: TaskAction) -> Result<(), Rejection> {
    let id = task.id;
    let Some(inspection) = &task.inspection else {
        return Err(conflict(ConflictCode::NotAnInspection, format!("task {id} is not a drawn inspection")));
    };
    if task.received.is_some() {
        return Err(conflict(
            ConflictCode::NotAnInspection,
            format!("task {id} was drawn by another group: its organiser there publishes the result"),
        ));
    }
    match (action, inspection.publication()) {
        (_, None) => Err(conflict(ConflictCode::NoResult, format!("task {id} has no result to publish yet"))),
        (TaskAction::Publish, Some(PublicationState::Pending))
        | (TaskAction::Withdraw, Some(PublicationState::Published)) => Ok(()),
        (TaskAction::Publish, Some(state)) => {
            Err(Rejection::NothingToRecord(format!("the result of task {id} is {state}")))
        }
        (_, Some(state)) => {
            Err(conflict(ConflictCode::NotPublished, format!("the result of task {id} is {state}, not published")))
        }
    }
}

/// A complaint is decided once, then a real-name reporter is told once.
fn complaint_allows(task: &Task, action: TaskAction) -> Result<(), Rejection> {
    let Some(record) = &task.complaint else {
        return Err(conflict(ConflictCode::NotAComplaint, format!("task {} is no complaint", task.id)));
    };
    match action {
        TaskAction::AcceptComplaint | TaskAction::RefuseComplaint if record.decision.is_some() => {
            Err(conflict(ConflictCode::ComplaintDecided, "the complaint is already decided"))
        }
        TaskAction::NotifyReporter
            if record.decision.is_none() || !record.real_name || record.notified_at_ms.is_some() =>
        {
            Err(conflict(ConflictCode::ReporterTold, "a real-name reporter is told once, after the decision"))
        }
        _ => Ok(()),
    }
}
