//! `GET /api/v1/tasks/{id}/checklist`: the checklist an on-site record of the task is made
//! against (its inspection's items and their check points), for the inspector's form. The
//! record itself is the task action `record_on_site` (`actions`); its files are
//! `crate::attachments`.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::request::parse_task_id;
use crate::api::site_record::ChecklistJson;
use crate::api::ApiError;
use crate::state::AppState;

pub async fn checklist(State(state): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    super::json_answer((|| -> Result<ChecklistJson, ApiError> {
        let user = state.users.authenticate(&headers)?;
        let id = parse_task_id(&id)?;
        let task = super::tasks::visible_task(&state, &user.actor, id)?;
        Ok(crate::programme::checklist::of_task(&state.programme.config, &task))
    })())
}
