//! The secret the members of one group share. Every peer RPC carries it and a node refuses peer
//! RPC without it, so only a member can append to, vote in, read-index or install a snapshot on
//! the group's log (before it, any process that reached the port could). It lives in a file of
//! its own (`group.secret_file`, mode 0600), never in the node config; a node keeps only its
//! SHA-256 for checking.

use std::io;
use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// 32 random characters carry far more entropy than a network attacker can search.
pub const GROUP_SECRET_CHARS_MIN: usize = 32;
pub const GROUP_SECRET_CHARS_MAX: usize = 512;

#[derive(Clone)]
pub struct GroupSecret {
    secret: Arc<str>,
    digest: [u8; 32],
}

impl GroupSecret {
    pub fn new(secret: &str) -> Result<GroupSecret, String> {
        let length = secret.chars().count();
        if !(GROUP_SECRET_CHARS_MIN..=GROUP_SECRET_CHARS_MAX).contains(&length) {
            return Err(format!(
                "a group secret has {GROUP_SECRET_CHARS_MIN} to {GROUP_SECRET_CHARS_MAX} characters, not {length}"
            ));
        }
        if !secret.chars().all(|c| c.is_ascii_graphic()) {
            return Err("a group secret is printable ASCII without spaces (it travels in an HTTP header)".into());
        }
        Ok(GroupSecret { secret: secret.into(), digest: Sha256::digest(secret.as_bytes()).into() })
    }

    /// Reads the secret from its file (surrounding whitespace ignored).
    pub fn load(path: &Path) -> io::Result<GroupSecret> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| io::Error::new(e.kind(), format!("reading the group secret {}: {e}", path.display())))?;
        GroupSecret::new(text.trim())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display())))
    }

    /// What a sender puts after `Bearer `.
    pub fn bearer(&self) -> &str {
        &self.secret
    }

    /// Whether a peer RPC's `Authorization` header carries this secret. Compares digests, so the
    /// time taken says nothing about how much of a guess was right.
    pub fn admits(&self, authorization: Option<&str>) -> bool {
        let Some(presented) = authorization.and_then(|value| value.strip_prefix("Bearer ")) else {
            return false;
        };
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        presented.iter().zip(self.digest.iter()).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
    }
}

/// A seal: HMAC-SHA256 keyed with the group secret, in lower-case hex.
type HmacSha256 = hmac::Hmac<Sha256>;

impl GroupSecret {
    /// Seals `parts` (each length-prefixed, so no two lists seal alike) under `purpose`:
    /// only a member of the group can make it.
    pub fn seal(&self, purpose: &str, parts: &[&[u8]]) -> String {
        let mac = hmac::Mac::finalize(self.mac(purpose, parts)).into_bytes();
        mac.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// Whether `presented` is the seal of `parts` under `purpose`, compared in constant time.
    pub fn verifies(&self, purpose: &str, parts: &[&[u8]], presented: &str) -> bool {
        let Some(bytes) = decode_hex(presented) else { return false };
        hmac::Mac::verify_slice(self.mac(purpose, parts), &bytes).is_ok()
    }

    fn mac(&self, purpose: &str, parts: &[&[u8]]) -> HmacSha256 {
        use hmac::Mac;
        let mut mac = HmacSha256::new_from_slice(self.secret.as_bytes()).expect("HMAC takes keys of any length");
        for part in std::iter::once(purpose.as_bytes()).chain(parts.iter().copied()) {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part);
        }
        mac
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| text.get(at..at + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_secret_is_admitted() {
        let secret = GroupSecret::new("s3cret-s3cret-s3cret-s3cret-s3cret").expect("valid");
        assert!(secret.admits(Some("Bearer s3cret-s3cret-s3cret-s3cret-s3cret")));
        assert!(!secret.admits(Some("Bearer s3cret-s3cret-s3cret-s3cret-s3cre")));
        assert!(!secret.admits(Some("s3cret-s3cret-s3cret-s3cret-s3cret")));
        assert!(!secret.admits(None));
    }

    #[test]
    fn a_seal_verifies_only_for_its_parts_and_its_secret() {
        let secret = GroupSecret::new("s3cret-s3cret-s3cret-s3cret-s3cret").expect("valid");
        let other = GroupSecret::new("0ther-0ther-0ther-0ther-0ther-0ther").expect("valid");
        let seal = secret.seal("test", &[b"POST", b"/api/v1/tasks"]);
        assert!(secret.verifies("test", &[b"POST", b"/api/v1/tasks"], &seal));
        assert!(!secret.verifies("test", &[b"POST", b"/api/v1/task"], &seal));
        assert!(!secret.verifies("test", &[b"POST/", b"api/v1/tasks"], &seal), "parts are framed");
        assert!(!secret.verifies("other", &[b"POST", b"/api/v1/tasks"], &seal));
        assert!(!other.verifies("test", &[b"POST", b"/api/v1/tasks"], &seal));
        assert!(!secret.verifies("test", &[b"POST", b"/api/v1/tasks"], "00"));
        assert!(!secret.verifies("test", &[b"POST", b"/api/v1/tasks"], &"zz".repeat(32)));
    }

    #[test]
    fn short_or_unprintable_secrets_are_refused() {
        assert!(GroupSecret::new("short").is_err());
        assert!(GroupSecret::new(&"x".repeat(GROUP_SECRET_CHARS_MAX + 1)).is_err());
        assert!(GroupSecret::new("with a space in it, which is not allowed here").is_err());
    }
}
