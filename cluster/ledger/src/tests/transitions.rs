//! Ledger tests: the transition table exhaustively, refusals that change nothing, idempotency,
//! and determinism (same commands → same state and digest; snapshot round trip).

use crate::*;

const HOUR_MS: u64 = 3_600_000;

fn bureau(code: &str) -> BureauCode {
    BureauCode::parse_compiled(code).expect(code)
}

fn actor(user: &str, code: &str, role: Role) -> Actor {
    Actor { user: user.to_owned(), bureau: bureau(code), role }
}

fn province_command() -> Actor {
    actor("zhang", "440000", Role::Command)
}

fn tianhe_operator() -> Actor {
    actor("li", "440106", Role::Operator)
}

fn new_task() -> NewTask {
    NewTask {
        kind: TaskKind::Lead,
        severity: Severity::High,
        title: "无照经营线索".to_owned(),
        description: String::new(),
        subject: Subject {
            uscc: Some(Uscc::parse("91350100M000100Y43").expect("valid")),
            name: "某某贸易有限公司".to_owned(),
            region_code: bureau("440106"),
            address: "广州市天河区".to_owned(),
        },
        source: Source::Complaint,
        origin_bureau: bureau("440000"),
        assignee_bureau: None,
        routing: Routing::Keep,
    }
}

fn command(stamp_ms: u64, actor: Actor, action: Action) -> Command {
    Command { stamp_ms, actor, idempotency: None, action }
}

fn change(task: TaskId, transition: Transition) -> Action {
    let note = if transition.action().requires_note() { "原因".to_owned() } else { String::new() };
    Action::ChangeTask(TaskChange { task, expected_version: None, note, transition })
}

fn dispatch_to(code: &str, stamp_ms: u64) -> Transition {
    Transition::Dispatch {
        assignee: bureau(code),
        ack_deadline_ms: stamp_ms + HOUR_MS,
        complete_deadline_ms: stamp_ms + 24 * HOUR_MS,
    }
}

/// Applies and checks invariants, as every test step should.
fn step(ledger: &mut Ledger, command: Command) -> CommandResult {
    let result = ledger.apply(&command);
    ledger.check_invariants().expect("the ledger keeps its invariants");
    result
}

/// Drives a fresh task into `state` through legal transitions and returns it.
fn task_in_state(ledger: &mut Ledger, state: TaskState) -> TaskId {
    let t = ledger.last_stamp_ms() + 1000;
    let id = step(ledger, command(t, province_command(), Action::CreateTask(new_task()))).expect("create").task().id;
    let path: &[(Transition, bool)] = match state {
        TaskState::Created => &[],
        TaskState::Dispatched => &[(dispatch_to("440106", t), true)],
        TaskState::Acknowledged => &[(dispatch_to("440106", t), true), (Transition::Ack, false)],
        TaskState::Completed => &[
            (dispatch_to("440106", t), true),
            (Transition::Ack, false),
            (Transition::Complete { outcome: CompletionOutcome::Warned, publication_deadline_ms: None }, false),
        ],
        TaskState::Closed => &[
            (dispatch_to("440106", t), true),
            (Transition::Ack, false),
            (Transition::Complete { outcome: CompletionOutcome::Warned, publication_deadline_ms: None }, false),
            (Transition::Close, true),
        ],
        TaskState::Returned => &[
            (dispatch_to("440106", t), true),
            (Transition::Ack, false),
            (Transition::Complete { outcome: CompletionOutcome::Warned, publication_deadline_ms: None }, false),
            (Transition::Return, true),
        ],
        TaskState::Cancelled => &[(Transition::Cancel, true)],
    };
    for (transition, by_dispatcher) in path {
        let who = if *by_dispatcher { province_command() } else { tianhe_operator() };
        step(ledger, command(t, who, change(id, transition.clone()))).expect("legal path");
    }
    assert_eq!(ledger.task(id).expect("exists").handling.state, state);
    id
}

fn all_transitions(stamp_ms: u64) -> Vec<Transition> {
    vec![
        dispatch_to("440106", stamp_ms),
        Transition::Ack,
        Transition::Feedback,
        Transition::Complete { outcome: CompletionOutcome::NoViolation, publication_deadline_ms: None },
        Transition::Close,
        Transition::Return,
        Transition::Cancel,
    ]
}

#[test]
fn every_transition_from_every_state_follows_the_table() {
    let expected_legal: &[(TaskState, &[&str])] = &[
        (TaskState::Created, &["dispatch", "cancel"]),
        (TaskState::Dispatched, &["dispatch", "ack", "cancel"]),
        (TaskState::Acknowledged, &["dispatch", "feedback", "complete", "cancel"]),
        (TaskState::Completed, &["close", "return"]),
        (TaskState::Closed, &[]),
        (TaskState::Returned, &["dispatch", "feedback", "complete", "cancel"]),
        (TaskState::Cancelled, &[]),
    ];
    assert_eq!(expected_legal.len(), TaskState::ALL.len());
    for (state, legal) in expected_legal {
        for transition in all_transitions(0) {
            let mut ledger = Ledger::new();
            let id = task_in_state(&mut ledger, *state);
            let before = ledger.clone();
            let t = ledger.last_stamp_ms() + 1000;
            let transition = match transition {
                Transition::Dispatch { .. } => dispatch_to("440106", t),
                other => other,
            };
            // Province command users may act on both sides for their subtree.
            let result = step(&mut ledger, command(t, province_command(), change(id, transition.clone())));
            let name = transition.action().as_str();
            if legal.contains(&name) {
                let applied = result.unwrap_or_else(|e| panic!("{name} from {state} refused: {e}"));
                assert_eq!(Some(applied.task().handling.state), transition.action().next_state(*state));
                assert_eq!(applied.task().version, before.task(id).expect("task").version + 1);
                assert_eq!(applied.task().timeline.last().expect("entry").action.as_str(), name);
            } else {
                let error = result.expect_err(name);
                assert_eq!(error, Rejection::IllegalTransition { from: *state, action: name.to_owned() });
                assert_eq!(ledger.task(id), before.task(id), "a refusal changes nothing");
                assert_eq!(ledger.task_count(), before.task_count());
            }
        }
    }
}

#[test]
fn stale_version_is_refused_and_changes_nothing() {
    let mut ledger = Ledger::new();
    let id = task_in_state(&mut ledger, TaskState::Dispatched);
    let version_at_dispatch = ledger.task(id).expect("task").version;
    // Meanwhile the dispatcher re-dispatches (改派) to another bureau.
    step(&mut ledger, command(10_000, province_command(), change(id, dispatch_to("440103", 10_000))))
        .expect("re-dispatch");
    let before = ledger.task(id);
    let late_ack = Action::ChangeTask(TaskChange {
        task: id,
        expected_version: Some(version_at_dispatch),
        note: String::new(),
        transition: Transition::Ack,
    });
    let by_yuexiu = actor("wang", "440103", Role::Operator);
    let error = step(&mut ledger, command(11_000, by_yuexiu, late_ack)).expect_err("stale");
    assert_eq!(error, Rejection::VersionConflict { expected: version_at_dispatch, actual: version_at_dispatch + 1 });
    assert_eq!(ledger.task(id), before);
}

#[test]
fn operators_act_only_on_their_own_bureau_and_leadership_never_writes() {
    let mut ledger = Ledger::new();
    let id = task_in_state(&mut ledger, TaskState::Dispatched);
    let other_operator = actor("zhao", "440103", Role::Operator);
    let error = step(&mut ledger, command(5_000, other_operator, change(id, Transition::Ack))).expect_err("foreign");
    assert_eq!(error, Rejection::TaskNotFound(id), "another bureau's task answers as missing");
    let error = step(&mut ledger, command(5_000, tianhe_operator(), change(id, Transition::Cancel))).expect_err("op");
    assert!(matches!(error, Rejection::Forbidden(_)));
    let leader = actor("chen", "440000", Role::Leadership);
    let error = step(&mut ledger, command(5_000, leader.clone(), Action::CreateTask(new_task()))).expect_err("lead");
    assert!(matches!(error, Rejection::Forbidden(_)));
    let city = actor("sun", "440100", Role::Command);
    let error = step(&mut ledger, command(5_000, city, Action::CreateTask(new_task()))).expect_err("above");
    assert!(matches!(error, Rejection::Forbidden(_)), "a city cannot create for the province");
    assert_eq!(ledger.task_count(), 1);
}

#[test]
fn dispatch_outside_the_subtree_or_with_bad_deadlines_is_refused() {
    let mut ledger = Ledger::new();
    let id = task_in_state(&mut ledger, TaskState::Created);
    let t = 50_000;
    let foreign = Transition::Dispatch {
        assignee: bureau("110105"),
        ack_deadline_ms: t + HOUR_MS,
        complete_deadline_ms: t + 2 * HOUR_MS,
    };
    let past =
        Transition::Dispatch { assignee: bureau("440106"), ack_deadline_ms: t - 1, complete_deadline_ms: t + HOUR_MS };
    let inverted = Transition::Dispatch {
        assignee: bureau("440106"),
        ack_deadline_ms: t + 2 * HOUR_MS,
        complete_deadline_ms: t + HOUR_MS,
    };
    for transition in [foreign, past, inverted] {
        let error = step(&mut ledger, command(t, province_command(), change(id, transition))).expect_err("bad");
        assert!(matches!(error, Rejection::Invalid { .. }), "{error:?}");
    }
    assert_eq!(ledger.task(id).expect("task").handling.state, TaskState::Created);
}

#[test]
fn return_and_cancel_need_a_reason() {
    let mut ledger = Ledger::new();
    let id = task_in_state(&mut ledger, TaskState::Dispatched);
    let cancel = Action::ChangeTask(TaskChange {
        task: id,
        expected_version: None,
        note: "  ".to_owned(),
        transition: Transition::Cancel,
    });
    let error = step(&mut ledger, command(9_000, province_command(), cancel)).expect_err("no reason");
    assert_eq!(error, Rejection::Invalid { field: "note".to_owned(), reason: "must not be empty".to_owned() });
}

#[test]
fn bad_fields_of_a_new_task_are_refused() {
    let mut ledger = Ledger::new();
    let mut long_title = new_task();
    long_title.title = "长".repeat(crate::limits::TITLE_CHARS_MAX + 1);
    let mut empty_name = new_task();
    empty_name.subject.name = String::new();
    let mut control = new_task();
    control.title = "a\u{7}b".to_owned();
    let mut foreign_assignee = new_task();
    foreign_assignee.assignee_bureau = Some(bureau("310115"));
    for bad in [long_title, empty_name, control, foreign_assignee] {
        let error = step(&mut ledger, command(1, province_command(), Action::CreateTask(bad))).expect_err("bad");
        assert!(matches!(error, Rejection::Invalid { .. }), "{error:?}");
    }
    assert_eq!(ledger.task_count(), 0);
    assert_eq!(ledger.digest(), {
        let mut fresh = Ledger::new();
        // Refusals still count as applied commands and advance the clock, nothing else.
        for _ in 0..4 {
            fresh.apply(&command(1, actor("x", "440000", Role::Leadership), Action::CreateTask(new_task()))).ok();
        }
        fresh.digest()
    });
}

#[test]
fn idempotent_retry_returns_the_first_answer_and_writes_nothing() {
    let mut ledger = Ledger::new();
    let tag = IdempotencyTag { key: "k-1".to_owned(), fingerprint: [7; 32] };
    let mut create = command(1_000, province_command(), Action::CreateTask(new_task()));
    create.idempotency = Some(tag.clone());
    let first = step(&mut ledger, create.clone()).expect("created");
    assert!(!first.replayed);
    let mut retry = create.clone();
    retry.stamp_ms = 2_000;
    let second = step(&mut ledger, retry).expect("replayed");
    assert!(second.replayed);
    assert_eq!(second.task(), first.task());
    assert_eq!(ledger.task_count(), 1);
    assert_eq!(ledger.idempotent_answer("zhang", &tag).expect("stored").expect("ok").task().id, first.task().id);

    // The same key with a different request is refused; another user's key is separate.
    let mut reused = create.clone();
    reused.idempotency = Some(IdempotencyTag { key: "k-1".to_owned(), fingerprint: [8; 32] });
    assert_eq!(step(&mut ledger, reused).expect_err("reused"), Rejection::IdempotencyKeyReused);
    let mut other_user = create.clone();
    other_user.actor.user = "zhou".to_owned();
    assert!(!step(&mut ledger, other_user).expect("separate scope").replayed);
    assert_eq!(ledger.task_count(), 2);

    // After the retention period the key is forgotten.
    let mut late = create;
    late.stamp_ms = 2_000 + crate::limits::IDEMPOTENCY_RETENTION_MS + 1;
    assert!(!step(&mut ledger, late).expect("new").replayed);
    assert_eq!(ledger.task_count(), 3);
}

/// A pseudo-random but fixed command mix, including refusals.
fn command_mix(count: usize) -> Vec<Command> {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut commands = Vec::new();
    let mut created = 0u64;
    for i in 0..count {
        let stamp_ms = 1_000 * i as u64 + next() % 500;
        let roll = next() % 10;
        if roll < 3 || created == 0 {
            commands.push(command(stamp_ms, province_command(), Action::CreateTask(new_task())));
            created += 1;
        } else {
            let task = TaskId(1 + next() % created);
            let transitions = all_transitions(stamp_ms);
            let transition = transitions[(next() % transitions.len() as u64) as usize].clone();
            let who = if transition.action().side() == crate::Side::Dispatcher {
                province_command()
            } else {
                tianhe_operator()
            };
            commands.push(command(stamp_ms, who, change(task, transition)));
        }
    }
    commands
}

#[test]
fn replaying_the_same_log_gives_the_same_state_on_every_replica() {
    let commands = command_mix(2_000);
    let mut replica_a = Ledger::new();
    let mut replica_b = Ledger::new();
    let mut results_a = Vec::new();
    for command in &commands {
        results_a.push(step(&mut replica_a, command.clone()));
    }
    let results_b: Vec<_> = commands.iter().map(|c| replica_b.apply(c)).collect();
    assert_eq!(results_a, results_b);
    assert_eq!(replica_a.digest(), replica_b.digest());
    assert!(results_a.iter().any(|r| r.is_err()), "the mix includes refusals");
    assert!(results_a.iter().filter(|r| r.is_ok()).count() > 300);

    // A replica restored from a snapshot in the middle ends in the same state.
    let mut first_half = Ledger::new();
    for command in &commands[..1_000] {
        let _ = first_half.apply(command);
    }
    let mut restored = first_half.copy_through_a_checkpoint_for_tests();
    restored.check_invariants().expect("the ledger keeps its invariants");
    for command in &commands[1_000..] {
        let _ = restored.apply(command);
    }
    assert_eq!(restored.digest(), replica_a.digest());
}

#[test]
fn stamps_never_go_backwards() {
    let mut ledger = Ledger::new();
    let first = step(&mut ledger, command(5_000, province_command(), Action::CreateTask(new_task()))).expect("ok");
    let second = step(&mut ledger, command(4_000, province_command(), Action::CreateTask(new_task()))).expect("ok");
    assert_eq!(first.task().created_at_ms, 5_000);
    assert_eq!(second.task().created_at_ms, 5_000, "an older stamp is lifted to the ledger clock");
}

#[test]
fn an_extension_is_requested_granted_once_and_a_second_is_refused() {
    let mut ledger = Ledger::new();
    let id = task_in_state(&mut ledger, TaskState::Acknowledged);
    let original = ledger.task(id).expect("task").handling.complete_deadline_ms.expect("deadline");
    let request = |new_deadline_ms| Transition::RequestExtension {
        new_complete_deadline_ms: new_deadline_ms,
        extensions_allowed: 1,
    };
    let with_note = |transition: Transition| {
        Action::ChangeTask(TaskChange {
            task: id, expected_version: None, note: "需检验鉴定".to_owned(), transition
        })
    };
    // Granting or refusing with nothing pending is a conflict.
    let error = step(&mut ledger, command(20_000, province_command(), with_note(Transition::GrantExtension)))
        .expect_err("none");
    assert!(matches!(error, Rejection::Conflict { .. }));
    // A request that does not move the deadline later is invalid.
    let error =
        step(&mut ledger, command(20_000, tianhe_operator(), with_note(request(original)))).expect_err("not later");
    assert!(matches!(error, Rejection::Invalid { .. }));

    let extended = original + 15 * 24 * HOUR_MS;
    step(&mut ledger, command(20_000, tianhe_operator(), with_note(request(extended)))).expect("requested");
    let error =
        step(&mut ledger, command(20_000, tianhe_operator(), with_note(request(extended + 1)))).expect_err("pending");
    assert!(matches!(error, Rejection::Conflict { .. }), "one request at a time");
    // Only the dispatcher decides.
    let error =
        step(&mut ledger, command(21_000, tianhe_operator(), with_note(Transition::GrantExtension))).expect_err("op");
    assert!(matches!(error, Rejection::Forbidden(_)));
    let granted =
        step(&mut ledger, command(21_000, province_command(), with_note(Transition::GrantExtension))).expect("granted");
    assert_eq!(granted.task().handling.complete_deadline_ms, Some(extended));
    assert_eq!(granted.task().handling.extensions_granted, 1);
    assert_eq!(granted.task().handling.state, TaskState::Acknowledged);

    let error =
        step(&mut ledger, command(22_000, tianhe_operator(), with_note(request(extended * 2)))).expect_err("limit");
    assert!(matches!(error, Rejection::LimitReached(_)), "the lead rule allows one extension");

    // A refused request leaves the deadline where it was.
    let other = task_in_state(&mut ledger, TaskState::Acknowledged);
    let before = ledger.task(other).expect("task").handling.complete_deadline_ms;
    let ask = Action::ChangeTask(TaskChange {
        task: other,
        expected_version: None,
        note: "需要更多时间".to_owned(),
        transition: request(before.expect("deadline") + HOUR_MS),
    });
    step(&mut ledger, command(23_000, tianhe_operator(), ask)).expect("requested");
    let refuse = Action::ChangeTask(TaskChange {
        task: other,
        expected_version: None,
        note: "理由不充分".to_owned(),
        transition: Transition::RefuseExtension,
    });
    let refused = step(&mut ledger, command(23_000, province_command(), refuse)).expect("refused");
    assert_eq!(refused.task().handling.complete_deadline_ms, before);
    assert_eq!(refused.task().handling.extension_requested_deadline_ms, None);
}

#[test]
fn a_paused_clock_stops_and_resuming_moves_the_deadline() {
    let mut ledger = Ledger::new();
    let id = task_in_state(&mut ledger, TaskState::Acknowledged);
    let deadline = ledger.task(id).expect("task").handling.complete_deadline_ms.expect("deadline");
    let change = |transition: Transition, note: &str| {
        Action::ChangeTask(TaskChange { task: id, expected_version: None, note: note.to_owned(), transition })
    };
    let error =
        step(&mut ledger, command(30_000, tianhe_operator(), change(Transition::Pause, ""))).expect_err("reason");
    assert!(matches!(error, Rejection::Invalid { .. }), "a pause needs its reason");
    step(&mut ledger, command(30_000, tianhe_operator(), change(Transition::Pause, "样品送检"))).expect("paused");
    let paused = ledger.task(id).expect("task");
    assert_eq!(paused.open_deadline_ms(DeadlineKind::Completion), None, "the clock stands still");
    assert!(!paused.is_overdue_at(deadline + 1), "a paused task is not overdue");
    let error =
        step(&mut ledger, command(31_000, tianhe_operator(), change(Transition::Pause, "again"))).expect_err("twice");
    assert!(matches!(error, Rejection::Conflict { .. }));
    let earlier = Transition::Resume { new_complete_deadline_ms: deadline - 1 };
    let error = step(&mut ledger, command(32_000, tianhe_operator(), change(earlier, ""))).expect_err("earlier");
    assert!(matches!(error, Rejection::Invalid { .. }));
    let later = Transition::Resume { new_complete_deadline_ms: deadline + 2_000 };
    let resumed = step(&mut ledger, command(32_000, tianhe_operator(), change(later, ""))).expect("resumed");
    assert_eq!(resumed.task().handling.complete_deadline_ms, Some(deadline + 2_000));
    assert_eq!(resumed.task().open_deadline_ms(DeadlineKind::Completion), Some(deadline + 2_000));
}

#[test]
fn a_plain_task_leaves_open_exactly_the_actions_of_its_state() {
    // Every action of the policy, for a local task with no complaint, inspection or handover:
    // what each state leaves open, whoever asks (a forward needs a region elsewhere only in
    // its parameters; a pause and an extension request need a worked-on task).
    let expected: &[(TaskState, &[&str])] = &[
        (TaskState::Created, &["dispatch", "cancel", "forward"]),
        // Claim, assign, hand down and an on-site record are open on a task being worked;
        // release only once a lead holds it.
        (
            TaskState::Dispatched,
            &["dispatch", "ack", "decline", "cancel", "claim", "assign", "hand_down", "record_on_site"],
        ),
        (
            TaskState::Acknowledged,
            &[
                "dispatch",
                "decline",
                "feedback",
                "complete",
                "cancel",
                "request_extension",
                "pause",
                "claim",
                "assign",
                "hand_down",
                "record_on_site",
            ],
        ),
        (TaskState::Completed, &["close", "return"]),
        (TaskState::Closed, &[]),
        (
            TaskState::Returned,
            &[
                "dispatch",
                "feedback",
                "complete",
                "cancel",
                "request_extension",
                "pause",
                "claim",
                "assign",
                "hand_down",
                "record_on_site",
            ],
        ),
        (TaskState::Cancelled, &[]),
    ];
    assert_eq!(expected.len(), TaskState::ALL.len());
    for (state, open) in expected {
        let mut ledger = Ledger::new();
        let id = task_in_state(&mut ledger, *state);
        let task = ledger.task(id).expect("task");
        let mut actual: Vec<&str> = crate::policy::open_actions(&task).map(TaskAction::as_str).collect();
        let mut open = open.to_vec();
        actual.sort_unstable();
        open.sort_unstable();
        assert_eq!(actual, open, "open actions of a {state} task");
        // The province's command centre stands on both sides of its subtree's task; the other
        // bureau's operator on neither.
        let offered: Vec<TaskAction> = crate::policy::allowed_actions(Regions::compiled(), &province_command(), &task);
        assert!(offered.iter().all(|action| open.contains(&action.as_str())));
        let stranger = actor("wang", "440104", Role::Operator);
        assert!(crate::policy::allowed_actions(Regions::compiled(), &stranger, &task).is_empty());
    }
}

#[test]
fn the_running_deadline_is_the_earliest_running_clock() {
    let mut ledger = Ledger::new();
    let id = task_in_state(&mut ledger, TaskState::Dispatched);
    let task = ledger.task(id).expect("task").clone();
    let ack = task.handling.ack_deadline_ms.expect("ack deadline");
    assert!(ack < task.handling.complete_deadline_ms.expect("completion deadline"));
    assert_eq!(task.running_deadline_ms(), Some(ack), "before 签收 the ack clock ends first");
    assert!(!task.is_overdue_at(ack) && task.is_overdue_at(ack + 1));
    // A task handed to another group shows the clocks mirrored from there, but this group's
    // watch does not act on them.
    let mut remote = Task::clone(&task);
    remote.remote = Some(crate::federation::RemoteHandling {
        forward: ForwardId { origin_group: bureau("440000"), seq: 1 },
        to_group: bureau("440100"),
        purpose: HandoverPurpose::Dispatch,
        delivered: None,
        instructions_sent: 0,
        mirrored_version: 0,
    });
    assert_eq!(remote.running_deadline_ms(), Some(ack));
    assert_eq!(remote.open_deadline_ms(DeadlineKind::Ack), None);
    assert_eq!(task.open_deadline_ms(DeadlineKind::Ack), Some(ack));
    // Closed work has no clock.
    let closed_id = task_in_state(&mut ledger, TaskState::Closed);
    assert_eq!(ledger.task(closed_id).expect("task").running_deadline_ms(), None);
}
