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
