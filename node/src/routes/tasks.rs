//! Task routes: create, act on, list and read tasks.

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledger::campaign::ProgrammeAction;
use ledger::{
    access, validate, Action, Actor, Applied, BureauCode, Command, CommandResult, CompletionOutcome, IdempotencyTag,
    NewTask, Regions, Routing, Severity, Source, Task, TaskChange, TaskId, TaskKind, TaskState, Transition,
};
use ledger::limits::IDEMPOTENCY_KEY_CHARS_MAX;
use config::limits::{LIST_PAGE_DEFAULT, LIST_PAGE_MAX, REQUEST_BODY_BYTES_MAX};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::api::{self, time, ActionRequest, ApiError, CreateTaskRequest, TaskPage};
use crate::deadline_policy::{default_deadlines_ms, extended_deadline_ms, resumed_deadline_ms};
use crate::read_path::{barrier, Consistency};
use crate::state::AppState;
use crate::write_path::{forward_if_follower, propose_or_forward, OriginalRequest, WriteOutcome, IDEMPOTENCY_HEADER};

/// Reads the body up to the limit; a larger one is refused whole with 413.
async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, REQUEST_BODY_BYTES_MAX)
        .await
        .map_err(|_| ApiError::TooLarge(format!("the request body exceeds {REQUEST_BODY_BYTES_MAX} bytes")))
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::Invalid { code: "invalid_json", message: e.to_string() })
}

/// The Idempotency-Key of a write, fingerprinted with the route and body so that a key reused
/// for a different request is recognised.
fn idempotency_tag(headers: &HeaderMap, uri: &Uri, body: &[u8]) -> Result<Option<IdempotencyTag>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_HEADER) else { return Ok(None) };
    let key = value
        .to_str()
        .ok()
        .filter(|k| {
            !k.is_empty() && k.chars().count() <= IDEMPOTENCY_KEY_CHARS_MAX && k.chars().all(|c| c.is_ascii_graphic())
        })
        .ok_or_else(|| ApiError::Invalid {
            code: "invalid_idempotency_key",
            message: format!("Idempotency-Key must be 1-{IDEMPOTENCY_KEY_CHARS_MAX} visible ASCII characters"),
        })?;
    let mut hasher = Sha256::new();
    hasher.update(uri.path().as_bytes());
    hasher.update([0]);
    hasher.update(body);
    Ok(Some(IdempotencyTag { key: key.to_owned(), fingerprint: hasher.finalize().into() }))
}

fn applied_response(status: StatusCode, applied: Applied) -> Response {
    let mut response = match &applied.record {
        Some(record) => (status, Json(super::programme::record_json(record))).into_response(),
        None => (status, Json(api::task_json(applied.task(), time::now_ms()))).into_response(),
    };
    if applied.replayed {
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

fn result_response(status: StatusCode, result: CommandResult) -> Response {
    match result {
        Ok(applied) => applied_response(status, applied),
        Err(rejection) => ApiError::from(rejection).into_response(),
    }
}

/// Answers from the stored first result when this node already has the key; otherwise
/// proposes (or forwards). The ledger checks the key again when it applies.
pub(super) async fn write(
    state: &AppState,
    original: OriginalRequest,
    command: Command,
    status: StatusCode,
) -> Response {
    if let Some(tag) = &command.idempotency {
        let stored = state.store.read().ledger.idempotent_answer(&command.actor.user, tag);
        if let Some(result) = stored {
            return result_response(status, result);
        }
    }
    match propose_or_forward(state, &original, command).await {
        Ok(WriteOutcome::Local(result)) => result_response(status, result),
        Ok(WriteOutcome::Relayed(response)) => response,
        Err(error) => error.into_response(),
    }
}

/// The shared shape of every write route: authenticate and read the body here, hand the
/// request to the leader if another node leads, otherwise build the command and propose it.
pub(super) async fn handle_write(
    state: AppState,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
    status: StatusCode,
    prepare: impl FnOnce(&AppState, &Actor, &Bytes, u64) -> Result<Action, ApiError>,
) -> Response {
    let user = match state.users.authenticate(&headers) {
        Ok(user) => user.clone(),
        Err(error) => return error.into_response(),
    };
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    let original = OriginalRequest { uri, headers, body };
    if let Some(response) = forward_if_follower(&state, &original).await {
        return response;
    }
    let stamp_ms = time::now_ms();
    let command = prepare(&state, &user.actor, &original.body, stamp_ms).and_then(|action| {
        let idempotency = idempotency_tag(&original.headers, &original.uri, &original.body)?;
        Ok(Command { stamp_ms, actor: user.actor.clone(), idempotency, action })
    });
    match command {
        Ok(command) => write(&state, original, command, status).await,
        Err(error) => error.into_response(),
    }
}

pub async fn create(State(state): State<AppState>, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    handle_write(state, uri, headers, body, StatusCode::CREATED, |state, actor, body, _| {
        let request: CreateTaskRequest = parse_json(body)?;
        let mut new_task = new_task(&request, actor)?;
        new_task.routing = state.federation.route_new_task(new_task.kind, new_task.subject.region_code);
        validate::new_task(&new_task)?;
        access::may_create(actor, new_task.origin_bureau)?;
        Ok(Action::CreateTask(new_task))
    })
    .await
}

pub(crate) fn new_task(request: &CreateTaskRequest, actor: &Actor) -> Result<NewTask, ApiError> {
    let origin_bureau = match &request.origin_bureau {
        Some(text) => api::parse_bureau("origin_bureau", text)?,
        None => actor.bureau,
    };
    let assignee_bureau =
        request.assignee_bureau.as_deref().map(|t| api::parse_bureau("assignee_bureau", t)).transpose()?;
    Ok(NewTask {
        kind: api::parse_enum("kind", &request.kind, TaskKind::parse, TaskKind::names)?,
        severity: api::parse_enum("severity", &request.severity, Severity::parse, Severity::names)?,
        title: request.title.clone(),
        description: request.description.clone(),
        subject: api::parse_subject(&request.subject)?,
        source: api::parse_enum("source", &request.source, Source::parse, Source::names)?,
        origin_bureau,
        assignee_bureau,
        routing: Routing::Keep,
    })
}

pub(super) fn parse_task_id(text: &str) -> Result<TaskId, ApiError> {
    text.parse::<u64>()
        .ok()
        .filter(|id| *id > 0)
        .map(TaskId)
        .ok_or_else(|| ApiError::Invalid { code: "invalid_task_id", message: format!("{text:?} is not a task id") })
}

pub async fn act(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle_write(state, uri, headers, body, StatusCode::OK, |state, actor, body, stamp_ms| {
        let task = parse_task_id(&id)?;
        // A task the caller cannot see answers exactly like a missing one, before anything of
        // it is read to prepare the action (its region, origin, kind or pause state).
        let visible = state.store.read().ledger.task(task).is_some_and(|found| access::can_see(actor, found));
        if !visible {
            return Err(ledger::Rejection::TaskNotFound(task).into());
        }
        // An empty body is an action with no fields (e.g. a plain ack).
        let request: ActionRequest =
            if body.iter().all(u8::is_ascii_whitespace) { ActionRequest::default() } else { parse_json(body)? };
        if super::complaints::COMPLAINT_ACTIONS.contains(&action.as_str()) {
            if request.version.is_some() || request.assignee_bureau.is_some() || request.outcome.is_some() {
                return Err(ApiError::Invalid {
                    code: "unexpected_field",
                    message: format!("{action} takes only a note"),
                });
            }
            return super::complaints::step_action(state, &action, task, request.note, stamp_ms);
        }
        if let Some(inspection_action) = inspection_action(state, &action, &request, task, stamp_ms)? {
            return Ok(inspection_action);
        }
        let transition = transition(state, &action, &request, task, stamp_ms)?;
        validate::note(&request.note, transition.requires_note())?;
        Ok(Action::ChangeTask(TaskChange { task, expected_version: request.version, note: request.note, transition }))
    })
    .await
}

/// The actions of a drawn inspection's result (谁抽查、谁录入, then 一公开): `complete` on an
/// inspection task enters its result with the 20-working-day publication deadline; `publish`
/// and `withdraw` (with the reason) are the organiser's. `None` for every other action.
fn inspection_action(
    state: &AppState,
    action: &str,
    request: &ActionRequest,
    task: TaskId,
    stamp_ms: u64,
) -> Result<Option<Action>, ApiError> {
    let only_note = || {
        if request.version.is_some()
            || request.assignee_bureau.is_some()
            || request.outcome.is_some()
            || request.group.is_some()
        {
            return Err(ApiError::Invalid { code: "unexpected_field", message: format!("{action} takes only a note") });
        }
        Ok(())
    };
    let programme = |action| Ok(Some(Action::Programme(Box::new(action))));
    match action {
        "publish" => {
            only_note()?;
            programme(ProgrammeAction::PublishResult { task })
        }
        "withdraw" => {
            only_note()?;
            validate::note(&request.note, true)?;
            programme(ProgrammeAction::WithdrawResult { task, note: request.note.clone() })
        }
        "complete" => {
            let is_inspection = state.store.read().ledger.task(task).is_some_and(|t| t.inspection.is_some());
            if !is_inspection {
                return Ok(None);
            }
            let outcome = request.outcome.as_deref().ok_or_else(|| ApiError::Invalid {
                code: "missing_field",
                message: "outcome is required: the inspection's result".into(),
            })?;
            let outcome = api::parse_enum("outcome", outcome, CompletionOutcome::parse, CompletionOutcome::names)?;
            if request.assignee_bureau.is_some() || request.group.is_some() {
                return Err(ApiError::Invalid {
                    code: "unexpected_field",
                    message: "complete takes outcome, note and version".into(),
                });
            }
            validate::note(&request.note, false)?;
            programme(ProgrammeAction::RecordResult {
                task,
                expected_version: request.version,
                outcome,
                note: request.note.clone(),
                publish_deadline_ms: super::programme::publication_deadline_ms(state, stamp_ms)?,
            })
        }
        _ => Ok(None),
    }
}

/// The task actions `transition` knows (the complaint steps are in `complaints`), for the
/// OpenAPI document's list of them.
pub const TASK_ACTIONS: [&str; 17] = [
    "dispatch",
    "ack",
    "feedback",
    "complete",
    "close",
    "return",
    "cancel",
    "request_extension",
    "grant_extension",
    "refuse_extension",
    "pause",
    "resume",
    "forward",
    "dispute",
    "publish",
    "withdraw",
    "designate",
];

/// Builds the transition an action route asks for, refusing fields that do not belong to it.
fn transition(
    state: &AppState,
    action: &str,
    request: &ActionRequest,
    task: TaskId,
    stamp_ms: u64,
) -> Result<Transition, ApiError> {
    let unexpected = |field: &str| ApiError::Invalid {
        code: "unexpected_field",
        message: format!("{field} does not apply to {action}"),
    };
    if action != "dispatch" {
        for (field, present) in [
            ("assignee_bureau", request.assignee_bureau.is_some()),
            ("ack_deadline", request.ack_deadline.is_some()),
            ("complete_deadline", request.complete_deadline.is_some()),
        ] {
            if present {
                return Err(unexpected(field));
            }
        }
    }
    if action != "complete" && request.outcome.is_some() {
        return Err(unexpected("outcome"));
    }
    if action != "designate" && request.group.is_some() {
        return Err(unexpected("group"));
    }
    Ok(match action {
        "dispatch" => dispatch(state, request, task, stamp_ms)?,
        "ack" => Transition::Ack,
        "feedback" => Transition::Feedback,
        "complete" => {
            let outcome = request.outcome.as_deref().ok_or_else(|| ApiError::Invalid {
                code: "missing_field",
                message: format!("outcome is required to complete; one of {}", CompletionOutcome::names()),
            })?;
            Transition::Complete {
                outcome: api::parse_enum("outcome", outcome, CompletionOutcome::parse, CompletionOutcome::names)?,
            }
        }
        "close" => Transition::Close,
        "return" => Transition::Return,
        "cancel" => Transition::Cancel,
        "request_extension" => extension_request(state, task)?,
        "grant_extension" => Transition::GrantExtension,
        "refuse_extension" => Transition::RefuseExtension,
        "pause" => Transition::Pause,
        "resume" => resume(state, task, stamp_ms)?,
        "forward" => forward(state, task)?,
        "dispute" => dispute(state, task)?,
        "designate" => designate(state, request)?,
        _ => return Err(ApiError::NoRoute),
    })
}

/// The policy's extension for the task's kind, counted from its current completion deadline
/// (a lead's 15 working days run on from where the first 15 ended).
fn extension_request(state: &AppState, task: TaskId) -> Result<Transition, ApiError> {
    let replica = state.store.read();
    let current = replica.ledger.task(task).ok_or_else(|| ApiError::NotFound(format!("task {task} does not exist")))?;
    let rule = state.deadlines.rule_for(current.kind.as_str(), current.severity.as_str());
    let (Some(span), Some(deadline_ms)) = (rule.extension, current.complete_deadline_ms) else {
        return Err(ApiError::Conflict {
            code: "extension_not_allowed",
            message: format!("the deadline policy allows no extension for a {} task", current.kind),
        });
    };
    let new_complete_deadline_ms = extended_deadline_ms(&state.calendar, deadline_ms, span)
        .map_err(|e| ApiError::Invalid { code: "deadline_outside_calendar", message: e.to_string() })?;
    Ok(Transition::RequestExtension { new_complete_deadline_ms, extensions_allowed: rule.extensions_max })
}

/// Resuming moves the completion deadline by the time the clock stood still.
fn resume(state: &AppState, task: TaskId, stamp_ms: u64) -> Result<Transition, ApiError> {
    let replica = state.store.read();
    let current = replica.ledger.task(task).ok_or_else(|| ApiError::NotFound(format!("task {task} does not exist")))?;
    let (Some(paused_since_ms), Some(deadline_ms)) = (current.paused_since_ms, current.complete_deadline_ms) else {
        return Err(ApiError::Conflict { code: "conflict", message: "the completion clock is not paused".into() });
    };
    let new_complete_deadline_ms =
        resumed_deadline_ms(&state.deadlines, &state.calendar, current, deadline_ms, paused_since_ms, stamp_ms)
            .map_err(|e| ApiError::Invalid { code: "deadline_outside_calendar", message: e.to_string() })?;
    Ok(Transition::Resume { new_complete_deadline_ms })
}

fn dispatch(state: &AppState, request: &ActionRequest, task: TaskId, stamp_ms: u64) -> Result<Transition, ApiError> {
    let replica = state.store.read();
    let current = replica.ledger.task(task).ok_or_else(|| ApiError::NotFound(format!("task {task} does not exist")))?;
    let assignee = match (&request.assignee_bureau, current.assignee_bureau) {
        (Some(text), _) => api::parse_bureau("assignee_bureau", text)?,
        (None, Some(intended)) => intended,
        (None, None) => {
            return Err(ApiError::Invalid {
                code: "missing_field",
                message: "assignee_bureau is required to dispatch".into(),
            })
        }
    };
    let explicit = |field: &str, text: &Option<String>| match text {
        None => Ok(None),
        Some(text) => time::parse_ms(text)
            .map(Some)
            .ok_or_else(|| ApiError::invalid_field(field, format!("{text:?} is not an RFC 3339 time"))),
    };
    let ack_override = explicit("ack_deadline", &request.ack_deadline)?;
    let complete_override = explicit("complete_deadline", &request.complete_deadline)?;
    // The policy fills in whatever the dispatcher did not set (a per-task override).
    let (ack_deadline_ms, complete_deadline_ms) = match (ack_override, complete_override) {
        (Some(ack), Some(complete)) => (ack, complete),
        (ack, complete) => {
            let (ack_default, complete_default) =
                default_deadlines_ms(&state.deadlines, &state.calendar, current, stamp_ms)
                    .map_err(|e| ApiError::Invalid { code: "deadline_outside_calendar", message: e.to_string() })?;
            (ack.unwrap_or(ack_default), complete.unwrap_or(complete_default))
        }
    };
    validate::dispatch(current.origin_bureau, assignee, stamp_ms, ack_deadline_ms, complete_deadline_ms)
        .map_err(ApiError::from)?;
    let federation = &state.federation;
    match federation.host_of(assignee) {
        Some(host) if host == federation.group => {
            Ok(Transition::Dispatch { assignee, ack_deadline_ms, complete_deadline_ms })
        }
        Some(to_group) => Ok(Transition::DispatchAcross {
            assignee,
            ack_deadline_ms,
            complete_deadline_ms,
            to_group,
            from_group: federation.group,
        }),
        None => Err(ApiError::Conflict {
            code: "no_route",
            message: format!("no group known to this one hosts bureau {assignee}"),
        }),
    }
}

/// A receiver disputes the jurisdiction of a forwarded lead: it goes to the lowest common
/// parent group of this group and the one it came from.
fn dispute(state: &AppState, task: TaskId) -> Result<Transition, ApiError> {
    let replica = state.store.read();
    let current = replica.ledger.task(task).ok_or_else(|| ApiError::NotFound(format!("task {task} does not exist")))?;
    let Some(received) = &current.received else {
        return Err(ApiError::Conflict {
            code: "not_forwarded",
            message: format!("task {task} was not forwarded here; there is no jurisdiction to dispute"),
        });
    };
    let federation = &state.federation;
    match federation.common_parent(received.from_group) {
        Some(parent) if parent != federation.group => {
            Ok(Transition::Dispute { to_group: parent, from_group: federation.group })
        }
        Some(_) => Err(ApiError::Conflict {
            code: "no_common_parent",
            message: "this group is the common superior of both sides: it decides by dispatching the lead".into(),
        }),
        None => Err(ApiError::Conflict {
            code: "no_common_parent",
            message: format!("no configured group is above both {} and {}", federation.group, received.from_group),
        }),
    }
}

/// The common parent designates the group that handles a disputed lead.
fn designate(state: &AppState, request: &ActionRequest) -> Result<Transition, ApiError> {
    let text = request.group.as_deref().ok_or_else(|| ApiError::Invalid {
        code: "missing_field",
        message: "group is required to designate: the bureau code of the group that is to handle the lead".into(),
    })?;
    let to_group = api::parse_bureau("group", text)?;
    let federation = &state.federation;
    if to_group == federation.group || !federation.knows_group(to_group) {
        return Err(ApiError::invalid_field(
            "group",
            format!("{to_group} is not another group known here (to handle it here, dispatch it)"),
        ));
    }
    Ok(Transition::Designate { to_group, from_group: federation.group })
}

/// Hands the task to the group with jurisdiction over its subject's region (or to the parent
/// group, which routes it on).
fn forward(state: &AppState, task: TaskId) -> Result<Transition, ApiError> {
    let replica = state.store.read();
    let current = replica.ledger.task(task).ok_or_else(|| ApiError::NotFound(format!("task {task} does not exist")))?;
    let region = current.subject.region_code;
    match state.federation.route_lead(region) {
        Routing::ForwardTo { to_group, from_group } => Ok(Transition::Forward { to_group, from_group }),
        Routing::Keep => Err(ApiError::Conflict {
            code: "within_jurisdiction",
            message: format!("region {region} lies within the jurisdiction of this group ({})", state.federation.group),
        }),
        Routing::Unrouted => Err(ApiError::Conflict {
            code: "no_route",
            message: format!("no configured group covers region {region}; the task stays here"),
        }),
    }
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ListQuery {
    /// Only tasks whose origin or assignee lies in this bureau's subtree.
    #[schemars(schema_with = "crate::api::schema::optional_region_code")]
    bureau: Option<String>,
    /// Comma-separated states.
    state: Option<String>,
    #[schemars(schema_with = "crate::api::schema::optional_task_kind")]
    kind: Option<String>,
    overdue: Option<bool>,
    cursor: Option<String>,
    limit: Option<usize>,
    #[schemars(schema_with = "crate::api::schema::optional_consistency")]
    consistency: Option<String>,
    /// `newest` (default) or `time_left`: tasks whose clock runs, least time left first.
    #[schemars(schema_with = "crate::api::schema::optional_list_order")]
    sort: Option<String>,
}

/// A position in the `time_left` order: (running deadline, task id), written `deadline-id`.
fn parse_time_left_cursor(text: &str) -> Result<(u64, u64), ApiError> {
    text.split_once('-').and_then(|(d, i)| Some((d.parse().ok()?, i.parse().ok()?))).ok_or_else(|| ApiError::Invalid {
        code: "invalid_cursor",
        message: format!("{text:?} is not a cursor of this list"),
    })
}

pub(crate) fn parse_query<T: serde::de::DeserializeOwned + Default>(raw: Option<String>) -> Result<T, ApiError> {
    match raw {
        None => Ok(T::default()),
        Some(raw) => serde_urlencoded::from_str(&raw)
            .map_err(|e| ApiError::Invalid { code: "invalid_query", message: e.to_string() }),
    }
}

pub async fn list(State(state): State<AppState>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    let answer = async {
        let user = state.users.authenticate(&headers)?.clone();
        let query: ListQuery = parse_query(raw)?;
        let bureau: Option<BureauCode> = query.bureau.as_deref().map(|t| api::parse_bureau("bureau", t)).transpose()?;
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
        let regions = Regions::get();
        let in_bureau = |code: BureauCode| bureau.is_none_or(|b| regions.is_within(code, b));
        let replica = state.store.read();
        let matches = |task: &&Task| {
            access::can_see(&user.actor, task)
                && (in_bureau(task.origin_bureau) || task.assignee_bureau.is_some_and(in_bureau))
                && states.as_ref().is_none_or(|s| s.contains(&task.state))
                && kind.is_none_or(|k| k == task.kind)
                && query.overdue.is_none_or(|o| o == task.is_overdue_at(now_ms))
        };
        if by_time_left {
            // Tasks whose clock runs, least time left (most overdue) first. A full scan and
            // sort per request: fine for one centre's open tasks; an index comes with scale.
            let mut running: Vec<(u64, u64, &Task)> = replica
                .ledger
                .tasks_newest_first(None)
                .filter(matches)
                .filter_map(|task| task.running_deadline_ms().map(|d| (d, task.id.0, task)))
                .filter(|(d, id, _)| time_left_cursor.is_none_or(|after| (*d, *id) > after))
                .collect();
            running.sort_unstable_by_key(|(d, id, _)| (*d, *id));
            let next_cursor =
                (running.len() > limit).then(|| format!("{}-{}", running[limit - 1].0, running[limit - 1].1));
            let tasks = running.iter().take(limit).map(|(_, _, task)| api::task_json(task, now_ms)).collect();
            return Ok(Json(TaskPage { tasks, next_cursor }));
        }
        let mut tasks = Vec::new();
        let mut next_cursor = None;
        for task in replica.ledger.tasks_newest_first(cursor) {
            if !matches(&task) {
                continue;
            }
            if tasks.len() == limit {
                next_cursor = tasks.last().map(|t: &api::TaskJson| t.id.to_string());
                break;
            }
            tasks.push(api::task_json(task, now_ms));
        }
        Ok(Json(TaskPage { tasks, next_cursor }))
    };
    match answer.await {
        Ok(page) => page.into_response(),
        Err(error) => error.into_response(),
    }
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DetailQuery {
    #[schemars(schema_with = "crate::api::schema::optional_consistency")]
    consistency: Option<String>,
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
        let query: DetailQuery = parse_query(raw)?;
        barrier(&state, Consistency::parse(query.consistency.as_deref())?).await?;
        let replica = state.store.read();
        // A task the caller may not see is reported as absent, so ids do not leak other bureaus' work.
        let task = replica
            .ledger
            .task(id)
            .filter(|task| access::can_see(&user.actor, task))
            .ok_or_else(|| ApiError::NotFound(format!("task {id} does not exist")))?;
        Ok::<_, ApiError>(Json(api::task_json(task, time::now_ms())))
    };
    match answer.await {
        Ok(task) => task.into_response(),
        Err(error) => error.into_response(),
    }
}
