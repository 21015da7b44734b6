//! Read consistency. By default a node answers from its own applied state (it may lag the
//! leader by a heartbeat or so). With `consistency=linearizable` the read waits until this
//! node has applied everything the leader had committed when the read began, confirmed by a
//! quorum: the leader uses `ensure_linearizable`, a follower asks the leader for that read
//! index and waits to apply it.

use std::time::Duration;

use crate::api::ApiError;
use crate::state::AppState;

/// Reads are cheap; a linearizable one should not wait longer than an election takes.
const LINEARIZABLE_READ_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consistency {
    Local,
    Linearizable,
}

impl Consistency {
    pub fn parse(text: Option<&str>) -> Result<Consistency, ApiError> {
        match text {
            None | Some("local") | Some("stale") => Ok(Consistency::Local),
            Some("linearizable") => Ok(Consistency::Linearizable),
            Some(other) => Err(ApiError::Invalid {
                code: "invalid_enum",
                message: format!("consistency: {other:?} is not one of local, linearizable"),
            }),
        }
    }
}

pub async fn barrier(state: &AppState, consistency: Consistency) -> Result<(), ApiError> {
    if consistency == Consistency::Local {
        return Ok(());
    }
    let unavailable = |message: String| ApiError::Unavailable { code: "no_leader", message };
    let hint = state.leader_hint();
    if hint.is_self {
        state
            .raft
            .ensure_linearizable()
            .await
            .map_err(|e| unavailable(format!("cannot confirm leadership for a linearizable read: {e}")))?;
        return Ok(());
    }
    let (leader_id, addr) = hint.leader.ok_or_else(|| unavailable("no leader is known; retry shortly".into()))?;
    let read_log_id = state
        .peers
        .leader_read_index(leader_id, &addr, LINEARIZABLE_READ_TIMEOUT)
        .await
        .map_err(|e| unavailable(format!("the leader could not serve a read index: {e}")))?;
    if let Some(log_id) = read_log_id {
        state
            .raft
            .wait(Some(LINEARIZABLE_READ_TIMEOUT))
            .applied_index_at_least(Some(log_id.index), "linearizable read")
            .await
            .map_err(|e| ApiError::Timeout(format!("this node did not catch up with the leader in time: {e}")))?;
    }
    Ok(())
}
