//! Storage tests: openraft's conformance suite on the real WAL and state machine, and crash
//! recovery of the WAL (reopen, torn tail, segment deletion after purge).

use std::io::Write;

use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::testing::{log_id, StoreBuilder, Suite};
use openraft::{EntryPayload, RaftLogReader};
use tempfile::TempDir;

use super::*;

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, LedgerStore, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, LedgerStore), StorageError> {
        let dir = TempDir::new().expect("temp dir");
        // The suite purges logs with no snapshot at all; the purge gate is tested on its own below.
        let log = LogStore::open(&dir.path().join("log"), DurableSnapshot::covering_everything()).expect("open log");
        let state_machine = LedgerStore::open(&dir.path().join("snapshot")).expect("open state machine");
        Ok((dir, log, state_machine))
    }
}

#[test]
fn conforms_to_the_openraft_storage_suite() -> Result<(), StorageError> {
    Suite::test_all(Builder)
}

fn blank(term: u64, index: u64) -> Entry {
    Entry { log_id: log_id(term, 1, index), payload: EntryPayload::Blank }
}

/// Appends through the real callback path and waits until the WAL reports the entries durable.
async fn append_durably(store: &mut LogStore, entries: Vec<Entry>) {
    let (reply, flushed) = tokio::sync::oneshot::channel();
    store.append_entries(entries, wal::Done::Reply(reply)).expect("append");
    flushed.await.expect("the WAL answers").expect("flush succeeded");
}

/// A log store on its own: every purge is covered by a (pretend) snapshot.
fn open_log(dir: &std::path::Path) -> std::io::Result<LogStore> {
    LogStore::open(dir, DurableSnapshot::covering_everything())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

#[test]
fn a_reopened_log_has_what_was_flushed() {
    runtime().block_on(async {
        let dir = TempDir::new().expect("temp dir");
        let vote = Vote::new(3, 2);
        {
            let mut store = open_log(dir.path()).expect("open");
            append_durably(&mut store, (1..=10).map(|i| blank(1, i)).collect()).await;
            store.truncate(log_id(1, 1, 8)).await.expect("truncate");
            append_durably(&mut store, (8..=12).map(|i| blank(2, i)).collect()).await;
            store.save_vote(&vote).await.expect("vote");
            store.purge(log_id(1, 1, 3)).await.expect("purge");
            store.save_committed(Some(log_id(2, 1, 9))).await.expect("committed");
            append_durably(&mut store, vec![blank(2, 13)]).await;
        }
        let mut reopened = open_log(dir.path()).expect("reopen");
        assert_eq!(reopened.read_vote().await.expect("vote"), Some(vote));
        assert_eq!(reopened.read_committed().await.expect("committed"), Some(log_id(2, 1, 9)));
        let state = reopened.get_log_state().await.expect("state");
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 1, 3)));
        assert_eq!(state.last_log_id, Some(log_id(2, 1, 13)));
        let entries = reopened.try_get_log_entries(0..100).await.expect("entries");
        let ids: Vec<_> = entries.iter().map(|e| (e.log_id.leader_id.term, e.log_id.index)).collect();
        let mut expected: Vec<_> = (4..=7).map(|i| (1, i)).collect();
        expected.extend((8..=13).map(|i| (2, i)));
        assert_eq!(ids, expected);
    });
}

#[test]
fn a_torn_tail_is_cut_and_the_rest_survives() {
    runtime().block_on(async {
        let dir = TempDir::new().expect("temp dir");
        {
            let mut store = open_log(dir.path()).expect("open");
            append_durably(&mut store, (1..=5).map(|i| blank(1, i)).collect()).await;
        }
        // Simulate a crash in the middle of writing a record: half a frame at the end.
        let newest =
            std::fs::read_dir(dir.path()).expect("dir").map(|e| e.expect("entry").path()).max().expect("a segment");
        let frame = wal::encode(&wal::Record::Entries(vec![blank(1, 6)])).expect("encode");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&newest)
            .expect("open segment")
            .write_all(&frame[..frame.len() / 2])
            .expect("write");
        let mut reopened = open_log(dir.path()).expect("reopen after torn write");
        let state = reopened.get_log_state().await.expect("state");
        assert_eq!(state.last_log_id, Some(log_id(1, 1, 5)));
        // And the log goes on from there.
        append_durably(&mut reopened, vec![blank(1, 6)]).await;
        drop(reopened);
        let mut again = open_log(dir.path()).expect("reopen");
        assert_eq!(again.get_log_state().await.expect("state").last_log_id, Some(log_id(1, 1, 6)));
    });
}

#[test]
fn corruption_before_the_newest_segment_refuses_to_start() {
    runtime().block_on(async {
        let dir = TempDir::new().expect("temp dir");
        {
            let mut store = open_log(dir.path()).expect("open");
            append_durably(&mut store, (1..=5).map(|i| blank(1, i)).collect()).await;
        }
        // Reopening starts a new segment, so the one with the entries is now an older one.
        drop(open_log(dir.path()).expect("reopen"));
        let mut segments: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").map(|e| e.expect("e").path()).collect();
        segments.sort();
        let mut bytes = std::fs::read(&segments[0]).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&segments[0], bytes).expect("write");
        assert!(open_log(dir.path()).is_err());
    });
}

#[test]
fn a_segment_of_another_format_is_refused_naming_both_and_an_unfinished_one_is_dropped() {
    runtime().block_on(async {
        let dir = TempDir::new().expect("temp dir");
        {
            let mut store = open_log(dir.path()).expect("open");
            append_durably(&mut store, (1..=3).map(|i| blank(1, i)).collect()).await;
        }
        let segments = || {
            let mut paths: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").map(|e| e.expect("e").path()).collect();
            paths.sort();
            paths
        };
        // Stopped while creating a segment: a part of its header only. Dropped at the next start,
        // and the entries before it are all there.
        let header = std::fs::read(&segments()[0]).expect("read")[..16].to_vec();
        let unfinished = dir.path().join("0000000099.wal");
        std::fs::write(&unfinished, &header[..7]).expect("write");
        let mut reopened = open_log(dir.path()).expect("an unfinished newest segment is no corruption");
        assert_eq!(reopened.get_log_state().await.expect("state").last_log_id, Some(log_id(1, 1, 3)));
        drop(reopened);
        assert!(!unfinished.exists(), "the unfinished segment is gone");
        // The same for zeros where its header belongs (its size reached the disk, its data not),
        // and for an empty one.
        // (Each start begins a segment of its own: the unfinished one is put after it.)
        let after_the_newest = || {
            let newest =
                segments().last().expect("a segment").file_stem().expect("a name").to_string_lossy().into_owned();
            dir.path().join(format!("{:010}.wal", newest.parse::<u64>().expect("a number") + 1))
        };
        for unfinished_bytes in [vec![0u8; 4096], Vec::new()] {
            let unfinished = after_the_newest();
            std::fs::write(&unfinished, unfinished_bytes).expect("write");
            drop(open_log(dir.path()).expect("an unfinished newest segment is no corruption"));
            assert!(!unfinished.exists(), "the unfinished segment is gone");
        }
        // A short segment of another build's header is refused, not read past its end.
        let mut short_other = header[..12].to_vec();
        short_other.extend([9, 9]);
        let unfinished = after_the_newest();
        std::fs::write(&unfinished, &short_other).expect("write");
        let error = open_log(dir.path()).err().expect("refused").to_string();
        assert!(error.contains("is 14 bytes, shorter than a segment header"), "{error}");
        std::fs::remove_file(&unfinished).expect("remove");
        // A segment of a later format, and one from before formats were written (no header).
        let oldest = segments()[0].clone();
        let original = std::fs::read(&oldest).expect("read");
        let mut later = original.clone();
        later[12..16].copy_from_slice(&(wal::WAL_FORMAT + 1).to_le_bytes());
        std::fs::write(&oldest, &later).expect("write");
        let error = open_log(dir.path()).err().expect("refused").to_string();
        let expected =
            format!("is WAL format {}; this build reads WAL format {}", wal::WAL_FORMAT + 1, wal::WAL_FORMAT);
        assert!(error.contains(&expected), "{error}");
        std::fs::write(&oldest, &original[16..]).expect("write");
        let error = open_log(dir.path()).err().expect("refused").to_string();
        assert!(error.contains("has no format header: it is WAL format 1"), "{error}");
        assert!(error.contains(&format!("this build reads WAL format {}", wal::WAL_FORMAT)), "{error}");
        // Nothing was changed by the refusals: the segment is as it was put there.
        assert_eq!(std::fs::read(&oldest).expect("read"), original[16..]);
    });
}

#[test]
fn purged_segments_are_deleted() {
    runtime().block_on(async {
        let dir = TempDir::new().expect("temp dir");
        for round in 0..3u64 {
            let mut store = open_log(dir.path()).expect("open");
            let first = round * 10 + 1;
            append_durably(&mut store, (first..first + 10).map(|i| blank(1, i)).collect()).await;
        }
        let count = || std::fs::read_dir(dir.path()).expect("dir").count();
        assert_eq!(count(), 3, "one segment per open");
        let mut store = open_log(dir.path()).expect("open");
        store.purge(log_id(1, 1, 20)).await.expect("purge");
        // The IO thread deletes after the next sync, once it has answered that write's caller.
        append_durably(&mut store, vec![blank(1, 31)]).await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while count() != 2 {
            assert!(std::time::Instant::now() < deadline, "segments holding only purged entries are gone: {}", count());
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        drop(store);
        let mut reopened = open_log(dir.path()).expect("reopen");
        let entries = reopened.try_get_log_entries(0..100).await.expect("entries");
        assert_eq!(entries.first().map(|e| e.log_id.index), Some(21));
        assert_eq!(entries.last().map(|e| e.log_id.index), Some(31));
    });
}

/// A state machine and the log store opened beside it (sharing its durable-snapshot gate), with
/// entries 1 to 10 durable in the log.
async fn state_machine_and_log_of_ten_entries() -> (TempDir, LedgerStore, LogStore) {
    let dir = TempDir::new().expect("temp dir");
    let state_machine = LedgerStore::open(&dir.path().join("snapshot")).expect("open state machine");
    let mut log = LogStore::open(&dir.path().join("log"), state_machine.durable_snapshot()).expect("open log");
    append_durably(&mut log, (1..=10).map(|i| blank(1, i)).collect()).await;
    (dir, state_machine, log)
}

/// A store as the network leaves it for the state machine to install: loaded, with a
/// checkpoint of an empty ledger at the snapshot's index.
fn received_store(
    state_machine: &LedgerStore,
    meta: &openraft::SnapshotMeta<NodeId, openraft::BasicNode>,
) -> state_machine::SnapshotData {
    let path = state_machine.incoming_store_path();
    let checkpoint =
        crate::store::CheckpointMeta { applied: meta.last_log_id, membership: meta.last_membership.clone() };
    let store = crate::store::Store::open(&path).expect("incoming store");
    store
        .write_checkpoint(
            &ledger::Changes::default(),
            &ledger::Ledger::new().encode_core(),
            &checkpoint,
            ledger::Regions::compiled_shared(),
        )
        .expect("checkpoint");
    state_machine::SnapshotData::Received(path)
}

/// The metadata of a snapshot a leader sends, ending at `index`.
fn leader_snapshot_meta(index: u64) -> openraft::SnapshotMeta<NodeId, openraft::BasicNode> {
    openraft::SnapshotMeta {
        last_log_id: Some(log_id(1, 1, index)),
        last_membership: openraft::StoredMembership::default(),
        snapshot_id: format!("from-the-leader-{index}"),
    }
}

#[test]
fn a_purge_waits_until_a_snapshot_on_disk_covers_it() {
    runtime().block_on(async {
        let (_dir, mut state_machine, mut log) = state_machine_and_log_of_ten_entries().await;

        // openraft purges right after it queues the installation of a leader's snapshot.
        let mut purging = log.clone();
        let purge = tokio::spawn(async move { purging.purge(log_id(1, 1, 8)).await });
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!purge.is_finished(), "no snapshot is on disk yet, so the purge waits");
        assert_eq!(log.get_log_state().await.expect("state").last_purged_log_id, None);

        let meta = leader_snapshot_meta(8);
        let received = received_store(&state_machine, &meta);
        state_machine.install_snapshot(&meta, Box::new(received)).await.expect("install");
        tokio::time::timeout(std::time::Duration::from_secs(10), purge)
            .await
            .expect("the purge goes on once the snapshot is durable")
            .expect("task")
            .expect("purge");
        assert_eq!(log.get_log_state().await.expect("state").last_purged_log_id, Some(log_id(1, 1, 8)));
    });
}

#[test]
fn a_purge_waiting_for_a_snapshot_fails_when_the_snapshot_cannot_be_installed() {
    runtime().block_on(async {
        let (_dir, mut state_machine, mut log) = state_machine_and_log_of_ten_entries().await;
        let mut purging = log.clone();
        let purge = tokio::spawn(async move { purging.purge(log_id(1, 1, 8)).await });
        let meta = leader_snapshot_meta(8);
        let path = state_machine.incoming_store_path();
        std::fs::write(&path, vec![0xff; 16]).expect("garbled store");
        let garbled = Box::new(state_machine::SnapshotData::Received(path));
        assert!(state_machine.install_snapshot(&meta, garbled).await.is_err());
        let outcome = tokio::time::timeout(std::time::Duration::from_secs(10), purge).await.expect("no hang");
        assert!(outcome.expect("task").is_err(), "RaftCore hears of the failure instead of waiting forever");
        assert_eq!(log.get_log_state().await.expect("state").last_purged_log_id, None);
    });
}
