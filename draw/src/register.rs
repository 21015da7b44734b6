//! Freezing the live register (`ledger::campaign::register`): the changes of the journal folded
//! into a directory file, making the next directory file. A pure function of the base file's
//! bytes and the changes in journal order, so anyone holding both makes the same bytes (and the
//! same SHA-256) as the node that froze it.
//!
//! The rows of the base keep their order: a row whose entity a change touched is written as
//! the last change left it (or left out, once revoked or deregistered); entities the base does
//! not hold follow at the end, in the order of their first change. A change about an entity
//! the base does not hold and that ends outside the register (an amend then a revocation)
//! leaves no row. A classification (`ChangeKind::ClassifyHigh` …) sets the row's
//! `risk_class` and is otherwise no change: one about an entity the file does not hold leaves
//! no row.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};

use ledger::campaign::register::{check_entity_fields, RegisterChange, RegisteredEntity};
use ledger::campaign::RiskClass;
use ledger::BureauCode;
use sha2::{Digest, Sha256};

use crate::directory::{body_offset, fields, Columns, DirectorySummary};

/// Writes the file that `base` becomes with `changes` (in journal order) folded in; answers its
/// identity. `base` is a directory file whose hash the ledger pins (checked when imported).
///
/// Registrations decide which entities are in it and their fields; classifications (the
/// credit-risk system's) their `risk_class`, which an amendment keeps. The file carries the
/// `risk_class` column when its base did or a classification was folded in, so a register that
/// never had classes freezes to the same bytes as before classes existed.
pub fn freeze<'a>(
    base: &[u8],
    changes: impl IntoIterator<Item = &'a RegisterChange>,
    out: &mut impl Write,
) -> io::Result<DirectorySummary> {
    // The state each registration left an entity in, the order they were first registered,
    // and the class each classification left.
    let mut last: HashMap<&str, Option<&RegisteredEntity>> = HashMap::new();
    let mut first_touched: Vec<&str> = Vec::new();
    let mut classes: HashMap<&str, Option<RiskClass>> = HashMap::new();
    for change in changes {
        let uscc = change.uscc.as_str();
        if let Some(class) = change.kind.classification() {
            classes.insert(uscc, class);
            continue;
        }
        let state = if change.kind.keeps_entity() { change.entity.as_ref() } else { None };
        if last.insert(uscc, state).is_none() {
            first_touched.push(uscc);
        }
    }
    let base_columns = Columns::of_file(base);
    let columns = if classes.is_empty() { base_columns } else { Columns::WithRiskClass };
    let mut file = HashingWriter::new(out);
    file.write_all(columns.header().as_bytes())?;
    file.write_all(b"\n")?;
    let mut entities = 0u64;
    let mut placed: HashSet<&str> = HashSet::new();
    for line in base[body_offset(base)..].split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let text = std::str::from_utf8(line).map_err(|_| damaged("a row of the base file is not UTF-8"))?;
        let row = fields(text).ok_or_else(|| damaged("a row of the base file does not split into its fields"))?;
        let class = classes.get(row.uscc).copied().unwrap_or(row.risk_class);
        match last.get(row.uscc) {
            None if columns == base_columns && !classes.contains_key(row.uscc) => {
                file.write_all(line)?;
                file.write_all(b"\n")?;
                entities += 1;
            }
            None => {
                let fields = Fields {
                    name: row.name,
                    region: row.region,
                    industry: row.industry,
                    credit_status: row.credit_status,
                    address: row.address,
                };
                write_row(&mut file, columns, row.uscc, &fields, class)?;
                entities += 1;
            }
            Some(state) => {
                placed.insert(row.uscc);
                if let Some(entity) = state {
                    write_row(&mut file, columns, row.uscc, &Fields::of(entity), class)?;
                    entities += 1;
                }
            }
        }
    }
    for uscc in first_touched {
        if placed.contains(uscc) {
            continue;
        }
        if let Some(Some(entity)) = last.get(uscc) {
            let class = classes.get(uscc).copied().flatten();
            write_row(&mut file, columns, uscc, &Fields::of(entity), class)?;
            entities += 1;
        }
    }
    file.flush()?;
    let (sha256, bytes) = file.finish();
    Ok(DirectorySummary { sha256, entities, bytes, columns })
}

/// A row's fields besides its USCC and class, from the base file or from a change.
struct Fields<'f> {
    name: &'f str,
    region: BureauCode,
    industry: &'f str,
    credit_status: &'f str,
    address: &'f str,
}

impl<'f> Fields<'f> {
    fn of(entity: &'f RegisteredEntity) -> Fields<'f> {
        Fields {
            name: &entity.name,
            region: entity.region,
            industry: &entity.industry,
            credit_status: &entity.credit_status,
            address: &entity.address,
        }
    }
}

fn write_row(
    out: &mut impl Write,
    columns: Columns,
    uscc: &str,
    row: &Fields<'_>,
    class: Option<RiskClass>,
) -> io::Result<()> {
    // The ledger checked every field by the directory's rules (no separator, quote or line
    // end), and so did the loader of any journal from outside; checked again here, because a
    // row that split otherwise would change every proof drawn from the file.
    check_entity_fields(row.name, row.industry, row.credit_status, row.address)
        .map_err(|(field, reason)| damaged(&format!("a change's {field} {reason}")))?;
    write!(out, "{uscc},{},{},{},{},{}", row.name, row.region, row.industry, row.credit_status, row.address)?;
    match columns {
        Columns::Plain => writeln!(out),
        Columns::WithRiskClass => writeln!(out, ",{}", class.map_or("", RiskClass::as_str)),
    }
}

fn damaged(reason: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("the register cannot be frozen: {reason}"))
}

/// Counts and hashes what passes through it.
struct HashingWriter<'w, W: Write> {
    out: &'w mut W,
    hasher: Sha256,
    bytes: u64,
}

impl<'w, W: Write> HashingWriter<'w, W> {
    fn new(out: &'w mut W) -> HashingWriter<'w, W> {
        HashingWriter { out, hasher: Sha256::new(), bytes: 0 }
    }

    fn finish(self) -> (String, u64) {
        (ledger::campaign::hex(&self.hasher.finalize()), self.bytes)
    }
}

impl<W: Write> Write for HashingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.out.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
