//! Response metrics through the API of real nodes: the same figures from every replica, the
//! breakdown by child bureau and as CSV, and access by scope.

use serde_json::{json, Value};
use tests::{TestCluster, COMMAND_TOKEN, LEADER_TOKEN, TIANHE_OPERATOR_TOKEN};

async fn get(cluster: &TestCluster, node: u64, token: &str, query: &str) -> (u16, String) {
    let response = cluster
        .http
        .get(cluster.url(node, &format!("/api/v1/metrics/response{query}")))
        .bearer_auth(token)
        .send()
        .await
        .expect("metrics");
    (response.status().as_u16(), response.text().await.expect("text"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_reports_the_same_figures() {
    let cluster = TestCluster::start().await;
    for i in 0..6 {
        let task = cluster
            .create_task(1 + i % 3, &format!("指标 {i}"), Some(if i % 2 == 0 { "440106" } else { "440305" }))
            .await;
        if i < 3 {
            let response = cluster
                .http
                .post(cluster.url(2, &format!("/api/v1/tasks/{}/ack", task.id)))
                .bearer_auth(if i % 2 == 0 { TIANHE_OPERATOR_TOKEN } else { COMMAND_TOKEN })
                .json(&json!({}))
                .send()
                .await
                .expect("ack");
            assert_eq!(response.status(), 200);
        }
    }
    cluster.wait_for_convergence().await;
    let mut answers = Vec::new();
    for node in 1..=3 {
        let (status, body) = get(&cluster, node, LEADER_TOKEN, "?bureau=440000").await;
        assert_eq!(status, 200, "{body}");
        answers.push(body);
    }
    assert!(answers.iter().all(|a| a == &answers[0]), "replicas agree: {answers:?}");
    let report: Value = serde_json::from_str(&answers[0]).expect("json");
    assert_eq!(report["total"]["received"], 6);
    assert_eq!(report["total"]["acknowledged"], 3);
    assert_eq!(report["total"]["open_now"], 6);
    let rows = report["rows"].as_array().expect("rows");
    let row = |code: &str| rows.iter().find(|r| r["key"] == code).unwrap_or_else(|| panic!("row {code}")).clone();
    assert_eq!(
        (row("440100")["figures"]["received"].as_u64(), row("440300")["figures"]["received"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(row("440100")["name"], "广州市");

    let (status, csv) = get(&cluster, 1, COMMAND_TOKEN, "?bureau=440000&by=day&format=csv").await;
    assert_eq!(status, 200);
    // What Excel on a Chinese Windows opens as UTF-8: a byte-order mark, CRLF lines.
    let csv = csv.strip_prefix('\u{feff}').expect("a byte-order mark");
    assert!(csv.ends_with("\r\n"));
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("key,name,received,acknowledged,"), "{}", lines[0]);
    assert!(lines.last().unwrap().starts_with("total,,6,3,"), "{csv}");

    // Scope: an operator reads its own bureau only; nobody reads above their bureau.
    let (status, _) = get(&cluster, 1, TIANHE_OPERATOR_TOKEN, "?bureau=440106").await;
    assert_eq!(status, 200);
    let (status, _) = get(&cluster, 1, TIANHE_OPERATOR_TOKEN, "?bureau=440100").await;
    assert_eq!(status, 403);
    let (status, _) = get(&cluster, 1, "demo-gz-command-0003", "?bureau=440000").await;
    assert_eq!(status, 403);
    for (query, code) in [
        ("?from=2026-13-01", "invalid_field"),
        ("?from=2026-11-30&to=2026-11-01", "invalid_field"),
        ("?by=month", "invalid_enum"),
        ("?format=xml", "invalid_enum"),
        ("?colour=red", "invalid_query"),
    ] {
        let (status, body) = get(&cluster, 1, COMMAND_TOKEN, query).await;
        let body: Value = serde_json::from_str(&body).expect("json error");
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some(code)), "{query}");
    }
}

/// A replica killed with SIGKILL and started again rebuilds its book from the store's tallies
/// (checkpoints every few entries here) and the log after them: it reports exactly what it
/// reported before, and what the other replicas report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_restarted_from_its_store_reports_the_same_figures() {
    let mut cluster =
        TestCluster::start_with(tests::ClusterOptions { snapshot_every_entries: 5, ..Default::default() }).await;
    for i in 0..12 {
        let task = cluster.create_task(1, &format!("重启指标 {i}"), Some("440106")).await;
        if i % 3 != 0 {
            let (status, answer) = tests::act(&cluster, 1, TIANHE_OPERATOR_TOKEN, task.id, "ack", json!({})).await;
            assert_eq!(status, 200, "{answer}");
        }
    }
    cluster.wait_for_convergence().await;
    let query = "?bureau=440000&by=child";
    let (_, before) = get(&cluster, 3, LEADER_TOKEN, query).await;
    let lateness = |cluster: &TestCluster, node| {
        let request = cluster.http.get(cluster.url(node, "/api/v1/escalations")).bearer_auth(COMMAND_TOKEN).send();
        async move { request.await.expect("escalations").text().await.expect("text") }
    };
    let late_before = lateness(&cluster, 3).await;
    cluster.kill(3);
    cluster.restart(3);
    cluster.wait_for_convergence().await;
    let (status, after) = get(&cluster, 3, LEADER_TOKEN, query).await;
    assert_eq!(status, 200);
    assert_eq!(after, before, "the restarted replica reports what it reported before");
    assert_eq!(get(&cluster, 1, LEADER_TOKEN, query).await.1, after, "and what the others report");
    assert_eq!(lateness(&cluster, 3).await, late_before);
    let report: Value = serde_json::from_str(&after).expect("json");
    assert_eq!((report["total"]["received"].as_u64(), report["total"]["acknowledged"].as_u64()), (Some(12), Some(8)));
}

/// `/metrics` parsed by a Prometheus text-format parser; the counters move when tasks are
/// written and the task gauges follow the ledger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_metrics_parse_and_move_with_writes() {
    let cluster = TestCluster::start_with(tests::ClusterOptions { size: 1, ..Default::default() }).await;
    async fn scrape(cluster: &TestCluster) -> prometheus_parse::Scrape {
        let text =
            cluster.http.get(cluster.url(1, "/metrics")).send().await.expect("scrape").text().await.expect("text");
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("valid Prometheus text")
    }
    fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
        let sample = scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .unwrap_or_else(|| panic!("no sample {name} {labels:?}"));
        match sample.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(ref buckets) => buckets.last().map_or(0.0, |b| b.count),
            prometheus_parse::Value::Summary(_) => panic!("no summaries here"),
        }
    }
    let before = scrape(&cluster).await;
    let applied_before = value(&before, "xietong_commands_applied_total", &[]);
    for i in 0..3 {
        cluster.create_task(1, &format!("抓取 {i}"), Some("440106")).await;
    }
    let after = scrape(&cluster).await;
    assert!(value(&after, "xietong_commands_applied_total", &[]) >= applied_before + 6.0, "3 creates and 3 dispatches");
    assert_eq!(value(&after, "xietong_tasks", &[("state", "dispatched"), ("kind", "lead")]), 3.0);
    assert_eq!(value(&after, "xietong_tasks_open", &[]), 3.0);
    assert_eq!(value(&after, "xietong_raft_is_leader", &[]), 1.0);
    let creates = value(
        &after,
        "xietong_http_requests_total",
        &[("route", "/api/v1/tasks"), ("method", "POST"), ("status", "201")],
    );
    assert_eq!(creates, 3.0);
    assert!(value(&after, "xietong_write_batch_duration_seconds", &[]) >= 6.0, "every batch is timed");
    assert!(value(&after, "process_resident_memory_bytes", &[]) > 0.0);
}

/// The Grafana dashboard and the alert rules in docs/monitoring query only metrics a node
/// exports, and every panel follows the dashboard's group variable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_queries_only_exported_metrics() {
    const DASHBOARD: &str = include_str!("../../docs/monitoring/grafana-dashboard.json");
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    // Over TLS: a node exports when its certificate ends only when it serves one.
    let cluster = TestCluster::start_with(tests::ClusterOptions { size: 1, tls: true, ..Default::default() }).await;
    cluster.create_task(1, "仪表盘", Some("440106")).await;
    let text = cluster.http.get(cluster.url(1, "/metrics")).send().await.expect("scrape").text().await.expect("text");
    let scrape =
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("valid Prometheus text");
    let exported: std::collections::BTreeSet<&str> = scrape.samples.iter().map(|s| s.metric.as_str()).collect();
    // Each metric named in `expr`, checked against the scrape; how many there were.
    let check = |expr: &str, place: &str| {
        let mut named = 0;
        for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if !(word.starts_with("xietong_") || word.starts_with("process_")) {
                continue;
            }
            let base = ["_bucket", "_sum", "_count"].iter().fold(word, |w, suffix| w.strip_suffix(suffix).unwrap_or(w));
            assert!(exported.contains(base), "{place} queries {word}, which no node exports");
            named += 1;
        }
        named
    };
    let mut queried = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            assert!(
                expr.contains("group=~\"$group\""),
                "panel {:?} ignores the group variable: {expr}",
                panel["title"]
            );
            queried += check(expr, &format!("panel {:?}", panel["title"]));
        }
    }
    assert!(queried >= 15, "the dashboard queries the node's metrics");
    const ALERTS: &str = include_str!("../../docs/monitoring/alerts.yml");
    let alerted: usize =
        ALERTS.lines().filter(|line| !line.trim_start().starts_with('#')).map(|line| check(line, "alerts.yml")).sum();
    assert!(alerted >= 8, "the alert rules query the node's metrics");
}

/// The alert rules are valid and do what their unit tests say (promtool, from Debian's
/// prometheus package, installed by scripts/test-all), and the scrape configuration is valid.
#[test]
fn the_alert_rules_pass_promtool() {
    let monitoring = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/monitoring");
    for args in [
        &["check", "rules", "alerts.yml"][..],
        &["test", "rules", "alerts.test.yml"],
        &["check", "config", "prometheus.yml"],
    ] {
        let output = std::process::Command::new("promtool")
            .args(args)
            .current_dir(&monitoring)
            .output()
            .expect("promtool (Debian package prometheus) is installed");
        assert!(
            output.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
