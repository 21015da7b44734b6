//! Entity risk files (市场主体风险档案): for each market entity the ledger has met, what its
//! events say of its risk (findings, complaints, tasks that missed a deadline), the team of its
//! last drawn inspection, and how often it was inspected in each recent year. One record a USCC,
//! changed as the events happen (`Ledger::file_task_in_risk_files`, from every filing of a
//! task), so a beacon reads the files of its scope instead of every task of history, and the
//! yearly cap on inspections (`InspectionCap`) has its counts.
//!
//! The files are kept from the entry that turned them on (`RiskFilesAction::Keep`, which the
//! leader proposes once every member reads `risk-files-v1`): that entry files every
//! task of history once and takes the last teams out of the core. Before it, a beacon derives
//! the histories by scanning the tasks, as the logs applied, so an old log replays the same.
//!
//! **Publication invariant:** a file feeds risk classes; it never reaches a public view.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{is_finding, CampaignSpec, EntityHistory, ProgrammeRecord, RiskClass};
use crate::bureau::BureauCode;
use crate::command::{Actor, Applied, CommandResult, Rejection, Role};
use crate::reference::Day;
use crate::task::{Source, Task};
use crate::uscc::Uscc;
use crate::validate::invalid;

/// Years of inspection counts a file keeps: the cap counts one year, the enterprise file shows
/// a few.
pub const YEARS_KEPT: usize = 5;
/// The largest yearly cap a group may set: SAMR's guidance is once a year in principle; a
/// bound keeps a typo (100) from switching the rule off unnoticed.
pub const YEARLY_INSPECTIONS_CAP_MAX: u32 = 12;

/// One entity's risk file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskFile {
    pub uscc: Uscc,
    /// Where the entity is registered as far as the ledger knows: the register's region at its
    /// last drawn inspection (a draw takes it from the directory row), else the region of the
    /// first task about it, or of the authority that registered it (USCC digits 3 to 8) for a
    /// file a classification opened. The scopes whose beacons read this file.
    pub region: BureauCode,
    /// Inspections and tasks that found a problem (`is_finding`).
    pub findings: u32,
    pub complaints: u32,
    /// Tasks about it that missed a deadline.
    pub overdue_tasks: u32,
    /// The inspectors of its last drawn inspection, sorted: the rotation rule keeps them away
    /// next time.
    pub last_team: Vec<String>,
    /// Drawn inspections of it by the year (Beijing time) their tasks were made: (year, count),
    /// oldest first, the newest `YEARS_KEPT` years.
    pub inspections: Vec<(i32, u32)>,
    /// The provincial credit-risk system's class as its feed last reported it through the
    /// register (`register::ChangeKind::ClassifyHigh` …), and when; none before any report or
    /// once withdrawn. The draw reads the class from the frozen register, not from here.
    pub assessed: Option<(RiskClass, u64)>,
}

impl RiskFile {
    fn new(uscc: Uscc, region: BureauCode) -> RiskFile {
        RiskFile {
            uscc,
            region,
            findings: 0,
            complaints: 0,
            overdue_tasks: 0,
            last_team: Vec::new(),
            inspections: Vec::new(),
            assessed: None,
        }
    }

    /// Drawn inspections of the entity in `year`.
    pub fn inspections_in(&self, year: i32) -> u32 {
        self.inspections.iter().find(|(y, _)| *y == year).map_or(0, |(_, count)| *count)
    }

    /// What a draw reads of the file; `None` when the file holds nothing a draw weighs.
    pub fn history(&self) -> Option<EntityHistory> {
        let weighs = self.findings > 0 || self.complaints > 0 || self.overdue_tasks > 0 || !self.last_team.is_empty();
        weighs.then(|| EntityHistory {
            uscc: self.uscc.clone(),
            findings: self.findings,
            complaints: self.complaints,
            overdue_tasks: self.overdue_tasks,
            last_team: self.last_team.clone(),
        })
    }

    /// Adds (`sign` 1) or takes away (`sign` -1) what one task contributes.
    fn count(&mut self, contribution: &Contribution, sign: i8) {
        let step = |value: &mut u32, by: u32| {
            *value = if sign > 0 { value.saturating_add(by) } else { value.saturating_sub(by) };
        };
        step(&mut self.findings, contribution.findings);
        step(&mut self.complaints, contribution.complaints);
        step(&mut self.overdue_tasks, contribution.overdue);
        if let Some(year) = contribution.inspected_in {
            match self.inspections.iter().position(|(y, _)| *y == year) {
                Some(at) => step(&mut self.inspections[at].1, 1),
                // A year older than those kept is not counted back; a new one is.
                None if sign > 0 => {
                    self.inspections.push((year, 1));
                    self.inspections.sort_unstable();
                    let excess = self.inspections.len().saturating_sub(YEARS_KEPT);
                    self.inspections.drain(..excess);
                }
                None => {}
            }
            self.inspections.retain(|(_, count)| *count > 0);
        }
    }

    /// The file's own rules, for a file read from outside (a stream, a backup).
    pub fn check(&self) -> Result<(), String> {
        let sorted = self.last_team.windows(2).all(|pair| pair[0] < pair[1]);
        let years_sorted = self.inspections.windows(2).all(|pair| pair[0].0 < pair[1].0);
        if !sorted || !years_sorted || self.inspections.len() > YEARS_KEPT {
            return Err(format!("risk file {}: teams or years out of order, or too many years", self.uscc.as_str()));
        }
        if self.inspections.iter().any(|(_, count)| *count == 0) {
            return Err(format!("risk file {}: a year with no inspection", self.uscc.as_str()));
        }
        Ok(())
    }
}

/// What one version of a task adds to its entity's file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Contribution {
    uscc: Uscc,
    findings: u32,
    complaints: u32,
    overdue: u32,
    /// The year of a drawn inspection's task.
    inspected_in: Option<i32>,
}

impl Contribution {
    /// What `task` adds to a file: none for a task without a USCC.
    pub(crate) fn of(task: &Task) -> Option<Contribution> {
        let uscc = task.subject.uscc.clone()?;
        let overdue =
            task.handling.ack_missed_deadline_ms.is_some() || task.handling.completion_missed_deadline_ms.is_some();
        Some(Contribution {
            uscc,
            findings: u32::from(task.handling.outcome.is_some_and(is_finding)),
            complaints: u32::from(task.source == Source::Complaint),
            overdue: u32::from(overdue),
            inspected_in: task.inspection.as_ref().map(|_| Day::beijing_of_ms(task.created_at_ms).year()),
        })
    }
}

/// The group's yearly cap on inspections of one entity by its draws (同一市场主体年度抽查次数),
/// set by the group's own command centre.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectionCap {
    pub yearly_max: u32,
    pub set_by: String,
    pub set_at_ms: u64,
}

/// The cap as a draw applies it, frozen with the beacon: the entities of the scope already
/// inspected `max` times in the beacon's year are not drawn.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct YearCap {
    pub year: i32,
    pub max: u32,
    /// Sorted.
    pub reached: Vec<Uscc>,
}

impl YearCap {
    pub fn has_reached(&self, uscc: &Uscc) -> bool {
        self.reached.binary_search(uscc).is_ok()
    }
}

/// Whether the cap holds for a campaign: every draw but a targeted one on high-risk entities
/// only (对高风险市场主体的定向抽查 may inspect more often).
pub fn cap_applies(spec: &CampaignSpec) -> bool {
    !(spec.targeted && spec.risk_classes == [RiskClass::High])
}

/// The risk files' part of the ledger core (store format 9): whether they are kept, how many,
/// the cap, and the cap each campaign's beacon froze.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskFiles {
    kept: bool,
    files: u64,
    cap: Option<InspectionCap>,
    /// By campaign, for every beacon fixed under a cap: the draw's input kept beside its
    /// `DrawInputs` (whose encoding leaves `year_cap` out), after the draw too, for its proof.
    year_caps: BTreeMap<u64, YearCap>,
}

/// A ledger core of store format 8 (written before risk files) in this build's format: they are
/// the core's last field, so a format 8 core ends where this one's start.
pub fn core_of_format_8(core: &[u8]) -> Vec<u8> {
    let none = crate::codec::encode(&RiskFiles::default()).expect("no risk files encode");
    [core, none.as_slice()].concat()
}

impl RiskFiles {
    pub fn kept(&self) -> bool {
        self.kept
    }

    /// Files kept: every record of the kind, which a stream's loader counts.
    pub fn count(&self) -> u64 {
        self.files
    }

    pub fn cap(&self) -> Option<&InspectionCap> {
        self.cap.as_ref()
    }

    pub(crate) fn count_new_file(&mut self) {
        assert!(self.kept, "risk files are filed only while kept");
        self.files += 1;
    }

    /// The campaigns a cap was frozen for.
    pub fn campaigns_capped(&self) -> impl Iterator<Item = u64> + '_ {
        self.year_caps.keys().copied()
    }

    pub fn year_cap(&self, campaign: u64) -> Option<&YearCap> {
        self.year_caps.get(&campaign)
    }

    /// The invariants the core can check alone.
    pub(crate) fn check(&self) -> Result<(), String> {
        if !self.kept && (self.files > 0 || self.cap.is_some() || !self.year_caps.is_empty()) {
            return Err("risk files counted or a cap set while the files are not kept".into());
        }
        if self.cap.as_ref().is_some_and(|cap| !(1..=YEARLY_INSPECTIONS_CAP_MAX).contains(&cap.yearly_max)) {
            return Err("a yearly cap out of its range".into());
        }
        for (campaign, cap) in &self.year_caps {
            if !cap.reached.windows(2).all(|pair| pair[0] < pair[1]) {
                return Err(format!("campaign {campaign}'s year cap lists entities out of order"));
            }
        }
        Ok(())
    }
}

/// Commands of the risk files (inside `ProgrammeAction`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RiskFilesAction {
    /// Turns the files on: every task of history filed once (by the group's own process).
    Keep,
    /// Sets (`Some`) or lifts (`None`) the yearly cap.
    SetCap { yearly_max: Option<u32> },
}

impl crate::Ledger {
    pub fn risk_files(&self) -> &RiskFiles {
        &self.risk_files
    }

    /// The risk file of `uscc`, as of the command being applied.
    pub fn risk_file(&self, uscc: &Uscc) -> Option<Arc<RiskFile>> {
        self.layers().risk_file(uscc)
    }

    pub(crate) fn apply_risk_files(&mut self, stamp_ms: u64, actor: &Actor, action: &RiskFilesAction) -> CommandResult {
        match action {
            RiskFilesAction::Keep => {
                if actor.role != Role::System {
                    return Err(Rejection::Forbidden("risk files are turned on by the group's own process".into()));
                }
                if self.risk_files.kept {
                    return Err(Rejection::NothingToRecord("the risk files are kept already".into()));
                }
                self.file_history_in_risk_files();
                Ok(Applied::default())
            }
            RiskFilesAction::SetCap { yearly_max } => {
                // The node checks that the centre's scope covers the group's (the ledger does not
                // know which group it is); the ledger that it is a command centre.
                if actor.role != Role::Command {
                    return Err(Rejection::Forbidden("only a command centre sets the yearly cap".into()));
                }
                if !self.risk_files.kept {
                    return Err(Rejection::NotYet("the risk files are not kept yet: the cap has no counts".into()));
                }
                let cap = match yearly_max {
                    Some(max) if !(1..=YEARLY_INSPECTIONS_CAP_MAX).contains(max) => {
                        return Err(invalid(
                            "yearly_max",
                            format!("1 to {YEARLY_INSPECTIONS_CAP_MAX} inspections a year"),
                        ));
                    }
                    Some(max) => {
                        Some(InspectionCap { yearly_max: *max, set_by: actor.user.clone(), set_at_ms: stamp_ms })
                    }
                    None => None,
                };
                if cap.as_ref().map(|c| c.yearly_max) == self.risk_files.cap.as_ref().map(|c| c.yearly_max) {
                    return Err(Rejection::NothingToRecord("the cap is already so".into()));
                }
                self.risk_files.cap = cap.clone();
                Ok(Applied::of_record(ProgrammeRecord::InspectionCap(cap), Vec::new()))
            }
        }
    }

    /// Files every task of history, and the last teams the core kept, once: the entry that
    /// turns the files on.
    fn file_history_in_risk_files(&mut self) {
        let mut files: BTreeMap<Uscc, RiskFile> = BTreeMap::new();
        // Newest first (a store's tasks are read one at a time): the newest drawn inspection names
        // the region, else the oldest task, as `file_task_in_risk_files` does from now on.
        let mut named_by_inspection: std::collections::BTreeSet<Uscc> = std::collections::BTreeSet::new();
        for task in self.tasks_newest_first(None) {
            let Some(contribution) = Contribution::of(&task) else { continue };
            let region = task.subject.region_code;
            let file = files
                .entry(contribution.uscc.clone())
                .or_insert_with(|| RiskFile::new(contribution.uscc.clone(), region));
            if !named_by_inspection.contains(&contribution.uscc) {
                file.region = region;
                if task.inspection.is_some() {
                    named_by_inspection.insert(contribution.uscc.clone());
                }
            }
            file.count(&contribution, 1);
        }
        for (uscc, (region, team)) in std::mem::take(&mut self.programme.last_team) {
            files.entry(uscc.clone()).or_insert_with(|| RiskFile::new(uscc, region)).last_team = team;
        }
        self.risk_files.kept = true;
        for (_, file) in files {
            self.save_risk_file(None, file);
        }
    }

    /// Moves a task's contribution from its version before (`before`, none for a new task) to
    /// `task`. A new drawn inspection names its entity's region (the register's, as drawn) and,
    /// drawn here, its last team.
    pub(crate) fn file_task_in_risk_files(&mut self, before: Option<Contribution>, task: &Task, created: bool) {
        if !self.risk_files.kept {
            return;
        }
        let after = Contribution::of(task);
        if before == after && !created {
            return;
        }
        if let Some(before) = before {
            if let Some(old) = self.risk_file(&before.uscc) {
                let mut file = (*old).clone();
                file.count(&before, -1);
                self.save_risk_file(Some(&old), file);
            }
        }
        if let Some(after) = after {
            let drawn = task.inspection.as_ref().filter(|_| created);
            self.change_risk_file(&after.uscc, task.subject.region_code, |file| {
                if let Some(drawn) = drawn {
                    file.region = task.subject.region_code;
                    if drawn.campaign != super::CAMPAIGN_ELSEWHERE {
                        file.last_team = drawn.inspectors.clone();
                        file.last_team.sort();
                    }
                }
                file.count(&after, 1);
            });
        }
    }

    /// Changes the risk file of `uscc` (a new one placed in `region`) and files it.
    fn change_risk_file(&mut self, uscc: &Uscc, region: BureauCode, change: impl FnOnce(&mut RiskFile)) {
        let old = self.risk_file(uscc);
        let mut file = old.as_deref().cloned().unwrap_or_else(|| RiskFile::new(uscc.clone(), region));
        change(&mut file);
        self.save_risk_file(old.as_deref(), file);
    }

    /// A classification the register's feed recorded: the entity's file shows it. The file of
    /// an entity the ledger never met is placed by the region that registered it (USCC digits
    /// 3 to 8).
    pub(crate) fn note_assessed_class(&mut self, uscc: &Uscc, class: Option<RiskClass>, stamp_ms: u64) {
        if !self.risk_files.kept {
            return;
        }
        let old = self.risk_file(uscc);
        let region = match &old {
            Some(file) => file.region,
            None => match self.regions().parse_known(uscc.registering_region()) {
                Some(region) => region,
                // A registering region the table does not know: no file to place it in.
                None => return,
            },
        };
        let mut file = old.as_deref().cloned().unwrap_or_else(|| RiskFile::new(uscc.clone(), region));
        file.assessed = class.map(|class| (class, stamp_ms));
        self.save_risk_file(old.as_deref(), file);
    }

    /// The histories of the entities of `spec`'s scope, from their files, and the yearly cap a
    /// beacon fixed at `beacon_ms` freezes for it (none without a cap, or for a campaign it does
    /// not hold for): one pass over the files.
    pub(crate) fn scope_from_risk_files(
        &self,
        spec: &CampaignSpec,
        beacon_ms: Option<u64>,
    ) -> (Vec<EntityHistory>, Option<YearCap>) {
        let regions = self.regions();
        let cap = self.risk_files.cap.as_ref().filter(|_| cap_applies(spec));
        let cap = beacon_ms.zip(cap).map(|(ms, cap)| (Day::beijing_of_ms(ms).year(), cap.yearly_max));
        let mut histories = Vec::new();
        let mut reached = Vec::new();
        for file in self.layers().risk_files().filter(|file| regions.is_within(file.region, spec.scope_region)) {
            if cap.is_some_and(|(year, max)| file.inspections_in(year) >= max) {
                reached.push(file.uscc.clone());
            }
            histories.extend(file.history());
        }
        (histories, cap.map(|(year, max)| YearCap { year, max, reached }))
    }

    pub(crate) fn freeze_year_cap(&mut self, campaign: u64, cap: YearCap) {
        self.risk_files.year_caps.insert(campaign, cap);
    }
}
