//! Whether a node should get traffic (`/readyz`): it knows a leader and is not far behind it.
//! A follower cannot see the leader's commit in its own Raft state (it only learns the commit
//! up to the log it has), so it asks the leader for a read index every `PROBE_INTERVAL`
//! (the peer RPC of linearizable reads) and compares what it has applied with that; a
//! follower that cannot ask is not ready either. The leader compares with its own commit.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::ServerState;
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// How often a follower asks the leader how far the group has committed.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// A leader that does not answer within this is treated as not answering.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// A follower whose last answer from the leader is older than this cannot say how far behind
/// it is: not ready.
pub const PROBE_STALE_AFTER: Duration = Duration::from_secs(5);

/// The leader's commit as this follower last heard it.
#[derive(Clone, Default)]
pub struct LeaderCommit {
    last: Arc<Mutex<Option<(u64, Instant)>>>,
}

impl LeaderCommit {
    fn record(&self, index: u64, at: Instant) {
        *self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((index, at));
    }

    fn get(&self) -> Option<(u64, Instant)> {
        *self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What the node is, for the readiness decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// `quorum_ack_ms`: how long ago a quorum last acknowledged it (a leader cut off from its
    /// group keeps its commit and does not know yet that it leads nobody).
    Leader {
        committed: u64,
        quorum_ack_ms: Option<u64>,
    },
    /// A follower or learner with a known leader, and the leader's commit as last heard.
    Following {
        leader_commit: Option<(u64, Instant)>,
    },
    NoLeader,
}

/// Ready, or why not.
pub fn decide(standing: Standing, applied: u64, lag_max: u64, now: Instant) -> Result<(), String> {
    let target = match standing {
        Standing::NoLeader => return Err("no leader known".into()),
        Standing::Leader { quorum_ack_ms, .. }
            if quorum_ack_ms.is_none_or(|ms| ms > PROBE_STALE_AFTER.as_millis() as u64) =>
        {
            return Err("no quorum has acknowledged this leader lately".into());
        }
        Standing::Leader { committed, .. } => committed,
        Standing::Following { leader_commit: None } => {
            return Err("not heard from the leader how far it committed".into())
        }
        Standing::Following { leader_commit: Some((index, at)) } => {
            if now.duration_since(at) > PROBE_STALE_AFTER {
                return Err(format!(
                    "the leader has not said how far it committed for {} s",
                    now.duration_since(at).as_secs()
                ));
            }
            index
        }
    };
    let behind = target.saturating_sub(applied);
    if behind > lag_max {
        return Err(format!("{behind} log entries behind the leader's commit (ready at {lag_max} or fewer)"));
    }
    Ok(())
}

/// Whether this node is ready now: its standing and what it applied, from one reading of its
/// Raft metrics (two readings could pair an old applied index with a newer commit).
pub fn check(state: &AppState) -> Result<(), String> {
    let metrics = state.raft.metrics().borrow().clone();
    let standing = match (metrics.state, metrics.current_leader) {
        (_, None) => Standing::NoLeader,
        (ServerState::Leader, _) => Standing::Leader {
            committed: state.log.committed_index().unwrap_or(0),
            quorum_ack_ms: metrics.millis_since_quorum_ack,
        },
        (_, Some(_)) => Standing::Following { leader_commit: state.leader_commit.get() },
    };
    let applied = metrics.last_applied.map_or(0, |log_id| log_id.index);
    decide(standing, applied, state.ready_lag_entries_max, Instant::now())
}

/// On a follower, asks the leader for its commit every `PROBE_INTERVAL` until shutdown.
pub async fn probe_leader(state: AppState, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(PROBE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let hint = state.leader_hint();
        let Some((leader, addr)) = hint.leader.filter(|_| !hint.is_self) else { continue };
        // The leader answers after a heartbeat round confirms it still leads: the index is a
        // commit a quorum holds, not a deposed leader's.
        if let Ok(read_index) = state.peers.leader_read_index(leader, &addr, PROBE_TIMEOUT).await {
            state.leader_commit.record(read_index.map_or(0, |log_id| log_id.index), Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_with_a_leader_and_within_the_lag() {
        let now = Instant::now();
        assert!(decide(Standing::NoLeader, 10, 5, now).is_err());
        let leader = |committed, quorum_ack_ms| Standing::Leader { committed, quorum_ack_ms };
        assert!(decide(leader(15, Some(100)), 10, 5, now).is_ok());
        assert!(decide(leader(16, Some(100)), 10, 5, now).unwrap_err().contains("6 log entries behind"));
        let cut_off = PROBE_STALE_AFTER.as_millis() as u64 + 1;
        assert!(decide(leader(10, Some(cut_off)), 10, 5, now).unwrap_err().contains("no quorum"));
        assert!(decide(leader(10, None), 10, 5, now).is_err());
        let heard = |index, ago| Standing::Following { leader_commit: Some((index, now - ago)) };
        assert!(decide(heard(15, Duration::ZERO), 10, 5, now).is_ok());
        assert!(decide(heard(16, Duration::ZERO), 10, 5, now).is_err());
        assert!(decide(heard(15, PROBE_STALE_AFTER), 10, 5, now).is_ok(), "just fresh enough");
        let stale = decide(heard(10, PROBE_STALE_AFTER + Duration::from_millis(1)), 10, 5, now);
        assert!(stale.unwrap_err().contains("has not said"), "stale, however close it was");
        assert!(decide(Standing::Following { leader_commit: None }, 10, 5, now).is_err());
    }
}
