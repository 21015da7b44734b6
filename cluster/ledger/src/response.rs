//! What one task contributes to the response metrics (`Facts`), derived from the task alone, so
//! every replica derives the same facts from the same ledger; and their sum over the tasks of one
//! bureau and dispatch day (`Tally`), which the store keeps per checkpoint and a node's book
//! keeps live (`node::response_metrics`).
//!
//! A task counts for the bureau it was dispatched to (the bureau judged on its response), in
//! the cohort of the Beijing day it was dispatched: "of the tasks received in the period, how
//! many were acknowledged, how fast, how many on time".
//!
//! Not part of the replicated state: a derivation, so the figures can change definition without
//! touching the log (the store rebuilds its tallies when `TALLY_VERSION` changes).

use serde::{Deserialize, Serialize};

use crate::{BureauCode, ComplaintChannel, Source, Task, TaskKind, TaskState};

/// The version of what `Facts::of` derives and `Tally` holds; a store whose tallies were derived
/// under another version derives them again.
pub const TALLY_VERSION: u32 = 2;

/// Beijing time is UTC+8 all year (no daylight saving).
const BEIJING_OFFSET_MS: u64 = 8 * 60 * 60 * 1000;
const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Days since 1970-01-01 in Beijing time.
pub fn beijing_day(ms: u64) -> u32 {
    u32::try_from(ms.saturating_add(BEIJING_OFFSET_MS) / DAY_MS).unwrap_or(u32::MAX)
}

/// Unix ms of the start of a Beijing day.
pub fn day_start_ms(day: u32) -> u64 {
    (u64::from(day) * DAY_MS).saturating_sub(BEIJING_OFFSET_MS)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    /// The bureau the task counts for: the one it was dispatched to.
    pub bureau: BureauCode,
    /// The Beijing day of the (latest) dispatch.
    pub day: u32,
    pub acked: bool,
    pub ack_on_time: bool,
    pub ack_secs: Option<u32>,
    pub completed: bool,
    pub complete_on_time: bool,
    pub complete_secs: Option<u32>,
    pub closed: bool,
    pub cancelled: bool,
    pub escalations: u32,
    /// Reminders sent to the assignee about its deadlines.
    pub reminders: u32,
    pub extensions: u32,
    /// 交办 or 转办.
    pub assignment_or_referral: bool,
    pub inspection: bool,
    /// A completed inspection whose last on-site record is complete evidence (a photo, the
    /// inspectors' and the representative's signatures: `SiteRecord::is_complete`).
    pub inspection_recorded: bool,
    /// From the complaint channel (投诉举报), and handled (completed) on time.
    pub complaint: bool,
    /// Handed to another group from here, or received from one.
    pub forwarded_out: bool,
    pub forwarded_in: bool,
    /// Still open and dispatched (its clock runs here): counted in "open now".
    pub open: bool,
    /// The deadline that runs now, for "overdue now".
    pub running_deadline_ms: Option<u64>,
}

fn secs_between(from_ms: u64, to_ms: u64) -> u32 {
    u32::try_from(to_ms.saturating_sub(from_ms) / 1000).unwrap_or(u32::MAX)
}

impl Facts {
    /// The facts of a task; `None` when it was never dispatched (it counts for no bureau yet),
    /// or when it is the record of a lead handed to another group for good: that group's own
    /// metrics judge its bureaus, and the assignee here is only that group's report.
    pub fn of(task: &Task) -> Option<Facts> {
        if task.remote.as_ref().is_some_and(|remote| remote.purpose.hands_over_ownership()) {
            return None;
        }
        let assignee = task.handling.assignee_bureau?;
        let dispatched_ms = task.handling.dispatched_at_ms?;
        let acked_at = task.handling.acked_at_ms;
        let completed_at = task.handling.completed_at_ms;
        // A returned result is not done: the assignee works on until it completes again.
        let completed =
            completed_at.is_some() && matches!(task.handling.state, TaskState::Completed | TaskState::Closed);
        Some(Facts {
            bureau: assignee,
            day: beijing_day(dispatched_ms),
            acked: acked_at.is_some(),
            ack_on_time: acked_at.zip(task.handling.ack_deadline_ms).is_some_and(|(at, deadline)| at <= deadline),
            ack_secs: acked_at.map(|at| secs_between(dispatched_ms, at)),
            completed,
            complete_on_time: completed
                && completed_at.zip(task.handling.complete_deadline_ms).is_some_and(|(at, deadline)| at <= deadline),
            complete_secs: completed_at.filter(|_| completed).map(|at| secs_between(dispatched_ms, at)),
            closed: task.handling.state == TaskState::Closed,
            cancelled: task.handling.state == TaskState::Cancelled,
            escalations: task.handling.escalated_to.len() as u32,
            reminders: task.handling.reminders_sent,
            extensions: task.handling.extensions_granted,
            assignment_or_referral: matches!(task.kind, TaskKind::Assignment | TaskKind::Referral),
            inspection: task.kind == TaskKind::Inspection,
            inspection_recorded: task.kind == TaskKind::Inspection
                && completed
                && task
                    .field_work
                    .site_records
                    .last()
                    .is_some_and(|record| record.is_complete(crate::site_record::inspector_signatures_needed(task))),
            complaint: task.source == Source::Complaint
                || task
                    .complaint
                    .as_ref()
                    .is_some_and(|c| matches!(c.channel, ComplaintChannel::Complaint | ComplaintChannel::TipOff)),
            forwarded_out: task.remote.is_some(),
            forwarded_in: task.received.is_some(),
            open: matches!(task.handling.state, TaskState::Dispatched | TaskState::Acknowledged | TaskState::Returned),
            running_deadline_ms: task.running_deadline_ms(),
        })
    }
}

/// What a change of a task does to the figures: the facts of its version `before` (`None` for a
/// new task) to take out and those of `after` to put in; `None` when they are the same. The one
/// rule the store's tallies and a node's book both follow.
pub fn facts_changed(before: Option<&Task>, after: &Task) -> Option<(Option<Facts>, Option<Facts>)> {
    let (old, new) = (before.and_then(Facts::of), Facts::of(after));
    (old != new).then_some((old, new))
}

/// Durations in seconds, kept as counts per bucket: exact below `EXACT_BELOW_SECS`, above it
/// 64 buckets per doubling, so a percentile read from them is within 1/128 (0.8 %) of the exact
/// one. A tally's memory is bounded by its buckets (at most `BUCKETS`), not by its tasks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Durations {
    /// (bucket, count), in bucket order, no count zero.
    buckets: Vec<(u16, u64)>,
}

/// Durations below this many seconds have a bucket each.
const EXACT_BELOW_SECS: u32 = 128;
/// Buckets per doubling above `EXACT_BELOW_SECS` (a power of two).
const BUCKETS_PER_DOUBLING: u32 = 64;
/// Every bucket a `u32` of seconds can fall in.
pub const BUCKETS: usize = (EXACT_BELOW_SECS + (32 - 7) * BUCKETS_PER_DOUBLING) as usize;

fn bucket_of(secs: u32) -> u16 {
    if secs < EXACT_BELOW_SECS {
        return secs as u16;
    }
    let doubling = 31 - secs.leading_zeros(); // 7..=31
    let step = secs >> (doubling - 6); // 64..128
    (EXACT_BELOW_SECS + (doubling - 7) * BUCKETS_PER_DOUBLING + (step - BUCKETS_PER_DOUBLING)) as u16
}

/// The value a bucket stands for: itself when exact, else the middle of its range.
fn value_of(bucket: u16) -> u32 {
    let bucket = u32::from(bucket);
    if bucket < EXACT_BELOW_SECS {
        return bucket;
    }
    let doubling = 7 + (bucket - EXACT_BELOW_SECS) / BUCKETS_PER_DOUBLING;
    let step = BUCKETS_PER_DOUBLING + (bucket - EXACT_BELOW_SECS) % BUCKETS_PER_DOUBLING;
    let width = 1u64 << (doubling - 6);
    u32::try_from(u64::from(step) * width + width / 2).unwrap_or(u32::MAX)
}

impl Durations {
    pub fn add(&mut self, secs: u32) {
        let bucket = bucket_of(secs);
        match self.buckets.binary_search_by_key(&bucket, |(b, _)| *b) {
            Ok(at) => self.buckets[at].1 += 1,
            Err(at) => self.buckets.insert(at, (bucket, 1)),
        }
    }

    pub fn remove(&mut self, secs: u32) -> Result<(), NotCounted> {
        let bucket = bucket_of(secs);
        let at = self.buckets.binary_search_by_key(&bucket, |(b, _)| *b).map_err(|_| NotCounted)?;
        self.buckets[at].1 -= 1;
        if self.buckets[at].1 == 0 {
            self.buckets.remove(at);
        }
        Ok(())
    }

    pub fn merge(&mut self, other: &Durations) {
        for (bucket, count) in &other.buckets {
            match self.buckets.binary_search_by_key(bucket, |(b, _)| *b) {
                Ok(at) => self.buckets[at].1 += count,
                Err(at) => self.buckets.insert(at, (*bucket, *count)),
            }
        }
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|(_, count)| count).sum()
    }

    /// The nearest-rank percentile (`fraction` of 1), `None` without durations.
    pub fn percentile(&self, fraction: f64) -> Option<u32> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let rank = ((count as f64 * fraction).ceil() as u64).clamp(1, count);
        let mut seen = 0;
        self.buckets
            .iter()
            .find(|(_, n)| {
                seen += n;
                seen >= rank
            })
            .map(|(bucket, _)| value_of(*bucket))
    }

    /// A well-formed bucket list: ordered, within range, no zero counts (what a store holds is
    /// checked on reading).
    fn is_well_formed(&self) -> bool {
        self.buckets.windows(2).all(|pair| pair[0].0 < pair[1].0)
            && self.buckets.iter().all(|(bucket, count)| usize::from(*bucket) < BUCKETS && *count > 0)
    }
}

/// A tally was asked to take out facts it does not count: the facts taken out are not those that
/// were put in. A bug, or a store that does not match its tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the tally does not count the facts taken out of it")]
pub struct NotCounted;

/// The sum of the facts of the tasks of one bureau and dispatch day (or of any set of them:
/// tallies merge).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub received: u64,
    pub acked: u64,
    pub ack_on_time: u64,
    pub completed: u64,
    pub complete_on_time: u64,
    pub closed: u64,
    pub cancelled: u64,
    pub escalations: u64,
    /// Tasks escalated at least once.
    pub escalated_tasks: u64,
    pub reminders: u64,
    pub extensions: u64,
    pub assignments_referrals: u64,
    pub assignments_referrals_completed: u64,
    pub complaints: u64,
    pub complaints_on_time: u64,
    pub forwarded_out: u64,
    pub forwarded_out_completed: u64,
    pub forwarded_in: u64,
    pub forwarded_in_completed: u64,
    pub inspections: u64,
    pub inspections_completed: u64,
    /// Completed with a complete on-site record.
    pub inspections_recorded: u64,
    pub ack_secs: Durations,
    pub complete_secs: Durations,
}

impl Tally {
    /// Every count of one task's facts, in field order (durations apart).
    fn counts_of(f: &Facts) -> [u64; 22] {
        let flag = u64::from;
        [
            1,
            flag(f.acked),
            flag(f.ack_on_time),
            flag(f.completed),
            flag(f.complete_on_time),
            flag(f.closed),
            flag(f.cancelled),
            u64::from(f.escalations),
            flag(f.escalations > 0),
            u64::from(f.reminders),
            u64::from(f.extensions),
            flag(f.assignment_or_referral),
            flag(f.assignment_or_referral && f.completed),
            flag(f.complaint),
            flag(f.complaint && f.complete_on_time),
            flag(f.forwarded_out),
            flag(f.forwarded_out && f.completed),
            flag(f.forwarded_in),
            flag(f.forwarded_in && f.completed),
            flag(f.inspection),
            flag(f.inspection && f.completed),
            flag(f.inspection_recorded),
        ]
    }

    fn counts_mut(&mut self) -> [&mut u64; 22] {
        [
            &mut self.received,
            &mut self.acked,
            &mut self.ack_on_time,
            &mut self.completed,
            &mut self.complete_on_time,
            &mut self.closed,
            &mut self.cancelled,
            &mut self.escalations,
            &mut self.escalated_tasks,
            &mut self.reminders,
            &mut self.extensions,
            &mut self.assignments_referrals,
            &mut self.assignments_referrals_completed,
            &mut self.complaints,
            &mut self.complaints_on_time,
            &mut self.forwarded_out,
            &mut self.forwarded_out_completed,
            &mut self.forwarded_in,
            &mut self.forwarded_in_completed,
            &mut self.inspections,
            &mut self.inspections_completed,
            &mut self.inspections_recorded,
        ]
    }

    pub fn add(&mut self, facts: &Facts) {
        for (count, add) in self.counts_mut().into_iter().zip(Tally::counts_of(facts)) {
            *count += add;
        }
        self.ack_secs.add_some(facts.ack_secs);
        self.complete_secs.add_some(facts.complete_secs);
    }

    /// Takes out facts added before; refused, changing nothing, when they were not.
    pub fn remove(&mut self, facts: &Facts) -> Result<(), NotCounted> {
        let mut after = self.clone();
        for (count, take) in after.counts_mut().into_iter().zip(Tally::counts_of(facts)) {
            *count = count.checked_sub(take).ok_or(NotCounted)?;
        }
        after.ack_secs.remove_some(facts.ack_secs)?;
        after.complete_secs.remove_some(facts.complete_secs)?;
        *self = after;
        Ok(())
    }

    pub fn merge(&mut self, other: &Tally) {
        // The counts alone (all `Copy`), without copying the durations.
        let mut other_counts = Tally { ack_secs: Durations::default(), complete_secs: Durations::default(), ..*other };
        for (count, add) in self.counts_mut().into_iter().zip(other_counts.counts_mut()) {
            *count += *add;
        }
        self.ack_secs.merge(&other.ack_secs);
        self.complete_secs.merge(&other.complete_secs);
    }

    /// True when it counts no task (a tally of nothing is not kept).
    pub fn is_empty(&self) -> bool {
        self.received == 0
    }

    /// The invariants of a tally read from a store: every count within the tasks received, the
    /// durations within the tasks acknowledged and completed.
    pub fn is_well_formed(&self) -> bool {
        let bounded = [self.acked, self.completed, self.closed, self.cancelled, self.escalated_tasks, self.inspections];
        bounded.iter().all(|count| *count <= self.received)
            && self.ack_secs.count() == self.acked
            && self.complete_secs.count() == self.completed
            && self.ack_secs.is_well_formed()
            && self.complete_secs.is_well_formed()
    }
}

impl Durations {
    fn add_some(&mut self, secs: Option<u32>) {
        if let Some(secs) = secs {
            self.add(secs);
        }
    }

    fn remove_some(&mut self, secs: Option<u32>) -> Result<(), NotCounted> {
        secs.map_or(Ok(()), |secs| self.remove(secs))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn buckets_cover_every_u32_in_order() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(127), 127);
        assert_eq!(bucket_of(128), 128);
        assert_eq!(usize::from(bucket_of(u32::MAX)), BUCKETS - 1);
        assert_eq!(value_of(bucket_of(3_600)), 3_600, "an hour reads back exactly");
    }

    proptest! {
        #[test]
        fn a_bucket_stands_for_its_values_within_one_in_128(secs in any::<u32>(), other in any::<u32>()) {
            let value = value_of(bucket_of(secs));
            let error = (i64::from(value) - i64::from(secs)).unsigned_abs();
            prop_assert!(error * 128 <= u64::from(secs), "{secs} reads back as {value}");
            prop_assert!(secs > other || bucket_of(secs) <= bucket_of(other), "buckets keep the order of values");
        }

        #[test]
        fn removing_what_was_added_restores_the_tally(values in proptest::collection::vec(0..10_000_000u32, 1..40)) {
            let mut durations = Durations::default();
            for value in &values {
                durations.add(*value);
            }
            prop_assert_eq!(durations.count(), values.len() as u64);
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let exact = sorted[sorted.len().div_ceil(2) - 1];
            let median = durations.percentile(0.5).expect("values");
            prop_assert!((i64::from(median) - i64::from(exact)).unsigned_abs() * 128 <= u64::from(exact));
            for value in &values {
                durations.remove(*value).expect("added");
            }
            prop_assert_eq!(durations, Durations::default());
        }
    }

    #[test]
    fn a_tally_refuses_to_take_out_what_it_never_counted() {
        let facts = Facts {
            bureau: crate::bureau::NATIONAL,
            day: 0,
            acked: true,
            ack_on_time: false,
            ack_secs: Some(60),
            completed: false,
            complete_on_time: false,
            complete_secs: None,
            closed: false,
            cancelled: false,
            escalations: 0,
            reminders: 0,
            extensions: 0,
            assignment_or_referral: false,
            inspection: false,
            inspection_recorded: false,
            complaint: false,
            forwarded_out: false,
            forwarded_in: false,
            open: true,
            running_deadline_ms: None,
        };
        let mut tally = Tally::default();
        assert_eq!(tally.remove(&facts), Err(NotCounted));
        tally.add(&facts);
        let counted = tally.clone();
        let other = Facts { ack_secs: Some(61), ..facts.clone() };
        assert_eq!(tally.remove(&other), Err(NotCounted));
        assert_eq!(tally, counted, "a refused removal changes nothing");
        assert!(tally.is_well_formed());
        tally.remove(&facts).expect("counted");
        assert!(tally.is_empty());
    }
}
