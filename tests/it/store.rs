//! The ledger's store under crashes: nodes killed with SIGKILL again and again while writes go
//! on and checkpoints are being written; every acknowledged write survives, the replicas end
//! with the same digest, and no node's log is ever purged past what its store holds.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tests::{create_body, wait_until, TestCluster};

/// Kills, each of a node that has just written a checkpoint and goes on writing them.
const KILLS: u64 = 6;
const WRITERS: usize = 12;
/// A client retries a failed write on the next node with the same key, this many times.
const ATTEMPTS_MAX: usize = 10;

/// Writes until `stop`, each write retried over the nodes with one Idempotency-Key; answers
/// what was acknowledged, by title.
async fn write_until(
    http: reqwest::Client,
    addrs: Arc<Vec<String>>,
    writer: usize,
    stop: Arc<AtomicBool>,
) -> BTreeMap<String, u64> {
    // About 3 KB a task, so that a checkpoint of a few dozen entries takes a while to write.
    let description = "经营者在多个平台销售涉嫌假冒注册商标的商品，需核查进货来源。".repeat(40);
    let mut acked = BTreeMap::new();
    for n in 0.. {
        if stop.load(Ordering::Acquire) {
            break;
        }
        let title = format!("崩溃检查点-{writer}-{n}");
        let key = format!("crash-{writer}-{n}");
        let mut body = create_body(&title);
        body["description"] = serde_json::json!(description);
        if let Some(task) = tests::create_with_retries(&http, &addrs, writer, &key, &body, ATTEMPTS_MAX).await {
            acked.insert(title, task.id);
        }
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_checkpoints_are_written_loses_nothing_and_replicas_agree() {
    let mut cluster = TestCluster::start().await;
    cluster.wait_for_leader().await;
    let addrs = Arc::new((1..=3).map(|id| cluster.addr(id).to_owned()).collect::<Vec<_>>());
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| tokio::spawn(write_until(http.clone(), addrs.clone(), writer, stop.clone())))
        .collect();

    for kill in 0..KILLS {
        let victim = 1 + kill % 3;
        // Checkpoints are under way on the victim: its store moved on since the last look.
        let before = cluster.metric(victim, "xietong_store_checkpoint_index").await.unwrap_or(0.0);
        wait_until("the victim writes checkpoints", Duration::from_secs(60), || async {
            let now = cluster.metric(victim, "xietong_store_checkpoint_index").await.unwrap_or(0.0);
            (now > before).then_some(()).ok_or_else(|| format!("checkpoint at {now}"))
        })
        .await;
        // No running node's log was purged past its store.
        for id in cluster.running().collect::<Vec<_>>() {
            let purged = cluster.metric(id, "xietong_raft_purged_index").await.unwrap_or(0.0);
            let checkpoint = cluster.metric(id, "xietong_store_checkpoint_index").await.unwrap_or(0.0);
            assert!(purged <= checkpoint, "node {id} purged to {purged} past its store at {checkpoint}");
        }
        cluster.kill(victim);
        cluster.restart(victim);
        cluster.wait_for_leader().await;
    }

    stop.store(true, Ordering::Release);
    let mut acked = BTreeMap::new();
    for writer in writers {
        acked.extend(writer.await.expect("writer"));
    }
    assert!(acked.len() > 200, "writes went on between the kills: {}", acked.len());
    let converged = cluster.wait_for_convergence().await;
    for id in 1..=3 {
        let tasks = cluster.all_tasks(id).await;
        let mut by_title: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for task in &tasks {
            by_title.entry(task.title.as_str()).or_default().push(task.id);
        }
        for (title, task_id) in &acked {
            assert_eq!(by_title.get(title.as_str()), Some(&vec![*task_id]), "node {id}: {title} present once");
        }
        assert_eq!(Some(tasks.len() as u64), converged.task_count, "node {id}");
    }
}

/// `xietong admin synthesize` makes a ledger of realistic shape through the real apply; a group
/// restored from it serves it: the digest the file promises, every task, lists and files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synthesized_ledger_restores_into_a_working_group() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("synthetic.backup");
    let header =
        tests::admin_offline(&["synthesize", "--tasks", "600", "--out", &file.to_string_lossy()]).expect("synthesize");
    assert_eq!(header["task_count"], 600);
    let digest = header["digest"].as_str().expect("digest").to_owned();
    let cluster = TestCluster::start_with(tests::ClusterOptions {
        restore_from: Some((file.clone(), digest.clone())),
        ..tests::ClusterOptions::default()
    })
    .await;
    // Restore checked the file's digest; the deadline watch then records the deadlines the
    // synthetic year left open and missed, so the group's digest moves on from it.
    let view = cluster.wait_for_convergence().await;
    assert_eq!(view.task_count, Some(600));
    let tasks = cluster.all_tasks(1).await;
    assert_eq!(tasks.len(), 600);
    let closed = tasks.iter().filter(|task| task.state.as_str() == "closed").count();
    // Older than 30 days: all closed; the last 30 days' (about 50 of the 600): about 70 %.
    assert!((520..600).contains(&closed), "the open ones are the last weeks': {closed} closed");
    // Timelines of 3 to 12 entries (the watch adds its records of missed deadlines to open ones).
    assert!(tasks.iter().all(|task| task.timeline.len() >= 3), "timelines of at least 3 entries");
    let closed_lengths = tasks.iter().filter(|task| task.state.as_str() == "closed").map(|task| task.timeline.len());
    assert!(closed_lengths.clone().all(|length| (5..=12).contains(&length)), "closed: 5 to 12 entries");
    // Entities have several tasks each.
    let mut by_entity: BTreeMap<String, usize> = BTreeMap::new();
    for task in &tasks {
        *by_entity.entry(task.subject.uscc.clone().expect("a USCC")).or_default() += 1;
    }
    assert!(by_entity.values().any(|count| *count >= 3), "repeated USCCs");
    // The group goes on from there.
    let created = cluster.create_task(cluster.wait_for_leader().await, "合成账本之后的新任务", None).await;
    assert_eq!(created.id, 601);
    // The feed is node 1's local read: it first applies what the leader answered.
    cluster.wait_for_convergence().await;

    // The export feed from the beginning: every restored task is filed under the restore's index,
    // so pages end inside it and go on with `after`; each task comes once, then the new one.
    let mut seen = BTreeMap::new();
    let (mut since, mut after) = (0u64, None::<u64>);
    let mut split = false;
    loop {
        let resume = after.map(|after| format!("&after={after}")).unwrap_or_default();
        let url = cluster.url(1, &format!("/api/v1/export?since={since}&limit=50{resume}"));
        let response = cluster.http.get(url).bearer_auth("demo-export-health-0040").send().await.expect("export");
        let page: serde_json::Value = response.json().await.expect("page");
        let events = page["events"].as_array().expect("events");
        for event in events {
            *seen.entry(event["task"]["id"].as_u64().expect("id")).or_insert(0) += 1;
        }
        let next = (page["next_since"].as_u64().expect("next_since"), page["next_after"].as_u64());
        split |= next.1.is_some();
        if events.is_empty() && next == (since, after) {
            break;
        }
        assert!(seen.len() <= 601, "the feed ends");
        (since, after) = next;
    }
    assert_eq!(seen.len(), 601, "every task");
    assert!(split, "pages ended inside the restore's index");
    // The deadline watch may change a restored task after its first page: seen again, later.
    assert!(seen.values().all(|count| *count <= 2), "each change once");
}
