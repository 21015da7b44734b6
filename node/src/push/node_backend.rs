//! The node as a console backend: its own ledger's snapshots and its own hub's events.

use std::collections::BTreeMap;
use std::sync::Arc;

use ledger::access;

use super::hub::EventHub;
use axum::extract::WebSocketUpgrade;
use axum::response::Response;

use super::ws::{upgrade_with, ConnectionCounts, ConsoleBackend, Watcher};
use crate::api::console::{BureauCounts, ServerMessage, Snapshot, Welcome};
use crate::api::{task_json, time, ApiError};
use crate::presence::Presence;
use crate::state::AppState;

/// `GET /ws` on a node: a console connection served from this node's ledger and hub.
pub async fn upgrade(
    axum::extract::State(state): axum::extract::State<AppState>,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade_with(state, upgrade)
}

/// Open tasks sent in one snapshot at most (newest first); counts still cover all of them.
pub const SNAPSHOT_TASKS_MAX: usize = 2_000;

impl ConsoleBackend for AppState {
    async fn user_for_token(&self, token: &str) -> Result<crate::auth::User, ApiError> {
        self.users.user_for_token(token)
    }

    fn accounts_changed(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.store.people_now().watch())
    }

    fn connections(&self) -> &Arc<ConnectionCounts> {
        &self.ws_connections
    }

    fn hub(&self) -> &EventHub {
        &self.push_hub
    }

    fn push_latency(&self) -> &prometheus::Histogram {
        &self.telemetry.push_latency
    }

    fn served_by(&self, welcome: &mut Welcome) {
        welcome.node_id = Some(self.node_id);
    }

    fn presence(&self) -> Option<&Arc<Presence>> {
        self.presence.as_ref()
    }

    fn regions(&self) -> Arc<ledger::Regions> {
        AppState::regions(self)
    }

    async fn snapshot(&self, watcher: &Watcher, _token: &str) -> Result<(u64, String), ApiError> {
        Ok(snapshot(self, watcher))
    }
}

/// The open tasks in scope, newest first and capped, with per-bureau counts over all of them;
/// read under one lock so the snapshot matches `index`.
pub fn snapshot(state: &AppState, watcher: &Watcher) -> (u64, String) {
    let now_ms = time::now_ms();
    let replica = state.store.read();
    let index = replica.last_applied.map_or(0, |log_id| log_id.index);
    let regions = replica.ledger.regions();
    let open = state.store.store_view().and_then(|view| crate::task_query::open_tasks(&replica, &view));
    let open = open.unwrap_or_else(|error| {
        // The state machine stops on the same failure; the console shows an empty board.
        tracing::error!(%error, "a console snapshot cannot read the open tasks");
        Vec::new()
    });
    let mut tasks = Vec::new();
    let mut counts: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut open_total = 0usize;
    for task in open {
        if task.handling.state.is_terminal() || !access::can_see(&regions, &watcher.actor, &task) {
            continue;
        }
        let (origin, assignee) = (task.origin_bureau, task.handling.assignee_bureau);
        let people = crate::push::hub::people_named(&task);
        if !watcher.key().sees(
            &regions,
            origin,
            assignee,
            task.field_work.handlers.unit,
            &task.handling.escalated_to,
            &people,
        ) {
            continue;
        }
        open_total += 1;
        let overdue = task.is_overdue_at(now_ms);
        if let Some(assignee) = task.handling.assignee_bureau {
            let entry = counts.entry(assignee.to_string()).or_default();
            entry.0 += 1;
            entry.1 += u64::from(overdue);
        }
        if tasks.len() < SNAPSHOT_TASKS_MAX {
            tasks.push(task_json(&regions, &task));
        }
    }
    drop(replica);
    let counts = counts.into_iter().map(|(bureau, (open, overdue))| (bureau, BureauCounts { open, overdue })).collect();
    let truncated = open_total > tasks.len();
    let message = ServerMessage::Snapshot(Snapshot { index, tasks, open_total, truncated, counts });
    (index, message.to_text())
}
