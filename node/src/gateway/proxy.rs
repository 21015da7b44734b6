//! The gateway's calls to the group's nodes: console snapshots on a console's behalf, and the
//! REST API passed through for the console page. A node that refuses the connection is skipped
//! for the next; any answer, error or not, is passed on as it came.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use config::limits::REQUEST_TIMEOUT;
use ledger::BureauCode;
use serde_json::value::RawValue;

use super::GatewayState;
use crate::api::console::ServerMessage;
use crate::api::ApiError;
use crate::intake::INTAKE_BODY_BYTES_MAX;
use crate::public_budget::FORWARDED_FOR;
use crate::server::{peer_address, Peer};

/// Headers a client's request carries through to the node (its answer's: `ANSWER_HEADERS`).
const REQUEST_HEADERS: [&str; 4] = ["authorization", "content-type", crate::IDEMPOTENCY_HEADER, "if-match"];

/// Where people sign in (`routes::people`): passed on without a credential.
const SIGN_IN_PATH: &str = "/api/v1/sessions";

/// The session token a request presents, if it presents one.
fn session_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::trim).filter(|token| token.starts_with(crate::sessions::SESSION_PREFIX))
}

/// Spreads calls over the nodes: each call starts at the next one.
static NEXT_NODE: AtomicUsize = AtomicUsize::new(0);

/// Sends `build(node)` to the nodes in turn until one answers.
pub(super) async fn call_any_node(
    state: &GatewayState,
    build: impl Fn(&str) -> reqwest::RequestBuilder,
) -> Result<reqwest::Response, ApiError> {
    call_any_node_within(state, REQUEST_TIMEOUT, build).await
}

/// `call_any_node` with `timeout` for the whole call (a draw over a province's register takes
/// longer than the API's usual bound: `routes::timeout_for_path`).
async fn call_any_node_within(
    state: &GatewayState,
    timeout: std::time::Duration,
    build: impl Fn(&str) -> reqwest::RequestBuilder,
) -> Result<reqwest::Response, ApiError> {
    let start = NEXT_NODE.fetch_add(1, Ordering::Relaxed);
    let mut last_error = String::from("no node configured");
    for offset in 0..state.nodes.len() {
        let node = &state.nodes[(start + offset) % state.nodes.len()];
        match build(node).timeout(timeout).send().await {
            Ok(response) => return Ok(response),
            Err(error) if error.is_connect() => last_error = format!("{node}: {error}"),
            Err(error) => return Err(ApiError::OutcomeUnknown(format!("{node} did not answer: {error}"))),
        }
    }
    Err(ApiError::Unavailable { code: "no_node", message: format!("no node of the group answers ({last_error})") })
}

/// The snapshot message a node gives this console, and the log index it reflects.
pub async fn fetch_snapshot(state: &GatewayState, scope: BureauCode, token: &str) -> Result<(u64, String), ApiError> {
    let response = call_any_node(state, |node| {
        let url = format!("{}/api/v1/console/snapshot?scope={scope}", state.transport.base_url(node));
        state.http.get(url).bearer_auth(token)
    })
    .await?;
    let status = response.status();
    let text = response.text().await.map_err(|e| ApiError::Unavailable { code: "no_node", message: e.to_string() })?;
    if !status.is_success() {
        return Err(ApiError::Unavailable {
            code: "no_snapshot",
            message: format!("the node answered {status}: {text}"),
        });
    }
    // Read as the protocol's snapshot (tasks left as they are): a node's answer that is not one
    // is refused here rather than passed to the console.
    let index = match serde_json::from_str::<ServerMessage<&RawValue>>(&text) {
        Ok(ServerMessage::Snapshot(snapshot)) => snapshot.index,
        _ => return Err(ApiError::Internal("the node's answer is no console snapshot".into())),
    };
    Ok((index, text))
}

/// The `X-Forwarded-For` a node gets: the hops the request came with, then the address this
/// gateway saw it from (a node that trusts the gateway budgets public requests by it).
fn forwarded_for(headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<String> {
    let mut hops: Vec<&str> = headers.get_all(FORWARDED_FOR).iter().filter_map(|value| value.to_str().ok()).collect();
    let peer = peer.map(|peer| peer.ip().to_string());
    hops.extend(peer.as_deref());
    (!hops.is_empty()).then(|| hops.join(", "))
}

/// The path prefixes a gateway passes on: the client API and the public routes. Everything
/// else a node serves (`/raft`, `/federation`, `/admin`, `/metrics`) stays off the gateway tier.
const UPSTREAM_PREFIXES: [&str; 3] = ["/api/v1/", "/public/", "/public"];

/// The path and query to call a node with, when the path is one the gateway passes on. Dot
/// segments (plain or percent-encoded) and encoded slashes are refused: a node's client would
/// resolve `/api/../admin` to `/admin` after the gateway's routing had let it through.
fn upstream_path(uri: &Uri) -> Result<&str, ApiError> {
    let path = uri.path();
    let refuse = |reason: &str| ApiError::invalid_field("path", format!("{path}: {reason}"));
    for segment in path.split('/') {
        let lowered = segment.to_ascii_lowercase();
        let decoded = lowered.replace("%2e", ".");
        if decoded == "." || decoded == ".." {
            return Err(refuse("dot segments are not allowed"));
        }
        if lowered.contains("%2f") || lowered.contains("%5c") || segment.contains('\\') {
            return Err(refuse("encoded slashes are not allowed"));
        }
    }
    let allowed =
        UPSTREAM_PREFIXES
            .iter()
            .any(|prefix| if prefix.ends_with('/') { path.starts_with(prefix) } else { path == *prefix });
    if !allowed {
        return Err(refuse("a gateway passes on only /api/v1/ and /public"));
    }
    Ok(uri.path_and_query().map_or(path, |p| p.as_str()))
}

/// `/api/*` and `/public*`: passed to a node of the group as it came (with the client's
/// address added to `X-Forwarded-For`), the answer back as it came. An API request without
/// credentials is refused before its body is read.
pub async fn pass_through(
    State(state): State<GatewayState>,
    peer: Peer,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let answer = async {
        let path = upstream_path(&uri)?;
        // Nothing is read of a request the nodes would refuse anyway: the public routes only
        // read, a sign-in is the one API call without a credential (the nodes bound it by
        // client address, the gateway passing the address on), and the rest of the API needs
        // a credential of the users file the nodes share or a session a node accepted.
        if path.starts_with("/public") {
            if method != Method::GET && method != Method::HEAD {
                return Err(ApiError::MethodNotAllowed("the public routes only read".into()));
            }
        } else if let Some(session) = session_token(&headers) {
            super::sessions::user_of_session(&state, session).await?.spend_request()?;
        } else if !(state.users.knows_api_credential(&headers) || method == Method::POST && path == SIGN_IN_PATH) {
            return Err(ApiError::Unauthorized("a known bearer token is required".into()));
        }
        let body = axum::body::to_bytes(body, INTAKE_BODY_BYTES_MAX)
            .await
            .map_err(|_| ApiError::TooLarge("the request body is too large".into()))?;
        let forwarded = forwarded_for(&headers, peer_address(peer));
        let timeout = crate::routes::timeout_for_path(uri.path());
        let response = call_any_node_within(&state, timeout, |node| {
            let url = format!("{}{path}", state.transport.base_url(node));
            let mut request = state.http.request(method.clone(), url).body(body.clone());
            for name in REQUEST_HEADERS {
                if let Some(value) = headers.get(name) {
                    request = request.header(name, value);
                }
            }
            if let Some(forwarded) = &forwarded {
                request = request.header(FORWARDED_FOR, forwarded);
            }
            request
        })
        .await?;
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let mut answer_headers = HeaderMap::new();
        for name in crate::api::headers::ANSWER_HEADERS {
            if let Some(value) = response.headers().get(name) {
                answer_headers.insert(HeaderName::from_static(name), value.clone());
            }
        }
        let bytes = response.bytes().await.map_err(|e| ApiError::OutcomeUnknown(e.to_string()))?;
        Ok::<_, ApiError>((status, answer_headers, bytes).into_response())
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn only_the_api_and_public_paths_without_dot_segments_pass() {
        let path = |text: &str| upstream_path(&text.parse::<Uri>().expect("uri")).map(str::to_owned).ok();
        assert_eq!(path("/api/v1/tasks?limit=5").as_deref(), Some("/api/v1/tasks?limit=5"));
        assert_eq!(path("/public").as_deref(), Some("/public"));
        assert_eq!(path("/public/v1/results?uscc=1").as_deref(), Some("/public/v1/results?uscc=1"));
        // The review's payloads (finding 7), and their kin.
        for refused in [
            "/api/../metrics",
            "/api/../admin/v1/members",
            "/api/%2e%2e/federation/v1/status",
            "/api/v1/%2E%2e/%2e%2E/raft/vote",
            "/api/v1/./tasks",
            "/api/v1/..%2fadmin",
            "/api/v1%2F..%2Fraft",
            "/public/../metrics",
            "/publicity",
            "/api/v2/anything",
            "/api",
        ] {
            assert!(path(refused).is_none(), "{refused} passed");
        }
    }

    #[test]
    fn the_gateway_appends_the_address_it_saw_to_the_forwarded_hops() {
        let peer: SocketAddr = "192.0.2.4:50000".parse().unwrap();
        assert_eq!(forwarded_for(&HeaderMap::new(), Some(peer)).as_deref(), Some("192.0.2.4"));
        let mut headers = HeaderMap::new();
        headers.append(FORWARDED_FOR, HeaderValue::from_static("203.0.113.5, 10.0.0.1"));
        headers.append(FORWARDED_FOR, HeaderValue::from_static("10.0.0.2"));
        assert_eq!(forwarded_for(&headers, Some(peer)).as_deref(), Some("203.0.113.5, 10.0.0.1, 10.0.0.2, 192.0.2.4"));
        assert_eq!(forwarded_for(&HeaderMap::new(), None), None);
    }
}
