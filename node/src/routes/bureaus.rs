//! `GET /api/v1/bureaus?root=440000`: the bureau tree below a root (default: the caller's own
//! bureau), for the console's tree view and assignee pickers.

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use crate::api::{self, ApiError, BureauJson, BureauTreeJson};
use crate::state::AppState;

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct BureausQuery {
    #[schemars(schema_with = "crate::api::schema::optional_unit_code")]
    root: Option<String>,
}

pub async fn bureaus(State(state): State<AppState>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    let answer = (|| {
        let user = state.users.authenticate(&headers)?;
        let query: BureausQuery = super::request::parse_query(raw)?;
        let root = match &query.root {
            Some(text) => api::parse_bureau(&state.regions(), "root", text)?,
            None => user.actor.bureau,
        };
        let regions = state.regions();
        // Anyone may read the public region tree, but only below a bureau they belong to or
        // above: an operator needs its parents' names, not other provinces' trees.
        if !regions.is_within(root, user.actor.bureau) && !regions.is_within(user.actor.bureau, root) {
            return Err(ApiError::Forbidden(format!("bureau {} cannot browse bureau {root}", user.actor.bureau)));
        }
        let bureaus: Vec<_> = regions
            .subtree(root)
            .map(|region| BureauJson {
                code: region.code.to_string(),
                name: region.name.to_string(),
                level: region.level.as_str().to_owned(),
                parent: region.parent.map(|p| p.to_string()),
                retired: region.retired,
            })
            .collect();
        Ok::<_, ApiError>(Json(BureauTreeJson { root: root.to_string(), bureaus }))
    })();
    match answer {
        Ok(body) => body.into_response(),
        Err(error) => error.into_response(),
    }
}
