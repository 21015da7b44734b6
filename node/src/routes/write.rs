//! The shared shape of every write route: authenticate, read the body, hand the request to the
//! leader when another node leads, otherwise build the command, answer a repeated
//! Idempotency-Key from its stored result, and propose.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledger::limits::IDEMPOTENCY_KEY_CHARS_MAX;
use ledger::{Action, Actor, Applied, Command, CommandResult, IdempotencyTag};
use sha2::{Digest, Sha256};

use super::request::read_body;
use crate::api::headers::IDEMPOTENCY;
use crate::api::{self, time, ApiError};
use crate::state::AppState;
use crate::write_path::{propose_or_relay_with, relay_if_follower, OriginalRequest, WriteOutcome};

/// The Idempotency-Key of a write, fingerprinted with the route, the body and the `If-Match`
/// precondition (which decides like the body's version) so that a key reused for a different
/// request is recognised.
pub(crate) fn idempotency_tag(headers: &HeaderMap, uri: &Uri, body: &[u8]) -> Result<Option<IdempotencyTag>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY) else { return Ok(None) };
    let key = value.to_str().ok().filter(|k| crate::api::headers::is_idempotency_key(k)).ok_or_else(|| {
        ApiError::Invalid {
            code: "invalid_idempotency_key",
            message: format!("Idempotency-Key must be 1-{IDEMPOTENCY_KEY_CHARS_MAX} visible ASCII characters"),
        }
    })?;
    let mut hasher = Sha256::new();
    hasher.update(uri.path().as_bytes());
    hasher.update([0]);
    hasher.update(body);
    if let Some(if_match) = headers.get(axum::http::header::IF_MATCH) {
        hasher.update([0]);
        hasher.update(if_match.as_bytes());
    }
    Ok(Some(IdempotencyTag { key: key.to_owned(), fingerprint: hasher.finalize().into() }))
}

fn applied_response(state: &AppState, status: StatusCode, applied: Applied) -> Response {
    let regions = &state.regions();
    use crate::api::organisation::{PersonJson, StationJson};
    use ledger::organisation::OrganisationRecord;
    let organised = match &applied.organisation {
        Some(OrganisationRecord::Station(station)) => Some((
            Json(StationJson::of(regions, station)).into_response(),
            format!("/api/v1/stations/{}", station.code),
        )),
        Some(OrganisationRecord::Person(person)) => {
            Some((Json(PersonJson::of(regions, person, true)).into_response(), format!("/api/v1/people/{}", person.id)))
        }
        None => None,
    };
    if let Some((mut response, location)) = organised {
        *response.status_mut() = status;
        if status == StatusCode::CREATED {
            set_location(&mut response, &location);
        }
        return response;
    }
    let mut response = match &applied.record {
        Some(record) => {
            let mut response = (status, Json(super::programme::record_json(state, record))).into_response();
            if let (StatusCode::CREATED, ledger::campaign::ProgrammeRecord::Campaign(campaign)) = (status, record) {
                set_location(&mut response, &format!("/api/v1/campaigns/{}", campaign.id));
            }
            response
        }
        None => {
            let task = applied.task();
            let mut response = (status, Json(api::task_json(regions, task))).into_response();
            response.headers_mut().insert(axum::http::header::ETAG, api::headers::task_etag(task.version));
            if status == StatusCode::CREATED {
                set_location(&mut response, &format!("/api/v1/tasks/{}", task.id));
            }
            response
        }
    };
    if applied.replayed {
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// `Location` of what a 201 created: the route that reads it.
fn set_location(response: &mut Response, path: &str) {
    if let Ok(value) = HeaderValue::from_str(path) {
        response.headers_mut().insert(axum::http::header::LOCATION, value);
    }
}

pub(super) fn result_response(state: &AppState, status: StatusCode, result: CommandResult) -> Response {
    match result {
        Ok(applied) => applied_response(state, status, applied),
        Err(rejection) => ApiError::from(rejection).into_response(),
    }
}

/// Answers from the stored first result when this node already has the key; otherwise
/// proposes. Where the request is handled was decided once, before the command was built
/// (`handle_write`); `propose_or_relay` relays only when leadership moved in between (the
/// new leader builds the command again from the original request). The ledger checks the key
/// again when it applies.
pub(super) async fn write(
    state: &AppState,
    original: OriginalRequest,
    command: Command,
    status: StatusCode,
) -> Response {
    write_with(state, original, command, Vec::new(), status).await
}

/// `write` of a command with companions committed in the same entry after it; the answer is
/// the command's (a companion's refusal is the ledger's, logged: the command stands).
async fn write_with(
    state: &AppState,
    original: OriginalRequest,
    command: Command,
    companions: Vec<Command>,
    status: StatusCode,
) -> Response {
    if let Some(tag) = &command.idempotency {
        let stored = state.store.read().ledger.idempotent_answer(&command.actor.user, tag);
        if let Some(result) = stored {
            return result_response(state, status, result);
        }
    }
    match propose_or_relay_with(state, &original, command, companions).await {
        Ok(WriteOutcome::Local(result)) => result_response(state, status, result),
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
    handle_write_of_feature(state, uri, headers, body, status, None, prepare).await
}

/// `handle_write` of a command that builds before `feature` (`crate::reference::FEATURES_READ`)
/// cannot decode: proposed only when every member reads it.
pub(super) async fn handle_write_of_feature(
    state: AppState,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
    status: StatusCode,
    feature: Option<(&'static str, &'static str)>,
    prepare: impl FnOnce(&AppState, &Actor, &Bytes, u64) -> Result<Action, ApiError>,
) -> Response {
    let prepare = |state: &AppState, actor: &Actor, body: &Bytes, stamp_ms: u64| {
        prepare(state, actor, body, stamp_ms).map(Prepared::alone)
    };
    handle_write_prepared(state, uri, headers, body, status, feature, prepare).await
}

/// What a write route proposes: its command's action and the actions committed in the same
/// entry after it (a completion's follow-up task), which older builds may not decode.
pub(super) struct Prepared {
    pub action: Action,
    pub companions: Vec<Action>,
    /// The feature every member must read before `companions` are proposed.
    pub companions_feature: Option<(&'static str, &'static str)>,
}

impl Prepared {
    pub fn alone(action: Action) -> Prepared {
        Prepared { action, companions: Vec::new(), companions_feature: None }
    }
}

/// A companion's Idempotency-Key: the request's, marked with the companion's place after a
/// space (which no client's key holds), so a repeated request answers the companions from
/// their first answers too, and no client key can stand for one.
pub(super) fn companion_tag(tag: &IdempotencyTag, position: usize) -> IdempotencyTag {
    IdempotencyTag { key: format!("{} companion {position}", tag.key), fingerprint: tag.fingerprint }
}

/// `handle_write_of_feature` of a route whose command may bring companions (`Prepared`).
pub(super) async fn handle_write_prepared(
    state: AppState,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
    status: StatusCode,
    feature: Option<(&'static str, &'static str)>,
    prepare: impl FnOnce(&AppState, &Actor, &Bytes, u64) -> Result<Prepared, ApiError>,
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
    if let Some(response) = relay_if_follower(&state, &original).await {
        return response;
    }
    let stamp_ms = time::now_ms();
    let prepared = prepare(&state, &user.actor, &original.body, stamp_ms).and_then(|prepared| {
        let idempotency = idempotency_tag(&original.headers, &original.uri, &original.body)?;
        let companions = prepared
            .companions
            .into_iter()
            .enumerate()
            .map(|(position, action)| {
                let idempotency = idempotency.as_ref().map(|tag| companion_tag(tag, position));
                Command { stamp_ms, actor: user.actor.clone(), idempotency, action }
            })
            .collect::<Vec<_>>();
        let command = Command { stamp_ms, actor: user.actor.clone(), idempotency, action: prepared.action };
        Ok((command, companions, prepared.companions_feature))
    });
    let (command, companions, companions_feature) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => return error.into_response(),
    };
    let companions_feature = companions_feature.filter(|_| !companions.is_empty());
    for (feature, what) in feature.into_iter().chain(companions_feature) {
        if let Err(error) = crate::reference::members_read(&state, feature, what).await {
            return error.into_response();
        }
    }
    write_with(&state, original, command, companions, status).await
}
