//! Console load: opens many console WebSockets on one node while writes run, and records when
//! each task event arrived (joined after the run with the writer's 201 for push latency), the
//! messages delivered and the node's memory per connection.
//!
//! The client shares the machine with the processes it measures, so its receive path is kept
//! cheap: a small read buffer and a byte search for task ids, nothing parsed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use node::api::console::ClientMessage;
use time::OffsetDateTime;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

pub const PROVINCE_TOKEN: &str = "demo-gd-command-0001";

/// Which demo user watches a county console, most specific first: the county's own operator
/// where the demo has one, else its city's command centre, else the province's leadership
/// (whose account may open enough consoles for the benchmarks).
const WATCHERS_BY_PREFIX: &[(&str, &str)] = &[
    ("440106", "demo-tianhe-op-0005"),
    ("440104", "demo-yuexiu-op-0006"),
    ("440111", "demo-baiyun-op-0007"),
    ("440305", "demo-nanshan-op-0008"),
    ("440304", "demo-futian-op-0009"),
    ("4401", "demo-gz-command-0003"),
    ("4403", "demo-sz-command-0004"),
    ("4419", "demo-dongguan-cmd-0010"),
    ("44", PROVINCE_LEADERSHIP_TOKEN),
];
const PROVINCE_LEADERSHIP_TOKEN: &str = "demo-gd-leader-0002";

/// The token of the demo user who watches `county`'s console.
pub fn watcher_token(county: &str) -> &'static str {
    WATCHERS_BY_PREFIX
        .iter()
        .find(|(prefix, _)| county.starts_with(prefix))
        .map(|(_, token)| *token)
        .expect("the benchmarks run in Guangdong (44)")
}

/// The lowest bureaus below the province (counties, and the two cities without counties),
/// from the group's own bureau tree: consoles and writes are spread over them as a province's
/// are.
pub async fn county_bureaus(http: &reqwest::Client, target: &str) -> anyhow::Result<Vec<String>> {
    let url = format!("http://{target}/api/v1/bureaus?root=440000");
    let tree: serde_json::Value =
        http.get(url).bearer_auth(PROVINCE_TOKEN).send().await?.error_for_status()?.json().await?;
    let bureaus = tree["bureaus"].as_array().context("the bureau tree has no bureaus")?;
    let parents: std::collections::HashSet<&str> = bureaus.iter().filter_map(|b| b["parent"].as_str()).collect();
    let leaves: Vec<String> = bureaus
        .iter()
        .filter_map(|b| b["code"].as_str())
        .filter(|code| *code != "440000" && !parents.contains(code))
        .map(str::to_owned)
        .collect();
    anyhow::ensure!(!leaves.is_empty(), "no county bureaus below 440000");
    Ok(leaves)
}

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
    /// (task id, receipt ms) per delivered task event, joined after the run with the time the
    /// writer got its 201 (the commit as the client sees it).
    pub receipts: Vec<(u64, i128)>,
}

/// The client's read buffer. tungstenite's default (128 KiB) is zeroed on every read, which
/// cost the load generator a fifth of its CPU; console messages are about 1.2 KB.
const CLIENT_READ_BUFFER_BYTES: usize = 8 * 1024;

/// How often a console proves it is alive (the server drops one silent for 20 s).
const PING_INTERVAL: Duration = Duration::from_secs(5);

/// Each task object in an `events` message starts with its id: `{"id":N,`.
const TASK_START: &[u8] = b"{\"id\":";

/// The ids of the task objects in an `events` message, in order.
fn task_ids(text: &str) -> impl Iterator<Item = Option<u64>> + '_ {
    memchr::memmem::find_iter(text.as_bytes(), TASK_START).map(move |at| {
        let digits = &text[at + TASK_START.len()..];
        let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
        digits[..end].parse().ok()
    })
}

pub fn now_ms() -> i128 {
    OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000
}

/// Opens one console and records push latency for every task event until `stop`.
pub async fn run_console(
    addr: String,
    token: &'static str,
    scope: String,
    stats: Arc<PushStats>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> ConsoleSamples {
    let mut samples = ConsoleSamples::default();
    let config = WebSocketConfig::default().read_buffer_size(CLIENT_READ_BUFFER_BYTES);
    let connected = tokio_tungstenite::connect_async_with_config(format!("ws://{addr}/ws"), Some(config), true).await;
    let Ok((mut socket, _)) = connected else {
        stats.dropped.fetch_add(1, Ordering::Relaxed);
        return samples;
    };
    let hello = ClientMessage::Hello { token: token.to_owned(), scope: Some(scope.to_owned()), since: None };
    let hello = serde_json::to_string(&hello).expect("client messages encode");
    if socket.send(Message::Text(hello.into())).await.is_err() {
        stats.dropped.fetch_add(1, Ordering::Relaxed);
        return samples;
    }
    // Made once, not per frame: a select over fresh futures re-registered a timer and a watch
    // notification on every message (a twentieth of the generator's time).
    let ping: tokio_tungstenite::tungstenite::Utf8Bytes =
        serde_json::to_string(&ClientMessage::Ping).expect("client messages encode").into();
    let stopped = stop.changed();
    tokio::pin!(stopped);
    let mut ping_at = tokio::time::Instant::now() + PING_INTERVAL;
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
                if text.starts_with("{\"type\":\"events\"") {
                    stats.messages.fetch_add(1, Ordering::Relaxed);
                    for id in task_ids(&text) {
                        stats.task_events.fetch_add(1, Ordering::Relaxed);
                        if let Some(id) = id {
                            samples.receipts.push((id, received_ms));
                        }
                    }
                } else if !counted && text.contains("\"type\":\"snapshot\"") {
                    counted = true;
                    stats.connected.fetch_add(1, Ordering::Relaxed);
                }
                // Pings go out as frames come in: the server's heartbeats guarantee a frame
                // every few seconds, well inside the silence it tolerates.
                let now = tokio::time::Instant::now();
                if now >= ping_at {
                    ping_at = now + PING_INTERVAL;
                    if socket.send(Message::Text(ping.clone())).await.is_err() {
                        stats.dropped.fetch_add(1, Ordering::Relaxed);
                        return samples;
                    }
                }
            }
            _ = &mut stopped => return samples,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use node::api::console::Events;

    #[test]
    fn task_ids_are_found_in_an_events_message() {
        let tasks = [r#"{"id":12,"subject":{"name":"x"}}"#, r#"{"id":345,"kind":"lead"}"#, r#"{"id":x}"#];
        let text = Events::text_of(7, tasks, &[]);
        assert_eq!(task_ids(&text).collect::<Vec<_>>(), vec![Some(12), Some(345), None]);
    }

    #[test]
    fn county_consoles_are_watched_by_the_nearest_demo_user() {
        assert_eq!(watcher_token("440106"), "demo-tianhe-op-0005");
        assert_eq!(watcher_token("440113"), "demo-gz-command-0003");
        assert_eq!(watcher_token("441900"), "demo-dongguan-cmd-0010");
        assert_eq!(watcher_token("445302"), PROVINCE_LEADERSHIP_TOKEN);
    }
}
