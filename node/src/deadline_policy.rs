//! Deadlines set at dispatch when the dispatcher names none: the configured policy (by kind
//! and severity) applied from the dispatch stamp, working days by the calendar.

use cluster::ledger::Task;
use config::calendar::{CalendarError, WorkCalendar};
use config::deadlines::DeadlinePolicy;
use time::OffsetDateTime;

/// (ack deadline, completion deadline) in Unix ms for a task dispatched at `stamp_ms`.
pub fn default_deadlines_ms(
    policy: &DeadlinePolicy,
    calendar: &WorkCalendar,
    task: &Task,
    stamp_ms: u64,
) -> Result<(u64, u64), CalendarError> {
    let rule = policy.rule_for(task.kind.as_str(), task.severity.as_str());
    let start = OffsetDateTime::from_unix_timestamp_nanos(i128::from(stamp_ms) * 1_000_000)
        .map_err(|e| CalendarError::Data(e.to_string()))?;
    let to_ms = |t: OffsetDateTime| u64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    Ok((to_ms(rule.ack.deadline_after(calendar, start)?), to_ms(rule.complete.deadline_after(calendar, start)?)))
}
