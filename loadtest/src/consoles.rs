//! Console load: opens many console WebSockets on one node while writes run, and measures push
//! latency (from the leader's stamp on the task to receipt by the console), messages delivered
//! and the node's memory per connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio_tungstenite::tungstenite::Message;

/// Which token watches which scope: province-wide watchers use the provincial command token;
/// county consoles use the operator of that county or the command user of its city, so that
/// no user exceeds the per-user connection limit.
pub const COUNTY_WATCHERS: &[(&str, &str)] = &[
    ("440106", "demo-tianhe-op-0005"),
    ("440104", "demo-yuexiu-op-0006"),
    ("440111", "demo-baiyun-op-0007"),
    ("440305", "demo-nanshan-op-0008"),
    ("440304", "demo-futian-op-0009"),
    ("440103", "demo-gz-command-0003"),
    ("440307", "demo-sz-command-0004"),
    ("441900", "demo-dongguan-cmd-0010"),
];
pub const PROVINCE_TOKEN: &str = "demo-gd-command-0001";

#[derive(Default)]
pub struct PushStats {
    pub messages: AtomicU64,
    pub task_events: AtomicU64,
    pub connected: AtomicU64,
    pub dropped: AtomicU64,
}

/// What one console measured; kept per console (no shared locks on the hot path) and merged
/// after the run.
#[derive(Default)]
pub struct ConsoleSamples {
    /// Leader stamp → receipt, per delivered task event.
    pub stamp_latencies_us: Vec<u32>,
    /// (task id, receipt ms) per delivered task event, joined after the run with the time the
    /// writer got its 201 (the commit as the client sees it).
    pub receipts: Vec<(u64, i128)>,
}

pub fn now_ms() -> i128 {
    OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000
}

/// Opens one console and records push latency for every task event until `stop`.
pub async fn run_console(
    addr: String,
    token: &'static str,
    scope: &'static str,
    stats: Arc<PushStats>,
    measure_from_ms: i128,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> ConsoleSamples {
    let mut samples = ConsoleSamples::default();
    let Ok((mut socket, _)) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await else {
        stats.dropped.fetch_add(1, Ordering::Relaxed);
        return samples;
    };
    let hello = json!({"type": "hello", "token": token, "scope": scope});
    if socket.send(Message::Text(hello.to_string().into())).await.is_err() {
        stats.dropped.fetch_add(1, Ordering::Relaxed);
        return samples;
    }
    let mut ping = tokio::time::interval(Duration::from_secs(5));
    let mut counted = false;
    loop {
        tokio::select! {
            frame = socket.next() => {
                let Some(Ok(Message::Text(text))) = frame else {
                    if matches!(frame, None | Some(Err(_)) | Some(Ok(Message::Close(_)))) {
                        stats.dropped.fetch_add(1, Ordering::Relaxed);
                        return samples;
                    }
                    continue;
                };
                let received_ms = now_ms();
                // Cheap scanning instead of parsing each message into a JSON tree: the load
                // generator shares the machine with the node it measures.
                if text.starts_with("{\"type\":\"events\"") {
                    stats.messages.fetch_add(1, Ordering::Relaxed);
                    // Each task object starts with its id: `{"id":N,...,"updated_at":"..."`.
                    for task in text.split("{\"id\":").skip(1) {
                        stats.task_events.fetch_add(1, Ordering::Relaxed);
                        let id: Option<u64> = task.split(',').next().and_then(|n| n.parse().ok());
                        let stamp = task.split("\"updated_at\":\"").nth(1).and_then(|s| s.split('"').next());
                        let Some(stamped) = stamp.and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok()) else { continue };
                        let stamped_ms = stamped.unix_timestamp_nanos() / 1_000_000;
                        if stamped_ms < measure_from_ms {
                            continue;
                        }
                        let micros = ((received_ms - stamped_ms).max(0) * 1000).min(i128::from(u32::MAX)) as u32;
                        samples.stamp_latencies_us.push(micros);
                        if let Some(id) = id {
                            samples.receipts.push((id, received_ms));
                        }
                    }
                } else if !counted && text.contains("\"type\":\"snapshot\"") {
                    counted = true;
                    stats.connected.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ = ping.tick() => {
                if socket.send(Message::Text(r#"{"type":"ping"}"#.into())).await.is_err() {
                    stats.dropped.fetch_add(1, Ordering::Relaxed);
                    return samples;
                }
            }
            _ = stop.changed() => return samples,
        }
    }
}
