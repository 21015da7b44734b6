//! Joint inspections with other departments (部门联合抽查): a government's other departments
//! (tax, health, ecology and environment, emergency management…) registered in the group as
//! organisations, their items on the group's item list, their enforcement inspectors in the
//! inspector directory, and each department's own part of a joint inspection's result.
//!
//! **How a department joins a draw.** A department holds one expertise tag of its own,
//! `dept:<code>` (`department_tag`): its items need it and its inspectors hold it, nobody else
//! may. So the draw's rule that a team covers every item's expertise puts one of the
//! department's inspectors on every inspection its item falls on, with no new rule in the draw;
//! a campaign is joint exactly when it has a department's item, and its pool takes that
//! department's inspectors of the scope whatever the campaign's inspector mode (the mode picks
//! among the bureau's own staff). A department's inspectors are neither the bureau's office nor
//! a station, so they count for neither in the office-and-stations mix (`is_department_inspector`).
//!
//! **Who enters a part.** The department's inspector on the team (谁检查、谁录入), signed in
//! with an account linked to that inspector, enters the department's outcome and summary; the
//! organiser's result (the task's completion) waits for every department whose item the
//! inspection has. The parts are the task's (`FieldWork::department_parts`) and reach the public
//! results with it.
//!
//! A department, once registered, stays: campaigns, items and records name it. Its inspectors
//! stay its own for good (an id is never the bureau's and a department's), so the membership a
//! draw was decided with is the membership a replay sees. The ledger decides the mix by that
//! membership, so a log from before departments replays as it applied; the draw (`draw::select`,
//! and `xietong draw verify` from a proof, which carries no membership) tells a department's
//! inspector by the tag, reserved from the first registration on. A proof from before
//! departments whose pool held a `dept:` tag in the office-and-stations mode would verify
//! differently; no build offered such tags.
//!
//! **Their accounts.** A department's inspector signs in with an account of the role
//! `PersonRole::Department` alone (`Role::Department`), linked to them (`check_link`): it sees
//! the joint inspections of its team and nothing else, and changes nothing but its part.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::item_list::{check_item, of_group_level, ItemList, ItemOrigin, ItemSpec};
use super::{check_inspector, Inspector, ProgrammeRecord, LABEL_CHARS_MAX};
use crate::apply::Ledger;
use crate::command::{conflict, Actor, Applied, CommandResult, ConflictCode, Rejection, Role};
use crate::organisation::PersonRole;
use crate::task::{CompletionOutcome, Task, TaskId, TaskState, TimelineAction};
use crate::validate::{self, invalid};

/// Departments a group registers: a government has about thirty that join joint inspections.
pub const DEPARTMENTS_MAX: usize = 64;
/// A department's code: short, stable, ASCII (it is in every tag and item code of the
/// department).
pub const DEPARTMENT_CODE_CHARS_MIN: usize = 2;
pub const DEPARTMENT_CODE_CHARS_MAX: usize = 16;
/// A department's name as the public reads it (e.g. 国家税务总局广州市税务局).
pub const DEPARTMENT_NAME_CHARS_MAX: usize = 64;
/// A part's summary of what the department found.
pub const PART_SUMMARY_CHARS_MAX: usize = 2_000;
/// Parts one department enters on one inspection: the first, and a few corrections.
pub const PARTS_PER_DEPARTMENT_MAX: usize = 8;
/// Parts one inspection keeps: each of a handful of departments, entering again a few times.
pub const DEPARTMENT_PARTS_PER_TASK_MAX: usize = 64;
/// What a department's expertise tag starts with; reserved for departments once one is
/// registered.
pub const DEPARTMENT_TAG_PREFIX: &str = "dept:";
/// What a department's item codes start with, before the department's code.
pub const DEPARTMENT_ITEM_PREFIX: &str = "D-";

// Every department's tag fits an expertise label.
const _: () = assert!(DEPARTMENT_TAG_PREFIX.len() + DEPARTMENT_CODE_CHARS_MAX <= LABEL_CHARS_MAX);

/// The expertise tag of department `code`: its items need it, its inspectors hold it.
pub fn department_tag(code: &str) -> String {
    format!("{DEPARTMENT_TAG_PREFIX}{code}")
}

/// The department a tag names, when it is a department's.
pub fn department_of_tag(tag: &str) -> Option<&str> {
    tag.strip_prefix(DEPARTMENT_TAG_PREFIX)
}

/// Whether an inspector is another department's (holds a department's tag): neither the
/// bureau's office nor a station for the office-and-stations mix.
pub fn is_department_inspector(inspector: &Inspector) -> bool {
    inspector.expertise.iter().any(|tag| department_of_tag(tag).is_some())
}

/// The codes of the departments whose tags `items` need, sorted, each once.
pub fn departments_of_items(items: &[super::InspectionItem]) -> Vec<&str> {
    let mut codes: Vec<&str> = items.iter().filter_map(|item| department_of_tag(&item.expertise)).collect();
    codes.sort_unstable();
    codes.dedup();
    codes
}

/// The code an item of department `code` starts with.
pub fn department_item_prefix(code: &str) -> String {
    format!("{DEPARTMENT_ITEM_PREFIX}{code}-")
}

/// A department registered in the group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Department {
    pub code: String,
    pub name: String,
    pub registered_at_ms: u64,
    pub registered_by: String,
}

impl Department {
    pub fn tag(&self) -> String {
        department_tag(&self.code)
    }
}

/// One department's part of a joint inspection's result, as its inspector entered it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepartmentPart {
    pub department: String,
    pub outcome: CompletionOutcome,
    pub summary: String,
    /// The department's inspector on the team who entered it.
    pub inspector: String,
    pub entered_by: String,
    pub at_ms: u64,
}

/// The group's departments and which inspectors are whose (store format 10, the core's last
/// field).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Departments {
    departments: BTreeMap<String, Department>,
    /// Inspector id → the department's code, for every inspector a department enrolled.
    members: BTreeMap<String, String>,
}

/// Commands on the departments (`ProgrammeAction::Departments`); proposed only when every
/// member reads `departments-v1`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DepartmentAction {
    /// A department registered by the group's command centre.
    Register { code: String, name: String },
    /// An item of the department put on the group's item list, with its legal basis.
    ListItem { department: String, item: Box<ItemSpec>, reason: String },
    /// The department's inspectors enrolled in the directory, all or none.
    EnrolInspectors { department: String, inspectors: Vec<Inspector> },
    /// A department's part of a joint inspection's result, by its inspector on the team.
    EnterPart { task: TaskId, outcome: CompletionOutcome, summary: String },
}

/// A ledger core of store format 9 (written before departments) in this build's format: they
/// are the core's last field, so a format 9 core ends where this one's start.
pub fn core_of_format_9(core: &[u8]) -> Vec<u8> {
    let none = crate::codec::encode(&Departments::default()).expect("no departments encode");
    [core, none.as_slice()].concat()
}

impl Departments {
    /// Whether any department is registered: until then no tag or code is reserved, and the
    /// group decides as it did before departments.
    pub fn any(&self) -> bool {
        !self.departments.is_empty()
    }

    pub fn all(&self) -> impl Iterator<Item = &Department> {
        self.departments.values()
    }

    pub fn get(&self, code: &str) -> Option<&Department> {
        self.departments.get(code)
    }

    /// The department inspector `id` belongs to.
    pub fn of_inspector(&self, id: &str) -> Option<&str> {
        self.members.get(id).map(String::as_str)
    }

    /// How many inspectors each department enrolled, in one pass over the members.
    pub fn member_counts(&self) -> BTreeMap<&str, usize> {
        let mut counts = BTreeMap::new();
        for code in self.members.values() {
            *counts.entry(code.as_str()).or_default() += 1;
        }
        counts
    }

    /// The departments of a joint inspection drawn here, in code order: those whose item it has
    /// and whose inspector is on its team (the draw puts one there for each such item), whose
    /// part its result waits for. An inspection another group drew names that group's
    /// inspectors, so none here.
    pub fn of_task(&self, task: &Task) -> Vec<&Department> {
        let Some(inspection) = task.inspection.as_ref().filter(|_| task.received.is_none()) else {
            return Vec::new();
        };
        departments_of_items(&inspection.items)
            .into_iter()
            .filter(|code| inspection.inspectors.iter().any(|id| self.of_inspector(id) == Some(*code)))
            .filter_map(|code| self.departments.get(code))
            .collect()
    }

    /// The departments whose part the inspection's result still waits for.
    pub fn awaited<'a>(&'a self, task: &Task) -> Vec<&'a Department> {
        let parts = &task.field_work.department_parts;
        self.of_task(task).into_iter().filter(|d| !parts.iter().any(|part| part.department == d.code)).collect()
    }

    /// The refusal of an account whose roles and inspector do not go together: a department's
    /// inspector signs in with an account of the department role alone, and that role is held
    /// only by a department's inspector (or an account not linked yet), so the bureau's own
    /// staff never act as a department and a department's never as the bureau.
    pub fn check_link(&self, roles: &[PersonRole], inspector: Option<&str>) -> Result<(), Rejection> {
        let department_role = roles.contains(&PersonRole::Department);
        match inspector.map(|id| (id, self.of_inspector(id))) {
            Some((id, Some(department))) if !department_role => Err(invalid(
                "inspector",
                format!("{id} is department {department}'s inspector: their account has the department role alone"),
            )),
            Some((id, None)) if department_role => {
                Err(invalid("inspector", format!("{id} is the bureau's own inspector, not a department's")))
            }
            _ => Ok(()),
        }
    }

    /// The refusal of a campaign with an item needing a department's tag that is not that
    /// department's item on the list (once departments are registered: before, a tag is text).
    pub fn check_campaign_items(&self, list: &ItemList, spec: &super::CampaignSpec) -> Result<(), Rejection> {
        if !self.any() {
            return Ok(());
        }
        for item in &spec.items {
            let Some(code) = department_of_tag(&item.expertise) else { continue };
            let listed = list.current(&item.code).is_some_and(|listed| {
                listed.origin == ItemOrigin::Department(code.to_owned()) && listed.spec.as_campaign_item() == *item
            });
            if !listed {
                return Err(conflict(
                    ConflictCode::ItemNotListed,
                    format!("{} needs department {code}'s tag but is not its item on the list", item.code),
                ));
            }
        }
        Ok(())
    }

    /// The refusal of an item the list takes as the bureau's own (national or a province's)
    /// that reads like a department's, once departments are registered.
    pub fn check_own_item(&self, item: &ItemSpec) -> Result<(), Rejection> {
        self.check_own_tag(&item.expertise)?;
        if self.any() && item.code.starts_with(DEPARTMENT_ITEM_PREFIX) {
            return Err(invalid(
                "code",
                format!("{}: codes starting {DEPARTMENT_ITEM_PREFIX} are departments'", item.code),
            ));
        }
        Ok(())
    }

    /// The refusal of a tag the bureau's own staff or items may not use once departments are
    /// registered.
    fn check_own_tag(&self, tag: &str) -> Result<(), Rejection> {
        if self.any() && department_of_tag(tag).is_some() {
            return Err(invalid(
                "expertise",
                format!("{tag:?}: tags starting {DEPARTMENT_TAG_PREFIX:?} are departments'"),
            ));
        }
        Ok(())
    }

    /// The refusal of an inspector the bureau enrols as its own who is a department's, or holds
    /// a department's tag.
    pub fn check_own_inspector(&self, inspector: &Inspector) -> Result<(), Rejection> {
        if let Some(department) = self.of_inspector(&inspector.id) {
            return Err(conflict(
                ConflictCode::InspectorEnrolled,
                format!("inspector {} is department {department}'s", inspector.id),
            ));
        }
        inspector.expertise.iter().try_for_each(|tag| self.check_own_tag(tag))
    }
}

impl Departments {
    /// The departments' invariants, for a ledger loaded from outside: each filed under its
    /// code, within the limits, each member an inspector of the directory holding its
    /// department's tag alone, at no station, nobody else holding a registered department's
    /// tag, and every department's item on the list a registered department's.
    pub(crate) fn check(&self, programme: &super::Programme, list: &ItemList) -> Result<(), String> {
        if self.departments.len() > DEPARTMENTS_MAX {
            return Err(format!("more than {DEPARTMENTS_MAX} departments"));
        }
        for (code, department) in &self.departments {
            check_code(code).map_err(|e| format!("department {code}: {e}"))?;
            if *code != department.code {
                return Err(format!("department {} filed as {code}", department.code));
            }
            validate::text("name", &department.name, DEPARTMENT_NAME_CHARS_MAX, true, false)
                .map_err(|e| format!("department {code}: {e}"))?;
        }
        for (id, code) in &self.members {
            let department =
                self.departments.get(code).ok_or_else(|| format!("inspector {id}'s department is unknown"))?;
            let inspector = programme.inspector(id).ok_or_else(|| format!("department member {id} is no inspector"))?;
            if inspector.expertise != [department.tag()] || inspector.station.is_some() {
                return Err(format!("department member {id} holds more than department {code}'s tag"));
            }
        }
        // The tags are the departments': nobody else holds a registered department's.
        for inspector in programme.inspectors() {
            let mut held = inspector.expertise.iter().filter_map(|tag| department_of_tag(tag));
            let borrowed =
                held.any(|code| self.departments.contains_key(code) && self.of_inspector(&inspector.id) != Some(code));
            if borrowed {
                return Err(format!("inspector {} holds a department's tag but is not its", inspector.id));
            }
        }
        for listed in list.items() {
            if let ItemOrigin::Department(code) = &listed.origin {
                if !self.departments.contains_key(code) {
                    return Err(format!("item {} is of department {code}, which is not registered", listed.spec.code));
                }
            }
        }
        Ok(())
    }
}

fn check_code(code: &str) -> Result<(), Rejection> {
    let fits = (DEPARTMENT_CODE_CHARS_MIN..=DEPARTMENT_CODE_CHARS_MAX).contains(&code.len());
    if !fits || !code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err(invalid(
            "code",
            format!("{code:?}: {DEPARTMENT_CODE_CHARS_MIN} to {DEPARTMENT_CODE_CHARS_MAX} of a-z, 0-9 and '-'"),
        ));
    }
    Ok(())
}

impl Ledger {
    pub fn departments(&self) -> &Departments {
        &self.departments
    }

    pub(crate) fn apply_departments(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        action: &DepartmentAction,
    ) -> CommandResult {
        match action {
            DepartmentAction::Register { code, name } => {
                // The node checks that the centre's scope covers the group's; the ledger that it
                // is a province's or a city's command centre.
                self.keeps_departments(actor, "register departments")?;
                check_code(code)?;
                validate::text("name", name, DEPARTMENT_NAME_CHARS_MAX, true, false)?;
                if self.departments.departments.contains_key(code) {
                    return Err(Rejection::NothingToRecord(format!("department {code} is registered already")));
                }
                if self.departments.departments.len() >= DEPARTMENTS_MAX {
                    return Err(Rejection::LimitReached(format!("{DEPARTMENTS_MAX} departments")));
                }
                // The tag becomes the department's: nobody of the bureau may hold it already.
                let tag = department_tag(code);
                if let Some(holder) = self.programme.inspectors.values().find(|i| i.expertise.contains(&tag)) {
                    return Err(conflict(
                        ConflictCode::TagInUse,
                        format!("inspector {} holds the tag {tag} already", holder.id),
                    ));
                }
                if let Some(item) = self.planning.item_list.items().find(|item| item.spec.expertise == tag) {
                    return Err(conflict(
                        ConflictCode::TagInUse,
                        format!("item {} needs the tag {tag} already", item.spec.code),
                    ));
                }
                let named = |campaign: &&std::sync::Arc<super::Campaign>| {
                    campaign.spec.items.iter().any(|item| item.expertise == tag)
                };
                if let Some(campaign) = self.programme.campaigns().find(named) {
                    return Err(conflict(
                        ConflictCode::TagInUse,
                        format!("campaign {} has an item needing the tag {tag} already", campaign.id),
                    ));
                }
                let department = Department {
                    code: code.clone(),
                    name: name.clone(),
                    registered_at_ms: stamp_ms,
                    registered_by: actor.user.clone(),
                };
                self.departments.departments.insert(code.clone(), department.clone());
                Ok(Applied::of_record(ProgrammeRecord::Department(Box::new(department)), Vec::new()))
            }
            DepartmentAction::ListItem { department, item, reason } => {
                let department = self.department(department)?.clone();
                check_item(item)?;
                if item.expertise != department.tag() {
                    return Err(invalid(
                        "expertise",
                        format!("department {}'s items need {}", department.code, department.tag()),
                    ));
                }
                let prefix = department_item_prefix(&department.code);
                if !item.code.starts_with(&prefix) {
                    return Err(invalid(
                        "code",
                        format!("department {}'s item codes start with {prefix}", department.code),
                    ));
                }
                let regions = self.regions();
                let origin = ItemOrigin::Department(department.code.clone());
                let version = self.planning.item_list.list_item_of(&regions, stamp_ms, actor, item, origin, reason)?;
                Ok(Applied::of_record(ProgrammeRecord::ItemList(Box::new(version)), Vec::new()))
            }
            DepartmentAction::EnrolInspectors { department, inspectors } => {
                self.keeps_departments(actor, "enrol departments' inspectors")?;
                let department = self.department(department)?.clone();
                let regions = self.regions();
                // A department's inspectors hold its tag and nothing else, and belong to no
                // station: their team place is the department's items.
                let theirs: Vec<Inspector> = inspectors
                    .iter()
                    .map(|inspector| Inspector {
                        station: None,
                        expertise: vec![department.tag()],
                        ..inspector.clone()
                    })
                    .collect();
                for inspector in &theirs {
                    check_inspector(&regions, inspector)?;
                    let known_elsewhere = match self.departments.of_inspector(&inspector.id) {
                        Some(of) => of != department.code,
                        None => self.programme.inspectors.contains_key(&inspector.id),
                    };
                    if known_elsewhere {
                        return Err(conflict(
                            ConflictCode::InspectorEnrolled,
                            format!("inspector {} is enrolled for another organisation", inspector.id),
                        ));
                    }
                }
                let enrolled = self.enroll_inspectors(stamp_ms, actor, &theirs)?;
                for inspector in &enrolled {
                    self.departments.members.insert(inspector.id.clone(), department.code.clone());
                }
                Ok(Applied::of_record(ProgrammeRecord::Inspectors(enrolled), Vec::new()))
            }
            DepartmentAction::EnterPart { task, outcome, summary } => {
                self.enter_department_part(stamp_ms, actor, *task, *outcome, summary)
            }
        }
    }

    /// The departments are the whole group's: kept by a province's or a city's command centre
    /// (the node checks that its scope covers the group's), never a county's.
    fn keeps_departments(&self, actor: &Actor, what: &str) -> Result<(), Rejection> {
        if actor.role != Role::Command {
            return Err(Rejection::Forbidden(format!("only a command centre may {what}")));
        }
        of_group_level(&self.regions(), actor.bureau, what)
    }

    fn department(&self, code: &str) -> Result<&Department, Rejection> {
        self.departments.get(code).ok_or_else(|| Rejection::NoSuch(format!("department {code}")))
    }

    /// A department's part of inspection `id`: by the department's inspector on the team,
    /// through the account linked to them; while the inspection is being worked.
    fn enter_department_part(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        id: TaskId,
        outcome: CompletionOutcome,
        summary: &str,
    ) -> CommandResult {
        validate::text("summary", summary, PART_SUMMARY_CHARS_MAX, true, true)?;
        if !super::is_inspection_outcome(outcome) {
            return Err(invalid(
                "outcome",
                "a part's outcome is one of no_problem_found, corrected, penalized, not_found_at_address, case_opened",
            ));
        }
        if actor.role != Role::Department {
            return Err(Rejection::Forbidden("a department's part is entered by its inspector's own account".into()));
        }
        let inspector = crate::organisation::person_of_actor_name(&actor.user)
            .and_then(|(person, _)| self.person(person))
            .filter(|person| person.enabled)
            .and_then(|person| person.inspector.clone())
            .ok_or_else(|| {
                Rejection::Forbidden("a department's part is entered by its inspector's own account".into())
            })?;
        let department = self
            .departments
            .of_inspector(&inspector)
            .ok_or_else(|| Rejection::Forbidden(format!("inspector {inspector} is no department's")))?
            .to_owned();
        // Answered as missing unless the inspector is on the task's team: whether another
        // inspection exists is not told.
        let task = self
            .task(id)
            .filter(|task| task.inspection.as_ref().is_some_and(|record| record.inspectors.contains(&inspector)))
            .ok_or(Rejection::TaskNotFound(id))?;
        if !self.departments.of_task(&task).iter().any(|d| d.code == department) {
            return Err(conflict(
                ConflictCode::NotAnInspection,
                format!("task {id} has no item of department {department}"),
            ));
        }
        if !matches!(task.handling.state, TaskState::Dispatched | TaskState::Acknowledged | TaskState::Returned) {
            return Err(Rejection::IllegalTransition {
                from: task.handling.state,
                action: "enter a department's part of".into(),
            });
        }
        let parts = &task.field_work.department_parts;
        if parts.iter().filter(|part| part.department == department).count() >= PARTS_PER_DEPARTMENT_MAX {
            return Err(Rejection::LimitReached(format!(
                "department {department} entered its part {PARTS_PER_DEPARTMENT_MAX} times on task {id}"
            )));
        }
        if parts.len() >= DEPARTMENT_PARTS_PER_TASK_MAX {
            return Err(Rejection::LimitReached(format!("{DEPARTMENT_PARTS_PER_TASK_MAX} department parts on a task")));
        }
        task.timeline_has_room()?;
        drop(task);
        let mut checked_out = self.check_out(id).expect("found above");
        let task = &mut checked_out.task;
        task.field_work.department_parts.push(DepartmentPart {
            department,
            outcome,
            summary: summary.to_owned(),
            inspector,
            entered_by: actor.user.clone(),
            at_ms: stamp_ms,
        });
        let assignee = task.handling.assignee_bureau;
        task.push_entry_with_outcome(
            stamp_ms,
            actor,
            TimelineAction::DepartmentPart,
            summary.to_owned(),
            assignee,
            outcome,
        );
        Ok(Applied::of_task(self.check_in(checked_out)))
    }

    /// The refusal of a joint inspection's result while a department's part is missing.
    pub(crate) fn check_department_parts(&self, task: &Task) -> Result<(), Rejection> {
        let awaited = self.departments.awaited(task);
        if awaited.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = awaited.iter().map(|d| d.name.as_str()).collect();
        Err(conflict(
            ConflictCode::DepartmentPartsAwaited,
            format!("task {}'s joint result waits for the part of {}", task.id, names.join("、")),
        ))
    }
}
