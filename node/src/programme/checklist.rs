//! The checklist (检查要点) an on-site record of a task is made against: the check points of
//! its inspection's items, as the item list in force lists them now. A task that is no drawn
//! inspection has an empty checklist (its record holds notes, photos and signatures).

use ledger::campaign::item_list::ItemList;
use ledger::task::Task;

use crate::api::site_record::{CheckPointJson, ChecklistItemJson, ChecklistJson};

/// The checklist of `task` under `list`, named by its SHA-256.
pub fn of_task(list: &ItemList, task: &Task) -> ChecklistJson {
    let items = task.inspection.iter().flat_map(|inspection| &inspection.items).map(|item| {
        // The campaign copied the item's code and name; its check points are the list's now
        // (a retired item keeps its points, so a campaign under way can still record it).
        let check_points = list.item(&item.code).map_or_else(Vec::new, |listed| {
            listed
                .spec
                .check_points
                .iter()
                .map(|point| CheckPointJson {
                    code: point.code.clone(),
                    wording: point.wording.clone(),
                    answer: point.answer.as_str().to_owned(),
                    basis: point.basis.clone(),
                })
                .collect()
        });
        ChecklistItemJson { code: item.code.clone(), name: item.name.clone(), check_points }
    });
    ChecklistJson::of(items.collect())
}
