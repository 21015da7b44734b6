//! The checklist (检查要点) an on-site record of a task is made against: the check points of
//! its inspection's items, as the programme's configuration lists them now. A task that is no
//! drawn inspection has an empty checklist (its record holds notes, photos and signatures).

use config::inspection::InspectionConfig;
use ledger::task::Task;

use crate::api::site_record::{CheckPointJson, ChecklistItemJson, ChecklistJson};

/// The checklist of `task` under `config`, named by its SHA-256.
pub fn of_task(config: &InspectionConfig, task: &Task) -> ChecklistJson {
    let items = task.inspection.iter().flat_map(|inspection| &inspection.items).map(|item| {
        // The campaign copied the item's code and name; its check points are the list's now
        // (an item since taken off the list has none).
        let check_points = config.item(&item.code).map_or_else(Vec::new, |listed| {
            listed
                .check_points
                .iter()
                .map(|point| CheckPointJson {
                    code: point.code.clone(),
                    wording: point.wording.clone(),
                    answer: point.answer.clone(),
                    basis: point.basis.clone(),
                })
                .collect()
        });
        ChecklistItemJson { code: item.code.clone(), name: item.name.clone(), check_points }
    });
    ChecklistJson::of(items.collect())
}
