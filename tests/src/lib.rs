//! `TestCluster`: a bureau group of real `xietong` processes on loopback, for scenario tests.
//!
//! Each node is started from its own config file in a fresh temp dir, on ports the kernel
//! handed out. Tests reach nodes only through the public HTTP API and the handles here
//! (`kill`, `restart`). Every wait has a deadline and a description, and reports the last
//! state it saw. Dropping the cluster kills the processes it started, by PID.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use node::api::{ClusterView, TaskJson, TaskPage};

use crate::fault_proxy::FaultProxy;
/// Nodes, gateways and redis-server die with the test thread that started them (a test killed
/// from outside, a timeout, leaves nothing behind though its `Drop` never runs).
use node::up::die_with_parent;
use tempfile::TempDir;

pub const COMMAND_TOKEN: &str = "demo-gd-command-0001";
pub const TIANHE_OPERATOR_TOKEN: &str = "demo-tianhe-op-0005";
pub const LEADER_TOKEN: &str = "demo-gd-leader-0002";

/// Builds the `xietong` binary once per test process (a no-op when it is up to date) and
/// returns its path, next to this test binary in the same target profile directory.
pub fn xietong_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Ok(path) = std::env::var("XIETONG_BIN") {
            return PathBuf::from(path);
        }
        let exe = std::env::current_exe().expect("the test binary knows its path");
        let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>");
        let target_dir = profile_dir.parent().expect("target/<profile>");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev",
            Some(other) => other,
        };
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet", "-p", "node", "--bin", "xietong", "--profile", profile]);
        // Cargo sets `CARGO_PKG_NAME`, `CARGO_MANIFEST_DIR` and the like for the test process;
        // ring's build script watches some, so passing them on rebuilt ring and everything above
        // it (20 s or more), and the next `cargo test` rebuilt them back.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("CARGO_") && name != "CARGO_HOME" {
                build.env_remove(name.as_ref());
            }
        }
        let status =
            build.env("CARGO_TARGET_DIR", target_dir).status().expect("running cargo build for the xietong binary");
        assert!(status.success(), "building xietong failed");
        profile_dir.join("xietong")
    })
}

/// An HTTP client whose connections come from `local`, a loopback address other than
/// 127.0.0.1: a caller of its own for the servers that tell callers apart by address.
pub fn client_from(local: &str) -> reqwest::Client {
    let local: std::net::IpAddr = local.parse().expect("a loopback address");
    reqwest::Client::builder().local_address(local).timeout(Duration::from_secs(20)).build().expect("an HTTP client")
}

/// Polls `probe` every 50 ms until it yields `Some`, or panics at the deadline with `what`
/// and the last observation.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match probe().await {
            Ok(value) => return value,
            Err(observed) => observed,
        };
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}; last seen: {last}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Listen ports for test processes come from below Linux's ephemeral range (32768–60999), so no
/// outgoing connection's local port can take one between its choice and the node's bind (seen
/// once in CI: a node that never came up).
const TEST_PORTS: std::ops::Range<u16> = 20_000..32_768;
/// Ports handed out by any test process are reserved by a file here, so two test processes
/// running at once never choose the same one.
const PORT_RESERVATIONS_DIR: &str = "/tmp/xietong-test-ports";
/// A reservation older than this belongs to a finished run and may be reused.
const PORT_RESERVATION_LIFETIME: Duration = Duration::from_secs(30 * 60);

fn free_port() -> u16 {
    let dir = Path::new(PORT_RESERVATIONS_DIR);
    std::fs::create_dir_all(dir).expect("port reservation directory");
    for _ in 0..1_000 {
        let port = fastrand::u16(TEST_PORTS);
        let reservation = dir.join(port.to_string());
        let stale = std::fs::metadata(&reservation)
            .and_then(|meta| meta.modified())
            .is_ok_and(|at| at.elapsed().is_ok_and(|age| age > PORT_RESERVATION_LIFETIME));
        if stale {
            let _ = std::fs::remove_file(&reservation);
        }
        if std::fs::OpenOptions::new().write(true).create_new(true).open(&reservation).is_err() {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free test port found in {TEST_PORTS:?}");
}

/// `count` loopback addresses on free ports, reserved for this test run.
pub fn free_addrs(count: usize) -> Vec<String> {
    (0..count).map(|_| format!("127.0.0.1:{}", free_port())).collect()
}

pub mod browser;
pub mod console;
pub mod fault_proxy;
pub mod federation;
pub mod gateway;
pub mod redis_server;
pub mod s3_server;

pub struct TestNode {
    pub id: u64,
    pub addr: String,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

pub struct TestCluster {
    dir: TempDir,
    pub nodes: Vec<TestNode>,
    /// Trusts the test CA when the cluster serves TLS.
    pub http: reqwest::Client,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// (from, to) → the proxy node `from` reaches node `to` through (`proxied_peers`).
    links: BTreeMap<(u64, u64), FaultProxy>,
}

/// Settings a scenario may change; the defaults make snapshots and log purges happen within
/// a few hundred writes, so tests exercise them.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    pub size: u64,
    /// A deadline policy for the nodes (TOML as in `config/dev/deadlines.toml`).
    pub deadlines_toml: Option<String>,
    pub snapshot_every_entries: u64,
    pub keep_entries_after_snapshot: u64,
    /// The bureau whose group this is.
    pub bureau: String,
    /// Listen addresses chosen beforehand (a federation needs them all before any starts).
    pub addrs: Option<Vec<String>>,
    /// The federation topology the nodes get (see `config::topology`).
    pub topology_toml: Option<String>,
    /// Users added to the demo users (TOML `[[users]]` entries).
    pub extra_users_toml: Option<String>,
    /// A backup file every node is seeded from (`xietong admin restore`) before its first start,
    /// with the digest `backup` printed for it.
    pub restore_from: Option<(PathBuf, String)>,
    /// A data directory (its `log/` and `ledger/`) copied into node 1's before its first start:
    /// a one-node group goes on from a fixture of an older build (`tests/fixtures`).
    pub seed_data_dir: Option<PathBuf>,
    /// Serve and call peers over TLS, with a CA and a certificate for 127.0.0.1 made for the test.
    pub tls: bool,
    /// Route every node-to-node link (i → j) through a fault proxy of its own, so a test can
    /// cut, delay or blackhole single links (`TestCluster::link`).
    pub proxied_peers: bool,
    /// `[fanout] redis = ...`: the leader publishes console events to this Redis.
    pub fanout_redis: Option<String>,
    /// `[limits]` of every node (TOML body), for tests that cross them.
    pub limits_toml: Option<String>,
    /// `trusted_proxies` of every node: addresses whose `X-Forwarded-For` hops are believed.
    pub trusted_proxies: Vec<String>,
    /// `[log] format = "json"` on every node.
    pub log_json: bool,
    /// Whole sections added to every node's config (`[attachment_store]`, …).
    pub extra_sections_toml: Option<String>,
}

impl Default for ClusterOptions {
    fn default() -> ClusterOptions {
        ClusterOptions {
            size: 3,
            deadlines_toml: None,
            snapshot_every_entries: 64,
            keep_entries_after_snapshot: 4,
            bureau: "440000".into(),
            addrs: None,
            topology_toml: None,
            extra_users_toml: None,
            restore_from: None,
            seed_data_dir: None,
            tls: false,
            proxied_peers: false,
            fanout_redis: None,
            extra_sections_toml: None,
            limits_toml: None,
            trusted_proxies: Vec::new(),
            log_json: false,
        }
    }
}

impl TestCluster {
    pub async fn start() -> TestCluster {
        TestCluster::start_with(ClusterOptions::default()).await
    }

    pub async fn start_with(options: ClusterOptions) -> TestCluster {
        let binary = xietong_binary();
        assert!(binary.exists(), "{} is missing", binary.display());
        let mut dir = tempfile::Builder::new().prefix("xietong-it-").tempdir().expect("temp dir");
        // XIETONG_KEEP_TEST_DIRS=1 keeps node data and logs for a post-mortem.
        if std::env::var_os("XIETONG_KEEP_TEST_DIRS").is_some() {
            dir.disable_cleanup(true);
        }
        let users = format!("{}\n{}", node_users(), options.extra_users_toml.as_deref().unwrap_or(""));
        std::fs::write(dir.path().join("users.toml"), users).expect("users file");
        let deadlines_line = match &options.deadlines_toml {
            Some(policy) => {
                std::fs::write(dir.path().join("deadlines.toml"), policy).expect("policy file");
                "deadlines_file = \"deadlines.toml\"\n"
            }
            None => "",
        };
        let topology_line = match &options.topology_toml {
            Some(topology) => {
                std::fs::write(dir.path().join("topology.toml"), topology).expect("topology file");
                "topology_file = \"topology.toml\"\n"
            }
            None => "",
        };
        // Every member shares it; each test cluster gets its own, so groups never mix.
        let secret: String = (0..48).map(|_| fastrand::alphanumeric()).collect();
        std::fs::write(dir.path().join("group.secret"), secret).expect("group secret");
        let log_section = if options.log_json { "\n[log]\nformat = \"json\"\n" } else { "" };
        let limits_section = match &options.limits_toml {
            Some(limits) => format!("\n[limits]\n{limits}\n"),
            None => String::new(),
        };
        let trusted_proxies_line = if options.trusted_proxies.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = options.trusted_proxies.iter().map(|a| format!("\"{a}\"")).collect();
            format!("trusted_proxies = [{}]\n", quoted.join(", "))
        };
        let extra_sections = options.extra_sections_toml.as_deref().unwrap_or_default();
        let fanout_section = match &options.fanout_redis {
            Some(url) => format!("\n[fanout]\nredis = \"{url}\"\n"),
            None => String::new(),
        };
        let (tls_section, ca_pem) = if options.tls {
            let ca_pem = write_test_certificates(dir.path());
            ("\n[tls]\ncert_file = \"node.pem\"\nkey_file = \"node.key\"\nca_file = \"ca.pem\"\n", Some(ca_pem))
        } else {
            ("", None)
        };
        let addrs: Vec<String> = options.addrs.clone().unwrap_or_else(|| free_addrs(options.size as usize));
        assert_eq!(addrs.len() as u64, options.size, "one address per node");
        let members: String = addrs
            .iter()
            .enumerate()
            .map(|(i, addr)| format!("[[group.members]]\nid = {}\naddr = \"{addr}\"\n\n", i + 1))
            .collect();
        let mut links = BTreeMap::new();
        if options.proxied_peers {
            let proxy_addrs = free_addrs(addrs.len() * addrs.len());
            for (from, to) in (1..=options.size).flat_map(|from| (1..=options.size).map(move |to| (from, to))) {
                if from != to {
                    let listen = &proxy_addrs[((from - 1) * options.size + (to - 1)) as usize];
                    links.insert((from, to), FaultProxy::start(listen, &addrs[(to - 1) as usize]).await);
                }
            }
        }
        let mut nodes = Vec::new();
        for (index, addr) in addrs.iter().enumerate() {
            let id = index as u64 + 1;
            let peer_routes: String = links
                .iter()
                .filter(|((from, _), _)| *from == id)
                .map(|((_, to), proxy)| format!("[[peer_routes]]\nid = {to}\naddr = \"{}\"\n\n", proxy.addr))
                .collect();
            let config = dir.path().join(format!("node{id}.toml"));
            let text = format!(
                "id = {id}\nlisten = \"{addr}\"\ndata_dir = \"node{id}\"\nusers_file = \"users.toml\"\n{deadlines_line}{topology_line}{trusted_proxies_line}\n\
                 [group]\nbureau = \"{}\"\nsecret_file = \"group.secret\"\n\n{members}\
                 [raft]\nsnapshot_every_entries = {}\nkeep_entries_after_snapshot = {}\npurge_batch_entries = 1\n{tls_section}{fanout_section}{limits_section}{log_section}{extra_sections}\n{peer_routes}",
                options.bureau, options.snapshot_every_entries, options.keep_entries_after_snapshot
            );
            std::fs::write(&config, text).expect("node config");
            let log = dir.path().join(format!("node{id}.log"));
            nodes.push(TestNode { id, addr: addr.clone(), config, log, child: None });
        }
        let mut http = reqwest::Client::builder().timeout(Duration::from_secs(20));
        if let Some(ca_pem) = &ca_pem {
            http = http.add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("the test CA"));
        }
        let http = http.build().expect("client");
        let scheme = if options.tls { "https" } else { "http" };
        let mut cluster = TestCluster { dir, nodes, http, scheme, links };
        if let Some((backup, digest)) = &options.restore_from {
            for node in &cluster.nodes {
                let config = node.config.to_string_lossy();
                let from = backup.to_string_lossy();
                admin_offline(&["restore", "--from", &from, "--config", &config, "--expect-digest", digest])
                    .expect("restoring the backup into a new node");
            }
        }
        if let Some(seed) = &options.seed_data_dir {
            assert_eq!(options.size, 1, "a seeded data directory is one node's");
            copy_dir(seed, &cluster.dir.path().join("node1"));
        }
        for id in 1..=options.size {
            cluster.spawn(id);
        }
        cluster.wait_for_leader().await;
        cluster
    }

    pub fn node(&self, id: u64) -> &TestNode {
        &self.nodes[(id - 1) as usize]
    }

    pub fn addr(&self, id: u64) -> &str {
        &self.node(id).addr
    }

    pub fn url(&self, id: u64, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr(id))
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The proxy on the link from node `from` to node `to` (`ClusterOptions::proxied_peers`).
    pub fn link(&self, from: u64, to: u64) -> &FaultProxy {
        self.links.get(&(from, to)).unwrap_or_else(|| panic!("no proxied link {from} → {to}"))
    }

    /// Cuts every link to and from node `id`: it runs, but hears from and reaches no peer.
    pub fn isolate(&self, id: u64) {
        for ((from, to), proxy) in &self.links {
            if *from == id || *to == id {
                proxy.cut();
            }
        }
    }

    /// Heals every proxied link.
    pub fn heal_links(&self) {
        self.links.values().for_each(FaultProxy::heal);
    }

    pub fn config_path(&self, id: u64) -> &Path {
        &self.node(id).config
    }

    fn spawn(&mut self, id: u64) {
        let node = &mut self.nodes[(id - 1) as usize];
        assert!(node.child.is_none(), "node {id} is already running");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&node.log).expect("log file");
        let mut command = Command::new(xietong_binary());
        command
            .arg("node")
            .arg("--config")
            .arg(&node.config)
            .env("RUST_LOG", "info,openraft=warn")
            .stdout(Stdio::null())
            .stderr(log);
        die_with_parent(&mut command);
        node.child = Some(command.spawn().expect("spawning a node"));
    }

    /// SIGKILL: no shutdown path runs, exactly like a crash of the process.
    pub fn kill(&mut self, id: u64) {
        let node = &mut self.nodes[(id - 1) as usize];
        let mut child = node.child.take().unwrap_or_else(|| panic!("node {id} is not running"));
        kill_by_pid(child.id(), libc::SIGKILL);
        child.wait().expect("reaping a killed node");
    }

    pub fn restart(&mut self, id: u64) {
        self.spawn(id);
    }

    /// SIGSTOP: the process stays but answers nothing, as in a long GC pause or a hung VM.
    pub fn pause(&self, id: u64) {
        let child = self.node(id).child.as_ref().unwrap_or_else(|| panic!("node {id} is not running"));
        kill_by_pid(child.id(), libc::SIGSTOP);
    }

    /// SIGHUP: the node reloads its users file.
    pub fn reload_users(&self, id: u64) {
        let child = self.node(id).child.as_ref().unwrap_or_else(|| panic!("node {id} is not running"));
        kill_by_pid(child.id(), libc::SIGHUP);
    }

    /// SIGCONT after `pause`.
    pub fn resume(&self, id: u64) {
        let child = self.node(id).child.as_ref().unwrap_or_else(|| panic!("node {id} is not running"));
        kill_by_pid(child.id(), libc::SIGCONT);
    }

    /// Starts one more node (id = current count + 1) from a config naming the configured
    /// members and itself, not yet part of the group: `xietong admin` adds it. Returns its id.
    pub fn add_node(&mut self) -> u64 {
        let id = self.nodes.len() as u64 + 1;
        let addr = free_addrs(1).remove(0);
        let first = std::fs::read_to_string(&self.nodes[0].config).expect("node 1 config");
        let text = first
            .replacen("id = 1\n", &format!("id = {id}\n"), 1)
            .replacen(&format!("listen = \"{}\"", self.nodes[0].addr), &format!("listen = \"{addr}\""), 1)
            .replacen("data_dir = \"node1\"", &format!("data_dir = \"node{id}\""), 1)
            .replacen("[raft]", &format!("[[group.members]]\nid = {id}\naddr = \"{addr}\"\n\n[raft]"), 1);
        let config = self.dir.path().join(format!("node{id}.toml"));
        std::fs::write(&config, text).expect("node config");
        let log = self.dir.path().join(format!("node{id}.log"));
        self.nodes.push(TestNode { id, addr, config, log, child: None });
        self.spawn(id);
        id
    }

    pub fn running(&self) -> impl Iterator<Item = u64> + '_ {
        self.nodes.iter().filter(|n| n.child.is_some()).map(|n| n.id)
    }

    pub async fn view(&self, id: u64) -> Result<ClusterView, String> {
        let response = self
            .http
            .get(self.url(id, "/api/v1/cluster"))
            .bearer_auth(COMMAND_TOKEN)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .map_err(|e| format!("node {id}: {e}"))?;
        response.json().await.map_err(|e| format!("node {id}: {e}"))
    }

    /// Waits until a running node reports itself leader and the others agree; returns its id.
    pub async fn wait_for_leader(&self) -> u64 {
        let running: Vec<u64> = self.running().collect();
        wait_until("one leader that every running node knows", Duration::from_secs(30), || async {
            let mut views = Vec::new();
            for &id in &running {
                views.push(self.view(id).await?);
            }
            let leader = views[0].leader_id.ok_or("no leader known")?;
            let agreed = views.iter().all(|v| v.leader_id == Some(leader));
            let leader_says_so = views.iter().any(|v| v.node_id == leader && v.role == "leader");
            if agreed && leader_says_so {
                Ok(leader)
            } else {
                Err(format!("{:?}", views.iter().map(|v| (v.node_id, &v.role, v.leader_id)).collect::<Vec<_>>()))
            }
        })
        .await
    }

    /// Waits until every running node has applied the same index with the same digest.
    pub async fn wait_for_convergence(&self) -> ClusterView {
        let running: Vec<u64> = self.running().collect();
        wait_until("every running node at the same applied index and digest", Duration::from_secs(60), || async {
            let mut views = Vec::new();
            for &id in &running {
                views.push(self.view(id).await?);
            }
            let first = &views[0];
            let same = views.iter().all(|v| v.applied_index == first.applied_index && v.digest == first.digest);
            let caught_up = views.iter().all(|v| v.applied_index >= v.commit_index && v.commit_index.is_some());
            if same && caught_up {
                Ok(first.clone())
            } else {
                let seen: Vec<_> = views
                    .iter()
                    .map(|v| {
                        (v.node_id, v.applied_index, v.digest.as_deref().and_then(|d| d.get(..8)).map(str::to_owned))
                    })
                    .collect();
                Err(format!("{seen:?}"))
            }
        })
        .await
    }

    /// Every task visible to the provincial command user on node `id`, all pages.
    pub async fn all_tasks(&self, id: u64) -> Vec<TaskJson> {
        let mut tasks = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = self.url(id, "/api/v1/tasks?limit=500");
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let page: TaskPage = self
                .http
                .get(url)
                .bearer_auth(COMMAND_TOKEN)
                .send()
                .await
                .expect("listing tasks")
                .json()
                .await
                .expect("a task page");
            tasks.extend(page.tasks);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return tasks,
            }
        }
    }

    /// `GET path` on node `id` as the user of `token`, answered 200, as JSON.
    pub async fn get_json(&self, id: u64, token: &str, path: &str) -> serde_json::Value {
        let response = self.http.get(self.url(id, path)).bearer_auth(token).send().await.expect(path);
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("a JSON answer")
    }

    /// `POST path` on node `id` with a CSV body as the user of `token`: the status and the
    /// answer (JSON, or the text as a JSON string).
    pub async fn post_csv(
        &self,
        id: u64,
        token: &str,
        path: &str,
        csv: impl Into<reqwest::Body>,
    ) -> (u16, serde_json::Value) {
        let response = self
            .http
            .post(self.url(id, path))
            .bearer_auth(token)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .expect(path);
        let status = response.status().as_u16();
        let text = response.text().await.expect("an answer");
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
    }

    /// One sample from a node's Prometheus `/metrics`, by exact metric name (no labels).
    pub async fn metric(&self, id: u64, name: &str) -> Option<f64> {
        let text = self.http.get(self.url(id, "/metrics")).send().await.ok()?.text().await.ok()?;
        text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// Resident memory of a node's process, from /proc.
    pub fn rss_bytes(&self, id: u64) -> u64 {
        let pid = self.node(id).child.as_ref().expect("node running").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS line");
        kib * 1024
    }

    /// Creates a task from a request body as the user of `token`; the create must succeed.
    pub async fn create_task_as(&self, node: u64, token: &str, body: &serde_json::Value) -> TaskJson {
        let response = self.http.post(self.url(node, "/api/v1/tasks")).bearer_auth(token).json(body).send().await;
        let response = response.expect("create");
        assert_eq!(response.status(), 201, "create on node {node}");
        response.json().await.expect("task")
    }

    /// Creates a task (and dispatches it when `assignee` is given) as the provincial command user.
    pub async fn create_task(&self, node: u64, title: &str, assignee: Option<&str>) -> TaskJson {
        let task = self.create_task_as(node, COMMAND_TOKEN, &create_body(title)).await;
        match assignee {
            None => task,
            Some(bureau) => self
                .http
                .post(self.url(node, &format!("/api/v1/tasks/{}/dispatch", task.id)))
                .bearer_auth(COMMAND_TOKEN)
                .json(&serde_json::json!({"assignee_bureau": bureau, "version": task.version}))
                .send()
                .await
                .expect("dispatch")
                .json()
                .await
                .expect("task"),
        }
    }

    /// Where a node's stderr goes.
    pub fn log_path(&self, id: u64) -> &Path {
        &self.node(id).log
    }

    /// The last lines of a node's log, for failure messages.
    pub fn log_tail(&self, id: u64) -> String {
        let text = std::fs::read_to_string(&self.node(id).log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                kill_by_pid(child.id(), libc::SIGCONT);
                kill_by_pid(child.id(), libc::SIGKILL);
                let _ = child.wait();
            }
        }
    }
}

#[allow(unsafe_code)]
fn kill_by_pid(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) on a child this harness spawned and has not yet reaped.
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
}

/// The demo users: tests authenticate with the same tokens `xietong up` prints.
/// The test CA's certificate made from its key: the same name and key each time, so a node
/// certificate signed by a remade one verifies against the `ca.pem` written first.
fn test_ca(ca_key: &rcgen::KeyPair) -> rcgen::Certificate {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "xietong test CA");
    ca_params.self_signed(ca_key).expect("CA certificate")
}

/// Writes `ca.pem` and `ca.key`, and `node.pem` / `node.key` (a certificate for 127.0.0.1 signed
/// by that CA) into `dir`; returns the CA certificate's PEM.
pub fn write_test_certificates(dir: &Path) -> String {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let ca = test_ca(&ca_key);
    std::fs::write(dir.join("ca.pem"), ca.pem()).expect("ca.pem");
    std::fs::write(dir.join("ca.key"), ca_key.serialize_pem()).expect("ca.key");
    renew_test_certificate(dir);
    ca.pem()
}

/// Writes a new `node.pem` / `node.key` into `dir`, signed by the CA whose key `ca.key` holds
/// (a renewed certificate); returns the new certificate's DER.
pub fn renew_test_certificate(dir: &Path) -> Vec<u8> {
    write_node_certificate(dir, NodeCertificate::Renewed)
}

/// The kinds of node certificate a test writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeCertificate {
    /// From the group's CA, valid from 1975 to 4096 (rcgen's default).
    Renewed,
    /// From the group's CA, but it ended in 2020.
    Expired,
    /// Valid, but from a CA the group does not trust.
    FromAnotherCa,
}

/// Writes `node.pem` / `node.key` of the given kind into `dir`; returns the certificate's DER.
pub fn write_node_certificate(dir: &Path, kind: NodeCertificate) -> Vec<u8> {
    let ca_key = match kind {
        NodeCertificate::FromAnotherCa => rcgen::KeyPair::generate().expect("another CA's key"),
        _ => rcgen::KeyPair::from_pem(&std::fs::read_to_string(dir.join("ca.key")).expect("ca.key")).expect("CA key"),
    };
    let ca = test_ca(&ca_key);
    let node_key = rcgen::KeyPair::generate().expect("node key");
    let mut node_params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("node params");
    if kind == NodeCertificate::Expired {
        node_params.not_before = rcgen::date_time_ymd(2019, 1, 1);
        node_params.not_after = rcgen::date_time_ymd(2020, 1, 1);
    }
    let node = node_params.signed_by(&node_key, &ca, &ca_key).expect("node certificate");
    std::fs::write(dir.join("node.pem"), node.pem()).expect("node.pem");
    std::fs::write(dir.join("node.key"), node_key.serialize_pem()).expect("node.key");
    node.der().to_vec()
}

/// A platform operator of the demo users (`[[admins]]`).
pub const ADMIN_TOKEN: &str = "demo-ops-admin-0099";

/// Copies the tree at `from` to `to` (created), files with their permissions.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create a directory");
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("reading {}: {e}", from.display())) {
        let entry = entry.expect("a directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a file");
        }
    }
}

/// Runs `xietong admin` against `node` as the demo platform operator and returns its JSON answer;
/// the command must succeed.
pub fn admin(node: &str, args: &[&str]) -> serde_json::Value {
    let mut full = vec!["--node", node, "--token", ADMIN_TOKEN];
    full.extend_from_slice(args);
    admin_offline(&full).unwrap_or_else(|error| panic!("xietong admin {args:?} failed: {error}"))
}

/// Runs `xietong admin ARGS`: its JSON answer, or what it printed when it failed.
pub fn admin_offline(args: &[&str]) -> Result<serde_json::Value, String> {
    let output = Command::new(xietong_binary()).arg("admin").args(args).output().expect("running xietong admin");
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!("{stdout} {}", String::from_utf8_lossy(&output.stderr)));
    }
    Ok(serde_json::from_str(&stdout).expect("admin prints JSON"))
}

fn node_users() -> &'static str {
    include_str!("../../config/dev/users.toml")
}

/// `POST /api/v1/tasks/{id}/{action}` on node `node` as the user of `token`: the status and the
/// JSON answer.
/// A JSON request to node `node` as `token` (`POST` with `body`, else `GET`): its status and
/// body (the text when it is not JSON); status 0 with the error when no answer came (a node
/// killed under the request).
pub async fn request_json(
    cluster: &TestCluster,
    node: u64,
    token: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let url = cluster.url(node, path);
    let mut request = if method == "POST" { cluster.http.post(url) } else { cluster.http.get(url) };
    request = request.bearer_auth(token).timeout(Duration::from_secs(300));
    if let Some(body) = body {
        request = request.json(&body);
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
        }
        Err(error) => (0, serde_json::Value::String(error.to_string())),
    }
}

/// `xietong draw verify` on a campaign's proof (`GET /api/v1/campaigns/{id}/proof`) and the
/// directory file the proof names, fetched from node `node`: whether it verified, and what the
/// tool printed.
pub async fn verify_proof(cluster: &TestCluster, node: u64, token: &str, proof: &serde_json::Value) -> (bool, String) {
    let sha = proof["draw"]["inputs"]["spec"]["entity_directory"].as_str().expect("the proof names its directory");
    let url = cluster.url(node, &format!("/api/v1/directories/entities/{sha}"));
    let response = cluster.http.get(url).bearer_auth(token).send().await.expect("the directory file");
    let file = response.bytes().await.expect("its bytes");
    assert_eq!(draw::directory::sha256_hex(&file), sha, "the file the proof names");
    let proof_path = cluster.data_dir().join("proof.json");
    let directory_path = cluster.data_dir().join("verify-directory.csv");
    std::fs::write(&proof_path, serde_json::to_vec(proof).expect("a proof")).expect("writing the proof");
    std::fs::write(&directory_path, &file).expect("writing the directory");
    let output = std::process::Command::new(xietong_binary())
        .args(["draw", "verify", "--proof"])
        .arg(&proof_path)
        .arg("--directory")
        .arg(&directory_path)
        .output()
        .expect("xietong draw verify");
    (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned())
}

pub async fn act(
    cluster: &TestCluster,
    node: u64,
    token: &str,
    id: u64,
    action: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let response = cluster
        .http
        .post(cluster.url(node, &format!("/api/v1/tasks/{id}/{action}")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("action");
    (response.status().as_u16(), response.json().await.expect("json body"))
}

/// Sends one create as a client that retries does: on `addrs[first]`, then the next nodes in
/// turn, with one Idempotency-Key for every attempt and a growing pause between them (a node
/// restarting, a leader being elected). The task once any node answered 2xx.
pub async fn create_with_retries(
    http: &reqwest::Client,
    addrs: &[String],
    first: usize,
    key: &str,
    body: &serde_json::Value,
    attempts: usize,
) -> Option<TaskJson> {
    for attempt in 0..attempts {
        let addr = &addrs[(first + attempt) % addrs.len()];
        let sent = http
            .post(format!("http://{addr}/api/v1/tasks"))
            .bearer_auth(COMMAND_TOKEN)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await;
        if let Ok(response) = sent {
            if response.status().is_success() {
                return response.json().await.ok();
            }
        }
        tokio::time::sleep(Duration::from_millis(50 * (attempt as u64 + 1))).await;
    }
    None
}

/// A valid create request with a distinctive title.
pub fn create_body(title: &str) -> serde_json::Value {
    serde_json::json!({
        "kind": "lead",
        "severity": "high",
        "title": title,
        "description": "测试线索",
        "subject": {"uscc": "91350100M000100Y43", "name": "广州市某某贸易有限公司", "region_code": "440106", "address": "广州市天河区天河路1号"},
        "source": "complaint",
    })
}

/// Every file below `root` (data directories, in checks of what a node keeps on disk).
pub fn files_below(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// Imports a synthetic entity directory of `entities` firms in `region` (`xietong draw
/// generate`'s generator, seeded) through node `node` as the provincial command centre, and
/// checks it was committed (201). Answers the file's SHA-256, which names the version.
pub async fn import_directory(cluster: &TestCluster, node: u64, region: &str, entities: u64, seed: u64) -> String {
    let region = ledger::BureauCode::parse_compiled(region).expect("a real region");
    let directory = draw::generate::generate(entities, region, seed);
    let sha256 = draw::directory::sha256_hex(&directory);
    let (status, answer) = cluster.post_csv(node, COMMAND_TOKEN, "/api/v1/directories/entities", directory).await;
    assert_eq!(status, 201, "the directory is imported: {answer}");
    sha256
}

/// The default deadline policy with reminders every second, escalation after the first unheeded
/// one and at most `reminders_max` reminders: lateness within seconds for the deadline tests.
pub fn fast_chasing_policy(reminders_max: u32) -> String {
    let default = config::deadlines::DEFAULT_DEADLINES_TOML;
    let rules = &default[..default.find("[escalation]").expect("the default has an escalation section")];
    format!("{rules}[escalation]\nremind_every = \"1s\"\nreminders_max = {reminders_max}\nescalate_after_reminders = 1\nfeedback_postpones_reminder = true\n")
}

/// The text of a PDF as poppler's `pdftotext` reads it (installed by `scripts/test-all`), in
/// reading order: what a person who opens the document sees, and proof the fonts embedded
/// carry their text (a PDF whose glyphs have no Unicode map reads as nothing).
pub fn pdf_text(pdf: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("pdftotext")
        .args(["-enc", "UTF-8", "-", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("pdftotext (Debian's poppler-utils) runs");
    child.stdin.take().expect("stdin").write_all(pdf).expect("the PDF to pdftotext");
    let out = child.wait_with_output().expect("pdftotext ends");
    assert!(out.status.success(), "pdftotext opens the PDF: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("pdftotext writes UTF-8")
}

/// The pictures a PDF draws, as poppler's `pdfimages -list` counts them (soft masks, a PNG's
/// transparency, are not counted apart).
pub fn pdf_images(pdf: &[u8]) -> usize {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("document.pdf");
    std::fs::write(&path, pdf).expect("the PDF written");
    let out = std::process::Command::new("pdfimages").arg("-list").arg(&path).output().expect("pdfimages runs");
    assert!(out.status.success(), "pdfimages opens the PDF: {}", String::from_utf8_lossy(&out.stderr));
    let listing = String::from_utf8_lossy(&out.stdout);
    // Two heading lines, then one per image: `page num type width height …`, type `image`.
    listing.lines().skip(2).filter(|line| line.split_whitespace().nth(2) == Some("image")).count()
}
