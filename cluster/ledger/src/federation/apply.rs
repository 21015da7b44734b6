//! The ledger's side of federation: handing a task over (with its outbox entry), receiving a
//! handover or an instruction, recording receipts and stuck messages, mirroring reports.

use std::sync::Arc;

use super::checks::{
    check_report, is_dispatcher_entry, speaks_for, validate_handover, TIMELINE_ENTRIES_KEPT_FOR_DISPATCHER,
};
use super::*;
use crate::apply::Ledger;
use crate::command::{Applied, CommandResult, Rejection};
use crate::limits::{NOTE_CHARS_MAX, TIMELINE_ENTRIES_MAX};
use crate::task::{TaskState, TimelineAction};
use crate::{policy, validate};

fn require_role(actor: &Actor, role: Role, what: &str) -> Result<(), Rejection> {
    if actor.role == role {
        Ok(())
    } else {
        Err(Rejection::Forbidden(format!("only a {role} actor may {what}")))
    }
}

impl Ledger {
    /// Commits an outbox entry. The caller changes the task in the same apply, so the entry and
    /// the tracking record commit together.
    pub(crate) fn enqueue(&mut self, stamp_ms: u64, to_group: BureauCode, task: TaskId, message: Message) {
        let seq = self.next_message_seq;
        if let Some(handover) = message.handover() {
            assert_eq!(handover.forward.seq, seq, "a handover's forward id is its message number");
            self.insert_sent(handover.forward, task);
        }
        self.next_message_seq += 1;
        let entry = OutboxEntry { seq, to_group, task, message, committed_ms: stamp_ms, stuck_flagged: false };
        let previous = self.outbox.insert(seq, entry);
        assert!(previous.is_none(), "message numbers are never reused");
    }

    /// The forward id the next handover committed here gets.
    pub(crate) fn next_forward(&self, group: BureauCode) -> ForwardId {
        ForwardId { origin_group: group, seq: self.next_message_seq }
    }

    /// Messages waiting for a receipt, oldest first.
    pub fn outbox(&self) -> impl Iterator<Item = &OutboxEntry> {
        self.outbox.values()
    }

    /// Whether message `seq` is still in the outbox (not receipted yet).
    pub fn outbox_holds(&self, seq: u64) -> bool {
        self.outbox.contains_key(&seq)
    }

    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// The task here that was handed over as `forward`.
    pub fn sent_task(&self, forward: ForwardId) -> Option<Arc<Task>> {
        self.sent_id(forward).and_then(|id| self.task(id))
    }

    /// The task created here for a forward id, if it arrived.
    pub fn received_task(&self, forward: ForwardId) -> Option<Arc<Task>> {
        self.received_id(forward).and_then(|id| self.task(id))
    }

    /// Handles a delivery from the peer group `actor`: a handover creates the task once per
    /// forward id (a repeat answers with the same task); an instruction applies once, in order.
    /// `placement` says what this group does with a handover (from the accepting node).
    pub(crate) fn receive(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        message: &Message,
        group: BureauCode,
        placement: Placement,
    ) -> CommandResult {
        require_role(actor, Role::Peer, "deliver messages between groups")?;
        match message {
            Message::Handover(handover) => self.receive_handover(stamp_ms, actor, handover, None, group, placement),
            Message::DrawnInspection(drawn) => {
                self.receive_handover(stamp_ms, actor, &drawn.0, Some(&drawn.1), group, placement)
            }
            Message::Instruction(instruction) => self.receive_instruction(stamp_ms, actor, instruction),
        }
    }

    /// `drawn`: what the origin's draw decided, for a drawn inspection (the task is an
    /// inspection here, its result entered by the bureau and published by the organiser).
    fn receive_handover(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        handover: &Handover,
        drawn: Option<&DrawnAtOrigin>,
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
            return Ok(Applied { replayed: true, ..Applied::of_task(task) });
        }
        validate_handover(&self.regions(), handover, actor.bureau, group, stamp_ms)?;
        if let Some(drawn) = drawn {
            super::checks::validate_drawn(handover, drawn)?;
        }
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
        task.inspection = drawn.map(|drawn| crate::campaign::InspectionRecord {
            campaign: crate::campaign::CAMPAIGN_ELSEWHERE,
            campaign_name: drawn.campaign_name.clone(),
            items: drawn.items.clone(),
            inspectors: drawn.inspectors.clone(),
            risk_class: drawn.risk_class,
            top_up: drawn.top_up,
            result_entered_at_ms: None,
            publish_deadline_ms: None,
            publish_missed_deadline_ms: None,
            published_at_ms: None,
            withdrawn_at_ms: None,
        });
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
        self.insert_received(handover.forward, id);
        Ok(Applied::of_task(self.insert_new_task(task)))
    }

    fn receive_instruction(&mut self, stamp_ms: u64, actor: &Actor, instruction: &Instruction) -> CommandResult {
        let id = self.received_id(instruction.forward).ok_or_else(|| {
            Rejection::NotYet(format!("forward {} has not arrived here; deliver it first", instruction.forward))
        })?;
        let shared = self.task(id).expect("the inbox names existing tasks");
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
            return Ok(Applied { replayed: true, ..Applied::of_task(shared) });
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
        drop(shared);
        // The counter moves even when the transition is refused below: the instruction is
        // handled (its refusal is the answer), and the next one must not wait for it.
        let mut checked_out = self.check_out(id).expect("found above");
        checked_out.task.received.as_mut().expect("received").instructions_handled += 1;
        let decided = take_instruction(&mut checked_out.task, stamp_ms, actor, instruction);
        let task = self.check_in(checked_out);
        decided.map(|()| Applied::of_task(task))
    }

    /// The origin's leader commits the target's answer to message `seq`.
    pub(crate) fn record_receipt(&mut self, stamp_ms: u64, actor: &Actor, seq: u64, answer: &Receipt) -> CommandResult {
        let refusal = match answer {
            Receipt::Accepted(_) => None,
            Receipt::Refused(reason) => Some(reason.as_str()),
        };
        require_role(actor, Role::System, "record receipts")?;
        let entry = self
            .outbox
            .remove(&seq)
            .ok_or_else(|| Rejection::NothingToRecord(format!("message {seq} is not waiting for a receipt")))?;
        if let (Some(handover), Some(_)) = (entry.message.handover(), refusal) {
            // Instructions queued behind a refused handover have nowhere to go.
            self.remove_sent(handover.forward);
            self.outbox.retain(|_, queued| queued.message.forward() != handover.forward);
        }
        let (action, note) = match (&entry.message, answer) {
            (Message::Handover(_) | Message::DrawnInspection(_), Receipt::Accepted(target_task)) => {
                (TimelineAction::ForwardDelivered, format!("{}#{target_task}", entry.to_group))
            }
            (Message::Handover(_) | Message::DrawnInspection(_), Receipt::Refused(reason)) => {
                (TimelineAction::ForwardRefused, truncate_note(reason))
            }
            (Message::Instruction(_), Receipt::Accepted(_)) => {
                let task = self.task(entry.task).expect("outbox entries name existing tasks");
                return Ok(Applied::of_task(task));
            }
            (Message::Instruction(instruction), Receipt::Refused(reason)) => (
                TimelineAction::ForwardRefused,
                truncate_note(&format!("{}: {reason}", instruction.transition.action())),
            ),
        };
        let mut checked_out = self.check_out(entry.task).expect("outbox entries name existing tasks");
        let task = &mut checked_out.task;
        match (&entry.message, answer) {
            (Message::Handover(_) | Message::DrawnInspection(_), Receipt::Accepted(target_task)) => {
                task.remote.as_mut().expect("a handover's task tracks it").delivered = Some((*target_task, stamp_ms));
            }
            (Message::Handover(_) | Message::DrawnInspection(_), Receipt::Refused(_)) => {
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
        Ok(Applied::of_task(self.check_in(checked_out)))
    }

    /// The origin's leader alarms the console: message `seq` has waited too long.
    pub(crate) fn flag_stuck(&mut self, stamp_ms: u64, actor: &Actor, seq: u64) -> CommandResult {
        require_role(actor, Role::System, "flag stuck forwards")?;
        let entry =
            self.outbox.get(&seq).filter(|entry| !entry.stuck_flagged).ok_or_else(|| {
                Rejection::NothingToRecord(format!("message {seq} is not waiting or already flagged"))
            })?;
        let (task_id, to_group) = (entry.task, entry.to_group);
        self.task(task_id).expect("outbox entries name existing tasks").timeline_has_room()?;
        self.outbox.get_mut(&seq).expect("found above").stuck_flagged = true;
        let mut checked_out = self.check_out(task_id).expect("found above");
        checked_out.task.push_entry(stamp_ms, actor, TimelineAction::ForwardStuck, String::new(), Some(to_group));
        Ok(Applied::of_task(self.check_in(checked_out)))
    }

    /// A status report from the group a task was handed to: the tracking record takes the
    /// entries it lacks and, once the target has handled every instruction sent, its state.
    pub(crate) fn mirror(&mut self, stamp_ms: u64, actor: &Actor, report: &StatusReport) -> CommandResult {
        require_role(actor, Role::Peer, "report the status of forwarded tasks")?;
        let id = self
            .sent_id(report.forward)
            .ok_or_else(|| Rejection::NothingToRecord(format!("no task here was handed over as {}", report.forward)))?;
        let shared = self.task(id).expect("found above");
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
        check_report(&self.regions(), report, &remote, &shared, stamp_ms)?;
        drop(shared);
        let mut checked_out = self.check_out(id).expect("found above");
        let task = &mut checked_out.task;
        let remote = task.remote.as_mut().expect("checked above");
        let to_group = remote.to_group;
        let regions = self.regions();
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
            let hearsay = !dispatched_here && !speaks_for(&regions, entry.actor_bureau, to_group, task.origin_bureau);
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
        Ok(Applied::of_task(self.check_in(checked_out)))
    }
}

/// Takes a dispatcher's instruction on a task received for a dispatch, whose counter has moved.
fn take_instruction(task: &mut Task, stamp_ms: u64, actor: &Actor, instruction: &Instruction) -> Result<(), Rejection> {
    let from = task.handling.state;
    // The dispatcher's cancel wins over a completion that crossed it on the way.
    let next = match (&instruction.transition, from) {
        (Transition::Cancel, TaskState::Completed) => Some(TaskState::Cancelled),
        (transition, from) => transition.action().next_state(from),
    };
    let next =
        next.ok_or_else(|| Rejection::IllegalTransition { from, action: instruction.transition.action().to_string() })?;
    policy::records_allow(task, instruction.transition.action())?;
    task.timeline_has_room()?;
    // The sending group decided, for the bureau that dispatched; `sent_by` is only its word.
    let dispatcher = Actor { user: actor.user.clone(), bureau: task.origin_bureau, role: Role::Command };
    task.record_transition(stamp_ms, &dispatcher, &instruction.note, &instruction.transition, next)
}

fn truncate_note(text: &str) -> String {
    text.chars().take(NOTE_CHARS_MAX).collect()
}
