//! `AppState`: what every HTTP handler of a node shares. Cheap to clone.

use std::collections::BTreeMap;
use std::sync::Arc;

use cluster::raft::network::PeerNetwork;
use cluster::raft::{LedgerStore, LogStore, NodeId, Raft};
use ledger::BureauCode;
use openraft::ServerState;

use crate::batcher::Batcher;

/// A ledger digest and the applied index it was computed at.
/// The last ledger digest computed, with the applied index and task count it belongs to.
pub struct DigestAtIndex {
    pub applied: Option<u64>,
    pub digest: String,
    pub task_count: u64,
}

#[derive(Clone)]
pub struct AppState {
    pub node_id: NodeId,
    /// The bureau whose command centre this group serves.
    pub group_bureau: BureauCode,
    pub raft: Raft,
    pub store: LedgerStore,
    pub log: LogStore,
    pub batcher: Batcher,
    pub users: Arc<crate::auth::UserDirectory>,
    pub peers: PeerNetwork,
    /// Member addresses from config, used when metrics do not name the leader's node.
    pub member_addrs: Arc<BTreeMap<NodeId, String>>,
    /// Client for relaying writes to the leader and for member-to-member files (keep-alive, shared).
    pub relay_http: reqwest::Client,
    /// The scheme (and TLS) this node's group speaks, for relayed requests.
    pub transport: crate::transport::Transport,
    /// Default deadlines at dispatch (the policy; the calendar is the ledger's, `calendar()`).
    pub deadlines: Arc<config::deadlines::DeadlinePolicy>,
    /// The committed calendar made ready for arithmetic (`reference`).
    pub calendar_cache: crate::reference::CalendarCache,
    /// The other groups: routing, peer tokens, the client that calls them.
    pub federation: Arc<crate::federation::Federation>,
    /// Prometheus metrics of this node.
    pub telemetry: Arc<crate::telemetry::Telemetry>,
    /// Response metrics for leadership, kept up to date as entries apply.
    pub response_metrics: crate::response_metrics::ResponseMetrics,
    /// The full-text index of the group's tasks on this node.
    pub search: crate::search::Search,
    /// Console events: history for resume and fan-out to WebSocket connections.
    pub push_hub: crate::push::hub::EventHub,
    pub ws_connections: Arc<crate::push::ws::ConnectionCounts>,
    /// Who is online (Redis), when `[fanout]` is configured.
    pub presence: Option<Arc<crate::presence::Presence>>,
    /// The ledger digest is a full scan; keep the last one with the index it belongs to.
    pub digest_cache: Arc<tokio::sync::Mutex<Option<DigestAtIndex>>>,
    /// The secret the group's members share: peer calls this node makes outside openraft
    /// (directory files) carry it too.
    pub group_secret: cluster::raft::GroupSecret,
    /// The inspection programme: item list, risk scoring, entity directory files.
    pub programme: crate::programme::Programme,
    /// The formats the other members said they read (`crate::member_features`).
    pub member_features: Arc<crate::member_features::MemberFeatures>,
    /// Printed documents (文书): their font and render permits.
    pub documents: crate::documents::Documents,
    /// Entity directory files and record attachments, kept beside the log.
    pub kept_files: crate::kept_files::KeptFiles,
    /// The public routes' request budgets (unauthenticated: the node's and each client's).
    pub public_budget: Arc<crate::public_budget::PublicBudget>,
    /// Where this node keeps its log, store and indexes (for the disk-space metrics).
    pub data_dir: Arc<std::path::PathBuf>,
    /// The leader's commit as this node last heard it (`readiness`).
    pub leader_commit: crate::readiness::LeaderCommit,
    /// Entries behind the leader's commit beyond which this node is not ready.
    pub ready_lag_entries_max: u64,
    /// The leader's wait between two parts of a draw (`[limits] draw_part_interval_ms`).
    pub draw_part_interval: std::time::Duration,
}

/// This node's current view of who leads, from Raft metrics (a routing hint only).
pub struct LeaderHint {
    pub is_self: bool,
    pub leader: Option<(NodeId, String)>,
}

/// The term in which node `me` leads by these metrics, if it does: the one "do I lead" check.
/// Leader state alone is not enough: a node keeps it for a moment after a newer term began.
pub fn leading_term(metrics: &openraft::RaftMetrics<NodeId, openraft::BasicNode>, me: NodeId) -> Option<u64> {
    (metrics.state == ServerState::Leader && metrics.current_leader == Some(me)).then_some(metrics.current_term)
}

impl AppState {
    /// Admits a call from a fellow member (files, what a member reads): it carries the group's
    /// shared secret, like every peer RPC.
    pub fn admit_member(&self, headers: &axum::http::HeaderMap) -> Result<(), crate::api::ApiError> {
        let authorization = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        if self.group_secret.admits(authorization) {
            Ok(())
        } else {
            Err(crate::api::ApiError::Unauthorized("peer RPC needs this group's secret".into()))
        }
    }

    /// The term this node leads in now, if it leads (see `leading_term`).
    pub fn leading_term(&self) -> Option<u64> {
        leading_term(&self.raft.metrics().borrow(), self.node_id)
    }

    pub fn leader_hint(&self) -> LeaderHint {
        let metrics = self.raft.metrics().borrow().clone();
        let is_self = leading_term(&metrics, self.node_id).is_some();
        let leader = metrics.current_leader.and_then(|id| {
            let from_membership = metrics.membership_config.membership().get_node(&id).map(|n| n.addr.clone());
            from_membership.or_else(|| self.member_addrs.get(&id).cloned()).map(|addr| (id, addr))
        });
        LeaderHint { is_self, leader }
    }
}
