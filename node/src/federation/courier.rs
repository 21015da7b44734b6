//! The courier: on the leader, delivers the ledger's outbox to the target groups and commits
//! their answers as receipts.
//!
//! Exactly-once rests on the ledgers, not on the courier: the target makes one task per forward
//! id and applies each instruction number once, and the origin accepts one receipt per message.
//! So the courier may send anything any number of times (a new leader starts over from the
//! outbox; a lost answer means sending again), and it only has to keep two rules: per forward,
//! only the oldest message is in flight (instructions follow their handover, in order), and per
//! target group, one request at a time with backoff while the group does not answer.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use cluster::raft::state_machine::AppliedEntry;
use ledger::{Action, Actor, BureauCode, Command, OutboxEntry, Receipt, Role};
use tokio::sync::broadcast;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::peer_api::{DeliverRequest, DeliverResponse, DeliveryResult, DELIVER_PATH, FEDERATION_BATCH_MAX};
use super::CallError;
use crate::api::time::now_ms;
use crate::state::AppState;

/// The courier looks at the outbox at least this often (it also wakes on every applied entry).
const COURIER_TICK: Duration = Duration::from_millis(200);
/// Backoff after a failed delivery to a group: doubles from the first value up to the cap.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// The name the courier's entries carry on timelines.
pub const COURIER_USER: &str = "courier";

struct Backoff {
    retry_at: Instant,
    wait: Duration,
}

/// Runs until `shutdown`; acts only while this node leads.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let mut applied = state.store.subscribe_applied();
    let mut tick = tokio::time::interval(COURIER_TICK);
    let mut in_flight: JoinSet<(BureauCode, bool)> = JoinSet::new();
    let mut busy: BTreeSet<BureauCode> = BTreeSet::new();
    let mut backoff: BTreeMap<BureauCode, Backoff> = BTreeMap::new();
    let preferred = std::sync::Arc::new(Mutex::new(BTreeMap::new()));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            received = applied.recv() => match received {
                // Only entries that touched a handed-over task can have written the outbox;
                // the rest (nearly all writes) cost this loop nothing.
                Ok(entry) if !touches_handover(&entry) => continue,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = tick.tick() => {}
            Some(done) = in_flight.join_next() => {
                match done {
                    Ok((group, true)) => {
                        busy.remove(&group);
                        backoff.remove(&group);
                    }
                    Ok((group, false)) => {
                        busy.remove(&group);
                        let wait = backoff.get(&group).map_or(BACKOFF_FIRST, |b| (b.wait * 2).min(BACKOFF_MAX));
                        backoff.insert(group, Backoff { retry_at: Instant::now() + wait, wait });
                    }
                    Err(error) => tracing::error!(%error, "a delivery task failed"),
                }
            }
        }
        if !state.leader_hint().is_self {
            continue;
        }
        let now = Instant::now();
        let (batches, stuck) = due_messages(&state, &busy, &backoff, now);
        for (group, entries) in batches {
            busy.insert(group);
            let (state, preferred) = (state.clone(), preferred.clone());
            in_flight.spawn(async move {
                let delivered = deliver(&state, group, entries, &preferred).await;
                (group, delivered)
            });
        }
        if !stuck.is_empty() {
            flag_stuck(&state, stuck).await;
        }
    }
    in_flight.shutdown().await;
}

fn touches_handover(entry: &AppliedEntry) -> bool {
    entry
        .results
        .iter()
        .any(|result| result.as_ref().is_ok_and(|applied| applied.tasks.iter().any(|task| task.remote.is_some())))
}

/// The messages to send now, per target group (the oldest per forward, groups that are not
/// busy or backing off), and the messages waiting longer than the stuck time.
fn due_messages(
    state: &AppState,
    busy: &BTreeSet<BureauCode>,
    backoff: &BTreeMap<BureauCode, Backoff>,
    now: Instant,
) -> (BTreeMap<BureauCode, Vec<OutboxEntry>>, Vec<u64>) {
    let stuck_after_ms = state.federation.tuning.forward_stuck_after_ms;
    let now_ms = now_ms();
    let replica = state.store.read();
    let mut batches: BTreeMap<BureauCode, Vec<OutboxEntry>> = BTreeMap::new();
    let mut forwards_seen = BTreeSet::new();
    let mut stuck = Vec::new();
    for entry in replica.ledger.outbox() {
        if !entry.stuck_flagged && entry.committed_ms.saturating_add(stuck_after_ms) <= now_ms {
            stuck.push(entry.seq);
        }
        // The outbox iterates in commit order, so the first message of a forward is its oldest.
        if !forwards_seen.insert(entry.message.forward()) {
            continue;
        }
        let group = entry.to_group;
        if busy.contains(&group) || backoff.get(&group).is_some_and(|b| b.retry_at > now) {
            continue;
        }
        let batch = batches.entry(group).or_default();
        if batch.len() < FEDERATION_BATCH_MAX {
            batch.push(entry.clone());
        }
    }
    (batches, stuck)
}

/// Delivers one batch and commits the receipts of what the target settled. True when every
/// message was settled.
async fn deliver(
    state: &AppState,
    group: BureauCode,
    entries: Vec<OutboxEntry>,
    preferred: &Mutex<BTreeMap<BureauCode, usize>>,
) -> bool {
    let request = DeliverRequest { messages: entries.iter().map(|e| e.message.clone()).collect() };
    let response: DeliverResponse = match state.federation.call(group, DELIVER_PATH, &request, preferred).await {
        Ok(response) => response,
        Err(CallError::Unreachable(reason)) => {
            tracing::debug!(%group, %reason, "group unreachable; will retry");
            return false;
        }
        Err(error) => {
            tracing::warn!(%group, ?error, "delivery failed; will retry");
            return false;
        }
    };
    if response.results.len() != entries.len() {
        tracing::warn!(%group, "the target answered {} results for {} messages", response.results.len(), entries.len());
        return false;
    }
    let stamp_ms = now_ms();
    let actor = Actor { user: COURIER_USER.to_owned(), bureau: state.federation.group, role: Role::System };
    let mut receipts = Vec::new();
    let mut all_settled = true;
    for (entry, result) in entries.iter().zip(response.results) {
        let answer = match result {
            DeliveryResult::Accepted { task } => Receipt::Accepted(task),
            DeliveryResult::Refused { reason } => {
                tracing::warn!(%group, forward = %entry.message.forward(), %reason, "the target refused a message");
                Receipt::Refused(reason)
            }
            DeliveryResult::Retry { .. } => {
                all_settled = false;
                continue;
            }
        };
        let action = Action::RecordReceipt { seq: entry.seq, answer };
        receipts.push(Command { stamp_ms, actor: actor.clone(), idempotency: None, action });
    }
    let outcomes = futures_util::future::join_all(receipts.into_iter().map(|c| state.batcher.propose(c))).await;
    // A receipt that did not commit (leadership moved) leaves its message in the outbox; the
    // next leader sends it again and the target answers with the same task.
    all_settled && outcomes.iter().all(Result::is_ok)
}

async fn flag_stuck(state: &AppState, stuck: Vec<u64>) {
    let stamp_ms = now_ms();
    let actor = Actor { user: COURIER_USER.to_owned(), bureau: state.federation.group, role: Role::System };
    let commands = stuck.into_iter().map(|seq| Command {
        stamp_ms,
        actor: actor.clone(),
        idempotency: None,
        action: Action::FlagStuckForward { seq },
    });
    let _ = futures_util::future::join_all(commands.map(|c| state.batcher.propose(c))).await;
}
