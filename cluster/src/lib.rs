//! One bureau group: the task ledger state machine, the Raft log format, durable storage and
//! the peer network that replicates the ledger between the group's three nodes.

pub mod ledger;
pub mod limits;
pub mod raft;
