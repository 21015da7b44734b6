//! Register feed load: the registration system's changes (`POST /api/v1/register/changes`) in
//! batches of 1,000, sent by `writers` concurrent clients to the leader. Of the changes, 60 %
//! establish a new entity (in turn in twenty districts of Guangzhou, Shenzhen and Foshan), 25 %
//! amend one established earlier in the run, 10 % revoke one and 5 % deregister one. Reports
//! changes per second and batch latency percentiles.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const FEED_TOKEN: &str = "demo-register-gd-0050";
const BATCH: usize = 1_000;
/// The districts new entities are registered in, in turn.
const COUNTIES: [&str; 20] = [
    "440103", "440104", "440105", "440106", "440111", "440112", "440113", "440114", "440115", "440117", "440118",
    "440303", "440304", "440305", "440306", "440307", "440308", "440604", "440605", "440606",
];

fn county(serial: usize) -> &'static str {
    COUNTIES[serial % COUNTIES.len()]
}

fn uscc(serial: usize) -> String {
    let body = format!("91{}MB{serial:07}", county(serial));
    ledger::Uscc::with_check_character(&body).expect("a USCC body").as_str().to_owned()
}

/// The `n`th change of the run, given how many entities were established before it.
fn change(n: usize, established: &mut usize) -> Value {
    let entity = |serial: usize| {
        json!({"name": format!("压测登记企业{serial}有限公司"), "region_code": county(serial), "industry": "retail",
               "credit_status": "normal", "address": format!("压测路{serial}号")})
    };
    let roll = fastrand::usize(..100);
    let id = format!("bench-{n}");
    if *established == 0 || roll < 60 {
        *established += 1;
        return json!({"id": id, "kind": "establish", "uscc": uscc(*established), "entity": entity(*established)});
    }
    let earlier = fastrand::usize(1..=*established);
    match roll {
        60..85 => json!({"id": id, "kind": "amend", "uscc": uscc(earlier), "entity": entity(earlier)}),
        85..95 => json!({"id": id, "kind": "revoke", "uscc": uscc(earlier)}),
        _ => json!({"id": id, "kind": "deregister", "uscc": uscc(earlier)}),
    }
}

async fn send(http: &reqwest::Client, target: &str, changes: Vec<Value>) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let response = http
        .post(format!("http://{target}/api/v1/register/changes"))
        .bearer_auth(FEED_TOKEN)
        .json(&json!({ "changes": changes }))
        .send()
        .await?;
    anyhow::ensure!(response.status().is_success(), "the feed answered {}", response.status());
    let body: Value = response.json().await?;
    let recorded = body["results"].as_array().map_or(0, |r| r.iter().filter(|c| c["outcome"] == "recorded").count());
    anyhow::ensure!(recorded == changes.len(), "{} of {} changes recorded: {body}", recorded, changes.len());
    Ok(started.elapsed())
}

pub async fn run(target: &str, changes: usize, writers: usize) -> anyhow::Result<Value> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).tcp_nodelay(true).build()?;
    let mut established = 0;
    let plan: Vec<Value> = (0..changes).map(|n| change(n, &mut established)).collect();
    let batches: Arc<Mutex<Vec<Vec<Value>>>> =
        Arc::new(Mutex::new(plan.chunks(BATCH).map(<[Value]>::to_vec).rev().collect()));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..writers {
        let (http, target, batches, latencies) = (http.clone(), target.to_owned(), batches.clone(), latencies.clone());
        clients.spawn(async move {
            loop {
                // Batches leave in order; with several writers they may commit out of it, as
                // several feeds of one registration system would.
                let Some(batch) = batches.lock().expect("lock").pop() else { return anyhow::Ok(()) };
                let latency = send(&http, &target, batch).await?;
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
        "mode": "register-feed",
        "changes": changes,
        "batch": BATCH,
        "writers": writers,
        "established": established,
        "seconds": elapsed.as_secs_f64(),
        "changes_per_s": changes as f64 / elapsed.as_secs_f64(),
        "batch_p50_ms": at(0.5),
        "batch_p99_ms": at(0.99),
        "batch_max_ms": at(1.0),
    }))
}
