//! A randomized fault run in the spirit of Jepsen: concurrent clients create, dispatch and
//! acknowledge tasks through random nodes while a nemesis kills (SIGKILL), restarts and pauses
//! (SIGSTOP) nodes at random. Afterwards a checker verifies that every acknowledged write is
//! present exactly once, nothing unacknowledged appears twice, every task's timeline moved only
//! along legal transitions, and the replicas agree.
//!
//! The seed is printed; `XIETONG_NEMESIS_SEED=<seed>` replays a run and `XIETONG_NEMESIS_SECS`
//! sets its length (the suite runs a short one; docs/reliability.md has the long run).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tests::{create_body, TestCluster, COMMAND_TOKEN, TIANHE_OPERATOR_TOKEN};

const CLIENTS: usize = 4;
/// The seed of the suite's short run.
const SUITE_SEED: u64 = 6_692_773_091_121_278_014;
/// A write is retried (same idempotency key) for this long before the client gives up on it.
const WRITE_PATIENCE: Duration = Duration::from_secs(20);

/// What a client learned of its writes: key → the task id it was answered with.
type Acknowledged = Arc<Mutex<BTreeMap<String, u64>>>;

/// Sends one write until a node answers it with success, or gives up after `WRITE_PATIENCE`
/// (the outcome is then unknown). Every attempt carries the same idempotency key.
async fn write(
    http: &reqwest::Client,
    addrs: &[String],
    token: &str,
    path: &str,
    key: &str,
    body: &Value,
) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + WRITE_PATIENCE;
    let mut attempt = 0usize;
    while tokio::time::Instant::now() < deadline {
        let addr = &addrs[(fastrand::usize(..addrs.len()) + attempt) % addrs.len()];
        attempt += 1;
        let response = http
            .post(format!("http://{addr}{path}"))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .timeout(Duration::from_secs(3))
            .json(body)
            .send()
            .await;
        if let Ok(response) = response {
            if response.status().is_success() {
                return response.json().await.ok();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

async fn client(number: usize, http: reqwest::Client, addrs: Vec<String>, stop: Arc<AtomicBool>, acked: Acknowledged) {
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let key = format!("nemesis-{number}-{n}");
        let Some(task) = write(&http, &addrs, COMMAND_TOKEN, "/api/v1/tasks", &key, &create_body(&key)).await else {
            continue;
        };
        let id = task["id"].as_u64().expect("id");
        acked.lock().expect("lock").insert(key.clone(), id);
        // Half the tasks go on: dispatched, then acknowledged.
        if n % 2 == 0 {
            let dispatch = json!({"assignee_bureau": "440106"});
            let path = format!("/api/v1/tasks/{id}/dispatch");
            if write(&http, &addrs, COMMAND_TOKEN, &path, &format!("{key}-dispatch"), &dispatch).await.is_some() {
                let path = format!("/api/v1/tasks/{id}/ack");
                write(&http, &addrs, TIANHE_OPERATOR_TOKEN, &path, &format!("{key}-ack"), &json!({})).await;
            }
        }
    }
}

/// The legal successor actions of each timeline action in this workload.
fn legal_after(previous: &str, next: &str) -> bool {
    matches!(
        (previous, next),
        ("create", "dispatch") | ("dispatch", "ack") | ("dispatch", "ack_missed") | ("ack_missed", "ack")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_random_kills_restarts_and_pauses() {
    // The suite's short run uses a fixed seed so CI is repeatable; a long run draws its own
    // (docs/reliability.md lists the open findings of long runs).
    let seconds: Option<u64> = std::env::var("XIETONG_NEMESIS_SECS").ok().and_then(|s| s.parse().ok());
    let seed: u64 = std::env::var("XIETONG_NEMESIS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        if seconds.is_some() {
            fastrand::u64(..)
        } else {
            SUITE_SEED
        }
    });
    let seconds = seconds.unwrap_or(20);
    println!("nemesis seed {seed} for {seconds} s (replay with XIETONG_NEMESIS_SEED={seed})");
    let mut nemesis = fastrand::Rng::with_seed(seed);

    let mut cluster = TestCluster::start().await;
    let addrs: Vec<String> = (1..=3).map(|id| cluster.addr(id).to_owned()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Acknowledged = Arc::default();
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("client");
    let clients: Vec<_> = (0..CLIENTS)
        .map(|number| tokio::spawn(client(number, http.clone(), addrs.clone(), stop.clone(), acked.clone())))
        .collect();

    let mut down: Vec<u64> = Vec::new();
    let mut faults = BTreeMap::<&str, u32>::new();
    let end = tokio::time::Instant::now() + Duration::from_secs(seconds);
    while tokio::time::Instant::now() < end {
        // The faults are the scenario: their timing is random, not a wait for a condition.
        tokio::time::sleep(Duration::from_millis(nemesis.u64(300..1500))).await;
        match nemesis.u8(..3) {
            0 if down.len() < 2 => {
                let running: Vec<u64> = cluster.running().collect();
                let victim = running[nemesis.usize(..running.len())];
                cluster.kill(victim);
                down.push(victim);
                *faults.entry("kill").or_default() += 1;
            }
            1 if !down.is_empty() => {
                let back = down.remove(nemesis.usize(..down.len()));
                cluster.restart(back);
                *faults.entry("restart").or_default() += 1;
            }
            _ => {
                let running: Vec<u64> = cluster.running().collect();
                let victim = running[nemesis.usize(..running.len())];
                cluster.pause(victim);
                tokio::time::sleep(Duration::from_millis(nemesis.u64(200..2000))).await;
                cluster.resume(victim);
                *faults.entry("pause").or_default() += 1;
            }
        }
    }
    for id in down {
        cluster.restart(id);
    }
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.expect("client");
    }
    println!("nemesis faults: {faults:?}");

    // Checker.
    cluster.wait_for_convergence().await;
    let tasks = cluster.all_tasks(1).await;
    let acked = acked.lock().expect("lock").clone();
    assert!(acked.len() >= 10, "the clients got writes through: {}", acked.len());
    let mut by_title: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for task in &tasks {
        by_title.entry(task.title.as_str()).or_default().push(task.id);
    }
    for (key, id) in &acked {
        assert_eq!(by_title.get(key.as_str()), Some(&vec![*id]), "acknowledged write {key} present exactly once");
    }
    for (title, ids) in &by_title {
        assert_eq!(ids.len(), 1, "write {title} (acknowledged or not) is present at most once");
    }
    for task in &tasks {
        for pair in task.timeline.windows(2) {
            assert!(
                legal_after(&pair[0].action, &pair[1].action),
                "task {}: {} then {}",
                task.id,
                pair[0].action,
                pair[1].action
            );
        }
    }
    // Every replica holds the same ledger (wait_for_convergence compared their digests) and the
    // same tasks.
    for node in 2..=3 {
        assert_eq!(cluster.all_tasks(node).await.len(), tasks.len());
    }
    println!("checked {} acknowledged writes, {} tasks", acked.len(), tasks.len());
}
