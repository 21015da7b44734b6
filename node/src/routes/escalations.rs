//! `GET /api/v1/escalations?bureau=440100`: per assignee bureau in the caller's view, how many
//! of its tasks are overdue now, were escalated, and how many reminders they drew. The list
//! leadership and command centres use to see who is late (通报).

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledger::{access, BureauCode, Regions};
use serde::Deserialize;

use crate::api::{self, time, ApiError, EscalationsJson, LatenessJson};
use crate::state::AppState;

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct EscalationsQuery {
    /// Only assignee bureaus in this subtree (default: the caller's bureau).
    #[schemars(schema_with = "crate::api::schema::optional_region_code")]
    bureau: Option<String>,
}

#[derive(Default)]
struct BureauLateness {
    open: u64,
    overdue_now: u64,
    escalated: u64,
    escalated_open: u64,
    reminders: u64,
}

pub async fn escalations(State(state): State<AppState>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    let answer = (|| {
        let user = state.users.authenticate(&headers)?;
        let query: EscalationsQuery = super::request::parse_query(raw)?;
        let root = match &query.bureau {
            Some(text) => api::parse_bureau("bureau", text)?,
            None => user.actor.bureau,
        };
        let regions = Regions::get();
        let now_ms = time::now_ms();
        let mut by_bureau: BTreeMap<BureauCode, BureauLateness> = BTreeMap::new();
        let replica = state.store.read();
        for task in replica.ledger.tasks_newest_first(None) {
            let Some(assignee) = task.handling.assignee_bureau else { continue };
            if !access::can_see(&user.actor, &task) || !regions.is_within(assignee, root) {
                continue;
            }
            let entry = by_bureau.entry(assignee).or_default();
            let open = !task.handling.state.is_terminal();
            entry.open += u64::from(open);
            entry.overdue_now += u64::from(task.is_overdue_at(now_ms));
            entry.escalated += u64::from(!task.handling.escalated_to.is_empty());
            entry.escalated_open += u64::from(open && !task.handling.escalated_to.is_empty());
            entry.reminders += u64::from(task.handling.reminders_sent);
        }
        drop(replica);
        let mut rows: Vec<_> = by_bureau
            .into_iter()
            .map(|(bureau, l)| LatenessJson {
                bureau: bureau.to_string(),
                name: regions.name(bureau).map(str::to_owned),
                open: l.open,
                overdue_now: l.overdue_now,
                escalated: l.escalated,
                escalated_open: l.escalated_open,
                reminders: l.reminders,
            })
            .collect();
        // The latest first: most overdue, then most escalated.
        rows.sort_by_key(|row| std::cmp::Reverse((row.overdue_now, row.escalated)));
        Ok::<_, ApiError>(Json(EscalationsJson { bureau: root.to_string(), bureaus: rows }))
    })();
    match answer {
        Ok(body) => body.into_response(),
        Err(error) => error.into_response(),
    }
}
