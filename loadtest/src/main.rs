//! `loadtest`: drives task writes against a running group through the public API and reports
//! throughput, errors by status and latency percentiles, as text and as JSON.
//!
//! Two schedules:
//! - closed loop (`--concurrency N`): N writers, each sends its next write when the last one
//!   answered; measures what the group sustains at that concurrency;
//! - open loop (`--rate R`): writes start on a fixed schedule whatever the answers, and latency
//!   counts from the scheduled start, so queueing under overload is not hidden.
//!
//! It never runs under `cargo test`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use serde::Serialize;
use serde_json::json;

#[derive(Parser, Debug, Clone)]
#[command(about = "Drive task writes against a running xietong group")]
struct Args {
    /// Node addresses (host:port), comma-separated; writes are spread over them round-robin.
    #[arg(long, default_value = "127.0.0.1:8440,127.0.0.1:8441,127.0.0.1:8442")]
    targets: String,
    /// Closed loop: this many concurrent writers.
    #[arg(long, default_value_t = 16, conflicts_with = "rate")]
    concurrency: usize,
    /// Open loop: this many writes per second on a fixed schedule.
    #[arg(long)]
    rate: Option<u64>,
    /// How long to drive load, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Seconds of warm-up before measuring (writes are sent but not counted).
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Bearer token of a command user.
    #[arg(long, default_value = "demo-gd-command-0001")]
    token: String,
    /// Send an Idempotency-Key with every write (costs ledger memory per write).
    #[arg(long)]
    idempotency_keys: bool,
    /// Write the JSON report to this file as well as printing it.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// A label stored in the report (e.g. the commit id).
    #[arg(long, default_value = "")]
    label: String,
}

/// In-flight cap of the open-loop schedule: beyond it the generator itself would be the
/// bottleneck, so the run reports the overload instead of growing without bound.
const OPEN_LOOP_IN_FLIGHT_MAX: u64 = 20_000;

#[derive(Default)]
struct Counters {
    ok: AtomicU64,
    failed: AtomicU64,
}

struct Recorder {
    measuring_from: Instant,
    counters: Counters,
    latencies_us: Mutex<Vec<u32>>,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Recorder {
    fn record(&self, started: Instant, outcome: Result<(), String>) {
        if started < self.measuring_from {
            return;
        }
        let micros = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        match outcome {
            Ok(()) => {
                self.counters.ok.fetch_add(1, Ordering::Relaxed);
                self.latencies_us.lock().expect("lock").push(micros);
            }
            Err(kind) => {
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                *self.errors.lock().expect("lock").entry(kind).or_default() += 1;
            }
        }
    }
}

#[derive(Serialize)]
struct Report {
    label: String,
    mode: String,
    targets: Vec<String>,
    seconds: f64,
    writes_ok: u64,
    writes_failed: u64,
    writes_per_second: f64,
    latency_ms_p50: f64,
    latency_ms_p99: f64,
    latency_ms_p999: f64,
    latency_ms_max: f64,
    errors: BTreeMap<String, u64>,
}

fn body(sequence: u64) -> serde_json::Value {
    const REGIONS: [&str; 5] = ["440106", "440104", "440111", "440305", "440304"];
    let region = REGIONS[(sequence % 5) as usize];
    json!({
        "kind": "lead", "severity": "normal", "source": "complaint",
        "title": format!("压测线索-{sequence}"),
        "description": "负载测试写入",
        "subject": {"uscc": "91350100M000100Y43", "name": "广州市压测贸易有限公司", "region_code": region, "address": "广州市天河区"},
    })
}

async fn write_once(http: &reqwest::Client, args: &Args, target: &str, sequence: u64) -> Result<(), String> {
    let mut request = http.post(format!("http://{target}/api/v1/tasks")).bearer_auth(&args.token).json(&body(sequence));
    if args.idempotency_keys {
        request = request.header("Idempotency-Key", format!("load-{}-{sequence}", std::process::id()));
    }
    match request.send().await {
        Ok(response) if response.status().as_u16() == 201 => {
            let _ = response.bytes().await;
            Ok(())
        }
        Ok(response) => Err(format!("http_{}", response.status().as_u16())),
        Err(error) if error.is_timeout() => Err("timeout".into()),
        Err(error) if error.is_connect() => Err("connect".into()),
        Err(_) => Err("transport".into()),
    }
}

fn percentile_ms(sorted_us: &[u32], fraction: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((sorted_us.len() as f64 * fraction).ceil() as usize).clamp(1, sorted_us.len());
    f64::from(sorted_us[rank - 1]) / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let targets: Vec<String> = args.targets.split(',').map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect();
    anyhow::ensure!(!targets.is_empty(), "--targets names no node");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(1024)
        .tcp_nodelay(true)
        .build()
        .context("building the HTTP client")?;
    let start = Instant::now();
    let recorder = Arc::new(Recorder {
        measuring_from: start + Duration::from_secs(args.warmup),
        counters: Counters::default(),
        latencies_us: Mutex::new(Vec::new()),
        errors: Mutex::new(BTreeMap::new()),
    });
    let stop_at = start + Duration::from_secs(args.warmup + args.seconds);
    let sequence = Arc::new(AtomicU64::new(0));
    let progress = tokio::spawn(print_progress(recorder.clone(), stop_at));

    let mode = match args.rate {
        None => {
            let mut writers = tokio::task::JoinSet::new();
            for worker in 0..args.concurrency {
                let (http, args, recorder, sequence) = (http.clone(), args.clone(), recorder.clone(), sequence.clone());
                let target = targets[worker % targets.len()].clone();
                writers.spawn(async move {
                    while Instant::now() < stop_at {
                        let n = sequence.fetch_add(1, Ordering::Relaxed);
                        let started = Instant::now();
                        let outcome = write_once(&http, &args, &target, n).await;
                        recorder.record(started, outcome);
                    }
                });
            }
            while writers.join_next().await.is_some() {}
            format!("closed loop, {} writers", args.concurrency)
        }
        Some(rate) => {
            anyhow::ensure!(rate > 0, "--rate must be positive");
            let interval = Duration::from_secs_f64(1.0 / rate as f64);
            let in_flight = Arc::new(AtomicU64::new(0));
            let mut requests = tokio::task::JoinSet::new();
            let mut next = Instant::now();
            let mut n = 0u64;
            while next < stop_at {
                tokio::time::sleep_until(next.into()).await;
                if in_flight.load(Ordering::Relaxed) >= OPEN_LOOP_IN_FLIGHT_MAX {
                    recorder.record(next, Err("generator_overloaded".into()));
                } else {
                    let (http, args, recorder, in_flight) =
                        (http.clone(), args.clone(), recorder.clone(), in_flight.clone());
                    let target = targets[(n % targets.len() as u64) as usize].clone();
                    let scheduled = next;
                    in_flight.fetch_add(1, Ordering::Relaxed);
                    requests.spawn(async move {
                        let outcome = write_once(&http, &args, &target, n).await;
                        recorder.record(scheduled, outcome);
                        in_flight.fetch_sub(1, Ordering::Relaxed);
                    });
                }
                while requests.try_join_next().is_some() {}
                n += 1;
                next += interval;
            }
            while requests.join_next().await.is_some() {}
            format!("open loop, {rate} writes/s")
        }
    };
    progress.abort();

    let measured = Instant::now().saturating_duration_since(recorder.measuring_from).as_secs_f64();
    let mut latencies = recorder.latencies_us.lock().expect("lock").clone();
    latencies.sort_unstable();
    let ok = recorder.counters.ok.load(Ordering::Relaxed);
    let report = Report {
        label: args.label.clone(),
        mode,
        targets,
        seconds: measured,
        writes_ok: ok,
        writes_failed: recorder.counters.failed.load(Ordering::Relaxed),
        writes_per_second: ok as f64 / measured.max(f64::EPSILON),
        latency_ms_p50: percentile_ms(&latencies, 0.50),
        latency_ms_p99: percentile_ms(&latencies, 0.99),
        latency_ms_p999: percentile_ms(&latencies, 0.999),
        latency_ms_max: latencies.last().map_or(0.0, |us| f64::from(*us) / 1000.0),
        errors: recorder.errors.lock().expect("lock").clone(),
    };
    println!(
        "{}: {:.0} writes/s ({} ok, {} failed in {:.1} s); latency ms p50 {:.2} p99 {:.2} p999 {:.2} max {:.2}; errors {:?}",
        report.mode,
        report.writes_per_second,
        report.writes_ok,
        report.writes_failed,
        report.seconds,
        report.latency_ms_p50,
        report.latency_ms_p99,
        report.latency_ms_p999,
        report.latency_ms_max,
        report.errors
    );
    let text = serde_json::to_string(&report)?;
    println!("{text}");
    if let Some(path) = &args.json {
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

async fn print_progress(recorder: Arc<Recorder>, stop_at: Instant) {
    let mut last_ok = 0;
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    while Instant::now() < stop_at {
        ticker.tick().await;
        let ok = recorder.counters.ok.load(Ordering::Relaxed);
        let failed = recorder.counters.failed.load(Ordering::Relaxed);
        eprintln!("  {:>7} ok/s  ({ok} ok, {failed} failed so far)", ok - last_ok);
        last_ok = ok;
    }
}
