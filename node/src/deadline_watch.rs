//! The leader's deadline watch: while this node leads its group, it keeps every open deadline
//! in a timer heap and proposes a `RecordMissedDeadline` entry as soon as one passes.
//!
//! A node that becomes leader first confirms its leadership with a quorum and catches up
//! (`ensure_linearizable`), then rebuilds the heap from the ledger, so a deadline that passed
//! during an election is recorded right after it. The ledger records each miss once whatever
//! is proposed (a duplicate, or a proposal from a deposed leader, changes nothing), and the
//! time of the miss is the proposing leader's stamp, never the applying replica's clock.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::time::Duration;

use cluster::ledger::{Action, Actor, Command, DeadlineKind, Role, Task, TaskId};
use cluster::raft::state_machine::AppliedEntry;
use openraft::ServerState;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::api::time::now_ms;
use crate::batcher::ProposeError;
use crate::state::AppState;

/// The user name the watch's entries carry in task timelines.
pub const WATCH_USER: &str = "deadline-watch";
/// After a failed proposal, wait this long before trying the due deadlines again.
const RETRY_DELAY: Duration = Duration::from_millis(200);
/// Misses proposed at once; more wait for the next round (a few ms later).
const MISSES_PER_ROUND_MAX: usize = 4_096;
/// Heap entries kept before a rebuild: every change to a task re-adds its open deadlines
/// (stale copies are dropped only when due), so under heavy change the heap is compacted by
/// rescanning the ledger.
const HEAP_ENTRIES_MAX: usize = 1_000_000;

type Due = Reverse<(u64, TaskId, DeadlineKind)>;

fn open_deadlines(task: &Task) -> impl Iterator<Item = Due> + '_ {
    [DeadlineKind::Ack, DeadlineKind::Completion]
        .into_iter()
        .filter_map(move |kind| task.open_deadline_ms(kind).map(|deadline| Reverse((deadline, task.id, kind))))
}

fn is_leader(state: &AppState) -> Option<u64> {
    let metrics = state.raft.metrics().borrow().clone();
    (metrics.state == ServerState::Leader && metrics.current_leader == Some(state.node_id))
        .then_some(metrics.current_term)
}

/// Runs until `shutdown`, watching deadlines whenever this node leads.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let mut metrics = state.raft.metrics();
    loop {
        let term = match is_leader(&state) {
            Some(term) => term,
            None => {
                tokio::select! {
                    changed = metrics.changed() => if changed.is_err() { return },
                    () = shutdown.cancelled() => return,
                }
                continue;
            }
        };
        // A restarted leader may believe it still leads (openraft #1467): confirm first.
        if state.raft.ensure_linearizable().await.is_err() {
            tokio::select! {
                () = tokio::time::sleep(RETRY_DELAY) => {}
                () = shutdown.cancelled() => return,
            }
            continue;
        }
        tracing::info!(term, "deadline watch running on the leader");
        watch_as_leader(&state, term, &mut metrics, &shutdown).await;
        if shutdown.is_cancelled() {
            return;
        }
        tracing::info!(term, "deadline watch stopped: no longer the leader");
    }
}

async fn watch_as_leader(
    state: &AppState,
    term: u64,
    metrics: &mut tokio::sync::watch::Receiver<openraft::RaftMetrics<u64, openraft::BasicNode>>,
    shutdown: &CancellationToken,
) {
    // Subscribe before the scan, so no deadline set between the two is missed.
    let mut applied = state.store.subscribe_applied();
    let mut heap = scan(state);
    loop {
        let wait = match heap.peek() {
            Some(Reverse((deadline, _, _))) => Duration::from_millis(deadline.saturating_sub(now_ms())),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {
                match fire_due(state, &mut heap).await {
                    Ok(()) => {}
                    Err(ProposeError::NotLeader) => return,
                    Err(error) => {
                        tracing::warn!(?error, "recording missed deadlines failed; retrying");
                        tokio::time::sleep(RETRY_DELAY).await;
                    }
                }
            }
            notice = applied.recv() => match notice {
                Ok(entry) => {
                    add_from_entry(&mut heap, &entry);
                    if heap.len() > HEAP_ENTRIES_MAX {
                        heap = scan(state);
                    }
                }
                // Too many changes to follow one by one: rebuild from the ledger.
                Err(broadcast::error::RecvError::Lagged(_)) => heap = scan(state),
                Err(broadcast::error::RecvError::Closed) => return,
            },
            changed = metrics.changed() => {
                if changed.is_err() || is_leader(state) != Some(term) {
                    return;
                }
            }
            () = shutdown.cancelled() => return,
        }
    }
}

fn scan(state: &AppState) -> BinaryHeap<Due> {
    let replica = state.store.read();
    replica.ledger.tasks_newest_first(None).flat_map(open_deadlines).collect()
}

fn add_from_entry(heap: &mut BinaryHeap<Due>, entry: &AppliedEntry) {
    for applied in entry.results.iter().filter_map(|r| r.as_ref().ok()) {
        heap.extend(open_deadlines(&applied.task));
    }
}

/// Proposes a miss for every due deadline that is still open; stale heap entries (the task
/// was acknowledged, re-dispatched, or the miss is already recorded) are dropped.
async fn fire_due(state: &AppState, heap: &mut BinaryHeap<Due>) -> Result<(), ProposeError> {
    let now = now_ms();
    let mut due = BTreeSet::new();
    while let Some(Reverse((deadline, task, kind))) = heap.peek().copied() {
        if deadline > now || due.len() >= MISSES_PER_ROUND_MAX {
            break;
        }
        heap.pop();
        due.insert((task, kind, deadline));
    }
    let commands: Vec<Command> = {
        let replica = state.store.read();
        due.iter()
            .filter(|(task, kind, deadline)| {
                replica.ledger.task(*task).and_then(|t| t.open_deadline_ms(*kind)) == Some(*deadline)
            })
            .map(|&(task, kind, deadline_ms)| Command {
                stamp_ms: now,
                actor: Actor { user: WATCH_USER.to_owned(), bureau: state.group_bureau, role: Role::System },
                idempotency: None,
                action: Action::RecordMissedDeadline { task, kind, deadline_ms },
            })
            .collect()
    };
    if commands.is_empty() {
        return Ok(());
    }
    // Proposed together, so the batcher packs them into few entries.
    let results = futures_util::future::join_all(commands.into_iter().map(|c| state.batcher.propose(c))).await;
    for result in results {
        match result {
            Ok(_) => {}
            Err(error) => {
                // Put everything back: what was recorded is filtered out on the next round.
                heap.extend(due.iter().map(|&(task, kind, deadline)| Reverse((deadline, task, kind))));
                return Err(error);
            }
        }
    }
    Ok(())
}
