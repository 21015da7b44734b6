//! `RaftLogStorage` over the WAL: entries live in memory for reads and in the WAL for
//! durability. An append is readable as soon as `append` returns and reported flushed only
//! after the IO thread's fdatasync.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader, StorageIOError};

use super::durable_snapshot::DurableSnapshot;
use super::wal::{self, Done, Record, WalWriter};
use super::{Entry, LogId, StorageError, TypeConfig, Vote};

/// The in-memory view of the unpurged log, shared by the store and its readers.
#[derive(Default)]
struct LogView {
    entries: BTreeMap<u64, Entry>,
    vote: Option<Vote>,
    committed: Option<LogId>,
    last_purged: Option<LogId>,
}

#[derive(Clone)]
pub struct LogStore {
    /// A std mutex: it is never held across an await, only for map operations.
    view: Arc<Mutex<LogView>>,
    writer: WalWriter,
    /// A purge waits until a snapshot on disk covers it (see `durable_snapshot`).
    durable_snapshot: DurableSnapshot,
}

fn io_error(subject: ErrorSubject<u64>, verb: ErrorVerb, error: io::Error) -> StorageError {
    StorageIOError::new(subject, verb, openraft::AnyError::new(&error)).into()
}

impl LogStore {
    /// Opens the log in `dir`, recovering whatever a previous run made durable. `durable_snapshot`
    /// comes from the state machine whose snapshots cover what this log purges.
    pub fn open(dir: &Path, durable_snapshot: DurableSnapshot) -> io::Result<LogStore> {
        let (writer, recovered) = wal::open(dir)?;
        let view = LogView {
            entries: recovered.entries,
            vote: recovered.vote,
            committed: recovered.committed,
            last_purged: recovered.purged,
        };
        if let (Some(first), Some(purged)) = (view.entries.keys().next(), view.last_purged) {
            assert!(*first > purged.index, "no entry at or below the purge point survives recovery");
        }
        Ok(LogStore { view: Arc::new(Mutex::new(view)), writer, durable_snapshot })
    }

    /// The last commit point openraft reported to this store (for the cluster view).
    pub fn committed_index(&self) -> Option<u64> {
        self.view().committed.map(|log_id| log_id.index)
    }

    fn view(&self) -> std::sync::MutexGuard<'_, LogView> {
        self.view.lock().expect("the log view lock is never poisoned: no code panics while holding it")
    }

    /// Makes `entries` readable at once and queues them for the WAL; `done` is told after the
    /// fdatasync that makes them durable.
    pub(crate) fn append_entries(&self, entries: Vec<Entry>, done: Done) -> Result<(), StorageError> {
        let Some(last) = entries.last().map(|entry| entry.log_id.index) else {
            if let Done::Flushed(callback) = done {
                callback.log_io_completed(Ok(()));
            }
            return Ok(());
        };
        let record = Record::Entries(entries);
        let frame = wal::encode(&record).map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Write, e))?;
        let Record::Entries(entries) = record else { unreachable!("built above") };
        {
            let mut view = self.view();
            for entry in entries {
                if let Some((&previous, _)) = view.entries.iter().next_back() {
                    assert_eq!(entry.log_id.index, previous + 1, "the log has no holes");
                }
                view.entries.insert(entry.log_id.index, entry);
            }
        }
        self.writer.submit_entries(frame, last, done).map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Write, e))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let view = self.view();
        Ok(view.entries.range(range).map(|(_, entry)| entry.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let view = self.view();
        let last_log_id = view.entries.values().next_back().map(|entry| entry.log_id).or(view.last_purged);
        Ok(LogState { last_purged_log_id: view.last_purged, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let (reply, durable) = tokio::sync::oneshot::channel();
        self.writer
            .submit_vote(*vote, Done::Reply(reply))
            .map_err(|e| io_error(ErrorSubject::Vote, ErrorVerb::Write, e))?;
        // A vote must be on disk before it is acted on: a lost vote allows two votes in a term.
        durable
            .await
            .map_err(|_| io_error(ErrorSubject::Vote, ErrorVerb::Write, io::Error::other("WAL thread gone")))?
            .map_err(|e| io_error(ErrorSubject::Vote, ErrorVerb::Write, e))?;
        self.view().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.view().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.writer.submit_committed(committed).map_err(|e| io_error(ErrorSubject::Store, ErrorVerb::Write, e))?;
        self.view().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.view().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        self.append_entries(entries.into_iter().collect(), Done::Flushed(callback))
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.writer.submit_truncate(log_id.index).map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Write, e))?;
        self.view().entries.split_off(&log_id.index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // Holds RaftCore (and so every later append) until the snapshot replacing these entries
        // is on disk: a follower's purge after taking a leader's snapshot arrives before the
        // snapshot is written.
        self.durable_snapshot
            .covers(log_id.index)
            .await
            .map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Delete, e))?;
        self.writer.submit_purge(log_id).map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Write, e))?;
        let mut view = self.view();
        assert!(view.last_purged.is_none_or(|p| p.index <= log_id.index), "purge never moves back");
        view.entries = view.entries.split_off(&(log_id.index + 1));
        view.last_purged = Some(log_id);
        Ok(())
    }
}
