//! The backup file: a group's whole ledger at one applied log index, with what is needed to
//! check it and to build a new group from it (`xietong admin backup` / `restore`).
//!
//! Layout: `MAGIC`, `[header length u32 LE][header JSON]`, `[ledger length u64 LE][bincode
//! ledger]`, `[crc32 of everything before u32 LE]`. The header is JSON so that an operator can
//! read what a file holds with `head -c 400`; the ledger uses the snapshot encoding.

use std::io;

use serde::{Deserialize, Serialize};

use ledger::Ledger;

const MAGIC: &[u8; 16] = b"XIETONG-BACKUP1\n";
/// A header is a few hundred bytes; anything larger is not a backup file.
const HEADER_BYTES_MAX: u32 = 64 * 1024;

/// What a backup holds, checked on restore.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupHeader {
    /// The bureau code of the group the ledger belongs to.
    pub group: String,
    /// The ledger reflects the log up to and including this index (every write acknowledged
    /// before the backup was asked for is at or below it).
    pub applied_index: u64,
    pub applied_term: u64,
    /// `Ledger::digest` of the ledger in the file.
    pub digest: String,
    pub task_count: usize,
    /// Wall-clock time the backup was taken, milliseconds since the Unix epoch.
    pub taken_at_ms: u64,
}

pub struct Backup {
    pub header: BackupHeader,
    /// The bincode-encoded ledger, as in a snapshot file.
    pub ledger_bytes: Vec<u8>,
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

impl Backup {
    /// Takes the ledger as it is; the header's digest and count are computed here, so they
    /// always match the bytes.
    pub fn of(ledger: &Ledger, group: String, applied_index: u64, applied_term: u64, taken_at_ms: u64) -> Backup {
        let ledger_bytes = bincode::serialize(ledger).expect("the ledger always serializes");
        let header = BackupHeader {
            group,
            applied_index,
            applied_term,
            digest: ledger.digest(),
            task_count: ledger.task_count(),
            taken_at_ms,
        };
        Backup { header, ledger_bytes }
    }

    pub fn encode(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&self.header).expect("the header always serializes");
        let mut bytes = Vec::with_capacity(MAGIC.len() + 4 + header.len() + 8 + self.ledger_bytes.len() + 4);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(&(self.ledger_bytes.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&self.ledger_bytes);
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// Reads a backup and checks it whole: framing, checksum, that the ledger decodes and keeps
    /// its invariants, and that its digest is the one the header promises.
    pub fn decode(bytes: &[u8]) -> io::Result<(Backup, Ledger)> {
        let body_len = bytes.len().checked_sub(4).ok_or_else(|| invalid("too short to be a backup"))?;
        let (body, crc) = bytes.split_at(body_len);
        let body = body.strip_prefix(MAGIC.as_slice()).ok_or_else(|| invalid("not a xietong backup file"))?;
        if crc32fast::hash(&bytes[..body_len]).to_le_bytes() != crc {
            return Err(invalid("the backup fails its checksum (damaged or cut short)"));
        }
        let (header_len, rest) = split_u32(body)?;
        if header_len > HEADER_BYTES_MAX || rest.len() < header_len as usize {
            return Err(invalid("the backup header is malformed"));
        }
        let (header, rest) = rest.split_at(header_len as usize);
        let header: BackupHeader =
            serde_json::from_slice(header).map_err(|e| invalid(format!("the backup header: {e}")))?;
        let (ledger_len, ledger_bytes) = split_u64(rest)?;
        if ledger_bytes.len() as u64 != ledger_len {
            return Err(invalid("the backup's ledger length does not match the file"));
        }
        let ledger: Ledger =
            bincode::deserialize(ledger_bytes).map_err(|e| invalid(format!("the backup's ledger: {e}")))?;
        ledger.check_invariants().map_err(|violation| invalid(format!("the backup's ledger: {violation}")))?;
        if ledger.digest() != header.digest {
            return Err(invalid("the backup's ledger does not have the digest its header records"));
        }
        Ok((Backup { header, ledger_bytes: ledger_bytes.to_vec() }, ledger))
    }
}

fn split_u32(bytes: &[u8]) -> io::Result<(u32, &[u8])> {
    let (number, rest) = bytes.split_first_chunk::<4>().ok_or_else(|| invalid("the backup is cut short"))?;
    Ok((u32::from_le_bytes(*number), rest))
}

fn split_u64(bytes: &[u8]) -> io::Result<(u64, &[u8])> {
    let (number, rest) = bytes.split_first_chunk::<8>().ok_or_else(|| invalid("the backup is cut short"))?;
    Ok((u64::from_le_bytes(*number), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Backup {
        Backup::of(&Ledger::new(), "440100".into(), 42, 3, 1_700_000_000_000)
    }

    #[test]
    fn a_backup_reads_back_as_written() {
        let written = sample();
        let (read, ledger) = Backup::decode(&written.encode()).expect("decode");
        assert_eq!(read.header, written.header);
        assert_eq!(ledger.digest(), written.header.digest);
    }

    #[test]
    fn any_damage_is_refused() {
        let bytes = sample().encode();
        for position in [0, 20, bytes.len() / 2, bytes.len() - 1] {
            let mut damaged = bytes.clone();
            damaged[position] ^= 0x01;
            assert!(Backup::decode(&damaged).is_err(), "a flipped bit at {position} is noticed");
        }
        assert!(Backup::decode(&bytes[..bytes.len() - 10]).is_err(), "a cut file is noticed");
        assert!(Backup::decode(b"").is_err());
    }
}
