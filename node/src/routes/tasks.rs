//! Task routes: create, list and read tasks (acting on one is `actions`).

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use config::limits::{LIST_PAGE_DEFAULT, LIST_PAGE_MAX};
use ledger::{access, validate, Action, Actor, BureauCode, NewTask, Routing, Severity, Source, TaskKind, TaskState};
use serde::Deserialize;

use super::request::{parse_json, parse_query, parse_task_id, ConsistencyQuery};
use super::write::handle_write;
use crate::api::{self, time, ApiError, CreateTaskRequest, TaskPage};
use crate::read_path::{barrier, Consistency};
use crate::state::AppState;
use crate::task_query::{self, ListFilter, Order};
use ledger::Regions;

pub async fn create(State(state): State<AppState>, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    handle_write(state, uri, headers, body, StatusCode::CREATED, |state, actor, body, _| {
        let request: CreateTaskRequest = parse_json(body)?;
        let mut new_task = new_task(&state.regions(), &request, actor)?;
        new_task.routing =
            state.federation.route_new_task(&state.regions(), new_task.kind, new_task.subject.region_code);
        validate::new_task(&new_task, &state.regions())?;
        access::may_create(&state.regions(), actor, new_task.origin_bureau)?;
        Ok(Action::CreateTask(new_task))
    })
    .await
}

/// The task a create request asks for, its codes checked against the group's table `regions`.
pub(crate) fn new_task(regions: &Regions, request: &CreateTaskRequest, actor: &Actor) -> Result<NewTask, ApiError> {
    let origin_bureau = match &request.origin_bureau {
        Some(text) => api::parse_bureau(regions, "origin_bureau", text)?,
        None => actor.bureau,
    };
    let assignee_bureau =
        request.assignee_bureau.as_deref().map(|t| api::parse_bureau(regions, "assignee_bureau", t)).transpose()?;
    let kind = api::parse_enum("kind", &request.kind, TaskKind::parse, TaskKind::names)?;
    // Apart from complaints, monitoring signals and assigned cases (their own kinds), every
    // inspection goes through a draw (双随机): a campaign's draw makes it, a desk never does.
    if kind == TaskKind::Inspection {
        return Err(ApiError::Invalid {
            code: "inspection_by_draw_only",
            message: "an inspection (双随机抽查) is made by a campaign's draw, never by hand; register a lead, an assignment or a referral instead".into(),
        });
    }
    Ok(NewTask {
        kind,
        severity: api::parse_enum("severity", &request.severity, Severity::parse, Severity::names)?,
        title: request.title.clone(),
        description: request.description.clone(),
        subject: api::parse_subject(regions, &request.subject)?,
        source: api::parse_enum("source", &request.source, Source::parse, Source::names)?,
        origin_bureau,
        assignee_bureau,
        routing: Routing::Keep,
    })
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ListQuery {
    /// Only tasks whose origin or assignee lies in this bureau's subtree.
    #[schemars(schema_with = "crate::api::schema::optional_unit_code")]
    bureau: Option<String>,
    /// Comma-separated states.
    state: Option<String>,
    #[schemars(schema_with = "crate::api::schema::optional_task_kind")]
    kind: Option<String>,
    /// Only tasks about this market entity.
    #[schemars(schema_with = "crate::api::schema::optional_uscc")]
    uscc: Option<String>,
    overdue: Option<bool>,
    cursor: Option<String>,
    limit: Option<usize>,
    #[schemars(schema_with = "crate::api::schema::optional_consistency")]
    consistency: Option<String>,
    /// `newest` (default) or `time_left`: tasks whose clock runs, least time left first.
    #[schemars(schema_with = "crate::api::schema::optional_list_order")]
    sort: Option<String>,
    /// Only the tasks the signed-in person handles, as lead or supporting (我的任务).
    mine: Option<bool>,
}

/// A position in the `time_left` order: (running deadline, task id), written `deadline-id`.
fn parse_time_left_cursor(text: &str) -> Result<(u64, u64), ApiError> {
    text.split_once('-').and_then(|(d, i)| Some((d.parse().ok()?, i.parse().ok()?))).ok_or_else(|| ApiError::Invalid {
        code: "invalid_cursor",
        message: format!("{text:?} is not a cursor of this list"),
    })
}

pub async fn list(State(state): State<AppState>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    let answer = async {
        let user = state.users.authenticate(&headers)?.clone();
        let query: ListQuery = parse_query(raw)?;
        let bureau: Option<BureauCode> =
            query.bureau.as_deref().map(|t| api::parse_bureau(&state.regions(), "bureau", t)).transpose()?;
        let states: Option<Vec<TaskState>> = query
            .state
            .as_deref()
            .map(|text| {
                text.split(',').map(|s| api::parse_enum("state", s, TaskState::parse, TaskState::names)).collect()
            })
            .transpose()?;
        let kind =
            query.kind.as_deref().map(|k| api::parse_enum("kind", k, TaskKind::parse, TaskKind::names)).transpose()?;
        let by_time_left = match query.sort.as_deref() {
            None | Some("newest") => false,
            Some("time_left") => true,
            Some(other) => {
                return Err(ApiError::Invalid {
                    code: "invalid_enum",
                    message: format!("sort: {other:?} is not one of newest, time_left"),
                })
            }
        };
        let (cursor, time_left_cursor) = match (&query.cursor, by_time_left) {
            (None, _) => (None, None),
            (Some(text), false) => (Some(parse_task_id(text)?), None),
            (Some(text), true) => (None, Some(parse_time_left_cursor(text)?)),
        };
        let limit = query.limit.unwrap_or(LIST_PAGE_DEFAULT);
        if limit == 0 || limit > LIST_PAGE_MAX {
            return Err(ApiError::invalid_field("limit", format!("must be between 1 and {LIST_PAGE_MAX}")));
        }
        barrier(&state, Consistency::parse(query.consistency.as_deref())?).await?;

        let now_ms = time::now_ms();
        let uscc = query.uscc.as_deref().map(|text| api::parse_uscc("uscc", text)).transpose()?;
        let handled_by = match (query.mine, &user.person) {
            (Some(true), Some(person)) => Some(person.id),
            (Some(true), None) => {
                return Err(ApiError::invalid_field("mine", "a machine token handles no tasks: sign in as a person"))
            }
            _ => None,
        };
        let filter = ListFilter {
            bureau,
            uscc: uscc.map(|u| u.as_str().to_owned()),
            states,
            kind,
            overdue: query.overdue,
            handled_by,
        };
        let order =
            if by_time_left { Order::TimeLeft { after: time_left_cursor } } else { Order::Newest { before: cursor } };
        let (page, more) = {
            let replica = state.store.read();
            // Opened under the read lock: the view and the changes in memory are one state.
            let view = state.store.store_view().map_err(|e| ApiError::Internal(format!("reading the ledger: {e}")))?;
            task_query::page(&replica, &view, &user.actor, &filter, order, now_ms, limit)
                .map_err(|e| ApiError::Internal(format!("reading the ledger: {e}")))?
        };
        let next_cursor = match (more, page.last()) {
            (true, Some(last)) if by_time_left => {
                last.running_deadline_ms().map(|deadline_ms| format!("{deadline_ms}-{}", last.id.0))
            }
            (true, Some(last)) => Some(last.id.to_string()),
            _ => None,
        };
        let regions = state.regions();
        let tasks = page.iter().map(|task| api::task_json(&regions, task)).collect();
        Ok(Json(TaskPage { tasks, next_cursor }))
    };
    match answer.await {
        Ok(page) => page.into_response(),
        Err(error) => error.into_response(),
    }
}

/// Task `id` if `actor` may see it. A task the caller may not see is reported as absent (404),
/// so ids do not leak other bureaus' work.
pub(crate) fn visible_task(
    state: &AppState,
    actor: &Actor,
    id: ledger::TaskId,
) -> Result<std::sync::Arc<ledger::Task>, ApiError> {
    let replica = state.store.read();
    replica
        .ledger
        .task(id)
        .filter(|task| access::can_see(&state.regions(), actor, task))
        .ok_or_else(|| ApiError::NotFound(format!("task {id} does not exist")))
}

pub async fn detail(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let answer = async {
        let user = state.users.authenticate(&headers)?.clone();
        let id = parse_task_id(&id)?;
        let query: ConsistencyQuery = parse_query(raw)?;
        barrier(&state, Consistency::parse(query.consistency.as_deref())?).await?;
        let task = visible_task(&state, &user.actor, id)?;
        Ok::<_, ApiError>((
            [(axum::http::header::ETAG, api::headers::task_etag(task.version))],
            Json(api::task_json(&state.regions(), &task)),
        ))
    };
    match answer.await {
        Ok(task) => task.into_response(),
        Err(error) => error.into_response(),
    }
}
