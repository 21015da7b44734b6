//! The "double random, one public" programme on the node: the inspection-item list in force
//! (the group's adopted list from the ledger, or, until one is adopted, the national list this
//! deployment ships in its configuration), risk scoring from config (copied into each
//! campaign's command, so replicas never read config), the checklist an on-site record is made
//! against (`checklist`), and inspector rosters as CSV (`roster`). The entity directory files
//! are kept files (`crate::kept_files`). The ledger's side is `ledger::campaign`; the draw
//! itself is the `draw` crate.

pub mod checklist;
pub mod draw_parts;
pub mod plan_progress;
pub mod register_counts;
pub mod risk_files;
pub mod roster;

use std::sync::Arc;

use config::inspection::{InspectionConfig, ItemConfig};
use ledger::campaign::item_list::{CheckPoint, ItemList, ItemSpec, OrganiserLevel};
use ledger::campaign::{InspectionItem, RiskScoring};
use ledger::site_record::AnswerKind;
use ledger::{BureauCode, Ledger, Regions};

use crate::api::ApiError;

/// The largest entity directory accepted: a province of 18 million entities is about 2.7 GB
/// (150 bytes a row); this leaves room for twice that. A file is received into a file of its
/// own (never whole in memory) and read in place.
pub const DIRECTORY_BYTES_MAX: usize = 8 * 1024 * 1024 * 1024;
/// Publication of an inspection result is due within 20 working days of its entry.
pub const PUBLICATION_SPAN: &str = "20wd";
/// How long the draw route waits for the parts of a draw that another leader (or task)
/// proposes: a province's 100 parts take well under a minute.
pub const DRAW_IN_PARTS_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(10 * 60);
/// Attempts at committing a draw (its header, for a draw in parts) when the ledger changed
/// while it was computed.
pub const DRAW_ATTEMPTS_MAX: usize = 3;

#[derive(Clone)]
pub struct Programme {
    pub config: Arc<InspectionConfig>,
    /// The configuration's items as the national list (version 0, never adopted): the list in
    /// force until the group adopts one.
    shipped: Arc<ItemList>,
    /// The register's size by region, for 随机抽查数量比例.
    pub register_counts: register_counts::RegisterCountsCache,
    /// The draws in parts whose parts this node proposes now.
    pub draw_drivers: draw_parts::Drivers,
}

/// A configured item as the ledger's list holds it (`config` checked the organiser and the
/// answer kinds; the ledger checks the rest when the list is adopted).
pub fn item_spec(item: &ItemConfig) -> ItemSpec {
    ItemSpec {
        code: item.code.clone(),
        name: item.name.clone(),
        basis: item.basis.clone(),
        organiser: OrganiserLevel::parse(&item.organiser).unwrap_or(OrganiserLevel::County),
        industries: item.industries.clone(),
        expertise: item.expertise.clone(),
        check_points: item
            .check_points
            .iter()
            .map(|point| CheckPoint {
                code: point.code.clone(),
                wording: point.wording.clone(),
                answer: AnswerKind::parse(&point.answer).unwrap_or(AnswerKind::Text),
                basis: point.basis.clone(),
            })
            .collect(),
    }
}

impl Programme {
    pub fn new(config: InspectionConfig) -> Programme {
        let shipped = ItemList::shipped(config.items.iter().map(item_spec).collect());
        Programme {
            config: Arc::new(config),
            shipped: Arc::new(shipped),
            register_counts: Default::default(),
            draw_drivers: Default::default(),
        }
    }

    /// The national list as this deployment ships it.
    pub fn shipped_national_list(&self) -> Vec<ItemSpec> {
        self.config.items.iter().map(item_spec).collect()
    }

    /// The list campaigns choose from: the group's adopted list, else the shipped one.
    pub fn list_in_force<'a>(&'a self, ledger: &'a Ledger) -> &'a ItemList {
        let adopted = ledger.item_list();
        if adopted.adopted() {
            adopted
        } else {
            &self.shipped
        }
    }

    /// The items with these codes, in the order given, as a campaign of `organiser` carries
    /// them: each current on `list` and, once the list is adopted, open to the organiser's
    /// level (the ledger's rule, `ItemList::check_campaign`: a group that never adopted a list
    /// plans as it did before the list had levels).
    pub fn items(
        &self,
        list: &ItemList,
        regions: &Regions,
        organiser: BureauCode,
        codes: &[String],
    ) -> Result<Vec<InspectionItem>, ApiError> {
        let level = regions.region(organiser).map(|region| region.level);
        codes
            .iter()
            .map(|code| {
                let listed = list.current(code).ok_or_else(|| ApiError::Invalid {
                    code: "unknown_item",
                    message: format!(
                        "{code} is not a current item of the inspection-item list (version {}); known: {}",
                        list.version(),
                        list.items()
                            .filter(|i| !i.retired)
                            .map(|i| i.spec.code.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })?;
                if list.adopted() && !level.is_some_and(|level| listed.spec.organiser.admits(level)) {
                    return Err(ApiError::Forbidden(format!(
                        "item {code} is organised by a bureau of {} level or above; bureau {organiser} may not plan it",
                        listed.spec.organiser
                    )));
                }
                Ok(listed.spec.as_campaign_item())
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
