//! `GET /api/v1/export?since=INDEX&limit=N`: the feed of committed task events for other
//! departments' systems (信息共享), within the consumer's bureau scope, in log order.
//!
//! Each event is a task (`TaskJson`) tagged with a log index. A consumer resumes with `since` =
//! the `next_since` it got: no gap. Recent entries come from the hub's bounded history
//! (`push::hub`), one event per change, the task as that entry left it. A `since` older than
//! that history is answered from the store's index of last changes (`task_query::changes_after`):
//! each task changed after `since` once, as it stands now, under the index of its last change
//! (its timeline holds every step in between). So a consumer can resume from any index, however
//! old, and the node keeps no log of changes beyond one index key per task. Such a page may end
//! inside the changes of one index (a node started from a snapshot files every task under its
//! index): it then gives `next_after`, to pass as `after` with `since`.

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::api::{self, ApiError};
use crate::push::hub::WatchKey;
use crate::state::AppState;
use crate::task_query::{self, ChangesCursor};
use ledger::TaskId;

/// Entries per page at most.
pub const EXPORT_PAGE_MAX: usize = 1_000;
const EXPORT_PAGE_DEFAULT: usize = 200;

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ExportQuery {
    since: Option<u64>,
    /// The `next_after` of the page before, when it gave one.
    after: Option<u64>,
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
        let key = WatchKey::Touching(scope);
        let from = ChangesCursor { since, after: query.after.map(TaskId) };
        // The hub hands out whole entries; a cursor inside one is the store's.
        let hub_page = if from.after.is_none() { state.push_hub.entries_since(since, limit) } else { None };
        let Some((entries, next)) = hub_page else {
            return changes_from_the_store(&state, key, from, limit);
        };
        // The tasks are already encoded once for consoles; the page is assembled from them.
        let regions = state.regions();
        let events = entries.iter().flat_map(|entry| {
            let visible = entry
                .tasks
                .iter()
                .filter(|t| key.sees(&regions, t.origin, t.assignee, t.handling_unit, &t.escalated_to, &t.people));
            visible.map(|task| (entry.index, task.json().to_owned()))
        });
        Ok(page(events, ChangesCursor { since: next, after: None }))
    })();
    answer.unwrap_or_else(IntoResponse::into_response)
}

/// A page older than the hub's history, from the store's index of last changes.
fn changes_from_the_store(
    state: &AppState,
    key: WatchKey,
    from: ChangesCursor,
    limit: usize,
) -> Result<Response, ApiError> {
    let replica = state.store.read();
    let view = state.store.store_view().map_err(|e| ApiError::Internal(format!("reading the ledger: {e}")))?;
    let regions = replica.ledger.regions();
    let visible = |task: &ledger::Task| {
        let (assignee, unit) = (task.handling.assignee_bureau, task.field_work.handlers.unit);
        let people = crate::push::hub::people_named(task);
        key.sees(&regions, task.origin_bureau, assignee, unit, &task.handling.escalated_to, &people)
    };
    // A page reads at most `limit` tasks: one whose scope sees few of them is short and still
    // moves on.
    let changes = task_query::changes_after(&replica, &view, from, limit, limit, visible)
        .map_err(|e| ApiError::Internal(format!("reading the ledger: {e}")))?;
    drop((view, replica));
    let events = changes.tasks.iter().map(|(index, task)| {
        (*index, serde_json::to_string(&api::task_json(&regions, task)).expect("task JSON always encodes"))
    });
    Ok(page(events, changes.next))
}

/// The page's JSON from its events (index, task JSON).
fn page(events: impl Iterator<Item = (u64, String)>, next: ChangesCursor) -> Response {
    let mut body = String::from("{\"events\":[");
    for (n, (index, task)) in events.enumerate() {
        if n > 0 {
            body.push(',');
        }
        body.push_str(&format!("{{\"index\":{index},\"task\":{task}}}"));
    }
    body.push_str(&format!("],\"next_since\":{}", next.since));
    if let Some(after) = next.after {
        body.push_str(&format!(",\"next_after\":{after}"));
    }
    body.push('}');
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}
