//! People's sign-in and sessions.
//!
//! A sign-in checks the password against the account's argon2id hash (`POST /api/v1/sessions`)
//! and answers a *session token*: `xs1.<claims>.<seal>`, the claims (person, epoch, when issued,
//! when it expires, until when it may be renewed) sealed with the group's secret. Any member
//! checks a token alone: the seal, the time, and the account as this node holds it now
//! (`PeopleNow`: enabled, the same epoch, an active unit). Nothing is written at sign-in, and a
//! check takes no lock of the replica's or the batcher's, so sessions stay off the write path.
//!
//! A session ends when its account's epoch moves: a new password, roles changed, the account
//! disabled, or the person signing out (which ends every session of theirs: a stateless token
//! cannot be revoked alone). Consoles open with a session watch the accounts' generation and
//! close at once (`push::ws`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64ct::{Base64UrlUnpadded, Encoding};
use cluster::raft::{GroupSecret, LedgerStore, PeopleNow};
use ledger::organisation::{Person, PersonId};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::api::ApiError;
use crate::auth::User;
use crate::rate::TokenBucket;

/// What a session token starts with; users-file tokens may not.
pub const SESSION_PREFIX: &str = config::SESSION_TOKEN_PREFIX;
/// What the seal is made for, so no other seal of the group's secret passes as a session's.
const SEAL_PURPOSE: &str = "xietong-session-v1";
/// A session lasts half an hour unless renewed (the console renews it while open).
pub const SESSION_TTL_MS: u64 = 30 * 60 * 1000;
/// And may be renewed for at most twelve hours from sign-in: a shift.
pub const SESSION_RENEW_MAX_MS: u64 = 12 * 60 * 60 * 1000;
/// Passwords are checked at most this many at a time on a node: a hash takes 19 MiB and about
/// 20–40 ms of a core, so a flood of sign-ins cannot take the node's memory or both cores.
pub const SIGN_INS_CONCURRENT_MAX: usize = 2;
/// How long a sign-in waits for its turn before it is told to come back (503).
const SIGN_IN_WAIT_MAX: Duration = Duration::from_secs(2);
/// Failed sign-ins of one login within `SIGN_IN_FAILURE_WINDOW_MS` before it is refused (429).
pub const SIGN_IN_FAILURES_PER_LOGIN_MAX: u32 = 5;
const SIGN_IN_FAILURE_WINDOW_MS: u64 = 5 * 60 * 1000;
/// Logins whose failures are remembered at most (a flood of made-up logins cannot grow it).
const SIGN_IN_LIMITER_ENTRIES_MAX: usize = 100_000;
/// Requests a second one person may make (their consoles and scripts together).
pub const PERSON_REQUESTS_PER_SECOND: f64 = 50.0;
/// Consoles one person may hold open on one process.
pub const PERSON_CONSOLES_MAX: usize = 8;
/// Passwords: long enough to resist guessing, short enough to hash quickly.
pub const PASSWORD_CHARS_MIN: usize = 10;
pub const PASSWORD_CHARS_MAX: usize = 128;

/// The argon2id parameters new hashes are made with: OWASP's minimum (19 MiB, 2 passes, one
/// lane). They travel in each hash, so raising them later still verifies the old ones.
fn hasher() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, Some(32)).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password (blocking: call it off the async threads).
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| ApiError::Internal(format!("no randomness for a salt: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| ApiError::Internal(e.to_string()))?;
    let hash = hasher().hash_password(password.as_bytes(), &salt).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(hash.to_string())
}

/// Whether `password` is the one `phc` was made of (blocking).
fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| hasher().verify_password(password.as_bytes(), &hash).is_ok())
}

/// A password a person may choose: its length, and not their login.
pub fn check_password(password: &str, login: &str) -> Result<(), ApiError> {
    let chars = password.chars().count();
    if !(PASSWORD_CHARS_MIN..=PASSWORD_CHARS_MAX).contains(&chars) {
        return Err(ApiError::Invalid {
            code: "weak_password",
            message: format!("a password has {PASSWORD_CHARS_MIN} to {PASSWORD_CHARS_MAX} characters"),
        });
    }
    if password.eq_ignore_ascii_case(login) {
        return Err(ApiError::Invalid { code: "weak_password", message: "a password is not the login".into() });
    }
    Ok(())
}

/// When `token` expires, read without checking its seal: only for a token a node of the group
/// has just accepted (a gateway keeps that node's answer no longer than this).
pub fn expires_ms_unchecked(token: &str) -> Option<u64> {
    let (payload, _seal) = token.strip_prefix(SESSION_PREFIX)?.split_once('.')?;
    let payload = Base64UrlUnpadded::decode_vec(payload).ok()?;
    ledger::codec::decode::<SessionClaims>(&payload).ok().map(|claims| claims.expires_ms)
}

/// What a session token says, sealed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    pub person: PersonId,
    pub epoch: u32,
    pub issued_ms: u64,
    pub expires_ms: u64,
    pub renew_until_ms: u64,
    /// So that two sessions issued in the same millisecond differ.
    pub nonce: [u8; 16],
}

/// Why a token was refused (the metric's outcome; the client hears 401 alike).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    Forged,
    Expired,
    Revoked,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Forged => "forged",
            Refusal::Expired => "expired",
            Refusal::Revoked => "revoked",
        }
    }
}

/// A session issued: its token and its times.
pub struct Issued {
    pub token: String,
    pub claims: SessionClaims,
}

/// The sign-in and session checks of one node.
pub struct Sessions {
    secret: GroupSecret,
    store: LedgerStore,
    sign_ins: Semaphore,
    failures: Mutex<HashMap<String, (u64, u32)>>,
    buckets: Mutex<HashMap<PersonId, Arc<Mutex<TokenBucket>>>>,
    /// A hash to check when the login is unknown, so an unknown login takes as long as a
    /// wrong password (no telling which logins exist).
    decoy: String,
    telemetry: Arc<crate::telemetry::Telemetry>,
}

impl Sessions {
    pub fn new(secret: GroupSecret, store: LedgerStore, telemetry: Arc<crate::telemetry::Telemetry>) -> Sessions {
        let decoy = hash_password("decoy-password-never-used").expect("a hash of a fixed password");
        Sessions {
            secret,
            store,
            sign_ins: Semaphore::new(SIGN_INS_CONCURRENT_MAX),
            failures: Mutex::default(),
            buckets: Mutex::default(),
            decoy,
            telemetry,
        }
    }

    pub fn people(&self) -> &PeopleNow {
        self.store.people_now()
    }

    /// Issues a session for `person` at `now_ms`.
    pub fn issue(&self, person: &Person, now_ms: u64) -> Issued {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).expect("randomness for a session");
        let claims = SessionClaims {
            person: person.id,
            epoch: person.epoch,
            issued_ms: now_ms,
            expires_ms: now_ms + SESSION_TTL_MS,
            renew_until_ms: now_ms + SESSION_RENEW_MAX_MS,
            nonce,
        };
        self.seal(claims)
    }

    /// A renewed session: the same claims with a new expiry, never past the renewal limit.
    pub fn renew(&self, claims: &SessionClaims, now_ms: u64) -> Issued {
        let renewed =
            SessionClaims { expires_ms: (now_ms + SESSION_TTL_MS).min(claims.renew_until_ms), ..claims.clone() };
        self.seal(renewed)
    }

    fn seal(&self, claims: SessionClaims) -> Issued {
        let payload = ledger::codec::encode(&claims).expect("claims encode");
        let seal = self.secret.seal(SEAL_PURPOSE, &[&payload]);
        let token = format!("{SESSION_PREFIX}{}.{seal}", Base64UrlUnpadded::encode_string(&payload));
        Issued { token, claims }
    }

    /// The claims of a token, if the group sealed them (whatever their time or account).
    fn unseal(&self, token: &str) -> Option<SessionClaims> {
        let (payload, seal) = token.strip_prefix(SESSION_PREFIX)?.split_once('.')?;
        let payload = Base64UrlUnpadded::decode_vec(payload).ok()?;
        if !self.secret.verifies(SEAL_PURPOSE, &[&payload], seal) {
            return None;
        }
        ledger::codec::decode(&payload).ok()
    }

    /// The account and claims of a token valid at `now_ms`.
    pub fn check(&self, token: &str, now_ms: u64) -> Result<(Arc<Person>, SessionClaims), Refusal> {
        let outcome = self.check_uncounted(token, now_ms);
        let label = match &outcome {
            Ok(_) => "ok",
            Err(refusal) => refusal.as_str(),
        };
        self.telemetry.session_checks.with_label_values(&[label]).inc();
        outcome
    }

    fn check_uncounted(&self, token: &str, now_ms: u64) -> Result<(Arc<Person>, SessionClaims), Refusal> {
        let claims = self.unseal(token).ok_or(Refusal::Forged)?;
        if now_ms >= claims.expires_ms {
            return Err(Refusal::Expired);
        }
        let person = self.people().person(claims.person).ok_or(Refusal::Revoked)?;
        let unit_active = self.store.reference_now().regions.is_active(person.unit);
        if !person.enabled || person.epoch != claims.epoch || !unit_active {
            return Err(Refusal::Revoked);
        }
        Ok((person, claims))
    }

    /// The account a session token signs in, not counted as a session check: for a gate that
    /// runs before the handler, whose own check is the one counted (`user`).
    pub fn person_of(&self, token: &str, now_ms: u64) -> Option<Arc<Person>> {
        self.check_uncounted(token, now_ms).ok().map(|(person, _)| person)
    }

    /// The user a session token signs in, for the API.
    pub fn user(&self, token: &str, now_ms: u64) -> Result<User, ApiError> {
        let (person, _) = self
            .check(token, now_ms)
            .map_err(|refusal| ApiError::Unauthorized(format!("the session is {}: sign in again", refusal.as_str())))?;
        let bucket = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(person.id)
            .or_insert_with(|| Arc::new(Mutex::new(TokenBucket::new(PERSON_REQUESTS_PER_SECOND))))
            .clone();
        Ok(User {
            actor: person.actor(),
            display_name: person.name.clone(),
            bucket,
            consoles_max: PERSON_CONSOLES_MAX,
            person: Some(person),
        })
    }

    /// Checks a login and password: the account, once it matches. Unknown logins, wrong
    /// passwords and disabled accounts are refused alike (401 `invalid_credentials`), each after
    /// a hash's work; a login failed too often is refused for a while (429).
    pub async fn sign_in(&self, login: &str, password: &str, now_ms: u64) -> Result<Arc<Person>, ApiError> {
        let refused = |outcome: &str, error: ApiError| {
            self.telemetry.sign_ins.with_label_values(&[outcome]).inc();
            error
        };
        if self.failures_of(login, now_ms) >= SIGN_IN_FAILURES_PER_LOGIN_MAX {
            return Err(refused(
                "limited",
                ApiError::RateLimited {
                    message: format!("too many failed sign-ins for {login}: wait a few minutes"),
                    retry_after_secs: SIGN_IN_FAILURE_WINDOW_MS / 1000,
                },
            ));
        }
        let Ok(permit) = tokio::time::timeout(SIGN_IN_WAIT_MAX, self.sign_ins.acquire()).await else {
            return Err(refused(
                "busy",
                ApiError::Unavailable {
                    code: "sign_in_busy",
                    message: "too many sign-ins at once: retry shortly".into(),
                },
            ));
        };
        let _permit = permit.map_err(|_| ApiError::Internal("the sign-in gate closed".into()))?;
        let person = self.people().by_login(login);
        let phc = person.as_ref().map_or_else(|| self.decoy.clone(), |person| person.password_phc.clone());
        let password = password.to_owned();
        let started = std::time::Instant::now();
        let matches = tokio::task::spawn_blocking(move || verify_password(&password, &phc))
            .await
            .map_err(|_| ApiError::Internal("the password check stopped".into()))?;
        self.telemetry.sign_in_seconds.observe(started.elapsed().as_secs_f64());
        match person {
            Some(person) if matches && person.enabled && self.store.reference_now().regions.is_active(person.unit) => {
                self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(login);
                self.telemetry.sign_ins.with_label_values(&["ok"]).inc();
                Ok(person)
            }
            _ => {
                self.count_failure(login, now_ms);
                Err(refused(
                    "invalid",
                    ApiError::Unauthorized("the login or password is wrong, or the account is disabled".into()),
                ))
            }
        }
    }

    fn failures_of(&self, login: &str, now_ms: u64) -> u32 {
        let failures = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match failures.get(login) {
            Some((since_ms, count)) if now_ms < since_ms + SIGN_IN_FAILURE_WINDOW_MS => *count,
            _ => 0,
        }
    }

    fn count_failure(&self, login: &str, now_ms: u64) {
        let mut failures = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if failures.len() >= SIGN_IN_LIMITER_ENTRIES_MAX {
            failures.retain(|_, (since_ms, _)| now_ms < *since_ms + SIGN_IN_FAILURE_WINDOW_MS);
            if failures.len() >= SIGN_IN_LIMITER_ENTRIES_MAX {
                failures.clear();
            }
        }
        let entry = failures.entry(login.to_owned()).or_insert((now_ms, 0));
        if now_ms >= entry.0 + SIGN_IN_FAILURE_WINDOW_MS {
            *entry = (now_ms, 0);
        }
        entry.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_is_argon2id_of_the_strength_the_ledger_requires_and_verifies_only_its_password() {
        let phc = hash_password("correct horse battery").expect("hash");
        ledger::organisation::check_password_phc(&phc).expect("the ledger takes it");
        assert!(verify_password("correct horse battery", &phc));
        assert!(!verify_password("correct horse batterx", &phc));
        assert!(!verify_password("correct horse battery", "not a hash"));
        assert_ne!(phc, hash_password("correct horse battery").expect("hash"), "salted");
    }

    #[test]
    fn passwords_are_long_enough_and_not_the_login() {
        assert!(check_password("short", "li").is_err());
        assert!(check_password("wushan.li1", "wushan.li1").is_err());
        assert!(check_password(&"x".repeat(129), "li").is_err());
        assert!(check_password("a long enough one", "li").is_ok());
    }
}
