//! Measures candidate embedded stores for the ledger's state machine (issue 20) on the same
//! workload: a ledger of N tasks (values of about a kilobyte, five index keys each), then the
//! steady state of a state machine: batches of task changes committed without fsync, a durable
//! checkpoint every `CHECKPOINT_EVERY_BATCHES`, point reads, index pages, a full consistent scan
//! (what a snapshot transfer streams), and recovery after kill -9 in the middle of commits.
//!
//! `store-candidates <redb|fjall> <dir> <tasks>` prints one block of figures;
//! `store-candidates <redb|fjall> <dir> crash-writer` is the child the recovery phase kills.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod fjall_engine;
mod redb_engine;

/// Tasks written per load transaction when seeding.
const LOAD_BATCH: usize = 2_000;
/// Task changes per applied batch: a Raft entry of the batcher carries up to this many.
const CHANGES_PER_BATCH: usize = 64;
/// Steady-state batches measured.
const STEADY_BATCHES: usize = 4_000;
/// A durable checkpoint after this many batches (8,192 entries of 64 commands ≈ 128 batches).
const CHECKPOINT_EVERY_BATCHES: usize = 128;
/// Checkpointed steady state: distinct tasks changed per durable commit, and how many commits.
const CHECKPOINT_CHANGES: usize = 8_192;
const CHECKPOINTS: usize = 30;
const POINT_READS: usize = 100_000;
const PAGE_READS: usize = 10_000;
const PAGE_SIZE: usize = 50;
/// Distinct bureaus the index keys spread over (Guangdong's bureaus are about this many).
const BUREAUS: u32 = 160;
/// Share of tasks still open (the newest): changes fall on them nine times in ten. Set
/// `OPEN_SHARE` to model how much of the ledger is open work.
fn open_share() -> f64 {
    std::env::var("OPEN_SHARE").ok().and_then(|s| s.parse().ok()).unwrap_or(0.3)
}

/// What each candidate offers the state machine.
pub trait Engine {
    /// Writes tasks with their index keys, not durable.
    fn load(&mut self, tasks: &[(u64, Vec<u8>, Vec<Vec<u8>>)]);
    /// One applied batch: each change reads the task, writes its new value, removes old index keys
    /// and inserts new ones; committed without fsync (visible to readers).
    fn apply(&mut self, changes: &[Change], applied_index: u64);
    /// Makes everything so far durable.
    fn checkpoint(&mut self);
    fn get(&self, id: u64) -> Option<usize>;
    /// The newest `PAGE_SIZE` entries under an index prefix.
    fn page(&self, prefix: &[u8]) -> usize;
    /// Every task in one consistent view: bytes read.
    fn scan(&self) -> u64;
    fn applied_index(&self) -> u64;
}

pub struct Change {
    pub id: u64,
    /// The new value when the caller has it (a checkpoint writes what the ledger holds);
    /// otherwise the stored value is read and grown by `grow_by`.
    pub value: Option<Vec<u8>>,
    pub grow_by: usize,
    pub old_keys: Vec<Vec<u8>>,
    pub new_keys: Vec<Vec<u8>>,
}

/// A small deterministic generator (xorshift), so both engines see the same workload.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: [&str; 8] = ["食品安全", "投诉举报", "市场监管", "广州市天河区", "有限公司", "抽查检查", "处置完毕", "线索移送"];

/// A task-shaped value: Chinese text (compressible) and ids and stamps (not).
fn task_value(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut value = Vec::with_capacity(len);
    while value.len() < len {
        if rng.below(3) == 0 {
            value.extend_from_slice(&rng.next().to_le_bytes());
        } else {
            value.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes());
        }
    }
    value.truncate(len);
    value
}

fn index_keys(id: u64, bureau: u32, state: u8, kind: u8) -> Vec<Vec<u8>> {
    let key = |tag: u8, middle: &[u8]| {
        let mut key = vec![tag];
        key.extend_from_slice(middle);
        key.extend_from_slice(&id.to_be_bytes());
        key
    };
    vec![
        key(1, &bureau.to_be_bytes()),
        key(2, &[bureau.to_be_bytes().as_slice(), &[state]].concat()),
        key(3, &[bureau.to_be_bytes().as_slice(), &[kind]].concat()),
        key(4, &[state]),
        key(5, &(id % 1_000_003).to_be_bytes()),
    ]
}

fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let at = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[at].as_secs_f64() * 1e6
}

fn summary(name: &str, samples: &mut [Duration]) {
    println!(
        "{name:<34} p50 {:>9.1} µs  p99 {:>9.1} µs  max {:>9.1} µs",
        percentile(samples, 0.5),
        percentile(samples, 0.99),
        percentile(samples, 1.0)
    );
}

fn dir_bytes(path: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(path).expect("read dir").flatten() {
        let meta = entry.metadata().expect("metadata");
        total += if meta.is_dir() { dir_bytes(&entry.path()) } else { meta.len() };
    }
    total
}

/// CPU time of the whole process (every thread, the stores' background ones too), in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name: utime and stime are the 14th and 15th, in clock ticks.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn anon_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find(|line| line.starts_with("RssAnon:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn open(engine: &str, dir: &Path) -> Box<dyn Engine> {
    match engine {
        "redb" => Box::new(redb_engine::Redb::open(dir, false)),
        "redb-quick-repair" => Box::new(redb_engine::Redb::open(dir, true)),
        "fjall" => Box::new(fjall_engine::Fjall::open(dir)),
        other => panic!("unknown engine {other}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let engine = args.get(1).expect("engine").as_str();
    let dir = PathBuf::from(args.get(2).expect("dir"));
    if args.get(3).map(String::as_str) == Some("crash-writer") {
        crash_writer(engine, &dir);
    }
    let tasks: u64 = args.get(3).expect("tasks").parse().expect("a number");
    std::fs::create_dir_all(&dir).expect("dir");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);

    let started = Instant::now();
    let mut store = open(engine, &dir);
    println!("{engine} (open share {}): open empty {:.1} ms", open_share(), started.elapsed().as_secs_f64() * 1e3);

    // Seeding: N tasks in load transactions, a checkpoint every 50.
    let started = Instant::now();
    let mut id = 1;
    let mut batches = 0;
    while id <= tasks {
        let batch: Vec<_> = (id..(id + LOAD_BATCH as u64).min(tasks + 1))
            .map(|id| {
                let len = 600 + rng.below(1_200) as usize;
                let bureau = rng.below(BUREAUS as u64) as u32;
                (id, task_value(&mut rng, len), index_keys(id, bureau, (rng.below(6)) as u8, (rng.below(5)) as u8))
            })
            .collect();
        id += batch.len() as u64;
        store.load(&batch);
        batches += 1;
        if batches % 50 == 0 {
            store.checkpoint();
        }
    }
    store.checkpoint();
    let load = started.elapsed();
    println!(
        "load {tasks} tasks                    {:.1} s ({:.0} tasks/s), disk {:.0} MiB, anon RSS {:.0} MiB",
        load.as_secs_f64(),
        tasks as f64 / load.as_secs_f64(),
        dir_bytes(&dir) as f64 / 1_048_576.0,
        anon_rss_mib()
    );

    // Steady state, inline: batches of changes committed without fsync as they are applied,
    // a durable checkpoint every `CHECKPOINT_EVERY_BATCHES`.
    let open_from = (tasks as f64 * (1.0 - open_share())) as u64;
    let pick = |rng: &mut Rng| {
        if rng.below(10) < 9 { open_from + rng.below(tasks - open_from) + 1 } else { rng.below(tasks) + 1 }
    };
    let change_of = |id: u64| {
        let bureau = (id % BUREAUS as u64) as u32;
        Change {
            id,
            value: None,
            grow_by: 100,
            old_keys: index_keys(id, bureau, 1, 0)[1..3].to_vec(),
            new_keys: index_keys(id, bureau, 2, 0)[1..3].to_vec(),
        }
    };
    let mut apply_samples = Vec::with_capacity(STEADY_BATCHES);
    let mut checkpoint_samples = Vec::new();
    let started = Instant::now();
    for batch_number in 0..STEADY_BATCHES {
        let changes: Vec<Change> = (0..CHANGES_PER_BATCH).map(|_| change_of(pick(&mut rng))).collect();
        let one = Instant::now();
        store.apply(&changes, batch_number as u64 + 1);
        apply_samples.push(one.elapsed());
        if (batch_number + 1) % CHECKPOINT_EVERY_BATCHES == 0 {
            let one = Instant::now();
            store.checkpoint();
            checkpoint_samples.push(one.elapsed());
        }
    }
    let steady = started.elapsed();
    println!(
        "inline: {STEADY_BATCHES} batches of {CHANGES_PER_BATCH} changes  {:.0} changes/s overall",
        (STEADY_BATCHES * CHANGES_PER_BATCH) as f64 / steady.as_secs_f64()
    );
    summary("apply one batch (no fsync)", &mut apply_samples);
    summary("checkpoint (durable)", &mut checkpoint_samples);

    // Steady state, checkpointed: the changes of `CHECKPOINT_CHANGES` distinct tasks, held in
    // memory meanwhile, written sorted by id in one durable commit.
    let mut samples = Vec::with_capacity(CHECKPOINTS);
    let started = Instant::now();
    let cpu_before = cpu_seconds();
    for checkpoint in 0..CHECKPOINTS {
        let mut ids: Vec<u64> = (0..CHECKPOINT_CHANGES).map(|_| pick(&mut rng)).collect();
        ids.sort_unstable();
        ids.dedup();
        let changes: Vec<Change> = ids
            .into_iter()
            .map(|id| {
                let len = 800 + rng.below(1_600) as usize;
                Change { value: Some(task_value(&mut rng, len)), ..change_of(id) }
            })
            .collect();
        let one = Instant::now();
        store.apply(&changes, 1_000 + checkpoint as u64);
        store.checkpoint();
        samples.push(one.elapsed());
    }
    let steady = started.elapsed();
    println!(
        "checkpointed: {CHECKPOINTS} × {CHECKPOINT_CHANGES} changes        {:.0} changes/s overall",
        (CHECKPOINTS * CHECKPOINT_CHANGES) as f64 / steady.as_secs_f64()
    );
    summary("one checkpoint (durable)", &mut samples);
    // Background work (an LSM's flushes and compactions) goes on after the last commit: wait for
    // it to settle so the CPU figure includes it.
    std::thread::sleep(Duration::from_secs(10));
    println!(
        "CPU per change, background included     {:.1} µs",
        (cpu_seconds() - cpu_before) * 1e6 / (CHECKPOINTS * CHECKPOINT_CHANGES) as f64
    );

    let mut samples = Vec::with_capacity(POINT_READS);
    for _ in 0..POINT_READS {
        let id = rng.below(tasks) + 1;
        let one = Instant::now();
        assert!(store.get(id).is_some(), "task {id} present");
        samples.push(one.elapsed());
    }
    summary("point read (any task)", &mut samples);

    let mut samples = Vec::with_capacity(PAGE_READS);
    for _ in 0..PAGE_READS {
        let mut prefix = vec![1u8];
        prefix.extend_from_slice(&(rng.below(BUREAUS as u64) as u32).to_be_bytes());
        let one = Instant::now();
        let found = store.page(&prefix);
        samples.push(one.elapsed());
        assert!(found > 0);
    }
    summary("index page of 50, newest first", &mut samples);

    let one = Instant::now();
    let bytes = store.scan();
    let scanned = one.elapsed();
    println!(
        "full consistent scan                {:.1} s, {:.0} MiB/s",
        scanned.as_secs_f64(),
        bytes as f64 / 1_048_576.0 / scanned.as_secs_f64()
    );
    store.checkpoint();
    println!("disk after steady state              {:.0} MiB, anon RSS {:.0} MiB", dir_bytes(&dir) as f64 / 1_048_576.0, anon_rss_mib());
    drop(store);

    let one = Instant::now();
    let store = open(engine, &dir);
    println!("reopen after a clean close           {:.1} ms", one.elapsed().as_secs_f64() * 1e3);
    drop(store);

    // Recovery: a child commits without pause (a checkpoint every 128 batches) and is killed.
    let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args([engine, dir.to_str().expect("utf-8"), "crash-writer"])
        .spawn()
        .expect("child");
    std::thread::sleep(Duration::from_secs(5));
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let one = Instant::now();
    let store = open(engine, &dir);
    println!(
        "reopen after kill -9 mid-commit      {:.1} ms (applied index {} survived)",
        one.elapsed().as_secs_f64() * 1e3,
        store.applied_index()
    );
}

/// The child of the recovery phase: changes and checkpoints until it is killed.
fn crash_writer(engine: &str, dir: &Path) -> ! {
    let mut store = open(engine, dir);
    let mut rng = Rng(7);
    for batch_number in 1.. {
        let changes: Vec<Change> = (0..CHANGES_PER_BATCH)
            .map(|_| Change { id: rng.below(1_000) + 1, value: None, grow_by: 10, old_keys: vec![], new_keys: vec![] })
            .collect();
        store.apply(&changes, 1_000_000 + batch_number);
        if batch_number % CHECKPOINT_EVERY_BATCHES as u64 == 0 {
            store.checkpoint();
        }
    }
    unreachable!()
}
