//! What one group believes of another's messages: a handover and a status report are judged as
//! a whole before anything of them is copied; a refusal is a `Rejection`, never a panic.

use super::*;
use crate::bureau::Regions;
use crate::command::Rejection;
use crate::limits::{DEADLINE_HORIZON_MS, TIMELINE_ENTRIES_MAX, USER_CHARS_MAX};
use crate::task::{TaskState, TimelineAction};
use crate::validate;

/// A handover is judged as a whole before anything changes: it comes from another group's
/// ledger, so nothing in it is believed that this group can check. `sender` is the group that
/// delivered it (authenticated by its link token), `group` this group.
pub(super) fn validate_handover(
    regions: &Regions,
    handover: &Handover,
    sender: BureauCode,
    group: BureauCode,
    stamp_ms: u64,
) -> Result<(), Rejection> {
    // A code this group has not adopted yet may come from a group that has: the courier
    // delivers again, and the message lands once the table here knows it.
    not_yet_known(regions, [handover.subject.region_code, handover.origin_bureau])?;
    validate::received_task(
        &crate::command::NewTask {
            kind: handover.kind,
            severity: handover.severity,
            title: handover.title.clone(),
            description: handover.description.clone(),
            subject: handover.subject.clone(),
            source: handover.source,
            origin_bureau: handover.origin_bureau,
            assignee_bureau: None,
            routing: Routing::Keep,
        },
        regions,
    )?;
    validate::note(&handover.note, false)?;
    validate::text("sent_by", &handover.sent_by, crate::limits::USER_CHARS_MAX, true, false)?;
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
            not_yet_known(regions, [terms.assignee])?;
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
pub(super) const TIMELINE_ENTRIES_KEPT_FOR_DISPATCHER: usize = 20;

/// The moves of a dispatched task the assignee's own actions make (ack, complete, a completion
/// Codes of six digits this group's table does not know (yet): `NotYet`, for the courier to
/// deliver again after this group adopts the table the sender has.
fn not_yet_known(regions: &Regions, codes: impl IntoIterator<Item = BureauCode>) -> Result<(), Rejection> {
    match codes.into_iter().find(|code| !regions.contains(*code)) {
        Some(code) => Err(Rejection::NotYet(format!("region code {code} is not in this group's table yet"))),
        None => Ok(()),
    }
}

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
pub(crate) fn speaks_for(
    regions: &Regions,
    bureau: BureauCode,
    to_group: BureauCode,
    origin_bureau: BureauCode,
) -> bool {
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
pub(super) fn check_report(
    regions: &Regions,
    report: &StatusReport,
    remote: &RemoteHandling,
    record: &Task,
    stamp_ms: u64,
) -> Result<(), Rejection> {
    let fields = &report.fields;
    if report.timeline.len() > TIMELINE_ENTRIES_MAX || fields.escalated_to.len() > TIMELINE_ENTRIES_MAX {
        return Err(validate::invalid("timeline", "too long"));
    }
    // Each counted step has its timeline entry, so no count exceeds the timeline's bound.
    if [fields.extensions_granted, fields.reminders_sent].iter().any(|count| *count as usize > TIMELINE_ENTRIES_MAX) {
        return Err(validate::invalid("fields", "a count beyond the timeline's length"));
    }
    fields.check().map_err(|reason| validate::invalid("fields", reason))?;
    not_yet_known(regions, fields.assignee_bureau.iter().chain(&fields.escalated_to).copied())?;
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
        not_yet_known(regions, std::iter::once(entry.actor_bureau).chain(entry.assignee_bureau))?;
        // On a dispatched task the target speaks for its own bureaus only: the dispatcher's
        // entries (skipped as known) are the only ones from above it.
        let theirs = speaks_for(regions, entry.actor_bureau, remote.to_group, record.origin_bureau);
        if dispatched_here && !theirs && !is_dispatcher_entry(entry.action) && entry.action != TimelineAction::Receive {
            return Err(validate::invalid(
                "timeline",
                format!("an entry of {} is not group {}'s", entry.actor_bureau, remote.to_group),
            ));
        }
    }
    Ok(())
}

/// The timeline entries a dispatcher makes (a report never speaks for them).
pub(super) fn is_dispatcher_entry(action: TimelineAction) -> bool {
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

/// What another group's draw decided about an inspection it hands here: a dispatch of a drawn
/// inspection (kind, source), with items and a team of the draw's shapes and sizes. Checked
/// field by field: it comes from outside the group.
pub(super) fn validate_drawn(handover: &Handover, drawn: &super::DrawnAtOrigin) -> Result<(), Rejection> {
    use crate::campaign::{INSPECTOR_ID_CHARS_MAX, LABELS_MAX, LABEL_CHARS_MAX, TEAM_SIZE_MAX, TEAM_SIZE_MIN};
    if handover.purpose != HandoverPurpose::Dispatch
        || handover.kind != crate::task::TaskKind::Inspection
        || handover.source != crate::task::Source::SpotCheck
    {
        return Err(validate::invalid("message", "a drawn inspection is a dispatched inspection from a draw"));
    }
    validate::text("campaign_name", &drawn.campaign_name, crate::limits::TITLE_CHARS_MAX, true, false)?;
    if drawn.items.is_empty() || drawn.items.len() > LABELS_MAX {
        return Err(validate::invalid("items", format!("a drawn inspection has 1 to {LABELS_MAX} items")));
    }
    let mut codes = std::collections::BTreeSet::new();
    for item in &drawn.items {
        validate::text("items.code", &item.code, LABEL_CHARS_MAX, true, false)?;
        validate::text("items.name", &item.name, crate::limits::TITLE_CHARS_MAX, true, false)?;
        validate::text("items.expertise", &item.expertise, LABEL_CHARS_MAX, true, false)?;
        if item.industries.len() > LABELS_MAX {
            return Err(validate::invalid("items.industries", format!("at most {LABELS_MAX}")));
        }
        for industry in &item.industries {
            validate::text("items.industries", industry, LABEL_CHARS_MAX, true, false)?;
        }
        if !codes.insert(item.code.as_str()) {
            return Err(validate::invalid("items", "an item is listed twice"));
        }
    }
    if !(TEAM_SIZE_MIN as usize..=TEAM_SIZE_MAX as usize).contains(&drawn.inspectors.len()) {
        return Err(validate::invalid("inspectors", format!("a team of {TEAM_SIZE_MIN} to {TEAM_SIZE_MAX}")));
    }
    for inspector in &drawn.inspectors {
        validate::text("inspectors", inspector, INSPECTOR_ID_CHARS_MAX, true, false)?;
    }
    Ok(())
}
