//! Joint inspections with other departments on the node (`ledger::campaign::departments`): the
//! group's command centre registers a department, lists its items and enrols its inspectors;
//! the department's inspector on a joint inspection's team enters its part of the result.
//!
//! `ProgrammeAction::Departments` is proposed only when every member reads `departments-v1`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use ledger::campaign::departments::DepartmentAction;
use ledger::campaign::{Inspector, ProgrammeAction};
use ledger::{Action, CompletionOutcome};

use super::request::parse_json;
use super::write::handle_write_of_feature;
use crate::api::departments::{
    DepartmentInspectorsRequest, DepartmentItemRequest, DepartmentPartRequest, DepartmentRequest, DepartmentsJson,
};
use crate::api::{self, ApiError};
use crate::reference::FEATURE_DEPARTMENTS;
use crate::state::AppState;

const FEATURE: Option<(&str, &str)> = Some((FEATURE_DEPARTMENTS, "joint inspections with other departments"));

fn departments(action: DepartmentAction) -> Action {
    Action::Programme(Box::new(ProgrammeAction::Departments(action)))
}

/// `GET /api/v1/departments`: the departments registered in the group, with their items and
/// how many inspectors each enrolled.
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    super::json_answer((|| {
        let user = state.users.authenticate(&headers)?;
        let replica = state.store.read();
        let list = state.programme.list_in_force(&replica.ledger);
        let inspector = user.person.as_ref().and_then(|person| person.inspector.as_deref());
        Ok(DepartmentsJson::of(replica.ledger.departments(), list, inspector))
    })())
}

/// `POST /api/v1/departments`: registers a department (the group's own command centre).
pub async fn register(State(state): State<AppState>, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    handle_write_of_feature(state, uri, headers, body, StatusCode::CREATED, FEATURE, |state, actor, body, _| {
        // A department joins the whole group's campaigns.
        super::of_the_whole_group(state, actor.bureau, "the departments", "register")?;
        let request: DepartmentRequest = parse_json(body)?;
        Ok(departments(DepartmentAction::Register { code: request.code, name: request.name }))
    })
    .await
}

/// `POST /api/v1/departments/{code}/items`: lists an item of the department on the group's
/// item list.
pub async fn list_item(
    State(state): State<AppState>,
    Path(code): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle_write_of_feature(state, uri, headers, body, StatusCode::CREATED, FEATURE, move |state, actor, body, _| {
        super::of_the_whole_group(state, actor.bureau, "the item list", "change")?;
        let request: DepartmentItemRequest = parse_json(body)?;
        let (item, reason) = request.parse()?;
        ledger::campaign::item_list::check_item(&item)?;
        Ok(departments(DepartmentAction::ListItem { department: code, item: Box::new(item), reason }))
    })
    .await
}

/// `POST /api/v1/departments/{code}/inspectors`: enrols the department's inspectors, all or
/// none.
pub async fn enrol_inspectors(
    State(state): State<AppState>,
    Path(code): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle_write_of_feature(state, uri, headers, body, StatusCode::CREATED, FEATURE, move |state, actor, body, _| {
        super::of_the_whole_group(state, actor.bureau, "the departments' inspectors", "enrol")?;
        let request: DepartmentInspectorsRequest = parse_json(body)?;
        let regions = state.regions();
        let inspectors = request
            .inspectors
            .into_iter()
            .map(|inspector| {
                Ok(Inspector {
                    id: inspector.id,
                    name: inspector.name,
                    bureau: api::parse_bureau(&regions, "bureau", &inspector.bureau)?,
                    // The ledger gives them the department's tag and no station.
                    station: None,
                    expertise: Vec::new(),
                    qualified: inspector.qualified,
                    active: true,
                    enrolled_at_ms: 0,
                    retired_at_ms: None,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        Ok(departments(DepartmentAction::EnrolInspectors { department: code, inspectors }))
    })
    .await
}

/// `POST /api/v1/tasks/{id}/department-part`: a department's part of a joint inspection's
/// result, by the department's inspector on the team (their own account).
pub async fn enter_part(
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle_write_of_feature(state, uri, headers, body, StatusCode::OK, FEATURE, move |_, _, body, _| {
        let task = super::request::parse_task_id(&id)?;
        let request: DepartmentPartRequest = parse_json(body)?;
        let outcome = api::parse_enum("outcome", &request.outcome, CompletionOutcome::parse, CompletionOutcome::names)?;
        ledger::validate::text(
            "summary",
            &request.summary,
            ledger::campaign::departments::PART_SUMMARY_CHARS_MAX,
            true,
            true,
        )?;
        Ok(departments(DepartmentAction::EnterPart { task, outcome, summary: request.summary }))
    })
    .await
}
