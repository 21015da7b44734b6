//! Checkpoints: the ledger's changes written to the store, on a thread of their own.
//!
//! `apply` only changes memory. When the ledger holds `CHECKPOINT_CHANGES` changed records, or
//! openraft asks for a snapshot, the checkpoint thread seals them under the replica's write lock
//! (between two applies, so the core, the applied index and the changes are one state), writes
//! them to the store in one durable commit, and then tells the ledger, which drops them. Apply
//! goes on meanwhile; only when the changes reach `CHECKPOINT_CHANGES_MAX` does it wait for the
//! checkpoint to take them, so memory stays bounded whatever the write rate.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, RwLock};

use tokio::sync::{oneshot, watch};

use super::durable_snapshot::DurableSnapshot;
use super::state_machine::Replica;
use crate::store::{CheckpointMeta, Store};

/// Changed records that start a checkpoint. At about 1.5 KB a task, the changes of one
/// checkpoint hold about 12 MB.
pub const CHECKPOINT_CHANGES: usize = 8_192;
/// Changed records at which apply waits for the checkpoint in progress to take them: the bound
/// on the ledger's changes in memory (with the sealed ones being written, twice this).
pub const CHECKPOINT_CHANGES_MAX: usize = 4 * CHECKPOINT_CHANGES;

enum Request {
    /// The changes reached `CHECKPOINT_CHANGES`: write them if there still are that many.
    Due,
    /// Make everything applied so far durable (a snapshot build, a backup), answering where
    /// the checkpoint stands.
    Now(oneshot::Sender<io::Result<CheckpointMeta>>),
}

/// The handle the state machine keeps; cloning it shares the one thread.
#[derive(Clone)]
pub struct Checkpoints {
    requests: mpsc::Sender<Request>,
    /// Counts the seals, so that a waiting apply wakes when its changes were taken.
    sealed: watch::Receiver<u64>,
    /// Held while a checkpoint writes; a snapshot install takes it to replace the store.
    pub(super) writing: Arc<Mutex<()>>,
}

/// What the checkpoint thread works on, shared with the state machine.
pub(super) struct Shared {
    pub replica: Arc<RwLock<Replica>>,
    pub store: Arc<RwLock<Store>>,
    pub durable_snapshot: DurableSnapshot,
    /// Bumped when a snapshot install replaces the ledger: a checkpoint sealed before it must
    /// not tell the new ledger that its changes were written.
    pub generation: Arc<AtomicU64>,
    pub failure: Arc<std::sync::OnceLock<String>>,
}

impl Checkpoints {
    pub(super) fn start(shared: Shared) -> io::Result<Checkpoints> {
        let (requests, receiver) = mpsc::channel();
        let (sealed_tx, sealed) = watch::channel(0);
        let writing = Arc::new(Mutex::new(()));
        let thread_writing = writing.clone();
        std::thread::Builder::new().name("checkpoint".into()).spawn(move || {
            super::state_machine::lower_this_thread_priority();
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run(&shared, &receiver, &sealed_tx, &thread_writing);
            }));
            if ran.is_err() {
                // A bug: the replica stops rather than apply without checkpoints; dropping the
                // seal count wakes an apply that waits for one.
                shared.failure.get_or_init(|| "the checkpoint thread panicked".to_owned());
                tracing::error!("the checkpoint thread panicked; the state machine stopped");
            }
        })?;
        Ok(Checkpoints { requests, sealed, writing })
    }

    /// Asks for a checkpoint because the changes reached the trigger.
    pub fn due(&self) {
        let _ = self.requests.send(Request::Due);
    }

    /// Makes everything applied so far durable; answers where the checkpoint stands.
    pub async fn now(&self) -> io::Result<CheckpointMeta> {
        let (answer, answered) = oneshot::channel();
        self.requests.send(Request::Now(answer)).map_err(|_| io::Error::other("the checkpoint thread stopped"))?;
        answered.await.map_err(|_| io::Error::other("the checkpoint thread stopped"))?
    }

    /// The count of seals, for apply's back pressure: mark it seen, check the changes, then
    /// wait for it to change (a seal, or a failure). An error means the thread is gone.
    pub fn seals(&self) -> watch::Receiver<u64> {
        self.sealed.clone()
    }
}

fn run(shared: &Shared, requests: &mpsc::Receiver<Request>, sealed: &watch::Sender<u64>, writing: &Mutex<()>) {
    while let Ok(first) = requests.recv() {
        // Requests that queued meanwhile are answered by the same checkpoint.
        let mut waiting = Vec::new();
        let mut forced = false;
        for request in std::iter::once(first).chain(requests.try_iter()) {
            if let Request::Now(answer) = request {
                waiting.push(answer);
                forced = true;
            }
        }
        let written = checkpoint(shared, forced, sealed, writing);
        for answer in waiting {
            let _ =
                answer.send(written.as_ref().map(Clone::clone).map_err(|e| io::Error::new(e.kind(), e.to_string())));
        }
    }
}

/// One checkpoint; a due one is skipped when a checkpoint since took the changes.
fn checkpoint(
    shared: &Shared,
    forced: bool,
    sealed_count: &watch::Sender<u64>,
    writing: &Mutex<()>,
) -> io::Result<CheckpointMeta> {
    let _writing = writing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(failure) = shared.failure.get() {
        return Err(io::Error::other(failure.clone()));
    }
    let (changes, core, meta, regions, generation) = {
        let mut replica = shared.replica.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Checked again under the lock: an apply that failed left a half-applied entry, which
        // must never be written as applied (apply sets the failure before it lets the lock go).
        if let Some(failure) = shared.failure.get() {
            return Err(io::Error::other(failure.clone()));
        }
        let meta = CheckpointMeta { applied: replica.last_applied, membership: replica.membership.clone() };
        if !forced && replica.ledger.open_changes() < CHECKPOINT_CHANGES {
            return Ok(meta);
        }
        let changes = replica.ledger.seal();
        let core = replica.ledger.encode_core();
        (changes, core, meta, replica.ledger.regions(), shared.generation.load(Ordering::Acquire))
    };
    sealed_count.send_modify(|count| *count += 1);
    let started = std::time::Instant::now();
    let store = shared.store.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    match store.write_checkpoint(&changes, &core, &meta, &regions) {
        Ok(()) => {
            {
                let mut replica = shared.replica.write().unwrap_or_else(std::sync::PoisonError::into_inner);
                if shared.generation.load(Ordering::Acquire) == generation {
                    replica.ledger.checkpoint_written();
                }
            }
            shared.durable_snapshot.record_written(meta.index());
            tracing::debug!(
                index = ?meta.index(),
                records = changes.len(),
                ms = started.elapsed().as_millis() as u64,
                "checkpoint written"
            );
            Ok(meta)
        }
        Err(error) => {
            // The sealed changes can be neither written nor dropped: the replica stops, and
            // health and readiness say why (a full or failed disk needs an operator).
            let failure = format!("writing a checkpoint at {:?} failed: {error}", meta.index());
            tracing::error!(%failure, "the state machine stopped");
            shared.failure.get_or_init(|| failure);
            shared.durable_snapshot.record_failed(&error);
            // An apply waiting for room wakes and sees the failure.
            sealed_count.send_modify(|count| *count += 1);
            Err(error)
        }
    }
}
