//! The JSON of the organisation: the stations (市场监管所) of the county bureaus, people's
//! accounts and their sessions.

use ledger::organisation::{Person, PersonChange, PersonEvent, Station, UnitChange, UnitEvent};
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

/// An account as clients see it (never its password hash).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct PersonJson {
    pub id: u64,
    pub login: String,
    pub name: String,
    pub unit: String,
    pub unit_name: String,
    /// `dispatcher`, `head`, `handler`, `leadership`, `accounts`.
    pub roles: Vec<String>,
    pub enabled: bool,
    pub created_at: String,
    /// The inspector of the programme's directory this person is, once linked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inspector: Option<String>,
    /// The latest changes, oldest first (on a single account's read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<PersonEventJson>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct PersonEventJson {
    pub at: String,
    pub by: String,
    /// `created`, `renamed`, `roles_changed`, `password_set`, `disabled`, `enabled`.
    pub change: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    pub note: String,
}

impl PersonJson {
    pub fn of(regions: &Regions, person: &Person, with_history: bool) -> PersonJson {
        PersonJson {
            id: person.id.0,
            login: person.login.clone(),
            name: person.name.clone(),
            unit: person.unit.to_string(),
            unit_name: region_name(regions, person.unit),
            roles: person.roles.iter().map(|role| role.as_str().to_owned()).collect(),
            enabled: person.enabled,
            created_at: format_ms(person.created_at_ms),
            inspector: person.inspector.clone(),
            history: if with_history { person.history.iter().map(PersonEventJson::of).collect() } else { Vec::new() },
        }
    }
}

impl PersonEventJson {
    fn of(event: &PersonEvent) -> PersonEventJson {
        let before = match &event.change {
            PersonChange::Renamed { from } => Some(from.clone()),
            PersonChange::RolesChanged { from } => {
                Some(from.iter().map(|role| role.as_str()).collect::<Vec<_>>().join(","))
            }
            PersonChange::InspectorLinked { inspector } => Some(inspector.clone()),
            PersonChange::Created | PersonChange::PasswordSet | PersonChange::Disabled | PersonChange::Enabled => None,
        };
        PersonEventJson {
            at: format_ms(event.at_ms),
            by: event.by.clone(),
            change: event.change.as_str().to_owned(),
            before,
            note: event.note.clone(),
        }
    }
}

/// `GET /api/v1/people`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct PeopleJson {
    pub people: Vec<PersonJson>,
}

/// `POST /api/v1/people`: a new account with its first password.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonRequest {
    pub login: String,
    pub name: String,
    #[schemars(schema_with = "crate::api::schema::unit_code")]
    pub unit: String,
    pub roles: Vec<String>,
    pub password: String,
}

/// `POST /api/v1/people/{id}/rename`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RenamePersonRequest {
    pub name: String,
    #[serde(default)]
    pub note: String,
}

/// `POST /api/v1/people/{id}/roles`: the whole set of roles from now on.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RolesRequest {
    pub roles: Vec<String>,
    #[serde(default)]
    pub note: String,
}

/// `POST /api/v1/people/{id}/password`: a reset by a manager.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    pub password: String,
    #[serde(default)]
    pub note: String,
}

/// `POST /api/v1/people/{id}/disable` (with the reason) and `/enable`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonNoteRequest {
    #[serde(default)]
    pub note: String,
}

/// `POST /api/v1/me/password`: a person changes their own password.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OwnPasswordRequest {
    pub current: String,
    pub new: String,
}

/// `POST /api/v1/sessions`: sign in.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    pub login: String,
    pub password: String,
}

/// A session: its token (sent as `Authorization: Bearer <token>`) and its times.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct SessionJson {
    pub token: String,
    pub expires_at: String,
    /// Renewals (`POST /api/v1/sessions/renew`) extend it up to this time; then sign in again.
    pub renew_until: String,
    pub person: PersonJson,
}

/// `POST /api/v1/people/{id}/inspector`: the person is this inspector of the directory.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkInspectorRequest {
    pub inspector: String,
}
