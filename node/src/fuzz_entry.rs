//! Entry points for the fuzz targets in `fuzz/` (cargo fuzz; see docs/reliability.md). Each takes
//! raw bytes the way a handler receives them and runs the same decoding and checks the handler
//! runs before anything reaches the ledger. They answer whether the input was accepted; whatever
//! the bytes, they must return, never panic.

use config::SourceConfig;
use ledger::{validate, Actor, BureauCode, Role, Routing};

use crate::api::{ActionRequest, ComplaintRequest, CreateTaskRequest};
use crate::intake::{decode_signal, parse_signal, IntakeRequest, IntakeSource};
use crate::routes::request::{parse_json, parse_query};
use crate::routes::tasks::ListQuery;

fn province_command() -> Actor {
    Actor { user: "fuzz".into(), bureau: BureauCode::parse_compiled("440000").expect("Guangdong"), role: Role::Command }
}

/// `POST /api/v1/tasks`: JSON, field parsing, the ledger's own field checks.
pub fn create_task(bytes: &[u8]) -> bool {
    let Ok(request) = parse_json::<CreateTaskRequest>(bytes) else { return false };
    let Ok(task) = crate::routes::tasks::new_task(ledger::Regions::compiled(), &request, &province_command()) else {
        return false;
    };
    validate::new_task(&task, ledger::Regions::compiled()).is_ok()
}

/// `POST /api/v1/tasks/{id}/{action}`: the body and the fields every action parses.
pub fn task_action(bytes: &[u8]) -> bool {
    let Ok(request) = parse_json::<ActionRequest>(bytes) else { return false };
    let bureau_ok = request
        .assignee_bureau
        .iter()
        .chain(&request.group)
        .all(|text| crate::api::parse_bureau(ledger::Regions::compiled(), "assignee_bureau", text).is_ok());
    let times_ok =
        request.ack_deadline.iter().chain(&request.complete_deadline).all(|t| crate::api::time::parse_ms(t).is_some());
    bureau_ok && times_ok && validate::note(&request.note, false).is_ok()
}

/// `POST /api/v1/complaints`: JSON and the subject.
pub fn complaint(bytes: &[u8]) -> bool {
    let Ok(request) = parse_json::<ComplaintRequest>(bytes) else { return false };
    crate::api::parse_subject(ledger::Regions::compiled(), &request.subject).is_ok()
}

/// `POST /api/v1/intake`: the batch, then each signal decoded and checked on its own.
pub fn intake_batch(bytes: &[u8]) -> bool {
    let Ok(request) = parse_json::<IntakeRequest>(bytes) else { return false };
    let source = IntakeSource::from_config(
        &SourceConfig {
            name: "fuzz".into(),
            token: None,
            token_sha256: None,
            bureau: "440000".into(),
            signals_per_second: 1_000,
            group_by: vec!["subject.uscc".into(), "matter".into()],
            window_minutes: 60,
            task_source: "big_data".into(),
        },
        BureauCode::parse_compiled,
    )
    .expect("a valid source");
    let mut accepted = 0;
    for value in request.signals {
        let Ok(signal) = decode_signal(value) else { continue };
        if let Ok(signal) = parse_signal(ledger::Regions::compiled(), &source, signal, |_, _| Routing::Keep) {
            accepted += usize::from(validate::new_task(&signal.task, ledger::Regions::compiled()).is_ok());
        }
    }
    accepted > 0
}

/// `GET /api/v1/tasks?...`: the query string.
pub fn list_query(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else { return false };
    parse_query::<ListQuery>(Some(text.to_owned())).is_ok()
}

/// The console's first WebSocket message (the hello).
pub fn console_hello(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else { return false };
    crate::push::ws::parse_hello(text).is_ok()
}

/// Guangzhou's ledger (group 440100) as a peer finds it: a dispatch received from the province
/// (forward 440000-1) and one of its own tasks handed to Tianhe's group (440106), so messages
/// and reports have something real to hit.
fn ledger_under_attack() -> &'static ledger::Ledger {
    use ledger::{
        peer_actor, Action, Command, DispatchTerms, ForwardId, Handover, HandoverPurpose, Ledger, Message, NewTask,
        Placement, Severity, Source, Subject, TaskChange, TaskId, TaskKind, Transition,
    };
    static LEDGER: std::sync::OnceLock<Ledger> = std::sync::OnceLock::new();
    LEDGER.get_or_init(|| {
        let code = |text: &str| BureauCode::parse_compiled(text).expect("a known bureau");
        let hour = 3_600_000;
        let t0 = 1_780_000_000_000;
        let subject =
            Subject { uscc: None, name: "某商户".into(), region_code: code("440106"), address: String::new() };
        let mut ledger = Ledger::new();
        let mut apply = |actor: Actor, action: Action| {
            let _ = ledger.apply(&Command { stamp_ms: t0, actor, idempotency: None, action });
        };
        let handover = Handover {
            forward: ForwardId { origin_group: code("440000"), seq: 1 },
            purpose: HandoverPurpose::Dispatch,
            origin_task: TaskId(1),
            origin_bureau: code("440000"),
            kind: TaskKind::Lead,
            severity: Severity::High,
            title: "省局派发".into(),
            description: String::new(),
            subject: subject.clone(),
            source: Source::Complaint,
            dispatch: Some(DispatchTerms {
                assignee: code("440106"),
                ack_deadline_ms: t0 + hour,
                complete_deadline_ms: t0 + 48 * hour,
            }),
            note: String::new(),
            sent_by: "gd-command".into(),
        };
        let message = Box::new(Message::Handover(handover));
        apply(
            peer_actor(code("440000")),
            Action::Receive { message, group: code("440100"), placement: Placement::Keep },
        );
        let gz = Actor { user: "gz-command".into(), bureau: code("440100"), role: Role::Command };
        let new_task = NewTask {
            kind: TaskKind::Lead,
            severity: Severity::High,
            title: "本组线索".into(),
            description: String::new(),
            subject,
            source: Source::Complaint,
            origin_bureau: code("440100"),
            assignee_bureau: None,
            routing: Routing::Keep,
        };
        apply(gz.clone(), Action::CreateTask(new_task));
        let across = Transition::DispatchAcross {
            assignee: code("440106"),
            ack_deadline_ms: t0 + hour,
            complete_deadline_ms: t0 + 48 * hour,
            to_group: code("440106"),
            from_group: code("440100"),
        };
        let change = TaskChange { task: TaskId(2), expected_version: None, note: String::new(), transition: across };
        apply(gz, Action::ChangeTask(change));
        assert_eq!(ledger.task_count(), 2, "the set-up applied");
        ledger
    })
}

/// `POST /federation/v1/deliver` and `/report` from a linked group: the batch decoded as the
/// peer API does, every message and report applied to a ledger that has something for them to
/// hit (from the province for messages, from Tianhe's group for reports). Refusals are fine;
/// a panic, or a ledger that breaks its invariants afterwards, is a finding.
pub fn peer_messages(bytes: &[u8]) -> bool {
    use crate::federation::peer_api::{DeliverRequest, ReportRequest};
    use ledger::{peer_actor, Action, Command, Placement};
    let code = |text: &str| BureauCode::parse_compiled(text).expect("a known bureau");
    let stamp_ms = 1_780_000_000_000 + 3_600_000;
    let mut commands = Vec::new();
    if let Ok(request) = serde_json::from_slice::<DeliverRequest>(bytes) {
        for message in request.messages {
            let action =
                Action::Receive { message: Box::new(message), group: code("440100"), placement: Placement::Keep };
            commands.push(Command { stamp_ms, actor: peer_actor(code("440000")), idempotency: None, action });
        }
    }
    if let Ok(request) = serde_json::from_slice::<ReportRequest>(bytes) {
        for report in request.reports {
            let action = Action::MirrorStatus(Box::new(report));
            commands.push(Command { stamp_ms, actor: peer_actor(code("440106")), idempotency: None, action });
        }
    }
    if commands.is_empty() {
        return false;
    }
    let mut ledger = ledger_under_attack().clone();
    let mut accepted = false;
    for command in &commands {
        accepted |= ledger.apply(command).is_ok();
        if let Err(violation) = ledger.check_invariants() {
            panic!("{violation} after {command:?}");
        }
    }
    accepted
}

/// A backup file (`xietong admin restore` reads one from wherever backups are kept): its header
/// and stream checked whole, every record decoded with `ledger::codec`. A refusal is the
/// answer; a panic or a huge allocation is a finding. Seeds: `tests/fixtures/*/*.backup`.
pub fn backup_file(bytes: &[u8]) -> bool {
    let verified = cluster::backup::verify(&mut &bytes[..]).is_ok();
    // The same bytes as a single record of each kind the store keeps.
    let _ = ledger::codec::decode::<ledger::Task>(bytes);
    let _ = ledger::codec::decode::<ledger::Reporter>(bytes);
    verified
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The review's payloads and a genuine instruction: the payloads are refused, the genuine
    /// one accepted, nothing breaks the ledger.
    #[test]
    fn peer_message_seeds_are_refused_or_applied_without_harm() {
        let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/peer_messages");
        let mut seen = 0;
        for entry in std::fs::read_dir(&seeds).expect("the seeds") {
            let path = entry.expect("entry").path();
            let bytes = std::fs::read(&path).expect("seed");
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
            assert_eq!(peer_messages(&bytes), name.starts_with("genuine"), "{name}");
            seen += 1;
        }
        assert!(seen >= 4, "the seeds are there");
        assert!(!peer_messages(b"{"));
    }

    /// A backup of the fixtures verifies; the same with any one byte changed is refused, and
    /// nothing panics (the checksums, the record decoders and the digest all stand in the way).
    #[test]
    fn a_fixture_backup_verifies_and_every_damaged_copy_is_refused() {
        let seed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/backup_file/440000");
        let bytes = std::fs::read(&seed).expect("the seed");
        assert!(backup_file(&bytes));
        for position in (0..bytes.len()).step_by(7) {
            let mut damaged = bytes.clone();
            damaged[position] ^= 0x5a;
            assert!(!backup_file(&damaged), "a changed byte at {position} is refused");
        }
        assert!(!backup_file(&bytes[..bytes.len() / 2]));
    }

    /// The entry points accept what the API accepts, so a fuzz run explores past the decoder.
    #[test]
    fn well_formed_inputs_are_accepted_and_garbage_is_not() {
        let create = br#"{"kind":"lead","severity":"high","title":"t","subject":{"name":"n","region_code":"440106"},"source":"media"}"#;
        assert!(create_task(create));
        assert!(task_action(br#"{"note":"ok","assignee_bureau":"440106"}"#));
        assert!(complaint(br#"{"channel":"complaint","title":"t","subject":{"name":"n","region_code":"440106"}}"#));
        let intake = br#"{"signals":[{"source_id":"a","kind":"risk_alert","severity":"low","title":"t","subject":{"name":"n","region_code":"440106"},"observed_at":"2026-11-27T10:00:00Z"}]}"#;
        assert!(intake_batch(intake));
        assert!(list_query(b"state=created&limit=10"));
        assert!(console_hello(br#"{"type":"hello","token":"x","scope":"440000","since":3}"#));
        for garbage in [&b""[..], b"\xff\xfe", b"{", b"[[[[", b"null"] {
            assert!(!create_task(garbage) && !complaint(garbage) && !intake_batch(garbage) && !console_hello(garbage));
        }
    }
}
