//! What one task contributes to the response metrics, derived from the task alone, so every
//! replica derives the same facts from the same ledger.
//!
//! A task counts for the bureau it was dispatched to (the bureau judged on its response), in
//! the cohort of the Beijing day it was dispatched: "of the tasks received in the period, how
//! many were acknowledged, how fast, how many on time".

use ledger::{BureauCode, ComplaintChannel, Source, Task, TaskKind, TaskState};

/// Beijing time is UTC+8 all year (no daylight saving).
const BEIJING_OFFSET_MS: u64 = 8 * 60 * 60 * 1000;
const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Days since 1970-01-01 in Beijing time.
pub fn beijing_day(ms: u64) -> u32 {
    u32::try_from(ms.saturating_add(BEIJING_OFFSET_MS) / DAY_MS).unwrap_or(u32::MAX)
}

/// Unix ms of the start of a Beijing day.
pub fn day_start_ms(day: u32) -> u64 {
    (u64::from(day) * DAY_MS).saturating_sub(BEIJING_OFFSET_MS)
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    pub assignee: Option<BureauCode>,
    /// The Beijing day of the (latest) dispatch.
    pub day: u32,
    pub acked: bool,
    pub ack_on_time: bool,
    pub ack_secs: Option<u32>,
    pub completed: bool,
    pub complete_on_time: bool,
    pub complete_secs: Option<u32>,
    pub closed: bool,
    pub cancelled: bool,
    pub escalations: u32,
    pub extensions: u32,
    /// 交办 or 转办.
    pub assignment_or_referral: bool,
    pub inspection: bool,
    /// From the complaint channel (投诉举报), and handled (completed) on time.
    pub complaint: bool,
    /// Handed to another group from here, or received from one.
    pub forwarded_out: bool,
    pub forwarded_in: bool,
    /// Still open and dispatched (its clock runs here): counted in "open now".
    pub open: bool,
    /// The deadline that runs now, for "overdue now".
    pub running_deadline_ms: Option<u64>,
}

fn secs_between(from_ms: u64, to_ms: u64) -> u32 {
    u32::try_from(to_ms.saturating_sub(from_ms) / 1000).unwrap_or(u32::MAX)
}

impl Facts {
    /// The facts of a task; `None` when it was never dispatched (it counts for no bureau yet),
    /// or when it is the record of a lead handed to another group for good: that group's own
    /// metrics judge its bureaus, and the assignee here is only that group's report.
    pub fn of(task: &Task) -> Option<Facts> {
        if task.remote.as_ref().is_some_and(|remote| remote.purpose.hands_over_ownership()) {
            return None;
        }
        let assignee = task.handling.assignee_bureau?;
        let dispatched_ms = task.handling.dispatched_at_ms?;
        let acked_at = task.handling.acked_at_ms;
        let completed_at = task.handling.completed_at_ms;
        // A returned result is not done: the assignee works on until it completes again.
        let completed =
            completed_at.is_some() && matches!(task.handling.state, TaskState::Completed | TaskState::Closed);
        Some(Facts {
            assignee: Some(assignee),
            day: beijing_day(dispatched_ms),
            acked: acked_at.is_some(),
            ack_on_time: acked_at.zip(task.handling.ack_deadline_ms).is_some_and(|(at, deadline)| at <= deadline),
            ack_secs: acked_at.map(|at| secs_between(dispatched_ms, at)),
            completed,
            complete_on_time: completed
                && completed_at.zip(task.handling.complete_deadline_ms).is_some_and(|(at, deadline)| at <= deadline),
            complete_secs: completed_at.filter(|_| completed).map(|at| secs_between(dispatched_ms, at)),
            closed: task.handling.state == TaskState::Closed,
            cancelled: task.handling.state == TaskState::Cancelled,
            escalations: task.handling.escalated_to.len() as u32,
            extensions: task.handling.extensions_granted,
            assignment_or_referral: matches!(task.kind, TaskKind::Assignment | TaskKind::Referral),
            inspection: task.kind == TaskKind::Inspection,
            complaint: task.source == Source::Complaint
                || task
                    .complaint
                    .as_ref()
                    .is_some_and(|c| matches!(c.channel, ComplaintChannel::Complaint | ComplaintChannel::TipOff)),
            forwarded_out: task.remote.is_some(),
            forwarded_in: task.received.is_some(),
            open: matches!(task.handling.state, TaskState::Dispatched | TaskState::Acknowledged | TaskState::Returned),
            running_deadline_ms: task.running_deadline_ms(),
        })
    }

    /// The bureau the task counts for.
    pub fn bureau(&self) -> BureauCode {
        self.assignee.expect("facts exist only for dispatched tasks")
    }
}
