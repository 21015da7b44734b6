//! redb: a copy-on-write B-tree in one file; non-durable commits are visible to readers and
//! roll back together to the last durable commit after a crash.

use std::path::Path;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use crate::{Change, Engine, PAGE_SIZE};

const TASKS: TableDefinition<u64, &[u8]> = TableDefinition::new("tasks");
const INDEX: TableDefinition<&[u8], ()> = TableDefinition::new("index");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// The cache the node would give the store.
const CACHE_BYTES: usize = 256 * 1024 * 1024;

pub struct Redb {
    db: Database,
    /// Save the allocator state at each durable commit, so a crash needs no full repair.
    quick_repair: bool,
}

impl Redb {
    pub fn open(dir: &Path, quick_repair: bool) -> Redb {
        let db = redb::Builder::new().set_cache_size(CACHE_BYTES).create(dir.join("store.redb")).expect("open redb");
        Redb { db, quick_repair }
    }
}

impl Engine for Redb {
    fn load(&mut self, tasks: &[(u64, Vec<u8>, Vec<Vec<u8>>)]) {
        let mut txn = self.db.begin_write().expect("write");
        txn.set_durability(Durability::None).expect("none");
        {
            let mut table = txn.open_table(TASKS).expect("tasks");
            let mut index = txn.open_table(INDEX).expect("index");
            for (id, value, keys) in tasks {
                table.insert(*id, value.as_slice()).expect("insert");
                for key in keys {
                    index.insert(key.as_slice(), ()).expect("index");
                }
            }
        }
        txn.commit().expect("commit");
    }

    fn apply(&mut self, changes: &[Change], applied_index: u64) {
        let mut txn = self.db.begin_write().expect("write");
        txn.set_durability(Durability::None).expect("none");
        {
            let mut table = txn.open_table(TASKS).expect("tasks");
            let mut index = txn.open_table(INDEX).expect("index");
            for change in changes {
                let value = match &change.value {
                    Some(value) => value.clone(),
                    None => {
                        let mut value = table.get(change.id).expect("get").map(|v| v.value().to_vec()).unwrap_or_default();
                value.extend(std::iter::repeat_n(7u8, change.grow_by));
                value.truncate(3_000);
                        value
                    }
                };
                table.insert(change.id, value.as_slice()).expect("insert");
                for key in &change.old_keys {
                    index.remove(key.as_slice()).expect("remove");
                }
                for key in &change.new_keys {
                    index.insert(key.as_slice(), ()).expect("insert");
                }
            }
            txn.open_table(META).expect("meta").insert("applied", applied_index).expect("meta");
        }
        txn.commit().expect("commit");
    }

    fn checkpoint(&mut self) {
        let mut txn = self.db.begin_write().expect("write");
        txn.set_quick_repair(self.quick_repair);
        txn.commit().expect("durable commit");
    }

    fn get(&self, id: u64) -> Option<usize> {
        let txn = self.db.begin_read().expect("read");
        let table = txn.open_table(TASKS).expect("tasks");
        table.get(id).expect("get").map(|v| v.value().len())
    }

    fn page(&self, prefix: &[u8]) -> usize {
        let txn = self.db.begin_read().expect("read");
        let index = txn.open_table(INDEX).expect("index");
        let mut end = prefix.to_vec();
        *end.last_mut().expect("prefix") += 1;
        let tasks = txn.open_table(TASKS).expect("tasks");
        let mut found = 0;
        for entry in index.range(prefix..end.as_slice()).expect("range").rev().take(PAGE_SIZE) {
            let (key, _) = entry.expect("entry");
            let key = key.value();
            let id = u64::from_be_bytes(key[key.len() - 8..].try_into().expect("8"));
            found += tasks.get(id).expect("get").map_or(0, |_| 1);
        }
        found
    }

    fn scan(&self) -> u64 {
        let txn = self.db.begin_read().expect("read");
        let table = txn.open_table(TASKS).expect("tasks");
        let mut bytes = 0;
        for entry in table.iter().expect("iter") {
            let (_, value) = entry.expect("entry");
            bytes += value.value().len() as u64 + 8;
        }
        bytes
    }

    fn applied_index(&self) -> u64 {
        let txn = self.db.begin_read().expect("read");
        match txn.open_table(META) {
            Ok(table) => table.get("applied").expect("get").map_or(0, |v| v.value()),
            Err(_) => 0,
        }
    }
}
