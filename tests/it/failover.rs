//! Durability across a leader crash: concurrent writes spread over all nodes, the leader is
//! killed with SIGKILL in the middle, and every acknowledged write must be present exactly
//! once on all three nodes after the killed node restarts and catches up.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use node::api::TaskJson;
use tests::{create_body, wait_until, TestCluster, COMMAND_TOKEN};
use tokio::sync::Semaphore;

const WRITES: usize = 500;
const CONCURRENCY: usize = 32;
/// A client retries a failed write on the next node with the same key, this many times.
const ATTEMPTS_MAX: usize = 8;

/// One create of write `index`, retried over the nodes from `first` with one key. Returns the
/// task id once any node answered 2xx.
async fn create_with_retries(
    http: reqwest::Client,
    addrs: Arc<Vec<String>>,
    first: usize,
    index: usize,
) -> Option<u64> {
    let title = format!("故障切换测试-{index:04}");
    let key = format!("failover-{index}");
    let task = tests::create_with_retries(&http, &addrs, first, &key, &create_body(&title), ATTEMPTS_MAX).await?;
    assert_eq!(task.title, title);
    Some(task.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_leader_kill() {
    let mut cluster = TestCluster::start().await;
    let leader = cluster.wait_for_leader().await;
    let addrs = Arc::new((1..=3).map(|id| cluster.addr(id).to_owned()).collect::<Vec<_>>());
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");

    let slots = Arc::new(Semaphore::new(CONCURRENCY));
    let (acked_tx, mut acked_rx) = tokio::sync::mpsc::channel::<(usize, u64)>(WRITES);
    let mut writers = tokio::task::JoinSet::new();
    for index in 0..WRITES {
        let permit = slots.clone().acquire_owned().await.expect("semaphore");
        let (http, addrs, acked_tx) = (http.clone(), addrs.clone(), acked_tx.clone());
        writers.spawn(async move {
            if let Some(id) = create_with_retries(http, addrs, index % 3, index).await {
                acked_tx.send((index, id)).await.expect("collector alive");
            }
            drop(permit);
        });
        // Kill the leader once a good share of the writes is under way.
        if index == WRITES * 2 / 5 {
            cluster.kill(leader);
        }
    }
    drop(acked_tx);
    while writers.join_next().await.is_some() {}
    let mut acked = BTreeMap::new();
    while let Some((index, id)) = acked_rx.recv().await {
        acked.insert(index, id);
    }
    assert!(acked.len() >= WRITES * 9 / 10, "most writes are acknowledged despite the crash: {}", acked.len());

    cluster.restart(leader);
    let converged = cluster.wait_for_convergence().await;
    for id in 1..=3 {
        let tasks = cluster.all_tasks(id).await;
        let mut by_title: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for task in &tasks {
            by_title.entry(task.title.as_str()).or_default().push(task.id);
        }
        for (index, task_id) in &acked {
            let title = format!("故障切换测试-{index:04}");
            assert_eq!(by_title.get(title.as_str()), Some(&vec![*task_id]), "node {id}: write {index} present once");
        }
        assert!(by_title.values().all(|ids| ids.len() == 1), "node {id}: no write was applied twice");
        assert_eq!(Some(tasks.len() as u64), converged.task_count);
    }
    // The restarted node recovered from its own disk (its snapshot plus its log) and caught up.
    // (openraft 0.9 never purges entries a replication stream still has in flight, so the
    // leader keeps what the killed node missed and it catches up from the log, not a snapshot.)
    // The group may commit entries of its own meanwhile (the leader turns the risk files on once
    // every member answers again): the restarted node agrees with another member, both read
    // until they hold the same state.
    let other = (1..=3).find(|id| *id != leader).expect("another member");
    wait_until("the restarted node holds the group's state", Duration::from_secs(30), || async {
        let (view, other) = (cluster.view(leader).await?, cluster.view(other).await?);
        if view.digest == other.digest && view.digest.is_some() {
            Ok(())
        } else {
            Err(format!("{:?} / {:?}: {}", view.digest, other.digest, cluster.log_tail(leader)))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_retry_after_failover_writes_one_task() {
    let mut cluster = TestCluster::start().await;
    let leader = cluster.wait_for_leader().await;
    let title = "幂等重试测试";
    let http = cluster.http.clone();
    let urls: Vec<String> = (1..=3).map(|id| cluster.url(id, "/api/v1/tasks")).collect();
    let send = |id: u64| {
        http.post(&urls[(id - 1) as usize])
            .bearer_auth(COMMAND_TOKEN)
            .header("Idempotency-Key", "retry-across-failover-1")
            .json(&create_body(title))
            .send()
    };
    let first = send(leader).await.expect("first attempt");
    assert_eq!(first.status(), 201);
    let first: TaskJson = first.json().await.expect("task");

    cluster.kill(leader);
    let other = (1..=3).find(|id| *id != leader).expect("another node");
    let retry = send(other).await.expect("retry on another node");
    assert_eq!(retry.status(), 201);
    assert_eq!(retry.headers().get("idempotent-replayed").map(|v| v.to_str().ok()), Some(Some("true")));
    let retried: TaskJson = retry.json().await.expect("task");
    assert_eq!(retried.id, first.id);
    assert_eq!(retried.version, first.version);

    // The same key with a different body is refused rather than answered with the wrong task.
    let reused = cluster
        .http
        .post(cluster.url(other, "/api/v1/tasks"))
        .bearer_auth(COMMAND_TOKEN)
        .header("Idempotency-Key", "retry-across-failover-1")
        .json(&create_body("另一个请求"))
        .send()
        .await
        .expect("reused key");
    assert_eq!(reused.status(), 409);
    let body: serde_json::Value = reused.json().await.expect("error body");
    assert_eq!(body["error"]["code"], "idempotency_key_reused");

    let tasks = cluster.all_tasks(other).await;
    assert_eq!(tasks.iter().filter(|t| t.title == title).count(), 1);
}

/// The same keyed request sent at once to all three nodes: whichever copies reach the leader
/// first, the ledger applies one and answers the others with its stored result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_on_different_nodes_write_one_task() {
    let cluster = TestCluster::start().await;
    for round in 0..20 {
        let title = format!("并发重复-{round}");
        let key = format!("concurrent-duplicate-{round}");
        let mut sends = tokio::task::JoinSet::new();
        for id in 1..=3 {
            let request = cluster
                .http
                .post(cluster.url(id, "/api/v1/tasks"))
                .bearer_auth(COMMAND_TOKEN)
                .header("Idempotency-Key", &key)
                .json(&create_body(&title));
            sends.spawn(async move { request.send().await.expect("send").json::<TaskJson>().await.expect("task").id });
        }
        let ids: Vec<u64> = sends.join_all().await;
        assert!(ids.iter().all(|id| *id == ids[0]), "round {round}: every copy got the same task: {ids:?}");
    }
    cluster.wait_for_convergence().await;
    let tasks = cluster.all_tasks(1).await;
    assert_eq!(tasks.len(), 20, "one task per key");
}

/// Every node crashes at once (SIGKILL) right after acknowledging writes; all three restart
/// from their own disks and the acknowledged tasks are all there, with the same digest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_group_restarts_from_disk_after_kill_9() {
    let mut cluster = TestCluster::start().await;
    let mut acked = Vec::new();
    for index in 0..120 {
        let response = cluster
            .http
            .post(cluster.url(1 + index % 3, "/api/v1/tasks"))
            .bearer_auth(COMMAND_TOKEN)
            .json(&create_body(&format!("整组重启-{index}")))
            .send()
            .await
            .expect("create");
        assert_eq!(response.status(), 201);
        acked.push(response.json::<TaskJson>().await.expect("task").id);
    }
    for id in 1..=3 {
        cluster.kill(id);
    }
    for id in 1..=3 {
        cluster.restart(id);
    }
    cluster.wait_for_leader().await;
    let converged = cluster.wait_for_convergence().await;
    assert_eq!(converged.task_count, Some(acked.len() as u64));
    for id in 1..=3 {
        let ids: Vec<u64> = cluster.all_tasks(id).await.iter().map(|t| t.id).rev().collect();
        assert_eq!(ids, acked, "node {id} has every acknowledged task");
    }
}

/// A follower away long enough that the leader purged the entries it missed catches up from a
/// snapshot of several chunks (the ledger is over 10 MB here). Peer RPC once refused bodies over
/// 2 MB, so such a follower never caught up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_far_behind_catches_up_from_a_snapshot_of_several_chunks() {
    let mut cluster = TestCluster::start().await;
    let leader = cluster.wait_for_leader().await;
    let behind = (1..=3).find(|id| *id != leader).expect("a follower");
    cluster.kill(behind);
    let up: Vec<u64> = cluster.running().collect();
    let description = "监测发现该经营者在多个平台销售涉嫌假冒注册商标的商品，".repeat(120);
    for round in 0..60 {
        let writes = (0..20).map(|i| {
            let mut body = tests::create_body(&format!("大快照 {round}-{i}"));
            body["description"] = serde_json::json!(description);
            let node = up[i % up.len()];
            let cluster = &cluster;
            async move { cluster.create_task_as(node, tests::COMMAND_TOKEN, &body).await }
        });
        futures_util::future::join_all(writes).await;
    }
    cluster.restart(behind);
    let view = cluster.wait_for_convergence().await;
    assert_eq!(view.task_count, Some(1_200));
    let installed = cluster.metric(behind, "xietong_snapshots_installed_total").await.unwrap_or(0.0);
    assert!(installed >= 1.0, "node {behind} caught up from a snapshot");
}
