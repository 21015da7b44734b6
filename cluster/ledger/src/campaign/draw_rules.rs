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

/// The rules a draw's result must keep, checked against the inputs the ledger derived: the
/// seed, teams (size, pool, qualification by expertise, conflicts with recusals on record, no
/// member of the entity's last team, the office-and-stations mix), items, strata quotas and the
/// 3% floor.
pub fn check_draw(regions: &Regions, inputs: &DrawInputs, result: &DrawResult) -> Result<(), Rejection> {
    let stale = |what: &str| conflict(ConflictCode::DrawOutdated, format!("{what}; draw again"));
    if result.seed != hex(&inputs.seed()) {
        return Err(stale("the draw was computed from other inputs (inspectors, history or beacon changed)"));
    }
    if result.inspections.len() > DRAW_INSPECTIONS_MAX {
        return Err(Rejection::LimitReached(format!(
            "a draw creates at most {DRAW_INSPECTIONS_MAX} inspections ({} drawn): split the campaign by region",
            result.inspections.len()
        )));
    }
    let floor = ceil_ratio(result.eligible, DRAW_RATIO_FLOOR_BP);
    rule(result.inspections.len() as u64 >= floor.min(result.eligible), "a draw never falls under the 3% floor")?;
    let spec = &inputs.spec;
    let pool: BTreeMap<&str, &Inspector> = inputs.pool.iter().map(|i| (i.id.as_str(), i)).collect();
    let histories: BTreeMap<&Uscc, &EntityHistory> = inputs.histories.iter().map(|h| (&h.uscc, h)).collect();
    let mut entities = BTreeSet::new();
    for inspection in &result.inspections {
        let uscc = inspection.subject.uscc.as_ref().ok_or_else(|| invalid("inspections", "an entity without USCC"))?;
        rule(entities.insert(uscc), "an entity is inspected once per draw (items merge)")?;
        let subject = &inspection.subject;
        validate::text("subject.name", &subject.name, crate::limits::SUBJECT_NAME_CHARS_MAX, true, false)?;
        validate::text("subject.address", &subject.address, crate::limits::SUBJECT_ADDRESS_CHARS_MAX, false, false)?;
        rule(regions.is_within(inspection.subject.region_code, spec.scope_region), "drawn within the scope")?;
        rule(inspection.bureau == inspection.subject.region_code, "the entity's own bureau inspects")?;
        let items: Vec<&InspectionItem> = spec.items.iter().filter(|i| inspection.items.contains(&i.code)).collect();
        rule(!items.is_empty() && items.len() == inspection.items.len(), "items from the campaign")?;
        rule(inspection.inspectors.len() as u32 == spec.inspectors_per_inspection, "a full team")?;
        let team: BTreeSet<&String> = inspection.inspectors.iter().collect();
        rule(team.len() == inspection.inspectors.len(), "an inspector once per team")?;
        let last_team = histories.get(uscc).map(|h| h.last_team.as_slice()).unwrap_or_default();
        let mut office = false;
        let mut station = false;
        for id in &inspection.inspectors {
            let inspector = pool.get(id.as_str()).ok_or_else(|| stale("an inspector left the pool"))?;
            rule(inspector.bureau == inspection.bureau, "inspectors of the responsible bureau")?;
            rule(
                items.iter().any(|item| inspector.expertise.contains(&item.expertise)),
                "every inspector has expertise for an item",
            )?;
            let conflicted = inputs.conflicts.binary_search(&(id.clone(), uscc.clone())).is_ok();
            rule(!conflicted, "no inspector with a declared conflict")?;
            rule(!last_team.contains(id), "no inspector of the entity's last team")?;
            office |= inspector.station.is_none();
            station |= inspector.station.is_some();
        }
        for item in &items {
            rule(
                inspection.inspectors.iter().any(|id| pool[id.as_str()].expertise.contains(&item.expertise)),
                "the team covers every item's expertise",
            )?;
        }
        if spec.inspector_mode == InspectorMode::OfficeAndStations {
            rule(office && station, "an office member and a station member")?;
        }
    }
    for recusal in &result.recusals {
        rule(
            inputs.conflicts.binary_search(&(recusal.inspector.clone(), recusal.uscc.clone())).is_ok(),
            "a recusal rests on a declared conflict",
        )?;
    }
    for stratum in &result.strata {
        let ratio = spec.ratios.of(stratum.class);
        rule(stratum.quota == ceil_ratio(stratum.population, ratio), "quota = ratio of the population, rounded up")?;
        let drawn = result
            .inspections
            .iter()
            .filter(|i| !i.top_up && i.risk_class == stratum.class && i.items.contains(&stratum.item))
            .count() as u64;
        rule(drawn == stratum.quota, "each stratum drew its quota")?;
    }
    Ok(())
}
