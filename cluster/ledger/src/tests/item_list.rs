//! The inspection-item list: adopted from the national list, added to by a province with its
//! legal basis, revised and retired by that province only, every change a version; campaigns
//! checked against it once adopted (and not before, so older logs replay as they applied).

use crate::campaign::item_list::{
    CheckPoint, ItemList, ItemListAction, ItemListStep, ItemOrigin, ItemSpec, OrganiserLevel,
};
use crate::campaign::{CampaignSpec, InspectorMode, ProgrammeAction, ProgrammeRecord, RiskRatios, RiskScoring};
use crate::site_record::AnswerKind;
use crate::*;

/// 2026-12-07 09:00 Beijing.
const T0: u64 = 1_796_605_200_000;
const DIRECTORY: &str = "1111111111111111111111111111111111111111111111111111111111111111";

fn bureau(code: &str) -> BureauCode {
    BureauCode::parse_compiled(code).expect(code)
}

fn command(user: &str, code: &str) -> Actor {
    Actor { user: user.to_owned(), bureau: bureau(code), role: Role::Command }
}

fn item(code: &str, organiser: OrganiserLevel) -> ItemSpec {
    ItemSpec {
        code: code.into(),
        name: format!("事项{code}"),
        basis: "《企业信息公示暂行条例》第八条".into(),
        organiser,
        industries: Vec::new(),
        expertise: "registration".into(),
        check_points: vec![CheckPoint {
            code: format!("{code}-01"),
            wording: "是否按时公示年度报告".into(),
            answer: AnswerKind::Conformity,
            basis: String::new(),
        }],
    }
}

fn national() -> Vec<ItemSpec> {
    vec![item("A01", OrganiserLevel::Province), item("B01", OrganiserLevel::County)]
}

fn apply(ledger: &mut Ledger, actor: Actor, action: ProgrammeAction) -> CommandResult {
    let before = (ledger.item_list().clone(), ledger.programme().clone());
    let stamp_ms = ledger.last_stamp_ms().max(T0) + 1000;
    let result =
        ledger.apply(&Command { stamp_ms, actor, idempotency: None, action: Action::Programme(Box::new(action)) });
    ledger.check_invariants().expect("the ledger keeps its invariants");
    let copy = ledger.copy_through_a_checkpoint_for_tests();
    assert_eq!(copy.digest(), ledger.digest(), "a copy through a checkpoint is the same ledger");
    assert_eq!(copy.item_list(), ledger.item_list());
    if result.is_err() {
        assert_eq!((ledger.item_list(), ledger.programme()), (&before.0, &before.1), "a refusal changes nothing");
    }
    result
}

fn change_list(ledger: &mut Ledger, actor: Actor, action: ItemListAction) -> Result<u32, Rejection> {
    match apply(ledger, actor, ProgrammeAction::ItemList(Box::new(action)))?.record {
        Some(ProgrammeRecord::ItemList(version)) => Ok(version.number),
        other => panic!("a list change answers with its version, not {other:?}"),
    }
}

fn adopt(ledger: &mut Ledger, items: Vec<ItemSpec>) -> Result<u32, Rejection> {
    change_list(ledger, command("gd-command", "440000"), ItemListAction::AdoptNational { items, reason: String::new() })
}

fn campaign(organiser: &str, scope: &str, items: &[&ItemSpec]) -> ProgrammeAction {
    ProgrammeAction::CreateCampaign(Box::new(CampaignSpec {
        name: "2026年抽查".into(),
        bureau: bureau(organiser),
        items: items.iter().map(|item| item.as_campaign_item()).collect(),
        scope_region: bureau(scope),
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
            points_per_finding: 10,
            points_per_complaint: 10,
            points_per_overdue_task: 10,
            high_from: 50,
            low_below: 10,
        },
        entity_directory: DIRECTORY.into(),
        complete_deadline_ms: None,
    }))
}

fn with_directory() -> Ledger {
    let mut ledger = Ledger::new();
    let directory = ProgrammeAction::RecordEntityDirectory { sha256: DIRECTORY.into(), entities: 10, bytes: 1_000 };
    apply(&mut ledger, command("gd-command", "440000"), directory).expect("the directory is recorded");
    ledger
}

fn conflict_code(result: CommandResult) -> ConflictCode {
    match result {
        Err(Rejection::Conflict { code, .. }) => code,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[test]
fn before_a_list_is_adopted_campaigns_keep_the_items_they_carry() {
    let mut ledger = with_directory();
    assert!(!ledger.item_list().adopted());
    // An item no list has, province-only by its name, planned by a city: taken as before.
    let unlisted = item("Z99", OrganiserLevel::Province);
    apply(&mut ledger, command("gz-command", "440100"), campaign("440100", "440106", &[&unlisted]))
        .expect("a group without a list decides as before");
}

#[test]
fn the_national_list_is_adopted_and_versions_follow_every_change() {
    let mut ledger = with_directory();
    assert_eq!(adopt(&mut ledger, national()), Ok(1));
    let list = ledger.item_list();
    assert!(list.adopted() && list.version() == 1);
    assert_eq!(list.items().count(), 2);
    assert!(list.items().all(|listed| listed.origin == ItemOrigin::National && listed.listed_in == 1));
    // The same list again changes nothing and is said so.
    assert!(matches!(adopt(&mut ledger, national()), Err(Rejection::NothingToRecord(_))));
    // A new national list: B01 revised, C01 added, A01 gone (retired, never removed).
    let mut next = vec![item("B01", OrganiserLevel::County), item("C01", OrganiserLevel::County)];
    next[0].name = "食品经营行为检查".into();
    assert_eq!(adopt(&mut ledger, next), Ok(2));
    let list = ledger.item_list();
    match &list.versions()[1].step {
        ItemListStep::AdoptedNational { added, revised, retired } => {
            assert_eq!(
                (added.as_slice(), revised.as_slice(), retired.as_slice()),
                (&["C01".to_owned()][..], &["B01".to_owned()][..], &["A01".to_owned()][..])
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(list.item("A01").is_some_and(|a| a.retired && a.changed_in == 2 && a.listed_in == 1));
    assert!(list.current("A01").is_none());
    assert_eq!(list.current("B01").map(|b| b.spec.name.as_str()), Some("食品经营行为检查"));
}

#[test]
fn a_province_adds_with_its_legal_basis_and_only_it_revises_or_retires() {
    let mut ledger = with_directory();
    adopt(&mut ledger, national()).unwrap();
    let mut addition = item("44-GD01", OrganiserLevel::Prefecture);
    let add =
        |item: &ItemSpec, reason: &str| ItemListAction::Add { item: Box::new(item.clone()), reason: reason.into() };
    // A city may not add; a reason and a legal basis are required; a code is given once.
    let refused = change_list(&mut ledger, command("gz-command", "440100"), add(&addition, "本省补充"));
    assert!(matches!(refused, Err(Rejection::Forbidden(_))), "{refused:?}");
    let refused = change_list(&mut ledger, command("gd-command", "440000"), add(&addition, ""));
    assert!(matches!(refused, Err(Rejection::Invalid { .. })), "{refused:?}");
    let mut lawless = addition.clone();
    lawless.basis = " ".into();
    let refused = change_list(&mut ledger, command("gd-command", "440000"), add(&lawless, "本省补充"));
    assert!(matches!(refused, Err(Rejection::Invalid { ref field, .. }) if field == "basis"), "{refused:?}");
    // An addition's code starts with its province's digits, so no national list takes it.
    let unprefixed =
        change_list(&mut ledger, command("gd-command", "440000"), add(&item("GD01", OrganiserLevel::County), "补充"));
    assert!(matches!(unprefixed, Err(Rejection::Invalid { ref field, .. }) if field == "code"), "{unprefixed:?}");
    assert_eq!(change_list(&mut ledger, command("gd-command", "440000"), add(&addition, "本省补充")), Ok(2));
    let taken = change_list(&mut ledger, command("gd-command", "440000"), add(&addition, "重复"));
    assert_eq!(conflict_code(taken.map(|_| Applied::default())), ConflictCode::ItemListed);
    assert_eq!(
        ledger.item_list().item("44-GD01").map(|l| l.origin.clone()),
        Some(ItemOrigin::Addition(bureau("440000")))
    );

    // Zhejiang may not touch Guangdong's addition; nobody revises a national item by hand.
    addition.name = "特种设备安全监督检查".into();
    let revise =
        |item: &ItemSpec| ItemListAction::Revise { item: Box::new(item.clone()), reason: "名称调整".into() };
    let refused = change_list(&mut ledger, command("zj-command", "330000"), revise(&addition));
    assert!(matches!(refused, Err(Rejection::Forbidden(_))), "{refused:?}");
    let refused =
        change_list(&mut ledger, command("gd-command", "440000"), revise(&item("A01", OrganiserLevel::County)));
    assert!(matches!(refused, Err(Rejection::Forbidden(_))), "{refused:?}");
    assert_eq!(change_list(&mut ledger, command("gd-command", "440000"), revise(&addition)), Ok(3));
    let retire = ItemListAction::Retire { code: "44-GD01".into(), reason: "并入总局清单".into() };
    assert_eq!(change_list(&mut ledger, command("gd-command", "440000"), retire.clone()), Ok(4));
    assert!(matches!(
        change_list(&mut ledger, command("gd-command", "440000"), retire),
        Err(Rejection::NothingToRecord(_))
    ));
    // A national list may not hold a code of an addition's form.
    let mut clash = national();
    clash.push(item("44-GD01", OrganiserLevel::County));
    assert!(matches!(adopt(&mut ledger, clash), Err(Rejection::Invalid { .. })));
    let steps: Vec<&ItemListStep> = ledger.item_list().versions().iter().map(|v| &v.step).collect();
    assert_eq!(steps.len(), 4);
    assert!(matches!(steps[3], ItemListStep::Retired { code } if code == "44-GD01"));
    assert_eq!(ledger.item_list().versions()[3].reason, "并入总局清单");
}

#[test]
fn once_adopted_a_campaign_uses_current_items_as_listed_at_its_organisers_level() {
    let mut ledger = with_directory();
    adopt(&mut ledger, national()).unwrap();
    let [a01, b01] = [&national()[0], &national()[1]];
    let guangzhou = command("gz-command", "440100");
    // Checks of publicly disclosed information are drawn by the province.
    let refused = apply(&mut ledger, guangzhou.clone(), campaign("440100", "440106", &[a01, b01]));
    assert!(matches!(refused, Err(Rejection::Forbidden(ref reason)) if reason.contains("A01")), "{refused:?}");
    apply(&mut ledger, command("gd-command", "440000"), campaign("440000", "440106", &[a01, b01]))
        .expect("the province plans A01");
    apply(&mut ledger, guangzhou.clone(), campaign("440100", "440106", &[b01])).expect("a city plans B01");
    // An item not on the list, or not as listed, is refused.
    let unlisted = item("Z99", OrganiserLevel::County);
    assert_eq!(
        conflict_code(apply(&mut ledger, guangzhou.clone(), campaign("440100", "440106", &[&unlisted]))),
        ConflictCode::ItemNotListed
    );
    let mut bent = b01.clone();
    bent.expertise = "pricing".into();
    assert_eq!(
        conflict_code(apply(&mut ledger, guangzhou.clone(), campaign("440100", "440106", &[&bent]))),
        ConflictCode::ItemNotListed
    );
    // A province's addition serves its own region only.
    let gd01 = item("44-GD01", OrganiserLevel::County);
    let add = ItemListAction::Add { item: Box::new(gd01.clone()), reason: "本省补充".into() };
    change_list(&mut ledger, command("gd-command", "440000"), add).unwrap();
    apply(&mut ledger, guangzhou.clone(), campaign("440100", "440106", &[&gd01]))
        .expect("Guangdong's addition in Tianhe");
    let refused = apply(&mut ledger, command("hz-command", "330100"), campaign("330100", "330106", &[&gd01]));
    assert!(matches!(refused, Err(Rejection::Forbidden(_))), "{refused:?}");
    // A retired item plans nothing new.
    let retire = ItemListAction::Retire { code: "44-GD01".into(), reason: "停止".into() };
    change_list(&mut ledger, command("gd-command", "440000"), retire).unwrap();
    assert_eq!(
        conflict_code(apply(&mut ledger, guangzhou, campaign("440100", "440106", &[&gd01]))),
        ConflictCode::ItemNotListed
    );
}

#[test]
fn nothing_is_added_before_the_national_list_and_a_county_adopts_none() {
    let mut ledger = with_directory();
    let add = ItemListAction::Add { item: Box::new(item("44-GD01", OrganiserLevel::County)), reason: "补充".into() };
    let refused = change_list(&mut ledger, command("gd-command", "440000"), add);
    assert_eq!(conflict_code(refused.map(|_| Applied::default())), ConflictCode::ListNotAdopted);
    let declare = ItemListAction::DeclareMatters { total: 5, reason: String::new() };
    let refused = change_list(&mut ledger, command("gd-command", "440000"), declare);
    assert_eq!(conflict_code(refused.map(|_| Applied::default())), ConflictCode::ListNotAdopted);
    let county = ItemListAction::AdoptNational { items: national(), reason: String::new() };
    assert!(matches!(change_list(&mut ledger, command("th-command", "440106"), county), Err(Rejection::Forbidden(_))));
    let city = ItemListAction::AdoptNational { items: national(), reason: String::new() };
    assert_eq!(change_list(&mut ledger, command("gz-command", "440100"), city), Ok(1), "a city's own group adopts");
}

#[test]
fn only_command_users_keep_the_list_and_a_bad_item_is_refused_whole() {
    let mut ledger = with_directory();
    let operator = Actor { user: "gd-operator".into(), bureau: bureau("440000"), role: Role::Operator };
    let adoption = ItemListAction::AdoptNational { items: national(), reason: String::new() };
    assert!(matches!(change_list(&mut ledger, operator, adoption), Err(Rejection::Forbidden(_))));
    let mut twice = national();
    twice.push(item("B01", OrganiserLevel::County));
    assert!(matches!(adopt(&mut ledger, twice), Err(Rejection::Invalid { .. })));
    let mut bad_point = national();
    let repeated = bad_point[1].check_points[0].clone();
    bad_point[1].check_points.push(repeated);
    assert!(matches!(adopt(&mut ledger, bad_point), Err(Rejection::Invalid { .. })));
    let mut bad_code = national();
    bad_code[0].code = "A 01".into();
    assert!(matches!(adopt(&mut ledger, bad_code), Err(Rejection::Invalid { .. })));
    assert!(matches!(adopt(&mut ledger, Vec::new()), Err(Rejection::Invalid { .. })));
    assert!(!ledger.item_list().adopted());
}

#[test]
fn a_shipped_list_is_version_zero_and_not_adopted() {
    let list = ItemList::shipped(national());
    assert!(!list.adopted() && list.version() == 0 && list.current("A01").is_some());
    assert!(OrganiserLevel::County.admits(RegionLevel::Prefecture));
    assert!(!OrganiserLevel::Province.admits(RegionLevel::Prefecture));
    assert!(!OrganiserLevel::County.admits(RegionLevel::Station));
}

#[test]
fn a_core_of_format_5_reads_as_a_ledger_with_no_list() {
    let ledger = with_directory();
    let core = ledger.encode_core();
    let no_list = crate::codec::encode(&crate::campaign::Planning::default()).unwrap();
    let no_register = crate::codec::encode(&crate::campaign::register::Register::default()).unwrap();
    let format_5 = &core[..core.len() - no_register.len() - no_list.len()];
    let format_6 = crate::campaign::item_list::core_of_format_5(format_5);
    assert_eq!(crate::campaign::register::core_of_format_6(&format_6), core);
}

#[test]
fn a_province_declares_its_enforcement_matters_and_the_coverage_counts_its_current_items() {
    let mut ledger = with_directory();
    adopt(&mut ledger, national()).unwrap();
    let regions = ledger.regions();
    assert_eq!(ledger.item_list().coverage(&regions, bureau("440106")), None, "nothing declared yet");
    let declare =
        |total: u32| ItemListAction::DeclareMatters { total, reason: "本省执法检查事项清单".into() };
    let refused = change_list(&mut ledger, command("gz-command", "440100"), declare(4));
    assert!(matches!(refused, Err(Rejection::Forbidden(_))), "a city declares nothing: {refused:?}");
    assert!(matches!(
        change_list(&mut ledger, command("gd-command", "440000"), declare(0)),
        Err(Rejection::Invalid { .. })
    ));
    assert_eq!(change_list(&mut ledger, command("gd-command", "440000"), declare(4)), Ok(2));
    assert!(matches!(
        change_list(&mut ledger, command("gd-command", "440000"), declare(4)),
        Err(Rejection::NothingToRecord(_))
    ));
    assert!(
        matches!(
            change_list(&mut ledger, command("gd-command", "440000"), declare(5)),
            Err(Rejection::LimitReached(_))
        ),
        "one declaration a day"
    );
    let add =
        ItemListAction::Add { item: Box::new(item("44-GD01", OrganiserLevel::County)), reason: "本省补充".into() };
    change_list(&mut ledger, command("gd-command", "440000"), add).unwrap();
    // Guangdong: two national items and its own, of four matters; Zhejiang declared nothing.
    assert_eq!(ledger.item_list().coverage(&regions, bureau("440106")), Some((3, 4)));
    assert_eq!(ledger.item_list().coverage(&regions, bureau("440000")), Some((3, 4)));
    assert_eq!(ledger.item_list().coverage(&regions, bureau("330106")), None);
    assert!(matches!(ledger.item_list().versions()[1].step, ItemListStep::DeclaredMatters { total: 4 }));
}
