//! The ledger's programme commands: directories, inspectors, conflicts, campaigns, beacons,
//! draws and their inspection tasks, and the publication of results.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::*;
use crate::access;
use crate::apply::Ledger;

use super::checks::{command_over, needs_follow_up};
use crate::command::{conflict, Actor, Applied, CommandResult, ConflictCode, NewTask, Rejection, Role, Transition};
use crate::federation::Routing;
use crate::policy::{self, TaskAction};
use crate::task::{CompletionOutcome, Severity, Source, Task, TaskKind, TaskState, TimelineAction};
use crate::validate::{self, invalid};

impl Ledger {
    pub fn programme(&self) -> &Programme {
        &self.programme
    }

    /// The inspection-item list the group adopted (see `item_list`).
    pub fn item_list(&self) -> &item_list::ItemList {
        &self.planning.item_list
    }

    /// The annual plans (see `annual_plan`).
    pub fn annual_plans(&self) -> &annual_plan::AnnualPlans {
        &self.planning.plans
    }

    /// The inputs of campaign `id`'s draw: frozen when its beacon was fixed (what the node
    /// draws from, and what `apply` compares a proposed draw with), as the ledger stands now
    /// once it is drawn (its record keeps the inputs it was drawn from).
    pub fn draw_inputs(&self, id: u64) -> Result<DrawInputs, Rejection> {
        let campaign = self.programme.campaigns.get(&id).ok_or_else(|| Rejection::NoSuch(format!("campaign {id}")))?;
        match self.programme.sealed_inputs.get(&id) {
            Some(sealed) => Ok(sealed.clone()),
            None => self.live_draw_inputs(id, campaign, None),
        }
    }

    /// The inputs as the ledger stands now: what the beacon freezes; with the yearly cap a
    /// beacon fixed at `beacon_ms` freezes.
    fn live_draw_inputs(&self, id: u64, campaign: &Campaign, beacon_ms: Option<u64>) -> Result<DrawInputs, Rejection> {
        let beacon = campaign.beacon.as_ref().ok_or_else(|| {
            conflict(ConflictCode::NoBeacon, format!("campaign {id} has no beacon yet: a second person fixes it first"))
        })?;
        let spec = &campaign.spec;
        let pool = self.programme.inspector_pool(&self.regions(), spec, &self.departments);
        let pool_ids: BTreeSet<&str> = pool.iter().map(|i| i.id.as_str()).collect();
        let conflicts = self
            .programme
            .conflicts
            .keys()
            .filter(|(inspector, _)| pool_ids.contains(inspector.as_str()))
            .cloned()
            .collect();
        // From the risk files once they are kept (one pass for the histories and the cap), else
        // by scanning every task, as logs applied before (no cap is set without the files).
        let (histories, year_cap) = if self.risk_files.kept() {
            self.scope_from_risk_files(spec, beacon_ms)
        } else {
            (self.scanned_histories(spec.scope_region), None)
        };
        Ok(DrawInputs {
            campaign: id,
            spec: spec.clone(),
            beacon: beacon.value.clone(),
            pool,
            conflicts,
            histories,
            year_cap,
        })
    }

    /// What the tasks say of the past of each entity registered within `region`, each task
    /// read: the histories before the risk files were kept.
    fn scanned_histories(&self, region: BureauCode) -> Vec<EntityHistory> {
        let regions = self.regions();
        let mut histories: BTreeMap<Uscc, EntityHistory> = BTreeMap::new();
        let empty = |uscc: &Uscc| EntityHistory {
            uscc: uscc.clone(),
            findings: 0,
            complaints: 0,
            overdue_tasks: 0,
            last_team: Vec::new(),
        };
        for task in self.tasks_newest_first(None) {
            let Some(uscc) = &task.subject.uscc else { continue };
            if !regions.is_within(task.subject.region_code, region) {
                continue;
            }
            let found = task.handling.outcome.is_some_and(is_finding);
            let complaint = task.source == Source::Complaint;
            let overdue =
                task.handling.ack_missed_deadline_ms.is_some() || task.handling.completion_missed_deadline_ms.is_some();
            if found || complaint || overdue {
                let history = histories.entry(uscc.clone()).or_insert_with(|| empty(uscc));
                history.findings += u32::from(found);
                history.complaints += u32::from(complaint);
                history.overdue_tasks += u32::from(overdue);
            }
        }
        for (uscc, (entity_region, team)) in &self.programme.last_team {
            if regions.is_within(*entity_region, region) {
                histories.entry(uscc.clone()).or_insert_with(|| empty(uscc)).last_team = team.clone();
            }
        }
        histories.into_values().collect()
    }

    /// Enrols `inspectors` (a new id, or one whose earlier enrolment was retired), all of them
    /// or, when any is refused, none: every check runs before the directory changes.
    pub(super) fn enroll_inspectors(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        inspectors: &[Inspector],
    ) -> Result<Vec<Inspector>, Rejection> {
        let regions = self.regions();
        if inspectors.is_empty() || inspectors.len() > INSPECTORS_PER_ENROLMENT_MAX {
            return Err(invalid("inspectors", format!("1 to {INSPECTORS_PER_ENROLMENT_MAX} inspectors at once")));
        }
        let mut ids = BTreeSet::new();
        for inspector in inspectors {
            check_inspector(&regions, inspector)?;
            command_over(&regions, actor, inspector.bureau, "enrol inspectors")?;
            if !ids.insert(inspector.id.as_str()) {
                return Err(invalid("id", format!("inspector {} is listed twice", inspector.id)));
            }
            if self.programme.inspectors.get(&inspector.id).is_some_and(|i| i.active) {
                return Err(conflict(
                    ConflictCode::InspectorEnrolled,
                    format!("inspector {} is already in the directory", inspector.id),
                ));
            }
        }
        let new_ids = inspectors.iter().filter(|i| !self.programme.inspectors.contains_key(&i.id)).count();
        if self.programme.inspectors.len() + new_ids > INSPECTORS_MAX {
            return Err(Rejection::LimitReached(format!("{INSPECTORS_MAX} inspectors")));
        }
        let enrolled: Vec<Inspector> = inspectors
            .iter()
            .map(|inspector| {
                let mut entry = inspector.clone();
                entry.expertise.sort();
                entry.expertise.dedup();
                entry.active = true;
                entry.enrolled_at_ms = stamp_ms;
                entry.retired_at_ms = None;
                entry
            })
            .collect();
        for entry in &enrolled {
            self.programme.inspectors.insert(entry.id.clone(), entry.clone());
        }
        Ok(enrolled)
    }

    pub(crate) fn apply_programme(&mut self, stamp_ms: u64, actor: &Actor, action: &ProgrammeAction) -> CommandResult {
        let regions = self.regions();
        validate::actor(actor, &regions)?;
        match action {
            ProgrammeAction::RecordEntityDirectory { sha256, entities, bytes } => {
                command_over(&regions, actor, actor.bureau, "import the entity directory")?;
                let version = self.record_directory(stamp_ms, actor, sha256, *entities, *bytes)?;
                Ok(Applied::of_record(ProgrammeRecord::EntityDirectory(version), Vec::new()))
            }
            ProgrammeAction::ImportRegister { sha256, entities, bytes, through } => {
                command_over(&regions, actor, actor.bureau, "import the entity directory")?;
                self.register.check_import(*through)?;
                let version = self.record_directory(stamp_ms, actor, sha256, *entities, *bytes)?;
                self.register.based_on_import(version.number, *through);
                Ok(Applied::of_record(ProgrammeRecord::EntityDirectory(version), Vec::new()))
            }
            ProgrammeAction::FreezeRegister(freeze) => {
                if actor.role != Role::Command {
                    return Err(Rejection::Forbidden("the register is frozen for a command centre's draw".into()));
                }
                self.register.check_freeze(self.programme.entity_directory(), freeze)?;
                let current = self.programme.entity_directory().expect("checked: a freeze starts from the current");
                let version = if current.sha256 == freeze.sha256 {
                    // The changes left the file as it was: the current version takes them in.
                    current.clone()
                } else {
                    self.record_directory(stamp_ms, actor, &freeze.sha256, freeze.entities, freeze.bytes)?
                };
                self.register.record_freeze(version.number, freeze);
                Ok(Applied::of_record(ProgrammeRecord::EntityDirectory(version), Vec::new()))
            }
            ProgrammeAction::RecordRegisterChanges(changes) => {
                let outcomes = self.record_register_changes(stamp_ms, actor, changes)?;
                Ok(Applied::of_record(ProgrammeRecord::RegisterChanges(outcomes), Vec::new()))
            }
            ProgrammeAction::EnrollInspector(inspector) => {
                self.departments.check_own_inspector(inspector)?;
                let mut enrolled = self.enroll_inspectors(stamp_ms, actor, std::slice::from_ref(&**inspector))?;
                let entry = enrolled.pop().expect("one inspector in, one enrolled");
                Ok(Applied::of_record(ProgrammeRecord::Inspector(Box::new(entry)), Vec::new()))
            }
            ProgrammeAction::EnrollInspectors(inspectors) => {
                inspectors.iter().try_for_each(|inspector| self.departments.check_own_inspector(inspector))?;
                let enrolled = self.enroll_inspectors(stamp_ms, actor, inspectors)?;
                Ok(Applied::of_record(ProgrammeRecord::Inspectors(enrolled), Vec::new()))
            }
            ProgrammeAction::RetireInspector { id, note } => {
                validate::note(note, true)?;
                let inspector = self
                    .programme
                    .inspectors
                    .get_mut(id)
                    .filter(|i| i.active)
                    .ok_or_else(|| Rejection::NoSuch(format!("active inspector {id}")))?;
                command_over(&regions, actor, inspector.bureau, "retire inspectors")?;
                inspector.active = false;
                inspector.retired_at_ms = Some(stamp_ms);
                Ok(Applied::of_record(ProgrammeRecord::Inspector(Box::new(inspector.clone())), Vec::new()))
            }
            ProgrammeAction::DeclareConflict { inspector, uscc, reason } => {
                validate::note(reason, true)?;
                let found = self
                    .programme
                    .inspectors
                    .get(inspector)
                    .ok_or_else(|| Rejection::NoSuch(format!("inspector {inspector}")))?;
                let allowed = matches!(actor.role, Role::Command | Role::Operator)
                    && regions.is_within(found.bureau, actor.bureau);
                if !allowed {
                    return Err(Rejection::Forbidden(format!(
                        "bureau {} cannot declare conflicts of inspectors of bureau {}",
                        actor.bureau, found.bureau
                    )));
                }
                let key = (inspector.clone(), uscc.clone());
                if self.programme.conflicts.contains_key(&key) {
                    return Err(Rejection::NothingToRecord(format!(
                        "{inspector} has declared a conflict with {}",
                        uscc.as_str()
                    )));
                }
                if self.programme.conflicts.len() >= CONFLICTS_MAX {
                    return Err(Rejection::LimitReached(format!("{CONFLICTS_MAX} conflicts")));
                }
                let conflict = Conflict {
                    inspector: inspector.clone(),
                    uscc: uscc.clone(),
                    reason: reason.clone(),
                    declared_by: actor.user.clone(),
                    at_ms: stamp_ms,
                };
                self.programme.conflicts.insert(key, conflict.clone());
                Ok(Applied::of_record(ProgrammeRecord::Conflict(Box::new(conflict)), Vec::new()))
            }
            ProgrammeAction::CreateCampaign(spec) => self.create_campaign(stamp_ms, actor, spec, DRAW_RATIO_FLOOR_BP),
            ProgrammeAction::CreateCampaignOnTotal(spec) => self.create_campaign(stamp_ms, actor, spec, 1),
            ProgrammeAction::FixBeacon { campaign, value } => self.fix_beacon(stamp_ms, actor, *campaign, value, false),
            ProgrammeAction::FixBeaconOnRegister { campaign, value } => {
                self.fix_beacon(stamp_ms, actor, *campaign, value, true)
            }
            ProgrammeAction::RecordDraw { campaign, result, ack_deadline_ms, complete_deadline_ms } => {
                self.record_draw(stamp_ms, actor, *campaign, result, *ack_deadline_ms, *complete_deadline_ms)
            }
            ProgrammeAction::BeginDrawInParts(header) => self.begin_draw_in_parts(stamp_ms, actor, header),
            ProgrammeAction::RecordDrawPart { campaign, part, inspections, placements } => {
                self.record_draw_part(stamp_ms, actor, *campaign, *part, inspections, placements)
            }
            ProgrammeAction::RiskFiles(action) => self.apply_risk_files(stamp_ms, actor, action),
            ProgrammeAction::PlanFiling(action) => self.apply_plan_filing(stamp_ms, actor, action),
            ProgrammeAction::Departments(action) => self.apply_departments(stamp_ms, actor, action),
            ProgrammeAction::PlanHandDown(action) => self.apply_plan_handdown(stamp_ms, actor, action),
            ProgrammeAction::EnterReportedResult { task, publish_deadline_ms } => {
                self.enter_reported_result(stamp_ms, actor, *task, *publish_deadline_ms)
            }
            ProgrammeAction::PublishResult { task } => self.publication_step(stamp_ms, actor, *task, None),
            ProgrammeAction::WithdrawResult { task, note } => self.publication_step(stamp_ms, actor, *task, Some(note)),
            ProgrammeAction::OpenFollowUp { inspection, ack_deadline_ms, complete_deadline_ms } => {
                self.open_follow_up(stamp_ms, actor, *inspection, *ack_deadline_ms, *complete_deadline_ms)
            }
            ProgrammeAction::CreateCampaignInBatch { spec, floor_on_total, year, batch } => {
                // The organiser's province's plan as this group knows it: kept here, or the
                // copy the group keeping it handed down (`plan_handdown`).
                let province =
                    regions.province_of(spec.bureau).ok_or_else(|| invalid("bureau", "lies in no province"))?;
                let planned = self.batch_of_plan(province, *year, *batch);
                annual_plan::check_campaign(&regions, spec, planned, (province, *year, *batch))?;
                let floor = if *floor_on_total { 1 } else { DRAW_RATIO_FLOOR_BP };
                let created = self.create_campaign(stamp_ms, actor, spec, floor)?;
                if let Some(ProgrammeRecord::Campaign(campaign)) = &created.record {
                    self.batch_of_plan_mut(province, *year, *batch).expect("checked").campaigns.push(campaign.id);
                }
                Ok(created)
            }
            ProgrammeAction::AnnualPlan(action) => {
                self.check_plan_kept_here(&regions, actor, action)?;
                let planning = &mut self.planning;
                let changed = planning.plans.apply(&regions, &planning.item_list, stamp_ms, actor, action)?;
                Ok(Applied::of_record(ProgrammeRecord::AnnualPlan(Box::new(changed)), Vec::new()))
            }
            ProgrammeAction::ItemList(action) => {
                match &**action {
                    item_list::ItemListAction::Add { item, .. } | item_list::ItemListAction::Revise { item, .. } => {
                        self.departments.check_own_item(item)?;
                    }
                    item_list::ItemListAction::AdoptNational { items, .. } => {
                        items.iter().try_for_each(|item| self.departments.check_own_item(item))?;
                    }
                    _ => {}
                }
                let version = self.planning.item_list.apply(&regions, stamp_ms, actor, action)?;
                Ok(Applied::of_record(ProgrammeRecord::ItemList(Box::new(version)), Vec::new()))
            }
        }
    }

    /// A campaign whose every class drawn from has `class_floor_bp` at least (the rule it was
    /// proposed under: see `ProgrammeAction::CreateCampaignOnTotal`).
    fn create_campaign(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        spec: &CampaignSpec,
        class_floor_bp: u32,
    ) -> CommandResult {
        let regions = self.regions();
        super::checks::check_spec_with_class_floor(&regions, spec, class_floor_bp)?;
        command_over(&regions, actor, spec.bureau, "plan campaigns")?;
        self.planning.item_list.check_campaign(&regions, spec)?;
        self.departments.check_campaign_items(&self.planning.item_list, spec)?;
        let current = self
            .programme
            .entity_directory()
            .ok_or_else(|| conflict(ConflictCode::NoDirectory, "no entity directory is imported yet"))?;
        if current.sha256 != spec.entity_directory {
            return Err(conflict(
                ConflictCode::DirectoryChanged,
                format!("the entity directory changed: version {} ({}) is current", current.number, current.sha256),
            ));
        }
        if self.programme.campaigns.len() >= CAMPAIGNS_MAX {
            return Err(Rejection::LimitReached(format!("{CAMPAIGNS_MAX} campaigns")));
        }
        self.programme.next_campaign += 1;
        let campaign = Arc::new(Campaign {
            id: self.programme.next_campaign,
            spec: spec.clone(),
            created_by: actor.user.clone(),
            created_at_ms: stamp_ms,
            beacon: None,
            draw: None,
        });
        self.programme.campaigns.insert(campaign.id, campaign.clone());
        Ok(Applied::of_record(ProgrammeRecord::Campaign(campaign), Vec::new()))
    }

    /// The next version of the entity directory, checked and filed.
    fn record_directory(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        sha256: &str,
        entities: u64,
        bytes: u64,
    ) -> Result<DirectoryVersion, Rejection> {
        if !is_hex_sha256(sha256) {
            return Err(invalid("sha256", "not a SHA-256 in hex"));
        }
        if self.programme.entity_directory().is_some_and(|current| current.sha256 == sha256) {
            return Err(Rejection::NothingToRecord("this directory is already the current version".into()));
        }
        let version = DirectoryVersion {
            number: self.programme.entity_directories.len() as u64 + 1,
            sha256: sha256.to_owned(),
            entities,
            bytes,
            at_ms: stamp_ms,
            imported_by: actor.user.clone(),
        };
        self.programme.entity_directories.push(version.clone());
        Ok(version)
    }

    /// Fixes campaign `id`'s beacon and freezes its draw's inputs; `on_register`: the inputs
    /// name the directory version current now, not the one the campaign was planned on.
    fn fix_beacon(&mut self, stamp_ms: u64, actor: &Actor, id: u64, value: &str, on_register: bool) -> CommandResult {
        let regions = self.regions();
        validate::text("beacon", value, BEACON_CHARS_MAX, true, false)?;
        let register_directory = match (on_register, self.programme.entity_directory()) {
            (false, _) => None,
            (true, Some(current)) => Some(current.sha256.clone()),
            (true, None) => return Err(conflict(ConflictCode::NoDirectory, "no entity directory is imported yet")),
        };
        let campaign =
            self.programme.campaigns.get_mut(&id).ok_or_else(|| Rejection::NoSuch(format!("campaign {id}")))?;
        command_over(&regions, actor, campaign.spec.bureau, "fix a campaign's beacon")?;
        if campaign.beacon.is_some() {
            return Err(conflict(
                ConflictCode::BeaconFixed,
                format!("campaign {id}'s beacon is fixed already; it is fixed once"),
            ));
        }
        if campaign.created_by == actor.user {
            return Err(Rejection::Forbidden(
                "the beacon is fixed by a second person, not by who planned the campaign".into(),
            ));
        }
        let shared = Arc::make_mut(campaign);
        shared.beacon = Some(Beacon { value: value.to_owned(), entered_by: actor.user.clone(), at_ms: stamp_ms });
        let campaign = campaign.clone();
        let mut inputs = self.live_draw_inputs(id, &campaign, Some(stamp_ms))?;
        if let Some(sha256) = register_directory {
            inputs.spec.entity_directory = sha256;
        }
        if let Some(cap) = &inputs.year_cap {
            self.freeze_year_cap(id, cap.clone());
        }
        self.programme.sealed_inputs.insert(id, inputs);
        Ok(Applied::of_record(ProgrammeRecord::Campaign(campaign), Vec::new()))
    }

    fn record_draw(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        id: u64,
        result: &DrawResult,
        ack_deadline_ms: u64,
        complete_deadline_ms: u64,
    ) -> CommandResult {
        let regions = self.regions();
        let campaign = self.programme.campaigns.get(&id).ok_or_else(|| Rejection::NoSuch(format!("campaign {id}")))?;
        command_over(&regions, actor, campaign.spec.bureau, "draw campaigns")?;
        if campaign.draw.is_some() {
            return Err(conflict(ConflictCode::CampaignDrawn, format!("campaign {id} is drawn already")));
        }
        if self.is_drawing_in_parts(id) {
            return Err(conflict(ConflictCode::CampaignDrawn, format!("campaign {id} is being drawn in parts")));
        }
        validate::dispatch(
            &regions,
            campaign.spec.bureau,
            campaign.spec.bureau,
            stamp_ms,
            ack_deadline_ms,
            complete_deadline_ms,
        )?;
        let inputs = self.draw_inputs(id)?;
        // Against the conflicts frozen with the beacon: one declared once the beacon is public
        // could otherwise veto the draw until the selection suits (finding 10's kin).
        check_draw(&regions, &self.departments, &inputs, result)?;
        let spec = inputs.spec.clone();

        let mut tasks = Vec::with_capacity(result.inspections.len());
        for inspection in &result.inspections {
            tasks.push(self.draw_inspection_task(
                stamp_ms,
                actor,
                id,
                &spec,
                inspection,
                ack_deadline_ms,
                complete_deadline_ms,
                &draw_parts::DrawPlacement::Here,
            ));
        }
        let record = DrawRecord {
            inputs,
            result: result.clone(),
            ack_deadline_ms,
            complete_deadline_ms,
            drawn_at_ms: stamp_ms,
            drawn_by: actor.user.clone(),
            tasks: tasks.iter().map(|t| t.id).collect(),
        };
        self.programme.sealed_inputs.remove(&id);
        let campaign = self.programme.campaigns.get_mut(&id).expect("found above");
        Arc::make_mut(campaign).draw = Some(Box::new(record));
        Ok(Applied::of_record(ProgrammeRecord::Campaign(campaign.clone()), tasks))
    }

    /// The result another group entered on a drawn inspection handed to it, taken by the
    /// organiser's tracking record once its mirror shows it completed.
    fn enter_reported_result(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        id: TaskId,
        publish_deadline_ms: u64,
    ) -> CommandResult {
        let task = self.task(id).ok_or(Rejection::TaskNotFound(id))?;
        let remote =
            task.remote.as_ref().filter(|remote| remote.purpose == crate::federation::HandoverPurpose::Dispatch);
        let Some(remote) = remote else {
            return Err(conflict(
                ConflictCode::NotAnInspection,
                format!("task {id} was not dispatched to another group"),
            ));
        };
        if actor.role != Role::Peer || actor.bureau != remote.to_group {
            return Err(Rejection::Forbidden(format!("only group {} reports task {id}'s result", remote.to_group)));
        }
        let Some(record) = task.inspection.as_ref() else {
            return Err(conflict(ConflictCode::NotAnInspection, format!("task {id} is not a drawn inspection")));
        };
        if record.result_entered_at_ms.is_some() {
            return Err(Rejection::NothingToRecord(format!("task {id}'s result is entered")));
        }
        let completed = task.handling.state == TaskState::Completed
            && task.handling.outcome.is_some_and(super::is_inspection_outcome);
        if !completed {
            return Err(Rejection::NotYet(format!("task {id} is not completed with an inspection's result there")));
        }
        if publish_deadline_ms <= stamp_ms || publish_deadline_ms - stamp_ms > crate::limits::DEADLINE_HORIZON_MS {
            return Err(invalid("publish_deadline", "must lie after the result's entry, within the deadline horizon"));
        }
        let mut checked_out = self.check_out(id).expect("found above");
        let inspection = checked_out.task.inspection.as_mut().expect("checked above");
        inspection.result_entered_at_ms = Some(stamp_ms);
        inspection.publish_deadline_ms = Some(publish_deadline_ms);
        checked_out.task.updated_at_ms = stamp_ms;
        Ok(Applied::of_task(self.check_in(checked_out)))
    }

    /// Files the inspection task of one drawn inspection, its team linked to their accounts,
    /// and keeps the team as the entity's last. The inspection is worked here or handed to the
    /// group hosting its bureau (`placement`): then the task here is the tracking record of
    /// that dispatch.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn draw_inspection_task(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        campaign: u64,
        spec: &CampaignSpec,
        inspection: &DrawnInspection,
        ack_deadline_ms: u64,
        complete_deadline_ms: u64,
        placement: &draw_parts::DrawPlacement,
    ) -> Arc<Task> {
        let mut task =
            self.inspection_task(stamp_ms, actor, campaign, spec, inspection, ack_deadline_ms, complete_deadline_ms);
        if let draw_parts::DrawPlacement::HandedTo { to_group, from_group } = placement {
            let record = task.inspection.as_ref().expect("an inspection task");
            let drawn = crate::federation::DrawnAtOrigin {
                campaign_name: record.campaign_name.clone(),
                items: record.items.clone(),
                inspectors: record.inspectors.clone(),
                risk_class: record.risk_class,
                top_up: record.top_up,
            };
            let terms =
                crate::federation::DispatchTerms { assignee: inspection.bureau, ack_deadline_ms, complete_deadline_ms };
            let route = crate::apply::Route { from_group: *from_group, to_group: *to_group };
            let note = format!("执法检查人员：{}", inspection.inspectors.join("、"));
            self.hand_over_as(
                &mut task,
                stamp_ms,
                actor,
                route,
                crate::federation::HandoverPurpose::Dispatch,
                &note,
                Some(terms),
                |handover| crate::federation::Message::DrawnInspection(Box::new((handover, drawn))),
            );
        }
        // The team as people: each drawn inspector linked to an account (谁抽查、谁录入).
        task.field_work.handlers.team = inspection
            .inspectors
            .iter()
            .filter_map(|inspector| self.person_of_login(&crate::organisation::inspector_key(inspector)))
            .filter_map(|id| self.person(id))
            .map(|person| crate::task::HandlerRef { id: person.id, name: person.name.clone() })
            .collect();
        let task = self.insert_new_task(task);
        // The entity's last team: in its risk file, which filing the task changed, once the
        // files are kept; in the core before.
        if !self.risk_files.kept() {
            let mut team = inspection.inspectors.clone();
            team.sort();
            let uscc = inspection.subject.uscc.clone().expect("checked: every drawn entity has a USCC");
            self.programme.last_team.insert(uscc, (inspection.subject.region_code, team));
        }
        task
    }

    #[allow(clippy::too_many_arguments)]
    fn inspection_task(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        campaign: u64,
        spec: &CampaignSpec,
        inspection: &DrawnInspection,
        ack_deadline_ms: u64,
        complete_deadline_ms: u64,
    ) -> Task {
        let items: Vec<InspectionItem> =
            spec.items.iter().filter(|item| inspection.items.contains(&item.code)).cloned().collect();
        let item_names: Vec<&str> = items.iter().map(|item| item.name.as_str()).collect();
        let severity = if inspection.risk_class == RiskClass::High { Severity::High } else { Severity::Normal };
        let new_task = NewTask {
            kind: TaskKind::Inspection,
            severity,
            title: format!("双随机抽查：{}", spec.name),
            description: format!("抽查事项：{}", item_names.join("、")),
            subject: inspection.subject.clone(),
            source: Source::SpotCheck,
            origin_bureau: spec.bureau,
            assignee_bureau: Some(inspection.bureau),
            // Drawn within the organiser's scope: inspected here, never forwarded.
            routing: Routing::Keep,
        };
        let mut task = self.register(stamp_ms, actor, &new_task);
        let dispatch = Transition::Dispatch { assignee: inspection.bureau, ack_deadline_ms, complete_deadline_ms };
        let note = format!("执法检查人员：{}", inspection.inspectors.join("、"));
        task.record_transition(stamp_ms, actor, &note, &dispatch, TaskState::Dispatched)
            .expect("a dispatch is a change in place");
        task.inspection = Some(InspectionRecord {
            campaign,
            campaign_name: spec.name.clone(),
            items,
            inspectors: inspection.inspectors.clone(),
            risk_class: inspection.risk_class,
            top_up: inspection.top_up,
            result_entered_at_ms: None,
            publish_deadline_ms: None,
            publish_missed_deadline_ms: None,
            published_at_ms: None,
            withdrawn_at_ms: None,
        });
        task
    }

    /// Publishes (note `None`) or withdraws an inspection result: the organiser's command centre.
    fn publication_step(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        task_id: TaskId,
        note: Option<&String>,
    ) -> CommandResult {
        let regions = self.regions();
        if let Some(note) = note {
            validate::note(note, true)?;
        }
        let action = if note.is_some() { TaskAction::Withdraw } else { TaskAction::Publish };
        let task = self
            .task(task_id)
            .filter(|t| access::can_see(&regions, actor, t))
            .ok_or(Rejection::TaskNotFound(task_id))?;
        access::may_write(actor)?;
        policy::open(&task, action)?;
        policy::may_take(&regions, actor, &task, action)?;
        let (action, text) = match note {
            None => (TimelineAction::Publish, String::new()),
            Some(note) => (TimelineAction::Withdraw, note.clone()),
        };
        task.timeline_has_room()?;
        drop(task);
        let mut checked_out = self.check_out(task_id).expect("found above");
        let task = &mut checked_out.task;
        let record = task.inspection.as_mut().expect("an inspection task");
        match action {
            TimelineAction::Publish => record.published_at_ms = Some(stamp_ms),
            _ => record.withdrawn_at_ms = Some(stamp_ms),
        }
        let assignee = task.handling.assignee_bureau;
        task.push_entry(stamp_ms, actor, action, text, assignee);
        Ok(Applied::of_task(self.check_in(checked_out)))
    }

    /// The follow-up of inspection `id`'s finding: a lead for the bureau the inspection was
    /// dispatched to (the entity's, 谁管辖、谁负责), from the campaign's organiser, dispatched
    /// with the given deadlines; the inspection's timeline names it. Only by whoever entered the
    /// result, right after it (the node proposes it in the completion's entry), and once.
    fn open_follow_up(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        id: TaskId,
        ack_deadline_ms: u64,
        complete_deadline_ms: u64,
    ) -> CommandResult {
        let regions = self.regions();
        let inspection = self.task(id).ok_or(Rejection::TaskNotFound(id))?;
        let record = inspection
            .inspection
            .as_ref()
            .ok_or_else(|| conflict(ConflictCode::NotAnInspection, format!("task {id} is no drawn inspection")))?;
        let outcome = inspection.handling.outcome.filter(|_| inspection.handling.state == TaskState::Completed);
        let Some(outcome) = outcome.filter(|o| needs_follow_up(*o)) else {
            return Err(conflict(
                ConflictCode::NoFollowUpDue,
                format!("task {id}'s result calls for no follow-up (corrected or case_opened do)"),
            ));
        };
        if inspection.timeline.iter().any(|entry| entry.action == TimelineAction::FollowUpOpened) {
            return Err(Rejection::NothingToRecord(format!("task {id}'s follow-up is open already")));
        }
        // Right after the result, by whoever entered it: the node proposes it in the entry
        // that enters the result, so nothing comes between.
        let last = inspection.timeline.last();
        if !last.is_some_and(|entry| entry.action == TimelineAction::Complete && entry.actor_user == actor.user) {
            return Err(Rejection::Forbidden(format!(
                "the follow-up of task {id} is opened with its result, by whoever entered it"
            )));
        }
        inspection.timeline_has_room()?;
        let assignee = inspection.handling.assignee_bureau.expect("a completed inspection was dispatched");
        let organiser =
            self.programme.campaigns.get(&record.campaign).map_or(inspection.origin_bureau, |c| c.spec.bureau);
        validate::dispatch(&regions, organiser, assignee, stamp_ms, ack_deadline_ms, complete_deadline_ms)?;
        let what = if outcome == CompletionOutcome::Corrected { "整改复查" } else { "立案查处" };
        let new_task = NewTask {
            kind: TaskKind::Lead,
            severity: inspection.severity,
            title: {
                let lead_in = format!("后续监管（{what}）：");
                let room = crate::limits::TITLE_CHARS_MAX.saturating_sub(lead_in.chars().count());
                format!("{lead_in}{}", inspection.subject.name.chars().take(room).collect::<String>())
            },
            description: format!(
                "双随机抽查任务 #{id}（{}）的检查结果为「{outcome}」，由有管辖权的单位跟进（谁管辖、谁负责）。",
                record.campaign_name
            ),
            subject: inspection.subject.clone(),
            source: Source::SpotCheck,
            origin_bureau: organiser,
            assignee_bureau: Some(assignee),
            // The entity lies in this group's scope, as its inspection did.
            routing: Routing::Keep,
        };
        drop(inspection);
        let mut follow_up = self.register(stamp_ms, actor, &new_task);
        let dispatch = Transition::Dispatch { assignee, ack_deadline_ms, complete_deadline_ms };
        follow_up
            .record_transition(stamp_ms, actor, &format!("源于双随机抽查任务 #{id}"), &dispatch, TaskState::Dispatched)
            .expect("a dispatch is a change in place");
        let follow_up = self.insert_new_task(follow_up);
        let mut checked_out = self.check_out(id).expect("found above");
        let task = &mut checked_out.task;
        let assignee = task.handling.assignee_bureau;
        task.push_entry(
            stamp_ms,
            actor,
            TimelineAction::FollowUpOpened,
            format!("后续监管任务 #{}", follow_up.id),
            assignee,
        );
        let inspection = self.check_in(checked_out);
        Ok(Applied { tasks: vec![follow_up, inspection], ..Applied::default() })
    }
}
