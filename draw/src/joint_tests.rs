//! Joint inspections with other departments (`ledger::campaign::departments`), driven through
//! the ledger and the draw together: a department registered, its item listed and its
//! inspectors enrolled join a campaign's teams by the draw's own expertise rule, count for
//! neither the office nor a station, enter their own part of the result, and the organiser's
//! result and its publication wait for and carry that part.

use ledger::campaign::departments::{is_department_inspector, DepartmentAction};
use ledger::campaign::item_list::{ItemListAction, ItemSpec, OrganiserLevel};
use ledger::campaign::{CampaignSpec, InspectionItem, InspectorMode, ProgrammeAction, PublicResult};
use ledger::organisation::{OrganisationAction, PersonRole};
use ledger::{
    Action, Actor, CompletionOutcome, ConflictCode, Ledger, Regions, Rejection, Role, TaskChange, TaskId, TaskState,
    TimelineAction, Transition,
};

use crate::directory;
use crate::generate::generate;
use crate::risk_tests::{campaign_with_beacon, draw_and_commit};
use crate::tests::{actor, code, pool, spec, Desk, DAY_MS, T0, TIANHE};
use crate::verify;

const PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";

fn planner() -> Actor {
    actor("gz-planner", "440100", Role::Command)
}

fn departments(action: DepartmentAction) -> ProgrammeAction {
    ProgrammeAction::Departments(action)
}

/// The list item of a campaign item, as the national list (or the department) gives it.
fn listed(item: &InspectionItem) -> ItemSpec {
    ItemSpec {
        code: item.code.clone(),
        name: item.name.clone(),
        basis: "《税收征收管理法》第五十四条".into(),
        organiser: OrganiserLevel::County,
        industries: item.industries.clone(),
        expertise: item.expertise.clone(),
        check_points: Vec::new(),
    }
}

fn tax_item() -> InspectionItem {
    InspectionItem {
        code: "D-tax-01".into(),
        name: "发票使用情况检查".into(),
        industries: Vec::new(),
        expertise: "dept:tax".into(),
    }
}

fn tax_inspector(id: &str) -> ledger::campaign::Inspector {
    ledger::campaign::Inspector {
        id: id.into(),
        name: format!("税务检查员{id}"),
        bureau: code(TIANHE),
        station: None,
        expertise: Vec::new(),
        qualified: true,
        active: true,
        enrolled_at_ms: 0,
        retired_at_ms: None,
    }
}

/// A desk with Tianhe's directory, the bureau's own inspectors, the national list adopted, and
/// the tax department registered with its item and four inspectors.
fn desk_with_the_tax_department(bytes: &[u8]) -> Desk {
    let mut desk = Desk { ledger: Ledger::new(), stamp_ms: T0 };
    let summary = directory::check(Regions::compiled(), bytes).unwrap();
    let record = ProgrammeAction::RecordEntityDirectory {
        sha256: summary.sha256.clone(),
        entities: summary.entities,
        bytes: summary.bytes,
    };
    desk.programme(&planner(), record).expect("directory version recorded");
    desk.programme(&planner(), ProgrammeAction::EnrollInspectors(pool())).expect("the bureau's own enrolled");
    let national = spec(&summary.sha256).items.iter().map(listed).collect();
    let adopt = ItemListAction::AdoptNational { items: national, reason: String::new() };
    desk.programme(&planner(), ProgrammeAction::ItemList(Box::new(adopt))).expect("list adopted");

    let register = || {
        departments(DepartmentAction::Register {
            code: "tax".into(), name: "国家税务总局广州市天河区税务局".into()
        })
    };
    assert!(matches!(
        desk.programme(&actor("th-operator", TIANHE, Role::Operator), register()),
        Err(Rejection::Forbidden(_))
    ));
    let badly = departments(DepartmentAction::Register { code: "Tax!".into(), name: "税务".into() });
    assert!(matches!(desk.programme(&planner(), badly), Err(Rejection::Invalid { .. })));
    desk.programme(&planner(), register()).expect("registered");
    assert!(matches!(desk.programme(&planner(), register()), Err(Rejection::NothingToRecord(_))), "once");

    // The department's tag is its own from now on: the bureau's staff and items may not take it.
    let mut own = pool()[0].clone();
    own.id = "TH900".into();
    own.expertise = vec!["dept:tax".into()];
    let refused = desk.programme(&planner(), ProgrammeAction::EnrollInspector(Box::new(own)));
    assert!(matches!(refused, Err(Rejection::Invalid { .. })), "{refused:?}");

    // Its items: its prefix and its tag, on the adopted list.
    let list = |item: InspectionItem| {
        departments(DepartmentAction::ListItem {
            department: "tax".into(),
            item: Box::new(listed(&item)),
            reason: "联合抽查".into(),
        })
    };
    let mut unprefixed = tax_item();
    unprefixed.code = "T-01".into();
    assert!(matches!(desk.programme(&planner(), list(unprefixed)), Err(Rejection::Invalid { .. })));
    let mut untagged = tax_item();
    untagged.expertise = "food".into();
    assert!(matches!(desk.programme(&planner(), list(untagged)), Err(Rejection::Invalid { .. })));
    desk.programme(&planner(), list(tax_item())).expect("listed");

    // Its inspectors: never an id of the bureau's own.
    let mut taken = tax_inspector("TH000");
    taken.name = "重号".into();
    let enrol = |inspectors| departments(DepartmentAction::EnrolInspectors { department: "tax".into(), inspectors });
    assert!(matches!(
        desk.programme(&planner(), enrol(vec![taken])),
        Err(Rejection::Conflict { code: ConflictCode::InspectorEnrolled, .. })
    ));
    let team: Vec<_> = ["TX001", "TX002", "TX003", "TX004"].into_iter().map(tax_inspector).collect();
    // The group's departments are kept by a province's or a city's centre, never a county's.
    let county = actor("th-command", TIANHE, Role::Command);
    assert!(matches!(desk.programme(&county, enrol(team.clone())), Err(Rejection::Forbidden(_))));
    desk.programme(&planner(), enrol(team)).expect("enrolled");
    // Neither the bureau's own items nor a campaign may borrow the department's tag or codes.
    let mut borrowed = listed(&tax_item());
    borrowed.code = "D-tax-99".into();
    let adopt = ItemListAction::AdoptNational { items: vec![borrowed], reason: String::new() };
    assert!(matches!(
        desk.programme(&planner(), ProgrammeAction::ItemList(Box::new(adopt))),
        Err(Rejection::Invalid { .. })
    ));
    let enrolled = desk.ledger.programme().inspector("TX001").unwrap();
    assert_eq!(enrolled.expertise, ["dept:tax"]);
    assert!(is_department_inspector(enrolled));
    desk
}

fn joint_spec(directory_sha: &str) -> CampaignSpec {
    let mut joint = spec(directory_sha);
    joint.name = "2026年天河区餐饮企业部门联合抽查".into();
    joint.items.push(tax_item());
    joint.inspector_mode = InspectorMode::OfficeAndStations;
    joint.inspectors_per_inspection = 3;
    joint
}

fn change(task: TaskId, transition: Transition) -> Action {
    Action::ChangeTask(TaskChange { task, expected_version: None, note: "现场检查".into(), transition })
}

/// An account of Tianhe with `role` linked to inspector `inspector`.
fn account_of(desk: &mut Desk, login: &str, role: PersonRole, inspector: &str) -> Actor {
    let create = OrganisationAction::CreatePerson {
        login: login.into(),
        name: format!("账户{login}"),
        unit: code(TIANHE),
        roles: vec![role],
        password_phc: PHC.into(),
    };
    let created = desk.apply(&planner(), Action::Organisation(Box::new(create))).expect("account created");
    let Some(ledger::organisation::OrganisationRecord::Person(person)) = created.organisation else {
        panic!("a person")
    };
    let link = OrganisationAction::LinkInspector { person: person.id, inspector: inspector.into() };
    let linked = desk.apply(&planner(), Action::Organisation(Box::new(link))).expect("linked");
    let Some(ledger::organisation::OrganisationRecord::Person(person)) = linked.organisation else {
        panic!("a person")
    };
    person.actor()
}

#[test]
fn another_departments_inspector_holds_that_role_alone() {
    use ledger::organisation::check_roles;
    assert!(check_roles(&[PersonRole::Department]).is_ok());
    assert!(check_roles(&[PersonRole::Handler, PersonRole::Department]).is_err());
    assert!(check_roles(&[PersonRole::Dispatcher, PersonRole::Department]).is_err());
}

#[test]
fn a_joint_inspection_draws_the_department_and_waits_for_its_part() {
    // (The campaign without the department's item below also shows a campaign may not name the
    // department's tag for an item the list does not give the department.)
    let bytes = generate(2_000, code(TIANHE), 21);
    let mut desk = desk_with_the_tax_department(&bytes);
    let sha = directory::sha256_hex(&bytes);

    // A campaign without the department's item does not draw from its inspectors; one with it
    // does, whatever its mode.
    let plain = desk.ledger.programme().inspector_pool(Regions::compiled(), &spec(&sha), desk.ledger.departments());
    assert!(plain.iter().all(|inspector| !is_department_inspector(inspector)));
    let mut unlisted = joint_spec(&sha);
    unlisted.items.last_mut().unwrap().code = "D-tax-02".into();
    let refused = desk.programme(&planner(), ProgrammeAction::CreateCampaignOnTotal(Box::new(unlisted)));
    assert!(matches!(refused, Err(Rejection::Conflict { code: ConflictCode::ItemNotListed, .. })), "{refused:?}");
    // The department's inspectors sign in with accounts linked to them before the draw, so each
    // drawn team names its people.
    let accounts: std::collections::BTreeMap<&str, Actor> = ["TX001", "TX002", "TX003", "TX004"]
        .into_iter()
        .map(|id| (id, account_of(&mut desk, &id.to_lowercase(), PersonRole::Department, id)))
        .collect();
    let (id, inputs) = campaign_with_beacon(&mut desk, joint_spec(&sha), "20261207");
    assert_eq!(inputs.pool.iter().filter(|i| is_department_inspector(i)).count(), 4);

    let (result, tasks) = draw_and_commit(&mut desk, id, &bytes);
    assert!(!result.inspections.is_empty());
    for inspection in &result.inspections {
        let joint = inspection.items.contains(&"D-tax-01".to_owned());
        let members: Vec<_> =
            inspection.inspectors.iter().map(|id| desk.ledger.programme().inspector(id).unwrap().clone()).collect();
        // Three places: the office, a station and, where its item fell, the department.
        let of_department = members.iter().filter(|m| is_department_inspector(m)).count();
        assert_eq!(of_department, usize::from(joint), "the department where its item fell, only there");
        let own: Vec<_> = members.iter().filter(|m| !is_department_inspector(m)).collect();
        assert!(
            own.iter().any(|m| m.station.is_none()) && own.iter().any(|m| m.station.is_some()),
            "the mix is the bureau's own"
        );
    }
    let committed = desk.ledger.programme().campaign(id).unwrap().draw.clone().unwrap();
    verify(Regions::compiled(), &committed, &bytes).expect("the joint draw verifies");

    let task = tasks
        .iter()
        .find(|task| task.inspection.as_ref().unwrap().items.iter().any(|item| item.code == "D-tax-01"))
        .expect("the department's item fell somewhere")
        .clone();
    let tianhe = actor("th-operator", TIANHE, Role::Operator);
    desk.apply(&tianhe, change(task.id, Transition::Ack)).expect("acknowledged");
    let result_entry =
        |outcome| change(task.id, Transition::Complete { outcome, publication_deadline_ms: Some(T0 + 60 * DAY_MS) });
    let early = desk.apply(&tianhe, result_entry(CompletionOutcome::NoProblemFound));
    assert!(
        matches!(early, Err(Rejection::Conflict { code: ConflictCode::DepartmentPartsAwaited, .. })),
        "the joint result waits for the tax part: {early:?}"
    );

    // 谁检查、谁录入: the department's inspector on the team, through their own account.
    let on_team = task.inspection.as_ref().unwrap().inspectors.iter().find(|id| id.starts_with("TX")).unwrap().clone();
    let elsewhere = ["TX001", "TX002", "TX003", "TX004"].into_iter().find(|id| *id != on_team).unwrap();
    let part = |outcome| {
        departments(DepartmentAction::EnterPart {
            task: task.id,
            outcome,
            summary: "发票开具不规范，已责令改正".into(),
        })
    };
    let config_user = desk.programme(&tianhe, part(CompletionOutcome::Corrected));
    assert!(matches!(config_user, Err(Rejection::Forbidden(_))), "{config_user:?}");
    let own_staff = account_of(&mut desk, "th.own", PersonRole::Leadership, "TH000");
    assert!(matches!(desk.programme(&own_staff, part(CompletionOutcome::Corrected)), Err(Rejection::Forbidden(_))));
    let not_on_team = accounts[elsewhere].clone();
    assert!(matches!(
        desk.programme(&not_on_team, part(CompletionOutcome::Corrected)),
        Err(Rejection::TaskNotFound(_))
    ));
    let theirs = accounts[on_team.as_str()].clone();
    // A department's inspector's account holds the department role alone, and that role is
    // only for a department's inspector.
    let handler = OrganisationAction::CreatePerson {
        login: "th.handler".into(),
        name: "本局承办人".into(),
        unit: code(TIANHE),
        roles: vec![PersonRole::Handler],
        password_phc: PHC.into(),
    };
    let created = desk.apply(&planner(), Action::Organisation(Box::new(handler))).expect("account created");
    let Some(ledger::organisation::OrganisationRecord::Person(handler)) = created.organisation else {
        panic!("a person")
    };
    let link = OrganisationAction::LinkInspector { person: handler.id, inspector: elsewhere.into() };
    let refused = desk.apply(&planner(), Action::Organisation(Box::new(link)));
    assert!(matches!(refused, Err(Rejection::Invalid { .. })), "{refused:?}");
    // Another department's inspector sees their team's inspections only, and changes none.
    assert_eq!(theirs.role, Role::Department);
    for drawn in &tasks {
        let on_their_team = drawn.inspection.as_ref().unwrap().inspectors.contains(&on_team);
        assert_eq!(ledger::access::can_see(Regions::compiled(), &theirs, drawn), on_their_team);
    }
    let write = desk.apply(&theirs, change(task.id, Transition::Ack));
    assert!(matches!(write, Err(Rejection::Forbidden(_))), "{write:?}");
    assert!(matches!(desk.programme(&theirs, part(CompletionOutcome::Reminded)), Err(Rejection::Invalid { .. })));
    let entered = desk.programme(&theirs, part(CompletionOutcome::Corrected)).expect("the tax part is entered");
    let after = entered.task();
    assert_eq!(after.field_work.department_parts.len(), 1);
    assert_eq!(after.field_work.department_parts[0].inspector, on_team);
    let entry = after.timeline.last().unwrap();
    assert_eq!((entry.action, entry.outcome), (TimelineAction::DepartmentPart, Some(CompletionOutcome::Corrected)));
    assert!(desk.ledger.departments().awaited(after).is_empty());
    // The bytes a task with parts is stored as read back as that task.
    let bytes_of_task = ledger::codec::encode(&**after).unwrap();
    assert_eq!(ledger::codec::decode_task(&bytes_of_task).unwrap(), **after);
    // Its last byte lost is a damaged record, not a task with an earlier part.
    let cut = &bytes_of_task[..bytes_of_task.len() - 1];
    assert!(ledger::codec::decode_task(cut).is_err(), "a cut record is refused");

    desk.apply(&tianhe, result_entry(CompletionOutcome::NoProblemFound)).expect("the joint result is entered");
    let late = desk.programme(&theirs, part(CompletionOutcome::Penalized));
    assert!(matches!(late, Err(Rejection::IllegalTransition { from: TaskState::Completed, .. })), "{late:?}");
    desk.programme(&planner(), ProgrammeAction::PublishResult { task: task.id }).expect("published");
    let public = PublicResult::of(&desk.ledger.task(task.id).unwrap()).expect("public");
    assert_eq!(public.outcome, CompletionOutcome::NoProblemFound);
    assert_eq!(public.department_outcomes, [("tax".to_owned(), CompletionOutcome::Corrected)]);
}
