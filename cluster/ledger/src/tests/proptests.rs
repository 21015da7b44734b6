//! Property tests of the state machine: random command sequences (legal and illegal, by
//! entitled and unentitled actors, about existing and missing tasks) keep the ledger's
//! invariants; a change that is applied moves the task along the transition table and a
//! refused one leaves it as it was; and replaying the same log gives the same digest.

use std::sync::Arc;

use proptest::prelude::*;

use crate::task::TimelineEntry;
use crate::*;

const T0: u64 = 1_780_000_000_000;
const HOUR: u64 = 3_600_000;

fn code(text: &str) -> BureauCode {
    BureauCode::parse_compiled(text).expect(text)
}

fn actor(index: u8) -> Actor {
    match index % 5 {
        0 => Actor { user: "zhang".into(), bureau: code("440000"), role: Role::Command },
        1 => Actor { user: "li".into(), bureau: code("440106"), role: Role::Operator },
        2 => Actor { user: "wang".into(), bureau: code("440104"), role: Role::Operator },
        3 => Actor { user: "chen".into(), bureau: code("440000"), role: Role::Leadership },
        _ => Actor { user: "watch".into(), bureau: code("440000"), role: Role::System },
    }
}

/// One generated step: an action code, a task index, an actor and a time advance.
#[derive(Clone, Debug)]
struct Step {
    action: u8,
    task: u8,
    actor: u8,
    advance_minutes: u16,
}

fn step() -> impl Strategy<Value = Step> {
    (0u8..17, 0u8..8, 0u8..5, 0u16..600).prop_map(|(action, task, actor, advance_minutes)| Step {
        action,
        task,
        actor,
        advance_minutes,
    })
}

fn action(step: &Step, stamp_ms: u64) -> Action {
    let task = TaskId(u64::from(step.task) + 1);
    let change = |transition: Transition| {
        let note = if transition.action().requires_note() { "原因".to_owned() } else { String::new() };
        Action::ChangeTask(TaskChange { task, expected_version: None, note, transition })
    };
    let assignee = if step.task.is_multiple_of(2) { "440106" } else { "440104" };
    match step.action {
        0 | 1 => Action::CreateTask(NewTask {
            kind: TaskKind::ALL[usize::from(step.task) % TaskKind::ALL.len()],
            severity: Severity::Normal,
            title: format!("属性测试 {}", step.task),
            description: String::new(),
            subject: Subject {
                uscc: None, name: "某商户".into(), region_code: code("440106"), address: String::new()
            },
            source: Source::Complaint,
            origin_bureau: code("440000"),
            assignee_bureau: None,
            routing: Routing::Keep,
        }),
        2 => change(Transition::Dispatch {
            assignee: code(assignee),
            ack_deadline_ms: stamp_ms + HOUR,
            complete_deadline_ms: stamp_ms + 48 * HOUR,
        }),
        3 => change(Transition::Ack),
        4 => change(Transition::Feedback),
        5 => change(Transition::Complete { outcome: CompletionOutcome::Warned, publication_deadline_ms: None }),
        6 => change(Transition::Close),
        7 => change(Transition::Return),
        8 => change(Transition::Cancel),
        9 => change(Transition::RequestExtension {
            new_complete_deadline_ms: stamp_ms + 96 * HOUR,
            extensions_allowed: 1,
        }),
        10 => change(Transition::GrantExtension),
        11 => change(Transition::RefuseExtension),
        12 => change(Transition::Pause),
        13 => change(Transition::Resume { new_complete_deadline_ms: stamp_ms + 72 * HOUR }),
        14 => {
            Action::RecordMissedDeadline { task, kind: DeadlineKind::Ack, deadline_ms: stamp_ms.saturating_sub(HOUR) }
        }
        15 => change(Transition::Decline),
        _ => Action::RecordMissedDeadline { task, kind: DeadlineKind::Completion, deadline_ms: stamp_ms },
    }
}

/// Replaying `log` gives `ledger` again, on a plain ledger and on ledgers whose records were
/// checkpointed into a store at three cadences (with checkpoints in progress and reopenings):
/// records read back from a store decide exactly as those held in memory.
fn replays_agree(log: &[Command], ledger: &Ledger) -> Result<(), TestCaseError> {
    let mut replayed = Ledger::new();
    for command in log {
        let _ = replayed.apply(command);
    }
    prop_assert_eq!(replayed.digest(), ledger.digest());
    let everything: Vec<Arc<Task>> = ledger.tasks_newest_first(None).collect();
    for every in [1, 3, 7] {
        let checkpointed = super::replay_with_checkpoints(log, every);
        checkpointed.check_invariants().expect("the invariants hold across checkpoints");
        prop_assert_eq!(checkpointed.digest(), ledger.digest());
        prop_assert_eq!(checkpointed.tasks_newest_first(None).collect::<Vec<_>>(), everything.clone());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_histories_keep_the_invariants_and_replay_identically(steps in proptest::collection::vec(step(), 1..120)) {
        let mut ledger = Ledger::new();
        let mut log = Vec::new();
        let mut stamp_ms = T0;
        for step in &steps {
            stamp_ms += u64::from(step.advance_minutes) * 60_000;
            let command = Command { stamp_ms, actor: actor(step.actor), idempotency: None, action: action(step, stamp_ms) };
            let touched = match &command.action {
                Action::ChangeTask(change) => Some(change.task),
                Action::RecordMissedDeadline { task, .. } => Some(*task),
                _ => None,
            };
            let before = touched.and_then(|id| ledger.task(id));
            let allowed = before.as_ref().map(|task| policy::allowed_actions(&ledger.regions(), &command.actor, task)).unwrap_or_default();
            let result = ledger.apply(&command);
            ledger.check_invariants().expect("the ledger keeps its invariants");
            if let Action::ChangeTask(change) = &command.action {
                // What the API offers is what the ledger takes: an applied change was offered,
                // and an offered one is refused only for its parameters.
                let offered = allowed.contains(&change.transition.action());
                match &result {
                    Ok(_) => prop_assert!(offered, "{} applied but not offered", change.transition.action()),
                    Err(Rejection::Invalid { .. } | Rejection::LimitReached(_)) => {}
                    Err(refusal) => prop_assert!(!offered, "{} offered but refused: {refusal}", change.transition.action()),
                }
            }
            match (&command.action, &result, &before) {
                (Action::ChangeTask(change), Ok(applied), Some(before)) => {
                    let expected = change.transition.action().next_state(before.handling.state);
                    prop_assert_eq!(Some(applied.task().handling.state), expected, "applied along the table");
                    prop_assert_eq!(applied.task().version, before.version + 1);
                }
                (_, Err(_), Some(before)) => {
                    prop_assert_eq!(ledger.task(before.id), Some(before.clone()), "a refusal changes nothing");
                }
                _ => {}
            }
            log.push(command);
        }
        replays_agree(&log, &ledger)?;
    }
}

/// Bureaus the hostile steps draw from: this group's tree, a sibling's, another province's.
const PEER_BUREAUS: &[&str] = &["440000", "440100", "440106", "440111", "440300", "440305", "330000", "330100"];

fn peer_bureau() -> impl Strategy<Value = BureauCode> {
    proptest::sample::select(PEER_BUREAUS).prop_map(code)
}

/// Mostly `likely` (so that accepted messages and their follow-ups are common), else any bureau.
fn mostly(likely: &'static str) -> impl Strategy<Value = BureauCode> {
    prop_oneof![3 => Just(code(likely)), 1 => peer_bureau()]
}

fn peer_transition() -> impl Strategy<Value = Transition> {
    (0u8..16, peer_bureau(), peer_bureau()).prop_map(|(which, a, b)| match which {
        0 => Transition::Dispatch { assignee: a, ack_deadline_ms: T0 + HOUR, complete_deadline_ms: T0 + 2 * HOUR },
        1 => Transition::Ack,
        2 => Transition::Feedback,
        3 => Transition::Complete { outcome: CompletionOutcome::Warned, publication_deadline_ms: None },
        4 => Transition::Close,
        5 => Transition::Return,
        6 => Transition::Cancel,
        7 => Transition::RequestExtension { new_complete_deadline_ms: T0 + 9 * HOUR, extensions_allowed: 1 },
        8 => Transition::GrantExtension,
        9 => Transition::RefuseExtension,
        10 => Transition::Pause,
        11 => Transition::Resume { new_complete_deadline_ms: T0 + 9 * HOUR },
        12 => Transition::Forward { to_group: a, from_group: b },
        13 => Transition::Dispute { to_group: a, from_group: b },
        14 => Transition::Designate { to_group: a, from_group: b },
        _ => Transition::DispatchAcross {
            assignee: a,
            ack_deadline_ms: T0 + HOUR,
            complete_deadline_ms: T0 + 2 * HOUR,
            to_group: b,
            from_group: code("440000"),
        },
    })
}

fn optional_ms() -> impl Strategy<Value = Option<u64>> {
    proptest::option::of(prop_oneof![Just(0u64), T0..T0 + 100 * HOUR, Just(u64::MAX)])
}

fn mirrored_fields() -> impl Strategy<Value = Handling> {
    (
        proptest::sample::select(TaskState::ALL),
        proptest::option::of(peer_bureau()),
        (optional_ms(), optional_ms(), optional_ms(), optional_ms()),
        proptest::option::of(proptest::sample::select(CompletionOutcome::ALL)),
        proptest::collection::vec(peer_bureau(), 0..3),
        (0u32..3, 0u32..3),
    )
        .prop_map(
            |(state, assignee, (ack, complete, acked, requested), outcome, escalated_to, (granted, reminders))| {
                Handling {
                    state,
                    assignee_bureau: assignee,
                    ack_deadline_ms: ack,
                    complete_deadline_ms: complete,
                    dispatched_at_ms: ack.map(|_| T0),
                    acked_at_ms: acked,
                    completed_at_ms: outcome.map(|_| T0),
                    closed_at_ms: None,
                    outcome,
                    ack_missed_deadline_ms: None,
                    completion_missed_deadline_ms: complete,
                    extension_requested_deadline_ms: requested,
                    extensions_granted: granted,
                    reminders_sent: reminders,
                    escalated_to,
                    last_feedback_ms: None,
                    paused_since_ms: acked,
                }
            },
        )
}

/// What another group (or a client) may send: anything its types can carry.
#[derive(Clone, Debug)]
enum HostileStep {
    Client(Step),
    /// Creates task `n` or, once it exists, dispatches it to Tianhe's group.
    SendAcross(u8),
    Handover {
        sender: BureauCode,
        origin: BureauCode,
        purpose: u8,
        terms: Option<BureauCode>,
        seq: u64,
    },
    Instruction {
        sender: BureauCode,
        seq: u64,
        number: u32,
        transition: Transition,
    },
    Report {
        sender: BureauCode,
        pick: u8,
        version: u64,
        handled: u32,
        fields: Handling,
        actor_user_len: u16,
    },
    Receipt {
        pick: u8,
        refused: bool,
    },
}

fn hostile_step() -> impl Strategy<Value = HostileStep> {
    prop_oneof![
        step().prop_map(HostileStep::Client),
        (0u8..8).prop_map(HostileStep::SendAcross),
        (mostly("440000"), mostly("440000"), 0u8..4, proptest::option::weighted(0.8, mostly("440106")), 1u64..4)
            .prop_map(|(sender, origin, purpose, terms, seq)| HostileStep::Handover {
                sender,
                origin,
                purpose,
                terms,
                seq
            }),
        (mostly("440000"), 1u64..4, 1u32..3, peer_transition()).prop_map(|(sender, seq, number, transition)| {
            HostileStep::Instruction { sender, seq, number, transition }
        }),
        (mostly("440106"), any::<u8>(), 0u64..8, 0u32..3, mirrored_fields(), 0u16..100).prop_map(
            |(sender, pick, version, handled, fields, actor_user_len)| HostileStep::Report {
                sender,
                pick,
                version,
                handled,
                fields,
                actor_user_len
            }
        ),
        (any::<u8>(), any::<bool>()).prop_map(|(pick, refused)| HostileStep::Receipt { pick, refused }),
    ]
}

/// The command of one hostile step at the Guangzhou group (440100), which the province may
/// dispatch to and which dispatches on to Tianhe (440106, played as a group of its own).
fn hostile_command(ledger: &Ledger, step: &HostileStep, stamp_ms: u64) -> Command {
    let group = code("440100");
    let (actor, action) = match step.clone() {
        HostileStep::Client(step) => (actor(step.actor), action(&step, stamp_ms)),
        HostileStep::SendAcross(n) => {
            let task = TaskId(u64::from(n) + 1);
            let action = if ledger.task(task).is_none() {
                action(&Step { action: 0, task: n, actor: 0, advance_minutes: 0 }, stamp_ms)
            } else {
                Action::ChangeTask(TaskChange {
                    task,
                    expected_version: None,
                    note: String::new(),
                    transition: Transition::DispatchAcross {
                        assignee: code("440106"),
                        ack_deadline_ms: stamp_ms + HOUR,
                        complete_deadline_ms: stamp_ms + 48 * HOUR,
                        to_group: code("440106"),
                        from_group: group,
                    },
                })
            };
            (actor(0), action)
        }
        HostileStep::Handover { sender, origin, purpose, terms, seq } => {
            let subject =
                Subject { uscc: None, name: "某商户".into(), region_code: code("440106"), address: String::new() };
            let handover = Handover {
                forward: ForwardId { origin_group: sender, seq },
                // Dispatches most often: instructions follow only them.
                purpose: if purpose < 2 {
                    HandoverPurpose::Dispatch
                } else {
                    HandoverPurpose::ALL[usize::from(purpose)]
                },
                origin_task: TaskId(seq),
                origin_bureau: origin,
                kind: TaskKind::Lead,
                severity: Severity::High,
                title: "来自其他组的线索".into(),
                description: String::new(),
                subject,
                source: Source::Complaint,
                dispatch: terms.map(|assignee| DispatchTerms {
                    assignee,
                    ack_deadline_ms: stamp_ms + HOUR,
                    complete_deadline_ms: stamp_ms + 2 * HOUR,
                }),
                note: String::new(),
                sent_by: "someone".into(),
            };
            let placement = match purpose % 4 {
                2 => Placement::DesignateBy(stamp_ms + 7 * 24 * HOUR),
                _ => Placement::Keep,
            };
            let action = Action::Receive { message: Box::new(Message::Handover(handover)), group, placement };
            (peer_actor(sender), action)
        }
        HostileStep::Instruction { sender, seq, number, transition } => {
            let note = if transition.action().requires_note() { "原因".to_owned() } else { String::new() };
            let forward = ForwardId { origin_group: sender, seq };
            let instruction = Instruction { forward, number, transition, note, sent_by: "someone".into() };
            let action = Action::Receive {
                message: Box::new(Message::Instruction(instruction)),
                group,
                placement: Placement::Keep,
            };
            (peer_actor(sender), action)
        }
        HostileStep::Report { sender, pick, version, handled, fields, actor_user_len } => {
            let sent: Vec<Arc<Task>> = ledger.tasks_newest_first(None).filter(|task| task.remote.is_some()).collect();
            let forward = match sent.get(usize::from(pick) % sent.len().max(1)) {
                Some(task) => task.remote.as_ref().map(|remote| remote.forward),
                None => None,
            }
            .unwrap_or(ForwardId { origin_group: group, seq: u64::from(pick) });
            let entry = TimelineEntry {
                version,
                at_ms: stamp_ms,
                action: TimelineAction::Ack,
                actor_user: "u".repeat(usize::from(actor_user_len)),
                actor_bureau: sender,
                note: String::new(),
                assignee_bureau: fields.assignee_bureau,
                outcome: None,
            };
            let report = StatusReport {
                forward,
                task: TaskId(1),
                version,
                instructions_handled: handled,
                fields,
                timeline: vec![entry],
            };
            (peer_actor(sender), Action::MirrorStatus(Box::new(report)))
        }
        HostileStep::Receipt { pick, refused } => {
            let waiting: Vec<u64> = ledger.outbox().map(|entry| entry.seq).collect();
            let seq = waiting.get(usize::from(pick) % waiting.len().max(1)).copied().unwrap_or(u64::from(pick));
            let answer = if refused { Receipt::Refused("refused there".into()) } else { Receipt::Accepted(TaskId(9)) };
            (actor(4), Action::RecordReceipt { seq, answer })
        }
    };
    Command { stamp_ms, actor, idempotency: None, action }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Nothing another group or a client can send reaches a panic in `apply`; whatever is
    /// accepted keeps the invariants, so a snapshot of the ledger always loads again.
    #[test]
    fn hostile_peers_and_clients_never_break_the_ledger(steps in proptest::collection::vec(hostile_step(), 1..80)) {
        let mut ledger = Ledger::new();
        let mut stamp_ms = T0;
        let mut log = Vec::new();
        for step in &steps {
            stamp_ms += 60_000;
            let command = hostile_command(&ledger, step, stamp_ms);
            let before: Vec<Task> = ledger.tasks_newest_first(None).map(Arc::unwrap_or_clone).collect();
            let result = ledger.apply(&command);
            if let Err(violation) = ledger.check_invariants() {
                return Err(TestCaseError::fail(format!("{violation} after {command:?}")));
            }
            // A refusal changes no task (a refused instruction still counts as handled).
            if result.is_err() && !matches!(command.action, Action::Receive { .. }) {
                let after: Vec<Task> = ledger.tasks_newest_first(None).map(Arc::unwrap_or_clone).collect();
                prop_assert_eq!(after, before, "refused: {:?}", command);
            }
            log.push(command);
        }
        let snapshot = ledger.copy_through_a_checkpoint_for_tests();
        prop_assert!(snapshot.check_invariants().is_ok());
        replays_agree(&log, &ledger)?;
    }
}
