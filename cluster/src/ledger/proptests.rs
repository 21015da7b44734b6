//! Property tests of the state machine: random command sequences (legal and illegal, by
//! entitled and unentitled actors, about existing and missing tasks) keep the ledger's
//! invariants; a change that is applied moves the task along the transition table and a
//! refused one leaves it as it was; and replaying the same log gives the same digest.

use proptest::prelude::*;

use super::*;

const T0: u64 = 1_780_000_000_000;
const HOUR: u64 = 3_600_000;

fn code(text: &str) -> BureauCode {
    BureauCode::parse_known(text).expect(text)
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
    (0u8..16, 0u8..8, 0u8..5, 0u16..600).prop_map(|(action, task, actor, advance_minutes)| Step {
        action,
        task,
        actor,
        advance_minutes,
    })
}

fn action(step: &Step, stamp_ms: u64) -> Action {
    let task = TaskId(u64::from(step.task) + 1);
    let change = |transition: Transition| {
        let note = if transition.requires_note() { "原因".to_owned() } else { String::new() };
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
        5 => change(Transition::Complete { outcome: CompletionOutcome::Warned }),
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
        _ => Action::RecordMissedDeadline { task, kind: DeadlineKind::Completion, deadline_ms: stamp_ms },
    }
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
            let before = touched.and_then(|id| ledger.task(id).cloned());
            let result = ledger.apply(&command);
            ledger.check_invariants();
            match (&command.action, &result, &before) {
                (Action::ChangeTask(change), Ok(applied), Some(before)) => {
                    let expected = next_state(before.state, &change.transition);
                    prop_assert_eq!(Some(applied.task().state), expected, "applied along the table");
                    prop_assert_eq!(applied.task().version, before.version + 1);
                }
                (_, Err(_), Some(before)) => {
                    prop_assert_eq!(ledger.task(before.id), Some(before), "a refusal changes nothing");
                }
                _ => {}
            }
            log.push(command);
        }
        let mut replayed = Ledger::new();
        for command in &log {
            let _ = replayed.apply(command);
        }
        prop_assert_eq!(replayed.digest(), ledger.digest());
    }
}
