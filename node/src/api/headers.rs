//! The HTTP headers of the contract that are Xietong's own: the client's idempotency key, and
//! what members of a group tell each other on a relayed request.

/// A client's key for a write: a retry with the same key (on any node, also after a failover)
/// gets the first answer and writes nothing.
pub const IDEMPOTENCY: &str = "idempotency-key";

/// Whether `key` is an Idempotency-Key as a client may give one: 1 to
/// `IDEMPOTENCY_KEY_CHARS_MAX` visible ASCII characters.
pub fn is_idempotency_key(key: &str) -> bool {
    let chars = key.chars().count();
    (1..=ledger::limits::IDEMPOTENCY_KEY_CHARS_MAX).contains(&chars) && key.chars().all(|c| c.is_ascii_graphic())
}
/// How many times a request was relayed between the group's members. Believed only with a
/// valid `RELAY_PROOF`: a relayed request is not budgeted again and may be handled by a
/// follower at the hop limit, so a client's own copy would shed its budget.
pub const RELAY_HOPS: &str = "x-xietong-relay-hops";
/// The relaying member's seal (HMAC with the group secret) over the method, the path, the
/// hop count and the caller's credential.
pub const RELAY_PROOF: &str = "x-xietong-member-proof";

/// The headers of an answer that a member relaying it from the leader, or a gateway passing it
/// from a node, hands on to the client (the rest are the hop's own).
pub const ANSWER_HEADERS: [&str; 7] =
    ["content-type", "retry-after", "idempotent-replayed", "etag", "location", "allow", "cache-control"];

/// A task's entity tag is its version, the version its next change is decided on: `ETag: "7"`
/// on every answer that is one task, and `If-Match: "7"` on an action in place of the body's
/// `version` (a task that moved answers 412 instead of 409).
pub fn task_etag(version: u64) -> axum::http::HeaderValue {
    axum::http::HeaderValue::from_str(&format!("\"{version}\"")).expect("digits and quotes are a valid header value")
}

/// The version an `If-Match` header names: None without one or with `*` (any version), an
/// error for anything but one strong tag of a version.
pub fn if_match_version(headers: &axum::http::HeaderMap) -> Result<Option<u64>, super::ApiError> {
    let mut values = headers.get_all(axum::http::header::IF_MATCH).iter();
    let Some(value) = values.next() else { return Ok(None) };
    let invalid = || super::ApiError::Invalid {
        code: "invalid_if_match",
        message: "If-Match takes one task version as an entity tag, e.g. \"7\" (or *)".into(),
    };
    if values.next().is_some() {
        return Err(invalid());
    }
    let text = value.to_str().map_err(|_| invalid())?.trim();
    if text == "*" {
        return Ok(None);
    }
    let digits = text.strip_prefix('"').and_then(|rest| rest.strip_suffix('"')).ok_or_else(invalid)?;
    if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    digits.parse().map(Some).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_takes_one_strong_tag_of_a_version() {
        let with = |value: &str| {
            let mut headers = axum::http::HeaderMap::new();
            headers.insert(axum::http::header::IF_MATCH, value.parse().unwrap());
            if_match_version(&headers)
        };
        assert_eq!(if_match_version(&axum::http::HeaderMap::new()).unwrap(), None);
        assert_eq!(with("\"7\"").unwrap(), Some(7));
        assert_eq!(with(" \"12\" ").unwrap(), Some(12));
        assert_eq!(with("*").unwrap(), None);
        for bad in ["7", "W/\"7\"", "\"7\", \"8\"", "\"\"", "\"-1\"", "\"99999999999999999999\"", "\"x\""] {
            assert!(with(bad).is_err(), "{bad}");
        }
        assert_eq!(task_etag(7), "\"7\"");
    }
}
