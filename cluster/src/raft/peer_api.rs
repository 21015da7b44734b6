//! The receiving side of peer RPC: axum routes that hand requests to the local Raft and send
//! back the whole `Result`, bincode-encoded.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::network::{PATH_APPEND, PATH_READ_INDEX, PATH_SNAPSHOT, PATH_VOTE, REMOTE_ERROR_STATUS, TARGET_NODE_HEADER};
use super::{GroupSecret, NodeId, Raft};

#[derive(Clone)]
struct PeerState {
    raft: Raft,
    node_id: NodeId,
    secret: GroupSecret,
}

/// The largest peer RPC body accepted: a snapshot chunk (`SNAPSHOT_CHUNK_BYTES`) or an
/// AppendEntries of up to 64 batched entries, with room. axum's default limit (2 MB) is below a
/// snapshot chunk: with it, a follower that needed a snapshot larger than 2 MB refused every
/// chunk and never caught up (found by the long randomized fault run).
pub const PEER_RPC_BODY_BYTES_MAX: usize = 256 * 1024 * 1024;
/// Bytes of snapshot per InstallSnapshot RPC (openraft's `snapshot_max_chunk_size`).
pub const SNAPSHOT_CHUNK_BYTES: u64 = 4 * 1024 * 1024;

const _: () = assert!(SNAPSHOT_CHUNK_BYTES as usize * 2 < PEER_RPC_BODY_BYTES_MAX);

/// Routes for `/raft/*`, to be merged into the node's single HTTP server.
pub fn router(raft: Raft, node_id: NodeId, secret: GroupSecret) -> Router {
    Router::new()
        .route(PATH_APPEND, post(append))
        .route(PATH_VOTE, post(vote))
        .route(PATH_SNAPSHOT, post(snapshot))
        .route(PATH_READ_INDEX, post(read_index))
        .layer(axum::extract::DefaultBodyLimit::max(PEER_RPC_BODY_BYTES_MAX))
        .with_state(PeerState { raft, node_id, secret })
}

/// Checks the group secret and the target header, decodes the body, or explains the refusal.
fn admit<Req: DeserializeOwned>(state: &PeerState, headers: &HeaderMap, body: &[u8]) -> Result<Req, Response> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok());
    if !state.secret.admits(authorization) {
        tracing::warn!(node = state.node_id, "refused peer RPC without this group's secret");
        let refusal =
            serde_json::json!({"error": {"code": "unauthenticated", "message": "peer RPC needs this group's secret"}});
        return Err((StatusCode::UNAUTHORIZED, axum::Json(refusal)).into_response());
    }
    let target = headers.get(TARGET_NODE_HEADER).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<NodeId>().ok());
    if target != Some(state.node_id) {
        let message = format!("this is node {}, not {:?}", state.node_id, target);
        return Err((StatusCode::MISDIRECTED_REQUEST, message).into_response());
    }
    bincode::deserialize(body)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("undecodable peer RPC: {e}")).into_response())
}

fn reply<T: Serialize, E: Serialize>(result: Result<T, E>) -> Response {
    let (status, bytes) = match result {
        Ok(value) => (StatusCode::OK, bincode::serialize(&value)),
        Err(error) => (StatusCode::from_u16(REMOTE_ERROR_STATUS).expect("a valid status"), bincode::serialize(&error)),
    };
    match bytes {
        Ok(bytes) => (status, bytes).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

async fn append(State(state): State<PeerState>, headers: HeaderMap, body: Bytes) -> Response {
    match admit(&state, &headers, &body) {
        Ok(request) => reply(state.raft.append_entries(request).await),
        Err(refusal) => refusal,
    }
}

async fn vote(State(state): State<PeerState>, headers: HeaderMap, body: Bytes) -> Response {
    match admit(&state, &headers, &body) {
        Ok(request) => reply(state.raft.vote(request).await),
        Err(refusal) => refusal,
    }
}

async fn snapshot(State(state): State<PeerState>, headers: HeaderMap, body: Bytes) -> Response {
    match admit(&state, &headers, &body) {
        Ok(request) => reply(state.raft.install_snapshot(request).await),
        Err(refusal) => refusal,
    }
}

/// For a follower's linearizable read: the leader confirms its leadership with a quorum and
/// answers the log id the follower must have applied before it reads.
async fn read_index(State(state): State<PeerState>, headers: HeaderMap, body: Bytes) -> Response {
    match admit::<()>(&state, &headers, &body) {
        Ok(()) => reply(state.raft.ensure_linearizable().await),
        Err(refusal) => refusal,
    }
}
