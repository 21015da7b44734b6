//! What the group's other members read (`reference::FEATURES_PATH`), learned by asking them and
//! kept. A command of a new format is proposed only when every member reads it
//! (`reference::members_read`, which asks at once a member it has no word from): a member that
//! does not answer counts by what it said last, so one node away (a disk replaced, a machine rebooting)
//! does not stop inspectors' records or campaigns, while a member that answers is judged by its
//! answer (one replaced by an older build at the same address is refused at once). Going back
//! to an older build once entries of a newer format committed is not supported
//! (docs/operations.md, "Rolling upgrade").
//!
//! Every node asks in the background (`run`): a member it has no answer from, at first every
//! `ASK_FIRST_AFTER` and then less often, up to `ASK_EVERY_KNOWN`; every member every
//! `ASK_EVERY_KNOWN`. Members also tell each other with every peer RPC
//! (`told_with_peer_rpc`): a follower hears its leader from the first heartbeat, so a node that
//! becomes leader already knows its fellows, the one that just died too. The answers are
//! kept in `<data_dir>/member_features.json`, a member named by its id and address (a member at
//! a new address is asked again), only for the current members and only the formats this build
//! knows of.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// The first wait before asking a member again that did not answer (a group starting).
const ASK_FIRST_AFTER: Duration = Duration::from_millis(250);
/// The longest wait between two questions to one member, answered or not.
const ASK_EVERY_KNOWN: Duration = Duration::from_secs(60);
const FILE_NAME: &str = "member_features.json";

pub struct MemberFeatures {
    path: PathBuf,
    /// `"<id>@<addr>"` → the formats that member said it reads, when it last answered.
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

    /// Whether member `id` at `addr` said, when it last answered, that it reads `feature`.
    pub fn reads(&self, id: u64, addr: &str, feature: &str) -> bool {
        self.lock().get(&member_key(id, addr)).is_some_and(|features| features.contains(feature))
    }

    /// Keeps what member `id` at `addr` answered now, in place of what it said before; only the
    /// formats this build knows of (an answer cannot grow the file).
    pub fn learn(&self, id: u64, addr: &str, reads: &[String]) {
        let features: BTreeSet<String> =
            reads.iter().filter(|read| crate::reference::FEATURES_READ.contains(&read.as_str())).cloned().collect();
        let mut known = self.lock();
        if known.get(&member_key(id, addr)) == Some(&features) {
            return;
        }
        known.insert(member_key(id, addr), features);
        self.save(&known);
    }

    /// Forgets members no longer in the group (`members`: id and address).
    pub fn keep_only(&self, members: &[(u64, String)]) {
        let current: BTreeSet<String> = members.iter().map(|(id, addr)| member_key(*id, addr)).collect();
        let mut known = self.lock();
        let before = known.len();
        known.retain(|key, _| current.contains(key));
        if known.len() != before {
            self.save(&known);
        }
    }

    /// Written under the lock (one writer at a time), to a temporary file, synced and renamed.
    /// A failure costs only asking again after a restart.
    fn save(&self, known: &BTreeMap<String, BTreeSet<String>>) {
        let temporary = self.path.with_extension("json.tmp");
        let written = serde_json::to_vec(known).map_err(std::io::Error::other).and_then(|bytes| {
            let mut file = std::fs::File::create(&temporary)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&temporary, &self.path)
        });
        if let Err(error) = written {
            tracing::warn!(%error, path = %self.path.display(), "the members' formats were not kept on disk");
        }
    }
}

/// What the peer network tells members this build reads, and where it keeps what they tell.
pub fn told_with_peer_rpc(known: &Arc<MemberFeatures>) -> cluster::raft::MemberReads {
    let known = known.clone();
    cluster::raft::MemberReads::new(
        &crate::reference::FEATURES_READ,
        Arc::new(move |id, addr, reads| known.learn(id, addr, reads)),
    )
}

/// The other members of the group (voters and learners) by id and address.
pub fn other_members(state: &AppState) -> Vec<(u64, String)> {
    let metrics = state.raft.metrics().borrow().clone();
    let membership = metrics.membership_config.membership();
    membership.nodes().filter(|(id, _)| **id != state.node_id).map(|(id, node)| (*id, node.addr.clone())).collect()
}

/// Asks the members in turn, until `shutdown`: one without an answer yet soon and then less
/// often (its wait doubles up to `ASK_EVERY_KNOWN`), every one every `ASK_EVERY_KNOWN`.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    // When to ask each member next, and the wait after that.
    let mut schedule: BTreeMap<(u64, String), (tokio::time::Instant, Duration)> = BTreeMap::new();
    loop {
        let members = other_members(&state);
        state.member_features.keep_only(&members);
        schedule.retain(|member, _| members.contains(member));
        let now = tokio::time::Instant::now();
        let due: Vec<(u64, String)> = members
            .iter()
            .filter(|member| schedule.get(*member).is_none_or(|(next, _)| *next <= now))
            .cloned()
            .collect();
        let asks = due.iter().map(|(id, addr)| crate::reference::ask_member_features(&state, *id, addr));
        let answers = tokio::select! {
            _ = shutdown.cancelled() => return,
            answers = futures_util::future::join_all(asks) => answers,
        };
        for (member, answer) in due.into_iter().zip(answers) {
            let wait = match (answer, schedule.get(&member)) {
                (Some(_), _) => ASK_EVERY_KNOWN,
                (None, Some((_, wait))) => (*wait * 2).min(ASK_EVERY_KNOWN),
                (None, None) => ASK_FIRST_AFTER,
            };
            schedule.insert(member, (tokio::time::Instant::now() + wait, wait));
        }
        // Until the group's membership is known (a node starting) there is no one to ask yet.
        let next = schedule.values().map(|(next, _)| *next).min();
        let until = next.unwrap_or_else(|| tokio::time::Instant::now() + ASK_FIRST_AFTER);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep_until(until) => {}
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
        features.learn(2, "127.0.0.1:1", &["site-records-v1".into(), "made-up-v9".into()]);
        let reopened = MemberFeatures::open(dir.path());
        assert!(reopened.reads(2, "127.0.0.1:1", "site-records-v1"));
        assert!(!reopened.reads(2, "127.0.0.1:1", "made-up-v9"), "only formats this build knows are kept");
        assert!(!reopened.reads(2, "127.0.0.1:2", "site-records-v1"), "a member at a new address is asked again");
        assert!(!reopened.reads(3, "127.0.0.1:1", "site-records-v1"));
        // An answer replaces the last: a member back on an older build reads less.
        reopened.learn(2, "127.0.0.1:1", &["reference-v1".into()]);
        assert!(
            !reopened.reads(2, "127.0.0.1:1", "site-records-v1") && reopened.reads(2, "127.0.0.1:1", "reference-v1")
        );
        // A member gone from the group is forgotten.
        reopened.keep_only(&[(3, "127.0.0.1:3".into())]);
        assert!(!MemberFeatures::open(dir.path()).reads(2, "127.0.0.1:1", "reference-v1"));
    }
}
