//! Filing a province's annual plan with the level above (年度抽查工作计划报上级备案): once its plan
//! of a year is published, the province's group sends each version of it to its parent group in
//! the federation (the national group, 000000, where one is deployed), which keeps the plan as
//! filed: its batches, the version and when it was published. The sender records which version
//! the parent took, so the province sees it filed.
//!
//! What the parent keeps came from another group: it is checked as any peer's message (the
//! province within the sending group, every batch by the rules of a batch, numbers in order)
//! and refused whole otherwise; only a newer version replaces a filed one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::annual_plan::{
    check_batch, AnnualPlans, Batch, BATCHES_PER_PLAN_MAX, CAMPAIGNS_PER_BATCH_MAX, PLAN_VERSIONS_MAX,
};
use super::item_list::ItemList;
use super::ProgrammeRecord;
use crate::bureau::{BureauCode, Regions};
use crate::command::{Actor, Applied, CommandResult, Rejection, Role};
use crate::validate::invalid;

/// Plans filed with a group: every province of the country, for decades.
pub const FILED_PLANS_MAX: usize = 2_000;

/// A published plan as its province sends it up: the batches of one version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanForFiling {
    pub province: BureauCode,
    pub year: i32,
    /// The plan's version (its number of changes) this copy is of.
    pub version: u32,
    pub published_at_ms: u64,
    pub batches: Vec<Batch>,
}

/// A plan filed with this group by a child group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiledPlan {
    pub from_group: BureauCode,
    pub plan: PlanForFiling,
    pub filed_at_ms: u64,
}

/// Which version of a plan of this group its parent took, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filing {
    pub with_group: BureauCode,
    pub version: u32,
    pub at_ms: u64,
}

/// The plans filed with this group and the filings of its own (store format 9, the core's last
/// field).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanFilings {
    filed: BTreeMap<(BureauCode, i32), FiledPlan>,
    sent: BTreeMap<(BureauCode, i32), Filing>,
}

/// A ledger core of store format 8 with the risk files appended in this build's format: the
/// filings are the core's last field (format 9 appended both).
pub fn core_of_format_8(core_with_risk_files: &[u8]) -> Vec<u8> {
    let none = crate::codec::encode(&PlanFilings::default()).expect("no filings encode");
    [core_with_risk_files, none.as_slice()].concat()
}

/// Commands of the filings (inside `ProgrammeAction`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlanFilingAction {
    /// A child group's published plan, delivered by that group (`Role::Peer`).
    File(Box<PlanForFiling>),
    /// The parent group took `version` of this group's plan (by the group's own process).
    RecordFiled { province: BureauCode, year: i32, with_group: BureauCode, version: u32 },
}

impl PlanFilings {
    /// The plans filed with this group for `year`, by province.
    pub fn filed_in(&self, year: i32) -> impl Iterator<Item = &FiledPlan> {
        self.filed.values().filter(move |filed| filed.plan.year == year)
    }

    /// Which version of `province`'s plan of `year` the parent took.
    pub fn filing(&self, province: BureauCode, year: i32) -> Option<&Filing> {
        self.sent.get(&(province, year))
    }

    /// The invariants the core can check alone.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.filed.len() > FILED_PLANS_MAX {
            return Err("too many filed plans".into());
        }
        for ((province, year), filed) in &self.filed {
            if (filed.plan.province, filed.plan.year) != (*province, *year) {
                return Err(format!("the plan of {province} of {year} is filed under another key"));
            }
        }
        Ok(())
    }

    pub(crate) fn apply(
        &mut self,
        regions: &Regions,
        plans: &AnnualPlans,
        stamp_ms: u64,
        actor: &Actor,
        action: &PlanFilingAction,
    ) -> CommandResult {
        match action {
            PlanFilingAction::File(plan) => {
                if actor.role != Role::Peer {
                    return Err(Rejection::Forbidden("plans are filed by the group that keeps them".into()));
                }
                check_for_filing(regions, actor.bureau, plan)?;
                let key = (plan.province, plan.year);
                if let Some(filed) = self.filed.get(&key) {
                    if filed.plan.version >= plan.version {
                        return Err(Rejection::NothingToRecord(format!(
                            "version {} of {}'s plan of {} is filed already",
                            filed.plan.version, plan.province, plan.year
                        )));
                    }
                } else if self.filed.len() >= FILED_PLANS_MAX {
                    return Err(Rejection::LimitReached(format!("{FILED_PLANS_MAX} filed plans")));
                }
                let filed = FiledPlan { from_group: actor.bureau, plan: (**plan).clone(), filed_at_ms: stamp_ms };
                self.filed.insert(key, filed.clone());
                Ok(Applied::of_record(ProgrammeRecord::PlanFiled(Box::new(filed)), Vec::new()))
            }
            PlanFilingAction::RecordFiled { province, year, with_group, version } => {
                if actor.role != Role::System {
                    return Err(Rejection::Forbidden("a filing is recorded by the group's own process".into()));
                }
                check_sent_version(plans, *province, *year, *version)?;
                let key = (*province, *year);
                if self.sent.get(&key).is_some_and(|sent| sent.version >= *version) {
                    return Err(Rejection::NothingToRecord(format!("version {version} is recorded as filed already")));
                }
                self.sent.insert(key, Filing { with_group: *with_group, version: *version, at_ms: stamp_ms });
                Ok(Applied::default())
            }
        }
    }
}

/// The refusal of `version` of `province`'s plan of `year` as a version this group sent another
/// group (filed or handed down): the plan is kept here, published, and has that version.
pub(super) fn check_sent_version(
    plans: &AnnualPlans,
    province: BureauCode,
    year: i32,
    version: u32,
) -> Result<(), Rejection> {
    let plan = plans.plan(province, year).ok_or_else(|| Rejection::NoSuch(format!("{province}'s plan of {year}")))?;
    if plan.published_at_ms.is_none() || version == 0 || version as usize > plan.versions.len() {
        return Err(invalid("version", "a version of the published plan"));
    }
    Ok(())
}

/// The checks of a plan another group sends: its province within the sending group, published,
/// and every batch by the rules of a batch (the items by their shape: the sender's list is not
/// this group's), numbered in order, within the plan's version.
pub fn check_for_filing(regions: &Regions, from_group: BureauCode, plan: &PlanForFiling) -> Result<(), Rejection> {
    if regions.region(plan.province).is_none_or(|region| region.level != crate::bureau::RegionLevel::Province) {
        return Err(invalid("province", format!("{} is not a province", plan.province)));
    }
    if !regions.is_within(plan.province, from_group) {
        return Err(Rejection::Forbidden(format!(
            "group {from_group} files plans of its own provinces, not {}'s",
            plan.province
        )));
    }
    if !(crate::reference::YEAR_FIRST..=crate::reference::YEAR_LAST).contains(&plan.year) {
        return Err(invalid("year", "a year the calendar covers"));
    }
    if plan.version == 0 || plan.version as usize > PLAN_VERSIONS_MAX || plan.published_at_ms == 0 {
        return Err(invalid("version", "a published plan's version"));
    }
    if plan.batches.len() > BATCHES_PER_PLAN_MAX {
        return Err(invalid("batches", format!("at most {BATCHES_PER_PLAN_MAX}")));
    }
    let items = ItemList::default();
    for (position, batch) in plan.batches.iter().enumerate() {
        let numbered = batch.number as usize == position + 1;
        let within = batch.listed_in <= batch.changed_in && batch.changed_in <= plan.version && batch.listed_in >= 1;
        if !numbered || !within || batch.campaigns.len() > CAMPAIGNS_PER_BATCH_MAX {
            return Err(invalid("batches", format!("batch {} is numbered or versioned out of order", batch.number)));
        }
        check_batch(regions, &items, plan.year, &batch.spec)?;
        if !regions.is_within(batch.spec.scope, plan.province) {
            return Err(invalid("batches", format!("batch {}'s scope lies outside {}", batch.number, plan.province)));
        }
    }
    Ok(())
}

impl crate::Ledger {
    pub fn plan_filings(&self) -> &PlanFilings {
        &self.plan_filings
    }

    pub(crate) fn apply_plan_filing(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        action: &PlanFilingAction,
    ) -> CommandResult {
        let regions = self.regions();
        self.plan_filings.apply(&regions, &self.planning.plans, stamp_ms, actor, action)
    }
}

/// The copy of `plan` to file (or hand down): its batches as published and last changed; none
/// before it is published. Its version is the last that changed a batch or published the plan:
/// a proposal changes no batch, so it sends nothing again.
pub fn for_filing(plan: &super::annual_plan::AnnualPlan) -> Option<PlanForFiling> {
    Some(PlanForFiling {
        province: plan.province,
        year: plan.year,
        version: batches_version(plan)?,
        published_at_ms: plan.published_at_ms?,
        batches: plan.batches.clone(),
    })
}

/// The version of `plan` its published batches are at: the last that changed a batch or
/// published it; `None` before it is published.
pub fn batches_version(plan: &super::annual_plan::AnnualPlan) -> Option<u32> {
    plan.published_at_ms?;
    let published = plan.versions.iter().find(|v| v.step == super::annual_plan::PlanStep::Published)?.number;
    Some(plan.batches.iter().map(|batch| batch.changed_in).fold(published, u32::max))
}
