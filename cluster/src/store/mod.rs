//! The embedded store of one replica: every record of the ledger (tasks, reporters, both ends of
//! every handover) and the ledger's core, as of its last checkpoint, in one redb file.
//!
//! The store is written only by checkpoints: the changes the ledger sealed, its core and the
//! applied log id, in one durable transaction. It therefore always holds one consistent state at
//! one log index; a crash in the middle of a commit leaves the previous checkpoint, and openraft
//! re-applies the log after it. Why redb (and not an LSM such as fjall) is in docs/storage.md.
//!
//! **Invariant:** the store's checkpoint index never passes what the log holds; the log is never
//! purged past the store's durable checkpoint (`DurableSnapshot`).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::{BasicNode, StoredMembership};
use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition};

use ledger::campaign::register::JournalEntry;
use ledger::campaign::risk_files::RiskFile;
use ledger::organisation::{Person, PersonId};
use ledger::{forward_key, Changes, ForwardId, Records, Regions, Reporter, Task, TaskId, Uscc};

use crate::raft::{LogId, NodeId};

/// A consistent view of the store's last checkpoint (a read transaction): what readers hold.
pub use redb::ReadTransaction as StoreView;

pub mod index;
pub mod stream;
pub mod tally;
#[cfg(test)]
mod tests;

/// The store's file inside the state-machine directory.
pub const STORE_FILE: &str = "ledger.redb";
/// The memory redb may use for its page cache. Reads of records not changed since the last
/// checkpoint go through it; the rest of memory is bounded by open work (see ARCHITECTURE.md).
pub const STORE_CACHE_BYTES: usize = 64 * 1024 * 1024;
/// The version of the store's layout and of the ledger core it holds; a store of another
/// version is refused with both named. 2: the core keeps the order of signal groups
/// (`intake_groups_order`). 3: records, core and meta in postcard (`ledger::codec`). 4: the
/// core ends with the reference data (`ledger::reference`). 5: the core ends with the
/// organisation's units (`ledger::organisation`). 6: the core ends with the inspection-item
/// list (`ledger::campaign::item_list`). 7: the core ends with the entity register and the
/// records hold its journal (`ledger::campaign::register`). 8: the core ends with the draws
/// committed in parts (`ledger::campaign::draw_parts`). 9: the core ends with the risk files'
/// state and the plans' filings, and the records hold the files (`ledger::campaign::risk_files`,
/// `ledger::campaign::plan_filing`). 10: the core ends with the departments of joint
/// inspections (`ledger::campaign::departments`). 11: the core ends with the province plans
/// handed down and their progress reports (`ledger::campaign::plan_handdown`).
pub const STORE_FORMAT: u32 = 11;
/// The oldest format this build reads: a store, stream or backup of a format from this one on
/// has its core converted as it is read (`core_in_this_format`); nothing else changed since.
pub const STORE_FORMAT_OLDEST_READ: u32 = 3;

/// A ledger core of `format` (from `STORE_FORMAT_OLDEST_READ` to `STORE_FORMAT`) in this
/// build's format. Each format since 3 only appended a field to the core, so a core is
/// converted by appending the empty value of each field it lacks. Whether the result decodes
/// is the caller's check, as for any core read from outside.
pub fn core_in_this_format(format: u32, core: Vec<u8>) -> Vec<u8> {
    assert!((STORE_FORMAT_OLDEST_READ..=STORE_FORMAT).contains(&format), "a format this build reads");
    let core = if format < 4 { ledger::reference::core_of_format_3(&core) } else { core };
    let core = if format < 5 { ledger::organisation::core_of_format_4(&core) } else { core };
    let core = if format < 6 { ledger::campaign::item_list::core_of_format_5(&core) } else { core };
    let core = if format < 7 { ledger::campaign::register::core_of_format_6(&core) } else { core };
    let core = if format < 8 { ledger::campaign::draw_parts::core_of_format_7(&core) } else { core };
    let core = if format < 9 {
        let with_risk_files = ledger::campaign::risk_files::core_of_format_8(&core);
        ledger::campaign::plan_filing::core_of_format_8(&with_risk_files)
    } else {
        core
    };
    let core = if format < 10 { ledger::campaign::departments::core_of_format_9(&core) } else { core };
    if format < 11 {
        ledger::campaign::plan_handdown::core_of_format_10(&core)
    } else {
        core
    }
}

pub(crate) const TASKS: TableDefinition<u64, &[u8]> = TableDefinition::new("tasks");
pub(crate) const REPORTERS: TableDefinition<u64, &[u8]> = TableDefinition::new("reporters");
pub(crate) const SENT: TableDefinition<&[u8], u64> = TableDefinition::new("sent");
pub(crate) const RECEIVED: TableDefinition<&[u8], u64> = TableDefinition::new("received");
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// People's accounts by number (`ledger::organisation::Person`); since format 5.
pub(crate) const PEOPLE: TableDefinition<u64, &[u8]> = TableDefinition::new("people");
/// Logins → the account that signs in with each; since format 5.
pub(crate) const LOGINS: TableDefinition<&str, u64> = TableDefinition::new("logins");
/// The entity register's journal by number (`ledger::campaign::register::JournalEntry`); since
/// format 7.
pub(crate) const REGISTER: TableDefinition<u64, &[u8]> = TableDefinition::new("register");
/// The registration system's change ids → their journal numbers; since format 7.
pub(crate) const REGISTER_IDS: TableDefinition<&str, u64> = TableDefinition::new("register_ids");
/// The entities' risk files by USCC (`ledger::campaign::risk_files::RiskFile`); since format 9.
pub(crate) const RISK_FILES: TableDefinition<&str, &[u8]> = TableDefinition::new("risk_files");

const META_FORMAT: &str = "format";
const META_CORE: &str = "core";
const META_CHECKPOINT: &str = "checkpoint";
const META_DERIVED: &str = "derived_version";

/// The versions of what the store derives from its tasks: the indexes' layout and the tallies'
/// facts. A store derived under others derives everything again when opened.
fn derived_version() -> [u8; 8] {
    let mut version = [0u8; 8];
    version[..4].copy_from_slice(&index::INDEX_VERSION.to_le_bytes());
    version[4..].copy_from_slice(&ledger::response::TALLY_VERSION.to_le_bytes());
    version
}

/// Where a checkpoint stands in the log: the last applied entry and the membership then.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckpointMeta {
    pub applied: Option<LogId>,
    pub membership: StoredMembership<NodeId, BasicNode>,
}

impl CheckpointMeta {
    pub fn index(&self) -> Option<u64> {
        self.applied.map(|log_id| log_id.index)
    }
}

/// A store error as an IO error, so callers report one kind.
pub(crate) fn store_error(error: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("the ledger store: {error}"))
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// One replica's store.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    path: PathBuf,
}

impl Store {
    /// Opens the store at `path`, creating an empty one when there is none.
    pub fn open(path: &Path) -> io::Result<Store> {
        let db = redb::Builder::new().set_cache_size(STORE_CACHE_BYTES).create(path).map_err(store_error)?;
        let store = Store { db: Arc::new(db), path: path.to_owned() };
        store.check_format()?;
        Ok(store)
    }

    /// Opens a store that must exist (one received and loaded), never creating an empty one.
    pub fn open_existing(path: &Path) -> io::Result<Store> {
        let db = redb::Builder::new().set_cache_size(STORE_CACHE_BYTES).open(path).map_err(store_error)?;
        let store = Store { db: Arc::new(db), path: path.to_owned() };
        store.check_format()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Refuses a store of another layout; an empty store is stamped with this one. Indexes and
    /// tallies derived under another version (or none) are derived again
    /// (`index::derive_again`).
    fn check_format(&self) -> io::Result<()> {
        let read = self.db.begin_read().map_err(store_error)?;
        let found = match read.open_table(META) {
            Ok(meta) => meta.get(META_FORMAT).map_err(store_error)?.map(|value| value.value().to_vec()),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(error) => return Err(store_error(error)),
        };
        let Some(bytes) = found else {
            drop(read);
            return self.create_tables();
        };
        let version = <[u8; 4]>::try_from(bytes.as_slice())
            .map(u32::from_le_bytes)
            .map_err(|_| invalid(format!("{} has an unreadable format version", self.path.display())))?;
        if (STORE_FORMAT_OLDEST_READ..STORE_FORMAT).contains(&version) {
            drop(read);
            self.convert_from(version)?;
            return self.check_format();
        }
        if version != STORE_FORMAT {
            return Err(invalid(format!(
                "{} is a ledger store of format {version}; this build reads formats {STORE_FORMAT_OLDEST_READ} to {STORE_FORMAT}",
                self.path.display()
            )));
        }
        let meta = read.open_table(META).map_err(store_error)?;
        let derived = meta.get(META_DERIVED).map_err(store_error)?.map(|bytes| bytes.value().to_vec());
        drop(meta);
        let checkpoint = read_checkpoint(&read)?;
        drop(read);
        if derived.as_deref() != Some(derived_version().as_slice()) {
            tracing::info!(store = %self.path.display(), "deriving the store's indexes and tallies again");
            let position = checkpoint.as_ref().and_then(|(meta, _)| meta.index()).unwrap_or(0);
            let regions = match &checkpoint {
                Some((_, core)) => stream::ledger_of(self, core)?.regions(),
                None => Regions::compiled_shared().clone(),
            };
            let mut write = self.db.begin_write().map_err(store_error)?;
            write.set_quick_repair(true);
            index::derive_again(&write, regions, position.max(1))?;
            stamp_derived(&write)?;
            write.commit().map_err(store_error)?;
        }
        Ok(())
    }

    /// Converts a store of an older format in one durable transaction: the core of its
    /// checkpoint gains the fields of a ledger that used none of them (no reference data
    /// adopted, no stations); records, indexes and tallies stay.
    fn convert_from(&self, format: u32) -> io::Result<()> {
        tracing::info!(store = %self.path.display(), "converting the store from format {format} to {STORE_FORMAT}");
        let mut write = self.db.begin_write().map_err(store_error)?;
        write.set_quick_repair(true);
        {
            let mut meta = write.open_table(META).map_err(store_error)?;
            let core = meta.get(META_CORE).map_err(store_error)?.map(|core| core.value().to_vec());
            if let Some(core) = core {
                let converted = core_in_this_format(format, core);
                meta.insert(META_CORE, converted.as_slice()).map_err(store_error)?;
            }
            meta.insert(META_FORMAT, STORE_FORMAT.to_le_bytes().as_slice()).map_err(store_error)?;
        }
        // The tables of format 5, empty: the stores before it held no accounts.
        write.open_table(PEOPLE).map_err(store_error)?;
        write.open_table(LOGINS).map_err(store_error)?;
        // Those of format 7: no store before it held a register journal.
        write.open_table(REGISTER).map_err(store_error)?;
        write.open_table(REGISTER_IDS).map_err(store_error)?;
        // That of format 9: no store before it kept risk files.
        write.open_table(RISK_FILES).map_err(store_error)?;
        write.commit().map_err(store_error)
    }

    /// Stamps an empty store with this layout and creates every table, so readers never meet a
    /// missing one.
    fn create_tables(&self) -> io::Result<()> {
        let write = self.db.begin_write().map_err(store_error)?;
        {
            let mut meta = write.open_table(META).map_err(store_error)?;
            meta.insert(META_FORMAT, STORE_FORMAT.to_le_bytes().as_slice()).map_err(store_error)?;
            write.open_table(TASKS).map_err(store_error)?;
            write.open_table(REPORTERS).map_err(store_error)?;
            write.open_table(SENT).map_err(store_error)?;
            write.open_table(RECEIVED).map_err(store_error)?;
            write.open_table(PEOPLE).map_err(store_error)?;
            write.open_table(LOGINS).map_err(store_error)?;
            write.open_table(REGISTER).map_err(store_error)?;
            write.open_table(REGISTER_IDS).map_err(store_error)?;
            write.open_table(RISK_FILES).map_err(store_error)?;
            index::Indexes::open(&write, Regions::compiled_shared().clone())?;
        }
        stamp_derived(&write)?;
        write.commit().map_err(store_error)
    }

    /// The last checkpoint: where it stands and the ledger's core then; `None` for a store no
    /// checkpoint was written to.
    pub fn last_checkpoint(&self) -> io::Result<Option<(CheckpointMeta, Vec<u8>)>> {
        let read = self.db.begin_read().map_err(store_error)?;
        read_checkpoint(&read)
    }

    /// Writes a checkpoint in one durable transaction: the sealed changes, the core encoded in
    /// the same state, and where it stands in the log.
    /// `regions` is the table of the ledger whose core it is, for the bureaus each task is
    /// listed under.
    pub fn write_checkpoint(
        &self,
        changes: &Changes,
        core: &[u8],
        meta: &CheckpointMeta,
        regions: &Arc<Regions>,
    ) -> io::Result<()> {
        let mut write = self.db.begin_write().map_err(store_error)?;
        // The allocator state is saved with each commit, so a crash needs no repair walk of
        // the whole file at the next start (measured in docs/storage.md).
        write.set_quick_repair(true);
        {
            let mut tasks = write.open_table(TASKS).map_err(store_error)?;
            let mut indexes = index::Indexes::open(&write, regions.clone())?;
            let mut replaced = Vec::with_capacity(changes.tasks.len());
            for (id, task) in &changes.tasks {
                let stored = tasks.get(id.0).map_err(store_error)?.map(|bytes| bytes.value().to_vec());
                let old: Option<Task> = stored
                    .map(|bytes| ledger::codec::decode_task(&bytes))
                    .transpose()
                    .map_err(|e| invalid(format!("task {id} in the store: {e}")))?;
                // A change made outside a log (a tool's ledger) is filed under the checkpoint.
                let position = changes.positions.get(id).copied().filter(|p| *p > 0);
                replaced.push((old, &**task, position.unwrap_or(meta.index().unwrap_or(0)).max(1)));
                let bytes = ledger::codec::encode(&**task).map_err(store_error)?;
                tasks.insert(id.0, bytes.as_slice()).map_err(store_error)?;
            }
            indexes.reindex(replaced.iter().map(|(old, new, position)| (old.as_ref(), *new, *position)))?;
            indexes.finish()?;
            let mut reporters = write.open_table(REPORTERS).map_err(store_error)?;
            for (id, reporter) in &changes.reporters {
                let bytes = ledger::codec::encode(reporter).map_err(store_error)?;
                reporters.insert(id.0, bytes.as_slice()).map_err(store_error)?;
            }
            let mut sent = write.open_table(SENT).map_err(store_error)?;
            for (forward, task) in &changes.sent {
                let key = forward_key(*forward);
                match task {
                    Some(task) => sent.insert(key.as_slice(), task.0).map_err(store_error)?,
                    None => sent.remove(key.as_slice()).map_err(store_error)?,
                };
            }
            let mut received = write.open_table(RECEIVED).map_err(store_error)?;
            for (forward, task) in &changes.received {
                received.insert(forward_key(*forward).as_slice(), task.0).map_err(store_error)?;
            }
            let mut people = write.open_table(PEOPLE).map_err(store_error)?;
            for (id, person) in &changes.people {
                let bytes = ledger::codec::encode(&**person).map_err(store_error)?;
                people.insert(id.0, bytes.as_slice()).map_err(store_error)?;
            }
            let mut logins = write.open_table(LOGINS).map_err(store_error)?;
            for (login, id) in &changes.logins {
                logins.insert(login.as_str(), id.0).map_err(store_error)?;
            }
            let mut register = write.open_table(REGISTER).map_err(store_error)?;
            for (seq, entry) in &changes.register {
                let bytes = ledger::codec::encode(&**entry).map_err(store_error)?;
                register.insert(*seq, bytes.as_slice()).map_err(store_error)?;
            }
            let mut register_ids = write.open_table(REGISTER_IDS).map_err(store_error)?;
            for (id, seq) in &changes.register_ids {
                register_ids.insert(id.as_str(), *seq).map_err(store_error)?;
            }
            let mut risk_files = write.open_table(RISK_FILES).map_err(store_error)?;
            for (uscc, file) in &changes.risk_files {
                let bytes = ledger::codec::encode(&**file).map_err(store_error)?;
                risk_files.insert(uscc.as_str(), bytes.as_slice()).map_err(store_error)?;
            }
            write_checkpoint_meta(&write, core, meta)?;
        }
        write.commit().map_err(store_error)
    }

    /// The records as of the last checkpoint, for the ledger to read.
    pub fn records(&self) -> Arc<StoreRecords> {
        Arc::new(StoreRecords { db: self.db.clone() })
    }

    /// A consistent view of the last checkpoint, for streaming it (a snapshot transfer, a
    /// backup); writes go on meanwhile.
    pub fn view(&self) -> io::Result<ReadTransaction> {
        self.db.begin_read().map_err(store_error)
    }
}

/// Stamps what `write` derives as derived under this build's versions.
fn stamp_derived(write: &redb::WriteTransaction) -> io::Result<()> {
    let mut meta = write.open_table(META).map_err(store_error)?;
    meta.insert(META_DERIVED, derived_version().as_slice()).map_err(store_error)?;
    Ok(())
}

/// A task as a view of the store holds it.
pub fn task_in(view: &ReadTransaction, id: TaskId) -> io::Result<Option<Task>> {
    let tasks = view.open_table(TASKS).map_err(store_error)?;
    let found = tasks.get(id.0).map_err(store_error)?;
    found
        .map(|bytes| {
            ledger::codec::decode_task(bytes.value()).map_err(|e| invalid(format!("task {id} in the store: {e}")))
        })
        .transpose()
}

/// The checkpoint's meta and core in a view; `None` when no checkpoint was written.
pub(crate) fn read_checkpoint(read: &ReadTransaction) -> io::Result<Option<(CheckpointMeta, Vec<u8>)>> {
    let meta = read.open_table(META).map_err(store_error)?;
    let Some(checkpoint) = meta.get(META_CHECKPOINT).map_err(store_error)? else {
        return Ok(None);
    };
    let checkpoint: CheckpointMeta =
        ledger::codec::decode(checkpoint.value()).map_err(|error| invalid(format!("checkpoint meta: {error}")))?;
    let core = meta.get(META_CORE).map_err(store_error)?.ok_or_else(|| invalid("a checkpoint without its core"))?;
    Ok(Some((checkpoint, core.value().to_vec())))
}

pub(crate) fn write_checkpoint_meta(
    write: &redb::WriteTransaction,
    core: &[u8],
    meta: &CheckpointMeta,
) -> io::Result<()> {
    let mut table = write.open_table(META).map_err(store_error)?;
    table.insert(META_CORE, core).map_err(store_error)?;
    let encoded = ledger::codec::encode(meta).map_err(store_error)?;
    table.insert(META_CHECKPOINT, encoded.as_slice()).map_err(store_error)?;
    Ok(())
}

/// The ledger's records read from a store. A read that fails (a failed disk, a damaged file)
/// panics: inside `apply` the state machine stops the replica and says why, because answering
/// "missing" would make it decide unlike the others.
pub struct StoreRecords {
    db: Arc<Database>,
}

impl StoreRecords {
    fn read(&self) -> ReadTransaction {
        self.db.begin_read().unwrap_or_else(|error| panic!("the ledger store cannot be read: {error}"))
    }
}

fn unreadable(error: impl std::fmt::Display) -> ! {
    panic!("the ledger store cannot be read: {error}")
}

fn decode_task(what: &str, bytes: &[u8]) -> Task {
    ledger::codec::decode_task(bytes).unwrap_or_else(|error| panic!("the ledger store holds a damaged {what}: {error}"))
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> T {
    ledger::codec::decode(bytes).unwrap_or_else(|error| panic!("the ledger store holds a damaged {what}: {error}"))
}

impl Records for StoreRecords {
    fn task(&self, id: TaskId) -> Option<Arc<Task>> {
        let read = self.read();
        let tasks = read.open_table(TASKS).unwrap_or_else(|e| unreadable(e));
        let found = tasks.get(id.0).unwrap_or_else(|e| unreadable(e));
        found.map(|bytes| Arc::new(decode_task("task", bytes.value())))
    }

    fn reporter(&self, task: TaskId) -> Option<Reporter> {
        let read = self.read();
        let reporters = read.open_table(REPORTERS).unwrap_or_else(|e| unreadable(e));
        let found = reporters.get(task.0).unwrap_or_else(|e| unreadable(e));
        found.map(|bytes| decode::<Reporter>("reporter", bytes.value()))
    }

    fn sent(&self, forward: ForwardId) -> Option<TaskId> {
        let read = self.read();
        let sent = read.open_table(SENT).unwrap_or_else(|e| unreadable(e));
        let found = sent.get(forward_key(forward).as_slice()).unwrap_or_else(|e| unreadable(e));
        found.map(|id| TaskId(id.value()))
    }

    fn received(&self, forward: ForwardId) -> Option<TaskId> {
        let read = self.read();
        let received = read.open_table(RECEIVED).unwrap_or_else(|e| unreadable(e));
        let found = received.get(forward_key(forward).as_slice()).unwrap_or_else(|e| unreadable(e));
        found.map(|id| TaskId(id.value()))
    }

    fn person(&self, id: PersonId) -> Option<Arc<Person>> {
        let read = self.read();
        let people = read.open_table(PEOPLE).unwrap_or_else(|e| unreadable(e));
        let found = people.get(id.0).unwrap_or_else(|e| unreadable(e));
        found.map(|bytes| Arc::new(decode::<Person>("person", bytes.value())))
    }

    fn login(&self, login: &str) -> Option<PersonId> {
        let read = self.read();
        let logins = read.open_table(LOGINS).unwrap_or_else(|e| unreadable(e));
        let found = logins.get(login).unwrap_or_else(|e| unreadable(e));
        found.map(|id| PersonId(id.value()))
    }

    fn people(&self) -> Box<dyn Iterator<Item = Arc<Person>> + '_> {
        let read = self.read();
        let people = read.open_table(PEOPLE).unwrap_or_else(|e| unreadable(e));
        let range = people.range_owned(..).unwrap_or_else(|e| unreadable(e));
        Box::new(range.map(|entry| {
            let (_, bytes) = entry.unwrap_or_else(|e| unreadable(e));
            Arc::new(decode::<Person>("person", bytes.value()))
        }))
    }

    fn register_entry(&self, seq: u64) -> Option<Arc<JournalEntry>> {
        let read = self.read();
        let register = read.open_table(REGISTER).unwrap_or_else(|e| unreadable(e));
        let found = register.get(seq).unwrap_or_else(|e| unreadable(e));
        found.map(|bytes| Arc::new(decode::<JournalEntry>("register change", bytes.value())))
    }

    fn register_entries(&self, from: u64, to: u64) -> Vec<Arc<JournalEntry>> {
        let read = self.read();
        let register = read.open_table(REGISTER).unwrap_or_else(|e| unreadable(e));
        let range = register.range(from..=to).unwrap_or_else(|e| unreadable(e));
        range
            .map(|entry| {
                let (_, bytes) = entry.unwrap_or_else(|e| unreadable(e));
                Arc::new(decode::<JournalEntry>("register change", bytes.value()))
            })
            .collect()
    }

    fn register_change(&self, id: &str) -> Option<u64> {
        let read = self.read();
        let ids = read.open_table(REGISTER_IDS).unwrap_or_else(|e| unreadable(e));
        let found = ids.get(id).unwrap_or_else(|e| unreadable(e));
        found.map(|seq| seq.value())
    }

    fn risk_file(&self, uscc: &Uscc) -> Option<Arc<RiskFile>> {
        let read = self.read();
        let files = read.open_table(RISK_FILES).unwrap_or_else(|e| unreadable(e));
        let found = files.get(uscc.as_str()).unwrap_or_else(|e| unreadable(e));
        found.map(|bytes| Arc::new(decode::<RiskFile>("risk file", bytes.value())))
    }

    fn risk_files(&self) -> Box<dyn Iterator<Item = Arc<RiskFile>> + '_> {
        let read = self.read();
        let files = read.open_table(RISK_FILES).unwrap_or_else(|e| unreadable(e));
        let range = files.range_owned(..).unwrap_or_else(|e| unreadable(e));
        Box::new(range.map(|entry| {
            let (_, bytes) = entry.unwrap_or_else(|e| unreadable(e));
            Arc::new(decode::<RiskFile>("risk file", bytes.value()))
        }))
    }

    fn tasks_newest_first(&self, before: Option<TaskId>) -> Box<dyn Iterator<Item = Arc<Task>> + '_> {
        let read = self.read();
        let tasks = read.open_table(TASKS).unwrap_or_else(|e| unreadable(e));
        let upper = before.map_or(u64::MAX, |id| id.0);
        let range = tasks.range_owned(..upper).unwrap_or_else(|e| unreadable(e));
        Box::new(range.rev().map(|entry| {
            let (_, bytes) = entry.unwrap_or_else(|e| unreadable(e));
            Arc::new(decode_task("task", bytes.value()))
        }))
    }
}
