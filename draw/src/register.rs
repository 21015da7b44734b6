//! Freezing the live register (`ledger::campaign::register`): the changes of the journal folded
//! into a directory file, making the next directory file. A pure function of the base file's
//! bytes and the changes in journal order, so anyone holding both makes the same bytes (and the
//! same SHA-256) as the node that froze it.
//!
//! The rows of the base keep their order: a row whose entity a change touched is written as
//! the last change left it (or left out, once revoked or deregistered); entities the base does
//! not hold follow at the end, in the order of their first change. A change about an entity
//! the base does not hold and that ends outside the register (an amend then a revocation)
//! leaves no row.

use std::collections::HashMap;
use std::io::{self, Write};

use ledger::campaign::register::{check_entity_fields, RegisterChange, RegisteredEntity};
use sha2::{Digest, Sha256};

use crate::directory::{body_offset, fields, DirectorySummary, HEADER};

/// Writes the file that `base` becomes with `changes` (in journal order) folded in; answers its
/// identity. `base` is a directory file whose hash the ledger pins (checked when imported).
pub fn freeze<'a>(
    base: &[u8],
    changes: impl IntoIterator<Item = &'a RegisterChange>,
    out: &mut impl Write,
) -> io::Result<DirectorySummary> {
    // The state each touched entity ends in, and the order they were first touched.
    let mut last: HashMap<&str, Option<&RegisteredEntity>> = HashMap::new();
    let mut first_touched: Vec<&str> = Vec::new();
    for change in changes {
        let uscc = change.uscc.as_str();
        let state = if change.kind.keeps_entity() { change.entity.as_ref() } else { None };
        if last.insert(uscc, state).is_none() {
            first_touched.push(uscc);
        }
    }
    let mut file = HashingWriter::new(out);
    file.write_all(HEADER.as_bytes())?;
    file.write_all(b"\n")?;
    let mut entities = 0u64;
    let mut placed: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for line in base[body_offset(base)..].split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let text = std::str::from_utf8(line).map_err(|_| damaged("a row of the base file is not UTF-8"))?;
        let row = fields(text).ok_or_else(|| damaged("a row of the base file does not split into its fields"))?;
        match last.get(row.uscc) {
            None => {
                file.write_all(line)?;
                file.write_all(b"\n")?;
                entities += 1;
            }
            Some(state) => {
                placed.insert(row.uscc);
                if let Some(entity) = state {
                    write_row(&mut file, row.uscc, entity)?;
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
            write_row(&mut file, uscc, entity)?;
            entities += 1;
        }
    }
    file.flush()?;
    let (sha256, bytes) = file.finish();
    Ok(DirectorySummary { sha256, entities, bytes })
}

fn write_row(out: &mut impl Write, uscc: &str, entity: &RegisteredEntity) -> io::Result<()> {
    // The ledger checked every field by the directory's rules (no separator, quote or line
    // end), and so did the loader of any journal from outside; checked again here, because a
    // row that split otherwise would change every proof drawn from the file.
    check_entity_fields(&entity.name, &entity.industry, &entity.credit_status, &entity.address)
        .map_err(|(field, reason)| damaged(&format!("a change's {field} {reason}")))?;
    writeln!(
        out,
        "{uscc},{},{},{},{},{}",
        entity.name, entity.region, entity.industry, entity.credit_status, entity.address
    )
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
