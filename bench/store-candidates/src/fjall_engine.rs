//! fjall: an LSM tree with one journal for all keyspaces; batches are atomic, and a batch
//! committed without fsync survives a process kill (it is in the OS's buffers).

use std::path::Path;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable};

use crate::{Change, Engine, PAGE_SIZE};

/// The block cache the node would give the store.
const CACHE_BYTES: u64 = 256 * 1024 * 1024;

pub struct Fjall {
    db: Database,
    tasks: Keyspace,
    index: Keyspace,
    meta: Keyspace,
}

impl Fjall {
    pub fn open(dir: &Path) -> Fjall {
        let db = Database::builder(dir.join("fjall")).cache_size(CACHE_BYTES).open().expect("open fjall");
        let tasks = db.keyspace("tasks", KeyspaceCreateOptions::default).expect("tasks");
        let index = db.keyspace("index", KeyspaceCreateOptions::default).expect("index");
        let meta = db.keyspace("meta", KeyspaceCreateOptions::default).expect("meta");
        Fjall { db, tasks, index, meta }
    }
}

impl Engine for Fjall {
    fn load(&mut self, tasks: &[(u64, Vec<u8>, Vec<Vec<u8>>)]) {
        let mut batch = self.db.batch();
        for (id, value, keys) in tasks {
            batch.insert(&self.tasks, id.to_be_bytes(), value.as_slice());
            for key in keys {
                batch.insert(&self.index, key.as_slice(), []);
            }
        }
        batch.commit().expect("commit");
    }

    fn apply(&mut self, changes: &[Change], applied_index: u64) {
        // A batch cannot be read back before it commits: a change read twice in one batch sees
        // the stored value, as the state machine's own cache would hide.
        let mut batch = self.db.batch();
        for change in changes {
            let value = match &change.value {
                Some(value) => value.clone(),
                None => {
                    let mut value = self.tasks.get(change.id.to_be_bytes()).expect("get").map(|v| v.to_vec()).unwrap_or_default();
            value.extend(std::iter::repeat_n(7u8, change.grow_by));
            value.truncate(3_000);
                    value
                }
            };
            batch.insert(&self.tasks, change.id.to_be_bytes(), value);
            for key in &change.old_keys {
                batch.remove(&self.index, key.as_slice());
            }
            for key in &change.new_keys {
                batch.insert(&self.index, key.as_slice(), []);
            }
        }
        batch.insert(&self.meta, "applied", applied_index.to_be_bytes());
        batch.commit().expect("commit");
    }

    fn checkpoint(&mut self) {
        self.db.persist(PersistMode::SyncData).expect("persist");
    }

    fn get(&self, id: u64) -> Option<usize> {
        self.tasks.get(id.to_be_bytes()).expect("get").map(|v| v.len())
    }

    fn page(&self, prefix: &[u8]) -> usize {
        let snapshot = self.db.snapshot();
        let mut found = 0;
        for guard in snapshot.prefix(&self.index, prefix).rev().take(PAGE_SIZE) {
            let key = guard.key().expect("key");
            let id: [u8; 8] = key[key.len() - 8..].try_into().expect("8");
            found += snapshot.get(&self.tasks, id).expect("get").map_or(0, |_| 1);
        }
        found
    }

    fn scan(&self) -> u64 {
        let snapshot = self.db.snapshot();
        let mut bytes = 0;
        for guard in snapshot.iter(&self.tasks) {
            let (key, value) = guard.into_inner().expect("entry");
            bytes += (key.len() + value.len()) as u64;
        }
        bytes
    }

    fn applied_index(&self) -> u64 {
        self.meta.get("applied").expect("get").map_or(0, |v| u64::from_be_bytes(v.as_ref().try_into().expect("8")))
    }
}
