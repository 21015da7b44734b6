//! Every format a build persists or replicates has fixtures in `tests/fixtures/<release>/`,
//! written once by the release that introduced the format and never rewritten; every later
//! build must read every one of them (the test below reads all that are there). A build that
//! changes a format adds a directory of its own (`scripts/make-fixtures`) and keeps reading the
//! old ones, converting them, or refusing them with both versions named, as `README.md` there says.
//!
//! A release's fixtures are two one-node groups of a federation, Guangdong (440000) and
//! Guangzhou (440100), after a scenario that leaves every kind of record: tasks through their
//! life on both sides of a handover, instructions and status reports, a real-name complaint
//! with its reporter, a lead with a USCC. For each group: its node's data directory as a crash
//! left it (Guangdong's: a store with a checkpoint and a purged WAL after it; Guangzhou's: a WAL
//! only), a backup with its digest, and what the tasks looked like;
//! a peer RPC body (AppendEntries with the group's real entries, and a vote); federation bodies.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use tests::federation::{FederationOptions, GroupSpec, TestFederation, GZ_COMMAND_TOKEN};
use tests::{act, admin, wait_until, ClusterOptions, TestCluster, COMMAND_TOKEN, TIANHE_OPERATOR_TOKEN};

/// Where every release's fixtures are.
fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The release whose formats this build writes: its fixtures are the ones `scripts/make-fixtures`
/// writes.
const THIS_RELEASE: &str = env!("CARGO_PKG_VERSION");
const GROUPS: [&str; 2] = ["440000", "440100"];

/// The command centre's token of each fixture group.
fn command_token(group: &str) -> &'static str {
    if group == "440000" {
        COMMAND_TOKEN
    } else {
        GZ_COMMAND_TOKEN
    }
}

/// What a fixture records of a task to compare with what a later build reads: its identity and
/// its timeline (which a later build may only have added to: the deadline watch goes on).
fn task_record(task: &Value) -> Value {
    let timeline: Vec<Value> = task["timeline"]
        .as_array()
        .expect("a timeline")
        .iter()
        .map(|entry| json!([entry["action"], entry["actor"], entry["at"]]))
        .collect();
    json!({"id": task["id"], "title": task["title"], "kind": task["kind"], "timeline": timeline})
}

async fn all_tasks(cluster: &TestCluster, token: &str) -> Vec<Value> {
    let page = cluster.get_json(1, token, "/api/v1/tasks?limit=500").await;
    page["tasks"].as_array().expect("tasks").clone()
}

/// Writes this release's fixtures (`scripts/make-fixtures`); never run by the suite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes tests/fixtures/<release>: run by scripts/make-fixtures once per format change"]
async fn write_the_fixtures_of_this_release() {
    let out = fixtures_root().join(THIS_RELEASE);
    assert!(!out.exists(), "{} exists: fixtures are written once per release and never rewritten", out.display());
    let mut fed =
        TestFederation::start(FederationOptions::new(vec![GroupSpec::new("440000", 1), GroupSpec::new("440100", 1)]))
            .await;
    let (province, guangzhou) = (fed.group("440000"), fed.group("440100"));
    // A dispatch handed over to Guangzhou, worked there, mirrored back and closed from above.
    let task = province.create_task(1, "跨组派发：天河区某商户价格违法", Some("440106")).await;
    let (_, there) = fed.wait_exactly_once("440000", COMMAND_TOKEN, task.id, "440100", GZ_COMMAND_TOKEN).await;
    for (action, body) in
        [("ack", json!({})), ("feedback", json!({"note": "已约谈"})), ("complete", json!({"outcome": "warned"}))]
    {
        let (status, answer) = act(guangzhou, 1, TIANHE_OPERATOR_TOKEN, there.id, action, body).await;
        assert_eq!(status, 200, "{action}: {answer}");
    }
    fed.wait_for_record("the completion mirrored", "440000", COMMAND_TOKEN, task.id, |t| t.state == "completed").await;
    let (status, answer) = act(province, 1, COMMAND_TOKEN, task.id, "close", json!({"note": "核查属实，结案"})).await;
    assert_eq!(status, 200, "{answer}");
    wait_until("the close in Guangzhou", Duration::from_secs(30), || async {
        let task = guangzhou.get_json(1, GZ_COMMAND_TOKEN, &format!("/api/v1/tasks/{}", there.id)).await;
        (task["state"] == "closed").then_some(()).ok_or_else(|| task["state"].to_string())
    })
    .await;
    // A real-name complaint about a Dongguan shop (the province's own), with its reporter.
    let complaint = json!({
        "channel": "tip_off", "real_name": true,
        "reporter": {"name": "李四", "phone": "13800138000", "id_number": "44010619900101123X"},
        "title": "实名举报：东莞某超市销售过期食品", "description": "举报人称该超市销售过期食品",
        "subject": {"name": "东莞市某某超市", "region_code": "441900", "address": "东城路1号"},
    });
    let response = province
        .http
        .post(province.url(1, "/api/v1/complaints"))
        .bearer_auth(COMMAND_TOKEN)
        .json(&complaint)
        .send()
        .await
        .expect("complaint");
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap_or_default());
    // Reference data adopted through the log (from 0.4.0): a calendar with one more year, and a
    // region table with a new county under 东莞市 that a task then names.
    let calendar = config::calendar::WorkCalendar::china();
    let next_year = calendar.covered_until().year() + 1;
    let calendar_text = format!(
        "{}\n[[year]]\nyear = {next_year}\nsource = \"provisional\"\nprovisional = true\nholidays = [\"{next_year}-01-01\"]\nworkdays = []\n",
        include_str!("../../config/calendar/cn.toml")
    );
    let mut regions: Vec<&str> = include_str!("../../cluster/ledger/data/regions.csv").lines().collect();
    // After the header, in code order.
    let at = 1 + regions[1..].iter().position(|line| *line > "441999").expect("codes after 441999");
    regions.insert(at, "441999,新设区,county,441900");
    let regions_text = regions.join("\n") + "\n";
    for (what, text) in [("calendar", calendar_text), ("regions", regions_text)] {
        let file = province.data_dir().join(format!("{what}.v1"));
        std::fs::write(&file, text).expect("a reference file");
        let (addr, file) = (province.addr(1).to_owned(), file.to_string_lossy().into_owned());
        tokio::task::spawn_blocking(move || admin(&addr, &["reference", what, &file, "--note", "fixture"]))
            .await
            .expect("adopted");
    }
    let mut new_county = tests::create_body("新设区的线索");
    new_county["subject"]["region_code"] = json!("441999");
    province.create_task_as(1, COMMAND_TOKEN, &new_county).await;
    // Enough writes for a checkpoint: the province's store then holds records and its WAL
    // begins after a purge, and the writes below are in the WAL only (Guangzhou's store stays
    // empty: its node reads everything from the WAL).
    for i in 0..70 {
        province.create_task(1, &format!("检查点之前的写入 {i}"), None).await;
    }
    wait_until("the province's checkpoint", Duration::from_secs(30), || async {
        let index = province.metric(1, "xietong_store_checkpoint_index").await.unwrap_or(0.0);
        (index > 0.0).then_some(()).ok_or_else(|| format!("checkpoint at {index}"))
    })
    .await;
    // A lead about a firm with a USCC, and a task dispatched at home and waiting.
    let mut lead = tests::create_body("线索：某企业虚假宣传");
    lead["subject"] =
        json!({"uscc": "91350100M000100Y43", "name": "福州某科技有限公司东莞分公司", "region_code": "441900"});
    province.create_task_as(1, COMMAND_TOKEN, &lead).await;
    province.create_task(1, "东莞某商户价格违法", Some("441900")).await;

    std::fs::create_dir_all(&out).expect("the fixture directory");
    let mut expected = serde_json::Map::new();
    for group in GROUPS {
        let cluster = fed.group(group);
        cluster.wait_for_convergence().await;
        let token = command_token(group);
        let tasks: Vec<Value> = all_tasks(cluster, token).await.iter().map(task_record).collect();
        let file = out.join(format!("{group}.backup"));
        let (addr, file_arg) = (cluster.addr(1).to_owned(), file.to_string_lossy().into_owned());
        let header =
            tokio::task::spawn_blocking(move || admin(&addr, &["backup", "--out", &file_arg])).await.expect("backup");
        let reference = cluster.get_json(1, tests::ADMIN_TOKEN, "/admin/v1/reference").await;
        let versions =
            json!({"regions": reference["regions"]["version"], "calendar": reference["calendar"]["version"]});
        expected.insert(
            group.to_owned(),
            json!({"backup_digest": header["digest"], "tasks": tasks, "reference": versions}),
        );
    }
    // Federation bodies as this release sends them: a status request Guangdong's reconciler
    // makes, and Guangzhou's answer.
    let forward = task.handover.as_ref().expect("handed over").forward_id.clone();
    let status_request =
        json!({"forwards": [serde_json::to_value(ledger::ForwardId::parse(&forward).expect("a forward id")).unwrap()]});
    let status_response: Value = fed
        .http
        .post(guangzhou.url(1, "/federation/v1/status"))
        .bearer_auth(TestFederation::peer_token("440000", "440100"))
        .json(&status_request)
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("status answer");
    assert_eq!(status_response["reports"].as_array().map(Vec::len), Some(1), "{status_response}");
    std::fs::create_dir_all(out.join("federation")).expect("dir");
    write_json(&out.join("federation/status-request.json"), &status_request);
    write_json(&out.join("federation/status-response.json"), &status_response);
    // The data directories as a crash leaves them.
    for group in GROUPS {
        let cluster = fed.group_mut(group);
        cluster.kill(1);
        let node_dir = cluster.data_dir().join("node1");
        for part in ["log", "ledger"] {
            tests::copy_dir(&node_dir.join(part), &out.join(format!("node-{group}")).join(part));
        }
    }
    // Peer RPC bodies with the province's real entries.
    let recovered = cluster::raft::wal::read_only(&out.join("node-440000/log")).expect("the WAL");
    let entries: Vec<cluster::raft::Entry> = recovered.entries.values().rev().take(4).rev().cloned().collect();
    let before = recovered.entries.range(..entries[0].log_id.index).next_back().map(|(_, entry)| entry.log_id);
    let vote = recovered.vote.expect("a vote");
    let append = openraft::raft::AppendEntriesRequest::<cluster::raft::TypeConfig> {
        vote,
        prev_log_id: before,
        entries,
        leader_commit: recovered.committed,
    };
    std::fs::create_dir_all(out.join("peer")).expect("dir");
    std::fs::write(out.join("peer/append.bin"), ledger::codec::encode(&append).expect("encodes")).expect("write");
    let vote_request = openraft::raft::VoteRequest::<u64> { vote, last_log_id: recovered.committed };
    std::fs::write(out.join("peer/vote.bin"), ledger::codec::encode(&vote_request).expect("encodes")).expect("write");
    std::fs::write(out.join("peer/format"), format!("{}\n", cluster::raft::network::PEER_FORMAT)).expect("write");
    write_json(&out.join("expected.json"), &Value::Object(expected));
}

fn write_json(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(value).expect("json") + "\n").expect("write");
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The fixtures of every release: (release, directory).
fn releases() -> Vec<(String, PathBuf)> {
    let mut releases: Vec<(String, PathBuf)> = std::fs::read_dir(fixtures_root())
        .expect("tests/fixtures")
        .map(|entry| entry.expect("an entry").path())
        .filter(|path| path.is_dir())
        .map(|path| (path.file_name().expect("a name").to_string_lossy().into_owned(), path))
        .collect();
    releases.sort();
    assert!(!releases.is_empty(), "no fixtures in {}", fixtures_root().display());
    releases
}

/// Each recorded task is there, with its recorded timeline at the start of its timeline.
/// The versions of the reference tables a fixture recorded (none before 0.4.0: version 0).
async fn holds_the_recorded_reference(cluster: &TestCluster, recorded: &Value, what: &str) {
    let reference = cluster.get_json(1, tests::ADMIN_TOKEN, "/admin/v1/reference").await;
    for table in ["regions", "calendar"] {
        let expected = recorded["reference"][table].as_u64().unwrap_or(0);
        assert_eq!(reference[table]["version"].as_u64(), Some(expected), "{what}: the {table} version");
    }
}

async fn holds_the_recorded_tasks(cluster: &TestCluster, token: &str, recorded: &Value, what: &str) {
    let now: Vec<Value> = all_tasks(cluster, token).await.iter().map(task_record).collect();
    for task in recorded.as_array().expect("recorded tasks") {
        let found = now.iter().find(|t| t["id"] == task["id"]).unwrap_or_else(|| panic!("{what}: task {task} is lost"));
        assert_eq!((&found["title"], &found["kind"]), (&task["title"], &task["kind"]), "{what}");
        let (then, later) = (task["timeline"].as_array().unwrap(), found["timeline"].as_array().unwrap());
        assert!(later.starts_with(then), "{what}: task {}'s history changed: {then:?} → {later:?}", task["id"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn this_build_reads_the_fixtures_of_every_release() {
    for (release, dir) in releases() {
        let expected = read_json(&dir.join("expected.json"));
        for group in GROUPS {
            let token = command_token(group);
            let recorded = &expected[group];
            // The data directory as the crash left it: the WAL replayed over the store.
            let options = ClusterOptions {
                size: 1,
                bureau: group.into(),
                seed_data_dir: Some(dir.join(format!("node-{group}"))),
                ..Default::default()
            };
            let cluster = TestCluster::start_with(options).await;
            holds_the_recorded_tasks(&cluster, token, &recorded["tasks"], &format!("{release} node {group}")).await;
            holds_the_recorded_reference(&cluster, recorded, &format!("{release} node {group}")).await;
            drop(cluster);
            // The backup: checked whole and restored into a new group.
            let digest = recorded["backup_digest"].as_str().expect("a digest").to_owned();
            let options = ClusterOptions {
                size: 1,
                bureau: group.into(),
                restore_from: Some((dir.join(format!("{group}.backup")), digest)),
                ..Default::default()
            };
            let cluster = TestCluster::start_with(options).await;
            holds_the_recorded_tasks(&cluster, token, &recorded["tasks"], &format!("{release} backup {group}")).await;
            holds_the_recorded_reference(&cluster, recorded, &format!("{release} backup {group}")).await;
        }
        // Peer RPC: decoded into this build's types, the same bytes again when encoded; and a
        // member of this build answers it under the release's peer format (a Raft answer, not a
        // refusal of the body), or refuses that format naming both. The bodies are decoded here
        // whatever the format: a later build keeps the types that read them.
        let append_bytes = std::fs::read(dir.join("peer/append.bin")).expect("append.bin");
        let append: openraft::raft::AppendEntriesRequest<cluster::raft::TypeConfig> =
            ledger::codec::decode(&append_bytes).unwrap_or_else(|e| panic!("{release} append.bin: {e}"));
        assert!(!append.entries.is_empty());
        assert_eq!(ledger::codec::encode(&append).expect("encodes"), append_bytes, "{release}: one encoding");
        let vote_bytes = std::fs::read(dir.join("peer/vote.bin")).expect("vote.bin");
        let vote: openraft::raft::VoteRequest<u64> =
            ledger::codec::decode(&vote_bytes).unwrap_or_else(|e| panic!("{release} vote.bin: {e}"));
        assert_eq!(ledger::codec::encode(&vote).expect("encodes"), vote_bytes, "{release}: one encoding");
        let cluster = TestCluster::start_with(ClusterOptions { size: 1, ..Default::default() }).await;
        let secret = std::fs::read_to_string(cluster.data_dir().join("group.secret")).expect("secret");
        let format: u32 = std::fs::read_to_string(dir.join("peer/format"))
            .expect("peer/format")
            .trim()
            .parse()
            .expect("a peer format number");
        for (path, body) in [("/raft/append", append_bytes), ("/raft/vote", vote_bytes)] {
            let response = cluster
                .http
                .post(cluster.url(1, path))
                .bearer_auth(secret.trim())
                .header(cluster::raft::network::TARGET_NODE_HEADER, "1")
                .header(cluster::raft::network::PEER_FORMAT_HEADER, format.to_string())
                .body(body)
                .send()
                .await
                .expect("peer RPC");
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            if format == cluster::raft::network::PEER_FORMAT {
                assert!(matches!(status, 200 | 409), "{release} {path}: {status} {text}");
            } else {
                assert_eq!(status, 400, "{release} {path}: {text}");
                assert!(text.contains(&format!("peer RPC of format {format};")), "{release} {path}: {text}");
            }
        }
        // Federation bodies parse as this build's messages.
        let request = read_json(&dir.join("federation/status-request.json"));
        serde_json::from_value::<node::federation::peer_api::StatusRequest>(request)
            .unwrap_or_else(|e| panic!("{release} status request: {e}"));
        let response = read_json(&dir.join("federation/status-response.json"));
        serde_json::from_value::<node::federation::peer_api::StatusResponse>(response)
            .unwrap_or_else(|e| panic!("{release} status response: {e}"));
    }
}
