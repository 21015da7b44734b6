//! Federation in the ledger: tasks handed from one group's ledger to another's.
//!
//! A handover (a dispatch down to a bureau another group hosts, or a lead forwarded to the
//! group with jurisdiction) is committed at the origin as an outbox entry together with the
//! tracking record it belongs to. The origin's leader delivers it (`node::federation::courier`);
//! the target creates exactly one task per forward id (its inbox), and the origin commits a
//! receipt that empties the outbox entry. Status reports from the target update the tracking
//! record, and the dispatcher's close/return/cancel flow down as numbered instructions.
//!
//! Which group a message goes to is decided by the accepting node from the topology and
//! carried in the command: the ledger knows no topology, so every replica decides alike.

//!
//! This module holds the messages and records of federation; `apply` the ledger's side of
//! handing over, receiving, receipts and mirrors; `checks` what is believed of another group.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::bureau::BureauCode;
use super::command::{Actor, Role, Transition};
use super::task::{wire_enum, Handling, Severity, Source, Subject, Task, TaskId, TaskKind, TimelineEntry};

mod apply;
mod checks;

#[cfg(test)]
pub(crate) use checks::speaks_for;

/// One handover, unique across all groups: the origin group and its message number there.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ForwardId {
    pub origin_group: BureauCode,
    pub seq: u64,
}

impl fmt::Display for ForwardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.origin_group, self.seq)
    }
}

impl fmt::Debug for ForwardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "F{self}")
    }
}

impl ForwardId {
    /// Parses the `440000-17` form.
    pub fn parse(text: &str) -> Option<ForwardId> {
        let (group, seq) = text.split_once('-')?;
        Some(ForwardId { origin_group: BureauCode::parse_digits(group)?, seq: seq.parse().ok()? })
    }
}

wire_enum! {
    /// Why a task went to another group.
    pub enum HandoverPurpose {
        /// Dispatched down the tree to a bureau another group hosts; the dispatcher keeps
        /// reviewing it (close, return, cancel flow down).
        Dispatch = "dispatch",
        /// A lead about a region outside the origin's jurisdiction (线索移送); the receiving
        /// group owns it from then on.
        Jurisdiction = "jurisdiction",
        /// The receiver of a forwarded lead disputes its jurisdiction (管辖争议): the lead goes to
        /// the lowest common parent group, which designates the handler.
        Dispute = "dispute",
        /// The common parent designated this group to handle the lead (指定管辖); final.
        Designation = "designation",
    }
}

impl HandoverPurpose {
    /// The receiving group owns the task (as opposed to a dispatch, which stays the
    /// dispatcher's); the origin's record only follows it.
    pub fn hands_over_ownership(self) -> bool {
        !matches!(self, HandoverPurpose::Dispatch)
    }
}

/// What the receiving group does with a handover, decided by its accepting node from the
/// topology and the calendar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Placement {
    /// Keep it here.
    Keep,
    /// Route a lead on to this group (this group has no jurisdiction over it either).
    RelayTo(BureauCode),
    /// A dispute: designate the handler by this deadline.
    DesignateBy(u64),
}

/// Where the accepting node routes a new task, from the topology.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Routing {
    /// The subject lies in this group's jurisdiction (or the kind is never forwarded).
    #[default]
    Keep,
    /// Hand it to `to_group` (the one with jurisdiction, or the parent group to route it on);
    /// `from_group` is this group's bureau, which names the forward.
    ForwardTo { to_group: BureauCode, from_group: BureauCode },
    /// No configured group covers the subject's region: kept here and flagged.
    Unrouted,
}

/// The terms of a dispatch handed to another group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchTerms {
    pub assignee: BureauCode,
    pub ack_deadline_ms: u64,
    pub complete_deadline_ms: u64,
}

/// The task as it travels to the target group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handover {
    pub forward: ForwardId,
    pub purpose: HandoverPurpose,
    pub origin_task: TaskId,
    /// The bureau that dispatched or forwarded it.
    pub origin_bureau: BureauCode,
    pub kind: TaskKind,
    pub severity: Severity,
    pub title: String,
    pub description: String,
    pub subject: Subject,
    pub source: Source,
    pub dispatch: Option<DispatchTerms>,
    pub note: String,
    pub sent_by: String,
}

/// A dispatcher's decision on a dispatched task, flowing down to the group that works on it.
/// Numbered per forward from 1, so the target applies each exactly once and in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instruction {
    pub forward: ForwardId,
    pub number: u32,
    pub transition: Transition,
    pub note: String,
    pub sent_by: String,
}

/// What a draw decided about an inspection handed to the group hosting its bureau: the
/// inspecting bureau enters the result as an inspection's (谁抽查、谁录入), with these items and
/// this team; the organiser publishes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawnAtOrigin {
    pub campaign_name: String,
    pub items: Vec<crate::campaign::InspectionItem>,
    pub inspectors: Vec<String>,
    pub risk_class: crate::campaign::RiskClass,
    pub top_up: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    Handover(Handover),
    Instruction(Instruction),
    /// A drawn inspection dispatched to the group hosting its bureau: a dispatch handover and
    /// what the draw decided. Sent only to groups whose build knows it (`draw-in-parts-v1`).
    DrawnInspection(Box<(Handover, DrawnAtOrigin)>),
}

impl Message {
    pub fn forward(&self) -> ForwardId {
        match self {
            Message::Handover(handover) => handover.forward,
            Message::DrawnInspection(drawn) => drawn.0.forward,
            Message::Instruction(instruction) => instruction.forward,
        }
    }

    /// The handover this message makes, if it makes one.
    pub fn handover(&self) -> Option<&Handover> {
        match self {
            Message::Handover(handover) => Some(handover),
            Message::DrawnInspection(drawn) => Some(&drawn.0),
            Message::Instruction(_) => None,
        }
    }
}

/// A message committed at the origin and not yet receipted by the target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub seq: u64,
    pub to_group: BureauCode,
    /// The task at the origin the message belongs to.
    pub task: TaskId,
    pub message: Message,
    pub committed_ms: u64,
    /// The origin's console was alarmed that delivery takes too long.
    pub stuck_flagged: bool,
}

/// On a task handed to another group: where it went and what is known of it there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteHandling {
    pub forward: ForwardId,
    pub to_group: BureauCode,
    pub purpose: HandoverPurpose,
    /// The target's task id and when its receipt was committed here.
    pub delivered: Option<(TaskId, u64)>,
    pub instructions_sent: u32,
    /// The target's task version the record here reflects.
    pub mirrored_version: u64,
}

/// A target group's answer to an outbox message, as the origin records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Receipt {
    /// Taken: the target's task for a handover (an instruction answers with the same task).
    Accepted(TaskId),
    /// Refused, with the target's reason: a handover comes back to this group.
    Refused(String),
}

/// On a task that arrived from another group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Received {
    pub forward: ForwardId,
    pub from_group: BureauCode,
    pub from_task: TaskId,
    pub purpose: HandoverPurpose,
    /// Instructions handled so far (applied or refused).
    pub instructions_handled: u32,
}

/// The state of a received task, sent back to the group it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    pub forward: ForwardId,
    /// The task's id at the reporting group.
    pub task: TaskId,
    pub version: u64,
    pub instructions_handled: u32,
    /// The task's handling there, which the record here mirrors.
    pub fields: Handling,
    /// The whole timeline (bounded by `TIMELINE_ENTRIES_MAX`): the origin keeps what it lacks.
    pub timeline: Vec<TimelineEntry>,
}

impl StatusReport {
    /// The report of a received task; `None` for a task that did not come from another group.
    pub fn of(task: &Task) -> Option<StatusReport> {
        let received = task.received.as_ref()?;
        Some(StatusReport {
            forward: received.forward,
            task: task.id,
            version: task.version,
            instructions_handled: received.instructions_handled,
            fields: task.handling.clone(),
            timeline: task.timeline.clone(),
        })
    }
}

/// A peer group's actor: the group that sent a delivery or report.
pub fn peer_actor(group: BureauCode) -> Actor {
    Actor { user: format!("group:{group}"), bureau: group, role: Role::Peer }
}
