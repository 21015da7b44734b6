//! Reference data through the log: a region table and a calendar adopted by the group itself,
//! checked whole, never rewriting history; the rules every replica decides by.

use crate::bureau::{RegionLevel, RegionRow, NATIONAL};
use crate::reference::{calendar_v0, CalendarTable, CalendarYear, Day, ReferenceAction};
use crate::*;

/// 2026-12-06 12:00 Beijing.
const T0: u64 = 1_796_529_600_000;

fn bureau(code: &str) -> BureauCode {
    BureauCode::parse_compiled(code).expect(code)
}

fn operator() -> Actor {
    Actor { user: "admin:ops".into(), bureau: bureau("440000"), role: Role::System }
}

fn apply(ledger: &mut Ledger, stamp_ms: u64, actor: Actor, action: Action) -> CommandResult {
    let result = ledger.apply(&Command { stamp_ms, actor, idempotency: None, action });
    ledger.check_invariants().expect("the ledger keeps its invariants");
    let copy = ledger.copy_through_a_checkpoint_for_tests();
    assert_eq!(copy.digest(), ledger.digest(), "a copy through a checkpoint is the same ledger");
    assert_eq!(copy.reference(), ledger.reference());
    result
}

fn adopt(ledger: &mut Ledger, action: ReferenceAction) -> CommandResult {
    apply(ledger, T0, operator(), Action::Reference(Box::new(action)))
}

/// The compiled table's rows, with `edit` applied.
fn rows_with(edit: impl FnOnce(&mut Vec<RegionRow>)) -> Vec<RegionRow> {
    let mut rows: Vec<RegionRow> = Regions::compiled()
        .regions()
        .map(|region| RegionRow {
            code: region.code,
            name: region.name.clone(),
            level: region.level,
            parent: region.parent,
        })
        .collect();
    edit(&mut rows);
    rows.sort_by_key(|row| row.code);
    rows
}

fn regions(rows: Vec<RegionRow>) -> ReferenceAction {
    ReferenceAction::AdoptRegions { rows, sha256: [7; 32], note: "民政部 2026 年行政区划变更".into() }
}

fn calendar(table: CalendarTable) -> ReferenceAction {
    ReferenceAction::AdoptCalendar { table, sha256: [9; 32], note: "国务院办公厅通知".into() }
}

fn day(text: &str) -> Day {
    Day::parse(text).expect(text)
}

fn year_2028() -> CalendarYear {
    CalendarYear {
        year: 2028,
        source: "provisional: statutory holidays only".into(),
        provisional: true,
        holidays: vec![day("2028-01-01"), day("2028-10-01")],
        workdays: Vec::new(),
    }
}

fn lead_in(region: &str) -> Action {
    Action::CreateTask(super::federation::lead(region, Routing::Keep))
}

fn command_user() -> Actor {
    Actor { user: "gd-command".into(), bureau: bureau("440000"), role: Role::Command }
}

#[test]
fn regions_adopt_add_and_retire_never_remove() {
    let mut ledger = Ledger::new();
    let old = apply(&mut ledger, T0, command_user(), lead_in("440111")).expect("440111 is a region today");
    let new_code = BureauCode::parse_digits("440199").expect("six digits");
    let mut create_in_new = super::federation::lead("440106", Routing::Keep);
    create_in_new.subject.region_code = new_code;
    let unknown = apply(&mut ledger, T0, command_user(), Action::CreateTask(create_in_new.clone()));
    assert!(matches!(unknown, Err(Rejection::Invalid { .. })), "440199 is unknown before the adoption: {unknown:?}");

    // 440111 (白云区) is merged away; 440199 is new, under 广州市.
    let rows = rows_with(|rows| {
        rows.retain(|row| row.code != bureau("440111"));
        rows.push(RegionRow {
            code: new_code,
            name: "新设区".into(),
            level: RegionLevel::County,
            parent: Some(bureau("440100")),
        });
    });
    adopt(&mut ledger, regions(rows.clone())).expect("adopted");
    let table = ledger.regions();
    assert!(table.contains(bureau("440111")) && !table.is_active(bureau("440111")), "retired, never removed");
    assert!(table.is_active(new_code) && table.is_within(new_code, bureau("440100")));
    assert_eq!(ledger.reference().region_versions().len(), 1);
    assert_eq!(ledger.reference().region_versions()[0].number, 1);

    apply(&mut ledger, T0, command_user(), Action::CreateTask(create_in_new)).expect("440199 may be named now");
    let retired = apply(&mut ledger, T0, command_user(), lead_in("440111"));
    assert!(
        matches!(&retired, Err(Rejection::Invalid { reason, .. }) if reason.contains("retired")),
        "a new task may not name a retired code: {retired:?}"
    );
    // The old task keeps its code and is still worked on.
    let old = old.task().clone();
    assert_eq!(ledger.task(old.id).expect("kept").subject.region_code, bureau("440111"));
    ledger.check_task(&ledger.task(old.id).expect("kept")).expect("an old code stays valid history");

    // The same table again records nothing; listing 440111 again restores it.
    assert!(matches!(adopt(&mut ledger, regions(rows)), Err(Rejection::NothingToRecord(_))));
    adopt(&mut ledger, regions(rows_with(|_| {}))).expect("440111 restored");
    assert!(ledger.regions().is_active(bureau("440111")));
    assert!(ledger.regions().contains(new_code) && !ledger.regions().is_active(new_code), "440199 left out: retired");
}

#[test]
fn a_parent_or_level_never_changes_and_the_table_is_a_tree() {
    let mut ledger = Ledger::new();
    let moved = rows_with(|rows| {
        let row = rows.iter_mut().find(|row| row.code == bureau("440106")).expect("天河区");
        row.parent = Some(bureau("440300"));
    });
    assert!(matches!(adopt(&mut ledger, regions(moved)), Err(Rejection::Invalid { .. })));
    let relevelled = rows_with(|rows| {
        rows.iter_mut().find(|row| row.code == bureau("440100")).expect("广州市").level = RegionLevel::County;
    });
    assert!(matches!(adopt(&mut ledger, regions(relevelled)), Err(Rejection::Invalid { .. })));
    let orphan = rows_with(|rows| {
        rows.push(RegionRow {
            code: BureauCode::parse_digits("449901").expect("digits"),
            name: "无上级".into(),
            level: RegionLevel::County,
            parent: Some(BureauCode::parse_digits("449900").expect("digits")),
        })
    });
    assert!(matches!(adopt(&mut ledger, regions(orphan)), Err(Rejection::Invalid { .. })));
    let without_root = rows_with(|rows| rows.retain(|row| row.code != NATIONAL));
    assert!(matches!(adopt(&mut ledger, regions(without_root)), Err(Rejection::Invalid { .. })));
    let parent_retired = rows_with(|rows| rows.retain(|row| row.code != bureau("440100")));
    assert!(
        matches!(adopt(&mut ledger, regions(parent_retired)), Err(Rejection::Invalid { .. })),
        "广州市's districts cannot stay active under a retired city"
    );
    assert_eq!(ledger.reference(), &crate::reference::Reference::default(), "refusals change nothing");
}

#[test]
fn only_the_system_role_adopts() {
    let mut ledger = Ledger::new();
    let mut table = calendar_v0();
    table.years.push(year_2028());
    for role in [Role::Command, Role::Operator, Role::Leadership, Role::Peer, Role::Source] {
        let actor = Actor { role, ..operator() };
        let refused = apply(&mut ledger, T0, actor, Action::Reference(Box::new(calendar(table.clone()))));
        assert!(matches!(refused, Err(Rejection::Forbidden(_))), "{role}: {refused:?}");
    }
    assert_eq!(ledger.reference().calendar().0, 0);
    adopt(&mut ledger, calendar(table)).expect("the group's operators adopt");
    assert_eq!(ledger.reference().calendar().0, 1);
    assert_eq!(ledger.reference().calendar().1.last_year(), 2028);
}

#[test]
fn a_calendar_never_rewrites_the_past_or_ends_sooner() {
    let mut ledger = Ledger::new();
    let v0 = calendar_v0();
    // Ends sooner: 2027 dropped.
    let shorter = CalendarTable { years: v0.years[..1].to_vec() };
    assert!(matches!(adopt(&mut ledger, calendar(shorter)), Err(Rejection::Invalid { .. })));
    // A past day changed: 2026-10-10 (a make-up working day) made a day off.
    let mut past = v0.clone();
    past.years[0].workdays.retain(|d| *d != day("2026-10-10"));
    assert!(matches!(adopt(&mut ledger, calendar(past)), Err(Rejection::Invalid { .. })));
    // Broken structure: a make-up day on a weekday, a day in another year, days out of order.
    let mut weekday = v0.clone();
    weekday.years[1].workdays.push(day("2027-03-03"));
    assert!(matches!(adopt(&mut ledger, calendar(weekday)), Err(Rejection::Invalid { .. })));
    let mut elsewhere = v0.clone();
    elsewhere.years[1].holidays.push(day("2028-01-01"));
    assert!(matches!(adopt(&mut ledger, calendar(elsewhere)), Err(Rejection::Invalid { .. })));
    let mut gap = v0.clone();
    gap.years.push(CalendarYear { year: 2029, ..year_2028() });
    assert!(matches!(adopt(&mut ledger, calendar(gap)), Err(Rejection::Invalid { .. })));
    assert!(matches!(adopt(&mut ledger, calendar(v0.clone())), Err(Rejection::NothingToRecord(_))));

    // The future may change: 2027 published (no longer provisional, a make-up Sunday), 2028 added,
    // and days after today in 2026 made holidays.
    let mut next = v0;
    next.years[0].holidays.push(day("2026-12-31"));
    next.years[1].provisional = false;
    next.years[1].workdays.push(day("2027-02-14"));
    next.years.push(year_2028());
    adopt(&mut ledger, calendar(next.clone())).expect("the future may change");
    let (version, table) = ledger.reference().calendar();
    assert_eq!((version, &*table), (1, &next));
    assert_eq!(ledger.reference().calendar_versions().next().map(|a| a.index), Some(0), "position of the entry");
}

#[test]
fn a_hostile_core_is_refused_not_a_panic() {
    let mut ledger = Ledger::new();
    let rows = rows_with(|rows| {
        rows.push(RegionRow {
            code: BureauCode::parse_digits("440199").expect("digits"),
            name: "新设区".into(),
            level: RegionLevel::County,
            parent: Some(bureau("440100")),
        })
    });
    adopt(&mut ledger, regions(rows)).expect("adopted");
    let core = ledger.encode_core();
    // Every single-byte change of the reference part either decodes to a checked ledger or is
    // refused: never a panic.
    let tail = crate::codec::encode(ledger.reference()).expect("encodes").len();
    for position in core.len() - tail..core.len() {
        for flip in [1u8, 0x80, 0xff] {
            let mut damaged = core.clone();
            damaged[position] ^= flip;
            if let Ok(decoded) = Ledger::from_core(&damaged, std::sync::Arc::new(MemoryRecords::default())) {
                let _ = decoded.check_core();
            }
        }
    }
}

#[test]
fn a_core_of_format_3_reads_as_a_ledger_that_adopted_nothing() {
    let mut ledger = Ledger::new();
    apply(&mut ledger, T0, command_user(), lead_in("440106")).expect("a task");
    let core = ledger.encode_core();
    let unadopted = crate::codec::encode(&crate::reference::Reference::default()).expect("encodes");
    assert_eq!(unadopted.len(), 3, "a core that adopted nothing costs three bytes more");
    let no_units = crate::codec::encode(&crate::organisation::Units::default()).expect("encodes");
    let no_list = crate::codec::encode(&crate::campaign::Planning::default()).expect("encodes");
    let no_register = crate::codec::encode(&crate::campaign::register::Register::default()).expect("encodes");
    let no_draws = crate::codec::encode(&crate::campaign::DrawsInParts::default()).expect("encodes");
    let no_files = crate::codec::encode(&crate::campaign::risk_files::RiskFiles::default()).expect("encodes");
    let no_filings = crate::codec::encode(&crate::campaign::plan_filing::PlanFilings::default()).expect("encodes");
    let no_departments = crate::codec::encode(&crate::campaign::departments::Departments::default()).expect("encodes");
    let no_handdown = crate::codec::encode(&crate::campaign::plan_handdown::PlanHandDown::default()).expect("encodes");
    let appended = no_handdown.len()
        + no_departments.len()
        + no_filings.len()
        + no_files.len()
        + no_draws.len()
        + no_register.len()
        + no_list.len()
        + no_units.len()
        + unadopted.len();
    let format_3 = &core[..core.len() - appended];
    let format_4 = crate::reference::core_of_format_3(format_3);
    let format_5 = crate::organisation::core_of_format_4(&format_4);
    let format_6 = crate::campaign::item_list::core_of_format_5(&format_5);
    let format_7 = crate::campaign::register::core_of_format_6(&format_6);
    let format_8 = crate::campaign::draw_parts::core_of_format_7(&format_7);
    let format_9_without_filings = crate::campaign::risk_files::core_of_format_8(&format_8);
    let format_9 = crate::campaign::plan_filing::core_of_format_8(&format_9_without_filings);
    let format_10 = crate::campaign::departments::core_of_format_9(&format_9);
    assert_eq!(crate::campaign::plan_handdown::core_of_format_10(&format_10), core);
}

#[test]
fn action_variants_keep_their_indexes() {
    // postcard writes a variant's position: an entry written by 0.3.0 (13 variants) decodes the
    // same here, and `Reference` is the fourteenth.
    let flag = Action::FlagStuckForward { seq: 5 };
    assert_eq!(crate::codec::encode(&flag).expect("encodes"), vec![7, 5]);
    let reference = Action::Reference(Box::new(calendar(calendar_v0())));
    assert_eq!(crate::codec::encode(&reference).expect("encodes")[0], 13);
}

#[test]
fn conflict_codes_keep_their_indexes() {
    // A refusal is kept in the first answers of keyed requests (cores and logs), and postcard
    // writes a code's position: a new code goes last, or an older answer reads as another.
    let position = |code: ConflictCode| crate::codec::encode(&code).expect("encodes");
    assert_eq!(position(ConflictCode::DepartmentPartsAwaited), [41]);
    assert_eq!(position(ConflictCode::PlanElsewhere), [42]);
    assert_eq!(position(ConflictCode::PlanKeptHere), [43]);
}
