//! Stations below the county bureaus: enrolled, renamed, closed and reopened by the county or a
//! bureau above it, never removed, and a unit of the tree every rule climbs.

use crate::bureau::{RegionLevel, RegionRow, STATION_NUMBER_MAX};
use crate::organisation::{OrganisationAction, OrganisationRecord, Person, PersonId, PersonRole, Station, UnitChange};
use crate::reference::ReferenceAction;
use crate::task::TimelineAction;
use crate::*;

/// 2026-12-06 12:00 Beijing.
const T0: u64 = 1_796_529_600_000;
const HOUR_MS: u64 = 60 * 60 * 1000;

fn bureau(code: &str) -> BureauCode {
    BureauCode::parse_compiled(code).expect(code)
}

fn actor(user: &str, code: BureauCode, role: Role) -> Actor {
    Actor { user: user.to_owned(), bureau: code, role }
}

fn guangzhou_command() -> Actor {
    actor("gz-command", bureau("440100"), Role::Command)
}

fn apply(ledger: &mut Ledger, stamp_ms: u64, actor: Actor, action: Action) -> CommandResult {
    let before = (ledger.units().clone(), ledger.reference().clone());
    let result = ledger.apply(&Command { stamp_ms, actor, idempotency: None, action });
    ledger.check_invariants().expect("the ledger keeps its invariants");
    let copy = ledger.copy_through_a_checkpoint_for_tests();
    assert_eq!(copy.digest(), ledger.digest(), "a copy through a checkpoint is the same ledger");
    assert_eq!(copy.units(), ledger.units());
    if result.is_err() {
        assert_eq!((ledger.units(), ledger.reference()), (&before.0, &before.1), "a refusal changes nothing");
    }
    result
}

fn organise(ledger: &mut Ledger, actor: Actor, action: OrganisationAction) -> Result<Station, Rejection> {
    let stamp_ms = ledger.last_stamp_ms().max(T0) + 1000;
    let applied = apply(ledger, stamp_ms, actor, Action::Organisation(Box::new(action)))?;
    match applied.organisation {
        Some(OrganisationRecord::Station(station)) => Ok(station),
        other => panic!("a station command answers with the station, not {other:?}"),
    }
}

fn enrol(county: &str, number: Option<u32>, name: &str) -> OrganisationAction {
    OrganisationAction::EnrolStation {
        county: bureau(county),
        number,
        name: name.to_owned(),
        areas: vec!["五山街".to_owned(), "长兴街".to_owned()],
        note: String::new(),
    }
}

/// The 五山 station of 天河区, enrolled by Guangzhou.
fn wushan(ledger: &mut Ledger) -> BureauCode {
    organise(ledger, guangzhou_command(), enrol("440106", Some(4), "五山市场监管所")).expect("enrolled").code
}

fn conflict_code(result: Result<Station, Rejection>) -> ConflictCode {
    match result {
        Err(Rejection::Conflict { code, .. }) => code,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[test]
fn a_station_code_is_its_county_and_a_number() {
    let tianhe = bureau("440106");
    let code = BureauCode::station(tianhe, 4).expect("a station number");
    assert_eq!(code.to_string(), "440106004");
    assert_eq!(code.county_of_station(), Some(tianhe));
    assert_eq!(code.station_number(), Some(4));
    assert!(code.is_station() && !tianhe.is_station());
    assert_eq!(BureauCode::parse_unit("440106004"), Some(code));
    assert_eq!(BureauCode::parse_unit("440106"), Some(tianhe));
    for bad in ["440106000", "44010600", "4401060041", "44010600x", "+44106004"] {
        assert_eq!(BureauCode::parse_unit(bad), None, "{bad}");
    }
    assert_eq!(BureauCode::station(tianhe, 0), None);
    assert_eq!(BureauCode::station(tianhe, STATION_NUMBER_MAX + 1), None);
    assert_eq!(BureauCode::station(code, 1), None, "no station below a station");
    assert_eq!(BureauCode::from_number(440_106_000), None, "station number 0");

    // A table that does not know the station still places it under its county.
    let regions = Regions::compiled();
    assert!(!regions.contains(code));
    assert_eq!(regions.parent(code), Some(tianhe));
    assert!(regions.is_within(code, bureau("440100")));
    assert!(!regions.is_within(code, bureau("440300")));
}

#[test]
fn stations_are_enrolled_renamed_closed_never_removed() {
    let mut ledger = Ledger::new();
    let code = wushan(&mut ledger);
    let regions = ledger.regions();
    let region = regions.region(code).expect("the station is in the table decided with");
    assert_eq!((region.level, region.parent, region.retired), (RegionLevel::Station, Some(bureau("440106")), false));
    assert!(regions.is_within(code, bureau("440000")));
    assert_eq!(regions.ancestors(code).nth(1), Some(bureau("440106")), "a station climbs to its county first");
    assert!(!regions.is_region(code) && regions.is_region(bureau("440106")));

    // The lowest number never given: 1, then 2.
    let first = organise(&mut ledger, guangzhou_command(), enrol("440106", None, "石牌市场监管所")).expect("enrolled");
    assert_eq!(first.code.to_string(), "440106001");
    // A number or an open station's name given twice is a conflict.
    let again = organise(&mut ledger, guangzhou_command(), enrol("440106", Some(4), "另一个所"));
    assert_eq!(conflict_code(again), ConflictCode::StationExists);
    let twin = organise(&mut ledger, guangzhou_command(), enrol("440106", None, "五山市场监管所"));
    assert_eq!(conflict_code(twin), ConflictCode::StationExists);

    let renamed = OrganisationAction::RenameStation { station: code, name: "五山所".into(), note: "更名".into() };
    let station = organise(&mut ledger, guangzhou_command(), renamed).expect("renamed");
    assert_eq!(station.history[1].change, UnitChange::Renamed { from: "五山市场监管所".into() });
    assert_eq!(ledger.regions().name(code), Some("五山所"));

    let without_reason = OrganisationAction::CloseStation { station: code, note: String::new() };
    assert!(matches!(organise(&mut ledger, guangzhou_command(), without_reason), Err(Rejection::Invalid { .. })));
    let close = OrganisationAction::CloseStation { station: code, note: "机构改革，并入石牌所".into() };
    let closed = organise(&mut ledger, guangzhou_command(), close.clone()).expect("closed");
    assert!(closed.closed_at_ms.is_some());
    assert!(ledger.regions().contains(code) && !ledger.regions().is_active(code), "closed: known, not active");
    assert!(matches!(organise(&mut ledger, guangzhou_command(), close), Err(Rejection::NothingToRecord(_))));
    // Its code is never given again; the next is 2 (1 is 石牌, 4 is closed).
    let next = organise(&mut ledger, guangzhou_command(), enrol("440106", None, "沙河市场监管所")).expect("enrolled");
    assert_eq!(next.code.to_string(), "440106002");
    let reused = organise(&mut ledger, guangzhou_command(), enrol("440106", Some(4), "新五山所"));
    assert_eq!(conflict_code(reused), ConflictCode::StationExists);

    let reopen = OrganisationAction::ReopenStation { station: code, note: String::new() };
    let reopened = organise(&mut ledger, guangzhou_command(), reopen).expect("reopened");
    assert!(reopened.is_open());
    assert_eq!(
        reopened.history.iter().map(|e| e.change.as_str()).collect::<Vec<_>>(),
        ["enrolled", "renamed", "closed", "reopened"]
    );
    assert_eq!(ledger.units().stations_of(bureau("440106")).count(), 3);
    assert_eq!(ledger.units().stations_of(bureau("440104")).count(), 0);
}

#[test]
fn only_the_county_or_above_manages_its_stations() {
    let mut ledger = Ledger::new();
    let tianhe_command = actor("th-command", bureau("440106"), Role::Command);
    let yuexiu_command = actor("yx-command", bureau("440104"), Role::Command);
    let tianhe_operator = actor("th-operator", bureau("440106"), Role::Operator);
    let leadership = actor("leader", bureau("440000"), Role::Leadership);
    let action = || enrol("440106", None, "五山市场监管所");
    for refused in [yuexiu_command, tianhe_operator, leadership] {
        let result = organise(&mut ledger, refused.clone(), action());
        assert!(matches!(result, Err(Rejection::Forbidden(_))), "{refused:?}: {result:?}");
    }
    let code = organise(&mut ledger, tianhe_command.clone(), action()).expect("the county itself").code;
    // Only a county has stations.
    for not_a_county in ["440100", "440000"] {
        let result = organise(&mut ledger, guangzhou_command(), enrol(not_a_county, None, "某所"));
        assert!(matches!(result, Err(Rejection::Invalid { .. })), "{not_a_county}: {result:?}");
    }
    let from_a_station = OrganisationAction::EnrolStation {
        county: code,
        number: None,
        name: "所下之所".into(),
        areas: Vec::new(),
        note: String::new(),
    };
    assert!(matches!(organise(&mut ledger, guangzhou_command(), from_a_station), Err(Rejection::Invalid { .. })));
    let renamed = OrganisationAction::RenameStation { station: code, name: "五山所".into(), note: String::new() };
    let other_county = actor("yx-command", bureau("440104"), Role::Command);
    assert!(matches!(organise(&mut ledger, other_county, renamed.clone()), Err(Rejection::Forbidden(_))));
    organise(&mut ledger, guangzhou_command(), renamed).expect("a bureau above the county");
    let missing = OrganisationAction::CloseStation {
        station: BureauCode::station(bureau("440106"), 9).unwrap(),
        note: "x".into(),
    };
    assert!(matches!(organise(&mut ledger, guangzhou_command(), missing), Err(Rejection::NoSuch(_))));
    // Areas: bounded, each named once.
    let twice = OrganisationAction::SetStationAreas {
        station: code,
        areas: vec!["五山街".into(), "五山街".into()],
        note: String::new(),
    };
    assert!(matches!(organise(&mut ledger, guangzhou_command(), twice), Err(Rejection::Invalid { .. })));
}

#[test]
fn an_adoption_may_not_retire_a_county_with_open_stations() {
    let mut ledger = Ledger::new();
    let code = wushan(&mut ledger);
    let without_tianhe: Vec<RegionRow> = Regions::compiled()
        .regions()
        .filter(|region| region.code != bureau("440106"))
        .map(|region| RegionRow {
            code: region.code,
            name: region.name.clone(),
            level: region.level,
            parent: region.parent,
        })
        .collect();
    let adopt = || {
        let action =
            ReferenceAction::AdoptRegions { rows: without_tianhe.clone(), sha256: [1; 32], note: String::new() };
        Action::Reference(Box::new(action))
    };
    let operator = actor("admin:ops", bureau("440000"), Role::System);
    let refused = apply(&mut ledger, T0 + HOUR_MS, operator.clone(), adopt());
    assert!(matches!(refused, Err(Rejection::Conflict { code: ConflictCode::UnitInUse, .. })), "{refused:?}");
    assert!(ledger.regions().is_active(bureau("440106")), "nothing adopted");
    assert!(ledger.reference().region_versions().is_empty());

    let close = OrganisationAction::CloseStation { station: code, note: "撤销".into() };
    organise(&mut ledger, guangzhou_command(), close).expect("closed");
    apply(&mut ledger, T0 + 2 * HOUR_MS, operator, adopt()).expect("adopted once the station is closed");
    assert!(!ledger.regions().is_active(bureau("440106")));
    assert!(ledger.regions().contains(code), "the closed station stays known with its retired county");
    let reopen = OrganisationAction::ReopenStation { station: code, note: String::new() };
    let result = organise(&mut ledger, guangzhou_command(), reopen);
    assert!(matches!(result, Err(Rejection::Conflict { code: ConflictCode::UnitInUse, .. })), "{result:?}");
}

#[test]
fn a_station_is_an_assignee_like_any_bureau() {
    let mut ledger = Ledger::new();
    let code = wushan(&mut ledger);
    let command = |ledger: &mut Ledger, actor: Actor, action: Action| {
        let stamp_ms = ledger.last_stamp_ms() + 1000;
        apply(ledger, stamp_ms, actor, action)
    };
    let mut lead = super::federation::lead("440106", Routing::Keep);
    lead.origin_bureau = bureau("440100");
    let id = command(&mut ledger, guangzhou_command(), Action::CreateTask(lead.clone())).expect("created").task().id;
    let t = ledger.last_stamp_ms();
    let dispatch =
        Transition::Dispatch { assignee: code, ack_deadline_ms: t + HOUR_MS, complete_deadline_ms: t + 24 * HOUR_MS };
    let change = |transition: Transition| {
        Action::ChangeTask(TaskChange { task: id, expected_version: None, note: String::new(), transition })
    };
    command(&mut ledger, guangzhou_command(), change(dispatch.clone())).expect("dispatched to the station");
    // The station's own operator works it; the county's sees it and does not act on it.
    let station_operator = actor("wushan-desk", code, Role::Operator);
    let county_command = actor("th-command", bureau("440106"), Role::Command);
    assert!(access::can_see(&ledger.regions(), &county_command, &ledger.task(id).unwrap()));
    command(&mut ledger, station_operator, change(Transition::Ack)).expect("the station acknowledges");

    // A subject is registered in a region, never at a station.
    let mut at_station = lead;
    at_station.subject.region_code = code;
    let refused = command(&mut ledger, guangzhou_command(), Action::CreateTask(at_station));
    assert!(
        matches!(refused, Err(Rejection::Invalid { ref field, .. }) if field == "subject.region_code"),
        "{refused:?}"
    );

    // A closed station takes no new dispatch; its tasks stay.
    let close = OrganisationAction::CloseStation { station: code, note: "撤销".into() };
    organise(&mut ledger, guangzhou_command(), close).expect("closed");
    let mut second = super::federation::lead("440106", Routing::Keep);
    second.origin_bureau = bureau("440100");
    let other = command(&mut ledger, guangzhou_command(), Action::CreateTask(second)).expect("created").task().id;
    let change_other = Action::ChangeTask(TaskChange {
        task: other,
        expected_version: None,
        note: String::new(),
        transition: dispatch,
    });
    assert!(matches!(command(&mut ledger, guangzhou_command(), change_other), Err(Rejection::Invalid { .. })));
    assert_eq!(ledger.task(id).unwrap().handling.assignee_bureau, Some(code));
}

#[test]
fn a_hostile_core_with_a_misplaced_station_is_refused() {
    let mut ledger = Ledger::new();
    wushan(&mut ledger);
    let core = ledger.encode_core();
    let good = BureauCode::station(bureau("440106"), 4).unwrap().as_u32();
    // The station's code as the core writes it (a varint), moved under a prefecture and under
    // an unknown county: the table would not be a tree, so the core is refused on decoding.
    for bad in [BureauCode::station(bureau("440100"), 4).unwrap().as_u32(), 440_199_004] {
        let from = crate::codec::encode(&good).unwrap();
        let to = crate::codec::encode(&bad).unwrap();
        assert_eq!(from.len(), to.len());
        let mut damaged = core.clone();
        let mut replaced = 0;
        for start in 0..damaged.len() - from.len() {
            if damaged[start..start + from.len()] == from[..] {
                damaged[start..start + from.len()].copy_from_slice(&to);
                replaced += 1;
            }
        }
        assert!(replaced >= 2, "the key and the station's own code");
        let decoded = Ledger::from_core(&damaged, std::sync::Arc::new(MemoryRecords::default()));
        assert!(decoded.is_err(), "{bad}: a station outside a county is refused");
    }
}

#[test]
fn organisation_is_the_fifteenth_action() {
    let action = Action::Organisation(Box::new(enrol("440106", None, "五山市场监管所")));
    assert_eq!(crate::codec::encode(&action).expect("encodes")[0], 14);
    // The codes of 0.4.0 keep their places; the new ones follow the last of them.
    let position = |code: ConflictCode| ConflictCode::ALL.iter().position(|c| *c == code);
    assert_eq!(position(ConflictCode::ReceivedDispatch), Some(24));
    assert_eq!(position(ConflictCode::StationExists), Some(25));
    assert_eq!(RegionLevel::ALL.last(), Some(&RegionLevel::Station));
}

// --- People. ---

const PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
const OTHER_PHC: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$b3RoZXJzYWx0b3RoZXI$b3RoZXJoYXNob3RoZXJoYXNob3RoZXJoYXNob3RoZXI";

/// Applies at the ledger's clock, a second on.
fn act(ledger: &mut Ledger, actor: Actor, action: Action) -> CommandResult {
    let stamp_ms = ledger.last_stamp_ms().max(T0) + 1000;
    apply(ledger, stamp_ms, actor, action)
}

fn person_of(result: Result<Applied, Rejection>) -> Result<std::sync::Arc<Person>, Rejection> {
    match result?.organisation {
        Some(OrganisationRecord::Person(person)) => Ok(person),
        other => panic!("an account command answers with the account, not {other:?}"),
    }
}

fn people(ledger: &mut Ledger, actor: Actor, action: OrganisationAction) -> Result<std::sync::Arc<Person>, Rejection> {
    let stamp_ms = ledger.last_stamp_ms().max(T0) + 1000;
    person_of(apply(ledger, stamp_ms, actor, Action::Organisation(Box::new(action))))
}

fn create(login: &str, name: &str, unit: BureauCode, roles: &[PersonRole]) -> OrganisationAction {
    OrganisationAction::CreatePerson {
        login: login.into(),
        name: name.into(),
        unit,
        roles: roles.to_vec(),
        password_phc: PHC.into(),
    }
}

/// 五山 station with a head and a handler, made by Guangzhou's command centre.
fn wushan_with_people(ledger: &mut Ledger) -> (BureauCode, std::sync::Arc<Person>, std::sync::Arc<Person>) {
    let station = wushan(ledger);
    let head = people(ledger, guangzhou_command(), create("wushan.head", "王所长", station, &[PersonRole::Head]))
        .expect("the head");
    let handler = people(ledger, guangzhou_command(), create("wushan.li", "李明", station, &[PersonRole::Handler]))
        .expect("a handler");
    (station, head, handler)
}

#[test]
fn logins_are_unique_forever_and_fields_are_checked() {
    let mut ledger = Ledger::new();
    let (station, head, handler) = wushan_with_people(&mut ledger);
    assert_eq!((head.id, handler.id), (PersonId(1), PersonId(2)));
    assert_eq!(handler.actor().user, "person:2:李明");
    assert_eq!((handler.actor().bureau, handler.actor().role), (station, Role::Operator));
    assert_eq!(ledger.person_of_login("wushan.li"), Some(PersonId(2)));
    let again =
        people(&mut ledger, guangzhou_command(), create("wushan.li", "李明明", station, &[PersonRole::Handler]));
    assert!(matches!(again, Err(Rejection::Conflict { code: ConflictCode::LoginTaken, .. })), "{again:?}");
    // Disabled, the login stays taken.
    let disable = OrganisationAction::DisablePerson { person: handler.id, note: "调离".into() };
    people(&mut ledger, guangzhou_command(), disable).expect("disabled");
    let again = people(&mut ledger, guangzhou_command(), create("wushan.li", "李明", station, &[PersonRole::Handler]));
    assert!(matches!(again, Err(Rejection::Conflict { code: ConflictCode::LoginTaken, .. })), "{again:?}");
    for (bad, field) in [
        (create("WU", "某人", station, &[PersonRole::Handler]), "login"),
        (create("wu shan", "某人", station, &[PersonRole::Handler]), "login"),
        (create("wushan.x", "某:人", station, &[PersonRole::Handler]), "name"),
        (create("wushan.x", "某人", station, &[]), "roles"),
        (create("wushan.x", "某人", station, &[PersonRole::Handler, PersonRole::Head]), "roles"),
        (create("wushan.x", "某人", BureauCode::station(bureau("440106"), 7).unwrap(), &[PersonRole::Handler]), "unit"),
    ] {
        let refused = people(&mut ledger, guangzhou_command(), bad);
        assert!(matches!(&refused, Err(Rejection::Invalid { field: f, .. }) if f == field), "{field}: {refused:?}");
    }
    for weak in [
        "plain",
        "$argon2i$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
        "$argon2id$v=19$m=4096,t=2,p=1$c2FsdA$aGFzaA",
        "$argon2id$v=19$m=19456,t=1,p=1$c2FsdA$aGFzaA",
        "$argon2id$v=19$m=19456,t=2,p=1$$aGFzaA",
    ] {
        let mut action = create("wushan.y", "某人", station, &[PersonRole::Handler]);
        if let OrganisationAction::CreatePerson { password_phc, .. } = &mut action {
            *password_phc = weak.into();
        }
        let refused = people(&mut ledger, guangzhou_command(), action);
        assert!(
            matches!(&refused, Err(Rejection::Invalid { field, .. }) if field == "password"),
            "{weak}: {refused:?}"
        );
    }
    assert_eq!(ledger.units().person_count(), 2, "refusals made no account");
}

#[test]
fn accounts_are_managed_over_the_unit_and_privileged_roles_only_by_their_holders() {
    let mut ledger = Ledger::new();
    let (station, head, handler) = wushan_with_people(&mut ledger);
    let tianhe = bureau("440106");
    // A county accounts clerk (a person) manages the station's accounts.
    let clerk =
        people(&mut ledger, guangzhou_command(), create("th.accounts", "陈会计", tianhe, &[PersonRole::Accounts]))
            .expect("a clerk");
    let made = people(&mut ledger, clerk.actor(), create("wushan.zhao", "赵强", station, &[PersonRole::Handler]))
        .expect("the clerk makes a handler");
    assert_eq!(made.history[0].by, "person:3:陈会计");
    // Not a dispatcher: that role is granted only by its holders (or a command centre).
    let dispatcher =
        people(&mut ledger, clerk.actor(), create("wushan.d", "钱调度", station, &[PersonRole::Dispatcher]));
    assert!(matches!(dispatcher, Err(Rejection::Forbidden(_))), "{dispatcher:?}");
    // Not outside the clerk's county; not by a handler; not by another county's centre.
    let yuexiu = bureau("440104");
    let outside = people(&mut ledger, clerk.actor(), create("yx.a", "孙某", yuexiu, &[PersonRole::Handler]));
    assert!(matches!(outside, Err(Rejection::Forbidden(_))), "{outside:?}");
    let by_handler = people(&mut ledger, handler.actor(), create("wushan.q", "周某", station, &[PersonRole::Handler]));
    assert!(matches!(by_handler, Err(Rejection::Forbidden(_))), "{by_handler:?}");
    let yuexiu_command = actor("yx-command", yuexiu, Role::Command);
    let reset =
        OrganisationAction::SetPassword { person: handler.id, password_phc: OTHER_PHC.into(), note: String::new() };
    assert!(matches!(people(&mut ledger, yuexiu_command, reset.clone()), Err(Rejection::Forbidden(_))));
    // The clerk resets a password: the epoch moves (sessions end).
    let reset_done = people(&mut ledger, clerk.actor(), reset).expect("reset");
    assert_eq!((reset_done.epoch, reset_done.password_phc.as_str()), (1, OTHER_PHC));
    // Nobody changes their own roles or disables themself; anyone signs themself out.
    let own_roles = OrganisationAction::UpdatePerson {
        person: clerk.id,
        name: None,
        roles: Some(vec![PersonRole::Dispatcher, PersonRole::Accounts]),
        note: String::new(),
    };
    assert!(matches!(people(&mut ledger, clerk.actor(), own_roles), Err(Rejection::Forbidden(_))));
    let sign_out = OrganisationAction::SignOut { person: head.id };
    assert!(matches!(people(&mut ledger, clerk.actor(), sign_out.clone()), Err(Rejection::Forbidden(_))));
    assert_eq!(people(&mut ledger, head.actor(), sign_out).expect("signed out").epoch, 1);
    let own_password =
        OrganisationAction::SetPassword { person: head.id, password_phc: OTHER_PHC.into(), note: String::new() };
    assert_eq!(people(&mut ledger, head.actor(), own_password).expect("own password").epoch, 2);
}

#[test]
fn a_disabled_or_changed_person_acts_no_more() {
    let mut ledger = Ledger::new();
    let (station, head, handler) = wushan_with_people(&mut ledger);
    let mut lead = super::federation::lead("440106", Routing::Keep);
    lead.origin_bureau = bureau("440100");
    let id = act(&mut ledger, guangzhou_command(), Action::CreateTask(lead)).expect("created").task().id;
    let t = ledger.last_stamp_ms();
    let dispatch = Transition::Dispatch {
        assignee: station,
        ack_deadline_ms: t + HOUR_MS,
        complete_deadline_ms: t + 24 * HOUR_MS,
    };
    let change = |transition: Transition| {
        Action::ChangeTask(TaskChange { task: id, expected_version: None, note: String::new(), transition })
    };
    act(&mut ledger, guangzhou_command(), change(dispatch)).expect("dispatched to the station");
    // A forged or stale actor name: refused, nothing written.
    let forged = Actor { user: "person:2:张三".into(), bureau: station, role: Role::Operator };
    let refused = act(&mut ledger, forged, change(Transition::Feedback));
    assert!(matches!(refused, Err(Rejection::Conflict { code: ConflictCode::AccountChanged, .. })), "{refused:?}");
    let as_command = Actor { role: Role::Command, ..handler.actor() };
    let refused = act(&mut ledger, as_command, change(Transition::Feedback));
    assert!(matches!(refused, Err(Rejection::Conflict { code: ConflictCode::AccountChanged, .. })), "{refused:?}");
    for malformed in ["person:02:李明", "person:x:李明", "person:9:无此人", "person:2"] {
        let actor = Actor { user: malformed.into(), bureau: station, role: Role::Operator };
        let refused = act(&mut ledger, actor, change(Transition::Feedback));
        assert!(matches!(refused, Err(Rejection::Forbidden(_))), "{malformed}: {refused:?}");
    }
    let as_peer = Actor { role: Role::Peer, ..handler.actor() };
    assert!(matches!(act(&mut ledger, as_peer, change(Transition::Ack)), Err(Rejection::Forbidden(_))));
    // The handler acknowledges: the timeline names the person.
    let acked = act(&mut ledger, handler.actor(), change(Transition::Ack)).expect("acknowledged");
    assert_eq!(acked.task().timeline.last().map(|e| e.actor_user.as_str()), Some("person:2:李明"));
    // Disabled while a command of theirs is in flight: refused when it applies.
    let in_flight = handler.actor();
    let disable = OrganisationAction::DisablePerson { person: handler.id, note: "调离".into() };
    people(&mut ledger, head.actor(), disable.clone()).expect_err("a head does not manage accounts");
    people(&mut ledger, guangzhou_command(), disable).expect("disabled");
    let refused = act(&mut ledger, in_flight, change(Transition::Feedback));
    assert!(matches!(refused, Err(Rejection::Forbidden(_))), "{refused:?}");
    // Renamed: the old name acts no more, the new one does.
    let renamed = people(
        &mut ledger,
        guangzhou_command(),
        OrganisationAction::UpdatePerson {
            person: head.id,
            name: Some("王建国".into()),
            roles: None,
            note: String::new(),
        },
    )
    .expect("renamed");
    assert_eq!(renamed.epoch, 0, "a rename keeps the sessions");
    let refused = act(&mut ledger, head.actor(), change(Transition::Feedback));
    assert!(matches!(refused, Err(Rejection::Conflict { code: ConflictCode::AccountChanged, .. })), "{refused:?}");
    act(&mut ledger, renamed.actor(), change(Transition::Feedback)).expect("the new name acts");
    // Closing the station: its people act no more.
    let close = OrganisationAction::CloseStation { station, note: "撤销".into() };
    organise(&mut ledger, guangzhou_command(), close).expect("closed");
    let refused = act(&mut ledger, renamed.actor(), change(Transition::Feedback));
    assert!(matches!(refused, Err(Rejection::Forbidden(_))), "{refused:?}");
}

// --- Handling by people. ---

/// 五山 with its people, and a task of Guangzhou's dispatched to `assignee`.
fn dispatched_to(ledger: &mut Ledger, assignee: BureauCode) -> TaskId {
    let mut lead = super::federation::lead("440106", Routing::Keep);
    lead.origin_bureau = bureau("440100");
    let id = act(ledger, guangzhou_command(), Action::CreateTask(lead)).expect("created").task().id;
    let t = ledger.last_stamp_ms();
    let dispatch =
        Transition::Dispatch { assignee, ack_deadline_ms: t + HOUR_MS, complete_deadline_ms: t + 24 * HOUR_MS };
    act(ledger, guangzhou_command(), on(id, dispatch, "")).expect("dispatched");
    id
}

fn on(task: TaskId, transition: Transition, note: &str) -> Action {
    Action::ChangeTask(TaskChange { task, expected_version: None, note: note.into(), transition })
}

fn conflict_of(result: CommandResult) -> Option<ConflictCode> {
    match result {
        Err(Rejection::Conflict { code, .. }) => Some(code),
        _ => None,
    }
}

#[test]
fn a_claim_acknowledges_and_a_second_claim_is_already_claimed() {
    let mut ledger = Ledger::new();
    let (station, head, li) = wushan_with_people(&mut ledger);
    let zhao = people(&mut ledger, guangzhou_command(), create("wushan.zhao", "赵强", station, &[PersonRole::Handler]))
        .expect("a second handler");
    let id = dispatched_to(&mut ledger, station);
    let claimed = act(&mut ledger, li.actor(), on(id, Transition::Claim, "")).expect("claimed");
    let task = claimed.task();
    assert_eq!(task.handling.state, TaskState::Acknowledged, "a claim of a dispatched task is its 签收");
    assert!(task.handling.acked_at_ms.is_some());
    assert_eq!(task.field_work.handlers.lead.as_ref().map(|l| l.name.as_str()), Some("李明"));
    assert_eq!(task.timeline.last().map(|e| e.action), Some(TimelineAction::Claim));
    assert_eq!(task.field_work.handlers.lead_at(task.version).map(|l| l.id), Some(li.id));
    // The loser of a race learns why.
    let second = act(&mut ledger, zhao.actor(), on(id, Transition::Claim, ""));
    assert_eq!(conflict_of(second), Some(ConflictCode::AlreadyClaimed));
    // Only the lead (or the head) works it now; the other handler does not report on it.
    let refused = act(&mut ledger, zhao.actor(), on(id, Transition::Feedback, ""));
    assert!(matches!(refused, Err(Rejection::Forbidden(_))), "{refused:?}");
    act(&mut ledger, li.actor(), on(id, Transition::Feedback, "")).expect("the lead reports");
    act(&mut ledger, head.actor(), on(id, Transition::Feedback, "")).expect("the head reports");
    // A machine token never claims; a head may (as a handler of the unit).
    let other = dispatched_to(&mut ledger, station);
    let by_token = act(&mut ledger, guangzhou_command(), on(other, Transition::Claim, ""));
    assert!(matches!(by_token, Err(Rejection::Forbidden(_))), "{by_token:?}");
    // Released with a reason: the unit's again, claimable by anyone of it.
    assert!(matches!(act(&mut ledger, li.actor(), on(id, Transition::Release, "")), Err(Rejection::Invalid { .. })));
    let refused = act(&mut ledger, zhao.actor(), on(id, Transition::Release, "不是我的"));
    assert!(matches!(refused, Err(Rejection::Forbidden(_))), "{refused:?}");
    let released = act(&mut ledger, li.actor(), on(id, Transition::Release, "需要食品专业人员")).expect("released");
    assert!(released.task().field_work.handlers.lead.is_none());
    assert_eq!(
        conflict_of(act(&mut ledger, li.actor(), on(id, Transition::Release, "再退"))),
        Some(ConflictCode::NotClaimed)
    );
    act(&mut ledger, zhao.actor(), on(id, Transition::Claim, "")).expect("claimed by the other");
    let completed = act(
        &mut ledger,
        zhao.actor(),
        on(id, Transition::Complete { outcome: CompletionOutcome::Reminded, publication_deadline_ms: None }, ""),
    )
    .expect("the lead completes");
    let task = completed.task();
    let leads: Vec<Option<&str>> =
        (1..=task.version).map(|v| task.field_work.handlers.lead_at(v).map(|l| l.name.as_str())).collect();
    assert_eq!(leads.last(), Some(&Some("赵强")), "{leads:?}");
    assert!(leads.contains(&Some("李明")) && leads.contains(&None));
}

#[test]
fn the_head_assigns_enabled_handlers_of_the_unit_only() {
    let mut ledger = Ledger::new();
    let (station, head, li) = wushan_with_people(&mut ledger);
    let zhao = people(&mut ledger, guangzhou_command(), create("wushan.zhao", "赵强", station, &[PersonRole::Handler]))
        .expect("a handler");
    let tianhe_handler =
        people(&mut ledger, guangzhou_command(), create("th.sun", "孙某", bureau("440106"), &[PersonRole::Handler]))
            .expect("a county handler");
    let id = dispatched_to(&mut ledger, station);
    let assign = |lead: PersonId, supporting: Vec<PersonId>| on(id, Transition::Assign { lead, supporting }, "");
    // A handler does not assign; the head does.
    assert!(matches!(act(&mut ledger, li.actor(), assign(li.id, vec![])), Err(Rejection::Forbidden(_))));
    for bad in [
        assign(tianhe_handler.id, vec![]),
        assign(li.id, vec![li.id]),
        assign(li.id, vec![PersonId(99)]),
        assign(li.id, vec![zhao.id, zhao.id]),
    ] {
        let refused = act(&mut ledger, head.actor(), bad.clone());
        assert!(matches!(refused, Err(Rejection::Invalid { .. })), "{bad:?}: {refused:?}");
    }
    let assigned = act(&mut ledger, head.actor(), assign(li.id, vec![zhao.id])).expect("assigned");
    let task = assigned.task();
    assert_eq!(task.handling.state, TaskState::Acknowledged);
    assert_eq!(task.field_work.handlers.supporting.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["赵强"]);
    // A supporting handler reports, but does not complete.
    act(&mut ledger, zhao.actor(), on(id, Transition::Feedback, "")).expect("supporting reports");
    let complete = Transition::Complete { outcome: CompletionOutcome::NoViolation, publication_deadline_ms: None };
    assert!(matches!(act(&mut ledger, zhao.actor(), on(id, complete.clone(), "")), Err(Rejection::Forbidden(_))));
    // A disabled handler is not assigned; the users-file desk of the unit's county may assign.
    let disable = OrganisationAction::DisablePerson { person: zhao.id, note: "调离".into() };
    people(&mut ledger, guangzhou_command(), disable).expect("disabled");
    let refused = act(&mut ledger, head.actor(), assign(zhao.id, vec![]));
    assert!(matches!(refused, Err(Rejection::Invalid { .. })), "{refused:?}");
    act(&mut ledger, guangzhou_command(), assign(head.id, vec![li.id])).expect("the centre assigns");
    act(&mut ledger, head.actor(), on(id, complete, "")).expect("the lead completes");
}

#[test]
fn a_county_hands_a_task_down_and_keeps_its_deadlines() {
    let mut ledger = Ledger::new();
    let (station, head, li) = wushan_with_people(&mut ledger);
    let tianhe = bureau("440106");
    let county_head = people(&mut ledger, guangzhou_command(), create("th.head", "周局", tianhe, &[PersonRole::Head]))
        .expect("a head");
    let id = dispatched_to(&mut ledger, tianhe);
    let before = ledger.task(id).expect("task").handling.clone();
    // The station's people neither see nor act on the county's task yet.
    assert!(matches!(act(&mut ledger, li.actor(), on(id, Transition::Claim, "")), Err(Rejection::TaskNotFound(_))));
    let station_head_down = act(&mut ledger, head.actor(), on(id, Transition::HandDown { unit: station }, ""));
    assert!(matches!(station_head_down, Err(Rejection::TaskNotFound(_))), "{station_head_down:?}");
    let yuexiu = BureauCode::station(bureau("440104"), 1).unwrap();
    let elsewhere = act(&mut ledger, county_head.actor(), on(id, Transition::HandDown { unit: yuexiu }, ""));
    assert!(matches!(elsewhere, Err(Rejection::Invalid { .. })), "{elsewhere:?}");
    let handed =
        act(&mut ledger, county_head.actor(), on(id, Transition::HandDown { unit: station }, "")).expect("handed down");
    let task = handed.task();
    assert_eq!(task.unit(), Some(station));
    assert_eq!(task.handling.assignee_bureau, Some(tianhe), "the county stays the assignee");
    assert_eq!(
        (task.handling.ack_deadline_ms, task.handling.complete_deadline_ms),
        (before.ack_deadline_ms, before.complete_deadline_ms)
    );
    assert_eq!(task.timeline.last().and_then(|e| e.assignee_bureau), Some(station));
    // Now the station works it; the county's operators still see it.
    act(&mut ledger, li.actor(), on(id, Transition::Claim, "")).expect("the station's handler claims");
    let county_desk = actor("th-desk", tianhe, Role::Operator);
    assert!(access::can_see(&ledger.regions(), &county_desk, &ledger.task(id).unwrap()));
    // Taken back: the station's handlers are cleared, the station sees it no more.
    act(&mut ledger, county_head.actor(), on(id, Transition::HandDown { unit: tianhe }, "收回")).expect("taken back");
    let task = ledger.task(id).expect("task");
    assert!(task.field_work.handlers.lead.is_none() && task.field_work.handlers.unit.is_none());
    assert!(matches!(act(&mut ledger, li.actor(), on(id, Transition::Feedback, "")), Err(Rejection::TaskNotFound(_))));
    // A county operator sees its station's own task and does not act on it.
    let at_station = dispatched_to(&mut ledger, station);
    assert!(access::can_see(&ledger.regions(), &county_desk, &ledger.task(at_station).unwrap()));
    assert!(matches!(act(&mut ledger, county_desk, on(at_station, Transition::Ack, "")), Err(Rejection::Forbidden(_))));
}

#[test]
fn a_task_without_handlers_keeps_the_bytes_it_had_before_them() {
    let mut ledger = Ledger::new();
    let (station, _, li) = wushan_with_people(&mut ledger);
    let plain = dispatched_to(&mut ledger, station);
    let task = ledger.task(plain).expect("task");
    let bytes = crate::codec::encode(&*task).expect("encodes");
    // Empty field work, its last field (the departments' parts) written out too.
    let mut empty = crate::codec::encode(&crate::task::FieldWork::default()).expect("encodes");
    empty.push(0);
    // Written without the empty field: the bytes a build before handlers wrote. Read back either way.
    assert!(crate::codec::decode::<Task>(&bytes).is_err(), "not this build's full form");
    assert_eq!(crate::codec::decode::<Task>(&[bytes.as_slice(), &empty].concat()).expect("full form"), *task);
    assert_eq!(crate::codec::decode_task(&bytes).expect("decodes"), *task);
    act(&mut ledger, li.actor(), on(plain, Transition::Claim, "")).expect("claimed");
    let claimed = ledger.task(plain).expect("task");
    let bytes = crate::codec::encode(&*claimed).expect("encodes");
    assert_eq!(crate::codec::decode_task(&bytes).expect("decodes"), *claimed);
    assert!(crate::codec::decode_task(&bytes[..bytes.len() - 1]).is_err(), "a cut record is refused");
}

// --- On-site records. ---

#[test]
fn an_on_site_record_is_made_by_a_person_sealed_numbered_and_kept_unchanged() {
    use crate::site_record::{tests::sample, SITE_RECORDS_PER_TASK_MAX};
    let mut ledger = Ledger::new();
    let (station, _, li) = wushan_with_people(&mut ledger);
    let id = dispatched_to(&mut ledger, station);
    let mut plain = sample();
    // A task that is no drawn inspection has no checklist items to answer.
    let answering = act(&mut ledger, li.actor(), on(id, Transition::RecordOnSite(Box::new(plain.clone())), ""));
    assert!(matches!(answering, Err(Rejection::Invalid { .. })), "{answering:?}");
    plain.answers.clear();
    // A machine token never signs a record.
    let by_token = act(&mut ledger, guangzhou_command(), on(id, Transition::RecordOnSite(Box::new(plain.clone())), ""));
    assert!(matches!(by_token, Err(Rejection::Forbidden(_))), "{by_token:?}");
    let recorded = act(&mut ledger, li.actor(), on(id, Transition::RecordOnSite(Box::new(plain.clone())), ""))
        .expect("recorded by the station's handler");
    let task = recorded.task();
    assert_eq!(task.handling.state, TaskState::Acknowledged, "a record made on site is its 签收");
    assert_eq!(task.timeline.last().map(|e| e.action), Some(TimelineAction::RecordOnSite));
    let first = &task.field_work.site_records[0];
    assert_eq!((first.number, first.recorded_by.as_str()), (1, li.actor().user.as_str()));
    assert_eq!(first.digest, first.computed_digest());
    // Corrections are further records, up to the limit; the first stays as it was.
    for _ in 1..SITE_RECORDS_PER_TASK_MAX {
        act(&mut ledger, li.actor(), on(id, Transition::RecordOnSite(Box::new(plain.clone())), "")).expect("another");
    }
    let full = act(&mut ledger, li.actor(), on(id, Transition::RecordOnSite(Box::new(plain)), ""));
    assert!(matches!(full, Err(Rejection::LimitReached(_))), "{full:?}");
    let task = ledger.task(id).expect("task");
    assert_eq!(task.field_work.site_records[0], *first);
    ledger.check_invariants().expect("every record still has its digest");
    // A record bent afterwards (a hostile store or snapshot) is refused by the invariants.
    let mut bent = (*task).clone();
    bent.field_work.site_records[0].record.notes = "改过的记录".into();
    assert!(ledger.check_task(&bent).is_err());
    // Written and read back through the store's encoding.
    let bytes = crate::codec::encode(&*task).expect("encodes");
    assert_eq!(crate::codec::decode_task(&bytes).expect("decodes"), *task);
}
