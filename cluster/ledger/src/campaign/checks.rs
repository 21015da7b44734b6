//! The checks of the programme's inputs on their own: a campaign's parameters, an inspector's
//! record, labels and outcomes (the API runs them too, for a fast 400).

use super::*;
use crate::bureau::Regions;
use crate::command::{Actor, Rejection, Role};
use crate::validate::{self, invalid};

pub(super) fn command_over(regions: &Regions, actor: &Actor, bureau: BureauCode, what: &str) -> Result<(), Rejection> {
    if actor.role == Role::Command && regions.is_within(bureau, actor.bureau) {
        Ok(())
    } else {
        Err(Rejection::Forbidden(format!(
            "a {} user of bureau {} cannot {what} for bureau {bureau}",
            actor.role, actor.bureau
        )))
    }
}

fn labels(field: &str, values: &[String]) -> Result<(), Rejection> {
    if values.len() > LABELS_MAX {
        return Err(invalid(field, format!("has {} entries, at most {LABELS_MAX}", values.len())));
    }
    for value in values {
        validate::text(field, value, LABEL_CHARS_MAX, true, false)?;
    }
    Ok(())
}

pub fn is_hex_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The outcomes an inspection may have (抽查结果).
pub fn is_inspection_outcome(outcome: CompletionOutcome) -> bool {
    matches!(
        outcome,
        CompletionOutcome::NoProblemFound
            | CompletionOutcome::Corrected
            | CompletionOutcome::Penalized
            | CompletionOutcome::NotFoundAtAddress
            | CompletionOutcome::CaseOpened
    )
}

/// Outcomes whose finding the bureau with jurisdiction follows up (后续监管): a correction is
/// checked again (整改复查), an opened case is handled (立案查处).
pub fn needs_follow_up(outcome: CompletionOutcome) -> bool {
    matches!(outcome, CompletionOutcome::Corrected | CompletionOutcome::CaseOpened)
}

/// Outcomes that found a problem: they raise the entity's risk next time.
pub(crate) fn is_finding(outcome: CompletionOutcome) -> bool {
    matches!(
        outcome,
        CompletionOutcome::Corrected
            | CompletionOutcome::Penalized
            | CompletionOutcome::CaseOpened
            | CompletionOutcome::Warned
            | CompletionOutcome::NotFoundAtAddress
    )
}

/// Checks a campaign's parameters on their own (the API runs this too, for a fast 400).
pub fn check_spec(regions: &Regions, spec: &CampaignSpec) -> Result<(), Rejection> {
    check_spec_with_class_floor(regions, spec, 1)
}

/// Whether `spec` draws some class it covers under the 3% floor: a campaign only
/// `ProgrammeAction::CreateCampaignOnTotal` makes.
pub fn draws_a_class_thinly(spec: &CampaignSpec) -> bool {
    RiskClass::ALL.iter().any(|class| {
        let drawn_from = spec.risk_classes.is_empty() || spec.risk_classes.contains(class);
        drawn_from && spec.ratios.of(*class) < DRAW_RATIO_FLOOR_BP
    })
}

/// `check_spec` with every class drawn from needing `class_floor_bp` at least: 1 now, the 3%
/// floor (`DRAW_RATIO_FLOOR_BP`) for a `CreateCampaign` committed before the rule changed.
pub(crate) fn check_spec_with_class_floor(
    regions: &Regions,
    spec: &CampaignSpec,
    class_floor_bp: u32,
) -> Result<(), Rejection> {
    validate::text("name", &spec.name, crate::limits::TITLE_CHARS_MAX, true, false)?;
    if !regions.is_active(spec.scope_region) || !regions.is_within(spec.scope_region, spec.bureau) {
        return Err(invalid(
            "scope.region",
            format!("{} is not a region within the organising bureau {}", spec.scope_region, spec.bureau),
        ));
    }
    if spec.items.is_empty() || spec.items.len() > LABELS_MAX {
        return Err(invalid("items", format!("a campaign has 1 to {LABELS_MAX} inspection items")));
    }
    let codes: BTreeSet<&str> = spec.items.iter().map(|item| item.code.as_str()).collect();
    if codes.len() != spec.items.len() {
        return Err(invalid("items", "an item is listed twice"));
    }
    labels("scope.industries", &spec.industries)?;
    let restricted = !spec.industries.is_empty() || !spec.risk_classes.is_empty();
    if spec.targeted != restricted {
        return Err(invalid(
            "targeted",
            "a targeted campaign (定向抽查) names industries or risk classes; an untargeted one names neither",
        ));
    }
    for class in RiskClass::ALL {
        let ratio = spec.ratios.of(*class);
        let drawn_from = spec.risk_classes.is_empty() || spec.risk_classes.contains(class);
        // The 3% floor (比例不低于3%) is on the total drawn of the population, which the draw
        // keeps (a top-up, checked by `check_draw`); a class may be drawn more thinly than 3%
        // (a province's 30/10/2/1% for its four credit-risk classes), never not at all.
        if drawn_from && !(class_floor_bp.max(1)..=BASIS_POINTS).contains(&ratio) {
            let floor = if class_floor_bp > 1 { "3%" } else { "a ratio above 0" };
            return Err(invalid(
                &format!("ratios.{class}"),
                format!("{ratio} basis points: every class drawn from needs {floor} and at most 100%"),
            ));
        }
    }
    if !(TEAM_SIZE_MIN..=TEAM_SIZE_MAX).contains(&spec.inspectors_per_inspection) {
        return Err(invalid(
            "inspectors_per_inspection",
            format!("{TEAM_SIZE_MIN} to {TEAM_SIZE_MAX}: an inspector never inspects alone"),
        ));
    }
    match &spec.inspector_mode {
        InspectorMode::Stations(stations) if stations.is_empty() => {
            return Err(invalid("inspector_mode", "name the stations to draw from"))
        }
        InspectorMode::Stations(stations) => labels("inspector_mode.stations", stations)?,
        InspectorMode::Station(station) => {
            validate::text("inspector_mode.station", station, LABEL_CHARS_MAX, true, false)?
        }
        InspectorMode::WholeBureau | InspectorMode::OfficeAndStations => {}
    }
    if !is_hex_sha256(&spec.entity_directory) {
        return Err(invalid("entity_directory", "not a SHA-256 in hex"));
    }
    Ok(())
}

/// Checks an inspector entry on its own.
pub fn check_inspector(regions: &Regions, inspector: &Inspector) -> Result<(), Rejection> {
    validate::text("id", &inspector.id, INSPECTOR_ID_CHARS_MAX, true, false)?;
    if !inspector.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(invalid("id", "letters, digits, '-' and '_' only"));
    }
    validate::text("name", &inspector.name, INSPECTOR_NAME_CHARS_MAX, true, false)?;
    if !regions.is_active(inspector.bureau) {
        return Err(invalid("bureau", format!("{} is not a region code in GB/T 2260", inspector.bureau)));
    }
    if let Some(station) = &inspector.station {
        validate::text("station", station, LABEL_CHARS_MAX, true, false)?;
    }
    labels("expertise", &inspector.expertise)
}
