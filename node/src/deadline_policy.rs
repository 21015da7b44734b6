//! Deadlines set at dispatch when the dispatcher names none: the configured policy (by kind
//! and severity) applied from the dispatch stamp, working days by the calendar.

use config::calendar::{CalendarError, Span, WorkCalendar};
use config::deadlines::DeadlinePolicy;
use ledger::{Severity, Task, TaskKind};
use time::OffsetDateTime;

/// (ack deadline, completion deadline) in Unix ms for a task dispatched at `stamp_ms`.
pub fn default_deadlines_ms(
    policy: &DeadlinePolicy,
    calendar: &WorkCalendar,
    task: &Task,
    stamp_ms: u64,
) -> Result<(u64, u64), CalendarError> {
    deadlines_for_ms(policy, calendar, task.kind, task.severity, stamp_ms)
}

/// (ack deadline, completion deadline) in Unix ms for a task of `kind` and `severity`
/// dispatched at `stamp_ms` (drawn inspections are dispatched before they exist as tasks).
pub fn deadlines_for_ms(
    policy: &DeadlinePolicy,
    calendar: &WorkCalendar,
    kind: TaskKind,
    severity: Severity,
    stamp_ms: u64,
) -> Result<(u64, u64), CalendarError> {
    let rule = policy.rule_for(kind.as_str(), severity.as_str());
    let start = OffsetDateTime::from_unix_timestamp_nanos(i128::from(stamp_ms) * 1_000_000)
        .map_err(|e| CalendarError::Data(e.to_string()))?;
    let to_ms = |t: OffsetDateTime| u64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    Ok((to_ms(rule.ack.deadline_after(calendar, start)?), to_ms(rule.complete.deadline_after(calendar, start)?)))
}

fn instant(ms: u64) -> Result<OffsetDateTime, CalendarError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| CalendarError::Data(e.to_string()))
}

fn unix_ms(instant: OffsetDateTime) -> u64 {
    u64::try_from(instant.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// The completion deadline after one granted extension of `span`.
pub fn extended_deadline_ms(calendar: &WorkCalendar, deadline_ms: u64, span: Span) -> Result<u64, CalendarError> {
    Ok(unix_ms(calendar.extend(instant(deadline_ms)?, span)?))
}

/// The completion deadline after a pause from `paused_since_ms` to `resumed_ms`: moved by the
/// working days the clock stood still when the task's period counts working days, else by
/// the elapsed pause.
pub fn resumed_deadline_ms(
    policy: &DeadlinePolicy,
    calendar: &WorkCalendar,
    task: &Task,
    deadline_ms: u64,
    paused_since_ms: u64,
    resumed_ms: u64,
) -> Result<u64, CalendarError> {
    let rule = policy.rule_for(task.kind.as_str(), task.severity.as_str());
    let shift = match rule.complete {
        Span::WorkingDays(_) => {
            Span::WorkingDays(calendar.working_days_between(instant(paused_since_ms)?, instant(resumed_ms)?)?)
        }
        Span::Elapsed(_) => {
            Span::Elapsed(time::Duration::milliseconds(resumed_ms.saturating_sub(paused_since_ms) as i64))
        }
    };
    if shift == Span::WorkingDays(0) {
        return Ok(deadline_ms);
    }
    extended_deadline_ms(calendar, deadline_ms, shift)
}

/// The deadline `span` sets from `stamp_ms` (e.g. the 20 working days to publish a result).
pub fn span_after_ms(calendar: &WorkCalendar, span: Span, stamp_ms: u64) -> Result<u64, CalendarError> {
    Ok(unix_ms(span.deadline_after(calendar, instant(stamp_ms)?)?))
}
