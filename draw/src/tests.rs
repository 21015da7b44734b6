//! The draw and its verification, and the ledger's side of a campaign, driven together: the
//! ledger derives the inputs, this crate draws, the ledger checks and commits.

use std::collections::{BTreeMap, BTreeSet};

use ledger::campaign::{
    ceil_ratio, CampaignSpec, DrawInputs, DrawRecord, DrawResult, InspectionItem, Inspector, InspectorMode,
    ProgrammeAction, ProgrammeRecord, PublicResult, RiskClass, RiskRatios, RiskScoring,
};
use ledger::{
    Action, Actor, BureauCode, Command, CompletionOutcome, Ledger, Regions, Rejection, Role, TaskId, TaskKind,
    TaskState, Uscc,
};

use crate::directory;
use crate::generate::generate;
use crate::{draw, verify, Mismatch};

pub(crate) const DAY_MS: u64 = 24 * 60 * 60 * 1000;
pub(crate) const T0: u64 = 1_780_000_000_000;
/// Tianhe district, Guangzhou: a county-level bureau.
pub(crate) const TIANHE: &str = "440106";

pub(crate) fn code(text: &str) -> BureauCode {
    BureauCode::parse_compiled(text).expect("a real region")
}

pub(crate) fn actor(user: &str, bureau: &str, role: Role) -> Actor {
    Actor { user: user.into(), bureau: code(bureau), role }
}

fn item(code: &str, industries: &[&str], expertise: &str) -> InspectionItem {
    InspectionItem {
        code: code.into(),
        name: format!("事项{code}"),
        industries: industries.iter().map(|s| s.to_string()).collect(),
        expertise: expertise.into(),
    }
}

pub(crate) fn scoring() -> RiskScoring {
    RiskScoring {
        credit_points: vec![("abnormal".into(), 30), ("serious_violation".into(), 60)],
        industry_points: vec![("food_production".into(), 20), ("drugs".into(), 25), ("catering".into(), 10)],
        region_points: Vec::new(),
        points_per_finding: 20,
        points_per_complaint: 10,
        points_per_overdue_task: 10,
        high_from: 50,
        low_below: 10,
    }
}

fn inspector(id: &str, bureau: &str, station: Option<&str>, expertise: &[&str]) -> Inspector {
    Inspector {
        id: id.into(),
        name: format!("检查员{id}"),
        bureau: code(bureau),
        station: station.map(Into::into),
        expertise: expertise.iter().map(|s| s.to_string()).collect(),
        qualified: true,
        active: true,
        enrolled_at_ms: 0,
        retired_at_ms: None,
    }
}

pub(crate) fn spec(directory_sha: &str) -> CampaignSpec {
    CampaignSpec {
        name: "2026年餐饮食品专项抽查".into(),
        bureau: code("440100"),
        items: vec![item("F1", &["catering", "food_production"], "food"), item("G1", &[], "licensing")],
        scope_region: code(TIANHE),
        targeted: false,
        industries: Vec::new(),
        risk_classes: Vec::new(),
        ratios: RiskRatios { high_bp: 2_000, normal_bp: 500, low_bp: 300 },
        inspector_mode: InspectorMode::WholeBureau,
        inspectors_per_inspection: 2,
        scoring: scoring(),
        entity_directory: directory_sha.into(),
        complete_deadline_ms: None,
    }
}

/// A pool large enough for any team: office and station inspectors with both expertises.
pub(crate) fn pool() -> Vec<Inspector> {
    (0..12)
        .map(|n| {
            let station = (n % 3 != 0).then_some(if n % 2 == 0 { "石牌所" } else { "天河南所" });
            let expertise: &[&str] = match n % 3 {
                0 => &["food", "licensing"],
                1 => &["food"],
                _ => &["licensing"],
            };
            inspector(&format!("TH{n:03}"), TIANHE, station, expertise)
        })
        .collect()
}

fn inputs(directory_bytes: &[u8], beacon: &str) -> DrawInputs {
    DrawInputs {
        campaign: 1,
        spec: spec(&directory::sha256_hex(directory_bytes)),
        beacon: beacon.into(),
        pool: pool(),
        conflicts: Vec::new(),
        histories: Vec::new(),
        year_cap: None,
    }
}

fn record(inputs: DrawInputs, result: DrawResult) -> DrawRecord {
    DrawRecord {
        inputs,
        result,
        ack_deadline_ms: 0,
        complete_deadline_ms: 0,
        drawn_at_ms: 0,
        drawn_by: "t".into(),
        tasks: Vec::new(),
    }
}

#[test]
fn a_generated_directory_is_valid_and_deterministic() {
    let bytes = generate(2_000, code("440100"), 7);
    let summary = directory::check(Regions::compiled(), &bytes).expect("valid");
    assert_eq!(summary.entities, 2_000);
    let by_region = directory::entities_by_region(&bytes);
    assert_eq!(by_region.values().sum::<u64>(), 2_000, "every entity counted once");
    assert!(by_region.keys().all(|region| Regions::compiled().is_within(*region, code("440100"))));
    assert_eq!(generate(2_000, code("440100"), 7), bytes, "the same seed gives the same file");
    let broken = String::from_utf8(bytes.clone()).unwrap().replacen("440", "44X", 3).into_bytes();
    let error = directory::check(Regions::compiled(), &broken).expect_err("a broken USCC or region");
    assert!(error.bad_rows >= 1);
    // A USCC twice: refused, naming the line of the repeat.
    let text = String::from_utf8(bytes).unwrap();
    let second_row = text.lines().nth(2).unwrap().to_owned();
    let repeated = format!("{text}{second_row}\n");
    let error = directory::check(Regions::compiled(), repeated.as_bytes()).expect_err("a repeated USCC");
    assert_eq!(error.bad_rows, 1);
    assert_eq!(error.errors[0].line, 2_002, "{error}");
    assert!(error.errors[0].reason.contains("more than once"));
}

#[test]
fn a_draw_is_reproducible_and_verifies() {
    let bytes = generate(5_000, code(TIANHE), 1);
    let inputs = inputs(&bytes, "beacon-2026-12-02");
    let first = draw(Regions::compiled(), &inputs, &bytes).expect("draw");
    assert_eq!(draw(Regions::compiled(), &inputs, &bytes).expect("again"), first, "a draw is a function of its inputs");
    assert!(!first.inspections.is_empty());
    let verified = verify(Regions::compiled(), &record(inputs.clone(), first.clone()), &bytes).expect("verifies");
    assert_eq!(verified.inspections, first.inspections.len());
    // Another beacon gives another draw.
    let other = draw(Regions::compiled(), &DrawInputs { beacon: "another".into(), ..inputs }, &bytes).expect("draw");
    assert_ne!(other.inspections, first.inspections);
}

#[test]
fn tampering_fails_verification() {
    let bytes = generate(3_000, code(TIANHE), 2);
    let inputs = inputs(&bytes, "beacon");
    let result = draw(Regions::compiled(), &inputs, &bytes).expect("draw");

    // One changed entity in the directory file.
    let text = String::from_utf8(bytes.clone()).unwrap();
    let tampered_dir = text.replacen("有限公司1,", "有限公司X,", 1).into_bytes();
    assert!(matches!(
        verify(Regions::compiled(), &record(inputs.clone(), result.clone()), &tampered_dir),
        Err(Mismatch::Directory { .. })
    ));

    // A beacon changed after the fact: the committed seed no longer follows.
    let tampered_inputs = DrawInputs { beacon: "chosen later".into(), ..inputs.clone() };
    assert!(matches!(
        verify(Regions::compiled(), &record(tampered_inputs, result.clone()), &bytes),
        Err(Mismatch::Seed { .. })
    ));

    // A seed recomputed to match changed inputs, with the old selection kept: the selection is wrong.
    let mut ratios = inputs.clone();
    ratios.spec.ratios.high_bp = 10_000;
    let mut forged = result.clone();
    forged.seed = ledger::campaign::hex(&ratios.seed());
    assert!(matches!(verify(Regions::compiled(), &record(ratios, forged), &bytes), Err(Mismatch::Result(_))));

    // A swapped entity in the result.
    let mut swapped = result.clone();
    swapped.inspections[0].inspectors.reverse();
    assert!(matches!(verify(Regions::compiled(), &record(inputs, swapped), &bytes), Err(Mismatch::Result(_))));
}

#[test]
fn strata_draw_their_ratio_and_the_floor_holds() {
    let bytes = generate(20_000, code(TIANHE), 3);
    let inputs = inputs(&bytes, "b");
    let result = draw(Regions::compiled(), &inputs, &bytes).expect("draw");
    assert_eq!(result.strata.len(), 2 * 3, "two items by three classes");
    for stratum in &result.strata {
        assert_eq!(stratum.quota, ceil_ratio(stratum.population, inputs.spec.ratios.of(stratum.class)));
        let drawn = result
            .inspections
            .iter()
            .filter(|i| !i.top_up && i.risk_class == stratum.class && i.items.contains(&stratum.item))
            .count() as u64;
        assert_eq!(drawn, stratum.quota, "stratum {} {}", stratum.item, stratum.class);
        assert!(stratum.quota * 10_000 >= stratum.population * 300, "never under 3% in a stratum");
    }
    assert!(result.inspections.len() as u64 * 100 >= result.eligible * 3, "never under 3% overall");
    // High-risk entities are drawn more often.
    let rate = |class: RiskClass| {
        let s: Vec<_> = result.strata.iter().filter(|s| s.class == class && s.item == "G1").collect();
        s[0].quota as f64 / s[0].population.max(1) as f64
    };
    assert!(rate(RiskClass::High) > rate(RiskClass::Normal));
}

#[test]
fn thin_classes_are_topped_up_to_the_floor_on_the_total() {
    // A province's 30/10/2/1 % over four classes, here 30/2/1 % over three: the quotas alone
    // draw under 3% of the population; the top-up brings the total to the floor, and the draw
    // verifies (`check_draw` holds the floor on the total).
    let bytes = generate(20_000, code(TIANHE), 6);
    let mut inputs = inputs(&bytes, "b");
    inputs.spec.ratios = RiskRatios { high_bp: 3_000, normal_bp: 200, low_bp: 100 };
    ledger::campaign::check_spec(Regions::compiled(), &inputs.spec).expect("thin classes are a plan");
    let result = draw(Regions::compiled(), &inputs, &bytes).expect("draw");
    let by_quota = result.inspections.iter().filter(|i| !i.top_up).count() as u64;
    assert!(by_quota * 100 < result.eligible * 3, "the quotas alone are under the floor: {by_quota}");
    assert!(result.inspections.iter().any(|i| i.top_up), "topped up");
    assert!(result.inspections.len() as u64 * 100 >= result.eligible * 3, "never under 3% overall");
    let departments = ledger::campaign::departments::Departments::default();
    ledger::campaign::check_draw(Regions::compiled(), &departments, &inputs, &result)
        .expect("the draw keeps the rules");
    let mut none = inputs.spec.clone();
    none.ratios.low_bp = 0;
    assert!(ledger::campaign::check_spec(Regions::compiled(), &none).is_err(), "a class is drawn from, or named out");
}

#[test]
fn a_stratum_smaller_than_a_whole_entity_still_draws_one() {
    // 10 entities: every stratum's 3% is under one entity and rounds up to one.
    let bytes = generate(10, code(TIANHE), 4);
    let inputs = inputs(&bytes, "b");
    let result = draw(Regions::compiled(), &inputs, &bytes).expect("draw");
    for stratum in &result.strata {
        assert_eq!(stratum.quota, u64::from(stratum.population > 0), "{stratum:?}");
    }
}

#[test]
fn items_on_one_entity_merge_into_one_joint_inspection_by_a_qualified_team() {
    let bytes = generate(5_000, code(TIANHE), 5);
    let inputs = inputs(&bytes, "b");
    let result = draw(Regions::compiled(), &inputs, &bytes).expect("draw");
    let entities: BTreeSet<_> = result.inspections.iter().map(|i| i.subject.uscc.clone()).collect();
    assert_eq!(entities.len(), result.inspections.len(), "one inspection per entity");
    assert!(result.inspections.iter().any(|i| i.items.len() == 2), "some inspections are joint");
    let pool: BTreeMap<_, _> = inputs.pool.iter().map(|i| (i.id.clone(), i)).collect();
    for inspection in &result.inspections {
        assert_eq!(inspection.inspectors.len(), 2, "never alone");
        for code in &inspection.items {
            let item = inputs.spec.items.iter().find(|i| &i.code == code).unwrap();
            assert!(
                inspection.inspectors.iter().any(|id| pool[id].expertise.contains(&item.expertise)),
                "the team covers item {code}"
            );
        }
        assert!(inspection.inspectors.iter().all(|id| pool[id].qualified));
    }
}

#[test]
fn conflicts_recuse_and_office_and_stations_mix() {
    let bytes = generate(2_000, code(TIANHE), 6);
    let mut inputs = inputs(&bytes, "b");
    inputs.spec.inspector_mode = InspectorMode::OfficeAndStations;
    // TH000 (office, both expertises) declares a conflict with every entity of the directory:
    // the conflicts are inputs, so the seed changes too, but in no draw may TH000 take part.
    let conflicted = "TH000".to_string();
    inputs.conflicts = directory::rows(Regions::compiled(), &bytes)
        .unwrap()
        .map(|(_, row)| (conflicted.clone(), Uscc::parse(row.unwrap().uscc).unwrap()))
        .collect();
    inputs.conflicts.sort();
    let second = draw(Regions::compiled(), &inputs, &bytes).expect("draw");
    assert!(second.inspections.iter().all(|i| !i.inspectors.contains(&conflicted)), "passed over");
    assert_eq!(second.recusals.len(), second.inspections.len(), "one recusal on record per inspection");
    assert!(second.recusals.iter().all(|r| r.inspector == conflicted));
    let pool: BTreeMap<_, _> = inputs.pool.iter().map(|i| (i.id.clone(), i)).collect();
    for inspection in &second.inspections {
        assert!(inspection.inspectors.iter().any(|id| pool[id].station.is_none()), "an office member");
        assert!(inspection.inspectors.iter().any(|id| pool[id].station.is_some()), "a station member");
    }
}

#[test]
fn too_few_inspectors_is_a_clear_error() {
    let bytes = generate(500, code(TIANHE), 8);
    let mut inputs = inputs(&bytes, "b");
    inputs.pool.truncate(1);
    let error = draw(Regions::compiled(), &inputs, &bytes).expect_err("one inspector cannot form a team");
    assert!(error.to_string().contains("440106"), "{error}");
}

/// Within a stratum every entity has the same chance: over many draws (beacons) of 20 out of
/// 200 low-risk entities, the counts per entity pass a chi-square test of uniformity.
#[test]
fn selection_is_uniform_within_a_stratum() {
    let bytes = generate(400, code(TIANHE), 9);
    let mut base = inputs(&bytes, "");
    base.spec.items = vec![item("G1", &[], "licensing")];
    // Everyone low risk: one stratum.
    base.spec.scoring.credit_points.clear();
    base.spec.scoring.industry_points.clear();
    base.spec.ratios = RiskRatios { high_bp: 10_000, normal_bp: 10_000, low_bp: 1_000 };
    let draws = 2_000;
    let mut counts: BTreeMap<Uscc, u64> = BTreeMap::new();
    let mut population = 0;
    for n in 0..draws {
        let result = draw(Regions::compiled(), &DrawInputs { beacon: format!("beacon-{n}"), ..base.clone() }, &bytes)
            .expect("draw");
        population = result.strata.iter().find(|s| s.class == RiskClass::Low).unwrap().population;
        for inspection in result.inspections {
            *counts.entry(inspection.subject.uscc.unwrap()).or_default() += 1;
        }
    }
    let quota = ceil_ratio(population, 1_000);
    let expected = (draws * quota) as f64 / population as f64;
    let chi_square: f64 = (0..population as usize)
        .map(|i| {
            let observed = counts.values().nth(i).copied().unwrap_or(0) as f64;
            (observed - expected).powi(2) / expected
        })
        .sum::<f64>()
        + 0.0;
    // Degrees of freedom 399; the 0.999 quantile of chi-square(399) is about 493.
    let degrees = population as f64 - 1.0;
    assert!(counts.len() as u64 <= population);
    assert!(
        chi_square < degrees + 3.09 * (2.0 * degrees).sqrt() + 10.0,
        "chi-square {chi_square:.1} with {degrees} degrees"
    );
    // And not suspiciously even either (a draw that rotated deterministically would be).
    assert!(chi_square > degrees - 3.09 * (2.0 * degrees).sqrt() - 10.0, "chi-square {chi_square:.1} too small");
}

// --- The ledger's side: the whole campaign through `Ledger::apply`. ---

pub(crate) struct Desk {
    pub(crate) ledger: Ledger,
    pub(crate) stamp_ms: u64,
}

impl Desk {
    pub(crate) fn apply(&mut self, actor: &Actor, action: Action) -> ledger::CommandResult {
        self.stamp_ms += 1_000;
        let result =
            self.ledger.apply(&Command { stamp_ms: self.stamp_ms, actor: actor.clone(), idempotency: None, action });
        // Every step of a campaign's life keeps the ledger's invariants, the programme's with them.
        self.ledger.check_invariants().expect("the ledger keeps its invariants");
        result
    }

    pub(crate) fn programme(&mut self, actor: &Actor, action: ProgrammeAction) -> ledger::CommandResult {
        self.apply(actor, Action::Programme(Box::new(action)))
    }
}

#[test]
fn a_campaign_from_plan_to_public_result() {
    let planner = actor("gz-planner", "440100", Role::Command);
    let second = actor("gz-second", "440100", Role::Command);
    let tianhe = actor("th-operator", TIANHE, Role::Operator);
    let mut desk = Desk { ledger: Ledger::new(), stamp_ms: T0 };
    let bytes = generate(3_000, code(TIANHE), 11);
    let summary = directory::check(Regions::compiled(), &bytes).unwrap();
    let record = ProgrammeAction::RecordEntityDirectory {
        sha256: summary.sha256.clone(),
        entities: summary.entities,
        bytes: summary.bytes,
    };
    desk.programme(&planner, record).expect("directory version recorded");
    for inspector in pool() {
        desk.programme(&planner, ProgrammeAction::EnrollInspector(Box::new(inspector))).expect("enrolled");
    }
    // An operator may not enrol; a plan that draws nothing of a class it covers is refused; so
    // is a lone inspector.
    let refused = desk.programme(&tianhe, ProgrammeAction::EnrollInspector(Box::new(pool()[0].clone())));
    assert!(matches!(refused, Err(Rejection::Forbidden(_))));
    let mut low = spec(&summary.sha256);
    low.ratios.low_bp = 0;
    assert!(matches!(
        desk.programme(&planner, ProgrammeAction::CreateCampaignOnTotal(Box::new(low.clone()))),
        Err(Rejection::Invalid { .. })
    ));
    // A class at 1%: the command committed before the floor moved to the total keeps the rule
    // it was committed under (a log replays as it applied); only the new command takes it.
    low.ratios.low_bp = 100;
    assert!(matches!(
        desk.programme(&planner, ProgrammeAction::CreateCampaign(Box::new(low.clone()))),
        Err(Rejection::Invalid { .. })
    ));
    assert!(ledger::campaign::draws_a_class_thinly(&low));
    let mut alone = spec(&summary.sha256);
    alone.inspectors_per_inspection = 1;
    assert!(matches!(
        desk.programme(&planner, ProgrammeAction::CreateCampaign(Box::new(alone))),
        Err(Rejection::Invalid { .. })
    ));

    let created = desk.programme(&planner, ProgrammeAction::CreateCampaign(Box::new(spec(&summary.sha256)))).unwrap();
    let Some(ProgrammeRecord::Campaign(campaign)) = created.record else { panic!("a campaign") };
    // No draw before the beacon; the planner may not fix it.
    assert!(matches!(desk.ledger.draw_inputs(campaign.id), Err(Rejection::Conflict { .. })));
    let own = ProgrammeAction::FixBeacon { campaign: campaign.id, value: "12345".into() };
    assert!(matches!(desk.programme(&planner, own), Err(Rejection::Forbidden(_))));
    desk.programme(&second, ProgrammeAction::FixBeacon { campaign: campaign.id, value: "987654321".into() }).unwrap();
    let again = ProgrammeAction::FixBeacon { campaign: campaign.id, value: "other".into() };
    assert!(matches!(desk.programme(&second, again), Err(Rejection::Conflict { .. })), "fixed once");

    let inputs = desk.ledger.draw_inputs(campaign.id).unwrap();
    let result = draw(Regions::compiled(), &inputs, &bytes).unwrap();
    // A result from other inputs (here: a forged beacon) is refused.
    let forged = draw(Regions::compiled(), &DrawInputs { beacon: "forged".into(), ..inputs.clone() }, &bytes).unwrap();
    let forged = ProgrammeAction::RecordDraw {
        campaign: campaign.id,
        result: Box::new(forged),
        ack_deadline_ms: desk.stamp_ms + 3 * DAY_MS,
        complete_deadline_ms: desk.stamp_ms + 28 * DAY_MS,
    };
    assert!(matches!(desk.programme(&planner, forged), Err(Rejection::Conflict { .. })));
    // A result that breaks a rule is refused, not asserted.
    let mut broken = result.clone();
    broken.inspections[0].inspectors.truncate(1);
    let broken = ProgrammeAction::RecordDraw {
        campaign: campaign.id,
        result: Box::new(broken),
        ack_deadline_ms: desk.stamp_ms + 3 * DAY_MS,
        complete_deadline_ms: desk.stamp_ms + 28 * DAY_MS,
    };
    assert!(matches!(desk.programme(&planner, broken), Err(Rejection::Invalid { .. })));

    let digest_before = desk.ledger.digest();
    let drawn = desk
        .programme(
            &planner,
            ProgrammeAction::RecordDraw {
                campaign: campaign.id,
                result: Box::new(result.clone()),
                ack_deadline_ms: desk.stamp_ms + 3 * DAY_MS,
                complete_deadline_ms: desk.stamp_ms + 28 * DAY_MS,
            },
        )
        .expect("the draw is committed");
    assert_ne!(desk.ledger.digest(), digest_before);
    assert_eq!(drawn.tasks.len(), result.inspections.len(), "one task per inspection");
    let task = drawn.tasks[0].clone();
    assert_eq!(task.kind, TaskKind::Inspection);
    assert_eq!(task.handling.state, TaskState::Dispatched);
    assert_eq!(task.handling.assignee_bureau, Some(code(TIANHE)));
    // The committed draw verifies from the ledger's own record.
    let committed = desk.ledger.programme().campaign(campaign.id).unwrap().draw.clone().unwrap();
    verify(Regions::compiled(), &committed, &bytes).expect("the committed draw verifies");

    // 谁抽查、谁录入: the inspecting bureau enters the result; the organiser publishes it.
    desk.apply(
        &tianhe,
        Action::ChangeTask(ledger::TaskChange {
            task: task.id,
            expected_version: None,
            note: String::new(),
            transition: ledger::Transition::Ack,
        }),
    )
    .unwrap();
    // Its bureau and team were drawn: an inspection is not given back (退单).
    let decline = desk.apply(
        &tianhe,
        Action::ChangeTask(ledger::TaskChange {
            task: task.id,
            expected_version: None,
            note: "不属本所".into(),
            transition: ledger::Transition::Decline,
        }),
    );
    assert!(
        matches!(decline, Err(Rejection::Conflict { code: ledger::ConflictCode::DrawnInspection, .. })),
        "{decline:?}"
    );
    let enter = |outcome, publication_deadline_ms| {
        Action::ChangeTask(ledger::TaskChange {
            task: task.id,
            expected_version: None,
            note: "现场检查".into(),
            transition: ledger::Transition::Complete { outcome, publication_deadline_ms },
        })
    };
    let deadline = Some(T0 + 40 * DAY_MS);
    assert!(matches!(
        desk.apply(&tianhe, enter(CompletionOutcome::Reminded, deadline)),
        Err(Rejection::Invalid { .. })
    ));
    assert!(
        matches!(desk.apply(&tianhe, enter(CompletionOutcome::Corrected, None)), Err(Rejection::Invalid { .. })),
        "an inspection's result starts its publication clock"
    );
    let follow_up = || ProgrammeAction::OpenFollowUp {
        inspection: task.id,
        ack_deadline_ms: T0 + 30 * DAY_MS,
        complete_deadline_ms: T0 + 45 * DAY_MS,
    };
    let early = desk.programme(&tianhe, follow_up());
    assert!(
        matches!(early, Err(Rejection::Conflict { code: ledger::ConflictCode::NoFollowUpDue, .. })),
        "no result, no follow-up: {early:?}"
    );
    desk.apply(&tianhe, enter(CompletionOutcome::Corrected, deadline)).expect("result entered");
    // 谁管辖、谁负责: the correction is checked again by the entity's bureau, opened once, by
    // whoever entered the result.
    assert!(matches!(desk.programme(&planner, follow_up()), Err(Rejection::Forbidden(_))));
    let opened = desk.programme(&tianhe, follow_up()).expect("the follow-up opens");
    let (lead, inspected) = (&opened.tasks[0], &opened.tasks[1]);
    assert_eq!((lead.kind, lead.source), (TaskKind::Lead, ledger::Source::SpotCheck));
    assert_eq!((lead.handling.state, lead.handling.assignee_bureau), (TaskState::Dispatched, Some(code(TIANHE))));
    assert_eq!(lead.origin_bureau, code("440100"), "from the campaign's organiser");
    assert_eq!(lead.subject, task.subject);
    assert!(lead.title.contains("整改复查"), "{}", lead.title);
    let entry = inspected.timeline.last().unwrap();
    assert_eq!(entry.action, ledger::TimelineAction::FollowUpOpened);
    assert_eq!(entry.note, format!("后续监管任务 #{}", lead.id));
    assert!(matches!(desk.programme(&tianhe, follow_up()), Err(Rejection::NothingToRecord(_))), "once");
    // Not published in time: the leader's watch records the miss, once.
    let system = actor("system", "440100", Role::System);
    let deadline_ms = desk.ledger.task(task.id).unwrap().inspection.as_ref().unwrap().publish_deadline_ms.unwrap();
    assert_eq!(
        desk.ledger.task(task.id).unwrap().open_deadline_ms(ledger::DeadlineKind::Publication),
        Some(deadline_ms)
    );
    desk.stamp_ms = deadline_ms;
    let miss = || Action::RecordMissedDeadline { task: task.id, kind: ledger::DeadlineKind::Publication, deadline_ms };
    let missed = desk.apply(&system, miss()).expect("the miss is recorded");
    assert_eq!(missed.task().timeline.last().unwrap().action, ledger::TimelineAction::PublicationMissed);
    assert!(desk.apply(&system, miss()).is_err(), "recorded once");
    let public = |ledger: &Ledger| PublicResult::of(&ledger.task(task.id).unwrap());
    assert_eq!(public(&desk.ledger), None, "not public before publication");
    assert!(matches!(
        desk.programme(&tianhe, ProgrammeAction::PublishResult { task: task.id }),
        Err(Rejection::Forbidden(_))
    ));
    desk.programme(&planner, ProgrammeAction::PublishResult { task: task.id }).expect("published");
    let shown = public(&desk.ledger).expect("public");
    assert_eq!(shown.outcome, CompletionOutcome::Corrected);
    let withdraw = ProgrammeAction::WithdrawResult { task: task.id, note: "更正".into() };
    desk.programme(&planner, withdraw).expect("withdrawn");
    assert_eq!(public(&desk.ledger), None, "a withdrawn result is gone");

    // The next draw of the same entity never sends the same inspectors.
    let history = desk.ledger.draw_inputs(campaign.id).unwrap().histories;
    let uscc = task.subject.uscc.clone().unwrap();
    let entry = history.iter().find(|h| h.uscc == uscc).expect("a history");
    assert!(entry.findings >= 1, "the finding counts toward risk");
    assert_eq!(entry.last_team.len(), 2);
    let _ = TaskId(0);
}

/// Nobody inspects the same entity twice in a row: the entity's last team is passed over.
#[test]
fn the_last_team_never_inspects_the_same_entity_again() {
    let bytes = generate(60, code(TIANHE), 12);
    let mut inputs = inputs(&bytes, "b");
    // Every entity drawn, so each is drawn again next time.
    inputs.spec.ratios = RiskRatios { high_bp: 10_000, normal_bp: 10_000, low_bp: 10_000 };
    let first = draw(Regions::compiled(), &inputs, &bytes).expect("draw");
    assert_eq!(first.inspections.len(), 60);
    inputs.histories = first
        .inspections
        .iter()
        .map(|i| ledger::campaign::EntityHistory {
            uscc: i.subject.uscc.clone().unwrap(),
            findings: 0,
            complaints: 0,
            overdue_tasks: 0,
            last_team: {
                let mut team = i.inspectors.clone();
                team.sort();
                team
            },
        })
        .collect();
    let second = draw(Regions::compiled(), &inputs, &bytes).expect("draw");
    for inspection in &second.inspections {
        let last = inputs.histories.iter().find(|h| Some(&h.uscc) == inspection.subject.uscc.as_ref()).unwrap();
        assert!(
            inspection.inspectors.iter().all(|id| !last.last_team.contains(id)),
            "{:?} inspected {:?} last time",
            inspection.inspectors,
            last.uscc
        );
    }
}

#[test]
fn a_roster_enrols_all_its_inspectors_or_none() {
    let planner = actor("gz-planner", "440100", Role::Command);
    let tianhe_centre = actor("th-centre", TIANHE, Role::Command);
    let mut desk = Desk { ledger: Ledger::new(), stamp_ms: T0 };
    let roster = pool();
    let count = roster.len();
    let listed = |desk: &Desk| desk.ledger.programme().inspectors().count();

    // One refused row refuses the whole roster: a repeat, an outsider's bureau, an active id.
    let mut repeated = roster.clone();
    repeated.push(roster[0].clone());
    let refused = desk.programme(&planner, ProgrammeAction::EnrollInspectors(repeated));
    assert!(matches!(refused, Err(Rejection::Invalid { .. })), "{refused:?}");
    let mut elsewhere = roster.clone();
    elsewhere[1].bureau = code("440305");
    let refused = desk.programme(&planner, ProgrammeAction::EnrollInspectors(elsewhere));
    assert!(matches!(refused, Err(Rejection::Forbidden(_))), "{refused:?}");
    assert!(matches!(
        desk.programme(&planner, ProgrammeAction::EnrollInspectors(Vec::new())),
        Err(Rejection::Invalid { .. })
    ));
    assert_eq!(listed(&desk), 0, "nothing of a refused roster is enrolled");

    let enrolled = desk.programme(&planner, ProgrammeAction::EnrollInspectors(roster.clone())).expect("enrolled");
    let Some(ProgrammeRecord::Inspectors(record)) = enrolled.record else { panic!("the enrolled inspectors") };
    assert_eq!(
        record.iter().map(|i| i.id.clone()).collect::<Vec<_>>(),
        roster.iter().map(|i| i.id.clone()).collect::<Vec<_>>()
    );
    assert!(record.iter().all(|i| i.active && i.enrolled_at_ms == desk.stamp_ms));
    assert_eq!(listed(&desk), count);
    // Enrolled already: the same roster again is refused whole, the directory unchanged.
    let again = desk.programme(&tianhe_centre, ProgrammeAction::EnrollInspectors(roster[..1].to_vec()));
    assert!(matches!(again, Err(Rejection::Conflict { .. })), "{again:?}");
    assert_eq!(listed(&desk), count);
}

mod register_freeze {
    use ledger::campaign::register::{ChangeKind, RegisterChange, RegisteredEntity};

    use super::*;
    use crate::generate::synthetic_uscc;
    use crate::register::freeze;

    fn change(kind: ChangeKind, serial: u64, name: &str) -> RegisterChange {
        let entity = kind.keeps_entity().then(|| RegisteredEntity {
            name: name.into(),
            region: code(TIANHE),
            industry: "retail".into(),
            credit_status: "normal".into(),
            address: String::new(),
        });
        RegisterChange { id: format!("{kind}-{serial}"), kind, uscc: synthetic_uscc(code(TIANHE), serial), entity }
    }

    #[test]
    fn a_freeze_folds_the_changes_into_the_base_in_its_order_and_is_a_directory() {
        let regions = Regions::compiled_shared();
        let base = generate(50, code(TIANHE), 7);
        let summary = directory::check(regions, &base).expect("a generated directory");
        let rows: Vec<_> = directory::rows(regions, &base).unwrap().map(|(_, row)| row.unwrap()).collect();
        let amended = Uscc::parse(rows[1].uscc).unwrap();
        let revoked = Uscc::parse(rows[2].uscc).unwrap();
        let mut amend = change(ChangeKind::Amend, 0, "改名后的公司");
        amend.uscc = amended.clone();
        let mut revoke = change(ChangeKind::Revoke, 0, "");
        revoke.uscc = revoked.clone();
        let changes = vec![
            change(ChangeKind::Establish, 9_000, "新设公司甲"),
            amend,
            revoke,
            change(ChangeKind::Establish, 9_001, "新设公司乙"),
            // Established, then gone again: no row.
            change(ChangeKind::Deregister, 9_001, ""),
            // Established, amended: one row as amended, where it was first established.
            change(ChangeKind::Establish, 9_002, "新设公司丙"),
            change(ChangeKind::Amend, 9_002, "新设公司丙（改）"),
        ];
        let mut out = Vec::new();
        let frozen = freeze(&base, &changes, &mut out).expect("frozen");
        assert_eq!(frozen, directory::check(regions, &out).expect("a frozen file is a directory"));
        assert_eq!(frozen.entities, summary.entities - 1 + 2);
        let text = String::from_utf8(out.clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[2].starts_with(&format!("{},改名后的公司,", amended.as_str())), "amended in place");
        assert!(!text.contains(revoked.as_str()), "the revoked entity left the register");
        assert!(!text.contains("新设公司乙"));
        let tail: Vec<&str> = lines.iter().rev().take(2).rev().map(|line| line.split(',').nth(1).unwrap()).collect();
        assert_eq!(tail, ["新设公司甲", "新设公司丙（改）"], "new entities at the end in the order first seen");
        // The same base and journal make the same bytes.
        let mut again = Vec::new();
        assert_eq!(freeze(&base, &changes, &mut again).unwrap(), frozen);
        assert_eq!(again, out);
    }
}

mod draw_in_parts {
    use ledger::campaign::draw_parts::{part_digest, DrawHeader, DrawPlacement, DRAW_PART_INSPECTIONS};

    use super::*;

    fn header_of(desk: &Desk, campaign: u64, result: &DrawResult) -> DrawHeader {
        DrawHeader::of(campaign, result, desk.stamp_ms + 3 * DAY_MS, desk.stamp_ms + 28 * DAY_MS)
    }

    fn part(campaign: u64, part: usize, result: &DrawResult) -> ProgrammeAction {
        let inspections = result.inspections.chunks(DRAW_PART_INSPECTIONS).nth(part).expect("a part").to_vec();
        let placements = vec![DrawPlacement::Here; inspections.len()];
        ProgrammeAction::RecordDrawPart { campaign, part: part as u32, inspections, placements }
    }

    /// A campaign over 40,000 entities of Tianhe that draws more than one part, its beacon
    /// fixed: the desk, its planner, the directory file and the campaign's id.
    fn sealed_campaign(beacon: &str) -> (Desk, Actor, Vec<u8>, u64) {
        let planner = actor("gz-planner", "440100", Role::Command);
        let second = actor("gz-second", "440100", Role::Command);
        let mut desk = Desk { ledger: Ledger::new(), stamp_ms: T0 };
        let bytes = generate(40_000, code(TIANHE), 5);
        let summary = directory::check(Regions::compiled(), &bytes).unwrap();
        let record = ProgrammeAction::RecordEntityDirectory {
            sha256: summary.sha256.clone(),
            entities: summary.entities,
            bytes: summary.bytes,
        };
        desk.programme(&planner, record).expect("directory version recorded");
        for inspector in pool() {
            desk.programme(&planner, ProgrammeAction::EnrollInspector(Box::new(inspector))).expect("enrolled");
        }
        let mut spec = spec(&summary.sha256);
        spec.ratios = RiskRatios { high_bp: 2_000, normal_bp: 1_000, low_bp: 600 };
        let created = desk.programme(&planner, ProgrammeAction::CreateCampaign(Box::new(spec))).unwrap();
        let Some(ProgrammeRecord::Campaign(campaign)) = created.record else { panic!("a campaign") };
        desk.programme(&second, ProgrammeAction::FixBeacon { campaign: campaign.id, value: beacon.into() }).unwrap();
        (desk, planner, bytes, campaign.id)
    }

    /// A draw of more inspections than one part: the header is checked as a whole, each part
    /// against the header, in order and once; the campaign is drawn when the last is in, its
    /// tasks in the draw's order, and the draw verifies from the directory.
    #[test]
    fn a_draw_is_committed_part_by_part_in_order_and_once() {
        let (mut desk, planner, bytes, id) = sealed_campaign("20261207");
        let result = draw(Regions::compiled(), &desk.ledger.draw_inputs(id).unwrap(), &bytes).unwrap();
        let parts = result.inspections.len().div_ceil(DRAW_PART_INSPECTIONS);
        assert!(parts >= 2, "{} inspections make more than one part", result.inspections.len());

        // No part before its header; a header whose parts do not add up to a quota is refused.
        assert!(matches!(desk.programme(&planner, part(id, 0, &result)), Err(Rejection::NotYet(_))));
        let header = header_of(&desk, id, &result);
        let mut short = header.clone();
        let counted = short.parts[0].quota_counts.iter().position(|count| *count > 0).expect("a stratum drawn");
        short.parts[0].quota_counts[counted] -= 1;
        let refused = desk.programme(&planner, ProgrammeAction::BeginDrawInParts(Box::new(short)));
        assert!(matches!(refused, Err(Rejection::Invalid { .. })), "{refused:?}");
        let mut forged = header.clone();
        forged.summary.seed = "00".repeat(32);
        let refused = desk.programme(&planner, ProgrammeAction::BeginDrawInParts(Box::new(forged)));
        assert!(matches!(refused, Err(Rejection::Conflict { .. })), "a seed from other inputs: {refused:?}");

        desk.programme(&planner, ProgrammeAction::BeginDrawInParts(Box::new(header.clone()))).expect("begun");
        let again = desk.programme(&planner, ProgrammeAction::BeginDrawInParts(Box::new(header.clone())));
        assert!(matches!(again, Err(Rejection::NothingToRecord(_))), "the same header again: {again:?}");
        let whole = ProgrammeAction::RecordDraw {
            campaign: id,
            result: Box::new(result.clone()),
            ack_deadline_ms: header.ack_deadline_ms,
            complete_deadline_ms: header.complete_deadline_ms,
        };
        assert!(matches!(desk.programme(&planner, whole), Err(Rejection::Conflict { .. })), "being drawn in parts");

        // In order; a part other than the header named is refused, changing nothing.
        assert!(matches!(desk.programme(&planner, part(id, 1, &result)), Err(Rejection::NotYet(_))));
        let mut bent = result.clone();
        bent.inspections[7].inspectors.reverse();
        let tasks_before = desk.ledger.task_count();
        assert!(matches!(desk.programme(&planner, part(id, 0, &bent)), Err(Rejection::Invalid { .. })));
        assert_eq!(desk.ledger.task_count(), tasks_before, "a refused part creates nothing");
        let first = desk.programme(&planner, part(id, 0, &result)).expect("part 0");
        assert_eq!(first.tasks.len(), DRAW_PART_INSPECTIONS);
        assert!(matches!(desk.programme(&planner, part(id, 0, &result)), Err(Rejection::NothingToRecord(_))));
        assert!(desk.ledger.programme().campaign(id).unwrap().draw.is_none(), "drawn only when every part is in");
        assert_eq!(desk.ledger.drawing_in_parts(id).map(|d| d.next_part()), Some(1));
        for n in 1..parts {
            desk.programme(&planner, part(id, n, &result)).expect("a part");
        }
        assert!(desk.ledger.drawing_in_parts(id).is_none());
        assert!(matches!(desk.programme(&planner, part(id, 0, &result)), Err(Rejection::NothingToRecord(_))));

        // Drawn: the record keeps the summary, the tasks are the inspections in the draw's order.
        let drawn = desk.ledger.programme().campaign(id).unwrap().draw.clone().expect("drawn");
        assert!(drawn.result.inspections.is_empty() && drawn.tasks.is_empty(), "the core keeps no inspections");
        assert_eq!(desk.ledger.drawn_inspections(id), result.inspections.len() as u64);
        let tasks = desk.ledger.drawn_tasks(id);
        assert_eq!(tasks.len(), result.inspections.len());
        for (task, inspection) in tasks.iter().zip(&result.inspections) {
            let task = desk.ledger.task(*task).expect("a task");
            assert_eq!(task.subject, inspection.subject);
            assert_eq!(task.inspection.as_ref().map(|i| i.inspectors.clone()), Some(inspection.inspectors.clone()));
        }
        // The proof: the record with the kept inspections verifies, and its parts are the ones
        // the ledger took.
        let parts_taken = desk.ledger.drawn_in_parts(id).expect("drawn in parts").parts.clone();
        let verified = crate::verify_in_parts(Regions::compiled(), &drawn, &parts_taken, &bytes).expect("verifies");
        assert_eq!(verified.inspections, result.inspections.len());
        // A part's digest bent, or the record's population, shows.
        let mut bent_parts = parts_taken.clone();
        bent_parts[1].sha256 = part_digest(&result.strata, &bent.inspections[..1]).sha256;
        let mismatch = crate::verify_in_parts(Regions::compiled(), &drawn, &bent_parts, &bytes).unwrap_err();
        assert!(mismatch.to_string().contains("part 1"), "{mismatch}");
        let mut bent_record = (*drawn).clone();
        bent_record.result.eligible += 1;
        assert!(crate::verify_in_parts(Regions::compiled(), &bent_record, &parts_taken, &bytes).is_err());
    }

    /// A header over a result that names one entity twice, in two parts (forged, or from a
    /// broken node): the header's hashes and counts hold, the second part is refused alike on
    /// every replica, and nothing of it is created.
    #[test]
    fn a_part_repeating_an_entity_of_an_earlier_part_is_refused() {
        let (mut desk, planner, bytes, id) = sealed_campaign("x");
        let mut result = draw(Regions::compiled(), &desk.ledger.draw_inputs(id).unwrap(), &bytes).unwrap();
        let same_stratum = |a: &ledger::campaign::DrawnInspection, b: &ledger::campaign::DrawnInspection| {
            a.items == b.items && a.risk_class == b.risk_class && a.top_up == b.top_up
        };
        let (first, later) = result.inspections.split_at(DRAW_PART_INSPECTIONS);
        let twin = later.iter().position(|l| same_stratum(l, &first[0])).expect("a later one of the same stratum");
        result.inspections[DRAW_PART_INSPECTIONS + twin] = result.inspections[0].clone();
        desk.programme(&planner, ProgrammeAction::BeginDrawInParts(Box::new(header_of(&desk, id, &result)))).unwrap();
        desk.programme(&planner, part(id, 0, &result)).unwrap();
        let tasks_before = desk.ledger.task_count();
        let refused = desk.programme(&planner, part(id, 1, &result));
        assert!(
            matches!(&refused, Err(Rejection::Invalid { reason, .. }) if reason.contains("once per draw")),
            "{refused:?}"
        );
        assert_eq!(desk.ledger.task_count(), tasks_before);
    }
}
