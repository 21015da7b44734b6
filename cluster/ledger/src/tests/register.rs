//! The live entity register: the registration system's changes recorded in order, once per
//! change id; freezes of the register made only from the current version and forward in the
//! journal; every step kept through a checkpoint.

use crate::campaign::register::{ChangeKind, ChangeOutcome, Freeze, RegisterChange, RegisteredEntity};
use crate::campaign::{ProgrammeAction, ProgrammeRecord};
use crate::*;

/// 2026-12-07 09:00 Beijing.
const T0: u64 = 1_796_605_200_000;
const BASE: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const FROZEN: &str = "2222222222222222222222222222222222222222222222222222222222222222";

fn bureau(code: &str) -> BureauCode {
    BureauCode::parse_compiled(code).expect(code)
}

fn command(code: &str) -> Actor {
    Actor { user: format!("command-{code}"), bureau: bureau(code), role: Role::Command }
}

/// The registration system of Guangzhou.
fn feed() -> Actor {
    Actor { user: "gz-registration".into(), bureau: bureau("440100"), role: Role::Source }
}

fn uscc(n: u32) -> Uscc {
    Uscc::with_check_character(&format!("91440106MA{n:07}")).expect("a USCC body")
}

fn change(id: &str, kind: ChangeKind, n: u32, region: &str) -> RegisterChange {
    let entity = kind.keeps_entity().then(|| RegisteredEntity {
        name: format!("广州某某{n}有限公司"),
        region: bureau(region),
        industry: "catering".into(),
        credit_status: "normal".into(),
        address: "广州市天河区体育西路1号".into(),
    });
    RegisterChange { id: id.into(), kind, uscc: uscc(n), entity }
}

fn apply(ledger: &mut Ledger, actor: Actor, action: ProgrammeAction) -> CommandResult {
    let before = (ledger.programme().clone(), ledger.entity_register().clone(), ledger.records_digest());
    let stamp_ms = ledger.last_stamp_ms().max(T0) + 1000;
    let result =
        ledger.apply(&Command { stamp_ms, actor, idempotency: None, action: Action::Programme(Box::new(action)) });
    ledger.check_invariants().expect("the ledger keeps its invariants");
    let copy = ledger.copy_through_a_checkpoint_for_tests();
    assert_eq!(copy.digest(), ledger.digest(), "a copy through a checkpoint is the same ledger");
    assert_eq!(copy.entity_register(), ledger.entity_register());
    for seq in 1..=ledger.entity_register().journal_len() {
        assert_eq!(copy.register_entry(seq), ledger.register_entry(seq), "change {seq} is kept");
    }
    if result.is_err() {
        let after = (ledger.programme().clone(), ledger.entity_register().clone(), ledger.records_digest());
        assert_eq!(after, before, "a refusal changes nothing");
    }
    result
}

fn record(ledger: &mut Ledger, changes: Vec<RegisterChange>) -> Vec<ChangeOutcome> {
    match apply(ledger, feed(), ProgrammeAction::RecordRegisterChanges(changes)).expect("a batch is taken").record {
        Some(ProgrammeRecord::RegisterChanges(outcomes)) => outcomes,
        other => panic!("a batch answers per change, not {other:?}"),
    }
}

fn imported() -> Ledger {
    let mut ledger = Ledger::new();
    let import = ProgrammeAction::ImportRegister { sha256: BASE.into(), entities: 10, bytes: 1_000, through: 0 };
    apply(&mut ledger, command("440100"), import).expect("the register's base is imported");
    ledger
}

fn freeze(base: u64, through: u64) -> ProgrammeAction {
    ProgrammeAction::FreezeRegister(Box::new(Freeze {
        sha256: FROZEN.into(),
        entities: 11,
        bytes: 1_100,
        base,
        through,
    }))
}

#[test]
fn changes_are_recorded_in_order_and_once_per_change_id() {
    let mut ledger = imported();
    let outcomes = record(
        &mut ledger,
        vec![
            change("c-1", ChangeKind::Establish, 1, "440106"),
            change("c-2", ChangeKind::Amend, 1, "440104"),
            change("c-3", ChangeKind::Revoke, 2, "440106"),
        ],
    );
    assert_eq!(
        outcomes,
        vec![
            ChangeOutcome::Recorded { seq: 1 },
            ChangeOutcome::Recorded { seq: 2 },
            ChangeOutcome::Recorded { seq: 3 }
        ]
    );
    assert_eq!(ledger.entity_register().journal_len(), 3);
    let second = ledger.register_entry(2).expect("change 2");
    assert_eq!((second.change.id.as_str(), second.source.as_str()), ("c-2", "gz-registration"));

    // Delivered again (a retry after a lost answer): the same numbers, nothing recorded twice.
    let again = record(
        &mut ledger,
        vec![change("c-2", ChangeKind::Amend, 1, "440104"), change("c-4", ChangeKind::Deregister, 3, "440106")],
    );
    assert_eq!(again, vec![ChangeOutcome::Repeat { seq: 2 }, ChangeOutcome::Recorded { seq: 4 }]);
    // A repeat within one batch is a repeat of the first.
    let twice = record(
        &mut ledger,
        vec![change("c-5", ChangeKind::Establish, 5, "440106"), change("c-5", ChangeKind::Establish, 5, "440106")],
    );
    assert_eq!(twice, vec![ChangeOutcome::Recorded { seq: 5 }, ChangeOutcome::Repeat { seq: 5 }]);
    assert_eq!(ledger.register_change_seq("c-5"), Some(5));
    assert_eq!(ledger.entity_register().journal_len(), 5);
}

#[test]
fn a_bad_change_is_refused_alone_and_a_reused_id_is_a_conflict() {
    let mut ledger = imported();
    record(&mut ledger, vec![change("c-1", ChangeKind::Establish, 1, "440106")]);
    let mut no_entity = change("c-2", ChangeKind::Establish, 2, "440106");
    no_entity.entity = None;
    let mut entity_on_revoke = change("c-3", ChangeKind::Revoke, 3, "440106");
    entity_on_revoke.entity = change("x", ChangeKind::Establish, 3, "440106").entity;
    let mut comma = change("c-4", ChangeKind::Establish, 4, "440106");
    comma.entity.as_mut().expect("an entity").name = "广州,某某".into();
    let outcomes = record(
        &mut ledger,
        vec![
            // The same id with other content.
            change("c-1", ChangeKind::Establish, 1, "440104"),
            no_entity,
            entity_on_revoke,
            comma,
            // An entity moved to Shenzhen is not the Guangzhou source's to report.
            change("c-5", ChangeKind::Establish, 5, "440305"),
            change("bad id!", ChangeKind::Establish, 6, "440106"),
            change("c-7", ChangeKind::Establish, 7, "440106"),
        ],
    );
    let refused = |outcome: &ChangeOutcome| matches!(outcome, ChangeOutcome::Refused(_));
    assert!(outcomes[..6].iter().all(refused), "{outcomes:?}");
    assert!(matches!(
        &outcomes[0],
        ChangeOutcome::Refused(Rejection::Conflict { code: ConflictCode::ChangeIdReused, .. })
    ));
    assert!(matches!(&outcomes[4], ChangeOutcome::Refused(Rejection::Forbidden(_))));
    assert_eq!(outcomes[6], ChangeOutcome::Recorded { seq: 2 }, "the good change goes on");
    assert_eq!(ledger.entity_register().journal_len(), 2);
}

#[test]
fn a_source_touches_only_the_entities_its_bureau_registered() {
    let mut ledger = imported();
    // Registered in Shenzhen (4403…): Guangzhou's system may not revoke, amend or take it over.
    let shenzhen = Uscc::with_check_character("91440305MA0000009").expect("a USCC body");
    let mut revoke = change("c-1", ChangeKind::Revoke, 0, "440106");
    revoke.uscc = shenzhen.clone();
    let mut amend = change("c-2", ChangeKind::Amend, 0, "440106");
    amend.uscc = shenzhen;
    let outcomes = record(&mut ledger, vec![revoke, amend, change("c-3", ChangeKind::Deregister, 3, "440106")]);
    assert!(matches!(outcomes[0], ChangeOutcome::Refused(Rejection::Forbidden(_))), "{outcomes:?}");
    assert!(matches!(outcomes[1], ChangeOutcome::Refused(Rejection::Forbidden(_))), "{outcomes:?}");
    assert_eq!(outcomes[2], ChangeOutcome::Recorded { seq: 1 });
    // The province's system covers every city of it.
    let province = Actor { user: "gd-registration".into(), bureau: bureau("440000"), role: Role::Source };
    let batch = ProgrammeAction::RecordRegisterChanges(vec![change("g-1", ChangeKind::Revoke, 4, "440106")]);
    let answer = apply(&mut ledger, province, batch).expect("taken");
    assert_eq!(answer.record, Some(ProgrammeRecord::RegisterChanges(vec![ChangeOutcome::Recorded { seq: 2 }])));
}

#[test]
fn a_classification_is_recorded_like_a_change_and_shown_in_the_entitys_risk_file() {
    use crate::campaign::risk_files::RiskFilesAction;
    use crate::campaign::RiskClass;
    let mut ledger = imported();
    let system = Actor { user: "system".into(), bureau: bureau("440000"), role: Role::System };
    apply(&mut ledger, system, ProgrammeAction::RiskFiles(RiskFilesAction::Keep)).expect("the files are kept");
    let credit_risk = Actor { user: "gd-credit-risk".into(), bureau: bureau("440000"), role: Role::Source };
    let mut with_entity = change("r-3", ChangeKind::ClassifyHigh, 3, "440106");
    with_entity.entity = change("x", ChangeKind::Establish, 3, "440106").entity;
    let batch = vec![
        change("r-1", ChangeKind::ClassifyHigh, 1, "440106"),
        change("r-2", ChangeKind::ClassifyLow, 2, "440106"),
        with_entity,
        change("r-4", ChangeKind::Unclassify, 2, "440106"),
    ];
    let answer = apply(&mut ledger, credit_risk, ProgrammeAction::RecordRegisterChanges(batch)).expect("taken");
    let Some(ProgrammeRecord::RegisterChanges(outcomes)) = answer.record else { panic!("per change") };
    assert_eq!(outcomes[0], ChangeOutcome::Recorded { seq: 1 });
    assert!(matches!(outcomes[2], ChangeOutcome::Refused(Rejection::Invalid { .. })), "a class carries no entity");
    assert_eq!(outcomes[3], ChangeOutcome::Recorded { seq: 3 });
    let high = ledger.risk_file(&uscc(1)).expect("a file for the classed entity");
    assert_eq!(high.assessed.map(|(class, _)| class), Some(RiskClass::High));
    assert_eq!(high.region, bureau("440106"), "placed by the region that registered it");
    assert_eq!(ledger.risk_file(&uscc(2)).expect("a file").assessed, None, "withdrawn");
    assert_eq!(ledger.entity_register().journal_len(), 3);
}

#[test]
fn a_freeze_that_leaves_the_file_as_it_was_moves_the_current_version_forward() {
    let mut ledger = imported();
    record(&mut ledger, vec![change("c-1", ChangeKind::Revoke, 1, "440106")]);
    apply(&mut ledger, command("440100"), freeze(1, 1)).expect("frozen into version 2");
    // Deregistered after the revocation: folded in, the file is the same bytes.
    record(&mut ledger, vec![change("c-2", ChangeKind::Deregister, 1, "440106")]);
    let same = ProgrammeAction::FreezeRegister(Box::new(Freeze {
        sha256: FROZEN.into(),
        entities: 11,
        bytes: 1_100,
        base: 2,
        through: 2,
    }));
    let answer = apply(&mut ledger, command("440100"), same).expect("taken in");
    let Some(ProgrammeRecord::EntityDirectory(version)) = answer.record else { panic!("answers the version") };
    assert_eq!(version.number, 2, "no new version");
    assert_eq!(ledger.programme().entity_directories().len(), 2);
    assert_eq!(ledger.entity_register().version(2).map(|v| (v.through, v.base)), Some((2, Some(1))));
    assert_eq!(ledger.entity_register().pending_after(ledger.programme().entity_directory().unwrap()), Some(0));
}

#[test]
fn only_a_registration_source_feeds_the_register_and_batches_are_bounded() {
    let mut ledger = imported();
    let batch = ProgrammeAction::RecordRegisterChanges(vec![change("c-1", ChangeKind::Establish, 1, "440106")]);
    assert!(matches!(apply(&mut ledger, command("440100"), batch), Err(Rejection::Forbidden(_))));
    let too_many = (0..=crate::campaign::register::CHANGES_PER_COMMAND_MAX as u32)
        .map(|n| change(&format!("c-{n}"), ChangeKind::Establish, n, "440106"))
        .collect();
    let refused = apply(&mut ledger, feed(), ProgrammeAction::RecordRegisterChanges(too_many));
    assert!(matches!(refused, Err(Rejection::Invalid { .. })));
    assert!(matches!(
        apply(&mut ledger, feed(), ProgrammeAction::RecordRegisterChanges(Vec::new())),
        Err(Rejection::Invalid { .. })
    ));
}

#[test]
fn a_freeze_starts_from_the_current_version_and_moves_forward_in_the_journal() {
    let mut ledger = imported();
    // Nothing recorded since the import: nothing to freeze.
    assert!(matches!(apply(&mut ledger, command("440100"), freeze(1, 0)), Err(Rejection::NothingToRecord(_))));
    record(
        &mut ledger,
        vec![change("c-1", ChangeKind::Establish, 1, "440106"), change("c-2", ChangeKind::Revoke, 2, "440106")],
    );
    assert_eq!(ledger.entity_register().pending_after(ledger.programme().entity_directory().unwrap()), Some(2));
    // Past the journal's end, from a version that is not current, by a source: refused.
    assert!(matches!(apply(&mut ledger, command("440100"), freeze(1, 3)), Err(Rejection::Invalid { .. })));
    let stale = apply(&mut ledger, command("440100"), freeze(2, 2));
    assert!(matches!(stale, Err(Rejection::Conflict { code: ConflictCode::DirectoryChanged, .. })));
    assert!(matches!(apply(&mut ledger, feed(), freeze(1, 2)), Err(Rejection::Forbidden(_))));

    let frozen = apply(&mut ledger, command("440100"), freeze(1, 2)).expect("the register is frozen");
    let Some(ProgrammeRecord::EntityDirectory(version)) = frozen.record else { panic!("a freeze makes a version") };
    assert_eq!((version.number, version.sha256.as_str(), version.entities), (2, FROZEN, 11));
    let register = ledger.entity_register();
    let frozen = register.version(2).expect("the freeze is on record");
    assert_eq!((frozen.through, frozen.base), (2, Some(1)));
    assert_eq!(register.pending_after(ledger.programme().entity_directory().unwrap()), Some(0));
    // Once more through the same change: nothing new.
    assert!(matches!(apply(&mut ledger, command("440100"), freeze(2, 2)), Err(Rejection::NothingToRecord(_))));
}

#[test]
fn a_directory_imported_the_old_way_is_no_base_for_a_freeze_and_an_import_takes_in_the_journal() {
    let mut ledger = Ledger::new();
    let old = ProgrammeAction::RecordEntityDirectory { sha256: BASE.into(), entities: 10, bytes: 1_000 };
    apply(&mut ledger, command("440100"), old).expect("imported");
    record(&mut ledger, vec![change("c-1", ChangeKind::Establish, 1, "440106")]);
    let unbased = apply(&mut ledger, command("440100"), freeze(1, 1));
    assert!(matches!(unbased, Err(Rejection::Conflict { code: ConflictCode::RegisterUnbased, .. })));
    // A whole import holds the changes recorded when its upload began, never more.
    let past_the_end =
        ProgrammeAction::ImportRegister { sha256: FROZEN.into(), entities: 11, bytes: 1_100, through: 2 };
    assert!(matches!(apply(&mut ledger, command("440100"), past_the_end), Err(Rejection::Invalid { .. })));
    let import = ProgrammeAction::ImportRegister { sha256: FROZEN.into(), entities: 11, bytes: 1_100, through: 1 };
    apply(&mut ledger, command("440100"), import).expect("imported again");
    assert_eq!(ledger.entity_register().version(2).map(|v| (v.through, v.base)), Some((1, None)));
    assert!(matches!(apply(&mut ledger, command("440100"), freeze(2, 1)), Err(Rejection::NothingToRecord(_))));
}

#[test]
fn a_core_of_format_6_reads_as_a_ledger_with_no_register() {
    let ledger = imported();
    let mut empty = Ledger::new();
    let directory = ProgrammeAction::RecordEntityDirectory { sha256: BASE.into(), entities: 10, bytes: 1_000 };
    apply(&mut empty, command("440100"), directory).expect("imported");
    let core = empty.encode_core();
    let no_register = crate::codec::encode(&crate::campaign::register::Register::default()).unwrap();
    let format_6 = &core[..core.len() - no_register.len()];
    assert_eq!(crate::campaign::register::core_of_format_6(format_6), core);
    assert_ne!(ledger.encode_core(), core, "an import as the register's base is on record");
}

mod random {
    use proptest::prelude::*;

    use super::*;

    /// One step of a random history: a batch of changes from a small pool of ids and entities
    /// (so repeats and reused ids happen), an import, or a freeze at some base and length.
    #[derive(Clone, Debug)]
    enum Step {
        Batch(Vec<(u8, u8, u8, bool)>),
        Import(u8),
        Freeze { base: u8, through: u8 },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => proptest::collection::vec((0u8..12, 0u8..4, 0u8..6, any::<bool>()), 1..6).prop_map(Step::Batch),
            1 => any::<u8>().prop_map(Step::Import),
            2 => (0u8..6, 0u8..30).prop_map(|(base, through)| Step::Freeze { base, through }),
        ]
    }

    fn command_of(ledger: &Ledger, step: &Step, stamp_ms: u64) -> Command {
        let (actor, action) = match step {
            Step::Batch(changes) => {
                let changes = changes
                    .iter()
                    .map(|(id, kind, entity, inside)| {
                        let region = if *inside { "440106" } else { "440305" };
                        let kind = ChangeKind::ALL[usize::from(*kind)];
                        change(&format!("c-{id}"), kind, u32::from(*entity), region)
                    })
                    .collect();
                (feed(), ProgrammeAction::RecordRegisterChanges(changes))
            }
            Step::Import(n) => {
                let sha256 = format!("{:064x}", u64::from(*n) + 1);
                let through = ledger.entity_register().journal_len() / 2;
                (command("440100"), ProgrammeAction::ImportRegister { sha256, entities: 10, bytes: 1_000, through })
            }
            Step::Freeze { base, through } => {
                let current = ledger.programme().entity_directories().len() as u64;
                let freeze = Freeze {
                    sha256: format!("{:064x}", stamp_ms),
                    entities: 10,
                    bytes: 1_000,
                    base: current.saturating_sub(u64::from(*base % 2)).max(u64::from(*base / 2)),
                    through: u64::from(*through),
                };
                (command("440100"), ProgrammeAction::FreezeRegister(Box::new(freeze)))
            }
        };
        Command { stamp_ms, actor, idempotency: None, action: Action::Programme(Box::new(action)) }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        /// Whatever the feed, imports and freezes do, the journal is numbered without gaps,
        /// each id names the change filed under it, a refusal changes nothing, and a replay
        /// with checkpoints and restarts ends in the same ledger.
        #[test]
        fn random_feeds_and_freezes_keep_the_register_whole(steps in proptest::collection::vec(step(), 1..40)) {
            let mut ledger = Ledger::new();
            let mut log = Vec::new();
            let mut stamp_ms = T0;
            for step in &steps {
                stamp_ms += 60_000;
                let command = command_of(&ledger, step, stamp_ms);
                let before = (ledger.programme().clone(), ledger.entity_register().clone(), ledger.records_digest());
                let result = ledger.apply(&command);
                ledger.check_invariants().expect("the invariants hold");
                if result.is_err() {
                    let after = (ledger.programme().clone(), ledger.entity_register().clone(), ledger.records_digest());
                    prop_assert_eq!(after, before);
                }
                log.push(command);
            }
            let register = ledger.entity_register();
            for seq in 1..=register.journal_len() {
                let entry = ledger.register_entry(seq).expect("no gap in the journal");
                prop_assert_eq!(entry.seq, seq);
                prop_assert_eq!(ledger.register_change_seq(&entry.change.id), Some(seq));
            }
            prop_assert!(ledger.register_entry(register.journal_len() + 1).is_none());
            let all: Vec<u64> = ledger.register_entries(1, register.journal_len()).iter().map(|e| e.seq).collect();
            prop_assert_eq!(all, (1..=register.journal_len()).collect::<Vec<_>>());
            let copy = ledger.copy_through_a_checkpoint_for_tests();
            prop_assert_eq!(copy.digest(), ledger.digest());
            let replayed = super::super::replay_with_checkpoints(&log, 7);
            prop_assert_eq!(replayed.digest(), ledger.digest());
        }
    }
}
