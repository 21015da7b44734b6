//! Who is online (issue 9): the process that serves a console connection (a node with `[fanout]`,
//! or a gateway) records its user as online in Redis while the connection lasts, refreshed with
//! every heartbeat, so a dispatcher can see which lower bureaus have somebody watching and is
//! warned before dispatching to one that has nobody.
//!
//! One sorted set per bureau (`presence_key`): members are user names, scores the time (Unix ms)
//! until which the user counts as online. An entry whose process died is not removed; it simply
//! stops counting once its time passes (`PRESENCE_TTL`), and is swept on the next write.
//! Presence is advice for people, never an input to the ledger; Redis errors are logged and
//! otherwise ignored.

use std::collections::BTreeMap;
use std::time::Duration;

use ledger::BureauCode;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::api::time;

/// A console counts as online this long after its last heartbeat (the console heartbeat is
/// every 5 s; missing a few is still online).
pub const PRESENCE_TTL: Duration = Duration::from_secs(30);
const REDIS_CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Reconnection attempts after a failure, before a call gives up (the next call tries again).
const RECONNECT_RETRIES: usize = 2;
const RECONNECT_DELAY_MAX: Duration = Duration::from_millis(500);
/// Marks waiting for the writer. A full queue drops a mark: refreshes come again with the next
/// heartbeat, and a lost departure only lets its entry expire by itself.
const MARKS_QUEUE_DEPTH: usize = 8_192;
/// Marks written in one pipelined round trip at most.
const MARKS_PER_WRITE_MAX: usize = 1_024;

pub fn presence_key(bureau: BureauCode) -> String {
    format!("xietong:presence:{bureau}")
}

/// A change of a user's presence, queued for the writer.
enum Mark {
    Online { bureau: BureauCode, user: String },
    Offline { bureau: BureauCode, user: String },
}

/// Presence in Redis. Console connections only queue marks (`refresh`, `leave`) and never wait
/// on Redis: one writer task takes the marks in batches and writes each batch in one pipelined
/// round trip. (Before, every connection awaited its own Redis calls through one shared
/// connection, and a gateway's thousand heartbeats queued behind each other while the events
/// for those consoles waited: measured as a push-latency tail of up to 2.5 s.)
pub struct Presence {
    client: redis::Client,
    /// For the presence queries of the REST route: connects on first use and again after a
    /// dropped connection by itself, and serves concurrent queries on one multiplexed
    /// connection (each query clones the handle; none waits for another's round trip). A
    /// query that times out replaces it: a half-open connection (a Redis failover, a firewall
    /// that forgot the flow) only ever times out, and the manager would keep it.
    redis: std::sync::RwLock<ConnectionManager>,
    marks: mpsc::Sender<Mark>,
}

/// A connection manager that connects on first use, with this module's time limits.
fn connection_manager(client: redis::Client) -> redis::RedisResult<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(REDIS_CALL_TIMEOUT))
        .set_response_timeout(Some(REDIS_CALL_TIMEOUT))
        .set_number_of_retries(RECONNECT_RETRIES)
        .set_max_delay(RECONNECT_DELAY_MAX);
    ConnectionManager::new_lazy_with_config(client, config)
}

impl Presence {
    /// Connects lazily and starts the writer, which ends with `shutdown`.
    pub fn start(
        url: &str,
        shutdown: CancellationToken,
    ) -> Result<(std::sync::Arc<Presence>, tokio::task::JoinHandle<()>), String> {
        let client = redis::Client::open(url).map_err(|e| format!("presence Redis {url}: {e}"))?;
        let redis = connection_manager(client.clone()).map_err(|e| format!("presence Redis {url}: {e}"))?;
        let (marks, queue) = mpsc::channel(MARKS_QUEUE_DEPTH);
        let writer = tokio::spawn(write_marks(client.clone(), queue, shutdown));
        Ok((std::sync::Arc::new(Presence { client, redis: std::sync::RwLock::new(redis), marks }), writer))
    }

    async fn run<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> Result<T, String> {
        let mut connection = self.redis.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        match tokio::time::timeout(REDIS_CALL_TIMEOUT, command.query_async::<T>(&mut connection)).await {
            Ok(answer) => answer.map_err(|e| e.to_string()),
            Err(_) => {
                if let Ok(fresh) = connection_manager(self.client.clone()) {
                    *self.redis.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh;
                }
                Err("Redis did not answer in time".to_owned())
            }
        }
    }

    /// Marks `user` of `bureau` online for `PRESENCE_TTL` from when the writer records it.
    pub fn refresh(&self, bureau: BureauCode, user: &str) {
        self.queue(Mark::Online { bureau, user: user.to_owned() });
    }

    /// The connection of `user` ended. (Another connection of the same user refreshes it again
    /// within a heartbeat.)
    pub fn leave(&self, bureau: BureauCode, user: &str) {
        self.queue(Mark::Offline { bureau, user: user.to_owned() });
    }

    fn queue(&self, mark: Mark) {
        if self.marks.try_send(mark).is_err() {
            tracing::debug!("presence queue full; a mark is dropped (the next heartbeat repeats it)");
        }
    }

    /// How many users of each bureau are online now.
    pub async fn online(&self, bureaus: &[BureauCode]) -> Result<Vec<u64>, String> {
        let now = time::now_ms();
        let mut counts = Vec::with_capacity(bureaus.len());
        for bureau in bureaus {
            let mut count = redis::cmd("ZCOUNT");
            count.arg(presence_key(*bureau)).arg(now).arg("+inf");
            counts.push(self.run::<u64>(&count).await?);
        }
        Ok(counts)
    }
}

/// The writer: waits for a mark, takes whatever else is queued (up to a batch), keeps the last
/// mark per user and bureau, and writes them with a sweep of each bureau's expired entries in one
/// pipelined round trip. Redis errors are logged; the marks of a failed batch are dropped (the
/// next heartbeats repeat them).
async fn write_marks(client: redis::Client, mut queue: mpsc::Receiver<Mark>, shutdown: CancellationToken) {
    let Ok(mut connection) = connection_manager(client.clone()) else {
        tracing::warn!("presence Redis cannot be set up; presence is not recorded");
        return;
    };
    loop {
        let first = tokio::select! {
            mark = queue.recv() => match mark { Some(mark) => mark, None => return },
            () = shutdown.cancelled() => return,
        };
        let mut latest: BTreeMap<(BureauCode, String), bool> = BTreeMap::new();
        let mut take = |mark: Mark| match mark {
            Mark::Online { bureau, user } => latest.insert((bureau, user), true),
            Mark::Offline { bureau, user } => latest.insert((bureau, user), false),
        };
        take(first);
        for _ in 1..MARKS_PER_WRITE_MAX {
            match queue.try_recv() {
                Ok(mark) => {
                    take(mark);
                }
                Err(_) => break,
            }
        }
        let now = time::now_ms();
        let until = now + PRESENCE_TTL.as_millis() as u64;
        let mut pipeline = redis::pipe();
        let mut bureaus = std::collections::BTreeSet::new();
        for ((bureau, user), online) in &latest {
            let key = presence_key(*bureau);
            if *online {
                pipeline.cmd("ZADD").arg(&key).arg(until).arg(user).ignore();
            } else {
                pipeline.cmd("ZREM").arg(&key).arg(user).ignore();
            }
            bureaus.insert(*bureau);
        }
        for bureau in bureaus {
            pipeline.cmd("ZREMRANGEBYSCORE").arg(presence_key(bureau)).arg("-inf").arg(now).ignore();
        }
        let written = pipeline.query_async::<()>(&mut connection);
        match tokio::time::timeout(REDIS_CALL_TIMEOUT, written).await {
            Ok(Ok(())) => {}
            // The manager connects again by itself; the marks of this batch are dropped.
            Ok(Err(error)) => tracing::debug!(%error, "recording presence failed"),
            Err(_) => {
                // Perhaps a half-open connection, which the manager would keep: start afresh.
                tracing::debug!("recording presence timed out");
                if let Ok(fresh) = connection_manager(client.clone()) {
                    connection = fresh;
                }
            }
        }
    }
}
