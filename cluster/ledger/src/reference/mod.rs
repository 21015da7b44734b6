//! Reference data as data: the region table and the working-day calendar a group decides with,
//! adopted through the log. Each adoption is a committed version with the log index from which
//! it applies, so every replica decides every entry with the same table, and a table that
//! changes (a region merged away, next year's holidays published) needs no new build.
//!
//! Version 0 of each is compiled in and frozen (`Regions::compiled`, `calendar_v0`); a ledger
//! that adopted nothing holds no data for them, so the core of a ledger that never adopts costs
//! three bytes more than before.

mod calendar;
mod day;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use calendar::{calendar_v0, CalendarTable, CalendarYear, CALENDAR_SOURCE_CHARS_MAX, CALENDAR_YEARS_MAX};
pub use day::{Day, YEAR_FIRST, YEAR_LAST};

use crate::bureau::{BureauCode, Region, RegionRow, Regions};
use crate::command::{Actor, Applied, CommandResult, Rejection, Role};

/// Versions of each table a ledger keeps at most: one a year for a century, and room. Every
/// version stays (the history of what decided what), so this bounds the core.
pub const REFERENCE_VERSIONS_MAX: usize = 200;

/// One adopted version: its number (1, 2, … ; 0 is the compiled one), the log index from which
/// it applies, when and by whom, and the SHA-256 of the file the operator gave.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adoption {
    pub number: u32,
    pub index: u64,
    pub stamp_ms: u64,
    pub sha256: [u8; 32],
    pub by: String,
    pub note: String,
}

/// What the ledger decides with besides its records.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    regions: RegionHistory,
    calendar: CalendarHistory,
}

/// The region versions adopted, and the table they make: version 0 with the regions that differ
/// from it put over (new codes, names changed, codes retired). Only that overlay is stored; the
/// table is derived when the core is read, and checked as it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RegionHistoryStored", into = "RegionHistoryStored")]
pub struct RegionHistory {
    versions: Vec<Adoption>,
    overlay: BTreeMap<BureauCode, Region>,
    table: Arc<Regions>,
}

#[derive(Clone, Serialize, Deserialize)]
struct RegionHistoryStored {
    versions: Vec<Adoption>,
    overlay: BTreeMap<BureauCode, Region>,
}

impl Default for RegionHistory {
    fn default() -> RegionHistory {
        RegionHistory { versions: Vec::new(), overlay: BTreeMap::new(), table: Regions::compiled_shared().clone() }
    }
}

impl TryFrom<RegionHistoryStored> for RegionHistory {
    type Error = String;

    /// A core read from outside (a snapshot, a backup) is checked as it is decoded: the overlay
    /// keeps every compiled code's place, and the table is a tree.
    fn try_from(stored: RegionHistoryStored) -> Result<RegionHistory, String> {
        check_versions(&stored.versions)?;
        if stored.overlay.iter().any(|(code, region)| *code != region.code) {
            return Err("a region filed under another code".into());
        }
        let compiled = Regions::compiled();
        for region in stored.overlay.values() {
            keeps_its_place(compiled, region)?;
        }
        if stored.versions.is_empty() && !stored.overlay.is_empty() {
            return Err("regions changed without an adoption".into());
        }
        let table = if stored.overlay.is_empty() {
            Regions::compiled_shared().clone()
        } else {
            Arc::new(compiled.with(stored.overlay.values().cloned())?)
        };
        Ok(RegionHistory { versions: stored.versions, overlay: stored.overlay, table })
    }
}

impl From<RegionHistory> for RegionHistoryStored {
    fn from(history: RegionHistory) -> RegionHistoryStored {
        RegionHistoryStored { versions: history.versions, overlay: history.overlay }
    }
}

/// The calendar versions adopted, each whole (a calendar is a few hundred days).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CalendarHistoryStored", into = "CalendarHistoryStored")]
pub struct CalendarHistory {
    versions: Vec<(Adoption, Arc<CalendarTable>)>,
}

#[derive(Clone, Serialize, Deserialize)]
struct CalendarHistoryStored {
    versions: Vec<(Adoption, CalendarTable)>,
}

impl TryFrom<CalendarHistoryStored> for CalendarHistory {
    type Error = String;

    fn try_from(stored: CalendarHistoryStored) -> Result<CalendarHistory, String> {
        let adoptions: Vec<Adoption> = stored.versions.iter().map(|(adoption, _)| adoption.clone()).collect();
        check_versions(&adoptions)?;
        for (adoption, table) in &stored.versions {
            table.check().map_err(|reason| format!("calendar version {}: {reason}", adoption.number))?;
        }
        Ok(CalendarHistory { versions: stored.versions.into_iter().map(|(a, t)| (a, Arc::new(t))).collect() })
    }
}

impl From<CalendarHistory> for CalendarHistoryStored {
    fn from(history: CalendarHistory) -> CalendarHistoryStored {
        CalendarHistoryStored { versions: history.versions.into_iter().map(|(a, t)| (a, (*t).clone())).collect() }
    }
}

/// Versions are numbered 1, 2, … in the order adopted, at log indexes that never go back (two
/// adoptions may share an entry: the batcher puts several commands in one).
fn check_versions(versions: &[Adoption]) -> Result<(), String> {
    if versions.len() > REFERENCE_VERSIONS_MAX {
        return Err(format!("more than {REFERENCE_VERSIONS_MAX} versions"));
    }
    for (position, adoption) in versions.iter().enumerate() {
        if adoption.number as usize != position + 1 {
            return Err(format!("version {} is filed as number {}", position + 1, adoption.number));
        }
    }
    if versions.windows(2).any(|pair| pair[0].index > pair[1].index || pair[0].stamp_ms > pair[1].stamp_ms) {
        return Err("versions out of order".into());
    }
    Ok(())
}

/// A code keeps its level and parent in every version.
fn keeps_its_place(known: &Regions, region: &Region) -> Result<(), String> {
    match known.region(region.code) {
        Some(before) if before.level != region.level || before.parent != region.parent => Err(format!(
            "{} would move from under {} ({}) to under {} ({}): a code's parent and level never change",
            region.code,
            before.parent.map_or("nothing".into(), |p| p.to_string()),
            before.level.as_str(),
            region.parent.map_or("nothing".into(), |p| p.to_string()),
            region.level.as_str(),
        )),
        _ => Ok(()),
    }
}

/// A change of reference data, proposed by a node for an operator (`xietong admin reference`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReferenceAction {
    /// The whole calendar, as the operator's file has it.
    AdoptCalendar { table: CalendarTable, sha256: [u8; 32], note: String },
    /// The whole list of active regions, as the operator's file has it. Known codes left out
    /// are retired, not removed.
    AdoptRegions { rows: Vec<RegionRow>, sha256: [u8; 32], note: String },
}

/// Which table an adoption changed, for the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReferenceTable {
    Regions,
    Calendar,
}

impl Reference {
    /// The region table the ledger decides with now.
    pub fn regions(&self) -> &Arc<Regions> {
        &self.regions.table
    }

    /// The region versions adopted (version 0 is not listed).
    pub fn region_versions(&self) -> &[Adoption] {
        &self.regions.versions
    }

    /// The calendar the leader stamps deadlines with now, and its version number (0: compiled).
    pub fn calendar(&self) -> (u32, Arc<CalendarTable>) {
        static V0: std::sync::OnceLock<Arc<CalendarTable>> = std::sync::OnceLock::new();
        match self.calendar.versions.last() {
            Some((adoption, table)) => (adoption.number, table.clone()),
            None => (0, V0.get_or_init(|| Arc::new(calendar_v0())).clone()),
        }
    }

    /// The calendar versions adopted (version 0 is not listed).
    pub fn calendar_versions(&self) -> impl Iterator<Item = &Adoption> {
        self.calendar.versions.iter().map(|(adoption, _)| adoption)
    }

    /// Applies an adoption at log index `position`. Only the group itself (a node acting for
    /// an operator, `Role::System`) adopts; the whole file is checked, and a refusal changes
    /// nothing.
    pub(crate) fn apply(
        &mut self,
        position: u64,
        stamp_ms: u64,
        actor: &Actor,
        action: &ReferenceAction,
    ) -> CommandResult {
        if actor.role != Role::System {
            return Err(Rejection::Forbidden("only the group's operators adopt reference data".into()));
        }
        crate::validate::actor(actor, &self.regions.table)?;
        let adoption = |number: usize, sha256: &[u8; 32], note: &str| -> Result<Adoption, Rejection> {
            crate::validate::note(note, false)?;
            if number > REFERENCE_VERSIONS_MAX {
                return Err(Rejection::LimitReached(format!("{REFERENCE_VERSIONS_MAX} versions of a table")));
            }
            Ok(Adoption {
                number: number as u32,
                index: position,
                stamp_ms,
                sha256: *sha256,
                by: actor.user.clone(),
                note: note.to_owned(),
            })
        };
        match action {
            ReferenceAction::AdoptCalendar { table, sha256, note } => {
                table.check().map_err(|reason| invalid("calendar", reason))?;
                let (_, current) = self.calendar();
                if *table == *current {
                    return Err(Rejection::NothingToRecord("this calendar is already the current version".into()));
                }
                current
                    .may_be_followed_by(table, Day::beijing_of_ms(stamp_ms))
                    .map_err(|reason| invalid("calendar", reason))?;
                let adoption = adoption(self.calendar.versions.len() + 1, sha256, note)?;
                self.calendar.versions.push((adoption, Arc::new(table.clone())));
            }
            ReferenceAction::AdoptRegions { rows, sha256, note } => {
                let next = self.regions_after(rows).map_err(|reason| invalid("regions", reason))?;
                if next == *self.regions.table {
                    return Err(Rejection::NothingToRecord("this region table is already the current version".into()));
                }
                let adoption = adoption(self.regions.versions.len() + 1, sha256, note)?;
                let compiled = Regions::compiled();
                self.regions.overlay = next
                    .regions()
                    .filter(|region| compiled.region(region.code) != Some(*region))
                    .map(|region| (region.code, region.clone()))
                    .collect();
                self.regions.table = Arc::new(next);
                self.regions.versions.push(adoption);
            }
        }
        Ok(Applied::default())
    }

    /// The table after adopting `rows` as the active list: rows form a tree; known codes keep
    /// level and parent (names may change); known codes left out are retired; a retired code
    /// listed again is active again. The node asks it too, for the early refusal and a dry
    /// run's list of changes; `apply` decides by it.
    pub fn regions_after(&self, rows: &[RegionRow]) -> Result<Regions, String> {
        let listed = Regions::of_rows(rows)?;
        let current = &*self.regions.table;
        let mut overlay = Vec::new();
        for region in listed.regions() {
            keeps_its_place(current, region)?;
            overlay.push(region.clone());
        }
        for region in current.regions().filter(|region| !listed.contains(region.code)) {
            overlay.push(Region { retired: true, ..region.clone() });
        }
        current.with(overlay)
    }

    /// The invariants `check_core` adds for reference data (decoding checked the rest).
    pub(crate) fn check(&self, stamp_max_ms: u64) -> Result<(), String> {
        let mut adoptions = self.regions.versions.iter().chain(self.calendar_versions());
        if let Some(late) = adoptions.find(|adoption| adoption.stamp_ms > stamp_max_ms) {
            return Err(format!("version {} was adopted after the ledger's last entry", late.number));
        }
        Ok(())
    }
}

/// A ledger core of store format 3 (0.3.0: written before the reference data) in this build's
/// format: the reference field is the core's last, so the old core is this one's first bytes
/// and a ledger that adopted nothing ends with the encoding of `Reference::default()`. Whether
/// the result decodes is the caller's check, as for any core read from outside.
pub fn core_of_format_3(core: &[u8]) -> Vec<u8> {
    let unadopted = crate::codec::encode(&Reference::default()).expect("the empty reference encodes");
    [core, unadopted.as_slice()].concat()
}

fn invalid(field: &str, reason: String) -> Rejection {
    Rejection::Invalid { field: field.into(), reason }
}
