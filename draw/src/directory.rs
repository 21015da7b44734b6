//! The inspection-target directory file (检查对象名录库): UTF-8 CSV, one market entity a line,
//!
//! ```text
//! uscc,name,region_code,industry,credit_status,address
//! 91440106MA5D0001X3,广州某某餐饮有限公司,440106,catering,normal,广州市天河区体育西路1号
//! ```
//!
//! No field is quoted, so names and addresses may not hold commas or quotes (the registry's
//! exports replace them). The file is identified by the SHA-256 of its bytes: the ledger records
//! that hash, and a draw names it, so the same bytes must be kept to verify a draw later.
//! Rows are read in place (borrowed from the file) because a province's directory holds
//! millions of entities.

use cluster::ledger::{BureauCode, Regions, Uscc};
use sha2::{Digest, Sha256};

pub const HEADER: &str = "uscc,name,region_code,industry,credit_status,address";
/// Errors reported for one file: enough to fix a systematic mistake, bounded for a bad upload.
pub const ROW_ERRORS_REPORTED_MAX: usize = 20;
/// Field lengths, in characters.
pub const NAME_CHARS_MAX: usize = 200;
pub const ADDRESS_CHARS_MAX: usize = 300;
pub const LABEL_CHARS_MAX: usize = cluster::ledger::campaign::LABEL_CHARS_MAX;

/// One entity, borrowed from the file's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntityRow<'a> {
    pub uscc: &'a str,
    pub name: &'a str,
    pub region: BureauCode,
    pub industry: &'a str,
    pub credit_status: &'a str,
    pub address: &'a str,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct RowError {
    /// 1-based, the header being line 1.
    pub line: u64,
    pub reason: String,
}

/// Why a file is not a directory: the first errors, and how many rows were bad in all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{bad_rows} bad rows; first: {}", first_error(.errors))]
pub struct DirectoryError {
    pub errors: Vec<RowError>,
    pub bad_rows: u64,
}

fn first_error(errors: &[RowError]) -> String {
    errors.first().map_or_else(String::new, ToString::to_string)
}

/// What an accepted file is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectorySummary {
    pub sha256: String,
    pub entities: u64,
    pub bytes: u64,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    cluster::ledger::campaign::hex(&Sha256::digest(bytes))
}

/// The rows of a file whose header was checked, with their 1-based line numbers.
pub fn rows(bytes: &[u8]) -> Result<impl Iterator<Item = (u64, Result<EntityRow<'_>, String>)>, RowError> {
    let text = std::str::from_utf8(bytes).map_err(|e| RowError {
        line: 1 + bytes[..e.valid_up_to()].iter().filter(|b| **b == b'\n').count() as u64,
        reason: "the file is not UTF-8".into(),
    })?;
    let mut lines = text.split('\n');
    let header = lines.next().unwrap_or_default().trim_end_matches('\r');
    if header != HEADER {
        return Err(RowError { line: 1, reason: format!("the header must be `{HEADER}`") });
    }
    Ok(lines
        .enumerate()
        .map(|(i, line)| (i as u64 + 2, line.trim_end_matches('\r')))
        .filter(|(_, line)| !line.is_empty())
        .map(|(number, line)| (number, parse_row(line))))
}

fn label(field: &str, value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= LABEL_CHARS_MAX
        && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!("{field} `{value}` must be a lower-case code (a-z, 0-9, _)"))
    }
}

fn text(field: &str, value: &str, chars_max: usize, required: bool) -> Result<(), String> {
    if required && value.trim().is_empty() {
        return Err(format!("{field} is empty"));
    }
    if value.chars().count() > chars_max {
        return Err(format!("{field} has more than {chars_max} characters"));
    }
    if value.chars().any(|c| c.is_control() || c == '"') {
        return Err(format!("{field} holds control characters or quotes"));
    }
    Ok(())
}

pub fn parse_row(line: &str) -> Result<EntityRow<'_>, String> {
    let mut fields = line.split(',');
    let mut next = || fields.next();
    let (Some(uscc), Some(name), Some(region), Some(industry), Some(credit_status), Some(address)) =
        (next(), next(), next(), next(), next(), next())
    else {
        return Err("a row has 6 fields".into());
    };
    if fields.next().is_some() {
        return Err("a row has 6 fields (names and addresses may not hold commas)".into());
    }
    Uscc::parse(uscc).map_err(|e| format!("uscc `{uscc}`: {e}"))?;
    text("name", name, NAME_CHARS_MAX, true)?;
    text("address", address, ADDRESS_CHARS_MAX, false)?;
    let region = BureauCode::parse_known(region).ok_or_else(|| format!("region_code `{region}` is not in GB/T 2260"))?;
    label("industry", industry)?;
    label("credit_status", credit_status)?;
    Ok(EntityRow { uscc, name, region, industry, credit_status, address })
}

/// Checks a whole file: every row parses, every USCC appears once, and the region of every
/// entity is a county-level or deeper code it can be inspected by. Answers its hash and size.
pub fn check(bytes: &[u8]) -> Result<DirectorySummary, DirectoryError> {
    let one = |error: RowError| DirectoryError { errors: vec![error], bad_rows: 1 };
    let mut errors = Vec::new();
    let mut bad_rows = 0;
    let mut entities = 0u64;
    let mut seen = std::collections::HashSet::new();
    for (line, row) in rows(bytes).map_err(one)? {
        let row = row.and_then(|row| {
            if seen.insert(row.uscc) {
                Ok(row)
            } else {
                Err(format!("uscc {} appears twice", row.uscc))
            }
        });
        match row {
            Ok(_) => entities += 1,
            Err(reason) => {
                bad_rows += 1;
                if errors.len() < ROW_ERRORS_REPORTED_MAX {
                    errors.push(RowError { line, reason });
                }
            }
        }
    }
    if bad_rows > 0 {
        return Err(DirectoryError { errors, bad_rows });
    }
    if entities == 0 {
        return Err(one(RowError { line: 2, reason: "the directory has no entities".into() }));
    }
    Ok(DirectorySummary { sha256: sha256_hex(bytes), entities, bytes: bytes.len() as u64 })
}

/// Whether `region` lies within `scope`, cached: a directory has millions of rows over a few
/// thousand regions.
pub struct ScopeCache {
    scope: BureauCode,
    known: std::collections::HashMap<BureauCode, bool>,
}

impl ScopeCache {
    pub fn new(scope: BureauCode) -> ScopeCache {
        ScopeCache { scope, known: std::collections::HashMap::new() }
    }

    pub fn contains(&mut self, region: BureauCode) -> bool {
        let scope = self.scope;
        *self.known.entry(region).or_insert_with(|| Regions::get().is_within(region, scope))
    }
}
