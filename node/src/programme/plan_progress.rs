//! What an annual plan's batch has come to (计划执行进度): its campaigns' inspections drawn,
//! completed and published, per city (or the bureau itself, above a city). The province's
//! group counts its own campaigns and adds its city groups' reports
//! (`ledger::campaign::plan_handdown`); a city group counts the campaigns that joined the
//! batches of the copy handed down to it, and reports them up.
//!
//! Counting reads the inspections of the batch's campaigns: its cost follows the batch, not
//! the ledger.

use std::collections::BTreeMap;

use ledger::campaign::annual_plan::Batch;
use ledger::campaign::plan_handdown::{BatchProgress, CityProgress, HandedDownPlan, ProgressReport};
use ledger::{BureauCode, Ledger, RegionLevel, Regions};

/// A batch's figures: its campaigns, and their inspections per city.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchFigures {
    pub campaigns: u64,
    pub by_city: BTreeMap<BureauCode, CityProgress>,
}

impl BatchFigures {
    /// The figures of every city together.
    pub fn total(&self) -> CityProgress {
        let mut total = CityProgress { city: ledger::bureau::NATIONAL, drawn: 0, completed: 0, published: 0 };
        for city in self.by_city.values() {
            add(&mut total, city);
        }
        total
    }

    fn city(&mut self, city: BureauCode) -> &mut CityProgress {
        self.by_city.entry(city).or_insert(CityProgress { city, drawn: 0, completed: 0, published: 0 })
    }
}

fn add(into: &mut CityProgress, figures: &CityProgress) {
    into.drawn += figures.drawn;
    into.completed += figures.completed;
    into.published += figures.published;
}

/// What this group's own campaigns of `batch` have come to, per city of group `group` (a group
/// below a city counts its bureaus under its own code, as a report must name them:
/// `ledger::campaign::plan_handdown::check_report`).
pub fn own_progress(ledger: &Ledger, regions: &Regions, group: BureauCode, batch: &Batch) -> BatchFigures {
    let mut figures = BatchFigures { campaigns: batch.campaigns.len() as u64, by_city: BTreeMap::new() };
    for id in &batch.campaigns {
        if ledger.programme().campaign(*id).and_then(|c| c.draw.as_ref()).is_none() {
            continue;
        }
        for task_id in ledger.drawn_tasks(*id) {
            let Some(task) = ledger.task(task_id) else { continue };
            let Some(assignee) = task.handling.assignee_bureau else { continue };
            let city = match regions.ancestor_at(assignee, RegionLevel::Prefecture) {
                Some(city) if regions.is_within(city, group) => city,
                // A group below a city counts its bureaus under its own code.
                Some(_) => group,
                // Above a city: the bureau itself (a province's own centre).
                None => assignee,
            };
            let inspection = task.inspection.as_ref();
            let completed = inspection.is_some_and(|i| i.result_entered_at_ms.is_some());
            let published = inspection.is_some_and(|i| i.published_at_ms.is_some() && i.withdrawn_at_ms.is_none());
            let tally = figures.city(city);
            tally.drawn += 1;
            tally.completed += u64::from(completed);
            tally.published += u64::from(published);
        }
    }
    figures
}

/// The batch's progress as the group keeping the plan sees it: its own campaigns' and what its
/// city groups reported on the batch.
pub fn whole_progress(
    ledger: &Ledger,
    regions: &Regions,
    group: BureauCode,
    (province, year): (BureauCode, i32),
    batch: &Batch,
) -> BatchFigures {
    let mut figures = own_progress(ledger, regions, group, batch);
    for received in ledger.plan_handdown().reports_of(province, year) {
        let Some(reported) = received.report.batches.iter().find(|b| b.batch == batch.number) else { continue };
        figures.campaigns += u64::from(reported.campaigns);
        for city in &reported.by_city {
            add(figures.city(city.city), city);
        }
    }
    figures
}

/// This group's report on the copy handed down to it: the batches its campaigns joined.
pub fn report_of(ledger: &Ledger, regions: &Regions, group: BureauCode, copy: &HandedDownPlan) -> ProgressReport {
    let batches = copy
        .plan
        .batches
        .iter()
        .filter(|batch| !batch.campaigns.is_empty())
        .map(|batch| {
            let figures = own_progress(ledger, regions, group, batch);
            BatchProgress {
                batch: batch.number,
                campaigns: figures.campaigns as u32,
                by_city: figures.by_city.into_values().collect(),
            }
        })
        .collect();
    ProgressReport {
        province: copy.plan.province,
        year: copy.plan.year,
        counted_at: ledger.commands_applied(),
        batches,
    }
}
