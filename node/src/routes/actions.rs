//! `POST /api/v1/tasks/{id}/{action}`: the table of task actions. The ledger's `TaskAction`
//! names them and decides who may take which (`ledger::policy`); here each one says which
//! request fields it takes and how its command is built: the transitions here, the complaint
//! steps in `complaints`, the publication of results in `programme`. Every match names every
//! action, so a new action does not compile until this table has its row.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ledger::{access, Action, CompletionOutcome, Routing, TaskAction, TaskChange, TaskId, Transition};

use super::request::{parse_json, parse_task_id};
use super::write::{handle_write_prepared, Prepared};
use crate::api::site_record::HeldFile;
use crate::api::{self, time, ActionRequest, ApiError};
use crate::deadline_policy::{default_deadlines_ms, extended_deadline_ms, resumed_deadline_ms};
use crate::state::AppState;

/// A field of an action request besides the note, which every action takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Version,
    AssigneeBureau,
    AckDeadline,
    CompleteDeadline,
    Outcome,
    Group,
    Lead,
    Supporting,
    Unit,
    Record,
}

impl Field {
    const ALL: [Field; 10] = [
        Field::Version,
        Field::AssigneeBureau,
        Field::AckDeadline,
        Field::CompleteDeadline,
        Field::Outcome,
        Field::Group,
        Field::Lead,
        Field::Supporting,
        Field::Unit,
        Field::Record,
    ];

    fn name(self) -> &'static str {
        match self {
            Field::Version => "version",
            Field::AssigneeBureau => "assignee_bureau",
            Field::AckDeadline => "ack_deadline",
            Field::CompleteDeadline => "complete_deadline",
            Field::Outcome => "outcome",
            Field::Group => "group",
            Field::Lead => "lead",
            Field::Supporting => "supporting",
            Field::Unit => "unit",
            Field::Record => "record",
        }
    }

    fn present_in(self, request: &ActionRequest) -> bool {
        match self {
            Field::Version => request.version.is_some(),
            Field::AssigneeBureau => request.assignee_bureau.is_some(),
            Field::AckDeadline => request.ack_deadline.is_some(),
            Field::CompleteDeadline => request.complete_deadline.is_some(),
            Field::Outcome => request.outcome.is_some(),
            Field::Group => request.group.is_some(),
            Field::Lead => request.lead.is_some(),
            Field::Supporting => request.supporting.is_some(),
            Field::Unit => request.unit.is_some(),
            Field::Record => request.record.is_some(),
        }
    }
}

/// The fields each action takes besides its note. A change of a task's handling is decided on a
/// version (`version` refuses it if the task moved meanwhile); the complaint steps and the
/// publication of results are decided on the record's own state, and take only the note.
fn fields_of(action: TaskAction) -> &'static [Field] {
    match action {
        TaskAction::Dispatch => &[Field::Version, Field::AssigneeBureau, Field::AckDeadline, Field::CompleteDeadline],
        TaskAction::Complete => &[Field::Version, Field::Outcome],
        TaskAction::Designate => &[Field::Version, Field::Group],
        TaskAction::Assign => &[Field::Version, Field::Lead, Field::Supporting],
        TaskAction::HandDown => &[Field::Version, Field::Unit],
        TaskAction::RecordOnSite => &[Field::Version, Field::Record],
        TaskAction::Ack
        | TaskAction::Decline
        | TaskAction::Feedback
        | TaskAction::Close
        | TaskAction::Return
        | TaskAction::Cancel
        | TaskAction::RequestExtension
        | TaskAction::GrantExtension
        | TaskAction::RefuseExtension
        | TaskAction::Pause
        | TaskAction::Resume
        | TaskAction::Forward
        | TaskAction::Dispute
        | TaskAction::Claim
        | TaskAction::Release => &[Field::Version],
        TaskAction::Publish
        | TaskAction::Withdraw
        | TaskAction::AcceptComplaint
        | TaskAction::RefuseComplaint
        | TaskAction::NotifyReporter => &[],
    }
}

pub async fn act(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let if_match = match api::headers::if_match_version(&headers) {
        Ok(version) => version,
        Err(error) => return error.into_response(),
    };
    // An on-site record is proposed only when every member can decode it, and names only
    // files kept where the group keeps them: looked up first (it may take the object store or a
    // fellow member), as building the command does not wait.
    let is_record = TaskAction::parse(&action) == Some(TaskAction::RecordOnSite);
    let feature = is_record.then_some((crate::reference::FEATURE_SITE_RECORDS, "on-site records"));
    let (body, held) = if is_record {
        match attachments_named(&state, &headers, &id, body).await {
            Ok(read) => read,
            Err(error) => return error.into_response(),
        }
    } else {
        (body, BTreeMap::new())
    };
    let response =
        handle_write_prepared(state, uri, headers, body, StatusCode::OK, feature, |state, actor, body, stamp_ms| {
            let action = TaskAction::parse(&action).ok_or(ApiError::NoRoute)?;
            let task = parse_task_id(&id)?;
            // A task the caller cannot see answers exactly like a missing one, before anything of
            // it is read to prepare the action (its region, origin, kind or pause state).
            let visible = state
                .store
                .read()
                .ledger
                .task(task)
                .is_some_and(|found| access::can_see(&state.regions(), actor, &found));
            if !visible {
                return Err(ledger::Rejection::TaskNotFound(task).into());
            }
            // An empty body is an action with no fields (e.g. a plain ack).
            let mut request: ActionRequest =
                if body.iter().all(u8::is_ascii_whitespace) { ActionRequest::default() } else { parse_json(body)? };
            let takes = fields_of(action);
            if let Some(version) = if_match {
                if !takes.contains(&Field::Version) {
                    return Err(ApiError::Invalid {
                        code: "unexpected_field",
                        message: format!("If-Match does not apply to {action}: it is not decided on a version"),
                    });
                }
                if request.version.is_some_and(|body_version| body_version != version) {
                    return Err(ApiError::Invalid {
                        code: "invalid_if_match",
                        message: "If-Match and the body's version name different versions".into(),
                    });
                }
                request.version = Some(version);
            }
            check_fields(action, &request)?;
            let follow_up = follow_up_of(state, action, &request, task, stamp_ms)?;
            let command = build(state, action, request, task, stamp_ms, &held)?;
            Ok(with_follow_up(command, follow_up))
        })
        .await;
    if if_match.is_some() {
        precondition_failed_for_if_match(response).await
    } else {
        response
    }
}

/// The files a `record_on_site` body names, as `crate::attachments::held_files` finds them, and
/// the body to read again. Looked up only for a caller who may act (signed in, the task visible
/// to them) and only where the command is built: a node that will hand the request to the
/// leader looks up nothing. A body that is no record names nothing here; building the command
/// says what is wrong with it.
async fn attachments_named(
    state: &AppState,
    headers: &HeaderMap,
    task: &str,
    body: Body,
) -> Result<(Body, BTreeMap<String, HeldFile>), ApiError> {
    #[derive(serde::Deserialize)]
    struct Named {
        record: Option<Files>,
    }
    #[derive(serde::Deserialize)]
    struct Files {
        #[serde(default)]
        attachments: Vec<File>,
    }
    #[derive(serde::Deserialize)]
    struct File {
        sha256: String,
    }
    let user = state.users.authenticate(headers)?;
    let bytes = super::request::read_body(body).await?;
    let hint = state.leader_hint();
    let relays = !hint.is_self && hint.leader.is_some_and(|(leader, _)| leader != state.node_id);
    let visible = parse_task_id(task).is_ok_and(|id| super::tasks::visible_task(state, &user.actor, id).is_ok());
    if relays || !visible {
        return Ok((Body::from(bytes), BTreeMap::new()));
    }
    let names: Vec<String> = serde_json::from_slice::<Named>(&bytes)
        .ok()
        .and_then(|named| named.record)
        .map(|files| files.attachments.into_iter().map(|file| file.sha256).collect())
        .unwrap_or_default();
    let held = crate::attachments::held_files(state, names.iter().map(String::as_str)).await?;
    Ok((Body::from(bytes), held))
}

/// With `If-Match`, a task that moved past the version is a failed precondition (412), as HTTP
/// clients expect, rather than the 409 `version_conflict` of a body's version. (A relayed
/// request was answered so by the leader already.)
async fn precondition_failed_for_if_match(response: Response) -> Response {
    if response.status() != StatusCode::CONFLICT {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, ERROR_BODY_BYTES_MAX).await else {
        return ApiError::Internal("an error answer could not be read".into()).into_response();
    };
    match serde_json::from_slice::<api::ErrorBody>(&bytes) {
        Ok(error) if error.error.code == "version_conflict" => {
            ApiError::PreconditionFailed(error.error.message).into_response()
        }
        _ => Response::from_parts(parts, Body::from(bytes)),
    }
}

/// An error answer is a code and a sentence.
const ERROR_BODY_BYTES_MAX: usize = 64 * 1024;

/// The request's fields are those `action` takes, and its note is there when the action must
/// say why.
pub(super) fn check_fields(action: TaskAction, request: &ActionRequest) -> Result<(), ApiError> {
    let takes = fields_of(action);
    if let Some(field) = Field::ALL.into_iter().find(|f| f.present_in(request) && !takes.contains(f)) {
        return Err(ApiError::Invalid {
            code: "unexpected_field",
            message: format!("{} does not apply to {action}", field.name()),
        });
    }
    ledger::validate::note(&request.note, action.requires_note())?;
    Ok(())
}

/// The follow-up a completion opens in the same entry (`ProgrammeAction::OpenFollowUp`): for a
/// drawn inspection whose result is `corrected` or `case_opened`, a lead for the bureau with
/// jurisdiction with the deadline policy's deadlines of a lead.
pub(super) fn follow_up_of(
    state: &AppState,
    action: TaskAction,
    request: &ActionRequest,
    task: TaskId,
    stamp_ms: u64,
) -> Result<Option<Action>, ApiError> {
    let outcome = request.outcome.as_deref().and_then(CompletionOutcome::parse);
    if action != TaskAction::Complete || !outcome.is_some_and(ledger::campaign::needs_follow_up) {
        return Ok(None);
    }
    let severity = match state.store.read().ledger.task(task) {
        Some(current) if current.inspection.is_some() => current.severity,
        _ => return Ok(None),
    };
    let (ack_deadline_ms, complete_deadline_ms) = crate::deadline_policy::deadlines_for_ms(
        &state.deadlines,
        &state.calendar(),
        ledger::TaskKind::Lead,
        severity,
        stamp_ms,
    )
    .map_err(|e| ApiError::Invalid { code: "deadline_outside_calendar", message: e.to_string() })?;
    let open =
        ledger::campaign::ProgrammeAction::OpenFollowUp { inspection: task, ack_deadline_ms, complete_deadline_ms };
    Ok(Some(Action::Programme(Box::new(open))))
}

/// A command with the follow-up it opens, if any, as its companion.
pub(super) fn with_follow_up(command: Action, follow_up: Option<Action>) -> Prepared {
    let feature = (crate::reference::FEATURE_FOLLOW_UP, "the follow-up of an inspection's finding");
    Prepared { action: command, companions: follow_up.into_iter().collect(), companions_feature: Some(feature) }
}

/// The ledger command of an action whose request fields were checked.
pub(super) fn build(
    state: &AppState,
    action: TaskAction,
    mut request: ActionRequest,
    task: TaskId,
    stamp_ms: u64,
    held: &BTreeMap<String, HeldFile>,
) -> Result<Action, ApiError> {
    let transition = match action {
        TaskAction::AcceptComplaint => {
            return super::complaints::step_action(state, Some(true), task, request.note, stamp_ms)
        }
        TaskAction::RefuseComplaint => {
            return super::complaints::step_action(state, Some(false), task, request.note, stamp_ms)
        }
        TaskAction::NotifyReporter => return super::complaints::step_action(state, None, task, request.note, stamp_ms),
        TaskAction::Publish => return Ok(super::programme::publication_action(task, None)),
        TaskAction::Withdraw => return Ok(super::programme::publication_action(task, Some(request.note))),
        TaskAction::Dispatch => dispatch(state, &request, task, stamp_ms)?,
        TaskAction::Ack => Transition::Ack,
        TaskAction::Decline => Transition::Decline,
        TaskAction::Feedback => Transition::Feedback,
        TaskAction::Complete => complete(state, &request, task, stamp_ms)?,
        TaskAction::Close => Transition::Close,
        TaskAction::Return => Transition::Return,
        TaskAction::Cancel => Transition::Cancel,
        TaskAction::RequestExtension => extension_request(state, task)?,
        TaskAction::GrantExtension => Transition::GrantExtension,
        TaskAction::RefuseExtension => Transition::RefuseExtension,
        TaskAction::Pause => Transition::Pause,
        TaskAction::Resume => resume(state, task, stamp_ms)?,
        TaskAction::Forward => forward(state, task)?,
        TaskAction::Dispute => dispute(state, task)?,
        TaskAction::Designate => designate(state, &request)?,
        TaskAction::Claim => Transition::Claim,
        TaskAction::Release => Transition::Release,
        TaskAction::Assign => {
            let lead = request.lead.ok_or_else(|| ApiError::invalid_field("lead", "assign names the lead handler"))?;
            let supporting = request.supporting.unwrap_or_default();
            Transition::Assign {
                lead: ledger::organisation::PersonId(lead),
                supporting: supporting.into_iter().map(ledger::organisation::PersonId).collect(),
            }
        }
        TaskAction::HandDown => {
            let unit =
                request.unit.as_deref().ok_or_else(|| ApiError::invalid_field("unit", "hand_down names the unit"))?;
            Transition::HandDown { unit: api::parse_bureau(&state.regions(), "unit", unit)? }
        }
        TaskAction::RecordOnSite => {
            let record = request
                .record
                .take()
                .ok_or_else(|| ApiError::invalid_field("record", "record_on_site carries the record"))?;
            let checklist = {
                let replica = state.store.read();
                let current = replica.ledger.task(task).ok_or_else(|| task_not_found(task))?;
                crate::programme::checklist::of_task(state.programme.list_in_force(&replica.ledger), &current)
            };
            let record = record.to_record(&checklist, held)?;
            Transition::RecordOnSite(Box::new(record))
        }
    };
    debug_assert_eq!(transition.action(), action, "the table builds the transition of its own action");
    Ok(Action::ChangeTask(TaskChange { task, expected_version: request.version, note: request.note, transition }))
}

fn task_not_found(task: TaskId) -> ApiError {
    ApiError::NotFound(format!("task {task} does not exist"))
}

/// 办结 with its outcome; the result of an inspection drawn here also starts its publication
/// clock, 20 working days on by the calendar (the ledger decides what the completion means).
fn complete(state: &AppState, request: &ActionRequest, task: TaskId, stamp_ms: u64) -> Result<Transition, ApiError> {
    let outcome = request.outcome.as_deref().ok_or_else(|| ApiError::Invalid {
        code: "missing_field",
        message: format!("outcome is required to complete; one of {}", CompletionOutcome::names()),
    })?;
    let outcome = api::parse_enum("outcome", outcome, CompletionOutcome::parse, CompletionOutcome::names)?;
    let current = state.store.read().ledger.task(task).ok_or_else(|| task_not_found(task))?;
    // Drawn by another group (received): its organiser there publishes, on its own clock.
    let drawn_here = current.inspection.is_some() && current.received.is_none();
    let publication_deadline_ms =
        if drawn_here { Some(super::programme::publication_deadline_ms(state, stamp_ms)?) } else { None };
    Ok(Transition::Complete { outcome, publication_deadline_ms })
}

/// The policy's extension for the task's kind, counted from its current completion deadline
/// (a lead's 15 working days run on from where the first 15 ended).
fn extension_request(state: &AppState, task: TaskId) -> Result<Transition, ApiError> {
    let replica = state.store.read();
    let current = replica.ledger.task(task).ok_or_else(|| task_not_found(task))?;
    let rule = state.deadlines.rule_for(current.kind.as_str(), current.severity.as_str());
    let (Some(span), Some(deadline_ms)) = (rule.extension, current.handling.complete_deadline_ms) else {
        return Err(ApiError::Conflict {
            code: "extension_not_allowed",
            message: format!("the deadline policy allows no extension for a {} task", current.kind),
        });
    };
    let new_complete_deadline_ms = extended_deadline_ms(&state.calendar(), deadline_ms, span)
        .map_err(|e| ApiError::Invalid { code: "deadline_outside_calendar", message: e.to_string() })?;
    Ok(Transition::RequestExtension { new_complete_deadline_ms, extensions_allowed: rule.extensions_max })
}

/// Resuming moves the completion deadline by the time the clock stood still.
fn resume(state: &AppState, task: TaskId, stamp_ms: u64) -> Result<Transition, ApiError> {
    let replica = state.store.read();
    let current = replica.ledger.task(task).ok_or_else(|| task_not_found(task))?;
    let (Some(paused_since_ms), Some(deadline_ms)) =
        (current.handling.paused_since_ms, current.handling.complete_deadline_ms)
    else {
        return Err(ledger::conflict(ledger::ConflictCode::NotPaused, "the completion clock is not paused").into());
    };
    let new_complete_deadline_ms =
        resumed_deadline_ms(&state.deadlines, &state.calendar(), &current, deadline_ms, paused_since_ms, stamp_ms)
            .map_err(|e| ApiError::Invalid { code: "deadline_outside_calendar", message: e.to_string() })?;
    Ok(Transition::Resume { new_complete_deadline_ms })
}

fn dispatch(state: &AppState, request: &ActionRequest, task: TaskId, stamp_ms: u64) -> Result<Transition, ApiError> {
    let replica = state.store.read();
    let current = replica.ledger.task(task).ok_or_else(|| task_not_found(task))?;
    let assignee = match (&request.assignee_bureau, current.handling.assignee_bureau) {
        (Some(text), _) => api::parse_bureau(&state.regions(), "assignee_bureau", text)?,
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
                default_deadlines_ms(&state.deadlines, &state.calendar(), &current, stamp_ms)
                    .map_err(|e| ApiError::Invalid { code: "deadline_outside_calendar", message: e.to_string() })?;
            (ack.unwrap_or(ack_default), complete.unwrap_or(complete_default))
        }
    };
    ledger::validate::dispatch(
        &state.regions(),
        current.origin_bureau,
        assignee,
        stamp_ms,
        ack_deadline_ms,
        complete_deadline_ms,
    )
    .map_err(ApiError::from)?;
    let federation = &state.federation;
    match federation.host_of(&state.regions(), assignee) {
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
    let current = replica.ledger.task(task).ok_or_else(|| task_not_found(task))?;
    let Some(received) = &current.received else {
        return Err(ApiError::Conflict {
            code: "not_forwarded",
            message: format!("task {task} was not forwarded here; there is no jurisdiction to dispute"),
        });
    };
    let federation = &state.federation;
    match federation.common_parent(&state.regions(), received.from_group) {
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
    let to_group = api::parse_bureau(&state.regions(), "group", text)?;
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
    let current = replica.ledger.task(task).ok_or_else(|| task_not_found(task))?;
    let region = current.subject.region_code;
    match state.federation.route_lead(&state.regions(), region) {
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
