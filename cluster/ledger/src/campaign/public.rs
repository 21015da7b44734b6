//! The public view of a result (一公开).

use serde::{Deserialize, Serialize};

use super::*;
use crate::task::{Task, TaskState};

/// A published result as the public sees it (一公开): built field by field; nothing internal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicResult {
    pub task: TaskId,
    pub campaign: u64,
    pub campaign_name: String,
    pub uscc: Option<Uscc>,
    pub entity_name: String,
    pub region_code: BureauCode,
    pub items: Vec<String>,
    pub outcome: CompletionOutcome,
    pub inspected_at_ms: u64,
    pub published_at_ms: u64,
    pub organiser: BureauCode,
    /// Each other department's outcome of a joint inspection (its last part), by the
    /// department's code; its summary stays internal.
    pub department_outcomes: Vec<(String, CompletionOutcome)>,
}

impl PublicResult {
    pub fn of(task: &Task) -> Option<PublicResult> {
        let record = task.inspection.as_ref()?;
        let settled = matches!(task.handling.state, TaskState::Completed | TaskState::Closed);
        if !settled || record.publication() != Some(PublicationState::Published) {
            return None;
        }
        Some(PublicResult {
            task: task.id,
            campaign: record.campaign,
            campaign_name: record.campaign_name.clone(),
            uscc: task.subject.uscc.clone(),
            entity_name: task.subject.name.clone(),
            region_code: task.subject.region_code,
            items: record.items.iter().map(|item| item.name.clone()).collect(),
            outcome: task.handling.outcome?,
            inspected_at_ms: record.result_entered_at_ms?,
            published_at_ms: record.published_at_ms?,
            organiser: task.origin_bureau,
            department_outcomes: {
                let mut last: BTreeMap<&str, CompletionOutcome> = BTreeMap::new();
                for part in &task.field_work.department_parts {
                    last.insert(&part.department, part.outcome);
                }
                last.into_iter().map(|(code, outcome)| (code.to_owned(), outcome)).collect()
            },
        })
    }
}
