//! The openraft side of a group: the type configuration, the durable log, the ledger state
//! machine with its snapshots, and the peer network.

use serde::{Deserialize, Serialize};

use ledger::{Command, CommandResult};

pub mod checkpoint;
pub mod durable_snapshot;
pub mod group_secret;
pub mod log_store;
pub mod member_reads;
pub mod network;
pub mod peer_api;
pub mod people_now;
mod snapshot_transfer;
pub mod state_machine;
pub mod wal;

#[cfg(test)]
mod tests;

/// Node ids are the member numbers of a group (1, 2, 3) from the topology config.
pub type NodeId = u64;

/// One Raft entry carries a batch of commands (group commit), applied in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerRequest {
    pub commands: Vec<Command>,
}

/// One result per command of the entry, by position.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerResponse {
    pub results: Vec<CommandResult>,
}

openraft::declare_raft_types!(
    /// The group's Raft types: entries carry command batches for the ledger.
    pub TypeConfig:
        D = LedgerRequest,
        R = LedgerResponse,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        SnapshotData = state_machine::SnapshotData,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type RaftError<E = openraft::error::Infallible> = openraft::error::RaftError<NodeId, E>;
pub type ClientWriteError = openraft::error::ClientWriteError<NodeId, openraft::BasicNode>;
pub type CheckIsLeaderError = openraft::error::CheckIsLeaderError<NodeId, openraft::BasicNode>;

pub use durable_snapshot::DurableSnapshot;
pub use group_secret::GroupSecret;
pub use log_store::LogStore;
pub use member_reads::MemberReads;
pub use people_now::PeopleNow;
pub use state_machine::{LedgerStore, Replica};
