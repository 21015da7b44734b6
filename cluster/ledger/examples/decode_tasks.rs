//! How fast the store's tasks decode (`ledger::codec::decode_task`), by the form they were
//! written in: a task no person worked, a worked one, and (where this build has them) one with
//! another department's part. Every read of a task from the store goes through it, so a scan of
//! a province's history (a beacon before risk files, the entry that turns them on, a restore's
//! check) costs this per task.
//!
//! `cargo run --release -p ledger --example decode_tasks -- 2000000`

use std::time::Instant;

use ledger::codec::{decode_task, encode};
use ledger::federation::Routing;
use ledger::{Action, Actor, BureauCode, Command, Ledger, NewTask, Role, Severity, Source, Subject, TaskKind};

fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
    let tianhe = BureauCode::parse_compiled("440106").expect("a region");
    let mut ledger = Ledger::new();
    let lead = NewTask {
        kind: TaskKind::Lead,
        severity: Severity::High,
        title: "网络销售假冒商品线索".to_owned(),
        description: "群众反映某网店销售假冒品牌商品，附商品链接与截图。".to_owned(),
        subject: Subject {
            uscc: None,
            name: "某某电子商务有限公司".to_owned(),
            region_code: tianhe,
            address: "广州市天河区天河路1号".to_owned(),
        },
        source: Source::BigData,
        origin_bureau: BureauCode::parse_compiled("440000").expect("a region"),
        assignee_bureau: Some(tianhe),
        routing: Routing::Keep,
    };
    let actor =
        Actor { user: "gd-command".into(), bureau: BureauCode::parse_compiled("440000").unwrap(), role: Role::Command };
    let command = Command { stamp_ms: 1_780_000_000_000, actor, idempotency: None, action: Action::CreateTask(lead) };
    let unworked = (*ledger.apply(&command).expect("created").tasks[0]).clone();
    let mut worked = unworked.clone();
    worked.field_work.handlers.unit = Some(tianhe);
    let mut forms = vec![("unworked", encode(&unworked).unwrap()), ("worked", encode(&worked).unwrap())];
    forms.extend(with_a_part(&worked));
    for (name, bytes) in forms {
        let started = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(decode_task(std::hint::black_box(&bytes)).expect("decodes"));
        }
        let per_task = started.elapsed().as_nanos() as f64 / rounds as f64;
        println!("{name:>9}: {} bytes, {per_task:.0} ns per task ({rounds} decodes)", bytes.len());
    }
}

/// A worked task with another department's part (a joint inspection's), in this build.
fn with_a_part(worked: &ledger::Task) -> Option<(&'static str, Vec<u8>)> {
    let mut joint = worked.clone();
    joint.field_work.department_parts.push(ledger::campaign::departments::DepartmentPart {
        department: "tax".into(),
        outcome: ledger::CompletionOutcome::Corrected,
        summary: "发票开具不规范，已责令改正".into(),
        inspector: "TX001".into(),
        entered_by: "person:7:税务检查员".into(),
        at_ms: 1_780_000_000_000,
    });
    Some(("with part", encode(&joint).unwrap()))
}
