//! `GET /api/v1/cluster`: this node's view of its group, with a digest of the ledger state.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use openraft::ServerState;

use crate::api::{ClusterView, MemberJson};
use crate::state::AppState;

pub fn role_name(state: ServerState) -> &'static str {
    match state {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    }
}

pub async fn cluster(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(error) = state.users.authenticate(&headers) {
        return error.into_response();
    }
    Json(view(&state)).into_response()
}

pub fn view(state: &AppState) -> ClusterView {
    let metrics = state.raft.metrics().borrow().clone();
    let hint = state.leader_hint();
    let members = metrics
        .membership_config
        .membership()
        .nodes()
        .map(|(id, node)| MemberJson { id: *id, addr: node.addr.clone() })
        .collect();
    let (applied_index, digest, task_count) = digest(state);
    ClusterView {
        group: state.group_bureau.to_string(),
        node_id: state.node_id,
        role: role_name(metrics.state).to_owned(),
        leader_id: metrics.current_leader,
        leader_addr: hint.leader.map(|(_, addr)| addr),
        term: metrics.current_term,
        members,
        last_log_index: metrics.last_log_index,
        commit_index: state.log.committed_index(),
        applied_index,
        digest,
        task_count,
    }
}

/// The digest and the applied index it belongs to, read under one lock so they match.
fn digest(state: &AppState) -> (Option<u64>, String, usize) {
    let replica = state.store.read();
    let applied = replica.last_applied.map(|log_id| log_id.index);
    let mut cache = state.digest_cache.lock().expect("the digest cache lock is never poisoned");
    let digest = match cache.as_ref() {
        Some((index, digest)) if *index == applied => digest.clone(),
        _ => {
            let digest = replica.ledger.digest();
            *cache = Some((applied, digest.clone()));
            digest
        }
    };
    (applied, digest, replica.ledger.task_count())
}
