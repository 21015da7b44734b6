//! Health, readiness and Prometheus metrics. No authentication: probes and scrapers call these.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use ledger::{TaskKind, TaskState};
use openraft::ServerState;

use crate::state::AppState;
use crate::telemetry::Telemetry;

/// Why this node cannot do its work at all, if so: its state machine stopped applying, or
/// Raft stopped with a fatal error. Restarting the process does not help by itself; an
/// operator must look (the reason is in the answer and the log).
fn broken(state: &AppState) -> Option<String> {
    if let Some(failure) = state.store.failure() {
        return Some(format!("the state machine stopped: {failure}"));
    }
    let running = state.raft.metrics().borrow().running_state.clone();
    running.err().map(|fatal| format!("raft stopped: {fatal}"))
}

/// Alive: the process serves HTTP and its replica still applies the log.
pub async fn healthz(State(state): State<AppState>) -> Response {
    match broken(&state) {
        None => (StatusCode::OK, "ok\n").into_response(),
        Some(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("failed: {reason}\n")).into_response(),
    }
}

/// Ready: Raft is running, this node knows a leader and has applied the leader's commit but for
/// at most `[limits] ready_lag_entries_max` entries (`readiness`), so it serves writes (directly
/// or by forwarding) and reads that are close to fresh.
pub async fn readyz(State(state): State<AppState>) -> Response {
    if let Some(reason) = broken(&state) {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {reason}\n")).into_response();
    }
    match crate::readiness::check(&state) {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {reason}\n")).into_response(),
    }
}

/// Prometheus text format: scrape-time states are read into the registry's gauges, then the
/// whole registry (with the event counters and histograms) is encoded.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let t = &state.telemetry;
    let raft = state.raft.metrics().borrow().clone();
    let as_i64 = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
    let applied = raft.last_applied.map_or(0, |l| l.index);
    let committed = state.log.committed_index().unwrap_or(0);
    t.raft_term.set(as_i64(raft.current_term));
    t.raft_is_leader.set(i64::from(raft.state == ServerState::Leader));
    t.raft_last_log_index.set(as_i64(raft.last_log_index.unwrap_or(0)));
    t.raft_commit_index.set(as_i64(committed));
    t.raft_applied_index.set(as_i64(applied));
    t.raft_apply_lag.set(as_i64(committed.saturating_sub(applied)));
    t.raft_purged_index.set(as_i64(raft.purged.map_or(0, |l| l.index)));
    t.store_checkpoint_index.set(as_i64(state.store.durable_snapshot().index().unwrap_or(0)));
    Telemetry::set_counter(&t.snapshots_installed, state.store.snapshots_installed());
    Telemetry::set_counter(&t.log_events_held_back, crate::logging::held_back_total());
    t.console_connections.set(state.ws_connections.total() as i64);
    if let Some(rss) = resident_memory_bytes() {
        t.resident_memory_bytes.set(as_i64(rss));
    }
    if let Some(cpu) = cpu_seconds() {
        let delta = cpu - t.cpu_seconds.get();
        if delta > 0.0 {
            t.cpu_seconds.inc_by(delta);
        }
    }
    let now_ms = crate::api::time::now_ms();
    {
        let replica = state.store.read();
        Telemetry::set_counter(&t.commands_applied, replica.ledger.commands_applied());
        t.store_open_changes.set(replica.ledger.open_changes() as i64);
        t.outbox_messages.set(replica.ledger.outbox_len() as i64);
        t.outbox_stuck_messages.set(replica.ledger.outbox().filter(|entry| entry.stuck_flagged).count() as i64);
        let oldest = replica.ledger.outbox().map(|entry| entry.committed_ms).min();
        t.outbox_oldest_age_seconds.set(oldest.map_or(0, |ms| as_i64(now_ms.saturating_sub(ms) / 1000)));
    }
    let census = state.response_metrics.census(now_ms);
    for task_state in TaskState::ALL {
        for kind in TaskKind::ALL {
            let count = census.by_state_kind.get(&(*task_state, *kind)).copied().unwrap_or(0);
            t.tasks.with_label_values(&[task_state.as_str(), kind.as_str()]).set(as_i64(count));
        }
    }
    t.tasks_open.set(as_i64(census.open));
    t.tasks_overdue.set(as_i64(census.overdue));
    if let Some((available, size)) = file_system_space(&state.data_dir) {
        t.data_dir_available_bytes.set(as_i64(available));
        t.data_dir_size_bytes.set(as_i64(size));
    }
    let calendar = state.calendar();
    t.calendar_covered_until.set(calendar_end_seconds(calendar.covered_until()));
    t.calendar_confirmed_until.set(calendar.confirmed_until().map_or(0, calendar_end_seconds));
    {
        let replica = state.store.read();
        let reference = replica.ledger.reference();
        let regions_version = reference.region_versions().last().map_or(0, |adoption| adoption.number);
        t.reference_version.with_label_values(&["regions"]).set(i64::from(regions_version));
        t.reference_version.with_label_values(&["calendar"]).set(i64::from(reference.calendar().0));
    }
    let mut text = t.encode();
    text.push_str(&crate::certificate::expiry_metric(state.transport.certificate_expires_at()));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// The end of `last_day` in Beijing time, as a Unix time.
fn calendar_end_seconds(last_day: time::Date) -> i64 {
    let beijing = time::UtcOffset::from_hms(8, 0, 0).expect("a valid offset");
    last_day.next_day().map_or(i64::MAX, |day| day.midnight().assume_offset(beijing).unix_timestamp())
}

/// Space left for this process's user and the size of the file system holding `path`.
fn file_system_space(path: &std::path::Path) -> Option<(u64, u64)> {
    let stats = fs4::statvfs(path).ok()?;
    Some((stats.available_space(), stats.total_space()))
}

/// VmRSS from /proc/self/status (Linux).
pub(crate) fn resident_memory_bytes() -> Option<u64> {
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
