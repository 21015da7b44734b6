//! Default deadlines when a dispatch names none, by kind. Calendar durations for now; the
//! working-day calendar and per-severity policy from config replace this table (issue:
//! deadlines that survive failover).

use cluster::ledger::TaskKind;

const MINUTE_MS: u64 = 60 * 1000;
const HOUR_MS: u64 = 60 * MINUTE_MS;
const DAY_MS: u64 = 24 * HOUR_MS;

/// (ack within, complete within) in milliseconds after dispatch.
pub fn default_deadlines_ms(kind: TaskKind) -> (u64, u64) {
    match kind {
        // 突发案件: sign within 15 minutes, settle within a day.
        TaskKind::Emergency => (15 * MINUTE_MS, DAY_MS),
        // Leads: 1 working day to sign, 15 working days to verify (approximated by calendar days).
        TaskKind::Lead => (DAY_MS, 15 * DAY_MS),
        TaskKind::RiskAlert => (4 * HOUR_MS, 5 * DAY_MS),
        TaskKind::Assignment | TaskKind::Referral => (DAY_MS, 10 * DAY_MS),
        TaskKind::Inspection => (3 * DAY_MS, 20 * DAY_MS),
    }
}
