//! The write-ahead log under the Raft log store: segment files of CRC-framed records, written
//! and fsynced by one IO thread.
//!
//! A segment starts with its header, `SEGMENT_MAGIC` and the format version (u32 LE); a build
//! refuses a segment of another format, naming both, before it reads a record.
//! Record frame: `[payload length u32 LE][crc32 of payload u32 LE][payload]`, the payload in
//! the one binary encoding (`ledger::codec`).
//! Records are appended in the order RaftCore issued the operations, so whatever survives a
//! crash is a prefix; recovery cuts a torn tail of the newest segment at the first short or
//! bad record. A bad record in an older segment is corruption and stops the node.
//!
//! Every segment starts with a `Checkpoint` of the vote, commit and purge point, so a segment
//! whose entries are all purged can be deleted without losing them.
//!
//! Durability: `append` callbacks and `save_vote` answers are given only after `fdatasync`
//! returned. Jobs that arrive together share one fdatasync (group commit in storage).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;

use serde::{Deserialize, Serialize};

use super::{Entry, LogId, Vote};

/// A segment is closed and a new one started past this size. Deleting whole segments is how
/// purged log space is given back, so smaller segments return space sooner.
const SEGMENT_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Jobs queued for the IO thread. RaftCore issues one log operation at a time, so a handful is
/// plenty; the bound makes a stuck disk push back instead of growing memory.
const IO_QUEUE_DEPTH: usize = 64;
/// A single record larger than this is refused on write and treated as corruption on read.
const RECORD_BYTES_MAX: u32 = 256 * 1024 * 1024;
const FRAME_HEADER_BYTES: usize = 8;
/// What every segment starts with, before its format version.
const SEGMENT_MAGIC: &[u8; 12] = b"XIETONG-WAL\0";
/// The format of the segments this build writes and reads: 2 since records are postcard
/// (`ledger::codec`); format 1 segments (bincode, before 0.3.0) had no header.
pub const WAL_FORMAT: u32 = 2;
const SEGMENT_HEADER_BYTES: usize = SEGMENT_MAGIC.len() + 4;

fn segment_header() -> [u8; SEGMENT_HEADER_BYTES] {
    let mut header = [0u8; SEGMENT_HEADER_BYTES];
    header[..SEGMENT_MAGIC.len()].copy_from_slice(SEGMENT_MAGIC);
    header[SEGMENT_MAGIC.len()..].copy_from_slice(&WAL_FORMAT.to_le_bytes());
    header
}

#[derive(Serialize, Deserialize)]
pub enum Record {
    Checkpoint {
        vote: Option<Vote>,
        committed: Option<LogId>,
        purged: Option<LogId>,
    },
    Vote(Vote),
    Committed(Option<LogId>),
    Entries(Vec<Entry>),
    /// Entries from this index on are removed.
    Truncate {
        since: u64,
    },
    /// Entries up to and including this log id are removed.
    Purge(LogId),
}

/// What recovery rebuilt from the segments.
#[derive(Default)]
pub struct Recovered {
    pub vote: Option<Vote>,
    pub committed: Option<LogId>,
    pub purged: Option<LogId>,
    pub entries: BTreeMap<u64, Entry>,
}

/// Who to tell when a job is durable (or failed).
pub enum Done {
    Nothing,
    Flushed(openraft::storage::LogFlushed<super::TypeConfig>),
    Reply(tokio::sync::oneshot::Sender<io::Result<()>>),
}

struct Job {
    frame: Vec<u8>,
    /// Largest entry index in the record, for deciding when a segment may be deleted.
    max_entry_index: Option<u64>,
    meta: Option<MetaChange>,
    sync: bool,
    done: Done,
}

enum MetaChange {
    Vote(Vote),
    Committed(Option<LogId>),
    Purged(LogId),
}

/// Handle to the IO thread; cloned by the log store and its readers.
#[derive(Clone)]
pub struct WalWriter {
    jobs: mpsc::SyncSender<Job>,
}

pub fn encode(record: &Record) -> io::Result<Vec<u8>> {
    let payload = ledger::codec::encode(record).map_err(io::Error::other)?;
    let length = u32::try_from(payload.len())
        .ok()
        .filter(|len| *len <= RECORD_BYTES_MAX)
        .ok_or_else(|| io::Error::other("WAL record too large"))?;
    let mut frame = Vec::with_capacity(FRAME_HEADER_BYTES + payload.len());
    frame.extend_from_slice(&length.to_le_bytes());
    frame.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    frame.extend_from_slice(&payload);
    Ok(frame)
}

impl WalWriter {
    /// Queues an already-encoded record. `sync` asks for fdatasync before `done` is told.
    pub fn submit_entries(&self, frame: Vec<u8>, max_entry_index: u64, done: Done) -> io::Result<()> {
        self.send(Job { frame, max_entry_index: Some(max_entry_index), meta: None, sync: true, done })
    }

    pub fn submit_vote(&self, vote: Vote, done: Done) -> io::Result<()> {
        let frame = encode(&Record::Vote(vote))?;
        self.send(Job { frame, max_entry_index: None, meta: Some(MetaChange::Vote(vote)), sync: true, done })
    }

    /// Commit points need no sync of their own: losing one only means re-applying from the
    /// previous one, and the next synced write covers it anyway.
    pub fn submit_committed(&self, committed: Option<LogId>) -> io::Result<()> {
        let frame = encode(&Record::Committed(committed))?;
        let meta = Some(MetaChange::Committed(committed));
        self.send(Job { frame, max_entry_index: None, meta, sync: false, done: Done::Nothing })
    }

    /// Truncation removes only uncommitted entries; if the record is lost in a crash, so is
    /// everything written after it, and the leader truncates again.
    pub fn submit_truncate(&self, since: u64) -> io::Result<()> {
        let frame = encode(&Record::Truncate { since })?;
        self.send(Job { frame, max_entry_index: None, meta: None, sync: false, done: Done::Nothing })
    }

    /// The purge record is synced before any segment is deleted.
    pub fn submit_purge(&self, upto: LogId) -> io::Result<()> {
        let frame = encode(&Record::Purge(upto))?;
        let meta = Some(MetaChange::Purged(upto));
        self.send(Job { frame, max_entry_index: None, meta, sync: true, done: Done::Nothing })
    }

    fn send(&self, job: Job) -> io::Result<()> {
        self.jobs.send(job).map_err(|_| io::Error::other("the WAL thread has stopped"))
    }
}

fn segment_path(dir: &Path, sequence: u64) -> PathBuf {
    dir.join(format!("{sequence:010}.wal"))
}

fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut sequences = Vec::new();
    for item in fs::read_dir(dir)? {
        let name = item?.file_name();
        let name = name.to_string_lossy();
        if let Some(number) = name.strip_suffix(".wal") {
            if let Ok(sequence) = number.parse::<u64>() {
                sequences.push(sequence);
            }
        }
    }
    sequences.sort_unstable();
    Ok(sequences)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// What a segment's first bytes say about it.
enum SegmentStart {
    /// A header of this build's format: records follow.
    Ours,
    /// Empty, shorter than a header and the start of ours, or zeros where the header belongs
    /// (the file's size reached the disk, its data did not): the segment was being created
    /// when the node stopped, and holds no record (nothing in a segment is acknowledged before
    /// its header is synced).
    Unfinished,
}

/// Checks a segment's header; another format is refused with both versions named.
fn segment_start(path: &Path, bytes: &[u8]) -> io::Result<SegmentStart> {
    let head = &bytes[..bytes.len().min(SEGMENT_HEADER_BYTES)];
    let partial = head.len() < SEGMENT_HEADER_BYTES && segment_header().starts_with(head);
    if partial || head.iter().all(|byte| *byte == 0) {
        return Ok(SegmentStart::Unfinished);
    }
    let refuse = |what: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("WAL segment {} {what}; this build reads WAL format {WAL_FORMAT}", path.display()),
        )
    };
    if !bytes.starts_with(SEGMENT_MAGIC) {
        return Err(refuse("has no format header: it is WAL format 1, written before 0.3.0".into()));
    }
    let Some(version) = bytes.get(SEGMENT_MAGIC.len()..SEGMENT_HEADER_BYTES) else {
        return Err(refuse(format!("is {} bytes, shorter than a segment header", bytes.len())));
    };
    let version = u32::from_le_bytes(version.try_into().expect("4 bytes"));
    if version != WAL_FORMAT {
        return Err(refuse(format!("is WAL format {version}")));
    }
    Ok(SegmentStart::Ours)
}

/// Reads one segment. Returns the records and the offset where the valid prefix ends.
fn read_segment(path: &Path) -> io::Result<(Vec<Record>, u64, bool)> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    let mut records = Vec::new();
    if let SegmentStart::Unfinished = segment_start(path, &bytes)? {
        return Ok((records, 0, !bytes.is_empty()));
    }
    let mut offset = SEGMENT_HEADER_BYTES;
    let torn = loop {
        if offset == bytes.len() {
            break false;
        }
        if bytes.len() - offset < FRAME_HEADER_BYTES {
            break true;
        }
        let length = u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(bytes[offset + 4..offset + 8].try_into().expect("4 bytes"));
        let start = offset + FRAME_HEADER_BYTES;
        if length > RECORD_BYTES_MAX || bytes.len() - start < length as usize {
            break true;
        }
        let payload = &bytes[start..start + length as usize];
        if crc32fast::hash(payload) != crc {
            break true;
        }
        match ledger::codec::decode::<Record>(payload) {
            Ok(record) => records.push(record),
            Err(_) => break true,
        }
        offset = start + length as usize;
    };
    Ok((records, offset as u64, torn))
}

struct SegmentInfo {
    sequence: u64,
    max_entry_index: Option<u64>,
}

/// Reads the WAL in `dir` without changing it (a torn tail is left as it is and not read): for
/// tools and for the tests of old formats (`tests/fixtures`).
pub fn read_only(dir: &Path) -> io::Result<Recovered> {
    let mut recovered = Recovered::default();
    for sequence in list_segments(dir)? {
        let (records, _, _) = read_segment(&segment_path(dir, sequence))?;
        let mut max_entry_index = None;
        for record in records {
            replay(&mut recovered, record, &mut max_entry_index);
        }
    }
    Ok(recovered)
}

/// Opens (or creates) the WAL in `dir`, recovers its contents and starts the IO thread.
pub fn open(dir: &Path) -> io::Result<(WalWriter, Recovered)> {
    fs::create_dir_all(dir)?;
    let sequences = list_segments(dir)?;
    let mut recovered = Recovered::default();
    let mut closed = Vec::new();
    for (position, &sequence) in sequences.iter().enumerate() {
        let path = segment_path(dir, sequence);
        let (records, valid_len, torn) = read_segment(&path)?;
        let is_newest = position + 1 == sequences.len();
        if valid_len == 0 && is_newest {
            // Stopped while creating it: it holds not even its header.
            tracing::warn!(segment = %path.display(), "removing an unfinished WAL segment left by a crash");
            fs::remove_file(&path)?;
            sync_dir(dir)?;
            continue;
        }
        if torn {
            if !is_newest {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("WAL segment {} is corrupt before its end", path.display()),
                ));
            }
            tracing::warn!(segment = %path.display(), valid_len, "cutting a torn WAL tail left by a crash");
            let file = OpenOptions::new().write(true).open(&path)?;
            file.set_len(valid_len)?;
            file.sync_all()?;
        }
        let mut max_entry_index = None;
        for record in records {
            replay(&mut recovered, record, &mut max_entry_index);
        }
        closed.push(SegmentInfo { sequence, max_entry_index });
    }

    // Always start a fresh segment: its checkpoint makes the older ones deletable once purged.
    let next_sequence = sequences.last().map_or(1, |s| s + 1);
    let meta = Meta { vote: recovered.vote, committed: recovered.committed, purged: recovered.purged };
    let current = start_segment(dir, next_sequence, &meta)?;
    let mut thread_state =
        IoThread { dir: dir.to_owned(), closed, current, meta, pending_delete: false, synced_since_purge: false };
    thread_state.delete_purged_segments()?;

    let (sender, receiver) = mpsc::sync_channel(IO_QUEUE_DEPTH);
    thread::Builder::new().name("wal-io".into()).spawn(move || thread_state.run(receiver))?;
    Ok((WalWriter { jobs: sender }, recovered))
}

fn replay(recovered: &mut Recovered, record: Record, max_entry_index: &mut Option<u64>) {
    match record {
        Record::Checkpoint { vote, committed, purged } => {
            recovered.vote = vote;
            recovered.committed = committed;
            recovered.purged = purged;
            if let Some(upto) = purged {
                recovered.entries = recovered.entries.split_off(&(upto.index + 1));
            }
        }
        Record::Vote(vote) => recovered.vote = Some(vote),
        Record::Committed(committed) => recovered.committed = committed,
        Record::Entries(entries) => {
            for entry in entries {
                let index = entry.log_id.index;
                *max_entry_index = Some(max_entry_index.map_or(index, |m: u64| m.max(index)));
                recovered.entries.insert(index, entry);
            }
        }
        Record::Truncate { since } => {
            recovered.entries.split_off(&since);
        }
        Record::Purge(upto) => {
            recovered.purged = Some(upto);
            recovered.entries = recovered.entries.split_off(&(upto.index + 1));
        }
    }
}

#[derive(Clone, Copy)]
struct Meta {
    vote: Option<Vote>,
    committed: Option<LogId>,
    purged: Option<LogId>,
}

struct Segment {
    sequence: u64,
    file: File,
    len: u64,
    max_entry_index: Option<u64>,
}

fn start_segment(dir: &Path, sequence: u64, meta: &Meta) -> io::Result<Segment> {
    let path = segment_path(dir, sequence);
    // The log holds reporters' identities: readable by the node's user only.
    let mut file = OpenOptions::new().create_new(true).append(true).mode(0o600).open(&path)?;
    let mut start = segment_header().to_vec();
    start.extend(encode(&Record::Checkpoint { vote: meta.vote, committed: meta.committed, purged: meta.purged })?);
    file.write_all(&start)?;
    file.sync_data()?;
    sync_dir(dir)?;
    Ok(Segment { sequence, file, len: start.len() as u64, max_entry_index: None })
}

struct IoThread {
    dir: PathBuf,
    closed: Vec<SegmentInfo>,
    current: Segment,
    meta: Meta,
    /// A purge was recorded; delete covered segments after the next sync.
    pending_delete: bool,
    /// The purge record is durable: covered segments may now be deleted.
    synced_since_purge: bool,
}

impl IoThread {
    fn run(mut self, jobs: mpsc::Receiver<Job>) {
        // Block for one job, then take whatever else is already queued: they share one sync.
        while let Ok(first) = jobs.recv() {
            let mut batch = vec![first];
            while let Ok(more) = jobs.try_recv() {
                batch.push(more);
                if batch.len() >= IO_QUEUE_DEPTH {
                    break;
                }
            }
            let result = self.write_batch(&mut batch);
            for job in batch {
                let outcome = match &result {
                    Ok(()) => Ok(()),
                    Err(error) => Err(io::Error::new(error.kind(), error.to_string())),
                };
                match job.done {
                    Done::Nothing => {}
                    Done::Flushed(callback) => callback.log_io_completed(outcome),
                    Done::Reply(reply) => {
                        let _ = reply.send(outcome);
                    }
                }
            }
            if let Err(error) = result {
                // The log can no longer promise durability; callbacks carried the error, and
                // RaftCore stops on it. Keep no further state.
                tracing::error!(%error, "WAL write failed; the log store stops");
                return;
            }
            // Deleting whole segments can take milliseconds; do it after the callers heard back.
            if self.synced_since_purge {
                if let Err(error) = self.delete_purged_segments() {
                    tracing::error!(%error, "deleting purged WAL segments failed; the log store stops");
                    return;
                }
            }
        }
    }

    fn write_batch(&mut self, batch: &mut [Job]) -> io::Result<()> {
        let mut sync = false;
        for job in batch.iter_mut() {
            if self.current.len >= SEGMENT_BYTES_MAX {
                self.roll()?;
            }
            self.current.file.write_all(&job.frame)?;
            self.current.len += job.frame.len() as u64;
            if let Some(index) = job.max_entry_index {
                self.current.max_entry_index = Some(self.current.max_entry_index.map_or(index, |m| m.max(index)));
            }
            match job.meta.take() {
                Some(MetaChange::Vote(vote)) => self.meta.vote = Some(vote),
                Some(MetaChange::Committed(committed)) => self.meta.committed = committed,
                Some(MetaChange::Purged(purged)) => {
                    self.meta.purged = Some(purged);
                    self.pending_delete = true;
                }
                None => {}
            }
            sync |= job.sync;
        }
        if sync {
            self.current.file.sync_data()?;
            self.synced_since_purge |= self.pending_delete;
        }
        Ok(())
    }

    /// Closes the current segment (synced) and starts the next one with a checkpoint.
    fn roll(&mut self) -> io::Result<()> {
        self.current.file.sync_data()?;
        let next = start_segment(&self.dir, self.current.sequence + 1, &self.meta)?;
        let old = std::mem::replace(&mut self.current, next);
        self.closed.push(SegmentInfo { sequence: old.sequence, max_entry_index: old.max_entry_index });
        Ok(())
    }

    /// Deletes closed segments whose entries are all purged. Only called once the purge record
    /// (or a later checkpoint) is durable.
    fn delete_purged_segments(&mut self) -> io::Result<()> {
        self.pending_delete = false;
        self.synced_since_purge = false;
        let purged_index = match self.meta.purged {
            Some(purged) => purged.index,
            None => return Ok(()),
        };
        // Delete only a prefix of the closed segments: a later segment may hold a `Truncate`
        // record that still matters for entries in an earlier one.
        let deletable = self
            .closed
            .iter()
            .take_while(|segment| segment.max_entry_index.is_none_or(|max| max <= purged_index))
            .count();
        let before = self.closed.len();
        for segment in self.closed.drain(..deletable) {
            fs::remove_file(segment_path(&self.dir, segment.sequence))?;
        }
        if self.closed.len() != before {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }
}
