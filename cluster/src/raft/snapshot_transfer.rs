//! Sending a snapshot to a follower: the leader streams a consistent view of its store in one
//! HTTP request (`POST /raft/snapshot`), and the follower loads it into a new store as it
//! arrives, then hands it to openraft to install. Neither side holds more than a few chunks in
//! memory, whatever the ledger's size.
//!
//! Body: `[head length u32 LE][(Vote, SnapshotMeta) in ledger::codec]`, then the store stream
//! (`store::stream`). Answer: a `SnapshotResponse` (200) or `Fatal` (the remote-error
//! status, as every peer RPC answers), or a plain-text refusal.

use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use openraft::error::{Fatal, NetworkError, ReplicationClosed, StreamingError, Unreachable};
use openraft::raft::SnapshotResponse;
use openraft::{BasicNode, Snapshot, SnapshotMeta};
use tokio::sync::mpsc;

use super::state_machine::SnapshotData;
use super::{NodeId, Raft, TypeConfig, Vote};
use crate::store::stream::{ChunkWriter, StreamCore};

/// Chunks in flight between the thread that reads the store (or loads it) and the connection.
const CHUNKS_IN_FLIGHT: usize = 4;
/// A head is a vote and a membership: a few hundred bytes.
const HEAD_BYTES_MAX: u32 = 64 * 1024;

type Head = (Vote, SnapshotMeta<NodeId, BasicNode>);

fn network_error(error: impl std::fmt::Display) -> StreamingError<TypeConfig, Fatal<NodeId>> {
    StreamingError::Network(NetworkError::new(&io::Error::other(error.to_string())))
}

/// The leader's side: streams `snapshot` (a view of the store) with `request`.
pub(super) async fn send(
    request: reqwest::RequestBuilder,
    vote: Vote,
    snapshot: Snapshot<TypeConfig>,
    cancel: impl std::future::Future<Output = ReplicationClosed>,
) -> Result<SnapshotResponse<NodeId>, StreamingError<TypeConfig, Fatal<NodeId>>> {
    let Snapshot { meta, snapshot } = snapshot;
    let SnapshotData::View(view) = *snapshot else {
        return Err(network_error("only a view of the store is sent as a snapshot"));
    };
    let head = ledger::codec::encode(&(vote, &meta)).map_err(network_error)?;
    let (chunks, outgoing) = mpsc::channel::<io::Result<Bytes>>(CHUNKS_IN_FLIGHT);
    let mut first = Vec::with_capacity(4 + head.len());
    first.extend_from_slice(&(head.len() as u32).to_le_bytes());
    first.extend_from_slice(&head);
    chunks.send(Ok(Bytes::from(first))).await.map_err(network_error)?;
    std::thread::Builder::new()
        .name("snapshot-send".into())
        .spawn(move || {
            let mut writer = ChunkWriter::new(chunks);
            if let Err(error) = crate::store::stream::write_stream(&view, &mut writer) {
                writer.fail(error);
            }
        })
        .map_err(network_error)?;
    let body = reqwest::Body::wrap_stream(futures_util::stream::unfold(outgoing, |mut outgoing| async move {
        outgoing.recv().await.map(|chunk| (chunk, outgoing))
    }));
    let sent = request.body(body).send();
    let response = tokio::select! {
        response = sent => response,
        closed = cancel => return Err(StreamingError::Closed(closed)),
    };
    let response = response.map_err(|error| {
        if error.is_connect() {
            StreamingError::Unreachable(Unreachable::new(&error))
        } else {
            StreamingError::Network(NetworkError::new(&error))
        }
    })?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| StreamingError::Network(NetworkError::new(&e)))?;
    if status.as_u16() == super::network::REMOTE_ERROR_STATUS {
        let fatal: Fatal<NodeId> = ledger::codec::decode(&bytes).map_err(network_error)?;
        return Err(network_error(format!("the follower stopped: {fatal}")));
    }
    if !status.is_success() {
        return Err(network_error(format!(
            "the follower refused the snapshot: {status}: {}",
            String::from_utf8_lossy(&bytes)
        )));
    }
    ledger::codec::decode(&bytes).map_err(network_error)
}

/// Reads the chunks the connection hands over, for the loader on its own thread.
struct ChunkReader {
    chunks: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for ChunkReader {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.chunks.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buffer.len().min(self.current.len());
        buffer[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// The follower's side: loads the stream into a new store at `incoming`, then installs it.
/// One transfer at a time (`busy`); a second is refused and the leader tries again.
pub(super) async fn receive(
    raft: &Raft,
    incoming: PathBuf,
    busy: &Arc<tokio::sync::Mutex<()>>,
    body: Body,
    chunk_timeout: std::time::Duration,
) -> Response {
    let Ok(_one_transfer) = busy.try_lock() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "a snapshot is being received already").into_response();
    };
    let mut frames = body.into_data_stream();
    let mut pending = Vec::new();
    // The head: its length, then the vote and meta.
    let head: Head = loop {
        if pending.len() >= 4 {
            let length = u32::from_le_bytes(pending[..4].try_into().expect("4 bytes"));
            if length > HEAD_BYTES_MAX {
                return (StatusCode::BAD_REQUEST, "a snapshot head too large").into_response();
            }
            if pending.len() >= 4 + length as usize {
                let head = match ledger::codec::decode(&pending[4..4 + length as usize]) {
                    Ok(head) => head,
                    Err(error) => {
                        return (StatusCode::BAD_REQUEST, format!("an undecodable snapshot head: {error}"))
                            .into_response()
                    }
                };
                pending.drain(..4 + length as usize);
                break head;
            }
        }
        match tokio::time::timeout(chunk_timeout, frames.next()).await {
            Ok(Some(Ok(chunk))) => pending.extend_from_slice(&chunk),
            Ok(Some(Err(error))) => {
                return (StatusCode::BAD_REQUEST, format!("the snapshot stream broke: {error}")).into_response()
            }
            Ok(None) => return (StatusCode::BAD_REQUEST, "the snapshot stream ended in its head").into_response(),
            Err(_) => return (StatusCode::REQUEST_TIMEOUT, "the snapshot stream stalled").into_response(),
        }
    };
    let (vote, meta) = head;
    let (chunks, arriving) = mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
    let path = incoming.clone();
    let loader = tokio::task::spawn_blocking(move || {
        let mut reader = ChunkReader { chunks: arriving, current: Bytes::new() };
        crate::store::stream::load_stream(&mut io::BufReader::new(&mut reader), &path)
    });
    let mut feeding = Ok(());
    if !pending.is_empty() && chunks.send(Bytes::from(pending)).await.is_err() {
        feeding = Err("the loader stopped".to_owned());
    }
    while feeding.is_ok() {
        match tokio::time::timeout(chunk_timeout, frames.next()).await {
            Ok(Some(Ok(chunk))) => {
                if chunks.send(chunk).await.is_err() {
                    // The loader refused what it read; its reason is the answer.
                    break;
                }
            }
            Ok(Some(Err(error))) => feeding = Err(format!("the snapshot stream broke: {error}")),
            Ok(None) => break,
            Err(_) => feeding = Err("the snapshot stream stalled".to_owned()),
        }
    }
    drop(chunks);
    let loaded = loader.await.map_err(|error| error.to_string()).and_then(|loaded| loaded.map_err(|e| e.to_string()));
    let refusal = match (feeding, loaded) {
        (Ok(()), Ok(loaded)) if loaded.meta.applied == meta.last_log_id => None,
        (Ok(()), Ok(StreamCore { meta: checkpoint, .. })) => {
            Some(format!("the stream stands at {:?}, its head at {:?}", checkpoint.applied, meta.last_log_id))
        }
        (Err(reason), _) | (Ok(()), Err(reason)) => Some(reason),
    };
    if let Some(reason) = refusal {
        let _ = std::fs::remove_file(&incoming);
        tracing::warn!(%reason, "refused a snapshot from the leader");
        return (StatusCode::BAD_REQUEST, reason).into_response();
    }
    let snapshot = Snapshot { meta, snapshot: Box::new(SnapshotData::Received(incoming.clone())) };
    let installed = raft.install_full_snapshot(vote, snapshot).await;
    // Installed, the file was moved into place; refused (an older vote), it is left behind.
    let _ = std::fs::remove_file(&incoming);
    super::peer_api::reply(installed)
}
