//! Configuration: one node's file (`xietong node --config FILE`), the users and their bearer
//! tokens, and the process limits. Loaded and validated once at startup; nothing here does IO
//! after that.
//!
//! **Architecture invariant:** nothing in this crate changes replicated behaviour; caps that
//! do live in `cluster::limits`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub mod calendar;
pub mod deadlines;
pub mod gateway;
pub mod inspection;
pub mod limits;
pub mod topology;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not valid configuration: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
}

/// How a process writes its log (to stderr, where systemd's journal or a file takes it).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    #[serde(default)]
    pub format: LogFormat,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One line per event for people; colours only when stderr is a terminal.
    #[default]
    Text,
    /// One JSON object per line, for a log collector.
    Json,
}

fn invalid(field: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { field: field.to_owned(), reason: reason.into() }
}

/// One node of a group, as given to `xietong node --config FILE`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's member id in its group (1, 2, 3).
    pub id: u64,
    /// Loopback address and port the node serves HTTP on (API, console, WebSocket and peer RPC).
    pub listen: String,
    /// Where the log and snapshots live; created if missing.
    pub data_dir: PathBuf,
    /// File with the users and tokens (see `config/dev/users.toml`), relative to this file.
    pub users_file: PathBuf,
    /// The deadline policy (see `config/dev/deadlines.toml`, used when this is absent),
    /// relative to this file.
    #[serde(default)]
    pub deadlines_file: Option<PathBuf>,
    /// The federation topology (see `config::topology`), relative to this file. Without it the
    /// node's group stands alone.
    #[serde(default)]
    pub topology_file: Option<PathBuf>,
    /// The inspection-item list and risk scoring (see `config/dev/inspection.toml`, used when
    /// this is absent), relative to this file.
    #[serde(default)]
    pub inspection_file: Option<PathBuf>,
    /// Threads for the node's async work. 1 (the default) runs it on one thread, which measured
    /// fastest when three nodes share a 2-core machine (fewer cross-thread wake-ups); fsyncs
    /// run on the WAL's own thread either way. Give a node on its own machine more.
    #[serde(default = "default_worker_threads")]
    pub worker_threads: usize,
    pub group: GroupConfig,
    #[serde(default)]
    pub raft: RaftTuning,
    #[serde(default)]
    pub limits: ProcessLimits,
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    #[serde(default)]
    pub log: LogConfig,
    /// Where this node reaches a fellow member when that member's group address does not work
    /// from here (a NAT, a proxy; the fault tests route each link through a fault proxy).
    #[serde(default)]
    pub peer_routes: Vec<MemberConfig>,
    /// Console fan-out through Redis for gateway processes (`xietong gateway`); absent: the
    /// nodes serve every console themselves and no Redis is needed.
    #[serde(default)]
    pub fanout: Option<FanoutConfig>,
    /// Addresses of the proxies in front of this node (console gateways, a reverse proxy):
    /// the public routes believe the `X-Forwarded-For` hops they add, to budget each client
    /// by its own address rather than by the proxy's.
    #[serde(default)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Printed documents (文书): the font they are set in.
    #[serde(default)]
    pub documents: DocumentsConfig,
    /// On-site record attachments in an S3-compatible object store every member reaches, in
    /// place of the members' own disks. Every member of a group names the same store.
    #[serde(default)]
    pub attachment_store: Option<AttachmentStoreConfig>,
}

/// `[attachment_store]`: an S3-compatible object store (AWS S3, MinIO, Ceph RGW, a cloud's OSS
/// with its S3 interface) for the group's attachments.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentStoreConfig {
    /// `https://s3.example.com` (`http://` only to a loopback address: tests, a local gateway).
    pub endpoint: String,
    pub bucket: String,
    #[serde(default = "default_s3_region")]
    pub region: String,
    /// Objects are named `<prefix>/<sha256>`; groups sharing a bucket use their own prefix.
    pub prefix: String,
    pub access_key_id: String,
    /// File holding the secret access key, relative to this file (kept out of it, as the group
    /// secret is).
    pub secret_access_key_file: PathBuf,
}

impl AttachmentStoreConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        // Attachments are evidence and the key signs every request: plain HTTP only where
        // nothing crosses a network.
        let loopback = self.endpoint.strip_prefix("http://").is_some_and(is_loopback_authority);
        if !(self.endpoint.starts_with("https://") || loopback) {
            return Err(invalid("attachment_store.endpoint", "an https:// address (http:// only to loopback)"));
        }
        if self.bucket.is_empty() || self.access_key_id.is_empty() {
            return Err(invalid("attachment_store", "bucket and access_key_id are required"));
        }
        let segments_ok =
            self.prefix.split('/').all(|segment| !segment.is_empty() && segment != "." && segment != "..");
        if !segments_ok {
            return Err(invalid(
                "attachment_store.prefix",
                "path segments such as `xietong/440000`, no empty, . or .. segment",
            ));
        }
        Ok(())
    }
}

/// Whether the authority of a URL (what follows `scheme://`, up to its path) is a loopback
/// host with an optional port: `127.0.0.1:9000`, `localhost`, `[::1]:9000`; never one with a
/// user part (`localhost@elsewhere`) or a longer name (`127.0.0.1.example.net`).
fn is_loopback_authority(rest: &str) -> bool {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return false;
    }
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((host, port)) if port.is_empty() || port.starts_with(':') => host,
            _ => return false,
        },
        None => authority.split(':').next().unwrap_or_default(),
    };
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn default_s3_region() -> String {
    "us-east-1".into()
}

/// `[documents]`: what printed documents need from the machine.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentsConfig {
    /// A TrueType/OpenType font (or collection) with the CJK characters documents hold,
    /// embedded (subset) in every document. Read on the first document, not at start: a node
    /// without it serves everything else and answers documents with `document_font_missing`.
    #[serde(default = "default_document_font")]
    pub font: PathBuf,
    /// The face within a collection (`.ttc`).
    #[serde(default)]
    pub font_index: u32,
}

impl Default for DocumentsConfig {
    fn default() -> DocumentsConfig {
        DocumentsConfig { font: default_document_font(), font_index: 0 }
    }
}

/// WenQuanYi Micro Hei (Debian's fonts-wqy-microhei, which the package depends on): Apache-2.0,
/// every character of GB 2312 and most of GB 18030.
fn default_document_font() -> PathBuf {
    PathBuf::from("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
}

/// `[fanout]`: where the group's leader publishes every applied console event.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FanoutConfig {
    /// `redis://host:port/`.
    pub redis: String,
    /// Stream entries kept (approximately; Redis trims whole nodes). A gateway further behind
    /// than this resynchronises its consoles from a snapshot.
    #[serde(default = "default_stream_entries_max")]
    pub stream_entries_max: usize,
}

fn default_stream_entries_max() -> usize {
    100_000
}

fn default_worker_threads() -> usize {
    1
}

/// The group this node belongs to: the command centre it serves and its members.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// The bureau that runs this group's command centre (6-digit region code); the group hosts
    /// that bureau and every bureau below it.
    pub bureau: String,
    pub members: Vec<MemberConfig>,
    /// File holding the secret every member of the group shares (see
    /// `cluster::raft::group_secret`), relative to this file. Kept out of this file so the
    /// config can be read by more people than the secret.
    pub secret_file: PathBuf,
}

/// TLS for everything the node serves (API, console, WebSocket, peer RPC) and for its calls to
/// other nodes. Every node of a deployment uses TLS or none does: peers are called with the
/// scheme the caller serves with.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain of this node, leaf first. Paths are relative to the config file.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of the certificate.
    pub key_file: PathBuf,
    /// PEM certificates of the authorities that signed the other nodes' certificates.
    pub ca_file: PathBuf,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberConfig {
    pub id: u64,
    /// host:port of the member's HTTP server.
    pub addr: String,
}

/// `[limits]`: the process limits a node may lower (or raise) from the defaults of
/// `limits`, for a smaller machine or a test that crosses them.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessLimits {
    /// Open TCP connections served; one more is closed at once.
    pub open_connections_max: usize,
    /// Commands waiting for the group-commit batcher; one more is answered 503 `overloaded`.
    pub proposal_queue_depth: usize,
    /// Log entries behind the leader's commit beyond which `/readyz` fails.
    pub ready_lag_entries_max: u64,
    /// How long the leader waits between two parts of a draw committed in parts (entries of up
    /// to 2,000 inspection tasks): 0 proposes them back to back, the batcher interleaving other
    /// writes; a pause spreads a province's draw out for a busy group.
    pub draw_part_interval_ms: u64,
}

impl Default for ProcessLimits {
    fn default() -> ProcessLimits {
        ProcessLimits {
            open_connections_max: limits::OPEN_CONNECTIONS_MAX,
            proposal_queue_depth: limits::PROPOSAL_QUEUE_DEPTH,
            ready_lag_entries_max: limits::READY_LAG_ENTRIES_MAX,
            draw_part_interval_ms: 0,
        }
    }
}

/// Raft timing, in milliseconds. Defaults suit 3 nodes on loopback on a busy 2-core machine:
/// elections at 6-12 heartbeats so scheduling hiccups under load do not unseat the leader.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftTuning {
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Entries applied between snapshots. Each entry is a batch of commands.
    pub snapshot_every_entries: u64,
    /// Entries kept in the log behind a snapshot, so a briefly lagging follower catches up
    /// from the log instead of a snapshot transfer.
    pub keep_entries_after_snapshot: u64,
    /// The log is purged once at least this many entries are due, to batch the deletions.
    pub purge_batch_entries: u64,
}

impl Default for RaftTuning {
    fn default() -> RaftTuning {
        RaftTuning {
            heartbeat_ms: 100,
            election_timeout_min_ms: 600,
            election_timeout_max_ms: 1200,
            snapshot_every_entries: 8_192,
            keep_entries_after_snapshot: 2_048,
            purge_batch_entries: 256,
        }
    }
}

/// A user of the API: the bearer token maps to a name, a bureau and a role.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    /// Display name for the console (e.g. 张伟).
    #[serde(default)]
    pub display_name: String,
    /// The bearer token in plain text (only in development files), or
    #[serde(default)]
    pub token: Option<String>,
    /// its SHA-256 in hex (what production files hold).
    #[serde(default)]
    pub token_sha256: Option<String>,
    pub bureau: String,
    /// `command`, `operator` or `leadership`.
    pub role: String,
    /// Requests per second this token may make to a node (a bucket one second deep); absent:
    /// `USER_REQUESTS_PER_SECOND_DEFAULT`.
    #[serde(default)]
    pub requests_per_second: Option<u32>,
    /// Console connections this user may hold open on one node or gateway (default 256; a
    /// shared wall-screen account may need more).
    #[serde(default)]
    pub consoles_max: Option<usize>,
}

/// Requests per second per user token when the users file sets none: far above what a person
/// at a console makes, and above the benchmarks' single-token load (about 20,000 writes/s), so
/// it bounds a runaway client without shaping measured load. Set lower per user in production.
pub const USER_REQUESTS_PER_SECOND_DEFAULT: u32 = 50_000;
/// What people's session tokens start with (`node::sessions`).
pub const SESSION_TOKEN_PREFIX: &str = "xs1.";

/// An operator of the platform itself (运维): may change a group's membership through
/// `xietong admin`; has no business role and sees no tasks.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    pub name: String,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub token_sha256: Option<String>,
}

/// A machine that delivers signals (`POST /api/v1/intake`): a monitoring system, another
/// department's system, a platform's data feed.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub name: String,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub token_sha256: Option<String>,
    /// The bureau it reports to: the tasks it registers are that bureau's.
    pub bureau: String,
    /// Signals per second it may deliver (a bucket refilled at this rate, one second deep).
    pub signals_per_second: u32,
    /// The fields whose values make signals one group (one task): any of `subject.uscc`,
    /// `subject.name`, `subject.region_code`, `kind`, `matter`, `title`.
    pub group_by: Vec<String>,
    /// Signals observed within this many minutes of a group's first one merge into its task.
    pub window_minutes: u64,
    /// The `source` its tasks carry (默认 big_data).
    #[serde(default = "default_task_source")]
    pub task_source: String,
}

fn default_task_source() -> String {
    "big_data".into()
}

/// A system of another department that reads the export feed of committed task events
/// (`GET /api/v1/export`), within its bureau scope (信息共享).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerConfig {
    pub name: String,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub token_sha256: Option<String>,
    pub bureau: String,
}

/// The registration system (登记系统) that feeds the live entity register its changes
/// (`POST /api/v1/register/changes`), for the entities within its bureau.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterFeedConfig {
    pub name: String,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub token_sha256: Option<String>,
    pub bureau: String,
    /// Changes per second it may deliver (a bucket refilled at this rate, one second deep).
    pub changes_per_second: u32,
}

/// Fields a source may group signals by.
pub const GROUPING_FIELDS: [&str; 6] =
    ["subject.uscc", "subject.name", "subject.region_code", "kind", "matter", "title"];
/// Longest grouping window a source may configure: 30 days.
pub const GROUPING_WINDOW_MINUTES_MAX: u64 = 30 * 24 * 60;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersFile {
    pub users: Vec<UserConfig>,
    #[serde(default)]
    pub admins: Vec<AdminConfig>,
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    #[serde(default)]
    pub consumers: Vec<ConsumerConfig>,
    #[serde(default)]
    pub register_feeds: Vec<RegisterFeedConfig>,
}

impl UsersFile {
    /// The names of the accounts whose token the file holds in plain text (a development file;
    /// production files hold `token_sha256`).
    pub fn plaintext_token_holders(&self) -> Vec<String> {
        let users = self.users.iter().filter(|u| u.token.is_some()).map(|u| format!("user {}", u.name));
        let admins = self.admins.iter().filter(|a| a.token.is_some()).map(|a| format!("admin {}", a.name));
        let sources = self.sources.iter().filter(|s| s.token.is_some()).map(|s| format!("source {}", s.name));
        let consumers = self.consumers.iter().filter(|c| c.token.is_some()).map(|c| format!("consumer {}", c.name));
        let feeds =
            self.register_feeds.iter().filter(|f| f.token.is_some()).map(|f| format!("register feed {}", f.name));
        users.chain(admins).chain(sources).chain(consumers).chain(feeds).collect()
    }
}

/// Which program a configuration file is for, from its keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigKind {
    Node,
    Gateway,
}

impl ConfigKind {
    /// A node's file has its member `id`, a gateway's the `redis` it reads.
    pub fn of_file(path: &Path) -> Result<ConfigKind, ConfigError> {
        let table: toml::Table = parse(path, &read(path)?)?;
        match (table.contains_key("id"), table.contains_key("redis")) {
            (true, false) => Ok(ConfigKind::Node),
            (false, true) => Ok(ConfigKind::Gateway),
            _ => Err(ConfigError::Parse {
                path: path.to_owned(),
                message: "neither a node's configuration (it has `id`) nor a gateway's (it has `redis`)".into(),
            }),
        }
    }
}

/// Shortest accepted token: anything shorter is guessable.
pub const TOKEN_CHARS_MIN: usize = 16;
const ROLES: [&str; 3] = ["command", "operator", "leadership"];

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.to_string() })
}

impl NodeConfig {
    /// Loads and validates a node file; `users_file` is resolved relative to it.
    pub fn load(path: &Path) -> Result<(NodeConfig, UsersFile), ConfigError> {
        let mut config: NodeConfig = parse(path, &read(path)?)?;
        if config.users_file.is_relative() {
            config.users_file = path.parent().unwrap_or(Path::new(".")).join(&config.users_file);
        }
        let tls_files = config.tls.as_mut().map(|tls| [&mut tls.cert_file, &mut tls.key_file, &mut tls.ca_file]);
        let files = [
            config.deadlines_file.as_mut(),
            config.topology_file.as_mut(),
            config.inspection_file.as_mut(),
            Some(&mut config.group.secret_file),
            config.attachment_store.as_mut().map(|store| &mut store.secret_access_key_file),
        ]
        .into_iter()
        .flatten()
        .chain(tls_files.into_iter().flatten());
        for file in files {
            if file.is_relative() {
                *file = path.parent().unwrap_or(Path::new(".")).join(&*file);
            }
        }
        if config.data_dir.is_relative() {
            config.data_dir = path.parent().unwrap_or(Path::new(".")).join(&config.data_dir);
        }
        config.validate()?;
        let users = UsersFile::parse(&config.users_file, &read(&config.users_file)?)?;
        Ok((config, users))
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !is_six_digits(&self.group.bureau) {
            return Err(invalid("group.bureau", "must be a 6-digit region code"));
        }
        let ids: BTreeSet<u64> = self.group.members.iter().map(|m| m.id).collect();
        if ids.len() != self.group.members.len() {
            return Err(invalid("group.members", "member ids must be distinct"));
        }
        if !ids.contains(&self.id) {
            return Err(invalid("id", format!("node {} is not a member of its group", self.id)));
        }
        if self.group.members.len() > limits::GROUP_MEMBERS_MAX {
            return Err(invalid("group.members", format!("at most {} members", limits::GROUP_MEMBERS_MAX)));
        }
        if self.worker_threads == 0 || self.worker_threads > limits::WORKER_THREADS_MAX {
            return Err(invalid("worker_threads", format!("must be between 1 and {}", limits::WORKER_THREADS_MAX)));
        }
        let raft = &self.raft;
        if raft.heartbeat_ms == 0 || raft.election_timeout_min_ms < 3 * raft.heartbeat_ms {
            return Err(invalid("raft.election_timeout_min_ms", "must be at least 3 heartbeats"));
        }
        if raft.election_timeout_max_ms <= raft.election_timeout_min_ms {
            return Err(invalid("raft.election_timeout_max_ms", "must exceed election_timeout_min_ms"));
        }
        if self.limits.open_connections_max == 0 || self.limits.proposal_queue_depth == 0 {
            return Err(invalid("limits", "limits must be positive"));
        }
        if let Some(store) = &self.attachment_store {
            store.validate()?;
        }
        let routed: BTreeSet<u64> = self.peer_routes.iter().map(|route| route.id).collect();
        if routed.len() != self.peer_routes.len() || routed.contains(&self.id) {
            return Err(invalid("peer_routes", "one route per other member, none to this node"));
        }
        Ok(())
    }

    pub fn member_addr(&self, id: u64) -> Option<&str> {
        self.group.members.iter().find(|m| m.id == id).map(|m| m.addr.as_str())
    }
}

impl UsersFile {
    pub fn parse(path: &Path, text: &str) -> Result<UsersFile, ConfigError> {
        let users: UsersFile = parse(path, text)?;
        users.validate()?;
        Ok(users)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let mut tokens: BTreeSet<String> = BTreeSet::new();
        let mut names = BTreeSet::new();
        for user in &self.users {
            let field = format!("users.{}", user.name);
            if !tokens.insert(credential_hash(&field, &user.token, &user.token_sha256)?) {
                return Err(invalid(&field, "token is used twice"));
            }
            if !names.insert(user.name.as_str()) {
                return Err(invalid(&field, "user name is used twice"));
            }
            // People act as `person:<id>:<name>`: no users-file name may look like one.
            if user.name.is_empty() || !user.name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
                return Err(invalid(&field, "a user name is made of A-Z, a-z, 0-9, '.', '_' and '-'"));
            }
            // People's session tokens start so: a users-file token may not.
            if user.token.as_deref().is_some_and(|token| token.starts_with(SESSION_TOKEN_PREFIX)) {
                return Err(invalid(&field, format!("a token may not start with {SESSION_TOKEN_PREFIX}")));
            }
            if !is_six_digits(&user.bureau) {
                return Err(invalid(&field, "bureau must be a 6-digit region code"));
            }
            if user.consoles_max == Some(0) {
                return Err(invalid(&field, "consoles_max must be positive"));
            }
            if user.requests_per_second == Some(0) {
                return Err(invalid(&field, "requests_per_second must be positive"));
            }
            if !ROLES.contains(&user.role.as_str()) {
                return Err(invalid(&field, format!("role must be one of {}", ROLES.join(", "))));
            }
        }
        let mut machine_names = BTreeSet::new();
        let machine_tokens = self
            .admins
            .iter()
            .map(|a| (format!("admins.{}", a.name), &a.token, &a.token_sha256, None))
            .chain(
                self.sources
                    .iter()
                    .map(|s| (format!("sources.{}", s.name), &s.token, &s.token_sha256, Some(&s.bureau))),
            )
            .chain(
                self.consumers
                    .iter()
                    .map(|c| (format!("consumers.{}", c.name), &c.token, &c.token_sha256, Some(&c.bureau))),
            )
            .chain(
                self.register_feeds
                    .iter()
                    .map(|f| (format!("register_feeds.{}", f.name), &f.token, &f.token_sha256, Some(&f.bureau))),
            );
        for (field, token, token_sha256, bureau) in machine_tokens {
            if !tokens.insert(credential_hash(&field, token, token_sha256)?) {
                return Err(invalid(&field, "token is used twice"));
            }
            if bureau.is_some_and(|b| !is_six_digits(b)) {
                return Err(invalid(&field, "bureau must be a 6-digit region code"));
            }
            if !machine_names.insert(field.clone()) {
                return Err(invalid(&field, "name is used twice"));
            }
        }
        for feed in &self.register_feeds {
            if feed.changes_per_second == 0 {
                return Err(invalid(&format!("register_feeds.{}", feed.name), "changes_per_second must be positive"));
            }
        }
        for source in &self.sources {
            let field = format!("sources.{}", source.name);
            if source.signals_per_second == 0 {
                return Err(invalid(&field, "signals_per_second must be positive"));
            }
            if source.group_by.is_empty() || source.group_by.iter().any(|f| !GROUPING_FIELDS.contains(&f.as_str())) {
                return Err(invalid(&field, format!("group_by names one or more of {}", GROUPING_FIELDS.join(", "))));
            }
            if source.window_minutes > GROUPING_WINDOW_MINUTES_MAX {
                return Err(invalid(&field, format!("window_minutes is at most {GROUPING_WINDOW_MINUTES_MAX}")));
            }
        }
        Ok(())
    }
}

/// SHA-256 of a bearer token, lower-case hex: what credentials are looked up by.
pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The hash of a credential given either as a plain token (checked for length) or as its
/// SHA-256; exactly one of the two.
pub fn credential_hash(
    field: &str,
    token: &Option<String>,
    token_sha256: &Option<String>,
) -> Result<String, ConfigError> {
    match (token, token_sha256) {
        (Some(token), None) => {
            if token.chars().count() < TOKEN_CHARS_MIN {
                return Err(invalid(field, format!("token must have at least {TOKEN_CHARS_MIN} characters")));
            }
            Ok(token_hash(token))
        }
        (None, Some(hash)) => {
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid(field, "token_sha256 must be 64 hex digits"));
            }
            Ok(hash.to_ascii_lowercase())
        }
        _ => Err(invalid(field, "give exactly one of token and token_sha256")),
    }
}

fn is_six_digits(text: &str) -> bool {
    text.len() == 6 && text.bytes().all(|b| b.is_ascii_digit())
}

/// The demo users that `xietong up` installs and prints.
pub const DEV_USERS_TOML: &str = include_str!("../dev/users.toml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_to_an_attachment_store_only_on_loopback() {
        for loopback in ["127.0.0.1:9000", "127.8.0.1", "localhost:9000/", "[::1]:9000", "[::1]"] {
            assert!(is_loopback_authority(loopback), "{loopback}");
        }
        for elsewhere in [
            "127.0.0.1.example.net",
            "localhost.example.net:80",
            "localhost@10.0.0.1",
            "10.0.0.1",
            "[::1",
            "[::2]:80",
            "",
        ] {
            assert!(!is_loopback_authority(elsewhere), "{elsewhere}");
        }
    }

    #[test]
    fn dev_users_are_valid() {
        let users = UsersFile::parse(Path::new("dev/users.toml"), DEV_USERS_TOML).expect("valid");
        assert!(users.users.iter().any(|u| u.role == "command" && u.bureau == "440000"));
        assert!(users.users.iter().any(|u| u.role == "operator"));
        assert!(users.users.iter().any(|u| u.role == "leadership"));
    }

    #[test]
    fn duplicate_tokens_and_unknown_roles_are_refused() {
        let twice = "[[users]]\nname='a'\ntoken='aaaaaaaaaaaaaaaa'\nbureau='440000'\nrole='command'\n\
                     [[users]]\nname='b'\ntoken='aaaaaaaaaaaaaaaa'\nbureau='440000'\nrole='command'\n";
        assert!(UsersFile::parse(Path::new("x"), twice).is_err());
        let role = "[[users]]\nname='a'\ntoken='aaaaaaaaaaaaaaaa'\nbureau='440000'\nrole='admin'\n";
        assert!(UsersFile::parse(Path::new("x"), role).is_err());
        let unknown = "[[users]]\nname='a'\ntoken='aaaaaaaaaaaaaaaa'\nbureau='440000'\nrole='command'\nextra=1\n";
        assert!(UsersFile::parse(Path::new("x"), unknown).is_err());
    }
}
