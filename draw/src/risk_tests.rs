//! The entities' risk files and the yearly cap (`ledger::campaign::risk_files`), driven through
//! the ledger and the draw together: the files take over from the scan of every task without
//! changing what a draw reads, move with the events, and the cap keeps the entities inspected
//! this year out of the next untargeted draw, verifiably.

use ledger::campaign::risk_files::{RiskFilesAction, YearCap};
use ledger::campaign::{DrawInputs, DrawResult, ProgrammeAction, ProgrammeRecord, RiskClass};
use ledger::reference::Day;
use ledger::{Action, CompletionOutcome, DeadlineKind, Rejection, Role, Task, TaskChange, Transition, Uscc};

use crate::directory;
use crate::generate::generate;
use crate::tests::{actor, code, pool, spec, Desk, DAY_MS, T0, TIANHE};
use crate::{draw, verify, Mismatch};

/// A campaign of `spec` created by the planner and its beacon fixed by a second person: its id
/// and the inputs the beacon froze.
pub(crate) fn campaign_with_beacon(
    desk: &mut Desk,
    spec: ledger::campaign::CampaignSpec,
    beacon: &str,
) -> (u64, DrawInputs) {
    let planner = actor("gz-planner", "440100", Role::Command);
    let second = actor("gz-second", "440100", Role::Command);
    let created = desk.programme(&planner, ProgrammeAction::CreateCampaignOnTotal(Box::new(spec))).expect("created");
    let Some(ProgrammeRecord::Campaign(campaign)) = created.record else { panic!("a campaign") };
    let fix = ProgrammeAction::FixBeacon { campaign: campaign.id, value: beacon.into() };
    desk.programme(&second, fix).expect("beacon fixed");
    (campaign.id, desk.ledger.draw_inputs(campaign.id).expect("frozen inputs"))
}

/// Draws campaign `id` from `bytes` and commits it: the result and the inspections' tasks.
pub(crate) fn draw_and_commit(desk: &mut Desk, id: u64, bytes: &[u8]) -> (DrawResult, Vec<std::sync::Arc<Task>>) {
    let planner = actor("gz-planner", "440100", Role::Command);
    let inputs = desk.ledger.draw_inputs(id).expect("frozen inputs");
    let result = draw(ledger::Regions::compiled(), &inputs, bytes).expect("drawn");
    let record = ProgrammeAction::RecordDraw {
        campaign: id,
        result: Box::new(result.clone()),
        ack_deadline_ms: desk.stamp_ms + 3 * DAY_MS,
        complete_deadline_ms: desk.stamp_ms + 28 * DAY_MS,
    };
    let drawn = desk.programme(&planner, record).expect("the draw is committed");
    (result, drawn.tasks)
}

fn complete_with_finding(desk: &mut Desk, task: &Task) {
    let tianhe = actor("th-operator", TIANHE, Role::Operator);
    let change = |transition| {
        Action::ChangeTask(TaskChange {
            task: task.id, expected_version: None, note: "现场检查".into(), transition
        })
    };
    desk.apply(&tianhe, change(Transition::Ack)).expect("acknowledged");
    let complete =
        Transition::Complete { outcome: CompletionOutcome::Corrected, publication_deadline_ms: Some(T0 + 60 * DAY_MS) };
    desk.apply(&tianhe, change(complete)).expect("result entered");
}

fn keep(action: RiskFilesAction) -> ProgrammeAction {
    ProgrammeAction::RiskFiles(action)
}

fn uscc_of(task: &Task) -> Uscc {
    task.subject.uscc.clone().expect("a drawn entity has a USCC")
}

#[test]
fn risk_files_take_over_from_the_scan_and_the_yearly_cap_keeps_inspected_entities_out() {
    let planner = actor("gz-planner", "440100", Role::Command);
    let tianhe = actor("th-operator", TIANHE, Role::Operator);
    let system = actor("system", "440100", Role::System);
    let mut desk = Desk { ledger: ledger::Ledger::new(), stamp_ms: T0 };
    let bytes = generate(3_000, code(TIANHE), 21);
    let summary = directory::check(ledger::Regions::compiled(), &bytes).unwrap();
    let version = ProgrammeAction::RecordEntityDirectory {
        sha256: summary.sha256.clone(),
        entities: summary.entities,
        bytes: summary.bytes,
    };
    desk.programme(&planner, version).expect("directory version recorded");
    desk.programme(&planner, ProgrammeAction::EnrollInspectors(pool())).expect("enrolled");

    // A first campaign: one inspection finds something, another misses its acknowledgement.
    let (first, _) = campaign_with_beacon(&mut desk, spec(&summary.sha256), "first");
    let (_, first_tasks) = draw_and_commit(&mut desk, first, &bytes);
    complete_with_finding(&mut desk, &first_tasks[0]);
    let late = &first_tasks[1];
    let deadline_ms = late.handling.ack_deadline_ms.expect("an acknowledgement deadline");
    desk.stamp_ms = desk.stamp_ms.max(deadline_ms);
    let miss = Action::RecordMissedDeadline { task: late.id, kind: DeadlineKind::Ack, deadline_ms };
    desk.apply(&system, miss).expect("the miss is recorded");

    // A beacon fixed before the files are kept reads the histories by scanning every task.
    let (_, scanned) = campaign_with_beacon(&mut desk, spec(&summary.sha256), "scanned");
    assert!(!desk.ledger.risk_files().kept());
    let early_cap = desk.programme(&planner, keep(RiskFilesAction::SetCap { yearly_max: Some(1) }));
    assert!(matches!(early_cap, Err(Rejection::NotYet(_))), "no counts, no cap: {early_cap:?}");

    // The group's own process turns the files on, once; that entry files the whole history.
    assert!(matches!(desk.programme(&planner, keep(RiskFilesAction::Keep)), Err(Rejection::Forbidden(_))));
    desk.programme(&system, keep(RiskFilesAction::Keep)).expect("the files are kept");
    assert!(matches!(desk.programme(&system, keep(RiskFilesAction::Keep)), Err(Rejection::NothingToRecord(_))));
    let entities: std::collections::BTreeSet<Uscc> = first_tasks.iter().map(|task| uscc_of(task)).collect();
    assert_eq!(desk.ledger.risk_files().count(), entities.len() as u64, "one file per entity met");
    let copy = desk.ledger.copy_through_a_checkpoint_for_tests();
    assert_eq!(copy.digest(), desk.ledger.digest(), "the files survive a checkpoint");
    assert_eq!(copy.risk_file(&uscc_of(&first_tasks[0])), desk.ledger.risk_file(&uscc_of(&first_tasks[0])));

    // A beacon now reads the files, and reads the same histories.
    let (_, filed) = campaign_with_beacon(&mut desk, spec(&summary.sha256), "filed");
    assert_eq!(filed.histories, scanned.histories, "the files hold what the scan found");
    let found = desk.ledger.risk_file(&uscc_of(&first_tasks[0])).expect("a file");
    assert_eq!(found.findings, 1);
    assert_eq!(desk.ledger.risk_file(&uscc_of(late)).expect("a file").overdue_tasks, 1);
    let year = Day::beijing_of_ms(first_tasks[0].created_at_ms).year();
    assert_eq!(found.inspections_in(year), 1);
    assert_eq!(found.last_team.len(), 2, "the last team moved from the core into the file");

    // The cap: a command centre's, within its range.
    for refused in [Some(0), Some(ledger::campaign::risk_files::YEARLY_INSPECTIONS_CAP_MAX + 1)] {
        let set = desk.programme(&planner, keep(RiskFilesAction::SetCap { yearly_max: refused }));
        assert!(matches!(set, Err(Rejection::Invalid { .. })), "{refused:?}: {set:?}");
    }
    let by_operator = desk.programme(&tianhe, keep(RiskFilesAction::SetCap { yearly_max: Some(1) }));
    assert!(matches!(by_operator, Err(Rejection::Forbidden(_))));
    let set = desk.programme(&planner, keep(RiskFilesAction::SetCap { yearly_max: Some(1) })).expect("cap set");
    assert!(matches!(set.record, Some(ProgrammeRecord::InspectionCap(Some(ref cap))) if cap.yearly_max == 1));

    // An untargeted draw passes by every entity inspected this year, and says so in its seed.
    let mut every_entity = spec(&summary.sha256);
    every_entity.ratios.high_bp = 10_000;
    every_entity.ratios.normal_bp = 10_000;
    every_entity.ratios.low_bp = 10_000;
    let (capped, inputs) = campaign_with_beacon(&mut desk, every_entity.clone(), "capped");
    let cap = inputs.year_cap.clone().expect("the beacon froze the cap");
    assert_eq!((cap.year, cap.max), (year, 1));
    assert_eq!(cap.reached, entities.iter().cloned().collect::<Vec<_>>(), "every entity inspected this year");
    let (result, tasks) = draw_and_commit(&mut desk, capped, &bytes);
    assert!(result.inspections.iter().all(|i| !cap.has_reached(i.subject.uscc.as_ref().unwrap())));
    assert!(!result.inspections.is_empty() && result.entities_in_scope > result.eligible);
    let committed = desk.ledger.programme().campaign(capped).unwrap().draw.clone().unwrap();
    assert_eq!(committed.inputs.year_cap.as_ref(), Some(&cap), "the record's inputs hold the cap");
    verify(ledger::Regions::compiled(), &committed, &bytes).expect("the draw verifies with its cap");
    let mut without = (*committed).clone();
    without.inputs.year_cap = None;
    assert!(matches!(verify(ledger::Regions::compiled(), &without, &bytes), Err(Mismatch::Seed { .. })));
    let newly = desk.ledger.risk_file(&uscc_of(&tasks[0])).expect("a file for a newly inspected entity");
    assert_eq!(newly.inspections_in(year), 1);
    assert_eq!(newly.findings, 0);
    complete_with_finding(&mut desk, &tasks[0]);
    assert_eq!(desk.ledger.risk_file(&uscc_of(&tasks[0])).unwrap().findings, 1, "the event moved the file");

    // A targeted campaign on high-risk entities only is not held by the cap.
    let mut high = every_entity;
    high.targeted = true;
    high.risk_classes = vec![RiskClass::High];
    let (_, targeted) = campaign_with_beacon(&mut desk, high, "targeted");
    assert_eq!(targeted.year_cap, None);
    assert!(
        targeted.seed()
            != DrawInputs { year_cap: Some(YearCap { year, max: 1, reached: Vec::new() }), ..targeted.clone() }.seed()
    );
    let copy = desk.ledger.copy_through_a_checkpoint_for_tests();
    assert_eq!(copy.digest(), desk.ledger.digest());
    let decoded = copy.programme().campaign(capped).unwrap().draw.clone().unwrap();
    assert_eq!(decoded.inputs.year_cap, Some(cap), "the cap outlives a checkpoint");

    // A draw committed with an idempotency key: its stored answer is the same read back from a
    // core (the answer keeps the inputs as encoded, without the cap).
    let mut again = spec(&summary.sha256);
    again.ratios.high_bp = 10_000;
    let (keyed, inputs) = campaign_with_beacon(&mut desk, again, "keyed");
    assert!(inputs.year_cap.is_some());
    let result = draw(ledger::Regions::compiled(), &inputs, &bytes).expect("drawn");
    let tag = ledger::IdempotencyTag { key: "draw-keyed".into(), fingerprint: [7; 32] };
    let record = ProgrammeAction::RecordDraw {
        campaign: keyed,
        result: Box::new(result),
        ack_deadline_ms: desk.stamp_ms + 3 * DAY_MS,
        complete_deadline_ms: desk.stamp_ms + 28 * DAY_MS,
    };
    desk.stamp_ms += 1_000;
    let command = ledger::Command {
        stamp_ms: desk.stamp_ms,
        actor: planner.clone(),
        idempotency: Some(tag.clone()),
        action: Action::Programme(Box::new(record)),
    };
    desk.ledger.apply(&command).expect("the keyed draw is committed");
    let copy = desk.ledger.copy_through_a_checkpoint_for_tests();
    let kept = desk.ledger.idempotent_answer(&planner.user, &tag).expect("an answer kept");
    assert_eq!(copy.idempotent_answer(&planner.user, &tag), Some(kept), "the same answer after a checkpoint");
}

mod credit_risk_classes {
    use ledger::campaign::register::{ChangeKind, RegisterChange, RegisteredEntity};
    use ledger::campaign::{EntityHistory, RiskClass};
    use ledger::Regions;

    use super::*;
    use crate::directory::{Columns, HEADER_WITH_RISK_CLASS};
    use crate::generate::synthetic_uscc;
    use crate::register::freeze;
    use crate::risk::RiskScorer;

    fn classify(serial: u64, uscc: &Uscc, class: Option<RiskClass>) -> RegisterChange {
        let kind = ChangeKind::classifying(class);
        RegisterChange { id: format!("CR-{serial}"), kind, uscc: uscc.clone(), entity: None }
    }

    fn establish(serial: u64, kind: ChangeKind, name: &str) -> RegisterChange {
        let entity = RegisteredEntity {
            name: name.into(),
            region: code(TIANHE),
            industry: "retail".into(),
            credit_status: "normal".into(),
            address: String::new(),
        };
        let uscc = synthetic_uscc(code(TIANHE), serial);
        RegisterChange { id: format!("R-{serial}-{kind}"), kind, uscc, entity: Some(entity) }
    }

    fn class_column(text: &str, uscc: &Uscc) -> Option<String> {
        let line = text.lines().find(|line| line.starts_with(uscc.as_str()))?;
        Some(line.rsplit(',').next().unwrap_or_default().to_owned())
    }

    #[test]
    fn classifications_fold_into_the_frozen_file_and_an_amendment_keeps_the_class() {
        let regions = Regions::compiled_shared();
        let base = generate(40, code(TIANHE), 5);
        let rows: Vec<Uscc> =
            directory::rows(regions, &base).unwrap().map(|(_, row)| Uscc::parse(row.unwrap().uscc).unwrap()).collect();
        // Without classifications the file keeps the plain columns (and its bytes).
        let plain = vec![establish(9_000, ChangeKind::Establish, "新设公司甲")];
        let mut out = Vec::new();
        freeze(&base, &plain, &mut out).unwrap();
        assert!(out.starts_with(format!("{}\n", crate::directory::HEADER).as_bytes()));

        let new_entity = synthetic_uscc(code(TIANHE), 9_001);
        let mut amend = establish(0, ChangeKind::Amend, "改名后的公司");
        amend.uscc = rows[0].clone();
        let changes = vec![
            classify(1, &rows[0], Some(RiskClass::High)),
            amend,
            classify(2, &rows[1], Some(RiskClass::Low)),
            classify(3, &rows[2], Some(RiskClass::High)),
            classify(4, &rows[2], None),
            establish(9_001, ChangeKind::Establish, "新设公司乙"),
            classify(5, &new_entity, Some(RiskClass::Normal)),
            // About an entity the register does not hold: no row.
            classify(6, &synthetic_uscc(code(TIANHE), 9_999), Some(RiskClass::High)),
        ];
        let mut out = Vec::new();
        let frozen = freeze(&base, &changes, &mut out).unwrap();
        assert_eq!(frozen, directory::check(regions, &out).expect("a frozen file with classes is a directory"));
        assert_eq!(frozen.entities, 41);
        assert_eq!(Columns::of_file(&out), Columns::WithRiskClass);
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.starts_with(HEADER_WITH_RISK_CLASS));
        assert_eq!(class_column(&text, &rows[0]).as_deref(), Some("high"), "the amendment kept the class");
        assert!(text.contains("改名后的公司"));
        assert_eq!(class_column(&text, &rows[1]).as_deref(), Some("low"));
        assert_eq!(class_column(&text, &rows[2]).as_deref(), Some(""), "withdrawn");
        assert_eq!(class_column(&text, &rows[3]).as_deref(), Some(""), "never classed");
        assert_eq!(class_column(&text, &new_entity).as_deref(), Some("normal"));
        assert!(!text.contains(synthetic_uscc(code(TIANHE), 9_999).as_str()));
        // Frozen again from this file with no change: the same bytes.
        let mut again = Vec::new();
        freeze(&out, &[], &mut again).unwrap();
        assert_eq!(again, out);
        // A class the column does not know is refused at import.
        let bad = text.replacen(",high\n", ",urgent\n", 1);
        let refused = directory::check(regions, bad.as_bytes()).expect_err("refused");
        assert!(refused.to_string().contains("risk_class"), "{refused}");
    }

    #[test]
    fn an_assessed_class_replaces_the_columns_points_and_events_still_raise_it() {
        let regions = Regions::compiled();
        let scoring = crate::tests::scoring();
        let mut scorer = RiskScorer::new(regions, &scoring);
        // Serious violation and drugs: high by the columns' points.
        let row = |risk_class| directory::EntityRow {
            uscc: "91440106MA5D0001X3",
            name: "某公司",
            region: code(TIANHE),
            industry: "drugs",
            credit_status: "serious_violation",
            address: "",
            risk_class,
        };
        assert_eq!(scorer.class(&row(None), None), RiskClass::High);
        assert_eq!(scorer.class(&row(Some(RiskClass::Low)), None), RiskClass::Low, "the system's class stands");
        assert_eq!(scorer.class(&row(Some(RiskClass::Normal)), None), RiskClass::Normal);
        let found = |findings| EntityHistory {
            uscc: Uscc::parse("91440106MA5D0001X3").unwrap_or_else(|_| synthetic_uscc(code(TIANHE), 1)),
            findings,
            complaints: 0,
            overdue_tasks: 0,
            last_team: Vec::new(),
        };
        assert_eq!(scorer.class(&row(Some(RiskClass::Low)), Some(&found(1))), RiskClass::Normal, "a finding raises");
        assert_eq!(scorer.class(&row(Some(RiskClass::Normal)), Some(&found(2))), RiskClass::High);
    }
}
