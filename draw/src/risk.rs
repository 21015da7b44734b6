//! Risk classes (风险分类) from a configurable scoring: points for the entity's credit status,
//! industry and region, and for its history in the ledger (findings, complaints, overdue
//! tasks); the sum decides high, normal or low. Where the register holds the provincial
//! credit-risk system's class (`EntityRow::risk_class`), that class stands in for the credit,
//! industry and region points (the system weighed those already), from an edge of its class
//! (`assessed_points`), and the ledger's history still adds to it: events since the system's
//! last classification raise an entity. The class feeds the draw and never leaves the bureaus
//! (风险分类情况不对外公开).

use std::collections::HashMap;

use ledger::campaign::{EntityHistory, RiskClass, RiskScoring};
use ledger::{BureauCode, Regions};

use crate::directory::EntityRow;

/// A scoring ready for millions of rows: labels in maps, region points cached per code.
pub struct RiskScorer<'a> {
    regions: &'a Regions,
    scoring: &'a RiskScoring,
    credit: HashMap<&'a str, i32>,
    industry: HashMap<&'a str, i32>,
    region: HashMap<BureauCode, i32>,
}

impl<'a> RiskScorer<'a> {
    pub fn new(regions: &'a Regions, scoring: &'a RiskScoring) -> RiskScorer<'a> {
        RiskScorer {
            regions,
            scoring,
            credit: scoring.credit_points.iter().map(|(k, v)| (k.as_str(), *v)).collect(),
            industry: scoring.industry_points.iter().map(|(k, v)| (k.as_str(), *v)).collect(),
            region: HashMap::new(),
        }
    }

    pub fn points(&mut self, row: &EntityRow<'_>, history: Option<&EntityHistory>) -> i32 {
        let (regions, scoring) = (self.regions, self.scoring);
        let region = *self.region.entry(row.region).or_insert_with(|| {
            scoring.region_points.iter().find(|(code, _)| regions.is_within(row.region, *code)).map_or(0, |(_, p)| *p)
        });
        let mut points = match row.risk_class {
            Some(class) => self.assessed_points(class),
            None => {
                self.credit.get(row.credit_status).copied().unwrap_or(0)
                    + self.industry.get(row.industry).copied().unwrap_or(0)
                    + region
            }
        };
        if let Some(history) = history {
            let per = |count: u32, each: i32| i32::try_from(count).unwrap_or(i32::MAX).saturating_mul(each);
            points = points
                .saturating_add(per(history.findings, scoring.points_per_finding))
                .saturating_add(per(history.complaints, scoring.points_per_complaint))
                .saturating_add(per(history.overdue_tasks, scoring.points_per_overdue_task));
        }
        points
    }

    /// The points an assessed class starts from: the lower edge of high and of normal, the
    /// upper edge of low. The ledger's events then move it up as they would a scored entity: a
    /// low one with its first points, a normal one with as many as separate normal from high.
    fn assessed_points(&self, class: RiskClass) -> i32 {
        let (high_from, low_below) = (self.scoring.high_from, self.scoring.low_below);
        match class {
            RiskClass::High => high_from,
            // A scoring whose classes leave no room for normal still scores it below high.
            RiskClass::Normal => low_below.min(high_from.saturating_sub(1)),
            RiskClass::Low => low_below.saturating_sub(1),
        }
    }

    pub fn class(&mut self, row: &EntityRow<'_>, history: Option<&EntityHistory>) -> RiskClass {
        let points = self.points(row, history);
        if points >= self.scoring.high_from {
            RiskClass::High
        } else if points < self.scoring.low_below {
            RiskClass::Low
        } else {
            RiskClass::Normal
        }
    }
}
