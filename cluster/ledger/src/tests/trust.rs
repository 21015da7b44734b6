//! What another group may send is checked as a whole before anything changes: the review's
//! payloads (../shared/reviews/security-2026-12.md, findings 1, 2, 8 and 22) are refused as
//! `Rejection`s, leave the ledger as it was, and keep its invariants, so a snapshot of it
//! always loads again.

use crate::task::TimelineEntry;
use crate::*;

const HOUR_MS: u64 = 3_600_000;
const T0: u64 = 1_780_000_000_000;

fn bureau(code: &str) -> BureauCode {
    BureauCode::parse_compiled(code).expect(code)
}

fn apply(ledger: &mut Ledger, stamp_ms: u64, actor: Actor, action: Action) -> CommandResult {
    let result = ledger.apply(&Command { stamp_ms, actor, idempotency: None, action });
    ledger.check_invariants().expect("the ledger keeps its invariants");
    let decoded = ledger.copy_through_a_checkpoint_for_tests();
    decoded.check_invariants().expect("a copy of it loads");
    result
}

fn lead(region: &str) -> NewTask {
    super::federation::lead(region, Routing::Keep)
}

fn handover(sender: &str, origin_bureau: &str, assignee: &str, seq: u64) -> Handover {
    let task = lead(assignee);
    Handover {
        forward: ForwardId { origin_group: bureau(sender), seq },
        purpose: HandoverPurpose::Dispatch,
        origin_task: TaskId(1),
        origin_bureau: bureau(origin_bureau),
        kind: task.kind,
        severity: Severity::Critical,
        title: task.title,
        description: String::new(),
        subject: task.subject,
        source: task.source,
        dispatch: Some(DispatchTerms {
            assignee: bureau(assignee),
            ack_deadline_ms: T0 + HOUR_MS,
            complete_deadline_ms: T0 + 48 * HOUR_MS,
        }),
        note: String::new(),
        sent_by: "gd-command".to_owned(),
    }
}

fn receive(ledger: &mut Ledger, sender: &str, group: &str, message: Message) -> CommandResult {
    let action = Action::Receive { message: Box::new(message), group: bureau(group), placement: Placement::Keep };
    apply(ledger, T0, peer_actor(bureau(sender)), action)
}

/// Guangzhou's ledger with the province's dispatch to Tianhe received: the task's id.
fn guangzhou_with_a_dispatch() -> (Ledger, TaskId) {
    let mut guangzhou = Ledger::new();
    let applied =
        receive(&mut guangzhou, "440000", "440100", Message::Handover(handover("440000", "440000", "440106", 1)))
            .expect("a dispatch from the province is received");
    (guangzhou, applied.task().id)
}

/// The province's ledger with a task dispatched across to Tianhe, not yet delivered: its id.
fn province_with_a_dispatch_across() -> (Ledger, TaskId) {
    let mut province = Ledger::new();
    let id = super::federation::dispatch_across(&mut province);
    (province, id)
}

/// The same, delivered and receipted: the record's id.
fn province_with_a_tracking_record() -> (Ledger, TaskId) {
    let (mut province, id) = province_with_a_dispatch_across();
    let seq = province.outbox().next().expect("the handover waits").seq;
    let courier = Actor { user: "courier".into(), bureau: bureau("440000"), role: Role::System };
    apply(&mut province, T0, courier, Action::RecordReceipt { seq, answer: Receipt::Accepted(TaskId(7)) })
        .expect("receipted");
    (province, id)
}

/// A report from Guangzhou on the province's record, one version past what it knows.
fn report_on(province: &Ledger, id: TaskId) -> StatusReport {
    let record = province.task(id).expect("exists");
    let remote = record.remote.clone().expect("tracks a handover");
    let mut fields = record.handling.clone();
    fields.state = TaskState::Acknowledged;
    fields.acked_at_ms = Some(T0 + HOUR_MS / 2);
    StatusReport {
        forward: remote.forward,
        task: TaskId(7),
        version: remote.mirrored_version + 2,
        instructions_handled: 0,
        fields,
        timeline: vec![TimelineEntry {
            version: remote.mirrored_version + 2,
            at_ms: T0,
            action: TimelineAction::Ack,
            actor_user: "li".into(),
            actor_bureau: bureau("440106"),
            note: String::new(),
            assignee_bureau: None,
            outcome: None,
        }],
    }
}

fn mirror(province: &mut Ledger, report: StatusReport) -> CommandResult {
    apply(province, T0 + HOUR_MS, peer_actor(bureau("440100")), Action::MirrorStatus(Box::new(report)))
}

#[test]
fn an_instruction_that_would_hand_the_task_over_is_refused_and_changes_nothing() {
    // Finding 1: a Designate instruction reached `unreachable!` in apply on every replica.
    let (mut guangzhou, id) = guangzhou_with_a_dispatch();
    let before = guangzhou.task(id);
    let forward = ForwardId { origin_group: bureau("440000"), seq: 1 };
    let g = |code| bureau(code);
    let not_down = [
        Transition::Designate { to_group: g("330000"), from_group: g("440100") },
        Transition::Dispute { to_group: g("440000"), from_group: g("440100") },
        Transition::Forward { to_group: g("330000"), from_group: g("440100") },
        Transition::DispatchAcross {
            assignee: g("440106"),
            ack_deadline_ms: T0 + HOUR_MS,
            complete_deadline_ms: T0 + 2 * HOUR_MS,
            to_group: g("440300"),
            from_group: g("440100"),
        },
        Transition::Dispatch {
            assignee: g("440111"),
            ack_deadline_ms: T0 + HOUR_MS,
            complete_deadline_ms: T0 + 2 * HOUR_MS,
        },
        Transition::Ack,
        Transition::Complete { outcome: CompletionOutcome::Warned, publication_deadline_ms: None },
        Transition::Pause,
    ];
    for transition in not_down {
        let instruction = Instruction { forward, number: 1, transition, note: String::new(), sent_by: "x".into() };
        let answer = receive(&mut guangzhou, "440000", "440100", Message::Instruction(instruction));
        assert!(matches!(answer, Err(Rejection::Forbidden(_))), "{answer:?}");
        assert_eq!(guangzhou.task(id), before, "a refused instruction changes nothing");
    }
    // The review's decisions still flow down, recorded as the sending group's.
    let cancel = Instruction {
        forward,
        number: 1,
        transition: Transition::Cancel,
        note: "撤销".into(),
        sent_by: "zhang".into(),
    };
    let cancelled =
        receive(&mut guangzhou, "440000", "440100", Message::Instruction(cancel)).expect("a cancel flows down");
    assert_eq!(cancelled.task().handling.state, TaskState::Cancelled);
    assert_eq!(cancelled.task().timeline.last().map(|e| e.actor_user.as_str()), Some("group:440000"));
}

#[test]
fn a_handover_is_believed_only_for_bureaus_of_the_sending_groups_tree() {
    // Finding 8: Zhejiang planted a "dispatched" task in the name of the Guangdong province.
    let mut guangzhou = Ledger::new();
    let planted = handover("330000", "440000", "440106", 1);
    let answer = receive(&mut guangzhou, "330000", "440100", Message::Handover(planted));
    assert!(matches!(answer, Err(Rejection::Invalid { ref field, .. }) if field == "origin_bureau"), "{answer:?}");
    // A sibling city cannot dispatch into Guangzhou, even for its own bureau.
    let sideways = handover("440300", "440300", "440106", 1);
    let answer = receive(&mut guangzhou, "440300", "440100", Message::Handover(sideways));
    assert!(answer.is_err(), "{answer:?}");
    // Nor may the province dispatch to a bureau this group does not hold.
    let elsewhere = handover("440000", "440000", "440305", 2);
    assert!(receive(&mut guangzhou, "440000", "440100", Message::Handover(elsewhere)).is_err());
    // A lead's handover carries no dispatch terms; a dispatch always does.
    let mut lead_with_terms = handover("440000", "440000", "440106", 3);
    lead_with_terms.purpose = HandoverPurpose::Jurisdiction;
    assert!(receive(&mut guangzhou, "440000", "440100", Message::Handover(lead_with_terms)).is_err());
    let mut dispatch_without = handover("440000", "440000", "440106", 4);
    dispatch_without.dispatch = None;
    assert!(receive(&mut guangzhou, "440000", "440100", Message::Handover(dispatch_without)).is_err());
    assert_eq!(guangzhou.task_count(), 0);

    // The province's own dispatch is received, with the sending group on record.
    let genuine = handover("440000", "440000", "440106", 5);
    let task =
        receive(&mut guangzhou, "440000", "440100", Message::Handover(genuine)).expect("received").task().clone();
    assert_eq!(task.timeline[0].actor_user, "group:440000");
    assert_eq!(task.timeline[0].actor_bureau, bureau("440000"));
}

#[test]
fn a_report_whose_fields_disagree_is_refused_whole() {
    // Finding 2: a "completed" task without assignee or outcome made every node panic when it
    // next loaded a snapshot.
    let (mut province, id) = province_with_a_tracking_record();
    let before = province.task(id);
    let refused = |province: &mut Ledger, report: StatusReport| {
        let answer = mirror(province, report);
        assert!(matches!(answer, Err(Rejection::Invalid { .. })), "{answer:?}");
        assert_eq!(province.task(id), before, "a refused report changes nothing");
    };

    let mut poisoned = report_on(&province, id);
    poisoned.fields.state = TaskState::Completed;
    poisoned.fields.assignee_bureau = None;
    poisoned.fields.acked_at_ms = None;
    poisoned.fields.outcome = None;
    refused(&mut province, poisoned);

    let mut no_outcome = report_on(&province, id);
    no_outcome.fields.state = TaskState::Returned;
    refused(&mut province, no_outcome);

    let mut outside = report_on(&province, id);
    outside.fields.assignee_bureau = Some(bureau("440305"));
    refused(&mut province, outside);

    let mut far = report_on(&province, id);
    far.fields.complete_deadline_ms = Some(u64::MAX);
    refused(&mut province, far);

    // Finding 22: copied timeline entries are bounded like a client's text, and a bad one is
    // refused before the record's version moves.
    let mut long_user = report_on(&province, id);
    long_user.timeline[0].actor_user = "x".repeat(10_000);
    refused(&mut province, long_user);

    let mut long_note = report_on(&province, id);
    long_note.timeline[0].note = "长".repeat(crate::limits::NOTE_CHARS_MAX + 1);
    refused(&mut province, long_note);

    let sound = report_on(&province, id);
    let mirrored = mirror(&mut province, sound).expect("a sound report is mirrored");
    assert_eq!(mirrored.task().handling.state, TaskState::Acknowledged);
}

#[test]
fn a_uscc_is_checked_when_it_is_decoded() {
    // Finding 22: `Uscc` derived `Deserialize`, so peers' USCCs skipped the check.
    assert!(serde_json::from_str::<Uscc>("\"91350100M000100Y43\"").is_ok());
    for bad in ["\"91350100M000100Y44\"", "\"x\"", "\"91350100m000100y43\""] {
        assert!(serde_json::from_str::<Uscc>(bad).is_err(), "{bad}");
    }
    let json = serde_json::to_string(&Message::Handover(handover("440000", "440000", "440106", 1))).expect("encodes");
    let forged = json.replace("\"uscc\":null", "\"uscc\":\"NOT-A-USCC\"");
    assert_ne!(forged, json, "the test rewrote the USCC");
    assert!(serde_json::from_str::<Message>(&forged).is_err());
}

#[test]
fn a_ledger_that_breaks_an_invariant_is_an_error_not_a_panic() {
    let ledger = Ledger::broken_for_tests();
    let violation = ledger.check_invariants().expect_err("the invariants fail");
    assert!(violation.to_string().contains("assignee"), "{violation}");
}

#[test]
fn a_report_cannot_decide_for_the_dispatcher_nor_come_before_the_receipt() {
    let (mut province, id) = province_with_a_tracking_record();
    let before = province.task(id);
    // Only the dispatcher closes, cancels or returns; the target keeps the assignee it was given.
    for state in [TaskState::Closed, TaskState::Cancelled, TaskState::Returned, TaskState::Created] {
        let mut decided = report_on(&province, id);
        decided.fields.state = state;
        decided.fields.outcome = Some(CompletionOutcome::Warned);
        let answer = mirror(&mut province, decided);
        assert!(matches!(answer, Err(Rejection::Invalid { .. })), "{state}: {answer:?}");
    }
    let mut moved = report_on(&province, id);
    moved.fields.assignee_bureau = Some(bureau("440111"));
    assert!(mirror(&mut province, moved).is_err());
    // Nor speak for a bureau above it, nor count past the timeline, nor tell of the future.
    let mut above = report_on(&province, id);
    above.timeline[0].actor_bureau = bureau("440000");
    assert!(mirror(&mut province, above).is_err());
    let mut counted = report_on(&province, id);
    counted.fields.extensions_granted = u32::MAX;
    assert!(mirror(&mut province, counted).is_err());
    let mut future = report_on(&province, id);
    future.fields.last_feedback_ms = Some(u64::MAX);
    assert!(mirror(&mut province, future).is_err());
    assert_eq!(province.task(id), before);

    // Before the receipt, the target could still refuse the handover: its report waits.
    let (mut early, id) = province_with_a_dispatch_across();
    let premature = report_on(&early, id);
    assert!(matches!(mirror(&mut early, premature), Err(Rejection::NotYet(_))));
}

#[test]
fn disputes_come_from_below_and_designations_from_above() {
    let mut dispute = handover("440300", "440300", "440106", 1);
    dispute.purpose = HandoverPurpose::Dispute;
    dispute.dispatch = None;
    let placement = Placement::DesignateBy(T0 + 100 * HOUR_MS);
    let action = |message: Handover, group: &str| Action::Receive {
        message: Box::new(Message::Handover(message)),
        group: bureau(group),
        placement,
    };
    // Shenzhen disputes at the province (its superior): accepted; at Guangzhou (a sibling): not.
    let mut province = Ledger::new();
    apply(&mut province, T0, peer_actor(bureau("440300")), action(dispute.clone(), "440000")).expect("from below");
    let mut guangzhou = Ledger::new();
    let sideways = apply(&mut guangzhou, T0, peer_actor(bureau("440300")), action(dispute, "440100"));
    assert!(matches!(sideways, Err(Rejection::Forbidden(_))), "{sideways:?}");

    let mut designation = handover("440100", "440100", "440106", 2);
    designation.purpose = HandoverPurpose::Designation;
    designation.dispatch = None;
    let keep = |message: Handover| Action::Receive {
        message: Box::new(Message::Handover(message)),
        group: bureau("440000"),
        placement: Placement::Keep,
    };
    let upward = apply(&mut province, T0, peer_actor(bureau("440100")), keep(designation));
    assert!(matches!(upward, Err(Rejection::Forbidden(_))), "a city does not designate its province: {upward:?}");
}

#[test]
fn a_report_keeps_the_dispatchers_terms_and_escalations_up_the_assignees_tree() {
    // The second review: a report moved the completion deadline 400 days on, set the dispatch
    // to 1970, claimed four billion instructions handled, and escalated to another province.
    let (mut province, id) = province_with_a_tracking_record();
    let before = province.task(id);
    let record = before.clone().expect("the record");
    let refused = |province: &mut Ledger, report: StatusReport, what: &str| {
        let answer = mirror(province, report);
        assert!(matches!(answer, Err(Rejection::Invalid { .. })), "{what}: {answer:?}");
        assert_eq!(province.task(id), before, "{what} changed the record");
    };
    let mut later = report_on(&province, id);
    later.fields.complete_deadline_ms = record.handling.complete_deadline_ms.map(|d| d + 400 * 24 * HOUR_MS);
    refused(&mut province, later, "a deadline moved without a resume");
    let mut granted = report_on(&province, id);
    granted.fields.extensions_granted = 1;
    refused(&mut province, granted, "an extension nobody granted");
    let mut handled = report_on(&province, id);
    handled.instructions_handled = 4_000_000_000;
    refused(&mut province, handled, "instructions never sent");
    let mut early = report_on(&province, id);
    early.fields.acked_at_ms = Some(0);
    early.fields.state = TaskState::Acknowledged;
    refused(&mut province, early, "an ack long before the dispatch");
    let mut escalated = report_on(&province, id);
    escalated.fields.escalated_to = vec![bureau("330000")];
    refused(&mut province, escalated, "an escalation out of the assignee's tree");
    // What the dispatcher recorded of its dispatch stays, whatever the target's clock said.
    let mut sound = report_on(&province, id);
    sound.fields.dispatched_at_ms = Some(0);
    sound.fields.escalated_to = vec![bureau("440100")];
    let mirrored = mirror(&mut province, sound).expect("mirrored").task().clone();
    assert_eq!(mirrored.handling.dispatched_at_ms, record.handling.dispatched_at_ms);
    assert_eq!(mirrored.handling.escalated_to, vec![bureau("440100")]);
}

#[test]
fn a_report_on_a_lead_handed_over_for_good_names_who_says_what() {
    // The second review: Guangzhou, holding a lead the province forwarded for good, reported a
    // "cancel by gd-command (440000)". It is now recorded as Guangzhou's account of it.
    let mut province = Ledger::new();
    let zhang = Actor { user: "zhang".into(), bureau: bureau("440000"), role: Role::Command };
    let routing = Routing::ForwardTo { to_group: bureau("440100"), from_group: bureau("440000") };
    let lead = super::federation::lead("440106", routing);
    let id = apply(&mut province, T0, zhang, Action::CreateTask(lead)).unwrap().task().id;
    let seq = province.outbox().next().expect("the handover waits").seq;
    let courier = Actor { user: "courier".into(), bureau: bureau("440000"), role: Role::System };
    apply(&mut province, T0, courier, Action::RecordReceipt { seq, answer: Receipt::Accepted(TaskId(3)) }).unwrap();
    let record = province.task(id).unwrap().clone();
    let entry = |version: u64, user: &str, bureau_code: &str| TimelineEntry {
        version,
        at_ms: T0,
        action: TimelineAction::Feedback,
        actor_user: user.into(),
        actor_bureau: bureau(bureau_code),
        note: String::new(),
        assignee_bureau: None,
        outcome: None,
    };
    let report = StatusReport {
        forward: record.remote.as_ref().unwrap().forward,
        task: TaskId(3),
        version: 3,
        instructions_handled: 0,
        fields: record.handling.clone(),
        timeline: vec![entry(2, "gd-command", "440000"), entry(3, "tianhe-operator", "440106")],
    };
    let mirrored = mirror(&mut province, report).expect("mirrored").task().clone();
    let actors: Vec<&str> = mirrored.timeline.iter().rev().take(2).map(|e| e.actor_user.as_str()).collect();
    assert_eq!(actors, ["tianhe-operator", "group:440100/gd-command"]);
}

#[test]
fn a_report_moves_a_dispatched_task_only_forward_and_its_deadline_only_by_a_real_pause() {
    // The third review: a report took a completed record back to dispatched (wiping the ack),
    // and a made-up resume pushed the deadline 300 days on with the steps dated a day early.
    let (mut province, id) = province_with_a_tracking_record();
    let mut completed = report_on(&province, id);
    completed.fields.state = TaskState::Completed;
    completed.fields.outcome = Some(CompletionOutcome::Warned);
    completed.fields.completed_at_ms = Some(T0 + HOUR_MS);
    mirror(&mut province, completed).expect("acked and completed");
    let before = province.task(id);
    let refused = |province: &mut Ledger, report: StatusReport, what: &str| {
        let answer = mirror(province, report);
        assert!(matches!(answer, Err(Rejection::Invalid { .. })), "{what}: {answer:?}");
        assert_eq!(province.task(id), before, "{what} changed the record");
    };
    let next = |province: &Ledger| {
        let mut report = report_on(province, id);
        report.fields = province.task(id).unwrap().handling.clone();
        report
    };
    let mut backwards = next(&province);
    backwards.fields.state = TaskState::Dispatched;
    backwards.fields.acked_at_ms = None;
    refused(&mut province, backwards, "completed back to dispatched");
    let mut resumed = next(&province);
    resumed.fields.complete_deadline_ms = resumed.fields.complete_deadline_ms.map(|d| d + 300 * 24 * HOUR_MS);
    resumed.timeline[0].action = TimelineAction::Resume;
    refused(&mut province, resumed, "a resume without a pause");
    let mut backdated = next(&province);
    backdated.fields.completed_at_ms = Some(T0 - 23 * HOUR_MS);
    refused(&mut province, backdated, "a completion a day before the dispatch");
}

#[test]
fn a_group_above_speaks_only_for_its_own_bureaus_not_the_origins() {
    // The third review: Guangzhou sent a lead up to the province; the province reported a
    // dispatch "by gz-command (440100)". Guangzhou's bureaus lie in the province's tree, but
    // are not the province's to speak for.
    assert!(!crate::federation::speaks_for(Regions::compiled(), bureau("440100"), bureau("440000"), bureau("440100")));
    assert!(!crate::federation::speaks_for(Regions::compiled(), bureau("440106"), bureau("440000"), bureau("440100")));
    assert!(crate::federation::speaks_for(Regions::compiled(), bureau("441900"), bureau("440000"), bureau("440100")));
    // Sent down, the target speaks for its part of the origin's tree.
    assert!(crate::federation::speaks_for(Regions::compiled(), bureau("440106"), bureau("440100"), bureau("440000")));
    assert!(!crate::federation::speaks_for(Regions::compiled(), bureau("441900"), bureau("440100"), bureau("440000")));
}

#[test]
fn a_core_whose_counters_could_run_out_is_refused() {
    // In an empty ledger's core the task counter (1, one varint byte) follows the task count (0,
    // one byte) and the records digest (four zero words, a byte each).
    const NEXT_TASK_ID_AT: usize = 1 + 4;
    let with_next_task_id = |value: u64| {
        let empty = Ledger::new().encode_core();
        assert_eq!(empty[NEXT_TASK_ID_AT], 1, "the task counter of an empty ledger");
        let mut core = empty[..NEXT_TASK_ID_AT].to_vec();
        core.extend(crate::codec::encode(&value).expect("a counter encodes"));
        core.extend(&empty[NEXT_TASK_ID_AT + 1..]);
        Ledger::from_core(&core, std::sync::Arc::new(crate::MemoryRecords::default())).expect("decodes")
    };
    let zero = with_next_task_id(0).check_core().expect_err("refused");
    assert!(zero.to_string().contains("starts at 1"), "the test writes the task counter: {zero}");
    with_next_task_id(crate::limits::COUNTER_MAX).check_core().expect("the largest counter loads");
    let error = with_next_task_id(u64::MAX).check_core().expect_err("refused");
    assert!(error.to_string().contains("could run out"), "{error}");
}
