//! The store's indexes, so that a page of a list costs the page and not the ledger.
//!
//! They are derived from each task's version and written by the checkpoint that writes the task,
//! in the same transaction: the old version's keys go, the new version's come, so the indexes
//! always agree with the tasks table. Records changed since the checkpoint are not in them; a
//! reader merges those in from memory (`node::task_query`).
//!
//! A task is *listed under* every bureau whose subtree holds its origin, its assignee or a bureau
//! it was escalated to: exactly the command centres that may see it (`ledger::access`). The
//! GB/T 2260 tree has four levels, so that is a handful of bureaus.
//!
//! Keys (big-endian, so key order is the order read):
//! - `LISTED`: `[bureau u32][facet u8][facet value u8][!id u64]`: newest first within a
//!   bureau, for every task (`FACET_ALL`), by state (`FACET_STATE`) and by kind (`FACET_KIND`).
//! - `RUNNING`: `[bureau u32][running deadline ms u64][id u64]`: tasks whose clock runs, least
//!   time left first; an overdue task's deadline lies before now.
//! - `OPEN`: `[id u64]`: tasks with open work (`Task::has_open_work`: not in a final state, or
//!   a clock still running), for what is rebuilt from open work (the deadline watch, a console's
//!   snapshot, open handovers).
//! - `BY_USCC`: `[uscc 18 bytes][!id u64]`: every task about a market entity, newest first.
//! - `CHANGED`: `(position, id)`: every task under the position (log index) of the entry that
//!   last changed it, for the feed of changes to resume from any position; `POSITION`: `id` →
//!   that position, to move the task's key when it changes again. A store loaded from a stream
//!   files every task under the stream's checkpoint index (it knows no older positions).

use std::collections::BTreeSet;
use std::sync::Arc;

use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};

use ledger::{BureauCode, Regions, Task, TaskId, TaskKind, TaskState};

use super::tally::Tallies;
use super::{invalid, store_error, TASKS};

/// The version of the index layout below; a store whose indexes were derived under another
/// derives them again when opened (`derive_again`).
pub const INDEX_VERSION: u32 = 1;

pub(crate) const LISTED: TableDefinition<&[u8], ()> = TableDefinition::new("index_listed");
pub(crate) const RUNNING: TableDefinition<&[u8], ()> = TableDefinition::new("index_running");
pub(crate) const OPEN: TableDefinition<u64, ()> = TableDefinition::new("index_open");
pub(crate) const BY_USCC: TableDefinition<&[u8], ()> = TableDefinition::new("index_uscc");
pub(crate) const CHANGED: TableDefinition<(u64, u64), ()> = TableDefinition::new("index_changed");
pub(crate) const POSITION: TableDefinition<u64, u64> = TableDefinition::new("index_position");

const FACET_ALL: u8 = 0;
const FACET_STATE: u8 = 1;
const FACET_KIND: u8 = 2;

/// Which tasks of a bureau a listing reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Facet {
    All,
    State(TaskState),
    Kind(TaskKind),
}

/// The position of a variant in its `ALL` list: the byte its index keys carry. Stable because
/// `ALL` lists variants in declaration order and new ones are added at the end (a reordering
/// changes `STORE_FORMAT`).
pub(crate) fn position<T: PartialEq>(all: &[T], value: &T) -> u8 {
    all.iter().position(|v| v == value).expect("a variant is in its ALL list") as u8
}

impl Facet {
    fn bytes(self) -> [u8; 2] {
        match self {
            Facet::All => [FACET_ALL, 0],
            Facet::State(state) => [FACET_STATE, position(TaskState::ALL, &state)],
            Facet::Kind(kind) => [FACET_KIND, position(TaskKind::ALL, &kind)],
        }
    }
}

/// The bureaus `task` is listed under, by the group's region table. The same in every version
/// of the table that knows the task's codes (codes and their parents never change), so a task's
/// keys are removed with the table that put them there.
/// A task handed down to a station is listed under the station too (a task without handlers,
/// as every task before them, is listed as it always was: the indexes need no new version).
pub fn listed_under(regions: &Regions, task: &Task) -> BTreeSet<BureauCode> {
    let related = std::iter::once(task.origin_bureau)
        .chain(task.handling.assignee_bureau)
        .chain(task.field_work.handlers.unit)
        .chain(task.handling.escalated_to.iter().copied());
    related.flat_map(|code| regions.ancestors(code)).collect()
}

fn listed_key(bureau: BureauCode, facet: Facet, id: TaskId) -> [u8; 15] {
    let mut key = [0u8; 15];
    key[..4].copy_from_slice(&bureau.as_u32().to_be_bytes());
    key[4..6].copy_from_slice(&facet.bytes());
    key[6..14].copy_from_slice(&(!id.0).to_be_bytes());
    // The last byte stays 0: room for a later facet without a new layout.
    key
}

fn running_key(bureau: BureauCode, deadline_ms: u64, id: TaskId) -> [u8; 20] {
    let mut key = [0u8; 20];
    key[..4].copy_from_slice(&bureau.as_u32().to_be_bytes());
    key[4..12].copy_from_slice(&deadline_ms.to_be_bytes());
    key[12..].copy_from_slice(&id.0.to_be_bytes());
    key
}

fn uscc_key(uscc: &str, id: TaskId) -> Vec<u8> {
    let mut key = uscc.as_bytes().to_vec();
    key.extend_from_slice(&(!id.0).to_be_bytes());
    key
}

/// Every index key of one version of a task.
#[derive(Default, PartialEq, Eq)]
struct Keys {
    listed: BTreeSet<[u8; 15]>,
    running: BTreeSet<[u8; 20]>,
    open: bool,
    uscc: Option<Vec<u8>>,
}

fn keys_of(regions: &Regions, task: &Task) -> Keys {
    let bureaus = listed_under(regions, task);
    let facets = [Facet::All, Facet::State(task.handling.state), Facet::Kind(task.kind)];
    let listed = bureaus.iter().flat_map(|b| facets.iter().map(move |f| listed_key(*b, *f, task.id))).collect();
    // A record of a task worked on in another group runs the clocks mirrored from there: the
    // list shows its time left like any other's.
    let running = match task.running_deadline_ms() {
        Some(deadline_ms) => bureaus.iter().map(|b| running_key(*b, deadline_ms, task.id)).collect(),
        None => BTreeSet::new(),
    };
    Keys {
        listed,
        running,
        open: task.has_open_work(),
        uscc: task.subject.uscc.as_ref().map(|uscc| uscc_key(uscc.as_str(), task.id)),
    }
}

/// The index tables, open in a write transaction.
pub(crate) struct Indexes<'txn> {
    listed: redb::Table<'txn, &'static [u8], ()>,
    running: redb::Table<'txn, &'static [u8], ()>,
    open: redb::Table<'txn, u64, ()>,
    by_uscc: redb::Table<'txn, &'static [u8], ()>,
    changed: redb::Table<'txn, (u64, u64), ()>,
    position: redb::Table<'txn, u64, u64>,
    /// The tallies, derived in the same pass (`super::tally`).
    tallies: Tallies<'txn>,
    /// The group's region table, for the bureaus a task is listed under.
    regions: Arc<Regions>,
}

impl<'txn> Indexes<'txn> {
    /// Opens (creating them in a new store) the index tables.
    pub(crate) fn open(write: &'txn WriteTransaction, regions: Arc<Regions>) -> std::io::Result<Indexes<'txn>> {
        Ok(Indexes {
            listed: write.open_table(LISTED).map_err(store_error)?,
            running: write.open_table(RUNNING).map_err(store_error)?,
            open: write.open_table(OPEN).map_err(store_error)?,
            by_uscc: write.open_table(BY_USCC).map_err(store_error)?,
            changed: write.open_table(CHANGED).map_err(store_error)?,
            position: write.open_table(POSITION).map_err(store_error)?,
            tallies: Tallies::open(write)?,
            regions,
        })
    }

    /// Writes what was kept back until every task was reindexed (the tallies).
    pub(crate) fn finish(self) -> std::io::Result<()> {
        self.tallies.finish()
    }

    /// Replaces the index keys of many tasks: for each (`old`, the stored version if any;
    /// `new`; `position`, the log index of its change) the old version's keys go and the new
    /// one's come. Every table's removals and insertions are sorted first, so a batch (a
    /// checkpoint's or a load's thousands of tasks) walks each B-tree once in key order instead
    /// of jumping about it: pages are read and written once each, while they are in the cache.
    /// Keys of different tasks never collide (each holds its task's id), so the order of the
    /// tasks does not matter.
    pub(crate) fn reindex<'t>(
        &mut self,
        batch: impl IntoIterator<Item = (Option<&'t Task>, &'t Task, u64)>,
    ) -> std::io::Result<()> {
        let mut listed = Edits::default();
        let mut running = Edits::default();
        let mut open = Edits::default();
        let mut by_uscc = Edits::default();
        let mut changed = Edits::default();
        let mut positions = Vec::new();
        // Each task at most once: all removals run before all insertions, so a second version of
        // a task in the same batch would leave the first one's keys behind. (A checkpoint's
        // changes are a map by task; a stream's tasks strictly increase.)
        for (old, new, position) in batch {
            self.tallies.fold(old, new)?;
            positions.push((new.id.0, position));
            let before = old.map(|old| keys_of(&self.regions, old)).unwrap_or_default();
            let after = keys_of(&self.regions, new);
            listed.between(&before.listed, &after.listed);
            running.between(&before.running, &after.running);
            match (before.open, after.open) {
                (false, true) => open.insert.push(new.id.0),
                (true, false) => open.remove.push(new.id.0),
                _ => {}
            }
            if before.uscc != after.uscc {
                by_uscc.remove.extend(before.uscc);
                by_uscc.insert.extend(after.uscc);
            }
        }
        positions.sort_unstable();
        assert!(positions.windows(2).all(|pair| pair[0].0 != pair[1].0), "a task twice in one reindex batch");
        for &(id, position) in &positions {
            let moved_from = self.position.insert(id, position).map_err(store_error)?.map(|p| p.value());
            if moved_from != Some(position) {
                changed.remove.extend(moved_from.map(|from| (from, id)));
                changed.insert.push((position, id));
            }
        }
        // Removals, then insertions, each in key order.
        macro_rules! apply {
            ($table:expr, $edits:expr, |$key:ident| $as_key:expr) => {{
                let mut edits = $edits;
                edits.remove.sort_unstable();
                edits.insert.sort_unstable();
                for $key in &edits.remove {
                    $table.remove($as_key).map_err(store_error)?;
                }
                for $key in &edits.insert {
                    $table.insert($as_key, ()).map_err(store_error)?;
                }
            }};
        }
        apply!(self.listed, listed, |key| key.as_slice());
        apply!(self.running, running, |key| key.as_slice());
        apply!(self.open, open, |id| *id);
        apply!(self.by_uscc, by_uscc, |key| key.as_slice());
        apply!(self.changed, changed, |key| *key);
        Ok(())
    }
}

/// The keys one table loses and gains in a batch.
struct Edits<K> {
    remove: Vec<K>,
    insert: Vec<K>,
}

impl<K> Default for Edits<K> {
    fn default() -> Edits<K> {
        Edits { remove: Vec::new(), insert: Vec::new() }
    }
}

impl<K: Ord + Clone> Edits<K> {
    /// The keys of a task's old version not in its new one go; the new ones not in the old come.
    fn between(&mut self, before: &BTreeSet<K>, after: &BTreeSet<K>) {
        self.remove.extend(before.difference(after).cloned());
        self.insert.extend(after.difference(before).cloned());
    }
}

type Ids = Box<dyn Iterator<Item = std::io::Result<TaskId>>>;
/// Tasks under the position of their last change: (position, task).
type Positions = Box<dyn Iterator<Item = std::io::Result<(u64, TaskId)>>>;
/// Running clocks in order: (deadline, task).
type Clocks = Box<dyn Iterator<Item = std::io::Result<(u64, TaskId)>>>;

/// The ids listed under `bureau` in `facet`, newest first, below `before`.
pub fn listed(
    view: &ReadTransaction,
    bureau: BureauCode,
    facet: Facet,
    before: Option<TaskId>,
) -> std::io::Result<Ids> {
    let table = view.open_table(LISTED).map_err(store_error)?;
    let start = listed_key(bureau, facet, TaskId(before.map_or(u64::MAX, |id| id.0.saturating_sub(1))));
    let mut end = listed_key(bureau, facet, TaskId(0));
    end[14] = 1;
    let range = table.range_owned(start.as_slice()..end.as_slice()).map_err(store_error)?;
    let skip_before = before.is_some_and(|id| id.0 == 0);
    Ok(Box::new(range.filter(move |_| !skip_before).map(|entry| {
        let (key, _) = entry.map_err(store_error)?;
        let key = key.value();
        Ok(TaskId(!u64::from_be_bytes(key[6..14].try_into().expect("8 bytes"))))
    })))
}

/// Tasks under `bureau` whose clock runs, least time left first, after `(deadline, id)`.
pub fn running(view: &ReadTransaction, bureau: BureauCode, after: Option<(u64, u64)>) -> std::io::Result<Clocks> {
    let table = view.open_table(RUNNING).map_err(store_error)?;
    let start = match after {
        Some((deadline_ms, id)) => match id.checked_add(1) {
            Some(next) => running_key(bureau, deadline_ms, TaskId(next)),
            None => running_key(bureau, deadline_ms.saturating_add(1), TaskId(0)),
        },
        None => running_key(bureau, 0, TaskId(0)),
    };
    let mut end = [0u8; 20];
    end[..4].copy_from_slice(&(bureau.as_u32() + 1).to_be_bytes());
    let range = table.range_owned(start.as_slice()..end.as_slice()).map_err(store_error)?;
    Ok(Box::new(range.map(|entry| {
        let (key, _) = entry.map_err(store_error)?;
        let key = key.value();
        let deadline_ms = u64::from_be_bytes(key[4..12].try_into().expect("8 bytes"));
        Ok((deadline_ms, TaskId(u64::from_be_bytes(key[12..20].try_into().expect("8 bytes")))))
    })))
}

/// Every task with open work, oldest first.
pub fn open(view: &ReadTransaction) -> std::io::Result<Ids> {
    let table = view.open_table(OPEN).map_err(store_error)?;
    let range = table.range_owned(..).map_err(store_error)?;
    Ok(Box::new(range.map(|entry| entry.map(|(id, _)| TaskId(id.value())).map_err(store_error))))
}

/// Every task about the entity `uscc`, newest first, below `before`.
pub fn by_uscc(view: &ReadTransaction, uscc: &str, before: Option<TaskId>) -> std::io::Result<Ids> {
    let table = view.open_table(BY_USCC).map_err(store_error)?;
    let start = uscc_key(uscc, TaskId(before.map_or(u64::MAX, |id| id.0.saturating_sub(1))));
    let mut end = uscc.as_bytes().to_vec();
    end.extend_from_slice(&[0xff; 9]);
    let range = table.range_owned(start.as_slice()..end.as_slice()).map_err(store_error)?;
    let skip_all = before.is_some_and(|id| id.0 == 0);
    Ok(Box::new(range.filter(move |_| !skip_all).map(|entry| {
        let (key, _) = entry.map_err(store_error)?;
        let key = key.value();
        Ok(TaskId(!u64::from_be_bytes(key[key.len() - 8..].try_into().expect("8 bytes"))))
    })))
}

/// Tasks by the position of their last change, in (position, task) order: after `position`, or
/// with `after`, at `position` after that task too.
pub fn changed_after(view: &ReadTransaction, position: u64, after: Option<TaskId>) -> std::io::Result<Positions> {
    let table = view.open_table(CHANGED).map_err(store_error)?;
    let start = match after {
        Some(TaskId(id)) if id < u64::MAX => (position, id + 1),
        _ => match position.checked_add(1) {
            Some(next) => (next, 0),
            None => return Ok(Box::new(std::iter::empty())),
        },
    };
    let range = table.range_owned(start..).map_err(store_error)?;
    Ok(Box::new(range.map(|entry| {
        let (key, _) = entry.map_err(store_error)?;
        let (position, id) = key.value();
        Ok((position, TaskId(id)))
    })))
}

/// Derives every index and tally again from the tasks (a store from before them, or derived
/// under another version), filing each task's last change under `position` (the checkpoint):
/// once, at open. Costs a read of every task.
pub(crate) fn derive_again(write: &WriteTransaction, regions: Arc<Regions>, position: u64) -> std::io::Result<()> {
    write.delete_table(LISTED).map_err(store_error)?;
    write.delete_table(RUNNING).map_err(store_error)?;
    write.delete_table(OPEN).map_err(store_error)?;
    write.delete_table(BY_USCC).map_err(store_error)?;
    write.delete_table(CHANGED).map_err(store_error)?;
    write.delete_table(POSITION).map_err(store_error)?;
    write.delete_table(super::tally::TALLIES).map_err(store_error)?;
    write.delete_table(super::tally::CENSUS).map_err(store_error)?;
    let tasks = write.open_table(TASKS).map_err(store_error)?;
    let mut indexes = Indexes::open(write, regions)?;
    for entry in tasks.iter().map_err(store_error)? {
        let (id, bytes) = entry.map_err(store_error)?;
        let task: Task = ledger::codec::decode_task(bytes.value())
            .map_err(|e| invalid(format!("task {} in the store: {e}", id.value())))?;
        indexes.reindex([(None, &task, position)])?;
    }
    indexes.finish()
}
