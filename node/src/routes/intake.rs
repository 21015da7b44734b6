//! `POST /api/v1/intake`: a batch of signals from an authenticated source, committed in one
//! ledger entry, answered per signal: created, merged (into which task), repeat, or refused.
//!
//! The batch is checked whole before anything is written: a source over its rate limit gets
//! 429 and nothing is written; a source whose bureau another group hosts gets 403. Then each
//! signal is parsed on its own: a bad one is refused in its result and the others go on.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledger::{Action, Actor, Command, Role};
use tokio::time::Instant;

use crate::api::{time, ApiError};
use crate::intake::{
    decode_signal, parse_signal, IntakeRequest, IntakeResponse, SignalJson, SignalResult, WellFormedIntakeRequest,
    INTAKE_BODY_BYTES_MAX, SIGNALS_PER_BATCH_MAX,
};
use crate::state::AppState;
use crate::write_path::{relay_if_follower, OriginalRequest};

pub async fn intake(State(state): State<AppState>, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    match handle(state, uri, headers, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn handle(state: AppState, uri: Uri, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let source = state.users.authenticate_source(&headers)?;
    if state.federation.host_of(&state.regions(), source.bureau) != Some(state.federation.group) {
        return Err(ApiError::Forbidden(format!(
            "source {} reports to bureau {}, which group {} does not host",
            source.name, source.bureau, state.federation.group
        )));
    }
    let body = axum::body::to_bytes(body, INTAKE_BODY_BYTES_MAX)
        .await
        .map_err(|_| ApiError::TooLarge(format!("an intake batch is at most {INTAKE_BODY_BYTES_MAX} bytes")))?;
    let original = OriginalRequest { uri, headers, body };
    // The leader keeps the rate: every batch of the source ends there, whichever node it hit.
    if let Some(response) = relay_if_follower(&state, &original).await {
        return Ok(response);
    }
    // Each signal is decoded on its own only when some signal is malformed: then that one is
    // refused and the others go on.
    let signals: Vec<Result<SignalJson, (Option<String>, ApiError)>> =
        match serde_json::from_slice::<WellFormedIntakeRequest>(&original.body) {
            Ok(request) => request.signals.into_iter().map(Ok).collect(),
            Err(_) => {
                let request: IntakeRequest = serde_json::from_slice(&original.body)
                    .map_err(|e| ApiError::Invalid { code: "invalid_json", message: e.to_string() })?;
                request
                    .signals
                    .into_iter()
                    .map(|value| {
                        let source_id = value.get("source_id").and_then(|v| v.as_str()).map(str::to_owned);
                        decode_signal(value).map_err(|error| (source_id, error))
                    })
                    .collect()
            }
        };
    let count = signals.len();
    if count == 0 || count > SIGNALS_PER_BATCH_MAX {
        return Err(ApiError::invalid_field("signals", format!("1 to {SIGNALS_PER_BATCH_MAX} per batch")));
    }
    let allowed = source.bucket.lock().expect("not poisoned").take(count, std::time::Instant::now());
    if let Err(wait) = allowed {
        return Err(ApiError::RateLimited {
            message: format!("source {} is over its rate; nothing of this batch was written", source.name),
            retry_after_secs: wait.as_secs_f64().ceil() as u64,
        });
    }

    let stamp_ms = time::now_ms();
    let actor = Actor { user: source.name.clone(), bureau: source.bureau, role: Role::Source };
    let federation = state.federation.clone();
    let regions = state.regions();
    let route = move |kind, region| federation.route_new_task(&regions, kind, region);
    let mut results: Vec<SignalResult> = Vec::with_capacity(count);
    let mut commands = Vec::new();
    // Where each proposed command's result goes in `results`.
    let mut positions = Vec::new();
    for decoded in signals {
        let json = match decoded {
            Ok(json) => json,
            Err((source_id, error)) => {
                results.push(refused(source_id, &error));
                continue;
            }
        };
        let source_id = Some(json.source_id.clone());
        match parse_signal(&state.regions(), &source, json, &route) {
            Ok(signal) => {
                positions.push(results.len());
                results.push(SignalResult { source_id, outcome: String::new(), task_id: None, error: None });
                let action = Action::IngestSignal(Box::new(signal));
                commands.push(Command { stamp_ms, actor: actor.clone(), idempotency: None, action });
            }
            Err(error) => results.push(refused(source_id, &error)),
        }
    }
    if !commands.is_empty() {
        let started = Instant::now();
        let outcomes = state.batcher.propose_together(commands).await?;
        tracing::debug!(signals = outcomes.len(), elapsed = ?started.elapsed(), "intake batch committed");
        for (position, outcome) in positions.into_iter().zip(outcomes) {
            let slot = &mut results[position];
            match outcome {
                Ok(applied) => {
                    slot.task_id = Some(applied.task().id.0);
                    let signals = applied.task().intake.as_ref().map_or(0, |summary| summary.signals);
                    slot.outcome = match (applied.replayed, signals) {
                        (true, _) => "repeat",
                        (false, 1) => "created",
                        (false, _) => "merged",
                    }
                    .to_owned();
                }
                Err(rejection) => *slot = refused(slot.source_id.take(), &ApiError::from(rejection)),
            }
        }
    }
    Ok(Json(IntakeResponse { results }).into_response())
}

fn refused(source_id: Option<String>, error: &ApiError) -> SignalResult {
    SignalResult { source_id, outcome: "refused".into(), task_id: None, error: Some(error.detail()) }
}
