//! The rules a draw's result keeps, checked against the inputs the ledger derived.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::command::{conflict, ConflictCode, Rejection};
use crate::validate::{self, invalid};

/// A rule of the draw that a proposed result breaks: refused, never asserted, since the result
/// comes from a node and a bad one must not stop the replicas.
fn rule(holds: bool, rule: &str) -> Result<(), Rejection> {
    if holds {
        Ok(())
    } else {
        Err(invalid("draw", format!("the result breaks a rule of the draw: {rule}")))
    }
}

/// A result computed from inputs other than the ledger's (they changed, or it is forged).
fn outdated(what: &str) -> Rejection {
    conflict(ConflictCode::DrawOutdated, format!("{what}; draw again"))
}

/// The rules a draw's result must keep, checked against the inputs the ledger derived: the
/// seed, teams (size, pool, qualification by expertise, conflicts with recusals on record, no
/// member of the entity's last team, the office-and-stations mix), items, strata quotas and the
/// 3% floor.
pub fn check_draw(
    regions: &Regions,
    departments: &departments::Departments,
    inputs: &DrawInputs,
    result: &DrawResult,
) -> Result<(), Rejection> {
    if result.seed != hex(&inputs.seed()) {
        return Err(outdated("the draw was computed from other inputs (inspectors, history or beacon changed)"));
    }
    if result.inspections.len() > DRAW_INSPECTIONS_MAX {
        return Err(Rejection::LimitReached(format!(
            "a draw creates at most {DRAW_INSPECTIONS_MAX} inspections in one entry ({} drawn): draw it in parts",
            result.inspections.len()
        )));
    }
    check_result(regions, departments, inputs, result)
}

/// The rules of a draw on a result of any size: what `check_draw` checks but the size of one
/// entry. The node checks a draw it commits in parts by them before its header, so no part of
/// its own is refused midway.
pub fn check_result(
    regions: &Regions,
    departments: &departments::Departments,
    inputs: &DrawInputs,
    result: &DrawResult,
) -> Result<(), Rejection> {
    let summary = DrawSummary::of(result);
    check_summary(inputs, &summary, result.inspections.len() as u64)?;
    let rules = InspectionRules::new(regions, departments, inputs);
    let mut entities = BTreeSet::new();
    let mut tally = QuotaTally::default();
    for inspection in &result.inspections {
        rules.check(inspection)?;
        let uscc = inspection.subject.uscc.as_ref().expect("checked: every drawn entity has a USCC");
        rule(entities.insert(uscc.clone()), "an entity is inspected once per draw (items merge)")?;
        tally.count(inspection);
    }
    tally.check(&summary)
}

/// What holds of a draw as a whole, from its summary: the seed follows from the inputs, the
/// floor, the recusals, each stratum's quota. `inspections`: how many it draws.
pub(super) fn check_summary(inputs: &DrawInputs, summary: &DrawSummary, inspections: u64) -> Result<(), Rejection> {
    if summary.seed != hex(&inputs.seed()) {
        return Err(outdated("the draw was computed from other inputs (inspectors, history or beacon changed)"));
    }
    let floor = ceil_ratio(summary.eligible, DRAW_RATIO_FLOOR_BP);
    rule(inspections >= floor.min(summary.eligible), "a draw never falls under the 3% floor")?;
    for recusal in &summary.recusals {
        rule(
            inputs.conflicts.binary_search(&(recusal.inspector.clone(), recusal.uscc.clone())).is_ok(),
            "a recusal rests on a declared conflict",
        )?;
    }
    for stratum in &summary.strata {
        let ratio = inputs.spec.ratios.of(stratum.class);
        rule(stratum.quota == ceil_ratio(stratum.population, ratio), "quota = ratio of the population, rounded up")?;
    }
    Ok(())
}

/// How many inspections of each stratum a draw's inspections drew by its quota (top-ups aside).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaTally {
    drawn: BTreeMap<(String, RiskClass), u64>,
}

impl QuotaTally {
    /// Counts an inspection under each stratum it falls in.
    pub(super) fn count(&mut self, inspection: &DrawnInspection) {
        if inspection.top_up {
            return;
        }
        for item in &inspection.items {
            *self.drawn.entry((item.clone(), inspection.risk_class)).or_default() += 1;
        }
    }

    /// How many it counted for stratum (`item`, `class`).
    pub(super) fn drawn(&self, item: &str, class: RiskClass) -> u64 {
        self.drawn.get(&(item.to_owned(), class)).copied().unwrap_or(0)
    }

    /// Each stratum drew its quota.
    pub(super) fn check(&self, summary: &DrawSummary) -> Result<(), Rejection> {
        for stratum in &summary.strata {
            let drawn = self.drawn.get(&(stratum.item.clone(), stratum.class)).copied().unwrap_or(0);
            rule(drawn == stratum.quota, "each stratum drew its quota")?;
        }
        Ok(())
    }
}

/// The rules each drawn inspection keeps, against the inputs the ledger derived. The pool is
/// sorted by id, the histories by USCC and the conflicts by (inspector, USCC), as the ledger
/// derives them, so each is searched in place.
pub(super) struct InspectionRules<'a> {
    regions: &'a Regions,
    departments: &'a departments::Departments,
    inputs: &'a DrawInputs,
}

impl<'a> InspectionRules<'a> {
    pub(super) fn new(
        regions: &'a Regions,
        departments: &'a departments::Departments,
        inputs: &'a DrawInputs,
    ) -> InspectionRules<'a> {
        debug_assert!(inputs.pool.windows(2).all(|w| w[0].id < w[1].id), "the pool is sorted by id");
        debug_assert!(inputs.histories.windows(2).all(|w| w[0].uscc < w[1].uscc), "histories are sorted by USCC");
        InspectionRules { regions, departments, inputs }
    }

    fn inspector(&self, id: &str) -> Option<&'a Inspector> {
        let pool = &self.inputs.pool;
        pool.binary_search_by(|inspector| inspector.id.as_str().cmp(id)).ok().map(|at| &pool[at])
    }

    fn last_team(&self, uscc: &Uscc) -> &'a [String] {
        let histories = &self.inputs.histories;
        histories.binary_search_by(|history| history.uscc.cmp(uscc)).map_or(&[], |at| &histories[at].last_team)
    }

    pub(super) fn check(&self, inspection: &DrawnInspection) -> Result<(), Rejection> {
        let spec = &self.inputs.spec;
        let uscc = inspection.subject.uscc.as_ref().ok_or_else(|| invalid("inspections", "an entity without USCC"))?;
        let subject = &inspection.subject;
        validate::text("subject.name", &subject.name, crate::limits::SUBJECT_NAME_CHARS_MAX, true, false)?;
        validate::text("subject.address", &subject.address, crate::limits::SUBJECT_ADDRESS_CHARS_MAX, false, false)?;
        rule(self.regions.is_within(inspection.subject.region_code, spec.scope_region), "drawn within the scope")?;
        rule(inspection.bureau == inspection.subject.region_code, "the entity's own bureau inspects")?;
        let capped = self.inputs.year_cap.as_ref().is_some_and(|cap| cap.has_reached(uscc));
        rule(!capped, "no entity inspected as often as the yearly cap allows")?;
        let items: Vec<&InspectionItem> = spec.items.iter().filter(|i| inspection.items.contains(&i.code)).collect();
        rule(!items.is_empty() && items.len() == inspection.items.len(), "items from the campaign")?;
        rule(inspection.inspectors.len() as u32 == spec.inspectors_per_inspection, "a full team")?;
        let team: BTreeSet<&String> = inspection.inspectors.iter().collect();
        rule(team.len() == inspection.inspectors.len(), "an inspector once per team")?;
        let last_team = self.last_team(uscc);
        let mut office = false;
        let mut station = false;
        let mut members = Vec::with_capacity(inspection.inspectors.len());
        for id in &inspection.inspectors {
            let inspector = self.inspector(id).ok_or_else(|| outdated("an inspector left the pool"))?;
            rule(inspector.bureau == inspection.bureau, "inspectors of the responsible bureau")?;
            rule(
                items.iter().any(|item| inspector.expertise.contains(&item.expertise)),
                "every inspector has expertise for an item",
            )?;
            let conflicted = self.inputs.conflicts.binary_search(&(id.clone(), uscc.clone())).is_ok();
            rule(!conflicted, "no inspector with a declared conflict")?;
            rule(!last_team.contains(id), "no inspector of the entity's last team")?;
            // Another department's inspector is neither the bureau's office nor a station. By the
            // group's membership, not the tag: a log from before departments decides as it did.
            let own_staff = self.departments.of_inspector(id).is_none();
            office |= own_staff && inspector.station.is_none();
            station |= own_staff && inspector.station.is_some();
            members.push(inspector);
        }
        for item in &items {
            rule(
                members.iter().any(|inspector| inspector.expertise.contains(&item.expertise)),
                "the team covers every item's expertise",
            )?;
        }
        if spec.inspector_mode == InspectorMode::OfficeAndStations {
            rule(office && station, "an office member and a station member")?;
        }
        Ok(())
    }
}
