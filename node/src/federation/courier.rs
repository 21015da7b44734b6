//! The courier: on the leader, delivers the ledger's outbox to the target groups and commits
//! their answers as receipts.
//!
//! Exactly-once rests on the ledgers, not on the courier: the target makes one task per forward
//! id and applies each instruction number once, and the origin accepts one receipt per message.
//! So the courier may send anything any number of times (a new leader starts over from the
//! outbox; a lost answer means sending again), and it only has to keep two rules: per forward,
//! only the oldest message is in flight (instructions follow their handover, in order), and per
//! target group, at most `DELIVERIES_PER_GROUP` requests at a time, each with other messages,
//! with backoff while the group does not answer. Several at a time keep a long queue moving
//! while the answers' receipts commit (a province's draw hands tens of thousands over at once).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use cluster::raft::state_machine::AppliedEntry;
use ledger::{Action, Actor, BureauCode, Command, ForwardId, OutboxEntry, Receipt, Role};
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
/// The shortest gap between two passes over the outbox woken by applied entries: under a long
/// queue nearly every entry (receipts, reports) wakes the courier, and a pass reads the whole
/// outbox. A finished request and the tick start a pass at once.
const PASS_GAP_MIN: Duration = Duration::from_millis(25);
/// How often the courier reads the whole outbox (and looks for stuck messages); the passes
/// between stop early under a long queue (`due_messages`).
const WHOLE_PASS_EVERY: Duration = Duration::from_secs(1);
/// Requests in flight to one group at a time, each of `FEDERATION_BATCH_MAX` messages at most.
const DELIVERIES_PER_GROUP: usize = 4;
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
    let mut in_flight: JoinSet<(BureauCode, Vec<u64>, bool)> = JoinSet::new();
    // Per group, the messages of its requests in flight (by outbox number).
    let mut sending: BTreeMap<BureauCode, Sending> = BTreeMap::new();
    let mut backoff: BTreeMap<BureauCode, Backoff> = BTreeMap::new();
    // When each group last settled a message (or the courier began watching it): a message is
    // stuck when its group has settled nothing for the stuck time, not when it waits behind
    // others of a long queue (a province's draw hands tens of thousands over at once).
    let mut progress: BTreeMap<BureauCode, Instant> = BTreeMap::new();
    let preferred = std::sync::Arc::new(Mutex::new(BTreeMap::new()));
    let mut last_pass = Instant::now();
    let mut next_whole_pass = Instant::now();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            received = applied.recv() => match received {
                // Only entries that touched a handed-over task can have written the outbox;
                // the rest (nearly all writes) cost this loop nothing.
                Ok(entry) if !touches_handover(&entry) || last_pass.elapsed() < PASS_GAP_MIN => continue,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = tick.tick() => {}
            Some(done) = in_flight.join_next() => {
                match done {
                    Ok((group, seqs, delivered)) => {
                        if let Some(group_sending) = sending.get_mut(&group) {
                            group_sending.finished(&seqs);
                        }
                        if delivered {
                            backoff.remove(&group);
                            progress.insert(group, Instant::now());
                        } else {
                            let wait = backoff.get(&group).map_or(BACKOFF_FIRST, |b| (b.wait * 2).min(BACKOFF_MAX));
                            backoff.insert(group, Backoff { retry_at: Instant::now() + wait, wait });
                        }
                    }
                    Err(error) => tracing::error!(%error, "a delivery task failed"),
                }
            }
        }
        if !state.leader_hint().is_self {
            progress.clear();
            continue;
        }
        let now = Instant::now();
        last_pass = now;
        let whole = now >= next_whole_pass;
        if whole {
            next_whole_pass = now + WHOLE_PASS_EVERY;
        }
        let (batches, stuck) = due_messages(&state, &sending, &backoff, &mut progress, (now, whole));
        for (group, entries) in batches {
            let seqs: Vec<u64> = entries.iter().map(|entry| entry.seq).collect();
            sending.entry(group).or_default().started(&seqs);
            let (state, preferred) = (state.clone(), preferred.clone());
            in_flight.spawn(async move {
                let delivered = deliver(&state, group, entries, &preferred).await;
                (group, seqs, delivered)
            });
        }
        if !stuck.is_empty() {
            flag_stuck(&state, stuck).await;
        }
    }
    in_flight.shutdown().await;
}

/// One group's requests in flight: how many, and their messages.
#[derive(Default)]
struct Sending {
    requests: usize,
    seqs: BTreeSet<u64>,
}

impl Sending {
    fn started(&mut self, seqs: &[u64]) {
        self.requests += 1;
        self.seqs.extend(seqs);
    }

    fn finished(&mut self, seqs: &[u64]) {
        self.requests = self.requests.saturating_sub(1);
        seqs.iter().for_each(|seq| {
            self.seqs.remove(seq);
        });
    }
}

fn touches_handover(entry: &AppliedEntry) -> bool {
    entry
        .results
        .iter()
        .any(|result| result.as_ref().is_ok_and(|applied| applied.tasks.iter().any(|task| task.remote.is_some())))
}

/// The requests to send now, each to its group (the oldest message per forward whose messages
/// are not in flight, to groups with a request to spare and not backing off), and, in a whole
/// pass, the messages of groups that settled nothing for the stuck time. A pass that is not
/// whole stops once every group it met can take no more: under a long queue it reads the
/// messages in flight and stops at the first that must wait, instead of the whole outbox.
fn due_messages(
    state: &AppState,
    sending: &BTreeMap<BureauCode, Sending>,
    backoff: &BTreeMap<BureauCode, Backoff>,
    progress: &mut BTreeMap<BureauCode, Instant>,
    (now, whole): (Instant, bool),
) -> (Vec<(BureauCode, Vec<OutboxEntry>)>, Vec<u64>) {
    let stuck_after = state.federation.tuning.forward_stuck_after();
    let stuck_after_ms = state.federation.tuning.forward_stuck_after_ms;
    let now_ms = now_ms();
    let replica = state.store.read();
    let ledger = &replica.ledger;
    let this_group = state.federation.group;
    // Per group, the requests being filled (the last one open).
    let mut batches: BTreeMap<BureauCode, Vec<Vec<OutboxEntry>>> = BTreeMap::new();
    let mut forwards_seen = BTreeSet::new();
    let mut stuck = Vec::new();
    // The groups met so far, and whether each can take more messages in this pass.
    let mut met: BTreeMap<BureauCode, bool> = BTreeMap::new();
    for entry in ledger.outbox() {
        let group = entry.to_group;
        if whole {
            let idle_since = *progress.entry(group).or_insert(now);
            let group_idle = now.saturating_duration_since(idle_since) >= stuck_after;
            if !entry.stuck_flagged && group_idle && entry.committed_ms.saturating_add(stuck_after_ms) <= now_ms {
                stuck.push(entry.seq);
            }
        } else if met.values().all(|open| !open) && met.contains_key(&group) {
            break;
        }
        met.entry(group).or_insert(true);
        // The outbox iterates in commit order, so the first message of a forward is its oldest;
        // while it is in flight, the forward's later messages wait. A handover of a forward this
        // group minted is its forward's first message by construction (the forward is named by
        // the handover's own number), so the pass remembers only the other messages' forwards:
        // an instruction waits while its handover is still here or another message of its
        // forward came before it in this pass.
        let forward = entry.message.forward();
        let minted_here = forward == ForwardId { origin_group: this_group, seq: entry.seq };
        if !(minted_here && entry.message.handover().is_some()) {
            let handover_waiting = forward.origin_group == this_group && ledger.outbox_holds(forward.seq);
            if !forwards_seen.insert(forward) || (handover_waiting && forward.seq != entry.seq) {
                continue;
            }
        }
        let group_sending = sending.get(&group);
        if group_sending.is_some_and(|s| s.seqs.contains(&entry.seq)) {
            continue;
        }
        if backoff.get(&group).is_some_and(|b| b.retry_at > now) {
            met.insert(group, false);
            continue;
        }
        let spare = DELIVERIES_PER_GROUP.saturating_sub(group_sending.map_or(0, |s| s.requests));
        let requests = batches.entry(group).or_default();
        if let Some(open) = requests.last_mut().filter(|open| open.len() < FEDERATION_BATCH_MAX) {
            open.push(entry.clone());
        } else if requests.len() < spare {
            requests.push(vec![entry.clone()]);
        } else {
            met.insert(group, false);
        }
    }
    let requests = batches.into_iter().flat_map(|(group, requests)| requests.into_iter().map(move |r| (group, r)));
    (requests.collect(), stuck)
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
