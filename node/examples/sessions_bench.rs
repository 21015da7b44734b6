//! Sign-in and session benchmark (docs/benchmarks.md): what one sign-in costs (the argon2id
//! check, through the node's gate and a blocking thread), and how many session tokens a node
//! checks a second (seal, decode, the account in `PeopleNow`), on one thread and on two.
//!
//!   cargo run --release -p node --example sessions_bench

use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::raft::{GroupSecret, LedgerStore};
use ledger::organisation::{Person, PersonChange, PersonEvent, PersonId, PersonRole};
use ledger::BureauCode;
use node::sessions::{hash_password, Sessions};

const SIGN_INS: usize = 50;
const CHECKS: usize = 200_000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = LedgerStore::open(dir.path()).expect("a store");
    let phc = hash_password("a long enough password").expect("a hash");
    let person = Arc::new(Person {
        id: PersonId(1),
        login: "bench.li".into(),
        name: "李明".into(),
        unit: BureauCode::parse_compiled("440106").expect("Tianhe"),
        roles: vec![PersonRole::Handler],
        enabled: true,
        password_phc: phc,
        epoch: 0,
        created_at_ms: 0,
        inspector: None,
        history: vec![PersonEvent { at_ms: 0, by: "bench".into(), change: PersonChange::Created, note: String::new() }],
    });
    store.people_now().update(vec![person.clone()]);
    let secret = GroupSecret::new("bench-secret-bench-secret-bench-secret").expect("a secret");
    let sessions = Arc::new(Sessions::new(secret, store, Arc::new(node::telemetry::Telemetry::new())));

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let mut times = Vec::with_capacity(SIGN_INS);
    for _ in 0..SIGN_INS {
        let started = Instant::now();
        runtime.block_on(sessions.sign_in("bench.li", "a long enough password", 1)).expect("signed in");
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "sign-in (argon2id m=19456 KiB t=2 p=1): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {SIGN_INS}",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
        times.last().expect("timed").as_secs_f64() * 1e3
    );

    let token = sessions.issue(&person, 1).token;
    for threads in [1usize, 2] {
        let started = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..threads {
                let (sessions, token) = (&sessions, &token);
                scope.spawn(move || {
                    for _ in 0..CHECKS / threads {
                        sessions.check(token, 2).expect("a valid session");
                    }
                });
            }
        });
        let elapsed = started.elapsed();
        println!(
            "session checks on {threads} thread(s): {:.0}/s ({:.2} µs each)",
            CHECKS as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1e6 / (CHECKS / threads) as f64
        );
    }
}
