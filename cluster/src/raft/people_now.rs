//! The accounts a replica holds, kept apart from the replica's lock: every request signed in
//! with a session checks its person here, so the check never waits on apply or a checkpoint,
//! and apply never waits on it (the table is updated after the batch's lock is released).
//!
//! A province has tens of thousands of accounts, a few hundred bytes each: the whole table is
//! held (bounded by the staff, not by history). `generation` moves with every change, so a
//! console open with a session learns at once that its person changed (`node::push`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use ledger::organisation::{Person, PersonId};
use tokio::sync::watch;

#[derive(Clone)]
pub struct PeopleNow {
    table: Arc<RwLock<Table>>,
    generation: watch::Sender<u64>,
}

#[derive(Default)]
struct Table {
    by_id: HashMap<PersonId, Arc<Person>>,
    by_login: HashMap<String, PersonId>,
}

impl PeopleNow {
    /// The table of `people` (every account of a store).
    pub fn of(people: impl Iterator<Item = Arc<Person>>) -> PeopleNow {
        let (generation, _) = watch::channel(0);
        let now = PeopleNow { table: Arc::default(), generation };
        now.replace(people);
        now
    }

    /// Replaces the whole table (after a snapshot is installed).
    pub fn replace(&self, people: impl Iterator<Item = Arc<Person>>) {
        let mut table = Table::default();
        for person in people {
            table.by_login.insert(person.login.clone(), person.id);
            table.by_id.insert(person.id, person);
        }
        *self.table.write().unwrap_or_else(std::sync::PoisonError::into_inner) = table;
        self.generation.send_modify(|generation| *generation += 1);
    }

    /// Takes in accounts a batch created or changed.
    pub fn update(&self, changed: Vec<Arc<Person>>) {
        if changed.is_empty() {
            return;
        }
        {
            let mut table = self.table.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            for person in changed {
                table.by_login.insert(person.login.clone(), person.id);
                table.by_id.insert(person.id, person);
            }
        }
        self.generation.send_modify(|generation| *generation += 1);
    }

    pub fn person(&self, id: PersonId) -> Option<Arc<Person>> {
        self.table.read().unwrap_or_else(std::sync::PoisonError::into_inner).by_id.get(&id).cloned()
    }

    pub fn by_login(&self, login: &str) -> Option<Arc<Person>> {
        let table = self.table.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        table.by_login.get(login).and_then(|id| table.by_id.get(id)).cloned()
    }

    /// Every account, in no order (for listings, which sort).
    pub fn all(&self) -> Vec<Arc<Person>> {
        self.table.read().unwrap_or_else(std::sync::PoisonError::into_inner).by_id.values().cloned().collect()
    }

    /// Moves whenever an account changes.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }
}
