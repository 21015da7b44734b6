//! `GET /admin/v1/backup` (`xietong admin backup`): the group's ledger as a backup file
//! (`cluster::backup`), taken while the group serves. The read is linearizable, so the file
//! holds every write acknowledged before the request; platform operators' tokens only.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use cluster::backup::Backup;

use crate::api::ApiError;
use crate::read_path::{barrier, Consistency};
use crate::state::AppState;

pub const BACKUP_PATH: &str = "/admin/v1/backup";
/// A committed entity directory file, for backups (the ledger names it; the file is kept apart).
pub const DIRECTORY_PATH: &str = "/admin/v1/directories/{sha256}";

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
    match crate::programme::replication::obtain(&state, &sha256).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], bytes).into_response(),
        Err(error) => error.into_response(),
    }
}

pub async fn backup(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let answer = async {
        let admin = state.users.authenticate_admin(&headers)?.to_owned();
        barrier(&state, Consistency::Linearizable).await?;
        // Copy under the read lock (milliseconds); encode outside it, so apply goes on.
        let (ledger, applied) = {
            let replica = state.store.read();
            (replica.ledger.clone(), replica.last_applied)
        };
        let applied = applied.ok_or_else(|| ApiError::Unavailable {
            code: "no_leader",
            message: "this group has applied nothing yet".into(),
        })?;
        let group = state.group_bureau.to_string();
        let taken_at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis() as u64);
        let backup = tokio::task::spawn_blocking(move || {
            Backup::of(&ledger, group, applied.index, applied.leader_id.term, taken_at_ms)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("encoding the backup: {e}")))?;
        tracing::info!(%admin, applied_index = applied.index, digest = %backup.header.digest, "backup taken");
        Ok::<_, ApiError>(([(header::CONTENT_TYPE, "application/octet-stream")], backup.encode()).into_response())
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}
