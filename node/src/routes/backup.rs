//! `GET /admin/v1/backup` (`xietong admin backup`): the group's ledger as a backup file
//! (`cluster::backup`), streamed from the store while the group serves. The read is
//! linearizable and a checkpoint makes it durable first, so the file holds every write
//! acknowledged before the request; platform operators' tokens only.

use std::io::Write;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use cluster::backup;
use cluster::store::stream::ChunkWriter;

use crate::api::ApiError;
use crate::read_path::{barrier, Consistency};
use crate::state::AppState;

pub const BACKUP_PATH: &str = "/admin/v1/backup";
/// A committed entity directory file, for backups (the ledger names it; the file is kept apart).
pub const DIRECTORY_PATH: &str = "/admin/v1/directories/{sha256}";
/// An attachment an on-site record names, for backups (likewise kept apart from the ledger).
pub const ATTACHMENT_PATH: &str = "/admin/v1/attachments/{sha256}";

/// `GET /admin/v1/attachments/{sha256}`: platform operators only. Any file the node keeps or
/// fetches from a member (a backup asks only for those its records name).
pub async fn attachment_file(
    State(state): State<AppState>,
    axum::extract::Path(sha256): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(error) = state.users.authenticate_admin(&headers) {
        return error.into_response();
    }
    match crate::attachments::obtain(&state, &sha256).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        Err(error) => error.into_response(),
    }
}

pub async fn directory_file(
    State(state): State<AppState>,
    axum::extract::Path(sha256): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(error) = state.users.authenticate_admin(&headers) {
        return error.into_response();
    }
    let committed = state.store.read().ledger.programme().entity_directories().iter().any(|v| v.sha256 == sha256);
    if !committed {
        return ApiError::NotFound(format!("no committed entity directory has the SHA-256 {sha256}")).into_response();
    }
    let shelf = crate::kept_files::Shelf::Directories;
    crate::kept_files::replication::answer_with(&state, shelf, &sha256, "text/csv; charset=utf-8").await
}

pub async fn backup(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let answer = async {
        let admin = state.users.authenticate_admin(&headers)?.to_owned();
        barrier(&state, Consistency::Linearizable).await?;
        // Everything applied (so every write acknowledged before the request) made durable in
        // the store, then streamed from a consistent view of it while the group goes on.
        state.store.checkpoint_now().await.map_err(|e| ApiError::Internal(format!("checkpointing the ledger: {e}")))?;
        let view = state.store.store_view().map_err(|e| ApiError::Internal(format!("reading the ledger: {e}")))?;
        let taken_at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis() as u64);
        let header = backup::header_of(&view, state.group_bureau.to_string(), taken_at_ms).map_err(|e| {
            ApiError::Unavailable { code: "no_leader", message: format!("this group has nothing to back up yet: {e}") }
        })?;
        tracing::info!(%admin, applied_index = header.applied_index, digest = %header.digest, "backup taken");
        let (chunks, body) = tokio::sync::mpsc::channel(BACKUP_CHUNKS_IN_FLIGHT);
        std::thread::Builder::new()
            .name("backup".into())
            .spawn(move || {
                let mut out = ChunkWriter::new(chunks);
                if let Err(error) = backup::write_backup(&header, &view, &mut out).and_then(|()| out.flush()) {
                    tracing::warn!(%error, "a backup stream broke off");
                    out.fail(error);
                }
            })
            .map_err(|e| ApiError::Internal(format!("starting the backup: {e}")))?;
        let stream =
            futures_util::stream::unfold(body, |mut body| async move { body.recv().await.map(|chunk| (chunk, body)) });
        Ok::<_, ApiError>(
            ([(header::CONTENT_TYPE, "application/octet-stream")], axum::body::Body::from_stream(stream))
                .into_response(),
        )
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

/// Chunks of a backup in flight (`ChunkWriter`): the file never sits in memory.
const BACKUP_CHUNKS_IN_FLIGHT: usize = 4;
