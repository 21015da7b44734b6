//! Carrying a province's published plan down to the city groups under it (年度计划下达), and
//! their progress back up (进度上报). A city that runs its own group keeps no copy of the
//! province's plan by itself: the group that keeps the plan hands each published version down,
//! the city group's campaigns join its batches there (`CreateCampaignInBatch`, the same command
//! as in the province's own group), and the city group reports, per batch and city, what its
//! campaigns drew, completed and published. The province sees its plan's progress whole: its
//! own campaigns' and its city groups' reports.
//!
//! Both directions carry another group's message: the copy is checked as a filed plan is
//! (`plan_filing::check_for_filing`), a report against the plan it reports on, and either is
//! refused whole otherwise. Only a newer version replaces a copy, only a newer report a report.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::annual_plan::{
    AnnualPlan, AnnualPlans, Batch, BATCHES_PER_PLAN_MAX, BATCH_ENTITIES_MAX, CAMPAIGNS_PER_BATCH_MAX, PLANS_MAX,
};
use super::annual_plan::{BatchSpec, PlanAction};
use super::plan_filing::{check_for_filing, check_sent_version, Filing, PlanForFiling};
use crate::bureau::{BureauCode, RegionLevel, Regions, NATIONAL};
use crate::command::{conflict, Actor, Applied, CommandResult, ConflictCode, Rejection, Role};
use crate::validate::invalid;

/// Cities (or bureaus above a city) one report names per batch: a city group reports its own
/// city, a group of several cities each of them.
pub const REPORT_CITIES_MAX: usize = 64;
/// Copies of plans handed down to a group, and reports kept from its child groups: a few
/// provinces' plans per year for decades, each reported on by a few tens of groups.
pub const HANDED_DOWN_MAX: usize = PLANS_MAX;
pub const REPORTS_MAX: usize = 20_000;
/// Proposals relayed by one child group that the province has not taken up yet: enough for
/// every county of a city, a few each, and a bound on what one group can take of the plan's
/// `PROPOSALS_PER_PLAN_MAX`.
pub const OPEN_RELAYED_PROPOSALS_PER_GROUP_MAX: usize = 100;

/// A province's plan as the group keeping it handed it down to this group. The batches'
/// `campaigns` are this group's campaigns in them (the province's are not sent).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandedDownPlan {
    pub from_group: BureauCode,
    pub plan: PlanForFiling,
    pub received_at_ms: u64,
}

impl HandedDownPlan {
    /// The copy as a plan of batches (no proposals or versions: those stay with the province).
    pub fn as_plan(&self) -> AnnualPlan {
        AnnualPlan {
            published_at_ms: Some(self.plan.published_at_ms),
            batches: self.plan.batches.clone(),
            ..AnnualPlan::new(self.plan.province, self.plan.year)
        }
    }
}

/// What a city's campaigns of one batch have come to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CityProgress {
    pub city: BureauCode,
    pub drawn: u64,
    pub completed: u64,
    pub published: u64,
}

/// One batch in a report: the group's campaigns in it and their inspections, by city.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchProgress {
    pub batch: u32,
    pub campaigns: u32,
    pub by_city: Vec<CityProgress>,
}

/// A child group's progress on a plan handed down to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressReport {
    pub province: BureauCode,
    pub year: i32,
    /// The reporting group's count of commands applied when it counted (`Ledger::commands_applied`,
    /// which every replica of it shares and which only grows): a later count replaces an earlier.
    pub counted_at: u64,
    /// The batches with a campaign of the group, by number.
    pub batches: Vec<BatchProgress>,
}

/// A report as the province's group keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedReport {
    pub from_group: BureauCode,
    pub report: ProgressReport,
    pub received_at_ms: u64,
}

/// The copies handed down to this group, what this group handed down, and the reports of its
/// child groups (store format 11, the core's last field).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanHandDown {
    received: BTreeMap<(BureauCode, i32), HandedDownPlan>,
    handed: BTreeMap<(BureauCode, i32, BureauCode), Filing>,
    reports: BTreeMap<(BureauCode, i32, BureauCode), ReceivedReport>,
}

/// A ledger core of store format 10 (written before plans were handed down) in this build's
/// format: the hand-down is the core's last field.
pub fn core_of_format_10(core: &[u8]) -> Vec<u8> {
    let none = crate::codec::encode(&PlanHandDown::default()).expect("no hand-down encodes");
    [core, none.as_slice()].concat()
}

/// Commands of the hand-down (inside `ProgrammeAction`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlanHandDownAction {
    /// A published version of a province's plan, delivered by the group keeping it
    /// (`Role::Peer`).
    Receive(Box<PlanForFiling>),
    /// Child group `to_group` took `version` of this group's plan (the group's own process).
    RecordHandedDown { province: BureauCode, year: i32, to_group: BureauCode, version: u32 },
    /// A child group's progress on a plan handed down to it, delivered by it (`Role::Peer`).
    Report(Box<ProgressReport>),
    /// A city's (or county's) proposal to its province's plan (上报), relayed by the child
    /// group hosting it on behalf of its command centre's user `by` (`Role::Peer`).
    Propose { year: i32, bureau: BureauCode, by: String, spec: Box<BatchSpec>, note: String },
}

impl PlanHandDown {
    /// The copy of `province`'s plan of `year` handed down to this group.
    pub fn received(&self, province: BureauCode, year: i32) -> Option<&HandedDownPlan> {
        self.received.get(&(province, year))
    }

    /// Every copy handed down to this group.
    pub fn all_received(&self) -> impl Iterator<Item = &HandedDownPlan> {
        self.received.values()
    }

    /// Which version of `province`'s plan of `year` child group `group` took.
    pub fn handed(&self, province: BureauCode, year: i32, group: BureauCode) -> Option<&Filing> {
        self.handed.get(&(province, year, group))
    }

    /// The child groups `province`'s plan of `year` went down to, with the version each took.
    pub fn handed_of(&self, province: BureauCode, year: i32) -> impl Iterator<Item = (BureauCode, &Filing)> {
        self.handed
            .range((province, year, NATIONAL)..)
            .take_while(move |((p, y, _), _)| (*p, *y) == (province, year))
            .map(|((_, _, group), filing)| (*group, filing))
    }

    /// The child groups' reports on `province`'s plan of `year`.
    pub fn reports_of(&self, province: BureauCode, year: i32) -> impl Iterator<Item = &ReceivedReport> {
        self.reports
            .range((province, year, NATIONAL)..)
            .take_while(move |((p, y, _), _)| (*p, *y) == (province, year))
            .map(|(_, report)| report)
    }

    /// The batch of a copy a campaign of this group joins.
    pub(crate) fn batch_mut(&mut self, province: BureauCode, year: i32, number: u32) -> Option<&mut Batch> {
        let copy = self.received.get_mut(&(province, year))?;
        copy.plan.batches.get_mut(number.wrapping_sub(1) as usize)
    }

    /// The invariants the core can check alone.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.received.len() > HANDED_DOWN_MAX || self.reports.len() > REPORTS_MAX {
            return Err("too many copies of plans or progress reports".into());
        }
        for ((province, year), copy) in &self.received {
            if (copy.plan.province, copy.plan.year) != (*province, *year) {
                return Err(format!("the copy of {province}'s plan of {year} is kept under another key"));
            }
            if copy.plan.batches.iter().any(|batch| batch.campaigns.len() > CAMPAIGNS_PER_BATCH_MAX) {
                return Err(format!("a batch of the copy of {province}'s plan of {year} has too many campaigns"));
            }
        }
        for ((province, year, group), received) in &self.reports {
            let report = &received.report;
            if (report.province, report.year, received.from_group) != (*province, *year, *group) {
                return Err(format!("{group}'s report on {province}'s plan of {year} is kept under another key"));
            }
            let fits = report.batches.len() <= BATCHES_PER_PLAN_MAX
                && report.batches.iter().all(|batch| batch.by_city.len() <= REPORT_CITIES_MAX);
            if !fits {
                return Err(format!("{group}'s report on {province}'s plan of {year} is too large"));
            }
        }
        if let Some(((province, year, group), _)) = self.handed.iter().find(|(key, filing)| filing.with_group != key.2)
        {
            return Err(format!("the hand-down of {province}'s plan of {year} to {group} names another group"));
        }
        Ok(())
    }

    /// The version a child group took of a plan kept here, recorded by the group's own process.
    fn record_handed_down(
        &mut self,
        regions: &Regions,
        plans: &AnnualPlans,
        stamp_ms: u64,
        (province, year, to_group, version): (BureauCode, i32, BureauCode, u32),
    ) -> CommandResult {
        check_sent_version(plans, province, year, version)?;
        if !regions.is_within(to_group, province) || to_group == province {
            return Err(invalid("to_group", format!("a group within {province}")));
        }
        let key = (province, year, to_group);
        if self.handed.get(&key).is_some_and(|handed| handed.version >= version) {
            return Err(Rejection::NothingToRecord(format!("version {version} is handed down already")));
        }
        self.handed.insert(key, Filing { with_group: to_group, version, at_ms: stamp_ms });
        Ok(Applied::default())
    }

    fn receive(
        &mut self,
        regions: &Regions,
        plans: &AnnualPlans,
        stamp_ms: u64,
        from_group: BureauCode,
        plan: &PlanForFiling,
    ) -> CommandResult {
        check_for_filing(regions, from_group, plan)?;
        let key = (plan.province, plan.year);
        if plans.plan(plan.province, plan.year).is_some() {
            return Err(conflict(
                ConflictCode::PlanKeptHere,
                format!("this group keeps {}'s plan of {} itself", plan.province, plan.year),
            ));
        }
        let mut copy = HandedDownPlan { from_group, plan: plan.clone(), received_at_ms: stamp_ms };
        // The province's campaigns are its own; the batches hold this group's.
        copy.plan.batches.iter_mut().for_each(|batch| batch.campaigns.clear());
        match self.received.get(&key) {
            Some(held) => {
                // The group it came from first, then the version: another group is refused
                // whatever version it sends.
                if held.from_group != from_group {
                    return Err(Rejection::Forbidden(format!(
                        "{}'s plan of {} comes down from group {}",
                        plan.province, plan.year, held.from_group
                    )));
                }
                if held.plan.version >= plan.version {
                    return Err(Rejection::NothingToRecord(format!(
                        "version {} of {}'s plan of {} is held already",
                        held.plan.version, plan.province, plan.year
                    )));
                }
                // A batch is never removed from a plan, so a later version holds every batch
                // of an earlier one, numbered alike: each keeps the campaigns that joined it.
                if copy.plan.batches.len() < held.plan.batches.len() {
                    return Err(invalid("batches", "a later version keeps every batch of an earlier one"));
                }
                for (batch, held_batch) in copy.plan.batches.iter_mut().zip(&held.plan.batches) {
                    batch.campaigns.clone_from(&held_batch.campaigns);
                }
            }
            None if self.received.len() >= HANDED_DOWN_MAX => {
                return Err(Rejection::LimitReached(format!("{HANDED_DOWN_MAX} plans handed down")));
            }
            None => {}
        }
        self.received.insert(key, copy);
        Ok(Applied::default())
    }

    fn take_report(
        &mut self,
        regions: &Regions,
        plans: &AnnualPlans,
        stamp_ms: u64,
        from_group: BureauCode,
        report: &ProgressReport,
    ) -> CommandResult {
        let (province, year) = (report.province, report.year);
        let plan =
            plans.plan(province, year).ok_or_else(|| Rejection::NoSuch(format!("{province}'s plan of {year}")))?;
        if self.handed(province, year, from_group).is_none() {
            return Err(Rejection::Forbidden(format!(
                "{province}'s plan of {year} was not handed down to group {from_group}"
            )));
        }
        check_report(regions, plan, from_group, report)?;
        let key = (province, year, from_group);
        if let Some(held) = self.reports.get(&key) {
            if held.report.counted_at >= report.counted_at || held.report.batches == report.batches {
                return Err(Rejection::NothingToRecord("the report holds nothing newer".into()));
            }
        } else if self.reports.len() >= REPORTS_MAX {
            return Err(Rejection::LimitReached(format!("{REPORTS_MAX} progress reports")));
        }
        self.reports.insert(key, ReceivedReport { from_group, report: report.clone(), received_at_ms: stamp_ms });
        Ok(Applied::default())
    }
}

fn peer_only(actor: &Actor) -> Result<(), Rejection> {
    if actor.role == Role::Peer {
        Ok(())
    } else {
        Err(Rejection::Forbidden("plans come down, and progress goes up, between groups".into()))
    }
}

/// The checks of a child group's report against the plan it reports on: batches of the plan,
/// in order, each once; cities within the reporting group, in order, each once; no more
/// completed or published than drawn.
pub fn check_report(
    regions: &Regions,
    plan: &AnnualPlan,
    from_group: BureauCode,
    report: &ProgressReport,
) -> Result<(), Rejection> {
    if report.batches.len() > BATCHES_PER_PLAN_MAX.min(plan.batches.len()) {
        return Err(invalid("batches", "at most the plan's batches"));
    }
    let ordered = report.batches.windows(2).all(|pair| pair[0].batch < pair[1].batch);
    if !ordered || report.batches.iter().any(|b| b.batch == 0 || b.batch as usize > plan.batches.len()) {
        return Err(invalid("batches", "batches of the plan, by number, each once"));
    }
    for batch in &report.batches {
        if batch.campaigns as usize > CAMPAIGNS_PER_BATCH_MAX || batch.by_city.len() > REPORT_CITIES_MAX {
            return Err(invalid("batches", format!("batch {} reports too many campaigns or cities", batch.batch)));
        }
        let ordered = batch.by_city.windows(2).all(|pair| pair[0].city < pair[1].city);
        // A city of the group, or the group itself when it lies below a city (as the group
        // counts them: `plan_progress::own_progress`).
        let counted_as = |city: BureauCode| {
            city == from_group
                || (regions.is_within(city, from_group)
                    && regions.region(city).is_some_and(|region| region.level == RegionLevel::Prefecture))
        };
        if !ordered || !batch.by_city.iter().all(|city| counted_as(city.city)) {
            return Err(invalid("by_city", format!("cities of group {from_group}, each once")));
        }
        let counted = |city: &CityProgress| {
            city.drawn <= BATCH_ENTITIES_MAX && city.completed <= city.drawn && city.published <= city.drawn
        };
        if !batch.by_city.iter().all(counted) {
            return Err(invalid("by_city", "no more completed or published than drawn"));
        }
    }
    Ok(())
}

impl crate::Ledger {
    pub fn plan_handdown(&self) -> &PlanHandDown {
        &self.plan_handdown
    }

    pub(crate) fn apply_plan_handdown(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        action: &PlanHandDownAction,
    ) -> CommandResult {
        let regions = self.regions();
        let (handdown, plans) = (&mut self.plan_handdown, &self.planning.plans);
        match action {
            PlanHandDownAction::Receive(plan) => {
                peer_only(actor)?;
                handdown.receive(&regions, plans, stamp_ms, actor.bureau, plan)
            }
            PlanHandDownAction::RecordHandedDown { province, year, to_group, version } => {
                if actor.role != Role::System {
                    return Err(Rejection::Forbidden("a hand-down is recorded by the group's own process".into()));
                }
                handdown.record_handed_down(&regions, plans, stamp_ms, (*province, *year, *to_group, *version))
            }
            PlanHandDownAction::Report(report) => {
                peer_only(actor)?;
                handdown.take_report(&regions, plans, stamp_ms, actor.bureau, report)
            }
            PlanHandDownAction::Propose { year, bureau, by, spec, note } => {
                self.relayed_proposal(&regions, stamp_ms, actor, (*year, *bureau, by), spec, note)
            }
        }
    }

    /// A proposal a child group relays for a command centre it hosts: proposed to the plan as
    /// that centre's user would here, to a plan this group keeps (not a copy).
    fn relayed_proposal(
        &mut self,
        regions: &Regions,
        stamp_ms: u64,
        actor: &Actor,
        (year, bureau, by): (i32, BureauCode, &String),
        spec: &BatchSpec,
        note: &str,
    ) -> CommandResult {
        peer_only(actor)?;
        if !regions.is_within(bureau, actor.bureau) {
            return Err(Rejection::Forbidden(format!(
                "group {} relays proposals of its own bureaus, not {bureau}'s",
                actor.bureau
            )));
        }
        crate::validate::text("by", by, crate::limits::USER_CHARS_MAX, true, false)?;
        let province = regions.province_of(bureau).ok_or_else(|| invalid("bureau", "lies in no province"))?;
        let open = self.planning.plans.plan(province, year).map_or(0, |plan| {
            let relayed =
                |p: &&super::annual_plan::Proposal| p.taken_as.is_none() && regions.is_within(p.bureau, actor.bureau);
            plan.proposals.iter().filter(relayed).count()
        });
        if open >= OPEN_RELAYED_PROPOSALS_PER_GROUP_MAX {
            return Err(Rejection::LimitReached(format!(
                "{OPEN_RELAYED_PROPOSALS_PER_GROUP_MAX} proposals of group {} not taken up yet",
                actor.bureau
            )));
        }
        // Named with the group that vouches for them: a relayed name is the group's word.
        let proposer = Actor { user: format!("{}/{by}", actor.user), bureau, role: Role::Command };
        let action = PlanAction::Propose { year, spec: Box::new(spec.clone()), note: note.to_owned() };
        self.check_plan_kept_here(regions, &proposer, &action)?;
        let planning = &mut self.planning;
        let changed = planning.plans.apply(regions, &planning.item_list, stamp_ms, &proposer, &action)?;
        Ok(Applied::of_record(super::ProgrammeRecord::AnnualPlan(Box::new(changed)), Vec::new()))
    }

    /// A change of a plan this group holds only a copy of is refused: the group keeping the
    /// plan changes it, and the copy of its next version would not carry the change.
    pub(crate) fn check_plan_kept_here(
        &self,
        regions: &Regions,
        actor: &Actor,
        action: &PlanAction,
    ) -> Result<(), Rejection> {
        // A bureau in no province is refused by the plan's own checks.
        let Some(province) = regions.province_of(actor.bureau) else { return Ok(()) };
        match self.plan_handdown.received(province, action.year()) {
            Some(copy) => Err(conflict(
                ConflictCode::PlanElsewhere,
                format!(
                    "the annual plan of {province} is kept by group {}; this group holds the copy it handed down",
                    copy.from_group
                ),
            )),
            None => Ok(()),
        }
    }

    /// The batch `number` of `province`'s plan of `year` as this group knows it: its own plan,
    /// or the copy handed down to it.
    pub fn batch_of_plan(&self, province: BureauCode, year: i32, number: u32) -> Option<&Batch> {
        match self.planning.plans.plan(province, year) {
            Some(plan) => plan.batches.get(number.wrapping_sub(1) as usize),
            None => self.plan_handdown.received(province, year)?.plan.batches.get(number.wrapping_sub(1) as usize),
        }
    }

    /// That batch, to file a campaign under.
    pub(crate) fn batch_of_plan_mut(&mut self, province: BureauCode, year: i32, number: u32) -> Option<&mut Batch> {
        if self.planning.plans.plan(province, year).is_some() {
            self.planning.plans.batch_mut(province, year, number)
        } else {
            self.plan_handdown.batch_mut(province, year, number)
        }
    }
}
