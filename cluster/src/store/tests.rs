//! The store on its own: checkpoints read back as written, a stream loads into an equal store,
//! and a stream that is damaged, reordered, or whose records break the ledger's invariants is
//! refused with the reason and leaves no store behind.

use ledger::{Action, Actor, BureauCode, Command, Ledger, NewTask, Role, Routing, Severity, Source, Subject, TaskKind};

use super::stream::{load_stream, verify_stream, write_stream};
use super::*;

fn bureau(code: &str) -> BureauCode {
    BureauCode::parse_compiled(code).expect(code)
}

fn create(title: &str) -> Action {
    Action::CreateTask(NewTask {
        kind: TaskKind::Lead,
        severity: Severity::Normal,
        title: title.into(),
        description: "长一点的描述".repeat(20),
        subject: Subject {
            uscc: None,
            name: "广州某某有限公司".into(),
            region_code: bureau("440106"),
            address: String::new(),
        },
        source: Source::Complaint,
        origin_bureau: bureau("440100"),
        assignee_bureau: None,
        routing: Routing::Keep,
    })
}

/// Seals `ledger`'s changes and writes them with its core into `store` as the checkpoint at log
/// index `index`.
fn checkpoint(store: &Store, ledger: &mut Ledger, index: u64) {
    let sealed = ledger.seal();
    let meta = CheckpointMeta {
        applied: Some(openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), index)),
        membership: Default::default(),
    };
    store.write_checkpoint(&sealed, &ledger.encode_core(), &meta, &ledger.regions()).expect("checkpoint");
    ledger.checkpoint_written();
}

/// A ledger of `tasks` tasks whose records were checkpointed into `store` in several steps.
fn checkpointed(store: &Store, tasks: u64) -> Ledger {
    let mut ledger = Ledger::new();
    ledger.set_records(store.records());
    let actor = Actor { user: "gz-command".into(), bureau: bureau("440100"), role: Role::Command };
    for n in 1..=tasks {
        let command = Command {
            stamp_ms: 1_780_000_000_000 + n,
            actor: actor.clone(),
            idempotency: None,
            action: create(&format!("任务{n}")),
        };
        ledger.apply(&command).expect("created");
        if n % 7 == 0 || n == tasks {
            checkpoint(store, &mut ledger, n);
        }
    }
    ledger
}

#[test]
fn a_checkpoint_reads_back_as_the_ledger_that_wrote_it() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&dir.path().join(STORE_FILE)).expect("store");
    let digest = checkpointed(&store, 30).digest();
    drop(store);
    let store = Store::open(&dir.path().join(STORE_FILE)).expect("reopened");
    let (meta, core) = store.last_checkpoint().expect("read").expect("a checkpoint");
    assert_eq!(meta.index(), Some(30));
    let reopened = Ledger::from_core(&core, store.records()).expect("core");
    reopened.check_invariants().expect("invariants");
    assert_eq!(reopened.digest(), digest);
    assert_eq!(reopened.tasks_newest_first(None).count(), 30);
}

#[test]
fn a_stream_loads_into_an_equal_store_and_verifies_alone() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&dir.path().join("a.redb")).expect("store");
    let ledger = checkpointed(&store, 50);
    let mut bytes = Vec::new();
    let (meta, records) = write_stream(&store.view().expect("view"), &mut bytes).expect("stream");
    assert_eq!((meta.index(), records), (Some(50), 50));
    let verified = verify_stream(&mut bytes.as_slice()).expect("verifies");
    assert_eq!(verified.meta, meta);
    let loaded = load_stream(&mut bytes.as_slice(), &dir.path().join("b.redb")).expect("loads");
    assert_eq!(loaded.meta, meta);
    assert_eq!(loaded.digest_as_read, ledger.digest(), "a stream of this format: its core as written");
    let core = loaded.core;
    let loaded = Store::open(&dir.path().join("b.redb")).expect("loaded store");
    let copy = Ledger::from_core(&core, loaded.records()).expect("core");
    assert_eq!(copy.digest(), ledger.digest());
    let original: Vec<_> = ledger.tasks_newest_first(None).collect();
    assert_eq!(copy.tasks_newest_first(None).collect::<Vec<_>>(), original);
}

#[test]
fn a_damaged_or_cut_stream_is_refused_and_leaves_no_store() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&dir.path().join("a.redb")).expect("store");
    checkpointed(&store, 20);
    let mut bytes = Vec::new();
    write_stream(&store.view().expect("view"), &mut bytes).expect("stream");
    let target = dir.path().join("b.redb");
    for position in [3, 20, bytes.len() / 3, bytes.len() / 2, bytes.len() - 2] {
        let mut damaged = bytes.clone();
        damaged[position] ^= 0x10;
        assert!(load_stream(&mut damaged.as_slice(), &target).is_err(), "a flipped bit at {position} is refused");
        assert!(!target.exists(), "a refused stream leaves no store");
        assert!(verify_stream(&mut damaged.as_slice()).is_err());
    }
    assert!(load_stream(&mut &bytes[..bytes.len() - 20], &target).is_err(), "a cut stream is refused");
    assert!(!target.exists());
}

#[test]
fn records_that_break_the_ledgers_invariants_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&dir.path().join("a.redb")).expect("store");
    let mut broken = Ledger::broken_for_tests();
    let sealed = broken.seal();
    let meta = CheckpointMeta {
        applied: Some(openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), 5)),
        membership: Default::default(),
    };
    store.write_checkpoint(&sealed, &broken.encode_core(), &meta, &broken.regions()).expect("checkpoint");
    let mut bytes = Vec::new();
    write_stream(&store.view().expect("view"), &mut bytes).expect("stream");
    let error = load_stream(&mut bytes.as_slice(), &dir.path().join("b.redb")).expect_err("refused");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    assert!(error.to_string().contains("assignee"), "{error}");
}

#[test]
fn records_that_do_not_add_up_to_the_cores_digest_are_refused() {
    // A record changed behind the ledger's back (bit rot the CRC of its frame cannot see, since
    // the frame is made from the damaged record): well formed, but not what the core describes.
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&dir.path().join("a.redb")).expect("store");
    let ledger = checkpointed(&store, 10);
    let mut tampered = ledger::Task::clone(&ledger.task(ledger::TaskId(3)).expect("task 3"));
    tampered.title = "改过的标题".into();
    let write = store.db.begin_write().expect("write");
    {
        let mut tasks = write.open_table(TASKS).expect("tasks");
        tasks.insert(3, ledger::codec::encode(&tampered).expect("encode").as_slice()).expect("insert");
    }
    write.commit().expect("commit");
    let mut bytes = Vec::new();
    write_stream(&store.view().expect("view"), &mut bytes).expect("stream");
    let error = verify_stream(&mut bytes.as_slice()).expect_err("refused");
    assert!(error.to_string().contains("digest"), "{error}");
    let error = load_stream(&mut bytes.as_slice(), &dir.path().join("b.redb")).expect_err("refused");
    assert!(error.to_string().contains("digest"), "{error}");
}

/// The frames of a stream after its magic: (kind, payload).
fn frames(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut rest = &bytes[stream::MAGIC.len()..];
    let mut frames = Vec::new();
    while !rest.is_empty() {
        let kind = rest[0];
        let length = u32::from_le_bytes(rest[1..5].try_into().expect("4 bytes")) as usize;
        frames.push((kind, rest[5..5 + length].to_vec()));
        rest = &rest[5 + length + 4..];
    }
    frames
}

/// A stream of these frames, each under a correct checksum.
fn framed(frames: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut bytes = stream::MAGIC.to_vec();
    for (kind, payload) in frames {
        let mut crc = crc32fast::Hasher::new();
        crc.update(&[*kind]);
        crc.update(payload);
        bytes.push(*kind);
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        bytes.extend_from_slice(payload);
        bytes.extend_from_slice(&crc.finalize().to_le_bytes());
    }
    bytes
}

#[test]
fn a_record_sent_twice_is_refused_even_under_correct_checksums_and_count() {
    // Without the order check, a task sent twice could make room for a stray handover record
    // in the one-to-one counts, and a later apply would meet it.
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&dir.path().join("a.redb")).expect("store");
    checkpointed(&store, 5);
    let mut bytes = Vec::new();
    write_stream(&store.view().expect("view"), &mut bytes).expect("stream");
    let mut forged = frames(&bytes);
    let end = forged.pop().expect("the end");
    let last_task = forged.last().expect("a task").clone();
    forged.push(last_task);
    let count = u64::from_le_bytes(end.1.as_slice().try_into().expect("8 bytes")) + 1;
    forged.push((end.0, count.to_le_bytes().to_vec()));
    let forged = framed(&forged);
    assert_eq!(framed(&frames(&bytes)), bytes, "the test frames streams as the writer does");
    let error = load_stream(&mut forged.as_slice(), &dir.path().join("b.redb")).expect_err("refused");
    assert!(error.to_string().contains("out of order or repeated"), "{error}");
    assert!(verify_stream(&mut forged.as_slice()).is_err());
}

/// Indexes and tallies derived under another version (or a store from before them) are derived
/// again at open, equal to those the checkpoints kept; a store loaded from a stream derives the
/// same.
#[test]
fn indexes_and_tallies_are_derived_again_when_their_version_changes() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join(STORE_FILE);
    let store = Store::open(&path).expect("store");
    let mut ledger = checkpointed(&store, 30);
    // Half of them dispatched, so they count in the response tallies.
    let actor = Actor { user: "gz-command".into(), bureau: bureau("440100"), role: Role::Command };
    for n in (1..=30).step_by(2) {
        let transition = ledger::Transition::Dispatch {
            assignee: bureau("440106"),
            ack_deadline_ms: 1_780_000_100_000,
            complete_deadline_ms: 1_780_000_200_000,
        };
        let change =
            ledger::TaskChange { task: ledger::TaskId(n), expected_version: None, transition, note: String::new() };
        let command = Command {
            stamp_ms: 1_780_000_000_100 + n,
            actor: actor.clone(),
            idempotency: None,
            action: Action::ChangeTask(change),
        };
        ledger.apply(&command).expect("dispatched");
    }
    let sealed = ledger.seal();
    let meta = CheckpointMeta {
        applied: Some(openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), 60)),
        membership: Default::default(),
    };
    store.write_checkpoint(&sealed, &ledger.encode_core(), &meta, &ledger.regions()).expect("checkpoint");
    let view = store.view().expect("view");
    let (kept, census) = (tally::tallies(&view).expect("tallies"), tally::census(&view).expect("census"));
    assert!(!kept.is_empty(), "dispatched tasks are tallied");
    assert_eq!(census.iter().map(|(_, _, count)| count).sum::<u64>(), 30);
    let mut stream = Vec::new();
    write_stream(&view, &mut stream).expect("stream");
    drop(view);
    let write = store.db.begin_write().expect("write");
    write.delete_table(tally::TALLIES).expect("drop the tallies");
    write.delete_table(index::BY_USCC).expect("drop an index");
    write.open_table(META).expect("meta").remove("derived_version").expect("forget the version");
    write.commit().expect("commit");
    drop((store, ledger));

    let reopened = Store::open(&path).expect("reopened");
    let view = reopened.view().expect("view");
    assert_eq!(tally::tallies(&view).expect("tallies"), kept);
    assert_eq!(tally::census(&view).expect("census"), census);
    let loaded = dir.path().join("loaded.redb");
    load_stream(&mut stream.as_slice(), &loaded).expect("loaded");
    let loaded = Store::open_existing(&loaded).expect("open");
    let view = loaded.view().expect("view");
    assert_eq!(tally::tallies(&view).expect("tallies"), kept);
}

const PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";

/// `checkpointed` with accounts: two people of Tianhe made between the tasks.
fn with_accounts(store: &Store) -> Ledger {
    let mut ledger = checkpointed(store, 5);
    let actor = Actor { user: "gz-command".into(), bureau: bureau("440100"), role: Role::Command };
    for (n, login) in ["th.li", "th.wang"].into_iter().enumerate() {
        let action = ledger::organisation::OrganisationAction::CreatePerson {
            login: login.into(),
            name: format!("办事员{n}"),
            unit: bureau("440106"),
            roles: vec![ledger::organisation::PersonRole::Handler],
            password_phc: PHC.into(),
        };
        let command = Command {
            stamp_ms: 1_780_000_001_000 + n as u64,
            actor: actor.clone(),
            idempotency: None,
            action: Action::Organisation(Box::new(action)),
        };
        ledger.apply(&command).expect("an account");
    }
    checkpoint(store, &mut ledger, 7);
    ledger
}

#[test]
fn accounts_are_checkpointed_and_streamed_before_the_tasks() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&dir.path().join("a.redb")).expect("store");
    let ledger = with_accounts(&store);
    let person = ledger.person(ledger::organisation::PersonId(2)).expect("the second account");
    assert_eq!(ledger.person_of_login("th.wang"), Some(person.id));
    let mut bytes = Vec::new();
    let (_, records) = write_stream(&store.view().expect("view"), &mut bytes).expect("stream");
    assert_eq!(records, 5 + 2 + 2, "tasks, accounts and logins");
    let loaded = load_stream(&mut bytes.as_slice(), &dir.path().join("b.redb")).expect("loads");
    let copy =
        Ledger::from_core(&loaded.core, Store::open(&dir.path().join("b.redb")).expect("b").records()).expect("core");
    copy.check_invariants().expect("invariants");
    assert_eq!(copy.digest(), ledger.digest());
    assert_eq!(copy.person(person.id), Some(person));
    assert_eq!(copy.person_of_login("th.li"), Some(ledger::organisation::PersonId(1)));

    // A login filed for another account: the digest still adds up if the forger knew it, so
    // the loader's own check refuses it. Swap the two logins' numbers.
    let mut forged = frames(&bytes);
    for (kind, payload) in &mut forged {
        if *kind == 9 {
            let number = u64::from_be_bytes(payload[..8].try_into().expect("8 bytes"));
            payload[..8].copy_from_slice(&(3 - number).to_be_bytes());
        }
    }
    let forged = framed(&forged);
    let refused = load_stream(&mut forged.as_slice(), &dir.path().join("c.redb")).expect_err("refused");
    assert!(refused.to_string().contains("login"), "{refused}");
    assert!(!dir.path().join("c.redb").exists());
}

/// `checkpointed` with the entity register: a base imported and three changes fed.
fn with_register(store: &Store) -> Ledger {
    use ledger::campaign::register::{ChangeKind, RegisterChange, RegisteredEntity};
    use ledger::campaign::ProgrammeAction;
    let mut ledger = checkpointed(store, 3);
    let command = Actor { user: "gz-command".into(), bureau: bureau("440100"), role: Role::Command };
    let feed = Actor { user: "gz-registration".into(), bureau: bureau("440100"), role: Role::Source };
    let import = ProgrammeAction::ImportRegister { sha256: "1".repeat(64), entities: 10, bytes: 100, through: 0 };
    let changes = (1..=3u32)
        .map(|n| RegisterChange {
            id: format!("c-{n}"),
            kind: ChangeKind::Establish,
            uscc: ledger::Uscc::with_check_character(&format!("91440106MA{n:07}")).expect("a USCC"),
            entity: Some(RegisteredEntity {
                name: format!("公司{n}"),
                region: bureau("440106"),
                industry: "retail".into(),
                credit_status: "normal".into(),
                address: String::new(),
            }),
        })
        .collect();
    for (n, (actor, action)) in
        [(command, import), (feed, ProgrammeAction::RecordRegisterChanges(changes))].into_iter().enumerate()
    {
        let stamp_ms = 1_780_000_002_000 + n as u64;
        let action = Action::Programme(Box::new(action));
        ledger.apply(&Command { stamp_ms, actor, idempotency: None, action }).expect("applied");
    }
    checkpoint(store, &mut ledger, 5);
    ledger
}

#[test]
fn the_register_journal_is_checkpointed_and_streamed_whole() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&dir.path().join("a.redb")).expect("store");
    let ledger = with_register(&store);
    assert_eq!(ledger.entity_register().journal_len(), 3);
    let mut bytes = Vec::new();
    let (_, records) = write_stream(&store.view().expect("view"), &mut bytes).expect("stream");
    assert_eq!(records, 3 + 3 + 3, "tasks, journal entries and change ids");
    let loaded = load_stream(&mut bytes.as_slice(), &dir.path().join("b.redb")).expect("loads");
    let copy =
        Ledger::from_core(&loaded.core, Store::open(&dir.path().join("b.redb")).expect("b").records()).expect("core");
    copy.check_invariants().expect("invariants");
    assert_eq!(copy.digest(), ledger.digest());
    assert_eq!(copy.register_entry(2), ledger.register_entry(2));
    assert_eq!(copy.register_change_seq("c-3"), Some(3));
    let read: Vec<u64> = copy.register_entries(2, 9).iter().map(|entry| entry.seq).collect();
    assert_eq!(read, [2, 3], "a range read from the store, as far as the journal goes");

    // A change id filed under another change's number: refused by the loader's own check.
    let mut forged = frames(&bytes);
    for (kind, payload) in &mut forged {
        if *kind == 11 {
            let number = u64::from_be_bytes(payload[..8].try_into().expect("8 bytes"));
            payload[..8].copy_from_slice(&(4 - number).to_be_bytes());
        }
    }
    let refused = load_stream(&mut framed(&forged).as_slice(), &dir.path().join("c.redb")).expect_err("refused");
    assert!(refused.to_string().contains("change id"), "{refused}");
    // A journal entry left out, the end's count made to agree: the journal's own count refuses it.
    let mut short: Vec<_> =
        frames(&bytes).into_iter().filter(|(kind, payload)| !(*kind == 10 && payload[7] == 2)).collect();
    let end = short.last_mut().expect("the end");
    end.1 = 8u64.to_le_bytes().to_vec();
    let refused = verify_stream(&mut framed(&short).as_slice()).expect_err("refused");
    assert!(refused.to_string().contains("register changes"), "{refused}");
}

/// A ledger whose risk files were turned on over tasks about three entities, then moved by one
/// more task, checkpointed into `store`.
fn with_risk_files(store: &Store) -> Ledger {
    use ledger::campaign::risk_files::RiskFilesAction;
    use ledger::campaign::ProgrammeAction;
    let mut ledger = Ledger::new();
    ledger.set_records(store.records());
    let command = Actor { user: "gz-command".into(), bureau: bureau("440100"), role: Role::Command };
    let system = Actor { user: "system".into(), bureau: bureau("440100"), role: Role::System };
    let about = |n: u32| {
        let Action::CreateTask(mut task) = create(&format!("关于主体{n}")) else { unreachable!("a creation") };
        task.subject.uscc = Some(ledger::Uscc::with_check_character(&format!("91440106MA{n:07}")).expect("a USCC"));
        Action::CreateTask(task)
    };
    let keep = Action::Programme(Box::new(ProgrammeAction::RiskFiles(RiskFilesAction::Keep)));
    let steps =
        [(1, command.clone(), about(1)), (2, command.clone(), about(2)), (3, system, keep), (4, command, about(3))];
    for (n, actor, action) in steps {
        ledger.apply(&Command { stamp_ms: 1_780_000_000_000 + n, actor, idempotency: None, action }).expect("applied");
    }
    checkpoint(store, &mut ledger, 4);
    ledger
}

#[test]
fn risk_files_are_checkpointed_and_streamed_and_counted() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&dir.path().join("a.redb")).expect("store");
    let ledger = with_risk_files(&store);
    assert_eq!(ledger.risk_files().count(), 3, "two filed with the history, one by its event");
    let uscc = ledger::Uscc::with_check_character("91440106MA0000003").expect("a USCC");
    assert_eq!(ledger.risk_file(&uscc).expect("read from the store").complaints, 1);
    let mut bytes = Vec::new();
    let (_, records) = write_stream(&store.view().expect("view"), &mut bytes).expect("stream");
    assert_eq!(records, 3 + 3, "tasks and files");
    let loaded = load_stream(&mut bytes.as_slice(), &dir.path().join("b.redb")).expect("loads");
    let copy =
        Ledger::from_core(&loaded.core, Store::open(&dir.path().join("b.redb")).expect("b").records()).expect("core");
    copy.check_invariants().expect("invariants");
    assert_eq!(copy.digest(), ledger.digest());
    assert_eq!(copy.risk_file(&uscc), ledger.risk_file(&uscc));

    // A file left out, the end's count made to agree: the core's count refuses it.
    let files = frames(&bytes).iter().filter(|(kind, _)| *kind == 12).count();
    assert_eq!(files, 3);
    let mut short: Vec<_> = frames(&bytes);
    let first_file = short.iter().position(|(kind, _)| *kind == 12).expect("a file");
    short.remove(first_file);
    let end = short.last_mut().expect("the end");
    end.1 = (records - 1).to_le_bytes().to_vec();
    let refused = verify_stream(&mut framed(&short).as_slice()).expect_err("refused");
    assert!(refused.to_string().contains("risk files"), "{refused}");
    // A file whose counts were changed: the digest refuses it.
    let mut forged = frames(&bytes);
    let (_, payload) = forged.iter_mut().find(|(kind, _)| *kind == 12).expect("a file");
    let mut file: ledger::campaign::risk_files::RiskFile = ledger::codec::decode(&payload[8..]).expect("a file");
    file.complaints += 5;
    payload.truncate(8);
    payload.extend(ledger::codec::encode(&file).expect("encodes"));
    let refused = verify_stream(&mut framed(&forged).as_slice()).expect_err("refused");
    assert!(refused.to_string().contains("digest"), "{refused}");
}
