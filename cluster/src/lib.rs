//! One bureau group's Raft side: the state machine that applies entries to the ledger (crate
//! `ledger`), the Raft log format, durable storage and the peer network that replicates the
//! ledger between the group's three nodes.

// openraft's `StorageError` and axum's `Response` are large by design and are what the traits and
// handlers must return; boxing them would only add allocations on the hot path.
#![allow(clippy::result_large_err)]

pub mod backup;
pub mod raft;
pub mod store;
