//! The inspection programme's configuration (`config/dev/inspection.toml` by default): the
//! national inspection-item list this deployment ships (a group adopts it into its ledger, where
//! its province adds to it: `ledger::campaign::item_list`; until then campaigns choose from it
//! here) and the risk scoring. The accepting node copies what a command uses into it, so this
//! file never reaches the ledger by itself and a later edit never changes a committed draw.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::ConfigError;

/// The programme `xietong up` and nodes without their own file use.
pub const DEFAULT_INSPECTION_TOML: &str = include_str!("../dev/inspection.toml");

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ItemConfig {
    pub code: String,
    pub name: String,
    /// The law the item is checked under; required before the list is adopted into a ledger.
    #[serde(default)]
    pub basis: String,
    /// The lowest level of bureau that may organise a campaign with it: `province`,
    /// `prefecture` or `county` (the default).
    #[serde(default = "county")]
    pub organiser: String,
    #[serde(default)]
    pub industries: Vec<String>,
    pub expertise: String,
    /// The item's checklist (检查要点), in the order a form shows it.
    #[serde(default)]
    pub check_points: Vec<CheckPointConfig>,
}

/// One check point of an item: what the inspector checks, how it is answered, and the law.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CheckPointConfig {
    pub code: String,
    pub wording: String,
    /// `conformity`, `number` or `text`.
    pub answer: String,
    #[serde(default)]
    pub basis: String,
}

fn county() -> String {
    "county".to_owned()
}

/// The levels an item's `organiser` names (`ledger::campaign::item_list::OrganiserLevel`).
pub const ORGANISER_LEVELS: [&str; 3] = ["province", "prefecture", "county"];

/// How a check point may be answered (`ledger::site_record::AnswerKind`).
pub const ANSWER_KINDS: [&str; 3] = ["conformity", "number", "text"];
/// Check points of one item, and the length of a code, a wording or a basis: the ledger's
/// limits on a record (`ledger::site_record`), so every point can be answered.
pub const CHECK_POINTS_PER_ITEM_MAX: usize = 50;
pub const CHECK_CODE_CHARS_MAX: usize = 32;
pub const CHECK_TEXT_CHARS_MAX: usize = 1_000;

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ScoringConfig {
    pub points_per_finding: i32,
    pub points_per_complaint: i32,
    pub points_per_overdue_task: i32,
    pub high_from: i32,
    pub low_below: i32,
    /// Credit status → points.
    #[serde(default)]
    pub credit: BTreeMap<String, i32>,
    /// Industry code → points.
    #[serde(default)]
    pub industries: BTreeMap<String, i32>,
    /// Region code (with its subtree) → points.
    #[serde(default)]
    pub regions: BTreeMap<String, i32>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct InspectionConfig {
    pub items: Vec<ItemConfig>,
    pub scoring: ScoringConfig,
}

fn invalid(field: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { field: field.to_owned(), reason: reason.into() }
}

/// An item's check points: each with a unique code, a wording and a known answer kind, within
/// the limits a record keeps.
fn check_points(item: &ItemConfig) -> Result<(), ConfigError> {
    let field = format!("items.{}.check_points", item.code);
    if item.check_points.len() > CHECK_POINTS_PER_ITEM_MAX {
        return Err(invalid(&field, format!("at most {CHECK_POINTS_PER_ITEM_MAX}")));
    }
    let mut codes = BTreeSet::new();
    for point in &item.check_points {
        let code_fits = !point.code.is_empty() && point.code.chars().count() <= CHECK_CODE_CHARS_MAX;
        if !code_fits || !codes.insert(point.code.as_str()) {
            return Err(invalid(
                &field,
                format!("{:?}: a unique code of 1 to {CHECK_CODE_CHARS_MAX} characters", point.code),
            ));
        }
        let fits = |text: &str| text.chars().count() <= CHECK_TEXT_CHARS_MAX;
        if point.wording.trim().is_empty() || !fits(&point.wording) || !fits(&point.basis) {
            return Err(invalid(
                &field,
                format!(
                    "{}: a wording, and a wording and basis of at most {CHECK_TEXT_CHARS_MAX} characters",
                    point.code
                ),
            ));
        }
        if !ANSWER_KINDS.contains(&point.answer.as_str()) {
            return Err(invalid(&field, format!("{}: answer is one of {}", point.code, ANSWER_KINDS.join(", "))));
        }
    }
    Ok(())
}

impl InspectionConfig {
    pub fn parse(text: &str) -> Result<InspectionConfig, ConfigError> {
        let config: InspectionConfig = toml::from_str(text).map_err(|e| invalid("inspection", e.to_string()))?;
        let codes: BTreeSet<&str> = config.items.iter().map(|item| item.code.as_str()).collect();
        if codes.len() != config.items.len() {
            return Err(invalid("items", "an item code appears twice"));
        }
        if config.items.iter().any(|item| item.code.is_empty() || item.name.is_empty() || item.expertise.is_empty()) {
            return Err(invalid("items", "every item has a code, a name and an expertise"));
        }
        for item in &config.items {
            check_points(item)?;
            if !ORGANISER_LEVELS.contains(&item.organiser.as_str()) {
                return Err(invalid(
                    &format!("items.{}.organiser", item.code),
                    format!("one of {}", ORGANISER_LEVELS.join(", ")),
                ));
            }
        }
        if config.scoring.low_below > config.scoring.high_from {
            return Err(invalid("scoring", "low_below must not exceed high_from"));
        }
        Ok(config)
    }

    pub fn default_programme() -> InspectionConfig {
        InspectionConfig::parse(DEFAULT_INSPECTION_TOML).expect("the default programme is valid (checked by tests)")
    }

    pub fn item(&self, code: &str) -> Option<&ItemConfig> {
        self.items.iter().find(|item| item.code == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_programme_parses() {
        let programme = InspectionConfig::default_programme();
        assert!(programme.item("A01").is_some());
        assert!(programme.scoring.high_from > programme.scoring.low_below);
    }

    #[test]
    fn a_repeated_item_code_is_refused() {
        let text = DEFAULT_INSPECTION_TOML.replace("code = \"B01\"", "code = \"A01\"");
        assert!(InspectionConfig::parse(&text).is_err());
    }
}
