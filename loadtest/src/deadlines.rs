//! Deadline watch load: many open deadlines in the ledger and a burst expiring in the same
//! second; reports how late each miss was recorded (the leader's stamp minus the deadline) and
//! the leader's CPU and memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::Semaphore;

const TOKEN: &str = "demo-gd-command-0001";
const WRITERS: usize = 64;

async fn create_and_dispatch(
    http: &reqwest::Client,
    target: &str,
    index: usize,
    ack: &str,
    complete: &str,
) -> anyhow::Result<u64> {
    let body = json!({
        "kind": "lead", "severity": "normal", "source": "complaint", "title": format!("时限压测-{index}"),
        "subject": {"name": "广州市压测贸易有限公司", "region_code": "440106"},
    });
    let created: Value =
        http.post(format!("http://{target}/api/v1/tasks")).bearer_auth(TOKEN).json(&body).send().await?.json().await?;
    let id = created["id"].as_u64().ok_or_else(|| anyhow::anyhow!("create failed: {created}"))?;
    let dispatch =
        json!({"assignee_bureau": "440106", "ack_deadline": ack, "complete_deadline": complete, "version": 1});
    let response = http
        .post(format!("http://{target}/api/v1/tasks/{id}/dispatch"))
        .bearer_auth(TOKEN)
        .json(&dispatch)
        .send()
        .await?;
    anyhow::ensure!(response.status().is_success(), "dispatch failed: {}", response.status());
    Ok(id)
}

/// Creates and dispatches `count` tasks; the ack deadline of the i-th is `ack(i)`.
async fn many(
    http: &reqwest::Client,
    target: &str,
    count: usize,
    offset: usize,
    ack: impl Fn(usize) -> String,
    complete: String,
) -> anyhow::Result<Vec<u64>> {
    let slots = Arc::new(Semaphore::new(WRITERS));
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..count {
        let permit = slots.clone().acquire_owned().await?;
        let (http, target, ack, complete) = (http.clone(), target.to_owned(), ack(index), complete.clone());
        tasks.spawn(async move {
            let id = create_and_dispatch(&http, &target, offset + index, &ack, &complete).await;
            drop(permit);
            id
        });
    }
    let mut ids = Vec::new();
    while let Some(id) = tasks.join_next().await {
        ids.push(id??);
    }
    Ok(ids)
}

async fn metric(http: &reqwest::Client, target: &str, name: &str) -> Option<f64> {
    let text = http.get(format!("http://{target}/metrics")).send().await.ok()?.text().await.ok()?;
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn at(seconds_from_now: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::seconds(seconds_from_now)
}

pub async fn run(target: &str, open: usize, expiring: usize) -> anyhow::Result<Value> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).pool_max_idle_per_host(256).build()?;
    let rss_before = metric(&http, target, "process_resident_memory_bytes").await;
    let started = Instant::now();
    let far_ack = at(86_400).format(&Rfc3339)?;
    let far_complete = at(30 * 86_400).format(&Rfc3339)?;
    many(&http, target, open, 0, |_| far_ack.clone(), far_complete.clone()).await?;
    eprintln!("  {open} open deadlines in {:.1} s", started.elapsed().as_secs_f64());
    // The burst: ack deadlines spread over one second, far enough out to finish dispatching.
    let burst_seconds = 10 + (expiring / 500) as i64;
    let burst = at(burst_seconds).replace_millisecond(0)?;
    let spread = |index: usize| {
        let offset_ms = (index * 1000 / expiring.max(1)) as i64;
        (burst + time::Duration::milliseconds(offset_ms)).format(&Rfc3339).expect("format")
    };
    let ids = many(&http, target, expiring, open, spread, far_complete).await?;
    let rss_loaded = metric(&http, target, "process_resident_memory_bytes").await;
    let wait = (burst - OffsetDateTime::now_utc()).whole_milliseconds().max(0) as u64;
    tokio::time::sleep(Duration::from_millis(wait.saturating_sub(1_000))).await;
    let cpu_before = metric(&http, target, "process_cpu_seconds_total").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cpu_after = metric(&http, target, "process_cpu_seconds_total").await;

    let mut delays_ms = Vec::new();
    let mut missing = 0;
    for id in &ids {
        let task: Value =
            http.get(format!("http://{target}/api/v1/tasks/{id}")).bearer_auth(TOKEN).send().await?.json().await?;
        let deadline = task["ack_deadline"].as_str().and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());
        let missed = task["timeline"]
            .as_array()
            .and_then(|entries| entries.iter().find(|e| e["action"] == "ack_missed"))
            .and_then(|e| e["at"].as_str())
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());
        match (deadline, missed) {
            (Some(deadline), Some(missed)) => delays_ms.push((missed - deadline).whole_milliseconds() as f64),
            _ => missing += 1,
        }
    }
    delays_ms.sort_by(f64::total_cmp);
    let pick = |q: f64| crate::stats::nearest_rank(&delays_ms, q).unwrap_or(f64::NAN);
    let report = json!({
        "open_deadlines": open, "expiring_in_one_second": expiring, "recorded": delays_ms.len(), "not_recorded": missing,
        "detection_delay_ms_p50": pick(0.5), "detection_delay_ms_p99": pick(0.99), "detection_delay_ms_max": delays_ms.last(),
        "leader_cpu_seconds_around_the_burst": match (cpu_before, cpu_after) { (Some(a), Some(b)) => Some(b - a), _ => None },
        "leader_rss_bytes_before": rss_before, "leader_rss_bytes_loaded": rss_loaded,
    });
    Ok(report)
}
