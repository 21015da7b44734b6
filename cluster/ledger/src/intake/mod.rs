//! Machine intake: risk signals from monitoring systems and other departments, each from an
//! authenticated source, deduplicated and grouped so one shop flagged a hundred times is one
//! task with a counter, not a hundred tasks.
//!
//! - A signal whose source-side id the source already sent (within `INTAKE_SEEN_RETENTION_MS`)
//!   is a repeat: it changes nothing and answers with the task it went into.
//! - A signal whose grouping key (computed by the accepting node from the fields the source's
//!   configuration names) matches an open task of the same source, observed within the
//!   source's window of that task's first signal, merges into it: the counter, the observed
//!   time range and the latest evidence move; a higher severity raises the task's severity
//!   (a timeline entry, since it changes what the centre must do).
//! - Otherwise it registers a new task, routed like any new task.
//!
//! The merge counter is live metadata of the task, not a decision: it does not add a version
//! or a timeline entry, so the timeline stays the record of what people and the system decided.
//!
//! This module holds the signal and its summary on a task; `apply` what the ledger does with them.

use serde::{Deserialize, Serialize};

use super::command::NewTask;

mod apply;

/// One signal as the ledger gets it: the task it would register, plus how to recognise
/// repeats and group members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signal {
    /// The source's own id for the signal: a repeat carries the same one.
    pub source_id: String,
    /// SHA-256 of the fields the source groups by (from the source's configuration).
    pub group_key: [u8; 32],
    /// Signals observed within this long of a group's first one merge into its task.
    pub window_ms: u64,
    /// When the source observed it (its clock, bounded against the ledger's).
    pub observed_ms: u64,
    pub task: NewTask,
    /// Links to the evidence (screenshots, listings, reports) at the source.
    pub evidence: Vec<String>,
}

/// What the signals that went into a task amount to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntakeSummary {
    /// The source's name.
    pub source: String,
    pub signals: u32,
    pub first_observed_ms: u64,
    pub last_observed_ms: u64,
    /// The latest signal's evidence.
    pub evidence: Vec<String>,
    pub last_source_id: String,
}

/// A source-side id: (source name, the source's id).
pub(super) type SeenKey = (String, String);
/// A group of signals: (source name, grouping key).
pub(super) type GroupKey = (String, [u8; 32]);
