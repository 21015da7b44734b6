//! Field checks on commands. The API runs them for a fast 4xx before proposing; `apply` runs
//! them again because a command in the log must be judged on its own.

use super::bureau::{BureauCode, Regions};
use super::command::{Actor, NewTask, Rejection};
use crate::limits::{
    DEADLINE_HORIZON_MS, DESCRIPTION_CHARS_MAX, NOTE_CHARS_MAX, SUBJECT_ADDRESS_CHARS_MAX, SUBJECT_NAME_CHARS_MAX,
    TITLE_CHARS_MAX, USER_CHARS_MAX,
};

/// The refusal of a field: every check of the ledger says it this way.
pub(super) fn invalid(field: &str, reason: impl Into<String>) -> Rejection {
    Rejection::Invalid { field: field.to_owned(), reason: reason.into() }
}

/// Checks a free-text field: length in characters, and no control characters (they break
/// console rendering and log lines; newlines are allowed in long text).
pub fn text(field: &str, value: &str, chars_max: usize, required: bool, multiline: bool) -> Result<(), Rejection> {
    if required && value.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    let chars = value.chars().count();
    if chars > chars_max {
        return Err(invalid(field, format!("has {chars} characters, at most {chars_max} are allowed")));
    }
    let bad_control = |c: char| c.is_control() && !(multiline && (c == '\n' || c == '\r' || c == '\t'));
    if value.chars().any(bad_control) {
        return Err(invalid(field, "contains control characters"));
    }
    Ok(())
}

/// A code the group's table knows, retired ones included: what old records and the people
/// working them may name.
fn known_bureau(regions: &Regions, field: &str, code: BureauCode) -> Result<(), Rejection> {
    if regions.contains(code) {
        Ok(())
    } else {
        Err(invalid(field, format!("{code} is not a region code in GB/T 2260")))
    }
}

/// A code a new registration may name: known and not retired.
pub fn active_bureau(regions: &Regions, field: &str, code: BureauCode) -> Result<(), Rejection> {
    known_bureau(regions, field, code)?;
    if regions.is_active(code) {
        Ok(())
    } else {
        Err(invalid(field, format!("{code} is a retired region code: name the region that took it over")))
    }
}

pub fn actor(actor: &Actor, regions: &Regions) -> Result<(), Rejection> {
    text("actor.user", &actor.user, USER_CHARS_MAX, true, false)?;
    known_bureau(regions, "actor.bureau", actor.bureau)
}

pub fn note(value: &str, required: bool) -> Result<(), Rejection> {
    text("note", value, NOTE_CHARS_MAX, required, true)
}

pub fn new_task(task: &NewTask, regions: &Regions) -> Result<(), Rejection> {
    task_fields(task, regions, active_bureau)
}

/// The fields of a task another group registered and handed over: its region codes need only
/// be known here (the sender may not have adopted a retirement yet); the rest as a new task's.
pub fn received_task(task: &NewTask, regions: &Regions) -> Result<(), Rejection> {
    task_fields(task, regions, known_bureau)
}

type CodeCheck = fn(&Regions, &str, BureauCode) -> Result<(), Rejection>;

fn task_fields(task: &NewTask, regions: &Regions, code_check: CodeCheck) -> Result<(), Rejection> {
    text("title", &task.title, TITLE_CHARS_MAX, true, false)?;
    text("description", &task.description, DESCRIPTION_CHARS_MAX, false, true)?;
    text("subject.name", &task.subject.name, SUBJECT_NAME_CHARS_MAX, true, false)?;
    text("subject.address", &task.subject.address, SUBJECT_ADDRESS_CHARS_MAX, false, false)?;
    code_check(regions, "subject.region_code", task.subject.region_code)?;
    if !regions.is_region(task.subject.region_code) {
        return Err(invalid("subject.region_code", "an entity is registered in a region, not at a station"));
    }
    code_check(regions, "origin_bureau", task.origin_bureau)?;
    if let Some(assignee) = task.assignee_bureau {
        assignee_below(regions, task.origin_bureau, assignee)?;
    }
    Ok(())
}

/// A bureau dispatches within its own subtree (to itself or a lower bureau); leads about other
/// regions are forwarded, not dispatched.
fn assignee_below(regions: &Regions, origin: BureauCode, assignee: BureauCode) -> Result<(), Rejection> {
    active_bureau(regions, "assignee_bureau", assignee)?;
    if !regions.is_within(assignee, origin) {
        return Err(invalid(
            "assignee_bureau",
            format!("{assignee} is not within the jurisdiction of the dispatching bureau {origin}"),
        ));
    }
    Ok(())
}

pub fn dispatch(
    regions: &Regions,
    origin: BureauCode,
    assignee: BureauCode,
    stamp_ms: u64,
    ack_deadline_ms: u64,
    complete_deadline_ms: u64,
) -> Result<(), Rejection> {
    assignee_below(regions, origin, assignee)?;
    if ack_deadline_ms <= stamp_ms {
        return Err(invalid("ack_deadline", "must lie in the future"));
    }
    if complete_deadline_ms < ack_deadline_ms {
        return Err(invalid("complete_deadline", "must not be before the ack deadline"));
    }
    if complete_deadline_ms - stamp_ms > DEADLINE_HORIZON_MS {
        return Err(invalid("complete_deadline", "lies too far in the future"));
    }
    Ok(())
}
