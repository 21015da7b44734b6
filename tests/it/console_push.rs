//! The console WebSocket protocol against a real 3-process group: snapshot, live events,
//! exact resume on another node, snapshot fallback, slow-client eviction, scope and role.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};
use tests::console::ConsoleClient;
use tests::{wait_until, TestCluster, COMMAND_TOKEN, LEADER_TOKEN, TIANHE_OPERATOR_TOKEN};

fn task_ids(message: &Value) -> Vec<u64> {
    message["tasks"].as_array().expect("tasks").iter().map(|t| t["id"].as_u64().expect("id")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_on_another_node_gives_exactly_the_missed_events() {
    let cluster = TestCluster::start().await;
    for index in 0..3 {
        cluster.create_task(1, &format!("推送快照-{index}"), None).await;
    }
    cluster.wait_for_convergence().await;

    let mut console = ConsoleClient::connect(cluster.addr(2), COMMAND_TOKEN, Some("440000"), None).await;
    let welcome = console.expect("welcome").await;
    assert_eq!(welcome["scope"], "440000");
    let snapshot = console.expect("snapshot").await;
    assert_eq!(task_ids(&snapshot).len(), 3);
    let mut last_index = snapshot["index"].as_u64().expect("index");

    // Live: a create and a dispatch arrive in log order, each tagged with a larger index.
    let live = cluster.create_task(1, "推送实时", Some("440106")).await;
    let mut seen_versions = Vec::new();
    while seen_versions.last() != Some(&2) {
        let events = console.expect("events").await;
        let index = events["index"].as_u64().expect("index");
        assert!(index > last_index, "indexes increase");
        last_index = index;
        for task in events["tasks"].as_array().expect("tasks") {
            assert_eq!(task["id"].as_u64(), Some(live.id));
            seen_versions.push(task["version"].as_u64().expect("version"));
        }
    }
    assert_eq!(seen_versions, [1, 2]);
    console.close().await;

    // Missed while away: three creates and an ack.
    let mut missed = BTreeSet::new();
    for index in 0..3 {
        missed.insert(cluster.create_task(3, &format!("断线期间-{index}"), None).await.id);
    }
    let ack = cluster
        .http
        .post(cluster.url(2, &format!("/api/v1/tasks/{}/ack", live.id)))
        .bearer_auth(TIANHE_OPERATOR_TOKEN)
        .json(&json!({}))
        .send()
        .await
        .expect("ack");
    assert_eq!(ack.status(), 200);
    cluster.wait_for_convergence().await;

    let mut resumed = ConsoleClient::connect(cluster.addr(3), COMMAND_TOKEN, Some("440000"), Some(last_index)).await;
    resumed.expect("welcome").await;
    let mut replayed_ids = Vec::new();
    let mut replayed_messages = 0;
    loop {
        let message = resumed.next(Duration::from_secs(10)).await.expect("open");
        match message["type"].as_str() {
            Some("events") => {
                assert!(message["index"].as_u64().expect("index") > last_index, "nothing already seen is repeated");
                replayed_ids.extend(task_ids(&message));
                replayed_messages += 1;
            }
            Some("resumed") => {
                assert_eq!(message["replayed"].as_u64(), Some(replayed_messages));
                break;
            }
            other => panic!("unexpected {other:?}: {message}"),
        }
    }
    let mut expected: Vec<u64> = missed.iter().copied().collect();
    expected.push(live.id);
    let mut got = replayed_ids.clone();
    got.sort_unstable();
    expected.sort_unstable();
    assert_eq!(got, expected, "exactly the missed events, each once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_from_before_the_retained_history_gives_a_snapshot() {
    let mut cluster = TestCluster::start().await;
    // Enough entries for several snapshots (the harness snapshots every 64 entries).
    for index in 0..150 {
        cluster.create_task(1 + index % 2, &format!("历史-{index}"), None).await;
    }
    // A restarted node starts its history at its snapshot: older indexes are not retained.
    cluster.kill(3);
    cluster.restart(3);
    cluster.wait_for_convergence().await;
    let mut console = ConsoleClient::connect(cluster.addr(3), COMMAND_TOKEN, None, Some(1)).await;
    console.expect("welcome").await;
    let snapshot = console.expect("snapshot").await;
    assert_eq!(snapshot["open_total"].as_u64(), Some(150));
    assert_eq!(task_ids(&snapshot).len(), 150);
    assert_eq!(snapshot["truncated"], false);
}

/// A console that no event concerns still hears from the node every few seconds, and the
/// heartbeat's index moves past the entries it was spared, so it resumes from there with
/// nothing to replay. (Heartbeats are skipped while events flow: those carry the index.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_console_gets_heartbeats_with_an_index_to_resume_from() {
    let cluster = TestCluster::start().await;
    let mut operator = ConsoleClient::connect(cluster.addr(2), TIANHE_OPERATOR_TOKEN, None, None).await;
    operator.expect("welcome").await;
    let snapshot = operator.expect("snapshot").await;
    let snapshot_index = snapshot["index"].as_u64().expect("index");
    // Tasks for Yuexiu, none of Tianhe's business.
    for index in 0..3 {
        cluster.create_task(1, &format!("越秀任务-{index}"), Some("440104")).await;
    }
    cluster.wait_for_convergence().await;
    let mut command = ConsoleClient::connect(cluster.addr(2), COMMAND_TOKEN, None, None).await;
    command.expect("welcome").await;
    let latest = command.expect("snapshot").await["index"].as_u64().expect("index");
    assert!(latest > snapshot_index, "the creates are entries after the operator's snapshot");

    // The heartbeat interval is 5 s; the first one may predate the creates' application.
    let mut heartbeat_index = 0;
    for _ in 0..3 {
        heartbeat_index = operator.heartbeat(Duration::from_secs(12)).await["index"].as_u64().expect("index");
        if heartbeat_index >= latest {
            break;
        }
    }
    assert!(heartbeat_index >= latest, "heartbeat index {heartbeat_index} never reached {latest}");
    operator.close().await;

    let mut resumed = ConsoleClient::connect(cluster.addr(2), TIANHE_OPERATOR_TOKEN, None, Some(heartbeat_index)).await;
    resumed.expect("welcome").await;
    let answer = resumed.expect("resumed").await;
    assert_eq!(answer["replayed"], 0, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_only_ever_receives_its_own_bureaus_tasks() {
    let cluster = TestCluster::start().await;
    let mut refused = ConsoleClient::connect(cluster.addr(1), TIANHE_OPERATOR_TOKEN, Some("440104"), None).await;
    let error = refused.expect("error").await;
    assert_eq!(error["code"], "forbidden");
    assert!(refused.next(Duration::from_secs(5)).await.is_none(), "closed after the error");
    let mut bad_token = ConsoleClient::connect(cluster.addr(1), "not-a-token-at-all", None, None).await;
    assert_eq!(bad_token.expect("error").await["code"], "unauthorized");

    cluster.create_task(1, "越秀旧任务", Some("440104")).await;
    let own_before = cluster.create_task(1, "天河旧任务", Some("440106")).await;
    cluster.wait_for_convergence().await;
    let mut operator = ConsoleClient::connect(cluster.addr(2), TIANHE_OPERATOR_TOKEN, None, None).await;
    assert_eq!(operator.expect("welcome").await["scope"], "440106");
    assert_eq!(task_ids(&operator.expect("snapshot").await), vec![own_before.id]);

    let foreign = cluster.create_task(1, "越秀新任务", Some("440104")).await;
    let own = cluster.create_task(1, "天河新任务", Some("440106")).await;
    // Re-dispatch (改派) the old Tianhe task to Yuexiu: Tianhe learns it left, nothing more.
    let moved = cluster
        .http
        .post(cluster.url(3, &format!("/api/v1/tasks/{}/dispatch", own_before.id)))
        .bearer_auth(COMMAND_TOKEN)
        .json(&json!({"assignee_bureau": "440104"}))
        .send()
        .await
        .expect("re-dispatch");
    assert_eq!(moved.status(), 200);

    let mut received = Vec::new();
    let mut removed = Vec::new();
    while removed.is_empty() {
        let events = operator.expect("events").await;
        for task in events["tasks"].as_array().expect("tasks") {
            assert_eq!(task["assignee_bureau"], "440106", "only Tianhe's tasks: {task}");
            received.push(task["id"].as_u64().expect("id"));
        }
        removed.extend(events["removed"].as_array().expect("removed").iter().map(|v| v.as_u64().expect("id")));
    }
    assert_eq!(removed, vec![own_before.id]);
    assert!(received.contains(&own.id));
    assert!(!received.contains(&foreign.id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_console_is_dropped_and_memory_stays_flat() {
    let cluster = TestCluster::start().await;
    // This console reads its snapshot and then never reads again.
    let mut stalled = ConsoleClient::connect(cluster.addr(2), COMMAND_TOKEN, None, None).await;
    stalled.expect("welcome").await;
    stalled.expect("snapshot").await;
    let connections =
        || async { cluster.metric(2, "xietong_console_connections").await.ok_or_else(|| "no metric".to_owned()) };
    assert_eq!(wait_until("the console is counted", Duration::from_secs(5), connections).await, 1.0);
    let rss_before = cluster.rss_bytes(2);

    // Write until the stalled console's socket buffers fill and it is dropped.
    let description = "事件描述".repeat(300);
    let body = |index: usize| {
        let mut body = tests::create_body(&format!("积压-{index}"));
        body["description"] = json!(description);
        body
    };
    let mut index = 0;
    wait_until("the stalled console is dropped", Duration::from_secs(120), || {
        let requests: Vec<_> = (0..64)
            .map(|_| {
                index += 1;
                cluster.http.post(cluster.url(1, "/api/v1/tasks")).bearer_auth(COMMAND_TOKEN).json(&body(index)).send()
            })
            .collect();
        async {
            for request in requests {
                assert!(request.await.expect("create").status().is_success());
            }
            let open = cluster.metric(2, "xietong_console_connections").await.unwrap_or(1.0);
            if open == 0.0 {
                Ok(())
            } else {
                Err(format!("{open} console(s) still open"))
            }
        }
    })
    .await;
    let rss_after = cluster.rss_bytes(2);
    // The node keeps at most the bounded history, whatever the client does: far below what
    // queueing every event for the stalled client would take.
    assert!(
        rss_after < rss_before + 64 * 1024 * 1024,
        "node memory stayed flat: {} MiB → {} MiB",
        rss_before >> 20,
        rss_after >> 20
    );
    drop(stalled);
}

/// One user may hold `CONSOLES_PER_USER_MAX` consoles on a node; the next is refused with
/// `too_many_connections`, and a closed console's slot is free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_over_the_console_connection_limit_is_refused() {
    let cluster = TestCluster::start_with(tests::ClusterOptions { size: 1, ..Default::default() }).await;
    let addr = cluster.addr(1).to_owned();
    let mut consoles: Vec<ConsoleClient> =
        futures_util::future::join_all((0..config::limits::CONSOLES_PER_USER_MAX).map(|_| async {
            let mut console = ConsoleClient::connect(&addr, COMMAND_TOKEN, None, None).await;
            console.expect("welcome").await;
            console
        }))
        .await;
    let mut one_too_many = ConsoleClient::connect(cluster.addr(1), COMMAND_TOKEN, None, None).await;
    let refusal = one_too_many.next(Duration::from_secs(10)).await.expect("an answer");
    assert_eq!(refusal["code"], "too_many_connections", "{refusal}");
    // Another user is not affected.
    let mut other = ConsoleClient::connect(cluster.addr(1), LEADER_TOKEN, None, None).await;
    other.expect("welcome").await;
    // A closed console gives its slot back (the node notices the close; retried until it has).
    consoles.pop().expect("a console").close().await;
    wait_until("a slot after a console closed", Duration::from_secs(20), || async {
        let mut again = ConsoleClient::connect(cluster.addr(1), COMMAND_TOKEN, None, None).await;
        match again.next(Duration::from_secs(10)).await {
            Some(message) if message["type"] == "welcome" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

/// Writes made while a follower is away: more than `snapshot_every_entries` (64 in the test
/// clusters), so the follower catches up from a snapshot, not from the log.
const WRITES_WHILE_AWAY: usize = 150;

/// A follower that caught up by installing a snapshot never heard of the entries the snapshot
/// covers. A console resuming there from before the snapshot must get a snapshot, not a replay
/// that skips those entries (which it got before the hub accounted for installed snapshots).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_on_a_follower_that_installed_a_snapshot_misses_nothing() {
    let mut cluster = TestCluster::start().await;
    let leader = cluster.wait_for_leader().await;
    let away = (1..=3).find(|id| *id != leader).expect("a follower");
    let writer = (1..=3).find(|id| *id != leader && *id != away).expect("the other follower");
    cluster.create_task(writer, "离线前", None).await;
    let before = cluster.wait_for_convergence().await.applied_index.expect("applied");

    cluster.kill(away);
    let mut written_while_away = BTreeSet::new();
    for index in 0..WRITES_WHILE_AWAY {
        written_while_away.insert(cluster.create_task(writer, &format!("离线期间-{index}"), None).await.id);
    }
    cluster.restart(away);
    cluster.wait_for_convergence().await;
    let installed = cluster.metric(away, "xietong_snapshots_installed_total").await.unwrap_or(0.0);
    assert!(installed >= 1.0, "the returning follower caught up from a snapshot: {installed}");

    let mut console = ConsoleClient::connect(cluster.addr(away), COMMAND_TOKEN, Some("440000"), Some(before)).await;
    console.expect("welcome").await;
    let mut seen = BTreeSet::new();
    loop {
        let message = console.next(Duration::from_secs(10)).await.expect("open");
        match message["type"].as_str() {
            Some("snapshot") => {
                seen.extend(task_ids(&message));
                break;
            }
            Some("events") => seen.extend(task_ids(&message)),
            Some("resumed") => break,
            other => panic!("unexpected {other:?}: {message}"),
        }
    }
    let missing: Vec<_> = written_while_away.difference(&seen).collect();
    assert!(missing.is_empty(), "tasks written while the node was away never reached the console: {missing:?}");
}
