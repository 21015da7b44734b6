//! Response metrics on a hand-built ledger where every figure is known, compared exactly:
//! on-time and late acknowledgements and completions, a never-acknowledged task, a cancelled
//! one, a returned one, an assignment, an extension, a task dispatched the day after the period
//! (it does not count), and the book kept incrementally equal to one built from scratch.

use ledger::{
    Action, Actor, BureauCode, Command, CompletionOutcome, Ledger, NewTask, Role, Routing, Severity, Source, Subject,
    TaskChange, TaskId, TaskKind, Transition,
};

use super::{Book, Breakdown};
use ledger::response::{beijing_day, day_start_ms};

const HOUR: u64 = 3_600_000;

fn code(text: &str) -> BureauCode {
    BureauCode::parse_compiled(text).expect(text)
}

struct World {
    ledger: Ledger,
    incremental: Book,
    day0: u64,
}

impl World {
    fn new() -> World {
        // A Beijing day in 2026: times below are hours after its midnight.
        let day0 = day_start_ms(beijing_day(1_780_000_000_000));
        World { ledger: Ledger::new(), incremental: Book::new(), day0 }
    }

    fn at(&self, hours: u64) -> u64 {
        self.day0 + hours * HOUR
    }

    fn apply(&mut self, hours: u64, actor: Actor, action: Action) -> TaskId {
        let command = Command { stamp_ms: self.at(hours), actor, idempotency: None, action };
        let applied = self.ledger.apply(&command).unwrap_or_else(|e| panic!("{e}"));
        self.incremental.update(applied.before[0].as_deref(), applied.task());
        applied.task().id
    }

    fn command(&self) -> Actor {
        Actor { user: "zhang".into(), bureau: code("440000"), role: Role::Command }
    }

    fn create(&mut self, hours: u64, kind: TaskKind) -> TaskId {
        let task = NewTask {
            kind,
            severity: Severity::Normal,
            title: "指标测试".into(),
            description: String::new(),
            subject: Subject {
                uscc: None, name: "某商户".into(), region_code: code("440106"), address: String::new()
            },
            source: Source::Complaint,
            origin_bureau: code("440000"),
            assignee_bureau: None,
            routing: Routing::Keep,
        };
        self.apply(hours, self.command(), Action::CreateTask(task))
    }

    fn change(&mut self, hours: u64, actor: Actor, task: TaskId, transition: Transition) {
        let note = if transition.action().requires_note() { "原因".to_owned() } else { String::new() };
        let change = TaskChange { task, expected_version: None, note, transition };
        self.apply(hours, actor, Action::ChangeTask(change));
    }

    fn dispatch(&mut self, hours: u64, task: TaskId, to: &str, ack_by: u64, complete_by: u64) {
        let transition = Transition::Dispatch {
            assignee: code(to),
            ack_deadline_ms: self.at(ack_by),
            complete_deadline_ms: self.at(complete_by),
        };
        self.change(hours, self.command(), task, transition);
    }

    fn operator(bureau: &str) -> Actor {
        Actor { user: format!("op-{bureau}"), bureau: code(bureau), role: Role::Operator }
    }
}

#[test]
fn figures_of_a_known_ledger_are_exact() {
    let complete = || Transition::Complete { outcome: CompletionOutcome::Warned, publication_deadline_ms: None };
    let mut w = World::new();
    let t3 = w.create(9, TaskKind::RiskAlert);
    w.dispatch(9, t3, "440104", 10, 72);
    let t1 = w.create(10, TaskKind::Lead);
    w.dispatch(10, t1, "440106", 12, 48);
    w.change(11, World::operator("440106"), t1, Transition::Ack);
    let t2 = w.create(13, TaskKind::Lead);
    w.dispatch(13, t2, "440106", 14, 48);
    w.change(15, World::operator("440106"), t2, Transition::Ack);
    let t5 = w.create(16, TaskKind::Lead);
    w.dispatch(16, t5, "440106", 18, 72);
    w.change(16, w.command(), t5, Transition::Cancel);
    let t6 = w.create(17, TaskKind::Assignment);
    w.dispatch(17, t6, "440104", 20, 40);
    w.change(18, World::operator("440104"), t6, Transition::Ack);
    // T7 → 天河 at 19:00: acked, completed, then returned by the centre: not done, open again.
    let t7 = w.create(19, TaskKind::Lead);
    w.dispatch(19, t7, "440106", 20, 70);
    w.change(19, World::operator("440106"), t7, Transition::Ack);
    w.change(19, World::operator("440106"), t7, complete());
    w.change(19, w.command(), t7, Transition::Return);
    let extension = Transition::RequestExtension { new_complete_deadline_ms: w.at(60), extensions_allowed: 1 };
    w.change(20, World::operator("440106"), t2, extension);
    w.change(21, w.command(), t2, Transition::GrantExtension);
    // T4 → 南山 the next day: outside a one-day period.
    let t4 = w.create(26, TaskKind::Lead);
    w.dispatch(26, t4, "440305", 30, 60);
    w.change(30, World::operator("440104"), t6, complete());
    w.change(34, World::operator("440106"), t1, complete());
    w.change(35, w.command(), t1, Transition::Close);
    w.change(61, World::operator("440106"), t2, complete());

    let day = beijing_day(w.day0);
    let now = w.at(62);
    let report = w.incremental.report(ledger::Regions::compiled(), code("440000"), day, day, Breakdown::Child, now);
    let total = &report.total;
    assert_eq!((total.received, total.acknowledged, total.completed, total.closed, total.cancelled), (6, 4, 3, 1, 1));
    // Acks: T7 at once, T1 1 h, T6 1 h, T2 2 h → median 1 h, p90 2 h.
    assert_eq!((total.ack_median_secs, total.ack_p90_secs), (Some(3_600), Some(7_200)));
    // Completions: T6 13 h, T1 24 h, T2 48 h → median 24 h, p90 48 h, read from buckets 1/128
    // wide (`ledger::response::Durations`): 24 h reads 86,528 s, 48 h 173,056 s.
    assert_eq!((total.complete_median_secs, total.complete_p90_secs), (Some(86_528), Some(173_056)));
    assert_eq!(total.ack_on_time_rate, Some(3.0 / 6.0), "T1, T6 and T7 on time; T2 late, T3 and T5 never");
    assert_eq!(total.completion_on_time_rate, Some(2.0 / 3.0), "T2 completed after even its extended deadline");
    assert_eq!(total.completion_rate, Some(3.0 / 5.0), "3 of the 5 not cancelled; T7's returned result does not count");
    assert_eq!(total.extensions, 1);
    assert_eq!(total.assignment_referral_completion_rate, Some(1.0));
    assert_eq!(total.complaint_on_time_rate, Some(2.0 / 6.0), "every task here came from the complaint channel");
    // Open now (whatever the period): T3 and T4 past their ack deadlines, T7 returned and in time.
    assert_eq!((total.open_now, total.overdue_now), (3, 2));

    let row = |key: &str| report.rows.iter().find(|r| r.key == key).unwrap_or_else(|| panic!("row {key}"));
    let guangzhou = row("440100");
    assert_eq!((guangzhou.figures.received, guangzhou.figures.completed), (6, 3));
    assert_eq!(guangzhou.name.as_deref(), Some("广州市"));
    let shenzhen = row("440300");
    assert_eq!(
        (shenzhen.figures.received, shenzhen.figures.open_now),
        (0, 1),
        "T4 is open in Shenzhen, received next day"
    );

    // Two days: T4 counts too; per day, each day its own.
    let two_days = w.incremental.report(ledger::Regions::compiled(), code("440000"), day, day + 1, Breakdown::Day, now);
    assert_eq!(two_days.total.received, 7);
    assert_eq!(two_days.rows.iter().map(|r| r.figures.received).collect::<Vec<_>>(), [6, 1]);
    // A county's own report.
    let tianhe = w.incremental.report(ledger::Regions::compiled(), code("440106"), day, day, Breakdown::Child, now);
    assert_eq!((tianhe.total.received, tianhe.total.cancelled), (4, 1));

    // The book kept entry by entry equals one built from the final ledger.
    let mut rebuilt = Book::new();
    for task in w.ledger.tasks_newest_first(None) {
        rebuilt.update(None, &task);
    }
    assert_eq!(
        rebuilt.report(ledger::Regions::compiled(), code("440000"), day, day + 1, Breakdown::Week, now),
        w.incremental.report(ledger::Regions::compiled(), code("440000"), day, day + 1, Breakdown::Week, now)
    );
}

#[test]
fn the_csv_columns_name_every_figure() {
    let value = serde_json::to_value(super::Figures::default()).expect("encodes");
    let fields: std::collections::BTreeSet<&str> =
        value.as_object().expect("object").keys().map(String::as_str).collect();
    let columns: std::collections::BTreeSet<&str> = super::Figures::COLUMNS.into_iter().collect();
    assert_eq!(fields, columns);
}

/// A lead handed to another group for good counts for none of this group's bureaus: its
/// assignee there is that group's report (the second security review made one of this
/// group's own bureaus look late through it). A dispatch to another group still counts.
#[test]
fn a_lead_handed_over_for_good_counts_for_no_bureau_here() {
    use ledger::{ForwardId, HandoverPurpose, RemoteHandling, Task, TaskState, TimelineAction};
    let entry = ledger::task::TimelineEntry {
        version: 1,
        at_ms: 1,
        action: TimelineAction::Create,
        actor_user: "x".into(),
        actor_bureau: code("440000"),
        note: String::new(),
        assignee_bureau: None,
        outcome: None,
    };
    let subject = Subject { uscc: None, name: "x".into(), region_code: code("330106"), address: String::new() };
    let mut task = Task::registered(
        TaskId(1),
        1,
        TaskKind::Lead,
        Severity::High,
        "x".into(),
        String::new(),
        subject,
        Source::Complaint,
        code("440000"),
        None,
        entry,
    );
    (
        task.handling.state,
        task.handling.assignee_bureau,
        task.handling.dispatched_at_ms,
        task.handling.ack_deadline_ms,
    ) = (TaskState::Dispatched, Some(code("441900")), Some(2), Some(3));
    let remote = |purpose| RemoteHandling {
        forward: ForwardId { origin_group: code("440000"), seq: 1 },
        to_group: code("330000"),
        purpose,
        delivered: Some((TaskId(9), 2)),
        instructions_sent: 0,
        mirrored_version: 2,
    };
    task.remote = Some(remote(HandoverPurpose::Jurisdiction));
    assert!(ledger::response::Facts::of(&task).is_none());
    task.remote = Some(remote(HandoverPurpose::Dispatch));
    assert!(ledger::response::Facts::of(&task).is_some());
}

mod from_the_store {
    //! The book a node starts with (the store's tallies and open tasks at its checkpoint, then
    //! the changes since) equals the book of every task, over random ledgers checkpointed at
    //! random points, whichever moment of a checkpoint the rebuild meets.

    use cluster::store::Store;
    use proptest::prelude::*;

    use super::super::{book_from_store, Book};
    use crate::random_ledger::{build_observed, step};

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn the_book_from_the_store_and_the_book_kept_equal_the_book_of_every_task(steps in proptest::collection::vec(step(), 1..160)) {
            let dir = tempfile::tempdir().expect("dir");
            let store = Store::open(&dir.path().join("ledger.redb")).expect("store");
            let mut kept = Book::new();
            let (ledger, _) = build_observed(&steps, &store, |_, applied| {
                for (before, after) in applied.before.iter().zip(&applied.tasks) {
                    kept.update(before.as_deref(), after);
                }
            });
            let mut scanned = Book::new();
            for task in ledger.tasks_newest_first(None) {
                scanned.update(None, &task);
            }
            let from_store = book_from_store(&ledger, &store.view().expect("view")).expect("book");
            prop_assert_eq!(&from_store, &scanned);
            prop_assert_eq!(&kept, &scanned, "the book kept change by change");
        }
    }
}
