//! `GET /api/v1/search?q=...&limit=20`: the tasks of the group the caller may see whose USCC is
//! `q`, or whose enterprise name or title holds every part of `q` (two characters of Chinese are
//! enough), open and closed, newest first. Answered from the node's search index (`search`),
//! each hit read again from the ledger and checked against the caller's access.

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::request::parse_query;
use crate::api::{self, ApiError, SearchJson};
use crate::search::{QueryError, SEARCH_LIMIT_MAX};
use crate::state::AppState;

const SEARCH_LIMIT_DEFAULT: usize = 20;

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SearchQuery {
    /// A USCC, or words and fragments of an enterprise name or a task title.
    q: Option<String>,
    limit: Option<usize>,
}

pub async fn search(State(state): State<AppState>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    let answer = async {
        let user = state.users.authenticate(&headers)?.clone();
        let query: SearchQuery = parse_query(raw)?;
        let q = query.q.unwrap_or_default();
        let limit = query.limit.unwrap_or(SEARCH_LIMIT_DEFAULT);
        if limit == 0 || limit > SEARCH_LIMIT_MAX {
            return Err(ApiError::invalid_field("limit", format!("must be between 1 and {SEARCH_LIMIT_MAX}")));
        }
        let (search, store, actor, text) = (state.search.clone(), state.store.clone(), user.actor.clone(), q.clone());
        let hits = tokio::task::spawn_blocking(move || search.search(&store, &actor, &text, limit))
            .await
            .map_err(|e| ApiError::Internal(format!("the search failed: {e}")))?
            .map_err(|error| match error {
                QueryError::TooShort | QueryError::TooLong => ApiError::invalid_field("q", error.to_string()),
                QueryError::Unreadable(_) => ApiError::Internal(error.to_string()),
            })?;
        let regions = state.regions();
        let tasks = hits.tasks.iter().map(|task| api::task_json(&regions, task)).collect();
        Ok::<_, ApiError>(Json(SearchJson { q, tasks, more: hits.more, indexed_through: hits.indexed_through }))
    };
    match answer.await {
        Ok(found) => found.into_response(),
        Err(error) => error.into_response(),
    }
}
