//! The task ledger: pure domain, synchronous and sans-IO.
//!
//! **Architecture invariant:** nothing in this crate knows openraft, tokio, the clock or the
//! network; it is fed commands and answers with results, so it can be tested on its own and
//! replays identically on every replica. It is a crate of its own so that the compiler holds
//! the invariant: its dependency tree has no async runtime, Raft or HTTP crate in it.

pub mod access;
mod apply;
pub mod bureau;
pub mod campaign;
pub mod codec;
pub mod command;
pub mod complaint;
pub mod federation;
pub mod handlers;
mod idempotency;
pub mod intake;
pub mod limits;
pub mod organisation;
pub mod policy;
pub mod records;
pub mod reference;
pub mod response;
pub mod site_record;
pub mod task;
mod timeline;
pub mod uscc;
pub mod validate;

pub use apply::{InvariantViolation, Ledger};
pub use bureau::{BureauCode, Region, RegionLevel, RegionRow, Regions};
pub use command::{
    conflict, Action, Actor, Applied, Command, CommandResult, ConflictCode, IdempotencyTag, NewTask, Rejection, Role,
    TaskChange, Transition,
};
pub use complaint::{ComplaintChannel, ComplaintRecord, ComplaintStep, NewComplaint, Reporter};
pub use federation::{
    peer_actor, DispatchTerms, DrawnAtOrigin, ForwardId, Handover, HandoverPurpose, Instruction, Message, OutboxEntry,
    Placement, Receipt, Received, RemoteHandling, Routing, StatusReport,
};
pub use intake::{IntakeSummary, Signal};
pub use policy::{Side, TaskAction};
pub use records::{forward_key, Changes, MemoryRecords, Records, RecordsDigest, Term};
pub use task::{
    CompletionOutcome, DeadlineKind, Handling, Severity, Source, Subject, Task, TaskId, TaskKind, TaskState,
    TimelineAction,
};
pub use uscc::{Uscc, UsccError};

#[cfg(test)]
mod tests;
