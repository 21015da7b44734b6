//! `GET /api/v1/cluster`: this node's view of its group, with a digest of the ledger state.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use openraft::ServerState;

use ledger::Role;

use crate::api::{ClusterView, MemberJson};
use crate::state::{AppState, DigestAtIndex};

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
    // The digest costs a full encoding of the ledger: it is for the command centre and the
    // platform's operators, who check that replicas agree, not for every console at sign-in.
    let checks_replicas = match state.users.authenticate(&headers) {
        Ok(user) => user.actor.role == Role::Command,
        Err(error) => match state.users.authenticate_admin(&headers) {
            Ok(_) => true,
            Err(_) => return error.into_response(),
        },
    };
    let mut view = view(&state);
    if checks_replicas {
        let (applied_index, digest, task_count) = digest(&state).await;
        (view.applied_index, view.digest, view.task_count) = (applied_index, Some(digest), Some(task_count));
    }
    Json(view).into_response()
}

/// The group as this node sees it, without the digest.
pub fn view(state: &AppState) -> ClusterView {
    let metrics = state.raft.metrics().borrow().clone();
    let hint = state.leader_hint();
    let members = metrics
        .membership_config
        .membership()
        .nodes()
        .map(|(id, node)| MemberJson { id: *id, addr: node.addr.clone() })
        .collect();
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
        applied_index: state.store.read().last_applied.map(|log_id| log_id.index),
        digest: None,
        task_count: None,
    }
}

/// The digest, the applied index it belongs to and the task count, all of one state. The
/// ledger's core (whose records digest stands for every record) is encoded under the read lock
/// and hashed after it is released; one caller computes while the others wait for its answer.
async fn digest(state: &AppState) -> (Option<u64>, String, u64) {
    let mut cache = state.digest_cache.lock().await;
    let (applied, ledger) = {
        let replica = state.store.read();
        let applied = replica.last_applied.map(|log_id| log_id.index);
        if let Some(cached) = cache.as_ref().filter(|cached| cached.applied == applied) {
            return (applied, cached.digest.clone(), cached.task_count);
        }
        (applied, (replica.ledger.encode_core(), replica.ledger.task_count()))
    };
    let (core, task_count) = ledger;
    match tokio::task::spawn_blocking(move || ledger::Ledger::digest_of_core(&core)).await {
        Ok(digest) => {
            *cache = Some(DigestAtIndex { applied, digest: digest.clone(), task_count });
            (applied, digest, task_count)
        }
        // Not kept: the next caller computes it again.
        Err(error) => (applied, format!("unavailable: {error}"), task_count),
    }
}
