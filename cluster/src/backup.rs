//! The backup file: a group's store at one checkpoint, with what is needed to check it and to
//! build a new group from it (`xietong admin backup` / `restore`).
//!
//! Layout: `MAGIC`, `[header length u32 LE][header JSON][crc32 of the header u32 LE]`, then the
//! store stream
//! (`store::stream`: every record under its own checksum, an end that counts them, and a core
//! whose digest the records must add up to). The header is JSON so that an operator can read
//! what a file holds with `head -c 400`. It is written and read as a stream: a backup of a
//! province's ledger never sits in memory whole.

use std::io::{self, Read, Write};

use redb::ReadTransaction;
use serde::{Deserialize, Serialize};

use ledger::Ledger;

use crate::store::stream::{verify_stream, write_stream, StreamCore};
use crate::store::{read_checkpoint, CheckpointMeta};

/// 11: the stream of format 11 (the core with the province plans handed down and their
/// progress reports) follows the header.
const MAGIC: &[u8; 16] = b"XIETONG-BACKUP11";
/// 10, 9, 8, 7, 6, 5, 4 (0.4.0) and 3 (0.3.0): read still, their stream's core converted as it
/// is read; the header's digest is the core's as written.
const MAGICS_READ: [&[u8; 16]; 9] = [
    MAGIC,
    b"XIETONG-BACKUP10",
    b"XIETONG-BACKUP9\n",
    b"XIETONG-BACKUP8\n",
    b"XIETONG-BACKUP7\n",
    b"XIETONG-BACKUP6\n",
    b"XIETONG-BACKUP5\n",
    b"XIETONG-BACKUP4\n",
    b"XIETONG-BACKUP3\n",
];
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
    pub task_count: u64,
    /// Wall-clock time the backup was taken, milliseconds since the Unix epoch.
    pub taken_at_ms: u64,
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// The header of a backup of the checkpoint `view` shows; its digest and count are the core's,
/// so they always match the records.
pub fn header_of(view: &ReadTransaction, group: String, taken_at_ms: u64) -> io::Result<BackupHeader> {
    let (meta, core) = read_checkpoint(view)?.ok_or_else(|| invalid("the store has no checkpoint to back up"))?;
    let applied = meta.applied.ok_or_else(|| invalid("the store's checkpoint has applied nothing"))?;
    let ledger = core_ledger(&core)?;
    Ok(BackupHeader {
        group,
        applied_index: applied.index,
        applied_term: applied.leader_id.term,
        digest: ledger.digest(),
        task_count: ledger.task_count(),
        taken_at_ms,
    })
}

/// The ledger of a core alone (its programme, digest and counts; no records).
pub fn core_ledger(core: &[u8]) -> io::Result<Ledger> {
    Ledger::from_core(core, std::sync::Arc::new(ledger::MemoryRecords::default()))
        .map_err(|e| invalid(format!("the ledger's core: {e}")))
}

/// Writes a backup of the checkpoint `view` shows.
pub fn write_backup(header: &BackupHeader, view: &ReadTransaction, out: &mut impl Write) -> io::Result<()> {
    let encoded = serde_json::to_vec(header).map_err(io::Error::other)?;
    out.write_all(MAGIC)?;
    out.write_all(&(encoded.len() as u32).to_le_bytes())?;
    out.write_all(&encoded)?;
    out.write_all(&crc32fast::hash(&encoded).to_le_bytes())?;
    let (meta, _) = write_stream(view, out)?;
    if meta.applied.map(|log_id| log_id.index) != Some(header.applied_index) {
        return Err(io::Error::other("the store moved under the backup"));
    }
    Ok(())
}

/// Reads a backup's header; the stream follows in `input`.
pub fn read_header(input: &mut impl Read) -> io::Result<BackupHeader> {
    let mut magic = [0u8; 16];
    input.read_exact(&mut magic).map_err(|_| invalid("too short to be a backup"))?;
    if !MAGICS_READ.contains(&&magic) {
        return Err(invalid("not a xietong backup file of this format (XIETONG-BACKUP7, or 6, 5, 4 or 3 before it)"));
    }
    let mut length = [0u8; 4];
    input.read_exact(&mut length).map_err(|_| invalid("the backup is cut short"))?;
    let length = u32::from_le_bytes(length);
    if length > HEADER_BYTES_MAX {
        return Err(invalid("the backup header is malformed"));
    }
    let mut header = vec![0u8; length as usize];
    input.read_exact(&mut header).map_err(|_| invalid("the backup is cut short"))?;
    let mut crc = [0u8; 4];
    input.read_exact(&mut crc).map_err(|_| invalid("the backup is cut short"))?;
    if crc32fast::hash(&header).to_le_bytes() != crc {
        return Err(invalid("the backup header fails its checksum"));
    }
    serde_json::from_slice(&header).map_err(|e| invalid(format!("the backup header: {e}")))
}

/// A backup checked whole.
pub struct VerifiedBackup {
    pub header: BackupHeader,
    /// Where the checkpoint stands.
    pub meta: CheckpointMeta,
    pub core: Vec<u8>,
    /// The files its on-site records name, kept beside the backup.
    pub attachments: std::collections::BTreeSet<String>,
}

/// Checks a whole backup without building a store (`stream::verify_stream`) and that it is the
/// backup its header says.
pub fn verify(input: &mut impl Read) -> io::Result<VerifiedBackup> {
    let header = read_header(input)?;
    let StreamCore { meta, core, digest_as_read, attachments } = verify_stream(input)?;
    let mut rest = [0u8; 1];
    if input.read(&mut rest)? != 0 {
        return Err(invalid("the backup goes on after its end"));
    }
    if digest_as_read != header.digest || meta.applied.map(|log_id| log_id.index) != Some(header.applied_index) {
        return Err(invalid("the backup's ledger is not the one its header records"));
    }
    Ok(VerifiedBackup { header, meta, core, attachments })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn sample(dir: &std::path::Path) -> Vec<u8> {
        let store = Store::open(&dir.join("store.redb")).expect("store");
        let applied = openraft::LogId::new(openraft::CommittedLeaderId::new(3, 1), 42);
        let meta = CheckpointMeta { applied: Some(applied), membership: Default::default() };
        let ledger = Ledger::new();
        store
            .write_checkpoint(&ledger::Changes::default(), &ledger.encode_core(), &meta, &ledger.regions())
            .expect("checkpoint");
        let view = store.view().expect("view");
        let header = header_of(&view, "440100".into(), 1_700_000_000_000).expect("header");
        let mut bytes = Vec::new();
        write_backup(&header, &view, &mut bytes).expect("write");
        bytes
    }

    #[test]
    fn a_backup_reads_back_as_written() {
        let dir = tempfile::tempdir().expect("dir");
        let bytes = sample(dir.path());
        let VerifiedBackup { header, meta, core, .. } = verify(&mut bytes.as_slice()).expect("verify");
        assert_eq!((header.group.as_str(), header.applied_index, header.applied_term), ("440100", 42, 3));
        assert_eq!(meta.applied.map(|log_id| log_id.index), Some(42));
        assert_eq!(core_ledger(&core).expect("core").digest(), header.digest);
    }

    #[test]
    fn any_damage_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let bytes = sample(dir.path());
        for position in [0, 20, bytes.len() / 2, bytes.len() - 1] {
            let mut damaged = bytes.clone();
            damaged[position] ^= 0x01;
            assert!(verify(&mut damaged.as_slice()).is_err(), "a flipped bit at {position} is noticed");
        }
        assert!(verify(&mut &bytes[..bytes.len() - 10]).is_err(), "a cut file is noticed");
        assert!(verify(&mut &b""[..]).is_err());
    }
}
