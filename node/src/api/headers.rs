//! The HTTP headers of the contract that are Xietong's own: the client's idempotency key, and
//! what members of a group tell each other on a relayed request.

/// A client's key for a write: a retry with the same key (on any node, also after a failover)
/// gets the first answer and writes nothing.
pub const IDEMPOTENCY: &str = "idempotency-key";
/// How many times a request was relayed between the group's members. Believed only with a
/// valid `RELAY_PROOF`: a relayed request is not budgeted again and may be handled by a
/// follower at the hop limit, so a client's own copy would shed its budget.
pub const RELAY_HOPS: &str = "x-xietong-relay-hops";
/// The relaying member's seal (HMAC with the group secret) over the method, the path, the
/// hop count and the caller's credential.
pub const RELAY_PROOF: &str = "x-xietong-member-proof";
