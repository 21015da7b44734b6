//! `xietong up`: the default local topology on loopback. It writes each node's configuration
//! under the data directory, starts the nodes as child processes of this binary (so each can
//! be killed on its own, as in production), waits until the group has a leader, prints the
//! console address and demo logins, runs the demo feed, and on Ctrl-C stops the nodes it
//! started by PID.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

/// The default topology: the Guangdong provincial command centre hosts itself and every
/// bureau below it in one group of three nodes.
pub const DEFAULT_GROUP_BUREAU: &str = "440000";
pub const GROUP_SIZE: u16 = 3;
/// How long `up` waits for the new group to elect a leader before giving up.
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
    /// Node HTTP ports are N, N+1, N+2.
    #[arg(long, default_value_t = 8440)]
    pub base_port: u16,
}

/// Writes `users.toml` and `nodeK.toml` for the group; returns the node config paths.
pub fn write_topology(data_dir: &Path, base_port: u16) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    std::fs::write(data_dir.join("users.toml"), config::DEV_USERS_TOML)?;
    let mut members = String::new();
    for index in 0..GROUP_SIZE {
        let _ =
            writeln!(members, "[[group.members]]\nid = {}\naddr = \"127.0.0.1:{}\"\n", index + 1, base_port + index);
    }
    let mut paths = Vec::new();
    for index in 0..GROUP_SIZE {
        let id = index + 1;
        let text = format!(
            "# Written by `xietong up`; edits are overwritten on the next start.\n\
             id = {id}\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"node{id}\"\nusers_file = \"users.toml\"\n\n\
             [group]\nbureau = \"{DEFAULT_GROUP_BUREAU}\"\n\n{members}",
            port = base_port + index,
        );
        let path = data_dir.join(format!("node{id}.toml"));
        std::fs::write(&path, text)?;
        paths.push(path);
    }
    Ok(paths)
}

struct NodeProcess {
    id: u16,
    child: Child,
}

pub async fn run(args: UpArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let base_port = args.base_port;
    anyhow::ensure!(
        base_port.checked_add(GROUP_SIZE).is_some(),
        "--base-port {base_port} leaves no room for {GROUP_SIZE} ports"
    );
    let configs = write_topology(&args.data_dir, base_port)?;
    let exe = std::env::current_exe().context("locating the xietong binary")?;
    let mut nodes = Vec::new();
    for (index, config) in configs.iter().enumerate() {
        let id = index as u16 + 1;
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(args.data_dir.join(format!("node{id}.log")))?;
        let child = Command::new(&exe)
            .arg("node")
            .arg("--config")
            .arg(config)
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting node {id}"))?;
        nodes.push(NodeProcess { id, child });
    }
    let addrs: Vec<String> = (0..GROUP_SIZE).map(|i| format!("127.0.0.1:{}", base_port + i)).collect();
    let result = async {
        wait_until_ready(&addrs, &shutdown).await?;
        print_banner(&args, &addrs);
        if args.no_demo {
            shutdown.cancelled().await;
            Ok(())
        } else {
            crate::demo::run(addrs.clone(), shutdown.clone()).await
        }
    }
    .await;
    stop_nodes(&mut nodes).await;
    result
}

async fn wait_until_ready(addrs: &[String], shutdown: &CancellationToken) -> anyhow::Result<()> {
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
            "the group did not elect a leader within {STARTUP_TIMEOUT:?}; see the node logs"
        );
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
            () = shutdown.cancelled() => anyhow::bail!("stopped before the group was ready"),
        }
    }
}

fn print_banner(args: &UpArgs, addrs: &[String]) {
    let users = config::UsersFile::parse(Path::new("users.toml"), config::DEV_USERS_TOML).expect("dev users are valid");
    println!("\n协同指挥调度 Xietong is running: group {DEFAULT_GROUP_BUREAU} (广东省) on {} nodes", addrs.len());
    for (index, addr) in addrs.iter().enumerate() {
        println!("  node {}: http://{addr}/", index + 1);
    }
    println!("\nConsole: http://{}/   API: http://{}/api/v1/tasks", addrs[0], addrs[0]);
    println!("Data: {}   Demo feed: {}", args.data_dir.display(), if args.no_demo { "off" } else { "on" });
    println!("\nDemo logins (Authorization: Bearer <token>):");
    for user in users.users {
        println!("  {:<18} {:<11} {}  {}  {}", user.name, user.role, user.bureau, user.token, user.display_name);
    }
    println!("\nCtrl-C stops everything.");
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
                tracing::warn!(node = node.id, "did not stop in time; killing it");
                let _ = node.child.kill().await;
            }
        }
    }
}

#[allow(unsafe_code)]
fn terminate(pid: u32) {
    // SAFETY: kill(2) with a PID this process spawned and still owns (not yet reaped).
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
}
