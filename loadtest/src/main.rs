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

mod consoles;
mod deadlines;
mod forwards;
mod intake;
mod lifecycle;
mod register;
mod sign_ins;
mod stats;

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
    /// Also open this many console WebSockets (on `--console-target`) and measure push.
    #[arg(long, default_value_t = 0)]
    consoles: usize,
    /// Of the consoles, this many watch the whole province; the rest watch county bureaus.
    #[arg(long, default_value_t = 50)]
    province_consoles: usize,
    /// Spread writes and county consoles over this many of the province's county bureaus
    /// (default: all 124, as in a province; fewer concentrates each event on more consoles).
    #[arg(long)]
    counties: Option<usize>,
    /// Where the consoles connect: nodes or gateways, comma-separated; consoles are spread over
    /// them in turn (default: the first target).
    #[arg(long, value_delimiter = ',')]
    console_target: Vec<String>,
    /// Deadline-watch benchmark instead of write load: this many open deadlines, then
    /// `--expiring` more that all pass in the same second (targets the first node, the leader).
    #[arg(long)]
    open_deadlines: Option<usize>,
    #[arg(long, default_value_t = 1_000)]
    expiring: usize,
    /// Federation benchmark instead of write load: leads about Zhejiang created on the first
    /// target (the Guangdong leader) at this rate for `--seconds`, forwarded to `--forward-target`.
    #[arg(long)]
    forward_rate: Option<u64>,
    /// A node of the Zhejiang group, where the forwards arrive.
    #[arg(long, default_value = "127.0.0.1:8449")]
    forward_target: String,
    /// Federation backlog benchmark: pause `--pause-pids` (the target group), create this many
    /// forwards, resume, and time the drain.
    #[arg(long)]
    forward_backlog: Option<usize>,
    /// PIDs of the target group's processes, comma-separated.
    #[arg(long, default_value = "")]
    pause_pids: String,
    /// How long the target stays paused (the partition) at least, in seconds.
    #[arg(long, default_value_t = 10)]
    partition_seconds: u64,
    /// Intake benchmark instead of write load: this many signals in batches of 500 to the
    /// first target (the leader), after `--intake-open-tasks` shops were registered.
    #[arg(long)]
    intake_signals: Option<usize>,
    #[arg(long, default_value_t = 5_000)]
    intake_open_tasks: usize,
    /// Feed the entity register this many changes from the registration system, in batches of
    /// 1,000 (`--concurrency` clients), instead of task writes.
    #[arg(long)]
    register_changes: Option<usize>,
    /// Of the measured signals, this percentage is about the open shops (merges).
    #[arg(long, default_value_t = 80)]
    intake_merge_percent: usize,
    /// Whole lives instead of creates: each writer takes each task through create, dispatch,
    /// ack, complete and close (`--concurrency` writers).
    #[arg(long)]
    lifecycle: bool,
    /// For `--lifecycle`: bureaus whose code starts with one of these are hosted by other
    /// groups (in `xietong up`, Guangzhou's and Shenzhen's) and are not dispatched to.
    #[arg(long, value_delimiter = ',', default_value = "4401,4403")]
    other_groups: Vec<String>,
    /// Beside the write load, people sign in at this rate a second (an account of Tianhe made
    /// first), spread over the targets; their latency is reported with the writes'.
    #[arg(long)]
    sign_ins: Option<u32>,
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
    /// When each created task's 201 arrived (ms), for writes started after the warm-up; kept
    /// only when consoles are measured.
    acked_at_ms: Option<Mutex<std::collections::HashMap<u64, i128>>>,
}

impl Recorder {
    fn record(&self, started: Instant, outcome: Result<Option<u64>, String>) {
        if started < self.measuring_from {
            return;
        }
        if let (Ok(Some(id)), Some(acked)) = (&outcome, &self.acked_at_ms) {
            acked.lock().expect("lock").insert(*id, consoles::now_ms());
        }
        let outcome = outcome.map(|_| ());
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
    #[serde(skip_serializing_if = "Option::is_none")]
    push: Option<PushReport>,
}

#[derive(Serialize)]
struct PushReport {
    consoles: usize,
    consoles_connected: u64,
    consoles_dropped: u64,
    node_memory_bytes_per_idle_connection: Option<u64>,
    messages_per_second: f64,
    task_events_per_second: f64,
    push_latency_ms_p50: f64,
    push_latency_ms_p99: f64,
    push_latency_ms_p999: f64,
    push_latency_ms_max: f64,
    /// Task events whose push arrived before the writer's 201 (counted as 0 ms).
    pushed_before_ack: u64,
}

fn body(sequence: u64, region: &str) -> serde_json::Value {
    json!({
        "assignee_bureau": region,
        "kind": "lead", "severity": "normal", "source": "complaint",
        "title": format!("压测线索-{sequence}"),
        "description": "负载测试写入",
        "subject": {"uscc": "91350100M000100Y43", "name": "广州市压测贸易有限公司", "region_code": region, "address": "广州市天河区"},
    })
}

/// Sends one create; returns the new task's id when the body was read for it.
async fn write_once(
    http: &reqwest::Client,
    args: &Args,
    target: &str,
    sequence: u64,
    counties: &[String],
) -> Result<Option<u64>, String> {
    // Round-robin over the county bureaus, so each county console sees its share of events.
    let region = &counties[(sequence as usize) % counties.len()];
    let mut request =
        http.post(format!("http://{target}/api/v1/tasks")).bearer_auth(&args.token).json(&body(sequence, region));
    if args.idempotency_keys {
        request = request.header("Idempotency-Key", format!("load-{}-{sequence}", std::process::id()));
    }
    match request.send().await {
        Ok(response) if response.status().as_u16() == 201 => {
            let body = response.bytes().await.map_err(|_| "transport".to_owned())?;
            // The task JSON starts with `{"id":N,`; no need to parse the rest.
            let id = std::str::from_utf8(&body)
                .ok()
                .and_then(|text| text.strip_prefix("{\"id\":")?.split(',').next()?.parse().ok());
            Ok(id)
        }
        Ok(response) => Err(format!("http_{}", response.status().as_u16())),
        Err(error) if error.is_timeout() => Err("timeout".into()),
        Err(error) if error.is_connect() => Err("connect".into()),
        Err(_) => Err("transport".into()),
    }
}

/// The `fraction` percentile of microsecond samples, in milliseconds (0 without samples).
fn percentile_ms(sorted_us: &[u32], fraction: f64) -> f64 {
    stats::nearest_rank(sorted_us, fraction).map_or(0.0, |us| f64::from(us) / 1000.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let targets: Vec<String> = args.targets.split(',').map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect();
    anyhow::ensure!(!targets.is_empty(), "--targets names no node");
    if let Some(changes) = args.register_changes {
        let report = register::run(&targets[0], changes, args.concurrency).await?;
        println!("{report}");
        if let Some(path) = &args.json {
            std::fs::write(path, format!("{report}\n"))?;
        }
        return Ok(());
    }
    if let Some(signals) = args.intake_signals {
        let report =
            intake::run(&targets[0], signals, args.intake_open_tasks, args.intake_merge_percent, args.concurrency)
                .await?;
        println!("{report}");
        if let Some(path) = &args.json {
            std::fs::write(path, format!("{report}\n"))?;
        }
        return Ok(());
    }
    if args.forward_rate.is_some() || args.forward_backlog.is_some() {
        let report = match (args.forward_rate, args.forward_backlog) {
            (Some(rate), _) => forwards::latency(&targets[0], &args.forward_target, rate, args.seconds).await?,
            (None, Some(count)) => {
                let pids: Vec<i32> =
                    args.pause_pids.split(',').filter(|p| !p.is_empty()).map(str::parse).collect::<Result<_, _>>()?;
                forwards::backlog(&targets[0], count, &pids, Duration::from_secs(args.partition_seconds)).await?
            }
            (None, None) => unreachable!("checked above"),
        };
        println!("{report}");
        if let Some(path) = &args.json {
            std::fs::write(path, format!("{report}\n"))?;
        }
        return Ok(());
    }
    if let Some(open) = args.open_deadlines {
        let report = deadlines::run(&targets[0], open, args.expiring).await?;
        println!("{report}");
        if let Some(path) = &args.json {
            std::fs::write(path, format!("{report}\n"))?;
        }
        return Ok(());
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(1024)
        .tcp_nodelay(true)
        .build()
        .context("building the HTTP client")?;
    let mut counties = consoles::county_bureaus(&http, &targets[0]).await.context("reading the county bureaus")?;
    if let Some(count) = args.counties {
        anyhow::ensure!((1..=counties.len()).contains(&count), "--counties must be 1..={}", counties.len());
        counties.truncate(count);
    }
    if args.lifecycle {
        counties.retain(|county| !args.other_groups.iter().any(|prefix| county.starts_with(prefix.as_str())));
        let plan = lifecycle::Plan {
            targets: &targets,
            token: &args.token,
            counties,
            writers: args.concurrency,
            warmup: args.warmup,
            seconds: args.seconds,
            label: &args.label,
        };
        let report = lifecycle::run(http, plan).await?;
        println!("{report}");
        if let Some(path) = &args.json {
            std::fs::write(path, format!("{report}\n"))?;
        }
        return Ok(());
    }
    let counties = Arc::new(counties);
    let consoles = if args.consoles > 0 { Some(open_consoles(&args, &targets, &http, &counties).await?) } else { None };
    let start = Instant::now();
    let recorder = Arc::new(Recorder {
        measuring_from: start + Duration::from_secs(args.warmup),
        counters: Counters::default(),
        latencies_us: Mutex::new(Vec::new()),
        errors: Mutex::new(BTreeMap::new()),
        acked_at_ms: consoles.as_ref().map(|_| Mutex::new(std::collections::HashMap::new())),
    });
    let stop_at = start + Duration::from_secs(args.warmup + args.seconds);
    let sequence = Arc::new(AtomicU64::new(0));
    let progress = tokio::spawn(print_progress(recorder.clone(), stop_at));
    let sign_ins = match args.sign_ins {
        Some(rate) => {
            sign_ins::prepare(&http, &targets[0], &args.token).await?;
            Some(tokio::spawn(sign_ins::run(http.clone(), targets.to_vec(), rate, recorder.measuring_from, stop_at)))
        }
        None => None,
    };

    let mode = match args.rate {
        None => {
            let mut writers = tokio::task::JoinSet::new();
            for worker in 0..args.concurrency {
                let (http, args, recorder, sequence, counties) =
                    (http.clone(), args.clone(), recorder.clone(), sequence.clone(), counties.clone());
                let target = targets[worker % targets.len()].clone();
                writers.spawn(async move {
                    while Instant::now() < stop_at {
                        let n = sequence.fetch_add(1, Ordering::Relaxed);
                        let started = Instant::now();
                        let outcome = write_once(&http, &args, &target, n, &counties).await;
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
                    let (http, args, recorder, in_flight, counties) =
                        (http.clone(), args.clone(), recorder.clone(), in_flight.clone(), counties.clone());
                    let target = targets[(n % targets.len() as u64) as usize].clone();
                    let scheduled = next;
                    in_flight.fetch_add(1, Ordering::Relaxed);
                    requests.spawn(async move {
                        let outcome = write_once(&http, &args, &target, n, &counties).await;
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
    if let Some(sign_ins) = sign_ins {
        let (latencies, refused) = sign_ins.await.context("the sign-in task")?;
        let ms = |fraction: f64| stats::nearest_rank(&latencies, fraction).map_or(0.0, |us| f64::from(us) / 1000.0);
        eprintln!(
            "sign-ins: {} measured, {refused} refused; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            latencies.len(),
            ms(0.5),
            ms(0.99),
            ms(1.0)
        );
    }
    let push = match consoles {
        Some(opened) => Some(opened.finish(args.seconds as f64, recorder.acked_at_ms.as_ref()).await),
        None => None,
    };

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
        push,
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
    if let Some(push) = &report.push {
        println!(
            "consoles: {} connected of {} ({} dropped), node memory per idle connection {} bytes; {:.0} messages/s, {:.0} task events/s delivered; push latency (commit to receipt) ms p50 {:.2} p99 {:.2} p999 {:.2} max {:.2}",
            push.consoles_connected,
            push.consoles,
            push.consoles_dropped,
            push.node_memory_bytes_per_idle_connection.map_or("?".to_owned(), |b| b.to_string()),
            push.messages_per_second,
            push.task_events_per_second,
            push.push_latency_ms_p50,
            push.push_latency_ms_p99,
            push.push_latency_ms_p999,
            push.push_latency_ms_max
        );
    }
    eprintln!("  load generator cpu {:.2} s", own_cpu_seconds());
    let text = serde_json::to_string(&report)?;
    println!("{text}");
    if let Some(path) = &args.json {
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// User and system CPU time this process has used (from /proc/self/stat, in clock ticks of
/// 1/100 s): on a shared machine the load generator's own cost is part of what the figures mean.
fn own_cpu_seconds() -> f64 {
    const TICKS_PER_SECOND: f64 = 100.0;
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return f64::NAN };
    // Fields after the command name (which may hold spaces) start at field 3: utime is 14, stime 15.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (ticks(14) + ticks(15)) / TICKS_PER_SECOND
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

/// Consoles opened for a run, and what is needed to report on them.
struct OpenedConsoles {
    stats: Arc<consoles::PushStats>,
    tasks: tokio::task::JoinSet<consoles::ConsoleSamples>,
    stop: tokio::sync::watch::Sender<bool>,
    count: usize,
    memory_per_connection: Option<u64>,
    messages_at_start: u64,
    events_at_start: u64,
}

/// The node's resident memory, from its Prometheus metrics.
async fn node_rss(http: &reqwest::Client, addr: &str) -> Option<u64> {
    let text = http.get(format!("http://{addr}/metrics")).send().await.ok()?.text().await.ok()?;
    text.lines().find_map(|l| l.strip_prefix("process_resident_memory_bytes ")?.trim().parse().ok())
}

/// Console connections opened per batch: a handshake storm of thousands at once only measures
/// the accept queue.
const CONSOLE_CONNECT_BATCH: usize = 100;

async fn open_consoles(
    args: &Args,
    targets: &[String],
    http: &reqwest::Client,
    counties: &[String],
) -> anyhow::Result<OpenedConsoles> {
    let addrs = if args.console_target.is_empty() { vec![targets[0].clone()] } else { args.console_target.clone() };
    let mut rss_before = Vec::new();
    for addr in &addrs {
        rss_before.push(node_rss(http, addr).await);
    }
    let stats = Arc::new(consoles::PushStats::default());
    let mut tasks = tokio::task::JoinSet::new();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    for index in 0..args.consoles {
        let (scope, token) = if index < args.province_consoles {
            ("440000".to_owned(), consoles::PROVINCE_TOKEN)
        } else {
            let county = &counties[index % counties.len()];
            (county.clone(), consoles::watcher_token(county))
        };
        let addr = addrs[index % addrs.len()].clone();
        tasks.spawn(consoles::run_console(addr, token, scope, stats.clone(), stop_rx.clone()));
        if (index + 1) % CONSOLE_CONNECT_BATCH == 0 {
            let expected = (index + 1) as u64;
            let deadline = Instant::now() + Duration::from_secs(30);
            while stats.connected.load(Ordering::Relaxed) + stats.dropped.load(Ordering::Relaxed) < expected
                && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while stats.connected.load(Ordering::Relaxed) + stats.dropped.load(Ordering::Relaxed) < args.consoles as u64
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the node settle (snapshot buffers freed) before reading its memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Per process serving consoles; the largest is reported.
    let mut memory_per_connection = None;
    for (addr, before) in addrs.iter().zip(rss_before) {
        let on_this = args.consoles.div_ceil(addrs.len()).max(1) as u64;
        if let (Some(before), Some(after)) = (before, node_rss(http, addr).await) {
            let per_connection = after.saturating_sub(before) / on_this;
            eprintln!("  {addr}: {} MiB resident, {per_connection} bytes per console", after / (1024 * 1024));
            memory_per_connection = memory_per_connection.max(Some(per_connection));
        }
    }
    eprintln!(
        "  {} consoles connected on {} ({} dropped)",
        addrs.join(","),
        stats.connected.load(Ordering::Relaxed),
        stats.dropped.load(Ordering::Relaxed)
    );
    let messages_at_start = stats.messages.load(Ordering::Relaxed);
    let events_at_start = stats.task_events.load(Ordering::Relaxed);
    Ok(OpenedConsoles {
        stats,
        tasks,
        stop,
        count: args.consoles,
        memory_per_connection,
        messages_at_start,
        events_at_start,
    })
}

impl OpenedConsoles {
    async fn finish(mut self, seconds: f64, acked: Option<&Mutex<std::collections::HashMap<u64, i128>>>) -> PushReport {
        // Pushes still in flight when the writes stop.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let _ = self.stop.send(true);
        let mut receipts = Vec::new();
        while let Some(samples) = self.tasks.join_next().await {
            if let Ok(samples) = samples {
                receipts.extend(samples.receipts);
            }
        }
        // Commit (the writer's 201) to receipt.
        let acked = acked.map(|m| m.lock().expect("lock").clone()).unwrap_or_default();
        // Each latency also goes to the second it was received in: where the tail sits in time.
        let mut pushed_before_ack = 0;
        let mut latencies: Vec<u32> = Vec::with_capacity(receipts.len());
        let mut by_second: BTreeMap<i128, Vec<u32>> = BTreeMap::new();
        for (id, received_ms) in &receipts {
            let Some(acked_ms) = acked.get(id) else { continue };
            if received_ms < acked_ms {
                pushed_before_ack += 1;
            }
            let latency_us = (((received_ms - acked_ms).max(0)) * 1000).min(i128::from(u32::MAX)) as u32;
            latencies.push(latency_us);
            by_second.entry(received_ms / 1000).or_default().push(latency_us);
        }
        latencies.sort_unstable();
        let first = by_second.keys().next().copied().unwrap_or(0);
        let per_second: Vec<(i128, f64)> = by_second
            .into_iter()
            .map(|(second, mut values)| {
                values.sort_unstable();
                (second - first, percentile_ms(&values, 0.99))
            })
            .collect();
        eprintln!("  p99 by second: {:?}", per_second.iter().map(|(s, p)| format!("{s}:{p:.0}")).collect::<Vec<_>>());
        let messages = self.stats.messages.load(Ordering::Relaxed) - self.messages_at_start;
        let events = self.stats.task_events.load(Ordering::Relaxed) - self.events_at_start;
        PushReport {
            consoles: self.count,
            consoles_connected: self.stats.connected.load(Ordering::Relaxed),
            consoles_dropped: self.stats.dropped.load(Ordering::Relaxed),
            node_memory_bytes_per_idle_connection: self.memory_per_connection,
            messages_per_second: messages as f64 / seconds,
            task_events_per_second: events as f64 / seconds,
            push_latency_ms_p50: percentile_ms(&latencies, 0.50),
            push_latency_ms_p99: percentile_ms(&latencies, 0.99),
            push_latency_ms_p999: percentile_ms(&latencies, 0.999),
            push_latency_ms_max: latencies.last().map_or(0.0, |us| f64::from(*us) / 1000.0),
            pushed_before_ack,
        }
    }
}
