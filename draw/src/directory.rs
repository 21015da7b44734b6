//! The inspection-target directory file (检查对象名录库): UTF-8 CSV, one market entity a line,
//!
//! ```text
//! uscc,name,region_code,industry,credit_status,address
//! 91440106MA5D0001X3,广州某某餐饮有限公司,440106,catering,normal,广州市天河区体育西路1号
//! ```
//!
//! or, with the provincial credit-risk system's class of each entity (empty where it has none),
//! the same with a last column `risk_class` (`Columns::WithRiskClass`).
//!
//! No field is quoted, so names and addresses may not hold commas or quotes (the registry's
//! exports replace them). The file is identified by the SHA-256 of its bytes: the ledger records
//! that hash, and a draw names it, so the same bytes must be kept to verify a draw later.
//! Rows are read in place (borrowed from the file) because a province's directory holds
//! millions of entities.

use ledger::campaign::register::check_entity_fields;
use ledger::campaign::RiskClass;
use ledger::{BureauCode, Regions, Uscc};
use sha2::{Digest, Sha256};

pub const HEADER: &str = "uscc,name,region_code,industry,credit_status,address";
/// The header of a directory that carries the provincial credit-risk system's class of each
/// entity (信用风险分类: `high`, `normal`, `low`, or empty where it has none): an imported file,
/// or a frozen register into which the feed's classifications were folded.
pub const HEADER_WITH_RISK_CLASS: &str = "uscc,name,region_code,industry,credit_status,address,risk_class";
/// Errors reported for one file: enough to fix a systematic mistake, bounded for a bad upload.
pub const ROW_ERRORS_REPORTED_MAX: usize = 20;
/// Field lengths, in characters (the register's: a frozen file is a directory like any).
pub use ledger::campaign::register::{ADDRESS_CHARS_MAX, NAME_CHARS_MAX};

/// One entity, borrowed from the file's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntityRow<'a> {
    pub uscc: &'a str,
    pub name: &'a str,
    pub region: BureauCode,
    pub industry: &'a str,
    pub credit_status: &'a str,
    pub address: &'a str,
    /// The credit-risk system's class, in a file that carries the column.
    pub risk_class: Option<RiskClass>,
}

/// Which header a file has: whether its rows carry the `risk_class` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Columns {
    Plain,
    WithRiskClass,
}

impl Columns {
    fn of_header(header: &str) -> Option<Columns> {
        match header {
            HEADER => Some(Columns::Plain),
            HEADER_WITH_RISK_CLASS => Some(Columns::WithRiskClass),
            _ => None,
        }
    }

    /// The columns of a file whose header was checked (at import, or when it was frozen).
    pub fn of_file(bytes: &[u8]) -> Columns {
        let header = &bytes[..body_offset(bytes)];
        let header = std::str::from_utf8(header).unwrap_or_default().trim_end_matches('\n').trim_end_matches('\r');
        Columns::of_header(header).unwrap_or(Columns::Plain)
    }

    pub fn header(self) -> &'static str {
        match self {
            Columns::Plain => HEADER,
            Columns::WithRiskClass => HEADER_WITH_RISK_CLASS,
        }
    }
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
    /// Whether its rows carry the credit-risk class (a build before classes cannot draw from it).
    pub columns: Columns,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    ledger::campaign::hex(&Sha256::digest(bytes))
}

/// The rows of a file whose header was checked, with their 1-based line numbers.
pub fn rows<'a>(
    regions: &'a Regions,
    bytes: &'a [u8],
) -> Result<impl Iterator<Item = (u64, Result<EntityRow<'a>, String>)> + 'a, RowError> {
    let text = std::str::from_utf8(bytes).map_err(|e| RowError {
        line: 1 + bytes[..e.valid_up_to()].iter().filter(|b| **b == b'\n').count() as u64,
        reason: "the file is not UTF-8".into(),
    })?;
    let mut lines = text.split('\n');
    let header = lines.next().unwrap_or_default().trim_end_matches('\r');
    let columns = Columns::of_header(header).ok_or_else(|| RowError {
        line: 1,
        reason: format!("the header must be `{HEADER}`, or `{HEADER_WITH_RISK_CLASS}` with the credit-risk classes"),
    })?;
    Ok(lines
        .enumerate()
        .map(|(i, line)| (i as u64 + 2, line.trim_end_matches('\r')))
        .filter(|(_, line)| !line.is_empty())
        .map(move |(number, line)| (number, parse_row(regions, columns, line))))
}

/// One row of a file with `columns`, its region code checked against the group's table
/// (`regions`).
pub fn parse_row<'a>(regions: &Regions, columns: Columns, line: &'a str) -> Result<EntityRow<'a>, String> {
    let expected = match columns {
        Columns::Plain => 6,
        Columns::WithRiskClass => 7,
    };
    let mut fields = line.split(',');
    let mut next = || fields.next();
    let (Some(uscc), Some(name), Some(region), Some(industry), Some(credit_status), Some(address)) =
        (next(), next(), next(), next(), next(), next())
    else {
        return Err(format!("a row has {expected} fields"));
    };
    let risk_class = match (columns, fields.next()) {
        (Columns::Plain, None) => None,
        (Columns::WithRiskClass, Some("")) => None,
        (Columns::WithRiskClass, Some(class)) => Some(
            RiskClass::parse(class)
                .ok_or_else(|| format!("risk_class `{class}` is none of {} (or empty)", RiskClass::names()))?,
        ),
        _ => return Err(format!("a row has {expected} fields (names and addresses may not hold commas)")),
    };
    if fields.next().is_some() {
        return Err(format!("a row has {expected} fields (names and addresses may not hold commas)"));
    }
    Uscc::check(uscc).map_err(|e| format!("uscc `{uscc}`: {e}"))?;
    check_entity_fields(name, industry, credit_status, address)
        .map_err(|(field, reason)| format!("{field} {reason}"))?;
    let region = regions.parse_known(region).ok_or_else(|| format!("region_code `{region}` is not in GB/T 2260"))?;
    Ok(EntityRow { uscc, name, region, industry, credit_status, address, risk_class })
}

/// Checks a whole file: every row parses, every USCC appears once. Answers its hash and size.
/// Rows are checked on every core, in slices of the file cut at line ends.
pub fn check(regions: &Regions, bytes: &[u8]) -> Result<DirectorySummary, DirectoryError> {
    check_hashed(regions, bytes, None)
}

/// `check` of a file whose SHA-256 is known already (`sha256`: hashed as it was received), so
/// a file of gigabytes is not hashed twice; `None` hashes it beside the rows' checks.
pub fn check_hashed(
    regions: &Regions,
    bytes: &[u8],
    sha256: Option<String>,
) -> Result<DirectorySummary, DirectoryError> {
    let one = |error: RowError| DirectoryError { errors: vec![error], bad_rows: 1 };
    // The header and UTF-8 of the whole file; the rows are checked in slices below.
    drop(rows(regions, bytes).map_err(one)?);
    let columns = Columns::of_file(bytes);
    let body = body_offset(bytes);
    let (hash, checked) = std::thread::scope(|scope| {
        let hash = scope.spawn(|| sha256.unwrap_or_else(|| sha256_hex(bytes)));
        let slices: Vec<_> = slices(bytes, body, workers())
            .into_iter()
            .map(|(start, end, first_line)| {
                scope.spawn(move || check_slice(regions, columns, &bytes[start..end], first_line))
            })
            .collect();
        let checked: Vec<SliceCheck> = slices.into_iter().map(|s| s.join().expect("a checking thread")).collect();
        (hash.join().expect("the hashing thread"), checked)
    });
    let mut errors = Vec::new();
    let mut bad_rows = 0;
    let mut keys = Vec::new();
    for slice in checked {
        bad_rows += slice.bad_rows;
        errors.extend(slice.errors);
        keys.extend(slice.keys);
    }
    errors.truncate(ROW_ERRORS_REPORTED_MAX);
    let entities = keys.len() as u64;
    keys.sort_unstable();
    let repeats: Vec<u128> = keys.windows(2).filter(|w| w[0] == w[1]).map(|w| w[0]).collect();
    if !repeats.is_empty() {
        bad_rows += repeats.len() as u64;
        errors.extend(
            repeated_rows(regions, bytes, &repeats)
                .into_iter()
                .take(ROW_ERRORS_REPORTED_MAX.saturating_sub(errors.len())),
        );
    }
    if bad_rows > 0 {
        return Err(DirectoryError { errors, bad_rows });
    }
    if entities == 0 {
        return Err(one(RowError { line: 2, reason: "the directory has no entities".into() }));
    }
    Ok(DirectorySummary { sha256: hash, entities, bytes: bytes.len() as u64, columns })
}

/// The lines where repeated USCCs appear again (one pass, only when there are repeats).
fn repeated_rows(regions: &Regions, bytes: &[u8], repeats: &[u128]) -> Vec<RowError> {
    let wanted: std::collections::HashSet<String> = repeats.iter().map(|k| uscc_of_key(*k)).collect();
    let mut seen = std::collections::HashSet::new();
    let mut errors = Vec::new();
    for (line, row) in rows(regions, bytes).into_iter().flatten() {
        let Ok(row) = row else { continue };
        if wanted.contains(row.uscc) && !seen.insert(row.uscc) {
            errors.push(RowError { line, reason: format!("uscc {} appears more than once", row.uscc) });
        }
    }
    errors
}

struct SliceCheck {
    errors: Vec<RowError>,
    bad_rows: u64,
    keys: Vec<u128>,
}

fn check_slice(regions: &Regions, columns: Columns, slice: &[u8], first_line: u64) -> SliceCheck {
    let mut result = SliceCheck { errors: Vec::new(), bad_rows: 0, keys: Vec::with_capacity(slice.len() / 100) };
    let text = std::str::from_utf8(slice).expect("the whole file is UTF-8 and slices end at line ends");
    for (i, line) in text.split('\n').enumerate() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        match parse_row(regions, columns, line) {
            Ok(row) => result.keys.push(uscc_key(row.uscc)),
            Err(reason) => {
                result.bad_rows += 1;
                if result.errors.len() < ROW_ERRORS_REPORTED_MAX {
                    result.errors.push(RowError { line: first_line + i as u64, reason });
                }
            }
        }
    }
    result
}

const USCC_SYMBOLS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// A checked USCC as a number (18 symbols of 31 fit in 128 bits), for sorting millions.
fn uscc_key(uscc: &str) -> u128 {
    uscc.bytes()
        .fold(0u128, |key, b| key * 31 + USCC_SYMBOLS.iter().position(|s| *s == b).expect("a checked USCC") as u128)
}

fn uscc_of_key(mut key: u128) -> String {
    let mut symbols = [b'0'; 18];
    for slot in symbols.iter_mut().rev() {
        *slot = USCC_SYMBOLS[(key % 31) as usize];
        key /= 31;
    }
    String::from_utf8_lossy(&symbols).into_owned()
}

/// Threads for checking and drawing: the machine's cores, at most 8.
pub fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(8)
}

/// Where the rows start (after the header line).
pub fn body_offset(bytes: &[u8]) -> usize {
    bytes.iter().position(|b| *b == b'\n').map_or(bytes.len(), |i| i + 1)
}

/// Cuts `bytes[body..]` into up to `count` slices ending at line ends: (start, end, line
/// number of the first row).
pub fn slices(bytes: &[u8], body: usize, count: usize) -> Vec<(usize, usize, u64)> {
    let mut cuts = vec![body];
    let length = bytes.len() - body;
    for k in 1..count {
        let guess = (body + length * k / count).max(*cuts.last().expect("one cut"));
        let cut = bytes[guess..].iter().position(|b| *b == b'\n').map_or(bytes.len(), |i| guess + i + 1);
        cuts.push(cut);
    }
    cuts.push(bytes.len());
    cuts.dedup();
    let mut line = 2;
    cuts.windows(2)
        .map(|w| {
            let slice = (w[0], w[1], line);
            line += bytes[w[0]..w[1]].iter().filter(|b| **b == b'\n').count() as u64;
            slice
        })
        .collect()
}

/// The fields of a row of a file whose hash is pinned (so it was checked at import): split
/// only, without checking again. A seventh field is the credit-risk class (`Columns`).
pub fn fields(line: &str) -> Option<EntityRow<'_>> {
    let mut fields = line.split(',');
    let uscc = fields.next()?;
    let name = fields.next()?;
    let region = BureauCode::parse_digits(fields.next()?)?;
    let industry = fields.next()?;
    let credit_status = fields.next()?;
    let address = fields.next()?;
    let risk_class = match fields.next() {
        None | Some("") => None,
        Some(class) => Some(RiskClass::parse(class)?),
    };
    Some(EntityRow { uscc, name, region, industry, credit_status, address, risk_class })
}

/// Whether `region` lies within `scope`, cached: a directory has millions of rows over a few
/// thousand regions.
pub struct ScopeCache<'a> {
    regions: &'a Regions,
    scope: BureauCode,
    known: std::collections::HashMap<BureauCode, bool>,
}

impl<'a> ScopeCache<'a> {
    pub fn new(regions: &'a Regions, scope: BureauCode) -> ScopeCache<'a> {
        ScopeCache { regions, scope, known: std::collections::HashMap::new() }
    }

    pub fn contains(&mut self, region: BureauCode) -> bool {
        let (regions, scope) = (self.regions, self.scope);
        *self.known.entry(region).or_insert_with(|| regions.is_within(region, scope))
    }
}

/// Entities per region code of a file whose hash is pinned (checked at import): the register's
/// size by region, for the share of it inspected (随机抽查数量比例). Rows that do not split are
/// not counted (an imported file has none).
pub fn entities_by_region(bytes: &[u8]) -> std::collections::BTreeMap<BureauCode, u64> {
    let mut counts = std::collections::BTreeMap::new();
    let body = &bytes[body_offset(bytes)..];
    for line in body.split(|b| *b == b'\n') {
        let Ok(line) = std::str::from_utf8(line) else { continue };
        if let Some(row) = fields(line.trim_end_matches('\r')) {
            *counts.entry(row.region).or_insert(0u64) += 1;
        }
    }
    counts
}
