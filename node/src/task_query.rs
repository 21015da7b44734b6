//! Pages of the task list: the store's indexes (`cluster::store::index`) merged with the tasks
//! changed since the last checkpoint, which the ledger holds in memory. A page reads the page
//! (plus what its filters pass over) and the changed tasks, never the ledger.
//!
//! The plan: read one index of the bureau whose listing holds every task the caller may see and
//! the filter asks for (the caller's bureau, or the filtered bureau below it); pick the index
//! by the order and the most telling filter (time left or overdue: the running clocks; states;
//! kind; else all), and check every filter and the caller's access on each task read. A task
//! changed since the checkpoint is taken from memory only, whatever its stale index entries say.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use cluster::raft::Replica;
use cluster::store::index::{self, Facet};
use cluster::store::StoreView as ReadTransaction;
use ledger::{access, Actor, BureauCode, Regions, Role, Task, TaskId, TaskKind, TaskState};

/// What a list asks for, besides its order.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    pub bureau: Option<BureauCode>,
    /// Only tasks about this market entity (its USCC, checked).
    pub uscc: Option<String>,
    pub states: Option<Vec<TaskState>>,
    pub kind: Option<TaskKind>,
    pub overdue: Option<bool>,
    /// Only tasks this person handles (lead or supporting): "my tasks".
    pub handled_by: Option<ledger::organisation::PersonId>,
}

/// The order of a list and where its page starts.
#[derive(Clone, Copy, Debug)]
pub enum Order {
    /// Newest first, ids below the cursor.
    Newest { before: Option<TaskId> },
    /// Tasks whose clock runs, least time left first, after the cursor `(deadline, id)`.
    TimeLeft { after: Option<(u64, u64)> },
}

/// A task's place in an order: smaller comes first.
type Place = (u64, u64);

fn place(order: Order, task: &Task) -> Option<Place> {
    match order {
        Order::Newest { .. } => Some((u64::MAX - task.id.0, 0)),
        Order::TimeLeft { .. } => task.running_deadline_ms().map(|deadline_ms| (deadline_ms, task.id.0)),
    }
}

fn after_cursor(order: Order, place: Place) -> bool {
    match order {
        Order::Newest { before } => before.is_none_or(|before| u64::MAX - place.0 < before.0),
        Order::TimeLeft { after } => after.is_none_or(|after| place > after),
    }
}

/// Whether `task` belongs in the list `actor` asked for.
pub fn matches(regions: &Regions, actor: &Actor, filter: &ListFilter, now_ms: u64, task: &Task) -> bool {
    let in_bureau = |code: BureauCode| filter.bureau.is_none_or(|b| regions.is_within(code, b));
    access::can_see(regions, actor, task)
        && (in_bureau(task.origin_bureau) || task.handling.assignee_bureau.is_some_and(in_bureau))
        && filter.states.as_ref().is_none_or(|s| s.contains(&task.handling.state))
        && filter.kind.is_none_or(|k| k == task.kind)
        && filter.overdue.is_none_or(|o| o == task.is_overdue_at(now_ms))
        && filter.uscc.as_deref().is_none_or(|u| task.subject.uscc.as_ref().is_some_and(|t| t.as_str() == u))
        && filter.handled_by.is_none_or(|person| task.field_work.handlers.concerns(person))
}

/// The bureau whose listing holds every task the page may show.
fn scan_bureau(regions: &Regions, actor: &Actor, filter: &ListFilter) -> BureauCode {
    match (actor.role, filter.bureau) {
        (Role::Command | Role::Leadership, Some(filtered)) if regions.is_within(filtered, actor.bureau) => filtered,
        // A station's person's own tasks include the county's drawn inspections of their team.
        _ if filter.handled_by.is_some() => actor.bureau.county_of_station().unwrap_or(actor.bureau),
        _ => actor.bureau,
    }
}

type Candidates = Box<dyn Iterator<Item = std::io::Result<TaskId>>>;

/// The store's candidates in the page's order (their places are recomputed from the tasks).
fn candidates(
    view: &ReadTransaction,
    bureau: BureauCode,
    filter: &ListFilter,
    order: Order,
    now_ms: u64,
) -> std::io::Result<Candidates> {
    match order {
        Order::TimeLeft { after } => {
            Ok(Box::new(index::running(view, bureau, after)?.map(|entry| entry.map(|(_, id)| id))))
        }
        // An entity's tasks are few: its own index first.
        Order::Newest { before } if filter.uscc.is_some() => {
            index::by_uscc(view, filter.uscc.as_deref().expect("matched"), before)
        }
        Order::Newest { before } if filter.overdue == Some(true) => {
            // Overdue is a matter of the clock: the running clocks that ended before now,
            // newest first. As many as the bureau's overdue tasks, which open work bounds.
            let mut ids = Vec::new();
            for entry in index::running(view, bureau, None)? {
                let (deadline_ms, id) = entry?;
                if deadline_ms >= now_ms {
                    break;
                }
                if before.is_none_or(|before| id < before) {
                    ids.push(id);
                }
            }
            ids.sort_unstable_by_key(|id| Reverse(*id));
            Ok(Box::new(ids.into_iter().map(Ok)))
        }
        Order::Newest { before } => match (&filter.states, filter.kind) {
            (Some(states), _) => {
                // One list per state, however often the query names it.
                let mut distinct: Vec<TaskState> = Vec::with_capacity(states.len());
                for state in states {
                    if !distinct.contains(state) {
                        distinct.push(*state);
                    }
                }
                let lists = distinct
                    .iter()
                    .map(|state| index::listed(view, bureau, Facet::State(*state), before))
                    .collect::<std::io::Result<Vec<_>>>()?;
                Ok(Box::new(NewestOfMany::new(lists)))
            }
            (None, Some(kind)) => index::listed(view, bureau, Facet::Kind(kind), before),
            (None, None) => index::listed(view, bureau, Facet::All, before),
        },
    }
}

/// Several newest-first id lists merged into one, newest first.
struct NewestOfMany {
    heads: BinaryHeap<(TaskId, usize)>,
    lists: Vec<Candidates>,
    failed: Option<std::io::Error>,
}

impl NewestOfMany {
    fn new(mut lists: Vec<Candidates>) -> NewestOfMany {
        let mut heads = BinaryHeap::new();
        let mut failed = None;
        for (position, list) in lists.iter_mut().enumerate() {
            match list.next() {
                Some(Ok(id)) => heads.push((id, position)),
                Some(Err(error)) => failed = Some(error),
                None => {}
            }
        }
        NewestOfMany { heads, lists, failed }
    }
}

impl Iterator for NewestOfMany {
    type Item = std::io::Result<TaskId>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(error) = self.failed.take() {
            return Some(Err(error));
        }
        let (id, position) = self.heads.pop()?;
        match self.lists[position].next() {
            Some(Ok(next)) => self.heads.push((next, position)),
            Some(Err(error)) => self.failed = Some(error),
            None => {}
        }
        Some(Ok(id))
    }
}

/// One page: up to `limit` tasks in order, and whether more follow.
pub fn page(
    replica: &Replica,
    view: &ReadTransaction,
    actor: &Actor,
    filter: &ListFilter,
    order: Order,
    now_ms: u64,
    limit: usize,
) -> std::io::Result<(Vec<Arc<Task>>, bool)> {
    let regions = replica.ledger.regions();
    let wanted = |task: &Task| matches(&regions, actor, filter, now_ms, task);
    // The changed tasks that belong, in order.
    let mut changed: Vec<(Place, Arc<Task>)> = replica
        .ledger
        .changed_tasks()
        .filter(|task| wanted(task))
        .filter_map(|task| place(order, task).map(|place| (place, task.clone())))
        .filter(|(place, _)| after_cursor(order, *place))
        .collect();
    changed.sort_unstable_by_key(|(place, _)| *place);
    let mut changed = changed.into_iter().peekable();

    let bureau = scan_bureau(&regions, actor, filter);
    let mut stored = candidates(view, bureau, filter, order, now_ms)?;
    let mut next_stored = || -> std::io::Result<Option<(Place, Arc<Task>)>> {
        for id in stored.by_ref() {
            let id = id?;
            if replica.ledger.is_changed(id) {
                continue;
            }
            let Some(task) = cluster::store::task_in(view, id)? else { continue };
            if !wanted(&task) {
                continue;
            }
            if let Some(place) = place(order, &task).filter(|place| after_cursor(order, *place)) {
                return Ok(Some((place, Arc::new(task))));
            }
        }
        Ok(None)
    };
    let mut tasks = Vec::with_capacity(limit);
    let mut from_store = next_stored()?;
    loop {
        let take_changed = match (changed.peek(), &from_store) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((changed_place, _)), Some((stored_place, _))) => changed_place < stored_place,
        };
        if tasks.len() == limit {
            return Ok((tasks, true));
        }
        if take_changed {
            let (_, task) = changed.next().expect("peeked");
            tasks.push(task);
        } else {
            let (_, task) = from_store.take().expect("matched");
            tasks.push(task);
            from_store = next_stored()?;
        }
    }
    Ok((tasks, false))
}

/// Every task with open work (`Task::has_open_work`), newest first: the store's open index
/// merged with the changes in memory. What is rebuilt from open work (the deadline watch, a
/// console's snapshot, open handovers) reads this, never the whole ledger.
pub fn open_tasks(replica: &Replica, view: &ReadTransaction) -> std::io::Result<Vec<Arc<Task>>> {
    let mut open: Vec<Arc<Task>> =
        replica.ledger.changed_tasks().filter(|task| task.has_open_work()).cloned().collect();
    for id in index::open(view)? {
        let id = id?;
        if replica.ledger.is_changed(id) {
            continue;
        }
        if let Some(task) = cluster::store::task_in(view, id)? {
            open.push(Arc::new(task));
        }
    }
    open.sort_unstable_by_key(|task| Reverse(task.id));
    Ok(open)
}

/// `open_tasks` for the node's current state, read under the replica's lock. A store that
/// cannot be read is an error the caller logs; the state machine stops on the same failure.
pub fn open_tasks_now(store: &cluster::raft::LedgerStore) -> std::io::Result<Vec<Arc<Task>>> {
    let replica = store.read();
    let view = store.store_view()?;
    open_tasks(&replica, &view)
}

/// Where a reader of the changes stands: every change at positions up to `since` is taken, or,
/// when `after` is given, the changes at `since` only of tasks up to `after` (a page may end
/// inside a position: a store loaded from a stream files every task under one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChangesCursor {
    pub since: u64,
    pub after: Option<TaskId>,
}

impl ChangesCursor {
    /// Whether the change of `id` at `position` lies after the cursor.
    fn precedes(self, position: u64, id: TaskId) -> bool {
        match self.after {
            None => position > self.since,
            Some(after) => position > self.since || (position == self.since && id > after),
        }
    }
}

/// A page of the feed of changes as the store and memory hold it: each task changed after a
/// cursor, once, at its current version, under the position of its last change.
pub struct ChangesPage {
    /// (position, task), in the order of (position, task id).
    pub tasks: Vec<(u64, Arc<Task>)>,
    /// Where the next page starts; at the end, the applied index.
    pub next: ChangesCursor,
}

/// The tasks changed after `from`, in the order of their last change: up to `positions_max`
/// positions (log entries) and `scan_max` tasks read (a page for a narrow scope may be empty and
/// still move on). `visible` chooses what the caller may see. Costs the page, not the ledger:
/// positions come from the store's `CHANGED` index, then from the changes in memory.
pub fn changes_after(
    replica: &Replica,
    view: &ReadTransaction,
    from: ChangesCursor,
    positions_max: usize,
    scan_max: usize,
    visible: impl Fn(&Task) -> bool,
) -> std::io::Result<ChangesPage> {
    assert!(positions_max > 0 && scan_max > 0, "a page reads something");
    let in_memory = replica.ledger.changed_positions();
    let mut from_memory: Vec<(u64, TaskId)> = in_memory
        .iter()
        .filter(|(id, position)| from.precedes(**position, **id))
        .map(|(id, position)| (*position, *id))
        .collect();
    from_memory.sort_unstable();
    // A task changed since the checkpoint is listed under its newer position, from memory.
    let from_store = index::changed_after(view, from.since, from.after)?
        .filter(|entry| entry.as_ref().map_or(true, |(_, id)| !in_memory.contains_key(id)));
    let mut merged = MergeByPosition { store: from_store.peekable(), memory: from_memory.into_iter().peekable() };
    let mut tasks = Vec::new();
    let (mut cursor, mut positions, mut scanned) = (from, 0, 0);
    while let Some((position, id)) = merged.peek()? {
        let new_position = position != cursor.since;
        if new_position {
            // The position before is complete.
            cursor.after = None;
            if positions == positions_max || scanned >= scan_max {
                return Ok(ChangesPage { tasks, next: cursor });
            }
            positions += 1;
        } else if scanned >= scan_max {
            return Ok(ChangesPage { tasks, next: cursor });
        }
        let from_store = merged.take()?;
        let task = if from_store { cluster::store::task_in(view, id)?.map(Arc::new) } else { replica.ledger.task(id) };
        scanned += 1;
        if let Some(task) = task.filter(|task| visible(task)) {
            tasks.push((position, task));
        }
        cursor = ChangesCursor { since: position, after: Some(id) };
    }
    let applied = replica.last_applied.map_or(0, |log_id| log_id.index);
    Ok(ChangesPage { tasks, next: ChangesCursor { since: applied.max(cursor.since), after: None } })
}

/// The store's positions and memory's, merged in (position, task) order.
struct MergeByPosition<S: Iterator<Item = std::io::Result<(u64, TaskId)>>, M: Iterator<Item = (u64, TaskId)>> {
    store: std::iter::Peekable<S>,
    memory: std::iter::Peekable<M>,
}

impl<S: Iterator<Item = std::io::Result<(u64, TaskId)>>, M: Iterator<Item = (u64, TaskId)>> MergeByPosition<S, M> {
    /// The next (position, task), not taken.
    fn peek(&mut self) -> std::io::Result<Option<(u64, TaskId)>> {
        let store = match self.store.peek() {
            Some(Ok(next)) => Some(*next),
            Some(Err(_)) => return Err(self.store.next().expect("peeked").expect_err("an error")),
            None => None,
        };
        let memory = self.memory.peek().copied();
        Ok(match (store, memory) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// Takes the next; answers whether the store holds it (else memory does).
    fn take(&mut self) -> std::io::Result<bool> {
        let next = self.peek()?.expect("taken after a peek");
        if let Some(Ok(stored)) = self.store.peek() {
            if *stored == next {
                self.store.next();
                return Ok(true);
            }
        }
        self.memory.next();
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    //! A page read from the indexes and the changes in memory equals the same page of a plain
    //! scan of the ledger, over random ledgers checkpointed at random points, random callers,
    //! filters, orders and page sizes, following the cursors to the end.

    use super::*;
    use crate::random_ledger::{build, code, step, BUREAUS, HOUR_MS, USCCS};
    use cluster::store::Store;
    use proptest::prelude::*;

    fn filter() -> impl Strategy<Value = ListFilter> {
        let states = proptest::option::of(proptest::sample::subsequence(TaskState::ALL.to_vec(), 1..3));
        let kind = proptest::option::of(prop_oneof![Just(TaskKind::Lead), Just(TaskKind::RiskAlert)]);
        let bureau = proptest::option::of(proptest::sample::select(BUREAUS.to_vec()).prop_map(code));
        let uscc = proptest::option::of(proptest::sample::select(USCCS.to_vec()).prop_map(str::to_owned));
        (bureau, uscc, states, kind, proptest::option::of(any::<bool>())).prop_map(
            |(bureau, uscc, states, kind, overdue)| ListFilter {
                bureau,
                uscc,
                states,
                kind,
                overdue,
                handled_by: None,
            },
        )
    }

    fn actor() -> impl Strategy<Value = Actor> {
        let role = prop_oneof![Just(Role::Command), Just(Role::Leadership), Just(Role::Operator)];
        (proptest::sample::select(BUREAUS.to_vec()), role).prop_map(|(bureau, role)| Actor {
            user: "reader".into(),
            bureau: code(bureau),
            role,
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Following the feed of changes from any position to its end gives every task whose
        /// last change came after it, once, as it stands, in the order of those changes, with
        /// whole positions per page.
        #[test]
        fn the_changes_after_any_position_are_each_task_once_in_order(
            steps in proptest::collection::vec(step(), 1..160),
            since_step in 0..160u64,
            positions_max in 1..5usize,
            scan_max in 1..8usize,
        ) {
            let dir = tempfile::tempdir().expect("dir");
            let store = Store::open(&dir.path().join("ledger.redb")).expect("store");
            let mut last_change = std::collections::BTreeMap::new();
            let (ledger, _) = crate::random_ledger::build_observed(&steps, &store, |position, applied| {
                for task in &applied.tasks {
                    last_change.insert(task.id, position);
                }
            });
            let applied = steps.len() as u64;
            let replica = Replica {
                ledger,
                last_applied: Some(openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), applied)),
                membership: Default::default(),
            };
            let view = store.view().expect("view");
            let mut expected: Vec<(u64, TaskId)> =
                last_change.iter().filter(|(_, p)| **p > since_step).map(|(id, p)| (*p, *id)).collect();
            expected.sort_unstable();
            let mut got = Vec::new();
            let mut cursor = ChangesCursor { since: since_step, after: None };
            loop {
                let page = changes_after(&replica, &view, cursor, positions_max, scan_max, |_| true).expect("page");
                let positions: std::collections::BTreeSet<u64> = page.tasks.iter().map(|(p, _)| *p).collect();
                prop_assert!(positions.len() <= positions_max);
                prop_assert!(page.tasks.len() <= scan_max);
                for (position, task) in &page.tasks {
                    let current = replica.ledger.task(task.id);
                    prop_assert_eq!(Some(task), current.as_ref(), "as it stands");
                    got.push((*position, task.id));
                }
                if page.next == cursor {
                    prop_assert!(page.tasks.is_empty());
                    break;
                }
                cursor = page.next;
                prop_assert!(got.len() <= expected.len(), "the pages end");
            }
            prop_assert_eq!(cursor, ChangesCursor { since: applied.max(since_step), after: None }, "the feed ends at the applied index");
            prop_assert_eq!(got, expected);
        }

        /// A store loaded from a stream files every task under its checkpoint: pages end inside
        /// that one position and the cursor goes on from the task, each task once.
        #[test]
        fn pages_split_the_one_position_of_a_loaded_store(
            steps in proptest::collection::vec(step(), 1..120),
            scan_max in 1..6usize,
        ) {
            let dir = tempfile::tempdir().expect("dir");
            let store = Store::open(&dir.path().join("ledger.redb")).expect("store");
            // One checkpoint of everything at the end, as a snapshot or a backup is taken.
            let steps: Vec<_> = steps.into_iter().filter(|step| !matches!(step, crate::random_ledger::Step::Checkpoint { .. })).collect();
            let (mut ledger, _) = build(&steps, &store);
            let sealed = ledger.seal();
            let applied = Some(openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), steps.len() as u64 + 1));
            let meta = cluster::store::CheckpointMeta { applied, membership: Default::default() };
            store.write_checkpoint(&sealed, &ledger.encode_core(), &meta, &ledger.regions()).expect("checkpoint");
            ledger.checkpoint_written();
            drop(ledger);
            let mut stream = Vec::new();
            cluster::store::stream::write_stream(&store.view().expect("view"), &mut stream).expect("stream");
            let loaded_path = dir.path().join("loaded.redb");
            let cluster::store::stream::StreamCore { meta, core, .. } =
                cluster::store::stream::load_stream(&mut stream.as_slice(), &loaded_path).expect("load");
            let loaded = Store::open_existing(&loaded_path).expect("open");
            let ledger = ledger::Ledger::from_core(&core, loaded.records()).expect("core");
            let mut expected: Vec<TaskId> = ledger.tasks_newest_first(None).map(|task| task.id).collect();
            expected.reverse();
            let replica = Replica { ledger, last_applied: meta.applied, membership: Default::default() };
            let view = loaded.view().expect("view");
            let mut got = Vec::new();
            let mut cursor = ChangesCursor::default();
            loop {
                let page = changes_after(&replica, &view, cursor, 1, scan_max, |_| true).expect("page");
                prop_assert!(page.tasks.len() <= scan_max);
                prop_assert!(page.tasks.iter().all(|(position, _)| Some(*position) == meta.index().map(|i| i.max(1))));
                got.extend(page.tasks.iter().map(|(_, task)| task.id));
                if page.next == cursor {
                    break;
                }
                cursor = page.next;
            }
            prop_assert_eq!(got, expected);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn pages_equal_a_scan_of_the_ledger(
            steps in proptest::collection::vec(step(), 1..160),
            actor in actor(),
            filter in filter(),
            by_time_left in any::<bool>(),
            limit in 1..7usize,
            later_hours in 0..48u64,
        ) {
            let dir = tempfile::tempdir().expect("dir");
            let store = Store::open(&dir.path().join("ledger.redb")).expect("store");
            let (ledger, last_ms) = build(&steps, &store);
            let now_ms = last_ms + later_hours * HOUR_MS;
            let first = if by_time_left { Order::TimeLeft { after: None } } else { Order::Newest { before: None } };
            let mut expected: Vec<(Place, TaskId)> = ledger
                .tasks_newest_first(None)
                .filter(|task| matches(&ledger.regions(), &actor, &filter, now_ms, task))
                .filter_map(|task| place(first, &task).map(|place| (place, task.id)))
                .collect();
            expected.sort_unstable();
            let expected: Vec<TaskId> = expected.into_iter().map(|(_, id)| id).collect();

            let replica = Replica { ledger, last_applied: None, membership: Default::default() };
            let view = store.view().expect("view");
            let mut listed = Vec::new();
            let mut order = first;
            loop {
                let (tasks, more) = page(&replica, &view, &actor, &filter, order, now_ms, limit).expect("page");
                prop_assert!(tasks.len() <= limit);
                prop_assert!(!more || tasks.len() == limit, "a page is full when more follow");
                listed.extend(tasks.iter().map(|task| task.id));
                let Some(last) = tasks.last().filter(|_| more) else { break };
                order = match order {
                    Order::Newest { .. } => Order::Newest { before: Some(last.id) },
                    Order::TimeLeft { .. } => {
                        Order::TimeLeft { after: last.running_deadline_ms().map(|d| (d, last.id.0)) }
                    }
                };
                prop_assert!(listed.len() <= expected.len(), "the pages end");
            }
            prop_assert_eq!(listed, expected);
            let open: Vec<TaskId> = open_tasks(&replica, &view).expect("open").iter().map(|task| task.id).collect();
            let open_by_scan: Vec<TaskId> =
                replica.ledger.tasks_newest_first(None).filter(|task| task.has_open_work()).map(|task| task.id).collect();
            prop_assert_eq!(open, open_by_scan);
        }
    }
}
