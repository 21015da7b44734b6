//! People: per-person accounts kept in the ledger, so every replica decides who may act alike
//! and every timeline entry names the person who made it.
//!
//! A person acts as the actor `person:<id>:<name>` of their unit with the role their roles give
//! (`Person::actor`); `Ledger::apply` checks every such command against the record, so an
//! account disabled or changed meanwhile acts no more. Accounts are records (a province has
//! tens of thousands, kept forever for the trail), never removed: a person leaves by being
//! disabled, and a move to another unit is a new account.
//!
//! Passwords are never in the ledger: it keeps the argon2id hash (a PHC string) the node made,
//! and checks only its form and strength. Sign-in and sessions are the node's (`sessions`); the
//! record's `epoch` moves whenever a session must end (a new password, roles changed, disabled,
//! signed out everywhere), which is how every node's session check learns of it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::bureau::BureauCode;
use crate::command::{Actor, Role};
use crate::task::wire_enum;

/// A person's number in the group, from 1, never given twice.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PersonId(pub u64);

impl fmt::Display for PersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for PersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P{}", self.0)
    }
}

wire_enum! {
    /// What a person does in their unit. A person may hold several.
    pub enum PersonRole {
        /// Command-centre staff (调度员): create, dispatch and review, within the unit's subtree.
        Dispatcher = "dispatcher",
        /// The unit's head (负责人): assigns its tasks to its handlers, acts for any of them.
        Head = "head",
        /// Works tasks (承办人): claims them, reports, completes.
        Handler = "handler",
        /// Reads the subtree's tasks and metrics.
        Leadership = "leadership",
        /// Manages the accounts of the unit's subtree.
        Accounts = "accounts",
        /// Another department's inspector (部门联合抽查), linked to their inspector: their team's
        /// joint inspections only. Held alone.
        Department = "department",
    }
}

/// A person's account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub id: PersonId,
    /// What they sign in with: `[a-z0-9._-]`, unique in the group forever.
    pub login: String,
    pub name: String,
    /// Their unit: a bureau or a station. It never changes.
    pub unit: BureauCode,
    /// Sorted, each once, at least one.
    pub roles: Vec<PersonRole>,
    pub enabled: bool,
    /// The argon2id hash of their password, as a PHC string.
    pub password_phc: String,
    /// Moves whenever their sessions must end; a session names the epoch it was issued in.
    pub epoch: u32,
    pub created_at_ms: u64,
    /// The inspector of the programme's directory this person is (执法检查人员), once linked:
    /// the drawn inspections of their team show to them as their own.
    pub inspector: Option<String>,
    /// The latest changes, oldest first (at most `PERSON_HISTORY_MAX`: the oldest after the
    /// creation give way; every change is also an entry of the log).
    pub history: Vec<PersonEvent>,
}

/// One change of an account, with who made it and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonEvent {
    pub at_ms: u64,
    pub by: String,
    pub change: PersonChange,
    pub note: String,
}

/// What changed. Variants are encoded by their position: new ones go last.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PersonChange {
    Created,
    Renamed {
        from: String,
    },
    RolesChanged {
        from: Vec<PersonRole>,
    },
    PasswordSet,
    Disabled,
    Enabled,
    /// Linked to the directory's inspector of this id (for good: one person per inspector).
    InspectorLinked {
        inspector: String,
    },
}

impl PersonChange {
    /// The word the API uses.
    pub fn as_str(&self) -> &'static str {
        match self {
            PersonChange::Created => "created",
            PersonChange::Renamed { .. } => "renamed",
            PersonChange::RolesChanged { .. } => "roles_changed",
            PersonChange::PasswordSet => "password_set",
            PersonChange::Disabled => "disabled",
            PersonChange::Enabled => "enabled",
            PersonChange::InspectorLinked { .. } => "inspector_linked",
        }
    }
}

/// What a person's actor name starts with; users-file names may not contain `:`, so no other
/// actor's name can.
const PERSON_ACTOR_PREFIX: &str = "person:";

impl Person {
    /// The role a person acts with: command for a dispatcher, operator for a head or handler,
    /// another department's inspector for one, leadership (read only) otherwise.
    pub fn role(&self) -> Role {
        let has = |role: PersonRole| self.roles.contains(&role);
        if has(PersonRole::Department) {
            Role::Department
        } else if has(PersonRole::Dispatcher) {
            Role::Command
        } else if has(PersonRole::Head) || has(PersonRole::Handler) {
            Role::Operator
        } else {
            Role::Leadership
        }
    }

    pub fn has(&self, role: PersonRole) -> bool {
        self.roles.contains(&role)
    }

    /// The actor of the person's commands: their number and name as they are now.
    pub fn actor(&self) -> Actor {
        Actor { user: format!("{PERSON_ACTOR_PREFIX}{}:{}", self.id, self.name), bureau: self.unit, role: self.role() }
    }
}

impl Actor {
    /// The person an actor names, with the name it gives: `None` for a users-file or machine
    /// actor.
    pub fn person(&self) -> Option<(PersonId, &str)> {
        person_of_actor_name(&self.user)
    }

    /// Whether the actor's name claims to be a person's (checked against the record by apply).
    pub fn claims_person(&self) -> bool {
        self.user.starts_with(PERSON_ACTOR_PREFIX)
    }
}

/// The person an actor's name (`person:<id>:<name>`) names, with the name it gives: also for
/// the names on timeline entries, another group's included.
pub fn person_of_actor_name(user: &str) -> Option<(PersonId, &str)> {
    let rest = user.strip_prefix(PERSON_ACTOR_PREFIX)?;
    let (digits, name) = rest.split_once(':')?;
    // Canonical digits only, so one person has one actor name.
    let id = digits.parse().ok().filter(|id: &u64| *id > 0 && id.to_string() == digits)?;
    Some((PersonId(id), name))
}

/// The key an inspector's link is filed under beside the logins (no login has a `:`).
pub fn inspector_key(inspector: &str) -> String {
    format!("{INSPECTOR_KEY_PREFIX}{inspector}")
}

const INSPECTOR_KEY_PREFIX: &str = "inspector:";

/// The inspector a key of the logins table names, when it is an inspector's link.
pub fn inspector_of_key(key: &str) -> Option<&str> {
    key.strip_prefix(INSPECTOR_KEY_PREFIX)
}

/// A login: 3 to `LOGIN_CHARS_MAX` of `a-z 0-9 . _ -`.
pub fn check_login(login: &str) -> Result<(), String> {
    let fits = (LOGIN_CHARS_MIN..=LOGIN_CHARS_MAX).contains(&login.len())
        && login.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
    if fits {
        Ok(())
    } else {
        Err(format!("{LOGIN_CHARS_MIN} to {LOGIN_CHARS_MAX} of a-z, 0-9, '.', '_' and '-'"))
    }
}

/// A person's name: 1 to `PERSON_NAME_CHARS_MAX` printable characters, no `:` (it ends the
/// actor's name).
pub fn check_person_name(name: &str) -> Result<(), String> {
    let chars = name.chars().count();
    if name.trim().is_empty() || chars > PERSON_NAME_CHARS_MAX || name.chars().any(|c| c.is_control() || c == ':') {
        return Err(format!("1 to {PERSON_NAME_CHARS_MAX} printable characters, no ':'"));
    }
    Ok(())
}

/// Roles: at least one, each once, in order (as `Person::roles` keeps them).
pub fn check_roles(roles: &[PersonRole]) -> Result<(), String> {
    if roles.is_empty() || roles.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err(format!("one or more of {}, each once, in that order", PersonRole::names()));
    }
    if roles.contains(&PersonRole::Department) && roles.len() > 1 {
        return Err("another department's inspector holds that role alone".into());
    }
    Ok(())
}

/// A password hash as the node makes it: argon2id, version 19, with at least the memory and
/// passes of OWASP's minimum (19 MiB, 2 passes). The ledger checks the form, never hashes.
pub fn check_password_phc(phc: &str) -> Result<(), String> {
    let refuse = || format!("an argon2id PHC string (v=19, m >= {PHC_MEMORY_KIB_MIN}, t >= {PHC_PASSES_MIN})");
    if phc.len() > PASSWORD_PHC_CHARS_MAX || !phc.is_ascii() {
        return Err(refuse());
    }
    let mut fields = phc.split('$');
    let (Some(""), Some("argon2id"), Some("v=19"), Some(params), Some(salt), Some(hash), None) =
        (fields.next(), fields.next(), fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(refuse());
    };
    let mut memory = None;
    let mut passes = None;
    for param in params.split(',') {
        match param.split_once('=') {
            Some(("m", value)) => memory = value.parse::<u32>().ok(),
            Some(("t", value)) => passes = value.parse::<u32>().ok(),
            Some(("p", value)) if value.parse::<u32>().is_ok_and(|p| p >= 1) => {}
            _ => return Err(refuse()),
        }
    }
    let base64 =
        |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    let strong = memory.is_some_and(|m| m >= PHC_MEMORY_KIB_MIN) && passes.is_some_and(|t| t >= PHC_PASSES_MIN);
    if strong && base64(salt) && base64(hash) {
        Ok(())
    } else {
        Err(refuse())
    }
}

/// Logins are at least this long.
pub const LOGIN_CHARS_MIN: usize = 3;
/// And at most this long (ASCII).
pub const LOGIN_CHARS_MAX: usize = 32;
/// A person's name, in characters (Chinese names are 2 to 4; room for transliterations).
pub const PERSON_NAME_CHARS_MAX: usize = 32;
/// A PHC string of argon2id with a 16-byte salt and 32-byte hash is about 100 characters.
pub const PASSWORD_PHC_CHARS_MAX: usize = 160;
/// OWASP's minimum for argon2id: 19 MiB of memory, two passes.
pub const PHC_MEMORY_KIB_MIN: u32 = 19_456;
pub const PHC_PASSES_MIN: u32 = 2;
/// Changes kept per account.
pub const PERSON_HISTORY_MAX: usize = 64;
/// Accounts a group holds at most: a province has tens of thousands of staff.
pub const PEOPLE_MAX: u64 = 1_000_000;

// The actor name `person:<id>:<name>` fits an actor's user field.
const _: () = assert!(
    "person:".len() + 16 + 1 + PERSON_NAME_CHARS_MAX <= crate::limits::USER_CHARS_MAX,
    "a person's actor name fits"
);
