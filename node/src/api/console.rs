//! The console protocol of `GET /ws`: every message both ways, as types. The node and the
//! gateway write with them, and the tests' client and the load generator read with them, so this
//! file is the one place a console message is spelled.
//!
//! JSON text frames, each with its `type`:
//! - client → server, first: `hello` (`token`; `scope`, default the user's bureau; `since`, the
//!   last index the client saw); afterwards any message (e.g. `ping`) proves it is alive.
//! - server → client: `welcome`; then either `snapshot` (the open tasks in scope at `index`,
//!   with per-bureau counts) or the replayed `events` after `since` followed by `resumed`; then
//!   live `events` (`index`, `tasks`, `removed`) in log order; `heartbeat` with the last index
//!   after a few seconds without events; `resync` (then close) when the client fell too far
//!   behind; `error` (then close) for a bad hello or a revoked token.
//!
//! **Invariant:** an `index` is the Raft log index of the entry a message reflects; a console
//! resumes from it on any node or gateway of the group.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A message from a console.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    Hello {
        token: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<u64>,
    },
    Ping,
}

/// A message to a console. `T` is how a task travels: the node writes the `TaskJson` it
/// encoded once per change (`&RawValue`), a client reads `TaskJson` or any JSON value.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage<T> {
    Welcome(Welcome),
    Snapshot(Snapshot<T>),
    Events(Events<T>),
    /// The replay after `since` is complete: `replayed` messages, up to `index`.
    Resumed {
        since: Option<u64>,
        replayed: usize,
        index: u64,
    },
    /// Nothing for this console up to `index`.
    Heartbeat {
        index: u64,
    },
    /// The server cannot continue this connection's stream (it fell too far behind); the console
    /// starts over with a snapshot. The connection closes.
    Resync {
        reason: String,
    },
    /// The hello was refused, or the token revoked; the connection closes.
    Error {
        code: String,
        message: String,
    },
}

/// Who the console is connected as, and who serves it.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Welcome {
    pub user: String,
    pub role: String,
    pub bureau: String,
    pub scope: String,
    pub scope_name: Option<String>,
    /// The node serving the console, when a node does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<u64>,
    /// The gateway serving the console, when a gateway does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
}

/// The open tasks in scope at `index`, newest first and capped, with counts over all of them.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Snapshot<T> {
    pub index: u64,
    pub tasks: Vec<T>,
    /// Open tasks in scope, also those beyond the cap.
    pub open_total: usize,
    /// More open tasks exist than were sent.
    pub truncated: bool,
    /// Per assignee bureau: open tasks and how many of them are overdue.
    pub counts: BTreeMap<String, BureauCounts>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BureauCounts {
    pub open: u64,
    pub overdue: u64,
}

/// What one log entry changed that concerns the console: the tasks as the entry left them, and
/// the ids of tasks that left its view (dispatched elsewhere).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Events<T> {
    pub index: u64,
    pub tasks: Vec<T>,
    pub removed: Vec<u64>,
}

impl Events<()> {
    /// The text of an `events` message from tasks already encoded as JSON: the hot path of
    /// push, which joins each task's JSON (encoded once per change) instead of re-reading it.
    /// The same text as serialising `ServerMessage::Events` (the test below holds it).
    pub fn text_of<'a>(index: u64, tasks: impl IntoIterator<Item = &'a str>, removed: &[u64]) -> String {
        let mut out = format!("{{\"type\":\"events\",\"index\":{index},\"tasks\":[");
        for (n, task) in tasks.into_iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            out.push_str(task);
        }
        out.push_str("],\"removed\":");
        out.push_str(&serde_json::to_string(removed).expect("ids encode"));
        out.push('}');
        out
    }
}

impl<T: Serialize> ServerMessage<T> {
    /// The message as the text of a frame.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).expect("console messages always encode")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;

    #[test]
    fn messages_read_back_as_written() {
        let hello = ClientMessage::Hello { token: "t".into(), scope: Some("440100".into()), since: Some(3) };
        let text = serde_json::to_string(&hello).unwrap();
        assert_eq!(text, r#"{"type":"hello","token":"t","scope":"440100","since":3}"#);
        assert_eq!(serde_json::from_str::<ClientMessage>(&text).unwrap(), hello);
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"hello","token":"t","admin":true}"#).is_err());
        let task = RawValue::from_string(r#"{"id":7}"#.into()).unwrap();
        let events = ServerMessage::Events(Events { index: 9, tasks: vec![&*task], removed: vec![3] });
        let text = events.to_text();
        assert_eq!(text, r#"{"type":"events","index":9,"tasks":[{"id":7}],"removed":[3]}"#);
        assert_eq!(Events::text_of(9, [r#"{"id":7}"#], &[3]), text, "the hot path writes the same message");
        let read: ServerMessage<serde_json::Value> = serde_json::from_str(&text).unwrap();
        assert!(matches!(read, ServerMessage::Events(Events { index: 9, .. })));
    }
}
