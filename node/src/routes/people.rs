//! People's accounts and sessions:
//!
//! - `POST /api/v1/sessions` signs in (login and password), `POST /api/v1/sessions/renew`
//!   extends a session, `POST /api/v1/sessions/sign_out` signs out everywhere (a POST: writes are relayed to
//!   the leader as POSTs);
//! - `GET /api/v1/people`, `GET /api/v1/people/{id}`: the accounts a caller may see;
//! - `POST /api/v1/people` and `/people/{id}/{rename|roles|password|disable|enable}`: managed by
//!   the command centre over the unit or a person with the accounts role (the ledger decides);
//! - `POST /api/v1/me/password`: a person changes their own password.
//!
//! Passwords are hashed here (argon2id, off the async threads) by the node that builds the
//! command, which carries only the hash; a password never reaches the log.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledger::organisation::{OrganisationAction, Person, PersonId, PersonRole};
use ledger::{Action, Actor, BureauCode, Command, Role};
use serde::Deserialize;

use super::request::{parse_json, parse_query, read_body};
use super::write::write;
use crate::api::organisation::{
    LinkInspectorRequest, OwnPasswordRequest, PeopleJson, PersonJson, PersonNoteRequest, PersonRequest,
    RenamePersonRequest, ResetPasswordRequest, RolesRequest, SessionJson, SignInRequest,
};
use crate::api::{self, time, ApiError};
use crate::reference::FEATURE_ORGANISATION;
use crate::server::Peer;
use crate::sessions::{check_password, hash_password, Issued, Sessions};
use crate::state::AppState;
use crate::write_path::{relay_if_follower, OriginalRequest};

fn sessions(state: &AppState) -> Result<&std::sync::Arc<Sessions>, ApiError> {
    state.users.sessions().ok_or_else(|| ApiError::Internal("this process keeps no sessions".into()))
}

fn session_json(state: &AppState, issued: &Issued, person: &Person) -> SessionJson {
    SessionJson {
        token: issued.token.clone(),
        expires_at: time::format_ms(issued.claims.expires_ms),
        renew_until: time::format_ms(issued.claims.renew_until_ms),
        person: PersonJson::of(&state.regions(), person, false),
    }
}

/// `POST /api/v1/sessions`: no token; the login and password in the body.
pub async fn sign_in(State(state): State<AppState>, peer: Peer, headers: HeaderMap, body: Body) -> Response {
    let answer = async {
        super::public::within_budget(&state, peer, &headers)?;
        let body = read_body(body).await?;
        let request: SignInRequest = parse_json(&body)?;
        let sessions = sessions(&state)?;
        let now_ms = time::now_ms();
        let person = sessions.sign_in(&request.login, &request.password, now_ms).await?;
        let issued = sessions.issue(&person, now_ms);
        tracing::info!(person = %person.id, login = %person.login, "signed in");
        Ok::<_, ApiError>((StatusCode::CREATED, Json(session_json(&state, &issued, &person))))
    };
    answer.await.map_or_else(IntoResponse::into_response, IntoResponse::into_response)
}

/// The session of the request's own token.
fn own_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(std::sync::Arc<Person>, crate::sessions::SessionClaims), ApiError> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError::Unauthorized("a session token is required".into()))?;
    sessions(state)?
        .check(token.trim(), time::now_ms())
        .map_err(|refusal| ApiError::Unauthorized(format!("the session is {}: sign in again", refusal.as_str())))
}

/// `POST /api/v1/sessions/renew`: the same session, expiring later (up to its renewal limit).
pub async fn renew(State(state): State<AppState>, headers: HeaderMap) -> Response {
    super::json_answer((|| {
        state.users.authenticate(&headers)?;
        let (person, claims) = own_session(&state, &headers)?;
        let issued = sessions(&state)?.renew(&claims, time::now_ms());
        Ok(session_json(&state, &issued, &person))
    })())
}

/// `POST /api/v1/sessions/sign_out`: signs the person out everywhere (every session of theirs
/// ends: a session cannot be ended alone without a record of it).
pub async fn sign_out(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let answer = async {
        let user = state.users.authenticate(&headers)?;
        let person = user.person.clone().ok_or_else(|| ApiError::Forbidden("only a person signs out".into()))?;
        let original = OriginalRequest { uri, headers, body: Default::default() };
        let action = OrganisationAction::SignOut { person: person.id };
        Ok::<_, ApiError>(organise(&state, original, &user.actor, action, StatusCode::NO_CONTENT).await)
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

/// Proposes an organisation command once every member reads them, as `actor`; answers the
/// account (or nothing, for a sign-out).
async fn organise(
    state: &AppState,
    original: OriginalRequest,
    actor: &Actor,
    action: OrganisationAction,
    status: StatusCode,
) -> Response {
    if let Some(response) = relay_if_follower(state, &original).await {
        return response;
    }
    if let Err(error) = crate::reference::members_read(state, FEATURE_ORGANISATION, "accounts").await {
        return error.into_response();
    }
    let command = Command {
        stamp_ms: time::now_ms(),
        actor: actor.clone(),
        idempotency: None,
        action: Action::Organisation(Box::new(action)),
    };
    let response = write(state, original, command, status).await;
    if status == StatusCode::NO_CONTENT && response.status().is_success() {
        return StatusCode::NO_CONTENT.into_response();
    }
    response
}

fn parse_roles(texts: &[String]) -> Result<Vec<PersonRole>, ApiError> {
    let mut roles = texts
        .iter()
        .map(|text| api::parse_enum("roles", text, PersonRole::parse, PersonRole::names))
        .collect::<Result<Vec<_>, _>>()?;
    roles.sort();
    roles.dedup();
    Ok(roles)
}

fn person_of_path(text: &str) -> Result<PersonId, ApiError> {
    text.parse::<u64>()
        .ok()
        .filter(|id| *id > 0 && id.to_string() == text)
        .map(PersonId)
        .ok_or_else(|| ApiError::NotFound(format!("{text:?} is not a person's number")))
}

/// May this user manage accounts at all (the early refusal; the ledger decides which)?
fn may_manage(user: &crate::auth::User) -> Result<(), ApiError> {
    let manages = match &user.person {
        Some(person) => person.has(PersonRole::Accounts) || person.has(PersonRole::Dispatcher),
        None => user.actor.role == Role::Command,
    };
    if manages {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!("{} does not manage accounts", user.actor.user)))
    }
}

/// A write about accounts whose body may carry a password: read, relayed to the leader if
/// another node leads, then built here (hashing off the async threads) and proposed.
async fn account_write<T: serde::de::DeserializeOwned + Send + 'static>(
    state: AppState,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
    status: StatusCode,
    build: impl FnOnce(&AppState, &crate::auth::User, T) -> Result<OrganisationAction, ApiError> + Send + 'static,
) -> Response {
    let answer = async {
        let user = state.users.authenticate(&headers)?;
        let body = read_body(body).await?;
        let original = OriginalRequest { uri, headers, body };
        if let Some(response) = relay_if_follower(&state, &original).await {
            return Ok(response);
        }
        let request: T = parse_json(&original.body)?;
        let (state_for_build, user_for_build) = (state.clone(), user.clone());
        let action = tokio::task::spawn_blocking(move || build(&state_for_build, &user_for_build, request))
            .await
            .map_err(|_| ApiError::Internal("building the command stopped".into()))??;
        Ok::<_, ApiError>(organise(&state, original, &user.actor, action, status).await)
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /api/v1/people`.
pub async fn create(State(state): State<AppState>, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    account_write(state, uri, headers, body, StatusCode::CREATED, |state, user, request: PersonRequest| {
        may_manage(user)?;
        let unit = api::parse_bureau(&state.regions(), "unit", &request.unit)?;
        let roles = parse_roles(&request.roles)?;
        ledger::organisation::check_login(&request.login)
            .map_err(|reason| api::ApiError::invalid_field("login", reason))?;
        check_password(&request.password, &request.login)?;
        Ok(OrganisationAction::CreatePerson {
            login: request.login,
            name: request.name,
            unit,
            roles,
            password_phc: hash_password(&request.password)?,
        })
    })
    .await
}

pub async fn rename(
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    account_write(state, uri, headers, body, StatusCode::OK, move |_, user, request: RenamePersonRequest| {
        may_manage(user)?;
        let person = person_of_path(&id)?;
        Ok(OrganisationAction::UpdatePerson { person, name: Some(request.name), roles: None, note: request.note })
    })
    .await
}

pub async fn set_roles(
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    account_write(state, uri, headers, body, StatusCode::OK, move |_, user, request: RolesRequest| {
        may_manage(user)?;
        let person = person_of_path(&id)?;
        let roles = parse_roles(&request.roles)?;
        Ok(OrganisationAction::UpdatePerson { person, name: None, roles: Some(roles), note: request.note })
    })
    .await
}

pub async fn reset_password(
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    account_write(state, uri, headers, body, StatusCode::OK, move |state, user, request: ResetPasswordRequest| {
        may_manage(user)?;
        let person = person_of_path(&id)?;
        let login = sessions(state)?.people().person(person).map(|p| p.login.clone()).unwrap_or_default();
        check_password(&request.password, &login)?;
        Ok(OrganisationAction::SetPassword {
            person,
            password_phc: hash_password(&request.password)?,
            note: request.note,
        })
    })
    .await
}

pub async fn disable(
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    account_write(state, uri, headers, body, StatusCode::OK, move |_, user, request: PersonNoteRequest| {
        may_manage(user)?;
        Ok(OrganisationAction::DisablePerson { person: person_of_path(&id)?, note: request.note })
    })
    .await
}

pub async fn enable(
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    account_write(state, uri, headers, body, StatusCode::OK, move |_, user, request: PersonNoteRequest| {
        may_manage(user)?;
        Ok(OrganisationAction::EnablePerson { person: person_of_path(&id)?, note: request.note })
    })
    .await
}

/// `POST /api/v1/people/{id}/inspector`: links the account to an inspector of the directory.
pub async fn link_inspector(
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    account_write(state, uri, headers, body, StatusCode::OK, move |_, user, request: LinkInspectorRequest| {
        may_manage(user)?;
        Ok(OrganisationAction::LinkInspector { person: person_of_path(&id)?, inspector: request.inspector })
    })
    .await
}

/// `POST /api/v1/me/password`: the current password checked, then the new one set; every
/// session of the person ends (this one too: the console signs in again).
pub async fn own_password(State(state): State<AppState>, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    let answer = async {
        let user = state.users.authenticate(&headers)?;
        let person = user.person.clone().ok_or_else(|| ApiError::Forbidden("only a person has a password".into()))?;
        let body = read_body(body).await?;
        let original = OriginalRequest { uri, headers, body };
        if let Some(response) = relay_if_follower(&state, &original).await {
            return Ok(response);
        }
        let request: OwnPasswordRequest = parse_json(&original.body)?;
        check_password(&request.new, &person.login)?;
        let sessions = sessions(&state)?;
        sessions.sign_in(&person.login, &request.current, time::now_ms()).await.map_err(|error| match error {
            ApiError::Unauthorized(_) => ApiError::Forbidden("the current password is wrong".into()),
            other => other,
        })?;
        let new = request.new;
        let phc = tokio::task::spawn_blocking(move || hash_password(&new))
            .await
            .map_err(|_| ApiError::Internal("hashing stopped".into()))??;
        let action = OrganisationAction::SetPassword { person: person.id, password_phc: phc, note: String::new() };
        Ok::<_, ApiError>(organise(&state, original, &user.actor, action, StatusCode::OK).await)
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct PeopleQuery {
    /// The unit (and the units below it) whose accounts to list; default: the caller's.
    #[schemars(schema_with = "crate::api::schema::optional_unit_code")]
    unit: Option<String>,
    /// List disabled accounts too.
    include_disabled: bool,
}

/// Whose accounts a user may read: their own unit's (a head assigns its handlers); a command
/// centre, leadership or an accounts clerk also those of the units below.
fn may_read_people_of(state: &AppState, user: &crate::auth::User, unit: BureauCode) -> Result<(), ApiError> {
    let own = user.actor.bureau;
    let over_subtree = match &user.person {
        Some(person) => person.has(PersonRole::Accounts) || !matches!(person.role(), Role::Operator | Role::Department),
        None => user.actor.role != Role::Operator,
    };
    if unit == own || (over_subtree && state.regions().is_within(unit, own)) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!("{} cannot read the accounts of {unit}", user.actor.user)))
    }
}

/// `GET /api/v1/people?unit=&include_disabled=`.
pub async fn people(State(state): State<AppState>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    super::json_answer((|| {
        let user = state.users.authenticate(&headers)?;
        let query: PeopleQuery = parse_query(raw)?;
        let regions = state.regions();
        let unit = match &query.unit {
            Some(text) => api::parse_bureau(&regions, "unit", text)?,
            None => user.actor.bureau,
        };
        may_read_people_of(&state, &user, unit)?;
        let subtree =
            user.actor.role != Role::Operator || user.person.as_ref().is_some_and(|p| p.has(PersonRole::Accounts));
        let mut people: Vec<_> = sessions(&state)?
            .people()
            .all()
            .into_iter()
            .filter(|person| person.unit == unit || (subtree && regions.is_within(person.unit, unit)))
            .filter(|person| query.include_disabled || person.enabled)
            .collect();
        people.sort_by_key(|person| person.id);
        Ok(PeopleJson { people: people.iter().map(|person| PersonJson::of(&regions, person, false)).collect() })
    })())
}

/// `GET /api/v1/people/{id}`: one account with its history.
pub async fn person(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    super::json_answer((|| {
        let user = state.users.authenticate(&headers)?;
        let id = person_of_path(&id)?;
        let person = sessions(&state)?.people().person(id).ok_or_else(|| ApiError::NotFound(format!("person {id}")))?;
        if user.person.as_ref().is_none_or(|me| me.id != id) {
            may_read_people_of(&state, &user, person.unit)?;
        }
        Ok(PersonJson::of(&state.regions(), &person, true))
    })())
}
