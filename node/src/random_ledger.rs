//! Random ledgers for property tests: random steps (creates, dispatches, acks, completions,
//! closes, cancellations, time passing) over a small bureau tree, checkpointed into a store at
//! random points and at each of the three moments a reader can meet (sealed, written, told).

use cluster::store::{CheckpointMeta, Store};
use ledger::{
    Action, Actor, BureauCode, Command, CompletionOutcome, Ledger, NewTask, Role, Routing, Severity, Source, Subject,
    TaskChange, TaskId, TaskKind, Transition,
};
use proptest::prelude::*;

pub const T0: u64 = 1_780_000_000_000;
pub const HOUR_MS: u64 = 3_600_000;
/// The bureau tree the random ledgers use: a province, two cities, a county of each.
pub const BUREAUS: [&str; 5] = ["440000", "440100", "440106", "440300", "440305"];
/// Valid USCCs (cluster/ledger/data/uscc-samples.csv) the random tasks are about, or none.
pub const USCCS: [&str; 3] = ["91110105MAYJXNQT1W", "92110105475496599G", "91110105MAXHRB6C6G"];

pub fn code(text: &str) -> BureauCode {
    BureauCode::parse_compiled(text).expect(text)
}

#[derive(Clone, Debug)]
pub enum Step {
    Create {
        origin: usize,
        kind: usize,
        entity: usize,
    },
    Dispatch {
        task: u64,
        assignee: usize,
    },
    Ack {
        task: u64,
    },
    Complete {
        task: u64,
    },
    Close {
        task: u64,
    },
    Cancel {
        task: u64,
    },
    /// Seal the changes and write them to the store (a checkpoint), or only seal them, or
    /// write them without telling the ledger yet: the three moments a reader can meet.
    Checkpoint {
        moment: u8,
    },
    Advance {
        hours: u8,
    },
}

pub fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..BUREAUS.len(), 0..3usize, 0..=USCCS.len())
            .prop_map(|(origin, kind, entity)| Step::Create { origin, kind, entity }),
        3 => (1..40u64, 0..BUREAUS.len()).prop_map(|(task, assignee)| Step::Dispatch { task, assignee }),
        2 => (1..40u64).prop_map(|task| Step::Ack { task }),
        2 => (1..40u64).prop_map(|task| Step::Complete { task }),
        1 => (1..40u64).prop_map(|task| Step::Close { task }),
        1 => (1..40u64).prop_map(|task| Step::Cancel { task }),
        2 => (0..3u8).prop_map(|moment| Step::Checkpoint { moment }),
        2 => (1..30u8).prop_map(|hours| Step::Advance { hours }),
    ]
}

/// Applies the steps; commands refused by the ledger are part of the history too.
pub fn build(steps: &[Step], store: &Store) -> (Ledger, u64) {
    build_observed(steps, store, |_, _| {})
}

/// `build`, showing each command's answer to `observe` as it applies, with its position (the
/// step's number, standing for a log index).
pub fn build_observed(steps: &[Step], store: &Store, mut observe: impl FnMut(u64, &ledger::Applied)) -> (Ledger, u64) {
    let mut ledger = Ledger::new();
    ledger.set_records(store.records());
    let mut stamp_ms = T0;
    let mut in_progress: Option<(std::sync::Arc<ledger::Changes>, bool)> = None;
    let kinds = [TaskKind::Lead, TaskKind::RiskAlert, TaskKind::Assignment];
    let command = |actor: Actor, stamp_ms: u64, action: Action| Command { stamp_ms, actor, idempotency: None, action };
    let change = |task: u64, transition: Transition, note: &str| {
        Action::ChangeTask(TaskChange { task: TaskId(task), expected_version: None, transition, note: note.into() })
    };
    for (number, step) in steps.iter().enumerate() {
        let position = number as u64 + 1;
        stamp_ms += 60_000;
        let origin_of = |ledger: &Ledger, task: u64| ledger.task(TaskId(task)).map(|t| t.origin_bureau);
        let assignee_of =
            |ledger: &Ledger, task: u64| ledger.task(TaskId(task)).and_then(|t| t.handling.assignee_bureau);
        let commander = |bureau: BureauCode| Actor { user: "command".into(), bureau, role: Role::Command };
        let operator = |bureau: BureauCode| Actor { user: "operator".into(), bureau, role: Role::Operator };
        let issued = match step {
            Step::Create { origin, kind, entity } => {
                let uscc = USCCS.get(*entity).map(|text| ledger::Uscc::parse(text).expect("a valid USCC"));
                let origin = code(BUREAUS[*origin]);
                let new_task = NewTask {
                    kind: kinds[*kind],
                    severity: Severity::Normal,
                    title: "线索".into(),
                    description: String::new(),
                    subject: Subject {
                        uscc,
                        name: "某公司".into(),
                        region_code: code("440106"),
                        address: String::new(),
                    },
                    source: Source::Complaint,
                    origin_bureau: origin,
                    assignee_bureau: None,
                    routing: Routing::Keep,
                };
                Some(command(commander(origin), stamp_ms, Action::CreateTask(new_task)))
            }
            Step::Dispatch { task, assignee } => origin_of(&ledger, *task).map(|origin| {
                let transition = Transition::Dispatch {
                    assignee: code(BUREAUS[*assignee]),
                    ack_deadline_ms: stamp_ms + 2 * HOUR_MS,
                    complete_deadline_ms: stamp_ms + 24 * HOUR_MS,
                };
                command(commander(origin), stamp_ms, change(*task, transition, ""))
            }),
            Step::Ack { task } => assignee_of(&ledger, *task)
                .map(|assignee| command(operator(assignee), stamp_ms, change(*task, Transition::Ack, ""))),
            Step::Complete { task } => assignee_of(&ledger, *task).map(|assignee| {
                let transition =
                    Transition::Complete { outcome: CompletionOutcome::NoViolation, publication_deadline_ms: None };
                command(operator(assignee), stamp_ms, change(*task, transition, ""))
            }),
            Step::Close { task } => origin_of(&ledger, *task)
                .map(|origin| command(commander(origin), stamp_ms, change(*task, Transition::Close, ""))),
            Step::Cancel { task } => origin_of(&ledger, *task)
                .map(|origin| command(commander(origin), stamp_ms, change(*task, Transition::Cancel, "撤销"))),
            Step::Advance { hours } => {
                stamp_ms += u64::from(*hours) * HOUR_MS;
                None
            }
            Step::Checkpoint { moment } => {
                // A checkpoint goes sealed → written → told; each step here moves the one
                // in progress on by `moment` steps, or starts one.
                for _ in 0..=*moment {
                    match in_progress.take() {
                        None => in_progress = Some((ledger.seal(), false)),
                        Some((sealed, false)) => {
                            let applied = Some(openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), position));
                            let meta = CheckpointMeta { applied, membership: Default::default() };
                            store
                                .write_checkpoint(&sealed, &ledger.encode_core(), &meta, &ledger.regions())
                                .expect("checkpoint");
                            in_progress = Some((sealed, true));
                        }
                        Some((_, true)) => ledger.checkpoint_written(),
                    }
                }
                None
            }
        };
        if let Some(command) = issued {
            ledger.set_position(position);
            if let Ok(applied) = ledger.apply(&command) {
                observe(position, &applied);
            }
        }
    }
    (ledger, stamp_ms)
}
