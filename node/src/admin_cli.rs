//! `xietong admin`: membership operations and backups against a running group, through a node's
//! admin API (`node::routes::{admin, backup}`); any node of the group will do, a follower forwards
//! to the leader. `restore` works offline: it seeds a new node's data directory from a backup.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use cluster::backup;
use serde_json::{json, Value};

use crate::kept_files::{ContentStore, Shelf};

/// One call to a node; the wait for a learner is many calls.
const ADMIN_CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How often `add-learner` looks at the learner's progress, and how often it reports it.
const LEARNER_POLL_INTERVAL: Duration = Duration::from_millis(500);
const LEARNER_REPORT_INTERVAL: Duration = Duration::from_secs(10);

#[derive(clap::Args, Debug, Clone)]
pub struct AdminArgs {
    /// host:port of any node of the group.
    #[arg(long, default_value = "127.0.0.1:8440")]
    pub node: String,
    /// A platform operator's token (`[[admins]]` in the users file); not needed by `restore`.
    #[arg(long, env = "XIETONG_ADMIN_TOKEN")]
    pub token: Option<String>,
    /// The authority that signed the nodes' certificates (their `[tls] ca_file`): the nodes
    /// serve TLS, so call them over https.
    #[arg(long, env = "XIETONG_ADMIN_CA")]
    pub ca: Option<PathBuf>,
    #[command(subcommand)]
    pub operation: AdminOperation,
}

/// How the CLI calls nodes: plain, or TLS trusting the nodes' authority.
struct AdminClient {
    http: reqwest::Client,
    scheme: &'static str,
}

impl AdminClient {
    fn new(ca: Option<&Path>) -> anyhow::Result<AdminClient> {
        let builder = reqwest::Client::builder().timeout(ADMIN_CALL_TIMEOUT);
        match ca {
            None => Ok(AdminClient { http: builder.build()?, scheme: "http" }),
            Some(path) => {
                let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                let authority = reqwest::Certificate::from_pem(&pem)
                    .with_context(|| format!("{} holds no PEM certificate", path.display()))?;
                Ok(AdminClient { http: builder.add_root_certificate(authority).build()?, scheme: "https" })
            }
        }
    }

    /// The URL of `path` on the node at `addr` (host:port).
    fn url(&self, addr: &str, path: &str) -> String {
        format!("{}://{addr}{path}", self.scheme)
    }
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum ReferenceOperation {
    /// The versions of both tables.
    Show,
    /// Adopt a calendar file (the format of config/calendar/cn.toml: every year kept, the days
    /// up to today unchanged).
    Calendar {
        file: PathBuf,
        /// Kept with the version: why, from which notice.
        #[arg(long, default_value = "")]
        note: String,
        /// Check the file against the committed version; propose nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Adopt a region table (the CSV of regions.csv, every active region): codes left out are
    /// retired, never removed; a code's parent and level never change.
    Regions {
        file: PathBuf,
        #[arg(long, default_value = "")]
        note: String,
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum AdminOperation {
    /// Show the group's voters, learners, their addresses and the leader.
    Members,
    /// Add a node (already started with its config) as a learner, then follow it until its log
    /// matches the leader's as of the moment it was added (progress on stderr).
    AddLearner {
        #[arg(long)]
        id: u64,
        #[arg(long)]
        addr: String,
        /// Return once the learner is in the membership; it catches up in the background.
        #[arg(long)]
        no_wait: bool,
        /// Give up following it after this long (it still goes on catching up).
        #[arg(long, default_value_t = 120)]
        wait_minutes: u64,
    },
    /// Make a learner a voter.
    Promote {
        #[arg(long)]
        id: u64,
    },
    /// Remove a node (voter or learner) from the group.
    Remove {
        #[arg(long)]
        id: u64,
    },
    /// The group's reference data: the region table and the working-day calendar it decides
    /// with, and adopting new versions of them through its log.
    Reference {
        #[command(subcommand)]
        operation: ReferenceOperation,
    },
    /// Write the group's whole ledger, as of now, to a file while the group serves.
    Backup {
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a backup file of a synthetic ledger of realistic shape, for benchmarks at
    /// provincial scale (offline; restore it into each node of a new group, or `xietong up --seed`).
    Synthesize {
        /// The group's bureau.
        #[arg(long, default_value = "440000")]
        group: String,
        #[arg(long)]
        tasks: u64,
        /// Share of the last 30 days' tasks taken through to the close (older ones are all
        /// closed); the rest stop at an open stage.
        #[arg(long, default_value_t = 70)]
        closed_percent: u64,
        #[arg(long)]
        out: PathBuf,
    },
    /// Seed a new node's data directory from a backup (run once per node of the new group,
    /// before starting it). Refuses a node whose data directory already holds data, and a
    /// backup whose digest is not the one `backup` printed.
    Restore {
        #[arg(long)]
        from: PathBuf,
        /// The new node's configuration file.
        #[arg(long)]
        config: PathBuf,
        /// The digest `backup` printed when it took the backup (kept apart from the file): a
        /// file rewritten where backups are stored has another, whatever checksums it carries.
        #[arg(long)]
        expect_digest: String,
    },
}

pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    if let AdminOperation::Restore { from, config, expect_digest } = &args.operation {
        return restore(from, config, expect_digest);
    }
    if let AdminOperation::Synthesize { group, tasks, closed_percent, out } = &args.operation {
        let group = ledger::BureauCode::parse_compiled(group).with_context(|| format!("{group} is no known bureau"))?;
        anyhow::ensure!(*closed_percent <= 100, "--closed-percent is at most 100");
        let header = crate::synthesize::synthesize(group, *tasks, *closed_percent, out)?;
        println!("{}", serde_json::to_string_pretty(&header)?);
        return Ok(());
    }
    let token = args.token.as_deref().context("--token (or XIETONG_ADMIN_TOKEN) is required")?;
    let client = AdminClient::new(args.ca.as_deref())?;
    let http = &client.http;
    if let AdminOperation::Backup { out } = &args.operation {
        return backup(&client, &args.node, token, out).await;
    }
    let base = client.url(&args.node, crate::routes::admin::MEMBERS_PATH);
    let file_request = |path: &str, file: &Path, media_type: &str, note: &str, dry_run: bool| {
        let body = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let url = client.url(&args.node, path);
        let query = [("note", note.to_owned()), ("dry_run", dry_run.to_string())];
        anyhow::Ok(http.post(url).query(&query).header(reqwest::header::CONTENT_TYPE, media_type).body(body))
    };
    let request = match &args.operation {
        AdminOperation::Reference { operation: ReferenceOperation::Show } => {
            http.get(client.url(&args.node, crate::reference::REFERENCE_PATH))
        }
        AdminOperation::Reference { operation: ReferenceOperation::Calendar { file, note, dry_run } } => {
            file_request(crate::reference::CALENDAR_PATH, file, "application/toml", note, *dry_run)?
        }
        AdminOperation::Reference { operation: ReferenceOperation::Regions { file, note, dry_run } } => {
            file_request(crate::reference::REGIONS_PATH, file, "text/csv", note, *dry_run)?
        }
        AdminOperation::Members => http.get(&base),
        AdminOperation::AddLearner { id, addr, .. } => {
            http.post(format!("{base}/learners")).json(&json!({"id": id, "addr": addr}))
        }
        AdminOperation::Promote { id } => http.post(format!("{base}/promote")).json(&json!({"id": id})),
        AdminOperation::Remove { id } => http.post(format!("{base}/remove")).json(&json!({"id": id})),
        AdminOperation::Backup { .. } | AdminOperation::Restore { .. } | AdminOperation::Synthesize { .. } => {
            unreachable!("handled above")
        }
    };
    let response = request.bearer_auth(token).send().await.with_context(|| format!("calling {}", args.node))?;
    let status = response.status();
    let mut body: Value = response.json().await.context("reading the answer")?;
    if status.is_success() {
        if let AdminOperation::AddLearner { id, no_wait: false, wait_minutes, .. } = &args.operation {
            let wait = Duration::from_secs(wait_minutes.saturating_mul(60));
            body = follow_learner(&client, &args.node, token, *id, wait).await?;
        }
    }
    println!("{}", serde_json::to_string_pretty(&body)?);
    anyhow::ensure!(status.is_success(), "the node refused: {status}");
    Ok(())
}

/// Follows a learner until the leader sees its log match the leader's last index as of the
/// first look (what it must copy, by log or snapshot, before it can be promoted without the
/// group waiting on it). Reports progress on stderr; answers the membership at the end.
async fn follow_learner(
    client: &AdminClient,
    node: &str,
    token: &str,
    id: u64,
    wait: Duration,
) -> anyhow::Result<Value> {
    let started = std::time::Instant::now();
    let mut target = None;
    let mut last_report = started;
    loop {
        // A failed look (a leader change, a node restarting) is tried again until the wait ends.
        let members = match members_from_leader(client, node, token).await {
            Ok(members) => members,
            Err(error) if started.elapsed() < wait => {
                eprintln!("learner {id}: cannot see its progress now ({error:#}); trying again");
                tokio::time::sleep(LEARNER_POLL_INTERVAL * 4).await;
                continue;
            }
            Err(error) => return Err(error),
        };
        if let Some(last_log_index) = members["last_log_index"].as_u64() {
            let target = *target.get_or_insert(last_log_index);
            let matched = members["matched"][id.to_string()].as_u64();
            if matched.is_some_and(|matched| matched >= target) {
                eprintln!("learner {id} caught up to index {target} in {:.1} s", started.elapsed().as_secs_f64());
                return Ok(members);
            }
            if last_report.elapsed() >= LEARNER_REPORT_INTERVAL {
                last_report = std::time::Instant::now();
                let at = matched.map_or("nothing yet (a snapshot is streaming)".to_owned(), |m| format!("index {m}"));
                eprintln!("learner {id}: {at} of {target}, {:.0} s", started.elapsed().as_secs_f64());
            }
        }
        anyhow::ensure!(
            started.elapsed() < wait,
            "learner {id} has not caught up within {} minutes; it goes on in the background \
             (follow it with `xietong admin members` on the leader)",
            wait.as_secs() / 60
        );
        tokio::time::sleep(LEARNER_POLL_INTERVAL).await;
    }
}

/// The membership as the leader sees it (only the leader knows how far each member is): asks
/// `node`, then the leader it names.
async fn members_from_leader(client: &AdminClient, node: &str, token: &str) -> anyhow::Result<Value> {
    let get = |addr: String| async move {
        let url = client.url(&addr, crate::routes::admin::MEMBERS_PATH);
        let response =
            client.http.get(url).bearer_auth(token).send().await.with_context(|| format!("calling {addr}"))?;
        anyhow::ensure!(response.status().is_success(), "{addr} refused: {}", response.status());
        response.json::<Value>().await.context("reading the members")
    };
    let members = get(node.to_owned()).await?;
    if members["last_log_index"].is_u64() {
        return Ok(members);
    }
    let leader = members["leader_id"].as_u64().map(|id| id.to_string());
    match leader.and_then(|id| members["nodes"][id].as_str().map(str::to_owned)) {
        Some(addr) => get(addr).await,
        None => Ok(members),
    }
}

/// Fetches a backup, checks it whole, and writes it durably (temp file, fsync, rename) so a
/// file at `out` is always a complete backup. Prints its header.
async fn backup(client: &AdminClient, node: &str, token: &str, out: &Path) -> anyhow::Result<()> {
    let url = client.url(node, crate::routes::backup::BACKUP_PATH);
    let mut response =
        client.http.get(url).bearer_auth(token).send().await.with_context(|| format!("calling {node}"))?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        anyhow::bail!("the node refused: {status}: {text}");
    }
    let tmp = out.with_extension("partial");
    // The whole ledger, reporters included: readable by this user only.
    let mut file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)
    }
    .with_context(|| format!("creating {}", tmp.display()))?;
    // Streamed to the file as it arrives: a province's backup never sits in memory.
    while let Some(chunk) = response.chunk().await.context("reading the backup")? {
        file.write_all(&chunk)?;
    }
    file.sync_all()?;
    drop(file);
    // Checked whole before it takes the backup's name.
    let backup::VerifiedBackup { header, core, attachments, .. } = {
        let mut reader = std::io::BufReader::new(std::fs::File::open(&tmp)?);
        backup::verify(&mut reader).context("the node sent a damaged backup")?
    };
    let ledger = backup::core_ledger(&core)?;
    std::fs::rename(&tmp, out).with_context(|| format!("renaming to {}", out.display()))?;
    if let Some(dir) = out.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    // The entity directory files of the committed versions live outside the ledger: kept beside
    // the backup, so a restored group can draw and verify with them.
    let versions: Vec<String> = ledger.programme().entity_directories().iter().map(|v| v.sha256.clone()).collect();
    keep_beside(client, node, token, out, Shelf::Directories, &versions).await?;
    // So are the on-site records' photos, signatures and documents.
    let attachments: Vec<String> = attachments.into_iter().collect();
    keep_beside(client, node, token, out, Shelf::Attachments, &attachments).await?;
    let mut report = serde_json::to_value(&header)?;
    report["directory_files"] = json!(versions.len());
    report["attachment_files"] = json!(attachments.len());
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// Fetches the kept files `names` of `shelf` the backup at `out` does not keep yet, each checked
/// against its hash, into the folder beside it.
async fn keep_beside(
    client: &AdminClient,
    node: &str,
    token: &str,
    out: &Path,
    shelf: Shelf,
    names: &[String],
) -> anyhow::Result<()> {
    let store = ContentStore::open_at(&kept_files_dir(out, shelf), shelf)?;
    let path = match shelf {
        Shelf::Directories => crate::routes::backup::DIRECTORY_PATH,
        Shelf::Attachments => crate::routes::backup::ATTACHMENT_PATH,
    };
    for sha256 in names {
        if store.contains(sha256) {
            continue;
        }
        let url = client.url(node, &path.replace("{sha256}", sha256));
        let mut response =
            client.http.get(url).bearer_auth(token).send().await.with_context(|| format!("calling {node}"))?;
        let status = response.status();
        anyhow::ensure!(status.is_success(), "the node refused {} {sha256}: {status}", shelf.what());
        // Into a file as it arrives: a province's directory is gigabytes.
        let mut staging = store.staging()?;
        while let Some(chunk) = response.chunk().await.with_context(|| format!("reading {} {sha256}", shelf.what()))? {
            staging.write(&chunk)?;
        }
        staging.keep(Some(sha256)).with_context(|| format!("keeping {} {sha256}", shelf.what()))?;
    }
    Ok(())
}

/// Where a backup's kept files of `shelf` are: `<backup>.directories/<sha256>.csv`,
/// `<backup>.attachments/<sha256>.bin`.
fn kept_files_dir(backup: &Path, shelf: Shelf) -> PathBuf {
    let mut name = backup.as_os_str().to_owned();
    name.push(".");
    name.push(shelf.folder());
    PathBuf::from(name)
}

/// Copies the kept files `names` of `shelf` from beside the backup `from` into the node's data
/// directory, each checked against its hash; answers how many were there (a missing one is
/// warned about: the group fetches nothing it does not have).
fn restore_beside(from: &Path, data_dir: &Path, shelf: Shelf, names: &[String]) -> anyhow::Result<usize> {
    let kept_dir = kept_files_dir(from, shelf);
    let kept = kept_dir.is_dir().then(|| ContentStore::open_at(&kept_dir, shelf)).transpose()?;
    let store = ContentStore::open(data_dir, shelf)?;
    let mut restored = 0;
    for sha256 in names {
        let file = match &kept {
            Some(kept) => kept.open_file(sha256)?,
            None => None,
        };
        match file {
            Some((file, _)) => {
                // Copied through, hashed on the way: a province's directory is gigabytes.
                let mut staging = store.staging()?;
                std::io::copy(&mut std::io::BufReader::new(file), &mut staging)?;
                staging.keep(Some(sha256)).with_context(|| format!("restoring {} {sha256}", shelf.what()))?;
                restored += 1;
            }
            None => eprintln!("warning: the {} {sha256} is not kept with the backup", shelf.what()),
        }
    }
    Ok(restored)
}

/// `restore_beside` into the object store the new group keeps its attachments in.
fn restore_to_object_store(
    from: &Path,
    store: &config::AttachmentStoreConfig,
    names: &[String],
) -> anyhow::Result<usize> {
    let kept_dir = kept_files_dir(from, Shelf::Attachments);
    let kept = kept_dir.is_dir().then(|| ContentStore::open_at(&kept_dir, Shelf::Attachments)).transpose()?;
    let shelf = crate::kept_files::ObjectShelf::open(store)?;
    // Restore runs in and out of an async context (`xietong up` seeds nodes from one): the
    // uploads get a runtime of their own on a thread of their own. One file in memory at a time.
    std::thread::scope(|scope| {
        scope
            .spawn(|| -> anyhow::Result<usize> {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                let mut restored = 0;
                for sha256 in names {
                    match kept.as_ref().map(|kept| kept.read(sha256)).transpose()?.flatten() {
                        // A file beside a backup comes from outside: checked before it is
                        // stored as evidence.
                        Some(file) if draw::directory::sha256_hex(&file) == *sha256 => {
                            let stored = runtime.block_on(shelf.put(sha256, file.into()));
                            stored.with_context(|| format!("storing the attachment {sha256}"))?;
                            restored += 1;
                        }
                        Some(_) => {
                            anyhow::bail!("the attachment {sha256} kept with the backup does not have its SHA-256")
                        }
                        None => eprintln!("warning: the attachment {sha256} is not kept with the backup"),
                    }
                }
                Ok(restored)
            })
            .join()
            .map_err(|_| anyhow::anyhow!("the attachment upload failed"))?
    })
}

/// Seeds the data directory of the node configured in `config_path` with the backup: a snapshot
/// at the backup's index whose membership is the new group's members from the config.
pub(crate) fn restore(from: &Path, config_path: &Path, expect_digest: &str) -> anyhow::Result<()> {
    let (config, _) = config::NodeConfig::load(config_path)?;
    // Never into the directory of a node that runs.
    let _data_dir_lock = crate::data_dir_lock::DataDirLock::acquire(&config.data_dir)?;
    let open = || -> anyhow::Result<std::io::BufReader<std::fs::File>> {
        let file = std::fs::File::open(from).with_context(|| format!("reading {}", from.display()))?;
        Ok(std::io::BufReader::new(file))
    };
    // Checked whole first, so that nothing is written from a damaged file.
    let backup::VerifiedBackup { header, core, attachments, .. } =
        backup::verify(&mut open()?).with_context(|| format!("{} is not a usable backup", from.display()))?;
    let ledger = backup::core_ledger(&core)?;
    // `verify` checked that the ledger has the header's digest; the header must have the one
    // recorded when the backup was taken.
    anyhow::ensure!(
        header.digest == expect_digest.trim().to_ascii_lowercase(),
        "{} has digest {}, not the expected {expect_digest}: it is not the backup that was taken",
        from.display(),
        header.digest
    );
    anyhow::ensure!(
        header.group == config.group.bureau,
        "the backup is of group {}, the node belongs to group {}",
        header.group,
        config.group.bureau
    );
    for part in ["log", crate::runtime::LEDGER_DIR] {
        let dir = config.data_dir.join(part);
        let holds_data = std::fs::read_dir(&dir).map(|mut entries| entries.next().is_some()).unwrap_or(false);
        anyhow::ensure!(!holds_data, "{} already holds data; restore builds a new node only", dir.display());
    }
    let members: BTreeMap<u64, openraft::BasicNode> =
        config.group.members.iter().map(|member| (member.id, openraft::BasicNode::new(&member.addr))).collect();
    let voters: BTreeSet<u64> = members.keys().copied().collect();
    let membership = openraft::Membership::new(vec![voters], members);
    // Term 0: the new group's first election starts term 1, so its entries follow the snapshot.
    let last_log_id = openraft::LogId::new(openraft::CommittedLeaderId::new(0, 0), header.applied_index);
    let mut input = open()?;
    backup::read_header(&mut input)?;
    cluster::raft::state_machine::seed_store(
        &config.data_dir.join(crate::runtime::LEDGER_DIR),
        &mut input,
        last_log_id,
        membership,
        &header.digest,
    )
    .context("loading the backup into the node's store")?;
    // The entity directory files kept with the backup, each checked against its hash.
    let versions: Vec<String> = ledger.programme().entity_directories().iter().map(|v| v.sha256.clone()).collect();
    let restored_files = restore_beside(from, &config.data_dir, Shelf::Directories, &versions)?;
    let attachments: Vec<String> = attachments.into_iter().collect();
    let restored_attachments = match &config.attachment_store {
        Some(store) => restore_to_object_store(from, store, &attachments)?,
        None => restore_beside(from, &config.data_dir, Shelf::Attachments, &attachments)?,
    };
    let report = json!({"restored": header, "node": config.id, "directory_files": restored_files,
                        "attachment_files": restored_attachments});
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
