//! Verification of a committed draw (`xietong draw verify`): the directory file must be the one
//! the campaign pinned, the seed must follow from the committed inputs, and recomputing the
//! draw must give exactly the committed result. Any tampering with the directory, the inputs
//! (a beacon, a ratio, an inspector) or the result shows as a mismatch.

use ledger::campaign::draw_parts::{part_digest, PartDigest, DRAW_PART_INSPECTIONS};
use ledger::campaign::{hex, DrawRecord, DrawResult};

use crate::select::{draw, DrawError};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("the directory file's SHA-256 is {actual}; the draw used {expected}")]
    Directory { expected: String, actual: String },
    #[error("the seed does not follow from the inputs: committed {committed}, recomputed {recomputed} (this build derives seeds as xietong-double-random-v2; a proof made before 0.3.0 used v1 and is verified by the build that made it)")]
    Seed { committed: String, recomputed: String },
    #[error("recomputing the draw failed: {0}")]
    Recompute(DrawError),
    #[error("the recomputed draw differs from the committed one: {0}")]
    Result(String),
}

/// What a verification checked, for the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub seed: String,
    pub inspections: usize,
    pub entities_in_scope: u64,
}

/// `regions` is the table the group drew with (its scope and regional risk points): the
/// compiled one unless the group adopted another before the draw.
pub fn verify(regions: &ledger::Regions, record: &DrawRecord, directory_bytes: &[u8]) -> Result<Verified, Mismatch> {
    let again = recompute(regions, record, directory_bytes)?;
    let committed = &record.result;
    let difference = summary_difference(&again, committed).or_else(|| {
        if again.inspections.len() != committed.inspections.len() {
            return Some(format!(
                "{} inspections recomputed, {} committed",
                again.inspections.len(),
                committed.inspections.len()
            ));
        }
        let name = |i: &ledger::campaign::DrawnInspection| {
            i.subject.uscc.as_ref().map_or_else(String::new, |u| u.as_str().to_owned())
        };
        let differs = again.inspections.iter().zip(&committed.inspections).enumerate().find(|(_, (a, c))| a != c);
        if let Some((n, (a, c))) = differs {
            return Some(format!(
                "inspection {} is {} with {:?} recomputed, {} with {:?} committed",
                n + 1,
                name(a),
                a.inspectors,
                name(c),
                c.inspectors
            ));
        }
        (again.recusals != committed.recusals).then(|| "the recusals".to_owned())
    });
    verdict(again, difference)
}

/// Verifies a draw committed in parts (`ledger::campaign::draw_parts`): its record keeps the
/// summary (seed, population, strata, recusals) and `parts` the digest of each part the ledger
/// took. Recomputing the draw must give the same summary and, part by part, the same digests:
/// the inspections the ledger made into tasks are exactly the recomputed ones.
pub fn verify_in_parts(
    regions: &ledger::Regions,
    record: &DrawRecord,
    parts: &[PartDigest],
    directory_bytes: &[u8],
) -> Result<Verified, Mismatch> {
    let again = recompute(regions, record, directory_bytes)?;
    let committed = &record.result;
    let difference = summary_difference(&again, committed).or_else(|| {
        if again.recusals != committed.recusals {
            return Some("the recusals".to_owned());
        }
        let parts_again: Vec<PartDigest> =
            again.inspections.chunks(DRAW_PART_INSPECTIONS).map(|part| part_digest(&again.strata, part)).collect();
        if parts_again.len() != parts.len() {
            return Some(format!("{} parts recomputed, {} committed", parts_again.len(), parts.len()));
        }
        parts_again.iter().zip(parts).position(|(a, c)| a != c).map(|n| {
            format!("part {n} (inspections {} to {})", n * DRAW_PART_INSPECTIONS + 1, (n + 1) * DRAW_PART_INSPECTIONS)
        })
    });
    verdict(again, difference)
}

/// The draw computed again from the record's inputs and the directory file, once the seed is
/// shown to follow from the inputs.
fn recompute(regions: &ledger::Regions, record: &DrawRecord, directory_bytes: &[u8]) -> Result<DrawResult, Mismatch> {
    let recomputed = hex(&record.inputs.seed());
    if recomputed != record.result.seed {
        return Err(Mismatch::Seed { committed: record.result.seed.clone(), recomputed });
    }
    // The draw checks the file's hash against the one the inputs name (while it ranks).
    draw(regions, &record.inputs, directory_bytes).map_err(|error| match error {
        DrawError::WrongDirectory { expected, actual } => Mismatch::Directory { expected, actual },
        other => Mismatch::Recompute(other),
    })
}

/// Where the recomputed population or strata differ from the committed ones.
fn summary_difference(again: &DrawResult, committed: &DrawResult) -> Option<String> {
    if again.entities_in_scope != committed.entities_in_scope || again.eligible != committed.eligible {
        Some("the population in scope".to_owned())
    } else if again.strata != committed.strata {
        Some("the strata (population or quota)".to_owned())
    } else {
        None
    }
}

fn verdict(again: DrawResult, difference: Option<String>) -> Result<Verified, Mismatch> {
    match difference {
        Some(what) => Err(Mismatch::Result(what)),
        None => Ok(Verified {
            seed: again.seed,
            inspections: again.inspections.len(),
            entities_in_scope: again.entities_in_scope,
        }),
    }
}
