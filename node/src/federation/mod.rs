//! Federation between groups, on the node side: where a task goes (routing from the topology),
//! who a peer is (peer tokens), and the three leader-side loops that move messages:
//!
//! - `courier` delivers the ledger's outbox to target groups and commits their receipts;
//! - `reports` pushes the state of received tasks back to the groups they came from, and pulls
//!   the state of handed-over tasks as a safety net for lost reports;
//! - `peer_api` is the receiving end (`/federation/v1/*`).
//!
//! The ledger decides nothing from the topology: the accepting node puts the route into the
//! command (`Routing`, `Transition::Forward`, `Transition::DispatchAcross`, `relay_to`).

pub mod courier;
pub mod peer_api;
pub mod plan_filing;
pub mod plan_handdown;
pub mod reports;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use anyhow::Context;

use crate::transport::Transport;
use axum::http::HeaderMap;
use config::limits::PEER_CONNECT_TIMEOUT;
use config::topology::{FederationTuning, Topology};
use ledger::{BureauCode, Regions, Routing, TaskKind};

use crate::api::ApiError;

/// The groups this node knows and how to reach and authenticate them.
pub struct Federation {
    /// This node's group.
    pub group: BureauCode,
    /// Every known group, this one included → its members' addresses.
    groups: BTreeMap<BureauCode, Vec<String>>,
    /// The nearest known group above this one: it routes what this group cannot place.
    parent: Option<BureauCode>,
    /// The peer tokens of this group's links; replaced whole when the topology file is reloaded
    /// (SIGHUP), so a token is revoked without a restart.
    links: RwLock<Arc<LinkCredentials>>,
    pub tuning: FederationTuning,
    /// Keep-alive client for calls to other groups.
    pub http: reqwest::Client,
    /// How other groups' nodes are called (the same transport this node serves with).
    transport: Transport,
    /// What each linked group may still send this node (`PEER_ITEMS_PER_SECOND`).
    budgets: std::sync::Mutex<BTreeMap<BureauCode, crate::rate::TokenBucket>>,
}

/// The peer tokens of one group's links.
struct LinkCredentials {
    /// Token this group presents to each group it calls.
    outbound: BTreeMap<BureauCode, String>,
    /// SHA-256 (hex) of a token → the group that presents it when calling this group.
    inbound: HashMap<String, BureauCode>,
}

impl LinkCredentials {
    fn of(group: BureauCode, topology: &Topology) -> anyhow::Result<LinkCredentials> {
        let mut outbound = BTreeMap::new();
        let mut inbound = HashMap::new();
        for ((from, to), credential) in &topology.links {
            // Links only pair groups the topology lists (checked against the table there).
            let digits =
                |text: &str| BureauCode::parse_digits(text).with_context(|| format!("{text} is not a region code"));
            let (from, to) = (digits(from)?, digits(to)?);
            if from == group {
                let token = credential.token.clone().with_context(|| {
                    format!("the link {from} → {to} needs its token in plain text here: this group sends on it")
                })?;
                outbound.insert(to, token);
            }
            if to == group {
                inbound.insert(credential.token_sha256.clone(), from);
            }
        }
        Ok(LinkCredentials { outbound, inbound })
    }
}

/// Kinds that are handed to the group with jurisdiction automatically on create when their
/// subject lies outside this group's tree. Assignments and inspections are this group's own
/// work whatever the subject's address (an inspection team may visit a supplier elsewhere).
fn forwarded_on_create(kind: TaskKind) -> bool {
    matches!(kind, TaskKind::Lead | TaskKind::RiskAlert | TaskKind::Referral | TaskKind::Emergency)
}

fn code(regions: &Regions, text: &str) -> anyhow::Result<BureauCode> {
    regions.parse_known(text).with_context(|| format!("{text} is not a region code"))
}

impl Federation {
    /// A group that knows no other group: everything stays, leads about other regions are
    /// kept and flagged.
    pub fn standalone(
        group: BureauCode,
        own_members: Vec<String>,
        transport: &Transport,
        regions: &Regions,
    ) -> anyhow::Result<Federation> {
        let topology = Topology { groups: BTreeMap::from([(group.to_string(), own_members)]), ..Topology::default() };
        Federation::new(group, &topology, transport, regions)
    }

    /// The federation of the topology file, its group codes checked against `regions` (the
    /// group's table).
    pub fn new(
        group: BureauCode,
        topology: &Topology,
        transport: &Transport,
        regions: &Regions,
    ) -> anyhow::Result<Federation> {
        let mut groups = BTreeMap::new();
        for (bureau, addrs) in &topology.groups {
            groups.insert(code(regions, bureau)?, addrs.clone());
        }
        anyhow::ensure!(groups.contains_key(&group), "the topology lists no group {group}");
        let parent =
            std::iter::successors(regions.parent(group), |b| regions.parent(*b)).find(|b| groups.contains_key(b));
        let links = RwLock::new(Arc::new(LinkCredentials::of(group, topology)?));
        let http = transport
            .client()
            .connect_timeout(PEER_CONNECT_TIMEOUT)
            .build()
            .context("building the federation client")?;
        let tuning = topology.tuning.clone();
        let budgets = std::sync::Mutex::default();
        Ok(Federation { group, groups, parent, links, tuning, http, transport: transport.clone(), budgets })
    }

    /// Takes the link tokens of a reloaded topology file (the groups and their members stay as
    /// they were at start). A file that does not load changes nothing.
    pub fn reload_links(&self, topology: &Topology) -> anyhow::Result<()> {
        let fresh = LinkCredentials::of(self.group, topology)?;
        *self.links.write().expect("the links lock is never poisoned") = Arc::new(fresh);
        Ok(())
    }

    fn links(&self) -> Arc<LinkCredentials> {
        self.links.read().expect("the links lock is never poisoned").clone()
    }

    /// The group above this one in the federation (the nearest ancestor deployed), if any.
    pub fn parent(&self) -> Option<BureauCode> {
        self.parent
    }

    /// The known group that hosts `bureau`: the nearest group at or above it.
    pub fn host_of(&self, regions: &Regions, bureau: BureauCode) -> Option<BureauCode> {
        std::iter::successors(Some(bureau), |b| regions.parent(*b)).find(|b| self.groups.contains_key(b))
    }

    /// Whether this group hosts every bureau within `scope`: it hosts the scope, and no other
    /// known group hosts a region inside it.
    pub fn hosts_whole(&self, regions: &Regions, scope: BureauCode) -> bool {
        self.host_of(regions, scope).is_none_or(|host| host == self.group)
            && !self.groups.keys().any(|group| *group != self.group && regions.is_within(*group, scope))
    }

    /// Where a lead about `region` goes from here: kept when this group hosts it, to the group
    /// that does when one is known, else to the parent group to route on, else kept and flagged.
    pub fn route_lead(&self, regions: &Regions, region: BureauCode) -> Routing {
        match self.host_of(regions, region) {
            Some(host) if host == self.group => Routing::Keep,
            Some(host) => Routing::ForwardTo { to_group: host, from_group: self.group },
            None => match self.parent {
                Some(parent) => Routing::ForwardTo { to_group: parent, from_group: self.group },
                None => Routing::Unrouted,
            },
        }
    }

    /// The routing of a new task: a lead-like task about a region outside this group's tree
    /// goes to the group with jurisdiction; within the tree it stays (the centre dispatches
    /// it down, across groups if need be).
    pub fn route_new_task(&self, regions: &Regions, kind: TaskKind, region: BureauCode) -> Routing {
        if !forwarded_on_create(kind) || regions.is_within(region, self.group) {
            return Routing::Keep;
        }
        self.route_lead(regions, region)
    }

    /// The known group at or above the lowest bureau that is above both this group and `other`
    /// (管辖争议由共同上级指定).
    pub fn common_parent(&self, regions: &Regions, other: BureauCode) -> Option<BureauCode> {
        let lowest_common = std::iter::successors(Some(self.group), |b| regions.parent(*b))
            .find(|ancestor| regions.is_within(other, *ancestor))?;
        self.host_of(regions, lowest_common)
    }

    /// The known groups directly below this one: those whose nearest known group above is
    /// this one.
    pub fn children(&self, regions: &Regions) -> Vec<BureauCode> {
        let above = |group: BureauCode| {
            std::iter::successors(regions.parent(group), |b| regions.parent(*b)).find(|b| self.groups.contains_key(b))
        };
        self.groups.keys().copied().filter(|group| *group != self.group && above(*group) == Some(self.group)).collect()
    }

    pub fn knows_group(&self, group: BureauCode) -> bool {
        self.groups.contains_key(&group)
    }

    /// Member addresses of a known group.
    pub fn addrs(&self, group: BureauCode) -> &[String] {
        self.groups.get(&group).map_or(&[], Vec::as_slice)
    }

    pub fn token_to(&self, group: BureauCode) -> Option<String> {
        self.links().outbound.get(&group).cloned()
    }

    /// The peer group a request comes from, by its bearer token.
    pub fn authenticate_peer(&self, headers: &HeaderMap) -> Result<BureauCode, ApiError> {
        let token = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::Unauthorized("a peer group must present its bearer token".into()))?;
        self.links()
            .inbound
            .get(&config::token_hash(token))
            .copied()
            .ok_or_else(|| ApiError::Unauthorized("the token is not a peer token of this group".into()))
    }
}

impl Federation {
    /// Spends `items` of what linked group `peer` may send this node; beyond it the answer is
    /// 429, which the peer's courier and reporter retry like any failed call.
    pub fn spend(&self, peer: BureauCode, items: usize) -> Result<(), ApiError> {
        let mut budgets = self.budgets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let per_second = f64::from(config::limits::PEER_ITEMS_PER_SECOND);
        let bucket = budgets.entry(peer).or_insert_with(|| crate::rate::TokenBucket::new(per_second));
        bucket.take(items.max(1), std::time::Instant::now()).map_err(|wait| ApiError::RateLimited {
            message: format!("group {peer} is over its rate of {per_second} messages a second"),
            retry_after_secs: wait.as_secs_f64().ceil() as u64,
        })
    }
}

/// The longest answer read from another group: a batch of reports with full timelines.
const PEER_ANSWER_BYTES_MAX: usize = crate::federation::peer_api::FEDERATION_BODY_BYTES_MAX;
/// How much of a refusal's text goes into the log.
const LOGGED_REFUSAL_BYTES_MAX: usize = 500;

/// How long one call to another group may take; the courier and reporter retry after it.
pub const PEER_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why a call to another group did not get an answer.
#[derive(Debug)]
pub enum CallError {
    /// This group has no route or token for it: a configuration fault, logged.
    NotConfigured(String),
    /// No member answered (down, partitioned, electing): try again later.
    Unreachable(String),
    /// A member answered with an error that retrying will not fix (4xx).
    Refused(String),
}

impl Federation {
    /// POSTs `body` as JSON to `path` on a member of `group`, trying the members in turn,
    /// starting with the one that answered last time (`preferred`), and decodes the answer.
    pub async fn call<T: serde::de::DeserializeOwned>(
        &self,
        group: BureauCode,
        path: &str,
        body: &impl serde::Serialize,
        preferred: &std::sync::Mutex<BTreeMap<BureauCode, usize>>,
    ) -> Result<T, CallError> {
        let addrs = self.addrs(group);
        let token =
            self.token_to(group).ok_or_else(|| CallError::NotConfigured(format!("no peer token for {group}")))?;
        if addrs.is_empty() {
            return Err(CallError::NotConfigured(format!("no addresses for group {group}")));
        }
        let body = serde_json::to_vec(body).map_err(|e| CallError::NotConfigured(e.to_string()))?;
        let start = preferred.lock().expect("not poisoned").get(&group).copied().unwrap_or(0);
        let mut last_error = String::new();
        for offset in 0..addrs.len() {
            let index = (start + offset) % addrs.len();
            let response = self
                .http
                .post(format!("{}{path}", self.transport.base_url(&addrs[index])))
                .bearer_auth(&token)
                .header(axum::http::header::CONTENT_TYPE, "application/json")
                .timeout(PEER_CALL_TIMEOUT)
                .body(body.clone())
                .send()
                .await;
            let response = match response {
                Ok(response) => response,
                Err(error) => {
                    last_error = format!("{}: {error}", addrs[index]);
                    continue;
                }
            };
            let status = response.status();
            if status.is_server_error() {
                last_error = format!("{}: {status}", addrs[index]);
                continue;
            }
            let bytes = read_bounded(response).await?;
            if !status.is_success() {
                let shown = &bytes[..bytes.len().min(LOGGED_REFUSAL_BYTES_MAX)];
                return Err(CallError::Refused(format!("{status}: {}", String::from_utf8_lossy(shown))));
            }
            preferred.lock().expect("not poisoned").insert(group, index);
            return serde_json::from_slice(&bytes).map_err(|e| CallError::Refused(format!("bad answer: {e}")));
        }
        Err(CallError::Unreachable(last_error))
    }
}

/// Reads an answer from another group, refusing one over `PEER_ANSWER_BYTES_MAX`.
async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, CallError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| CallError::Unreachable(e.to_string()))? {
        if bytes.len() + chunk.len() > PEER_ANSWER_BYTES_MAX {
            return Err(CallError::Refused(format!("an answer over {PEER_ANSWER_BYTES_MAX} bytes")));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
