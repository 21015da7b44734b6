//! The size of the entity register by region, for the seed's indicator 随机抽查数量比例 (the
//! share of a bureau's entities inspected by draw): counted once per directory version from its
//! kept file and held until the next version is imported. Counting a register of 2.5 million
//! rows takes about a second on the blocking pool; every later report reads the held counts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger::{BureauCode, Regions};

use crate::kept_files::{replication, Shelf};
use crate::state::AppState;

/// Entities per region code of one directory version.
#[derive(Debug)]
pub struct RegisterCounts {
    pub sha256: String,
    by_region: BTreeMap<BureauCode, u64>,
}

impl RegisterCounts {
    /// Entities registered within `bureau`'s subtree.
    pub fn within(&self, regions: &Regions, bureau: BureauCode) -> u64 {
        self.by_region.iter().filter(|(region, _)| regions.is_within(**region, bureau)).map(|(_, n)| n).sum()
    }

    /// Entities registered at `code` itself.
    pub fn at(&self, code: BureauCode) -> u64 {
        self.by_region.get(&code).copied().unwrap_or(0)
    }
}

/// After the register's file could not be had, how long reports go without the indicator
/// before the node tries again (a member away holds the file back for a while, and every
/// report would otherwise wait on the fetch).
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// The counts of the current directory version, held between calls (one count at a time: a
/// second caller waits for the first's).
#[derive(Clone, Default)]
pub struct RegisterCountsCache {
    held: Arc<tokio::sync::Mutex<Held>>,
}

#[derive(Default)]
struct Held {
    counts: Option<Arc<RegisterCounts>>,
    /// The version last found missing, and when.
    missing: Option<(String, Instant)>,
}

impl RegisterCountsCache {
    /// The counts of the directory version the ledger names current; `None` when none is
    /// imported or its file cannot be had from any member now (the indicator is then left out,
    /// never guessed).
    pub async fn current(&self, state: &AppState) -> Option<Arc<RegisterCounts>> {
        let sha256 = state.store.read().ledger.programme().entity_directory().map(|v| v.sha256.clone())?;
        let mut held = self.held.lock().await;
        if let Some(counts) = held.counts.as_ref().filter(|counts| counts.sha256 == sha256) {
            return Some(counts.clone());
        }
        if held.missing.as_ref().is_some_and(|(missing, at)| *missing == sha256 && at.elapsed() < RETRY_AFTER) {
            return None;
        }
        let bytes = match replication::obtain_mapped(state, Shelf::Directories, &sha256).await {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(%sha256, ?error, "the entity register could not be read for its counts");
                held.missing = Some((sha256, Instant::now()));
                return None;
            }
        };
        let by_region = tokio::task::spawn_blocking(move || draw::directory::entities_by_region(&bytes)).await.ok()?;
        let counts = Arc::new(RegisterCounts { sha256, by_region });
        held.counts = Some(counts.clone());
        held.missing = None;
        Some(counts)
    }
}
