//! Complaints and tip-offs (投诉举报): `POST /api/v1/complaints` registers one at the desk's
//! bureau with its acceptance clock; `POST /api/v1/tasks/{id}/{accept_complaint|
//! refuse_complaint|notify_reporter}` record the decision and the telling; `GET
//! /api/v1/tasks/{id}/reporter` shows who reported to the registering bureau's command centre,
//! and only to it. Every read of a reporter is logged with the reader.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use config::calendar::{Span, WorkCalendar};
use ledger::{
    Action, ComplaintChannel, ComplaintStep, NewComplaint, NewTask, Reporter, Routing, Severity, Source, TaskId,
    TaskKind,
};

use super::request::{parse_json, parse_task_id};
use super::write::handle_write;
use crate::api::{self, ApiError, ComplaintRequest, ReporterIdentityJson};
use crate::state::AppState;

/// The actions of the complaint channel on `POST /api/v1/tasks/{id}/{action}`.
fn deadline_after(calendar: &WorkCalendar, span: Span, stamp_ms: u64) -> Result<u64, ApiError> {
    let start = ::time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(stamp_ms) * 1_000_000)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let deadline = span
        .deadline_after(calendar, start)
        .map_err(|e| ApiError::Invalid { code: "deadline_outside_calendar", message: e.to_string() })?;
    Ok(u64::try_from(deadline.unix_timestamp_nanos() / 1_000_000).unwrap_or(u64::MAX))
}

pub async fn register(State(state): State<AppState>, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    handle_write(state, uri, headers, body, StatusCode::CREATED, |state, actor, body, stamp_ms| {
        let request: ComplaintRequest = parse_json(body)?;
        let channel = api::parse_enum("channel", &request.channel, ComplaintChannel::parse, ComplaintChannel::names)?;
        let severity = match &request.severity {
            Some(text) => api::parse_enum("severity", text, Severity::parse, Severity::names)?,
            None => Severity::Normal,
        };
        let subject = api::parse_subject(&state.regions(), &request.subject)?;
        let task = NewTask {
            // A tip-off reports a violation (a lead); a complaint is a consumer dispute, handled
            // as a lead of the complaint channel too, so one life cycle serves both.
            kind: TaskKind::Lead,
            severity,
            title: request.title,
            description: request.description,
            // Kept at the desk's bureau even when the firm is elsewhere: the desk decides on
            // acceptance first, and forwards an accepted report where it belongs.
            routing: Routing::Keep,
            subject,
            source: Source::Complaint,
            origin_bureau: actor.bureau,
            assignee_bureau: None,
        };
        let accept_deadline_ms = deadline_after(&state.calendar(), state.deadlines.complaints.accept, stamp_ms)?;
        let reporter = Reporter {
            name: request.reporter.name,
            phone: request.reporter.phone,
            id_number: request.reporter.id_number,
        };
        Ok(Action::RegisterComplaint(Box::new(NewComplaint {
            task,
            channel,
            real_name: request.real_name,
            reporter,
            accept_deadline_ms,
        })))
    })
    .await
}

/// Builds the ledger action of a complaint step on task `id`.
/// `accept`: the decision (受理 or 不予受理), or `None` for telling the reporter.
pub(super) fn step_action(
    state: &AppState,
    accept: Option<bool>,
    id: TaskId,
    note: String,
    stamp_ms: u64,
) -> Result<Action, ApiError> {
    let step = match accept {
        None => ComplaintStep::NotifyReporter,
        Some(accept) => {
            let replica = state.store.read();
            let task =
                replica.ledger.task(id).ok_or_else(|| ApiError::NotFound(format!("task {id} does not exist")))?;
            let real_name = task.complaint.as_ref().is_some_and(|c| c.real_name);
            let notify_deadline_ms = if real_name {
                Some(deadline_after(&state.calendar(), state.deadlines.complaints.notify, stamp_ms)?)
            } else {
                None
            };
            ComplaintStep::Decide { accept, notify_deadline_ms }
        }
    };
    Ok(Action::ComplaintStep { task: id, step, note })
}

pub async fn reporter(State(state): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let answer = (|| {
        let user = state.users.authenticate(&headers)?;
        let id = parse_task_id(&id)?;
        let replica = state.store.read();
        let reporter = replica.ledger.reporter(&user.actor, id).map_err(ApiError::from)?;
        tracing::info!(user = %user.actor.user, bureau = %user.actor.bureau, task = %id, "reporter identity read");
        Ok::<_, ApiError>(Json(ReporterIdentityJson {
            task_id: id.0,
            name: reporter.name.clone(),
            phone: reporter.phone.clone(),
            id_number: reporter.id_number.clone(),
        }))
    })();
    match answer {
        Ok(body) => body.into_response(),
        Err(error) => error.into_response(),
    }
}
