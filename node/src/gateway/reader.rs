//! Follows the group's Redis Stream into the gateway's hub, checking that each entry continues
//! the one before (`prev`, `gap`: see `crate::fanout`). When it does not (the stream was trimmed
//! past the gateway, Redis lost it, the publisher skipped entries), the hub forgets its history
//! and every console resynchronises from a snapshot.
//!
//! Between reads it also looks at the group's accounts mark (`crate::fanout::accounts_key`), at
//! most every `READ_BLOCK` (and at least that often: a quiet stream's read returns then), and
//! hands it to the gateway's sessions.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ledger::BureauCode;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamId, StreamReadReply};
use tokio_util::sync::CancellationToken;

use crate::fanout::{entry_id, index_of, FIELD_AT, FIELD_GAP, FIELD_PREV, FIELD_TASKS};
use crate::push::hub::{EncodedScope, EventHub, TaskEvent};

/// Entries taken per read.
const READ_BATCH_MAX: usize = 512;
/// How long one blocking read waits for new entries before it checks for shutdown and reads the
/// accounts mark again (a disabled account's consoles on a gateway close within about this long).
pub const READ_BLOCK: Duration = Duration::from_millis(250);
/// Redis must answer a read within this (a blocking one outlasts the client's default answer
/// timeout, and a full batch on a busy machine may take a while).
const REDIS_ANSWER_TIMEOUT: Duration = Duration::from_secs(3);
/// Reads start at least this far apart. Under load each read then takes in every entry of the
/// last interval at once, and a console watching a busy scope gets them in one write instead
/// of one write per entry: on one machine with 10,000 consoles, sends per console message are
/// what the gateway's time goes to (three fifths of it in the kernel). At most this much is
/// added to an event's latency; a quiet stream's first entry is read at once.
const READ_INTERVAL_MIN: Duration = Duration::from_millis(25);
/// After a Redis failure, wait this long before connecting again.
const RETRY_DELAY: Duration = Duration::from_millis(500);

/// When the reader last had an answer from Redis (ms since the epoch; 0: never): a blocking
/// read answers at least every `READ_BLOCK`, so an old one means Redis is out of reach.
#[derive(Clone, Default)]
pub struct LastRead(Arc<AtomicU64>);

impl LastRead {
    fn record(&self) {
        self.0.store(crate::api::time::now_ms(), Ordering::Relaxed);
    }

    /// How long ago, or None before the first answer.
    pub fn age_ms(&self, now_ms: u64) -> Option<u64> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            at => Some(now_ms.saturating_sub(at)),
        }
    }
}

/// What the reader follows and where it puts what it reads.
pub struct Follow {
    pub url: String,
    pub stream: String,
    /// The group's accounts mark (`crate::fanout::accounts_key`).
    pub accounts: String,
    pub hub: EventHub,
    pub sessions: Arc<super::sessions::GatewaySessions>,
    /// Per entry, the time from the publisher sending it to this reader taking it in.
    pub lag: prometheus::Histogram,
    pub last_read: LastRead,
}

pub async fn run(follow: Follow, shutdown: CancellationToken) {
    // The index of the last entry taken in, kept across reconnections.
    let mut cursor: Option<u64> = None;
    loop {
        match follow_stream(&follow, &mut cursor, &shutdown).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, "reading the console stream failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(RETRY_DELAY) => {}
                    () = shutdown.cancelled() => return,
                }
            }
        }
    }
}

async fn follow_stream(follow: &Follow, cursor: &mut Option<u64>, shutdown: &CancellationToken) -> Result<(), String> {
    let Follow { url, stream, accounts, hub, sessions, lag, last_read } = follow;
    let client = redis::Client::open(url.as_str()).map_err(|e| e.to_string())?;
    let mut connection: MultiplexedConnection =
        crate::fanout::connect(&client, REDIS_ANSWER_TIMEOUT).await.map_err(|e| e.to_string())?;
    // The first read does not wait, so a fresh gateway knows at once what the stream holds.
    let mut block = false;
    let mut next_read = tokio::time::Instant::now();
    let mut next_accounts_read = next_read;
    loop {
        if tokio::time::Instant::now() >= next_accounts_read {
            let mut command = redis::cmd("GET");
            let read = command.arg(accounts).query_async::<Option<String>>(&mut connection);
            let mark = tokio::time::timeout(REDIS_ANSWER_TIMEOUT, read)
                .await
                .map_err(|_| "Redis did not answer in time".to_owned())?
                .map_err(|e| e.to_string())?;
            sessions.accounts_mark(mark);
            next_accounts_read = tokio::time::Instant::now() + READ_BLOCK;
        }
        tokio::select! {
            () = tokio::time::sleep_until(next_read) => {}
            () = shutdown.cancelled() => return Ok(()),
        }
        next_read = tokio::time::Instant::now() + READ_INTERVAL_MIN;
        let from = cursor.map_or_else(|| "0-0".to_owned(), entry_id);
        let mut command = redis::cmd("XREAD");
        command.arg("COUNT").arg(READ_BATCH_MAX);
        if block {
            command.arg("BLOCK").arg(READ_BLOCK.as_millis() as u64);
        }
        block = true;
        command.arg("STREAMS").arg(stream).arg(&from);
        let read = command.query_async::<Option<StreamReadReply>>(&mut connection);
        let reply = tokio::select! {
            reply = tokio::time::timeout(REDIS_ANSWER_TIMEOUT, read) => {
                reply.map_err(|_| "Redis did not answer in time".to_owned())?.map_err(|e| e.to_string())?
            }
            () = shutdown.cancelled() => return Ok(()),
        };
        last_read.record();
        let mut taken = 0usize;
        for entry in reply.into_iter().flat_map(|reply| reply.keys).flat_map(|key| key.ids) {
            take_in(hub, cursor, &entry)?;
            if let Some(at) = entry.get::<u64>(FIELD_AT) {
                let now = crate::api::time::now_ms();
                lag.observe(now.saturating_sub(at) as f64 / 1000.0);
            }
            taken += 1;
        }
        if taken < READ_BATCH_MAX {
            // Caught up with the stream's end: nothing after the cursor exists yet.
            hub.holds_everything_after(cursor.unwrap_or(0));
        }
    }
}

/// Publishes one stream entry into the hub, resetting the hub first when it does not continue
/// the entry before.
fn take_in(hub: &EventHub, cursor: &mut Option<u64>, entry: &StreamId) -> Result<(), String> {
    let index = index_of(&entry.id).ok_or_else(|| format!("stream entry id {} is not an index", entry.id))?;
    let prev: u64 = entry.get::<String>(FIELD_PREV).and_then(|p| p.parse().ok()).unwrap_or(0);
    let gap = entry.get::<String>(FIELD_GAP).is_some();
    let tasks: String = entry.get(FIELD_TASKS).ok_or_else(|| format!("stream entry {index} has no tasks"))?;
    if cursor.is_some_and(|last| prev != last) || gap {
        tracing::warn!(index, prev, cursor = ?cursor, gap, "the console stream does not continue; consoles resync");
        hub.reset();
    }
    let held_after = if gap { index - 1 } else { prev };
    hub.publish_encoded(index, held_after, decode_tasks(&tasks)?);
    *cursor = Some(index);
    Ok(())
}

fn code(text: &str) -> Option<BureauCode> {
    // A region's six digits or a station's nine: the node that published the event checked the
    // code against its table.
    BureauCode::parse_unit(text)
}

/// One item of the `tasks` field. The task is kept as the node encoded it: consoles get the same
/// bytes from a gateway as from a node, and the gateway never encodes a task again.
#[derive(serde::Deserialize)]
struct StreamTask<'a> {
    previous_assignee: Option<&'a str>,
    #[serde(borrow)]
    task: &'a serde_json::value::RawValue,
}

/// The fields of a task that scope filtering needs.
#[derive(serde::Deserialize)]
struct TaskScope<'a> {
    id: u64,
    origin_bureau: &'a str,
    assignee_bureau: Option<&'a str>,
    #[serde(default, borrow)]
    escalated_to: Vec<&'a str>,
    #[serde(default)]
    handling_unit: Option<&'a str>,
    #[serde(default)]
    lead_handler: Option<PersonRef>,
    #[serde(default)]
    supporting_handlers: Vec<PersonRef>,
    #[serde(default)]
    team: Vec<PersonRef>,
}

/// A person a task names, as its JSON has them.
#[derive(serde::Deserialize)]
struct PersonRef {
    id: u64,
}

/// The `tasks` field: `[{"previous_assignee": code or null, "task": TaskJson}]`.
fn decode_tasks(text: &str) -> Result<Vec<TaskEvent>, String> {
    let items: Vec<StreamTask> = serde_json::from_str(text).map_err(|e| format!("stream tasks: {e}"))?;
    items
        .into_iter()
        .map(|item| {
            let scope: TaskScope = serde_json::from_str(item.task.get()).map_err(|e| format!("stream task: {e}"))?;
            let origin = code(scope.origin_bureau).ok_or("a stream task without a valid origin")?;
            let people = scope.lead_handler.iter().chain(&scope.supporting_handlers).chain(&scope.team);
            Ok(TaskEvent::encoded(
                item.task.get().into(),
                EncodedScope {
                    task_id: scope.id,
                    origin,
                    assignee: scope.assignee_bureau.and_then(code),
                    previous_assignee: item.previous_assignee.and_then(code),
                    escalated_to: scope.escalated_to.into_iter().filter_map(code).collect(),
                    handling_unit: scope.handling_unit.and_then(code),
                    people: people.map(|person| person.id).collect(),
                },
            ))
        })
        .collect()
}
