//! Response metrics for leadership (响应指标): how bureaus respond to what they are given,
//! maintained incrementally as entries apply (`book::Book`), answered by
//! `GET /api/v1/metrics/response` (`routes::response_metrics`).
//!
//! Every node keeps its own book from its own ledger; the facts of a task depend on the task
//! alone, so replicas at the same applied index give the same figures.

pub mod book;
pub mod facts;

use std::sync::{Arc, Mutex};

use cluster::raft::LedgerStore;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub use book::{Book, Breakdown, Figures, Report, Row};

/// The live book of one node.
#[derive(Clone)]
pub struct ResponseMetrics {
    book: Arc<Mutex<Book>>,
}

impl ResponseMetrics {
    /// Subscribes to the store (before Raft starts applying) and builds the book from the
    /// ledger as it stands; returns the follower task.
    pub fn start(store: &LedgerStore, shutdown: CancellationToken) -> (ResponseMetrics, tokio::task::JoinHandle<()>) {
        let applied = store.subscribe_applied();
        let metrics = ResponseMetrics { book: Arc::new(Mutex::new(rebuild(store))) };
        let task = tokio::spawn(metrics.clone().follow(store.clone(), applied, shutdown));
        (metrics, task)
    }

    pub fn report(&self, root: cluster::ledger::BureauCode, from: u32, to: u32, by: Breakdown, now_ms: u64) -> Report {
        self.book.lock().expect("not poisoned").report(root, from, to, by, now_ms)
    }

    async fn follow(
        self,
        store: LedgerStore,
        mut applied: broadcast::Receiver<cluster::raft::state_machine::AppliedEntry>,
        shutdown: CancellationToken,
    ) {
        let mut snapshots_seen = store.snapshots_installed();
        loop {
            let received = tokio::select! {
                received = applied.recv() => received,
                () = shutdown.cancelled() => return,
            };
            // A snapshot installed from the leader replaces the ledger without per-task
            // results: the book is rebuilt from it, as after falling behind.
            let snapshots = store.snapshots_installed();
            match received {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) if snapshots != snapshots_seen => {
                    snapshots_seen = snapshots;
                    *self.book.lock().expect("not poisoned") = rebuild(&store);
                }
                Ok(entry) => {
                    let mut book = self.book.lock().expect("not poisoned");
                    for applied in entry.results.iter().filter_map(|r| r.as_ref().ok()).filter(|a| !a.replayed) {
                        book.update(&applied.task);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    *self.book.lock().expect("not poisoned") = rebuild(&store);
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

fn rebuild(store: &LedgerStore) -> Book {
    let replica = store.read();
    let mut book = Book::new();
    for task in replica.ledger.tasks_newest_first(None) {
        book.update(task);
    }
    book
}

#[cfg(test)]
mod tests;
