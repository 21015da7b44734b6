//! Response metrics for leadership (响应指标): how bureaus respond to what they are given,
//! maintained incrementally as entries apply (`book::Book`), answered by
//! `GET /api/v1/metrics/response` (`routes::response_metrics`).
//!
//! Every node keeps its own book from its own ledger; the facts of a task depend on the task
//! alone (`ledger::response`), so replicas at the same applied index give the same figures. The
//! book starts from the store's tallies at its checkpoint and the changes since, never from a
//! read of every task.

pub mod book;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cluster::raft::state_machine::AppliedEntry;
use cluster::raft::LedgerStore;
use cluster::store::{index, tally, StoreView};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub use book::{Book, Breakdown, Census, Figures, Lateness, Report, Row};

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
    pub fn start(
        store: &LedgerStore,
        shutdown: CancellationToken,
    ) -> std::io::Result<(ResponseMetrics, tokio::task::JoinHandle<()>)> {
        let applied = store.subscribe_applied();
        let (book, rebuilt_at) = rebuild(store)?;
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
        Ok((metrics, task))
    }

    pub fn report(
        &self,
        regions: &ledger::Regions,
        root: ledger::BureauCode,
        from: u32,
        to: u32,
        by: Breakdown,
        now_ms: u64,
    ) -> Report {
        self.catch_up();
        self.inner.lock().expect("not poisoned").book.report(regions, root, from, to, by, now_ms)
    }

    pub fn lateness(
        &self,
        regions: &ledger::Regions,
        root: ledger::BureauCode,
        now_ms: u64,
    ) -> std::collections::BTreeMap<ledger::BureauCode, Lateness> {
        self.catch_up();
        self.inner.lock().expect("not poisoned").book.lateness(regions, root, now_ms)
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
            rebuild_into(&mut inner, &self.store);
        }
        loop {
            match inner.applied.try_recv() {
                // Already in the rebuilt book; taking it again could undo a later state.
                Ok(entry) if entry.index <= inner.rebuilt_at => {}
                Ok(entry) => {
                    let changed = entry.results.iter().filter_map(|r| r.as_ref().ok()).filter(|a| !a.replayed);
                    for applied in changed {
                        debug_assert_eq!(applied.before.len(), applied.tasks.len(), "every change has its before");
                        for (before, after) in applied.before.iter().zip(&applied.tasks) {
                            inner.book.update(before.as_deref(), after);
                        }
                    }
                }
                Err(broadcast::error::TryRecvError::Lagged(_)) => rebuild_into(&mut inner, &self.store),
                Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed) => return,
            }
        }
    }
}

/// Replaces the book by one rebuilt from the store; a store that cannot be read keeps the old
/// book (the state machine stops on the same failure and says why).
fn rebuild_into(inner: &mut Inner, store: &LedgerStore) {
    match rebuild(store) {
        Ok((book, rebuilt_at)) => (inner.book, inner.rebuilt_at) = (book, rebuilt_at),
        Err(error) => tracing::error!(%error, "the response metrics could not be rebuilt from the store"),
    }
}

/// The book of the ledger as it stands, and the applied index it reflects: the store's tallies
/// and open tasks at its checkpoint, then every task changed since (its stored version out, its
/// current one in). Costs the open work and the changes since the checkpoint, not the history.
fn rebuild(store: &LedgerStore) -> std::io::Result<(Book, u64)> {
    // Under the replica's lock the ledger's changes stay put; a checkpoint committed meanwhile
    // holds versions the changes also hold, and taking a version out and in again changes
    // nothing.
    let replica = store.read();
    let view = store.store_view()?;
    Ok((book_from_store(&replica.ledger, &view)?, replica.last_applied.map_or(0, |log_id| log_id.index)))
}

/// The book of `ledger`, whose records as of its last checkpoint are in `view`.
pub fn book_from_store(ledger: &ledger::Ledger, view: &StoreView) -> std::io::Result<Book> {
    let mut book = Book::from_tallies(tally::tallies(view)?, tally::census(view)?);
    for id in index::open(view)? {
        if let Some(task) = cluster::store::task_in(view, id?)? {
            book.add_open(&task);
        }
    }
    for task in ledger.changed_tasks() {
        let stored = cluster::store::task_in(view, task.id)?;
        book.update(stored.as_ref(), task);
    }
    Ok(book)
}

#[cfg(test)]
mod tests;
