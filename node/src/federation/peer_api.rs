//! The receiving end of federation, `/federation/v1/*`: peer groups deliver handovers and
//! instructions, push status reports, and ask for the state of what they handed over.
//!
//! A peer authenticates with its link token and may do nothing else: user routes do not accept
//! peer tokens, and the ledger lets the `Peer` role only receive messages and mirror reports.
//! Writes arriving at a follower go to the leader like any write.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use config::calendar::{CalendarError, Span, WorkCalendar};
use ledger::{
    peer_actor, Action, BureauCode, Command, CommandResult, ForwardId, HandoverPurpose, Message, Placement, Rejection,
    Routing, StatusReport, TaskId,
};
use serde::{Deserialize, Serialize};

use crate::api::{time, ApiError};
use crate::batcher::ProposeError;
use crate::state::AppState;
use crate::write_path::{relay_if_follower, OriginalRequest};

/// Messages or reports in one request: keeps one request's proposals within a few batches.
pub const FEDERATION_BATCH_MAX: usize = 128;
/// A batch of handovers with every text at its cap, or of reports with full timelines.
pub const FEDERATION_BODY_BYTES_MAX: usize = 16 * 1024 * 1024;

// The federation's requests and the messages in them ignore fields they do not know (serde's
// default): groups upgrade at different times, and a newer group may add a field an older one
// must still accept. A change an older group could not understand gets a new path (`/v2/`).
pub const DELIVER_PATH: &str = "/federation/v1/deliver";
pub const REPORT_PATH: &str = "/federation/v1/report";
pub const STATUS_PATH: &str = "/federation/v1/status";

#[derive(Debug, Serialize, Deserialize)]
pub struct DeliverRequest {
    pub messages: Vec<Message>,
}

/// The answer to one delivered message, in request order.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryResult {
    /// Committed (now or earlier): the task it made or changed here.
    Accepted { task: TaskId },
    /// Committed as refused; delivering it again gets the same answer.
    Refused { reason: String },
    /// Not committed (no leader, overloaded, or a message it depends on is missing): try again.
    Retry { reason: String },
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DeliverResponse {
    pub results: Vec<DeliveryResult>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ReportRequest {
    pub reports: Vec<StatusReport>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ReportResponse {
    /// Reports committed or already known; the others should be sent again.
    pub settled: usize,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StatusRequest {
    pub forwards: Vec<ForwardId>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StatusResponse {
    pub reports: Vec<StatusReport>,
}

/// The federation protocol this build speaks: the `/v1/` of its paths.
pub const FEDERATION_VERSION: &str = "v1";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(DELIVER_PATH, post(deliver))
        .route(REPORT_PATH, post(report))
        .route(STATUS_PATH, post(status))
        .route(super::plan_filing::PLANS_PATH, post(super::plan_filing::file))
        .route(super::plan_handdown::HANDED_DOWN_PATH, post(super::plan_handdown::receive))
        .route(super::plan_handdown::PROGRESS_PATH, post(super::plan_handdown::progress))
        .route(super::plan_handdown::PROPOSALS_PATH, post(super::plan_handdown::proposals))
        .route("/federation/{version}", axum::routing::any(another_version))
        .route("/federation/{version}/{*rest}", axum::routing::any(another_version))
}

/// A request for another version of the protocol (or none of ours): refused naming both, so the
/// operators of a group upgraded ahead of its peers see at once why a link is refused.
async fn another_version(uri: Uri) -> Response {
    let version = uri.path().trim_start_matches("/federation/").split('/').next().unwrap_or_default();
    if version == FEDERATION_VERSION {
        return ApiError::NoRoute.into_response();
    }
    ApiError::Invalid {
        code: "federation_version",
        message: format!("{}: this group speaks federation {FEDERATION_VERSION}, not {version}", uri.path()),
    }
    .into_response()
}

/// Authenticates the peer and reads the body; `Err` is the response to give.
async fn admit(state: &AppState, headers: &HeaderMap, body: Body) -> Result<(BureauCode, Bytes), Response> {
    let peer = state.federation.authenticate_peer(headers).map_err(IntoResponse::into_response)?;
    let body = axum::body::to_bytes(body, FEDERATION_BODY_BYTES_MAX).await.map_err(|_| {
        ApiError::TooLarge(format!("a federation request is at most {FEDERATION_BODY_BYTES_MAX} bytes")).into_response()
    })?;
    Ok((peer, body))
}

fn parse_batch<T: serde::de::DeserializeOwned>(body: &[u8], len: impl Fn(&T) -> usize) -> Result<T, ApiError> {
    let request: T =
        serde_json::from_slice(body).map_err(|e| ApiError::Invalid { code: "invalid_json", message: e.to_string() })?;
    if len(&request) > FEDERATION_BATCH_MAX {
        return Err(ApiError::invalid_field("batch", format!("at most {FEDERATION_BATCH_MAX} items per request")));
    }
    Ok(request)
}

/// What became of a peer's message proposed as the peer: taken (now, or before: nothing to
/// record), to be sent again (not committed, or it depends on one not arrived yet), or refused
/// with the ledger's reason.
pub(super) enum PeerOutcome {
    Taken,
    Retry(String),
    Refused(String),
}

/// Proposes `action` as group `peer` and says what became of it.
pub(super) async fn propose_as_peer(state: &AppState, peer: BureauCode, stamp_ms: u64, action: Action) -> PeerOutcome {
    let command = Command { stamp_ms, actor: peer_actor(peer), idempotency: None, action };
    match state.batcher.propose(command).await {
        Ok(Ok(_)) | Ok(Err(Rejection::NothingToRecord(_))) => PeerOutcome::Taken,
        Ok(Err(Rejection::NotYet(reason))) => PeerOutcome::Retry(reason),
        Ok(Err(rejection)) => PeerOutcome::Refused(rejection.to_string()),
        Err(error) => PeerOutcome::Retry(format!("{error:?}")),
    }
}

/// The shared front of the write routes: authenticate the peer, read the body, hand the
/// request to the leader if another node leads, parse the batch. `Err` is the response to give.
pub(super) async fn admit_write<T: serde::de::DeserializeOwned>(
    state: &AppState,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
    len: impl Fn(&T) -> usize,
) -> Result<(BureauCode, T), Response> {
    let (peer, body) = admit(state, &headers, body).await?;
    let original = OriginalRequest { uri, headers, body };
    if let Some(response) = relay_if_follower(state, &original).await {
        return Err(response);
    }
    let request = parse_batch(&original.body, &len).map_err(IntoResponse::into_response)?;
    state.federation.spend(peer, len(&request)).map_err(IntoResponse::into_response)?;
    Ok((peer, request))
}

async fn deliver(State(state): State<AppState>, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    let (peer, request) = match admit_write(&state, uri, headers, body, |r: &DeliverRequest| r.messages.len()).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let stamp_ms = time::now_ms();
    let answers = request.messages.into_iter().map(|message| {
        let state = state.clone();
        async move {
            let placement = match placement(&state, peer, &message, stamp_ms) {
                Ok(placement) => placement,
                Err(reason) => return DeliveryResult::Refused { reason },
            };
            let action = Action::Receive { message: Box::new(message), group: state.federation.group, placement };
            let command = Command { stamp_ms, actor: peer_actor(peer), idempotency: None, action };
            delivery_result(state.batcher.propose(command).await)
        }
    });
    let results = futures_util::future::join_all(answers).await;
    Json(DeliverResponse { results }).into_response()
}

/// What this group does with a delivered message: keep it, route a lead on, or (for a
/// dispute) designate the handler by the statutory deadline. `Err` refuses it: no group known
/// covers its region, or a dispatch is not for a bureau this group hosts.
fn placement(state: &AppState, peer: BureauCode, message: &Message, stamp_ms: u64) -> Result<Placement, String> {
    let federation = &state.federation;
    let regions = state.regions();
    let Some(handover) = message.handover() else { return Ok(Placement::Keep) };
    // A group hands over only what its own bureaus sent (the ledger checks the tree; the
    // topology says which group hosts the bureau).
    if federation.host_of(&regions, handover.origin_bureau) != Some(peer) {
        return Err(format!("bureau {} is not hosted by group {peer}", handover.origin_bureau));
    }
    match (handover.purpose, &handover.dispatch) {
        (HandoverPurpose::Dispatch, Some(terms)) => {
            if federation.host_of(&regions, terms.assignee) == Some(federation.group) {
                Ok(Placement::Keep)
            } else {
                Err(format!("bureau {} is not hosted by group {}", terms.assignee, federation.group))
            }
        }
        (HandoverPurpose::Dispatch, None) => Err("a dispatch handover carries its terms".into()),
        (HandoverPurpose::Designation, _) => Ok(Placement::Keep),
        (HandoverPurpose::Dispute, _) => {
            designation_deadline_ms(&state.calendar(), stamp_ms).map(Placement::DesignateBy).map_err(|e| e.to_string())
        }
        (HandoverPurpose::Jurisdiction, _) => match federation.route_lead(&regions, handover.subject.region_code) {
            Routing::Keep => Ok(Placement::Keep),
            Routing::ForwardTo { to_group, .. } if to_group != peer => Ok(Placement::RelayTo(to_group)),
            Routing::ForwardTo { .. } => {
                Err(format!("group {peer} routes region {} back to itself", handover.subject.region_code))
            }
            Routing::Unrouted => Err(format!("no configured group covers region {}", handover.subject.region_code)),
        },
    }
}

/// A jurisdiction dispute is settled by the common superior (指定管辖) within this many working
/// days, the period the federation issue sets for the designation task.
const DESIGNATION_WORKING_DAYS: u32 = 7;

fn designation_deadline_ms(calendar: &WorkCalendar, stamp_ms: u64) -> Result<u64, CalendarError> {
    let start = ::time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(stamp_ms) * 1_000_000)
        .map_err(|e| CalendarError::Data(e.to_string()))?;
    let deadline = Span::WorkingDays(DESIGNATION_WORKING_DAYS).deadline_after(calendar, start)?;
    Ok(u64::try_from(deadline.unix_timestamp_nanos() / 1_000_000).unwrap_or(u64::MAX))
}

fn delivery_result(outcome: Result<CommandResult, ProposeError>) -> DeliveryResult {
    match outcome {
        Ok(Ok(applied)) => DeliveryResult::Accepted { task: applied.task().id },
        Ok(Err(Rejection::NotYet(reason))) => DeliveryResult::Retry { reason },
        Ok(Err(rejection)) => DeliveryResult::Refused { reason: rejection.to_string() },
        Err(error) => DeliveryResult::Retry { reason: format!("{error:?}") },
    }
}

async fn report(State(state): State<AppState>, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    let (peer, request) = match admit_write(&state, uri, headers, body, |r: &ReportRequest| r.reports.len()).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let settled = mirror_reports(&state, peer, request.reports).await;
    Json(ReportResponse { settled }).into_response()
}

/// Proposes each report; returns how many are settled (committed, or already known). A report
/// that completes a drawn inspection handed over from here carries its result into the
/// organiser's record, with the publication clock (`EnterReportedResult`, in the same entry).
pub async fn mirror_reports(state: &AppState, peer: BureauCode, reports: Vec<StatusReport>) -> usize {
    let stamp_ms = time::now_ms();
    let proposals = reports.into_iter().map(|report| {
        let result = reported_result(state, &report, stamp_ms);
        let command = |action| Command { stamp_ms, actor: peer_actor(peer), idempotency: None, action };
        let mut commands = vec![command(Action::MirrorStatus(Box::new(report)))];
        commands.extend(result.map(|action| command(Action::Programme(Box::new(action)))));
        async move { state.batcher.propose_together(commands).await.map(|mut results| results.swap_remove(0)) }
    });
    let outcomes = futures_util::future::join_all(proposals).await;
    outcomes
        .iter()
        .filter(|outcome| match outcome {
            Ok(Ok(_)) | Ok(Err(Rejection::NothingToRecord(_))) => true,
            // Not receipted at the origin yet: the reporter sends it again (or the origin's
            // reconciliation pulls it).
            Ok(Err(Rejection::NotYet(_))) => false,
            Ok(Err(rejection)) => {
                tracing::warn!(%peer, %rejection, "a status report was refused");
                true
            }
            Err(_) => false,
        })
        .count()
}

/// The organiser's entry of a drawn inspection's result `report` completes, when the record
/// here has none yet (the ledger checks again once the mirror applied).
fn reported_result(
    state: &AppState,
    report: &StatusReport,
    stamp_ms: u64,
) -> Option<ledger::campaign::ProgrammeAction> {
    let completes = report.fields.state == ledger::TaskState::Completed
        && report.fields.outcome.is_some_and(ledger::campaign::is_inspection_outcome);
    if !completes {
        return None;
    }
    let task = state.store.read().ledger.sent_task(report.forward)?;
    task.inspection.as_ref().filter(|record| record.result_entered_at_ms.is_none())?;
    let publish_deadline_ms = crate::routes::programme::publication_deadline_ms(state, stamp_ms).ok()?;
    Some(ledger::campaign::ProgrammeAction::EnterReportedResult { task: task.id, publish_deadline_ms })
}

async fn status(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let (peer, body) = match admit(&state, &headers, body).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let request: StatusRequest = match parse_batch(&body, |r: &StatusRequest| r.forwards.len()) {
        Ok(request) => request,
        Err(error) => return error.into_response(),
    };
    if let Err(error) = state.federation.spend(peer, request.forwards.len()) {
        return error.into_response();
    }
    // Served from this replica: a lagging one answers with older versions, which the origin
    // recognises and ignores.
    let replica = state.store.read();
    let reports = request
        .forwards
        .iter()
        .filter_map(|forward| replica.ledger.received_task(*forward))
        .filter(|task| task.received.as_ref().is_some_and(|r| r.from_group == peer))
        .filter_map(|task| StatusReport::of(&task))
        .collect();
    Json(StatusResponse { reports }).into_response()
}
