//! Response metrics for leadership (响应指标): how bureaus respond to what they are given,
//! maintained incrementally as entries apply (`book::Book`), answered by
//! `GET /api/v1/metrics/response` (`routes::response_metrics`).
//!
//! Every node keeps its own book from its own ledger; the facts of a task depend on the task
//! alone, so replicas at the same applied index give the same figures.

pub mod book;
pub mod facts;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cluster::raft::state_machine::AppliedEntry;
use cluster::raft::LedgerStore;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub use book::{Book, Breakdown, Census, Figures, Report, Row};

/// How often the book takes in the entries applied meanwhile. The book does not wake for
/// every entry (that measurably slowed single-writer workloads): it drains the queued entries
/// on this tick and before answering a query, so answers are always current.
const CATCH_UP_EVERY: Duration = Duration::from_millis(250);

struct Inner {
    book: Book,
    applied: broadcast::Receiver<AppliedEntry>,
    snapshots_seen: u64,
    /// The applied index the book was last rebuilt at: queued entries up to it are in it.
    rebuilt_at: u64,
}

/// The live book of one node.
#[derive(Clone)]
pub struct ResponseMetrics {
    inner: Arc<Mutex<Inner>>,
    store: LedgerStore,
}

impl ResponseMetrics {
    /// Subscribes to the store (before Raft starts applying) and builds the book from the
    /// ledger as it stands; returns the catch-up task.
    pub fn start(store: &LedgerStore, shutdown: CancellationToken) -> (ResponseMetrics, tokio::task::JoinHandle<()>) {
        let applied = store.subscribe_applied();
        let (book, rebuilt_at) = rebuild(store);
        let inner = Inner { book, applied, snapshots_seen: store.snapshots_installed(), rebuilt_at };
        let metrics = ResponseMetrics { inner: Arc::new(Mutex::new(inner)), store: store.clone() };
        let ticker = metrics.clone();
        let task = tokio::spawn(async move {
            let mut every = tokio::time::interval(CATCH_UP_EVERY);
            loop {
                tokio::select! {
                    _ = every.tick() => ticker.catch_up(),
                    () = shutdown.cancelled() => return,
                }
            }
        });
        (metrics, task)
    }

    pub fn report(&self, root: ledger::BureauCode, from: u32, to: u32, by: Breakdown, now_ms: u64) -> Report {
        self.catch_up();
        self.inner.lock().expect("not poisoned").book.report(root, from, to, by, now_ms)
    }

    pub fn census(&self, now_ms: u64) -> Census {
        self.catch_up();
        self.inner.lock().expect("not poisoned").book.census(now_ms)
    }

    /// Takes in every entry applied since the last call.
    fn catch_up(&self) {
        let mut inner = self.inner.lock().expect("not poisoned");
        // A snapshot installed from the leader replaces the ledger without per-task results:
        // rebuild from it, as after falling behind.
        let snapshots = self.store.snapshots_installed();
        if snapshots != inner.snapshots_seen {
            inner.snapshots_seen = snapshots;
            (inner.book, inner.rebuilt_at) = rebuild(&self.store);
        }
        loop {
            match inner.applied.try_recv() {
                // Already in the rebuilt book; taking it again could undo a later state.
                Ok(entry) if entry.index <= inner.rebuilt_at => {}
                Ok(entry) => {
                    let changed = entry.results.iter().filter_map(|r| r.as_ref().ok()).filter(|a| !a.replayed);
                    for task in changed.flat_map(|a| &a.tasks) {
                        inner.book.update(task);
                    }
                }
                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                    (inner.book, inner.rebuilt_at) = rebuild(&self.store);
                }
                Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed) => return,
            }
        }
    }
}

/// The book of the ledger as it stands, and the applied index it reflects.
fn rebuild(store: &LedgerStore) -> (Book, u64) {
    let replica = store.read();
    let mut book = Book::new();
    for task in replica.ledger.tasks_newest_first(None) {
        book.update(&task);
    }
    (book, replica.last_applied.map_or(0, |log_id| log_id.index))
}

#[cfg(test)]
mod tests;
