//! Status reports between groups, both ways:
//!
//! - `push` runs on the leader of the group a task was handed to: whenever a received task
//!   changes, it sends the task's current state to the group it came from (coalesced: a task
//!   that changed five times while a report was in flight is sent once more, as it stands);
//! - `reconcile` runs on the leader of the origin: every `reconcile_every` it asks each target
//!   group for the state of the handed-over tasks whose record here is not final, so a report
//!   lost to a crash or a partition is made good.
//!
//! Both end in `MirrorStatus` commands, which the ledger applies only when they are news.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ledger::{BureauCode, ForwardId, StatusReport, Task, TaskId};
use tokio::sync::broadcast;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::peer_api::{
    mirror_reports, ReportRequest, ReportResponse, StatusRequest, StatusResponse, FEDERATION_BATCH_MAX, REPORT_PATH,
    STATUS_PATH,
};
use crate::state::AppState;

/// Reports in one push request: a report carries the whole timeline, so keep requests modest.
const REPORTS_PER_PUSH_MAX: usize = 32;
/// A failed push is retried after this (the reconcile pull catches up meanwhile).
const PUSH_RETRY: Duration = Duration::from_millis(500);

/// Pushes reports about received tasks to their origin groups while this node leads.
pub async fn push(state: AppState, shutdown: CancellationToken) {
    let mut applied = state.store.subscribe_applied();
    let mut retry = tokio::time::interval(PUSH_RETRY);
    // Origin group → received tasks changed since their last report.
    let mut pending: BTreeMap<BureauCode, BTreeSet<TaskId>> = BTreeMap::new();
    let mut in_flight: JoinSet<(BureauCode, Vec<TaskId>, bool)> = JoinSet::new();
    let mut busy: BTreeSet<BureauCode> = BTreeSet::new();
    let preferred = Arc::new(Mutex::new(BTreeMap::new()));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            received = applied.recv() => match received {
                Ok(entry) => {
                    for task in entry.results.iter().filter_map(|r| r.as_ref().ok()).flat_map(|a| &a.tasks) {
                        if let Some(received) = &task.received {
                            pending.entry(received.from_group).or_default().insert(task.id);
                        }
                    }
                }
                // Missed changes are found by the origin's reconcile pull.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = retry.tick() => {}
            Some(done) = in_flight.join_next() => {
                if let Ok((group, tasks, sent)) = done {
                    busy.remove(&group);
                    if !sent {
                        pending.entry(group).or_default().extend(tasks);
                    }
                }
            }
        }
        if pending.is_empty() {
            continue;
        }
        if !state.leader_hint().is_self {
            pending.clear();
            continue;
        }
        let groups: Vec<BureauCode> = pending.keys().copied().filter(|g| !busy.contains(g)).collect();
        for group in groups {
            let tasks: Vec<TaskId> = {
                let set = pending.get_mut(&group).expect("listed above");
                let batch: Vec<TaskId> = set.iter().copied().take(REPORTS_PER_PUSH_MAX).collect();
                batch.iter().for_each(|id| {
                    set.remove(id);
                });
                batch
            };
            if pending.get(&group).is_some_and(BTreeSet::is_empty) {
                pending.remove(&group);
            }
            let reports: Vec<StatusReport> = {
                let replica = state.store.read();
                tasks
                    .iter()
                    .filter_map(|id| replica.ledger.task(*id))
                    .filter_map(|task| StatusReport::of(&task))
                    .collect()
            };
            busy.insert(group);
            let (state, preferred) = (state.clone(), preferred.clone());
            in_flight.spawn(async move {
                let request = ReportRequest { reports };
                let answer: Result<ReportResponse, _> =
                    state.federation.call(group, REPORT_PATH, &request, &preferred).await;
                let sent = answer.is_ok_and(|a| a.settled == request.reports.len());
                (group, tasks, sent)
            });
        }
    }
    in_flight.shutdown().await;
}

/// Open handovers asked about per round, taken in turn: the push is the main path, so the
/// backstop sweeps every open handover over several rounds instead of asking about each in
/// every round (a province's draw leaves about 100,000 open for weeks: at the default round of
/// two seconds a sweep of them takes about three minutes).
const RECONCILE_FORWARDS_PER_ROUND: usize = 1_024;

/// The open handovers are rebuilt from the whole ledger at least this often, as a backstop for
/// anything the applied notices did not show.
const OPEN_HANDOVERS_RESCAN_EVERY: Duration = Duration::from_secs(300);

/// Pulls the state of handed-over tasks whose record is not final, while this node leads.
pub async fn reconcile(state: AppState, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(state.federation.tuning.reconcile_every());
    let mut applied = state.store.subscribe_applied();
    let mut open = OpenHandovers::default();
    let preferred = Mutex::new(BTreeMap::new());
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            received = applied.recv() => {
                match received {
                    // Entries the last rebuild already saw are older news than it.
                    Ok(entry) if entry.index > open.rebuilt_at_index => {
                        for task in entry.results.iter().filter_map(|r| r.as_ref().ok()).flat_map(|a| &a.tasks) {
                            open.note(task);
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => open.stale = true,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
                continue;
            }
            _ = every.tick() => {}
        }
        if !state.leader_hint().is_self {
            continue;
        }
        open.refresh(&state);
        for (group, forwards) in open.next_round() {
            for chunk in forwards.chunks(FEDERATION_BATCH_MAX) {
                let request = StatusRequest { forwards: chunk.to_vec() };
                let answer: Result<StatusResponse, _> =
                    state.federation.call(group, STATUS_PATH, &request, &preferred).await;
                match answer {
                    Ok(answer) => {
                        let news = newer_than_known(&state, chunk, answer.reports);
                        if !news.is_empty() {
                            mirror_reports(&state, group, news).await;
                        }
                    }
                    Err(error) => {
                        tracing::debug!(%group, ?error, "status pull failed; next round");
                        break;
                    }
                }
            }
        }
    }
}

/// The handovers `reconcile` asks about: delivered, and not final here. Kept from the applied
/// entries, so that a round does not scan every handover the group ever made (they only grow);
/// rebuilt from the whole ledger when the notices may have missed something: a lag, a snapshot
/// installed from the leader (which replaces the ledger without notices), and every
/// `OPEN_HANDOVERS_RESCAN_EVERY`.
#[derive(Default)]
struct OpenHandovers {
    by_task: BTreeMap<TaskId, (BureauCode, ForwardId)>,
    stale: bool,
    /// When the last rebuild ran, and the count of installed snapshots then.
    scanned: Option<(tokio::time::Instant, u64)>,
    /// The last log index the last rebuild reflects.
    rebuilt_at_index: u64,
    /// The last task the last round asked about: the next round goes on after it.
    cursor: Option<TaskId>,
}

impl OpenHandovers {
    /// Takes in a task as an applied entry left it.
    fn note(&mut self, task: &Task) {
        match &task.remote {
            Some(remote) if remote.delivered.is_some() && !task.handling.state.is_terminal() => {
                self.by_task.insert(task.id, (remote.to_group, remote.forward));
            }
            _ => {
                self.by_task.remove(&task.id);
            }
        }
    }

    /// Rebuilds from the ledger when due.
    fn refresh(&mut self, state: &AppState) {
        let snapshots = state.store.snapshots_installed();
        let due = self.stale
            || self.scanned.is_none_or(|(at, seen)| seen != snapshots || at.elapsed() >= OPEN_HANDOVERS_RESCAN_EVERY);
        if !due {
            return;
        }
        // An open handover's task is open: the open tasks are all a rebuild reads.
        let (open, applied) = {
            let replica = state.store.read();
            let view = match state.store.store_view() {
                Ok(view) => view,
                Err(error) => return tracing::error!(%error, "open handovers: the store cannot be read"),
            };
            let open = crate::task_query::open_tasks(&replica, &view);
            (open, replica.last_applied.map_or(0, |log_id| log_id.index))
        };
        let open = match open {
            Ok(open) => open,
            Err(error) => return tracing::error!(%error, "open handovers: the store cannot be read"),
        };
        self.by_task.clear();
        for task in &open {
            self.note(task);
        }
        self.rebuilt_at_index = applied;
        self.stale = false;
        self.scanned = Some((tokio::time::Instant::now(), snapshots));
    }

    /// The handovers of the next round, per group: `RECONCILE_FORWARDS_PER_ROUND` at most,
    /// going on after the last round's, from the start again at the end, each at most once.
    fn next_round(&mut self) -> BTreeMap<BureauCode, Vec<ForwardId>> {
        use std::ops::Bound::{Excluded, Unbounded};
        let cursor = self.cursor.take();
        // After the last round's last task to the end, then from the start up to that task.
        let after = self.by_task.range((cursor.map_or(Unbounded, Excluded), Unbounded));
        let up_to = cursor.into_iter().flat_map(|task| self.by_task.range(..=task));
        let mut groups: BTreeMap<BureauCode, Vec<ForwardId>> = BTreeMap::new();
        for (task, (group, forward)) in after.chain(up_to).take(RECONCILE_FORWARDS_PER_ROUND) {
            groups.entry(*group).or_default().push(*forward);
            self.cursor = Some(*task);
        }
        groups
    }
}

/// The reports of the pulled answer worth proposing: one per forward that was asked about
/// (the newest), and only when it is news. Whatever else the answer carries is dropped, so a
/// peer cannot turn one pull into many proposals.
fn newer_than_known(state: &AppState, asked: &[ForwardId], reports: Vec<StatusReport>) -> Vec<StatusReport> {
    let mut newest: BTreeMap<ForwardId, StatusReport> = BTreeMap::new();
    for report in reports.into_iter().filter(|report| asked.contains(&report.forward)) {
        if newest.get(&report.forward).is_none_or(|known| known.version < report.version) {
            newest.insert(report.forward, report);
        }
    }
    let replica = state.store.read();
    newest
        .into_values()
        .filter(|report| {
            replica
                .ledger
                .sent_task(report.forward)
                .and_then(|t| t.remote.as_ref().map(|r| r.mirrored_version))
                .is_some_and(|mirrored| report.version > mirrored)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_handovers(count: u64) -> OpenHandovers {
        let group = BureauCode::parse_digits("440100").expect("a bureau");
        let origin_group = BureauCode::parse_digits("440000").expect("a bureau");
        let mut open = OpenHandovers::default();
        for id in 1..=count {
            open.by_task.insert(TaskId(id), (group, ForwardId { origin_group, seq: id }));
        }
        open
    }

    fn asked(round: &BTreeMap<BureauCode, Vec<ForwardId>>) -> Vec<u64> {
        round.values().flatten().map(|forward| forward.seq).collect()
    }

    #[test]
    fn a_round_asks_about_each_open_handover_at_most_once() {
        let mut open = open_handovers(3);
        assert_eq!(asked(&open.next_round()), [1, 2, 3]);
        assert_eq!(asked(&open.next_round()), [1, 2, 3]);
    }

    #[test]
    fn rounds_take_the_open_handovers_in_turn() {
        let total = RECONCILE_FORWARDS_PER_ROUND as u64 + 500;
        let mut open = open_handovers(total);
        let first = asked(&open.next_round());
        assert_eq!(first, (1..=RECONCILE_FORWARDS_PER_ROUND as u64).collect::<Vec<_>>());
        let second = asked(&open.next_round());
        let expected: Vec<u64> = (RECONCILE_FORWARDS_PER_ROUND as u64 + 1..=total).chain(1..=524).collect();
        assert_eq!(second, expected);
        // A handover closed meanwhile is not asked about; the turn goes on after the last asked.
        open.by_task.remove(&TaskId(600));
        let third = asked(&open.next_round());
        assert_eq!(third.first(), Some(&525));
        assert!(!third.contains(&600));
        assert_eq!(third.len(), RECONCILE_FORWARDS_PER_ROUND);
    }
}
