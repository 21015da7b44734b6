//! Prometheus metrics of a node (`GET /metrics`, the `prometheus` crate's text format).
//!
//! Events are counted where they happen (HTTP requests, write batches, console pushes, the
//! deadline watch); states are read when Prometheus scrapes (Raft, the ledger, the outbox, the
//! process), so a scrape is a consistent picture and costs nothing between scrapes. Names follow
//! the Prometheus conventions: `xietong_` prefix, units in the name, `_total` for counters.

use prometheus::{
    exponential_buckets, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Seconds buckets from 0.5 ms to about 16 s.
pub(crate) fn latency_buckets() -> Vec<f64> {
    exponential_buckets(0.0005, 2.0, 16).expect("valid buckets")
}

pub struct Telemetry {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub write_batch_duration: Histogram,
    pub write_batch_commands: Histogram,
    pub push_latency: Histogram,
    pub fanout_publish_lag: Histogram,
    pub deadline_watch_lag: Histogram,
    pub raft_term: IntGauge,
    pub raft_is_leader: IntGauge,
    pub raft_last_log_index: IntGauge,
    pub raft_commit_index: IntGauge,
    pub raft_applied_index: IntGauge,
    pub raft_apply_lag: IntGauge,
    pub raft_purged_index: IntGauge,
    pub store_checkpoint_index: IntGauge,
    pub store_open_changes: IntGauge,
    pub snapshots_installed: IntCounter,
    pub commands_applied: IntCounter,
    pub console_connections: IntGauge,
    pub tasks: IntGaugeVec,
    pub tasks_open: IntGauge,
    pub tasks_overdue: IntGauge,
    pub outbox_messages: IntGauge,
    pub outbox_stuck_messages: IntGauge,
    pub outbox_oldest_age_seconds: IntGauge,
    pub resident_memory_bytes: IntGauge,
    pub cpu_seconds: prometheus::Counter,
    /// Warnings and errors the log held back as repeats (`logging`).
    pub log_events_held_back: IntCounter,
    /// The last day the committed working-day calendar covers, as a Unix time (its end,
    /// Beijing time), and the last day of its last published (not provisional) year.
    pub calendar_covered_until: IntGauge,
    pub calendar_confirmed_until: IntGauge,
    /// The committed version of each reference table (`table`: regions, calendar).
    pub reference_version: IntGaugeVec,
    /// Space left on the data directory's file system for this process's user, and in total.
    pub data_dir_available_bytes: IntGauge,
    pub data_dir_size_bytes: IntGauge,
    /// Sign-ins by outcome (`ok`, `invalid`, `limited`, `busy`).
    pub sign_ins: IntCounterVec,
    /// The password check of a sign-in.
    pub sign_in_seconds: Histogram,
    /// Session tokens checked, by outcome (`ok`, `expired`, `revoked`, `forged`).
    pub session_checks: IntCounterVec,
}

macro_rules! register {
    ($registry:expr, $metric:expr) => {{
        let metric = $metric.expect("a valid metric");
        $registry.register(Box::new(metric.clone())).expect("registered once");
        metric
    }};
}

impl Telemetry {
    pub fn new() -> Telemetry {
        let r = Registry::new();
        let gauge = |name: &str, help: &str| IntGauge::new(name, help);
        let build_info = register!(
            r,
            IntGaugeVec::new(
                Opts::new("xietong_build_info", "The running build: 1, labelled with its version and commit."),
                &["version", "commit"]
            )
        );
        build_info.with_label_values(&[crate::VERSION, crate::COMMIT]).set(1);
        Telemetry {
            http_requests: register!(
                r,
                IntCounterVec::new(
                    Opts::new("xietong_http_requests_total", "HTTP requests answered, by route, method and status."),
                    &["route", "method", "status"]
                )
            ),
            http_duration: register!(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "xietong_http_request_duration_seconds",
                        "Time to answer an HTTP request, by route."
                    )
                    .buckets(latency_buckets()),
                    &["route"]
                )
            ),
            write_batch_duration: register!(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "xietong_write_batch_duration_seconds",
                        "Time from proposing a batch of commands to its commit and apply on the leader."
                    )
                    .buckets(latency_buckets())
                )
            ),
            write_batch_commands: register!(
                r,
                Histogram::with_opts(
                    HistogramOpts::new("xietong_write_batch_commands", "Commands per Raft entry (group commit).")
                        .buckets(exponential_buckets(1.0, 2.0, 10).expect("valid buckets"))
                )
            ),
            push_latency: register!(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "xietong_console_push_latency_seconds",
                        "Time from an entry's apply to its event written to a console connection."
                    )
                    .buckets(latency_buckets())
                )
            ),
            fanout_publish_lag: register!(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "xietong_fanout_publish_lag_seconds",
                        "Time from an entry's events reaching the leader's hub to their XADD being answered by Redis."
                    )
                    .buckets(latency_buckets())
                )
            ),
            deadline_watch_lag: register!(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "xietong_deadline_watch_lag_seconds",
                        "How late the leader proposed a due deadline step (miss, reminder, escalation)."
                    )
                    .buckets(latency_buckets())
                )
            ),
            raft_term: register!(r, gauge("xietong_raft_term", "Current Raft term of this node.")),
            raft_is_leader: register!(r, gauge("xietong_raft_is_leader", "1 if this node leads its group.")),
            raft_last_log_index: register!(
                r,
                gauge("xietong_raft_last_log_index", "Index of the last entry in this node's log.")
            ),
            raft_commit_index: register!(
                r,
                gauge("xietong_raft_commit_index", "Index of the last entry known committed.")
            ),
            raft_applied_index: register!(
                r,
                gauge("xietong_raft_applied_index", "Index of the last entry applied to the ledger.")
            ),
            raft_apply_lag: register!(r, gauge("xietong_raft_apply_lag_entries", "Committed entries not yet applied.")),
            raft_purged_index: register!(
                r,
                gauge("xietong_raft_purged_index", "Log entries up to this index are purged.")
            ),
            store_checkpoint_index: register!(
                r,
                gauge(
                    "xietong_store_checkpoint_index",
                    "The last log index the ledger's store holds durably; the log is purged only behind it."
                )
            ),
            store_open_changes: register!(
                r,
                gauge("xietong_store_open_changes", "Records changed since the last checkpoint, held in memory.")
            ),
            calendar_covered_until: register!(
                r,
                gauge(
                    "xietong_calendar_covered_until_timestamp_seconds",
                    "The end of the last day the working-day calendar covers: working-day deadlines past it are refused."
                )
            ),
            calendar_confirmed_until: register!(
                r,
                gauge(
                    "xietong_calendar_confirmed_until_timestamp_seconds",
                    "The end of the last year of the calendar whose schedule is published (not provisional)."
                )
            ),
            reference_version: register!(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "xietong_reference_version",
                        "The committed version of a reference table (0: the one compiled in)."
                    ),
                    &["table"]
                )
            ),
            data_dir_available_bytes: register!(
                r,
                gauge("xietong_data_dir_available_bytes", "Space left for the node on its data directory's file system.")
            ),
            data_dir_size_bytes: register!(
                r,
                gauge("xietong_data_dir_size_bytes", "The size of the data directory's file system.")
            ),
            sign_ins: register!(
                r,
                IntCounterVec::new(Opts::new("xietong_sign_ins_total", "People's sign-ins by outcome."), &["outcome"])
            ),
            sign_in_seconds: register!(
                r,
                Histogram::with_opts(
                    HistogramOpts::new("xietong_sign_in_seconds", "The password check (argon2id) of a sign-in.")
                        .buckets(latency_buckets())
                )
            ),
            session_checks: register!(
                r,
                IntCounterVec::new(
                    Opts::new("xietong_session_checks_total", "Session tokens checked, by outcome."),
                    &["outcome"]
                )
            ),
            log_events_held_back: register!(
                r,
                IntCounter::new(
                    "xietong_log_events_held_back_total",
                    "Repeated warnings and errors not written to the log (counted in its periodic report)."
                )
            ),
            snapshots_installed: register!(
                r,
                IntCounter::new("xietong_snapshots_installed_total", "Snapshots received from a leader and installed.")
            ),
            commands_applied: register!(
                r,
                IntCounter::new("xietong_commands_applied_total", "Ledger commands applied, refusals included.")
            ),
            console_connections: register!(
                r,
                gauge("xietong_console_connections", "Console WebSocket connections open on this node.")
            ),
            tasks: register!(
                r,
                IntGaugeVec::new(
                    Opts::new("xietong_tasks", "Tasks in the ledger by state and kind."),
                    &["state", "kind"]
                )
            ),
            tasks_open: register!(r, gauge("xietong_tasks_open", "Dispatched tasks not yet completed.")),
            tasks_overdue: register!(r, gauge("xietong_tasks_overdue", "Open tasks past the deadline that runs now.")),
            outbox_messages: register!(
                r,
                gauge(
                    "xietong_federation_outbox_messages",
                    "Messages to other groups committed here and not yet receipted."
                )
            ),
            outbox_stuck_messages: register!(
                r,
                gauge(
                    "xietong_federation_stuck_messages",
                    "Of those, messages waiting longer than the configured stuck time."
                )
            ),
            outbox_oldest_age_seconds: register!(
                r,
                gauge(
                    "xietong_federation_outbox_oldest_age_seconds",
                    "Age of the oldest message waiting for a receipt."
                )
            ),
            resident_memory_bytes: register!(
                r,
                gauge("process_resident_memory_bytes", "Resident memory of this node's process.")
            ),
            cpu_seconds: register!(
                r,
                prometheus::Counter::new(
                    "process_cpu_seconds_total",
                    "CPU time of this node's process, user and system."
                )
            ),
            registry: r,
        }
    }

    /// Sets a counter read from a source that only grows (a scrape-time reading).
    pub fn set_counter(counter: &IntCounter, value: u64) {
        let current = counter.get();
        if value > current {
            counter.inc_by(value - current);
        }
    }

    pub fn encode(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer).expect("text encoding never fails");
        String::from_utf8(buffer).expect("the text format is UTF-8")
    }
}

impl Default for Telemetry {
    fn default() -> Telemetry {
        Telemetry::new()
    }
}
