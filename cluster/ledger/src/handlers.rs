//! Handling by people: who in the working unit takes a task (认领), who the head names as its
//! lead and supporting handlers (主办/协办), the lead giving it back (退回本单位), and the
//! assignee county handing it down to one of its stations (下派). The unit's deadlines do not
//! change: the assignee stays the bureau its dispatcher holds to them.
//!
//! The rules are the ledger's (every replica decides them alike, from the accounts as they
//! stand): a person acts only on their own unit's task; a claim is by a handler or head of the
//! unit; an assignment by the unit's head names enabled handlers of the unit; on a task with a
//! lead, the lead (or the head) completes, asks for more time, pauses and resumes, and the
//! supporting handlers report too. Machine tokens of the users file act as the unit's desk:
//! they assign, release and hand down, never claim.

use std::sync::Arc;

use crate::bureau::BureauCode;
use crate::command::{Actor, Rejection, Transition};
use crate::organisation::{Person, PersonId, PersonRole};
use crate::policy::TaskAction;
use crate::task::{HandlerRef, Task};
use crate::Ledger;

/// Supporting handlers of one task at most (协办人: a few in practice).
pub const SUPPORTING_HANDLERS_MAX: usize = 8;

/// The handlers a change leaves: the station worked at, the lead, the supporting handlers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NewHandlers {
    pub unit: Option<BureauCode>,
    pub lead: Option<HandlerRef>,
    pub supporting: Vec<HandlerRef>,
}

fn handler_ref(person: &Person) -> HandlerRef {
    HandlerRef { id: person.id, name: person.name.clone() }
}

impl Ledger {
    /// The acting person's account, when a person acts (`Ledger::apply` checked it).
    fn acting_person(&self, actor: &Actor) -> Option<Arc<Person>> {
        actor.person().and_then(|(id, _)| self.person(id))
    }

    /// Whether `person` heads the unit working `task` (or the assignee county above it).
    fn heads(person: &Person, task: &Task) -> bool {
        person.has(PersonRole::Head)
            && (Some(person.unit) == task.unit() || Some(person.unit) == task.handling.assignee_bureau)
    }

    /// May `actor` take `action` on `task` as a person of its unit, and what do the task's
    /// handlers become? `None`: they do not change. Called after the policy said the actor
    /// stands on the action's side.
    pub(crate) fn handlers_after(
        &self,
        actor: &Actor,
        task: &Task,
        transition: &Transition,
    ) -> Result<Option<NewHandlers>, Rejection> {
        let person = self.acting_person(actor);
        let refused = |why: &str| Err(Rejection::Forbidden(format!("{}: {why}", actor.user)));
        let unit = task.unit();
        let current = &task.field_work.handlers;
        let cleared = |unit: Option<BureauCode>| NewHandlers { unit, lead: None, supporting: Vec::new() };
        // A claim or assignment names people of the working unit, or of the drawn team.
        let of_unit = |person: &Person| Some(person.unit) == unit || current.on_team(person.id);
        let is_lead = |person: &Person| current.lead.as_ref().is_some_and(|lead| lead.id == person.id);
        match transition {
            Transition::Claim => {
                let Some(person) = person else { return refused("only a person claims a task") };
                if !of_unit(&person) || !(person.has(PersonRole::Handler) || person.has(PersonRole::Head)) {
                    return refused("a task is claimed by a handler of the unit working it");
                }
                let supporting = current.supporting.iter().filter(|s| s.id != person.id).cloned().collect();
                Ok(Some(NewHandlers { unit: current.unit, lead: Some(handler_ref(&person)), supporting }))
            }
            Transition::Assign { lead, supporting } => {
                if let Some(person) = &person {
                    if !Ledger::heads(person, task) {
                        return refused("the unit's head assigns its tasks");
                    }
                }
                if supporting.len() > SUPPORTING_HANDLERS_MAX {
                    return Err(Rejection::LimitReached(format!("{SUPPORTING_HANDLERS_MAX} supporting handlers")));
                }
                let named = std::iter::once(lead).chain(supporting);
                let mut seen: Vec<PersonId> = Vec::new();
                let mut refs = Vec::new();
                for id in named {
                    if seen.contains(id) {
                        return Err(invalid("supporting", format!("person {id} is named twice")));
                    }
                    seen.push(*id);
                    let handler = self
                        .person(*id)
                        .filter(|p| p.enabled && Some(p.unit) == unit)
                        .filter(|p| p.has(PersonRole::Handler) || p.has(PersonRole::Head))
                        .ok_or_else(|| {
                            invalid("lead", format!("person {id} is no enabled handler of the unit working the task"))
                        })?;
                    refs.push(handler_ref(&handler));
                }
                let lead = refs.remove(0);
                Ok(Some(NewHandlers { unit: current.unit, lead: Some(lead), supporting: refs }))
            }
            Transition::Release => {
                if let Some(person) = &person {
                    if !is_lead(person) && !Ledger::heads(person, task) {
                        return refused("the lead or the unit's head gives a task back");
                    }
                }
                Ok(Some(cleared(current.unit)))
            }
            Transition::HandDown { unit: target } => {
                let Some(assignee) = task.handling.assignee_bureau else {
                    return refused("only a dispatched task is handed down");
                };
                if let Some(person) = &person {
                    let manages = person.has(PersonRole::Head) || person.has(PersonRole::Dispatcher);
                    if person.unit != assignee || !manages {
                        return refused("the assignee's head hands its tasks down");
                    }
                }
                let to_station = target.county_of_station() == Some(assignee);
                if *target != assignee && !to_station {
                    return Err(invalid("unit", format!("{target} is no station of the assignee {assignee}")));
                }
                if to_station && !self.regions_ref().is_active(*target) {
                    return Err(invalid("unit", format!("{target} is not an open station")));
                }
                if Some(*target) == unit {
                    return Err(Rejection::NothingToRecord(format!("the task is worked at {target} already")));
                }
                Ok(Some(cleared(to_station.then_some(*target))))
            }
            // A new assignee, or the task given back: its handlers were the old unit's.
            Transition::Dispatch { .. } | Transition::Decline if !current.is_empty() => Ok(Some(cleared(None))),
            other => {
                // A drawn inspection with a team: only the team enters its result (谁抽查、谁录入).
                let team = &current.team;
                // An on-site record is signed by a person; on a drawn inspection, one of its team.
                if other.action() == TaskAction::RecordOnSite {
                    let Some(person) = &person else {
                        return refused("an on-site record is made by a person signed in with their own account");
                    };
                    if task.inspection.is_some() && !team.is_empty() && !current.on_team(person.id) {
                        return refused("only the drawn team records an inspection on site");
                    }
                }
                if let (Some(person), TaskAction::Complete) = (&person, other.action()) {
                    if task.inspection.is_some() && !team.is_empty() && !current.on_team(person.id) {
                        return refused("only the drawn team enters an inspection's result");
                    }
                }
                // On a task with a lead, its lead (and the head) works it; supporting handlers
                // report too. Others of the unit see it and leave it.
                if let (Some(person), Some(_)) = (&person, &current.lead) {
                    let named = is_lead(person)
                        || Ledger::heads(person, task)
                        || current.on_team(person.id)
                        || (matches!(other.action(), TaskAction::Feedback | TaskAction::RecordOnSite)
                            && current.names(person.id));
                    let lead_work = matches!(
                        other.action(),
                        TaskAction::Feedback
                            | TaskAction::RecordOnSite
                            | TaskAction::Complete
                            | TaskAction::RequestExtension
                            | TaskAction::Pause
                            | TaskAction::Resume
                    );
                    if lead_work && !named {
                        return refused("this task is its lead handler's");
                    }
                }
                Ok(None)
            }
        }
    }
}

fn invalid(field: &str, reason: String) -> Rejection {
    Rejection::Invalid { field: field.into(), reason }
}
