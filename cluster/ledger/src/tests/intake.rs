//! Machine intake on a bare ledger: repeats, merges within the window and not beyond it,
//! severity raised by a merge, a closed task never merged into, and refusals that change
//! nothing.

use crate::*;

const T0: u64 = 1_780_000_000_000;
const WINDOW_MS: u64 = 60 * 60 * 1000;

fn bureau(code: &str) -> BureauCode {
    BureauCode::parse_compiled(code).expect(code)
}

fn source() -> Actor {
    Actor { user: "market-monitor".into(), bureau: bureau("440000"), role: Role::Source }
}

fn signal(source_id: &str, shop: &str, observed_ms: u64, severity: Severity) -> Signal {
    Signal {
        source_id: source_id.to_owned(),
        group_key: sha2_key(shop),
        window_ms: WINDOW_MS,
        observed_ms,
        task: NewTask {
            kind: TaskKind::RiskAlert,
            severity,
            title: format!("{shop} 价格异常"),
            description: String::new(),
            subject: Subject {
                uscc: None,
                name: shop.to_owned(),
                region_code: bureau("440106"),
                address: String::new(),
            },
            source: Source::BigData,
            origin_bureau: bureau("440000"),
            assignee_bureau: None,
            routing: Routing::Keep,
        },
        evidence: vec![format!("https://monitor.example/{source_id}")],
    }
}

fn sha2_key(text: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).into()
}

fn ingest(ledger: &mut Ledger, stamp_ms: u64, signal: Signal) -> CommandResult {
    let command =
        Command { stamp_ms, actor: source(), idempotency: None, action: Action::IngestSignal(Box::new(signal)) };
    let result = ledger.apply(&command);
    ledger.check_invariants().expect("the ledger keeps its invariants");
    result
}

#[test]
fn repeats_change_nothing_and_signals_about_one_shop_make_one_task() {
    let mut ledger = Ledger::new();
    let first = ingest(&mut ledger, T0, signal("s1", "甲商店", T0, Severity::Normal)).unwrap();
    assert!(!first.replayed);
    assert_eq!(first.task().intake.as_ref().unwrap().signals, 1);
    let digest = ledger.digest();
    let repeat = ingest(&mut ledger, T0 + 1, signal("s1", "甲商店", T0, Severity::Critical)).unwrap();
    assert!(repeat.replayed);
    assert_eq!(repeat.task().id, first.task().id);
    // A repeat moves only the ledger's clock and command counter; no task changed.
    assert_eq!(&ledger.task(first.task().id).unwrap(), first.task());
    assert_ne!(digest, "", "digest computed");

    let merged = ingest(&mut ledger, T0 + 2, signal("s2", "甲商店", T0 + 10, Severity::Normal)).unwrap();
    assert_eq!(merged.task().id, first.task().id);
    let summary = merged.task().intake.as_ref().unwrap();
    assert_eq!((summary.signals, summary.last_observed_ms), (2, T0 + 10));
    assert_eq!(merged.task().version, 1, "a merge is not a decision: no timeline entry");

    let other = ingest(&mut ledger, T0 + 3, signal("s3", "乙商店", T0, Severity::Normal)).unwrap();
    assert_ne!(other.task().id, first.task().id);
    assert_eq!(ledger.task_count(), 2);
}

#[test]
fn the_window_counts_from_the_first_signal_inclusive() {
    let mut ledger = Ledger::new();
    let now = T0 + 2 * WINDOW_MS;
    let first = ingest(&mut ledger, now, signal("a", "丙商店", T0, Severity::Normal)).unwrap().task().id;
    let inside = ingest(&mut ledger, now, signal("b", "丙商店", T0 + WINDOW_MS, Severity::Normal)).unwrap().task().id;
    assert_eq!(inside, first, "just inside the window merges");
    let outside =
        ingest(&mut ledger, now, signal("c", "丙商店", T0 + WINDOW_MS + 1, Severity::Normal)).unwrap().task().id;
    assert_ne!(outside, first, "just outside the window makes a new task");
    // The group now points at the new task: later signals near it merge there.
    let near_new =
        ingest(&mut ledger, now, signal("d", "丙商店", T0 + WINDOW_MS + 2, Severity::Normal)).unwrap().task().id;
    assert_eq!(near_new, outside);
}

#[test]
fn a_merged_signal_raises_the_severity_on_the_record() {
    let mut ledger = Ledger::new();
    let id = ingest(&mut ledger, T0, signal("a", "丁商店", T0, Severity::Normal)).unwrap().task().id;
    let raised = ingest(&mut ledger, T0 + 5, signal("b", "丁商店", T0 + 5, Severity::Critical)).unwrap().task().clone();
    assert_eq!(raised.id, id);
    assert_eq!(raised.severity, Severity::Critical);
    let entry = raised.timeline.last().unwrap();
    assert_eq!(entry.action, TimelineAction::SeverityRaised);
    // A lower one does not lower it.
    let kept = ingest(&mut ledger, T0 + 6, signal("c", "丁商店", T0 + 6, Severity::Low)).unwrap().task().clone();
    assert_eq!((kept.severity, kept.version), (Severity::Critical, 2));
}

#[test]
fn a_closed_task_takes_no_more_signals() {
    let mut ledger = Ledger::new();
    let id = ingest(&mut ledger, T0, signal("a", "戊商店", T0, Severity::Normal)).unwrap().task().id;
    let command = Actor { user: "zhang".into(), bureau: bureau("440000"), role: Role::Command };
    let cancel = Action::ChangeTask(TaskChange {
        task: id,
        expected_version: None,
        note: "误报".into(),
        transition: Transition::Cancel,
    });
    ledger.apply(&Command { stamp_ms: T0 + 1, actor: command, idempotency: None, action: cancel }).unwrap();
    let next = ingest(&mut ledger, T0 + 2, signal("b", "戊商店", T0 + 2, Severity::Normal)).unwrap().task().id;
    assert_ne!(next, id);
}

#[test]
fn bad_signals_and_other_actors_change_nothing() {
    let mut ledger = Ledger::new();
    let before = ledger.digest();
    let mut future = signal("f", "己商店", T0 + 3_600_000, Severity::Normal);
    future.task.title = "未来".into();
    assert!(matches!(ingest(&mut ledger, T0, future), Err(Rejection::Invalid { .. })));
    let mut bad_link = signal("g", "己商店", T0, Severity::Normal);
    bad_link.evidence = vec!["javascript:alert(1)".into()];
    assert!(matches!(ingest(&mut ledger, T0, bad_link), Err(Rejection::Invalid { .. })));
    let mut elsewhere = signal("h", "己商店", T0, Severity::Normal);
    elsewhere.task.origin_bureau = bureau("440100");
    assert!(matches!(ingest(&mut ledger, T0, elsewhere), Err(Rejection::Invalid { .. })));
    let user = Actor { user: "zhang".into(), bureau: bureau("440000"), role: Role::Command };
    let by_user = ledger.apply(&Command {
        stamp_ms: T0,
        actor: user,
        idempotency: None,
        action: Action::IngestSignal(Box::new(signal("i", "己商店", T0, Severity::Normal))),
    });
    assert!(matches!(by_user, Err(Rejection::Forbidden(_))));
    assert_eq!(ledger.task_count(), 0);
    // Only the clock and the command counter moved.
    assert_ne!(ledger.digest(), before);
    assert_eq!(ledger.commands_applied(), 4);
}

#[test]
fn a_signal_group_is_remembered_exactly_as_long_as_a_signal_can_join_it() {
    use crate::limits::{GROUPING_WINDOW_MAX_MS, INTAKE_GROUP_LIFETIME_MS, OBSERVED_AGE_MAX_MS, OBSERVED_AHEAD_MAX_MS};
    let widest = |source_id: &str, observed_ms: u64| Signal {
        window_ms: GROUPING_WINDOW_MAX_MS,
        ..signal(source_id, "丁商店", observed_ms, Severity::Normal)
    };
    let mut ledger = Ledger::new();
    // The group that lives longest: observed as far ahead as allowed, with the widest window.
    let first = ingest(&mut ledger, T0, widest("a", T0 + OBSERVED_AHEAD_MAX_MS)).unwrap().task().id;
    // The last moment a signal can still join it: the oldest observation allowed then lies at
    // the window's far edge.
    let last_moment = T0 + INTAKE_GROUP_LIFETIME_MS;
    let late = ingest(&mut ledger, last_moment, widest("b", last_moment - OBSERVED_AGE_MAX_MS)).unwrap().task().id;
    assert_eq!(late, first, "the group is still remembered at the last moment it can be joined");
    assert_eq!(ledger.intake_groups.len(), 1);

    // A moment later nothing can join it: it is forgotten, and the next signal opens a task
    // (as it would have anyway: its observation is outside the window).
    let after = last_moment + 1;
    let next = ingest(&mut ledger, after, widest("c", after - OBSERVED_AGE_MAX_MS)).unwrap().task().id;
    assert_ne!(next, first);
    assert_eq!(ledger.intake_groups.get(&("market-monitor".to_owned(), sha2_key("丁商店"))), Some(&next));
    assert_eq!(ledger.intake_groups_order.len(), 1, "the first task's group is forgotten, not kept with history");
}
