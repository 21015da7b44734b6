//! Response-metrics benchmark (docs/benchmarks.md): a ledger of N tasks dispatched over a year
//! to the counties of Guangdong, most acknowledged and completed; measures building the book,
//! the cost of one incremental update, and the province-over-a-year query.
//!
//!   cargo run --release -p node --example metrics_bench -- 1000000

use std::time::Instant;

use ledger::response::beijing_day;
use ledger::{
    Action, Actor, BureauCode, Command, CompletionOutcome, Ledger, NewTask, Regions, Role, Routing, Severity, Source,
    Subject, TaskChange, TaskKind, Transition,
};
use node::response_metrics::{Book, Breakdown};

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;

fn main() {
    let tasks: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let province = BureauCode::parse_compiled("440000").expect("Guangdong");
    let counties: Vec<BureauCode> = Regions::compiled()
        .subtree(province)
        .filter(|r| r.level == ledger::bureau::RegionLevel::County)
        .map(|r| r.code)
        .collect();
    let command = Actor { user: "bench".into(), bureau: province, role: Role::Command };
    let start_ms = 1_767_225_600_000; // 2026-01-01
    let mut ledger = Ledger::new();
    let built = Instant::now();
    for i in 0..tasks {
        // Spread over a year in time order.
        let stamp = start_ms + i * (365 * DAY_MS / tasks);
        let county = counties[(i as usize) % counties.len()];
        let new = NewTask {
            kind: if i % 10 == 0 { TaskKind::Assignment } else { TaskKind::Lead },
            severity: Severity::Normal,
            title: format!("指标压测 {i}"),
            description: String::new(),
            subject: Subject { uscc: None, name: "压测商户".into(), region_code: county, address: String::new() },
            source: Source::BigData,
            origin_bureau: province,
            assignee_bureau: None,
            routing: Routing::Keep,
        };
        let apply = |ledger: &mut Ledger, actor: &Actor, action: Action| {
            ledger.apply(&Command { stamp_ms: stamp, actor: actor.clone(), idempotency: None, action }).expect("valid")
        };
        let id = apply(&mut ledger, &command, Action::CreateTask(new)).task().id;
        let change = |transition| {
            Action::ChangeTask(TaskChange { task: id, expected_version: None, note: String::new(), transition })
        };
        apply(
            &mut ledger,
            &command,
            change(Transition::Dispatch {
                assignee: county,
                ack_deadline_ms: stamp + 8 * HOUR_MS,
                complete_deadline_ms: stamp + 15 * DAY_MS,
            }),
        );
        if i % 4 != 0 {
            let operator = Actor { user: "op".into(), bureau: county, role: Role::Operator };
            apply(&mut ledger, &operator, change(Transition::Ack));
            if i % 3 != 0 {
                apply(
                    &mut ledger,
                    &operator,
                    change(Transition::Complete { outcome: CompletionOutcome::Warned, publication_deadline_ms: None }),
                );
            }
        }
    }
    println!("ledger of {tasks} tasks built in {:.1} s", built.elapsed().as_secs_f64());

    let started = Instant::now();
    let mut book = Book::new();
    for task in ledger.tasks_newest_first(None) {
        book.update(None, &task);
    }
    let build = started.elapsed();
    println!(
        "book built from the ledger in {:.0} ms ({:.2} µs per task)",
        build.as_secs_f64() * 1000.0,
        build.as_secs_f64() * 1e6 / tasks as f64
    );

    // One incremental update: a task's change replaces its facts.
    let sample: Vec<_> = ledger.tasks_newest_first(None).take(100_000).map(|t| (*t).clone()).collect();
    let started = Instant::now();
    for task in &sample {
        let mut changed = task.clone();
        changed.handling.escalated_to.push(province);
        book.update(Some(task), &changed);
        book.update(Some(&changed), task);
    }
    let per_update = started.elapsed().as_secs_f64() * 1e6 / (2 * sample.len()) as f64;
    println!("incremental update: {per_update:.2} µs per task change");

    let from = beijing_day(start_ms);
    let to = from + 364;
    for (name, by) in [("child bureau", Breakdown::Child), ("week", Breakdown::Week), ("day", Breakdown::Day)] {
        let mut times = Vec::new();
        let mut received = 0;
        for _ in 0..10 {
            let started = Instant::now();
            let report = book.report(Regions::compiled(), province, from, to, by, start_ms + 366 * DAY_MS);
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            received = report.total.received;
        }
        times.sort_by(f64::total_cmp);
        println!(
            "province over a year by {name} ({received} tasks): query p50 {:.1} ms, max {:.1} ms over {} runs",
            times[times.len() / 2],
            times[times.len() - 1],
            times.len()
        );
    }
}
