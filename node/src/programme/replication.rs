//! Entity directory files between the members of a group: `PUT /raft/directories/{sha256}`
//! stores a file on a fellow member (which checks the hash and syncs it to disk before it
//! answers), `GET` fetches one. Both need the group's shared secret, like every peer RPC.
//! An import is acknowledged only once a majority of the members hold the file.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::api::ApiError;
use crate::state::AppState;

pub const DIRECTORY_PEER_PATH: &str = "/raft/directories/{sha256}";
/// A 256 MiB file over loopback or a LAN takes seconds; a stalled peer must not hold an import.
const PEER_FILE_TIMEOUT: Duration = Duration::from_secs(60);

pub fn router() -> Router<AppState> {
    Router::new().route(DIRECTORY_PEER_PATH, get(serve).put(store))
}

async fn serve(State(state): State<AppState>, Path(sha256): Path<String>, headers: HeaderMap) -> Response {
    if let Err(refused) = state.admit_member(&headers) {
        return refused.into_response();
    }
    let store = state.programme.directories.clone();
    match tokio::task::spawn_blocking(move || store.read(&sha256)).await {
        Ok(Ok(Some(bytes))) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/csv; charset=utf-8")], bytes).into_response()
        }
        Ok(Ok(None)) => ApiError::NotFound("this node does not hold that directory".into()).into_response(),
        Ok(Err(e)) => ApiError::Internal(format!("reading the directory: {e}")).into_response(),
        Err(e) => ApiError::Internal(e.to_string()).into_response(),
    }
}

async fn store(State(state): State<AppState>, Path(sha256): Path<String>, headers: HeaderMap, body: Body) -> Response {
    if let Err(refused) = state.admit_member(&headers) {
        return refused.into_response();
    }
    let bytes = match axum::body::to_bytes(body, super::DIRECTORY_BYTES_MAX).await {
        Ok(bytes) => bytes,
        Err(_) => return ApiError::TooLarge("the directory file is too large".into()).into_response(),
    };
    let store = state.programme.directories.clone();
    match tokio::task::spawn_blocking(move || store.write(&sha256, &bytes)).await {
        Ok(Ok(())) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err(e)) => ApiError::Invalid { code: "invalid_directory", message: e.to_string() }.into_response(),
        Err(e) => ApiError::Internal(e.to_string()).into_response(),
    }
}

fn url(state: &AppState, id: u64, addr: &str, sha256: &str) -> String {
    let base = state.transport.base_url(&state.peers.route(id, addr));
    format!("{base}{}", DIRECTORY_PEER_PATH.replace("{sha256}", sha256))
}

/// Sends the file to every other member; answers how many members hold it now, this one
/// included.
pub async fn replicate(state: &AppState, sha256: &str, bytes: Bytes) -> usize {
    let sends = state.member_addrs.iter().filter(|(id, _)| **id != state.node_id).map(|(id, addr)| {
        let request = state
            .relay_http
            .put(url(state, *id, addr, sha256))
            .bearer_auth(state.group_secret.bearer())
            .timeout(PEER_FILE_TIMEOUT)
            .body(bytes.clone());
        async move {
            match request.send().await {
                Ok(response) if response.status().is_success() => true,
                Ok(response) => {
                    tracing::warn!(node = id, status = %response.status(), "a member refused a directory file");
                    false
                }
                Err(error) => {
                    tracing::warn!(node = id, %error, "a member did not take a directory file");
                    false
                }
            }
        }
    });
    1 + futures_util::future::join_all(sends).await.into_iter().filter(|stored| *stored).count()
}

/// The file from this node, or fetched from a fellow member (and kept here).
pub async fn obtain(state: &AppState, sha256: &str) -> Result<Vec<u8>, ApiError> {
    let store = state.programme.directories.clone();
    let name = sha256.to_owned();
    if let Some(bytes) = tokio::task::spawn_blocking(move || store.read(&name))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(format!("reading the directory: {e}")))?
    {
        return Ok(bytes);
    }
    for (id, addr) in state.member_addrs.iter().filter(|(id, _)| **id != state.node_id) {
        let request = state
            .relay_http
            .get(url(state, *id, addr, sha256))
            .bearer_auth(state.group_secret.bearer())
            .timeout(PEER_FILE_TIMEOUT);
        let Ok(response) = request.send().await else { continue };
        if !response.status().is_success() {
            continue;
        }
        let Ok(bytes) = response.bytes().await else { continue };
        let store = state.programme.directories.clone();
        let name = sha256.to_owned();
        let kept = bytes.to_vec();
        // The store checks the hash: a damaged copy is refused and the next member asked.
        if let Ok(Ok(())) = tokio::task::spawn_blocking(move || store.write(&name, &kept)).await {
            tracing::info!(node = id, sha256, "fetched a directory file from a fellow member");
            return Ok(bytes.to_vec());
        }
    }
    Err(ApiError::Unavailable {
        code: "directory_unavailable",
        message: format!("no member of the group holds the entity directory {sha256}"),
    })
}
