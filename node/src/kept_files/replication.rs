//! Kept files between the members of a group: `PUT /raft/{shelf}/{sha256}` stores a file on a
//! fellow member (which checks the hash and syncs it to disk before it answers), `GET` fetches
//! one. Both need the group's shared secret, like every peer RPC.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::Shelf;
use crate::api::ApiError;
use crate::state::AppState;

/// A 256 MiB file over loopback or a LAN takes seconds; a stalled peer must not hold a write.
const PEER_FILE_TIMEOUT: Duration = Duration::from_secs(60);

pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for shelf in [Shelf::Directories, Shelf::Attachments] {
        let serve = move |state: State<AppState>, sha256: Path<String>, headers: HeaderMap| {
            serve(shelf, state, sha256, headers)
        };
        let store = move |state: State<AppState>, sha256: Path<String>, headers: HeaderMap, body: Body| {
            store(shelf, state, sha256, headers, body)
        };
        router = router.route(&peer_path(shelf), get(serve).put(store));
    }
    router
}

fn peer_path(shelf: Shelf) -> String {
    format!("/raft/{}/{{sha256}}", shelf.folder())
}

async fn serve(
    shelf: Shelf,
    State(state): State<AppState>,
    Path(sha256): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = state.admit_member(&headers) {
        return refused.into_response();
    }
    let store = state.kept_files.shelf(shelf).clone();
    match tokio::task::spawn_blocking(move || store.read(&sha256)).await {
        Ok(Ok(Some(bytes))) => (StatusCode::OK, bytes).into_response(),
        Ok(Ok(None)) => ApiError::NotFound(format!("this node does not hold that {}", shelf.what())).into_response(),
        Ok(Err(e)) => ApiError::Internal(format!("reading the {}: {e}", shelf.what())).into_response(),
        Err(e) => ApiError::Internal(e.to_string()).into_response(),
    }
}

async fn store(
    shelf: Shelf,
    State(state): State<AppState>,
    Path(sha256): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(refused) = state.admit_member(&headers) {
        return refused.into_response();
    }
    let bytes = match axum::body::to_bytes(body, shelf.bytes_max()).await {
        Ok(bytes) => bytes,
        Err(_) => return ApiError::TooLarge(format!("the {} is too large", shelf.what())).into_response(),
    };
    let store = state.kept_files.shelf(shelf).clone();
    match tokio::task::spawn_blocking(move || store.write(&sha256, &bytes)).await {
        Ok(Ok(())) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err(e)) => ApiError::Invalid { code: "invalid_file", message: e.to_string() }.into_response(),
        Err(e) => ApiError::Internal(e.to_string()).into_response(),
    }
}

fn url(state: &AppState, shelf: Shelf, id: u64, addr: &str, sha256: &str) -> String {
    let base = state.transport.base_url(&state.peers.route(id, addr));
    format!("{base}{}", peer_path(shelf).replace("{sha256}", sha256))
}

/// Stores the file here, then sends it to every other member; answers how many members hold
/// it now, this one included.
pub async fn keep(state: &AppState, shelf: Shelf, sha256: &str, bytes: Bytes) -> Result<usize, ApiError> {
    let store = state.kept_files.shelf(shelf).clone();
    let (name, kept) = (sha256.to_owned(), bytes.clone());
    tokio::task::spawn_blocking(move || store.write(&name, &kept))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(format!("storing the {}: {e}", shelf.what())))?;
    let sends = state.member_addrs.iter().filter(|(id, _)| **id != state.node_id).map(|(id, addr)| {
        let request = state
            .relay_http
            .put(url(state, shelf, *id, addr, sha256))
            .bearer_auth(state.group_secret.bearer())
            .timeout(PEER_FILE_TIMEOUT)
            .body(bytes.clone());
        async move {
            match request.send().await {
                Ok(response) if response.status().is_success() => true,
                Ok(response) => {
                    tracing::warn!(node = id, status = %response.status(), shelf = shelf.folder(), "a member refused a kept file");
                    false
                }
                Err(error) => {
                    tracing::warn!(node = id, %error, shelf = shelf.folder(), "a member did not take a kept file");
                    false
                }
            }
        }
    });
    Ok(1 + futures_util::future::join_all(sends).await.into_iter().filter(|stored| *stored).count())
}

/// Keeps the file on a majority of the members, or says why not (503 `{code}`).
pub async fn keep_on_majority(
    state: &AppState,
    shelf: Shelf,
    sha256: &str,
    bytes: Bytes,
    code: &'static str,
) -> Result<(), ApiError> {
    let holders = keep(state, shelf, sha256, bytes).await?;
    let majority = state.member_addrs.len() / 2 + 1;
    if holders < majority {
        return Err(ApiError::Unavailable {
            code,
            message: format!("{holders} of {} members hold the file, {majority} must; retry", state.member_addrs.len()),
        });
    }
    Ok(())
}

/// The file from this node, or fetched from a fellow member (and kept here).
pub async fn obtain(state: &AppState, shelf: Shelf, sha256: &str) -> Result<Vec<u8>, ApiError> {
    let store = state.kept_files.shelf(shelf).clone();
    let name = sha256.to_owned();
    if let Some(bytes) = tokio::task::spawn_blocking(move || store.read(&name))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(format!("reading the {}: {e}", shelf.what())))?
    {
        return Ok(bytes);
    }
    for (id, addr) in state.member_addrs.iter().filter(|(id, _)| **id != state.node_id) {
        let request = state
            .relay_http
            .get(url(state, shelf, *id, addr, sha256))
            .bearer_auth(state.group_secret.bearer())
            .timeout(PEER_FILE_TIMEOUT);
        let Ok(response) = request.send().await else { continue };
        if !response.status().is_success() {
            continue;
        }
        let Ok(bytes) = response.bytes().await else { continue };
        let store = state.kept_files.shelf(shelf).clone();
        let name = sha256.to_owned();
        let kept = bytes.to_vec();
        // The store checks the hash: a damaged copy is refused and the next member asked.
        if let Ok(Ok(())) = tokio::task::spawn_blocking(move || store.write(&name, &kept)).await {
            tracing::info!(node = id, sha256, shelf = shelf.folder(), "fetched a kept file from a fellow member");
            return Ok(bytes.to_vec());
        }
    }
    Err(ApiError::Unavailable {
        code: match shelf {
            Shelf::Directories => "directory_unavailable",
            Shelf::Attachments => "attachment_unavailable",
        },
        message: format!("no member of the group holds the {} {sha256}", shelf.what()),
    })
}
