//! The receiving side of peer RPC: axum routes that hand requests to the local Raft and send
//! back the whole `Result`, in the one binary encoding (`ledger::codec`). An admitted caller's
//! build is heard (`member_reads`), and every answer says what this build reads.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::map_response_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::member_reads::{MemberReads, MEMBER_READS_HEADER, SENDER_NODE_HEADER};
use super::network::{
    PATH_APPEND, PATH_READ_INDEX, PATH_SNAPSHOT, PATH_VOTE, PEER_FORMAT, PEER_FORMAT_HEADER, REMOTE_ERROR_STATUS,
    TARGET_NODE_HEADER,
};
use super::{GroupSecret, NodeId, Raft};

#[derive(Clone)]
struct PeerState {
    raft: Raft,
    node_id: NodeId,
    secret: GroupSecret,
    /// Peer RPCs served at once (`PEER_RPCS_CONCURRENT_MAX`).
    slots: Arc<Semaphore>,
    /// Where a snapshot from the leader is loaded, one at a time.
    state_machine: super::LedgerStore,
    receiving: Arc<tokio::sync::Mutex<()>>,
    reads: MemberReads,
}

/// The largest peer RPC body accepted: an AppendEntries of up to 64 batched entries, with room
/// (snapshots are streamed and checked frame by frame instead). Read only from a member that
/// presented the group secret.
pub const PEER_RPC_BODY_BYTES_MAX: usize = 256 * 1024 * 1024;
/// A vote or a read-index request is a few dozen bytes.
const SMALL_PEER_RPC_BODY_BYTES_MAX: usize = 64 * 1024;
/// Peer RPCs served at once. A leader keeps one replication stream per follower and a
/// candidate asks each member once, so a group of seven needs a handful; the cap bounds what a
/// misbehaving member can hold.
pub const PEER_RPCS_CONCURRENT_MAX: usize = 64;
/// The longest a peer RPC may take to arrive (its body) and to wait for a slot, and the longest
/// a snapshot stream may stall between two chunks.
pub const PEER_RPC_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Routes for `/raft/*`, to be merged into the node's single HTTP server.
/// `state_machine` says where a snapshot from the leader is loaded
/// (`LedgerStore::incoming_store_path`); `reads` is the peer network's
/// (`PeerNetwork::member_reads`).
pub fn router(
    raft: Raft,
    node_id: NodeId,
    secret: GroupSecret,
    state_machine: super::LedgerStore,
    reads: MemberReads,
) -> Router {
    let slots = Arc::new(Semaphore::new(PEER_RPCS_CONCURRENT_MAX));
    let state = PeerState { raft, node_id, secret, slots, state_machine, receiving: Arc::default(), reads };
    Router::new()
        .route(PATH_APPEND, post(append))
        .route(PATH_VOTE, post(vote))
        .route(PATH_SNAPSHOT, post(snapshot))
        .route(PATH_READ_INDEX, post(read_index))
        .layer(map_response_with_state(state.clone(), tell_our_reads))
        .with_state(state)
}

/// Every answer says what this build reads.
async fn tell_our_reads(State(state): State<PeerState>, mut response: Response) -> Response {
    response.headers_mut().insert(MEMBER_READS_HEADER, state.reads.ours().clone());
    response
}

/// Hears what an admitted caller reads, if it names itself as another member of the group.
fn hear_caller(state: &PeerState, headers: &HeaderMap) {
    let sender = headers.get(SENDER_NODE_HEADER).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<NodeId>().ok());
    let Some(sender) = sender.filter(|sender| *sender != state.node_id) else { return };
    let addr =
        state.raft.metrics().borrow().membership_config.membership().get_node(&sender).map(|node| node.addr.clone());
    if let Some(addr) = addr {
        state.reads.heard(sender, &addr, headers);
    }
}

/// Checks the group secret and the target header from the headers alone, or explains the
/// refusal. Nothing of the body is read for a caller without the secret.
fn check_caller(state: &PeerState, headers: &HeaderMap) -> Result<(), Response> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok());
    if !state.secret.admits(authorization) {
        tracing::warn!(node = state.node_id, "refused peer RPC without this group's secret");
        let refusal =
            serde_json::json!({"error": {"code": "unauthenticated", "message": "peer RPC needs this group's secret"}});
        return Err((StatusCode::UNAUTHORIZED, axum::Json(refusal)).into_response());
    }
    let format = headers.get(PEER_FORMAT_HEADER).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u32>().ok());
    if format != Some(PEER_FORMAT) {
        // A member of another build (a rolling upgrade across a format change): refused whole,
        // so neither side misreads the other's bytes.
        let theirs = format.map_or_else(|| "1 (no format header)".to_owned(), |format| format.to_string());
        let message = format!("peer RPC of format {theirs}; node {} speaks peer format {PEER_FORMAT}", state.node_id);
        tracing::warn!(node = state.node_id, "{message}");
        let refusal = serde_json::json!({"error": {"code": "peer_format", "message": message}});
        return Err((StatusCode::BAD_REQUEST, axum::Json(refusal)).into_response());
    }
    let target = headers.get(TARGET_NODE_HEADER).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<NodeId>().ok());
    if target != Some(state.node_id) {
        let message = format!("this is node {}, not {:?}", state.node_id, target);
        return Err((StatusCode::MISDIRECTED_REQUEST, message).into_response());
    }
    hear_caller(state, headers);
    Ok(())
}

/// Admits the caller (`check_caller`), then takes a slot and reads and decodes the body within
/// the time limit, or explains the refusal.
async fn admit<Req: DeserializeOwned>(
    state: &PeerState,
    headers: &HeaderMap,
    body: Body,
    bytes_max: usize,
) -> Result<(Req, OwnedSemaphorePermit), Response> {
    check_caller(state, headers)?;
    let arrival = async {
        let slot = state.slots.clone().acquire_owned().await.map_err(|_| "the node is shutting down".to_owned())?;
        let bytes = axum::body::to_bytes(body, bytes_max)
            .await
            .map_err(|e| format!("peer RPC body unreadable or over {bytes_max} bytes: {e}"))?;
        Ok::<_, String>((bytes, slot))
    };
    let (bytes, slot) = match tokio::time::timeout(PEER_RPC_READ_TIMEOUT, arrival).await {
        Ok(Ok(arrived)) => arrived,
        Ok(Err(reason)) => return Err((StatusCode::BAD_REQUEST, reason).into_response()),
        Err(_) => {
            let reason = format!("peer RPC did not arrive within {} s", PEER_RPC_READ_TIMEOUT.as_secs());
            return Err((StatusCode::REQUEST_TIMEOUT, reason).into_response());
        }
    };
    let request = ledger::codec::decode(&bytes)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("undecodable peer RPC: {e}")).into_response())?;
    Ok((request, slot))
}

pub(super) fn reply<T: Serialize, E: Serialize>(result: Result<T, E>) -> Response {
    let (status, bytes) = match result {
        Ok(value) => (StatusCode::OK, ledger::codec::encode(&value)),
        Err(error) => {
            (StatusCode::from_u16(REMOTE_ERROR_STATUS).expect("a valid status"), ledger::codec::encode(&error))
        }
    };
    match bytes {
        Ok(bytes) => (status, bytes).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

async fn append(State(state): State<PeerState>, headers: HeaderMap, body: Body) -> Response {
    match admit(&state, &headers, body, PEER_RPC_BODY_BYTES_MAX).await {
        Ok((request, _slot)) => reply(state.raft.append_entries(request).await),
        Err(refusal) => refusal,
    }
}

async fn vote(State(state): State<PeerState>, headers: HeaderMap, body: Body) -> Response {
    match admit(&state, &headers, body, SMALL_PEER_RPC_BODY_BYTES_MAX).await {
        Ok((request, _slot)) => reply(state.raft.vote(request).await),
        Err(refusal) => refusal,
    }
}

/// A snapshot streamed by the leader (`snapshot_transfer`).
async fn snapshot(State(state): State<PeerState>, headers: HeaderMap, body: Body) -> Response {
    if let Err(refusal) = check_caller(&state, &headers) {
        return refusal;
    }
    let Ok(_slot) = state.slots.clone().acquire_owned().await else {
        return (StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down").into_response();
    };
    let incoming = state.state_machine.incoming_store_path();
    super::snapshot_transfer::receive(&state.raft, incoming, &state.receiving, body, PEER_RPC_READ_TIMEOUT).await
}

/// For a follower's linearizable read: the leader confirms its leadership with a quorum and
/// answers the log id the follower must have applied before it reads.
async fn read_index(State(state): State<PeerState>, headers: HeaderMap, body: Body) -> Response {
    match admit::<()>(&state, &headers, body, SMALL_PEER_RPC_BODY_BYTES_MAX).await {
        Ok(((), _slot)) => reply(state.raft.ensure_linearizable().await),
        Err(refusal) => refusal,
    }
}
