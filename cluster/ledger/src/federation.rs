//! Federation in the ledger: tasks handed from one group's ledger to another's.
//!
//! A handover (a dispatch down to a bureau another group hosts, or a lead forwarded to the
//! group with jurisdiction) is committed at the origin as an outbox entry together with the
//! tracking record it belongs to. The origin's leader delivers it (`node::federation::courier`);
//! the target creates exactly one task per forward id (its inbox), and the origin commits a
//! receipt that empties the outbox entry. Status reports from the target update the tracking
//! record, and the dispatcher's close/return/cancel flow down as numbered instructions.
//!
//! Which group a message goes to is decided by the accepting node from the topology and
//! carried in the command: the ledger knows no topology, so every replica decides alike.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::bureau::{BureauCode, Regions};
use super::command::{Actor, Applied, CommandResult, Rejection, Role, Transition};
use super::task::{
    wire_enum, Handling, Severity, Source, Subject, Task, TaskId, TaskKind, TaskState, TimelineAction, TimelineEntry,
};
use super::{apply, policy, validate};
use crate::limits::{DEADLINE_HORIZON_MS, NOTE_CHARS_MAX, TIMELINE_ENTRIES_MAX, USER_CHARS_MAX};

/// One handover, unique across all groups: the origin group and its message number there.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ForwardId {
    pub origin_group: BureauCode,
    pub seq: u64,
}

impl fmt::Display for ForwardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.origin_group, self.seq)
    }
}

impl fmt::Debug for ForwardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "F{self}")
    }
}

impl ForwardId {
    /// Parses the `440000-17` form.
    pub fn parse(text: &str) -> Option<ForwardId> {
        let (group, seq) = text.split_once('-')?;
        Some(ForwardId { origin_group: BureauCode::parse_digits(group)?, seq: seq.parse().ok()? })
    }
}

wire_enum! {
    /// Why a task went to another group.
    pub enum HandoverPurpose {
        /// Dispatched down the tree to a bureau another group hosts; the dispatcher keeps
        /// reviewing it (close, return, cancel flow down).
        Dispatch = "dispatch",
        /// A lead about a region outside the origin's jurisdiction (线索移送); the receiving
        /// group owns it from then on.
        Jurisdiction = "jurisdiction",
        /// The receiver of a forwarded lead disputes its jurisdiction (管辖争议): the lead goes to
        /// the lowest common parent group, which designates the handler.
        Dispute = "dispute",
        /// The common parent designated this group to handle the lead (指定管辖); final.
        Designation = "designation",
    }
}

impl HandoverPurpose {
    /// The receiving group owns the task (as opposed to a dispatch, which stays the
    /// dispatcher's); the origin's record only follows it.
    pub fn hands_over_ownership(self) -> bool {
        !matches!(self, HandoverPurpose::Dispatch)
    }
}

/// What the receiving group does with a handover, decided by its accepting node from the
/// topology and the calendar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Placement {
    /// Keep it here.
    Keep,
    /// Route a lead on to this group (this group has no jurisdiction over it either).
    RelayTo(BureauCode),
    /// A dispute: designate the handler by this deadline.
    DesignateBy(u64),
}

/// Where the accepting node routes a new task, from the topology.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Routing {
    /// The subject lies in this group's jurisdiction (or the kind is never forwarded).
    #[default]
    Keep,
    /// Hand it to `to_group` (the one with jurisdiction, or the parent group to route it on);
    /// `from_group` is this group's bureau, which names the forward.
    ForwardTo { to_group: BureauCode, from_group: BureauCode },
    /// No configured group covers the subject's region: kept here and flagged.
    Unrouted,
}

/// The terms of a dispatch handed to another group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchTerms {
    pub assignee: BureauCode,
    pub ack_deadline_ms: u64,
    pub complete_deadline_ms: u64,
}

/// The task as it travels to the target group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handover {
    pub forward: ForwardId,
    pub purpose: HandoverPurpose,
    pub origin_task: TaskId,
    /// The bureau that dispatched or forwarded it.
    pub origin_bureau: BureauCode,
    pub kind: TaskKind,
    pub severity: Severity,
    pub title: String,
    pub description: String,
    pub subject: Subject,
    pub source: Source,
    pub dispatch: Option<DispatchTerms>,
    pub note: String,
    pub sent_by: String,
}

/// A dispatcher's decision on a dispatched task, flowing down to the group that works on it.
/// Numbered per forward from 1, so the target applies each exactly once and in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instruction {
    pub forward: ForwardId,
    pub number: u32,
    pub transition: Transition,
    pub note: String,
    pub sent_by: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    Handover(Handover),
    Instruction(Instruction),
}

impl Message {
    pub fn forward(&self) -> ForwardId {
        match self {
            Message::Handover(handover) => handover.forward,
            Message::Instruction(instruction) => instruction.forward,
        }
    }
}

/// A message committed at the origin and not yet receipted by the target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub seq: u64,
    pub to_group: BureauCode,
    /// The task at the origin the message belongs to.
    pub task: TaskId,
    pub message: Message,
    pub committed_ms: u64,
    /// The origin's console was alarmed that delivery takes too long.
    pub stuck_flagged: bool,
}

/// On a task handed to another group: where it went and what is known of it there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteHandling {
    pub forward: ForwardId,
    pub to_group: BureauCode,
    pub purpose: HandoverPurpose,
    /// The target's task id and when its receipt was committed here.
    pub delivered: Option<(TaskId, u64)>,
    pub instructions_sent: u32,
    /// The target's task version the record here reflects.
    pub mirrored_version: u64,
}

/// A target group's answer to an outbox message, as the origin records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Receipt {
    /// Taken: the target's task for a handover (an instruction answers with the same task).
    Accepted(TaskId),
    /// Refused, with the target's reason: a handover comes back to this group.
    Refused(String),
}

/// On a task that arrived from another group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Received {
    pub forward: ForwardId,
    pub from_group: BureauCode,
    pub from_task: TaskId,
    pub purpose: HandoverPurpose,
    /// Instructions handled so far (applied or refused).
    pub instructions_handled: u32,
}

/// The state of a received task, sent back to the group it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    pub forward: ForwardId,
    /// The task's id at the reporting group.
    pub task: TaskId,
    pub version: u64,
    pub instructions_handled: u32,
    /// The task's handling there, which the record here mirrors.
    pub fields: Handling,
    /// The whole timeline (bounded by `TIMELINE_ENTRIES_MAX`): the origin keeps what it lacks.
    pub timeline: Vec<TimelineEntry>,
}

impl StatusReport {
    /// The report of a received task; `None` for a task that did not come from another group.
    pub fn of(task: &Task) -> Option<StatusReport> {
        let received = task.received.as_ref()?;
        Some(StatusReport {
            forward: received.forward,
            task: task.id,
            version: task.version,
            instructions_handled: received.instructions_handled,
            fields: task.handling.clone(),
            timeline: task.timeline.clone(),
        })
    }
}

/// A peer group's actor: the group that sent a delivery or report.
pub fn peer_actor(group: BureauCode) -> Actor {
    Actor { user: format!("group:{group}"), bureau: group, role: Role::Peer }
}

fn require_role(actor: &Actor, role: Role, what: &str) -> Result<(), Rejection> {
    if actor.role == role {
        Ok(())
    } else {
        Err(Rejection::Forbidden(format!("only a {role} actor may {what}")))
    }
}

impl apply::Ledger {
    /// Commits an outbox entry. The caller changes the task in the same apply, so the entry and
    /// the tracking record commit together.
    pub(super) fn enqueue(&mut self, stamp_ms: u64, to_group: BureauCode, task: TaskId, message: Message) {
        let seq = self.next_message_seq;
        if let Message::Handover(handover) = &message {
            assert_eq!(handover.forward.seq, seq, "a handover's forward id is its message number");
            let previous = self.sent.insert(handover.forward, task);
            assert!(previous.is_none(), "a forward id is used once");
        }
        self.next_message_seq += 1;
        let entry = OutboxEntry { seq, to_group, task, message, committed_ms: stamp_ms, stuck_flagged: false };
        let previous = self.outbox.insert(seq, entry);
        assert!(previous.is_none(), "message numbers are never reused");
    }

    /// The forward id the next handover committed here gets.
    pub(super) fn next_forward(&self, group: BureauCode) -> ForwardId {
        ForwardId { origin_group: group, seq: self.next_message_seq }
    }

    /// Messages waiting for a receipt, oldest first.
    pub fn outbox(&self) -> impl Iterator<Item = &OutboxEntry> {
        self.outbox.values()
    }

    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// Tasks handed over from here, in forward order.
    pub fn handed_over_tasks(&self) -> impl Iterator<Item = &Task> {
        self.sent.values().filter_map(|id| self.task(*id))
    }

    /// The task here that was handed over as `forward`.
    pub fn sent_task(&self, forward: ForwardId) -> Option<&Task> {
        self.sent.get(&forward).and_then(|id| self.task(*id))
    }

    /// The task created here for a forward id, if it arrived.
    pub fn received_task(&self, forward: ForwardId) -> Option<&Task> {
        self.inbox.get(&forward).and_then(|id| self.task(*id))
    }

    /// Handles a delivery from the peer group `actor`: a handover creates the task once per
    /// forward id (a repeat answers with the same task); an instruction applies once, in order.
    /// `placement` says what this group does with a handover (from the accepting node).
    pub(super) fn receive(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        message: &Message,
        group: BureauCode,
        placement: Placement,
    ) -> CommandResult {
        require_role(actor, Role::Peer, "deliver messages between groups")?;
        match message {
            Message::Handover(handover) => self.receive_handover(stamp_ms, actor, handover, group, placement),
            Message::Instruction(instruction) => self.receive_instruction(stamp_ms, actor, instruction),
        }
    }

    fn receive_handover(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        handover: &Handover,
        group: BureauCode,
        placement: Placement,
    ) -> CommandResult {
        if handover.forward.origin_group != actor.bureau {
            return Err(Rejection::Forbidden(format!(
                "group {} cannot deliver forward {} of group {}",
                actor.bureau, handover.forward, handover.forward.origin_group
            )));
        }
        if let Some(task) = self.received_task(handover.forward) {
            return Ok(Applied { replayed: true, ..Applied::of_task(Arc::new(task.clone())) });
        }
        validate_handover(handover, actor.bureau, group, stamp_ms)?;
        let (relay_to, designate_by_ms) = match (handover.purpose, placement) {
            (_, Placement::Keep) if handover.purpose != HandoverPurpose::Dispute => (None, None),
            (HandoverPurpose::Jurisdiction, Placement::RelayTo(next)) => {
                if next == group || next == actor.bureau {
                    return Err(Rejection::Invalid {
                        field: "relay_to".into(),
                        reason: "a lead is never routed back".into(),
                    });
                }
                (Some(next), None)
            }
            (HandoverPurpose::Dispute, Placement::DesignateBy(deadline_ms)) if deadline_ms > stamp_ms => {
                (None, Some(deadline_ms))
            }
            _ => {
                return Err(Rejection::Invalid {
                    field: "placement".into(),
                    reason: format!("a {} handover cannot be placed as {placement:?}", handover.purpose),
                })
            }
        };
        let id = self.take_task_id();
        let origin_bureau = match handover.purpose {
            HandoverPurpose::Dispatch => handover.origin_bureau,
            // The receiving command centre owns the lead from here on and dispatches it.
            HandoverPurpose::Jurisdiction | HandoverPurpose::Dispute | HandoverPurpose::Designation => group,
        };
        let mut task = Task::registered(
            id,
            stamp_ms,
            handover.kind,
            handover.severity,
            handover.title.clone(),
            handover.description.clone(),
            handover.subject.clone(),
            handover.source,
            origin_bureau,
            None,
            TimelineEntry {
                version: 1,
                at_ms: stamp_ms,
                action: TimelineAction::Receive,
                // The sending group is on record, not the user name it wrote: that is its word.
                actor_user: actor.user.clone(),
                actor_bureau: handover.origin_bureau,
                note: handover.note.clone(),
                assignee_bureau: handover.dispatch.as_ref().map(|terms| terms.assignee),
                outcome: None,
            },
        );
        task.received = Some(Received {
            forward: handover.forward,
            from_group: actor.bureau,
            from_task: handover.origin_task,
            purpose: handover.purpose,
            instructions_handled: 0,
        });
        if let Some(deadline_ms) = designate_by_ms {
            // The common parent's own task: designate the handler by the deadline, tracked by
            // this group's watch like any dispatched task.
            task.handling.state = TaskState::Dispatched;
            task.handling.assignee_bureau = Some(group);
            task.handling.ack_deadline_ms = Some(deadline_ms);
            task.handling.complete_deadline_ms = Some(deadline_ms);
            task.handling.dispatched_at_ms = Some(stamp_ms);
        }
        if let Some(terms) = &handover.dispatch {
            // Deadlines are kept as the dispatcher set them, even if delivery took long: a
            // deadline already past is recorded missed by this group's watch at once.
            task.handling.state = TaskState::Dispatched;
            task.handling.assignee_bureau = Some(terms.assignee);
            task.handling.ack_deadline_ms = Some(terms.ack_deadline_ms);
            task.handling.complete_deadline_ms = Some(terms.complete_deadline_ms);
            task.handling.dispatched_at_ms = Some(stamp_ms);
        }
        if let Some(next_group) = relay_to {
            // Routed on: this group keeps a tracking record, like any origin.
            let forward = self.next_forward(group);
            let onward = Handover { forward, origin_task: id, origin_bureau: group, ..handover.clone() };
            self.enqueue(stamp_ms, next_group, id, Message::Handover(onward));
            task.remote = Some(RemoteHandling {
                forward,
                to_group: next_group,
                purpose: HandoverPurpose::Jurisdiction,
                delivered: None,
                instructions_sent: 0,
                mirrored_version: 0,
            });
            task.push_entry(stamp_ms, actor, TimelineAction::Forward, String::new(), Some(next_group));
        }
        let task = Arc::new(task);
        self.inbox.insert(handover.forward, id);
        let previous = self.insert_task(task.clone());
        assert!(previous.is_none(), "task ids are never reused");
        Ok(Applied::of_task(task))
    }

    fn receive_instruction(&mut self, stamp_ms: u64, actor: &Actor, instruction: &Instruction) -> CommandResult {
        let id = *self.inbox.get(&instruction.forward).ok_or_else(|| {
            Rejection::NotYet(format!("forward {} has not arrived here; deliver it first", instruction.forward))
        })?;
        let shared = self.task_mut(id).expect("the inbox names existing tasks");
        let received = shared.received.clone().expect("a task in the inbox was received");
        if received.from_group != actor.bureau {
            return Err(Rejection::Forbidden(format!(
                "forward {} did not come from {}",
                received.forward, actor.bureau
            )));
        }
        if received.purpose != HandoverPurpose::Dispatch || !instruction.transition.action().flows_down() {
            return Err(Rejection::Forbidden(format!(
                "only a dispatcher's review (close, return, cancel, extension decisions) of a dispatched task flows down, not {}",
                instruction.transition.action()
            )));
        }
        if instruction.number <= received.instructions_handled {
            return Ok(Applied { replayed: true, ..Applied::of_task(shared.clone()) });
        }
        if instruction.number != received.instructions_handled + 1 {
            return Err(Rejection::NotYet(format!(
                "instruction {} of forward {} arrived before instruction {}",
                instruction.number,
                received.forward,
                received.instructions_handled + 1
            )));
        }
        validate::note(&instruction.note, false)?;
        // The counter moves even when the transition is refused below: the instruction is
        // handled (its refusal is the answer), and the next one must not wait for it.
        Arc::make_mut(shared).received.as_mut().expect("received").instructions_handled += 1;
        let from = shared.handling.state;
        // The dispatcher's cancel wins over a completion that crossed it on the way.
        let next = match (&instruction.transition, from) {
            (Transition::Cancel, TaskState::Completed) => Some(TaskState::Cancelled),
            (transition, from) => transition.action().next_state(from),
        };
        let next = next.ok_or_else(|| Rejection::IllegalTransition {
            from,
            action: instruction.transition.action().to_string(),
        })?;
        policy::records_allow(shared, instruction.transition.action())?;
        shared.timeline_has_room()?;
        // The sending group decided, for the bureau that dispatched; `sent_by` is only its word.
        let dispatcher = Actor { user: actor.user.clone(), bureau: shared.origin_bureau, role: Role::Command };
        let task = Arc::make_mut(shared);
        task.record_transition(stamp_ms, &dispatcher, &instruction.note, &instruction.transition, next)?;
        Ok(Applied::of_task(shared.clone()))
    }

    /// The origin's leader commits the target's answer to message `seq`.
    pub(super) fn record_receipt(&mut self, stamp_ms: u64, actor: &Actor, seq: u64, answer: &Receipt) -> CommandResult {
        let refusal = match answer {
            Receipt::Accepted(_) => None,
            Receipt::Refused(reason) => Some(reason.as_str()),
        };
        require_role(actor, Role::System, "record receipts")?;
        let entry = self
            .outbox
            .remove(&seq)
            .ok_or_else(|| Rejection::NothingToRecord(format!("message {seq} is not waiting for a receipt")))?;
        if let (Message::Handover(handover), Some(_)) = (&entry.message, refusal) {
            // Instructions queued behind a refused handover have nowhere to go.
            self.sent.remove(&handover.forward);
            self.outbox.retain(|_, queued| queued.message.forward() != handover.forward);
        }
        let shared = self.task_mut(entry.task).expect("outbox entries name existing tasks");
        let (action, note) = match (&entry.message, answer) {
            (Message::Handover(_), Receipt::Accepted(target_task)) => {
                (TimelineAction::ForwardDelivered, format!("{}#{target_task}", entry.to_group))
            }
            (Message::Handover(_), Receipt::Refused(reason)) => (TimelineAction::ForwardRefused, truncate_note(reason)),
            (Message::Instruction(_), Receipt::Accepted(_)) => return Ok(Applied::of_task(shared.clone())),
            (Message::Instruction(instruction), Receipt::Refused(reason)) => (
                TimelineAction::ForwardRefused,
                truncate_note(&format!("{}: {reason}", instruction.transition.action())),
            ),
        };
        let task = Arc::make_mut(shared);
        match (&entry.message, answer) {
            (Message::Handover(_), Receipt::Accepted(target_task)) => {
                task.remote.as_mut().expect("a handover's task tracks it").delivered = Some((*target_task, stamp_ms));
            }
            (Message::Handover(_), Receipt::Refused(_)) => {
                // Refused there: the task is back here, flagged for the command centre, never
                // dropped.
                task.remote = None;
                task.jurisdiction_unrouted = true;
            }
            (Message::Instruction(_), _) => {}
        }
        // A receipt is always recorded, even on a full timeline: the outbox must empty.
        if task.timeline.len() < TIMELINE_ENTRIES_MAX {
            task.push_entry(stamp_ms, actor, action, note, Some(entry.to_group));
        }
        Ok(Applied::of_task(shared.clone()))
    }

    /// The origin's leader alarms the console: message `seq` has waited too long.
    pub(super) fn flag_stuck(&mut self, stamp_ms: u64, actor: &Actor, seq: u64) -> CommandResult {
        require_role(actor, Role::System, "flag stuck forwards")?;
        let entry =
            self.outbox.get_mut(&seq).filter(|entry| !entry.stuck_flagged).ok_or_else(|| {
                Rejection::NothingToRecord(format!("message {seq} is not waiting or already flagged"))
            })?;
        entry.stuck_flagged = true;
        let (task_id, to_group) = (entry.task, entry.to_group);
        let shared = self.task_mut(task_id).expect("outbox entries name existing tasks");
        shared.timeline_has_room()?;
        let task = Arc::make_mut(shared);
        task.push_entry(stamp_ms, actor, TimelineAction::ForwardStuck, String::new(), Some(to_group));
        Ok(Applied::of_task(shared.clone()))
    }

    /// A status report from the group a task was handed to: the tracking record takes the
    /// entries it lacks and, once the target has handled every instruction sent, its state.
    pub(super) fn mirror(&mut self, stamp_ms: u64, actor: &Actor, report: &StatusReport) -> CommandResult {
        require_role(actor, Role::Peer, "report the status of forwarded tasks")?;
        let id =
            self.sent.get(&report.forward).copied().ok_or_else(|| {
                Rejection::NothingToRecord(format!("no task here was handed over as {}", report.forward))
            })?;
        let shared = self.task_mut(id).expect("found above");
        let remote = shared.remote.clone().expect("found by its remote handling");
        if remote.to_group != actor.bureau {
            return Err(Rejection::Forbidden(format!(
                "forward {} went to {}, not {}",
                remote.forward, remote.to_group, actor.bureau
            )));
        }
        if report.version <= remote.mirrored_version {
            return Err(Rejection::NothingToRecord(format!(
                "version {} of {} is known",
                report.version, remote.forward
            )));
        }
        if remote.delivered.is_none() {
            // A report can only be about a task the target has confirmed it holds: before the
            // receipt, the target could still refuse the handover and leave its report behind.
            return Err(Rejection::NotYet(format!("forward {} is not receipted here yet", remote.forward)));
        }
        check_report(report, &remote, shared, stamp_ms)?;
        let task = Arc::make_mut(shared);
        let remote = task.remote.as_mut().expect("checked above");
        let to_group = remote.to_group;
        let known = remote.mirrored_version;
        remote.mirrored_version = report.version;
        let dispatched_here = !remote.purpose.hands_over_ownership();
        let in_step = report.instructions_handled == remote.instructions_sent;
        let mut appended = 0;
        for entry in report.timeline.iter().filter(|e| e.version > known) {
            // The dispatcher's own decisions are on this timeline already; the target's copy
            // of the create is not news.
            let ours = dispatched_here && is_dispatcher_entry(entry.action);
            let full = task.timeline.len() >= TIMELINE_ENTRIES_MAX - TIMELINE_ENTRIES_KEPT_FOR_DISPATCHER;
            if ours || entry.action == TimelineAction::Receive || full {
                continue;
            }
            // On a lead handed over for good, an entry of a bureau the reporting group does not
            // hold (the lead went on, or came back) is that group's account of it, and says so:
            // `group:440300/gd-command`, never a bare name of this group's own staff.
            let hearsay = !dispatched_here && !speaks_for(entry.actor_bureau, to_group, task.origin_bureau);
            let actor_user = if hearsay {
                format!("{}/{}", peer_actor(to_group).user, entry.actor_user)
            } else {
                entry.actor_user.clone()
            };
            task.version += 1;
            task.timeline.push(TimelineEntry { version: task.version, at_ms: stamp_ms, actor_user, ..entry.clone() });
            appended += 1;
        }
        if in_step && !task.handling.state.is_terminal() {
            // On a dispatch, when it was dispatched is the dispatcher's record (the target
            // counts from its receipt).
            let dispatched_at_ms = task.handling.dispatched_at_ms;
            task.handling = report.fields.clone();
            if dispatched_here {
                task.handling.dispatched_at_ms = dispatched_at_ms;
            }
        }
        if appended > 0 {
            task.updated_at_ms = stamp_ms;
        }
        assert_eq!(task.version as usize, task.timeline.len(), "one timeline entry per version");
        Ok(Applied::of_task(shared.clone()))
    }
}

fn is_dispatcher_entry(action: TimelineAction) -> bool {
    matches!(
        action,
        TimelineAction::Dispatch
            | TimelineAction::Close
            | TimelineAction::Return
            | TimelineAction::Cancel
            | TimelineAction::GrantExtension
            | TimelineAction::RefuseExtension
    )
}

fn truncate_note(text: &str) -> String {
    text.chars().take(NOTE_CHARS_MAX).collect()
}

/// A handover is judged as a whole before anything changes: it comes from another group's
/// ledger, so nothing in it is believed that this group can check. `sender` is the group that
/// delivered it (authenticated by its link token), `group` this group.
fn validate_handover(
    handover: &Handover,
    sender: BureauCode,
    group: BureauCode,
    stamp_ms: u64,
) -> Result<(), Rejection> {
    validate::new_task(&super::command::NewTask {
        kind: handover.kind,
        severity: handover.severity,
        title: handover.title.clone(),
        description: handover.description.clone(),
        subject: handover.subject.clone(),
        source: handover.source,
        origin_bureau: handover.origin_bureau,
        assignee_bureau: None,
        routing: Routing::Keep,
    })?;
    validate::note(&handover.note, false)?;
    validate::text("sent_by", &handover.sent_by, crate::limits::USER_CHARS_MAX, true, false)?;
    let regions = Regions::get();
    // A group speaks only for the bureaus of its own tree (the accepting node checks further
    // that the sender hosts the bureau, from the topology).
    if !regions.is_within(handover.origin_bureau, sender) {
        return Err(validate::invalid(
            "origin_bureau",
            format!("group {sender} cannot hand over for bureau {}", handover.origin_bureau),
        ));
    }
    match (handover.purpose, &handover.dispatch) {
        (HandoverPurpose::Dispatch, Some(terms)) => {
            // A dispatch comes down the tree: from a group above this one, for a bureau below
            // the dispatcher that this group's tree holds.
            if group == sender || !regions.is_within(group, sender) {
                return Err(Rejection::Forbidden(format!(
                    "group {sender} is not above group {group}: it cannot dispatch here"
                )));
            }
            if !regions.is_within(terms.assignee, handover.origin_bureau) || !regions.is_within(terms.assignee, group) {
                return Err(validate::invalid(
                    "assignee_bureau",
                    format!(
                        "{} is not below both the dispatching bureau {} and this group {group}",
                        terms.assignee, handover.origin_bureau
                    ),
                ));
            }
            if terms.complete_deadline_ms < terms.ack_deadline_ms {
                return Err(validate::invalid("complete_deadline", "must not be before the ack deadline"));
            }
            if terms.complete_deadline_ms > peer_deadline_max_ms(stamp_ms) {
                return Err(validate::invalid("complete_deadline", "lies too far in the future"));
            }
        }
        (HandoverPurpose::Dispatch, None) => return Err(validate::invalid("dispatch", "a dispatch carries its terms")),
        // A dispute goes up to the common superior; its designation comes down from it.
        (HandoverPurpose::Dispute, None) if group == sender || !regions.is_within(sender, group) => {
            return Err(Rejection::Forbidden(format!(
                "group {sender} is not below group {group}: it cannot dispute here"
            )));
        }
        (HandoverPurpose::Designation, None) if group == sender || !regions.is_within(group, sender) => {
            return Err(Rejection::Forbidden(format!(
                "group {sender} is not above group {group}: it cannot designate here"
            )));
        }
        (_, Some(_)) => {
            return Err(validate::invalid(
                "dispatch",
                format!("a {} handover carries no dispatch terms", handover.purpose),
            ))
        }
        (_, None) => {}
    }
    Ok(())
}

/// How far ahead a peer group's clock may run of this one's: groups keep their own clocks
/// (NTP on each), so a report's deadlines are bounded by the horizon plus this, and its event
/// times by this.
const PEER_CLOCK_SKEW_MAX_MS: u64 = 24 * 60 * 60 * 1000;

/// Timeline entries a tracking record keeps free of reports: the dispatcher can always close,
/// return or cancel, however much the target reported.
const TIMELINE_ENTRIES_KEPT_FOR_DISPATCHER: usize = 20;

/// The moves of a dispatched task the assignee's own actions make (ack, complete, a completion
/// after a return; feedback, pauses and extension requests keep the state). Every other move
/// is the dispatcher's, whose record here made it first.
fn assignee_moves(from: TaskState, to: TaskState) -> bool {
    use TaskState::*;
    matches!((from, to), (Dispatched, Acknowledged) | (Dispatched | Acknowledged | Returned, Completed))
}

/// How far the assignee's steps may seem to come before the dispatch: the dispatch is on this
/// group's clock, the steps on the target's (both kept by NTP).
const PEER_STEP_SKEW_MAX_MS: u64 = 10 * 60 * 1000;

/// A paused clock moves the completion deadline by the paused working time: at most the paused
/// span, plus the weekends and holidays that working-day arithmetic steps over.
const RESUME_SLACK_MS: u64 = 15 * 24 * 60 * 60 * 1000;

/// Whether the group a task went to (`to_group`) speaks for `bureau`: a bureau of its tree,
/// unless the bureau belongs to the origin's own part of the tree (a lead sent up to a parent
/// group lies within the parent's tree, yet the origin's bureaus are the origin's).
pub(super) fn speaks_for(bureau: BureauCode, to_group: BureauCode, origin_bureau: BureauCode) -> bool {
    let regions = Regions::get();
    let target_below_origin = regions.is_within(to_group, origin_bureau);
    regions.is_within(bureau, to_group) && (target_below_origin || !regions.is_within(bureau, origin_bureau))
}

fn peer_deadline_max_ms(stamp_ms: u64) -> u64 {
    stamp_ms.saturating_add(DEADLINE_HORIZON_MS).saturating_add(PEER_CLOCK_SKEW_MAX_MS)
}

/// A status report is judged as a whole before anything of it is copied: its fields must agree
/// with each other as every task's do (`Handling::check`), name known bureaus (a
/// dispatch's assignee within the group it went to), keep deadlines within the horizon, and
/// its timeline entries must be bounded like a client's.
fn check_report(report: &StatusReport, remote: &RemoteHandling, record: &Task, stamp_ms: u64) -> Result<(), Rejection> {
    let fields = &report.fields;
    if report.timeline.len() > TIMELINE_ENTRIES_MAX || fields.escalated_to.len() > TIMELINE_ENTRIES_MAX {
        return Err(validate::invalid("timeline", "too long"));
    }
    // Each counted step has its timeline entry, so no count exceeds the timeline's bound.
    if [fields.extensions_granted, fields.reminders_sent].iter().any(|count| *count as usize > TIMELINE_ENTRIES_MAX) {
        return Err(validate::invalid("fields", "a count beyond the timeline's length"));
    }
    fields.check().map_err(|reason| validate::invalid("fields", reason))?;
    let regions = Regions::get();
    let unknown = |code: &BureauCode| !regions.contains(*code);
    if fields.assignee_bureau.iter().chain(&fields.escalated_to).any(unknown) {
        return Err(validate::invalid("fields", "unknown bureau"));
    }
    // A task is escalated up its assignee's tree, and an escalation makes it visible to that
    // bureau's centre here: a report cannot name any other.
    let above_assignee =
        |code: &BureauCode| fields.assignee_bureau.is_some_and(|assignee| regions.is_within(assignee, *code));
    if !fields.escalated_to.iter().all(above_assignee) {
        return Err(validate::invalid("fields.escalated_to", "escalations go up the assignee's tree"));
    }
    // The target cannot have handled instructions that were never sent.
    if report.instructions_handled > remote.instructions_sent {
        return Err(validate::invalid("instructions_handled", "more than were sent"));
    }
    let dispatched_here = remote.purpose == HandoverPurpose::Dispatch;
    // The fields are copied only from a report in step with every instruction sent (before
    // that, the record here is ahead: its dispatcher decided since).
    let copied = report.instructions_handled == remote.instructions_sent;
    if dispatched_here && copied {
        // The target works on the task; it neither re-dispatches it nor decides for the
        // dispatcher.
        if fields.assignee_bureau != record.handling.assignee_bureau {
            return Err(validate::invalid("fields.assignee_bureau", "a dispatched task keeps its assignee"));
        }
        if fields.state != record.handling.state && !assignee_moves(record.handling.state, fields.state) {
            return Err(validate::invalid(
                "fields.state",
                format!("the assignee does not make a {} task {}", record.handling.state, fields.state),
            ));
        }
        // What the assignee did stays done: an ack on record is the one reported, a completion
        // is not dated before the one on record.
        if record.handling.acked_at_ms.is_some() && fields.acked_at_ms != record.handling.acked_at_ms {
            return Err(validate::invalid("fields.acked_at_ms", "the ack on record is the ack"));
        }
        if record
            .handling
            .completed_at_ms
            .is_some_and(|on_record| fields.completed_at_ms.is_none_or(|at| at < on_record))
        {
            return Err(validate::invalid("fields.completed_at_ms", "before the completion on record"));
        }
        // The dispatcher's terms are the dispatcher's: the ack deadline and the extensions it
        // granted (when it dispatched stays as recorded here). The completion deadline moves
        // there only when the assignee's clock was stopped and restarted (a resume the report
        // shows).
        let terms_kept = fields.ack_deadline_ms == record.handling.ack_deadline_ms
            && fields.extensions_granted == record.handling.extensions_granted;
        if !terms_kept {
            return Err(validate::invalid("fields", "the dispatcher's terms are the dispatcher's"));
        }
        let news = || report.timeline.iter().filter(|entry| entry.version > remote.mirrored_version);
        let resumed = news().any(|entry| entry.action == TimelineAction::Resume);
        // Since when the clock stood still: on record here, or a pause the report shows.
        let paused_since_ms = record
            .handling
            .paused_since_ms
            .or_else(|| news().find(|entry| entry.action == TimelineAction::Pause).map(|entry| entry.at_ms));
        let moved_by = match (record.handling.complete_deadline_ms, fields.complete_deadline_ms) {
            (Some(on_record), Some(reported)) => reported.checked_sub(on_record),
            (on_record, reported) => (on_record == reported).then_some(0),
        };
        let allowed_ms = paused_since_ms
            .filter(|_| resumed)
            .map_or(0, |since| stamp_ms.saturating_sub(since).saturating_add(RESUME_SLACK_MS));
        if moved_by.is_none_or(|moved| moved > allowed_ms) {
            return Err(validate::invalid("fields.complete_deadline_ms", "moved beyond a pause and its resume"));
        }
        // And the assignee's steps follow the dispatch, in order (the dispatch is on this
        // group's clock, the steps on the target's: they may differ by the skew).
        let steps = [record.handling.dispatched_at_ms, fields.acked_at_ms, fields.completed_at_ms];
        let mut previous = 0;
        for at in steps.into_iter().flatten() {
            if at.saturating_add(PEER_STEP_SKEW_MAX_MS) < previous {
                return Err(validate::invalid("fields", "the assignee's steps out of order"));
            }
            previous = at;
        }
    }
    let deadline_max_ms = peer_deadline_max_ms(stamp_ms);
    if [fields.ack_deadline_ms, fields.complete_deadline_ms, fields.extension_requested_deadline_ms]
        .iter()
        .flatten()
        .any(|deadline| *deadline > deadline_max_ms)
    {
        return Err(validate::invalid("fields", "a deadline lies too far in the future"));
    }
    let event_max_ms = stamp_ms.saturating_add(PEER_CLOCK_SKEW_MAX_MS);
    let events = [
        fields.dispatched_at_ms,
        fields.acked_at_ms,
        fields.completed_at_ms,
        fields.closed_at_ms,
        fields.ack_missed_deadline_ms,
        fields.completion_missed_deadline_ms,
        fields.last_feedback_ms,
        fields.paused_since_ms,
    ];
    if events.iter().flatten().any(|at| *at > event_max_ms) {
        return Err(validate::invalid("fields", "a time lies in the future"));
    }
    for entry in report.timeline.iter().filter(|entry| entry.version > remote.mirrored_version) {
        validate::note(&entry.note, false)?;
        validate::text("timeline.actor_user", &entry.actor_user, USER_CHARS_MAX, false, false)?;
        if unknown(&entry.actor_bureau) || entry.assignee_bureau.as_ref().is_some_and(unknown) {
            return Err(validate::invalid("timeline", "unknown bureau"));
        }
        // On a dispatched task the target speaks for its own bureaus only: the dispatcher's
        // entries (skipped as known) are the only ones from above it.
        let theirs = speaks_for(entry.actor_bureau, remote.to_group, record.origin_bureau);
        if dispatched_here && !theirs && !is_dispatcher_entry(entry.action) && entry.action != TimelineAction::Receive {
            return Err(validate::invalid(
                "timeline",
                format!("an entry of {} is not group {}'s", entry.actor_bureau, remote.to_group),
            ));
        }
    }
    Ok(())
}
