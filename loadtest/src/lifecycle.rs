//! `--lifecycle`: each writer takes each of its tasks through its whole life (create, dispatch,
//! ack, complete, close), one write after another, as a province's bureaus do. Reports whole
//! lives per second and writes per second, with the latency of each step; the tasks end closed,
//! which is what a ledger of years is mostly made of.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

/// The steps after the create, with the body each sends.
const STEPS: [(&str, &str); 4] = [
    ("dispatch", "{}"),
    ("ack", "{}"),
    ("complete", r#"{"outcome":"no_violation","note":"已核查，未发现违法行为"}"#),
    ("close", "{}"),
];

#[derive(Serialize)]
pub struct LifecycleReport {
    label: String,
    writers: usize,
    seconds: f64,
    tasks_closed: u64,
    tasks_per_second: f64,
    writes_per_second: f64,
    failed: BTreeMap<String, u64>,
    /// p50 and p99 per step, in milliseconds.
    latency_ms: BTreeMap<String, (f64, f64)>,
}

impl std::fmt::Display for LifecycleReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", serde_json::to_string(self).map_err(|_| std::fmt::Error)?)
    }
}

struct Recorder {
    measuring_from: Instant,
    closed: AtomicU64,
    writes: AtomicU64,
    latencies_us: Mutex<BTreeMap<&'static str, Vec<u32>>>,
    failed: Mutex<BTreeMap<String, u64>>,
}

impl Recorder {
    fn step(&self, started: Instant, step: &'static str, outcome: Result<(), String>) {
        if started < self.measuring_from {
            return;
        }
        match outcome {
            Ok(()) => {
                self.writes.fetch_add(1, Ordering::Relaxed);
                let micros = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                self.latencies_us.lock().expect("lock").entry(step).or_default().push(micros);
            }
            Err(kind) => *self.failed.lock().expect("lock").entry(format!("{step}:{kind}")).or_default() += 1,
        }
    }
}

async fn post(http: &reqwest::Client, url: String, token: &str, body: String) -> Result<String, String> {
    let sent = http.post(url).bearer_auth(token).header("content-type", "application/json").body(body).send().await;
    match sent {
        Ok(response) if response.status().is_success() => response.text().await.map_err(|_| "transport".into()),
        Ok(response) => Err(format!("http_{}", response.status().as_u16())),
        Err(error) if error.is_timeout() => Err("timeout".into()),
        Err(_) => Err("transport".into()),
    }
}

/// One task's whole life; stops at the first refused step.
async fn live_once(
    http: &reqwest::Client,
    target: &str,
    token: &str,
    sequence: u64,
    county: &str,
    recorder: &Recorder,
) -> bool {
    let body = super::body(sequence, county).to_string();
    let started = Instant::now();
    let created = post(http, format!("http://{target}/api/v1/tasks"), token, body).await;
    let id = created.and_then(|text| {
        serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|task| task["id"].as_u64())
            .ok_or_else(|| "unreadable".to_owned())
    });
    recorder.step(started, "create", id.as_ref().map(|_| ()).map_err(Clone::clone));
    let Ok(id) = id else { return false };
    for (action, body) in STEPS {
        let started = Instant::now();
        let url = format!("http://{target}/api/v1/tasks/{id}/{action}");
        let outcome = post(http, url, token, body.to_owned()).await.map(drop);
        let ok = outcome.is_ok();
        recorder.step(started, action, outcome);
        if !ok {
            return false;
        }
    }
    true
}

/// What a lifecycle run is asked to do.
pub struct Plan<'a> {
    pub targets: &'a [String],
    pub token: &'a str,
    /// Bureaus this group hosts, dispatched to in turn.
    pub counties: Vec<String>,
    pub writers: usize,
    pub warmup: u64,
    pub seconds: u64,
    pub label: &'a str,
}

/// Runs `writers` closed-loop writers for `warmup + seconds`, each living tasks one after
/// another, spread over the targets and the counties.
pub async fn run(http: reqwest::Client, plan: Plan<'_>) -> anyhow::Result<LifecycleReport> {
    let Plan { targets, token, counties, writers, warmup, seconds, label } = plan;
    anyhow::ensure!(!counties.is_empty(), "no bureau of this group to dispatch to");
    let start = Instant::now();
    let recorder = Arc::new(Recorder {
        measuring_from: start + Duration::from_secs(warmup),
        closed: AtomicU64::new(0),
        writes: AtomicU64::new(0),
        latencies_us: Mutex::new(BTreeMap::new()),
        failed: Mutex::new(BTreeMap::new()),
    });
    let stop_at = start + Duration::from_secs(warmup + seconds);
    let sequence = Arc::new(AtomicU64::new(0));
    let counties = Arc::new(counties);
    let mut running = tokio::task::JoinSet::new();
    for writer in 0..writers {
        let (http, recorder, sequence, counties) = (http.clone(), recorder.clone(), sequence.clone(), counties.clone());
        let (target, token) = (targets[writer % targets.len()].clone(), token.to_owned());
        running.spawn(async move {
            while Instant::now() < stop_at {
                let n = sequence.fetch_add(1, Ordering::Relaxed);
                let started = Instant::now();
                let county = &counties[(n as usize) % counties.len()];
                if live_once(&http, &target, &token, n, county, &recorder).await && started >= recorder.measuring_from {
                    recorder.closed.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while running.join_next().await.is_some() {}
    let measured = Instant::now().saturating_duration_since(recorder.measuring_from).as_secs_f64().max(f64::EPSILON);
    let closed = recorder.closed.load(Ordering::Relaxed);
    let latency_ms = recorder
        .latencies_us
        .lock()
        .expect("lock")
        .iter_mut()
        .map(|(step, samples)| {
            samples.sort_unstable();
            let p = |fraction| super::percentile_ms(samples, fraction);
            ((*step).to_owned(), (p(0.50), p(0.99)))
        })
        .collect();
    let failed = recorder.failed.lock().expect("lock").clone();
    Ok(LifecycleReport {
        label: label.to_owned(),
        writers,
        seconds: measured,
        tasks_closed: closed,
        tasks_per_second: closed as f64 / measured,
        writes_per_second: recorder.writes.load(Ordering::Relaxed) as f64 / measured,
        failed,
        latency_ms,
    })
}
