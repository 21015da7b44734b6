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

use std::time::Duration;

use cluster::ledger::BureauCode;
use redis::aio::MultiplexedConnection;
use tokio::sync::Mutex;

use crate::api::time;

/// A console counts as online this long after its last heartbeat (the console heartbeat is
/// every 5 s; missing a few is still online).
pub const PRESENCE_TTL: Duration = Duration::from_secs(30);
const REDIS_CALL_TIMEOUT: Duration = Duration::from_secs(2);

pub fn presence_key(bureau: BureauCode) -> String {
    format!("xietong:presence:{bureau}")
}

pub struct Presence {
    client: redis::Client,
    /// Connected on first use and again after a failure.
    connection: Mutex<Option<MultiplexedConnection>>,
}

impl Presence {
    pub fn new(url: &str) -> Result<Presence, String> {
        let client = redis::Client::open(url).map_err(|e| format!("presence Redis {url}: {e}"))?;
        Ok(Presence { client, connection: Mutex::new(None) })
    }

    async fn run<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> Result<T, String> {
        let mut slot = self.connection.lock().await;
        if slot.is_none() {
            let connected =
                crate::fanout::connect(&self.client, REDIS_CALL_TIMEOUT).await.map_err(|e| e.to_string())?;
            *slot = Some(connected);
        }
        let connection = slot.as_mut().expect("connected above");
        let result = tokio::time::timeout(REDIS_CALL_TIMEOUT, command.query_async::<T>(connection))
            .await
            .map_err(|_| "Redis did not answer in time".to_owned())
            .and_then(|r| r.map_err(|e| e.to_string()));
        if result.is_err() {
            *slot = None;
        }
        result
    }

    /// Marks `user` of `bureau` online for `PRESENCE_TTL` from now (and sweeps expired entries).
    pub async fn refresh(&self, bureau: BureauCode, user: &str) {
        let now = time::now_ms();
        let until = now + PRESENCE_TTL.as_millis() as u64;
        let key = presence_key(bureau);
        let mut add = redis::cmd("ZADD");
        add.arg(&key).arg(until).arg(user);
        let mut sweep = redis::cmd("ZREMRANGEBYSCORE");
        sweep.arg(&key).arg("-inf").arg(now);
        for command in [add, sweep] {
            if let Err(error) = self.run::<i64>(&command).await {
                tracing::debug!(%error, "recording presence failed");
            }
        }
    }

    /// The connection of `user` ended. (Another connection of the same user refreshes it again
    /// within a heartbeat.)
    pub async fn leave(&self, bureau: BureauCode, user: &str) {
        let mut remove = redis::cmd("ZREM");
        remove.arg(presence_key(bureau)).arg(user);
        if let Err(error) = self.run::<i64>(&remove).await {
            tracing::debug!(%error, "clearing presence failed");
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
