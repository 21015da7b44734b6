//! The client side of peer RPC: openraft's `RaftNetwork` over HTTP POST on the peer's own port.
//!
//! Bodies are in the one binary encoding (`ledger::codec`), and every request says which peer
//! format it speaks (`x-xietong-peer-format`): a member of another format is refused before its
//! body is read, with both versions named. Each request names the node it is meant for
//! (`x-xietong-target-node`),
//! and the receiver refuses a mismatch: a stale address (a port reused by another node) must
//! never make a leader replicate to the wrong node.
//! Every request carries the group secret (`group_secret`) as a bearer token, and says who
//! sent it and what its build reads (`member_reads`); an answer says what its responder reads.
//! One `reqwest::Client` is shared by all peers, so connections are kept alive; the node builds
//! it (with TLS when configured) and says which scheme its peers speak.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    Fatal, NetworkError, RPCError, RaftError, RemoteError, ReplicationClosed, StreamingError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::member_reads::{MemberReads, MEMBER_READS_HEADER, SENDER_NODE_HEADER};
use super::{GroupSecret, NodeId, TypeConfig};

pub const TARGET_NODE_HEADER: &str = "x-xietong-target-node";
pub const PEER_FORMAT_HEADER: &str = "x-xietong-peer-format";
/// The format of peer RPC this build speaks: 2 since bodies are postcard (`ledger::codec`);
/// format 1 (bincode, before 0.3.0) sent no format header.
pub const PEER_FORMAT: u32 = 2;
pub const PATH_APPEND: &str = "/raft/append";
pub const PATH_VOTE: &str = "/raft/vote";
pub const PATH_SNAPSHOT: &str = "/raft/snapshot";
pub const PATH_READ_INDEX: &str = "/raft/read-index";
/// HTTP status a peer uses to carry a Raft-level error (a `RaftError` body), as opposed
/// to a transport failure.
pub const REMOTE_ERROR_STATUS: u16 = 409;

#[derive(Clone)]
pub struct PeerNetwork {
    link: PeerLink,
}

/// What every call to a peer shares: the client, the scheme, the group secret, the routes and
/// what members read.
#[derive(Clone)]
struct PeerLink {
    /// This node, the sender of every call.
    node_id: NodeId,
    http: reqwest::Client,
    scheme: &'static str,
    secret: GroupSecret,
    /// Member id → the address this node uses for it instead of its group address.
    routes: Arc<BTreeMap<NodeId, String>>,
    reads: MemberReads,
}

impl PeerNetwork {
    /// `scheme` is `http` or `https`, matching how the group's nodes serve; `node_id` is this
    /// node.
    pub fn new(
        node_id: NodeId,
        http: reqwest::Client,
        scheme: &'static str,
        secret: GroupSecret,
        routes: BTreeMap<NodeId, String>,
        reads: MemberReads,
    ) -> PeerNetwork {
        assert!(matches!(scheme, "http" | "https"), "peers speak http or https");
        PeerNetwork { link: PeerLink { node_id, http, scheme, secret, routes: Arc::new(routes), reads } }
    }

    /// What this build reads and who hears what members read (for `peer_api::router`).
    pub fn member_reads(&self) -> MemberReads {
        self.link.reads.clone()
    }

    /// Where this node reaches member `id`, whose group address is `addr`.
    pub fn route(&self, id: NodeId, addr: &str) -> String {
        self.link.routes.get(&id).cloned().unwrap_or_else(|| addr.to_owned())
    }
}

impl PeerNetwork {
    /// Asks the leader `target` at `addr` for a read index (see `peer_api::read_index`).
    pub async fn leader_read_index(
        &self,
        target: NodeId,
        addr: &str,
        timeout: Duration,
    ) -> Result<Option<super::LogId>, RPCError<NodeId, BasicNode, RaftError<NodeId, super::CheckIsLeaderError>>> {
        let client = PeerClient {
            link: self.link.clone(),
            target,
            group_addr: addr.to_owned(),
            address: self.route(target, addr),
        };
        client.call(PATH_READ_INDEX, &(), timeout).await
    }
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        let address = self.route(target, &node.addr);
        PeerClient { link: self.link.clone(), target, group_addr: node.addr.clone(), address }
    }
}

pub struct PeerClient {
    link: PeerLink,
    target: NodeId,
    /// The target's address in the membership (what members are known by).
    group_addr: String,
    /// Where this node reaches it (a route may differ).
    address: String,
}

impl PeerClient {
    /// A request to the peer at `path` with what every peer RPC carries: the group secret, the
    /// node it is meant for, the peer format, the sender and what it reads.
    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.link
            .http
            .post(format!("{}://{}{}", self.link.scheme, self.address, path))
            .bearer_auth(self.link.secret.bearer())
            .header(TARGET_NODE_HEADER, self.target.to_string())
            .header(PEER_FORMAT_HEADER, PEER_FORMAT.to_string())
            .header(SENDER_NODE_HEADER, self.link.node_id.to_string())
            .header(MEMBER_READS_HEADER, self.link.reads.ours().clone())
    }

    async fn call<Req, Resp, Err>(
        &self,
        path: &str,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, RaftError<NodeId, Err>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        Err: std::error::Error + DeserializeOwned,
    {
        let body = ledger::codec::encode(request).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let response = self.post(path).timeout(timeout).body(body).send().await.map_err(|e| {
            if e.is_connect() {
                RPCError::Unreachable(Unreachable::new(&e))
            } else {
                RPCError::Network(NetworkError::new(&e))
            }
        })?;
        let status = response.status();
        // Only the target answers 2xx or a Raft error: any other node refuses the target header.
        if status.is_success() || status.as_u16() == REMOTE_ERROR_STATUS {
            self.link.reads.heard(self.target, &self.group_addr, response.headers());
        }
        let bytes = response.bytes().await.map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        if status.as_u16() == REMOTE_ERROR_STATUS {
            let error: RaftError<NodeId, Err> =
                ledger::codec::decode(&bytes).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
            return Err(RPCError::RemoteError(RemoteError::new(self.target, error)));
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let error = std::io::Error::other(format!("peer answered {status}: {text}"));
            return Err(RPCError::Network(NetworkError::new(&error)));
        }
        ledger::codec::decode(&bytes).map_err(|e| RPCError::Network(NetworkError::new(&e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        request: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(PATH_APPEND, &request, option.hard_ttl()).await
    }

    /// Streams a view of the store (`snapshot_transfer`); no time limit on the whole, since a
    /// province's store takes minutes, but the follower gives up on a stalled stream.
    async fn full_snapshot(
        &mut self,
        vote: super::Vote,
        snapshot: openraft::Snapshot<TypeConfig>,
        cancel: impl std::future::Future<Output = ReplicationClosed> + openraft::OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<NodeId>, StreamingError<TypeConfig, Fatal<NodeId>>> {
        super::snapshot_transfer::send(self.post(PATH_SNAPSHOT), vote, snapshot, cancel).await
    }

    async fn vote(
        &mut self,
        request: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(PATH_VOTE, &request, option.hard_ttl()).await
    }
}
