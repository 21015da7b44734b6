//! `xietong gateway --config FILE`: a stateless process that serves consoles for one group from
//! the group's Redis Stream (`crate::fanout`), so thousands of consoles do not load the Raft
//! nodes. It speaks the nodes' console protocol (`push::ws`, served through `ConsoleBackend`):
//! snapshots come from a node (`/api/v1/console/snapshot`), events from the stream by log index,
//! and a console may resume on any gateway or node. It also serves the console page and passes
//! the REST API through to the group's nodes, so the page works unchanged behind a gateway.
//! People's sessions are checked by the nodes and kept a while (`sessions`).
//! Nothing is stored: a restarted gateway reads the stream again.

mod proxy;
mod reader;
pub mod sessions;

use std::sync::Arc;

use anyhow::Context;
use axum::extract::{State, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::{any, get};
use axum::Router;
use config::gateway::GatewayConfig;
use config::limits::PEER_CONNECT_TIMEOUT;
use config::UsersFile;
use tokio_util::sync::CancellationToken;

use crate::api::ApiError;
use crate::auth::{UserDirectory, Users};
use crate::push::hub::EventHub;
use crate::push::ws::{upgrade_with, ConnectionCounts, ConsoleBackend, Watcher};

/// The reader's last answer from Redis may be this old for the gateway to be ready (a blocking
/// read answers every `reader::READ_BLOCK`).
const STREAM_STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(5);
/// How long the readiness check waits for each node's own.
const NODE_READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
const _: () = assert!(STREAM_STALE_AFTER.as_millis() > 3 * reader::READ_BLOCK.as_millis());
/// How long a new console may wait for the gateway to learn what the stream holds.
const HISTORY_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(5);
const HISTORY_WAIT_STEP: std::time::Duration = std::time::Duration::from_millis(50);

#[derive(Clone)]
pub struct GatewayState {
    name: Arc<str>,
    hub: EventHub,
    users: Arc<UserDirectory>,
    /// People's sessions as the group's nodes answered about them.
    sessions: Arc<sessions::GatewaySessions>,
    connections: Arc<ConnectionCounts>,
    push_latency: prometheus::Histogram,
    /// From the leader sending an entry to the stream to this gateway reading it.
    stream_lag: prometheus::Histogram,
    /// The group's nodes, for snapshots and the passed-through API.
    nodes: Arc<Vec<String>>,
    presence: Arc<crate::presence::Presence>,
    http: reqwest::Client,
    /// How it speaks to the nodes (and serves): plain or TLS, from its `[tls]`.
    transport: Arc<crate::transport::Transport>,
    /// When the stream reader last had an answer from Redis.
    last_read: reader::LastRead,
}

impl ConsoleBackend for GatewayState {
    async fn user_for_token(&self, token: &str) -> Result<crate::auth::User, ApiError> {
        if token.starts_with(crate::sessions::SESSION_PREFIX) {
            return sessions::user_of_session(self, token).await;
        }
        self.users.user_for_token(token)
    }

    fn accounts_changed(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.sessions.watch())
    }

    fn connections(&self) -> &Arc<ConnectionCounts> {
        &self.connections
    }

    fn hub(&self) -> &EventHub {
        &self.hub
    }

    fn push_latency(&self) -> &prometheus::Histogram {
        &self.push_latency
    }

    fn served_by(&self, welcome: &mut crate::api::console::Welcome) {
        welcome.gateway = Some(self.name.to_string());
    }

    fn presence(&self) -> Option<&Arc<crate::presence::Presence>> {
        Some(&self.presence)
    }

    fn regions(&self) -> Arc<ledger::Regions> {
        ledger::Regions::compiled_shared().clone()
    }

    async fn snapshot(&self, watcher: &Watcher, token: &str) -> Result<(u64, String), ApiError> {
        // Right after a start or a reset the hub does not know yet what the stream holds, and
        // could not continue a snapshot; the reader settles that within one read.
        let mut latest = self.hub.watch_latest();
        let known = async {
            while self.hub.history_floor().is_none() {
                let _ = tokio::time::timeout(HISTORY_WAIT_STEP, latest.changed()).await;
            }
        };
        if tokio::time::timeout(HISTORY_WAIT_MAX, known).await.is_err() {
            return Err(ApiError::Unavailable {
                code: "stream_unknown",
                message: "the gateway cannot read the stream".into(),
            });
        }
        proxy::fetch_snapshot(self, watcher.scope, token).await
    }
}

/// Ready: the gateway reads the group's stream from Redis (an answer within the last
/// `STREAM_STALE_AFTER`) and a node of the group says it is ready, so consoles get their
/// snapshots and events. `/healthz` stays "alive": restarting a gateway mends neither.
async fn readyz(State(state): State<GatewayState>) -> Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let not_ready =
        |reason: String| (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {reason}\n")).into_response();
    match state.last_read.age_ms(crate::api::time::now_ms()) {
        None => return not_ready("the console stream has not been read from Redis yet".into()),
        Some(age) if age > STREAM_STALE_AFTER.as_millis() as u64 => {
            return not_ready(format!("no answer from Redis for {} s", age / 1000));
        }
        Some(_) => {}
    }
    let probes = state.nodes.iter().map(|node| {
        let url = format!("{}/readyz", state.transport.base_url(node));
        let request = state.http.get(url).timeout(NODE_READY_TIMEOUT).send();
        Box::pin(async move {
            match request.await {
                Ok(response) if response.status().is_success() => Ok(()),
                _ => Err(()),
            }
        })
    });
    match futures_util::future::select_ok(probes).await {
        Ok(_) => (StatusCode::OK, "ready\n").into_response(),
        Err(()) => not_ready("no node of the group says it is ready".into()),
    }
}

/// Prometheus text: the gateway's memory, console connections and push latency.
async fn metrics(State(state): State<GatewayState>) -> Response {
    use axum::response::IntoResponse;
    use prometheus::core::Collector;
    use prometheus::Encoder;
    let mut text = String::new();
    if let Some(rss) = crate::routes::health::resident_memory_bytes() {
        text.push_str(&format!("process_resident_memory_bytes {rss}\n"));
    }
    text.push_str(&format!("xietong_console_connections {}\n", state.connections.total()));
    text.push_str(&format!("xietong_build_info{{commit=\"{}\",version=\"{}\"}} 1\n", crate::COMMIT, crate::VERSION));
    text.push_str(&crate::certificate::expiry_metric(state.transport.certificate_expires_at()));
    let mut buffer = Vec::new();
    let families: Vec<_> = state.push_latency.collect().into_iter().chain(state.stream_lag.collect()).collect();
    if prometheus::TextEncoder::new().encode(&families, &mut buffer).is_ok() {
        text.push_str(&String::from_utf8_lossy(&buffer));
    }
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn upgrade(State(state): State<GatewayState>, upgrade: WebSocketUpgrade) -> Response {
    upgrade_with(state, upgrade)
}

pub async fn run(config: GatewayConfig, users: UsersFile, shutdown: CancellationToken) -> anyhow::Result<()> {
    // A gateway holds no region table: codes are six digits here, the nodes check them.
    let users = Users::from_config(&users, None).map_err(anyhow::Error::msg)?;
    let transport = Arc::new(crate::transport::Transport::from_config(config.tls.as_ref()).context("setting up TLS")?);
    let hub = EventHub::detached();
    let presence_shutdown = CancellationToken::new();
    let (presence, presence_writer) =
        crate::presence::Presence::start(&config.redis, presence_shutdown.clone()).map_err(anyhow::Error::msg)?;
    let state = GatewayState {
        name: config.name.as_str().into(),
        hub: hub.clone(),
        users: Arc::new(UserDirectory::new(users)),
        sessions: Arc::default(),
        connections: Arc::default(),
        push_latency: prometheus::Histogram::with_opts(prometheus::HistogramOpts::new(
            "xietong_gateway_push_latency_seconds",
            "From an event reaching the gateway to its console receiving it.",
        ))
        .context("the push latency histogram")?,
        stream_lag: prometheus::Histogram::with_opts(
            prometheus::HistogramOpts::new(
                "xietong_gateway_stream_lag_seconds",
                "From the leader sending an entry to the stream to this gateway reading it.",
            )
            .buckets(crate::telemetry::latency_buckets()),
        )
        .context("the stream lag histogram")?,
        nodes: Arc::new(config.group.nodes.clone()),
        presence: presence.clone(),
        http: transport
            .client()
            .local_address(config.source_address)
            .connect_timeout(PEER_CONNECT_TIMEOUT)
            .pool_idle_timeout(config::limits::CLIENT_POOL_IDLE_TIMEOUT)
            .build()
            .context("building the gateway's client")?,
        transport: transport.clone(),
        last_read: reader::LastRead::default(),
    };
    let stream = crate::fanout::stream_key(&config.group.bureau);
    let follow = reader::Follow {
        url: config.redis.clone(),
        stream,
        accounts: crate::fanout::accounts_key(&config.group.bureau),
        hub,
        sessions: state.sessions.clone(),
        lag: state.stream_lag.clone(),
        last_read: state.last_read.clone(),
    };
    let reader = tokio::spawn(reader::run(follow, shutdown.clone()));
    // `kill -HUP <gateway pid>` reloads the users file and the TLS certificate, as on the nodes.
    let reloader = {
        let (users_file, users, tls, transport) =
            (config.users_file.clone(), state.users.clone(), config.tls.clone(), state.transport.clone());
        tokio::spawn(crate::auth::on_hangup(shutdown.clone(), move || {
            crate::auth::reload_users_file(&users_file, &users, None);
            crate::transport::reload_identity_logged(&transport, tls.as_ref());
        }))
    };
    let app = Router::new()
        .route("/ws", get(upgrade))
        .route("/", get(crate::routes::console_page))
        .route("/console/{file}", get(crate::routes::console_asset))
        .route("/wall", get(crate::routes::wall_page))
        .route("/m/", get(crate::routes::phone_page))
        .route("/m/{file}", get(crate::routes::phone_asset))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/{*rest}", any(proxy::pass_through))
        .route("/public", any(proxy::pass_through))
        .route("/public/{*rest}", any(proxy::pass_through))
        .with_state(state)
        // The same bounds as a node's: requests served at once, and each one's time.
        .layer(axum::middleware::from_fn_with_state(
            std::sync::Arc::new(tokio::sync::Semaphore::new(config::limits::CONCURRENT_REQUESTS_MAX)),
            crate::routes::limit,
        ));
    let listener =
        tokio::net::TcpListener::bind(&config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    tracing::info!(gateway = %config.name, listen = %config.listen, group = %config.group.bureau, "gateway serving");
    crate::server::serve(listener, app, transport.acceptor(), config::limits::OPEN_CONNECTIONS_MAX, shutdown).await;
    reader.await.context("the stream reader failed")?;
    reloader.await.context("the users reloader failed")?;
    presence_shutdown.cancel();
    presence_writer.await.context("the presence writer failed")?;
    Ok(())
}
