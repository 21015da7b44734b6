//! Which snapshot is on disk, told by the state machine (which writes snapshot files) to the log
//! store (which must not purge past it).
//!
//! Why: when a follower takes a snapshot from its leader, openraft 0.9 queues the installation to
//! the state machine and, in the same step, purges the log the snapshot covers; the purge carries
//! no condition, so it runs while the snapshot is still being written. Entries appended after it
//! follow at once. A crash in between left a log that starts past the snapshot on disk, and the
//! node could not restart (found by the randomized fault run: purged to 2,405 over a snapshot at
//! 2,276). So the log store waits here before it purges past the durable snapshot; RaftCore runs
//! log operations in order, so nothing appended after the purge is durable before the snapshot.

use std::io;
use std::sync::Arc;

use tokio::sync::watch;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct OnDisk {
    /// Last log index covered by the newest snapshot file known durable.
    index: Option<u64>,
    /// A snapshot write failed: a purge waiting for it would wait forever, so it fails too.
    failed: Option<String>,
}

#[derive(Clone)]
pub struct DurableSnapshot {
    on_disk: Arc<watch::Sender<OnDisk>>,
}

impl DurableSnapshot {
    /// Starts from the snapshot found on disk at open (`None`: there is none).
    pub fn new(index: Option<u64>) -> DurableSnapshot {
        DurableSnapshot { on_disk: Arc::new(watch::Sender::new(OnDisk { index, failed: None })) }
    }

    /// For a log store exercised without a state machine (storage conformance and WAL tests):
    /// every purge is covered.
    #[cfg(test)]
    pub fn covering_everything() -> DurableSnapshot {
        DurableSnapshot::new(Some(u64::MAX))
    }

    /// A snapshot file covering up to `index` is durable (fsynced and renamed into place).
    pub fn record_written(&self, index: Option<u64>) {
        self.on_disk.send_if_modified(|on_disk| {
            let newer = index > on_disk.index;
            if newer {
                on_disk.index = index;
            }
            newer
        });
    }

    /// Writing a snapshot failed; purges waiting for one fail instead of hanging RaftCore.
    pub fn record_failed(&self, error: &io::Error) {
        self.on_disk.send_modify(|on_disk| on_disk.failed = Some(error.to_string()));
    }

    pub fn index(&self) -> Option<u64> {
        self.on_disk.borrow().index
    }

    /// Returns once a durable snapshot covers `index`.
    pub async fn covers(&self, index: u64) -> io::Result<()> {
        let mut watcher = self.on_disk.subscribe();
        let on_disk = watcher
            .wait_for(|on_disk| on_disk.index >= Some(index) || on_disk.failed.is_some())
            .await
            .map_err(|_| io::Error::other("the state machine is gone"))?;
        match (&on_disk.failed, on_disk.index >= Some(index)) {
            (_, true) => Ok(()),
            (Some(error), false) => Err(io::Error::other(format!("no durable snapshot covers {index}: {error}"))),
            (None, false) => unreachable!("wait_for returned without its condition"),
        }
    }
}
