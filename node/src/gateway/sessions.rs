//! People's sessions on a gateway. A gateway holds neither the group's secret nor its accounts,
//! so a session token (`crate::sessions`) is checked by a node of the group (`GET /api/v1/me`
//! with the token) and the answer kept here for a while: a console's heartbeat and the page's
//! REST calls then cost the nodes nothing.
//!
//! A kept answer is dropped:
//! - when the group's accounts change: the leader marks every change in Redis
//!   (`crate::fanout::accounts_key`), the stream reader notices the mark move
//!   (within `reader::READ_BLOCK`), everything kept is forgotten, and every console open with
//!   a session is checked again at once, so a disabled account's consoles close within moments;
//! - after `SESSION_RECHECK_AFTER` in any case (should a mark be missed), and never later than
//!   the token's own expiry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ledger::{Actor, BureauCode, Role};
use serde::Deserialize;
use tokio::sync::watch;

use super::GatewayState;
use crate::api::ApiError;
use crate::auth::User;
use crate::rate::TokenBucket;
use crate::sessions::{PERSON_CONSOLES_MAX, PERSON_REQUESTS_PER_SECOND};

/// A node's answer about a session is trusted this long at most, should the accounts mark in
/// Redis not move (Redis lost it; a leader died before marking).
pub const SESSION_RECHECK_AFTER: Duration = Duration::from_secs(60);
/// Sessions kept at most; past it the table is emptied (each open console is checked again on
/// its next heartbeat), so a flood of signed-in tokens cannot grow it.
const SESSIONS_KEPT_MAX: usize = 50_000;

/// The sessions a gateway has had checked, and the mark of the group's accounts.
pub struct GatewaySessions {
    kept: Mutex<HashMap<String, Kept>>,
    /// Moves whenever the accounts mark in Redis moves: consoles open with a session watch it.
    changes: watch::Sender<u64>,
    /// The last mark read from Redis.
    mark: Mutex<Option<String>>,
}

struct Kept {
    user: User,
    /// Until when the node's answer stands.
    until: Instant,
}

impl Default for GatewaySessions {
    fn default() -> Self {
        GatewaySessions { kept: Mutex::default(), changes: watch::channel(0).0, mark: Mutex::default() }
    }
}

impl GatewaySessions {
    /// Moves whenever the group's accounts change.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Takes in the accounts mark read from Redis: when it moved, every kept answer is forgotten
    /// and the consoles with a session are told.
    pub fn accounts_mark(&self, mark: Option<String>) {
        let mut last = self.mark.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *last == mark {
            return;
        }
        *last = mark;
        self.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
        self.changes.send_modify(|generation| *generation += 1);
    }

    fn kept(&self, token: &str, now: Instant) -> Option<User> {
        let kept = self.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        kept.get(&config::token_hash(token)).filter(|kept| kept.until > now).map(|kept| kept.user.clone())
    }

    fn keep(&self, token: &str, user: User, until: Instant) {
        let mut kept = self.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept.len() >= SESSIONS_KEPT_MAX {
            kept.clear();
        }
        // A person's budget is one across their tokens' answers on this gateway.
        kept.insert(config::token_hash(token), Kept { user, until });
    }

    fn forget(&self, token: &str) {
        self.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&config::token_hash(token));
    }
}

/// What the gateway reads of a node's `GET /api/v1/me`.
#[derive(Deserialize)]
struct Me {
    user: String,
    display_name: String,
    bureau: String,
    role: String,
}

impl Me {
    fn user(self) -> Option<User> {
        let role = Role::parse(&self.role)?;
        let bureau = BureauCode::parse_unit(&self.bureau)?;
        Some(User {
            actor: Actor { user: self.user, bureau, role },
            display_name: self.display_name,
            bucket: Arc::new(Mutex::new(TokenBucket::new(PERSON_REQUESTS_PER_SECOND))),
            consoles_max: PERSON_CONSOLES_MAX,
            // The account itself stays on the nodes; the actor names the person.
            person: None,
        })
    }
}

/// The user of a session token: kept, or checked by a node of the group.
pub async fn user_of_session(state: &GatewayState, token: &str) -> Result<User, ApiError> {
    let now = Instant::now();
    if let Some(user) = state.sessions.kept(token, now) {
        return Ok(user);
    }
    // The mark as it was before the node is asked: an answer that crosses a change of the
    // accounts is not kept past it.
    let changes = *state.sessions.changes.borrow();
    // Linearizable: a node that has not yet applied the change that moved the mark must not
    // vouch for the session past it.
    let response = super::proxy::call_any_node(state, |node| {
        let url = format!("{}/api/v1/me?consistency=linearizable", state.transport.base_url(node));
        state.http.get(url).bearer_auth(token)
    })
    .await?;
    match response.status().as_u16() {
        200 => {}
        401 => {
            state.sessions.forget(token);
            return Err(ApiError::Unauthorized("the session ended: sign in again".into()));
        }
        429 => {
            return Err(ApiError::RateLimited {
                message: "the person is over their request rate".into(),
                retry_after_secs: 1,
            })
        }
        status => {
            return Err(ApiError::Unavailable {
                code: "no_node",
                message: format!("a node answered {status} when asked about a session"),
            })
        }
    }
    let me: Me = response.json().await.map_err(|e| ApiError::Unavailable {
        code: "no_node",
        message: format!("a node's answer about a session: {e}"),
    })?;
    let user = me.user().ok_or_else(|| ApiError::Unavailable {
        code: "no_node",
        message: "a node's answer about a session names no known role or unit".into(),
    })?;
    let expires = crate::sessions::expires_ms_unchecked(token).map_or(Duration::ZERO, |expires_ms| {
        Duration::from_millis(expires_ms.saturating_sub(crate::api::time::now_ms()))
    });
    if *state.sessions.changes.borrow() == changes {
        state.sessions.keep(token, user.clone(), now + expires.min(SESSION_RECHECK_AFTER));
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> User {
        Me { user: name.into(), display_name: "李明".into(), bureau: "440106004".into(), role: "operator".into() }
            .user()
            .expect("a user")
    }

    #[test]
    fn a_moved_accounts_mark_forgets_every_kept_session_and_tells_the_consoles() {
        let sessions = GatewaySessions::default();
        let mut changes = sessions.watch();
        sessions.accounts_mark(Some("1-1".into()));
        assert!(changes.has_changed().expect("open"));
        changes.mark_unchanged();
        let now = Instant::now();
        sessions.keep("xs1.a", user("person:2:李明"), now + SESSION_RECHECK_AFTER);
        assert_eq!(sessions.kept("xs1.a", now).map(|user| user.actor.user), Some("person:2:李明".into()));
        assert!(sessions.kept("xs1.a", now + SESSION_RECHECK_AFTER).is_none(), "not past its time");
        sessions.accounts_mark(Some("1-1".into()));
        assert!(!changes.has_changed().expect("open"), "the same mark changes nothing");
        assert!(sessions.kept("xs1.a", now).is_some());
        sessions.accounts_mark(Some("1-2".into()));
        assert!(changes.has_changed().expect("open"));
        assert!(sessions.kept("xs1.a", now).is_none(), "forgotten when the accounts change");
    }

    #[test]
    fn a_node_answer_with_an_unknown_role_or_unit_makes_no_user() {
        let me = |bureau: &str, role: &str| {
            Me { user: "x".into(), display_name: "x".into(), bureau: bureau.into(), role: role.into() }.user()
        };
        assert!(me("440106004", "operator").is_some());
        assert!(me("44010", "operator").is_none());
        assert!(me("440106", "emperor").is_none());
    }
}
