//! The store's tallies: the response-metrics facts of every task summed per (bureau, Beijing
//! dispatch day) (`ledger::response::Tally`), and every task counted per (state, kind). Derived
//! from the tasks like the indexes and written by the same transactions, so a node's book of
//! response metrics starts from them (and the changes since the checkpoint) instead of reading
//! every task ever filed (`node::response_metrics`).
//!
//! Keys (big-endian): `TALLIES` `[bureau u32][day u32]` → the encoding (`ledger::codec`) of a `Tally`; `CENSUS`
//! `[state u8][kind u8]` → tasks. An empty tally or count is not kept.
//!
//! What they derive is versioned (`ledger::response::TALLY_VERSION`): a store whose tallies were
//! derived under another version derives them again when opened (`index::derive_again`).

use std::collections::BTreeMap;
use std::io;

use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};

use ledger::response::{facts_changed, Tally};
use ledger::{BureauCode, Task, TaskKind, TaskState};

use super::index::position;
use super::{invalid, store_error};

pub(crate) const TALLIES: TableDefinition<u64, &[u8]> = TableDefinition::new("tally_response");
pub(crate) const CENSUS: TableDefinition<u16, u64> = TableDefinition::new("tally_census");

fn tally_key(bureau: BureauCode, day: u32) -> u64 {
    (u64::from(bureau.as_u32()) << 32) | u64::from(day)
}

fn census_key(state: TaskState, kind: TaskKind) -> u16 {
    u16::from_be_bytes([position(TaskState::ALL, &state), position(TaskKind::ALL, &kind)])
}

/// The tallies open in a write transaction, with the changes of the tasks folded in so far kept
/// in memory until `finish` writes each touched tally once.
pub(crate) struct Tallies<'txn> {
    tallies: redb::Table<'txn, u64, &'static [u8]>,
    census: redb::Table<'txn, u16, u64>,
    touched: BTreeMap<u64, Tally>,
    census_change: BTreeMap<u16, i64>,
}

impl<'txn> Tallies<'txn> {
    pub(crate) fn open(write: &'txn WriteTransaction) -> io::Result<Tallies<'txn>> {
        Ok(Tallies {
            tallies: write.open_table(TALLIES).map_err(store_error)?,
            census: write.open_table(CENSUS).map_err(store_error)?,
            touched: BTreeMap::new(),
            census_change: BTreeMap::new(),
        })
    }

    fn tally(&mut self, key: u64) -> io::Result<&mut Tally> {
        if !self.touched.contains_key(&key) {
            let stored = match self.tallies.get(key).map_err(store_error)? {
                Some(bytes) => decode(key, bytes.value())?,
                None => Tally::default(),
            };
            self.touched.insert(key, stored);
        }
        Ok(self.touched.get_mut(&key).expect("just inserted"))
    }

    /// Replaces what `old` (the stored version, if any) counted by what `new` counts.
    pub(crate) fn fold(&mut self, old: Option<&Task>, new: &Task) -> io::Result<()> {
        if let Some(old) = old {
            *self.census_change.entry(census_key(old.handling.state, old.kind)).or_default() -= 1;
        }
        *self.census_change.entry(census_key(new.handling.state, new.kind)).or_default() += 1;
        let Some((before, after)) = facts_changed(old, new) else { return Ok(()) };
        if let Some(facts) = before {
            let id = new.id;
            self.tally(tally_key(facts.bureau, facts.day))?
                .remove(&facts)
                .map_err(|e| invalid(format!("task {id}'s stored version: {e}")))?;
        }
        if let Some(facts) = after {
            self.tally(tally_key(facts.bureau, facts.day))?.add(&facts);
        }
        Ok(())
    }

    /// Writes every tally and count changed.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        for (key, tally) in std::mem::take(&mut self.touched) {
            if tally.is_empty() {
                self.tallies.remove(key).map_err(store_error)?;
            } else {
                let bytes = ledger::codec::encode(&tally).map_err(store_error)?;
                self.tallies.insert(key, bytes.as_slice()).map_err(store_error)?;
            }
        }
        for (key, change) in std::mem::take(&mut self.census_change) {
            let stored = self.census.get(key).map_err(store_error)?.map_or(0, |count| count.value());
            let count = stored
                .checked_add_signed(change)
                .ok_or_else(|| invalid("the census counts fewer tasks than the store changes"))?;
            if count == 0 {
                self.census.remove(key).map_err(store_error)?;
            } else {
                self.census.insert(key, count).map_err(store_error)?;
            }
        }
        Ok(())
    }
}

fn decode(key: u64, bytes: &[u8]) -> io::Result<Tally> {
    let tally: Tally = ledger::codec::decode(bytes).map_err(|e| invalid(format!("tally {key:x}: {e}")))?;
    if !tally.is_well_formed() {
        return Err(invalid(format!("tally {key:x} does not add up")));
    }
    Ok(tally)
}

/// Every tally of a view: (bureau, Beijing day, tally), by bureau then day.
pub fn tallies(view: &ReadTransaction) -> io::Result<Vec<(BureauCode, u32, Tally)>> {
    let table = view.open_table(TALLIES).map_err(store_error)?;
    let mut all = Vec::new();
    for entry in table.iter().map_err(store_error)? {
        let (key, bytes) = entry.map_err(store_error)?;
        let key = key.value();
        let bureau = BureauCode::from_number((key >> 32) as u32)
            .ok_or_else(|| invalid(format!("tally {key:x} is of no six-digit region code")))?;
        all.push((bureau, key as u32, decode(key, bytes.value())?));
    }
    Ok(all)
}

/// Every task of a view counted by state and kind.
pub fn census(view: &ReadTransaction) -> io::Result<Vec<(TaskState, TaskKind, u64)>> {
    let table = view.open_table(CENSUS).map_err(store_error)?;
    let mut all = Vec::new();
    for entry in table.iter().map_err(store_error)? {
        let (key, count) = entry.map_err(store_error)?;
        let [state, kind] = key.value().to_be_bytes();
        let state = TaskState::ALL.get(usize::from(state));
        let kind = TaskKind::ALL.get(usize::from(kind));
        let (Some(state), Some(kind)) = (state, kind) else {
            return Err(invalid(format!("a census count of no known state and kind: {:x}", key.value())));
        };
        all.push((*state, *kind, count.value()));
    }
    Ok(all)
}
