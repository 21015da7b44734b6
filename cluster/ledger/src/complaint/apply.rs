//! Registering a complaint and the steps of its decision, in the ledger.

use super::*;
use crate::access;
use crate::apply::Ledger;
use crate::command::{Actor, Applied, CommandResult, Rejection, Role};
use crate::policy;
use crate::task::{Source, TimelineAction};
use crate::validate::{self, invalid};

fn validate_reporter(complaint: &NewComplaint) -> Result<(), Rejection> {
    let reporter = &complaint.reporter;
    validate::text("reporter.name", &reporter.name, REPORTER_NAME_CHARS_MAX, complaint.real_name, false)?;
    validate::text("reporter.phone", &reporter.phone, REPORTER_CONTACT_CHARS_MAX, complaint.real_name, false)?;
    validate::text("reporter.id_number", &reporter.id_number, REPORTER_CONTACT_CHARS_MAX, false, false)?;
    let phone_ok = reporter.phone.chars().all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' '));
    if !phone_ok {
        return Err(invalid("reporter.phone", "digits, +, - and spaces only"));
    }
    if !reporter.id_number.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(invalid("reporter.id_number", "letters and digits only"));
    }
    Ok(())
}

impl Ledger {
    /// Registers a complaint or tip-off at the bureau of the desk that took it.
    pub(crate) fn register_complaint(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        complaint: &NewComplaint,
    ) -> CommandResult {
        validate::actor(actor, &self.regions())?;
        validate::new_task(&complaint.task, &self.regions())?;
        validate_reporter(complaint)?;
        if !matches!(actor.role, Role::Command | Role::Operator) || complaint.task.origin_bureau != actor.bureau {
            return Err(Rejection::Forbidden(format!(
                "complaints are registered by the desk of the bureau that takes them, not by a {} of {}",
                actor.role, actor.bureau
            )));
        }
        if complaint.task.source != Source::Complaint {
            return Err(invalid("source", "a complaint's source is complaint"));
        }
        if complaint.accept_deadline_ms <= stamp_ms {
            return Err(invalid("accept_deadline", "must lie in the future"));
        }
        let mut task = self.register(stamp_ms, actor, &complaint.task);
        task.complaint = Some(ComplaintRecord {
            channel: complaint.channel,
            real_name: complaint.real_name,
            accept_deadline_ms: complaint.accept_deadline_ms,
            decision: None,
            notify_deadline_ms: None,
            notified_at_ms: None,
            accept_missed_deadline_ms: None,
            notify_missed_deadline_ms: None,
        });
        self.insert_reporter(task.id, complaint.reporter.clone());
        Ok(Applied::of_task(self.insert_new_task(task)))
    }

    /// The reporter of a complaint, for the registering bureau's command centre only: not its
    /// superiors (a province sees its cities' complaints, not who made them).
    pub fn reporter(&self, actor: &Actor, task: crate::task::TaskId) -> Result<Reporter, Rejection> {
        let found = self
            .task(task)
            .filter(|t| access::can_see(&self.regions(), actor, t))
            .ok_or(Rejection::TaskNotFound(task))?;
        if actor.role != Role::Command || found.origin_bureau != actor.bureau {
            return Err(Rejection::Forbidden("only the registering bureau's command centre sees who reported".into()));
        }
        self.stored_reporter(task).ok_or(Rejection::TaskNotFound(task))
    }

    /// A decision on a complaint, or the telling of it, by the registering bureau.
    pub(crate) fn complaint_step(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        task_id: crate::task::TaskId,
        step: &ComplaintStep,
        note: &str,
    ) -> CommandResult {
        validate::actor(actor, &self.regions())?;
        let action = step.action();
        validate::note(note, action.requires_note())?;
        // A task the actor cannot see answers as missing: nothing about it is told.
        let shared = self
            .task(task_id)
            .filter(|task| access::can_see(&self.regions(), actor, task))
            .ok_or(Rejection::TaskNotFound(task_id))?;
        let state = policy::open(&shared, action)?;
        policy::may_take(&self.regions(), actor, &shared, action)?;
        shared.timeline_has_room()?;
        if let ComplaintStep::Decide { notify_deadline_ms, .. } = step {
            let real_name = shared.complaint.as_ref().is_some_and(|record| record.real_name);
            if real_name != notify_deadline_ms.is_some() {
                return Err(invalid("notify_deadline", "set for real-name reports and only for them"));
            }
            if notify_deadline_ms.is_some_and(|d| d <= stamp_ms) {
                return Err(invalid("notify_deadline", "must lie in the future"));
            }
        }
        let entry = match step {
            ComplaintStep::Decide { accept: true, .. } => TimelineAction::AcceptComplaint,
            ComplaintStep::Decide { accept: false, .. } => TimelineAction::RefuseComplaint,
            ComplaintStep::NotifyReporter => TimelineAction::NotifyReporter,
        };
        drop(shared);
        let mut checked_out = self.check_out(task_id).expect("found above");
        let task = &mut checked_out.task;
        let complaint = task.complaint.as_mut().expect("policy::open found the complaint record");
        match step {
            ComplaintStep::Decide { accept, notify_deadline_ms } => {
                complaint.decision = Some((*accept, stamp_ms));
                complaint.notify_deadline_ms = *notify_deadline_ms;
            }
            ComplaintStep::NotifyReporter => complaint.notified_at_ms = Some(stamp_ms),
        }
        task.handling.state = state;
        task.push_entry(stamp_ms, actor, entry, note.to_owned(), None);
        Ok(Applied::of_task(self.check_in(checked_out)))
    }
}
