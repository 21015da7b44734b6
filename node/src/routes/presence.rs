//! `GET /api/v1/presence?bureau=440100`: how many users of the bureau and of each bureau below it
//! have a console open now (a dispatcher checks before dispatching). Needs Redis (`[fanout]`);
//! without it the answer is 503 `presence_off`.

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledger::BureauCode;
use serde::{Deserialize, Serialize};

use crate::api::{self, ApiError};
use crate::state::AppState;

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct PresenceQuery {
    /// Default: the caller's own bureau.
    #[schemars(schema_with = "crate::api::schema::optional_unit_code")]
    bureau: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PresenceJson {
    pub bureau: String,
    /// The bureau itself first, then each bureau directly below it.
    pub bureaus: Vec<BureauPresenceJson>,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BureauPresenceJson {
    pub code: String,
    pub name: String,
    /// Users with a console open now.
    pub online: u64,
}

pub async fn presence(State(state): State<AppState>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    let answer = async {
        let user = state.users.authenticate(&headers)?;
        let query: PresenceQuery = super::request::parse_query(raw)?;
        let root = match &query.bureau {
            Some(text) => api::parse_bureau(&state.regions(), "bureau", text)?,
            None => user.actor.bureau,
        };
        let regions = state.regions();
        if !regions.is_within(root, user.actor.bureau) {
            return Err(ApiError::Forbidden(format!(
                "bureau {} cannot see who is online in {root}",
                user.actor.bureau
            )));
        }
        let presence = state.presence.as_ref().ok_or_else(|| ApiError::Unavailable {
            code: "presence_off",
            message: "presence needs Redis ([fanout] in the node config)".into(),
        })?;
        let bureaus: Vec<BureauCode> =
            std::iter::once(root).chain(regions.children(root).map(|region| region.code)).collect();
        let online = presence
            .online(&bureaus)
            .await
            .map_err(|error| ApiError::Unavailable { code: "presence_unavailable", message: error })?;
        let bureaus = bureaus
            .iter()
            .zip(online)
            .map(|(code, online)| BureauPresenceJson {
                code: code.to_string(),
                name: regions.name(*code).unwrap_or_default().to_owned(),
                online,
            })
            .collect();
        Ok::<_, ApiError>(Json(PresenceJson { bureau: root.to_string(), bureaus }).into_response())
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}
