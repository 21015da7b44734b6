//! What each member's build reads beyond the peer format, told with every peer RPC.
//!
//! A command of a new format may be proposed only once every member reads it (the node's
//! `reference::members_read`). Asking a member over HTTP now and then leaves a gap: a node that
//! becomes leader right after the old leader died may never have had an answer from it. So
//! every peer RPC says what its sender reads (`MEMBER_READS_HEADER`, with
//! `SENDER_NODE_HEADER`), and every answer what its responder reads: a follower knows its
//! leader's formats from the first heartbeat, and a leader its followers' from their answers.
//! What a member tells is handed to the node (`HearReads`), only when it changed and only from a
//! member that presented the group secret (the receiver) or that the target check named (the
//! caller).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, HeaderValue};

use super::NodeId;

/// The formats the sender (or responder) reads, comma-separated.
pub const MEMBER_READS_HEADER: &str = "x-xietong-reads";
/// The member that sent a peer RPC.
pub const SENDER_NODE_HEADER: &str = "x-xietong-sender-node";
/// The longest reads header taken; a build names a handful of formats.
const MEMBER_READS_HEADER_BYTES_MAX: usize = 4 * 1024;

/// Takes what member `id`, at group address `addr`, says it reads.
pub type HearReads = Arc<dyn Fn(NodeId, &str, &[String]) + Send + Sync>;

#[derive(Clone)]
pub struct MemberReads {
    ours: HeaderValue,
    hear: HearReads,
    /// The header each member last told, so the node hears only a change.
    last_told: Arc<Mutex<BTreeMap<NodeId, (String, HeaderValue)>>>,
}

impl MemberReads {
    /// `ours`: the formats this build reads (names of letters, digits, `-` and `.`).
    pub fn new(ours: &[&str], hear: HearReads) -> MemberReads {
        for format in ours {
            assert!(
                !format.is_empty() && format.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'),
                "a format's name is a token: {format:?}"
            );
        }
        let ours = HeaderValue::from_str(&ours.join(",")).expect("tokens make a header value");
        MemberReads { ours, hear, last_told: Arc::default() }
    }

    /// A build that reads nothing beyond the peer format and listens to no one.
    pub fn nothing() -> MemberReads {
        MemberReads::new(&[], Arc::new(|_, _, _| {}))
    }

    pub(super) fn ours(&self) -> &HeaderValue {
        &self.ours
    }

    /// Hands the node what member `id` at `addr` told in `headers`, if it told and it changed.
    pub(super) fn heard(&self, id: NodeId, addr: &str, headers: &HeaderMap) {
        let Some(told) = headers.get(MEMBER_READS_HEADER) else { return };
        if told.len() > MEMBER_READS_HEADER_BYTES_MAX {
            return;
        }
        let Ok(text) = told.to_str() else { return };
        {
            let mut last_told = self.last_told.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if last_told.get(&id).is_some_and(|(last_addr, last)| last_addr == addr && last == told) {
                return;
            }
            last_told.insert(id, (addr.to_owned(), told.clone()));
        }
        let reads: Vec<String> = text.split(',').filter(|read| !read.is_empty()).map(str::to_owned).collect();
        (self.hear)(id, addr, &reads);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the node heard: member, address, formats.
    type Heard = Vec<(NodeId, String, Vec<String>)>;

    #[test]
    fn a_member_is_heard_once_per_change_and_a_bad_header_is_ignored() {
        let heard: Arc<Mutex<Heard>> = Arc::default();
        let record = heard.clone();
        let reads = MemberReads::new(
            &["a-1"],
            Arc::new(move |id, addr, reads| record.lock().unwrap().push((id, addr.to_owned(), reads.to_vec()))),
        );
        assert_eq!(reads.ours(), "a-1");
        let mut headers = HeaderMap::new();
        reads.heard(2, "127.0.0.1:1", &headers);
        headers.insert(MEMBER_READS_HEADER, HeaderValue::from_static("a-1,b-2"));
        reads.heard(2, "127.0.0.1:1", &headers);
        reads.heard(2, "127.0.0.1:1", &headers);
        reads.heard(2, "127.0.0.1:9", &headers);
        headers.insert(MEMBER_READS_HEADER, HeaderValue::from_static(""));
        reads.heard(2, "127.0.0.1:9", &headers);
        headers.insert(MEMBER_READS_HEADER, HeaderValue::from_str(&"x".repeat(5_000)).unwrap());
        reads.heard(3, "127.0.0.1:3", &headers);
        let heard = heard.lock().unwrap().clone();
        let pair = vec!["a-1".to_owned(), "b-2".to_owned()];
        assert_eq!(
            heard,
            vec![
                (2, "127.0.0.1:1".to_owned(), pair.clone()),
                (2, "127.0.0.1:9".to_owned(), pair),
                (2, "127.0.0.1:9".to_owned(), vec![]),
            ]
        );
    }

    #[test]
    #[should_panic(expected = "a format's name is a token")]
    fn a_format_name_with_a_comma_is_a_bug() {
        MemberReads::new(&["a,b"], Arc::new(|_, _, _| {}));
    }
}
