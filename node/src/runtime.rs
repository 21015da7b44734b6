//! Starting and stopping one node: open storage, start Raft, serve HTTP, initialise the group
//! on first start, and shut everything down in order.

use ledger::Regions;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::Context;
use cluster::raft::network::PeerNetwork;
use cluster::raft::{GroupSecret, LedgerStore, LogStore, Raft};
use config::limits::PEER_CONNECT_TIMEOUT;
use config::{NodeConfig, UsersFile};
use ledger::BureauCode;
use openraft::{BasicNode, SnapshotPolicy};
use tokio_util::sync::CancellationToken;

use crate::auth::Users;
use crate::batcher::Batcher;
use crate::federation::Federation;
use crate::state::AppState;
use crate::transport::Transport;

/// Idle keep-alive connections kept per peer: replication and heartbeats reuse them.
const PEER_IDLE_CONNECTIONS_MAX: usize = 8;

/// openraft's time limit on a snapshot RPC; snapshots are streamed whole instead
/// (`cluster::raft::snapshot_transfer`), with a stall limit of their own.
const INSTALL_SNAPSHOT_TIMEOUT_MS: u64 = 10_000;
/// The state machine's directory in the data directory: the ledger's store.
pub const LEDGER_DIR: &str = "ledger";
/// Entries per AppendEntries RPC. Entries are batches already; this keeps one RPC well under
/// the heartbeat interval, which is also the RPC timeout in openraft 0.9.
const REPLICATION_ENTRIES_MAX: u64 = 64;

pub(crate) fn raft_config(config: &NodeConfig) -> anyhow::Result<openraft::Config> {
    let tuning = &config.raft;
    let raft = openraft::Config {
        cluster_name: format!("xietong-{}", config.group.bureau),
        heartbeat_interval: tuning.heartbeat_ms,
        election_timeout_min: tuning.election_timeout_min_ms,
        election_timeout_max: tuning.election_timeout_max_ms,
        install_snapshot_timeout: INSTALL_SNAPSHOT_TIMEOUT_MS,
        max_payload_entries: REPLICATION_ENTRIES_MAX,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(tuning.snapshot_every_entries),
        max_in_snapshot_log_to_keep: tuning.keep_entries_after_snapshot,
        purge_batch_size: tuning.purge_batch_entries.max(1),
        ..Default::default()
    };
    raft.validate().context("invalid Raft settings")
}

/// What a node's configuration names besides itself, read and checked: everything a start
/// reads before it touches the data directory (and all `xietong check config` checks).
pub struct NodeFiles {
    pub group_bureau: BureauCode,
    pub users: Users,
    pub deadlines: config::deadlines::DeadlinePolicy,
    pub inspection: config::inspection::InspectionConfig,
    pub transport: Transport,
    pub group_secret: GroupSecret,
    pub federation: Federation,
}

impl NodeFiles {
    /// Loads the files a node config names; bureau codes are checked against `regions`, the
    /// group's table (its store's, once a node has one).
    pub fn load(config: &NodeConfig, users: &UsersFile, regions: &Regions) -> anyhow::Result<NodeFiles> {
        let group_bureau = regions
            .parse_known(&config.group.bureau)
            .with_context(|| format!("group.bureau {} is not a region code", config.group.bureau))?;
        let users = Users::from_config(users, Some(regions)).map_err(anyhow::Error::msg)?;
        let deadlines = match &config.deadlines_file {
            Some(path) => read_policy(path, config::deadlines::DeadlinePolicy::parse)?,
            None => config::deadlines::DeadlinePolicy::default_policy(),
        };
        let inspection = match &config.inspection_file {
            Some(path) => read_policy(path, config::inspection::InspectionConfig::parse)?,
            None => config::inspection::InspectionConfig::default_programme(),
        };
        let own_members: Vec<String> = config.group.members.iter().map(|m| m.addr.clone()).collect();
        let transport = Transport::from_config(config.tls.as_ref()).context("setting up TLS")?;
        let group_secret = GroupSecret::load(&config.group.secret_file)?;
        let federation = match &config.topology_file {
            Some(path) => {
                let topology = config::topology::Topology::load(path)?;
                topology.check_own_group(&config.group.bureau, &config.group.members)?;
                Federation::new(group_bureau, &topology, &transport, regions)?
            }
            None => Federation::standalone(group_bureau, own_members, &transport, regions)?,
        };
        Ok(NodeFiles { group_bureau, users, deadlines, inspection, transport, group_secret, federation })
    }
}

/// A policy file (deadlines, inspection programme) read and parsed, its errors naming the file.
fn read_policy<T, E: std::fmt::Display>(
    path: &std::path::Path,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Runs one node until `shutdown` fires.
pub async fn run(config: NodeConfig, users: UsersFile, shutdown: CancellationToken) -> anyhow::Result<()> {
    // First of all: a second process on this data directory stops here, having touched nothing.
    let _data_dir_lock = crate::data_dir_lock::DataDirLock::acquire(&config.data_dir)?;
    let former = config.data_dir.join("snapshot");
    anyhow::ensure!(
        !former.exists(),
        "{} holds a ledger in the format before the store (one snapshot file); this build reads only the \
         store: start the node from an empty data directory and let it catch up from its group",
        former.display()
    );
    let store = LedgerStore::open(&config.data_dir.join(LEDGER_DIR)).context("opening the ledger store")?;
    // The configured bureaus are checked against the group's committed region table.
    let regions = store.read().ledger.regions();
    let NodeFiles { group_bureau, users, deadlines, inspection, transport, group_secret, federation } =
        NodeFiles::load(&config, &users, &regions)?;
    let log = LogStore::open(&config.data_dir.join("log"), store.durable_snapshot()).context("opening the Raft log")?;
    // Subscribed before Raft starts, so the hub sees every entry applied from here on.
    let (push_hub, push_hub_task) = crate::push::hub::EventHub::start(&store);
    let metrics_shutdown = CancellationToken::new();
    let (response_metrics, response_metrics_task) =
        crate::response_metrics::ResponseMetrics::start(&store, metrics_shutdown.clone())
            .context("building the response metrics from the store")?;
    let search = crate::search::Search::open(&config.data_dir).context("opening the search index")?;
    let search_task = search.start(store.clone(), metrics_shutdown.clone());
    let peer_http = transport
        .client()
        .connect_timeout(PEER_CONNECT_TIMEOUT)
        .pool_max_idle_per_host(PEER_IDLE_CONNECTIONS_MAX)
        .build()
        .context("building the peer client")?;
    let peer_routes = config.peer_routes.iter().map(|route| (route.id, route.addr.clone())).collect();
    let member_features = Arc::new(crate::member_features::MemberFeatures::open(&config.data_dir));
    let peers = PeerNetwork::new(
        config.id,
        peer_http,
        transport.scheme,
        group_secret.clone(),
        peer_routes,
        crate::member_features::told_with_peer_rpc(&member_features),
    );
    let raft = Raft::new(config.id, Arc::new(raft_config(&config)?), peers.clone(), log.clone(), store.clone())
        .await
        .context("starting Raft")?;

    let listener =
        tokio::net::TcpListener::bind(&config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    let batcher_shutdown = CancellationToken::new();
    let telemetry = Arc::new(crate::telemetry::Telemetry::new());
    let (batcher, batcher_task) =
        Batcher::start(raft.clone(), config.limits.proposal_queue_depth, batcher_shutdown.clone(), telemetry.clone());
    let member_addrs: BTreeMap<u64, String> = config.group.members.iter().map(|m| (m.id, m.addr.clone())).collect();
    let presence_shutdown = CancellationToken::new();
    let (presence, presence_writer) = match &config.fanout {
        Some(fanout) => {
            let (presence, writer) = crate::presence::Presence::start(&fanout.redis, presence_shutdown.clone())
                .map_err(anyhow::Error::msg)?;
            (Some(presence), Some(writer))
        }
        None => (None, None),
    };
    let sessions = Arc::new(crate::sessions::Sessions::new(group_secret.clone(), store.clone(), telemetry.clone()));
    let state = AppState {
        node_id: config.id,
        group_bureau,
        raft: raft.clone(),
        store,
        log,
        batcher,
        users: Arc::new(crate::auth::UserDirectory::with_sessions(users, sessions)),
        peers,
        member_addrs: Arc::new(member_addrs.clone()),
        relay_http: transport
            .client()
            .connect_timeout(PEER_CONNECT_TIMEOUT)
            .build()
            .context("building the forwarding client")?,
        transport: transport.clone(),
        digest_cache: Arc::default(),
        federation: Arc::new(federation),
        response_metrics,
        search,
        telemetry,
        push_hub,
        ws_connections: Arc::default(),
        presence: presence.clone(),
        deadlines: Arc::new(deadlines),
        calendar_cache: crate::reference::CalendarCache::default(),
        group_secret: group_secret.clone(),
        programme: crate::programme::Programme::new(inspection),
        member_features,
        documents: crate::documents::Documents::new(config.documents.clone()),
        kept_files: crate::kept_files::KeptFiles::open(&config.data_dir, config.attachment_store.as_ref())
            .context("opening the kept files (entity directories, attachments)")?,
        public_budget: Arc::new(crate::public_budget::PublicBudget::new(config.trusted_proxies.clone())),
        data_dir: Arc::new(config.data_dir.clone()),
        leader_commit: crate::readiness::LeaderCommit::default(),
        ready_lag_entries_max: config.limits.ready_lag_entries_max,
        draw_part_interval: std::time::Duration::from_millis(config.limits.draw_part_interval_ms),
    };
    let watch_state = state.clone();
    let reloader = {
        let (users_file, topology_file, tls, state) =
            (config.users_file.clone(), config.topology_file.clone(), config.tls.clone(), state.clone());
        tokio::spawn(crate::auth::on_hangup(shutdown.clone(), move || {
            reload_credentials(&users_file, topology_file.as_deref(), tls.as_ref(), &state)
        }))
    };
    let app = crate::routes::router(state, group_secret);
    let server = tokio::spawn(crate::server::serve(
        listener,
        app,
        transport.acceptor(),
        config.limits.open_connections_max,
        shutdown.clone(),
    ));
    tracing::info!(node = config.id, listen = %config.listen, group = %group_bureau, "node serving");

    let watch_shutdown = CancellationToken::new();
    let deadline_watch = tokio::spawn(crate::deadline_watch::run(watch_state.clone(), watch_shutdown.clone()));
    let fanout = config
        .fanout
        .clone()
        .map(|fanout| tokio::spawn(crate::fanout::publisher::run(watch_state.clone(), fanout, watch_shutdown.clone())));
    let federation_loops = [
        tokio::spawn(crate::readiness::probe_leader(watch_state.clone(), watch_shutdown.clone())),
        tokio::spawn(crate::member_features::run(watch_state.clone(), watch_shutdown.clone())),
        tokio::spawn(crate::programme::draw_parts::run(watch_state.clone(), watch_shutdown.clone())),
        tokio::spawn(crate::programme::risk_files::run(watch_state.clone(), watch_shutdown.clone())),
        tokio::spawn(crate::federation::plan_filing::run(watch_state.clone(), watch_shutdown.clone())),
        tokio::spawn(crate::federation::plan_handdown::run(watch_state.clone(), watch_shutdown.clone())),
        tokio::spawn(crate::federation::courier::run(watch_state.clone(), watch_shutdown.clone())),
        tokio::spawn(crate::federation::reports::push(watch_state.clone(), watch_shutdown.clone())),
        tokio::spawn(crate::federation::reports::reconcile(watch_state, watch_shutdown.clone())),
    ];

    initialize_once(&raft, config.id, &member_addrs).await?;

    shutdown.cancelled().await;
    tracing::info!(node = config.id, "shutting down");
    server.await.context("the HTTP server task failed")?;
    let _ = reloader.await;
    watch_shutdown.cancel();
    deadline_watch.await.context("the deadline watch failed")?;
    for federation_loop in federation_loops {
        federation_loop.await.context("a federation loop failed")?;
    }
    if let Some(fanout) = fanout {
        fanout.await.context("the Redis fan-out failed")?;
    }
    // The consoles are closed with the server: their departures are queued; then the writer stops.
    presence_shutdown.cancel();
    if let Some(writer) = presence_writer {
        writer.await.context("the presence writer failed")?;
    }
    batcher_shutdown.cancel();
    batcher_task.await.context("the batcher task failed")?;
    raft.shutdown().await.map_err(|e| anyhow::anyhow!("Raft shutdown: {e}"))?;
    // Raft is down, so nothing applies any more; the hub has nothing left to publish.
    push_hub_task.abort();
    let _ = push_hub_task.await;
    metrics_shutdown.cancel();
    let _ = response_metrics_task.await;
    let _ = search_task.await;
    Ok(())
}

/// On SIGHUP: reloads the users file and the link tokens of the topology file, so credentials
/// are added and revoked without a restart. A file that does not load changes nothing.
/// SIGHUP: the users file, the federation's peer tokens and the TLS certificate, each read
/// again; one that does not load is logged and leaves what was in force.
fn reload_credentials(
    path: &std::path::Path,
    topology_path: Option<&std::path::Path>,
    tls: Option<&config::TlsConfig>,
    state: &AppState,
) {
    crate::auth::reload_users_file(path, &state.users, Some(&state.regions()));
    crate::transport::reload_identity_logged(&state.transport, tls);
    if let Some(topology_path) = topology_path {
        let reloaded = config::topology::Topology::load(topology_path)
            .map_err(anyhow::Error::from)
            .and_then(|topology| state.federation.reload_links(&topology));
        match reloaded {
            Ok(()) => tracing::info!(file = %topology_path.display(), "peer tokens reloaded"),
            Err(error) => {
                tracing::error!(file = %topology_path.display(), %error, "topology refused; peer tokens unchanged")
            }
        }
    }
}

/// On the very first start, the lowest-numbered member forms the group with every configured
/// member; the others wait to hear from it. After that, the membership is in the log.
async fn initialize_once(raft: &Raft, node_id: u64, members: &BTreeMap<u64, String>) -> anyhow::Result<()> {
    if raft.is_initialized().await.map_err(|e| anyhow::anyhow!("{e}"))? {
        return Ok(());
    }
    if members.keys().next() != Some(&node_id) {
        return Ok(());
    }
    let nodes: BTreeMap<u64, BasicNode> = members.iter().map(|(id, addr)| (*id, BasicNode::new(addr))).collect();
    match raft.initialize(nodes).await {
        Ok(()) => {
            let ids: BTreeSet<_> = members.keys().collect();
            tracing::info!(?ids, "formed the group");
            Ok(())
        }
        Err(openraft::error::RaftError::APIError(openraft::error::InitializeError::NotAllowed(_))) => Ok(()),
        Err(error) => Err(anyhow::anyhow!("initializing the group: {error}")),
    }
}
