//! The annual random-inspection plan (年度随机抽查工作计划): a province's plan of a year in
//! batches (批次: the items, the scope, how many entities, the period), built from what its
//! cities propose (上报), published (公示), and adjusted during the year with a reason for every
//! change (动态调整), every change a numbered version. A batch is never removed: a withdrawn
//! one stays in the plan, marked, with its reason.
//!
//! The province's own command centre keeps its plan; a city's (or a county's) centre proposes
//! batches to it. Changes after publication are adjustments and must say why.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::item_list::ItemList;
use super::LABELS_MAX;
use crate::bureau::{BureauCode, Regions};
use crate::command::{conflict, Actor, ConflictCode, Rejection, Role};
use crate::reference::Day;
use crate::validate::{self, invalid};

/// Plans kept: a province's plan per year, for decades of provinces.
pub const PLANS_MAX: usize = 2_000;
/// Batches of one plan: a province runs a few tens a year.
pub const BATCHES_PER_PLAN_MAX: usize = 500;
/// Proposals to one plan: every city and county of a province, a few each.
pub const PROPOSALS_PER_PLAN_MAX: usize = 2_000;
/// Versions of one plan.
pub const PLAN_VERSIONS_MAX: usize = 5_000;
/// A batch's name.
pub const BATCH_NAME_CHARS_MAX: usize = 200;
/// Entities one batch plans to inspect at most: a province's whole register.
pub const BATCH_ENTITIES_MAX: u64 = 50_000_000;
/// Campaigns that carry out one batch: one per county of a province, and some.
pub const CAMPAIGNS_PER_BATCH_MAX: usize = 1_000;

/// A batch as its author gives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchSpec {
    pub name: String,
    /// Item codes of the item list.
    pub items: Vec<String>,
    /// The region whose entities it draws from.
    pub scope: BureauCode,
    /// How many entities it plans to inspect.
    pub entities: u64,
    pub starts: Day,
    pub ends: Day,
}

/// A batch of the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// Numbered from 1 within the plan.
    pub number: u32,
    pub spec: BatchSpec,
    /// The proposal it was taken from, if any.
    pub from_proposal: Option<u32>,
    pub withdrawn: bool,
    /// The plan versions that added it and last changed it.
    pub listed_in: u32,
    pub changed_in: u32,
    /// The campaigns that carry it out, in the order they were planned.
    pub campaigns: Vec<u64>,
}

/// A batch a city or county proposed for the plan (上报).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub number: u32,
    pub bureau: BureauCode,
    pub spec: BatchSpec,
    pub note: String,
    pub by: String,
    pub at_ms: u64,
    /// The batch the province took it into.
    pub taken_as: Option<u32>,
}

/// What one version of a plan changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlanStep {
    Proposed { proposal: u32 },
    BatchSet { batch: u32, new: bool },
    BatchWithdrawn { batch: u32 },
    Published,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanVersion {
    pub number: u32,
    pub step: PlanStep,
    pub by: String,
    pub bureau: BureauCode,
    pub at_ms: u64,
    /// Why (required for an adjustment after publication and for a withdrawal).
    pub reason: String,
}

/// One province's plan of one year.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnualPlan {
    pub province: BureauCode,
    pub year: i32,
    pub published_at_ms: Option<u64>,
    pub batches: Vec<Batch>,
    pub proposals: Vec<Proposal>,
    pub versions: Vec<PlanVersion>,
}

impl AnnualPlan {
    /// A plan nothing was proposed to or set in yet.
    pub fn new(province: BureauCode, year: i32) -> AnnualPlan {
        AnnualPlan {
            province,
            year,
            published_at_ms: None,
            batches: Vec::new(),
            proposals: Vec::new(),
            versions: Vec::new(),
        }
    }
}

/// Every plan, by province and year.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnualPlans {
    plans: BTreeMap<(BureauCode, i32), AnnualPlan>,
}

/// Commands on the plans (variants of `ProgrammeAction`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlanAction {
    /// A city or county proposes a batch to its province's plan of `year`.
    Propose {
        year: i32,
        spec: Box<BatchSpec>,
        note: String,
    },
    /// The province adds a batch (`batch: None`) or changes one, perhaps from a proposal.
    SetBatch {
        year: i32,
        batch: Option<u32>,
        spec: Box<BatchSpec>,
        from_proposal: Option<u32>,
        reason: String,
    },
    WithdrawBatch {
        year: i32,
        batch: u32,
        reason: String,
    },
    /// The plan is published (公示); later changes are adjustments.
    Publish {
        year: i32,
    },
}

impl PlanAction {
    /// The year of the plan the command changes.
    pub fn year(&self) -> i32 {
        match self {
            PlanAction::Propose { year, .. }
            | PlanAction::SetBatch { year, .. }
            | PlanAction::WithdrawBatch { year, .. }
            | PlanAction::Publish { year } => *year,
        }
    }
}

impl AnnualPlans {
    pub fn plan(&self, province: BureauCode, year: i32) -> Option<&AnnualPlan> {
        self.plans.get(&(province, year))
    }

    /// Every plan, by province and year.
    pub fn all(&self) -> impl Iterator<Item = &AnnualPlan> {
        self.plans.values()
    }

    /// A province's plans, newest year first.
    pub fn of_province(&self, province: BureauCode) -> impl Iterator<Item = &AnnualPlan> {
        self.plans.range((province, i32::MIN)..=(province, i32::MAX)).rev().map(|(_, plan)| plan)
    }

    /// Batch `number` of `province`'s plan of `year`, to file a campaign under.
    pub(crate) fn batch_mut(&mut self, province: BureauCode, year: i32, number: u32) -> Option<&mut Batch> {
        self.plans.get_mut(&(province, year))?.batches.get_mut(number.wrapping_sub(1) as usize)
    }

    /// Applies one command: checked whole before anything changes.
    pub(crate) fn apply(
        &mut self,
        regions: &Regions,
        items: &ItemList,
        stamp_ms: u64,
        actor: &Actor,
        action: &PlanAction,
    ) -> Result<(AnnualPlan, PlanVersion), Rejection> {
        if actor.role != Role::Command {
            return Err(Rejection::Forbidden(format!("a {} user does not keep the annual plan", actor.role)));
        }
        let province = regions.province_of(actor.bureau).ok_or_else(|| {
            Rejection::Forbidden(format!("bureau {} lies in no province of the region table", actor.bureau))
        })?;
        let year = action.year();
        if !self.plans.contains_key(&(province, year)) && self.plans.len() >= PLANS_MAX {
            return Err(Rejection::LimitReached(format!("{PLANS_MAX} annual plans")));
        }
        let mut plan = self.plans.get(&(province, year)).cloned().unwrap_or_else(|| AnnualPlan::new(province, year));
        if plan.versions.len() >= PLAN_VERSIONS_MAX {
            return Err(Rejection::LimitReached(format!("{PLAN_VERSIONS_MAX} versions of a plan")));
        }
        let number = plan.versions.len() as u32 + 1;
        let own = actor.bureau == province;
        let (step, reason) = match action {
            PlanAction::Propose { spec, note, .. } => {
                if own {
                    return Err(Rejection::Forbidden(
                        "the province sets its batches; cities and counties propose".into(),
                    ));
                }
                validate::note(note, false)?;
                check_batch(regions, items, year, spec)?;
                if !regions.is_within(spec.scope, actor.bureau) {
                    return Err(Rejection::Forbidden(format!(
                        "bureau {} proposes batches for its own region, not {}",
                        actor.bureau, spec.scope
                    )));
                }
                if plan.proposals.len() >= PROPOSALS_PER_PLAN_MAX {
                    return Err(Rejection::LimitReached(format!("{PROPOSALS_PER_PLAN_MAX} proposals to a plan")));
                }
                let proposal = plan.proposals.len() as u32 + 1;
                plan.proposals.push(Proposal {
                    number: proposal,
                    bureau: actor.bureau,
                    spec: (**spec).clone(),
                    note: note.clone(),
                    by: actor.user.clone(),
                    at_ms: stamp_ms,
                    taken_as: None,
                });
                (PlanStep::Proposed { proposal }, note.clone())
            }
            PlanAction::SetBatch { batch, spec, from_proposal, reason, .. } => {
                provincial(own, actor)?;
                validate::note(reason, plan.published_at_ms.is_some())?;
                check_batch(regions, items, year, spec)?;
                if !regions.is_within(spec.scope, province) {
                    return Err(invalid("scope", format!("{} lies outside province {province}", spec.scope)));
                }
                if let Some(proposal) = from_proposal {
                    let taken = plan.proposals.get(proposal.wrapping_sub(1) as usize).map(|p| p.taken_as);
                    match taken {
                        None => return Err(Rejection::NoSuch(format!("proposal {proposal}"))),
                        Some(Some(batch)) => {
                            return Err(Rejection::NothingToRecord(format!(
                                "proposal {proposal} is taken into batch {batch} already"
                            )))
                        }
                        Some(None) => {}
                    }
                }
                let number_set = match batch {
                    None => {
                        if plan.batches.len() >= BATCHES_PER_PLAN_MAX {
                            return Err(Rejection::LimitReached(format!("{BATCHES_PER_PLAN_MAX} batches in a plan")));
                        }
                        let batch = plan.batches.len() as u32 + 1;
                        plan.batches.push(Batch {
                            number: batch,
                            spec: (**spec).clone(),
                            from_proposal: *from_proposal,
                            withdrawn: false,
                            listed_in: number,
                            changed_in: number,
                            campaigns: Vec::new(),
                        });
                        batch
                    }
                    Some(batch) => {
                        let existing = plan
                            .batches
                            .get_mut(batch.wrapping_sub(1) as usize)
                            .ok_or_else(|| Rejection::NoSuch(format!("batch {batch}")))?;
                        if existing.withdrawn {
                            return Err(conflict(ConflictCode::BatchWithdrawn, format!("batch {batch} is withdrawn")));
                        }
                        if existing.spec == **spec {
                            return Err(Rejection::NothingToRecord(format!("batch {batch} reads like this already")));
                        }
                        existing.spec = (**spec).clone();
                        existing.changed_in = number;
                        if from_proposal.is_some() {
                            existing.from_proposal = *from_proposal;
                        }
                        *batch
                    }
                };
                if let Some(proposal) = from_proposal {
                    plan.proposals[*proposal as usize - 1].taken_as = Some(number_set);
                }
                (PlanStep::BatchSet { batch: number_set, new: batch.is_none() }, reason.clone())
            }
            PlanAction::WithdrawBatch { batch, reason, .. } => {
                provincial(own, actor)?;
                validate::note(reason, true)?;
                let existing = plan
                    .batches
                    .get_mut(batch.wrapping_sub(1) as usize)
                    .ok_or_else(|| Rejection::NoSuch(format!("batch {batch}")))?;
                if existing.withdrawn {
                    return Err(Rejection::NothingToRecord(format!("batch {batch} is withdrawn already")));
                }
                existing.withdrawn = true;
                existing.changed_in = number;
                (PlanStep::BatchWithdrawn { batch: *batch }, reason.clone())
            }
            PlanAction::Publish { .. } => {
                provincial(own, actor)?;
                if plan.published_at_ms.is_some() {
                    return Err(Rejection::NothingToRecord(format!("the plan of {year} is published already")));
                }
                if plan.batches.iter().all(|batch| batch.withdrawn) {
                    return Err(conflict(
                        ConflictCode::PlanEmpty,
                        format!("the plan of {year} has no batch to publish"),
                    ));
                }
                plan.published_at_ms = Some(stamp_ms);
                (PlanStep::Published, String::new())
            }
        };
        let version =
            PlanVersion { number, step, by: actor.user.clone(), bureau: actor.bureau, at_ms: stamp_ms, reason };
        plan.versions.push(version.clone());
        self.plans.insert((province, year), plan.clone());
        Ok((plan, version))
    }

    /// The plans' own invariants, for a ledger loaded from outside.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.plans.len() > PLANS_MAX {
            return Err("too many annual plans".into());
        }
        for ((province, year), plan) in &self.plans {
            let numbered =
                |numbers: &mut dyn Iterator<Item = u32>| numbers.enumerate().all(|(i, n)| n as usize == i + 1);
            let fits = plan.batches.len() <= BATCHES_PER_PLAN_MAX
                && plan.proposals.len() <= PROPOSALS_PER_PLAN_MAX
                && plan.versions.len() <= PLAN_VERSIONS_MAX;
            let versions = plan.versions.len() as u32;
            let ok = plan.province == *province
                && plan.year == *year
                && fits
                && numbered(&mut plan.batches.iter().map(|b| b.number))
                && numbered(&mut plan.proposals.iter().map(|p| p.number))
                && numbered(&mut plan.versions.iter().map(|v| v.number))
                && plan
                    .batches
                    .iter()
                    .all(|b| b.listed_in >= 1 && b.listed_in <= b.changed_in && b.changed_in <= versions)
                && plan.proposals.iter().all(|p| p.taken_as.is_none_or(|b| b >= 1 && b as usize <= plan.batches.len()));
            if !ok {
                return Err(format!("the annual plan of {province} for {year} is inconsistent"));
            }
        }
        Ok(())
    }
}

/// The refusal of a campaign of `spec` in `batch` (number `number` of its organiser's
/// province's plan of `year`, as this group knows it: `None` when it knows no such batch): the
/// batch must exist, not be withdrawn, have room, cover the campaign's scope and list its items.
pub(crate) fn check_campaign(
    regions: &Regions,
    spec: &super::CampaignSpec,
    batch: Option<&Batch>,
    (province, year, number): (BureauCode, i32, u32),
) -> Result<(), Rejection> {
    let batch = batch.ok_or_else(|| Rejection::NoSuch(format!("batch {number} of {province}'s plan of {year}")))?;
    if batch.withdrawn {
        return Err(conflict(ConflictCode::BatchWithdrawn, format!("batch {number} is withdrawn")));
    }
    if batch.campaigns.len() >= CAMPAIGNS_PER_BATCH_MAX {
        return Err(Rejection::LimitReached(format!("{CAMPAIGNS_PER_BATCH_MAX} campaigns in a batch")));
    }
    if !regions.is_within(spec.scope_region, batch.spec.scope) {
        return Err(invalid(
            "scope",
            format!("{} lies outside batch {number}'s scope {}", spec.scope_region, batch.spec.scope),
        ));
    }
    if let Some(item) = spec.items.iter().find(|item| !batch.spec.items.contains(&item.code)) {
        return Err(invalid("items", format!("{} is not an item of batch {number}", item.code)));
    }
    Ok(())
}

fn provincial(own: bool, actor: &Actor) -> Result<(), Rejection> {
    if own {
        Ok(())
    } else {
        Err(Rejection::Forbidden(format!(
            "only the province's command centre sets its plan; bureau {} proposes batches",
            actor.bureau
        )))
    }
}

/// A batch's fields on their own and against the item list (the API runs this too).
pub fn check_batch(regions: &Regions, items: &ItemList, year: i32, spec: &BatchSpec) -> Result<(), Rejection> {
    validate::text("name", &spec.name, BATCH_NAME_CHARS_MAX, true, false)?;
    if spec.items.is_empty() || spec.items.len() > LABELS_MAX {
        return Err(invalid("items", format!("1 to {LABELS_MAX} items")));
    }
    for code in &spec.items {
        let known = if items.adopted() {
            items.current(code).is_some()
        } else {
            validate::text("items", code, crate::site_record::CHECK_CODE_CHARS_MAX, true, false).is_ok()
        };
        if !known {
            return Err(conflict(ConflictCode::ItemNotListed, format!("{code} is not a current item of the list")));
        }
    }
    if regions.region(spec.scope).is_none_or(|region| region.retired) {
        return Err(invalid("scope", format!("{} is not an active region", spec.scope)));
    }
    if spec.entities == 0 || spec.entities > BATCH_ENTITIES_MAX {
        return Err(invalid("entities", format!("1 to {BATCH_ENTITIES_MAX}")));
    }
    if spec.starts > spec.ends || spec.starts.year() != year || spec.ends.year() != year {
        return Err(invalid("period", format!("a period within {year}, starting before it ends")));
    }
    Ok(())
}
