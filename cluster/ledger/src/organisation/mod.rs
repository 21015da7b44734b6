//! The organisation below the region tree: the market-supervision stations (市场监管所) of the
//! county bureaus, which do most of a province's field work.
//!
//! A station is a unit of its county bureau, not a region of GB/T 2260: its county (or a bureau
//! above) enrols it through the log, names it and the streets and towns it covers, renames it,
//! closes it and reopens it; nothing is ever removed, so a closed station's code stays known
//! for the tasks that name it, and every change stays in its history. The ledger decides with
//! the region table and its stations together (`Units::table`): a station is a region of the
//! level `Station` under its county, so dispatch, lists, roll-ups, access and escalation treat
//! it as they treat any bureau.
//!
//! Stations are few (a province has about 1,600) and read by every check, so they are kept in
//! the ledger's core, bounded by `STATIONS_MAX`.

mod apply;
mod people;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::bureau::{BureauCode, Region, RegionLevel, Regions, REGION_NAME_CHARS_MAX, STATIONS_MAX};

pub use apply::{OrganisationAction, OrganisationRecord};
pub use people::{
    check_login, check_password_phc, check_person_name, check_roles, inspector_key, inspector_of_key,
    person_of_actor_name, Person, PersonChange, PersonEvent, PersonId, PersonRole, LOGIN_CHARS_MAX, LOGIN_CHARS_MIN,
    PASSWORD_PHC_CHARS_MAX, PEOPLE_MAX, PERSON_HISTORY_MAX, PERSON_NAME_CHARS_MAX,
};

/// The streets and towns (街道/镇) a station covers, at most.
pub const STATION_AREAS_MAX: usize = 16;
/// An area's name, in characters.
pub const AREA_CHARS_MAX: usize = 32;
/// Changes kept per station: enrolment, renames, closures; a station changes a few times in its
/// life, so the bound is reached only by a runaway client.
pub const UNIT_HISTORY_MAX: usize = 64;

/// The units below the region tree, and the table the ledger decides with (the region table
/// with the stations put in).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "UnitsStored", into = "UnitsStored")]
pub struct Units {
    stations: BTreeMap<BureauCode, Station>,
    /// The number the next account gets (people are records: `Ledger::person`); accounts are
    /// never removed, so the group holds this less one.
    next_person_id: u64,
    /// Derived: the region table and the stations. Set by `derive_table` whenever either
    /// changes; the core does not carry it.
    table: Arc<Regions>,
}

#[derive(Clone, Serialize, Deserialize)]
struct UnitsStored {
    stations: BTreeMap<BureauCode, Station>,
    next_person_id: u64,
}

impl Default for Units {
    fn default() -> Units {
        Units { stations: BTreeMap::new(), next_person_id: 1, table: Regions::compiled_shared().clone() }
    }
}

impl TryFrom<UnitsStored> for Units {
    type Error = String;

    /// A core read from outside is checked as it is decoded; whether the stations fit the
    /// region table is checked when the table is derived (`Ledger::from_core`).
    fn try_from(stored: UnitsStored) -> Result<Units, String> {
        if stored.stations.len() > STATIONS_MAX {
            return Err(format!("more than {STATIONS_MAX} stations"));
        }
        for (code, station) in &stored.stations {
            if *code != station.code {
                return Err(format!("station {} filed under {code}", station.code));
            }
            station.check()?;
        }
        if stored.next_person_id == 0 || stored.next_person_id > PEOPLE_MAX + 1 {
            return Err(format!("the account counter is 1 to {}", PEOPLE_MAX + 1));
        }
        Ok(Units {
            stations: stored.stations,
            next_person_id: stored.next_person_id,
            table: Regions::compiled_shared().clone(),
        })
    }
}

impl From<Units> for UnitsStored {
    fn from(units: Units) -> UnitsStored {
        UnitsStored { stations: units.stations, next_person_id: units.next_person_id }
    }
}

/// A market-supervision station of a county bureau.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Station {
    /// The county's code and the station's number (`440106004`).
    pub code: BureauCode,
    pub name: String,
    /// The streets and towns it covers (覆盖区域), as the county names them.
    pub areas: Vec<String>,
    pub opened_at_ms: u64,
    /// Closed (撤销): its code stays for the tasks that name it and is never given again.
    pub closed_at_ms: Option<u64>,
    /// Every change, oldest first; the first is the enrolment.
    pub history: Vec<UnitEvent>,
}

/// One change of a station, with who made it and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitEvent {
    pub at_ms: u64,
    pub by: String,
    pub change: UnitChange,
    pub note: String,
}

/// What changed. Variants are encoded by their position: new ones go last.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnitChange {
    Enrolled,
    Renamed { from: String },
    AreasChanged { from: Vec<String> },
    Closed,
    Reopened,
}

impl UnitChange {
    /// The word the API uses.
    pub fn as_str(&self) -> &'static str {
        match self {
            UnitChange::Enrolled => "enrolled",
            UnitChange::Renamed { .. } => "renamed",
            UnitChange::AreasChanged { .. } => "areas_changed",
            UnitChange::Closed => "closed",
            UnitChange::Reopened => "reopened",
        }
    }
}

impl Station {
    pub fn is_open(&self) -> bool {
        self.closed_at_ms.is_none()
    }

    /// The county bureau the station belongs to.
    pub fn county(&self) -> BureauCode {
        self.code.county_of_station().expect("a station's code is a station code (checked)")
    }

    /// The station as a region of the table the ledger decides with.
    fn region(&self) -> Region {
        Region {
            code: self.code,
            name: self.name.clone(),
            level: RegionLevel::Station,
            parent: self.code.county_of_station(),
            retired: !self.is_open(),
        }
    }

    /// The invariants of one station, on its own.
    fn check(&self) -> Result<(), String> {
        let code = self.code;
        if !code.is_station() {
            return Err(format!("{code} is not a station code"));
        }
        check_name(&self.name).map_err(|reason| format!("station {code}: {reason}"))?;
        check_areas(&self.areas).map_err(|reason| format!("station {code}: {reason}"))?;
        if self.history.is_empty() || self.history.len() > UNIT_HISTORY_MAX {
            return Err(format!("station {code}: 1 to {UNIT_HISTORY_MAX} changes in its history"));
        }
        if self.history[0].change != UnitChange::Enrolled || self.history[0].at_ms != self.opened_at_ms {
            return Err(format!("station {code}: its history begins with its enrolment"));
        }
        if self.history.windows(2).any(|pair| pair[0].at_ms > pair[1].at_ms) {
            return Err(format!("station {code}: its history is out of order"));
        }
        let closed = self.history.iter().fold(false, |closed, event| match event.change {
            UnitChange::Closed => true,
            UnitChange::Reopened => false,
            _ => closed,
        });
        if closed != self.closed_at_ms.is_some() {
            return Err(format!("station {code}: open or closed otherwise than its history says"));
        }
        Ok(())
    }
}

/// A station's name: 1 to `REGION_NAME_CHARS_MAX` printable characters, as a region's.
fn check_name(name: &str) -> Result<(), String> {
    let chars = name.chars().count();
    if name.trim().is_empty() || chars > REGION_NAME_CHARS_MAX || name.chars().any(char::is_control) {
        return Err(format!("a name of 1 to {REGION_NAME_CHARS_MAX} printable characters"));
    }
    Ok(())
}

/// A station's areas: at most `STATION_AREAS_MAX`, each named once, 1 to `AREA_CHARS_MAX`
/// printable characters.
fn check_areas(areas: &[String]) -> Result<(), String> {
    if areas.len() > STATION_AREAS_MAX {
        return Err(format!("at most {STATION_AREAS_MAX} areas"));
    }
    for (position, area) in areas.iter().enumerate() {
        let chars = area.chars().count();
        if area.trim().is_empty() || chars > AREA_CHARS_MAX || area.chars().any(char::is_control) {
            return Err(format!("an area of 1 to {AREA_CHARS_MAX} printable characters"));
        }
        if areas[..position].contains(area) {
            return Err(format!("the area {area} is named twice"));
        }
    }
    Ok(())
}

impl Units {
    /// The table the ledger decides with: the region table and the stations.
    pub fn table(&self) -> &Arc<Regions> {
        &self.table
    }

    /// Puts the stations into `regions` (the region table the ledger adopted) as the table to
    /// decide with. Refused when they do not fit: a station under a code that is no county, or
    /// open under a retired county.
    pub(crate) fn derive_table(&mut self, regions: &Arc<Regions>) -> Result<(), String> {
        self.table = if self.stations.is_empty() {
            regions.clone()
        } else {
            Arc::new(regions.with(self.stations.values().map(Station::region))?)
        };
        Ok(())
    }

    /// The invariants `check_core` adds: the table is the region table with the stations, and
    /// no station changed after the ledger's last entry (decoding checked the rest).
    pub(crate) fn check(&self, regions: &Arc<Regions>, stamp_max_ms: u64) -> Result<(), String> {
        let mut derived = self.clone();
        derived.derive_table(regions)?;
        if derived.table != self.table {
            return Err("the table decided with is not the region table with the stations".into());
        }
        for station in self.stations.values() {
            if station.history.last().is_some_and(|event| event.at_ms > stamp_max_ms) {
                return Err(format!("station {} changed after the ledger's last entry", station.code));
            }
        }
        Ok(())
    }

    /// Accounts held (every account ever made: none is removed).
    pub fn person_count(&self) -> u64 {
        self.next_person_id - 1
    }

    /// The number the next account gets: every account's number is below it.
    pub fn next_person_id(&self) -> PersonId {
        PersonId(self.next_person_id)
    }

    pub fn station(&self, code: BureauCode) -> Option<&Station> {
        self.stations.get(&code)
    }

    /// Every station, closed ones included, in code order.
    pub fn stations(&self) -> impl Iterator<Item = &Station> {
        self.stations.values()
    }

    /// The stations of `county`, closed ones included, in code order.
    pub fn stations_of(&self, county: BureauCode) -> impl Iterator<Item = &Station> {
        let first = BureauCode::station(county, 1);
        let last = BureauCode::station(county, crate::bureau::STATION_NUMBER_MAX);
        let range = first.zip(last);
        range.into_iter().flat_map(move |(first, last)| self.stations.range(first..=last).map(|(_, station)| station))
    }
}

/// A ledger core of store format 4 (0.4.0: written before stations) in this build's format:
/// the units are the core's last field, so a format 4 core is this one's first bytes, and a
/// ledger with no stations ends with the encoding of `Units::default()`. Whether the result
/// decodes is the caller's check, as for any core read from outside.
pub fn core_of_format_4(core: &[u8]) -> Vec<u8> {
    let no_units = crate::codec::encode(&Units::default()).expect("the empty units encode");
    [core, no_units.as_slice()].concat()
}
