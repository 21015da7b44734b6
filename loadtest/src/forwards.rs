//! Federation load: leads about Zhejiang firms created at the Guangdong group, forwarded to the
//! Zhejiang group.
//!
//! - latency: leads at a fixed rate (open loop); per forward, the target's create stamp minus
//!   the origin's forward stamp. Both are stamped by the groups' leaders just before they
//!   propose, on one machine's clock, so the figure covers the origin's commit, the courier's
//!   pickup, the HTTP call and the target leader's acceptance (not the target's own commit,
//!   about one write's latency more);
//! - backlog: the target group's processes are paused (SIGSTOP: to the origin it is a partition
//!   that swallows requests), N leads pile up in the origin's outbox, the processes resume
//!   (the partition heals), and the time until the outbox is empty is the drain time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::Semaphore;

const ORIGIN_TOKEN: &str = "demo-gd-command-0001";
const TARGET_TOKEN: &str = "demo-zj-command-0011";
/// Concurrent creates while building a backlog.
const BACKLOG_WRITERS: usize = 64;
/// How often the drain is checked.
const DRAIN_POLL: Duration = Duration::from_millis(50);
const PAGE: usize = 500;

fn lead(index: usize) -> Value {
    json!({
        "kind": "lead", "severity": "normal", "source": "big_data", "title": format!("异地线索压测-{index}"),
        "subject": {"name": "杭州压测电子商务有限公司", "region_code": "330106"},
    })
}

async fn create(http: &reqwest::Client, origin: &str, index: usize) -> anyhow::Result<u64> {
    let created: Value = http
        .post(format!("http://{origin}/api/v1/tasks"))
        .bearer_auth(ORIGIN_TOKEN)
        .json(&lead(index))
        .send()
        .await?
        .json()
        .await?;
    created["id"].as_u64().ok_or_else(|| anyhow::anyhow!("create failed: {created}"))
}

fn ms(text: &str) -> Option<i128> {
    OffsetDateTime::parse(text, &Rfc3339).ok().map(|t| t.unix_timestamp_nanos() / 1_000_000)
}

async fn all_tasks(http: &reqwest::Client, node: &str, token: &str) -> anyhow::Result<Vec<Value>> {
    let mut tasks = Vec::new();
    let mut cursor = String::new();
    loop {
        let url = format!("http://{node}/api/v1/tasks?limit={PAGE}{cursor}");
        let page: Value = http.get(url).bearer_auth(token).send().await?.json().await?;
        tasks.extend(page["tasks"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return Ok(tasks),
        }
    }
}

async fn outbox_len(http: &reqwest::Client, origin: &str) -> anyhow::Result<u64> {
    let text = http.get(format!("http://{origin}/metrics")).send().await?.text().await?;
    text.lines()
        .find_map(|line| line.strip_prefix("xietong_federation_outbox_messages ")?.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no outbox gauge in /metrics"))
}

async fn wait_for_empty_outbox(http: &reqwest::Client, origin: &str, timeout: Duration) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        if outbox_len(http, origin).await? == 0 {
            return Ok(start.elapsed());
        }
        anyhow::ensure!(start.elapsed() < timeout, "the outbox did not drain within {timeout:?}");
        tokio::time::sleep(DRAIN_POLL).await;
    }
}

/// Forward latency at `rate` leads per second for `seconds`.
pub async fn latency(origin: &str, target: &str, rate: u64, seconds: u64) -> anyhow::Result<Value> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).tcp_nodelay(true).build()?;
    let count = (rate * seconds) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = tokio::time::Instant::now();
    let mut creates = tokio::task::JoinSet::new();
    for index in 0..count {
        tokio::time::sleep_until(start + interval * index as u32).await;
        let (http, origin) = (http.clone(), origin.to_owned());
        creates.spawn(async move { create(&http, &origin, index).await });
    }
    let mut created = 0;
    while let Some(result) = creates.join_next().await {
        result??;
        created += 1;
    }
    wait_for_empty_outbox(&http, origin, Duration::from_secs(120)).await?;
    // The origin's forward stamps, by forward id; the target's create stamps, by forward id.
    let mut sent_at = HashMap::new();
    for task in all_tasks(&http, origin, ORIGIN_TOKEN).await? {
        let forward = task["handover"]["forward_id"].as_str().map(str::to_owned);
        let stamp = task["timeline"].as_array().and_then(|entries| {
            entries.iter().find(|e| e["action"] == "forward").and_then(|e| e["at"].as_str()).and_then(ms)
        });
        if let (Some(forward), Some(stamp)) = (forward, stamp) {
            sent_at.insert(forward, stamp);
        }
    }
    let mut latencies: Vec<i128> = Vec::new();
    for task in all_tasks(&http, target, TARGET_TOKEN).await? {
        let forward = task["received_from"]["forward_id"].as_str();
        let arrived = task["created_at"].as_str().and_then(ms);
        if let (Some(sent), Some(arrived)) = (forward.and_then(|f| sent_at.get(f)), arrived) {
            latencies.push(arrived - sent);
        }
    }
    latencies.sort_unstable();
    anyhow::ensure!(!latencies.is_empty(), "no forward arrived");
    Ok(json!({
        "mode": "forward_latency",
        "rate_per_s": rate,
        "seconds": seconds,
        "leads_created": created,
        "forwards_matched": latencies.len(),
        "p50_ms": crate::stats::nearest_rank(&latencies, 0.50),
        "p90_ms": crate::stats::nearest_rank(&latencies, 0.90),
        "p99_ms": crate::stats::nearest_rank(&latencies, 0.99),
        "max_ms": latencies.last(),
    }))
}

#[allow(unsafe_code)]
fn signal(pids: &[i32], signal: libc::c_int) {
    for pid in pids {
        // SAFETY: kill(2) on PIDs the calling script started and handed to us.
        unsafe {
            libc::kill(*pid, signal);
        }
    }
}

/// Drain time of a backlog of `count` forwards built while the target's processes are paused
/// for at least `partition` (so the courier's calls time out and it backs off, as in a real
/// partition that outlasts a call).
pub async fn backlog(origin: &str, count: usize, target_pids: &[i32], partition: Duration) -> anyhow::Result<Value> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).tcp_nodelay(true).build()?;
    anyhow::ensure!(!target_pids.is_empty(), "--pause-pids names no process of the target group");
    signal(target_pids, libc::SIGSTOP);
    let paused = Instant::now();
    let built = async {
        let started = Instant::now();
        let slots = Arc::new(Semaphore::new(BACKLOG_WRITERS));
        let mut creates = tokio::task::JoinSet::new();
        for index in 0..count {
            let permit = slots.clone().acquire_owned().await?;
            let (http, origin) = (http.clone(), origin.to_owned());
            creates.spawn(async move {
                let _permit = permit;
                create(&http, &origin, index).await
            });
        }
        while let Some(result) = creates.join_next().await {
            result??;
        }
        anyhow::Ok(started.elapsed())
    }
    .await;
    if built.is_ok() {
        // The fault lasts its full length: this is the scenario, not a wait for a condition.
        tokio::time::sleep(partition.saturating_sub(paused.elapsed())).await;
    }
    let waiting = outbox_len(&http, origin).await;
    let partition_length = paused.elapsed();
    // Heal the partition whatever happened while building.
    signal(target_pids, libc::SIGCONT);
    let build_time = built?;
    let waiting = waiting?;
    let drain = wait_for_empty_outbox(&http, origin, Duration::from_secs(300)).await?;
    Ok(json!({
        "mode": "forward_backlog",
        "leads_created": count,
        "outbox_before_heal": waiting,
        "partition_seconds": partition_length.as_secs_f64(),
        "build_seconds": build_time.as_secs_f64(),
        "drain_seconds": drain.as_secs_f64(),
        "forwards_per_s_while_draining": waiting as f64 / drain.as_secs_f64().max(0.001),
    }))
}
