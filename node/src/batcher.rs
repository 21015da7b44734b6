//! Group commit: commands from concurrent requests are packed into one Raft entry.
//!
//! openraft 0.9 fsyncs once per `client_write` on the leader, so without batching throughput
//! is bounded by one fsync plus one replication round per write. The batcher waits for one
//! command, takes whatever else is already queued (up to `COMMANDS_PER_ENTRY_MAX`), proposes
//! them as one entry and hands each caller its own result by position. Up to
//! `BATCHES_IN_FLIGHT_MAX` entries are in flight, so the leader appends batch k+1 while batch k
//! replicates. There is no linger timer: an idle system proposes a lone command at once.

use std::sync::Arc;

use cluster::raft::{ClientWriteError, LedgerRequest, Raft, RaftError};
use config::limits::BATCHES_IN_FLIGHT_MAX;
use ledger::limits::COMMANDS_PER_ENTRY_MAX;
use ledger::{Command, CommandResult};
use openraft::error::ClientWriteError as WriteError;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::telemetry::Telemetry;

/// Why a proposal did not produce a ledger result.
#[derive(Debug, Clone)]
pub enum ProposeError {
    /// This node is not the leader; the entry was not appended (safe to forward).
    NotLeader,
    /// The queue is full: the node is overloaded.
    Overloaded,
    /// Raft failed in a way that leaves the outcome open (or the node is shutting down).
    Failed(String),
}

/// Commands that go into one entry together, in order, with one reply for all of them.
struct Proposal {
    commands: Vec<Command>,
    reply: oneshot::Sender<Result<Vec<CommandResult>, ProposeError>>,
}

#[derive(Clone)]
pub struct Batcher {
    /// Bounded: a full queue is answered with `Overloaded`, never by growing memory.
    queue: mpsc::Sender<Proposal>,
}

impl Batcher {
    /// Starts the batching loop; it ends when `shutdown` fires, after in-flight batches finish.
    /// `queue_depth`: commands waiting at most (`[limits] proposal_queue_depth`, by default
    /// `PROPOSAL_QUEUE_DEPTH`).
    pub fn start(
        raft: Raft,
        queue_depth: usize,
        shutdown: CancellationToken,
        telemetry: Arc<Telemetry>,
    ) -> (Batcher, tokio::task::JoinHandle<()>) {
        let (queue, receiver) = mpsc::channel(queue_depth);
        let handle = tokio::spawn(run(raft, receiver, shutdown, telemetry));
        (Batcher { queue }, handle)
    }

    pub async fn propose(&self, command: Command) -> Result<CommandResult, ProposeError> {
        let mut results = self.propose_together(vec![command]).await?;
        Ok(results.pop().expect("one result per command"))
    }

    /// Proposes `commands` in one Raft entry (with whatever else is queued): all of them commit
    /// or none does. At most `COMMANDS_PER_ENTRY_MAX`.
    pub async fn propose_together(&self, commands: Vec<Command>) -> Result<Vec<CommandResult>, ProposeError> {
        assert!(
            !commands.is_empty() && commands.len() <= COMMANDS_PER_ENTRY_MAX,
            "a group of 1 to {COMMANDS_PER_ENTRY_MAX} commands fits one entry"
        );
        let (reply, answer) = oneshot::channel();
        self.queue.try_send(Proposal { commands, reply }).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => ProposeError::Overloaded,
            mpsc::error::TrySendError::Closed(_) => ProposeError::Failed("the node is shutting down".into()),
        })?;
        answer.await.map_err(|_| ProposeError::Failed("the batch was dropped".into()))?
    }
}

async fn run(
    raft: Raft,
    mut receiver: mpsc::Receiver<Proposal>,
    shutdown: CancellationToken,
    telemetry: Arc<Telemetry>,
) {
    // Each permit is one entry in flight; the batch task owns its permit until it answered.
    let in_flight = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT_MAX));
    loop {
        let permit = tokio::select! {
            permit = in_flight.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = shutdown.cancelled() => break,
        };
        let first = tokio::select! {
            proposal = receiver.recv() => match proposal { Some(p) => p, None => break },
            () = shutdown.cancelled() => break,
        };
        let mut commands = first.commands.len();
        let mut batch = vec![first];
        // A proposal that would not fit waits for the next entry, whole.
        let mut next = None;
        while commands < COMMANDS_PER_ENTRY_MAX {
            match receiver.try_recv() {
                Ok(proposal) if commands + proposal.commands.len() <= COMMANDS_PER_ENTRY_MAX => {
                    commands += proposal.commands.len();
                    batch.push(proposal);
                }
                Ok(proposal) => {
                    next = Some(proposal);
                    break;
                }
                Err(_) => break,
            }
        }
        let (writer, meter) = (raft.clone(), telemetry.clone());
        tokio::spawn(async move {
            write_batch(&writer, batch, &meter).await;
            drop(permit);
        });
        if let Some(proposal) = next {
            let permit = tokio::select! {
                permit = in_flight.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
                () = shutdown.cancelled() => break,
            };
            let (writer, meter) = (raft.clone(), telemetry.clone());
            tokio::spawn(async move {
                write_batch(&writer, vec![proposal], &meter).await;
                drop(permit);
            });
        }
    }
    // Let in-flight batches answer their callers before the loop reports done.
    let _ = in_flight.acquire_many(BATCHES_IN_FLIGHT_MAX as u32).await;
}

async fn write_batch(raft: &Raft, batch: Vec<Proposal>, telemetry: &Telemetry) {
    let sizes: Vec<usize> = batch.iter().map(|p| p.commands.len()).collect();
    let mut replies = Vec::with_capacity(batch.len());
    let mut commands = Vec::with_capacity(sizes.iter().sum());
    for proposal in batch {
        commands.extend(proposal.commands);
        replies.push(proposal.reply);
    }
    let count = commands.len();
    let started = std::time::Instant::now();
    let written = raft.client_write(LedgerRequest { commands }).await;
    telemetry.write_batch_duration.observe(started.elapsed().as_secs_f64());
    telemetry.write_batch_commands.observe(count as f64);
    match written {
        Ok(response) => {
            let mut results = response.data.results.into_iter();
            assert_eq!(results.len(), count, "one result per command");
            for (reply, size) in replies.into_iter().zip(sizes) {
                let _ = reply.send(Ok(results.by_ref().take(size).collect()));
            }
        }
        Err(error) => {
            let error = classify(error);
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}

/// `ForwardToLeader` from 0.9 means the entry was never appended, or was truncated as a
/// conflict (so never committed): safe to send elsewhere. Anything else leaves the outcome open.
fn classify(error: RaftError<ClientWriteError>) -> ProposeError {
    match error {
        RaftError::APIError(WriteError::ForwardToLeader(_)) => ProposeError::NotLeader,
        other => ProposeError::Failed(other.to_string()),
    }
}
