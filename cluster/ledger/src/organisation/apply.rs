//! The organisation's commands and how the ledger applies them.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::people::{
    check_login, check_password_phc, check_person_name, check_roles, inspector_key, Person, PersonChange, PersonEvent,
    PersonId, PersonRole, PEOPLE_MAX, PERSON_HISTORY_MAX,
};
use super::{check_areas, check_name, Station, UnitChange, UnitEvent, Units, UNIT_HISTORY_MAX};
use crate::bureau::{BureauCode, RegionLevel, Regions, STATIONS_MAX, STATION_NUMBER_MAX};
use crate::command::{conflict, Actor, Applied, CommandResult, ConflictCode, Rejection, Role};
use crate::validate;
use crate::Ledger;

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
    /// A new account (the password already hashed by the node).
    CreatePerson {
        login: String,
        name: String,
        unit: BureauCode,
        roles: Vec<PersonRole>,
        password_phc: String,
    },
    /// A change of name or roles (`None`: unchanged). Roles changed end the person's sessions.
    UpdatePerson {
        person: PersonId,
        name: Option<String>,
        roles: Option<Vec<PersonRole>>,
        note: String,
    },
    /// A new password, set by a manager (reset) or by the person themself; ends their sessions.
    SetPassword {
        person: PersonId,
        password_phc: String,
        note: String,
    },
    /// Disabled: the person signs in and acts no more, and their sessions end.
    DisablePerson {
        person: PersonId,
        note: String,
    },
    EnablePerson {
        person: PersonId,
        note: String,
    },
    /// The person signs out everywhere: every session of theirs ends.
    SignOut {
        person: PersonId,
    },
    /// The person is the directory's inspector `inspector` (for good).
    LinkInspector {
        person: PersonId,
        inspector: String,
    },
}

/// What an organisation command recorded: the station or the account as it stands after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrganisationRecord {
    Station(Station),
    Person(Arc<Person>),
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
            OrganisationAction::CreatePerson { .. }
            | OrganisationAction::UpdatePerson { .. }
            | OrganisationAction::SetPassword { .. }
            | OrganisationAction::DisablePerson { .. }
            | OrganisationAction::EnablePerson { .. }
            | OrganisationAction::SignOut { .. }
            | OrganisationAction::LinkInspector { .. } => {
                unreachable!("accounts are the ledger's records (`Ledger::apply_organisation`)")
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

impl Ledger {
    /// Applies an organisation command: stations are the units' (in the core), accounts are
    /// records.
    pub(crate) fn apply_organisation(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        action: &OrganisationAction,
    ) -> CommandResult {
        let record = match action {
            OrganisationAction::EnrolStation { .. }
            | OrganisationAction::RenameStation { .. }
            | OrganisationAction::SetStationAreas { .. }
            | OrganisationAction::CloseStation { .. }
            | OrganisationAction::ReopenStation { .. } => {
                let regions = self.reference.regions().clone();
                self.units.apply(&regions, stamp_ms, actor, action)?
            }
            OrganisationAction::CreatePerson { .. }
            | OrganisationAction::UpdatePerson { .. }
            | OrganisationAction::SetPassword { .. }
            | OrganisationAction::DisablePerson { .. }
            | OrganisationAction::EnablePerson { .. }
            | OrganisationAction::SignOut { .. }
            | OrganisationAction::LinkInspector { .. } => {
                OrganisationRecord::Person(self.apply_person(stamp_ms, actor, action)?)
            }
        };
        Ok(Applied { organisation: Some(record), ..Applied::default() })
    }

    fn apply_person(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        action: &OrganisationAction,
    ) -> Result<Arc<Person>, Rejection> {
        let regions = self.regions();
        validate::actor(actor, &regions)?;
        let event = |change: PersonChange, note: &str| PersonEvent {
            at_ms: stamp_ms,
            by: actor.user.clone(),
            change,
            note: note.to_owned(),
        };
        if let OrganisationAction::CreatePerson { login, name, unit, roles, password_phc } = action {
            check_login(login).map_err(|reason| invalid("login", reason))?;
            check_person_name(name).map_err(|reason| invalid("name", reason))?;
            check_roles(roles).map_err(|reason| invalid("roles", reason))?;
            check_password_phc(password_phc).map_err(|reason| invalid("password", reason))?;
            if !regions.is_active(*unit) {
                return Err(invalid("unit", format!("{unit} is not an active bureau or station")));
            }
            self.may_manage_people(actor, *unit, roles)?;
            if let Some(holder) = self.person_of_login(login) {
                return Err(conflict(ConflictCode::LoginTaken, format!("{login} is the login of person {holder}")));
            }
            if self.units.next_person_id > PEOPLE_MAX {
                return Err(Rejection::LimitReached(format!("{PEOPLE_MAX} accounts")));
            }
            let id = PersonId(self.units.next_person_id);
            self.units.next_person_id += 1;
            let person = Person {
                id,
                login: login.clone(),
                name: name.clone(),
                unit: *unit,
                roles: roles.clone(),
                enabled: true,
                password_phc: password_phc.clone(),
                epoch: 0,
                created_at_ms: stamp_ms,
                inspector: None,
                history: vec![event(PersonChange::Created, "")],
            };
            self.insert_login(login, id);
            return Ok(self.save_person(None, person));
        }
        let id = match action {
            OrganisationAction::UpdatePerson { person, .. }
            | OrganisationAction::SetPassword { person, .. }
            | OrganisationAction::DisablePerson { person, .. }
            | OrganisationAction::EnablePerson { person, .. }
            | OrganisationAction::SignOut { person }
            | OrganisationAction::LinkInspector { person, .. } => *person,
            _ => unreachable!("station commands and creation are handled above"),
        };
        let before = self.person(id).ok_or_else(|| Rejection::NoSuch(format!("person {id}")))?;
        let acting_self = actor.person().is_some_and(|(who, _)| who == id);
        let mut person = (*before).clone();
        match action {
            OrganisationAction::UpdatePerson { name, roles, note, .. } => {
                validate::note(note, false)?;
                if let Some(name) = name {
                    check_person_name(name).map_err(|reason| invalid("name", reason))?;
                }
                if let Some(roles) = roles {
                    check_roles(roles).map_err(|reason| invalid("roles", reason))?;
                    self.departments.check_link(roles, person.inspector.as_deref())?;
                }
                self.may_manage_people(actor, person.unit, roles.as_deref().unwrap_or(&[]))?;
                if acting_self && roles.is_some() {
                    return Err(Rejection::Forbidden("nobody changes their own roles".into()));
                }
                let renamed = name.as_ref().filter(|name| **name != person.name);
                let new_roles = roles.as_ref().filter(|roles| **roles != person.roles);
                if renamed.is_none() && new_roles.is_none() {
                    return Err(Rejection::NothingToRecord(format!("person {id} is so already")));
                }
                if let Some(name) = renamed {
                    let from = std::mem::replace(&mut person.name, name.clone());
                    record_change(&mut person, event(PersonChange::Renamed { from }, note));
                }
                if let Some(roles) = new_roles {
                    let from = std::mem::replace(&mut person.roles, roles.clone());
                    record_change(&mut person, event(PersonChange::RolesChanged { from }, note));
                    person.epoch += 1;
                }
            }
            OrganisationAction::SetPassword { password_phc, note, .. } => {
                validate::note(note, false)?;
                check_password_phc(password_phc).map_err(|reason| invalid("password", reason))?;
                if !acting_self {
                    self.may_manage_people(actor, person.unit, &[])?;
                }
                person.password_phc = password_phc.clone();
                person.epoch += 1;
                record_change(&mut person, event(PersonChange::PasswordSet, note));
            }
            OrganisationAction::DisablePerson { note, .. } => {
                validate::note(note, true)?;
                self.may_manage_people(actor, person.unit, &[])?;
                if acting_self {
                    return Err(Rejection::Forbidden("nobody disables their own account".into()));
                }
                if !person.enabled {
                    return Err(Rejection::NothingToRecord(format!("person {id} is disabled")));
                }
                person.enabled = false;
                person.epoch += 1;
                record_change(&mut person, event(PersonChange::Disabled, note));
            }
            OrganisationAction::EnablePerson { note, .. } => {
                validate::note(note, false)?;
                self.may_manage_people(actor, person.unit, &[])?;
                if person.enabled {
                    return Err(Rejection::NothingToRecord(format!("person {id} is enabled")));
                }
                if !regions.is_active(person.unit) {
                    return Err(conflict(ConflictCode::UnitInUse, format!("their unit {} is closed", person.unit)));
                }
                person.enabled = true;
                record_change(&mut person, event(PersonChange::Enabled, note));
            }
            OrganisationAction::LinkInspector { inspector, .. } => {
                self.may_manage_people(actor, person.unit, &[])?;
                self.departments.check_link(&person.roles, Some(inspector))?;
                let found = self.programme.inspector(inspector).filter(|i| i.active).ok_or_else(|| {
                    invalid("inspector", format!("{inspector} is no active inspector of the directory"))
                })?;
                let of_unit = found.bureau == person.unit || person.unit.county_of_station() == Some(found.bureau);
                if !of_unit {
                    let reason =
                        format!("inspector {inspector} belongs to {}, not to {}'s unit", found.bureau, person.name);
                    return Err(invalid("inspector", reason));
                }
                let key = inspector_key(inspector);
                if person.inspector.is_some() || self.person_of_login(&key).is_some() {
                    let reason = format!("inspector {inspector} or person {id} is linked already");
                    return Err(conflict(ConflictCode::InspectorLinked, reason));
                }
                person.inspector = Some(inspector.clone());
                let linked = PersonChange::InspectorLinked { inspector: inspector.clone() };
                record_change(&mut person, event(linked, ""));
                self.insert_login(&key, id);
            }
            OrganisationAction::SignOut { .. } => {
                if !acting_self {
                    return Err(Rejection::Forbidden("a person signs out only themself".into()));
                }
                // Not in the history: it changes nothing but the sessions.
                person.epoch += 1;
            }
            _ => unreachable!("handled above"),
        }
        Ok(self.save_person(Some(&before), person))
    }

    /// May `actor` manage the accounts of `unit`, granting `roles`? A command centre (users
    /// file) over the unit may grant any role; a person who is a dispatcher or holds the
    /// accounts role over it may grant the roles of a unit's staff, and dispatcher or accounts
    /// only when they hold it themself.
    fn may_manage_people(&self, actor: &Actor, unit: BureauCode, roles: &[PersonRole]) -> Result<(), Rejection> {
        let over = self.regions_ref().is_within(unit, actor.bureau);
        let manager = actor.person().and_then(|(id, _)| self.person(id));
        let allowed = match (&manager, actor.role) {
            (None, Role::Command) => over,
            (Some(manager), _) if manager.has(PersonRole::Accounts) || manager.has(PersonRole::Dispatcher) => {
                let privileged = [PersonRole::Dispatcher, PersonRole::Accounts];
                over && roles.iter().all(|role| !privileged.contains(role) || manager.has(*role))
            }
            _ => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(Rejection::Forbidden(format!("{} does not manage these accounts of {unit}", actor.user)))
        }
    }
}

/// Keeps the creation and the latest changes (see `Person::history`).
fn record_change(person: &mut Person, event: PersonEvent) {
    if person.history.len() >= PERSON_HISTORY_MAX {
        person.history.remove(1);
    }
    person.history.push(event);
}
