//! The event hub: turns applied ledger entries into console events, keeps a bounded history
//! for resume, and fans each event out only to the connections it concerns.
//!
//! An event's sequence number is the Raft log index of the entry that produced it, so a console
//! that reconnects to any node of the group resumes from the last index it saw. Every node runs
//! a hub over its own applied entries: a console on a follower sees an event as soon as that
//! follower applies it.
//!
//! Connections are grouped by `WatchKey` (what they are allowed to see). For each entry the hub
//! builds at most one message per key, and hands it to that key's connections through each
//! one's bounded queue; connections the entry does not concern are not even woken. A connection
//! whose queue is full is cut off and told to resync: it can never make the hub wait or grow.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::ws::Utf8Bytes;
use cluster::raft::state_machine::AppliedEntry;
use cluster::raft::LedgerStore;
use ledger::{BureauCode, Regions, Task, TimelineAction};
use tokio::sync::{broadcast, mpsc, watch};

use crate::api::console::Events;
use crate::api::task_json;

/// Entries kept for resume. At the 500 events/s of the console target this is several minutes
/// of history; a console away longer gets a fresh snapshot instead.
pub const HISTORY_ENTRIES_MAX: usize = 100_000;
/// Bytes of history kept for resume (tasks and their JSON, estimated), whatever the entry
/// count: entries carry batches of tasks of very different sizes, so the bound is in bytes.
pub const HISTORY_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Messages queued for one connection at most. A console this far behind is cut off and
/// resynchronises from a snapshot; the messages themselves are shared between connections.
pub const CONNECTION_QUEUE_DEPTH_MAX: usize = 1_024;

/// One task as changed by an entry, with what scope filtering needs.
#[derive(Debug)]
pub struct TaskEvent {
    pub task_id: u64,
    pub origin: BureauCode,
    pub assignee: Option<BureauCode>,
    /// The assignee before this change, when the change moved the task to another bureau:
    /// consoles of the old assignee must learn that it left them.
    pub previous_assignee: Option<BureauCode>,
    /// Bureaus the task was escalated to: their command centres watch it too.
    pub escalated_to: Vec<BureauCode>,
    /// The station the assignee county handed the task down to: its operators watch it too.
    pub handling_unit: Option<BureauCode>,
    /// The people the task names (lead, supporting, drawn team): their consoles watch it.
    pub people: Vec<u64>,
    /// The region table that says who sees the event and names its bureaus: the group's, on a
    /// node; on a gateway (which holds none) the compiled one.
    regions: Arc<Regions>,
    /// The task as this entry left it (shared with the ledger until the ledger changes it);
    /// absent for an event that arrived already encoded (a gateway's, from Redis).
    task: Option<Arc<Task>>,
    /// The task as `TaskJson`, encoded once, on first use: a node without consoles or export
    /// readers never spends the encoding (a large share of a busy follower's work).
    json: OnceLock<Arc<str>>,
    /// What this event counts against the history's byte bound: the task it holds and its
    /// JSON once encoded, estimated up front.
    retained_bytes: usize,
}

impl TaskEvent {
    /// The task as `TaskJson`, encoded on first use.
    pub fn json(&self) -> &str {
        self.json.get_or_init(|| {
            let task = self.task.as_ref().expect("an event without its task arrived encoded");
            serde_json::to_string(&task_json(&self.regions, task)).expect("task JSON always encodes").into()
        })
    }

    /// An event that arrives already encoded (`TaskJson`), with the fields scope filtering needs.
    pub fn encoded(json: Arc<str>, scope: EncodedScope) -> TaskEvent {
        let retained_bytes = json.len();
        let EncodedScope { task_id, origin, assignee, previous_assignee, escalated_to, handling_unit, people } = scope;
        TaskEvent {
            task_id,
            origin,
            assignee,
            previous_assignee,
            escalated_to,
            handling_unit,
            people,
            regions: Regions::compiled_shared().clone(),
            task: None,
            json: OnceLock::from(json),
            retained_bytes,
        }
    }
}

/// The fields of an encoded event that say who sees it (`TaskEvent`'s of the same names).
pub struct EncodedScope {
    pub task_id: u64,
    pub origin: BureauCode,
    pub assignee: Option<BureauCode>,
    pub previous_assignee: Option<BureauCode>,
    pub escalated_to: Vec<BureauCode>,
    pub handling_unit: Option<BureauCode>,
    pub people: Vec<u64>,
}

/// Roughly the encoded size of a task: fixed fields plus its texts and timeline.
fn estimated_json_bytes(task: &Task) -> usize {
    const FIXED_FIELDS_BYTES: usize = 900;
    const TIMELINE_ENTRY_BYTES: usize = 220;
    FIXED_FIELDS_BYTES
        + task.title.len()
        + task.description.len()
        + task.subject.name.len()
        + task.subject.address.len()
        + task.timeline.iter().map(|entry| TIMELINE_ENTRY_BYTES + entry.note.len()).sum::<usize>()
}

/// The console events of one applied entry.
#[derive(Debug)]
pub struct EntryEvents {
    pub index: u64,
    pub tasks: Vec<TaskEvent>,
    /// When the hub took the entry in (for the fan-out's publish lag).
    pub at: std::time::Instant,
}

impl EntryEvents {
    fn retained_bytes(&self) -> usize {
        self.tasks.iter().map(|task| task.retained_bytes).sum()
    }
}

/// What decides which events a connection gets: an operator sees the tasks its own unit works
/// (assigned or handed down to it, and a county its stations'; `ledger::access::can_see`);
/// command and leadership users see every task whose origin or assignee lies in the scope they
/// watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum WatchKey {
    AssignedTo(BureauCode),
    /// A person of an operating unit: the unit's tasks and those naming them (a drawn team's
    /// inspection of the county, for a station's inspector).
    Member(BureauCode, u64),
    Touching(BureauCode),
    /// Only the tasks naming a person: another department's inspector's joint inspections.
    Named(u64),
}

impl WatchKey {
    pub fn sees(
        self,
        regions: &Regions,
        origin: BureauCode,
        assignee: Option<BureauCode>,
        handling_unit: Option<BureauCode>,
        escalated_to: &[BureauCode],
        people: &[u64],
    ) -> bool {
        let unit_sees = |bureau: BureauCode| {
            [assignee, handling_unit]
                .into_iter()
                .flatten()
                .any(|unit| unit == bureau || unit.county_of_station() == Some(bureau))
        };
        match self {
            WatchKey::AssignedTo(bureau) => unit_sees(bureau),
            WatchKey::Member(bureau, person) => unit_sees(bureau) || people.contains(&person),
            WatchKey::Named(person) => people.contains(&person),
            WatchKey::Touching(scope) => {
                regions.is_within(origin, scope)
                    || assignee.is_some_and(|a| regions.is_within(a, scope))
                    || escalated_to.iter().any(|b| regions.is_within(*b, scope))
            }
        }
    }

    /// The `events` message of one entry for this key, or `None` when nothing in it concerns
    /// the key. Tasks that left the key's view (re-dispatched elsewhere) are listed as removed.
    pub fn message(self, events: &EntryEvents) -> Option<String> {
        let mut shown = Vec::new();
        let mut removed = Vec::new();
        for event in &events.tasks {
            let sees = |assignee, unit| {
                self.sees(&event.regions, event.origin, assignee, unit, &event.escalated_to, &event.people)
            };
            if sees(event.assignee, event.handling_unit) {
                shown.push(event.json());
            } else if event.previous_assignee.is_some_and(|previous| sees(Some(previous), None)) {
                removed.push(event.task_id);
            }
        }
        if shown.is_empty() && removed.is_empty() {
            return None;
        }
        Some(Events::text_of(events.index, shown, &removed))
    }
}

/// Empties the history (its floor set to `floor`, or unknown with `u64::MAX` until the next
/// entry) and closes every live queue with the flag that tells its connection to resync.
fn forget_history(state: &mut HubState, floor: u64) {
    state.history.clear();
    state.history_bytes = 0;
    state.floor_index = floor;
    for subscriber in std::mem::take(&mut state.subscribers).into_values().flatten() {
        subscriber.overflowed.store(true, Ordering::Relaxed);
    }
}

/// How often the hub drops the queues of connections that ended, for keys no entry has
/// concerned since (a key's queues are also cleaned whenever it is sent a message).
const CLOSED_SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

fn sweep_closed(state: &mut HubState) {
    state.subscribers.retain(|_, subscribers| {
        subscribers.retain(|s| !s.queue.is_closed());
        !subscribers.is_empty()
    });
    state.swept_at = std::time::Instant::now();
}

/// A message for live connections, shared by all connections of one key.
#[derive(Debug)]
pub struct LiveMessage {
    pub index: u64,
    pub text: Utf8Bytes,
    /// When the hub built it from the applied entry: the start of push latency.
    pub published: std::time::Instant,
}

/// The receiving end a connection reads its live messages from.
pub struct Subscription {
    pub messages: mpsc::Receiver<Arc<LiveMessage>>,
    /// Set by the hub when it cut this connection off for falling behind.
    pub overflowed: Arc<AtomicBool>,
}

struct Subscriber {
    queue: mpsc::Sender<Arc<LiveMessage>>,
    overflowed: Arc<AtomicBool>,
}

struct HubState {
    history: VecDeque<Arc<EntryEvents>>,
    /// Sum of `retained_bytes` over `history`.
    history_bytes: usize,
    /// Every entry with an index above this is in `history` (or carried no task change).
    floor_index: u64,
    /// The newest entry published.
    latest_index: u64,
    /// Snapshots installed from the leader that the history has accounted for.
    snapshots_seen: u64,
    /// Told `latest_index` whenever it moves, for readers that follow the history.
    latest_watch: watch::Sender<u64>,
    subscribers: BTreeMap<WatchKey, Vec<Subscriber>>,
    /// When `sweep_closed` last ran.
    swept_at: std::time::Instant,
}

#[derive(Clone)]
pub struct EventHub {
    /// Publishing and attaching both happen under this lock, so a new connection sees history
    /// and live queue agree: every entry is in exactly one of them.
    state: Arc<Mutex<HubState>>,
    /// Read for its installed-snapshot counter only (atomics: no ledger lock under the hub's);
    /// absent in a gateway, whose hub is fed from Redis.
    store: Option<LedgerStore>,
}

/// What a new connection starts from.
pub enum Attachment {
    /// Every event after the requested index (to be filtered by key), then the live queue.
    Resume { replay: Vec<Arc<EntryEvents>>, subscription: Subscription },
    /// The requested index is older than the history (or none was given): send a snapshot,
    /// then live messages above the snapshot's index.
    Snapshot { subscription: Subscription },
}

/// The people a task names: whose consoles watch it beside their unit's.
pub fn people_named(task: &Task) -> Vec<u64> {
    let handlers = &task.field_work.handlers;
    handlers.lead.iter().chain(&handlers.supporting).chain(&handlers.team).map(|person| person.id.0).collect()
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
        let hub = EventHub::with_floor(floor_index, Some(store.clone()));
        let task = tokio::spawn(hub.clone().run(applied));
        (hub, task)
    }

    /// A hub fed by `publish_encoded` (a gateway's). Its history starts with the first entry.
    pub fn detached() -> EventHub {
        EventHub::with_floor(u64::MAX, None)
    }

    fn with_floor(floor_index: u64, store: Option<LedgerStore>) -> EventHub {
        let latest = if floor_index == u64::MAX { 0 } else { floor_index };
        let state = HubState {
            history: VecDeque::new(),
            history_bytes: 0,
            floor_index,
            latest_index: latest,
            snapshots_seen: store.as_ref().map_or(0, |store| store.installed_snapshot().0),
            latest_watch: watch::Sender::new(latest),
            subscribers: BTreeMap::new(),
            swept_at: std::time::Instant::now(),
        };
        EventHub { state: Arc::new(Mutex::new(state)), store }
    }

    /// Forgets the history and sends every connection to resynchronise: what follows is not
    /// known to continue what came before (the hub fell behind, or its feed broke).
    pub fn reset(&self) {
        let mut state = self.lock();
        forget_history(&mut state, u64::MAX);
    }

    /// The hub's state, first made to account for any snapshot installed from the leader since
    /// the last look: an install replaces the ledger without applied notices, so the entries it
    /// covers are not in the history and never reached the live queues. The history then starts
    /// above the snapshot, and every connection resynchronises from a snapshot of its own.
    /// (Found while building the Redis fan-out: a follower that had taken a snapshot answered a
    /// resume from before it with a replay that skipped the snapshot's entries.)
    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        let mut state = self.state.lock().expect("the hub lock is never poisoned");
        if let Some(store) = &self.store {
            let (installed, index) = store.installed_snapshot();
            if installed != state.snapshots_seen {
                state.snapshots_seen = installed;
                forget_history(&mut state, index);
                state.latest_index = state.latest_index.max(index);
            }
        }
        state
    }

    /// Ends when the store's notice channel closes.
    async fn run(self, mut applied: broadcast::Receiver<AppliedEntry>) {
        loop {
            match applied.recv().await {
                Ok(entry) => {
                    let regions = match &self.store {
                        // Not the replica's lock: the hub never holds up apply.
                        Some(store) => store.reference_now().regions,
                        None => Regions::compiled_shared().clone(),
                    };
                    self.publish(entry, &regions)
                }
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    // The hub itself fell behind: history has a hole and live queues missed
                    // entries, so every connection must start over from a snapshot.
                    tracing::warn!(skipped, "console hub lagged behind the ledger; consoles resync");
                    self.reset();
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    fn publish(&self, entry: AppliedEntry, regions: &Arc<Regions>) {
        let tasks: Vec<TaskEvent> = entry
            .results
            .iter()
            .filter_map(|result| result.as_ref().ok())
            .filter(|applied| !applied.replayed)
            .flat_map(|applied| &applied.tasks)
            .map(|task| TaskEvent {
                task_id: task.id.0,
                origin: task.origin_bureau,
                assignee: task.handling.assignee_bureau,
                previous_assignee: previous_assignee(task).filter(|p| Some(*p) != task.handling.assignee_bureau),
                escalated_to: task.handling.escalated_to.clone(),
                handling_unit: task.field_work.handlers.unit,
                people: people_named(task),
                regions: regions.clone(),
                retained_bytes: 2 * estimated_json_bytes(task),
                task: Some(task.clone()),
                json: OnceLock::new(),
            })
            .collect();
        self.publish_events(entry.index, entry.index - 1, tasks);
    }

    /// Tells a hub whose history is unknown (a gateway's, at start or after a reset) that its
    /// feed has nothing after `index` yet: from here on it holds every entry, so consoles can
    /// resume from `index` on.
    pub fn holds_everything_after(&self, index: u64) {
        let mut state = self.lock();
        if state.floor_index == u64::MAX {
            state.floor_index = index;
            state.latest_index = state.latest_index.max(index);
        }
    }

    /// Publishes an entry whose events arrived encoded (a gateway's, read from Redis);
    /// `held_after` as for `publish_events`.
    pub fn publish_encoded(&self, index: u64, held_after: u64, tasks: Vec<TaskEvent>) {
        self.publish_events(index, held_after, tasks);
    }

    /// `held_after`: when the history is empty after a reset, every entry after this index
    /// and before `index` is known to have changed no task.
    fn publish_events(&self, index: u64, held_after: u64, tasks: Vec<TaskEvent>) {
        let mut state = self.lock();
        state.latest_index = state.latest_index.max(index);
        let latest = state.latest_index;
        state.latest_watch.send_if_modified(|seen| std::mem::replace(seen, latest) != latest);
        if tasks.is_empty() {
            return;
        }
        let events = Arc::new(EntryEvents { index, tasks, at: std::time::Instant::now() });
        if state.floor_index == u64::MAX {
            state.floor_index = held_after;
        }
        if index <= state.floor_index {
            // A notice queued before a snapshot install that covers it: the snapshot has it.
            return;
        }
        state.history_bytes += events.retained_bytes();
        state.history.push_back(events.clone());
        while state.history.len() > HISTORY_ENTRIES_MAX || state.history_bytes > HISTORY_BYTES_MAX {
            let dropped = state.history.pop_front().expect("non-empty");
            state.history_bytes -= dropped.retained_bytes();
            state.floor_index = dropped.index;
        }
        if state.swept_at.elapsed() >= CLOSED_SWEEP_INTERVAL {
            sweep_closed(&mut state);
        }
        state.subscribers.retain(|key, subscribers| {
            // A closed queue is noticed by the send below; keys this entry does not concern
            // are left to the periodic sweep (checking every queue of every entry was a
            // twentieth of a busy gateway's time).
            let Some(text) = key.message(&events) else { return true };
            let message = Arc::new(LiveMessage {
                index: events.index,
                text: Utf8Bytes::from(text),
                published: std::time::Instant::now(),
            });
            subscribers.retain(|subscriber| match subscriber.queue.try_send(message.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    // Dropping the sender closes the queue; the flag tells the connection why.
                    subscriber.overflowed.store(true, Ordering::Relaxed);
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
            !subscribers.is_empty()
        });
    }

    /// Attaches a connection watching `key` that last saw `since` (or nothing).
    pub fn attach(&self, key: WatchKey, since: Option<u64>) -> Attachment {
        let mut state = self.lock();
        let (queue, messages) = mpsc::channel(CONNECTION_QUEUE_DEPTH_MAX);
        let overflowed = Arc::new(AtomicBool::new(false));
        state.subscribers.entry(key).or_default().push(Subscriber { queue, overflowed: overflowed.clone() });
        let subscription = Subscription { messages, overflowed };
        match since {
            Some(since) if since >= state.floor_index && state.floor_index != u64::MAX => {
                let start = state.history.partition_point(|events| events.index <= since);
                Attachment::Resume { replay: state.history.range(start..).cloned().collect(), subscription }
            }
            _ => Attachment::Snapshot { subscription },
        }
    }

    /// The entries after `since`, at most `limit`, for the export feed, and the index to resume
    /// from next time. `None` when `since` is older than this node's history: the consumer has
    /// to take a fresh baseline.
    pub fn entries_since(&self, since: u64, limit: usize) -> Option<(Vec<Arc<EntryEvents>>, u64)> {
        let state = self.lock();
        if state.floor_index == u64::MAX || since < state.floor_index {
            return None;
        }
        let start = state.history.partition_point(|events| events.index <= since);
        let entries: Vec<Arc<EntryEvents>> = state.history.range(start..).take(limit).cloned().collect();
        let next = match entries.last() {
            Some(last) if entries.len() == limit => last.index,
            // Everything up to the newest published entry was handed out.
            _ => state.latest_index.max(since),
        };
        Some((entries, next))
    }

    /// Changes whenever a newer entry is published (for readers that follow the history, such
    /// as the Redis fan-out).
    pub fn watch_latest(&self) -> watch::Receiver<u64> {
        self.lock().latest_watch.subscribe()
    }

    /// The index above which every entry with task events is in the history; `None` while the
    /// history is being rebuilt after the hub fell behind.
    pub fn history_floor(&self) -> Option<u64> {
        let floor = self.lock().floor_index;
        (floor != u64::MAX).then_some(floor)
    }

    /// The newest published index, when nothing is waiting in `subscription`: then every
    /// message for this connection up to that index has been taken, and a console may resume
    /// from it. `None` while messages are pending.
    pub fn settled_index(&self, subscription: &Subscription) -> Option<u64> {
        let state = self.lock();
        subscription.messages.is_empty().then_some(state.latest_index)
    }
}
