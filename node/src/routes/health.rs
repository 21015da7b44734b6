//! Health, readiness and Prometheus metrics. No authentication: probes and scrapers call these.

use std::fmt::Write;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use cluster::ledger::TaskState;
use openraft::ServerState;

use crate::state::AppState;

/// Alive: the process serves HTTP.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready: this node knows a leader and Raft is running, so it can serve writes (directly or
/// by forwarding) and fresh reads.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let metrics = state.raft.metrics().borrow().clone();
    let running = metrics.running_state.is_ok();
    if running && metrics.current_leader.is_some() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready: no leader known\n").into_response()
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let raft = state.raft.metrics().borrow().clone();
    let mut out = String::new();
    let gauge = |out: &mut String, name: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
    };
    gauge(&mut out, "xietong_raft_term", "Current Raft term of this node.", raft.current_term);
    gauge(
        &mut out,
        "xietong_raft_is_leader",
        "1 if this node leads its group.",
        u64::from(raft.state == ServerState::Leader),
    );
    gauge(
        &mut out,
        "xietong_raft_last_log_index",
        "Index of the last entry in this node's log.",
        raft.last_log_index.unwrap_or(0),
    );
    gauge(
        &mut out,
        "xietong_raft_applied_index",
        "Index of the last entry applied to the ledger.",
        raft.last_applied.map_or(0, |l| l.index),
    );
    let _ = writeln!(
        out,
        "# HELP xietong_snapshots_installed_total Snapshots received from a leader and installed.\n# TYPE xietong_snapshots_installed_total counter\nxietong_snapshots_installed_total {}",
        state.store.snapshots_installed()
    );
    if let Some(cpu) = cpu_seconds() {
        let _ = writeln!(out, "# HELP process_cpu_seconds_total CPU time of this node's process.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {cpu:.3}");
    }
    if let Some(rss) = resident_memory_bytes() {
        gauge(&mut out, "process_resident_memory_bytes", "Resident memory of this node's process.", rss);
    }
    gauge(
        &mut out,
        "xietong_console_connections",
        "Console WebSocket connections open on this node.",
        state.ws_connections.total() as u64,
    );
    let replica = state.store.read();
    let _ = writeln!(
        out,
        "# HELP xietong_commands_applied_total Ledger commands applied, refusals included.\n# TYPE xietong_commands_applied_total counter\nxietong_commands_applied_total {}",
        replica.ledger.commands_applied()
    );
    let stuck = replica.ledger.outbox().filter(|entry| entry.stuck_flagged).count();
    gauge(
        &mut out,
        "xietong_federation_outbox_messages",
        "Messages to other groups committed here and not yet receipted.",
        replica.ledger.outbox_len() as u64,
    );
    gauge(
        &mut out,
        "xietong_federation_stuck_messages",
        "Of those, messages waiting longer than the configured stuck time.",
        stuck as u64,
    );
    let mut by_state = [0u64; TaskState::ALL.len()];
    for task in replica.ledger.tasks_newest_first(None) {
        by_state[TaskState::ALL.iter().position(|s| *s == task.state).expect("closed enum")] += 1;
    }
    drop(replica);
    let _ = writeln!(out, "# HELP xietong_tasks Tasks in the ledger by state.\n# TYPE xietong_tasks gauge");
    for (task_state, count) in TaskState::ALL.iter().zip(by_state) {
        let _ = writeln!(out, "xietong_tasks{{state=\"{task_state}\"}} {count}");
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// VmRSS from /proc/self/status (Linux).
fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// User plus system CPU time from /proc/self/stat (Linux; clock ticks of 1/100 s).
fn cpu_seconds() -> Option<f64> {
    /// The kernel's USER_HZ, which is 100 on every Linux platform we run on.
    const TICKS_PER_SECOND: f64 = 100.0;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}
