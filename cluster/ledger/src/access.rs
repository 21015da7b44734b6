//! Who may see and change which task. The same functions serve the API's early refusal and the
//! ledger's authoritative check inside `apply`.

use super::bureau::{BureauCode, Regions};
use super::command::{Actor, Rejection, Role};
use super::task::Task;

/// An operator sees its own unit's tasks (assigned to it, or handed down to it) and, for a
/// county, its stations'; command and leadership users see every task whose origin or assignee
/// lies in their bureau's subtree.
pub fn can_see(regions: &Regions, actor: &Actor, task: &Task) -> bool {
    match actor.role {
        Role::System => true,
        // A peer group acts only through federation messages, which name their tasks.
        Role::Peer | Role::Source => false,
        Role::Operator => operator_units(task).any(|unit| unit == actor.bureau) || on_team(actor, task),
        // Another department's inspector: the joint inspections of their team, nothing else.
        Role::Department => on_team(actor, task),
        Role::Command | Role::Leadership => {
            regions.is_within(task.origin_bureau, actor.bureau)
                || task.handling.assignee_bureau.is_some_and(|assignee| regions.is_within(assignee, actor.bureau))
                || task.handling.escalated_to.iter().any(|bureau| regions.is_within(*bureau, actor.bureau))
        }
    }
}

/// Leadership reads and never writes; machine roles act only through their own actions.
pub fn may_write(actor: &Actor) -> Result<(), Rejection> {
    match actor.role {
        Role::Command | Role::Operator => Ok(()),
        Role::Leadership | Role::System | Role::Peer | Role::Source | Role::Department => {
            Err(Rejection::Forbidden(format!("a {} user does not change tasks", actor.role)))
        }
    }
}

/// May `actor` register a task on behalf of `origin`?
pub fn may_create(regions: &Regions, actor: &Actor, origin: BureauCode) -> Result<(), Rejection> {
    if actor.role != Role::Command {
        return Err(Rejection::Forbidden(format!("a {} user cannot create tasks", actor.role)));
    }
    if !regions.is_within(origin, actor.bureau) {
        return Err(Rejection::Forbidden(format!("bureau {} cannot create tasks for bureau {origin}", actor.bureau)));
    }
    Ok(())
}

/// The units whose operators see a task: its assignee and the station it was handed down to,
/// and the county of each that is a station (a county sees its stations' work; it does not act
/// on it, `policy::stands_on`).
pub fn operator_units(task: &Task) -> impl Iterator<Item = BureauCode> + '_ {
    let own = [task.handling.assignee_bureau, task.field_work.handlers.unit].into_iter().flatten();
    own.flat_map(|unit| [Some(unit), unit.county_of_station()].into_iter().flatten())
}

/// Whether `actor` is a person of the task's drawn team (a station's inspector on a county's
/// inspection sees it and works it).
pub fn on_team(actor: &Actor, task: &Task) -> bool {
    actor.person().is_some_and(|(id, _)| task.field_work.handlers.on_team(id))
}
