//! `GET /api/v1/entities/{uscc}`: the enterprise file (一企一档, 归集到市场主体名下): every task the
//! group holds about one market entity that the caller may see, of every kind and state, closed
//! ones too, newest first and paged; inspections with their results, complaints (never who
//! made them: reporters are not part of a task), outcomes and handovers, as each task carries
//! them; and its risk file (`ledger::campaign::risk_files`, internal). Read from the store's
//! USCC index merged with the changes in memory (`task_query`), so a page costs the page.

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use config::limits::{LIST_PAGE_DEFAULT, LIST_PAGE_MAX};
use serde::Deserialize;

use super::request::{parse_query, parse_task_id};
use crate::api::risk::RiskFileJson;
use crate::api::{self, time, ApiError, EntityFileJson};
use crate::read_path::{barrier, Consistency};
use crate::state::AppState;
use crate::task_query::{self, ListFilter, Order};

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EntityQuery {
    /// The `next_cursor` of the page before.
    cursor: Option<String>,
    limit: Option<usize>,
    #[schemars(schema_with = "crate::api::schema::optional_consistency")]
    consistency: Option<String>,
}

pub async fn file(
    State(state): State<AppState>,
    Path(uscc): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let answer = async {
        let user = state.users.authenticate(&headers)?.clone();
        let uscc = api::parse_uscc("uscc", &uscc)?;
        let query: EntityQuery = parse_query(raw)?;
        let before = query.cursor.as_deref().map(parse_task_id).transpose()?;
        let limit = query.limit.unwrap_or(LIST_PAGE_DEFAULT);
        if limit == 0 || limit > LIST_PAGE_MAX {
            return Err(ApiError::invalid_field("limit", format!("must be between 1 and {LIST_PAGE_MAX}")));
        }
        barrier(&state, Consistency::parse(query.consistency.as_deref())?).await?;
        let filter = ListFilter { uscc: Some(uscc.as_str().to_owned()), ..ListFilter::default() };
        let (page, more, risk) = {
            let replica = state.store.read();
            let ledger = &replica.ledger;
            let this_year = ledger::reference::Day::beijing_of_ms(time::now_ms()).year();
            // Risk classes and teams are for the command centres and leadership (as a draw's
            // proof is), of the entity's region.
            let reads_risk = matches!(user.actor.role, ledger::Role::Command | ledger::Role::Leadership);
            let risk = ledger
                .risk_file(&uscc)
                .filter(|file| reads_risk && ledger.regions().is_within(file.region, user.actor.bureau))
                .map(|file| RiskFileJson::of(&file, ledger.risk_files(), this_year));
            let view = state.store.store_view().map_err(|e| ApiError::Internal(format!("reading the ledger: {e}")))?;
            let (page, more) = task_query::page(
                &replica,
                &view,
                &user.actor,
                &filter,
                Order::Newest { before },
                time::now_ms(),
                limit,
            )
            .map_err(|e| ApiError::Internal(format!("reading the ledger: {e}")))?;
            (page, more, risk)
        };
        let mut names: Vec<String> = Vec::new();
        for task in &page {
            if !names.contains(&task.subject.name) {
                names.push(task.subject.name.clone());
            }
        }
        let next_cursor = page.last().filter(|_| more).map(|last| last.id.to_string());
        let regions = state.regions();
        let tasks = page.iter().map(|task| api::task_json(&regions, task)).collect();
        Ok::<_, ApiError>(Json(EntityFileJson { uscc: uscc.as_str().to_owned(), names, tasks, next_cursor, risk }))
    };
    match answer.await {
        Ok(file) => file.into_response(),
        Err(error) => error.into_response(),
    }
}
