//! `GET /api/v1/console/snapshot?scope=440100`: the console's snapshot message (open tasks in
//! scope, per-bureau counts, the log index it reflects), for a gateway that serves consoles from
//! the group's Redis Stream and needs a starting point. The same checks as a console's hello.

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::api::ApiError;
use crate::push::node_backend::snapshot;
use crate::push::ws::watcher_for;
use crate::state::AppState;

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct SnapshotQuery {
    /// The bureau watched (default: the caller's own).
    #[schemars(schema_with = "crate::api::schema::optional_unit_code")]
    scope: Option<String>,
}

pub async fn console_snapshot(State(state): State<AppState>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    let answer = (|| {
        let user = state.users.authenticate(&headers)?;
        let query: SnapshotQuery = super::request::parse_query(raw)?;
        let watcher = watcher_for(&state.regions(), user.actor.clone(), query.scope.as_deref())?;
        let (_, message) = snapshot(&state, &watcher);
        Ok::<_, ApiError>(([(header::CONTENT_TYPE, "application/json")], message).into_response())
    })();
    answer.unwrap_or_else(IntoResponse::into_response)
}
