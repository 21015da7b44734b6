//! Federation between two ledgers, with the courier's steps made by hand: handovers created
//! once per forward id, receipts once per message, mirrors that never regress, instructions
//! in order, and the refusals that keep each side in its lane.

use crate::*;

const HOUR_MS: u64 = 3_600_000;
const T0: u64 = 1_780_000_000_000;

fn bureau(code: &str) -> BureauCode {
    BureauCode::parse_compiled(code).expect(code)
}

fn actor(user: &str, code: &str, role: Role) -> Actor {
    Actor { user: user.to_owned(), bureau: bureau(code), role }
}

fn system(code: &str) -> Actor {
    actor("courier", code, Role::System)
}

fn step(ledger: &mut Ledger, stamp_ms: u64, actor: Actor, action: Action) -> CommandResult {
    let result = ledger.apply(&Command { stamp_ms, actor, idempotency: None, action });
    ledger.check_invariants().expect("the ledger keeps its invariants");
    result
}

fn change(task: TaskId, transition: Transition) -> Action {
    let note = if transition.action().requires_note() { "原因".to_owned() } else { String::new() };
    Action::ChangeTask(TaskChange { task, expected_version: None, note, transition })
}

pub(super) fn lead(region: &str, routing: Routing) -> NewTask {
    NewTask {
        kind: TaskKind::Lead,
        severity: Severity::High,
        title: "网络销售假冒商品线索".to_owned(),
        description: String::new(),
        subject: Subject {
            uscc: None,
            name: "某某电子商务有限公司".to_owned(),
            region_code: bureau(region),
            address: String::new(),
        },
        source: Source::BigData,
        origin_bureau: bureau("440000"),
        assignee_bureau: None,
        routing,
    }
}

/// What the courier does for one outbox entry: deliver it to `target` (as the peer group
/// `origin_group`), then commit the receipt at the origin. Returns the target's answer.
fn deliver(origin: &mut Ledger, origin_group: &str, target: &mut Ledger, target_group: &str) -> CommandResult {
    let entry = origin.outbox().next().expect("a message waits").clone();
    assert_eq!(entry.to_group, bureau(target_group));
    let answer = step(
        target,
        T0 + HOUR_MS,
        peer_actor(bureau(origin_group)),
        Action::Receive {
            message: Box::new(entry.message.clone()),
            group: bureau(target_group),
            placement: Placement::Keep,
        },
    );
    let receipt = match &answer {
        Ok(applied) => Receipt::Accepted(applied.task().id),
        Err(rejection) => Receipt::Refused(rejection.to_string()),
    };
    step(origin, T0 + HOUR_MS, system(origin_group), Action::RecordReceipt { seq: entry.seq, answer: receipt })
        .expect("the first receipt is recorded");
    answer
}

fn report(origin: &mut Ledger, target: &Ledger, target_task: TaskId, target_group: &str) -> CommandResult {
    let report = StatusReport::of(&target.task(target_task).expect("exists")).expect("a received task reports");
    step(origin, T0 + 2 * HOUR_MS, peer_actor(bureau(target_group)), Action::MirrorStatus(Box::new(report)))
}

/// The province creates a lead and dispatches it to Tianhe (hosted by the Guangzhou group):
/// the tracking record's id, its handover waiting in the outbox.
pub(super) fn dispatch_across(province: &mut Ledger) -> TaskId {
    let command = actor("zhang", "440000", Role::Command);
    let id = step(province, T0, command.clone(), Action::CreateTask(lead("440106", Routing::Keep))).unwrap().task().id;
    let across = Transition::DispatchAcross {
        assignee: bureau("440106"),
        ack_deadline_ms: T0 + HOUR_MS,
        complete_deadline_ms: T0 + 48 * HOUR_MS,
        to_group: bureau("440100"),
        from_group: bureau("440000"),
    };
    let tracked = step(province, T0, command, change(id, across)).expect("dispatch across").task().clone();
    assert_eq!(tracked.handling.state, TaskState::Dispatched);
    id
}

/// The same, then delivered and receipted: returns (origin task, target task).
fn dispatched_across(province: &mut Ledger, guangzhou: &mut Ledger) -> (TaskId, TaskId) {
    let id = dispatch_across(province);
    assert_eq!(province.outbox_len(), 1);
    let target = deliver(province, "440000", guangzhou, "440100").expect("delivered").task().clone();
    assert_eq!(target.handling.state, TaskState::Dispatched);
    assert_eq!(target.handling.assignee_bureau, Some(bureau("440106")));
    assert_eq!(target.handling.ack_deadline_ms, Some(T0 + HOUR_MS));
    assert_eq!(target.origin_bureau, bureau("440000"));
    (id, target.id)
}

#[test]
fn a_dispatch_across_groups_is_created_once_and_mirrored_step_by_step() {
    let (mut province, mut guangzhou) = (Ledger::new(), Ledger::new());
    let (origin_id, target_id) = dispatched_across(&mut province, &mut guangzhou);
    assert_eq!(province.outbox_len(), 0);
    let remote = province.task(origin_id).unwrap().remote.clone().unwrap();
    assert_eq!(remote.delivered.map(|(task, _)| task), Some(target_id));

    // A repeated delivery (the receipt got lost) answers with the same task and makes none.
    let forward = remote.forward;
    let handover = guangzhou.received_task(forward).unwrap().clone();
    let again = Message::Handover(Handover {
        forward,
        purpose: HandoverPurpose::Dispatch,
        origin_task: origin_id,
        origin_bureau: bureau("440000"),
        kind: handover.kind,
        severity: handover.severity,
        title: handover.title.clone(),
        description: String::new(),
        subject: handover.subject.clone(),
        source: handover.source,
        dispatch: None,
        note: String::new(),
        sent_by: "zhang".into(),
    });
    let count = guangzhou.task_count();
    let repeat = step(
        &mut guangzhou,
        T0 + HOUR_MS,
        peer_actor(bureau("440000")),
        Action::Receive { message: Box::new(again), group: bureau("440100"), placement: Placement::Keep },
    )
    .unwrap();
    assert!(repeat.replayed);
    assert_eq!(repeat.task().id, target_id);
    assert_eq!(guangzhou.task_count(), count);

    // Tianhe acknowledges and completes in Guangzhou; each report mirrors the step.
    let tianhe = actor("li", "440106", Role::Operator);
    step(&mut guangzhou, T0 + HOUR_MS, tianhe.clone(), change(target_id, Transition::Ack)).unwrap();
    // A decline (退单) would not reach the dispatcher in the other group: refused here.
    let decline = Action::ChangeTask(TaskChange {
        task: target_id,
        expected_version: None,
        note: "不属本辖区".into(),
        transition: Transition::Decline,
    });
    let refused = step(&mut guangzhou, T0 + HOUR_MS, tianhe.clone(), decline);
    assert!(matches!(refused, Err(Rejection::Conflict { code: ConflictCode::ReceivedDispatch, .. })), "{refused:?}");
    let mirrored = report(&mut province, &guangzhou, target_id, "440100").unwrap().task().clone();
    assert_eq!(mirrored.handling.state, TaskState::Acknowledged);
    assert_eq!(mirrored.timeline.last().unwrap().action, TimelineAction::Ack);
    assert_eq!(mirrored.timeline.last().unwrap().actor_user, "li");
    // The same report again is not news.
    assert!(matches!(report(&mut province, &guangzhou, target_id, "440100"), Err(Rejection::NothingToRecord(_))));

    let complete = Transition::Complete { outcome: CompletionOutcome::Warned, publication_deadline_ms: None };
    step(&mut guangzhou, T0 + HOUR_MS, tianhe, change(target_id, complete)).unwrap();
    let mirrored = report(&mut province, &guangzhou, target_id, "440100").unwrap().task().clone();
    assert_eq!(mirrored.handling.state, TaskState::Completed);
    assert_eq!(mirrored.handling.outcome, Some(CompletionOutcome::Warned));

    // The province closes: locally at once, and the decision flows down as instruction 1.
    let command = actor("zhang", "440000", Role::Command);
    let closed =
        step(&mut province, T0 + 2 * HOUR_MS, command, change(origin_id, Transition::Close)).unwrap().task().clone();
    assert_eq!(closed.handling.state, TaskState::Closed);
    assert_eq!(province.outbox_len(), 1);
    let target = deliver(&mut province, "440000", &mut guangzhou, "440100").unwrap().task().clone();
    assert_eq!(target.handling.state, TaskState::Closed);
    assert_eq!(
        target.timeline.last().unwrap().actor_user,
        "group:440000",
        "the sending group is on record, not the name it wrote"
    );
    let before = province.task(origin_id).unwrap().version;
    let after = report(&mut province, &guangzhou, target_id, "440100").unwrap().task().clone();
    assert_eq!(after.handling.state, TaskState::Closed);
    assert_eq!(after.version, before, "the close is on the province's timeline once");
}

#[test]
fn each_side_keeps_to_its_lane() {
    let (mut province, mut guangzhou) = (Ledger::new(), Ledger::new());
    let (origin_id, target_id) = dispatched_across(&mut province, &mut guangzhou);
    // The province's record is not where the assignee works.
    let province_command = actor("zhang", "440000", Role::Command);
    let refused = step(&mut province, T0, province_command.clone(), change(origin_id, Transition::Ack));
    assert!(matches!(refused, Err(Rejection::Conflict { .. })), "{refused:?}");
    // Nor is it re-dispatched from there.
    let redispatch = Transition::Dispatch {
        assignee: bureau("440106"),
        ack_deadline_ms: T0 + HOUR_MS,
        complete_deadline_ms: T0 + 2 * HOUR_MS,
    };
    assert!(matches!(
        step(&mut province, T0, province_command, change(origin_id, redispatch)),
        Err(Rejection::Conflict { .. })
    ));
    // Guangzhou's command centre cannot cancel what the province dispatched.
    let gz_command = actor("wang", "440100", Role::Command);
    let refused = step(&mut guangzhou, T0, gz_command, change(target_id, Transition::Cancel));
    assert!(matches!(refused, Err(Rejection::Forbidden(_))), "{refused:?}");
    // The province's watch never acts on a record whose clocks run in Guangzhou.
    let miss = Action::RecordMissedDeadline { task: origin_id, kind: DeadlineKind::Ack, deadline_ms: T0 + HOUR_MS };
    assert!(step(&mut province, T0 + 3 * HOUR_MS, system("440000"), miss).is_err());
    // A peer cannot pose as the origin of someone else's forward, nor report on it.
    let report_from_wrong_group = StatusReport::of(&guangzhou.task(target_id).unwrap()).unwrap();
    let refused =
        step(&mut province, T0, peer_actor(bureau("440300")), Action::MirrorStatus(Box::new(report_from_wrong_group)));
    assert!(matches!(refused, Err(Rejection::Forbidden(_))), "{refused:?}");
    // Users cannot record receipts or deliver messages.
    let user = actor("zhang", "440000", Role::Command);
    let receipt = Action::RecordReceipt { seq: 1, answer: Receipt::Accepted(target_id) };
    assert!(matches!(step(&mut province, T0, user, receipt), Err(Rejection::Forbidden(_))));
}

#[test]
fn a_report_made_before_an_instruction_arrived_does_not_undo_it() {
    let (mut province, mut guangzhou) = (Ledger::new(), Ledger::new());
    let (origin_id, target_id) = dispatched_across(&mut province, &mut guangzhou);
    let tianhe = actor("li", "440106", Role::Operator);
    step(&mut guangzhou, T0, tianhe.clone(), change(target_id, Transition::Ack)).unwrap();
    let complete = Transition::Complete { outcome: CompletionOutcome::NoViolation, publication_deadline_ms: None };
    step(&mut guangzhou, T0, tianhe, change(target_id, complete)).unwrap();
    report(&mut province, &guangzhou, target_id, "440100").unwrap();
    // The province returns the result; Guangzhou has not seen it yet when it reports again.
    let command = actor("zhang", "440000", Role::Command);
    step(&mut province, T0 + HOUR_MS, command, change(origin_id, Transition::Return)).unwrap();
    let stale = StatusReport::of(&guangzhou.task(target_id).unwrap()).unwrap();
    let mut newer = stale.clone();
    newer.version += 1; // as if a feedback-free change happened there meanwhile
    let mirrored =
        step(&mut province, T0 + HOUR_MS, peer_actor(bureau("440100")), Action::MirrorStatus(Box::new(newer)))
            .unwrap()
            .task()
            .clone();
    assert_eq!(mirrored.handling.state, TaskState::Returned, "the return is not undone by a report that predates it");
    // Once the instruction is handled there, reports are taken whole again.
    let target = deliver(&mut province, "440000", &mut guangzhou, "440100").unwrap().task().clone();
    assert_eq!(target.handling.state, TaskState::Returned);
    let _ = report(&mut province, &guangzhou, target_id, "440100");
    assert_eq!(province.task(origin_id).unwrap().handling.state, TaskState::Returned);
}

#[test]
fn a_cancel_wins_over_a_completion_that_crossed_it() {
    let (mut province, mut guangzhou) = (Ledger::new(), Ledger::new());
    let (origin_id, target_id) = dispatched_across(&mut province, &mut guangzhou);
    let tianhe = actor("li", "440106", Role::Operator);
    step(&mut guangzhou, T0, tianhe.clone(), change(target_id, Transition::Ack)).unwrap();
    let command = actor("zhang", "440000", Role::Command);
    step(&mut province, T0, command, change(origin_id, Transition::Cancel)).unwrap();
    let complete = Transition::Complete { outcome: CompletionOutcome::NoViolation, publication_deadline_ms: None };
    step(&mut guangzhou, T0, tianhe, change(target_id, complete)).unwrap();
    let target = deliver(&mut province, "440000", &mut guangzhou, "440100").unwrap().task().clone();
    assert_eq!(target.handling.state, TaskState::Cancelled);
    let mirrored = report(&mut province, &guangzhou, target_id, "440100").unwrap().task().clone();
    assert_eq!(mirrored.handling.state, TaskState::Cancelled);
    // The completion that happened there before the cancel arrived stays on the record.
    assert!(mirrored.timeline.iter().any(|e| e.action == TimelineAction::Complete));
}

#[test]
fn a_lead_forwarded_on_create_lands_once_and_may_not_be_passed_on() {
    let (mut province, mut zhejiang) = (Ledger::new(), Ledger::new());
    let command = actor("zhang", "440000", Role::Command);
    let routing = Routing::ForwardTo { to_group: bureau("330000"), from_group: bureau("440000") };
    let origin = step(&mut province, T0, command, Action::CreateTask(lead("330106", routing))).unwrap().task().clone();
    assert_eq!(origin.handling.state, TaskState::Created);
    assert_eq!(origin.timeline.last().unwrap().action, TimelineAction::Forward);
    let target = deliver(&mut province, "440000", &mut zhejiang, "330000").unwrap().task().clone();
    assert_eq!(target.origin_bureau, bureau("330000"), "the receiving centre owns the lead");
    assert_eq!(target.handling.state, TaskState::Created);
    let delivered = province.task(origin.id).unwrap();
    assert_eq!(delivered.timeline.last().unwrap().action, TimelineAction::ForwardDelivered);

    let zj_command = actor("zhao", "330000", Role::Command);
    let onward = Transition::Forward { to_group: bureau("320000"), from_group: bureau("330000") };
    let refused = step(&mut zhejiang, T0, zj_command.clone(), change(target.id, onward));
    assert!(matches!(refused, Err(Rejection::Conflict { .. })), "{refused:?}");

    // Zhejiang dispatches it in its own tree; the province's record follows.
    let dispatch = Transition::Dispatch {
        assignee: bureau("330106"),
        ack_deadline_ms: T0 + 2 * HOUR_MS,
        complete_deadline_ms: T0 + 96 * HOUR_MS,
    };
    step(&mut zhejiang, T0 + HOUR_MS, zj_command, change(target.id, dispatch)).unwrap();
    let mirrored = report(&mut province, &zhejiang, target.id, "330000").unwrap().task().clone();
    assert_eq!(mirrored.handling.state, TaskState::Dispatched);
    assert_eq!(mirrored.handling.assignee_bureau, Some(bureau("330106")));
    // The province cannot act on a lead it handed over.
    let command = actor("zhang", "440000", Role::Command);
    assert!(matches!(
        step(&mut province, T0, command, change(origin.id, Transition::Cancel)),
        Err(Rejection::Conflict { .. })
    ));
}

#[test]
fn a_parent_routes_a_lead_on_and_tracks_it() {
    let (mut guangzhou, mut province) = (Ledger::new(), Ledger::new());
    let command = actor("wang", "440100", Role::Command);
    let mut new = lead("330106", Routing::ForwardTo { to_group: bureau("440000"), from_group: bureau("440100") });
    new.origin_bureau = bureau("440100");
    step(&mut guangzhou, T0, command, Action::CreateTask(new)).unwrap();
    let entry = guangzhou.outbox().next().unwrap().clone();
    let relayed = step(
        &mut province,
        T0,
        peer_actor(bureau("440100")),
        Action::Receive {
            message: Box::new(entry.message),
            group: bureau("440000"),
            placement: Placement::RelayTo(bureau("330000")),
        },
    )
    .unwrap()
    .task()
    .clone();
    assert_eq!(relayed.received.as_ref().unwrap().from_group, bureau("440100"));
    assert_eq!(relayed.remote.as_ref().unwrap().to_group, bureau("330000"));
    let onward = province.outbox().next().unwrap();
    assert_eq!(onward.to_group, bureau("330000"));
    assert_eq!(onward.message.forward().origin_group, bureau("440000"));
}

#[test]
fn receipts_and_stuck_flags_are_recorded_once() {
    let mut province = Ledger::new();
    let command = actor("zhang", "440000", Role::Command);
    let routing = Routing::ForwardTo { to_group: bureau("330000"), from_group: bureau("440000") };
    let id = step(&mut province, T0, command, Action::CreateTask(lead("330106", routing))).unwrap().task().id;
    let seq = province.outbox().next().unwrap().seq;
    let flagged = step(&mut province, T0 + HOUR_MS, system("440000"), Action::FlagStuckForward { seq }).unwrap();
    assert_eq!(flagged.task().timeline.last().unwrap().action, TimelineAction::ForwardStuck);
    assert!(step(&mut province, T0 + HOUR_MS, system("440000"), Action::FlagStuckForward { seq }).is_err());
    let receipt = Action::RecordReceipt { seq, answer: Receipt::Accepted(TaskId(7)) };
    step(&mut province, T0 + HOUR_MS, system("440000"), receipt.clone()).unwrap();
    assert!(matches!(step(&mut province, T0 + HOUR_MS, system("440000"), receipt), Err(Rejection::NothingToRecord(_))));
    assert_eq!(province.task(id).unwrap().remote.as_ref().unwrap().delivered.map(|d| d.0), Some(TaskId(7)));
}

#[test]
fn a_disputed_lead_goes_to_the_common_parent_which_designates_the_handler_once() {
    let (mut guangzhou, mut shenzhen, mut province) = (Ledger::new(), Ledger::new(), Ledger::new());
    let gz_command = actor("wang", "440100", Role::Command);
    let mut new = lead("440305", Routing::ForwardTo { to_group: bureau("440300"), from_group: bureau("440100") });
    new.origin_bureau = bureau("440100");
    let origin = step(&mut guangzhou, T0, gz_command.clone(), Action::CreateTask(new)).unwrap().task().clone();
    let received = deliver(&mut guangzhou, "440100", &mut shenzhen, "440300").unwrap().task().clone();

    let sz_command = actor("chen", "440300", Role::Command);
    let dispute = |to: &str| Transition::Dispute { to_group: bureau(to), from_group: bureau("440300") };
    // A dispute must say why.
    let silent = Action::ChangeTask(TaskChange {
        task: received.id,
        expected_version: None,
        note: String::new(),
        transition: dispute("440000"),
    });
    assert!(matches!(step(&mut shenzhen, T0, sz_command.clone(), silent), Err(Rejection::Invalid { .. })));
    let disputed =
        step(&mut shenzhen, T0, sz_command.clone(), change(received.id, dispute("440000"))).unwrap().task().clone();
    assert_eq!(disputed.timeline.last().unwrap().action, TimelineAction::Dispute);
    // Nothing more is done with it in Shenzhen.
    assert!(step(&mut shenzhen, T0, sz_command, change(received.id, dispute("440000"))).is_err());

    // The province gets its own task: designate by the deadline.
    let entry = shenzhen.outbox().next().unwrap().clone();
    let designate_by = T0 + 7 * 24 * HOUR_MS;
    let receive =
        |placement| Action::Receive { message: Box::new(entry.message.clone()), group: bureau("440000"), placement };
    assert!(
        step(&mut province, T0, peer_actor(bureau("440300")), receive(Placement::Keep)).is_err(),
        "a dispute needs its deadline"
    );
    let designation =
        step(&mut province, T0, peer_actor(bureau("440300")), receive(Placement::DesignateBy(designate_by)))
            .unwrap()
            .task()
            .clone();
    assert_eq!(
        (designation.handling.state, designation.handling.assignee_bureau),
        (TaskState::Dispatched, Some(bureau("440000")))
    );
    assert_eq!(designation.handling.ack_deadline_ms, Some(designate_by));
    let again =
        step(&mut province, T0, peer_actor(bureau("440300")), receive(Placement::DesignateBy(designate_by))).unwrap();
    assert!(again.replayed, "one designation task per dispute");

    // The province designates Guangzhou; the designation is final there.
    let gd_command = actor("zhang", "440000", Role::Command);
    let designate = Transition::Designate { to_group: bureau("440100"), from_group: bureau("440000") };
    step(&mut province, T0, gd_command, change(designation.id, designate)).unwrap();
    let designated = deliver(&mut province, "440000", &mut guangzhou, "440100").unwrap().task().clone();
    assert_eq!(designated.received.as_ref().unwrap().purpose, HandoverPurpose::Designation);
    assert_eq!(designated.origin_bureau, bureau("440100"));
    let forward = Transition::Forward { to_group: bureau("440300"), from_group: bureau("440100") };
    assert!(matches!(
        step(&mut guangzhou, T0, gz_command.clone(), change(designated.id, forward)),
        Err(Rejection::Conflict { .. })
    ));
    let redispute = Transition::Dispute { to_group: bureau("440000"), from_group: bureau("440100") };
    assert!(matches!(
        step(&mut guangzhou, T0, gz_command, change(designated.id, redispute)),
        Err(Rejection::Conflict { .. })
    ));
    // Guangzhou's original record is untouched by all this until reports arrive.
    assert!(guangzhou.task(origin.id).unwrap().remote.is_some());
}

/// A drawn inspection another group hands here: its draw's decisions are checked field by field
/// (they come from outside), a bad one refused changing nothing; the inspection is entered here
/// with an inspection's outcome and no publication clock, and published only by its organiser.
#[test]
fn a_drawn_inspection_from_another_group_is_checked_entered_here_and_published_there() {
    use crate::campaign::{InspectionItem, ProgrammeAction, RiskClass, CAMPAIGN_ELSEWHERE};
    let mut province = Ledger::new();
    let mut guangzhou = Ledger::new();
    dispatch_across(&mut province);
    let entry = province.outbox().next().expect("a handover waits").clone();
    let Message::Handover(mut handover) = entry.message else { panic!("a handover") };
    handover.kind = TaskKind::Inspection;
    handover.source = Source::SpotCheck;
    let drawn = DrawnAtOrigin {
        campaign_name: "2026年全省食品经营抽查".into(),
        items: vec![InspectionItem {
            code: "B01".into(),
            name: "食品经营行为检查".into(),
            industries: vec!["catering".into()],
            expertise: "food".into(),
        }],
        inspectors: vec!["440106-1".into(), "440106-2".into()],
        risk_class: RiskClass::Normal,
        top_up: false,
    };
    let receive = |ledger: &mut Ledger, handover: &Handover, drawn: &DrawnAtOrigin| {
        let message = Message::DrawnInspection(Box::new((handover.clone(), drawn.clone())));
        let placement = Placement::Keep;
        let action = Action::Receive { message: Box::new(message), group: bureau("440100"), placement };
        step(ledger, T0 + HOUR_MS, peer_actor(bureau("440000")), action)
    };
    let mut alone = drawn.clone();
    alone.inspectors.truncate(1);
    let mut no_items = drawn.clone();
    no_items.items.clear();
    let mut lead = handover.clone();
    lead.kind = TaskKind::Lead;
    let mut long_name = drawn.clone();
    long_name.campaign_name = "抽".repeat(crate::limits::TITLE_CHARS_MAX + 1);
    for (bent, drawn) in [(&handover, &alone), (&handover, &no_items), (&lead, &drawn), (&handover, &long_name)] {
        let refused = receive(&mut guangzhou, bent, drawn);
        assert!(matches!(refused, Err(Rejection::Invalid { .. })), "{refused:?}");
    }
    assert_eq!(guangzhou.task_count(), 0, "a refused message creates nothing");

    let task = receive(&mut guangzhou, &handover, &drawn).expect("received").task().clone();
    let record = task.inspection.clone().expect("an inspection here");
    assert_eq!((record.campaign, record.inspectors.clone()), (CAMPAIGN_ELSEWHERE, drawn.inspectors.clone()));
    let tianhe = actor("th-operator", "440106", Role::Operator);
    step(&mut guangzhou, T0 + HOUR_MS, tianhe.clone(), change(task.id, Transition::Ack)).expect("acknowledged");
    let complete =
        |outcome, publication_deadline_ms| change(task.id, Transition::Complete { outcome, publication_deadline_ms });
    let refused = step(&mut guangzhou, T0 + HOUR_MS, tianhe.clone(), complete(CompletionOutcome::Warned, None));
    assert!(matches!(refused, Err(Rejection::Invalid { .. })), "an inspection's outcome: {refused:?}");
    let clock = complete(CompletionOutcome::NoProblemFound, Some(T0 + 500 * HOUR_MS));
    let refused = step(&mut guangzhou, T0 + HOUR_MS, tianhe.clone(), clock);
    assert!(matches!(refused, Err(Rejection::Invalid { .. })), "no publication clock here: {refused:?}");
    let done = step(&mut guangzhou, T0 + HOUR_MS, tianhe, complete(CompletionOutcome::NoProblemFound, None))
        .expect("the result entered")
        .task()
        .clone();
    let record = done.inspection.clone().unwrap();
    assert_eq!((record.result_entered_at_ms, record.publish_deadline_ms), (Some(T0 + HOUR_MS), None));
    let guangzhou_command = actor("gz", "440100", Role::Command);
    let publish = Action::Programme(Box::new(ProgrammeAction::PublishResult { task: task.id }));
    assert!(step(&mut guangzhou, T0 + HOUR_MS, guangzhou_command, publish).is_err(), "published by its organiser");

    // At the origin, only the group it went to reports a result, onto a drawn inspection.
    let enter = |task| {
        Action::Programme(Box::new(ProgrammeAction::EnterReportedResult {
            task,
            publish_deadline_ms: T0 + 500 * HOUR_MS,
        }))
    };
    let not_inspection = step(&mut province, T0 + HOUR_MS, peer_actor(bureau("440100")), enter(entry.task));
    assert!(matches!(not_inspection, Err(Rejection::Conflict { .. })), "{not_inspection:?}");
    let stranger = step(&mut province, T0 + HOUR_MS, peer_actor(bureau("440300")), enter(entry.task));
    assert!(matches!(stranger, Err(Rejection::Forbidden(_))), "{stranger:?}");
}
