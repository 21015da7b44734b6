//! `GET /api/v1/me`: who the bearer token belongs to, for the console's top bar, and for a
//! gateway checking a person's session (`consistency=linearizable`, so a node that has not yet
//! applied the account's latest change does not vouch for it).

use crate::api::{ApiError, MeJson};
use crate::read_path::{barrier, Consistency};
use crate::state::AppState;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::request::{parse_query, ConsistencyQuery};

pub async fn me(State(state): State<AppState>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    let answer = async {
        let query: ConsistencyQuery = parse_query(raw)?;
        // Checked before the wait (a stranger waits for nothing) and again after it, as the
        // account then stands.
        let user = state.users.authenticate(&headers)?;
        let consistency = Consistency::parse(query.consistency.as_deref())?;
        barrier(&state, consistency).await?;
        let user = match consistency {
            Consistency::Local => user,
            Consistency::Linearizable => state.users.user_for_token(crate::auth::bearer(&headers)?)?,
        };
        Ok::<_, ApiError>(Json(MeJson {
            user: user.actor.user.clone(),
            display_name: user.display_name.clone(),
            bureau: user.actor.bureau.to_string(),
            bureau_name: state.regions().name(user.actor.bureau).map(str::to_owned),
            role: user.actor.role.as_str().to_owned(),
            actions: crate::api::ActionRuleJson::all(),
            person: user
                .person
                .as_ref()
                .map(|person| crate::api::organisation::PersonJson::of(&state.regions(), person, false)),
        }))
    };
    answer.await.map_or_else(IntoResponse::into_response, IntoResponse::into_response)
}
