//! The organisation's commands and how the ledger applies them.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{check_areas, check_name, Station, UnitChange, UnitEvent, Units, UNIT_HISTORY_MAX};
use crate::bureau::{BureauCode, RegionLevel, Regions, STATIONS_MAX, STATION_NUMBER_MAX};
use crate::command::{conflict, Actor, ConflictCode, Rejection, Role};
use crate::validate;

/// A change of the organisation, made by a command centre of the county or above.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrganisationAction {
    /// Enrol a station of `county`: station `number`, or the lowest number never given.
    EnrolStation {
        county: BureauCode,
        number: Option<u32>,
        name: String,
        areas: Vec<String>,
        note: String,
    },
    RenameStation {
        station: BureauCode,
        name: String,
        note: String,
    },
    SetStationAreas {
        station: BureauCode,
        areas: Vec<String>,
        note: String,
    },
    /// Close (撤销) a station, with the reason: new tasks may not name it, old ones keep it.
    CloseStation {
        station: BureauCode,
        note: String,
    },
    ReopenStation {
        station: BureauCode,
        note: String,
    },
}

/// What an organisation command recorded: the station as it stands after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrganisationRecord {
    Station(Station),
}

impl Units {
    /// Applies an organisation command over `regions`, the region table the ledger adopted. A
    /// refusal changes nothing.
    pub(crate) fn apply(
        &mut self,
        regions: &Arc<Regions>,
        stamp_ms: u64,
        actor: &Actor,
        action: &OrganisationAction,
    ) -> Result<OrganisationRecord, Rejection> {
        validate::actor(actor, &self.table)?;
        let event = |change: UnitChange, note: &str| UnitEvent {
            at_ms: stamp_ms,
            by: actor.user.clone(),
            change,
            note: note.to_owned(),
        };
        let (previous, station) = match action {
            OrganisationAction::EnrolStation { county, number, name, areas, note } => {
                validate::note(note, false)?;
                if !self.table.region(*county).is_some_and(|r| r.level == RegionLevel::County && !r.retired) {
                    return Err(invalid("county", format!("{county} is not an active county bureau")));
                }
                self.may_manage(actor, *county)?;
                check_name(name).map_err(|reason| invalid("name", reason))?;
                check_areas(areas).map_err(|reason| invalid("areas", reason))?;
                if self.stations.len() >= STATIONS_MAX {
                    return Err(Rejection::LimitReached(format!("{STATIONS_MAX} stations")));
                }
                if let Some(twin) = self.stations_of(*county).find(|s| s.is_open() && s.name == *name) {
                    let reason = format!("{} is already the name of station {}", name, twin.code);
                    return Err(conflict(ConflictCode::StationExists, reason));
                }
                let code = match number {
                    Some(number) => BureauCode::station(*county, *number)
                        .ok_or_else(|| invalid("number", format!("a station number is 1 to {STATION_NUMBER_MAX}")))?,
                    None => (1..=STATION_NUMBER_MAX)
                        .filter_map(|number| BureauCode::station(*county, number))
                        .find(|code| !self.stations.contains_key(code))
                        .ok_or_else(|| {
                            Rejection::LimitReached(format!("{STATION_NUMBER_MAX} stations of county {county}"))
                        })?,
                };
                if let Some(taken) = self.stations.get(&code) {
                    // Codes are never given twice, also after a closure: old tasks name them.
                    let reason = format!("{code} is station {} (codes are never given again)", taken.name);
                    return Err(conflict(ConflictCode::StationExists, reason));
                }
                let station = Station {
                    code,
                    name: name.clone(),
                    areas: areas.clone(),
                    opened_at_ms: stamp_ms,
                    closed_at_ms: None,
                    history: vec![event(UnitChange::Enrolled, note)],
                };
                (None, station)
            }
            OrganisationAction::RenameStation { station, name, note } => {
                validate::note(note, false)?;
                let mut changed = self.managed_station(actor, *station)?;
                check_name(name).map_err(|reason| invalid("name", reason))?;
                if changed.name == *name {
                    return Err(Rejection::NothingToRecord(format!("station {station} is named {name}")));
                }
                let county = changed.county();
                if let Some(twin) = self.stations_of(county).find(|s| s.is_open() && s.name == *name) {
                    let reason = format!("{} is already the name of station {}", name, twin.code);
                    return Err(conflict(ConflictCode::StationExists, reason));
                }
                let from = std::mem::replace(&mut changed.name, name.clone());
                push(&mut changed, event(UnitChange::Renamed { from }, note))?;
                (Some(self.stations[station].clone()), changed)
            }
            OrganisationAction::SetStationAreas { station, areas, note } => {
                validate::note(note, false)?;
                let mut changed = self.managed_station(actor, *station)?;
                check_areas(areas).map_err(|reason| invalid("areas", reason))?;
                if changed.areas == *areas {
                    return Err(Rejection::NothingToRecord(format!("station {station} covers these areas")));
                }
                let from = std::mem::replace(&mut changed.areas, areas.clone());
                push(&mut changed, event(UnitChange::AreasChanged { from }, note))?;
                (Some(self.stations[station].clone()), changed)
            }
            OrganisationAction::CloseStation { station, note } => {
                validate::note(note, true)?;
                let mut changed = self.managed_station(actor, *station)?;
                if !changed.is_open() {
                    return Err(Rejection::NothingToRecord(format!("station {station} is closed")));
                }
                changed.closed_at_ms = Some(stamp_ms);
                push(&mut changed, event(UnitChange::Closed, note))?;
                (Some(self.stations[station].clone()), changed)
            }
            OrganisationAction::ReopenStation { station, note } => {
                validate::note(note, false)?;
                let mut changed = self.managed_station(actor, *station)?;
                if changed.is_open() {
                    return Err(Rejection::NothingToRecord(format!("station {station} is open")));
                }
                if !self.table.is_active(changed.county()) {
                    let reason = format!("its county {} is retired", changed.county());
                    return Err(conflict(ConflictCode::UnitInUse, reason));
                }
                if let Some(twin) = self.stations_of(changed.county()).find(|s| s.is_open() && s.name == changed.name) {
                    let reason = format!("{} is now the name of station {}", changed.name, twin.code);
                    return Err(conflict(ConflictCode::StationExists, reason));
                }
                changed.closed_at_ms = None;
                push(&mut changed, event(UnitChange::Reopened, note))?;
                (Some(self.stations[station].clone()), changed)
            }
        };
        let code = station.code;
        self.stations.insert(code, station.clone());
        if let Err(reason) = self.derive_table(regions) {
            // Checked above, so this does not happen; if it did, nothing changes.
            match previous {
                Some(previous) => self.stations.insert(code, previous),
                None => self.stations.remove(&code),
            };
            self.derive_table(regions).expect("the table derived before this command derives again");
            return Err(invalid("station", reason));
        }
        Ok(OrganisationRecord::Station(station))
    }

    /// A command centre of the county or above manages its stations.
    fn may_manage(&self, actor: &Actor, county: BureauCode) -> Result<(), Rejection> {
        if actor.role != Role::Command {
            return Err(Rejection::Forbidden(format!("a {} user does not manage stations", actor.role)));
        }
        if !self.table.is_within(county, actor.bureau) {
            return Err(Rejection::Forbidden(format!(
                "bureau {} does not manage the stations of {county}",
                actor.bureau
            )));
        }
        Ok(())
    }

    /// A copy of station `code` to change, when `actor` manages it.
    fn managed_station(&self, actor: &Actor, code: BureauCode) -> Result<Station, Rejection> {
        let station = self.stations.get(&code).ok_or_else(|| Rejection::NoSuch(format!("station {code}")))?;
        self.may_manage(actor, station.county())?;
        Ok(station.clone())
    }
}

fn push(station: &mut Station, event: UnitEvent) -> Result<(), Rejection> {
    if station.history.len() >= UNIT_HISTORY_MAX {
        return Err(Rejection::LimitReached(format!("{UNIT_HISTORY_MAX} changes of a station")));
    }
    station.history.push(event);
    Ok(())
}

fn invalid(field: &str, reason: impl Into<String>) -> Rejection {
    Rejection::Invalid { field: field.into(), reason: reason.into() }
}
