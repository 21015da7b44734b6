//! A task's timeline: every change adds one entry and one version. The changes of a task in
//! place, as methods on `Task`, at the layer above the commands they record (the `Task` type
//! itself knows no command).

use super::bureau::BureauCode;
use super::command::{Actor, Rejection, Transition};
use super::task::{CompletionOutcome, HandlerRef, HandlersChange, Task, TaskState, TimelineAction, TimelineEntry};
use crate::limits::TIMELINE_ENTRIES_MAX;

impl Task {
    /// Every change adds a timeline entry; a task's timeline is bounded.
    pub(crate) fn timeline_has_room(&self) -> Result<(), Rejection> {
        if self.timeline.len() >= TIMELINE_ENTRIES_MAX {
            return Err(Rejection::LimitReached(format!(
                "task {} has {TIMELINE_ENTRIES_MAX} timeline entries",
                self.id
            )));
        }
        Ok(())
    }

    /// Adds a timeline entry made by the deadline watch, the courier or a peer (one version
    /// each), like every change.
    pub(crate) fn push_entry(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        action: TimelineAction,
        note: String,
        assignee_bureau: Option<BureauCode>,
    ) {
        self.add_entry(stamp_ms, actor, action, note, assignee_bureau, None);
    }

    /// A change that reports an outcome without completing the task (a department's part of a
    /// joint inspection).
    pub(crate) fn push_entry_with_outcome(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        action: TimelineAction,
        note: String,
        assignee_bureau: Option<BureauCode>,
        outcome: CompletionOutcome,
    ) {
        self.add_entry(stamp_ms, actor, action, note, assignee_bureau, Some(outcome));
    }

    /// The one place a version is added: its entry, the version and the change's time.
    fn add_entry(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        action: TimelineAction,
        note: String,
        assignee_bureau: Option<BureauCode>,
        outcome: Option<CompletionOutcome>,
    ) {
        self.version += 1;
        self.updated_at_ms = stamp_ms;
        self.timeline.push(TimelineEntry {
            version: self.version,
            at_ms: stamp_ms,
            action,
            actor_user: actor.user.clone(),
            actor_bureau: actor.bureau,
            note,
            assignee_bureau,
            outcome,
        });
        assert_eq!(self.version as usize, self.timeline.len(), "one timeline entry per version");
    }

    /// Makes a checked, legal transition: sets the fields it moves, the state, and adds its
    /// timeline entry. Handovers (`Forward`, `DispatchAcross`, ...) are made by `Ledger::hand_over`:
    /// one here is refused before anything changes (the transition may come from another group).
    pub(crate) fn record_transition(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        note: &str,
        transition: &Transition,
        next_state: TaskState,
    ) -> Result<(), Rejection> {
        let handling = &mut self.handling;
        let mut entry_assignee = None;
        let mut entry_outcome = None;
        let action = match transition {
            Transition::Dispatch { assignee, ack_deadline_ms, complete_deadline_ms } => {
                entry_assignee = Some(*assignee);
                handling.assignee_bureau = Some(*assignee);
                handling.ack_deadline_ms = Some(*ack_deadline_ms);
                handling.complete_deadline_ms = Some(*complete_deadline_ms);
                handling.dispatched_at_ms = Some(stamp_ms);
                handling.reminders_sent = 0;
                handling.acked_at_ms = None;
                TimelineAction::Dispatch
            }
            Transition::Ack => {
                handling.acked_at_ms = Some(stamp_ms);
                handling.reminders_sent = 0;
                TimelineAction::Ack
            }
            Transition::Claim | Transition::Assign { .. } => {
                // Taking a dispatched task is its 签收.
                if handling.state == TaskState::Dispatched {
                    handling.acked_at_ms = Some(stamp_ms);
                    handling.reminders_sent = 0;
                }
                if matches!(transition, Transition::Claim) {
                    TimelineAction::Claim
                } else {
                    TimelineAction::Assign
                }
            }
            Transition::Release => TimelineAction::Release,
            Transition::RecordOnSite(record) => {
                // Made on site, a record of a dispatched task is its 签收.
                if handling.state == TaskState::Dispatched {
                    handling.acked_at_ms = Some(stamp_ms);
                    handling.reminders_sent = 0;
                }
                let records = &mut self.field_work.site_records;
                let number = u32::try_from(records.len() + 1).expect("records per task are bounded");
                records.push(crate::site_record::SiteRecord::seal(
                    number,
                    (**record).clone(),
                    actor.user.clone(),
                    stamp_ms,
                ));
                TimelineAction::RecordOnSite
            }
            Transition::HandDown { unit } => {
                entry_assignee = Some(*unit);
                TimelineAction::HandDown
            }
            Transition::Decline => {
                // Back to the dispatcher, undispatched: the bureau that declined is on the
                // entry; its clocks stop (a miss already recorded stays on the record).
                entry_assignee = handling.assignee_bureau;
                handling.assignee_bureau = None;
                handling.ack_deadline_ms = None;
                handling.complete_deadline_ms = None;
                handling.dispatched_at_ms = None;
                handling.acked_at_ms = None;
                handling.reminders_sent = 0;
                handling.extension_requested_deadline_ms = None;
                handling.paused_since_ms = None;
                TimelineAction::Decline
            }
            Transition::Feedback => {
                handling.last_feedback_ms = Some(stamp_ms);
                TimelineAction::Feedback
            }
            Transition::Complete { outcome, .. } => {
                entry_outcome = Some(*outcome);
                handling.paused_since_ms = None;
                handling.outcome = Some(*outcome);
                handling.completed_at_ms = Some(stamp_ms);
                TimelineAction::Complete
            }
            Transition::Close => {
                handling.closed_at_ms = Some(stamp_ms);
                TimelineAction::Close
            }
            Transition::Return => {
                if let Some(inspection) = self.inspection.as_mut() {
                    inspection.returned_for_rework();
                }
                TimelineAction::Return
            }
            Transition::Cancel => TimelineAction::Cancel,
            Transition::RequestExtension { new_complete_deadline_ms, .. } => {
                handling.extension_requested_deadline_ms = Some(*new_complete_deadline_ms);
                TimelineAction::RequestExtension
            }
            Transition::GrantExtension => {
                handling.complete_deadline_ms = handling.extension_requested_deadline_ms.take();
                handling.extensions_granted = handling.extensions_granted.saturating_add(1);
                TimelineAction::GrantExtension
            }
            Transition::RefuseExtension => {
                handling.extension_requested_deadline_ms = None;
                TimelineAction::RefuseExtension
            }
            Transition::Pause => {
                handling.paused_since_ms = Some(stamp_ms);
                TimelineAction::Pause
            }
            Transition::Resume { new_complete_deadline_ms } => {
                handling.paused_since_ms = None;
                handling.complete_deadline_ms = Some(*new_complete_deadline_ms);
                TimelineAction::Resume
            }
            Transition::Forward { .. }
            | Transition::DispatchAcross { .. }
            | Transition::Dispute { .. }
            | Transition::Designate { .. } => {
                return Err(Rejection::Invalid {
                    field: "transition".into(),
                    reason: format!("{} hands the task over; it is not a change in place", transition.action()),
                })
            }
        };
        self.handling.state = next_state;
        self.add_entry(stamp_ms, actor, action, note.to_owned(), entry_assignee, entry_outcome);
        Ok(())
    }

    /// Sets the handlers as the change just recorded (its entry is the last) left them.
    pub(crate) fn set_handlers(
        &mut self,
        unit: Option<BureauCode>,
        lead: Option<HandlerRef>,
        supporting: Vec<HandlerRef>,
    ) {
        let handlers = &mut self.field_work.handlers;
        handlers.unit = unit;
        handlers.lead = lead.clone();
        handlers.supporting = supporting.clone();
        handlers.changes.push(HandlersChange { version: self.version, unit, lead, supporting });
        assert!(handlers.changes.len() <= self.timeline.len(), "a change of handlers is a change of the task");
    }
}
