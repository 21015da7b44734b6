//! The stations (市场监管所) of the county bureaus: listed to anyone of the county, a bureau
//! above it or a station of it; enrolled, renamed, given their areas, closed and reopened by a
//! command centre of the county or above (`ledger::organisation` decides; these routes give
//! the early refusal and the JSON).

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use ledger::organisation::OrganisationAction;
use ledger::{Action, BureauCode, Role};
use serde::Deserialize;

use super::request::{parse_json, parse_query};
use super::write::handle_write_of_feature;
use crate::api::organisation::{
    RenameStationRequest, StationAreasRequest, StationJson, StationNoteRequest, StationRequest, StationsJson,
};
use crate::api::{self, ApiError};
use crate::reference::FEATURE_ORGANISATION;
use crate::state::AppState;

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct StationsQuery {
    /// The county (or a bureau above it) whose stations to list; default: the caller's bureau.
    #[schemars(schema_with = "crate::api::schema::optional_unit_code")]
    bureau: Option<String>,
    /// List closed stations too.
    include_closed: bool,
}

/// The station code a path names (whether the group has it is the ledger's answer: 404).
fn station_of_path(text: &str) -> Result<BureauCode, ApiError> {
    BureauCode::parse_unit(text)
        .filter(|code| code.is_station())
        .ok_or_else(|| ApiError::NotFound(format!("{text:?} is not a station code (nine digits)")))
}

/// `GET /api/v1/stations?bureau=`: the stations within a bureau the caller belongs to or lies
/// below (a station's people see their county's stations).
pub async fn stations(State(state): State<AppState>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    super::json_answer((|| {
        let user = state.users.authenticate(&headers)?;
        let query: StationsQuery = parse_query(raw)?;
        let regions = state.regions();
        let own = user.actor.bureau.county_of_station().unwrap_or(user.actor.bureau);
        let root = match &query.bureau {
            Some(text) => api::parse_bureau(&regions, "bureau", text)?,
            None => own,
        };
        if !regions.is_within(root, own) && !regions.is_within(own, root) {
            return Err(ApiError::Forbidden(format!(
                "bureau {} cannot list the stations of {root}",
                user.actor.bureau
            )));
        }
        let replica = state.store.read();
        let stations = replica
            .ledger
            .units()
            .stations()
            .filter(|station| regions.is_within(station.code, root) || regions.is_within(root, station.code))
            .filter(|station| query.include_closed || station.is_open())
            .map(|station| StationJson::of(&regions, station))
            .collect();
        Ok(StationsJson { stations })
    })())
}

/// `GET /api/v1/stations/{code}`: one station with its history.
pub async fn station(State(state): State<AppState>, headers: HeaderMap, Path(code): Path<String>) -> Response {
    super::json_answer((|| {
        let user = state.users.authenticate(&headers)?;
        let code = station_of_path(&code)?;
        let regions = state.regions();
        let own = user.actor.bureau.county_of_station().unwrap_or(user.actor.bureau);
        if !regions.is_within(code, own) && !regions.is_within(own, code.county_of_station().unwrap_or(code)) {
            return Err(ApiError::Forbidden(format!("bureau {} cannot see station {code}", user.actor.bureau)));
        }
        let replica = state.store.read();
        let station =
            replica.ledger.units().station(code).ok_or_else(|| ApiError::NotFound(format!("station {code}")))?;
        Ok(StationJson::of(&regions, station))
    })())
}

/// Proposes an organisation command once every member reads them.
async fn organise(
    state: AppState,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
    status: StatusCode,
    prepare: impl FnOnce(&AppState, &[u8]) -> Result<OrganisationAction, ApiError>,
) -> Response {
    let feature = Some((FEATURE_ORGANISATION, "stations"));
    handle_write_of_feature(state, uri, headers, body, status, feature, |state, actor, body, _| {
        // The early refusal; the ledger decides who manages which county.
        if actor.role != Role::Command {
            return Err(ApiError::Forbidden(format!("a {} user does not manage stations", actor.role)));
        }
        Ok(Action::Organisation(Box::new(prepare(state, body)?)))
    })
    .await
}

/// `POST /api/v1/stations`.
pub async fn enrol(State(state): State<AppState>, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    organise(state, uri, headers, body, StatusCode::CREATED, |state, body| {
        let request: StationRequest = parse_json(body)?;
        let county = api::parse_bureau(&state.regions(), "county", &request.county)?;
        Ok(OrganisationAction::EnrolStation {
            county,
            number: request.number,
            name: request.name,
            areas: request.areas,
            note: request.note,
        })
    })
    .await
}

pub async fn rename(
    State(state): State<AppState>,
    Path(code): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    organise(state, uri, headers, body, StatusCode::OK, |_, body| {
        let station = station_of_path(&code)?;
        let request: RenameStationRequest = parse_json(body)?;
        Ok(OrganisationAction::RenameStation { station, name: request.name, note: request.note })
    })
    .await
}

pub async fn set_areas(
    State(state): State<AppState>,
    Path(code): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    organise(state, uri, headers, body, StatusCode::OK, |_, body| {
        let station = station_of_path(&code)?;
        let request: StationAreasRequest = parse_json(body)?;
        Ok(OrganisationAction::SetStationAreas { station, areas: request.areas, note: request.note })
    })
    .await
}

pub async fn close(
    State(state): State<AppState>,
    Path(code): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    organise(state, uri, headers, body, StatusCode::OK, |_, body| {
        let station = station_of_path(&code)?;
        let request: StationNoteRequest = parse_json(body)?;
        Ok(OrganisationAction::CloseStation { station, note: request.note })
    })
    .await
}

pub async fn reopen(
    State(state): State<AppState>,
    Path(code): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    organise(state, uri, headers, body, StatusCode::OK, |_, body| {
        let station = station_of_path(&code)?;
        let request: StationNoteRequest = parse_json(body)?;
        Ok(OrganisationAction::ReopenStation { station, note: request.note })
    })
    .await
}
