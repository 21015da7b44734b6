//! Console fan-out through Redis (issue 9, part 1): the leader publishes every applied console
//! event to the group's Redis Stream, in log order, once per index, across a leader SIGKILL and
//! a Redis restart. A real redis-server; the stream is read back with a plain Redis client.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use tests::redis_server::RedisServer;
use tests::{wait_until, ClusterOptions, TestCluster};

/// Creates before, between and after the faults.
const WRITES_PER_PHASE: usize = 40;

/// One stream entry, as a gateway reads it.
struct StreamEntry {
    index: u64,
    prev: u64,
    gap: bool,
    /// (task id, version) of each task in the entry.
    tasks: Vec<(u64, u64)>,
}

async fn read_stream(redis: &RedisServer, group: &str) -> Result<Vec<StreamEntry>, String> {
    let client = redis::Client::open(redis.url().as_str()).map_err(|e| e.to_string())?;
    let mut connection = client.get_multiplexed_async_connection().await.map_err(|e| e.to_string())?;
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(format!("xietong:{group}:events"))
        .arg("-")
        .arg("+")
        .query_async(&mut connection)
        .await
        .map_err(|e| e.to_string())?;
    let field = |entry: &redis::streams::StreamId, name: &str| -> Option<String> { entry.get(name) };
    Ok(reply
        .ids
        .iter()
        .map(|entry| {
            let tasks: Value = serde_json::from_str(&field(entry, "tasks").expect("tasks")).expect("tasks JSON");
            StreamEntry {
                index: entry.id.split_once('-').and_then(|(i, _)| i.parse().ok()).expect("index id"),
                prev: field(entry, "prev").and_then(|p| p.parse().ok()).expect("prev"),
                gap: field(entry, "gap").is_some(),
                tasks: tasks
                    .as_array()
                    .expect("array")
                    .iter()
                    .map(|t| (t["task"]["id"].as_u64().expect("id"), t["task"]["version"].as_u64().expect("version")))
                    .collect(),
            }
        })
        .collect())
}

async fn create_tasks(cluster: &TestCluster, node: u64, phase: &str) -> Vec<u64> {
    let mut ids = Vec::new();
    for n in 0..WRITES_PER_PHASE {
        ids.push(cluster.create_task(node, &format!("{phase}-{n}"), None).await.id);
    }
    ids
}

/// Waits until every task in `ids` has its creation (version 1) in the stream.
async fn wait_published(redis: &RedisServer, ids: &[u64]) -> Vec<StreamEntry> {
    wait_until("the creates in the stream", Duration::from_secs(30), || async {
        let entries = read_stream(redis, "440000").await?;
        let created: std::collections::BTreeSet<u64> =
            entries.iter().flat_map(|e| e.tasks.iter()).filter(|(_, v)| *v == 1).map(|(id, _)| *id).collect();
        let missing = ids.iter().filter(|id| !created.contains(id)).count();
        if missing == 0 {
            Ok(entries)
        } else {
            Err(format!("{missing} creates not yet published"))
        }
    })
    .await
}

/// Every (task, version) at most once, indexes increasing, each entry's `prev` the entry before.
fn assert_continuous(entries: &[StreamEntry], first_prev: u64) {
    let mut expected_prev = first_prev;
    let mut seen: BTreeMap<(u64, u64), u64> = BTreeMap::new();
    for entry in entries {
        assert_eq!(entry.prev, expected_prev, "entry {} follows the one before it", entry.index);
        assert!(!entry.gap, "no gap at {}", entry.index);
        assert!(entry.index > expected_prev);
        for task in &entry.tasks {
            if let Some(other) = seen.insert(*task, entry.index) {
                panic!("task version {task:?} published twice: at {other} and {}", entry.index);
            }
        }
        expected_prev = entry.index;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_the_stream_once_in_order_across_a_leader_kill_and_a_redis_restart() {
    let mut redis = RedisServer::start().await;
    let mut cluster =
        TestCluster::start_with(ClusterOptions { fanout_redis: Some(redis.url()), ..ClusterOptions::default() }).await;
    let leader = cluster.wait_for_leader().await;
    let writer = (1..=3).find(|id| *id != leader).expect("a follower");
    let mut acknowledged = create_tasks(&cluster, writer, "发布前").await;
    wait_published(&redis, &acknowledged).await;

    // The leader dies mid-stream; the next one goes on from the stream's end.
    cluster.kill(leader);
    let new_leader = cluster.wait_for_leader().await;
    let writer = (1..=3).find(|id| *id != leader && *id != new_leader).expect("the remaining follower");
    acknowledged.extend(create_tasks(&cluster, writer, "换主后").await);
    cluster.restart(leader);
    let entries = wait_published(&redis, &acknowledged).await;
    assert_continuous(&entries, 0);

    // Redis loses everything: the stream starts over (its first entry says so with prev 0, so
    // readers holding a position resync), and the events go on.
    redis.stop();
    let during_outage = create_tasks(&cluster, writer, "缓存重启期间").await;
    redis.restart().await;
    let after = create_tasks(&cluster, writer, "缓存重启后").await;
    let entries = wait_published(&redis, &after).await;
    assert_continuous(&entries, 0);
    // What was written while Redis was down is republished from the leader's history.
    let published: std::collections::BTreeSet<u64> = entries.iter().flat_map(|e| e.tasks.iter().map(|t| t.0)).collect();
    assert!(during_outage.iter().all(|id| published.contains(id)), "writes made during the outage are published");
}
