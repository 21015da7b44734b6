//! The event hub: turns applied ledger entries into console events, keeps a bounded history
//! for resume, and fans events out to WebSocket connections.
//!
//! An event's sequence number is the Raft log index of the entry that produced it, so a console
//! that reconnects to any node of the group resumes from the last index it saw. Every node runs
//! a hub over its own applied entries: a console on a follower sees an event as soon as that
//! follower applies it.
//!
//! Each event's task JSON is encoded once here and shared by every connection that forwards it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use cluster::ledger::{BureauCode, Task, TimelineAction};
use cluster::raft::state_machine::AppliedEntry;
use cluster::raft::LedgerStore;
use axum::extract::ws::Utf8Bytes;
use tokio::sync::broadcast;

use crate::api::{task_json, time};

/// Entries kept for resume. At the 500 events/s of the console target this is several minutes
/// of history; a console away longer gets a fresh snapshot instead.
pub const HISTORY_ENTRIES_MAX: usize = 100_000;
/// Encoded event bytes kept for resume, whatever the entry count: entries carry batches of
/// tasks of very different sizes, so the memory bound is in bytes.
pub const HISTORY_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Entries a connection may fall behind the hub before it is told to resync and dropped. This
/// is the per-connection send queue; it is shared (one ring for all connections), so a slow
/// connection costs no memory of its own.
pub const CONNECTION_LAG_ENTRIES_MAX: usize = 4_096;

/// One task as changed by an entry, with what scope filtering needs.
#[derive(Debug)]
pub struct TaskEvent {
    pub task_id: u64,
    pub origin: BureauCode,
    pub assignee: Option<BureauCode>,
    /// The assignee before this change, when the change moved the task to another bureau:
    /// consoles of the old assignee must learn that it left them.
    pub previous_assignee: Option<BureauCode>,
    /// The task as `TaskJson`, encoded once.
    pub json: Arc<str>,
}

/// The console events of one applied entry.
#[derive(Debug)]
pub struct EntryEvents {
    pub index: u64,
    pub tasks: Vec<TaskEvent>,
}

impl EntryEvents {
    fn encoded_bytes(&self) -> usize {
        self.tasks.iter().map(|task| task.json.len()).sum()
    }
}

struct History {
    entries: VecDeque<Arc<EntryEvents>>,
    /// Sum of `encoded_bytes` over `entries`.
    bytes: usize,
    /// Every entry with an index above this is in `entries` (or carried no task change).
    floor_index: u64,
}

/// An entry on its way to live connections, with the messages built for it so far: the
/// many connections that watch the same scope share one encoded message. It lives only as
/// long as the live channel holds it (bounded); history keeps the bare events.
pub struct LiveEntry {
    pub events: Arc<EntryEvents>,
    rendered: Mutex<Vec<(WatcherKey, Option<Utf8Bytes>)>>,
}

/// What decides which events a watcher gets: operators see their own bureau's tasks, other
/// roles everything that touches their scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatcherKey {
    pub operator: bool,
    pub bureau: BureauCode,
}

impl LiveEntry {
    /// The message for watchers with `key`, built on first use.
    pub fn message_for(&self, key: WatcherKey, build: impl FnOnce(&EntryEvents) -> Option<String>) -> Option<Utf8Bytes> {
        let mut rendered = self.rendered.lock().expect("the render cache lock is never poisoned");
        if let Some((_, message)) = rendered.iter().find(|(k, _)| *k == key) {
            return message.clone();
        }
        let message = build(&self.events).map(Utf8Bytes::from);
        rendered.push((key, message.clone()));
        message
    }
}

#[derive(Clone)]
pub struct EventHub {
    history: Arc<Mutex<History>>,
    /// Sends are made while holding `history`, so an attach sees history and stream agree.
    live: broadcast::Sender<Arc<LiveEntry>>,
}

/// What a new connection starts from.
pub enum Attachment {
    /// Every event after the requested index, then the live stream.
    Resume { replay: Vec<Arc<EntryEvents>>, live: broadcast::Receiver<Arc<LiveEntry>> },
    /// The requested index is older than the history (or none was given): send a snapshot,
    /// then live events above the snapshot's index.
    Snapshot { live: broadcast::Receiver<Arc<LiveEntry>> },
}

fn previous_assignee(task: &Task) -> Option<BureauCode> {
    let last = task.timeline.last()?;
    if last.action != TimelineAction::Dispatch {
        return None;
    }
    task.timeline.iter().rev().skip(1).find_map(|entry| match entry.action {
        TimelineAction::Dispatch | TimelineAction::Create => entry.assignee_bureau,
        _ => None,
    })
}

impl EventHub {
    /// Starts the hub over `store`. Call before Raft starts applying, so no entry is missed.
    pub fn start(store: &LedgerStore) -> (EventHub, tokio::task::JoinHandle<()>) {
        let applied = store.subscribe_applied();
        let floor_index = store.read().last_applied.map_or(0, |log_id| log_id.index);
        let (live, _) = broadcast::channel(CONNECTION_LAG_ENTRIES_MAX);
        let hub = EventHub { history: Arc::new(Mutex::new(History { entries: VecDeque::new(), bytes: 0, floor_index })), live };
        let task = tokio::spawn(hub.clone().run(applied));
        (hub, task)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, History> {
        self.history.lock().expect("the history lock is never poisoned")
    }

    /// Ends when the store's notice channel closes (the node is shutting down).
    async fn run(self, mut applied: broadcast::Receiver<AppliedEntry>) {
        loop {
            match applied.recv().await {
                Ok(entry) => self.publish(entry),
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    // The hub itself fell behind: history has a hole, so resume from before it
                    // must fall back to a snapshot.
                    tracing::warn!(skipped, "console hub lagged behind the ledger; history reset");
                    let mut history = self.lock();
                    history.entries.clear();
                    history.bytes = 0;
                    history.floor_index = u64::MAX;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    fn publish(&self, entry: AppliedEntry) {
        let now_ms = time::now_ms();
        let tasks: Vec<TaskEvent> = entry
            .results
            .iter()
            .filter_map(|result| result.as_ref().ok())
            .filter(|applied| !applied.replayed)
            .map(|applied| {
                let task = &applied.task;
                let json = serde_json::to_string(&task_json(task, now_ms)).expect("task JSON always encodes");
                TaskEvent {
                    task_id: task.id.0,
                    origin: task.origin_bureau,
                    assignee: task.assignee_bureau,
                    previous_assignee: previous_assignee(task).filter(|p| Some(*p) != task.assignee_bureau),
                    json: json.into(),
                }
            })
            .collect();
        if tasks.is_empty() {
            return;
        }
        let events = Arc::new(EntryEvents { index: entry.index, tasks });
        let mut history = self.lock();
        if history.floor_index == u64::MAX {
            history.floor_index = entry.index - 1;
        }
        history.bytes += events.encoded_bytes();
        history.entries.push_back(events.clone());
        while history.entries.len() > HISTORY_ENTRIES_MAX || history.bytes > HISTORY_BYTES_MAX {
            let dropped = history.entries.pop_front().expect("non-empty");
            history.bytes -= dropped.encoded_bytes();
            history.floor_index = dropped.index;
        }
        // No receivers is normal (no console connected).
        let _ = self.live.send(Arc::new(LiveEntry { events, rendered: Mutex::new(Vec::new()) }));
    }

    /// Attaches a connection that last saw `since` (or nothing).
    pub fn attach(&self, since: Option<u64>) -> Attachment {
        let history = self.lock();
        let live = self.live.subscribe();
        match since {
            Some(since) if since >= history.floor_index && history.floor_index != u64::MAX => {
                let start = history.entries.partition_point(|events| events.index <= since);
                Attachment::Resume { replay: history.entries.range(start..).cloned().collect(), live }
            }
            _ => Attachment::Snapshot { live },
        }
    }

    /// The index of the newest entry published (0 if none yet).
    pub fn latest_index(&self) -> u64 {
        self.lock().entries.back().map_or(0, |events| events.index)
    }
}
