//! The live entity register (名录库, kept current): the changes the registration system reports
//! (设立 establish, 变更 amend, 吊销 revoke, 注销 deregister) recorded in order as a journal, and
//! the directory versions frozen from it for draws.
//!
//! The register is a directory file (imported whole, kept beside the log by its SHA-256) plus
//! the journal of changes since. The journal lives in the ledger's records (one record a change,
//! numbered from 1, and the change's id from the registration system, so a change delivered
//! again is recorded once); the core keeps only its length and, for every directory version
//! the register is based on, how much of the journal that version takes in.
//!
//! A draw must name one file whose hash it commits, so before a campaign's beacon is fixed the
//! accepting node folds the changes since the current version into a new file (crate `draw`,
//! `register::freeze`) and commits it as the next directory version (`FreezeRegister`): the
//! version it started from and the journal length it took in are on record, so anyone holding
//! the base file and the journal can make the same bytes again, and the draw's proof verifies
//! against the frozen file as against any imported one.
//!
//! The ledger cannot see inside the files, so it does not know which entities exist: an amend
//! or a revocation of an entity no version holds is recorded and changes nothing when folded.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{is_hex_sha256, DirectoryVersion, LABEL_CHARS_MAX};
use crate::bureau::{BureauCode, Regions};
use crate::command::{Actor, Rejection, Role};
use crate::task::wire_enum;
use crate::uscc::Uscc;
use crate::validate::invalid;

/// Changes in one command: a batch of the feed is one log entry of at most a few hundred KB.
pub const CHANGES_PER_COMMAND_MAX: usize = 1_000;
/// A change's id as the registration system numbers it.
pub const CHANGE_ID_CHARS_MAX: usize = 64;
/// Field lengths of an entity, in characters (the directory file's).
pub const NAME_CHARS_MAX: usize = 200;
pub const ADDRESS_CHARS_MAX: usize = 300;

wire_enum! {
    /// What the registration authority did.
    pub enum ChangeKind {
        /// 设立登记: a new entity.
        Establish = "establish",
        /// 变更登记: its name, address, industry or region changed.
        Amend = "amend",
        /// 吊销营业执照: its licence revoked; it leaves the register of entities inspected.
        Revoke = "revoke",
        /// 注销登记: it ceased to exist.
        Deregister = "deregister",
        /// 信用风险分类: the provincial credit-risk system classed the entity high, normal or low
        /// risk (its A to D classes as the system's feed maps them); the register keeps the
        /// class in its `risk_class` column, which a draw's risk classes start from. These four
        /// go last (a variant is encoded by its position) and are recorded only when every
        /// member reads `risk-files-v1`.
        ClassifyHigh = "classify_high",
        ClassifyNormal = "classify_normal",
        ClassifyLow = "classify_low",
        /// The credit-risk system withdrew its class of the entity.
        Unclassify = "unclassify",
    }
}

impl ChangeKind {
    /// Whether the entity is in the register after this change; a classification leaves its
    /// presence as it was (`classification`).
    pub fn keeps_entity(self) -> bool {
        matches!(self, ChangeKind::Establish | ChangeKind::Amend)
    }

    /// For a classification, the class it gives (none: withdrawn); `None` for a registration.
    pub fn classification(self) -> Option<Option<super::RiskClass>> {
        use super::RiskClass;
        match self {
            ChangeKind::ClassifyHigh => Some(Some(RiskClass::High)),
            ChangeKind::ClassifyNormal => Some(Some(RiskClass::Normal)),
            ChangeKind::ClassifyLow => Some(Some(RiskClass::Low)),
            ChangeKind::Unclassify => Some(None),
            ChangeKind::Establish | ChangeKind::Amend | ChangeKind::Revoke | ChangeKind::Deregister => None,
        }
    }

    /// The classification that gives `class` (none: withdraws it).
    pub fn classifying(class: Option<super::RiskClass>) -> ChangeKind {
        use super::RiskClass;
        match class {
            Some(RiskClass::High) => ChangeKind::ClassifyHigh,
            Some(RiskClass::Normal) => ChangeKind::ClassifyNormal,
            Some(RiskClass::Low) => ChangeKind::ClassifyLow,
            None => ChangeKind::Unclassify,
        }
    }
}

/// An entity as the register holds it: a directory row without its USCC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredEntity {
    pub name: String,
    pub region: BureauCode,
    pub industry: String,
    pub credit_status: String,
    pub address: String,
}

/// One change from the registration system.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterChange {
    /// The registration system's id of the change: a change delivered again is recorded once.
    pub id: String,
    pub kind: ChangeKind,
    pub uscc: Uscc,
    /// The entity after an establishment or amendment; none after a revocation or
    /// deregistration.
    pub entity: Option<RegisteredEntity>,
}

/// A change as the journal keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Its place in the journal, from 1: the order changes are folded in.
    pub seq: u64,
    pub change: RegisterChange,
    /// The feed that reported it.
    pub source: String,
    pub recorded_ms: u64,
}

/// What became of one change of a batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeOutcome {
    Recorded {
        seq: u64,
    },
    /// The same change was recorded before, as `seq`.
    Repeat {
        seq: u64,
    },
    Refused(Rejection),
}

/// How a directory version stands to the journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterVersion {
    /// It takes in the journal's changes 1 to `through`.
    pub through: u64,
    /// The version it was frozen from, or none for a version imported whole.
    pub base: Option<u64>,
}

/// The register's part of the ledger core.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Register {
    journal_len: u64,
    /// Directory versions imported as the register's base (`ImportRegister`) or frozen from it,
    /// by number. A version imported by the older `RecordEntityDirectory` is not here: nobody
    /// recorded which changes it holds, so nothing is frozen from it.
    versions: BTreeMap<u64, RegisterVersion>,
}

/// A frozen directory the accepting node computed: the file's identity, the version it folded
/// the changes into, and how far into the journal it went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Freeze {
    pub sha256: String,
    pub entities: u64,
    pub bytes: u64,
    pub base: u64,
    pub through: u64,
}

impl Register {
    /// Changes recorded so far; the newest is number `journal_len`.
    pub fn journal_len(&self) -> u64 {
        self.journal_len
    }

    pub fn version(&self, number: u64) -> Option<RegisterVersion> {
        self.versions.get(&number).copied()
    }

    /// The changes the current directory (`current`) does not take in yet: `None` when the
    /// register is not based on it.
    pub fn pending_after(&self, current: &DirectoryVersion) -> Option<u64> {
        let version = self.versions.get(&current.number)?;
        Some(self.journal_len - version.through)
    }

    pub(crate) fn next_seq(&mut self) -> u64 {
        self.journal_len += 1;
        self.journal_len
    }

    /// Checks an import's place in the journal: the changes it holds (`through`), at most the
    /// ones recorded.
    pub(crate) fn check_import(&self, through: u64) -> Result<(), Rejection> {
        if through > self.journal_len {
            return Err(invalid("through", format!("the journal has {} changes", self.journal_len)));
        }
        Ok(())
    }

    /// Files a version imported whole, which holds the journal's changes up to `through`.
    pub(crate) fn based_on_import(&mut self, number: u64, through: u64) {
        assert!(through <= self.journal_len, "checked: an import holds only recorded changes");
        self.versions.insert(number, RegisterVersion { through, base: None });
    }

    /// Checks a freeze against the register and the current directory (`current`).
    pub(crate) fn check_freeze(&self, current: Option<&DirectoryVersion>, freeze: &Freeze) -> Result<(), Rejection> {
        if !is_hex_sha256(&freeze.sha256) {
            return Err(invalid("sha256", "not a SHA-256 in hex"));
        }
        let current = current.filter(|current| current.number == freeze.base).ok_or_else(|| {
            crate::command::conflict(
                crate::command::ConflictCode::DirectoryChanged,
                format!("a freeze starts from the current directory version, not version {}", freeze.base),
            )
        })?;
        let base = self.versions.get(&current.number).ok_or_else(|| {
            crate::command::conflict(
                crate::command::ConflictCode::RegisterUnbased,
                format!(
                    "directory version {} was imported without its place in the register's journal: import the register again",
                    current.number
                ),
            )
        })?;
        if freeze.through > self.journal_len {
            return Err(invalid("through", format!("the journal has {} changes", self.journal_len)));
        }
        if freeze.through <= base.through {
            return Err(Rejection::NothingToRecord(format!(
                "directory version {} takes in the journal up to change {} already",
                current.number, base.through
            )));
        }
        Ok(())
    }

    /// Files a checked freeze as version `number`: a new version, or, when the changes left the
    /// file as it was (a revocation, then a deregistration of the same entity), the current one,
    /// which now takes in the journal up to the freeze.
    pub(crate) fn record_freeze(&mut self, number: u64, freeze: &Freeze) {
        if number == freeze.base {
            let current = self.versions.get_mut(&number).expect("checked: the base is on record");
            current.through = freeze.through;
        } else {
            self.versions.insert(number, RegisterVersion { through: freeze.through, base: Some(freeze.base) });
        }
    }

    /// The register's own invariants, against the directory's versions (`directories`).
    pub(crate) fn check(&self, directories: u64) -> Result<(), String> {
        for (number, version) in &self.versions {
            if *number == 0 || *number > directories {
                return Err(format!("register version {number} is no directory version"));
            }
            if version.through > self.journal_len {
                return Err(format!("register version {number} takes in changes not recorded"));
            }
            if let Some(base) = version.base {
                let based = self.versions.get(&base).filter(|b| base < *number && b.through < version.through);
                if based.is_none() {
                    return Err(format!("register version {number} is frozen from no earlier version"));
                }
            }
        }
        Ok(())
    }
}

/// Who may feed the register: a registration source (`Role::Source`) of a bureau, for entities
/// within that bureau.
pub(crate) fn check_feeder(actor: &Actor) -> Result<(), Rejection> {
    if actor.role != Role::Source {
        return Err(Rejection::Forbidden("the register is fed by the registration system's source".into()));
    }
    Ok(())
}

/// The checks of one change on its own; `scope`: the feeding source's bureau. Every change,
/// a revocation too, must be about an entity the source's bureau registered: the USCC's
/// digits 3 to 8 are its registering authority's region (登记管理机关行政区划码), which no
/// change alters, so one bureau's system can never revoke, amend or take over another's
/// entities.
pub fn check_change(regions: &Regions, scope: BureauCode, change: &RegisterChange) -> Result<(), Rejection> {
    check_shape(regions, change)?;
    if !change.uscc.registering_region().starts_with(significant_digits(scope).as_str()) {
        return Err(Rejection::Forbidden(format!(
            "entity {} was registered by region {}, outside the source's bureau {scope}",
            change.uscc.as_str(),
            change.uscc.registering_region()
        )));
    }
    if let Some(entity) = &change.entity {
        if !regions.is_within(entity.region, scope) {
            return Err(Rejection::Forbidden(format!(
                "entity {} would be registered in {}, outside the source's bureau {scope}",
                change.uscc.as_str(),
                entity.region
            )));
        }
    }
    Ok(())
}

/// The digits that name a region within the code (`440000` → `44`, `440100` → `4401`): the
/// prefix every code below it shares.
fn significant_digits(code: BureauCode) -> String {
    let digits = format!("{code}");
    let mut significant = digits.as_str();
    while significant.len() > 2 && significant.ends_with("00") {
        significant = &significant[..significant.len() - 2];
    }
    significant.to_owned()
}

/// The checks of a change that need no scope: its id, whether it carries the entity its kind
/// calls for, and the entity's fields. Also run on every journal entry loaded from outside (a
/// stream, a backup), so a frozen file never holds a field a directory may not.
pub fn check_shape(regions: &Regions, change: &RegisterChange) -> Result<(), Rejection> {
    check_change_id(&change.id)?;
    match (&change.entity, change.kind.keeps_entity()) {
        (Some(entity), true) => check_entity(regions, entity),
        (None, false) => Ok(()),
        (None, true) => Err(invalid("entity", format!("a change of kind {} carries the entity", change.kind))),
        (Some(_), false) => Err(invalid("entity", format!("a change of kind {} carries no entity", change.kind))),
    }
}

pub fn check_change_id(id: &str) -> Result<(), Rejection> {
    let ok = !id.is_empty()
        && id.chars().count() <= CHANGE_ID_CHARS_MAX
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'));
    if ok {
        Ok(())
    } else {
        Err(invalid("id", format!("1 to {CHANGE_ID_CHARS_MAX} characters of A-Z, a-z, 0-9, '.', '_', '-', ':'")))
    }
}

/// The checks of an entity's fields: the directory file's rules, so a frozen file is a
/// directory like an imported one (no field holds the file's separator, a quote or a control).
pub fn check_entity(regions: &Regions, entity: &RegisteredEntity) -> Result<(), Rejection> {
    check_entity_fields(&entity.name, &entity.industry, &entity.credit_status, &entity.address)
        .map_err(|(field, reason)| invalid(field, reason))?;
    if !regions.contains(entity.region) {
        return Err(invalid("region_code", format!("{} is not a region code in GB/T 2260", entity.region)));
    }
    Ok(())
}

/// The field rules of a directory row (`draw::directory` checks files by them too): the field
/// at fault and why.
pub fn check_entity_fields(
    name: &str,
    industry: &str,
    credit_status: &str,
    address: &str,
) -> Result<(), (&'static str, String)> {
    text("name", name, NAME_CHARS_MAX, true)?;
    text("address", address, ADDRESS_CHARS_MAX, false)?;
    label("industry", industry)?;
    label("credit_status", credit_status)
}

fn label(field: &'static str, value: &str) -> Result<(), (&'static str, String)> {
    let ok = !value.is_empty()
        && value.len() <= LABEL_CHARS_MAX
        && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err((field, format!("`{value}` must be a lower-case code (a-z, 0-9, _)")))
    }
}

fn text(field: &'static str, value: &str, chars_max: usize, required: bool) -> Result<(), (&'static str, String)> {
    if required && value.trim().is_empty() {
        return Err((field, "is empty".into()));
    }
    if value.chars().count() > chars_max {
        return Err((field, format!("has more than {chars_max} characters")));
    }
    if value.chars().any(|c| c.is_control() || c == '"' || c == ',') {
        return Err((field, "holds control characters, commas or quotes".into()));
    }
    Ok(())
}

/// A ledger core of store format 6 (written before the register) in this build's format: the
/// register is the core's last field, so a format 6 core ends where this one's register starts.
pub fn core_of_format_6(core: &[u8]) -> Vec<u8> {
    let no_register = crate::codec::encode(&Register::default()).expect("an empty register encodes");
    [core, no_register.as_slice()].concat()
}

impl crate::apply::Ledger {
    /// The register's core part (see the module).
    pub fn entity_register(&self) -> &Register {
        &self.register
    }

    /// Whether the group committed a command of the register: a change in its journal, or a
    /// directory version placed in it. Every member then reads the register's commands (a group
    /// does not go back to an older build after that).
    pub fn register_in_use(&self) -> bool {
        self.register.journal_len() > 0
            || self.programme.entity_directories().iter().any(|version| self.register.version(version.number).is_some())
    }

    /// Whether the current directory version is the live register's (imported as its base, or
    /// frozen from it): a beacon then freezes the register and draws from it.
    pub fn drawing_on_register(&self) -> bool {
        let current = self.programme.entity_directory();
        current.is_some_and(|current| self.register.version(current.number).is_some())
    }

    /// The journal's change number `seq`, as of the command being applied.
    pub fn register_entry(&self, seq: u64) -> Option<std::sync::Arc<JournalEntry>> {
        self.layers().register_entry(seq)
    }

    /// The journal's entries `from` to `to` (both included), in order, as of the command being
    /// applied.
    pub fn register_entries(&self, from: u64, to: u64) -> Vec<std::sync::Arc<JournalEntry>> {
        self.layers().register_entries(from, to)
    }

    /// The number under which the change of id `id` was recorded.
    pub fn register_change_seq(&self, id: &str) -> Option<u64> {
        self.layers().register_change(id)
    }

    /// Records a batch of changes, each on its own: recorded, a repeat of one recorded before
    /// (the same id and the same change), or refused. `scope`: the source's bureau.
    pub(crate) fn record_register_changes(
        &mut self,
        stamp_ms: u64,
        actor: &Actor,
        changes: &[RegisterChange],
    ) -> Result<Vec<ChangeOutcome>, Rejection> {
        check_feeder(actor)?;
        if changes.is_empty() || changes.len() > CHANGES_PER_COMMAND_MAX {
            return Err(invalid("changes", format!("1 to {CHANGES_PER_COMMAND_MAX} changes at once")));
        }
        let regions = self.regions();
        let mut outcomes = Vec::with_capacity(changes.len());
        for change in changes {
            if let Err(refusal) = check_change(&regions, actor.bureau, change) {
                outcomes.push(ChangeOutcome::Refused(refusal));
                continue;
            }
            // A classification shows in the entity's risk file: taken once the files are kept
            // (which every member reads by then), so none is missing from them.
            if change.kind.classification().is_some() && !self.risk_files().kept() {
                let wait = Rejection::NotYet("credit-risk classes are taken once the risk files are kept".into());
                outcomes.push(ChangeOutcome::Refused(wait));
                continue;
            }
            if let Some(seq) = self.register_change_seq(&change.id) {
                let earlier = self.register_entry(seq).expect("a recorded change id names its entry");
                outcomes.push(if earlier.change == *change {
                    ChangeOutcome::Repeat { seq }
                } else {
                    ChangeOutcome::Refused(crate::command::conflict(
                        crate::command::ConflictCode::ChangeIdReused,
                        format!("change {} was recorded as change {seq} with other content", change.id),
                    ))
                });
                continue;
            }
            let seq = self.register.next_seq();
            let entry = JournalEntry { seq, change: change.clone(), source: actor.user.clone(), recorded_ms: stamp_ms };
            self.insert_register_entry(entry);
            if let Some(class) = change.kind.classification() {
                self.note_assessed_class(&change.uscc, class, stamp_ms);
            }
            outcomes.push(ChangeOutcome::Recorded { seq });
        }
        Ok(outcomes)
    }
}
