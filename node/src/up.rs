//! `xietong up`: the default local topology on loopback. It writes each node's configuration
//! and the federation topology under the data directory, starts the nodes as child processes
//! of this binary (so each can be killed on its own, as in production), waits until every
//! group has a leader, prints the consoles and demo logins, runs the demo feed, and on Ctrl-C
//! stops the nodes it started by PID.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

/// The default topology: four command centres, each running a group of three nodes — the
/// Guangdong province (which also hosts the prefectures without a group of their own, such as
/// Dongguan), its cities Guangzhou and Shenzhen (hosting their districts), and the Zhejiang
/// province beside it.
pub const DEFAULT_GROUPS: [(&str, &str); 4] =
    [("440000", "广东省"), ("440100", "广州市"), ("440300", "深圳市"), ("330000", "浙江省")];
pub const GROUP_SIZE: u16 = 3;
const NODES_TOTAL: u16 = DEFAULT_GROUPS.len() as u16 * GROUP_SIZE;
/// How long `up` waits for every group to elect a leader before giving up.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a node gets to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(clap::Args, Debug, Clone)]
pub struct UpArgs {
    /// Do not feed demo traffic.
    #[arg(long)]
    pub no_demo: bool,
    /// Where nodes keep their logs, snapshots and configuration.
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
    /// Node HTTP ports are N, N+1, ... (three per group, groups in the order above).
    #[arg(long, default_value_t = 8440)]
    pub base_port: u16,
    /// Start only these groups of the topology (comma-separated bureau codes), e.g. for a
    /// benchmark; the others stay down (forwards to them wait in the outbox).
    #[arg(long, value_delimiter = ',')]
    pub groups: Vec<String>,
    /// Also start a redis-server (Debian's) and two console gateways for the Guangdong group:
    /// the nodes publish console events to Redis and the gateways serve consoles from it.
    #[arg(long)]
    pub redis: bool,
    /// Start the group a backup file belongs to from it (each of its nodes whose data
    /// directory is still empty): for benchmarks on a large ledger made by
    /// `xietong admin synthesize`.
    #[arg(long)]
    pub seed: Option<PathBuf>,
    /// Nodes in each group (1 to 3): one node for a benchmark whose ledger does not fit on
    /// this machine's disk three times. Ports stay three apart per group.
    #[arg(long, default_value_t = GROUP_SIZE, value_parser = clap::value_parser!(u16).range(1..=GROUP_SIZE as i64))]
    pub nodes_per_group: u16,
}

/// Restores `seed` into every node of its group whose data directory is still empty.
fn seed_nodes(seed: &Path, nodes: &[LocalNode]) -> anyhow::Result<()> {
    let header = {
        let mut file =
            std::io::BufReader::new(std::fs::File::open(seed).with_context(|| format!("opening {}", seed.display()))?);
        cluster::backup::read_header(&mut file)?
    };
    for node in nodes.iter().filter(|node| node.group == header.group) {
        let data_dir =
            node.config.parent().expect("a config lives in its group's directory").join(format!("node{}", node.id));
        let holds_data = std::fs::read_dir(&data_dir).map(|mut entries| entries.next().is_some()).unwrap_or(false);
        if holds_data {
            println!("node {} of {} holds data already: not seeded again", node.id, node.group);
            continue;
        }
        // The file is checked whole as it is restored; the digest is the file's own (a
        // benchmark's file, not a backup kept apart from its digest).
        crate::admin_cli::restore(seed, &node.config, &header.digest)?;
    }
    Ok(())
}

/// With `--redis`: Redis listens on the port after the nodes', the gateways on the next ones.
const REDIS_PORT_OFFSET: u16 = NODES_TOTAL;
/// The gateways' names and the loopback addresses their calls to the nodes come from: the
/// gateway group's nodes trust exactly these (`trusted_proxies`), as a deployment lists its
/// gateway hosts, while any other local caller (127.0.0.1) cannot name itself someone else.
const GATEWAYS: [(&str, &str); 2] = [("gw1", "127.0.0.2"), ("gw2", "127.0.0.3")];
/// The group the gateways serve: the provincial command centre, with the most consoles.
const GATEWAY_GROUP: &str = "440000";

/// One node of the local topology.
pub struct LocalNode {
    pub group: &'static str,
    pub id: u16,
    pub addr: String,
    pub config: PathBuf,
}

/// The member addresses of each group of the local topology, `nodes_per_group` in each (ports
/// stay `GROUP_SIZE` apart per group).
pub fn group_addrs(base_port: u16, nodes_per_group: u16) -> Vec<(&'static str, Vec<String>)> {
    DEFAULT_GROUPS
        .iter()
        .enumerate()
        .map(|(g, (bureau, _))| {
            let first = base_port + g as u16 * GROUP_SIZE;
            (*bureau, (0..nodes_per_group.min(GROUP_SIZE)).map(|i| format!("127.0.0.1:{}", first + i)).collect())
        })
        .collect()
}

/// A fresh random secret of `hex_digits` hex digits (4 bits each), from the operating system's
/// CSPRNG: the local topology's links and groups get new ones on every start, and knowing one
/// (a peer token a group holds) says nothing of the others.
fn random_secret(hex_digits: usize) -> String {
    let mut bytes = vec![0u8; hex_digits.div_ceil(2)];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    hex[..hex_digits].to_owned()
}

fn peer_token() -> String {
    random_secret(32)
}

/// Writes a secret readable by this user only.
fn write_secret_file(path: &Path, secret: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    writeln!(file, "{secret}")?;
    Ok(())
}

/// Writes `users.toml`, `topology.toml` and one `<group>/nodeK.toml` per node, `nodes_per_group`
/// in each group; returns the nodes.
pub fn write_topology(data_dir: &Path, base_port: u16, nodes_per_group: u16) -> anyhow::Result<Vec<LocalNode>> {
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    std::fs::write(data_dir.join("users.toml"), config::DEV_USERS_TOML)?;
    let groups = group_addrs(base_port, nodes_per_group);
    let mut topology = String::from("# Written by `xietong up` with fresh peer tokens on every start.\n\n");
    for (bureau, addrs) in &groups {
        let members: Vec<String> =
            addrs.iter().enumerate().map(|(i, addr)| format!("{{ id = {}, addr = \"{addr}\" }}", i + 1)).collect();
        let _ = writeln!(topology, "[[groups]]\nbureau = \"{bureau}\"\nmembers = [{}]\n", members.join(", "));
    }
    for (from, _) in &groups {
        for (to, _) in groups.iter().filter(|(to, _)| to != from) {
            let _ = writeln!(topology, "[[links]]\nfrom = \"{from}\"\nto = \"{to}\"\ntoken = \"{}\"\n", peer_token());
        }
    }
    // Every link's plaintext token: readable by this user only, like the group secrets.
    write_secret_file(&data_dir.join("topology.toml"), &topology)?;
    let mut nodes = Vec::new();
    for (bureau, addrs) in &groups {
        let group_dir = data_dir.join(bureau);
        std::fs::create_dir_all(&group_dir)?;
        write_secret_file(&group_dir.join("group.secret"), &random_secret(64))?;
        let mut members = String::new();
        for (index, addr) in addrs.iter().enumerate() {
            let _ = writeln!(members, "[[group.members]]\nid = {}\naddr = \"{addr}\"\n", index + 1);
        }
        for (index, addr) in addrs.iter().enumerate() {
            let id = index as u16 + 1;
            let text = format!(
                "# Written by `xietong up`; edits are overwritten on the next start.\n\
                 id = {id}\nlisten = \"{addr}\"\ndata_dir = \"node{id}\"\nusers_file = \"../users.toml\"\n\
                 topology_file = \"../topology.toml\"\n\n[group]\nbureau = \"{bureau}\"\nsecret_file = \"group.secret\"\n\n{members}",
            );
            let config = group_dir.join(format!("node{id}.toml"));
            std::fs::write(&config, text)?;
            nodes.push(LocalNode { group: bureau, id, addr: addr.clone(), config });
        }
    }
    Ok(nodes)
}

struct NodeProcess {
    name: String,
    child: Child,
}

pub async fn run(args: UpArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let base_port = args.base_port;
    anyhow::ensure!(
        base_port.checked_add(NODES_TOTAL + 1 + GATEWAYS.len() as u16).is_some(),
        "--base-port {base_port} leaves no room for the nodes, Redis and the gateways"
    );
    let selected = |group: &str| args.groups.is_empty() || args.groups.iter().any(|g| g == group);
    for group in &args.groups {
        anyhow::ensure!(
            DEFAULT_GROUPS.iter().any(|(b, _)| b == group),
            "--groups: {group} is not a group of the topology"
        );
    }
    anyhow::ensure!(
        args.no_demo || (selected("440000") && selected("330000")),
        "the demo needs groups 440000 and 330000 (or pass --no-demo)"
    );
    let local_nodes = write_topology(&args.data_dir, base_port, args.nodes_per_group)?;
    if let Some(seed) = &args.seed {
        seed_nodes(seed, &local_nodes)?;
    }
    let exe = std::env::current_exe().context("locating the xietong binary")?;
    let mut nodes = Vec::new();
    let redis_url = format!("redis://127.0.0.1:{}/", base_port + REDIS_PORT_OFFSET);
    if args.redis {
        nodes.push(start_redis(&args.data_dir, base_port + REDIS_PORT_OFFSET)?);
        let gateways: Vec<String> = GATEWAYS.iter().map(|(_, source)| format!("\"{source}\"")).collect();
        for node in &local_nodes {
            let mut text = std::fs::read_to_string(&node.config)?;
            if node.group == GATEWAY_GROUP {
                // A top-level key, so before the tables: right after the file's first line.
                let (first_line, rest) = text.split_once('\n').unwrap_or((&text, ""));
                text = format!("{first_line}\ntrusted_proxies = [{}]\n{rest}", gateways.join(", "));
            }
            let _ = write!(text, "\n[fanout]\nredis = \"{redis_url}\"\n");
            std::fs::write(&node.config, text)?;
        }
    }
    for node in local_nodes.iter().filter(|node| selected(node.group)) {
        let name = format!("{}/node{}", node.group, node.id);
        let log_path = args.data_dir.join(node.group).join(format!("node{}.log", node.id));
        let log = std::fs::OpenOptions::new().create(true).append(true).open(log_path)?;
        let mut command = Command::new(&exe);
        command.arg("node").arg("--config").arg(&node.config).stdout(Stdio::null()).stderr(log).kill_on_drop(true);
        die_with_parent(command.as_std_mut());
        let child = command.spawn().with_context(|| format!("starting {name}"))?;
        // For scripts that fault-inject one node (pause, kill) without searching for it.
        if let Some(pid) = child.id() {
            std::fs::write(args.data_dir.join(node.group).join(format!("node{}.pid", node.id)), format!("{pid}\n"))?;
        }
        nodes.push(NodeProcess { name, child });
    }
    let groups: Vec<_> =
        group_addrs(base_port, args.nodes_per_group).into_iter().filter(|(bureau, _)| selected(bureau)).collect();
    let result = async {
        for (bureau, addrs) in &groups {
            wait_until_ready(bureau, addrs, &shutdown).await?;
        }
        if args.redis {
            let group =
                groups.iter().find(|(bureau, _)| *bureau == GATEWAY_GROUP).context("--redis needs group 440000")?;
            for (number, (name, source)) in GATEWAYS.iter().enumerate() {
                let listen = format!("127.0.0.1:{}", base_port + REDIS_PORT_OFFSET + 1 + number as u16);
                let gateway = Gateway { name, listen: &listen, source_address: source };
                nodes.push(start_gateway(&exe, &args.data_dir, &gateway, &redis_url, &group.1)?);
                println!("  gateway {name} for group {GATEWAY_GROUP}: console http://{listen}/");
            }
        }
        print_banner(&args, &groups);
        // Guangzhou's stations and people are enrolled with or without the demo feed (they are
        // the demo's accounts, as users.toml holds its tokens); work flows to them with it.
        if let Some((_, addrs)) = groups.iter().find(|(bureau, _)| *bureau == "440100") {
            tokio::spawn(crate::demo_people::run(
                reqwest::Client::new(),
                addrs.clone(),
                shutdown.clone(),
                !args.no_demo,
            ));
        }
        if args.no_demo {
            shutdown.cancelled().await;
            Ok(())
        } else {
            crate::demo::run(groups.iter().map(|(b, a)| (*b, a.clone())).collect(), shutdown.clone()).await
        }
    }
    .await;
    stop_nodes(&mut nodes).await;
    result
}

/// A redis-server without persistence, dying with `up`.
fn start_redis(data_dir: &Path, port: u16) -> anyhow::Result<NodeProcess> {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(data_dir.join("redis.log"))?;
    let mut command = Command::new("redis-server");
    command
        .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
        .stdout(log)
        .stderr(Stdio::null())
        .kill_on_drop(true);
    die_with_parent(command.as_std_mut());
    let child = command.spawn().context("starting redis-server (apt-get install redis-server)")?;
    Ok(NodeProcess { name: "redis".into(), child })
}

/// One console gateway of the local topology.
struct Gateway<'a> {
    name: &'a str,
    listen: &'a str,
    /// Where its calls to the nodes come from (which the nodes trust).
    source_address: &'a str,
}

/// A console gateway for `group_addrs`' group, with its config under `data_dir/gateways`.
fn start_gateway(
    exe: &Path,
    data_dir: &Path,
    gateway: &Gateway,
    redis_url: &str,
    group_addrs: &[String],
) -> anyhow::Result<NodeProcess> {
    let Gateway { name, listen, source_address } = gateway;
    let dir = data_dir.join("gateways");
    std::fs::create_dir_all(&dir)?;
    let nodes: Vec<String> = group_addrs.iter().map(|addr| format!("\"{addr}\"")).collect();
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "# Written by `xietong up --redis`.\nname = \"{name}\"\nlisten = \"{listen}\"\nusers_file = \"../users.toml\"\n\
             redis = \"{redis_url}\"\nsource_address = \"{source_address}\"\n\n[group]\nbureau = \"{GATEWAY_GROUP}\"\nnodes = [{}]\n",
            nodes.join(", ")
        ),
    )?;
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join(format!("{name}.log")))?;
    let mut command = Command::new(exe);
    command.arg("gateway").arg("--config").arg(&config).stdout(Stdio::null()).stderr(log).kill_on_drop(true);
    die_with_parent(command.as_std_mut());
    let child = command.spawn().with_context(|| format!("starting gateway {name}"))?;
    Ok(NodeProcess { name: format!("gateway {name}"), child })
}

async fn wait_until_ready(group: &str, addrs: &[String], shutdown: &CancellationToken) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + STARTUP_TIMEOUT;
    loop {
        for addr in addrs {
            let ready = http.get(format!("http://{addr}/readyz")).timeout(Duration::from_secs(1)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "group {group} did not elect a leader within {STARTUP_TIMEOUT:?}; see the node logs"
        );
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
            () = shutdown.cancelled() => anyhow::bail!("stopped before the group was ready"),
        }
    }
}

fn print_banner(args: &UpArgs, groups: &[(&str, Vec<String>)]) {
    let users = config::UsersFile::parse(Path::new("users.toml"), config::DEV_USERS_TOML).expect("dev users are valid");
    println!("\n协同指挥调度 Xietong is running: {} groups of {} nodes", groups.len(), args.nodes_per_group);
    for ((bureau, addrs), (_, name)) in groups.iter().zip(DEFAULT_GROUPS) {
        println!("  group {bureau} ({name}): console http://{}/   nodes {}", addrs[0], addrs.join(" "));
    }
    if let Some((_, addrs)) = groups.iter().find(|(bureau, _)| *bureau == "440100") {
        println!("  public inspection results (双随机、一公开, no sign-in): http://{}/public", addrs[0]);
    }
    println!("\nData: {}   Demo feed: {}", args.data_dir.display(), if args.no_demo { "off" } else { "on" });
    println!("\nDemo logins (Authorization: Bearer <token>), each on the console of the group hosting its bureau:");
    for user in users.users {
        let console = hosting_group(&user.bureau)
            .and_then(|host| groups.iter().find(|(bureau, _)| *bureau == host))
            .map_or_else(String::new, |(_, addrs)| format!("http://{}/", addrs[0]));
        println!(
            "  {:<18} {:<11} {}  {:<24} {:<26} {}",
            user.name,
            user.role,
            user.bureau,
            user.token.as_deref().unwrap_or("(hashed)"),
            console,
            user.display_name
        );
    }
    if let Some((_, addrs)) = groups.iter().find(|(bureau, _)| *bureau == "440100") {
        println!(
            "\nDemo people of Guangzhou's stations (sign in on http://{}/ with login and password; all {} in config/dev/people.csv, each password Demo-<login>):",
            addrs[0],
            crate::demo_people::people_count()
        );
        for (login, name, unit) in crate::demo_people::sample_people() {
            println!("  {login:<18} {:<22} {unit}  {name}", crate::demo_people::demo_password(&login));
        }
    }
    println!("\nCtrl-C stops everything.");
}

/// The group of the local topology that hosts `bureau`: the nearest one at or above it.
fn hosting_group(bureau: &str) -> Option<&'static str> {
    let regions = ledger::Regions::compiled();
    let code = ledger::BureauCode::parse_compiled(bureau)?;
    std::iter::successors(Some(code), |c| regions.parent(*c))
        .find_map(|c| DEFAULT_GROUPS.iter().map(|(b, _)| *b).find(|b| *b == c.to_string()))
}

/// Stops the nodes this process started, by PID: SIGTERM, then SIGKILL after a grace period.
async fn stop_nodes(nodes: &mut [NodeProcess]) {
    for node in nodes.iter() {
        if let Some(pid) = node.child.id() {
            terminate(pid);
        }
    }
    for node in nodes.iter_mut() {
        match tokio::time::timeout(STOP_TIMEOUT, node.child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                tracing::warn!(node = %node.name, "did not stop in time; killing it");
                let _ = node.child.kill().await;
            }
        }
    }
}

/// A child process dies with the thread that started it, even when its parent is killed
/// (SIGKILL runs no shutdown path), so no node is ever left running behind a launcher (or a
/// test) that is gone. Used by `up` and by the test harness.
#[allow(unsafe_code)]
pub fn die_with_parent(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2), which is
    // async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

#[allow(unsafe_code)]
fn terminate(pid: u32) {
    // SAFETY: kill(2) with a PID this process spawned and still owns (not yet reaped).
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Secrets have the asked number of hex digits and no two are alike. (That they come from
    /// the operating system's CSPRNG, finding 16 of the security review, is for the reader of
    /// `random_secret`: no test tells a CSPRNG from the `fastrand` stream they came from.)
    #[test]
    fn secrets_are_hex_of_the_asked_length_and_never_repeat() {
        let secrets: std::collections::BTreeSet<String> = (0..1_000).map(|_| random_secret(63)).collect();
        assert_eq!(secrets.len(), 1_000);
        assert!(secrets.iter().all(|s| s.len() == 63 && s.chars().all(|c| c.is_ascii_hexdigit())));
    }

    /// `topology.toml` holds every link's plaintext token: its user's only.
    #[test]
    fn the_topology_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        write_topology(dir.path(), 40_000, GROUP_SIZE).expect("topology");
        let mode = std::fs::metadata(dir.path().join("topology.toml")).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
