//! The leader's deadline watch: while this node leads its group, it keeps every open deadline
//! in a timer heap and proposes a `RecordMissedDeadline` entry as soon as one passes.
//!
//! A node that becomes leader first confirms its leadership with a quorum and catches up
//! (`ensure_linearizable`), then rebuilds the heap from the ledger, so a deadline that passed
//! during an election is recorded right after it. The ledger records each miss once whatever
//! is proposed (a duplicate, or a proposal from a deposed leader, changes nothing), and the
//! time of the miss is the proposing leader's stamp, never the applying replica's clock.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::time::Duration;

use cluster::raft::state_machine::AppliedEntry;
use config::deadlines::EscalationPolicy;
use ledger::{Action, Actor, BureauCode, Command, DeadlineKind, Regions, Role, Task, TaskId, TaskKind};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::api::time::now_ms;
use crate::batcher::ProposeError;
use crate::state::AppState;

/// The user name the watch's entries carry in task timelines.
pub const WATCH_USER: &str = "deadline-watch";
/// After a failed proposal, wait this long before trying the due deadlines again.
const RETRY_DELAY: Duration = Duration::from_millis(200);
/// Misses proposed at once; more wait for the next round (a few ms later).
const MISSES_PER_ROUND_MAX: usize = 4_096;
/// Heap entries kept before a rebuild: every change to a task re-adds its open deadlines
/// (stale copies are dropped only when due), so under heavy change the heap is compacted by
/// rescanning the ledger.
const HEAP_ENTRIES_MAX: usize = 1_000_000;

/// A task with a timed step due at the given Unix ms. The step itself is recomputed from the
/// ledger when it is due, so stale heap entries are harmless.
type Due = Reverse<(u64, TaskId)>;

/// The nearest active bureau above `bureau`: a retired parent (merged away) has no centre to
/// escalate to, the bureau that took it over is above it.
fn parent(regions: &Regions, bureau: BureauCode) -> Option<BureauCode> {
    std::iter::successors(regions.parent(bureau), |above| regions.parent(*above))
        .find(|above| regions.is_active(*above))
}

/// Every timed step of a task with its due time: recording a miss when a deadline passes;
/// after a miss, reminders at the policy's interval and escalations one tier up.
fn steps(regions: &Regions, task: &Task, policy: &EscalationPolicy) -> Vec<(u64, Action)> {
    let mut steps = Vec::new();
    for kind in DeadlineKind::ALL.iter().copied() {
        if let Some(deadline_ms) = task.open_deadline_ms(kind) {
            steps.push((deadline_ms, Action::RecordMissedDeadline { task: task.id, kind, deadline_ms }));
            continue;
        }
        let Some(deadline_ms) = task.overdue_deadline_ms(kind) else { continue };
        let mut escalate = |to: Option<BureauCode>, due_ms: u64| {
            if let Some(to) = to.filter(|to| !task.handling.escalated_to.contains(to)) {
                steps.push((due_ms, Action::Escalate { task: task.id, kind, deadline_ms, to }));
            }
        };
        let assignee_parent = task.handling.assignee_bureau.and_then(|assignee| parent(regions, assignee));
        if kind == DeadlineKind::Completion {
            escalate(assignee_parent, deadline_ms);
        }
        if task.kind == TaskKind::Emergency {
            escalate(parent(regions, task.origin_bureau), deadline_ms);
        }
        let sent = task.handling.reminders_sent;
        if sent >= policy.escalate_after_reminders {
            escalate(assignee_parent, deadline_ms);
        }
        if sent < policy.reminders_max {
            let postponed = task.handling.last_feedback_ms.filter(|_| policy.feedback_postpones_reminder);
            let base_ms = postponed.map_or(deadline_ms, |feedback| feedback.max(deadline_ms));
            let due_ms = base_ms.saturating_add(policy.remind_every_ms.saturating_mul(u64::from(sent) + 1));
            steps.push((due_ms, Action::RemindAssignee { task: task.id, kind, deadline_ms, sequence: sent + 1 }));
        }
    }
    steps
}

fn next_due(regions: &Regions, task: &Task, policy: &EscalationPolicy) -> Option<Due> {
    steps(regions, task, policy).iter().map(|(due, _)| *due).min().map(|due| Reverse((due, task.id)))
}

/// Runs until `shutdown`, watching deadlines whenever this node leads.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let mut metrics = state.raft.metrics();
    loop {
        let term = match state.leading_term() {
            Some(term) => term,
            None => {
                tokio::select! {
                    changed = metrics.changed() => if changed.is_err() { return },
                    () = shutdown.cancelled() => return,
                }
                continue;
            }
        };
        // A restarted leader may believe it still leads (openraft #1467): confirm first.
        if state.raft.ensure_linearizable().await.is_err() {
            tokio::select! {
                () = tokio::time::sleep(RETRY_DELAY) => {}
                () = shutdown.cancelled() => return,
            }
            continue;
        }
        tracing::info!(term, "deadline watch running on the leader");
        watch_as_leader(&state, term, &mut metrics, &shutdown).await;
        if shutdown.is_cancelled() {
            return;
        }
        tracing::info!(term, "deadline watch stopped: no longer the leader");
    }
}

async fn watch_as_leader(
    state: &AppState,
    term: u64,
    metrics: &mut tokio::sync::watch::Receiver<openraft::RaftMetrics<u64, openraft::BasicNode>>,
    shutdown: &CancellationToken,
) {
    // Subscribe before the scan, so no deadline set between the two is missed.
    let mut applied = state.store.subscribe_applied();
    let mut heap = scan(state);
    loop {
        let wait = match heap.peek() {
            Some(Reverse((due, _))) => Duration::from_millis(due.saturating_sub(now_ms())),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {
                match fire_due(state, &mut heap).await {
                    Ok(()) => {}
                    Err(ProposeError::NotLeader) => return,
                    Err(error) => {
                        tracing::warn!(?error, "recording missed deadlines failed; retrying");
                        tokio::time::sleep(RETRY_DELAY).await;
                    }
                }
            }
            notice = applied.recv() => match notice {
                Ok(entry) => {
                    add_from_entry(&state.regions(), &mut heap, &entry, &state.deadlines.escalation);
                    if heap.len() > HEAP_ENTRIES_MAX {
                        heap = scan(state);
                    }
                }
                // Too many changes to follow one by one: rebuild from the ledger.
                Err(broadcast::error::RecvError::Lagged(_)) => heap = scan(state),
                Err(broadcast::error::RecvError::Closed) => return,
            },
            changed = metrics.changed() => {
                if changed.is_err() || state.leading_term() != Some(term) {
                    return;
                }
            }
            () = shutdown.cancelled() => return,
        }
    }
}

/// The heap from open work: only a task not in a final state has a timed step.
fn scan(state: &AppState) -> BinaryHeap<Due> {
    let policy = state.deadlines.escalation;
    let regions = state.regions();
    match crate::task_query::open_tasks_now(&state.store) {
        Ok(open) => open.iter().filter_map(|task| next_due(&regions, task, &policy)).collect(),
        Err(error) => {
            tracing::error!(%error, "the deadline watch cannot read the open tasks");
            BinaryHeap::new()
        }
    }
}

fn add_from_entry(regions: &Regions, heap: &mut BinaryHeap<Due>, entry: &AppliedEntry, policy: &EscalationPolicy) {
    for task in entry.results.iter().filter_map(|r| r.as_ref().ok()).flat_map(|a| &a.tasks) {
        heap.extend(next_due(regions, task, policy));
    }
}

/// Proposes every step that is due for the tasks whose heap entries came due; what is not due
/// yet goes back on the heap, and stale entries (the task moved on) fall away.
async fn fire_due(state: &AppState, heap: &mut BinaryHeap<Due>) -> Result<(), ProposeError> {
    let now = now_ms();
    let mut due_tasks = BTreeSet::new();
    while let Some(Reverse((due, task))) = heap.peek().copied() {
        if due > now || due_tasks.len() >= MISSES_PER_ROUND_MAX {
            break;
        }
        heap.pop();
        due_tasks.insert(task);
    }
    let policy = state.deadlines.escalation;
    let actor = Actor { user: WATCH_USER.to_owned(), bureau: state.group_bureau, role: Role::System };
    let mut commands = Vec::new();
    {
        let replica = state.store.read();
        let regions = replica.ledger.regions();
        for task in due_tasks.iter().filter_map(|id| replica.ledger.task(*id)) {
            for (due, action) in steps(&regions, &task, &policy) {
                if due <= now {
                    state.telemetry.deadline_watch_lag.observe((now - due) as f64 / 1000.0);
                    commands.push(Command { stamp_ms: now, actor: actor.clone(), idempotency: None, action });
                } else {
                    heap.push(Reverse((due, task.id)));
                }
            }
        }
    }
    if commands.is_empty() {
        return Ok(());
    }
    // Proposed together, so the batcher packs them into few entries. Each result comes back
    // through the applied entries, which put the task's next step on the heap.
    let results = futures_util::future::join_all(commands.into_iter().map(|c| state.batcher.propose(c))).await;
    if let Some(error) = results.into_iter().find_map(Result::err) {
        // Try these tasks again; what was recorded meanwhile is not proposed twice.
        heap.extend(due_tasks.iter().map(|task| Reverse((now, *task))));
        return Err(error);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use config::deadlines::EscalationPolicy;
    use ledger::{
        Action, Actor, BureauCode, Command, DeadlineKind, Ledger, NewTask, Role, Severity, Source, Subject, TaskChange,
        TaskId, TaskKind, Transition,
    };

    use super::steps;

    const MINUTE_MS: u64 = 60_000;
    const POLICY: EscalationPolicy = EscalationPolicy {
        remind_every_ms: 30 * MINUTE_MS,
        reminders_max: 2,
        escalate_after_reminders: 1,
        feedback_postpones_reminder: true,
    };

    fn code(text: &str) -> BureauCode {
        BureauCode::parse_compiled(text).expect(text)
    }

    fn actor(user: &str, bureau: &str, role: Role) -> Actor {
        Actor { user: user.into(), bureau: code(bureau), role }
    }

    fn apply(ledger: &mut Ledger, stamp_ms: u64, actor: Actor, action: Action) {
        ledger.apply(&Command { stamp_ms, actor, idempotency: None, action }).expect("applied");
    }

    fn change(task: TaskId, transition: Transition, note: &str) -> Action {
        Action::ChangeTask(TaskChange { task, expected_version: None, note: note.into(), transition })
    }

    /// A task from Guangzhou's centre to Tianhe, dispatched at t=0 with ack due at 10 min and
    /// completion due at 60 min.
    /// A matter about a Tianhe shop, registered by Guangzhou's centre.
    fn tianhe_matter(kind: TaskKind) -> NewTask {
        NewTask {
            routing: ledger::Routing::Keep,
            kind,
            severity: Severity::High,
            title: "测试".into(),
            description: String::new(),
            subject: Subject { uscc: None, name: "某店".into(), region_code: code("440106"), address: String::new() },
            source: Source::Complaint,
            origin_bureau: code("440100"),
            assignee_bureau: None,
        }
    }

    fn dispatched(kind: TaskKind) -> (Ledger, TaskId) {
        let mut ledger = Ledger::new();
        let command = actor("gz", "440100", Role::Command);
        apply(&mut ledger, 1, command.clone(), Action::CreateTask(tianhe_matter(kind)));
        let id = TaskId(1);
        let dispatch = Transition::Dispatch {
            assignee: code("440106"),
            ack_deadline_ms: 10 * MINUTE_MS,
            complete_deadline_ms: 60 * MINUTE_MS,
        };
        apply(&mut ledger, 1, command, change(id, dispatch, ""));
        (ledger, id)
    }

    fn system() -> Actor {
        actor("deadline-watch", "440000", Role::System)
    }

    #[test]
    fn a_missed_ack_is_reminded_then_escalated_and_the_reminders_stop() {
        let (mut ledger, id) = dispatched(TaskKind::Lead);
        let ack_deadline = 10 * MINUTE_MS;
        let due = |ledger: &Ledger| steps(&ledger.regions(), &ledger.task(id).expect("task"), &POLICY);
        assert_eq!(
            due(&ledger)[0],
            (
                ack_deadline,
                Action::RecordMissedDeadline { task: id, kind: DeadlineKind::Ack, deadline_ms: ack_deadline }
            )
        );
        apply(
            &mut ledger,
            ack_deadline,
            system(),
            Action::RecordMissedDeadline { task: id, kind: DeadlineKind::Ack, deadline_ms: ack_deadline },
        );
        let first =
            Action::RemindAssignee { task: id, kind: DeadlineKind::Ack, deadline_ms: ack_deadline, sequence: 1 };
        assert!(due(&ledger).contains(&(ack_deadline + 30 * MINUTE_MS, first.clone())));
        assert!(
            !due(&ledger).iter().any(|(_, a)| matches!(a, Action::Escalate { .. })),
            "no escalation before a reminder"
        );
        apply(&mut ledger, ack_deadline + 30 * MINUTE_MS, system(), first);
        let escalate =
            Action::Escalate { task: id, kind: DeadlineKind::Ack, deadline_ms: ack_deadline, to: code("440100") };
        assert!(
            due(&ledger).contains(&(ack_deadline, escalate.clone())),
            "escalated to Guangzhou once the reminder went unheeded"
        );
        apply(&mut ledger, ack_deadline + 30 * MINUTE_MS, system(), escalate);
        let second =
            Action::RemindAssignee { task: id, kind: DeadlineKind::Ack, deadline_ms: ack_deadline, sequence: 2 };
        apply(&mut ledger, ack_deadline + 60 * MINUTE_MS, system(), second);
        let remaining = due(&ledger);
        assert!(
            !remaining.iter().any(|(_, a)| matches!(
                a,
                Action::RemindAssignee { .. } | Action::Escalate { kind: DeadlineKind::Ack, .. }
            )),
            "the limit of two reminders holds: {remaining:?}"
        );
        // An ack ends the chase of the ack clock.
        apply(
            &mut ledger,
            ack_deadline + 61 * MINUTE_MS,
            actor("th", "440106", Role::Operator),
            change(id, Transition::Ack, ""),
        );
        assert!(due(&ledger)
            .iter()
            .all(|(_, a)| matches!(a, Action::RecordMissedDeadline { kind: DeadlineKind::Completion, .. })));
    }

    #[test]
    fn a_missed_completion_escalates_at_once_and_an_emergency_above_the_dispatcher() {
        let (mut ledger, id) = dispatched(TaskKind::Emergency);
        apply(&mut ledger, 2, actor("th", "440106", Role::Operator), change(id, Transition::Ack, ""));
        let deadline = 60 * MINUTE_MS;
        apply(
            &mut ledger,
            deadline,
            system(),
            Action::RecordMissedDeadline { task: id, kind: DeadlineKind::Completion, deadline_ms: deadline },
        );
        let due = steps(&ledger.regions(), &ledger.task(id).expect("task"), &POLICY);
        let at_once: Vec<BureauCode> = due
            .iter()
            .filter_map(|(at, action)| match action {
                Action::Escalate { to, .. } if *at == deadline => Some(*to),
                _ => None,
            })
            .collect();
        assert_eq!(at_once, vec![code("440100"), code("440000")], "the assignee's parent and the dispatcher's parent");
    }

    #[test]
    fn a_station_task_escalates_to_its_county_first() {
        let mut ledger = Ledger::new();
        let command = actor("gz", "440100", Role::Command);
        let enrol = ledger::organisation::OrganisationAction::EnrolStation {
            county: code("440106"),
            number: Some(4),
            name: "五山市场监管所".into(),
            areas: Vec::new(),
            note: String::new(),
        };
        apply(&mut ledger, 1, command.clone(), Action::Organisation(Box::new(enrol)));
        let wushan = BureauCode::station(code("440106"), 4).expect("a station code");
        apply(&mut ledger, 1, command.clone(), Action::CreateTask(tianhe_matter(TaskKind::Lead)));
        let id = TaskId(1);
        let dispatch = Transition::Dispatch {
            assignee: wushan,
            ack_deadline_ms: 10 * MINUTE_MS,
            complete_deadline_ms: 60 * MINUTE_MS,
        };
        apply(&mut ledger, 1, command, change(id, dispatch, ""));
        let station_desk = Actor { user: "wushan".into(), bureau: wushan, role: Role::Operator };
        apply(&mut ledger, 2, station_desk, change(id, Transition::Ack, ""));
        let deadline = 60 * MINUTE_MS;
        let missed = Action::RecordMissedDeadline { task: id, kind: DeadlineKind::Completion, deadline_ms: deadline };
        apply(&mut ledger, deadline, system(), missed);
        let escalations = |ledger: &Ledger| -> Vec<BureauCode> {
            let due = steps(&ledger.regions(), &ledger.task(id).expect("task"), &POLICY);
            due.iter()
                .filter_map(|(_, action)| match action {
                    Action::Escalate { to, .. } => Some(*to),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(escalations(&ledger), vec![code("440106")], "a station's late task goes to its county");
        let escalate =
            Action::Escalate { task: id, kind: DeadlineKind::Completion, deadline_ms: deadline, to: code("440106") };
        apply(&mut ledger, deadline, system(), escalate);
        assert!(escalations(&ledger).is_empty(), "escalated once to the county");
    }

    #[test]
    fn a_progress_report_postpones_the_next_reminder() {
        let (mut ledger, id) = dispatched(TaskKind::Lead);
        apply(&mut ledger, 2, actor("th", "440106", Role::Operator), change(id, Transition::Ack, ""));
        let deadline = 60 * MINUTE_MS;
        apply(
            &mut ledger,
            deadline,
            system(),
            Action::RecordMissedDeadline { task: id, kind: DeadlineKind::Completion, deadline_ms: deadline },
        );
        let reminder_due = |ledger: &Ledger, policy: &EscalationPolicy| {
            steps(&ledger.regions(), &ledger.task(id).expect("task"), policy)
                .into_iter()
                .find_map(|(at, action)| matches!(action, Action::RemindAssignee { .. }).then_some(at))
                .expect("a reminder is scheduled")
        };
        assert_eq!(reminder_due(&ledger, &POLICY), deadline + 30 * MINUTE_MS);
        apply(
            &mut ledger,
            deadline + 20 * MINUTE_MS,
            actor("th", "440106", Role::Operator),
            change(id, Transition::Feedback, "正在核查"),
        );
        assert_eq!(reminder_due(&ledger, &POLICY), deadline + 50 * MINUTE_MS, "counted from the report");
        let strict = EscalationPolicy { feedback_postpones_reminder: false, ..POLICY };
        assert_eq!(reminder_due(&ledger, &strict), deadline + 30 * MINUTE_MS);
    }
}
