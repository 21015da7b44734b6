//! `RaftStateMachine` for the ledger. The ledger's core and its records changed since the last
//! checkpoint live in memory, shared with the API through `Arc<RwLock<Replica>>`; every record
//! lives in the replica's store (`crate::store`), written by checkpoints (`checkpoint`).
//!
//! A snapshot is a checkpoint: building one makes the store durable at the applied index, and
//! the log is purged only behind it. A follower that needs one is sent a consistent view of the
//! store as a stream (`store::stream`), which it loads into a new store before it swaps it in.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder, SnapshotMeta, StorageIOError,
    StoredMembership,
};
use tokio::sync::broadcast;

use super::checkpoint::{Checkpoints, Shared, CHECKPOINT_CHANGES, CHECKPOINT_CHANGES_MAX};
use super::durable_snapshot::DurableSnapshot;
use super::{Entry, LedgerResponse, LogId, NodeId, StorageError, TypeConfig};
use crate::store::{CheckpointMeta, Store, STORE_FILE};
use ledger::reference::CalendarTable;
use ledger::Records as _;
use ledger::{CommandResult, Ledger, Regions};

/// Stores received from the leader are loaded into files of this prefix (one per transfer)
/// before one is swapped in.
const INCOMING_PREFIX: &str = "incoming";
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

/// What travels as a snapshot (openraft's `SnapshotData`, with `generic-snapshot-data`).
pub enum SnapshotData {
    /// What a build answers: the checkpoint is in the store, nothing needs to travel.
    InStore,
    /// A consistent view of the store's last checkpoint, streamed to a follower by the network
    /// (`network::PeerClient::full_snapshot`).
    View(redb::ReadTransaction),
    /// A store received from the leader, loaded and checked at this path, to be swapped in.
    Received(PathBuf),
}

#[derive(Clone)]
pub struct LedgerStore {
    replica: Arc<RwLock<Replica>>,
    dir: PathBuf,
    store: Arc<RwLock<Store>>,
    checkpoints: Checkpoints,
    generation: Arc<AtomicU64>,
    applied: broadcast::Sender<AppliedEntry>,
    /// Snapshots received from a leader and installed, for metrics and for the readers of
    /// applied notices (an install replaces the ledger without any).
    snapshots_installed: Arc<AtomicU64>,
    /// The last log index of the latest installed snapshot.
    installed_snapshot_index: Arc<AtomicU64>,
    /// Told each time a checkpoint is durable; the log store purges only behind it.
    durable_snapshot: DurableSnapshot,
    /// Set when applying an entry failed (a bug in `apply`: nothing from outside can make it
    /// panic) or a checkpoint could not be written: the replica stops applying, and health and
    /// readiness say so.
    failure: Arc<std::sync::OnceLock<String>>,
    /// The reference data the replica decides with now, kept apart from the replica's lock.
    reference_now: Arc<RwLock<ReferenceNow>>,
    /// The accounts the replica holds, kept apart from the replica's lock.
    people_now: super::PeopleNow,
}

/// The region table and calendar the ledger decides with now (`ledger::reference`), readable
/// without the replica's lock: a handler that holds that lock may ask, and a reader of the
/// tables never waits on apply. Set in the same lock as the entry that adopts a version.
#[derive(Clone)]
pub struct ReferenceNow {
    pub regions: Arc<Regions>,
    pub calendar_version: u32,
    pub calendar: Arc<CalendarTable>,
}

impl ReferenceNow {
    fn of(ledger: &Ledger) -> ReferenceNow {
        let (calendar_version, calendar) = ledger.reference().calendar();
        ReferenceNow { regions: ledger.regions(), calendar_version, calendar }
    }

    /// Whether these are the ledger's tables now.
    fn is_of(&self, ledger: &Ledger) -> bool {
        Arc::ptr_eq(&self.regions, ledger.regions_ref()) && self.calendar_version == ledger.reference().calendar().0
    }
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

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// The snapshot meta of a checkpoint.
fn snapshot_meta(checkpoint: &CheckpointMeta) -> SnapshotMetaOf {
    let snapshot_id = match checkpoint.applied {
        Some(log_id) => format!("{}-{}", log_id.leader_id, log_id.index),
        None => "empty".to_owned(),
    };
    SnapshotMeta { last_log_id: checkpoint.applied, last_membership: checkpoint.membership.clone(), snapshot_id }
}

/// The replica a store holds: its last checkpoint's core over its records. A store that no
/// checkpoint was written to holds an empty ledger.
fn replica_of(store: &Store) -> io::Result<Replica> {
    match store.last_checkpoint()? {
        Some((meta, core)) => {
            let ledger = Ledger::from_core(&core, store.records())
                .map_err(|error| invalid(format!("the ledger's core in {}: {error}", store.path().display())))?;
            // The core and what it names; the records themselves were checked as they came in.
            ledger.check_core().map_err(|violation| invalid(violation.to_string()))?;
            Ok(Replica { ledger, last_applied: meta.applied, membership: meta.membership })
        }
        None => {
            let mut ledger = Ledger::new();
            ledger.set_records(store.records());
            Ok(Replica { ledger, last_applied: None, membership: StoredMembership::default() })
        }
    }
}

impl LedgerStore {
    /// Opens the state machine in `dir` from the store's last checkpoint; openraft then
    /// re-applies the committed log after it.
    pub fn open(dir: &Path) -> io::Result<LedgerStore> {
        std::fs::create_dir_all(dir)?;
        // Loads that a crash interrupted: the leader sends the snapshot again.
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with(INCOMING_PREFIX) {
                std::fs::remove_file(entry.path())?;
            }
        }
        let store = Store::open(&dir.join(STORE_FILE))?;
        let replica = replica_of(&store)?;
        let reference_now = Arc::new(RwLock::new(ReferenceNow::of(&replica.ledger)));
        let people_now = super::PeopleNow::of(store.records().people());
        let durable_snapshot = DurableSnapshot::new(replica.last_applied.map(|log_id| log_id.index));
        let replica = Arc::new(RwLock::new(replica));
        let store = Arc::new(RwLock::new(store));
        let generation = Arc::new(AtomicU64::new(0));
        let failure = Arc::new(std::sync::OnceLock::new());
        let checkpoints = Checkpoints::start(Shared {
            replica: replica.clone(),
            store: store.clone(),
            durable_snapshot: durable_snapshot.clone(),
            generation: generation.clone(),
            failure: failure.clone(),
        })?;
        let (applied, _) = broadcast::channel(APPLIED_NOTICES_BUFFER);
        Ok(LedgerStore {
            replica,
            dir: dir.to_owned(),
            store,
            checkpoints,
            generation,
            applied,
            snapshots_installed: Arc::default(),
            installed_snapshot_index: Arc::default(),
            durable_snapshot,
            failure,
            reference_now,
            people_now,
        })
    }

    /// The accounts the replica holds now (no lock of the replica's).
    pub fn people_now(&self) -> &super::PeopleNow {
        &self.people_now
    }

    /// The region table and calendar the replica decides with now (no lock of the replica's).
    pub fn reference_now(&self) -> ReferenceNow {
        self.reference_now.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Takes the ledger's tables when they changed. Called after every batch applied, so the
    /// usual case (nothing adopted) only reads: readers of the tables are never held up by it.
    fn follow_reference(&self, ledger: &Ledger) {
        let current = self.reference_now.read().unwrap_or_else(std::sync::PoisonError::into_inner).is_of(ledger);
        if !current {
            *self.reference_now.write().unwrap_or_else(std::sync::PoisonError::into_inner) = ReferenceNow::of(ledger);
        }
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
        self.snapshots_installed.load(Ordering::Relaxed)
    }

    /// How many snapshots were installed from a leader, and the last log index of the latest.
    /// Entries up to that index were never announced by an applied notice on this node.
    pub fn installed_snapshot(&self) -> (u64, u64) {
        let count = self.snapshots_installed.load(Ordering::Acquire);
        (count, self.installed_snapshot_index.load(Ordering::Acquire))
    }

    pub fn subscribe_applied(&self) -> broadcast::Receiver<AppliedEntry> {
        self.applied.subscribe()
    }

    /// Makes everything applied so far durable in the store; answers where it stands.
    pub async fn checkpoint_now(&self) -> io::Result<CheckpointMeta> {
        self.checkpoints.now().await
    }

    /// A consistent view of the store's last checkpoint, for streaming it (a backup).
    pub fn store_view(&self) -> io::Result<redb::ReadTransaction> {
        self.store.read().unwrap_or_else(std::sync::PoisonError::into_inner).view()
    }

    /// A new path to load a store received from the leader into (`snapshot_transfer`): one per
    /// transfer, so that a transfer abandoned while its loader still runs never meets the next.
    pub fn incoming_store_path(&self) -> PathBuf {
        static TRANSFERS: AtomicU64 = AtomicU64::new(0);
        let n = TRANSFERS.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!("{INCOMING_PREFIX}-{n}.redb"))
    }
}

/// Makes `dir` start a new group from a backup stream: the store loaded and checked from
/// `stream`, its checkpoint moved to `last_log_id` with the new group's `membership`. A node
/// opened on it starts from that state with an empty log. Refuses a directory that already
/// holds a store (restoring never overwrites a ledger), and a stream whose ledger does not have
/// `expect_digest`.
pub fn seed_store(
    dir: &Path,
    stream: &mut impl io::Read,
    last_log_id: LogId,
    membership: openraft::Membership<NodeId, BasicNode>,
    expect_digest: &str,
) -> io::Result<CheckpointMeta> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(STORE_FILE);
    if path.exists() {
        return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} already holds a store", dir.display())));
    }
    let incoming = dir.join(format!("{INCOMING_PREFIX}-restore.redb"));
    let loaded = crate::store::stream::load_stream(stream, &incoming)?;
    if loaded.digest_as_read != expect_digest {
        std::fs::remove_file(&incoming)?;
        return Err(invalid("the ledger loaded is not the one whose digest was expected"));
    }
    let meta =
        CheckpointMeta { applied: Some(last_log_id), membership: StoredMembership::new(Some(last_log_id), membership) };
    let store = Store::open(&incoming)?;
    let regions = crate::store::stream::ledger_of(&store, &loaded.core)?.regions();
    store.write_checkpoint(&ledger::Changes::default(), &loaded.core, &meta, &regions)?;
    drop(store);
    std::fs::rename(&incoming, &path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(meta)
}

/// Builds a snapshot: a checkpoint of everything applied, by the checkpoint thread.
pub struct LedgerSnapshotBuilder {
    checkpoints: Checkpoints,
}

impl RaftSnapshotBuilder<TypeConfig> for LedgerSnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let checkpoint = self.checkpoints.now().await.map_err(|e| snapshot_error(None, ErrorVerb::Write, e))?;
        let meta = snapshot_meta(&checkpoint);
        tracing::info!(last_log_id = ?meta.last_log_id, "snapshot: the store is durable at the applied index");
        Ok(Snapshot { meta, snapshot: Box::new(SnapshotData::InStore) })
    }
}

/// Nice level of the checkpoint thread: the lowest priority Linux offers.
const CHECKPOINT_THREAD_NICE: i32 = 19;

/// Runs the calling thread at the lowest CPU priority: writing a checkpoint takes a core for a
/// good fraction of a second, and on a busy machine that must not delay the threads that serve
/// writes.
#[allow(unsafe_code)]
pub(super) fn lower_this_thread_priority() {
    // SAFETY: setpriority(2) on the calling thread (tid from gettid), no memory is shared.
    // On Linux, PRIO_PROCESS with a thread id sets that thread's nice value only.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, CHECKPOINT_THREAD_NICE);
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
        // Back pressure: the changes in memory stay below their bound while a checkpoint writes.
        // The seal count is marked seen before the changes are counted, so a seal in between is
        // not missed.
        let mut seals = self.checkpoints.seals();
        loop {
            seals.mark_unchanged();
            if let Some(failure) = self.failure() {
                return Err(apply_error(failure));
            }
            if self.read().ledger.open_changes() < CHECKPOINT_CHANGES_MAX {
                break;
            }
            self.checkpoints.due();
            if seals.changed().await.is_err() {
                let failure = self.failure.get_or_init(|| "the checkpoint thread stopped".to_owned());
                return Err(apply_error(failure));
            }
        }
        let mut responses = Vec::new();
        let mut notices = Vec::new();
        let open_changes = {
            let mut replica = self.write();
            for entry in entries {
                let index = entry.log_id.index;
                // Nothing from outside the group can make `apply` panic (every check on a
                // command is a `Rejection`); should a bug or a failed store read do it anyway,
                // the replica stops here and says so, instead of a poisoned lock that hangs
                // every reader while the health checks say ok.
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
            self.follow_reference(&replica.ledger);
            replica.ledger.open_changes()
        };
        self.people_now.update(changed_people(&responses));
        if open_changes >= CHECKPOINT_CHANGES {
            self.checkpoints.due();
        }
        // Side effects after the state changed: nobody waits on a subscriber here.
        for notice in notices {
            let _ = self.applied.send(notice);
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        LedgerSnapshotBuilder { checkpoints: self.checkpoints.clone() }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotData>, StorageError> {
        // Snapshots arrive whole, streamed by the network into a store of their own
        // (`snapshot_transfer`); openraft's chunked transfer is not used, so what this answers
        // is only a place for the caller to put the snapshot it has.
        Ok(Box::new(SnapshotData::InStore))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf,
        snapshot: Box<SnapshotData>,
    ) -> Result<(), StorageError> {
        let received = match *snapshot {
            SnapshotData::Received(path) => Ok(path),
            // Another state machine's view in this process (openraft's storage suite): streamed
            // through a file as it would be over the network.
            SnapshotData::View(view) => self.receive_view(&view),
            SnapshotData::InStore => Err(io::Error::other("nothing was received to install")),
        };
        let installed = received.and_then(|path| self.swap_in(meta, &path));
        if let Err(error) = &installed {
            // The log store may already be waiting for this snapshot before it purges.
            self.durable_snapshot.record_failed(error);
        }
        installed.map_err(|e| snapshot_error(Some(meta), ErrorVerb::Write, e))
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let view = self.store_view().map_err(|e| snapshot_error(None, ErrorVerb::Read, e))?;
        let checkpoint = crate::store::read_checkpoint(&view).map_err(|e| snapshot_error(None, ErrorVerb::Read, e))?;
        Ok(checkpoint.map(|(checkpoint, _)| Snapshot {
            meta: snapshot_meta(&checkpoint),
            snapshot: Box::new(SnapshotData::View(view)),
        }))
    }
}

impl LedgerStore {
    /// Loads another store's view into this one's incoming store, through a stream file.
    fn receive_view(&self, view: &redb::ReadTransaction) -> io::Result<PathBuf> {
        let stream_path = self.dir.join(format!("{INCOMING_PREFIX}.stream"));
        let mut file = io::BufWriter::new(std::fs::File::create(&stream_path)?);
        crate::store::stream::write_stream(view, &mut file)?;
        file.flush()?;
        drop(file);
        let incoming = self.incoming_store_path();
        let loaded = crate::store::stream::load_file(&stream_path, &incoming);
        std::fs::remove_file(&stream_path)?;
        loaded.map(|_| incoming)
    }

    /// Replaces the store with one received from the leader, and the ledger with the one it
    /// holds. No checkpoint writes meanwhile; one sealed before belongs to the old ledger.
    fn swap_in(&self, meta: &SnapshotMetaOf, received: &Path) -> io::Result<()> {
        let _no_checkpoint = self.checkpoints.writing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let path = self.dir.join(STORE_FILE);
        let (checkpoint, _) = Store::open_existing(received)?
            .last_checkpoint()?
            .ok_or_else(|| invalid("a received store without a checkpoint"))?;
        if checkpoint.applied != meta.last_log_id {
            return Err(invalid(format!(
                "the received store stands at {:?}, the snapshot at {:?}",
                checkpoint.applied, meta.last_log_id
            )));
        }
        std::fs::rename(received, &path)?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        let store = Store::open(&path)?;
        let replica = replica_of(&store)?;
        let mut current = self.write();
        self.generation.fetch_add(1, Ordering::AcqRel);
        *current = replica;
        self.follow_reference(&current.ledger);
        self.people_now.replace(store.records().people());
        *self.store.write().unwrap_or_else(std::sync::PoisonError::into_inner) = store;
        let index = meta.last_log_id.map_or(0, |log_id| log_id.index);
        self.durable_snapshot.record_written(Some(index));
        self.installed_snapshot_index.store(index, Ordering::Release);
        self.snapshots_installed.fetch_add(1, Ordering::Release);
        tracing::info!(last_log_id = ?meta.last_log_id, "installed a snapshot from the leader");
        Ok(())
    }
}

/// The accounts the commands of a batch created or changed.
fn changed_people(responses: &[LedgerResponse]) -> Vec<Arc<ledger::organisation::Person>> {
    let results = responses.iter().flat_map(|response| response.results.iter());
    results
        .filter_map(|result| match result {
            Ok(ledger::Applied {
                organisation: Some(ledger::organisation::OrganisationRecord::Person(person)),
                ..
            }) => Some(person.clone()),
            _ => None,
        })
        .collect()
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
            replica.ledger.set_position(entry.log_id.index);
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
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_in_apply_stops_the_replica_and_says_why_instead_of_poisoning_it() {
        use crate::raft::LedgerRequest;
        use ledger::{peer_actor, Action, BureauCode, Command, ForwardId, Instruction, Message, Placement, Transition};
        let dir = tempfile::tempdir().expect("dir");
        let mut store = LedgerStore::open(dir.path()).expect("open");
        let province = BureauCode::parse_compiled("440000").expect("known");
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
            group: BureauCode::parse_compiled("440100").expect("known"),
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
        // The half-applied entry is never written as applied: no checkpoint follows the failure.
        assert!(store.checkpoint_now().await.is_err(), "no checkpoint after a failed apply");
        assert_eq!(store.durable_snapshot().index(), None);
    }
}
