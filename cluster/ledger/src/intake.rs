//! Machine intake: risk signals from monitoring systems and other departments, each from an
//! authenticated source, deduplicated and grouped so one shop flagged a hundred times is one
//! task with a counter, not a hundred tasks.
//!
//! - A signal whose source-side id the source already sent (within `INTAKE_SEEN_RETENTION_MS`)
//!   is a repeat: it changes nothing and answers with the task it went into.
//! - A signal whose grouping key (computed by the accepting node from the fields the source's
//!   configuration names) matches an open task of the same source, observed within the
//!   source's window of that task's first signal, merges into it: the counter, the observed
//!   time range and the latest evidence move; a higher severity raises the task's severity
//!   (a timeline entry, since it changes what the centre must do).
//! - Otherwise it registers a new task, routed like any new task.
//!
//! The merge counter is live metadata of the task, not a decision: it does not add a version
//! or a timeline entry, so the timeline stays the record of what people and the system decided.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::apply::Ledger;
use super::command::{Actor, Applied, CommandResult, NewTask, Rejection, Role};
use super::task::{Task, TaskId, TimelineAction};
use super::validate::{self, invalid};
use crate::limits::{
    EVIDENCE_LINKS_MAX, EVIDENCE_LINK_CHARS_MAX, GROUPING_WINDOW_MAX_MS, INTAKE_SEEN_MAX, INTAKE_SEEN_RETENTION_MS,
    OBSERVED_AGE_MAX_MS, OBSERVED_AHEAD_MAX_MS, SOURCE_ID_CHARS_MAX,
};

/// One signal as the ledger gets it: the task it would register, plus how to recognise
/// repeats and group members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signal {
    /// The source's own id for the signal: a repeat carries the same one.
    pub source_id: String,
    /// SHA-256 of the fields the source groups by (from the source's configuration).
    pub group_key: [u8; 32],
    /// Signals observed within this long of a group's first one merge into its task.
    pub window_ms: u64,
    /// When the source observed it (its clock, bounded against the ledger's).
    pub observed_ms: u64,
    pub task: NewTask,
    /// Links to the evidence (screenshots, listings, reports) at the source.
    pub evidence: Vec<String>,
}

/// What the signals that went into a task amount to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntakeSummary {
    /// The source's name.
    pub source: String,
    pub signals: u32,
    pub first_observed_ms: u64,
    pub last_observed_ms: u64,
    /// The latest signal's evidence.
    pub evidence: Vec<String>,
    pub last_source_id: String,
}

/// A source-side id: (source name, the source's id).
pub(super) type SeenKey = (String, String);
/// A group of signals: (source name, grouping key).
pub(super) type GroupKey = (String, [u8; 32]);

fn validate_signal(stamp_ms: u64, actor: &Actor, signal: &Signal) -> Result<(), Rejection> {
    validate::text("source_id", &signal.source_id, SOURCE_ID_CHARS_MAX, true, false)?;
    validate::new_task(&signal.task)?;
    if signal.task.origin_bureau != actor.bureau {
        return Err(invalid("origin_bureau", "a source registers tasks for its own bureau"));
    }
    if signal.window_ms > GROUPING_WINDOW_MAX_MS {
        return Err(invalid("window", "longer than the longest grouping window"));
    }
    if signal.observed_ms > stamp_ms.saturating_add(OBSERVED_AHEAD_MAX_MS) {
        return Err(invalid("observed_at", "lies in the future"));
    }
    if signal.observed_ms.saturating_add(OBSERVED_AGE_MAX_MS) < stamp_ms {
        return Err(invalid("observed_at", "is too old for intake"));
    }
    if signal.evidence.len() > EVIDENCE_LINKS_MAX {
        return Err(invalid("evidence", format!("at most {EVIDENCE_LINKS_MAX} links")));
    }
    for link in &signal.evidence {
        validate::text("evidence", link, EVIDENCE_LINK_CHARS_MAX, true, false)?;
        if !(link.starts_with("https://") || link.starts_with("http://")) {
            return Err(invalid("evidence", "links are http(s) URLs"));
        }
    }
    Ok(())
}

impl Ledger {
    /// Takes one signal from the source in `actor`: a repeat, a merge or a new task.
    pub(super) fn ingest(&mut self, stamp_ms: u64, actor: &Actor, signal: &Signal) -> CommandResult {
        if actor.role != Role::Source {
            return Err(Rejection::Forbidden("only an intake source delivers signals".into()));
        }
        validate::actor(actor)?;
        validate_signal(stamp_ms, actor, signal)?;
        self.expire_seen(stamp_ms);
        let seen_key: SeenKey = (actor.user.clone(), signal.source_id.clone());
        if let Some((id, _)) = self.intake_seen.get(&seen_key) {
            let task = self.task_arc(*id).expect("seen signals name existing tasks");
            return Ok(Applied { replayed: true, ..Applied::of_task(task) });
        }
        let group: GroupKey = (actor.user.clone(), signal.group_key);
        let open_group_task = self.intake_groups.get(&group).copied().filter(|id| {
            let task = self.task(*id).expect("groups name existing tasks");
            !task.handling.state.is_terminal()
                && task
                    .intake
                    .as_ref()
                    .is_some_and(|summary| signal.observed_ms.abs_diff(summary.first_observed_ms) <= signal.window_ms)
        });
        let task = match open_group_task {
            Some(id) => self.merge_signal(stamp_ms, actor, id, signal),
            None => {
                let mut task = self.register(stamp_ms, actor, &signal.task);
                task.intake = Some(IntakeSummary {
                    source: actor.user.clone(),
                    signals: 1,
                    first_observed_ms: signal.observed_ms,
                    last_observed_ms: signal.observed_ms,
                    evidence: signal.evidence.clone(),
                    last_source_id: signal.source_id.clone(),
                });
                let task = Arc::new(task);
                self.intake_groups.insert(group, task.id);
                let previous = self.insert_task(task.clone());
                assert!(previous.is_none(), "task ids are never reused");
                task
            }
        };
        self.remember_seen(seen_key, task.id, stamp_ms);
        Ok(Applied::of_task(task))
    }

    fn merge_signal(&mut self, stamp_ms: u64, actor: &Actor, id: TaskId, signal: &Signal) -> Arc<Task> {
        let shared = self.task_mut(id).expect("checked by the caller");
        let task = Arc::make_mut(shared);
        let summary = task.intake.as_mut().expect("checked by the caller");
        summary.signals = summary.signals.saturating_add(1);
        summary.first_observed_ms = summary.first_observed_ms.min(signal.observed_ms);
        summary.last_observed_ms = summary.last_observed_ms.max(signal.observed_ms);
        summary.evidence = signal.evidence.clone();
        summary.last_source_id = signal.source_id.clone();
        let raised = signal.task.severity > task.severity;
        if raised && task.timeline_has_room().is_ok() {
            let note = format!("{} → {} ({})", task.severity, signal.task.severity, signal.source_id);
            task.severity = signal.task.severity;
            task.push_entry(stamp_ms, actor, TimelineAction::SeverityRaised, note, None);
        }
        shared.clone()
    }

    fn remember_seen(&mut self, key: SeenKey, task: TaskId, stamp_ms: u64) {
        while self.intake_seen.len() >= INTAKE_SEEN_MAX {
            let (_, oldest) = self.intake_seen_order.pop_front().expect("order lists every id");
            self.intake_seen.remove(&oldest);
        }
        self.intake_seen_order.push_back((stamp_ms, key.clone()));
        let previous = self.intake_seen.insert(key, (task, stamp_ms));
        assert!(previous.is_none(), "a source-side id is remembered once");
    }

    fn expire_seen(&mut self, now_ms: u64) {
        while let Some((stamp_ms, _)) = self.intake_seen_order.front() {
            if stamp_ms.saturating_add(INTAKE_SEEN_RETENTION_MS) >= now_ms {
                break;
            }
            let (_, key) = self.intake_seen_order.pop_front().expect("front exists");
            self.intake_seen.remove(&key);
        }
    }
}
