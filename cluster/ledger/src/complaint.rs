//! Complaints and tip-offs (投诉举报) as their own channel: registered with the reporter's
//! identity and contact (kept internal), with two statutory clocks tracked like any deadline:
//! accept or refuse within 7 working days of registration, and, for a real-name report, tell
//! the reporter the decision within 5 working days of it. The accepting node computes both
//! deadlines from the calendar; the ledger only records them.
//!
//! **Privacy invariant:** the reporter's identity lives in `Ledger::reporters`, apart from the
//! task, so nothing that shows tasks (API answers, console events, the export feed) can carry
//! it; only the reporter route reads it, for the registering bureau's command centre.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::access;
use super::apply::Ledger;
use super::command::{Actor, Applied, CommandResult, NewTask, Rejection, Role};
use super::policy::{self, TaskAction};
use super::task::{wire_enum, Source, TimelineAction};
use super::validate::{self, invalid};

/// Reporter names and contacts: names of up to 50 characters, phone numbers, ID numbers.
pub const REPORTER_NAME_CHARS_MAX: usize = 50;
pub const REPORTER_CONTACT_CHARS_MAX: usize = 40;

wire_enum! {
    /// 投诉 (a consumer's dispute with a business) or 举报 (a report of a violation).
    pub enum ComplaintChannel {
        Complaint = "complaint",
        TipOff = "tip_off",
    }
}

/// Who reported: kept internal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reporter {
    pub name: String,
    pub phone: String,
    pub id_number: String,
}

/// The clocks and decisions of a complaint or tip-off, on its task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplaintRecord {
    pub channel: ComplaintChannel,
    /// A real-name report: the reporter must be told the decision.
    pub real_name: bool,
    pub accept_deadline_ms: u64,
    /// Accepted (true) or refused (false), and when.
    pub decision: Option<(bool, u64)>,
    pub notify_deadline_ms: Option<u64>,
    pub notified_at_ms: Option<u64>,
    /// Deadlines whose miss is on the record.
    pub accept_missed_deadline_ms: Option<u64>,
    pub notify_missed_deadline_ms: Option<u64>,
}

/// A complaint or tip-off as registered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewComplaint {
    pub task: NewTask,
    pub channel: ComplaintChannel,
    pub real_name: bool,
    pub reporter: Reporter,
    pub accept_deadline_ms: u64,
}

/// A decision or the telling of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ComplaintStep {
    /// 受理 or 不予受理 (with the reason in the note); a real-name report gets its telling
    /// deadline.
    Decide { accept: bool, notify_deadline_ms: Option<u64> },
    /// The reporter was told the decision (how, in the note: phone, SMS, letter).
    NotifyReporter,
}

impl ComplaintStep {
    /// The task action this step takes.
    pub fn action(&self) -> TaskAction {
        match self {
            ComplaintStep::Decide { accept: true, .. } => TaskAction::AcceptComplaint,
            ComplaintStep::Decide { accept: false, .. } => TaskAction::RefuseComplaint,
            ComplaintStep::NotifyReporter => TaskAction::NotifyReporter,
        }
    }
}

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
    pub(super) fn register_complaint(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        complaint: &NewComplaint,
    ) -> CommandResult {
        validate::actor(actor)?;
        validate::new_task(&complaint.task)?;
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
        let task = Arc::new(task);
        self.reporters.insert(task.id, complaint.reporter.clone());
        let previous = self.insert_task(task.clone());
        assert!(previous.is_none(), "task ids are never reused");
        Ok(Applied::of_task(task))
    }

    /// The reporter of a complaint, for the registering bureau's command centre only: not its
    /// superiors (a province sees its cities' complaints, not who made them).
    pub fn reporter(&self, actor: &Actor, task: super::task::TaskId) -> Result<&Reporter, Rejection> {
        let found = self.task(task).filter(|t| access::can_see(actor, t)).ok_or(Rejection::TaskNotFound(task))?;
        if actor.role != Role::Command || found.origin_bureau != actor.bureau {
            return Err(Rejection::Forbidden("only the registering bureau's command centre sees who reported".into()));
        }
        self.reporters.get(&task).ok_or(Rejection::TaskNotFound(task))
    }

    /// A decision on a complaint, or the telling of it, by the registering bureau.
    pub(super) fn complaint_step(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        task_id: super::task::TaskId,
        step: &ComplaintStep,
        note: &str,
    ) -> CommandResult {
        validate::actor(actor)?;
        let action = step.action();
        validate::note(note, action.requires_note())?;
        // A task the actor cannot see answers as missing: nothing about it is told.
        let shared = self
            .task_mut(task_id)
            .filter(|task| access::can_see(actor, task))
            .ok_or(Rejection::TaskNotFound(task_id))?;
        let state = policy::open(shared, action)?;
        policy::may_take(actor, shared, action)?;
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
        let task = Arc::make_mut(shared);
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
        Ok(Applied::of_task(shared.clone()))
    }
}
