//! Intake load: signals in batches of 500 from the market-monitor source. A warm-up registers
//! `open_tasks` shops (one task each, not timed); then `signals` signals, of which
//! `merge_percent` are about those shops (merges) and the rest about new shops (creates), are
//! sent by `writers` concurrent clients to the leader. Reports signals per second and batch
//! latency percentiles.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const SOURCE_TOKEN: &str = "demo-source-monitor-0030";
const BATCH: usize = 500;

fn signal(id: usize, shop: usize, observed: &str) -> Value {
    json!({
        "source_id": format!("bench-{id}"), "kind": "risk_alert", "severity": "normal", "matter": "price",
        "title": format!("监测店铺{shop}价格异常"),
        "subject": {"name": format!("压测店铺{shop}"), "region_code": "440106"},
        "observed_at": observed, "evidence": [format!("https://monitor.example/{id}")],
    })
}

async fn send(http: &reqwest::Client, target: &str, signals: Vec<Value>) -> anyhow::Result<(Duration, usize)> {
    let started = Instant::now();
    let response = http
        .post(format!("http://{target}/api/v1/intake"))
        .bearer_auth(SOURCE_TOKEN)
        .json(&json!({ "signals": signals }))
        .send()
        .await?;
    anyhow::ensure!(response.status().is_success(), "intake answered {}", response.status());
    let body: Value = response.json().await?;
    let merged = body["results"].as_array().map_or(0, |r| r.iter().filter(|s| s["outcome"] == "merged").count());
    Ok((started.elapsed(), merged))
}

pub async fn run(
    target: &str,
    signals: usize,
    open_tasks: usize,
    merge_percent: usize,
    writers: usize,
) -> anyhow::Result<Value> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).tcp_nodelay(true).build()?;
    let observed = OffsetDateTime::now_utc().format(&Rfc3339)?;
    // Warm-up: one signal per shop, so every shop has an open task.
    for chunk in (0..open_tasks).collect::<Vec<_>>().chunks(BATCH) {
        let batch = chunk.iter().map(|shop| signal(*shop, *shop, &observed)).collect();
        send(&http, target, batch).await?;
    }
    // The measured signals: merges pick an existing shop, creates a new one.
    let plan: Vec<Value> = (0..signals)
        .map(|i| {
            let id = open_tasks + i;
            let shop =
                if fastrand::usize(..100) < merge_percent { fastrand::usize(..open_tasks) } else { open_tasks + i };
            signal(id, shop, &observed)
        })
        .collect();
    let batches: Arc<Mutex<Vec<Vec<Value>>>> =
        Arc::new(Mutex::new(plan.chunks(BATCH).map(<[Value]>::to_vec).rev().collect()));
    let merged = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..writers {
        let (http, target, batches, merged, latencies) =
            (http.clone(), target.to_owned(), batches.clone(), merged.clone(), latencies.clone());
        clients.spawn(async move {
            loop {
                let Some(batch) = batches.lock().expect("lock").pop() else { return anyhow::Ok(()) };
                let (latency, merges) = send(&http, &target, batch).await?;
                merged.fetch_add(merges, Ordering::Relaxed);
                latencies.lock().expect("lock").push(latency);
            }
        });
    }
    while let Some(result) = clients.join_next().await {
        result??;
    }
    let elapsed = started.elapsed();
    let mut latencies = latencies.lock().expect("lock").clone();
    latencies.sort_unstable();
    let at = |fraction: f64| crate::stats::nearest_rank(&latencies, fraction).map(|d| d.as_secs_f64() * 1000.0);
    Ok(json!({
        "mode": "intake",
        "signals": signals,
        "batch": BATCH,
        "writers": writers,
        "open_tasks_before": open_tasks,
        "merged": merged.load(Ordering::Relaxed),
        "seconds": elapsed.as_secs_f64(),
        "signals_per_s": signals as f64 / elapsed.as_secs_f64(),
        "batch_p50_ms": at(0.5),
        "batch_p99_ms": at(0.99),
        "batch_max_ms": at(1.0),
    }))
}
