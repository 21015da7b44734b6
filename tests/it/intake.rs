//! Machine intake and the export feed through the HTTP API of real nodes: per-signal results
//! of a mixed batch, the ledger holding exactly the expected tasks and counters, grouping
//! window edges and per-source grouping keys, rate limits and scopes, and the export feed
//! resuming by index with no gap or repeat.

use std::collections::BTreeMap;

use node::api::time::{format_ms, now_ms};
use serde_json::{json, Value};
use tests::federation::{FederationOptions, GroupSpec, TestFederation};
use tests::{TestCluster, COMMAND_TOKEN};

const MONITOR: &str = "demo-source-monitor-0030";
const PLATFORM: &str = "demo-source-platform-0031";
const HEALTH: &str = "demo-export-health-0040";
const GZ_STATS: &str = "demo-export-gzstats-0041";
const MINUTE_MS: u64 = 60_000;

fn signal(source_id: &str, shop: &str, uscc: Option<&str>, matter: &str, severity: &str, observed_ms: u64) -> Value {
    let mut subject = json!({"name": shop, "region_code": "440106"});
    if let Some(uscc) = uscc {
        subject["uscc"] = json!(uscc);
    }
    json!({
        "source_id": source_id, "kind": "risk_alert", "severity": severity, "matter": matter,
        "title": format!("{shop}：监测发现异常"), "subject": subject,
        "observed_at": format_ms(observed_ms), "evidence": [format!("https://monitor.example/{source_id}")],
    })
}

async fn post_batch(cluster: &TestCluster, node: u64, token: &str, signals: Vec<Value>) -> (u16, Value) {
    let response = cluster
        .http
        .post(cluster.url(node, "/api/v1/intake"))
        .bearer_auth(token)
        .json(&json!({"signals": signals}))
        .send()
        .await
        .expect("intake");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

fn outcomes(body: &Value) -> Vec<String> {
    body["results"].as_array().expect("results").iter().map(|r| r["outcome"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_batch_is_answered_signal_by_signal_and_written_once() {
    let cluster = TestCluster::start().await;
    let t = now_ms() - 10 * MINUTE_MS;
    let (a, b) = ("广州市甲电器商行", "广州市乙食品店");
    let uscc = "91350100M000100Y43";
    let batch = vec![
        signal("m-1", a, Some(uscc), "price", "normal", t),
        signal("m-2", a, Some(uscc), "price", "normal", t + MINUTE_MS),
        signal("m-3", b, None, "price", "normal", t),
        signal("m-1", a, Some(uscc), "price", "normal", t),
        signal("m-bad-uscc", a, Some("91350100M000100Y4X"), "price", "normal", t),
        json!({"source_id": "m-bad-kind", "kind": "rumour", "severity": "normal", "title": "x",
               "subject": {"name": a, "region_code": "440106"}, "observed_at": format_ms(t)}),
        signal("m-4", a, Some(uscc), "price", "critical", t + 2 * MINUTE_MS),
        signal("m-5", a, Some(uscc), "counterfeit", "high", t),
    ];
    let (status, body) = post_batch(&cluster, 2, MONITOR, batch).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(outcomes(&body), ["created", "merged", "created", "repeat", "refused", "refused", "merged", "created"]);
    let results = body["results"].as_array().unwrap();
    assert_eq!(results[4]["error"]["code"], "invalid_uscc");
    assert_eq!(results[5]["error"]["code"], "invalid_enum");
    let shop_a = results[0]["task_id"].as_u64().unwrap();
    for i in [1, 3, 6] {
        assert_eq!(results[i]["task_id"].as_u64(), Some(shop_a), "signal {i} went into shop A's task");
    }

    // The ledger holds exactly three tasks; shop A's counts three signals and was raised.
    let tasks = cluster.all_tasks(1).await;
    assert_eq!(tasks.len(), 3);
    let task_a = tasks.iter().find(|t| t.id == shop_a).unwrap();
    let intake = task_a.intake.as_ref().expect("intake summary");
    assert_eq!((intake.signals, intake.source.as_str()), (3, "market-monitor"));
    assert_eq!(task_a.severity, "critical");
    assert_eq!(task_a.timeline.last().unwrap().action, "severity_raised");
    assert_eq!(intake.evidence, ["https://monitor.example/m-4"]);

    // The same signals again are repeats and write nothing new.
    let before = cluster.wait_for_convergence().await;
    let again = vec![
        signal("m-2", a, Some(uscc), "price", "normal", t + MINUTE_MS),
        signal("m-3", b, None, "price", "normal", t),
    ];
    let (status, body) = post_batch(&cluster, 3, MONITOR, again).await;
    assert_eq!((status, outcomes(&body)), (200, vec!["repeat".to_owned(), "repeat".to_owned()]));
    let after = cluster.wait_for_convergence().await;
    assert_eq!(after.task_count, before.task_count);
    let task_a_again = cluster.all_tasks(1).await.into_iter().find(|t| t.id == shop_a).unwrap();
    assert_eq!(task_a_again.intake.unwrap().signals, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouping_follows_each_sources_window_and_key() {
    let cluster = TestCluster::start_with(tests::ClusterOptions { size: 1, ..Default::default() }).await;
    // platform-feed groups by name and matter within 60 minutes.
    let t = now_ms() - 3 * 60 * MINUTE_MS;
    let shop = "广州市丙网店";
    let batch = vec![
        signal("p-1", shop, Some("91350100M000100Y43"), "fake-reviews", "normal", t),
        signal("p-2", shop, None, "fake-reviews", "normal", t + 60 * MINUTE_MS),
        signal("p-3", shop, None, "fake-reviews", "normal", t + 60 * MINUTE_MS + 1),
    ];
    let (status, body) = post_batch(&cluster, 1, PLATFORM, batch).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(outcomes(&body), ["created", "merged", "created"], "just inside merges, just outside does not");
    // market-monitor groups by USCC too: the same shop under two USCCs is two tasks there.
    let t2 = now_ms() - MINUTE_MS;
    let batch = vec![
        signal("m-10", shop, Some("91350100M000100Y43"), "fake-reviews", "normal", t2),
        signal("m-11", shop, None, "fake-reviews", "normal", t2),
    ];
    let (_, body) = post_batch(&cluster, 1, MONITOR, batch).await;
    assert_eq!(outcomes(&body), ["created", "created"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_over_its_rate_or_outside_its_scope_writes_nothing() {
    let fed =
        TestFederation::start(FederationOptions::new(vec![GroupSpec::new("440000", 1), GroupSpec::new("440100", 1)]))
            .await;
    let (province, guangzhou) = (fed.group("440000"), fed.group("440100"));
    let t = now_ms() - MINUTE_MS;
    // platform-feed reports to Guangzhou (440100): the province's group refuses it whole.
    let (status, body) = post_batch(province, 1, PLATFORM, vec![signal("p-1", "某店", None, "x", "normal", t)]).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")));
    // Its rate is 50 signals per second: a batch of 51 is refused whole, with Retry-After.
    let batch: Vec<Value> =
        (0..51).map(|i| signal(&format!("p-{i}"), &format!("某店{i}"), None, "x", "normal", t)).collect();
    let response = guangzhou
        .http
        .post(guangzhou.url(1, "/api/v1/intake"))
        .bearer_auth(PLATFORM)
        .json(&json!({"signals": batch}))
        .send()
        .await
        .expect("intake");
    assert_eq!(response.status(), 429);
    assert!(response.headers().get("retry-after").is_some());
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(fed.tasks("440100", 1, tests::federation::GZ_COMMAND_TOKEN).await.unwrap().is_empty(), "nothing written");
    // Within its rate it is served.
    let (status, body) = post_batch(guangzhou, 1, PLATFORM, vec![signal("p-ok", "某店", None, "x", "normal", t)]).await;
    assert_eq!((status, outcomes(&body)), (200, vec!["created".to_owned()]));
    // A user token is no source token, and a source token opens no user route.
    let (status, _) = post_batch(guangzhou, 1, COMMAND_TOKEN, vec![]).await;
    assert_eq!(status, 401);
    let response = guangzhou.http.get(guangzhou.url(1, "/api/v1/tasks")).bearer_auth(PLATFORM).send().await.unwrap();
    assert_eq!(response.status(), 401);
    // An empty or oversized batch is a clear 400.
    let (status, body) = post_batch(guangzhou, 1, PLATFORM, vec![]).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_field")));
}

/// Reads the export feed from `since` in pages of `limit` entries until it is caught up,
/// following `next_after` when a page gives one.
async fn read_feed(cluster: &TestCluster, node: u64, token: &str, mut since: u64, limit: usize) -> (Vec<Value>, u64) {
    let mut events = Vec::new();
    let mut after: Option<u64> = None;
    loop {
        let resume = after.map(|after| format!("&after={after}")).unwrap_or_default();
        let url = cluster.url(node, &format!("/api/v1/export?since={since}&limit={limit}{resume}"));
        let page: Value = cluster.http.get(url).bearer_auth(token).send().await.unwrap().json().await.unwrap();
        let batch = page["events"].as_array().unwrap_or_else(|| panic!("a page: {page}")).clone();
        let next = (page["next_since"].as_u64().unwrap(), page["next_after"].as_u64());
        let done = batch.is_empty() && next == (since, after);
        events.extend(batch);
        if done {
            return (events, since);
        }
        (since, after) = next;
    }
}

/// Reads the feed from `since` on `node` until it holds `count` events: the node that answered a
/// write may be another than `node`, which applies it a moment later (the feed is a local read).
async fn read_feed_until(cluster: &TestCluster, node: u64, token: &str, since: u64, count: usize) -> Vec<Value> {
    tests::wait_until("the feed to hold the new events", std::time::Duration::from_secs(10), || async {
        let (events, _) = read_feed(cluster, node, token, since, 100).await;
        if events.len() >= count {
            Ok(events)
        } else {
            Err(format!("{} of {count} events", events.len()))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_feed_resumes_from_any_index_without_gap() {
    let mut cluster = TestCluster::start().await;
    let mut written = BTreeMap::new();
    for i in 0..12 {
        let assignee = if i % 3 == 0 { "440305" } else { "440106" };
        let task = cluster.create_task(1 + i % 3, &format!("共享测试 {i}"), Some(assignee)).await;
        written.insert(task.id, assignee);
    }
    // The feed is a node's local read: node 1 first applies what the others answered.
    cluster.wait_for_convergence().await;
    // Read in small pages, resuming each time from next_since.
    let (events, caught_up) = read_feed(&cluster, 1, HEALTH, 0, 3).await;
    let mut seen: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let mut last_index = 0;
    for event in &events {
        let index = event["index"].as_u64().unwrap();
        assert!(index >= last_index, "log order");
        last_index = index;
        seen.entry(event["task"]["id"].as_u64().unwrap()).or_default().push(event["task"]["version"].as_u64().unwrap());
    }
    for (id, versions) in &seen {
        assert_eq!(versions, &[1, 2], "task {id}: its create and its dispatch, once each");
    }
    assert_eq!(seen.len(), written.len());
    // New events after the resume point, and only those.
    let more = cluster.create_task(2, "共享测试 续", Some("440106")).await;
    let events = read_feed_until(&cluster, 1, HEALTH, caught_up, 2).await;
    let ids: Vec<u64> = events.iter().map(|e| e["task"]["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [more.id, more.id]);
    // Guangzhou's statistics office sees Guangzhou's tasks only.
    let (gz_events, _) = read_feed(&cluster, 1, GZ_STATS, 0, 100).await;
    let gz_ids: std::collections::BTreeSet<u64> = gz_events.iter().map(|e| e["task"]["id"].as_u64().unwrap()).collect();
    let expected: std::collections::BTreeSet<u64> =
        written.iter().filter(|(_, a)| **a == "440106").map(|(id, _)| *id).chain([more.id]).collect();
    assert_eq!(gz_ids, expected);
    // A node restarted from a checkpoint no longer holds the oldest entries in memory: the feed
    // from before them comes from its store, each task once as it stands, then goes on live.
    let mut filler = Vec::new();
    for i in 0..40 {
        filler.push(cluster.create_task(1, &format!("快照填充 {i}"), None).await.id);
    }
    // Node 2 restarts from a checkpoint of its store only once it has written one (it does so in
    // the background; killed before, it would replay its whole log and still hold everything).
    tests::wait_until("node 2 has a checkpoint on disk", std::time::Duration::from_secs(30), || async {
        let index = cluster.metric(2, "xietong_store_checkpoint_index").await.unwrap_or(0.0);
        (index > 0.0).then_some(()).ok_or_else(|| format!("checkpoint at {index}"))
    })
    .await;
    cluster.kill(2);
    cluster.restart(2);
    cluster.wait_for_convergence().await;
    let (events, caught_up) = read_feed(&cluster, 2, HEALTH, 0, 7).await;
    let ids: Vec<u64> = events.iter().map(|e| e["task"]["id"].as_u64().unwrap()).collect();
    let unique: std::collections::BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "each task once: {ids:?}");
    let everything: std::collections::BTreeSet<u64> =
        written.keys().copied().chain([more.id]).chain(filler.iter().copied()).collect();
    assert_eq!(unique, everything);
    let indexes: Vec<u64> = events.iter().map(|e| e["index"].as_u64().unwrap()).collect();
    assert!(indexes.windows(2).all(|w| w[0] <= w[1]), "in the order of their last change");
    assert!(
        events.iter().all(|e| e["task"]["version"].as_u64()
            == Some(if filler.contains(&e["task"]["id"].as_u64().unwrap()) { 1 } else { 2 })),
        "as they stand"
    );
    let after = cluster.create_task(3, "共享测试 重启后", Some("440106")).await;
    let events = read_feed_until(&cluster, 2, HEALTH, caught_up, 2).await;
    let ids: Vec<u64> = events.iter().map(|e| e["task"]["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [after.id, after.id], "then live, from where the store left off");
    // A user token does not read the feed.
    let response =
        cluster.http.get(cluster.url(1, "/api/v1/export?since=0")).bearer_auth(COMMAND_TOKEN).send().await.unwrap();
    assert_eq!(response.status(), 401);
}
