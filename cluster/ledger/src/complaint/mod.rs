//! Complaints and tip-offs (投诉举报) as their own channel: registered with the reporter's
//! identity and contact (kept internal), with two statutory clocks tracked like any deadline:
//! accept or refuse within 7 working days of registration, and, for a real-name report, tell
//! the reporter the decision within 5 working days of it. The accepting node computes both
//! deadlines from the calendar; the ledger only records them.
//!
//! **Privacy invariant:** the reporter's identity lives in `Ledger::reporters`, apart from the
//! task, so nothing that shows tasks (API answers, console events, the export feed) can carry
//! it; only the reporter route reads it, for the registering bureau's command centre.
//!
//! This module holds the records and commands; `apply` what the ledger does with them.

use serde::{Deserialize, Serialize};

use super::command::NewTask;
use super::policy::TaskAction;
use super::task::wire_enum;

mod apply;

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
