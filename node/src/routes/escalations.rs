//! `GET /api/v1/escalations?bureau=440100`: per assignee bureau in the caller's subtree, how
//! many of its dispatched tasks are open and overdue now, how many were ever escalated, and how
//! many reminders they drew. The list leadership and command centres use to see who is late
//! (通报). Answered from the response-metrics book, so it costs the bureaus, not the ledger.

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use crate::api::{self, time, ApiError, EscalationsJson, LatenessJson};
use crate::state::AppState;

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct EscalationsQuery {
    /// Only assignee bureaus in this subtree (default: the caller's bureau).
    #[schemars(schema_with = "crate::api::schema::optional_unit_code")]
    bureau: Option<String>,
}

pub async fn escalations(State(state): State<AppState>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    let answer = (|| {
        let user = state.users.authenticate(&headers)?;
        let query: EscalationsQuery = super::request::parse_query(raw)?;
        let root = match &query.bureau {
            Some(text) => api::parse_bureau(&state.regions(), "bureau", text)?,
            None => user.actor.bureau,
        };
        let regions = state.regions();
        // Read from the response-metrics book (no scan of the ledger), which counts whole
        // bureaus: a caller asks about its own subtree, where it sees every task.
        if !regions.is_within(root, user.actor.bureau) {
            return Err(ApiError::Forbidden(format!("bureau {root} is outside the subtree of {}", user.actor.bureau)));
        }
        let by_bureau = state.response_metrics.lateness(&state.regions(), root, time::now_ms());
        let mut rows: Vec<_> = by_bureau
            .into_iter()
            .map(|(bureau, l)| LatenessJson {
                bureau: bureau.to_string(),
                name: regions.name(bureau).map(str::to_owned),
                open: l.open,
                overdue_now: l.overdue_now,
                escalated: l.escalated,
                escalated_open: l.escalated_open,
                reminders: l.reminders,
            })
            .collect();
        // The latest first: most overdue, then most escalated.
        rows.sort_by_key(|row| std::cmp::Reverse((row.overdue_now, row.escalated)));
        Ok::<_, ApiError>(Json(EscalationsJson { bureau: root.to_string(), bureaus: rows }))
    })();
    match answer {
        Ok(body) => body.into_response(),
        Err(error) => error.into_response(),
    }
}
