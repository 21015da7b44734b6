//! `xietong admin synthesize`: a backup file of a synthetic ledger of realistic shape, for the
//! benchmarks at provincial scale, built in minutes instead of hours of API calls.
//!
//! The ledger is made by the real `Ledger::apply` (so every record keeps the invariants and the
//! digest) over a store in a temporary directory, checkpointed as a node does; the backup is
//! then restored into each node of a new group (`xietong admin restore`, or `xietong up --seed`).
//!
//! Shape: tasks spread over the group's county bureaus and over a year; descriptions of a few
//! hundred characters; an entity (one county's) has five tasks on average (repeated USCCs); timelines of
//! 3–12 entries (dispatch, acknowledgement, feedback, completion, close); every task older than
//! 30 days closed and about 70 % of the last 30 days', the rest at work or awaiting review (a
//! province's open work is the last weeks': 30 % of a year open and long overdue would be an
//! emergency, and the deadline watch would spend its first minutes recording it).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::Path;

use anyhow::Context;
use cluster::store::{CheckpointMeta, Store};
use ledger::{
    Action, Actor, BureauCode, Command, CompletionOutcome, Ledger, NewTask, Regions, Role, Routing, Severity, Source,
    Subject, TaskChange, TaskId, TaskKind, Transition,
};

/// Changed records per checkpoint, as a node's (`cluster::raft::checkpoint::CHECKPOINT_CHANGES`).
const CHECKPOINT_CHANGES: usize = 8_192;
const DAY_MS: u64 = 86_400_000;
const YEAR_MS: u64 = 365 * DAY_MS;
/// Only tasks created within this window before the end can still be open: a province's open
/// work is the last weeks' (older tasks are closed); within it, `closed_percent` of the tasks
/// are closed and the rest at work or awaiting review, some of them overdue.
const OPEN_WINDOW_MS: u64 = 30 * DAY_MS;
const WORDS: [&str; 8] = ["食品", "药品", "特种设备", "价格", "广告", "计量", "网络交易", "产品质量"];

/// Writes a backup of a synthetic ledger of `tasks` tasks of group `group` to `out`; answers its
/// header.
pub fn synthesize(
    group: BureauCode,
    tasks: u64,
    closed_percent: u64,
    out: &Path,
) -> anyhow::Result<cluster::backup::BackupHeader> {
    // The year ends now, so that the open tasks' deadlines are this month's.
    let year_end_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64);
    let regions = Regions::compiled();
    let counties: Vec<BureauCode> =
        regions.subtree(group).filter(|r| regions.children(r.code).next().is_none()).map(|r| r.code).collect();
    anyhow::ensure!(!counties.is_empty(), "group {group} has no bureaus below it");
    // The store is built beside the output and removed after.
    let work = out.with_extension("work");
    anyhow::ensure!(!work.exists(), "{} exists: remove it first", work.display());
    std::fs::create_dir_all(&work)?;
    let store = Store::open(&work.join("ledger.redb"))?;
    let mut ledger = Ledger::new();
    ledger.set_records(store.records());
    let entities = (tasks / 5).max(100);
    let mut applied: u64 = 0;
    let checkpoint = |ledger: &mut Ledger, applied: u64| -> anyhow::Result<()> {
        let sealed = ledger.seal();
        let log_id = openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), applied);
        let meta = CheckpointMeta { applied: Some(log_id), membership: Default::default() };
        store.write_checkpoint(&sealed, &ledger.encode_core(), &meta, &ledger.regions())?;
        ledger.checkpoint_written();
        Ok(())
    };
    let started = std::time::Instant::now();
    // Every task's steps go into one queue in time order (the ledger's clock never runs back, so
    // a task's close six days on must come after the creates of those six days): the queue
    // holds a few days of steps, never the whole year.
    let mut queue: BinaryHeap<Reverse<(u64, u64, u8)>> = BinaryHeap::new();
    let plan = |n: u64| TaskPlan::of(n, tasks, closed_percent, &counties, entities, group, year_end_ms);
    for n in 0..tasks {
        let created = plan(n).created_ms;
        while let Some(Reverse((at, task, step))) = queue.peek().copied() {
            if at > created {
                break;
            }
            queue.pop();
            applied += 1;
            let command = plan(task).command(step, at);
            ledger
                .apply(&command)
                .map_err(|refusal| anyhow::anyhow!("synthetic step {step} of task {} refused: {refusal}", task + 1))?;
        }
        for (at, step) in plan(n).steps() {
            queue.push(Reverse((at, n, step)));
        }
        if ledger.open_changes() >= CHECKPOINT_CHANGES {
            checkpoint(&mut ledger, applied)?;
        }
        if (n + 1) % 100_000 == 0 {
            eprintln!("  {} tasks in {:.0} s", n + 1, started.elapsed().as_secs_f64());
        }
    }
    while let Some(Reverse((at, task, step))) = queue.pop() {
        applied += 1;
        let command = plan(task).command(step, at);
        ledger
            .apply(&command)
            .map_err(|refusal| anyhow::anyhow!("synthetic step {step} of task {} refused: {refusal}", task + 1))?;
        if ledger.open_changes() >= CHECKPOINT_CHANGES {
            checkpoint(&mut ledger, applied)?;
        }
    }
    checkpoint(&mut ledger, applied)?;
    let view = store.view()?;
    let taken_at_ms = year_end_ms;
    let header = cluster::backup::header_of(&view, group.to_string(), taken_at_ms)?;
    let tmp = out.with_extension("partial");
    let mut file =
        std::io::BufWriter::new(std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?);
    cluster::backup::write_backup(&header, &view, &mut file)?;
    let file = file.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    std::fs::rename(&tmp, out)?;
    drop(view);
    drop(store);
    std::fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    Ok(header)
}

const HOUR_MS: u64 = 3_600_000;
/// Steps of a task's life, in order: create, dispatch, ack, feedback (`FEEDBACK + k`), complete,
/// close.
const CREATE: u8 = 0;
const DISPATCH: u8 = 1;
const ACK: u8 = 2;
const COMPLETE: u8 = 3;
const CLOSE: u8 = 4;
const FEEDBACK: u8 = 10;

/// Everything about synthetic task `n`, derived from `n` alone, so a step can be rebuilt when
/// its turn comes.
struct TaskPlan {
    n: u64,
    created_ms: u64,
    county: BureauCode,
    origin: BureauCode,
    entity: u64,
    word: &'static str,
    kind: TaskKind,
    severity: Severity,
    source: Source,
    outcome: CompletionOutcome,
    description_repeats: usize,
    /// 2 acknowledged, 3 completed, 4 closed.
    stage: u8,
    feedbacks: u8,
}

impl TaskPlan {
    #[allow(clippy::too_many_arguments)]
    fn of(
        n: u64,
        tasks: u64,
        closed_percent: u64,
        counties: &[BureauCode],
        entities: u64,
        group: BureauCode,
        year_end_ms: u64,
    ) -> TaskPlan {
        let regions = Regions::compiled();
        let mut rng = fastrand::Rng::with_seed(n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(group.as_u32()));
        // An entity lives in one county and has five tasks on average.
        let entity = rng.u64(0..entities);
        let county = counties[(entity % counties.len() as u64) as usize];
        let city =
            regions.parent(county).filter(|city| *city != group && regions.is_within(*city, group)).unwrap_or(group);
        // Open ones are at work (acknowledged, with feedback) or awaiting review: a timeline of
        // 3 to 12 entries whatever the stage.
        let created_ms = year_end_ms - YEAR_MS + n * YEAR_MS / tasks.max(1);
        let recent = created_ms + OPEN_WINDOW_MS > year_end_ms;
        let stage = if !recent || rng.u64(0..100) < closed_percent { 4 } else { rng.u8(2..4) };
        TaskPlan {
            n,
            created_ms,
            county,
            origin: if rng.u8(0..5) == 0 { group } else { city },
            entity,
            word: WORDS[rng.usize(0..WORDS.len())],
            kind: [TaskKind::Lead, TaskKind::RiskAlert, TaskKind::Assignment, TaskKind::Referral][rng.usize(0..4)],
            severity: [Severity::Low, Severity::Normal, Severity::Normal, Severity::High][rng.usize(0..4)],
            source: [Source::Complaint, Source::BigData, Source::SpotCheck, Source::Referral][rng.usize(0..4)],
            outcome: [CompletionOutcome::NoViolation, CompletionOutcome::Warned, CompletionOutcome::Penalized]
                [rng.usize(0..3)],
            description_repeats: 1 + rng.usize(0..4),
            stage,
            feedbacks: if stage >= 2 { rng.u8(0..8) } else { 0 },
        }
    }

    /// The task's steps with their times: a timeline of 3 to 12 entries.
    fn steps(&self) -> Vec<(u64, u8)> {
        let t0 = self.created_ms;
        let mut steps = vec![(t0, CREATE)];
        if self.stage >= 1 {
            steps.push((t0 + HOUR_MS, DISPATCH));
        }
        if self.stage >= 2 {
            steps.push((t0 + 3 * HOUR_MS, ACK));
            steps.extend((0..self.feedbacks).map(|k| (t0 + (4 + u64::from(k)) * HOUR_MS, FEEDBACK + k)));
        }
        if self.stage >= 3 {
            steps.push((t0 + 5 * DAY_MS, COMPLETE));
        }
        if self.stage >= 4 {
            steps.push((t0 + 6 * DAY_MS, CLOSE));
        }
        steps
    }

    fn command(&self, step: u8, at: u64) -> Command {
        let regions = Regions::compiled();
        let commander = Actor { user: format!("cmd-{}", self.origin), bureau: self.origin, role: Role::Command };
        let operator = Actor { user: format!("op-{}", self.county), bureau: self.county, role: Role::Operator };
        let id = TaskId(self.n + 1);
        let change = |transition: Transition, note: &str| {
            Action::ChangeTask(TaskChange { task: id, expected_version: None, transition, note: note.to_owned() })
        };
        let county_name = regions.name(self.county).unwrap_or("");
        let (actor, action) = match step {
            CREATE => {
                let word = self.word;
                let new_task = NewTask {
                    kind: self.kind,
                    severity: self.severity,
                    title: format!("{county_name}{word}违法线索核查"),
                    description: format!("据群众反映及监测发现，该主体涉嫌{word}方面违法行为，请属地市场监管部门依法核查处置并按时反馈。")
                        .repeat(self.description_repeats),
                    subject: Subject {
                        uscc: Some(draw::generate::synthetic_uscc(self.county, self.entity)),
                        name: format!("{county_name}某某{word}有限公司{}", self.entity),
                        region_code: self.county,
                        address: format!("{county_name}人民路{}号", self.entity % 2000 + 1),
                    },
                    source: self.source,
                    origin_bureau: self.origin,
                    assignee_bureau: Some(self.county),
                    routing: Routing::Keep,
                };
                (commander, Action::CreateTask(new_task))
            }
            DISPATCH => {
                let dispatch = Transition::Dispatch {
                    assignee: self.county,
                    ack_deadline_ms: at + 2 * DAY_MS,
                    complete_deadline_ms: at + 15 * DAY_MS,
                };
                (commander, change(dispatch, ""))
            }
            ACK => (operator, change(Transition::Ack, "")),
            COMPLETE => {
                let complete = Transition::Complete { outcome: self.outcome, publication_deadline_ms: None };
                (operator, change(complete, "核查完毕，已依法处置。"))
            }
            CLOSE => (commander, change(Transition::Close, "")),
            _ => (operator, change(Transition::Feedback, "已到现场检查，正在调查取证。")),
        };
        Command { stamp_ms: at, actor, idempotency: None, action }
    }
}
