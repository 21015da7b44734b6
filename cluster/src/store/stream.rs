//! The store as a stream: how a checkpoint travels to a new member or a lagging follower (and
//! into a backup file) without anyone holding the whole ledger in memory.
//!
//! Layout: `MAGIC`, then frames `[kind u8][length u32 LE][payload][crc32 of kind and payload,
//! u32 LE]`: one `Meta`, one `Core`, the reporters, sent and received records, the tasks, and an
//! `End` that counts the records. Each frame is checked as it arrives; the loader writes the
//! records into a new store and checks each task against the core and the records before it
//! (`Ledger::check_task`), the counts that make the handover maps match the tasks one to one,
//! the core's own invariants, and that the records add up to the digest the core carries.

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

use redb::{ReadTransaction, ReadableTable};

use ledger::campaign::register::JournalEntry;
use ledger::campaign::risk_files::RiskFile;
use ledger::organisation::{Person, PersonId};
use ledger::{Ledger, RecordsDigest, Regions, Reporter, Task, TaskId, Term};

use super::{read_checkpoint, store_error, write_checkpoint_meta, CheckpointMeta, Store};
use super::{LOGINS, PEOPLE, RECEIVED, REGISTER, REGISTER_IDS, REPORTERS, RISK_FILES, SENT, TASKS};

/// The stream's format, which carries the ledger core's (`STORE_FORMAT`): 2 since the core
/// keeps the order of signal groups, 3 since records are postcard (`ledger::codec`), 4 since the
/// core ends with the reference data (`ledger::reference`), 5 since it ends with the
/// organisation's units (`ledger::organisation`), 6 since it ends with the inspection-item list
/// (`ledger::campaign::item_list`), 7 since it ends with the entity register and carries the
/// register's journal (`ledger::campaign::register`), 8 since it ends with the draws committed
/// in parts (`ledger::campaign::draw_parts`), 9 since it ends with the risk files' state and
/// carries the files (`ledger::campaign::risk_files`), 10 since it ends with the departments of
/// joint inspections (`ledger::campaign::departments`), 11 since it ends with the province plans
/// handed down and their progress reports (`ledger::campaign::plan_handdown`). A stream of another format is refused
/// before anything of it is decoded.
pub const MAGIC: &[u8; 16] = b"XIETONG-STREAM11";
const _: () = assert!(super::STORE_FORMAT == 11, "the magic names the store format");
/// The magic of a stream of `format`: formats before this one are read still (their core
/// converted as it is read), never written. One digit and a newline up to 9, two digits from 10
/// on (the magic keeps its 16 bytes).
fn magic_of(format: u32) -> [u8; 16] {
    let mut magic = *b"XIETONG-STREAM0\n";
    assert!(format < 100, "at most two digits");
    if format < 10 {
        magic[14] = b'0' + format as u8;
    } else {
        magic[14] = b'0' + (format / 10) as u8;
        magic[15] = b'0' + (format % 10) as u8;
    }
    magic
}

/// The format a stream's magic names, when this build reads it.
fn format_of_magic(magic: &[u8; 16]) -> Option<u32> {
    (super::STORE_FORMAT_OLDEST_READ..=super::STORE_FORMAT).find(|format| magic_of(*format) == *magic)
}

/// What reading a stream answers: where its checkpoint stands, its core in this build's format,
/// and the digest of the core as it was read (a stream of an older format carries its core in
/// that format, and its digest is the one recorded when it was written: a backup's header, the
/// digest an operator kept).
#[derive(Debug)]
pub struct StreamCore {
    pub meta: CheckpointMeta,
    pub core: Vec<u8>,
    pub digest_as_read: String,
    /// The files the tasks' on-site records name (kept beside the log, not in the stream): a
    /// backup keeps them beside itself.
    pub attachments: std::collections::BTreeSet<String>,
}
/// The largest frame: a core with a large programme is the biggest thing that travels whole.
pub const FRAME_BYTES_MAX: u32 = 256 * 1024 * 1024;
/// The largest record: a task of 500 timeline entries with notes of 2,000 characters is about
/// 4 MB; anything larger is not a record this ledger writes.
pub const RECORD_BYTES_MAX: u32 = 16 * 1024 * 1024;
/// Records written into the new store per transaction while loading, at most, and their bytes.
const LOAD_RECORDS_PER_COMMIT: usize = 4_096;
const LOAD_BYTES_PER_COMMIT: usize = 64 * 1024 * 1024;
/// Batches checked and waiting for the store writer: with the one being written and the one
/// being gathered, a load holds at most this plus two batches in memory.
const LOAD_BATCHES_QUEUED: usize = 1;

/// A frame's kind, written as its byte. Sections come in the order of `Kind::IN_ORDER`, which
/// is not the bytes' order: people (5) came after the tasks' bytes were given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    Meta = 1,
    Core = 2,
    Reporter = 3,
    Sent = 4,
    Received = 5,
    Task = 6,
    End = 7,
    /// An account (format 5): before the tasks, whose handlers name people.
    Person = 8,
    /// A login and its account (format 5), after the accounts.
    Login = 9,
    /// A change of the entity register's journal (format 7).
    RegisterEntry = 10,
    /// A change id and its journal number (format 7), after the journal.
    RegisterId = 11,
    /// An entity's risk file (format 9), keyed by its USCC.
    RiskFile = 12,
}

impl Kind {
    /// The sections in the order a stream carries them.
    const IN_ORDER: [Kind; 12] = [
        Kind::Meta,
        Kind::Core,
        Kind::Reporter,
        Kind::Sent,
        Kind::Received,
        Kind::Person,
        Kind::Login,
        Kind::RegisterEntry,
        Kind::RegisterId,
        Kind::RiskFile,
        Kind::Task,
        Kind::End,
    ];

    fn of(byte: u8) -> Option<Kind> {
        Kind::IN_ORDER.into_iter().find(|kind| *kind as u8 == byte)
    }

    /// Whether frames of this kind are records (not the meta, core or end).
    fn is_record(self) -> bool {
        !matches!(self, Kind::Meta | Kind::Core | Kind::End)
    }

    /// The section's place in the stream.
    fn rank(self) -> usize {
        Kind::IN_ORDER.iter().position(|kind| *kind == self).expect("every kind has its place")
    }
}

impl PartialOrd for Kind {
    fn partial_cmp(&self, other: &Kind) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Kind {
    fn cmp(&self, other: &Kind) -> std::cmp::Ordering {
        self.rank().cmp(&other.rank())
    }
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

fn write_frame(out: &mut impl Write, kind: Kind, payload: &[u8]) -> io::Result<()> {
    let length = u32::try_from(payload.len()).ok().filter(|length| *length <= FRAME_BYTES_MAX);
    let length = length.ok_or_else(|| invalid(format!("a {kind:?} record of {} bytes is too large", payload.len())))?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&[kind as u8]);
    crc.update(payload);
    out.write_all(&[kind as u8])?;
    out.write_all(&length.to_le_bytes())?;
    out.write_all(payload)?;
    out.write_all(&crc.finalize().to_le_bytes())
}

/// Bytes per chunk of a stream sent over the network (a snapshot transfer, a backup).
pub const CHUNK_BYTES: usize = 1024 * 1024;

/// Writes a stream into a channel in chunks of `CHUNK_BYTES`, from a thread of its own, for a
/// connection to send: what sits in memory is the chunks in flight.
pub struct ChunkWriter {
    chunk: Vec<u8>,
    chunks: tokio::sync::mpsc::Sender<io::Result<axum::body::Bytes>>,
}

impl ChunkWriter {
    pub fn new(chunks: tokio::sync::mpsc::Sender<io::Result<axum::body::Bytes>>) -> ChunkWriter {
        ChunkWriter { chunk: Vec::with_capacity(CHUNK_BYTES), chunks }
    }

    /// Ends the stream with `error`, for its reader to see.
    pub fn fail(&self, error: io::Error) {
        let _ = self.chunks.blocking_send(Err(error));
    }

    fn send(&mut self) -> io::Result<()> {
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK_BYTES));
        self.chunks.blocking_send(Ok(chunk.into())).map_err(|_| io::Error::other("the stream's reader went away"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.chunk.extend_from_slice(bytes);
        if self.chunk.len() >= CHUNK_BYTES {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.chunk.is_empty() {
            Ok(())
        } else {
            self.send()
        }
    }
}

/// Writes the checkpoint `view` shows to `out`; answers where it stands and how many records
/// went. Fails on a store without a checkpoint.
pub fn write_stream(view: &ReadTransaction, out: &mut impl Write) -> io::Result<(CheckpointMeta, u64)> {
    let (meta, core) = read_checkpoint(view)?.ok_or_else(|| invalid("the store has no checkpoint to send"))?;
    out.write_all(MAGIC)?;
    write_frame(out, Kind::Meta, &ledger::codec::encode(&meta).map_err(store_error)?)?;
    write_frame(out, Kind::Core, &core)?;
    let mut records = 0u64;
    let mut payload = Vec::new();
    for entry in view.open_table(REPORTERS).map_err(store_error)?.iter().map_err(store_error)? {
        let (id, bytes) = entry.map_err(store_error)?;
        payload.clear();
        payload.extend_from_slice(&id.value().to_be_bytes());
        payload.extend_from_slice(bytes.value());
        write_frame(out, Kind::Reporter, &payload)?;
        records += 1;
    }
    for (table, kind) in [(SENT, Kind::Sent), (RECEIVED, Kind::Received)] {
        for entry in view.open_table(table).map_err(store_error)?.iter().map_err(store_error)? {
            let (key, task) = entry.map_err(store_error)?;
            payload.clear();
            payload.extend_from_slice(&task.value().to_be_bytes());
            payload.extend_from_slice(key.value());
            write_frame(out, kind, &payload)?;
            records += 1;
        }
    }
    for entry in view.open_table(PEOPLE).map_err(store_error)?.iter().map_err(store_error)? {
        let (id, bytes) = entry.map_err(store_error)?;
        payload.clear();
        payload.extend_from_slice(&id.value().to_be_bytes());
        payload.extend_from_slice(bytes.value());
        write_frame(out, Kind::Person, &payload)?;
        records += 1;
    }
    for entry in view.open_table(LOGINS).map_err(store_error)?.iter().map_err(store_error)? {
        let (login, id) = entry.map_err(store_error)?;
        payload.clear();
        payload.extend_from_slice(&id.value().to_be_bytes());
        payload.extend_from_slice(login.value().as_bytes());
        write_frame(out, Kind::Login, &payload)?;
        records += 1;
    }
    for entry in view.open_table(REGISTER).map_err(store_error)?.iter().map_err(store_error)? {
        let (seq, bytes) = entry.map_err(store_error)?;
        payload.clear();
        payload.extend_from_slice(&seq.value().to_be_bytes());
        payload.extend_from_slice(bytes.value());
        write_frame(out, Kind::RegisterEntry, &payload)?;
        records += 1;
    }
    for entry in view.open_table(REGISTER_IDS).map_err(store_error)?.iter().map_err(store_error)? {
        let (id, seq) = entry.map_err(store_error)?;
        payload.clear();
        payload.extend_from_slice(&seq.value().to_be_bytes());
        payload.extend_from_slice(id.value().as_bytes());
        write_frame(out, Kind::RegisterId, &payload)?;
        records += 1;
    }
    for entry in view.open_table(RISK_FILES).map_err(store_error)?.iter().map_err(store_error)? {
        let (_, bytes) = entry.map_err(store_error)?;
        // The number is not the key: files are keyed by USCC, as their records say.
        payload.clear();
        payload.extend_from_slice(&0u64.to_be_bytes());
        payload.extend_from_slice(bytes.value());
        write_frame(out, Kind::RiskFile, &payload)?;
        records += 1;
    }
    for entry in view.open_table(TASKS).map_err(store_error)?.iter().map_err(store_error)? {
        let (id, bytes) = entry.map_err(store_error)?;
        payload.clear();
        payload.extend_from_slice(&id.value().to_be_bytes());
        payload.extend_from_slice(bytes.value());
        write_frame(out, Kind::Task, &payload)?;
        records += 1;
    }
    write_frame(out, Kind::End, &records.to_le_bytes())?;
    out.flush()?;
    Ok((meta, records))
}

/// Reads a stream into a new store at `path` (which must not exist), checking everything; on
/// any failure the partial store is removed and the reason returned. Answers where the
/// checkpoint stands and its core.
pub fn load_stream(input: &mut impl Read, path: &Path) -> io::Result<StreamCore> {
    if path.exists() {
        return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} exists", path.display())));
    }
    let loaded = Store::open(path).and_then(|store| Loader::new(Some(store)).run(input));
    if loaded.is_err() {
        let _ = std::fs::remove_file(path);
    }
    loaded
}

/// Checks a stream without keeping it: every record's checksum and encoding, the order, the
/// count, and that the records add up to the digest the core carries (so not a bit of any
/// record changed). The checks that need the records at hand (`Ledger::check_task`) are the
/// loader's. Answers where the checkpoint stands and its core.
pub fn verify_stream(input: &mut impl Read) -> io::Result<StreamCore> {
    Loader::new(None).run(input)
}

/// Reads a stream; with a store, writes the records into it and checks each against the
/// records before it.
struct Loader {
    store: Option<Store>,
    meta: Option<CheckpointMeta>,
    core: Option<Vec<u8>>,
    /// The digest of the core as the stream carried it.
    digest_as_read: String,
    /// The ledger the tasks are checked against: the core over the records loaded so far.
    checker: Option<Ledger>,
    last_kind: Kind,
    /// Writes checked batches into the store on a thread of its own, while this one reads and
    /// checks the next: the section being loaded.
    writer: Option<SectionWriter>,
    /// The records of the current section not yet handed to the writer.
    pending: Vec<Pending>,
    pending_bytes: usize,
    /// The key of the last record of the current section: keys strictly increase, so no record
    /// is sent twice (the one-to-one counts hold only for distinct keys).
    last_key: Option<Vec<u8>>,
    records: u64,
    digest: RecordsDigest,
    tasks: u64,
    /// Tasks that track a handover, received one, or are complaints: each must match one
    /// record of the maps, so with equal counts the maps hold nothing else.
    tasks_sent: u64,
    tasks_received: u64,
    complaints: u64,
    sent: u64,
    received: u64,
    reporters: u64,
    people: u64,
    /// Accounts linked to an inspector: each has a second key beside its login.
    linked: u64,
    logins: u64,
    register_entries: u64,
    register_ids: u64,
    risk_files: u64,
    attachments: std::collections::BTreeSet<String>,
}

impl Loader {
    fn new(store: Option<Store>) -> Loader {
        Loader {
            store,
            meta: None,
            core: None,
            digest_as_read: String::new(),
            checker: None,
            writer: None,
            last_kind: Kind::Meta,
            pending: Vec::new(),
            pending_bytes: 0,
            last_key: None,
            records: 0,
            digest: RecordsDigest::default(),
            tasks: 0,
            tasks_sent: 0,
            tasks_received: 0,
            complaints: 0,
            sent: 0,
            received: 0,
            reporters: 0,
            people: 0,
            linked: 0,
            logins: 0,
            register_entries: 0,
            register_ids: 0,
            risk_files: 0,
            attachments: std::collections::BTreeSet::new(),
        }
    }

    fn run(mut self, input: &mut impl Read) -> io::Result<StreamCore> {
        let mut magic = [0u8; 16];
        input.read_exact(&mut magic).map_err(|_| invalid("too short to be a ledger stream"))?;
        let Some(format) = format_of_magic(&magic) else {
            let named = String::from_utf8_lossy(magic.strip_suffix(b"\n").unwrap_or(&magic)).into_owned();
            let ours = String::from_utf8_lossy(&MAGIC[..MAGIC.len() - 1]).into_owned();
            return Err(invalid(format!(
                "not a ledger stream of this format: it starts {named:?}, this build reads {ours} and the formats \
                 from {} on",
                super::STORE_FORMAT_OLDEST_READ
            )));
        };
        for position in 0u64.. {
            let (kind, payload) = read_frame(input)?;
            let in_order = match position {
                0 => kind == Kind::Meta,
                1 => kind == Kind::Core,
                _ => kind >= self.last_kind && kind > Kind::Core,
            };
            if !in_order {
                return Err(invalid(format!("a {kind:?} record out of order")));
            }
            if kind != self.last_kind {
                // A section's records are all written before the next is checked: a task's
                // checks read the reporter and handover records (`Ledger::check_task`).
                self.end_section()?;
                self.last_key = None;
            }
            if kind.is_record() && payload.len() > RECORD_BYTES_MAX as usize {
                return Err(invalid(format!("a {kind:?} record of {} bytes is larger than any record", payload.len())));
            }
            self.last_kind = kind;
            match kind {
                Kind::Meta => {
                    let meta: CheckpointMeta =
                        ledger::codec::decode(&payload).map_err(|e| invalid(format!("the stream's meta: {e}")))?;
                    self.meta = Some(meta);
                }
                Kind::Core => {
                    self.digest_as_read = Ledger::digest_of_core(&payload);
                    let payload = super::core_in_this_format(format, payload);
                    let ledger = Ledger::from_core(&payload, self.records())
                        .map_err(|e| invalid(format!("the stream's core: {e}")))?;
                    self.core = Some(payload);
                    self.checker = Some(ledger);
                }
                Kind::End => return self.finish(&payload),
                Kind::Reporter
                | Kind::Sent
                | Kind::Received
                | Kind::Person
                | Kind::Login
                | Kind::RegisterEntry
                | Kind::RegisterId
                | Kind::RiskFile
                | Kind::Task => self.take_record(kind, payload)?,
            }
        }
        unreachable!("the loop ends at the end record")
    }

    fn take_record(&mut self, kind: Kind, payload: Vec<u8>) -> io::Result<()> {
        let (head, rest) = payload.split_at_checked(8).ok_or_else(|| invalid(format!("a short {kind:?} record")))?;
        let number = u64::from_be_bytes(head.try_into().expect("8 bytes"));
        // Keyed by the task for tasks and reporters, by the person for accounts, by the forward
        // for handover records, by the login for logins and by the USCC for risk files.
        let risk_file = match kind {
            Kind::RiskFile => {
                let file: RiskFile = ledger::codec::decode(rest).map_err(|e| invalid(format!("a risk file: {e}")))?;
                if number != 0 {
                    return Err(invalid(format!("risk file {} is numbered", file.uscc.as_str())));
                }
                Some(file)
            }
            _ => None,
        };
        let key = match kind {
            Kind::Sent | Kind::Received | Kind::Login | Kind::RegisterId => rest.to_vec(),
            Kind::RiskFile => risk_file.as_ref().expect("decoded above").uscc.as_str().as_bytes().to_vec(),
            _ => head.to_vec(),
        };
        let uscc = risk_file.as_ref().map(|file| file.uscc.as_str().to_owned());
        if self.last_key.as_ref().is_some_and(|last| *last >= key) {
            return Err(invalid(format!("a {kind:?} record out of order or repeated")));
        }
        self.last_key = Some(key);
        let mut decoded_task = None;
        let record = match kind {
            Kind::Reporter => {
                let reporter: Reporter =
                    ledger::codec::decode(rest).map_err(|e| invalid(format!("a reporter: {e}")))?;
                self.digest.add(Term::of_reporter(TaskId(number), &reporter));
                self.reporters += 1;
                ledger::codec::encode(&reporter).map_err(store_error)?
            }
            Kind::Sent | Kind::Received => {
                let forward: ledger::ForwardId =
                    ledger::codec::decode(rest).map_err(|e| invalid(format!("a forward id: {e}")))?;
                if ledger::forward_key(forward) != rest {
                    return Err(invalid("a forward id in another encoding"));
                }
                if kind == Kind::Sent {
                    self.digest.add(Term::of_sent(forward, TaskId(number)));
                    self.sent += 1;
                } else {
                    self.digest.add(Term::of_received(forward, TaskId(number)));
                    self.received += 1;
                }
                rest.to_vec()
            }
            Kind::Person => {
                let person: Person = ledger::codec::decode(rest).map_err(|e| invalid(format!("an account: {e}")))?;
                if person.id != PersonId(number) {
                    return Err(invalid(format!("person {} is filed as {number}", person.id)));
                }
                let checker = self.checker.as_ref().expect("the core comes second");
                checker.check_person(&person).map_err(|violation| invalid(violation.to_string()))?;
                self.digest.add(Term::of_person(&person));
                self.people += 1;
                self.linked += u64::from(person.inspector.is_some());
                ledger::codec::encode(&person).map_err(store_error)?
            }
            Kind::Login => {
                let login = std::str::from_utf8(rest).map_err(|_| invalid("a login that is not UTF-8"))?;
                // A login, or an inspector's link (`inspector:<id>`).
                if ledger::organisation::inspector_of_key(login).is_none_or(str::is_empty) {
                    ledger::organisation::check_login(login)
                        .map_err(|reason| invalid(format!("login {login:?}: {reason}")))?;
                }
                if self.store.is_some() {
                    let checker = self.checker.as_ref().expect("the core comes second");
                    checker.check_login(login, PersonId(number)).map_err(|violation| invalid(violation.to_string()))?;
                }
                self.digest.add(Term::of_login(login, PersonId(number)));
                self.logins += 1;
                rest.to_vec()
            }
            Kind::RegisterEntry => {
                let entry: JournalEntry =
                    ledger::codec::decode(rest).map_err(|e| invalid(format!("a register change: {e}")))?;
                let checker = self.checker.as_ref().expect("the core comes second");
                let journal_len = checker.entity_register().journal_len();
                if entry.seq != number || !(1..=journal_len).contains(&number) {
                    return Err(invalid(format!(
                        "register change {} is filed as {number} of {journal_len}",
                        entry.seq
                    )));
                }
                // A change's fields end up in a directory file when the register is frozen: a
                // backup edited to hold a separator or a line end must not get there.
                ledger::campaign::register::check_shape(checker.regions_ref(), &entry.change)
                    .map_err(|e| invalid(format!("register change {number}: {e}")))?;
                self.digest.add(Term::of_register_entry(&entry));
                self.register_entries += 1;
                ledger::codec::encode(&entry).map_err(store_error)?
            }
            Kind::RegisterId => {
                let id = std::str::from_utf8(rest).map_err(|_| invalid("a change id that is not UTF-8"))?;
                ledger::campaign::register::check_change_id(id).map_err(|e| invalid(format!("change id: {e}")))?;
                if self.store.is_some() {
                    let checker = self.checker.as_ref().expect("the core comes second");
                    if checker.register_entry(number).is_none_or(|entry| entry.change.id != id) {
                        return Err(invalid(format!("change id {id} names change {number}, which has another id")));
                    }
                }
                self.digest.add(Term::of_register_change(id, number));
                self.register_ids += 1;
                rest.to_vec()
            }
            Kind::RiskFile => {
                let file = risk_file.expect("decoded above");
                file.check().map_err(invalid)?;
                let checker = self.checker.as_ref().expect("the core comes second");
                if !checker.risk_files().kept() {
                    return Err(invalid("a risk file in a ledger that keeps none"));
                }
                self.digest.add(Term::of_risk_file(&file));
                self.risk_files += 1;
                ledger::codec::encode(&file).map_err(store_error)?
            }
            Kind::Task => {
                let task: Task = ledger::codec::decode_task(rest).map_err(|e| invalid(format!("a task: {e}")))?;
                if task.id != TaskId(number) {
                    return Err(invalid(format!("task {} is filed as {number}", task.id)));
                }
                let checker = self.checker.as_ref().expect("the core comes second");
                if self.store.is_some() {
                    checker.check_task(&task).map_err(|violation| invalid(violation.to_string()))?;
                }
                self.digest.add(Term::of_task(&task));
                self.tasks += 1;
                self.tasks_sent += u64::from(task.remote.is_some());
                self.tasks_received += u64::from(task.received.is_some());
                self.complaints += u64::from(task.complaint.is_some());
                let named = task.field_work.site_records.iter().flat_map(|record| &record.record.attachments);
                self.attachments.extend(named.map(|attachment| attachment.sha256.clone()));
                let bytes = ledger::codec::encode(&task).map_err(store_error)?;
                decoded_task = Some(task);
                bytes
            }
            Kind::Meta | Kind::Core | Kind::End => unreachable!("records only"),
        };
        self.records += 1;
        if self.store.is_some() {
            self.pending_bytes += record.len();
            self.pending.push(Pending { kind, number, record, task: decoded_task, uscc });
        }
        if self.pending.len() >= LOAD_RECORDS_PER_COMMIT || self.pending_bytes >= LOAD_BYTES_PER_COMMIT {
            self.commit()?;
        }
        Ok(())
    }

    /// Hands the pending records to the section's writer (starting it with the section's first
    /// batch).
    fn commit(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.pending_bytes = 0;
        let batch = std::mem::take(&mut self.pending);
        if self.writer.is_none() {
            let store = self.store.clone().expect("records are kept only with a store");
            // Every task is filed as changed at the checkpoint: the stream knows no older positions.
            let loaded_at = self.meta.as_ref().and_then(CheckpointMeta::index).unwrap_or(0).max(1);
            let regions = self.checker.as_ref().expect("the core comes second").regions();
            self.writer = Some(SectionWriter::start(store, regions, loaded_at)?);
        }
        self.writer.as_mut().expect("started above").send(batch)
    }

    /// Writes what is pending and waits until the whole section is in the store, visible to
    /// the checks of the records after it (not durable until the end).
    fn end_section(&mut self) -> io::Result<()> {
        self.commit()?;
        match self.writer.take() {
            Some(writer) => writer.finish(),
            None => Ok(()),
        }
    }

    fn finish(mut self, end: &[u8]) -> io::Result<StreamCore> {
        self.end_section()?;
        let counted = <[u8; 8]>::try_from(end).map(u64::from_le_bytes).map_err(|_| invalid("a damaged end"))?;
        if counted != self.records {
            return Err(invalid(format!("the stream ends after {} records but says {counted}", self.records)));
        }
        let (meta, core) = match (self.meta.take(), self.core.take()) {
            (Some(meta), Some(core)) => (meta, core),
            _ => return Err(invalid("a stream without its meta or core")),
        };
        let checker = Ledger::from_core(&core, self.records()).map_err(|e| invalid(e.to_string()))?;
        if self.tasks != checker.task_count() {
            return Err(invalid(format!("{} tasks arrived, the core counts {}", self.tasks, checker.task_count())));
        }
        if (self.sent, self.received, self.reporters) != (self.tasks_sent, self.tasks_received, self.complaints) {
            return Err(invalid("the handover and reporter records do not match the tasks one to one"));
        }
        // Accounts are never removed: the core's counter counts them, and each has its login
        // (each login was checked to name an account that signs in with it).
        let accounts = checker.units().person_count();
        if (self.people, self.logins) != (accounts, accounts + self.linked) {
            return Err(invalid(format!(
                "{} accounts and {} logins and links arrived, the core counts {accounts} accounts ({} linked)",
                self.people, self.logins, self.linked
            )));
        }
        let journal_len = checker.entity_register().journal_len();
        if (self.register_entries, self.register_ids) != (journal_len, journal_len) {
            return Err(invalid(format!(
                "{} register changes and {} change ids arrived, the journal holds {journal_len}",
                self.register_entries, self.register_ids
            )));
        }
        if self.risk_files != checker.risk_files().count() {
            return Err(invalid(format!(
                "{} risk files arrived, the core counts {}",
                self.risk_files,
                checker.risk_files().count()
            )));
        }
        if self.digest != checker.records_digest() {
            return Err(invalid("the records do not add up to the digest the core carries"));
        }
        if let Some(store) = &self.store {
            checker.check_core().map_err(|violation| invalid(violation.to_string()))?;
            let write = store.db.begin_write().map_err(store_error)?;
            write_checkpoint_meta(&write, &core, &meta)?;
            write.commit().map_err(store_error)?;
        }
        Ok(StreamCore { meta, core, digest_as_read: self.digest_as_read, attachments: self.attachments })
    }

    /// The records the checks read: the store's, or none when only verifying.
    fn records(&self) -> Arc<dyn ledger::Records> {
        match &self.store {
            Some(store) => store.records(),
            None => Arc::new(ledger::MemoryRecords::default()),
        }
    }
}

/// One record checked and waiting to be written: its kind, number (a task id), bytes (the
/// record, or the forward key of a handover record), the task decoded for its index keys, and
/// the USCC a risk file is filed under.
struct Pending {
    kind: Kind,
    number: u64,
    record: Vec<u8>,
    task: Option<Task>,
    uscc: Option<String>,
}

/// The thread that writes one section's batches into the store, one transaction per batch, so
/// that reading and checking the stream (one core) overlaps writing records and deriving their
/// index keys (the other). Dropping it waits for the thread, so nothing writes into a store
/// after its load has failed.
struct SectionWriter {
    batches: Option<std::sync::mpsc::SyncSender<Vec<Pending>>>,
    thread: Option<std::thread::JoinHandle<io::Result<()>>>,
}

impl SectionWriter {
    fn start(store: Store, regions: Arc<Regions>, loaded_at: u64) -> io::Result<SectionWriter> {
        let (batches, received) = std::sync::mpsc::sync_channel::<Vec<Pending>>(LOAD_BATCHES_QUEUED);
        let thread = std::thread::Builder::new().name("store-load".into()).spawn(move || {
            // Ends early on an error, which the loader sees as its next send failing.
            received.iter().try_for_each(|batch| write_batch(&store, &regions, loaded_at, batch))
        })?;
        Ok(SectionWriter { batches: Some(batches), thread: Some(thread) })
    }

    fn send(&mut self, batch: Vec<Pending>) -> io::Result<()> {
        let sent = self.batches.as_ref().expect("open until finished").send(batch);
        match sent {
            Ok(()) => Ok(()),
            // The writer stopped: its error says why.
            Err(_) => self.wait().and(Err(io::Error::other("the store writer stopped"))),
        }
    }

    /// Waits for every batch sent to be written.
    fn finish(mut self) -> io::Result<()> {
        self.wait()
    }

    fn wait(&mut self) -> io::Result<()> {
        self.batches = None;
        match self.thread.take().map(std::thread::JoinHandle::join) {
            None => Ok(()),
            Some(Ok(written)) => written,
            Some(Err(_)) => Err(io::Error::other("the store writer panicked")),
        }
    }
}

impl Drop for SectionWriter {
    fn drop(&mut self) {
        let _ = self.wait();
    }
}

/// Writes one batch of a section in one transaction (not durable until the load ends).
fn write_batch(store: &Store, regions: &Arc<Regions>, loaded_at: u64, batch: Vec<Pending>) -> io::Result<()> {
    let mut write = store.db.begin_write().map_err(store_error)?;
    write.set_durability(redb::Durability::None).map_err(store_error)?;
    {
        let mut tasks = write.open_table(TASKS).map_err(store_error)?;
        let mut reporters = write.open_table(REPORTERS).map_err(store_error)?;
        let mut sent = write.open_table(SENT).map_err(store_error)?;
        let mut received = write.open_table(RECEIVED).map_err(store_error)?;
        let mut people = write.open_table(PEOPLE).map_err(store_error)?;
        let mut logins = write.open_table(LOGINS).map_err(store_error)?;
        let mut register = write.open_table(REGISTER).map_err(store_error)?;
        let mut register_ids = write.open_table(REGISTER_IDS).map_err(store_error)?;
        let mut risk_files = write.open_table(RISK_FILES).map_err(store_error)?;
        let mut indexes = super::index::Indexes::open(&write, regions.clone())?;
        let tasks_loaded = batch.iter().filter_map(|pending| pending.task.as_ref());
        indexes.reindex(tasks_loaded.map(|task| (None, task, loaded_at)))?;
        for Pending { kind, number, record, uscc, .. } in &batch {
            let record = record.as_slice();
            match kind {
                Kind::Task => tasks.insert(number, record).map(drop),
                Kind::Reporter => reporters.insert(number, record).map(drop),
                Kind::Sent => sent.insert(record, number).map(drop),
                Kind::Received => received.insert(record, number).map(drop),
                Kind::Person => people.insert(number, record).map(drop),
                Kind::Login => {
                    let login = std::str::from_utf8(record).expect("a login is checked as UTF-8 when read");
                    logins.insert(login, number).map(drop)
                }
                Kind::RegisterEntry => register.insert(number, record).map(drop),
                Kind::RegisterId => {
                    let id = std::str::from_utf8(record).expect("a change id is checked as UTF-8 when read");
                    register_ids.insert(id, number).map(drop)
                }
                Kind::RiskFile => {
                    let uscc = uscc.as_deref().expect("a risk file is pending with its USCC");
                    risk_files.insert(uscc, record).map(drop)
                }
                Kind::Meta | Kind::Core | Kind::End => unreachable!("records only"),
            }
            .map_err(store_error)?;
        }
        indexes.finish()?;
    }
    write.commit().map_err(store_error)
}

fn read_frame(input: &mut impl Read) -> io::Result<(Kind, Vec<u8>)> {
    let mut head = [0u8; 5];
    input.read_exact(&mut head).map_err(|_| invalid("the stream is cut short"))?;
    let kind = Kind::of(head[0]).ok_or_else(|| invalid(format!("an unknown record kind {}", head[0])))?;
    let length = u32::from_le_bytes(head[1..5].try_into().expect("4 bytes"));
    if length > FRAME_BYTES_MAX {
        return Err(invalid(format!("a record of {length} bytes is larger than any the format allows")));
    }
    let mut payload = vec![0u8; length as usize];
    input.read_exact(&mut payload).map_err(|_| invalid("the stream is cut short"))?;
    let mut crc = [0u8; 4];
    input.read_exact(&mut crc).map_err(|_| invalid("the stream is cut short"))?;
    let mut expected = crc32fast::Hasher::new();
    expected.update(&[head[0]]);
    expected.update(&payload);
    if expected.finalize().to_le_bytes() != crc {
        return Err(invalid(format!("a {kind:?} record fails its checksum")));
    }
    Ok((kind, payload))
}

/// Reads a stream file into a new store: for tests and tools.
pub fn load_file(stream: &Path, store: &Path) -> io::Result<StreamCore> {
    let mut input = io::BufReader::new(std::fs::File::open(stream)?);
    load_stream(&mut input, store)
}

/// The ledger a loaded store holds.
pub fn ledger_of(store: &Store, core: &[u8]) -> io::Result<Ledger> {
    Ledger::from_core(core, store.records() as Arc<dyn ledger::Records>).map_err(|e| invalid(e.to_string()))
}
