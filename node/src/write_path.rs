//! The write path: propose on this node if it leads, otherwise relay the original HTTP
//! request to the leader and relay its answer.
//!
//! Relaying re-sends the client's own request (token, Idempotency-Key, body), so the leader
//! authenticates, validates and stamps it itself. A hop counter stops loops while leadership
//! moves. During an election the write waits (bounded) for a leader to be known.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use config::limits::{LEADER_WAIT, RELAY_HOPS_MAX};
use ledger::{Command, CommandResult};
use tokio::time::Instant;

use crate::api::headers::{IDEMPOTENCY, RELAY_HOPS, RELAY_PROOF};
use crate::api::ApiError;
use crate::batcher::ProposeError;
use crate::state::AppState;

/// What a relay seal is for (so it can never pass for another seal of the group).
const PROOF_PURPOSE: &str = "xietong-relay-v1";

fn relay_proof_parts<'a>(method: &'a str, path: &'a str, hops: &'a str, authorization: &'a [u8]) -> [&'a [u8]; 4] {
    [method.as_bytes(), path.as_bytes(), hops.as_bytes(), authorization]
}

/// Middleware: keeps the hop count of a request only when a member of this group sealed it;
/// any other copy (a client's, a gateway's pass-through) is removed before a handler sees it.
pub async fn believe_hops_only_from_members(
    axum::extract::State(secret): axum::extract::State<cluster::raft::GroupSecret>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = request.headers();
    if let Some(hops) = headers.get(RELAY_HOPS) {
        let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let authorization = headers.get(axum::http::header::AUTHORIZATION).map_or(&b""[..], |v| v.as_bytes());
        let proof = headers.get(RELAY_PROOF).and_then(|v| v.to_str().ok()).unwrap_or("");
        let parts = relay_proof_parts(request.method().as_str(), path, hops.to_str().unwrap_or(""), authorization);
        if !secret.verifies(PROOF_PURPOSE, &parts, proof) {
            tracing::debug!(path, "removed a relay hop count no member sealed");
            request.headers_mut().remove(RELAY_HOPS);
        }
    }
    request.headers_mut().remove(RELAY_PROOF);
    next.run(request).await
}

/// The parts of the client's request needed to relay it unchanged.
pub struct OriginalRequest {
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl OriginalRequest {
    fn hops(&self) -> u32 {
        hops_of(&self.headers)
    }
}

pub enum WriteOutcome {
    /// Applied (or refused) by the ledger through this node.
    Local(CommandResult),
    /// The leader's answer, relayed as it came.
    Relayed(Response),
}

/// The command's result from the results of a command and its companions: a task a companion
/// changed after it is answered as it stands after the companion (the client's next version).
pub fn with_companions(results: Vec<CommandResult>) -> CommandResult {
    let mut results = results.into_iter();
    let mut first = results.next().expect("one result per command");
    for companion in results {
        match (&mut first, companion) {
            (Ok(applied), Ok(later)) => {
                for task in applied.tasks.iter_mut() {
                    if let Some(newer) = later.tasks.iter().find(|t| t.id == task.id && t.version > task.version) {
                        *task = newer.clone();
                    }
                }
            }
            (_, Err(refused)) => tracing::warn!(%refused, "a companion command was refused; its command stands"),
            (Err(_), Ok(_)) => {}
        }
    }
    first
}

/// How often to look at Raft metrics while waiting for a leader.
const LEADER_POLL: Duration = Duration::from_millis(20);

pub async fn propose_or_relay(
    state: &AppState,
    original: &OriginalRequest,
    command: Command,
) -> Result<WriteOutcome, ApiError> {
    propose_or_relay_with(state, original, command, Vec::new()).await
}

/// `propose_or_relay` of a command with `companions` committed in the same entry after it
/// (`routes::write::Prepared`): the answer is the command's.
pub async fn propose_or_relay_with(
    state: &AppState,
    original: &OriginalRequest,
    command: Command,
    companions: Vec<Command>,
) -> Result<WriteOutcome, ApiError> {
    let deadline = Instant::now() + LEADER_WAIT;
    loop {
        let hint = state.leader_hint();
        if hint.is_self {
            let together: Vec<Command> = std::iter::once(command.clone()).chain(companions.iter().cloned()).collect();
            match state.batcher.propose_together(together).await {
                Ok(results) => return Ok(WriteOutcome::Local(with_companions(results))),
                // Not appended: leadership moved just now. Look again.
                Err(ProposeError::NotLeader) => {}
                Err(error) => return Err(error.into()),
            }
        } else if let Some((leader_id, addr)) = hint.leader.filter(|(id, _)| *id != state.node_id) {
            if original.hops() >= RELAY_HOPS_MAX {
                return Err(ApiError::Unavailable {
                    code: "no_leader",
                    message: format!("leadership is moving (relayed {} times); retry shortly", original.hops()),
                });
            }
            match relay(state, original, leader_id, &addr).await {
                Ok(response) => return Ok(WriteOutcome::Relayed(response)),
                // Nothing was delivered: the leader just died. Wait for the next one.
                Err(None) => {}
                Err(Some(error)) => return Err(error),
            }
        }
        if Instant::now() >= deadline {
            return Err(ApiError::Unavailable {
                code: "no_leader",
                message: "no leader is known for this group (election under way); retry shortly".into(),
            });
        }
        tokio::time::sleep(LEADER_POLL).await;
    }
}

/// When another node is known to lead, sends the request there before doing any local work
/// that depends on this node's (possibly lagging) ledger. `None`: handle it here.
pub async fn relay_if_follower(state: &AppState, original: &OriginalRequest) -> Option<Response> {
    let hint = state.leader_hint();
    if hint.is_self || original.hops() >= RELAY_HOPS_MAX {
        return None;
    }
    let (leader_id, addr) = hint.leader.filter(|(id, _)| *id != state.node_id)?;
    match relay(state, original, leader_id, &addr).await {
        Ok(response) => Some(response),
        Err(None) => None,
        Err(Some(error)) => Some(error.into_response()),
    }
}

/// Sends the request to the leader. `Err(None)` means the connection was refused, so the
/// request certainly did not arrive and may be sent elsewhere.
async fn relay(
    state: &AppState,
    original: &OriginalRequest,
    leader_id: u64,
    addr: &str,
) -> Result<Response, Option<ApiError>> {
    let body = reqwest::Body::from(original.body.clone());
    let timeout = crate::routes::timeout_for_path(original.uri.path());
    send_to_leader(state, &original.uri, &original.headers, body, timeout, leader_id, addr).await
}

/// When another node is known to lead, streams the request's body there as it arrives (a
/// directory file of gigabytes is never whole in a follower's memory); answers the leader's
/// response, or hands the body back to be handled here.
pub async fn relay_stream_if_follower(
    state: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<Response, axum::body::Body> {
    let hint = state.leader_hint();
    if hint.is_self || hops_of(headers) >= RELAY_HOPS_MAX {
        return Err(body);
    }
    let Some((leader_id, addr)) = hint.leader.filter(|(id, _)| *id != state.node_id) else { return Err(body) };
    let stream = reqwest::Body::wrap_stream(body.into_data_stream());
    let timeout = config::limits::TRANSFER_TIMEOUT;
    match send_to_leader(state, uri, headers, stream, timeout, leader_id, &addr).await {
        Ok(response) => Ok(response),
        // The body is spent either way: the client sends it again.
        Err(None) => Ok(ApiError::Unavailable {
            code: "no_leader",
            message: format!("the leader (node {leader_id}) could not be reached; send the file again shortly"),
        }
        .into_response()),
        Err(Some(error)) => Ok(error.into_response()),
    }
}

fn hops_of(headers: &HeaderMap) -> u32 {
    headers.get(RELAY_HOPS).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Sends a request (its path, credentials and body) to the leader, vouched for as relayed by
/// a member. `Err(None)` means the connection was refused.
async fn send_to_leader(
    state: &AppState,
    uri: &Uri,
    original_headers: &HeaderMap,
    body: reqwest::Body,
    timeout: Duration,
    leader_id: u64,
    addr: &str,
) -> Result<Response, Option<ApiError>> {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let hops = (hops_of(original_headers) + 1).to_string();
    let authorization = original_headers.get(axum::http::header::AUTHORIZATION).map_or(&b""[..], |v| v.as_bytes());
    let proof = state.group_secret.seal(PROOF_PURPOSE, &relay_proof_parts("POST", path, &hops, authorization));
    let mut request = state
        .relay_http
        .post(format!("{}{path}", state.transport.base_url(&state.peers.route(leader_id, addr))))
        .timeout(timeout)
        .header(RELAY_HOPS, hops)
        .header(RELAY_PROOF, proof)
        .body(body);
    // If-Match decides whether the write applies: the leader must see it as the client sent it.
    let forwarded = [
        axum::http::header::AUTHORIZATION,
        axum::http::header::CONTENT_TYPE,
        axum::http::header::IF_MATCH,
        axum::http::header::CONTENT_LENGTH,
    ];
    for name in forwarded {
        if let Some(value) = original_headers.get(&name) {
            request = request.header(name, value);
        }
    }
    if let Some(value) = original_headers.get(IDEMPOTENCY) {
        request = request.header(IDEMPOTENCY, value);
    }
    let response = request.send().await.map_err(|error| {
        if error.is_connect() {
            None
        } else {
            Some(ApiError::OutcomeUnknown(format!(
                "relaying to the leader (node {leader_id}) failed ({error}); retry with the same Idempotency-Key"
            )))
        }
    })?;
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut headers = HeaderMap::new();
    for (name, value) in response.headers() {
        if crate::api::headers::ANSWER_HEADERS.contains(&name.as_str()) || name.as_str().starts_with("x-xietong") {
            if let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) {
                headers.insert(name.clone(), value);
            }
        }
    }
    let body = response.bytes().await.map_err(|error| {
        Some(ApiError::OutcomeUnknown(format!(
            "the leader's answer was cut off ({error}); retry with the same Idempotency-Key"
        )))
    })?;
    headers.insert("x-xietong-served-by", HeaderValue::from(leader_id));
    Ok((status, headers, body).into_response())
}
