//! The leader's publisher: follows the console hub's history and appends each entry that
//! changed tasks to the group's Redis Stream, in log order, exactly once per index.
//!
//! Every node runs it; it publishes only while its node leads. On taking over it reads the
//! stream's newest entry and goes on from that index, so nothing is published twice and nothing
//! the hub still holds is skipped. When Redis is unreachable it retries; the hub's history
//! (bounded) covers the outage, and what fell out of it is marked as a gap for the readers.
//!
//! While leading it also sets the accounts mark (`super::accounts_key`) to `{node}-{generation}`
//! of its accounts table whenever that moves, and once on taking over.

use std::time::Duration;

use config::FanoutConfig;
use redis::aio::MultiplexedConnection;
use tokio_util::sync::CancellationToken;

use super::{accounts_key, entry_id, index_of, stream_key, FIELD_AT, FIELD_GAP, FIELD_PREV, FIELD_TASKS};
use crate::push::hub::EntryEvents;
use crate::state::AppState;

/// Hub entries taken per round; each becomes one XADD.
const PUBLISH_BATCH_MAX: usize = 256;
/// After a Redis failure, wait this long before connecting again.
const RETRY_DELAY: Duration = Duration::from_millis(500);
/// Connecting to Redis and each command must finish within this.
const REDIS_CALL_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn run(state: AppState, config: FanoutConfig, shutdown: CancellationToken) {
    let key = stream_key(&state.group_bureau.to_string());
    let mut metrics = state.raft.metrics();
    loop {
        let leading = crate::state::leading_term(&metrics.borrow(), state.node_id).is_some();
        if !leading {
            tokio::select! {
                changed = metrics.changed() => if changed.is_err() { return },
                () = shutdown.cancelled() => return,
            }
            continue;
        }
        match publish_while_leading(&state, &config, &key, &shutdown).await {
            Ok(()) => {}
            Err(error) => {
                tracing::warn!(%error, "publishing console events to Redis failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(RETRY_DELAY) => {}
                    () = shutdown.cancelled() => return,
                }
            }
        }
    }
}

async fn timed<T>(call: impl std::future::Future<Output = redis::RedisResult<T>>) -> redis::RedisResult<T> {
    tokio::time::timeout(REDIS_CALL_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| Err(redis::RedisError::from((redis::ErrorKind::Io, "Redis did not answer in time"))))
}

/// The index of the newest entry in the stream, if it has any.
async fn newest_in_stream(connection: &mut MultiplexedConnection, key: &str) -> redis::RedisResult<Option<u64>> {
    let reply: redis::streams::StreamRangeReply =
        timed(redis::cmd("XREVRANGE").arg(key).arg("+").arg("-").arg("COUNT").arg(1).query_async(connection)).await?;
    Ok(reply.ids.first().and_then(|entry| index_of(&entry.id)))
}

/// The `tasks` field of an entry (see the module documentation of `fanout`).
fn tasks_field(events: &EntryEvents) -> String {
    let tasks: Vec<String> = events
        .tasks
        .iter()
        .map(|event| {
            let previous = event.previous_assignee.map_or_else(|| "null".to_owned(), |code| format!("\"{code}\""));
            format!("{{\"previous_assignee\":{previous},\"task\":{}}}", event.json())
        })
        .collect();
    format!("[{}]", tasks.join(","))
}

/// Why a round of publishing ended.
enum Round {
    /// Another node published an index first: re-read the stream's end.
    Overtaken,
    /// This node no longer leads, or is shutting down.
    Done,
}

async fn publish_while_leading(
    state: &AppState,
    config: &FanoutConfig,
    key: &str,
    shutdown: &CancellationToken,
) -> redis::RedisResult<()> {
    let client = redis::Client::open(config.redis.as_str())?;
    let mut connection = super::connect(&client, REDIS_CALL_TIMEOUT).await?;
    loop {
        match publish_from_stream_end(state, config, key, &mut connection, shutdown).await? {
            Round::Overtaken => continue,
            Round::Done => return Ok(()),
        }
    }
}

async fn publish_from_stream_end(
    state: &AppState,
    config: &FanoutConfig,
    key: &str,
    connection: &mut MultiplexedConnection,
    shutdown: &CancellationToken,
) -> redis::RedisResult<Round> {
    let hub = &state.push_hub;
    let mut latest = hub.watch_latest();
    let mut accounts = state.store.people_now().watch();
    let accounts_key = accounts_key(&state.group_bureau.to_string());
    // The generation of the accounts last marked in Redis (none yet on taking over).
    let mut marked = None;
    let mut newest = newest_in_stream(connection, key).await?;
    // Where the hub is read from: the stream's end, or (an empty stream: first start, or Redis
    // lost it) everything the hub still holds.
    let mut covered = newest.unwrap_or_else(|| hub.history_floor().unwrap_or(0));
    let mut gap = false;
    loop {
        if shutdown.is_cancelled() || state.leading_term().is_none() {
            return Ok(Round::Done);
        }
        let generation = *accounts.borrow_and_update();
        if marked != Some(generation) {
            let mark = format!("{}-{generation}", state.node_id);
            timed(redis::cmd("SET").arg(&accounts_key).arg(mark).query_async::<()>(connection)).await?;
            marked = Some(generation);
        }
        let Some((entries, next)) = hub.entries_since(covered, PUBLISH_BATCH_MAX) else {
            // The hub no longer holds what follows `covered` (it fell behind, or the node took a
            // snapshot): go on from what it holds and tell readers there is a gap.
            let floor = hub.history_floor().unwrap_or(covered);
            tracing::warn!(covered, floor, "console events between are no longer held; readers resync");
            covered = floor.max(covered);
            gap = true;
            continue;
        };
        if !entries.is_empty() {
            // One round trip for the whole batch: Redis runs the XADDs in order.
            let mut pipeline = redis::pipe();
            let mut prev = newest.unwrap_or(0);
            for events in &entries {
                let command = pipeline.cmd("XADD");
                command.arg(key).arg("MAXLEN").arg("~").arg(config.stream_entries_max).arg(entry_id(events.index));
                command.arg(FIELD_PREV).arg(prev);
                if gap {
                    command.arg(FIELD_GAP).arg(1);
                    gap = false;
                }
                command.arg(FIELD_TASKS).arg(tasks_field(events));
                command.arg(FIELD_AT).arg(crate::api::time::now_ms());
                prev = events.index;
            }
            match timed(pipeline.query_async::<Vec<String>>(connection)).await {
                Ok(_) => {
                    newest = Some(prev);
                    for events in &entries {
                        state.telemetry.fanout_publish_lag.observe(events.at.elapsed().as_secs_f64());
                    }
                }
                // Redis refuses an id at or below the stream's newest: another node (the old or
                // the new leader) published that index already. The XADDs before it stand.
                Err(error) if error.to_string().contains("equal or smaller") => return Ok(Round::Overtaken),
                Err(error) => return Err(error),
            }
        }
        covered = next.max(covered);
        if entries.len() < PUBLISH_BATCH_MAX {
            // Everything held is out: wait for the hub's next entry (or a leadership check).
            tokio::select! {
                _ = latest.changed() => {}
                _ = accounts.changed() => {}
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
                () = shutdown.cancelled() => return Ok(Round::Done),
            }
        }
    }
}
