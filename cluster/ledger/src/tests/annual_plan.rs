//! The annual random-inspection plan: cities propose, the province sets batches (from
//! proposals or its own), publishes, and adjusts with a reason; every change a version; a
//! batch is withdrawn, never removed; bad batches are refused whole.

use crate::campaign::annual_plan::{BatchSpec, PlanAction, PlanStep};
use crate::campaign::{ProgrammeAction, ProgrammeRecord};
use crate::reference::Day;
use crate::*;

/// 2026-12-07 09:00 Beijing.
const T0: u64 = 1_796_605_200_000;

fn bureau(code: &str) -> BureauCode {
    BureauCode::parse_compiled(code).expect(code)
}

fn command(user: &str, code: &str) -> Actor {
    Actor { user: user.to_owned(), bureau: bureau(code), role: Role::Command }
}

fn batch(name: &str, scope: &str, entities: u64) -> Box<BatchSpec> {
    Box::new(BatchSpec {
        name: name.into(),
        items: vec!["B01".into()],
        scope: bureau(scope),
        entities,
        starts: Day::parse("2027-03-01").unwrap(),
        ends: Day::parse("2027-06-30").unwrap(),
    })
}

fn plan(ledger: &mut Ledger, actor: Actor, action: PlanAction) -> Result<(u32, PlanStep), Rejection> {
    let before = ledger.annual_plans().clone();
    let stamp_ms = ledger.last_stamp_ms().max(T0) + 1000;
    let action = Action::Programme(Box::new(ProgrammeAction::AnnualPlan(Box::new(action))));
    let result = ledger.apply(&Command { stamp_ms, actor, idempotency: None, action });
    ledger.check_invariants().expect("the ledger keeps its invariants");
    let copy = ledger.copy_through_a_checkpoint_for_tests();
    assert_eq!(copy.digest(), ledger.digest());
    match result {
        Ok(applied) => match applied.record {
            Some(ProgrammeRecord::AnnualPlan(changed)) => Ok((changed.1.number, changed.1.step)),
            other => panic!("a plan change answers with the plan, not {other:?}"),
        },
        Err(rejection) => {
            assert_eq!(ledger.annual_plans(), &before, "a refusal changes nothing");
            Err(rejection)
        }
    }
}

#[test]
fn cities_propose_the_province_plans_publishes_and_adjusts_with_reasons() {
    let mut ledger = Ledger::new();
    let province = || command("gd-command", "440000");
    let guangzhou = || command("gz-command", "440100");
    // Guangzhou proposes a batch of its own region; not Shenzhen's; it sets no batch itself.
    let propose = |spec| PlanAction::Propose { year: 2027, spec, note: "本市餐饮重点".into() };
    assert_eq!(
        plan(&mut ledger, guangzhou(), propose(batch("广州餐饮", "440100", 2_000))),
        Ok((1, PlanStep::Proposed { proposal: 1 }))
    );
    assert!(matches!(
        plan(&mut ledger, guangzhou(), propose(batch("深圳", "440300", 10))),
        Err(Rejection::Forbidden(_))
    ));
    let set = |spec, batch, from_proposal, reason: &str| PlanAction::SetBatch {
        year: 2027,
        batch,
        spec,
        from_proposal,
        reason: reason.into(),
    };
    assert!(matches!(
        plan(&mut ledger, guangzhou(), set(batch("x", "440100", 1), None, None, "")),
        Err(Rejection::Forbidden(_))
    ));
    // The province takes the proposal as batch 1 and adds one of its own.
    assert_eq!(
        plan(&mut ledger, province(), set(batch("广州餐饮", "440100", 2_000), None, Some(1), "")),
        Ok((2, PlanStep::BatchSet { batch: 1, new: true }))
    );
    assert!(
        matches!(
            plan(&mut ledger, province(), set(batch("again", "440100", 1), None, Some(1), "")),
            Err(Rejection::NothingToRecord(_))
        ),
        "a proposal is taken once"
    );
    plan(&mut ledger, province(), set(batch("全省公示信息", "440000", 180_000), None, None, "")).unwrap();
    // Bad batches: a period outside the year, no entities, an empty name, outside the province.
    let mut late = batch("晚", "440100", 10);
    late.ends = Day::parse("2028-01-31").unwrap();
    for (spec, what) in [(late, "period"), (batch("零", "440100", 0), "entities"), (batch(" ", "440100", 1), "name")] {
        let refused = plan(&mut ledger, province(), set(spec, None, None, ""));
        assert!(matches!(refused, Err(Rejection::Invalid { ref field, .. }) if field == what), "{what}: {refused:?}");
    }
    assert!(matches!(
        plan(&mut ledger, province(), set(batch("浙江", "330100", 1), None, None, "")),
        Err(Rejection::Invalid { .. })
    ));
    assert_eq!(plan(&mut ledger, province(), PlanAction::Publish { year: 2027 }), Ok((4, PlanStep::Published)));
    assert!(matches!(
        plan(&mut ledger, province(), PlanAction::Publish { year: 2027 }),
        Err(Rejection::NothingToRecord(_))
    ));
    // After publication a change is an adjustment: it says why.
    let adjusted = batch("广州餐饮", "440100", 3_000);
    assert!(matches!(
        plan(&mut ledger, province(), set(adjusted.clone(), Some(1), None, "")),
        Err(Rejection::Invalid { .. })
    ));
    assert_eq!(
        plan(&mut ledger, province(), set(adjusted, Some(1), None, "春节食品安全形势")),
        Ok((5, PlanStep::BatchSet { batch: 1, new: false }))
    );
    let withdraw = |reason: &str| PlanAction::WithdrawBatch { year: 2027, batch: 2, reason: reason.into() };
    assert!(matches!(plan(&mut ledger, province(), withdraw("")), Err(Rejection::Invalid { .. })));
    plan(&mut ledger, province(), withdraw("并入国家局部署")).unwrap();
    let stored = ledger.annual_plans().plan(bureau("440000"), 2027).unwrap();
    assert_eq!(stored.batches[0].spec.entities, 3_000);
    assert_eq!((stored.batches[0].listed_in, stored.batches[0].changed_in), (2, 5));
    assert!(stored.batches[1].withdrawn, "withdrawn, never removed");
    assert_eq!(stored.proposals[0].taken_as, Some(1));
    assert_eq!(stored.versions.len(), 6);
    assert_eq!(stored.versions[4].reason, "春节食品安全形势");
    // Another province's plan is its own; an operator keeps none.
    plan(&mut ledger, command("zj-command", "330000"), set(batch("杭州", "330100", 5), None, None, "")).unwrap();
    assert_eq!(ledger.annual_plans().of_province(bureau("330000")).count(), 1);
    let operator = Actor { user: "op".into(), bureau: bureau("440106"), role: Role::Operator };
    assert!(matches!(plan(&mut ledger, operator, propose(batch("天河", "440106", 5))), Err(Rejection::Forbidden(_))));
}

mod random {
    //! Random histories of the programme's year (item lists, enforcement matters, plans and
    //! campaigns of batches), by entitled and unentitled actors with numbers in and out of
    //! range: nothing reaches a panic, every refusal leaves the ledger as it was, the
    //! invariants hold, and a copy through a checkpoint is the same ledger.

    use proptest::prelude::*;

    use super::*;
    use crate::campaign::item_list::{CheckPoint, ItemListAction, ItemSpec, OrganiserLevel};
    use crate::campaign::{CampaignSpec, InspectorMode, RiskRatios, RiskScoring};
    use crate::site_record::AnswerKind;

    pub(super) const DIRECTORY: &str = "2222222222222222222222222222222222222222222222222222222222222222";
    const BUREAUS: [&str; 6] = ["440000", "440100", "440106", "440300", "330000", "000000"];
    const CODES: [&str; 5] = ["A01", "B01", "44-01", "33-01", "B 1"];

    fn actor_of(pick: u8) -> Actor {
        let bureau = BUREAUS[usize::from(pick) % BUREAUS.len()];
        let role = if pick % 7 == 6 { Role::Operator } else { Role::Command };
        Actor {
            user: format!("u{pick}"),
            bureau: BureauCode::parse_compiled(bureau).unwrap_or(bureau_fallback()),
            role,
        }
    }

    fn bureau_fallback() -> BureauCode {
        BureauCode::parse_compiled("440000").unwrap()
    }

    fn item(code: u8, level: u8) -> ItemSpec {
        let code = CODES[usize::from(code) % CODES.len()];
        ItemSpec {
            code: code.into(),
            name: format!("事项{code}"),
            basis: if level % 5 == 4 { String::new() } else { "《条例》".into() },
            organiser: [OrganiserLevel::Province, OrganiserLevel::Prefecture, OrganiserLevel::County]
                [usize::from(level) % 3],
            industries: Vec::new(),
            expertise: "food".into(),
            check_points: vec![CheckPoint {
                code: "P1".into(),
                wording: "检查".into(),
                answer: AnswerKind::Conformity,
                basis: String::new(),
            }],
        }
    }

    fn spec(scope: u8, entities: u64, month: u8) -> Box<BatchSpec> {
        Box::new(BatchSpec {
            name: "批次".into(),
            items: vec!["B01".into()],
            scope: BureauCode::parse_compiled(BUREAUS[usize::from(scope) % 5]).unwrap(),
            entities,
            starts: Day::new(2027, u32::from(month % 12) + 1, 1).unwrap(),
            ends: Day::new(2027, 12, 31).unwrap(),
        })
    }

    pub(super) fn campaign(scope: u8, item: u8) -> Box<CampaignSpec> {
        Box::new(CampaignSpec {
            name: "抽查".into(),
            bureau: BureauCode::parse_compiled("440100").unwrap(),
            items: vec![super::item_list_campaign_item(CODES[usize::from(item) % 2])],
            scope_region: BureauCode::parse_compiled(["440106", "440100", "440300"][usize::from(scope) % 3]).unwrap(),
            targeted: false,
            industries: Vec::new(),
            risk_classes: Vec::new(),
            ratios: RiskRatios { high_bp: 1_000, normal_bp: 500, low_bp: 300 },
            inspector_mode: InspectorMode::WholeBureau,
            inspectors_per_inspection: 2,
            scoring: RiskScoring {
                credit_points: Vec::new(),
                industry_points: Vec::new(),
                region_points: Vec::new(),
                points_per_finding: 1,
                points_per_complaint: 1,
                points_per_overdue_task: 1,
                high_from: 50,
                low_below: 10,
            },
            entity_directory: DIRECTORY.into(),
            complete_deadline_ms: None,
        })
    }

    fn step() -> impl Strategy<Value = (u8, ProgrammeAction)> {
        let year = prop_oneof![Just(2027i32), Just(2026), Just(i32::MIN)];
        let number = prop_oneof![Just(0u32), 1u32..4, Just(u32::MAX)];
        prop_oneof![
            (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(a, c, l)| (
                a,
                ProgrammeAction::ItemList(Box::new(if c % 3 == 0 {
                    ItemListAction::AdoptNational { items: vec![item(0, l), item(1, l)], reason: String::new() }
                } else {
                    ItemListAction::Add { item: Box::new(item(c, l)), reason: "补充".into() }
                }))
            )),
            (any::<u8>(), any::<u8>(), prop_oneof![Just(0u32), 1u32..50, Just(u32::MAX)]).prop_map(|(a, c, total)| (
                a,
                ProgrammeAction::ItemList(Box::new(if c % 2 == 0 {
                    ItemListAction::Retire { code: CODES[usize::from(c) % CODES.len()].into(), reason: "停".into() }
                } else {
                    ItemListAction::DeclareMatters { total, reason: String::new() }
                }))
            )),
            (
                any::<u8>(),
                year.clone(),
                any::<u8>(),
                prop_oneof![Just(0u64), 1u64..10_000, Just(u64::MAX)],
                any::<u8>()
            )
                .prop_map(|(a, year, scope, entities, month)| (
                    a,
                    ProgrammeAction::AnnualPlan(Box::new(PlanAction::Propose {
                        year,
                        spec: spec(scope, entities, month),
                        note: String::new()
                    }))
                )),
            (
                any::<u8>(),
                year.clone(),
                proptest::option::of(number.clone()),
                any::<u8>(),
                proptest::option::of(number.clone())
            )
                .prop_map(|(a, year, batch, scope, from_proposal)| (
                    a,
                    ProgrammeAction::AnnualPlan(Box::new(PlanAction::SetBatch {
                        year,
                        batch,
                        spec: spec(scope, 100, 2),
                        from_proposal,
                        reason: if scope % 2 == 0 { "调整".into() } else { String::new() },
                    }))
                )),
            (any::<u8>(), year.clone(), number.clone(), any::<bool>()).prop_map(|(a, year, batch, publish)| (
                a,
                ProgrammeAction::AnnualPlan(Box::new(if publish {
                    PlanAction::Publish { year }
                } else {
                    PlanAction::WithdrawBatch { year, batch, reason: "撤".into() }
                }))
            )),
            (any::<u8>(), any::<u8>(), any::<u8>(), number).prop_map(|(a, scope, item, batch)| (
                a,
                ProgrammeAction::CreateCampaignInBatch {
                    spec: campaign(scope, item),
                    floor_on_total: scope % 2 == 0,
                    year: 2027,
                    batch
                }
            )),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        #[test]
        fn random_years_never_break_the_ledger(steps in proptest::collection::vec(step(), 1..60)) {
            let mut ledger = Ledger::new();
            let directory = ProgrammeAction::RecordEntityDirectory { sha256: DIRECTORY.into(), entities: 10, bytes: 100 };
            let mut stamp_ms = T0;
            ledger.apply(&Command { stamp_ms, actor: command("gd", "440000"), idempotency: None, action: Action::Programme(Box::new(directory)) }).unwrap();
            for (pick, action) in steps {
                stamp_ms += 60_000;
                let before = (ledger.item_list().clone(), ledger.annual_plans().clone(), ledger.programme().clone());
                let result = ledger.apply(&Command { stamp_ms, actor: actor_of(pick), idempotency: None, action: Action::Programme(Box::new(action)) });
                ledger.check_invariants().expect("the invariants hold");
                if result.is_err() {
                    prop_assert_eq!((ledger.item_list(), ledger.annual_plans(), ledger.programme()), (&before.0, &before.1, &before.2));
                }
            }
            let copy = ledger.copy_through_a_checkpoint_for_tests();
            prop_assert_eq!(copy.digest(), ledger.digest());
        }
    }
}

/// A campaign's item of code `code`, as the shipped national list of the random tests has it.
fn item_list_campaign_item(code: &str) -> crate::campaign::InspectionItem {
    crate::campaign::InspectionItem {
        code: code.into(),
        name: format!("事项{code}"),
        industries: Vec::new(),
        expertise: "food".into(),
    }
}

pub(super) mod filing {
    use super::*;
    use crate::campaign::plan_filing::{for_filing, PlanFilingAction, PlanForFiling};

    fn filing(ledger: &mut Ledger, actor: Actor, action: PlanFilingAction) -> CommandResult {
        let before = ledger.plan_filings().clone();
        let stamp_ms = ledger.last_stamp_ms().max(T0) + 1000;
        let action = Action::Programme(Box::new(ProgrammeAction::PlanFiling(action)));
        let result = ledger.apply(&Command { stamp_ms, actor, idempotency: None, action });
        ledger.check_invariants().expect("the ledger keeps its invariants");
        let copy = ledger.copy_through_a_checkpoint_for_tests();
        assert_eq!(copy.digest(), ledger.digest());
        if result.is_err() {
            assert_eq!(ledger.plan_filings(), &before, "a refusal changes nothing");
        }
        result
    }

    /// Guangdong's published plan of 2027 with one batch, as its group would send it.
    pub(in super::super) fn published() -> (Ledger, PlanForFiling) {
        let mut ledger = Ledger::new();
        let province = command("gd-command", "440000");
        let set = PlanAction::SetBatch {
            year: 2027,
            batch: None,
            spec: batch("全省食品", "440000", 50_000),
            from_proposal: None,
            reason: String::new(),
        };
        plan(&mut ledger, province.clone(), set).expect("a batch");
        assert!(for_filing(ledger.annual_plans().plan(bureau("440000"), 2027).unwrap()).is_none(), "not published");
        plan(&mut ledger, province, PlanAction::Publish { year: 2027 }).expect("published");
        let copy = for_filing(ledger.annual_plans().plan(bureau("440000"), 2027).unwrap()).expect("published");
        assert_eq!(copy.version, 2);
        (ledger, copy)
    }

    #[test]
    fn a_child_groups_published_plan_is_filed_once_per_version_and_checked_as_a_peers_message() {
        let (mut province_ledger, copy) = published();
        let mut national = Ledger::new();
        let from_guangdong = peer_actor(bureau("440000"));
        // Only the group that keeps it files it: not a user, not another province's group.
        let file = |plan: &PlanForFiling| PlanFilingAction::File(Box::new(plan.clone()));
        assert!(matches!(filing(&mut national, command("samr", "000000"), file(&copy)), Err(Rejection::Forbidden(_))));
        assert!(matches!(
            filing(&mut national, peer_actor(bureau("450000")), file(&copy)),
            Err(Rejection::Forbidden(_))
        ));
        // Bad copies are refused whole: a batch out of the province, numbered wrong, a version
        // of nothing, an unpublished plan, a city for a province.
        let mut outside = copy.clone();
        outside.batches[0].spec.scope = bureau("450000");
        let mut numbered = copy.clone();
        numbered.batches[0].number = 2;
        let mut unversioned = copy.clone();
        unversioned.version = 0;
        let mut unpublished = copy.clone();
        unpublished.published_at_ms = 0;
        let mut city = copy.clone();
        city.province = bureau("440100");
        let mut ahead = copy.clone();
        ahead.batches[0].changed_in = 9;
        for bad in [outside, numbered, unversioned, unpublished, city, ahead] {
            let refused = filing(&mut national, from_guangdong.clone(), file(&bad));
            assert!(
                matches!(refused, Err(Rejection::Invalid { .. } | Rejection::Forbidden(_))),
                "{bad:?}: {refused:?}"
            );
        }
        let filed = filing(&mut national, from_guangdong.clone(), file(&copy)).expect("filed");
        assert!(matches!(filed.record, Some(ProgrammeRecord::PlanFiled(ref f)) if f.plan == copy));
        assert!(matches!(
            filing(&mut national, from_guangdong.clone(), file(&copy)),
            Err(Rejection::NothingToRecord(_))
        ));
        let mut newer = copy.clone();
        newer.version = 3;
        filing(&mut national, from_guangdong, file(&newer)).expect("a newer version replaces it");
        let listed: Vec<u32> = national.plan_filings().filed_in(2027).map(|f| f.plan.version).collect();
        assert_eq!(listed, [3]);
        assert_eq!(national.plan_filings().filed_in(2026).count(), 0);

        // The province records the version its parent took, once, by its own process.
        let record = |version| PlanFilingAction::RecordFiled {
            province: bureau("440000"),
            year: 2027,
            with_group: bureau("000000"),
            version,
        };
        let system = Actor { user: "system".into(), bureau: bureau("440000"), role: Role::System };
        assert!(matches!(
            filing(&mut province_ledger, command("gd-command", "440000"), record(2)),
            Err(Rejection::Forbidden(_))
        ));
        assert!(matches!(filing(&mut province_ledger, system.clone(), record(7)), Err(Rejection::Invalid { .. })));
        filing(&mut province_ledger, system.clone(), record(2)).expect("recorded");
        assert!(matches!(filing(&mut province_ledger, system, record(2)), Err(Rejection::NothingToRecord(_))));
        let recorded = province_ledger.plan_filings().filing(bureau("440000"), 2027).expect("a filing");
        assert_eq!((recorded.with_group, recorded.version), (bureau("000000"), 2));
    }

    #[test]
    fn a_day_that_is_no_day_does_not_decode() {
        let plan_json = serde_json::json!({"name": "x", "items": ["B01"], "scope": 440000, "entities": 1,
            "starts": 20271399, "ends": 20271231});
        assert!(serde_json::from_value::<BatchSpec>(plan_json).is_err());
        let good = serde_json::json!({"name": "x", "items": ["B01"], "scope": 440000, "entities": 1,
            "starts": 20270301, "ends": 20271231});
        assert!(serde_json::from_value::<BatchSpec>(good).is_ok());
    }
}

mod handdown {
    //! A province's plan handed down to a city group: the copy checked as a peer's message and
    //! replaced only by a newer version, the city group's campaigns joining its batches there
    //! and kept across versions, no change of the copy by the city, and the city group's
    //! progress reports taken by the province only from a group it handed the plan to.

    use super::filing::published;
    use super::random::{campaign, DIRECTORY};
    use super::*;
    use crate::campaign::plan_handdown::{BatchProgress, CityProgress, PlanHandDownAction, ProgressReport};

    fn handdown(ledger: &mut Ledger, actor: Actor, action: PlanHandDownAction) -> CommandResult {
        let before = ledger.plan_handdown().clone();
        let stamp_ms = ledger.last_stamp_ms().max(T0) + 1000;
        let action = Action::Programme(Box::new(ProgrammeAction::PlanHandDown(action)));
        let result = ledger.apply(&Command { stamp_ms, actor, idempotency: None, action });
        ledger.check_invariants().expect("the ledger keeps its invariants");
        let copy = ledger.copy_through_a_checkpoint_for_tests();
        assert_eq!(copy.digest(), ledger.digest());
        if result.is_err() {
            assert_eq!(ledger.plan_handdown(), &before, "a refusal changes nothing");
        }
        result
    }

    fn programme(ledger: &mut Ledger, actor: Actor, action: ProgrammeAction) -> CommandResult {
        let stamp_ms = ledger.last_stamp_ms().max(T0) + 1000;
        let result =
            ledger.apply(&Command { stamp_ms, actor, idempotency: None, action: Action::Programme(Box::new(action)) });
        ledger.check_invariants().expect("the ledger keeps its invariants");
        result
    }

    fn in_batch(batch: u32) -> ProgrammeAction {
        // Guangzhou's campaign over Tianhe, item B01.
        ProgrammeAction::CreateCampaignInBatch { spec: campaign(0, 1), floor_on_total: true, year: 2027, batch }
    }

    fn report(counted_at: u64, city: &str, drawn: u64, completed: u64) -> PlanHandDownAction {
        PlanHandDownAction::Report(Box::new(ProgressReport {
            province: bureau("440000"),
            year: 2027,
            counted_at,
            batches: vec![BatchProgress {
                batch: 1,
                campaigns: 1,
                by_city: vec![CityProgress { city: bureau(city), drawn, completed, published: 0 }],
            }],
        }))
    }

    #[test]
    fn a_province_plan_goes_down_to_a_city_group_its_campaigns_join_and_progress_comes_up() {
        let (mut province, copy) = published();
        let mut city = Ledger::new();
        let receive =
            |plan: &crate::campaign::plan_filing::PlanForFiling| PlanHandDownAction::Receive(Box::new(plan.clone()));
        let from_guangdong = peer_actor(bureau("440000"));
        // Only the group keeping the plan hands it down: not a user, not another province.
        assert!(matches!(handdown(&mut city, command("gz", "440100"), receive(&copy)), Err(Rejection::Forbidden(_))));
        assert!(matches!(
            handdown(&mut city, peer_actor(bureau("450000")), receive(&copy)),
            Err(Rejection::Forbidden(_))
        ));
        let mut outside = copy.clone();
        outside.batches[0].spec.scope = bureau("450000");
        assert!(matches!(
            handdown(&mut city, from_guangdong.clone(), receive(&outside)),
            Err(Rejection::Invalid { .. })
        ));
        // Before the copy, a campaign of the batch finds none.
        programme(
            &mut city,
            command("gz", "440100"),
            ProgrammeAction::RecordEntityDirectory { sha256: DIRECTORY.into(), entities: 10, bytes: 100 },
        )
        .expect("a directory");
        assert!(matches!(programme(&mut city, command("gz", "440100"), in_batch(1)), Err(Rejection::NoSuch(_))));
        handdown(&mut city, from_guangdong.clone(), receive(&copy)).expect("handed down");
        assert!(matches!(
            handdown(&mut city, from_guangdong.clone(), receive(&copy)),
            Err(Rejection::NothingToRecord(_))
        ));
        // The city group's campaign joins the batch of the copy; the province's plan is not
        // changed in the city's group.
        let created = programme(&mut city, command("gz", "440100"), in_batch(1)).expect("a campaign of batch 1");
        let Some(ProgrammeRecord::Campaign(campaign)) = created.record else { panic!("a campaign") };
        assert!(matches!(programme(&mut city, command("gz", "440100"), in_batch(2)), Err(Rejection::NoSuch(_))));
        let held = city.plan_handdown().received(bureau("440000"), 2027).expect("the copy");
        assert_eq!(held.plan.batches[0].campaigns, [campaign.id]);
        let propose =
            PlanAction::Propose { year: 2027, spec: batch("广州餐饮", "440100", 20), note: String::new() };
        let refused = programme(&mut city, command("gz", "440100"), ProgrammeAction::AnnualPlan(Box::new(propose)));
        assert!(matches!(refused, Err(Rejection::Conflict { code: ConflictCode::PlanElsewhere, .. })), "{refused:?}");
        // A newer version with a batch more keeps the campaigns; one with fewer batches is refused.
        let mut newer = copy.clone();
        newer.version = 3;
        let mut second = newer.batches[0].clone();
        (second.number, second.listed_in, second.changed_in) = (2, 3, 3);
        newer.batches.push(second);
        let mut fewer = newer.clone();
        fewer.version = 4;
        fewer.batches.clear();
        handdown(&mut city, from_guangdong.clone(), receive(&newer)).expect("a newer version");
        let held = city.plan_handdown().received(bureau("440000"), 2027).expect("the copy");
        assert_eq!(
            (held.plan.version, held.plan.batches[0].campaigns.len(), held.plan.batches[1].campaigns.len()),
            (3, 1, 0)
        );
        assert!(matches!(handdown(&mut city, from_guangdong, receive(&fewer)), Err(Rejection::Invalid { .. })));
        // Another group is refused whatever version it sends, an older one included.
        let mut older = copy.clone();
        older.version = 1;
        for plan in [&older, &fewer] {
            assert!(matches!(
                handdown(&mut city, peer_actor(bureau("000000")), receive(plan)),
                Err(Rejection::Forbidden(_))
            ));
        }
        // The group keeping a plan takes no copy of it.
        let refused = handdown(&mut province, peer_actor(bureau("000000")), receive(&copy));
        assert!(matches!(refused, Err(Rejection::Conflict { code: ConflictCode::PlanKeptHere, .. })), "{refused:?}");

        // Progress comes up only from a group the plan went down to.
        let from_guangzhou = peer_actor(bureau("440100"));
        assert!(matches!(
            handdown(&mut province, from_guangzhou.clone(), report(T0, "440100", 10, 2)),
            Err(Rejection::Forbidden(_))
        ));
        let system = Actor { user: "system".into(), bureau: bureau("440000"), role: Role::System };
        let record = PlanHandDownAction::RecordHandedDown {
            province: bureau("440000"),
            year: 2027,
            to_group: bureau("440100"),
            version: 2,
        };
        assert!(matches!(
            handdown(&mut province, command("gd", "440000"), record.clone()),
            Err(Rejection::Forbidden(_))
        ));
        handdown(&mut province, system.clone(), record.clone()).expect("recorded");
        assert!(matches!(handdown(&mut province, system, record), Err(Rejection::NothingToRecord(_))));
        // Bad reports are refused whole: a city outside the group, a county (the group counts
        // by city), more completed than drawn, a batch the plan lacks.
        let mut no_batch = report(T0, "440100", 10, 2);
        if let PlanHandDownAction::Report(report) = &mut no_batch {
            report.batches[0].batch = 9;
        }
        for bad in [report(T0, "440300", 10, 2), report(T0, "440106", 10, 2), report(T0, "440100", 10, 11), no_batch] {
            assert!(matches!(handdown(&mut province, from_guangzhou.clone(), bad), Err(Rejection::Invalid { .. })));
        }
        handdown(&mut province, from_guangzhou.clone(), report(5, "440100", 10, 2)).expect("a report");
        assert!(matches!(
            handdown(&mut province, from_guangzhou.clone(), report(4, "440100", 12, 3)),
            Err(Rejection::NothingToRecord(_))
        ));
        handdown(&mut province, from_guangzhou, report(9, "440100", 12, 3)).expect("a newer report");
        let reports: Vec<_> = province.plan_handdown().reports_of(bureau("440000"), 2027).collect();
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].report.batches[0].by_city[0].drawn, 12);
        assert_eq!(province.plan_handdown().handed_of(bureau("440000"), 2027).count(), 1);
        assert_eq!(province.plan_handdown().reports_of(bureau("440000"), 2026).count(), 0);

        // A city group relays its centre's proposal: taken into the province's plan as that
        // centre's; not for a bureau of another group, not from a user, not to a copy.
        let relay = |bureau_code: &str, by: &str| PlanHandDownAction::Propose {
            year: 2027,
            bureau: bureau(bureau_code),
            by: by.into(),
            spec: batch("本地餐饮", bureau_code, 20),
            note: "本市重点".into(),
        };
        let from_guangzhou = peer_actor(bureau("440100"));
        for (actor, bad) in [
            (from_guangzhou.clone(), relay("440300", "sz")),
            (command("gz", "440100"), relay("440100", "gz")),
            (from_guangzhou.clone(), relay("440100", "")),
        ] {
            let before = province.annual_plans().clone();
            let refused = handdown(&mut province, actor, bad);
            assert!(matches!(refused, Err(Rejection::Forbidden(_) | Rejection::Invalid { .. })), "{refused:?}");
            assert_eq!(province.annual_plans(), &before);
        }
        handdown(&mut province, from_guangzhou.clone(), relay("440100", "gz-command")).expect("relayed");
        let proposals = &province.annual_plans().plan(bureau("440000"), 2027).unwrap().proposals;
        assert_eq!((proposals[0].bureau, proposals[0].by.as_str()), (bureau("440100"), "group:440100/gz-command"));
        // One group's proposals not taken up yet are bounded: the others' stay open to them.
        for _ in 1..crate::campaign::plan_handdown::OPEN_RELAYED_PROPOSALS_PER_GROUP_MAX {
            handdown(&mut province, from_guangzhou.clone(), relay("440106", "th-command")).expect("relayed");
        }
        let refused = handdown(&mut province, from_guangzhou.clone(), relay("440100", "gz-command"));
        assert!(matches!(refused, Err(Rejection::LimitReached(_))), "{refused:?}");
        handdown(&mut province, peer_actor(bureau("440300")), relay("440300", "sz-command")).expect("Shenzhen's own");
        let refused = handdown(&mut city, from_guangzhou, relay("440100", "gz-command"));
        assert!(matches!(refused, Err(Rejection::Conflict { code: ConflictCode::PlanElsewhere, .. })), "{refused:?}");
    }
}
