//! `RaftStateMachine` for the ledger: the ledger lives in memory, shared with the API through
//! `Arc<RwLock<Replica>>`; durability comes from the log plus snapshot files.
//!
//! Snapshot file: `snapshot/current.snap` = `[crc32 u32 LE][bincode (SnapshotMeta, ledger bytes)]`,
//! written to a temporary file, fsynced, renamed into place and the directory fsynced, so a
//! crash leaves either the old or the new snapshot, never a torn one.

use std::fs::{self, File};
use std::io::{self, Cursor, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder, SnapshotMeta, StorageIOError,
    StoredMembership,
};
use tokio::sync::broadcast;

use super::durable_snapshot::DurableSnapshot;
use super::{Entry, LedgerResponse, LogId, NodeId, StorageError, TypeConfig};
use ledger::{CommandResult, Ledger};

const SNAPSHOT_FILE: &str = "current.snap";
const SNAPSHOT_TMP_FILE: &str = "current.snap.tmp";
/// Applied-entry notices buffered for slow subscribers (console push, waiters); a subscriber
/// that falls further behind is told it lagged and resynchronises from the ledger.
pub const APPLIED_NOTICES_BUFFER: usize = 4_096;

/// The applied state of this replica: what the API reads.
pub struct Replica {
    pub ledger: Ledger,
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership<NodeId, BasicNode>,
}

/// Sent after each applied entry that carried commands: the log index and the results, so the
/// node can push events without re-reading the ledger.
#[derive(Clone, Debug)]
pub struct AppliedEntry {
    pub index: u64,
    pub results: Arc<Vec<CommandResult>>,
}

#[derive(Clone)]
pub struct LedgerStore {
    replica: Arc<RwLock<Replica>>,
    snapshot_dir: PathBuf,
    applied: broadcast::Sender<AppliedEntry>,
    /// Snapshots received from a leader and installed, for metrics and for the readers of
    /// applied notices (an install replaces the ledger without any).
    snapshots_installed: Arc<std::sync::atomic::AtomicU64>,
    /// The last log index of the latest installed snapshot.
    installed_snapshot_index: Arc<std::sync::atomic::AtomicU64>,
    /// Told each time a snapshot file is durable; the log store purges only behind it.
    durable_snapshot: DurableSnapshot,
    /// Set when applying an entry failed (a bug in `apply`: nothing from outside can make it
    /// panic): the replica stops applying, and health and readiness say so.
    failure: Arc<std::sync::OnceLock<String>>,
}

type SnapshotMetaOf = SnapshotMeta<NodeId, BasicNode>;

fn snapshot_error(
    meta: Option<&SnapshotMetaOf>,
    verb: ErrorVerb,
    error: impl std::error::Error + 'static,
) -> StorageError {
    let subject = match meta {
        Some(meta) => ErrorSubject::Snapshot(Some(meta.signature())),
        None => ErrorSubject::Snapshot(None),
    };
    StorageIOError::new(subject, verb, openraft::AnyError::new(&error)).into()
}

impl LedgerStore {
    /// Opens the state machine, starting from the stored snapshot when there is one; openraft
    /// then re-applies the committed log after it.
    pub fn open(snapshot_dir: &Path) -> io::Result<LedgerStore> {
        fs::create_dir_all(snapshot_dir)?;
        let stored = read_snapshot_file(snapshot_dir)?;
        let durable_snapshot =
            DurableSnapshot::new(stored.as_ref().and_then(|(meta, _)| meta.last_log_id).map(|log_id| log_id.index));
        let replica = match stored {
            Some((meta, bytes)) => {
                let ledger = decode_ledger(&bytes)?;
                Replica { ledger, last_applied: meta.last_log_id, membership: meta.last_membership }
            }
            None => Replica { ledger: Ledger::new(), last_applied: None, membership: StoredMembership::default() },
        };
        let (applied, _) = broadcast::channel(APPLIED_NOTICES_BUFFER);
        Ok(LedgerStore {
            replica: Arc::new(RwLock::new(replica)),
            snapshot_dir: snapshot_dir.to_owned(),
            applied,
            snapshots_installed: Arc::default(),
            installed_snapshot_index: Arc::default(),
            durable_snapshot,
            failure: Arc::default(),
        })
    }

    /// What the log store opened beside this state machine waits on before it purges.
    pub fn durable_snapshot(&self) -> DurableSnapshot {
        self.durable_snapshot.clone()
    }

    /// Read access for the API. Held briefly: apply waits for it. A panic while the lock was
    /// held is caught and recorded as the replica's `failure`, so readers never panic on it.
    pub fn read(&self) -> RwLockReadGuard<'_, Replica> {
        self.replica.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Replica> {
        self.replica.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Why this replica stopped applying entries, if it did: the node is then neither healthy
    /// nor ready, and needs an operator.
    pub fn failure(&self) -> Option<&str> {
        self.failure.get().map(String::as_str)
    }

    pub fn snapshots_installed(&self) -> u64 {
        self.snapshots_installed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many snapshots were installed from a leader, and the last log index of the latest.
    /// Entries up to that index were never announced by an applied notice on this node.
    pub fn installed_snapshot(&self) -> (u64, u64) {
        let count = self.snapshots_installed.load(std::sync::atomic::Ordering::Acquire);
        (count, self.installed_snapshot_index.load(std::sync::atomic::Ordering::Acquire))
    }

    pub fn subscribe_applied(&self) -> broadcast::Receiver<AppliedEntry> {
        self.applied.subscribe()
    }
}

fn decode_ledger(bytes: &[u8]) -> io::Result<Ledger> {
    let ledger: Ledger = bincode::deserialize(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    ledger.check_invariants().map_err(|violation| io::Error::new(io::ErrorKind::InvalidData, violation))?;
    Ok(ledger)
}

fn read_snapshot_file(dir: &Path) -> io::Result<Option<(SnapshotMetaOf, Vec<u8>)>> {
    let bytes = match fs::read(dir.join(SNAPSHOT_FILE)) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    if bytes.len() < 4 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "snapshot file too short"));
    }
    let crc = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
    if crc32fast::hash(&bytes[4..]) != crc {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "snapshot file fails its checksum"));
    }
    let contents = bincode::deserialize(&bytes[4..]).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(Some(contents))
}

/// A snapshot is flushed to disk in pieces of this size while it is written. One large flush at
/// the end would queue ahead of the WAL's small fdatasyncs in the filesystem journal and stall
/// every write for its whole duration (measured: single-writer latency spikes of ~270 ms).
const SNAPSHOT_SYNC_CHUNK_BYTES: usize = 4 * 1024 * 1024;

/// Snapshot writes one at a time: a build finishing on its own thread can overlap the install
/// of a newer snapshot from the leader, and both use the same temp file.
static SNAPSHOT_WRITES: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The metadata of the snapshot on disk, read without the (possibly large) ledger; `None` when
/// there is none or it does not decode (it is then replaced).
fn read_snapshot_meta(dir: &Path) -> io::Result<Option<SnapshotMetaOf>> {
    let file = match File::open(dir.join(SNAPSHOT_FILE)) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let mut reader = io::BufReader::new(file);
    let mut crc = [0u8; 4];
    if io::Read::read_exact(&mut reader, &mut crc).is_err() {
        return Ok(None);
    }
    Ok(bincode::deserialize_from(reader).ok())
}

/// Writes the snapshot durably: temp file, fsync, rename, fsync the directory. A snapshot older
/// than the one on disk is not written: after a newer snapshot was installed the log behind it is
/// purged, and a node restarting from an older file would need entries that are gone (found by
/// the long randomized fault run: a build that finished after an install overwrote it).
fn write_snapshot_file(dir: &Path, meta: &SnapshotMetaOf, ledger_bytes: &[u8]) -> io::Result<()> {
    let _one_at_a_time = SNAPSHOT_WRITES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let index = |meta: &SnapshotMetaOf| meta.last_log_id.map(|log_id| log_id.index);
    if let Some(existing) = read_snapshot_meta(dir)? {
        if index(&existing) >= index(meta) {
            tracing::info!(on_disk = ?existing.last_log_id, skipped = ?meta.last_log_id, "kept the newer snapshot on disk");
            return Ok(());
        }
    }
    let body = bincode::serialize(&(meta, ledger_bytes)).map_err(io::Error::other)?;
    let tmp = dir.join(SNAPSHOT_TMP_FILE);
    // The ledger holds reporters' identities: readable by the node's user only.
    let mut file = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    file.write_all(&crc32fast::hash(&body).to_le_bytes())?;
    for chunk in body.chunks(SNAPSHOT_SYNC_CHUNK_BYTES) {
        file.write_all(chunk)?;
        file.sync_data()?;
    }
    file.sync_all()?;
    fs::rename(&tmp, dir.join(SNAPSHOT_FILE))?;
    File::open(dir)?.sync_all()
}

/// Writes the snapshot file and tells the log store what is now on disk (or that it failed).
fn write_snapshot_and_record(
    dir: &Path,
    meta: &SnapshotMetaOf,
    ledger_bytes: &[u8],
    durable_snapshot: &DurableSnapshot,
) -> io::Result<()> {
    match write_snapshot_file(dir, meta, ledger_bytes) {
        Ok(()) => {
            durable_snapshot.record_written(meta.last_log_id.map(|log_id| log_id.index));
            Ok(())
        }
        Err(error) => {
            durable_snapshot.record_failed(&error);
            Err(error)
        }
    }
}

/// Makes `snapshot_dir` start a new group from a backup: a snapshot of `ledger_bytes` as of
/// `last_log_id`, with the new group's `membership`. A node opened on it starts from that state
/// with an empty log. Refuses a directory that already holds a snapshot: restoring never
/// overwrites a ledger.
pub fn seed_snapshot(
    snapshot_dir: &Path,
    ledger_bytes: &[u8],
    last_log_id: LogId,
    membership: openraft::Membership<NodeId, BasicNode>,
) -> io::Result<()> {
    fs::create_dir_all(snapshot_dir)?;
    if snapshot_dir.join(SNAPSHOT_FILE).exists() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} already holds a snapshot", snapshot_dir.display()),
        ));
    }
    decode_ledger(ledger_bytes)?;
    let meta = SnapshotMetaOf {
        last_log_id: Some(last_log_id),
        last_membership: StoredMembership::new(Some(last_log_id), membership),
        snapshot_id: format!("restored-{}", last_log_id.index),
    };
    write_snapshot_file(snapshot_dir, &meta, ledger_bytes)
}

/// Builds a snapshot from a copy of the ledger taken under the read lock, so apply goes on
/// while it is encoded and written.
pub struct LedgerSnapshotBuilder {
    ledger: Ledger,
    meta: SnapshotMetaOf,
    snapshot_dir: PathBuf,
    durable_snapshot: DurableSnapshot,
}

impl RaftSnapshotBuilder<TypeConfig> for LedgerSnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let ledger = std::mem::take(&mut self.ledger);
        let meta = self.meta.clone();
        let dir = self.snapshot_dir.clone();
        let durable_snapshot = self.durable_snapshot.clone();
        let (done, written) = tokio::sync::oneshot::channel();
        // A thread of its own at the lowest CPU priority: encoding a large ledger takes a
        // core for a good fraction of a second, and on a busy machine that must not delay the
        // threads that serve writes (measured: p999 write latency 55 ms → see benchmarks.md).
        std::thread::Builder::new()
            .name("snapshot".into())
            .spawn(move || {
                lower_this_thread_priority();
                let result = bincode::serialize(&ledger).map_err(io::Error::other).and_then(|bytes| {
                    write_snapshot_and_record(&dir, &meta, &bytes, &durable_snapshot).map(|()| (meta, bytes))
                });
                let _ = done.send(result);
            })
            .map_err(|e| snapshot_error(Some(&self.meta), ErrorVerb::Write, e))?;
        let written =
            written.await.map_err(|e| snapshot_error(Some(&self.meta), ErrorVerb::Write, io::Error::other(e)))?;
        let (meta, bytes) = written.map_err(|e| snapshot_error(Some(&self.meta), ErrorVerb::Write, e))?;
        tracing::info!(last_log_id = ?meta.last_log_id, bytes = bytes.len(), "snapshot written");
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(bytes)) })
    }
}

/// Nice level of the snapshot thread: the lowest priority Linux offers.
const SNAPSHOT_THREAD_NICE: i32 = 19;

#[allow(unsafe_code)]
fn lower_this_thread_priority() {
    // SAFETY: setpriority(2) on the calling thread (tid from gettid), no memory is shared.
    // On Linux, PRIO_PROCESS with a thread id sets that thread's nice value only.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, SNAPSHOT_THREAD_NICE);
    }
}

impl RaftStateMachine<TypeConfig> for LedgerStore {
    type SnapshotBuilder = LedgerSnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership<NodeId, BasicNode>), StorageError> {
        let replica = self.read();
        Ok((replica.last_applied, replica.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<LedgerResponse>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        if let Some(failure) = self.failure() {
            return Err(apply_error(failure));
        }
        let mut responses = Vec::new();
        let mut notices = Vec::new();
        {
            let mut replica = self.write();
            for entry in entries {
                let index = entry.log_id.index;
                // Nothing from outside the group can make `apply` panic (every check on a
                // command is a `Rejection`); should a bug do it anyway, the replica stops here
                // and says so, instead of a poisoned lock that hangs every reader while the
                // health checks say ok.
                let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    apply_entry(&mut replica, entry, self.applied.receiver_count() > 0)
                }));
                match applied {
                    Ok((response, notice)) => {
                        responses.push(response);
                        notices.extend(notice);
                    }
                    Err(panic) => {
                        let reason = panic
                            .downcast_ref::<&str>()
                            .map(|text| (*text).to_owned())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_default();
                        let failure = format!("applying log entry {index} failed: {reason}");
                        tracing::error!(%failure, "the state machine stopped");
                        let failure = self.failure.get_or_init(|| failure);
                        return Err(apply_error(failure));
                    }
                }
            }
        }
        // Side effects after the state changed: nobody waits on a subscriber here.
        for notice in notices {
            let _ = self.applied.send(notice);
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        // A failed replica stops applying, so openraft asks for no snapshot of it.
        let started = std::time::Instant::now();
        let replica = self.read();
        let last_log_id = replica.last_applied;
        let snapshot_id = match last_log_id {
            Some(log_id) => format!("{}-{}", log_id.leader_id, log_id.index),
            None => "empty".to_owned(),
        };
        let ledger = replica.ledger.clone();
        tracing::info!(copy_ms = started.elapsed().as_millis() as u64, "ledger copied for a snapshot");
        LedgerSnapshotBuilder {
            ledger,
            meta: SnapshotMeta { last_log_id, last_membership: replica.membership.clone(), snapshot_id },
            snapshot_dir: self.snapshot_dir.clone(),
            durable_snapshot: self.durable_snapshot.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let bytes = snapshot.into_inner();
        let ledger = decode_ledger(&bytes).map_err(|error| {
            // The log store may already be waiting for this snapshot before it purges.
            self.durable_snapshot.record_failed(&error);
            snapshot_error(Some(meta), ErrorVerb::Read, error)
        })?;
        let dir = self.snapshot_dir.clone();
        let file_meta = meta.clone();
        let durable_snapshot = self.durable_snapshot.clone();
        tokio::task::spawn_blocking(move || write_snapshot_and_record(&dir, &file_meta, &bytes, &durable_snapshot))
            .await
            .map_err(|e| snapshot_error(Some(meta), ErrorVerb::Write, io::Error::other(e)))?
            .map_err(|e| snapshot_error(Some(meta), ErrorVerb::Write, e))?;
        let mut replica = self.write();
        replica.ledger = ledger;
        replica.last_applied = meta.last_log_id;
        replica.membership = meta.last_membership.clone();
        let index = meta.last_log_id.map_or(0, |log_id| log_id.index);
        self.installed_snapshot_index.store(index, std::sync::atomic::Ordering::Release);
        self.snapshots_installed.fetch_add(1, std::sync::atomic::Ordering::Release);
        tracing::info!(last_log_id = ?meta.last_log_id, "installed a snapshot from the leader");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let dir = self.snapshot_dir.clone();
        let stored = tokio::task::spawn_blocking(move || read_snapshot_file(&dir))
            .await
            .map_err(|e| snapshot_error(None, ErrorVerb::Read, io::Error::other(e)))?
            .map_err(|e| snapshot_error(None, ErrorVerb::Read, e))?;
        Ok(stored.map(|(meta, bytes)| Snapshot { meta, snapshot: Box::new(Cursor::new(bytes)) }))
    }
}

/// Applies one log entry to the replica: its answer, and the notice for the applied-entry
/// subscribers when there are any.
fn apply_entry(replica: &mut Replica, entry: Entry, notify: bool) -> (LedgerResponse, Option<AppliedEntry>) {
    assert!(
        replica.last_applied.is_none_or(|last| last.index < entry.log_id.index),
        "the applied index only increases"
    );
    replica.last_applied = Some(entry.log_id);
    match entry.payload {
        EntryPayload::Blank => (LedgerResponse::default(), None),
        EntryPayload::Normal(request) => {
            let results: Vec<CommandResult> =
                request.commands.iter().map(|command| replica.ledger.apply(command)).collect();
            let notice = notify.then(|| AppliedEntry { index: entry.log_id.index, results: Arc::new(results.clone()) });
            (LedgerResponse { results }, notice)
        }
        EntryPayload::Membership(membership) => {
            replica.membership = StoredMembership::new(Some(entry.log_id), membership);
            (LedgerResponse::default(), None)
        }
    }
}

fn apply_error(failure: &str) -> StorageError {
    StorageIOError::new(ErrorSubject::StateMachine, ErrorVerb::Write, openraft::AnyError::error(failure)).into()
}

#[cfg(test)]
mod snapshot_file_tests {
    use super::*;

    fn meta(index: u64) -> SnapshotMetaOf {
        SnapshotMetaOf {
            last_log_id: Some(openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), index)),
            last_membership: StoredMembership::default(),
            snapshot_id: format!("s{index}"),
        }
    }

    #[test]
    fn an_older_snapshot_never_replaces_a_newer_one_on_disk() {
        let dir = tempfile::tempdir().expect("dir");
        write_snapshot_file(dir.path(), &meta(20), b"newer").expect("write");
        // A build that started before the install of index 20 finishes after it.
        write_snapshot_file(dir.path(), &meta(10), b"older").expect("write");
        let (on_disk, bytes) = read_snapshot_file(dir.path()).expect("read").expect("a snapshot");
        assert_eq!((on_disk.last_log_id.map(|l| l.index), bytes.as_slice()), (Some(20), b"newer".as_slice()));
        write_snapshot_file(dir.path(), &meta(30), b"newest").expect("write");
        let (on_disk, _) = read_snapshot_file(dir.path()).expect("read").expect("a snapshot");
        assert_eq!(on_disk.last_log_id.map(|l| l.index), Some(30));
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &fs::metadata(dir.path().join(SNAPSHOT_FILE)).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "the ledger is readable by the node's user only");
    }

    #[tokio::test]
    async fn a_panic_in_apply_stops_the_replica_and_says_why_instead_of_poisoning_it() {
        use crate::raft::LedgerRequest;
        use ledger::{peer_actor, Action, BureauCode, Command, ForwardId, Instruction, Message, Placement, Transition};
        let dir = tempfile::tempdir().expect("dir");
        let mut store = LedgerStore::open(dir.path()).expect("open");
        let province = BureauCode::parse_known("440000").expect("known");
        let forward = ForwardId { origin_group: province, seq: 1 };
        store.write().ledger = Ledger::with_dangling_inbox_for_tests(forward);
        let instruction = Instruction {
            forward,
            number: 1,
            transition: Transition::Cancel,
            note: "撤销".into(),
            sent_by: "x".into(),
        };
        let action = Action::Receive {
            message: Box::new(Message::Instruction(instruction)),
            group: BureauCode::parse_known("440100").expect("known"),
            placement: Placement::Keep,
        };
        let command = Command { stamp_ms: 1, actor: peer_actor(province), idempotency: None, action };
        let log_id = |index| openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), index);
        let entry =
            Entry { log_id: log_id(1), payload: EntryPayload::Normal(LedgerRequest { commands: vec![command] }) };
        assert!(store.apply(vec![entry]).await.is_err(), "the entry stops the state machine");
        let failure = store.failure().expect("the failure is recorded").to_owned();
        assert!(failure.contains("log entry 1") && failure.contains("inbox"), "{failure}");
        assert_eq!(store.read().ledger.task_count(), 0, "readers are not poisoned");
        let next = Entry { log_id: log_id(2), payload: EntryPayload::Blank };
        assert!(store.apply(vec![next]).await.is_err(), "nothing is applied after it");
    }

    #[test]
    fn a_snapshot_that_breaks_the_ledgers_invariants_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().expect("dir");
        let error = seed_snapshot(
            dir.path(),
            &Ledger::broken_for_tests(),
            openraft::LogId::new(openraft::CommittedLeaderId::new(0, 0), 5),
            openraft::Membership::new(vec![std::collections::BTreeSet::from([1])], ()),
        )
        .expect_err("refused");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("a completed task has an assignee"), "{error}");
    }
}
