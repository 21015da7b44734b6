//! What the group's other members read (`reference::FEATURES_PATH`), learned by asking them and
//! kept. A command of a new format is proposed only when every member reads it
//! (`reference::members_read`); a member that once said it reads a format keeps counting while
//! it is down or unreachable, so one node away (a disk replaced, a machine rebooting) does not
//! stop inspectors' records or campaigns. This is sound because a build never forgets a
//! format: going back to an older build once entries of a newer format committed is not
//! supported (docs/operations.md, "Rolling upgrade").
//!
//! Every node asks in the background (`run`): every `ASK_EVERY_UNKNOWN` while some member's
//! answer is missing, every `ASK_EVERY_KNOWN` after, so a node that becomes leader already
//! knows its fellows. What it learned is kept in `<data_dir>/member_features.json`, a member
//! named by its id and address (a replaced member at a new address is asked again).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// While some member's formats are unknown (a group starting, a member upgraded).
const ASK_EVERY_UNKNOWN: Duration = Duration::from_millis(250);
/// Once every member is known to read every format this build reads.
const ASK_EVERY_KNOWN: Duration = Duration::from_secs(60);
const FILE_NAME: &str = "member_features.json";

pub struct MemberFeatures {
    path: PathBuf,
    /// `"<id>@<addr>"` → the formats that member said it reads.
    known: Mutex<BTreeMap<String, BTreeSet<String>>>,
}

fn member_key(id: u64, addr: &str) -> String {
    format!("{id}@{addr}")
}

impl MemberFeatures {
    /// What this node learned before it stopped; nothing when the file is missing or unreadable
    /// (it only saves asking again).
    pub fn open(data_dir: &Path) -> MemberFeatures {
        let path = data_dir.join(FILE_NAME);
        let known = std::fs::read(&path).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default();
        MemberFeatures { path, known: Mutex::new(known) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, BTreeSet<String>>> {
        self.known.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether member `id` at `addr` once said it reads `feature`.
    pub fn reads(&self, id: u64, addr: &str, feature: &str) -> bool {
        self.lock().get(&member_key(id, addr)).is_some_and(|features| features.contains(feature))
    }

    /// Keeps what member `id` at `addr` said it reads (on top of what it said before).
    pub fn learn(&self, id: u64, addr: &str, reads: &[String]) {
        let snapshot = {
            let mut known = self.lock();
            let features = known.entry(member_key(id, addr)).or_default();
            let before = features.len();
            features.extend(reads.iter().cloned());
            if features.len() == before {
                return;
            }
            known.clone()
        };
        if let Err(error) = self.save(&snapshot) {
            tracing::warn!(%error, path = %self.path.display(), "the members' formats were not kept on disk");
        }
    }

    fn save(&self, known: &BTreeMap<String, BTreeSet<String>>) -> std::io::Result<()> {
        let temporary = self.path.with_extension("json.tmp");
        std::fs::write(&temporary, serde_json::to_vec(known).map_err(std::io::Error::other)?)?;
        std::fs::rename(&temporary, &self.path)
    }
}

/// The other members of the group (voters and learners) by id and address.
pub fn other_members(state: &AppState) -> Vec<(u64, String)> {
    let metrics = state.raft.metrics().borrow().clone();
    let membership = metrics.membership_config.membership();
    membership.nodes().filter(|(id, _)| **id != state.node_id).map(|(id, node)| (*id, node.addr.clone())).collect()
}

/// Asks every member whose formats are not all known, until `shutdown`.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    loop {
        let members = other_members(&state);
        // Before the group's membership is known (a node starting) there is no one to ask yet.
        let membership_known = !members.is_empty();
        let unknown: Vec<(u64, String)> = members
            .into_iter()
            .filter(|(id, addr)| {
                crate::reference::FEATURES_READ.iter().any(|feature| !state.member_features.reads(*id, addr, feature))
            })
            .collect();
        let asks = unknown.iter().map(|(id, addr)| crate::reference::ask_member_features(&state, *id, addr));
        futures_util::future::join_all(asks).await;
        let wait = if membership_known && unknown.is_empty() { ASK_EVERY_KNOWN } else { ASK_EVERY_UNKNOWN };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_member_said_it_reads_is_kept_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let features = MemberFeatures::open(dir.path());
        assert!(!features.reads(2, "127.0.0.1:1", "site-records-v1"));
        features.learn(2, "127.0.0.1:1", &["site-records-v1".into()]);
        features.learn(2, "127.0.0.1:1", &["reference-v1".into()]);
        let reopened = MemberFeatures::open(dir.path());
        assert!(
            reopened.reads(2, "127.0.0.1:1", "site-records-v1") && reopened.reads(2, "127.0.0.1:1", "reference-v1")
        );
        assert!(!reopened.reads(2, "127.0.0.1:2", "site-records-v1"), "a member at a new address is asked again");
        assert!(!reopened.reads(3, "127.0.0.1:1", "site-records-v1"));
    }
}
