//! Entry points for the fuzz targets in `fuzz/` (cargo fuzz; see docs/reliability.md). Each takes
//! raw bytes the way a handler receives them and runs the same decoding and checks the handler
//! runs before anything reaches the ledger. They answer whether the input was accepted; whatever
//! the bytes, they must return, never panic.

use cluster::ledger::{validate, Actor, BureauCode, Role, Routing};
use config::SourceConfig;

use crate::api::{ActionRequest, ComplaintRequest, CreateTaskRequest};
use crate::intake::{decode_signal, parse_signal, IntakeRequest, IntakeSource};
use crate::routes::tasks::{parse_json, parse_query, ListQuery};

fn province_command() -> Actor {
    Actor { user: "fuzz".into(), bureau: BureauCode::parse_known("440000").expect("Guangdong"), role: Role::Command }
}

/// `POST /api/v1/tasks`: JSON, field parsing, the ledger's own field checks.
pub fn create_task(bytes: &[u8]) -> bool {
    let Ok(request) = parse_json::<CreateTaskRequest>(bytes) else { return false };
    let Ok(task) = crate::routes::tasks::new_task(&request, &province_command()) else { return false };
    validate::new_task(&task).is_ok()
}

/// `POST /api/v1/tasks/{id}/{action}`: the body and the fields every action parses.
pub fn task_action(bytes: &[u8]) -> bool {
    let Ok(request) = parse_json::<ActionRequest>(bytes) else { return false };
    let bureau_ok = request
        .assignee_bureau
        .iter()
        .chain(&request.group)
        .all(|text| crate::api::parse_bureau("assignee_bureau", text).is_ok());
    let times_ok =
        request.ack_deadline.iter().chain(&request.complete_deadline).all(|t| crate::api::time::parse_ms(t).is_some());
    bureau_ok && times_ok && validate::note(&request.note, false).is_ok()
}

/// `POST /api/v1/complaints`: JSON and the subject.
pub fn complaint(bytes: &[u8]) -> bool {
    let Ok(request) = parse_json::<ComplaintRequest>(bytes) else { return false };
    crate::api::parse_subject(&request.subject).is_ok()
}

/// `POST /api/v1/intake`: the batch, then each signal decoded and checked on its own.
pub fn intake_batch(bytes: &[u8]) -> bool {
    let Ok(request) = parse_json::<IntakeRequest>(bytes) else { return false };
    let source = IntakeSource::from_config(&SourceConfig {
        name: "fuzz".into(),
        token: None,
        token_sha256: None,
        bureau: "440000".into(),
        signals_per_second: 1_000,
        group_by: vec!["subject.uscc".into(), "matter".into()],
        window_minutes: 60,
        task_source: "big_data".into(),
    })
    .expect("a valid source");
    let mut accepted = 0;
    for value in request.signals {
        let Ok(signal) = decode_signal(value) else { continue };
        if let Ok(signal) = parse_signal(&source, signal, |_, _| Routing::Keep) {
            accepted += usize::from(validate::new_task(&signal.task).is_ok());
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

#[cfg(test)]
mod tests {
    use super::*;

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
