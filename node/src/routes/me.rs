//! `GET /api/v1/me`: who the bearer token belongs to, for the console's top bar.

use crate::api::MeJson;
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;

pub async fn me(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match state.users.authenticate(&headers) {
        Ok(user) => Json(MeJson {
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
        })
        .into_response(),
        Err(error) => error.into_response(),
    }
}
