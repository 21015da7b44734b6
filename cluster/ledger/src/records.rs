//! Where the ledger keeps what grows with history.
//!
//! Every task, every reporter, both ends of every handover, and every person's account with
//! its login are *records*. A province keeps
//! years of them, so the ledger holds in memory only the records changed since the last
//! checkpoint (`Changes`) and reads the rest from a `Records` store: the node's embedded store,
//! or `MemoryRecords` in tests. A checkpoint seals the changes, writes them to the store with
//! the rest of the ledger (its core) in one durable commit, and then drops them from memory.
//!
//! A reader always sees the newest version: the open changes, then the sealed changes of a
//! checkpoint in progress, then the store.
//!
//! **Invariant:** a store holds the records of one ledger as of one checkpoint; the ledger reads
//! it only through this trait, so `apply` stays deterministic whatever the store's speed.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};

use crate::campaign::register::JournalEntry;
use crate::campaign::risk_files::RiskFile;
use crate::complaint::Reporter;
use crate::federation::ForwardId;
use crate::organisation::{Person, PersonId};
use crate::task::{Task, TaskId};
use crate::uscc::Uscc;

/// The records of a ledger as of its last checkpoint.
///
/// A store that cannot read (a failed disk) panics: the state machine catches it and stops the
/// replica, because answering "not found" would make this replica decide unlike the others.
pub trait Records: Send + Sync {
    fn task(&self, id: TaskId) -> Option<Arc<Task>>;
    fn reporter(&self, task: TaskId) -> Option<Reporter>;
    /// The task here that tracks the handover `forward`.
    fn sent(&self, forward: ForwardId) -> Option<TaskId>;
    /// The task made here for the handover `forward`.
    fn received(&self, forward: ForwardId) -> Option<TaskId>;
    /// Every task with an id below `before` (all when `None`), newest first.
    fn tasks_newest_first(&self, before: Option<TaskId>) -> Box<dyn Iterator<Item = Arc<Task>> + '_>;
    fn person(&self, id: PersonId) -> Option<Arc<Person>>;
    /// The person who signs in with `login`.
    fn login(&self, login: &str) -> Option<PersonId>;
    /// Every person, in id order (for a node's table of accounts at start).
    fn people(&self) -> Box<dyn Iterator<Item = Arc<Person>> + '_>;
    /// The register's journal entry `seq` (`campaign::register`).
    fn register_entry(&self, seq: u64) -> Option<Arc<JournalEntry>>;
    /// The journal number of the change the registration system numbered `id`.
    fn register_change(&self, id: &str) -> Option<u64>;
    /// The journal's entries numbered `from` to `to` (both included) that this store holds, in
    /// order: one read for a freeze's million changes, not a million.
    fn register_entries(&self, from: u64, to: u64) -> Vec<Arc<JournalEntry>> {
        (from..=to).filter_map(|seq| self.register_entry(seq)).collect()
    }
    /// The risk file of `uscc` (`campaign::risk_files`).
    fn risk_file(&self, uscc: &Uscc) -> Option<Arc<RiskFile>>;
    /// Every risk file, in USCC order.
    fn risk_files(&self) -> Box<dyn Iterator<Item = Arc<RiskFile>> + '_>;
}

impl fmt::Debug for dyn Records {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Records")
    }
}

/// The key a forward id's records are filed and hashed under.
pub fn forward_key(forward: ForwardId) -> Vec<u8> {
    crate::codec::encode(&forward).expect("a forward id encodes")
}

/// The records changed since a checkpoint: each the newest version, `None` where one was
/// removed (a refused handover leaves no sent record).
#[derive(Clone, Debug, Default)]
pub struct Changes {
    pub tasks: BTreeMap<TaskId, Arc<Task>>,
    /// The position (log index) of the entry that last changed each task of `tasks`, for the
    /// feed of changes (`Ledger::set_position`). Not a record: not in the digest.
    pub positions: BTreeMap<TaskId, u64>,
    pub reporters: BTreeMap<TaskId, Reporter>,
    pub sent: BTreeMap<ForwardId, Option<TaskId>>,
    pub received: BTreeMap<ForwardId, TaskId>,
    pub people: BTreeMap<PersonId, Arc<Person>>,
    pub logins: BTreeMap<String, PersonId>,
    /// The register's journal (`campaign::register`), by number, and its change ids.
    pub register: BTreeMap<u64, Arc<JournalEntry>>,
    pub register_ids: BTreeMap<String, u64>,
    /// The entities' risk files (`campaign::risk_files`), by USCC.
    pub risk_files: BTreeMap<Uscc, Arc<RiskFile>>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records held: what a checkpoint's trigger counts.
    pub fn len(&self) -> usize {
        self.tasks.len()
            + self.reporters.len()
            + self.sent.len()
            + self.received.len()
            + self.people.len()
            + self.logins.len()
            + self.register.len()
            + self.register_ids.len()
            + self.risk_files.len()
    }
}

/// Records in memory: the store of tests, fuzzing and tools that hold a small ledger whole.
#[derive(Default)]
pub struct MemoryRecords {
    held: RwLock<Changes>,
}

impl MemoryRecords {
    /// Takes in the changes of a checkpoint.
    pub fn write(&self, changes: &Changes) {
        let mut held = self.held.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (id, task) in &changes.tasks {
            held.tasks.insert(*id, task.clone());
        }
        for (id, reporter) in &changes.reporters {
            held.reporters.insert(*id, reporter.clone());
        }
        for (forward, task) in &changes.sent {
            match task {
                Some(task) => held.sent.insert(*forward, Some(*task)),
                None => held.sent.remove(forward),
            };
        }
        for (forward, task) in &changes.received {
            held.received.insert(*forward, *task);
        }
        for (id, person) in &changes.people {
            held.people.insert(*id, person.clone());
        }
        for (login, id) in &changes.logins {
            held.logins.insert(login.clone(), *id);
        }
        for (seq, entry) in &changes.register {
            held.register.insert(*seq, entry.clone());
        }
        for (id, seq) in &changes.register_ids {
            held.register_ids.insert(id.clone(), *seq);
        }
        for (uscc, file) in &changes.risk_files {
            held.risk_files.insert(uscc.clone(), file.clone());
        }
    }

    fn held(&self) -> std::sync::RwLockReadGuard<'_, Changes> {
        self.held.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Records for MemoryRecords {
    fn task(&self, id: TaskId) -> Option<Arc<Task>> {
        self.held().tasks.get(&id).cloned()
    }

    fn reporter(&self, task: TaskId) -> Option<Reporter> {
        self.held().reporters.get(&task).cloned()
    }

    fn sent(&self, forward: ForwardId) -> Option<TaskId> {
        self.held().sent.get(&forward).copied().flatten()
    }

    fn received(&self, forward: ForwardId) -> Option<TaskId> {
        self.held().received.get(&forward).copied()
    }

    fn tasks_newest_first(&self, before: Option<TaskId>) -> Box<dyn Iterator<Item = Arc<Task>> + '_> {
        // A copy of the matching tasks' handles: these stores are small.
        let upper = TaskId(before.map_or(u64::MAX, |id| id.0));
        let tasks: Vec<Arc<Task>> = self.held().tasks.range(..upper).rev().map(|(_, task)| task.clone()).collect();
        Box::new(tasks.into_iter())
    }

    fn person(&self, id: PersonId) -> Option<Arc<Person>> {
        self.held().people.get(&id).cloned()
    }

    fn login(&self, login: &str) -> Option<PersonId> {
        self.held().logins.get(login).copied()
    }

    fn people(&self) -> Box<dyn Iterator<Item = Arc<Person>> + '_> {
        let people: Vec<Arc<Person>> = self.held().people.values().cloned().collect();
        Box::new(people.into_iter())
    }

    fn register_entry(&self, seq: u64) -> Option<Arc<JournalEntry>> {
        self.held().register.get(&seq).cloned()
    }

    fn register_change(&self, id: &str) -> Option<u64> {
        self.held().register_ids.get(id).copied()
    }

    fn risk_file(&self, uscc: &Uscc) -> Option<Arc<RiskFile>> {
        self.held().risk_files.get(uscc).cloned()
    }

    fn risk_files(&self) -> Box<dyn Iterator<Item = Arc<RiskFile>> + '_> {
        let files: Vec<Arc<RiskFile>> = self.held().risk_files.values().cloned().collect();
        Box::new(files.into_iter())
    }
}

/// The digest of every record: the sum (mod 2^256) of the SHA-256 of each record's encoding.
/// A change subtracts the old record's term and adds the new one's, so the digest follows the
/// state without a scan, and a scan of a store can recompute it to check the store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecordsDigest([u64; 4]);

/// The term one record adds to the digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Term([u64; 4]);

impl Term {
    /// The term of a record: SHA-256 of a tag naming its kind and its canonical encoding.
    pub fn of<T: serde::Serialize>(kind: &str, key: &[u8], record: &T) -> Term {
        let mut hasher = Sha256::new();
        hasher.update(kind.as_bytes());
        hasher.update([0]);
        hasher.update(key);
        hasher.update(crate::codec::encode(record).expect("records always encode"));
        let hash = hasher.finalize();
        let limb = |i: usize| u64::from_le_bytes(hash[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        Term([limb(0), limb(1), limb(2), limb(3)])
    }

    pub fn of_task(task: &Task) -> Term {
        Term::of("task", &task.id.0.to_be_bytes(), task)
    }

    pub fn of_reporter(task: TaskId, reporter: &Reporter) -> Term {
        Term::of("reporter", &task.0.to_be_bytes(), reporter)
    }

    pub fn of_sent(forward: ForwardId, task: TaskId) -> Term {
        Term::of("sent", &forward_key(forward), &task)
    }

    pub fn of_received(forward: ForwardId, task: TaskId) -> Term {
        Term::of("received", &forward_key(forward), &task)
    }

    pub fn of_person(person: &Person) -> Term {
        Term::of("person", &person.id.0.to_be_bytes(), person)
    }

    pub fn of_login(login: &str, person: PersonId) -> Term {
        Term::of("login", login.as_bytes(), &person)
    }

    pub fn of_register_entry(entry: &JournalEntry) -> Term {
        Term::of("register", &entry.seq.to_be_bytes(), entry)
    }

    pub fn of_register_change(id: &str, seq: u64) -> Term {
        Term::of("register_id", id.as_bytes(), &seq)
    }

    pub fn of_risk_file(file: &RiskFile) -> Term {
        Term::of("risk_file", file.uscc.as_str().as_bytes(), file)
    }
}

impl RecordsDigest {
    pub fn add(&mut self, term: Term) {
        let mut carry = false;
        for (limb, add) in self.0.iter_mut().zip(term.0) {
            let (sum, overflow_a) = limb.overflowing_add(add);
            let (sum, overflow_b) = sum.overflowing_add(u64::from(carry));
            *limb = sum;
            carry = overflow_a || overflow_b;
        }
    }

    pub fn remove(&mut self, term: Term) {
        let mut borrow = false;
        for (limb, sub) in self.0.iter_mut().zip(term.0) {
            let (difference, under_a) = limb.overflowing_sub(sub);
            let (difference, under_b) = difference.overflowing_sub(u64::from(borrow));
            *limb = difference;
            borrow = under_a || under_b;
        }
    }

    pub fn to_bytes(self) -> [u8; 32] {
        let mut bytes = [0; 32];
        for (chunk, limb) in bytes.chunks_exact_mut(8).zip(self.0) {
            chunk.copy_from_slice(&limb.to_le_bytes());
        }
        bytes
    }
}

/// A handle on a ledger's records seen through its changes: the open ones, then the sealed ones
/// a checkpoint is writing, then the store.
#[derive(Clone)]
pub(crate) struct Layers<'a> {
    pub open: &'a Changes,
    pub sealed: Option<&'a Changes>,
    pub store: &'a dyn Records,
}

impl<'a> Layers<'a> {
    pub fn task(&self, id: TaskId) -> Option<Arc<Task>> {
        if let Some(task) = self.open.tasks.get(&id) {
            return Some(task.clone());
        }
        if let Some(task) = self.sealed.and_then(|sealed| sealed.tasks.get(&id)) {
            return Some(task.clone());
        }
        self.store.task(id)
    }

    pub fn reporter(&self, id: TaskId) -> Option<Reporter> {
        if let Some(reporter) = self.open.reporters.get(&id) {
            return Some(reporter.clone());
        }
        if let Some(reporter) = self.sealed.and_then(|sealed| sealed.reporters.get(&id)) {
            return Some(reporter.clone());
        }
        self.store.reporter(id)
    }

    pub fn sent(&self, forward: ForwardId) -> Option<TaskId> {
        if let Some(task) = self.open.sent.get(&forward) {
            return *task;
        }
        if let Some(task) = self.sealed.and_then(|sealed| sealed.sent.get(&forward)) {
            return *task;
        }
        self.store.sent(forward)
    }

    pub fn received(&self, forward: ForwardId) -> Option<TaskId> {
        if let Some(task) = self.open.received.get(&forward) {
            return Some(*task);
        }
        if let Some(task) = self.sealed.and_then(|sealed| sealed.received.get(&forward)) {
            return Some(*task);
        }
        self.store.received(forward)
    }

    pub fn person(&self, id: PersonId) -> Option<Arc<Person>> {
        if let Some(person) = self.open.people.get(&id) {
            return Some(person.clone());
        }
        if let Some(person) = self.sealed.and_then(|sealed| sealed.people.get(&id)) {
            return Some(person.clone());
        }
        self.store.person(id)
    }

    pub fn login(&self, login: &str) -> Option<PersonId> {
        if let Some(id) = self.open.logins.get(login) {
            return Some(*id);
        }
        if let Some(id) = self.sealed.and_then(|sealed| sealed.logins.get(login)) {
            return Some(*id);
        }
        self.store.login(login)
    }

    pub fn register_entry(&self, seq: u64) -> Option<Arc<JournalEntry>> {
        if let Some(entry) = self.open.register.get(&seq) {
            return Some(entry.clone());
        }
        if let Some(entry) = self.sealed.and_then(|sealed| sealed.register.get(&seq)) {
            return Some(entry.clone());
        }
        self.store.register_entry(seq)
    }

    /// Entries `from` to `to` of the journal: the store's, then the sealed and open changes'
    /// over them (a number is written once, so the layers never disagree, only overlap).
    pub fn register_entries(&self, from: u64, to: u64) -> Vec<Arc<JournalEntry>> {
        let mut entries: BTreeMap<u64, Arc<JournalEntry>> =
            self.store.register_entries(from, to).into_iter().map(|entry| (entry.seq, entry)).collect();
        for layer in self.sealed.into_iter().chain(std::iter::once(self.open)) {
            entries.extend(layer.register.range(from..=to).map(|(seq, entry)| (*seq, entry.clone())));
        }
        entries.into_values().collect()
    }

    pub fn register_change(&self, id: &str) -> Option<u64> {
        if let Some(seq) = self.open.register_ids.get(id) {
            return Some(*seq);
        }
        if let Some(seq) = self.sealed.and_then(|sealed| sealed.register_ids.get(id)) {
            return Some(*seq);
        }
        self.store.register_change(id)
    }

    pub fn risk_file(&self, uscc: &Uscc) -> Option<Arc<RiskFile>> {
        if let Some(file) = self.open.risk_files.get(uscc) {
            return Some(file.clone());
        }
        if let Some(file) = self.sealed.and_then(|sealed| sealed.risk_files.get(uscc)) {
            return Some(file.clone());
        }
        self.store.risk_file(uscc)
    }

    /// Every risk file in USCC order: the three layers merged, the newest version of each.
    pub fn risk_files(self) -> impl Iterator<Item = Arc<RiskFile>> + 'a {
        let open = self.open.risk_files.values().cloned();
        let sealed = self.sealed.into_iter().flat_map(|sealed| sealed.risk_files.values().cloned());
        let stored = self.store.risk_files();
        let mut layers: [Box<dyn Iterator<Item = Arc<RiskFile>> + 'a>; 3] =
            [Box::new(open), Box::new(sealed), Box::new(stored)];
        let mut heads: [Option<Arc<RiskFile>>; 3] = [None, None, None];
        for (head, layer) in heads.iter_mut().zip(layers.iter_mut()) {
            *head = layer.next();
        }
        // Ascending by USCC; on equal keys the earlier layer (the newer version) wins.
        std::iter::from_fn(move || {
            let lowest = heads.iter().flatten().map(|file| file.uscc.clone()).min()?;
            let mut found = None;
            for (head, layer) in heads.iter_mut().zip(layers.iter_mut()) {
                if head.as_ref().is_some_and(|file| file.uscc == lowest) {
                    let file = std::mem::replace(head, layer.next());
                    found = found.or(file);
                }
            }
            found
        })
    }

    /// Every task below `before`, newest first: the three layers merged by id, the newest
    /// version of each.
    pub fn tasks_newest_first(self, before: Option<TaskId>) -> impl Iterator<Item = Arc<Task>> + 'a {
        let upper = TaskId(before.map_or(u64::MAX, |id| id.0));
        let open = self.open.tasks.range(..upper).rev().map(|(_, task)| task.clone()).peekable();
        let sealed = self
            .sealed
            .into_iter()
            .flat_map(move |sealed| sealed.tasks.range(..upper).rev().map(|(_, task)| task.clone()))
            .peekable();
        let store = self.store;
        let stored = store.tasks_newest_first(before).peekable();
        NewestFirst { layers: [Box::new(open), Box::new(sealed), Box::new(stored)] }
    }
}

type Layer<'a> = Box<dyn PeekingTasks + 'a>;

/// A peekable iterator of tasks, newest first.
trait PeekingTasks {
    fn peek_id(&mut self) -> Option<TaskId>;
    fn next_task(&mut self) -> Option<Arc<Task>>;
}

impl<I: Iterator<Item = Arc<Task>>> PeekingTasks for std::iter::Peekable<I> {
    fn peek_id(&mut self) -> Option<TaskId> {
        self.peek().map(|task| task.id)
    }

    fn next_task(&mut self) -> Option<Arc<Task>> {
        self.next()
    }
}

/// Merges layers ordered newest first; on equal ids the earlier layer (the newer version) wins
/// and the others skip theirs.
struct NewestFirst<'a> {
    layers: [Layer<'a>; 3],
}

impl Iterator for NewestFirst<'_> {
    type Item = Arc<Task>;

    fn next(&mut self) -> Option<Arc<Task>> {
        let newest = self.layers.iter_mut().filter_map(|layer| layer.peek_id()).max()?;
        let mut found = None;
        for layer in &mut self.layers {
            if layer.peek_id() == Some(newest) {
                let task = layer.next_task();
                found = found.or(task);
            }
        }
        found
    }
}
