//! `GET /api/v1/me`: who the bearer token belongs to, for the console's top bar.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cluster::ledger::Regions;
use serde_json::json;

use crate::state::AppState;

pub async fn me(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match state.users.authenticate(&headers) {
        Ok(user) => Json(json!({
            "user": user.actor.user,
            "display_name": user.display_name,
            "bureau": user.actor.bureau.to_string(),
            "bureau_name": Regions::get().name(user.actor.bureau),
            "role": user.actor.role.as_str(),
        }))
        .into_response(),
        Err(error) => error.into_response(),
    }
}
