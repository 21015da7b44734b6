//! Kept files between the members of a group: `PUT /raft/{shelf}/{sha256}` stores a file on a
//! fellow member (which checks the hash and syncs it to disk before it answers), `GET` fetches
//! one. Both need the group's shared secret, like every peer RPC, and both stream: a file is
//! never whole in a member's memory on the way.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::store::MappedFile;
use super::Shelf;
use crate::api::ApiError;
use crate::state::AppState;

/// An attachment (at most a few MB) over a LAN takes well under a second; a stalled peer must
/// not hold a write. A directory (gigabytes for a province) has `TRANSFER_TIMEOUT`.
const PEER_FILE_TIMEOUT: Duration = Duration::from_secs(60);

fn peer_timeout(shelf: Shelf) -> Duration {
    match shelf {
        Shelf::Directories => config::limits::TRANSFER_TIMEOUT,
        Shelf::Attachments => PEER_FILE_TIMEOUT,
    }
}

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
    match tokio::task::spawn_blocking(move || store.open_file(&sha256)).await {
        Ok(Ok(Some((file, size)))) => {
            let body = Body::from_stream(super::transfer::stream_of(file));
            (StatusCode::OK, [(axum::http::header::CONTENT_LENGTH, size.to_string())], body).into_response()
        }
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
    let store = state.kept_files.shelf(shelf).clone();
    let staging = match super::transfer::receive(&store, body, shelf.bytes_max() as u64, shelf.what()).await {
        Ok(staging) => staging,
        Err(error) => return error.into_response(),
    };
    match tokio::task::spawn_blocking(move || staging.keep(Some(&sha256))).await {
        Ok(Ok(_)) => StatusCode::NO_CONTENT.into_response(),
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
    let name = sha256.to_owned();
    tokio::task::spawn_blocking(move || store.write(&name, &bytes))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(format!("storing the {}: {e}", shelf.what())))?;
    spread(state, shelf, sha256).await
}

/// Sends a file this node keeps to every other member, each from the file as the connection
/// takes it; answers how many members hold it now, this one included.
pub async fn spread(state: &AppState, shelf: Shelf, sha256: &str) -> Result<usize, ApiError> {
    let sends = state.member_addrs.iter().filter(|(id, _)| **id != state.node_id).map(|(id, addr)| async move {
        let store = state.kept_files.shelf(shelf).clone();
        let name = sha256.to_owned();
        let opened = tokio::task::spawn_blocking(move || store.open_file(&name)).await;
        let Ok(Ok(Some((file, size)))) = opened else {
            tracing::warn!(shelf = shelf.folder(), sha256, "a kept file to send is not on this node");
            return false;
        };
        let body = reqwest::Body::wrap_stream(super::transfer::stream_of(file));
        let request = state
            .relay_http
            .put(url(state, shelf, *id, addr, sha256))
            .bearer_auth(state.group_secret.bearer())
            .timeout(peer_timeout(shelf))
            .header(reqwest::header::CONTENT_LENGTH, size)
            .body(body);
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
    });
    Ok(1 + futures_util::future::join_all(sends).await.into_iter().filter(|stored| *stored).count())
}

/// Whether `holders` members are a majority of the group, or why not (503 `{code}`).
fn majority(state: &AppState, holders: usize, code: &'static str) -> Result<(), ApiError> {
    let majority = state.member_addrs.len() / 2 + 1;
    if holders < majority {
        return Err(ApiError::Unavailable {
            code,
            message: format!("{holders} of {} members hold the file, {majority} must; retry", state.member_addrs.len()),
        });
    }
    Ok(())
}

/// Sends a file this node keeps to the other members until a majority holds it, or says why
/// not (503 `{code}`).
pub async fn spread_on_majority(
    state: &AppState,
    shelf: Shelf,
    sha256: &str,
    code: &'static str,
) -> Result<(), ApiError> {
    let holders = spread(state, shelf, sha256).await?;
    majority(state, holders, code)
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
    majority(state, holders, code)
}

/// A kept file read in place: this node's copy, or one fetched from a fellow member (streamed
/// into a file, its hash checked, and kept here).
pub async fn obtain_mapped(state: &AppState, shelf: Shelf, sha256: &str) -> Result<MappedFile, ApiError> {
    let store = state.kept_files.shelf(shelf).clone();
    let name = sha256.to_owned();
    let local = tokio::task::spawn_blocking(move || store.map(&name))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(format!("reading the {}: {e}", shelf.what())))?;
    if let Some(mapped) = local {
        return Ok(mapped);
    }
    for (id, addr) in state.member_addrs.iter().filter(|(id, _)| **id != state.node_id) {
        let request = state
            .relay_http
            .get(url(state, shelf, *id, addr, sha256))
            .bearer_auth(state.group_secret.bearer())
            .timeout(peer_timeout(shelf));
        let Ok(response) = request.send().await else { continue };
        if !response.status().is_success() {
            continue;
        }
        let body = Body::from_stream(response.bytes_stream());
        let store = state.kept_files.shelf(shelf).clone();
        let Ok(staging) = super::transfer::receive(&store, body, shelf.bytes_max() as u64, shelf.what()).await else {
            continue;
        };
        let name = sha256.to_owned();
        // The hash is checked as it is kept: a damaged copy is refused and the next member asked.
        let kept = tokio::task::spawn_blocking(move || staging.keep(Some(&name)).and_then(|sha| store.map(&sha)))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        if let Ok(Some(mapped)) = kept {
            tracing::info!(node = id, sha256, shelf = shelf.folder(), "fetched a kept file from a fellow member");
            return Ok(mapped);
        }
    }
    Err(unavailable(shelf, sha256))
}

fn unavailable(shelf: Shelf, sha256: &str) -> ApiError {
    ApiError::Unavailable {
        code: match shelf {
            Shelf::Directories => "directory_unavailable",
            Shelf::Attachments => "attachment_unavailable",
        },
        message: format!("no member of the group holds the {} {sha256}", shelf.what()),
    }
}

/// A kept file as an answer, streamed from this node's copy (fetched from a fellow member
/// first if this node lacks it).
pub async fn answer_with(state: &AppState, shelf: Shelf, sha256: &str, content_type: &'static str) -> Response {
    if let Err(error) = obtain_mapped(state, shelf, sha256).await {
        return error.into_response();
    }
    let store = state.kept_files.shelf(shelf).clone();
    let name = sha256.to_owned();
    match tokio::task::spawn_blocking(move || store.open_file(&name)).await {
        Ok(Ok(Some((file, size)))) => {
            let headers = [
                (axum::http::header::CONTENT_TYPE, content_type.to_owned()),
                (axum::http::header::CONTENT_LENGTH, size.to_string()),
            ];
            (StatusCode::OK, headers, Body::from_stream(super::transfer::stream_of(file))).into_response()
        }
        Ok(Ok(None)) => unavailable(shelf, sha256).into_response(),
        Ok(Err(e)) => ApiError::Internal(format!("reading the {}: {e}", shelf.what())).into_response(),
        Err(e) => ApiError::Internal(e.to_string()).into_response(),
    }
}

/// The file from this node, or fetched from a fellow member (and kept here): for files small
/// enough to hold (attachments).
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
    Err(unavailable(shelf, sha256))
}
