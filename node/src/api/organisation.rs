//! The JSON of the organisation below the region tree: the stations (市场监管所) of the county
//! bureaus.

use ledger::organisation::{Station, UnitChange, UnitEvent};
use ledger::Regions;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::region_name;
use super::time::format_ms;

/// `POST /api/v1/stations`: enrol a station of a county bureau.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StationRequest {
    #[schemars(schema_with = "crate::api::schema::region_code")]
    pub county: String,
    /// The station's number within the county (1-999); absent: the lowest never given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u32>,
    pub name: String,
    /// The streets and towns it covers (覆盖区域).
    #[serde(default)]
    pub areas: Vec<String>,
    #[serde(default)]
    pub note: String,
}

/// `POST /api/v1/stations/{code}/rename`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameStationRequest {
    pub name: String,
    #[serde(default)]
    pub note: String,
}

/// `POST /api/v1/stations/{code}/areas`: the whole list of areas it covers from now on.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StationAreasRequest {
    pub areas: Vec<String>,
    #[serde(default)]
    pub note: String,
}

/// `POST /api/v1/stations/{code}/close` (with the reason) and `/reopen`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StationNoteRequest {
    #[serde(default)]
    pub note: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct StationJson {
    /// Nine digits: the county's code and the station's number.
    pub code: String,
    pub name: String,
    pub county: String,
    pub county_name: String,
    pub areas: Vec<String>,
    pub opened_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<String>,
    pub history: Vec<UnitEventJson>,
}

/// One change of a station.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct UnitEventJson {
    pub at: String,
    pub by: String,
    /// `enrolled`, `renamed`, `areas_changed`, `closed` or `reopened`.
    pub change: String,
    /// The name before a rename, or the areas before a change of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    pub note: String,
}

/// `GET /api/v1/stations`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct StationsJson {
    pub stations: Vec<StationJson>,
}

impl StationJson {
    pub fn of(regions: &Regions, station: &Station) -> StationJson {
        StationJson {
            code: station.code.to_string(),
            name: station.name.clone(),
            county: station.county().to_string(),
            county_name: region_name(regions, station.county()),
            areas: station.areas.clone(),
            opened_at: format_ms(station.opened_at_ms),
            closed_at: station.closed_at_ms.map(format_ms),
            history: station.history.iter().map(UnitEventJson::of).collect(),
        }
    }
}

impl UnitEventJson {
    fn of(event: &UnitEvent) -> UnitEventJson {
        let before = match &event.change {
            UnitChange::Renamed { from } => Some(from.clone()),
            UnitChange::AreasChanged { from } => Some(from.join("、")),
            UnitChange::Enrolled | UnitChange::Closed | UnitChange::Reopened => None,
        };
        UnitEventJson {
            at: format_ms(event.at_ms),
            by: event.by.clone(),
            change: event.change.as_str().to_owned(),
            before,
            note: event.note.clone(),
        }
    }
}
