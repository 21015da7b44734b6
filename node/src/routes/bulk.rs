//! `POST /api/v1/tasks/bulk/{action}`: one action on a selection of tasks (publish a
//! campaign's results, accept a morning's complaints, dispatch a selection), for work people
//! would otherwise click through hundreds of times. One request; the tasks' commands are built
//! by the same table as one task's (`actions::build`), committed in entries of at most
//! `BULK_COMMANDS_PER_ENTRY` commands, and answered per task, like intake: done (with the
//! task's new state and version) or refused (with the error one task's route would give).
//!
//! A bulk request is never all-or-nothing: each task is decided on its own, as if each had been
//! sent alone. With an `Idempotency-Key` each task's command carries a key of its own derived
//! from it, so a retried request answers the tasks already done with their first answers.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledger::{access, Command, IdempotencyTag, TaskAction, TaskId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::request::{parse_json, read_body};
use super::write::Prepared;
use crate::api::error::ErrorDetail;
use crate::api::headers::IDEMPOTENCY;
use crate::api::{time, ActionRequest, ApiError};
use crate::state::AppState;
use crate::write_path::{relay_if_follower, OriginalRequest};

/// Tasks one request names at most: a campaign's results of a county, a day's complaints.
pub const BULK_TASKS_MAX: usize = 2_000;
/// Commands per committed entry: well inside `COMMANDS_PER_ENTRY_MAX`, so other writers' commands
/// share the entries meanwhile.
pub const BULK_COMMANDS_PER_ENTRY: usize = 250;
const _: () = assert!(BULK_COMMANDS_PER_ENTRY <= ledger::limits::COMMANDS_PER_ENTRY_MAX);
/// A derived key is the request's key, ` task ` and a task number (and a companion's mark after
/// it): the request's key is as long as any client's, the derived ones longer, which no
/// client's can be, and with a space no client's key holds.
const BULK_KEY_CHARS_MAX: usize = ledger::limits::IDEMPOTENCY_KEY_CHARS_MAX;

/// The request: the tasks, and the fields every one of them takes (those of the action's own
/// route but `version`, which is a task's own, and the fields of a single task's assignment
/// or record).
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkActionRequest {
    pub tasks: Vec<u64>,
    #[serde(default)]
    pub note: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::optional_unit_code")]
    pub assignee_bureau: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::optional_timestamp")]
    pub ack_deadline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::optional_timestamp")]
    pub complete_deadline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::optional_outcome")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::optional_region_code")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::optional_unit_code")]
    pub unit: Option<String>,
}

/// What happened to one task of the request.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct BulkItemJson {
    pub task: u64,
    /// `done`, `repeat` (answered from an earlier request with the same key), `refused`, or
    /// `unknown` (the group failed while committing it: send the request again with its key).
    pub outcome: String,
    /// The task's state and version after it, when done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// The answer: one item per task, in the request's order.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct BulkActionJson {
    pub action: String,
    pub done: usize,
    pub refused: usize,
    /// Ledger entries the request's commands were committed in.
    pub entries: usize,
    pub results: Vec<BulkItemJson>,
}

pub async fn bulk(
    State(state): State<AppState>,
    Path(action): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(state, action, uri, headers, body).await.unwrap_or_else(IntoResponse::into_response)
}

async fn handle(
    state: AppState,
    action: String,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let user = state.users.authenticate(&headers)?.clone();
    let body = read_body(body).await?;
    let original = OriginalRequest { uri, headers, body };
    if let Some(response) = relay_if_follower(&state, &original).await {
        return Ok(response);
    }
    let action = TaskAction::parse(&action).ok_or(ApiError::NoRoute)?;
    if matches!(action, TaskAction::RecordOnSite | TaskAction::Assign) {
        return Err(ApiError::Invalid {
            code: "not_in_bulk",
            message: format!("{action} names its own record or people for each task: one task at a time"),
        });
    }
    let request: BulkActionRequest = parse_json(&original.body)?;
    let tasks = distinct(&request.tasks)?;
    let key = bulk_key(&original.headers)?;
    let fields = ActionRequest {
        note: request.note,
        assignee_bureau: request.assignee_bureau,
        ack_deadline: request.ack_deadline,
        complete_deadline: request.complete_deadline,
        outcome: request.outcome,
        group: request.group,
        unit: request.unit,
        ..ActionRequest::default()
    };
    super::actions::check_fields(action, &fields)?;

    let stamp_ms = time::now_ms();
    let mut results: Vec<BulkItemJson> = Vec::with_capacity(tasks.len());
    // Each task's commands (its action, and the follow-up a completion opens), committed in one
    // entry together, with where its answer goes in `results`.
    let mut units: Vec<(usize, Vec<Command>)> = Vec::new();
    for task in tasks {
        let command = |action, idempotency| Command { stamp_ms, actor: user.actor.clone(), idempotency, action };
        match prepare(&state, &user.actor, action, &fields, task, stamp_ms) {
            Ok(prepared) => {
                let tag = key.as_ref().map(|key| derived_tag(key, &original, task));
                let companions = prepared.companions.into_iter().enumerate().map(|(position, companion)| {
                    command(companion, tag.as_ref().map(|tag| super::write::companion_tag(tag, position)))
                });
                let unit = std::iter::once(command(prepared.action, tag.clone())).chain(companions).collect();
                units.push((results.len(), unit));
                results.push(BulkItemJson {
                    task: task.0,
                    outcome: String::new(),
                    state: None,
                    version: None,
                    error: None,
                });
            }
            Err(error) => results.push(refused(task, &error)),
        }
    }
    if units.iter().any(|(_, unit)| unit.len() > 1) {
        let what = "the follow-up of an inspection's finding";
        crate::reference::members_read(&state, crate::reference::FEATURE_FOLLOW_UP, what).await?;
    }
    let mut entries = 0;
    let mut units = units.into_iter().peekable();
    while units.peek().is_some() {
        // Whole units, as many as fit an entry.
        let mut chunk: Vec<(usize, Vec<Command>)> = Vec::new();
        let mut commands = 0;
        while let Some((_, unit)) = units.peek() {
            if !chunk.is_empty() && commands + unit.len() > BULK_COMMANDS_PER_ENTRY {
                break;
            }
            commands += unit.len();
            chunk.push(units.next().expect("peeked"));
        }
        let sizes: Vec<(usize, usize)> = chunk.iter().map(|(position, unit)| (*position, unit.len())).collect();
        let proposed: Vec<Command> = chunk.into_iter().flat_map(|(_, unit)| unit).collect();
        match state.batcher.propose_together(proposed).await {
            Ok(answers) => {
                entries += 1;
                let mut answers = answers.into_iter();
                for (position, size) in sizes {
                    let answer = crate::write_path::with_companions(answers.by_ref().take(size).collect());
                    let slot = &mut results[position];
                    match answer {
                        Ok(applied) => {
                            let task = applied.tasks.iter().find(|t| t.id.0 == slot.task);
                            slot.outcome = if applied.replayed { "repeat" } else { "done" }.to_owned();
                            slot.state = task.map(|t| t.handling.state.to_string());
                            slot.version = task.map(|t| t.version);
                        }
                        Err(rejection) => *slot = refused(TaskId(slot.task), &ApiError::from(rejection)),
                    }
                }
            }
            // The rest is not proposed: what committed stays done. This entry's outcome is open
            // when Raft failed after taking it (`unknown`), the rest is not done; a retry with the
            // same key finishes either.
            Err(error) => {
                let open = matches!(error, crate::batcher::ProposeError::Failed(_));
                let error = ApiError::from(error);
                for (position, _) in &sizes {
                    results[*position] = refused(TaskId(results[*position].task), &error);
                    if open {
                        results[*position].outcome = "unknown".to_owned();
                    }
                }
                for (position, _) in units.by_ref() {
                    results[position] = refused(TaskId(results[position].task), &error);
                }
                break;
            }
        }
    }
    let done = results.iter().filter(|item| item.outcome == "done" || item.outcome == "repeat").count();
    let refused = results.len() - done;
    Ok(Json(BulkActionJson { action: action.to_string(), done, refused, entries, results }).into_response())
}

/// The tasks named, each once, in the order first named.
fn distinct(tasks: &[u64]) -> Result<Vec<TaskId>, ApiError> {
    if tasks.is_empty() || tasks.len() > BULK_TASKS_MAX {
        return Err(ApiError::invalid_field("tasks", format!("1 to {BULK_TASKS_MAX} tasks")));
    }
    let mut seen = BTreeSet::new();
    Ok(tasks.iter().filter(|id| seen.insert(**id)).map(|id| TaskId(*id)).collect())
}

/// One task's command (with the follow-up a completion opens), refused exactly as one task's
/// route would refuse it: a task the caller cannot see answers like a missing one.
fn prepare(
    state: &AppState,
    actor: &ledger::Actor,
    action: TaskAction,
    fields: &ActionRequest,
    task: TaskId,
    stamp_ms: u64,
) -> Result<Prepared, ApiError> {
    let visible =
        state.store.read().ledger.task(task).is_some_and(|found| access::can_see(&state.regions(), actor, &found));
    if !visible {
        return Err(ledger::Rejection::TaskNotFound(task).into());
    }
    let follow_up = super::actions::follow_up_of(state, action, fields, task, stamp_ms)?;
    let command = super::actions::build(state, action, fields.clone(), task, stamp_ms, &BTreeMap::new())?;
    Ok(super::actions::with_follow_up(command, follow_up))
}

/// The request's `Idempotency-Key`, short enough to derive one per task from.
fn bulk_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY) else { return Ok(None) };
    value.to_str().ok().filter(|k| crate::api::headers::is_idempotency_key(k)).map(|k| Some(k.to_owned())).ok_or_else(
        || ApiError::Invalid {
            code: "invalid_idempotency_key",
            message: format!("a bulk request's Idempotency-Key is 1-{BULK_KEY_CHARS_MAX} visible ASCII characters"),
        },
    )
}

/// Task `task`'s own key and fingerprint (the request's path and body, and the task).
fn derived_tag(key: &str, original: &OriginalRequest, task: TaskId) -> IdempotencyTag {
    let mut hasher = Sha256::new();
    hasher.update(original.uri.path().as_bytes());
    hasher.update([0]);
    hasher.update(&original.body);
    hasher.update([0]);
    hasher.update(task.0.to_le_bytes());
    IdempotencyTag { key: format!("{key} task {task}"), fingerprint: hasher.finalize().into() }
}

fn refused(task: TaskId, error: &ApiError) -> BulkItemJson {
    BulkItemJson { task: task.0, outcome: "refused".into(), state: None, version: None, error: Some(error.detail()) }
}
