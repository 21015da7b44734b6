//! Console fan-out through Redis (`[fanout]` in the node config): the group's leader publishes
//! every applied console event to a Redis Stream, from which `xietong gateway` processes can
//! serve consoles without loading the Raft nodes. Without `[fanout]` nothing here runs.
//!
//! The stream (`stream_key`) has one entry per log index that changed tasks, with the index as
//! the entry id (`{index}-0`), so Redis itself refuses a second entry for an index: whichever
//! node publishes an index first (a new leader, or a deposed one that has not noticed yet) wins,
//! and both would publish the same tasks, read from the same log. Fields:
//! - `prev`: the index of the entry before this one in the stream (0 for the first). A reader
//!   whose last index differs has missed entries (the stream was trimmed past it, or Redis lost
//!   it) and resynchronises its consoles.
//! - `gap`: present when the publisher could not publish some entries between `prev` and this
//!   one (its node no longer held them); readers resynchronise too.
//! - `tasks`: a JSON array of `{"previous_assignee": code or null, "task": TaskJson}`, what a
//!   reader needs to filter by scope as the node does (`push::hub::WatchKey`).

pub mod publisher;

/// The Redis Stream of one group's console events.
pub fn stream_key(group: &str) -> String {
    format!("xietong:{group}:events")
}

/// The mark of the group's accounts: the leader sets it anew whenever an account changes (made,
/// disabled, a password reset, a sign-out), so gateways forget the sessions they had checked
/// (`gateway::sessions`). Its value means nothing but "changed" when it differs.
pub fn accounts_key(group: &str) -> String {
    format!("xietong:{group}:accounts")
}

pub const FIELD_PREV: &str = "prev";
pub const FIELD_GAP: &str = "gap";
pub const FIELD_TASKS: &str = "tasks";
/// The publisher's wall clock (Unix ms) when it sent the entry: readers measure the stream's
/// lag with it (on one machine, or with synchronised clocks); absent in older entries.
pub const FIELD_AT: &str = "at";

/// Connects to Redis with `answer_timeout` as the client's limit on each answer (its default,
/// 500 ms, is shorter than a blocking stream read and than a large pipelined batch on a busy
/// machine; exceeding it drops the connection). Connecting itself is bounded by the same time.
pub async fn connect(
    client: &redis::Client,
    answer_timeout: std::time::Duration,
) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    let settings = redis::AsyncConnectionConfig::new()
        .set_response_timeout(Some(answer_timeout))
        .set_connection_timeout(Some(answer_timeout));
    client.get_multiplexed_async_connection_with_config(&settings).await
}

/// The stream entry id of a log index.
pub fn entry_id(index: u64) -> String {
    format!("{index}-0")
}

/// The log index of a stream entry id (`{index}-{seq}`).
pub fn index_of(entry_id: &str) -> Option<u64> {
    entry_id.split_once('-').and_then(|(index, _)| index.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_ids_carry_the_log_index() {
        assert_eq!(entry_id(42), "42-0");
        assert_eq!(index_of("42-0"), Some(42));
        assert_eq!(index_of("x-0"), None);
        assert_eq!(stream_key("440000"), "xietong:440000:events");
    }
}
