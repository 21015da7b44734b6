//! Membership operations on a running group (`xietong admin`): list the members and how far
//! each has caught up, add a node as a learner (it catches up from the log or a snapshot in
//! the background), promote a learner to voter, remove
//! a node. Only platform operators' tokens are accepted; changes run on the leader (a follower
//! relays them), through openraft's joint consensus, so the group serves throughout.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cluster::raft::{ClientWriteError, NodeId, RaftError};
use config::limits::{GROUP_MEMBERS_MAX, REQUEST_BODY_BYTES_MAX};
use openraft::error::ClientWriteError as WriteError;
use openraft::{BasicNode, ChangeMembers};
use serde::{Deserialize, Serialize};

use crate::api::ApiError;
use crate::state::AppState;
use crate::write_path::{relay_if_follower, OriginalRequest};

pub const MEMBERS_PATH: &str = "/admin/v1/members";
/// How far a learner's log may trail the leader's for it to be made a voter.
pub const PROMOTE_LAG_ENTRIES_MAX: u64 = config::limits::READY_LAG_ENTRIES_MAX;

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MembersJson {
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
    pub nodes: BTreeMap<NodeId, String>,
    pub leader_id: Option<NodeId>,
    /// The leader's last log index; absent when this node does not lead.
    pub last_log_index: Option<u64>,
    /// How far each other member's log matches the leader's (its log index; a member that
    /// has nothing yet, e.g. a learner receiving a snapshot, is absent). Only the leader
    /// knows: empty on other nodes.
    pub matched: BTreeMap<NodeId, u64>,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddLearnerRequest {
    pub id: NodeId,
    pub addr: String,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberRequest {
    pub id: NodeId,
}

fn members(state: &AppState) -> MembersJson {
    let metrics = state.raft.metrics().borrow().clone();
    let membership = metrics.membership_config.membership();
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    MembersJson {
        learners: membership.learner_ids().filter(|id| !voters.contains(id)).collect(),
        voters: voters.into_iter().collect(),
        nodes: membership.nodes().map(|(id, node)| (*id, node.addr.clone())).collect(),
        leader_id: metrics.current_leader,
        last_log_index: metrics.replication.as_ref().and(metrics.last_log_index),
        matched: metrics
            .replication
            .iter()
            .flatten()
            .filter_map(|(id, matched)| matched.map(|log_id| (*id, log_id.index)))
            .collect(),
    }
}

pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match state.users.authenticate_admin(&headers) {
        Ok(_) => Json(members(&state)).into_response(),
        Err(error) => error.into_response(),
    }
}

/// The shared shape of the change routes: authenticate, hand the request to the leader if
/// another node leads, parse the body, make the change and answer with the new membership.
async fn change<T: serde::de::DeserializeOwned>(
    state: AppState,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
    make: impl FnOnce(&AppState, T) -> Result<ChangeMembers<NodeId, BasicNode>, ApiError>,
) -> Response {
    let answer = async {
        let admin = state.users.authenticate_admin(&headers)?.to_owned();
        let body = axum::body::to_bytes(body, REQUEST_BODY_BYTES_MAX)
            .await
            .map_err(|_| ApiError::TooLarge("the request body is too large".into()))?;
        let original = OriginalRequest { uri, headers, body };
        if let Some(response) = relay_if_follower(&state, &original).await {
            return Ok::<_, ApiError>(response);
        }
        let request: T = serde_json::from_slice(&original.body)
            .map_err(|e| ApiError::Invalid { code: "invalid_json", message: e.to_string() })?;
        let changes = make(&state, request)?;
        tracing::info!(%admin, ?changes, "membership change");
        let result = match changes {
            ChangeMembers::AddNodes(nodes) => {
                let (id, node) = nodes.into_iter().next().expect("one node");
                // Answers once the learner is in the membership, not once it has caught up:
                // a province's ledger takes minutes to stream, longer than any request may
                // last. `xietong admin add-learner` then follows its progress in `matched`.
                state.raft.add_learner(id, node, false).await
            }
            changes => state.raft.change_membership(changes, false).await,
        };
        result.map_err(membership_error)?;
        Ok(Json(members(&state)).into_response())
    };
    match answer.await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

fn membership_error(error: RaftError<ClientWriteError>) -> ApiError {
    match error {
        RaftError::APIError(WriteError::ForwardToLeader(_)) => {
            ApiError::Unavailable { code: "no_leader", message: "leadership moved; retry".into() }
        }
        RaftError::APIError(WriteError::ChangeMembershipError(error)) => {
            ApiError::Conflict { code: "membership_conflict", message: error.to_string() }
        }
        RaftError::Fatal(error) => ApiError::Internal(error.to_string()),
    }
}

pub async fn add_learner(State(state): State<AppState>, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    change(state, uri, headers, body, |state, request: AddLearnerRequest| {
        let current = members(state);
        if request.id == 0 || current.nodes.contains_key(&request.id) {
            return Err(ApiError::invalid_field("id", format!("{} is zero or already a member", request.id)));
        }
        if request.addr.parse::<SocketAddr>().is_err() {
            return Err(ApiError::invalid_field("addr", format!("{:?} is not host:port", request.addr)));
        }
        if current.nodes.len() >= GROUP_MEMBERS_MAX {
            return Err(ApiError::Conflict {
                code: "membership_conflict",
                message: format!("a group has at most {GROUP_MEMBERS_MAX} members"),
            });
        }
        Ok(ChangeMembers::AddNodes(BTreeMap::from([(request.id, BasicNode::new(request.addr))])))
    })
    .await
}

pub async fn promote(State(state): State<AppState>, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    change(state, uri, headers, body, |state, request: MemberRequest| {
        let current = members(state);
        if !current.learners.contains(&request.id) {
            return Err(ApiError::invalid_field("id", format!("node {} is not a learner of this group", request.id)));
        }
        // A voter still receiving the ledger counts towards the quorum without holding it: in a
        // group of three, one more failure would stop the group until it caught up.
        let last = current.last_log_index.unwrap_or(0);
        let matched = current.matched.get(&request.id).copied();
        if matched.is_none_or(|matched| last.saturating_sub(matched) > PROMOTE_LAG_ENTRIES_MAX) {
            let at = matched.map_or("nothing yet".to_owned(), |m| format!("index {m}"));
            return Err(ApiError::Conflict {
                code: "learner_behind",
                message: format!(
                    "learner {} holds {at} of the leader's {last}: promote it once it has caught up \
                     (`xietong admin add-learner` follows it)",
                    request.id
                ),
            });
        }
        Ok(ChangeMembers::AddVoterIds(BTreeSet::from([request.id])))
    })
    .await
}

pub async fn remove(State(state): State<AppState>, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    change(state, uri, headers, body, |state, request: MemberRequest| {
        let current = members(state);
        if current.learners.contains(&request.id) {
            return Ok(ChangeMembers::RemoveNodes(BTreeSet::from([request.id])));
        }
        if !current.voters.contains(&request.id) {
            return Err(ApiError::invalid_field("id", format!("node {} is not a member of this group", request.id)));
        }
        if current.voters.len() <= 1 {
            return Err(ApiError::Conflict {
                code: "membership_conflict",
                message: "the last voter of a group cannot be removed".into(),
            });
        }
        Ok(ChangeMembers::RemoveVoters(BTreeSet::from([request.id])))
    })
    .await
}
