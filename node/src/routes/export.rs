//! `GET /api/v1/export?since=INDEX&limit=N`: the feed of committed task events for other
//! departments' systems (信息共享), within the consumer's bureau scope, in log order.
//!
//! Each event is the task as it stands after the entry (`TaskJson`), tagged with the entry's
//! log index. A consumer resumes with `since` = the `next_since` it got: no gap, no repeat.
//! History is bounded (`push::hub`); a `since` older than it is answered 410 `history_gone`,
//! and the consumer takes a fresh baseline from `GET /api/v1/tasks`.

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::api::ApiError;
use crate::push::hub::WatchKey;
use crate::state::AppState;

/// Entries per page at most.
pub const EXPORT_PAGE_MAX: usize = 1_000;
const EXPORT_PAGE_DEFAULT: usize = 200;

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ExportQuery {
    since: Option<u64>,
    limit: Option<usize>,
}

pub async fn export(State(state): State<AppState>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    let answer = (|| {
        let (_consumer, scope) = state.users.authenticate_consumer(&headers)?;
        let query: ExportQuery = super::request::parse_query(raw)?;
        let since = query.since.ok_or_else(|| ApiError::invalid_field("since", "is required (0 for the beginning)"))?;
        let limit = query.limit.unwrap_or(EXPORT_PAGE_DEFAULT);
        if limit == 0 || limit > EXPORT_PAGE_MAX {
            return Err(ApiError::invalid_field("limit", format!("must be between 1 and {EXPORT_PAGE_MAX}")));
        }
        let (entries, next) = state.push_hub.entries_since(since, limit).ok_or_else(|| ApiError::Gone {
            code: "history_gone",
            message: format!(
                "events after {since} are no longer kept on this node; take a baseline from /api/v1/tasks and resume from the next_since of a fresh page"
            ),
        })?;
        // The tasks are already encoded once for consoles; the page is assembled from them.
        let key = WatchKey::Touching(scope);
        let mut body = String::from("{\"events\":[");
        let mut first = true;
        for entry in &entries {
            for task in entry.tasks.iter().filter(|t| key.sees(t.origin, t.assignee, &t.escalated_to)) {
                if !first {
                    body.push(',');
                }
                first = false;
                body.push_str(&format!("{{\"index\":{},\"task\":{}}}", entry.index, task.json()));
            }
        }
        body.push_str(&format!("],\"next_since\":{next}}}"));
        Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
    })();
    answer.unwrap_or_else(IntoResponse::into_response)
}
