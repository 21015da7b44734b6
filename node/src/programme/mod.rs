//! The "double random, one public" programme on the node: the inspection-item list and risk
//! scoring from config (copied into each campaign's command, so replicas never read config),
//! the checklist an on-site record is made against (`checklist`), and inspector rosters as CSV
//! (`roster`). The entity directory files are kept files (`crate::kept_files`). The ledger's
//! side is `ledger::campaign`; the draw itself is the `draw` crate.

pub mod checklist;
pub mod roster;

use std::sync::Arc;

use config::inspection::InspectionConfig;
use ledger::campaign::{InspectionItem, RiskScoring};
use ledger::BureauCode;

use crate::api::ApiError;

/// The largest entity directory accepted over HTTP: about 2.5 million entities (a large
/// province's register is larger; split it by city or raise this with the request timeout).
pub const DIRECTORY_BYTES_MAX: usize = 256 * 1024 * 1024;
/// Publication of an inspection result is due within 20 working days of its entry.
pub const PUBLICATION_SPAN: &str = "20wd";
/// Attempts at committing a draw when the ledger changed while it was computed.
pub const DRAW_ATTEMPTS_MAX: usize = 3;

#[derive(Clone)]
pub struct Programme {
    pub config: Arc<InspectionConfig>,
}

impl Programme {
    /// The items with these codes, in the order given, as the campaign's command carries them.
    pub fn items(&self, codes: &[String]) -> Result<Vec<InspectionItem>, ApiError> {
        codes
            .iter()
            .map(|code| {
                let item = self.config.item(code).ok_or_else(|| ApiError::Invalid {
                    code: "unknown_item",
                    message: format!(
                        "{code} is not on the inspection-item list; known: {}",
                        self.config.items.iter().map(|i| i.code.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                })?;
                Ok(InspectionItem {
                    code: item.code.clone(),
                    name: item.name.clone(),
                    industries: item.industries.clone(),
                    expertise: item.expertise.clone(),
                })
            })
            .collect()
    }

    pub fn scoring(&self) -> RiskScoring {
        let scoring = &self.config.scoring;
        RiskScoring {
            credit_points: scoring.credit.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            industry_points: scoring.industries.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            region_points: scoring
                .regions
                .iter()
                .filter_map(|(code, points)| BureauCode::parse_digits(code).map(|c| (c, *points)))
                .collect(),
            points_per_finding: scoring.points_per_finding,
            points_per_complaint: scoring.points_per_complaint,
            points_per_overdue_task: scoring.points_per_overdue_task,
            high_from: scoring.high_from,
            low_below: scoring.low_below,
        }
    }
}
