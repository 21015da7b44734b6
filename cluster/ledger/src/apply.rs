//! The `Ledger`: the task ledger of one group and its deterministic `apply`.
//!
//! `apply` depends only on the current state and the command: no clock, no randomness, no
//! per-node configuration, and only ordered maps, so every replica that applies the same log
//! reaches the same state and the same results.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::access;
use super::bureau::{BureauCode, Regions};
use super::campaign::departments::Departments;
use super::campaign::plan_filing::PlanFilings;
use super::campaign::plan_handdown::PlanHandDown;
use super::campaign::register::{JournalEntry, Register};
use super::campaign::risk_files::{Contribution, RiskFile, RiskFiles};
use super::campaign::{is_inspection_outcome, Programme};
use super::campaign::{DrawsInParts, Planning};
use super::command::{
    conflict, Action, Actor, Applied, Command, CommandResult, ConflictCode, IdempotencyTag, NewTask, Rejection, Role,
    TaskChange, Transition,
};
use super::complaint::Reporter;
use super::federation::{
    DispatchTerms, ForwardId, Handover, HandoverPurpose, Instruction, Message, OutboxEntry, RemoteHandling, Routing,
};
use super::idempotency::IdempotencyTable;
use super::intake::{GroupKey, SeenKey};
use super::organisation::{Person, PersonId, Units};
use super::policy;
use super::records::{Changes, Layers, MemoryRecords, Records, RecordsDigest, Term};
use super::reference::Reference;
use super::task::{CompletionOutcome, DeadlineKind, Task, TaskId, TimelineAction, TimelineEntry};
use super::validate;
use crate::limits::{DEADLINE_HORIZON_MS, TIMELINE_ENTRIES_MAX};

/// The ledger of one group. What is serialized is its *core*: counters, the windows of recent
/// requests and signals, the outbox and the programme, all bounded by open work. Its records
/// (tasks, reporters, handovers) live in a `Records` store, with those changed since the last
/// checkpoint held here (see `records`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ledger {
    /// Records changed since the last checkpoint began.
    #[serde(skip)]
    changes: Changes,
    /// The changes a checkpoint in progress is writing: read from here until it is durable.
    #[serde(skip)]
    sealed: Option<Arc<Changes>>,
    /// The digest terms of the changed tasks' versions (open changes, then sealed ones), so that
    /// changing a task again does not hash its last version again.
    #[serde(skip)]
    terms: BTreeMap<TaskId, Term>,
    #[serde(skip)]
    sealed_terms: BTreeMap<TaskId, Term>,
    /// The version each task checked out by the command being applied had before it (the first
    /// check-out's), for the answer's `Applied::before`. Emptied by every `apply`.
    #[serde(skip)]
    replaced: BTreeMap<TaskId, Arc<Task>>,
    /// The position (log index) of the commands applied now (`set_position`).
    #[serde(skip)]
    position: u64,
    /// The records as of the last checkpoint.
    #[serde(skip, default = "no_records")]
    records: Arc<dyn Records>,
    /// How many tasks the ledger holds.
    task_count: u64,
    /// The digest of every record (see `RecordsDigest`).
    records_digest: RecordsDigest,
    /// The id the next created task gets.
    next_task_id: u64,
    /// The largest stamp applied so far; the ledger's clock never runs backwards.
    last_stamp_ms: u64,
    /// Commands applied, refusals included.
    commands_applied: u64,
    /// First answers to requests with an idempotency key (see `idempotency`).
    idempotency: IdempotencyTable,
    /// The number the next outbox message gets (a handover's forward id uses it).
    pub(super) next_message_seq: u64,
    /// Messages to other groups not yet receipted, by number.
    pub(super) outbox: BTreeMap<u64, OutboxEntry>,
    /// Signals' source-side ids seen recently → the task each went into, and when.
    pub(super) intake_seen: BTreeMap<SeenKey, (TaskId, u64)>,
    /// Those ids in the order they were seen (stamps are monotonic), for expiry.
    pub(super) intake_seen_order: VecDeque<(u64, SeenKey)>,
    /// Each source's signal groups of the last `INTAKE_GROUP_LIFETIME_MS` → the newest task of
    /// the group.
    pub(super) intake_groups: BTreeMap<GroupKey, TaskId>,
    /// Those groups' tasks in the order they were registered (stamps are monotonic), for
    /// expiry. A group whose task was replaced by a newer one keeps its older item here until
    /// it expires; expiry forgets a group only when the item names the group's current task.
    pub(super) intake_groups_order: VecDeque<(u64, GroupKey, TaskId)>,
    /// The double-random inspection programme (see `campaign`).
    pub(super) programme: Programme,
    /// The region table and working-day calendar the ledger decides with (see `reference`).
    pub(super) reference: Reference,
    /// The stations below the county bureaus, and the table the ledger decides with (the
    /// region table and the stations). After it each field a later store format appended
    /// (`organisation::core_of_format_4`).
    pub(super) units: Units,
    /// The inspection-item list and the annual plans (see `campaign::Planning`). Last, so a
    /// core written before them is this core's bytes less the empty planning's
    /// (`campaign::item_list::core_of_format_5`).
    pub(super) planning: Planning,
    /// The live entity register's journal length and versions (see `campaign::register`).
    /// Last, so a core written before it is this core's bytes less the empty register's
    /// (`campaign::register::core_of_format_6`).
    pub(crate) register: Register,
    /// The draws committed in parts, under way and done (see `campaign::draw_parts`). Last, so
    /// a core written before them is this core's bytes less the empty draws'
    /// (`campaign::draw_parts::core_of_format_7`).
    pub(crate) draws_in_parts: DrawsInParts,
    /// Whether the entities' risk files are kept, the yearly cap and the caps frozen with
    /// beacons (see `campaign::risk_files`). Last, so a core written before them is this core's
    /// bytes less the empty files' (`campaign::risk_files::core_of_format_8`).
    pub(crate) risk_files: RiskFiles,
    /// The annual plans filed with this group by its child groups, and the versions of its own
    /// its parent took (see `campaign::plan_filing`). Last, appended with the risk files in
    /// format 9 (`campaign::plan_filing::core_of_format_8`).
    pub(crate) plan_filings: PlanFilings,
    /// The other departments of joint inspections and their inspectors (see
    /// `campaign::departments`). Last, so a core written before them is this core's bytes less
    /// the empty departments' (`campaign::departments::core_of_format_9`).
    pub(crate) departments: Departments,
    /// The copies of province plans handed down to this group, what it handed down, and its
    /// child groups' progress reports (see `campaign::plan_handdown`). Last, so a core written
    /// before them is this core's bytes less the empty hand-down's
    /// (`campaign::plan_handdown::core_of_format_10`).
    pub(crate) plan_handdown: PlanHandDown,
}

fn no_records() -> Arc<dyn Records> {
    Arc::new(MemoryRecords::default())
}

impl Default for Ledger {
    fn default() -> Ledger {
        Ledger {
            changes: Changes::default(),
            sealed: None,
            terms: BTreeMap::new(),
            sealed_terms: BTreeMap::new(),
            replaced: BTreeMap::new(),
            position: 0,
            records: no_records(),
            task_count: 0,
            records_digest: RecordsDigest::default(),
            next_task_id: 1,
            last_stamp_ms: 0,
            commands_applied: 0,
            idempotency: IdempotencyTable::default(),
            next_message_seq: 1,
            outbox: BTreeMap::new(),
            intake_seen: BTreeMap::new(),
            intake_seen_order: VecDeque::new(),
            intake_groups: BTreeMap::new(),
            intake_groups_order: VecDeque::new(),
            programme: Programme::default(),
            reference: Reference::default(),
            units: Units::default(),
            planning: Planning::default(),
            register: Register::default(),
            draws_in_parts: DrawsInParts::default(),
            risk_files: RiskFiles::default(),
            plan_filings: PlanFilings::default(),
            departments: Departments::default(),
            plan_handdown: PlanHandDown::default(),
        }
    }
}

/// A task taken out for a change: its current version and that version's digest term.
pub(super) struct CheckedOut {
    pub task: Task,
    term: Term,
    /// What the version taken out adds to its entity's risk file, when the files are kept.
    contribution: Option<Contribution>,
}

impl Ledger {
    /// An empty ledger whose records are kept in memory.
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// A ledger from its core (as a checkpoint wrote it) over the store of its records.
    pub fn from_core(core: &[u8], records: Arc<dyn Records>) -> Result<Ledger, crate::codec::DecodeError> {
        let mut ledger: Ledger = crate::codec::decode(core)?;
        let regions = ledger.reference.regions().clone();
        ledger
            .units
            .derive_table(&regions)
            .map_err(|reason| crate::codec::DecodeError::Malformed(format!("stations: {reason}")))?;
        // The draws' inputs are encoded without their yearly caps (`DrawInputs::year_cap`).
        ledger.programme.restore_year_caps(&ledger.risk_files);
        ledger.records = records;
        Ok(ledger)
    }

    /// The core's canonical encoding: what a checkpoint stores beside the records.
    pub fn encode_core(&self) -> Vec<u8> {
        crate::codec::encode(self).expect("the ledger always encodes")
    }

    pub(crate) fn layers(&self) -> Layers<'_> {
        Layers { open: &self.changes, sealed: self.sealed.as_deref(), store: &*self.records }
    }

    /// Records changed since the last checkpoint began, sealed ones not counted.
    pub fn open_changes(&self) -> usize {
        self.changes.len()
    }

    /// Starts a checkpoint: the open changes become the sealed ones, which the caller writes to
    /// the store with `encode_core` (taken now, in the same state) and then reports with
    /// `checkpoint_written`. One checkpoint at a time.
    pub fn seal(&mut self) -> Arc<Changes> {
        assert!(self.sealed.is_none(), "one checkpoint at a time");
        let sealed = Arc::new(std::mem::take(&mut self.changes));
        self.sealed = Some(sealed.clone());
        self.sealed_terms = std::mem::take(&mut self.terms);
        sealed
    }

    /// The sealed changes are durable in the store `records` reads: they are read from there on.
    pub fn checkpoint_written(&mut self) {
        assert!(self.sealed.take().is_some(), "a checkpoint was sealed");
        self.sealed_terms.clear();
    }

    /// Whether a checkpoint is sealed and not yet written.
    pub fn checkpoint_in_progress(&self) -> bool {
        self.sealed.is_some()
    }

    /// Seals and writes the open changes into in-memory records at once: the checkpoint of a
    /// ledger whose records are a `MemoryRecords` (tests and tools).
    pub fn checkpoint_in_memory(&mut self, records: &MemoryRecords) {
        let sealed = self.seal();
        records.write(&sealed);
        self.checkpoint_written();
    }

    /// Replaces the store the records are read from (after a snapshot install or a restore,
    /// whose core came with it).
    pub fn set_records(&mut self, records: Arc<dyn Records>) {
        assert!(self.changes.is_empty() && self.sealed.is_none(), "records are replaced only on a checkpointed ledger");
        self.records = records;
    }

    pub(super) fn take_task_id(&mut self) -> TaskId {
        let id = TaskId(self.next_task_id);
        self.next_task_id += 1;
        id
    }

    /// Files a new task.
    pub(super) fn insert_new_task(&mut self, task: Task) -> Arc<Task> {
        assert!(self.layers().task(task.id).is_none(), "task ids are never reused");
        self.task_count += 1;
        self.file_task_in_risk_files(None, &task, true);
        self.save(None, task)
    }

    /// Takes out a task to change it: from the open changes without a copy.
    pub(super) fn check_out(&mut self, id: TaskId) -> Option<CheckedOut> {
        let (shared, known) = match self.changes.tasks.remove(&id) {
            Some(task) => (task, self.terms.remove(&id)),
            None => {
                let task = self.layers().task(id)?;
                (task, self.sealed_terms.get(&id).copied())
            }
        };
        let term = known.unwrap_or_else(|| Term::of_task(&shared));
        debug_assert_eq!(term, Term::of_task(&shared), "a kept term is the term of the version kept");
        self.replaced.entry(id).or_insert_with(|| shared.clone());
        let contribution = if self.risk_files.kept() { Contribution::of(&shared) } else { None };
        Some(CheckedOut { task: Arc::unwrap_or_clone(shared), term, contribution })
    }

    /// Files a changed task back (changed or not): its new version replaces the old in the
    /// digest.
    pub(super) fn check_in(&mut self, checked_out: CheckedOut) -> Arc<Task> {
        self.file_task_in_risk_files(checked_out.contribution, &checked_out.task, false);
        self.save(Some(checked_out.term), checked_out.task)
    }

    fn save(&mut self, before: Option<Term>, task: Task) -> Arc<Task> {
        if let Some(before) = before {
            self.records_digest.remove(before);
        }
        let term = Term::of_task(&task);
        self.records_digest.add(term);
        self.terms.insert(task.id, term);
        let task = Arc::new(task);
        self.changes.tasks.insert(task.id, task.clone());
        self.changes.positions.insert(task.id, self.position);
        task
    }

    /// Tells the ledger the position (the log index) of the commands it applies next: each task
    /// they change is filed under it (`Changes::positions`), so that a store can list tasks by
    /// their last change and a feed resume from any position. Not part of the state: replicas
    /// that apply the same entries file the same positions.
    pub fn set_position(&mut self, position: u64) {
        self.position = position;
    }

    /// The position of the last change of every task changed since the last durable
    /// checkpoint (sealed changes, then open ones).
    pub fn changed_positions(&self) -> BTreeMap<TaskId, u64> {
        let mut positions = self.sealed.as_ref().map(|sealed| sealed.positions.clone()).unwrap_or_default();
        positions.extend(&self.changes.positions);
        positions
    }

    /// A person's account, as of the command being applied.
    pub fn person(&self, id: PersonId) -> Option<Arc<Person>> {
        self.layers().person(id)
    }

    /// The person who signs in with `login`.
    pub fn person_of_login(&self, login: &str) -> Option<PersonId> {
        self.layers().login(login)
    }

    /// Files a new or changed account (`before`: its version before the change).
    pub(super) fn save_person(&mut self, before: Option<&Person>, person: Person) -> Arc<Person> {
        if let Some(before) = before {
            assert_eq!(before.id, person.id, "a change keeps the account's number");
            self.records_digest.remove(Term::of_person(before));
        }
        self.records_digest.add(Term::of_person(&person));
        let person = Arc::new(person);
        self.changes.people.insert(person.id, person.clone());
        person
    }

    /// Files a login, taken for good.
    pub(super) fn insert_login(&mut self, login: &str, person: PersonId) {
        assert!(self.layers().login(login).is_none(), "a login is taken once");
        self.records_digest.add(Term::of_login(login, person));
        self.changes.logins.insert(login.to_owned(), person);
    }

    /// Files an entity's new or changed risk file (`before`: its version before the change).
    pub(crate) fn save_risk_file(&mut self, before: Option<&RiskFile>, file: RiskFile) {
        match before {
            Some(before) => {
                assert_eq!(before.uscc, file.uscc, "a file stays its entity's");
                self.records_digest.remove(Term::of_risk_file(before));
            }
            None => self.risk_files.count_new_file(),
        }
        self.records_digest.add(Term::of_risk_file(&file));
        self.changes.risk_files.insert(file.uscc.clone(), Arc::new(file));
    }

    /// Files the register's next journal entry with its change id.
    pub(crate) fn insert_register_entry(&mut self, entry: JournalEntry) {
        assert!(self.layers().register_change(&entry.change.id).is_none(), "a change id is recorded once");
        assert!(self.layers().register_entry(entry.seq).is_none(), "a journal number is given once");
        self.records_digest.add(Term::of_register_entry(&entry));
        self.records_digest.add(Term::of_register_change(&entry.change.id, entry.seq));
        self.changes.register_ids.insert(entry.change.id.clone(), entry.seq);
        self.changes.register.insert(entry.seq, Arc::new(entry));
    }

    pub(super) fn insert_reporter(&mut self, task: TaskId, reporter: Reporter) {
        assert!(self.layers().reporter(task).is_none(), "a task has one reporter");
        self.records_digest.add(Term::of_reporter(task, &reporter));
        self.changes.reporters.insert(task, reporter);
    }

    pub(super) fn insert_sent(&mut self, forward: ForwardId, task: TaskId) {
        assert!(self.layers().sent(forward).is_none(), "a forward id is used once");
        self.records_digest.add(Term::of_sent(forward, task));
        self.changes.sent.insert(forward, Some(task));
    }

    pub(super) fn remove_sent(&mut self, forward: ForwardId) {
        if let Some(task) = self.layers().sent(forward) {
            self.records_digest.remove(Term::of_sent(forward, task));
            self.changes.sent.insert(forward, None);
        }
    }

    pub(super) fn insert_received(&mut self, forward: ForwardId, task: TaskId) {
        assert!(self.layers().received(forward).is_none(), "a forward is received once");
        self.records_digest.add(Term::of_received(forward, task));
        self.changes.received.insert(forward, task);
    }

    pub(super) fn sent_id(&self, forward: ForwardId) -> Option<TaskId> {
        self.layers().sent(forward)
    }

    pub(super) fn received_id(&self, forward: ForwardId) -> Option<TaskId> {
        self.layers().received(forward)
    }

    pub(super) fn stored_reporter(&self, task: TaskId) -> Option<Reporter> {
        self.layers().reporter(task)
    }

    /// The tasks changed since the last checkpoint was durable, each in its newest version, in
    /// id order: what a reader of the store's indexes merges in.
    pub fn changed_tasks(&self) -> impl Iterator<Item = &Arc<Task>> + '_ {
        let sealed = self.sealed.iter().flat_map(|sealed| sealed.tasks.iter());
        let open = self.changes.tasks.iter();
        let mut merged: BTreeMap<TaskId, &Arc<Task>> = sealed.map(|(id, task)| (*id, task)).collect();
        merged.extend(open.map(|(id, task)| (*id, task)));
        merged.into_values()
    }

    /// Whether `id` changed since the last checkpoint was durable (its store entries are stale).
    pub fn is_changed(&self, id: TaskId) -> bool {
        self.changes.tasks.contains_key(&id)
            || self.sealed.as_ref().is_some_and(|sealed| sealed.tasks.contains_key(&id))
    }

    /// The task, shared (answering does not copy it).
    pub fn task(&self, id: TaskId) -> Option<Arc<Task>> {
        self.layers().task(id)
    }

    /// All tasks, newest first, starting below `before` when given.
    pub fn tasks_newest_first(&self, before: Option<TaskId>) -> impl Iterator<Item = Arc<Task>> + '_ {
        self.layers().tasks_newest_first(before)
    }

    pub fn task_count(&self) -> u64 {
        self.task_count
    }

    /// The reference data the ledger decides with: region table, calendar, their versions.
    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// The table the ledger decides with now: the adopted region table and the stations
    /// (shared: cheap to keep).
    pub fn regions(&self) -> Arc<Regions> {
        self.units.table().clone()
    }

    /// The same table, borrowed: for a check that need not keep it.
    pub fn regions_ref(&self) -> &Arc<Regions> {
        self.units.table()
    }

    /// The stations below the county bureaus.
    pub fn units(&self) -> &Units {
        &self.units
    }

    pub fn last_stamp_ms(&self) -> u64 {
        self.last_stamp_ms
    }

    pub fn commands_applied(&self) -> u64 {
        self.commands_applied
    }

    /// The stored first answer for a key, if the ledger has one; lets a node answer a retry
    /// without proposing anything. The authoritative check is repeated in `apply`.
    pub fn idempotent_answer(&self, user: &str, tag: &IdempotencyTag) -> Option<CommandResult> {
        self.idempotency.answer(user, tag, |id| self.task(id))
    }

    /// SHA-256 over the canonical encoding of the core, whose records digest stands for every
    /// record: equal on every replica that applied the same log prefix, and computed without
    /// reading a record.
    pub fn digest(&self) -> String {
        Ledger::digest_of_core(&self.encode_core())
    }

    /// The digest of a ledger from its core's encoding (`encode_core`): for callers that encode
    /// under a lock and hash after it.
    pub fn digest_of_core(core: &[u8]) -> String {
        Sha256::digest(core).iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn apply(&mut self, command: &Command) -> CommandResult {
        let stamp_ms = command.stamp_ms.max(self.last_stamp_ms);
        assert!(stamp_ms >= self.last_stamp_ms, "the ledger clock never runs backwards");
        self.last_stamp_ms = stamp_ms;
        self.commands_applied += 1;
        self.idempotency.expire(stamp_ms);
        // An organisation command keeps no answer (`Action::Organisation`).
        let idempotency = command.idempotency.as_ref().filter(|_| !matches!(command.action, Action::Organisation(_)));
        if let Some(answer) =
            idempotency.and_then(|tag| self.idempotency.answer(&command.actor.user, tag, |id| self.task(id)))
        {
            return answer;
        }

        self.replaced.clear();
        self.check_person_actor(&command.actor)?;
        let mut result = match &command.action {
            Action::CreateTask(new_task) => self.create(stamp_ms, &command.actor, new_task),
            Action::ChangeTask(change) => self.change(stamp_ms, &command.actor, change),
            Action::RecordMissedDeadline { task, kind, deadline_ms } => {
                self.record_miss(stamp_ms, &command.actor, *task, *kind, *deadline_ms)
            }
            Action::RemindAssignee { task, kind, deadline_ms, sequence } => {
                self.chase(stamp_ms, &command.actor, *task, *kind, *deadline_ms, Chase::Remind(*sequence))
            }
            Action::Escalate { task, kind, deadline_ms, to } => {
                self.chase(stamp_ms, &command.actor, *task, *kind, *deadline_ms, Chase::Escalate(*to))
            }
            Action::Receive { message, group, placement } => {
                self.receive(stamp_ms, &command.actor, message, *group, *placement)
            }
            Action::RecordReceipt { seq, answer } => self.record_receipt(stamp_ms, &command.actor, *seq, answer),
            Action::FlagStuckForward { seq } => self.flag_stuck(stamp_ms, &command.actor, *seq),
            Action::MirrorStatus(report) => self.mirror(stamp_ms, &command.actor, report),
            Action::IngestSignal(signal) => self.ingest(stamp_ms, &command.actor, signal),
            Action::RegisterComplaint(complaint) => self.register_complaint(stamp_ms, &command.actor, complaint),
            Action::ComplaintStep { task, step, note } => {
                self.complaint_step(stamp_ms, &command.actor, *task, step, note)
            }
            Action::Programme(action) => self.apply_programme(stamp_ms, &command.actor, action),
            Action::Reference(action) => self.adopt_reference(stamp_ms, &command.actor, action),
            Action::Organisation(action) => self.apply_organisation(stamp_ms, &command.actor, action),
        };

        if let Some(tag) = idempotency {
            self.idempotency.remember(&command.actor.user, tag, stamp_ms, &result);
        }
        if let Ok(applied) = &mut result {
            let replaced = std::mem::take(&mut self.replaced);
            applied.before = applied.tasks.iter().map(|task| replaced.get(&task.id).cloned()).collect();
        }
        self.replaced.clear();
        result
    }

    /// A person acts only as their account stands when the command applies: enabled, their
    /// unit active, with the unit, name and role the account gives. A command made before a
    /// change of the account (in flight while it was disabled) is refused here, on every
    /// replica alike.
    fn check_person_actor(&self, actor: &Actor) -> Result<(), Rejection> {
        if !actor.claims_person() {
            return Ok(());
        }
        let refused = || Rejection::Forbidden(format!("{} is not an account that may act", actor.user));
        if !matches!(actor.role, Role::Command | Role::Operator | Role::Leadership | Role::Department) {
            return Err(refused());
        }
        let (id, name) = actor.person().ok_or_else(refused)?;
        let person = self.person(id).ok_or_else(refused)?;
        if !person.enabled || !self.regions_ref().is_active(person.unit) {
            return Err(Rejection::Forbidden(format!("the account of {} is disabled", person.name)));
        }
        if person.unit != actor.bureau || person.name != name || person.role() != actor.role {
            return Err(conflict(
                ConflictCode::AccountChanged,
                format!("the account of {} changed: sign in again", person.name),
            ));
        }
        Ok(())
    }

    /// Adopts reference data, and puts the stations into the new region table: an adoption
    /// that would leave a station under a retired or vanished county is refused whole.
    fn adopt_reference(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        action: &crate::reference::ReferenceAction,
    ) -> CommandResult {
        let mut reference = self.reference.clone();
        let applied = reference.apply(self.position, stamp_ms, actor, action)?;
        let mut units = self.units.clone();
        units.derive_table(reference.regions()).map_err(|reason| {
            conflict(
                ConflictCode::UnitInUse,
                format!("the region table does not keep the stations' counties: {reason}"),
            )
        })?;
        self.reference = reference;
        self.units = units;
        Ok(applied)
    }

    fn create(&mut self, stamp_ms: u64, actor: &Actor, new_task: &NewTask) -> CommandResult {
        let regions = self.regions();
        validate::actor(actor, &regions)?;
        validate::new_task(new_task, &regions)?;
        access::may_create(&regions, actor, new_task.origin_bureau)?;
        let task = self.register(stamp_ms, actor, new_task);
        Ok(Applied::of_task(self.insert_new_task(task)))
    }

    /// A new task from checked fields, with its id and first timeline entry, handed over when
    /// its routing says so. The caller inserts it.
    pub(super) fn register(&mut self, stamp_ms: u64, actor: &Actor, new_task: &NewTask) -> Task {
        let id = self.take_task_id();
        let first_entry = TimelineEntry {
            version: 1,
            at_ms: stamp_ms,
            action: TimelineAction::Create,
            actor_user: actor.user.clone(),
            actor_bureau: actor.bureau,
            note: String::new(),
            assignee_bureau: new_task.assignee_bureau,
            outcome: None,
        };
        let mut task = Task::registered(
            id,
            stamp_ms,
            new_task.kind,
            new_task.severity,
            new_task.title.clone(),
            new_task.description.clone(),
            new_task.subject.clone(),
            new_task.source,
            new_task.origin_bureau,
            new_task.assignee_bureau,
            first_entry,
        );
        match new_task.routing {
            Routing::Keep => {}
            Routing::Unrouted => task.jurisdiction_unrouted = true,
            Routing::ForwardTo { to_group, from_group } => {
                let route = Route { from_group, to_group };
                self.hand_over(&mut task, stamp_ms, actor, route, HandoverPurpose::Jurisdiction, "", None)
            }
        }
        task
    }

    /// Commits the handover of `task` to `to_group` with its outbox entry, and makes the task
    /// the tracking record of it. A dispatch carries its terms; the other purposes none.
    #[allow(clippy::too_many_arguments)]
    fn hand_over(
        &mut self,
        task: &mut Task,
        stamp_ms: u64,
        actor: &Actor,
        route: Route,
        purpose: HandoverPurpose,
        note: &str,
        dispatch: Option<DispatchTerms>,
    ) {
        self.hand_over_as(task, stamp_ms, actor, route, purpose, note, dispatch, Message::Handover)
    }

    /// `hand_over`, the handover sent as the message `message` makes of it (a drawn
    /// inspection's carries what the draw decided).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn hand_over_as(
        &mut self,
        task: &mut Task,
        stamp_ms: u64,
        actor: &Actor,
        route: Route,
        purpose: HandoverPurpose,
        note: &str,
        dispatch: Option<DispatchTerms>,
        message: impl FnOnce(Handover) -> Message,
    ) {
        assert!(task.remote.is_none(), "a task is handed over once");
        assert_eq!(
            purpose == HandoverPurpose::Dispatch,
            dispatch.is_some(),
            "a dispatch and only a dispatch has terms"
        );
        let Route { from_group, to_group } = route;
        let forward = self.next_forward(from_group);
        let handover = Handover {
            forward,
            purpose,
            origin_task: task.id,
            origin_bureau: task.origin_bureau,
            kind: task.kind,
            severity: task.severity,
            title: task.title.clone(),
            description: task.description.clone(),
            subject: task.subject.clone(),
            source: task.source,
            dispatch: dispatch.clone(),
            note: note.to_owned(),
            sent_by: actor.user.clone(),
        };
        self.enqueue(stamp_ms, to_group, task.id, message(handover));
        task.remote = Some(RemoteHandling {
            forward,
            to_group,
            purpose,
            delivered: None,
            instructions_sent: 0,
            mirrored_version: 0,
        });
        // A dispatch's timeline entry is the dispatch itself.
        let action = match purpose {
            HandoverPurpose::Dispatch => None,
            HandoverPurpose::Jurisdiction => Some(TimelineAction::Forward),
            HandoverPurpose::Dispute => Some(TimelineAction::Dispute),
            HandoverPurpose::Designation => Some(TimelineAction::Designate),
        };
        if let Some(action) = action {
            task.push_entry(stamp_ms, actor, action, note.to_owned(), Some(to_group));
        }
    }

    fn change(&mut self, stamp_ms: u64, actor: &Actor, change: &TaskChange) -> CommandResult {
        let regions = self.regions();
        validate::actor(actor, &regions)?;
        let action = change.transition.action();
        validate::note(&change.note, action.requires_note())?;
        let task = self.task(change.task).ok_or(Rejection::TaskNotFound(change.task))?;
        let task = &*task;
        if !access::can_see(&regions, actor, task) {
            // Answered as missing: whether an invisible task exists is not told.
            return Err(Rejection::TaskNotFound(task.id));
        }
        if let Some(expected) = change.expected_version {
            if expected != task.version {
                return Err(Rejection::VersionConflict { expected, actual: task.version });
            }
        }
        // A read-only role is refused before anything about the task's state is said.
        access::may_write(actor)?;
        let next_state = policy::open(task, action)?;
        policy::may_take(&regions, actor, task, action)?;
        task.timeline_has_room()?;
        check_parameters(&regions, task, stamp_ms, &change.transition)?;
        if matches!(change.transition, Transition::Complete { .. }) {
            self.check_department_parts(task)?;
        }
        let new_handlers = self.handlers_after(actor, task, &change.transition)?;

        // Every check passed: from here on the change is made in full. The task is checked out
        // while it changes, because a handover also writes the outbox.
        let mut checked_out = self.check_out(change.task).expect("found above");
        let task = &mut checked_out.task;
        match &change.transition {
            Transition::Forward { to_group, from_group }
            | Transition::Dispute { to_group, from_group }
            | Transition::Designate { to_group, from_group } => {
                let purpose = match &change.transition {
                    Transition::Forward { .. } => HandoverPurpose::Jurisdiction,
                    Transition::Dispute { .. } => HandoverPurpose::Dispute,
                    _ => HandoverPurpose::Designation,
                };
                let route = Route { from_group: *from_group, to_group: *to_group };
                self.hand_over(task, stamp_ms, actor, route, purpose, &change.note, None);
            }
            Transition::DispatchAcross { assignee, ack_deadline_ms, complete_deadline_ms, to_group, from_group } => {
                let terms = DispatchTerms {
                    assignee: *assignee,
                    ack_deadline_ms: *ack_deadline_ms,
                    complete_deadline_ms: *complete_deadline_ms,
                };
                let local = Transition::Dispatch {
                    assignee: *assignee,
                    ack_deadline_ms: *ack_deadline_ms,
                    complete_deadline_ms: *complete_deadline_ms,
                };
                task.record_transition(stamp_ms, actor, &change.note, &local, next_state)
                    .expect("a local dispatch is a change in place");
                let route = Route { from_group: *from_group, to_group: *to_group };
                self.hand_over(task, stamp_ms, actor, route, HandoverPurpose::Dispatch, &change.note, Some(terms));
            }
            transition => {
                // Every handover took an arm above, so this is a change in place.
                task.record_transition(stamp_ms, actor, &change.note, transition, next_state)
                    .expect("handovers took the arms above");
                if let Some(handlers) = new_handlers {
                    task.set_handlers(handlers.unit, handlers.lead, handlers.supporting);
                }
                if let (Transition::Complete { publication_deadline_ms, .. }, Some(inspection)) =
                    (transition, task.inspection.as_mut())
                {
                    // A drawn inspection's result (谁抽查、谁录入) starts its publication clock,
                    // here when drawn here; one drawn by another group is published there.
                    inspection.result_entered_at_ms = Some(stamp_ms);
                    inspection.publish_deadline_ms = *publication_deadline_ms;
                }
                if let Some(remote) = task.remote.as_mut() {
                    // A dispatcher's decision on a task worked on elsewhere flows down to it.
                    assert_eq!(remote.purpose, HandoverPurpose::Dispatch, "checked by policy::open");
                    remote.instructions_sent += 1;
                    let instruction = Instruction {
                        forward: remote.forward,
                        number: remote.instructions_sent,
                        transition: transition.clone(),
                        note: change.note.clone(),
                        sent_by: actor.user.clone(),
                    };
                    let to_group = remote.to_group;
                    self.enqueue(stamp_ms, to_group, task.id, Message::Instruction(instruction));
                }
            }
        }
        Ok(Applied::of_task(self.check_in(checked_out)))
    }

    /// The task a deadline-watch entry is about; only the system actor proposes such entries.
    fn watched_task(&self, actor: &Actor, task_id: TaskId) -> Result<Arc<Task>, Rejection> {
        if actor.role != Role::System {
            return Err(Rejection::Forbidden(
                "only the group's deadline watch records misses, reminds and escalates".into(),
            ));
        }
        self.task(task_id).ok_or(Rejection::TaskNotFound(task_id))
    }

    /// Records a missed deadline once. Refused (changing nothing) when the proposer is not the
    /// system, the deadline is not the task's current open one, or it has not passed yet by the
    /// proposer's stamp; so a duplicate or a proposal from a deposed leader is harmless.
    fn record_miss(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        task_id: TaskId,
        kind: DeadlineKind,
        deadline_ms: u64,
    ) -> CommandResult {
        let shared = self.watched_task(actor, task_id)?;
        if shared.open_deadline_ms(kind) != Some(deadline_ms) {
            return Err(Rejection::NothingToRecord(format!("the {kind} deadline of task {task_id} is not open")));
        }
        if stamp_ms < deadline_ms {
            return Err(Rejection::NothingToRecord(format!("the {kind} deadline of task {task_id} has not passed")));
        }
        shared.timeline_has_room()?;
        drop(shared);
        let mut checked_out = self.check_out(task_id).expect("found above");
        let task = &mut checked_out.task;
        let action = match kind {
            DeadlineKind::Ack => {
                task.handling.ack_missed_deadline_ms = Some(deadline_ms);
                TimelineAction::AckMissed
            }
            DeadlineKind::Completion => {
                task.handling.completion_missed_deadline_ms = Some(deadline_ms);
                TimelineAction::CompletionMissed
            }
            DeadlineKind::Acceptance => {
                task.complaint.as_mut().expect("an open acceptance clock").accept_missed_deadline_ms =
                    Some(deadline_ms);
                TimelineAction::AcceptanceMissed
            }
            DeadlineKind::Notification => {
                task.complaint.as_mut().expect("an open notification clock").notify_missed_deadline_ms =
                    Some(deadline_ms);
                TimelineAction::NotificationMissed
            }
            DeadlineKind::Publication => {
                task.inspection.as_mut().expect("an open publication clock").publish_missed_deadline_ms =
                    Some(deadline_ms);
                TimelineAction::PublicationMissed
            }
        };
        let assignee = task.handling.assignee_bureau;
        task.push_entry(stamp_ms, actor, action, String::new(), assignee);
        Ok(Applied::of_task(self.check_in(checked_out)))
    }

    /// Records a reminder or an escalation about an overdue deadline. Refused, changing
    /// nothing, unless it comes from the watch, the deadline is still overdue, and it is the
    /// next reminder or a bureau not yet escalated to: duplicates and stale proposals are
    /// harmless.
    fn chase(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        task_id: TaskId,
        kind: DeadlineKind,
        deadline_ms: u64,
        chase: Chase,
    ) -> CommandResult {
        let shared = self.watched_task(actor, task_id)?;
        if shared.overdue_deadline_ms(kind) != Some(deadline_ms) {
            return Err(Rejection::NothingToRecord(format!("the {kind} deadline of task {task_id} is not overdue")));
        }
        match chase {
            Chase::Remind(sequence) if sequence != shared.handling.reminders_sent + 1 => {
                return Err(Rejection::NothingToRecord(format!(
                    "reminder {sequence} of task {task_id} is not the next"
                )));
            }
            Chase::Escalate(to) if shared.handling.escalated_to.contains(&to) || !self.regions_ref().contains(to) => {
                return Err(Rejection::NothingToRecord(format!("task {task_id} is already escalated to {to}")));
            }
            _ => {}
        }
        shared.timeline_has_room()?;
        drop(shared);
        let mut checked_out = self.check_out(task_id).expect("found above");
        let task = &mut checked_out.task;
        let (action, escalated) = match chase {
            Chase::Remind(_) => {
                task.handling.reminders_sent += 1;
                (TimelineAction::Remind, None)
            }
            Chase::Escalate(to) => {
                task.handling.escalated_to.push(to);
                (TimelineAction::Escalate, Some(to))
            }
        };
        let target = escalated.or(task.handling.assignee_bureau);
        task.push_entry(stamp_ms, actor, action, kind.as_str().to_owned(), target);
        Ok(Applied::of_task(self.check_in(checked_out)))
    }

    /// Full scan of the ledger's invariants: the core's, then every task's. Tests call it after
    /// every step; a store loaded from outside is checked with `check_core` and `check_task`
    /// record by record as it streams in.
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        self.check_core()?;
        let mut count = 0;
        for task in self.tasks_newest_first(None) {
            self.check_task(&task)?;
            count += 1;
        }
        if count != self.task_count {
            return Err(InvariantViolation(format!("{count} tasks are filed, the count says {}", self.task_count)));
        }
        for id in 1..self.units.next_person_id().0 {
            let person =
                self.person(PersonId(id)).ok_or_else(|| InvariantViolation(format!("person {id} is missing")))?;
            self.check_person(&person)?;
            if self.person_of_login(&person.login) != Some(person.id) {
                return Err(InvariantViolation(format!("person {id}'s login is not filed for them")));
            }
            let linked = person.inspector.as_deref().map(crate::organisation::inspector_key);
            if linked.is_some_and(|key| self.person_of_login(&key) != Some(person.id)) {
                return Err(InvariantViolation(format!("person {id}'s inspector link is not filed for them")));
            }
        }
        Ok(())
    }

    /// The invariants of one account and of its login (a stream loads accounts before tasks,
    /// logins after them).
    pub fn check_person(&self, person: &Person) -> Result<(), InvariantViolation> {
        let fail = |reason: String| InvariantViolation(format!("person {}: {reason}", person.id));
        if person.id.0 == 0 || person.id >= self.units.next_person_id() {
            return Err(fail("a number the counter did not give".into()));
        }
        crate::organisation::check_login(&person.login).map_err(fail)?;
        crate::organisation::check_person_name(&person.name).map_err(fail)?;
        crate::organisation::check_roles(&person.roles).map_err(fail)?;
        crate::organisation::check_password_phc(&person.password_phc).map_err(fail)?;
        if !self.regions_ref().contains(person.unit) {
            return Err(fail(format!("unit {} is unknown", person.unit)));
        }
        let history = &person.history;
        let well_kept = !history.is_empty()
            && history.len() <= crate::organisation::PERSON_HISTORY_MAX
            && history[0].change == crate::organisation::PersonChange::Created
            && history[0].at_ms == person.created_at_ms
            && history.windows(2).all(|pair| pair[0].at_ms <= pair[1].at_ms)
            && history.last().is_some_and(|event| event.at_ms <= self.last_stamp_ms);
        if !well_kept {
            return Err(fail("its history does not begin with its creation, in order, before now".into()));
        }
        Ok(())
    }

    /// Whether `login` (or an inspector's link) is filed for `person` (the stream checks every
    /// login it loads).
    pub fn check_login(&self, login: &str, person: PersonId) -> Result<(), InvariantViolation> {
        let inspector = crate::organisation::inspector_of_key(login);
        match self.person(person) {
            Some(holder) if holder.login == login => Ok(()),
            Some(holder) if inspector.is_some() && holder.inspector.as_deref() == inspector => Ok(()),
            _ => Err(InvariantViolation(format!("login {login} names person {person}, who does not sign in with it"))),
        }
    }

    /// The invariants of the core and of what it names: counters, the request and signal
    /// windows, the outbox and the programme. A ledger from outside (a snapshot, a backup) that
    /// breaks one is refused with the reason, never a panic.
    pub fn check_core(&self) -> Result<(), InvariantViolation> {
        macro_rules! ensure {
            ($condition:expr, $($reason:tt)+) => {
                if !$condition {
                    return Err(InvariantViolation(format!($($reason)+)));
                }
            };
        }
        let task =
            |id: &TaskId| self.task(*id).ok_or_else(|| InvariantViolation(format!("task {id} is named but missing")));
        ensure!(self.next_task_id >= 1, "the task counter starts at 1");
        ensure!(self.next_message_seq >= 1, "the message counter starts at 1");
        ensure!(
            self.next_task_id <= crate::limits::COUNTER_MAX && self.next_message_seq <= crate::limits::COUNTER_MAX,
            "a counter beyond {} could run out",
            crate::limits::COUNTER_MAX
        );
        ensure!(self.task_count < self.next_task_id, "more tasks than ids handed out");
        self.idempotency.check().map_err(InvariantViolation)?;
        for (seq, entry) in &self.outbox {
            ensure!(*seq == entry.seq, "outbox message {seq} is filed under another number");
            ensure!(*seq < self.next_message_seq, "outbox message {seq} did not come from the counter");
            let tracking = task(&entry.task)?;
            let remote = tracking.remote.as_ref();
            ensure!(remote.is_some(), "outbox message {seq}'s task tracks no handover");
            ensure!(
                remote.is_some_and(|r| r.forward == entry.message.forward() && r.to_group == entry.to_group),
                "outbox message {seq} does not match its task's handover"
            );
        }
        ensure!(self.intake_seen.len() == self.intake_seen_order.len(), "seen signals and their order differ");
        let mut ordered = std::collections::BTreeSet::new();
        for (stamp_ms, key) in &self.intake_seen_order {
            ensure!(
                self.intake_seen.get(key).is_some_and(|(_, seen_ms)| seen_ms == stamp_ms) && ordered.insert(key),
                "the order of seen signals names one that is not seen, or twice"
            );
        }
        ensure!(
            self.intake_seen_order.iter().zip(self.intake_seen_order.iter().skip(1)).all(|(a, b)| a.0 <= b.0),
            "seen signals out of order"
        );
        ensure!(self.intake_seen.len() <= crate::limits::INTAKE_SEEN_MAX, "too many seen signals");
        for (id, _) in self.intake_seen.values() {
            task(id)?;
        }
        for (group, id) in &self.intake_groups {
            let source = task(id)?.intake.as_ref().map(|summary| summary.source.clone());
            ensure!(source.as_ref() == Some(&group.0), "intake group of task {id} names another source");
        }
        ensure!(self.intake_groups_order.len() <= crate::limits::INTAKE_GROUPS_MAX, "too many signal groups");
        ensure!(
            self.intake_groups_order.iter().zip(self.intake_groups_order.iter().skip(1)).all(|(a, b)| a.0 <= b.0),
            "signal groups out of order"
        );
        let ordered: std::collections::BTreeSet<(&GroupKey, &TaskId)> =
            self.intake_groups_order.iter().map(|(_, group, id)| (group, id)).collect();
        ensure!(ordered.len() == self.intake_groups_order.len(), "a signal group's task is ordered twice");
        for (group, id) in &self.intake_groups {
            ensure!(ordered.contains(&(group, id)), "signal group of task {id} is missing from the order");
        }
        self.programme.check(|id| self.task(id)).map_err(InvariantViolation)?;
        self.reference.check(self.last_stamp_ms).map_err(InvariantViolation)?;
        self.units.check(self.reference.regions(), self.last_stamp_ms).map_err(InvariantViolation)?;
        self.planning.item_list.check(self.reference.regions()).map_err(InvariantViolation)?;
        self.planning.plans.check().map_err(InvariantViolation)?;
        self.register.check(self.programme.entity_directories().len() as u64).map_err(InvariantViolation)?;
        self.draws_in_parts.check(&self.programme, self.next_task_id).map_err(InvariantViolation)?;
        self.risk_files.check().map_err(InvariantViolation)?;
        self.programme.check_year_caps(&self.risk_files).map_err(InvariantViolation)?;
        self.plan_filings.check().map_err(InvariantViolation)?;
        self.departments.check(&self.programme, &self.planning.item_list).map_err(InvariantViolation)?;
        self.plan_handdown.check().map_err(InvariantViolation)?;
        ensure!(
            !self.risk_files.kept() || self.programme.last_teams_empty(),
            "last teams kept in the core while the risk files keep them"
        );
        Ok(())
    }

    /// The invariants of one task and of the records it names.
    pub fn check_task(&self, task: &Task) -> Result<(), InvariantViolation> {
        macro_rules! ensure {
            ($condition:expr, $($reason:tt)+) => {
                if !$condition {
                    return Err(InvariantViolation(format!($($reason)+)));
                }
            };
        }
        let id = task.id;
        let regions = self.regions_ref();
        let handlers = &task.field_work.handlers;
        let named = handlers.lead.iter().chain(&handlers.supporting).chain(&handlers.team);
        for handler in named {
            ensure!(self.person(handler.id).is_some(), "task {id} names person {} who has no account", handler.id);
        }
        ensure!(
            handlers.supporting.len() <= crate::handlers::SUPPORTING_HANDLERS_MAX
                && handlers.lead.as_ref().is_none_or(|lead| !handlers.supporting.contains(lead)),
            "task {id}: at most {} supporting handlers, the lead not among them",
            crate::handlers::SUPPORTING_HANDLERS_MAX
        );
        ensure!(
            handlers
                .unit
                .is_none_or(|unit| unit.county_of_station().is_some()
                    && unit.county_of_station() == task.handling.assignee_bureau),
            "task {id} is handed down to a unit that is no station of its assignee"
        );
        ensure!(
            handlers.changes.windows(2).all(|pair| pair[0].version < pair[1].version)
                && handlers.changes.last().is_none_or(|change| change.version <= task.version),
            "task {id}: its handlers' changes out of order"
        );
        let parts = &task.field_work.department_parts;
        ensure!(
            parts.len() <= crate::campaign::departments::DEPARTMENT_PARTS_PER_TASK_MAX,
            "task {id}: too many department parts"
        );
        ensure!(
            parts.is_empty() || task.inspection.is_some(),
            "task {id}: department parts on a task that is no inspection"
        );
        ensure!(
            parts.windows(2).all(|pair| pair[0].at_ms <= pair[1].at_ms)
                && parts.iter().all(|part| part.at_ms <= task.updated_at_ms),
            "task {id}: department parts out of order"
        );
        let records = &task.field_work.site_records;
        ensure!(records.len() <= crate::site_record::SITE_RECORDS_PER_TASK_MAX, "task {id}: too many on-site records");
        let items: Vec<&str> =
            task.inspection.iter().flat_map(|inspection| &inspection.items).map(|item| item.code.as_str()).collect();
        for (position, record) in records.iter().enumerate() {
            ensure!(record.number as usize == position + 1, "task {id}: on-site records out of order");
            // Evidence is never bent: each record still has the digest it was sealed with.
            ensure!(
                record.digest == record.computed_digest(),
                "task {id}: on-site record {} was changed",
                record.number
            );
            ensure!(
                crate::site_record::check(&record.record, &items).is_ok(),
                "task {id}: on-site record {} is not one the ledger takes",
                record.number
            );
        }
        if let Some(inspection) = &task.inspection {
            // An inspection another group drew: its organiser there publishes the result.
            let drawn_elsewhere = task.received.is_some();
            ensure!(
                drawn_elsewhere == (inspection.campaign == crate::campaign::CAMPAIGN_ELSEWHERE),
                "task {id}: an inspection received from another group names no campaign of this one"
            );
            ensure!(
                drawn_elsewhere || self.draw_made(inspection.campaign, id),
                "task {id} is an inspection no draw of campaign {} made",
                inspection.campaign
            );
            ensure!(
                inspection.publish_deadline_ms.is_some()
                    == (inspection.result_entered_at_ms.is_some() && !drawn_elsewhere),
                "task {id}: a result has a publication deadline, and only a result of a draw here"
            );
            ensure!(
                inspection.published_at_ms.is_none() || inspection.result_entered_at_ms.is_some(),
                "task {id}: only an entered result is published"
            );
            ensure!(
                inspection.withdrawn_at_ms.is_none() || inspection.published_at_ms.is_some(),
                "task {id}: only a published result is withdrawn"
            );
        }
        if let Some(remote) = &task.remote {
            ensure!(remote.forward.seq < self.next_message_seq, "task {id}'s forward did not come from the counter");
            ensure!(self.sent_id(remote.forward) == Some(id), "task {id} tracks an unsent forward");
        }
        if let Some(received) = &task.received {
            ensure!(self.received_id(received.forward) == Some(id), "task {id} received an unknown forward");
        }
        ensure!(
            task.complaint.is_some() == self.stored_reporter(id).is_some(),
            "task {id}: a complaint has a reporter, and only a complaint"
        );
        ensure!(id.0 >= 1 && id.0 < self.next_task_id, "task {id} did not come from the counter");
        ensure!(task.version as usize == task.timeline.len(), "task {id}: one timeline entry per version");
        ensure!(task.timeline.len() <= TIMELINE_ENTRIES_MAX, "task {id}: timeline too long");
        for (position, entry) in task.timeline.iter().enumerate() {
            ensure!(entry.version == position as u64 + 1, "task {id}: timeline entries out of order");
        }
        ensure!(
            task.timeline.windows(2).all(|pair| pair[0].at_ms <= pair[1].at_ms),
            "task {id}: timeline goes back in time"
        );
        ensure!(task.updated_at_ms <= self.last_stamp_ms, "task {id} changed after the ledger's clock");
        ensure!(regions.contains(task.origin_bureau), "task {id}: unknown origin bureau");
        ensure!(regions.contains(task.subject.region_code), "task {id}: unknown subject region");
        if let Err(reason) = task.handling.check() {
            return Err(InvariantViolation(format!("task {id}: {reason}")));
        }
        Ok(())
    }

    /// The digest of every record as the core says it is: a scan of a store recomputes it
    /// (`RecordsDigest`) to check the store.
    pub fn records_digest(&self) -> RecordsDigest {
        self.records_digest
    }
}

#[cfg(any(test, feature = "test-support"))]
impl Ledger {
    /// A copy of a ledger that was never checkpointed, made the way a node loads one: the core
    /// through its encoding, the records through a store of their own.
    pub fn copy_through_a_checkpoint_for_tests(&self) -> Ledger {
        assert!(self.sealed.is_none(), "a ledger that was never checkpointed holds every record in its changes");
        let records = Arc::new(MemoryRecords::default());
        records.write(&self.changes);
        Ledger::from_core(&self.encode_core(), records).expect("the core decodes")
    }

    /// A ledger whose inbox names a task it does not hold: applying an instruction for that
    /// forward reaches an `expect` (a bug no input can cause), for the test of what the state
    /// machine does when `apply` panics.
    pub fn with_dangling_inbox_for_tests(forward: ForwardId) -> Ledger {
        let mut ledger = Ledger::new();
        ledger.insert_received(forward, TaskId(99));
        ledger
    }

    /// A ledger that breaks an invariant (a completed task with neither assignee nor outcome),
    /// for the tests of what loads a ledger from outside.
    pub fn broken_for_tests() -> Ledger {
        let mut ledger = Ledger::new();
        let id = ledger.take_task_id();
        let entry = TimelineEntry {
            version: 1,
            at_ms: 1,
            action: TimelineAction::Create,
            actor_user: "x".into(),
            actor_bureau: BureauCode::parse_compiled("440000").expect("known"),
            note: String::new(),
            assignee_bureau: None,
            outcome: None,
        };
        let subject = super::task::Subject {
            uscc: None,
            name: "x".into(),
            region_code: BureauCode::parse_compiled("440106").expect("known"),
            address: String::new(),
        };
        let mut task = Task::registered(
            id,
            1,
            super::task::TaskKind::Lead,
            super::task::Severity::Normal,
            "x".into(),
            String::new(),
            subject,
            super::task::Source::Complaint,
            entry.actor_bureau,
            None,
            entry,
        );
        task.handling.state = super::task::TaskState::Completed;
        ledger.last_stamp_ms = 1;
        ledger.insert_new_task(task);
        ledger
    }
}

/// A ledger that breaks one of its invariants: what `check_invariants` found first.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the ledger breaks an invariant: {0}")]
pub struct InvariantViolation(pub String);

/// A handover's two ends.
#[derive(Clone, Copy)]
pub(crate) struct Route {
    pub(crate) from_group: BureauCode,
    pub(crate) to_group: BureauCode,
}

/// What a chase entry does.
enum Chase {
    Remind(u32),
    Escalate(BureauCode),
}

/// The checks of a transition's own parameters against the task (the policy decided the rest):
/// a handover goes to another group, a dispatch's deadlines, an extension that moves the
/// deadline later, a resume that never moves it earlier, an inspection's result, a record.
fn check_parameters(regions: &Regions, task: &Task, stamp_ms: u64, transition: &Transition) -> Result<(), Rejection> {
    match transition {
        Transition::Forward { to_group, from_group }
        | Transition::Dispute { to_group, from_group }
        | Transition::Designate { to_group, from_group } => other_group(regions, *to_group, *from_group),
        Transition::DispatchAcross { assignee, ack_deadline_ms, complete_deadline_ms, to_group, from_group } => {
            other_group(regions, *to_group, *from_group)?;
            validate::dispatch(
                regions,
                task.origin_bureau,
                *assignee,
                stamp_ms,
                *ack_deadline_ms,
                *complete_deadline_ms,
            )
        }
        Transition::Dispatch { assignee, ack_deadline_ms, complete_deadline_ms } => validate::dispatch(
            regions,
            task.origin_bureau,
            *assignee,
            stamp_ms,
            *ack_deadline_ms,
            *complete_deadline_ms,
        ),
        Transition::RequestExtension { new_complete_deadline_ms, extensions_allowed } => {
            if task.handling.extensions_granted >= *extensions_allowed {
                return Err(Rejection::LimitReached(format!(
                    "task {} already had {} of the {extensions_allowed} extension(s) its kind allows",
                    task.id, task.handling.extensions_granted
                )));
            }
            if task.handling.complete_deadline_ms.is_none_or(|current| *new_complete_deadline_ms <= current) {
                return Err(Rejection::Invalid {
                    field: "complete_deadline".into(),
                    reason: "an extension must move the completion deadline later".into(),
                });
            }
            Ok(())
        }
        Transition::Resume { new_complete_deadline_ms } => {
            if task.handling.complete_deadline_ms.is_some_and(|d| *new_complete_deadline_ms < d) {
                return Err(Rejection::Invalid {
                    field: "complete_deadline".into(),
                    reason: "resuming never moves the completion deadline earlier".into(),
                });
            }
            Ok(())
        }
        Transition::Complete { outcome, publication_deadline_ms } => {
            check_completion(task, stamp_ms, *outcome, *publication_deadline_ms)
        }
        // Answers only the inspection's items (none on a task that is no inspection).
        Transition::RecordOnSite(record) => {
            let items: Vec<&str> = task
                .inspection
                .iter()
                .flat_map(|inspection| &inspection.items)
                .map(|item| item.code.as_str())
                .collect();
            crate::site_record::check(record, &items)
        }
        Transition::Ack
        | Transition::Claim
        | Transition::Assign { .. }
        | Transition::Release
        | Transition::HandDown { .. }
        | Transition::Decline
        | Transition::Feedback
        | Transition::Close
        | Transition::Return
        | Transition::Cancel
        | Transition::GrantExtension
        | Transition::RefuseExtension
        | Transition::Pause => Ok(()),
    }
}

/// A handover names another group's bureau, an active one.
fn other_group(regions: &Regions, to_group: BureauCode, from_group: BureauCode) -> Result<(), Rejection> {
    if to_group == from_group || !regions.is_active(to_group) {
        return Err(Rejection::Invalid {
            field: "to_group".into(),
            reason: format!("{to_group} is not another group's bureau"),
        });
    }
    Ok(())
}

/// A drawn inspection's result is one of the inspection outcomes and starts its publication
/// clock; no other task has one.
fn check_completion(
    task: &Task,
    stamp_ms: u64,
    outcome: CompletionOutcome,
    publication_deadline_ms: Option<u64>,
) -> Result<(), Rejection> {
    let invalid = |field: &str, reason: &str| Rejection::Invalid { field: field.into(), reason: reason.into() };
    if task.inspection.is_some() && task.received.is_some() {
        // Drawn by another group: the result is entered here and published by the organiser.
        return match publication_deadline_ms {
            Some(_) => Err(invalid("publication_deadline", "the organiser of another group's draw publishes it")),
            None if !is_inspection_outcome(outcome) => Err(invalid(
                "outcome",
                "an inspection's result is one of no_problem_found, corrected, penalized, not_found_at_address, case_opened",
            )),
            None => Ok(()),
        };
    }
    match (&task.inspection, publication_deadline_ms) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(invalid("publication_deadline", "only a drawn inspection's result has one")),
        (Some(_), None) => Err(invalid("publication_deadline", "a drawn inspection's result starts its publication clock")),
        (Some(_), Some(_)) if !is_inspection_outcome(outcome) => Err(invalid(
            "outcome",
            "an inspection's result is one of no_problem_found, corrected, penalized, not_found_at_address, case_opened",
        )),
        (Some(_), Some(deadline_ms)) => {
            if deadline_ms <= stamp_ms || deadline_ms - stamp_ms > DEADLINE_HORIZON_MS {
                return Err(invalid("publish_deadline", "must lie after the result's entry, within the deadline horizon"));
            }
            Ok(())
        }
    }
}
