//! Taking a signal in: repeats, grouping into open tasks, raised severity.

use std::sync::Arc;

use super::*;
use crate::apply::Ledger;
use crate::bureau::Regions;
use crate::command::{Actor, Applied, CommandResult, Rejection, Role};
use crate::limits::{
    EVIDENCE_LINKS_MAX, EVIDENCE_LINK_CHARS_MAX, GROUPING_WINDOW_MAX_MS, INTAKE_GROUPS_MAX, INTAKE_GROUP_LIFETIME_MS,
    INTAKE_SEEN_MAX, INTAKE_SEEN_RETENTION_MS, OBSERVED_AGE_MAX_MS, OBSERVED_AHEAD_MAX_MS, SOURCE_ID_CHARS_MAX,
};
use crate::task::{Task, TaskId, TimelineAction};
use crate::validate::{self, invalid};

fn validate_signal(regions: &Regions, stamp_ms: u64, actor: &Actor, signal: &Signal) -> Result<(), Rejection> {
    validate::text("source_id", &signal.source_id, SOURCE_ID_CHARS_MAX, true, false)?;
    validate::new_task(&signal.task, regions)?;
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
    pub(crate) fn ingest(&mut self, stamp_ms: u64, actor: &Actor, signal: &Signal) -> CommandResult {
        if actor.role != Role::Source {
            return Err(Rejection::Forbidden("only an intake source delivers signals".into()));
        }
        validate::actor(actor, &self.regions())?;
        validate_signal(&self.regions(), stamp_ms, actor, signal)?;
        self.expire_seen(stamp_ms);
        self.expire_groups(stamp_ms);
        let seen_key: SeenKey = (actor.user.clone(), signal.source_id.clone());
        if let Some((id, _)) = self.intake_seen.get(&seen_key) {
            let task = self.task(*id).expect("seen signals name existing tasks");
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
                self.remember_group(group, task.id, stamp_ms);
                self.insert_new_task(task)
            }
        };
        self.remember_seen(seen_key, task.id, stamp_ms);
        Ok(Applied::of_task(task))
    }

    fn merge_signal(&mut self, stamp_ms: u64, actor: &Actor, id: TaskId, signal: &Signal) -> Arc<Task> {
        let mut checked_out = self.check_out(id).expect("checked by the caller");
        let task = &mut checked_out.task;
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
        self.check_in(checked_out)
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

    fn remember_group(&mut self, group: GroupKey, task: TaskId, stamp_ms: u64) {
        while self.intake_groups_order.len() >= INTAKE_GROUPS_MAX {
            self.forget_oldest_group();
        }
        self.intake_groups_order.push_back((stamp_ms, group.clone(), task));
        self.intake_groups.insert(group, task);
    }

    fn expire_groups(&mut self, now_ms: u64) {
        while let Some((stamp_ms, _, _)) = self.intake_groups_order.front() {
            if stamp_ms.saturating_add(INTAKE_GROUP_LIFETIME_MS) >= now_ms {
                break;
            }
            self.forget_oldest_group();
        }
    }

    /// Drops the oldest ordered item, and its group unless a newer task has taken the group.
    fn forget_oldest_group(&mut self) {
        let Some((_, group, task)) = self.intake_groups_order.pop_front() else { return };
        if self.intake_groups.get(&group) == Some(&task) {
            self.intake_groups.remove(&group);
        }
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
