//! The aggregate book of response metrics: per (bureau, dispatch day) cells, kept up to date
//! task by task (the task's old facts out, its new facts in), so a query sums cells instead of
//! scanning tasks. Durations are kept exactly (seconds, one per acknowledged or completed
//! task), so medians and p90s are exact.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ledger::{BureauCode, Regions, Task, TaskId, TaskKind, TaskState};
use serde::Serialize;

use super::facts::{day_start_ms, Facts};

#[derive(Clone, Debug, Default)]
struct Cell {
    received: u64,
    acked: u64,
    ack_on_time: u64,
    completed: u64,
    complete_on_time: u64,
    closed: u64,
    cancelled: u64,
    escalations: u64,
    extensions: u64,
    assignments_referrals: u64,
    assignments_referrals_completed: u64,
    complaints: u64,
    complaints_on_time: u64,
    forwarded_out: u64,
    forwarded_out_completed: u64,
    forwarded_in: u64,
    forwarded_in_completed: u64,
    inspections: u64,
    ack_secs: Vec<u32>,
    complete_secs: Vec<u32>,
}

fn count(flag: bool) -> u64 {
    u64::from(flag)
}

impl Cell {
    fn add(&mut self, f: &Facts) {
        self.received += 1;
        self.acked += count(f.acked);
        self.ack_on_time += count(f.ack_on_time);
        self.completed += count(f.completed);
        self.complete_on_time += count(f.complete_on_time);
        self.closed += count(f.closed);
        self.cancelled += count(f.cancelled);
        self.escalations += u64::from(f.escalations);
        self.extensions += u64::from(f.extensions);
        self.assignments_referrals += count(f.assignment_or_referral);
        self.assignments_referrals_completed += count(f.assignment_or_referral && f.completed);
        self.complaints += count(f.complaint);
        self.complaints_on_time += count(f.complaint && f.complete_on_time);
        self.forwarded_out += count(f.forwarded_out);
        self.forwarded_out_completed += count(f.forwarded_out && f.completed);
        self.forwarded_in += count(f.forwarded_in);
        self.forwarded_in_completed += count(f.forwarded_in && f.completed);
        self.inspections += count(f.inspection);
        self.ack_secs.extend(f.ack_secs);
        self.complete_secs.extend(f.complete_secs);
    }

    fn remove(&mut self, f: &Facts) {
        self.received -= 1;
        self.acked -= count(f.acked);
        self.ack_on_time -= count(f.ack_on_time);
        self.completed -= count(f.completed);
        self.complete_on_time -= count(f.complete_on_time);
        self.closed -= count(f.closed);
        self.cancelled -= count(f.cancelled);
        self.escalations -= u64::from(f.escalations);
        self.extensions -= u64::from(f.extensions);
        self.assignments_referrals -= count(f.assignment_or_referral);
        self.assignments_referrals_completed -= count(f.assignment_or_referral && f.completed);
        self.complaints -= count(f.complaint);
        self.complaints_on_time -= count(f.complaint && f.complete_on_time);
        self.forwarded_out -= count(f.forwarded_out);
        self.forwarded_out_completed -= count(f.forwarded_out && f.completed);
        self.forwarded_in -= count(f.forwarded_in);
        self.forwarded_in_completed -= count(f.forwarded_in && f.completed);
        self.inspections -= count(f.inspection);
        for (values, value) in [(&mut self.ack_secs, f.ack_secs), (&mut self.complete_secs, f.complete_secs)] {
            if let Some(value) = value {
                let position = values.iter().position(|v| *v == value).expect("a counted duration is in its cell");
                values.swap_remove(position);
            }
        }
    }

    fn merge(&mut self, other: &Cell) {
        self.received += other.received;
        self.acked += other.acked;
        self.ack_on_time += other.ack_on_time;
        self.completed += other.completed;
        self.complete_on_time += other.complete_on_time;
        self.closed += other.closed;
        self.cancelled += other.cancelled;
        self.escalations += other.escalations;
        self.extensions += other.extensions;
        self.assignments_referrals += other.assignments_referrals;
        self.assignments_referrals_completed += other.assignments_referrals_completed;
        self.complaints += other.complaints;
        self.complaints_on_time += other.complaints_on_time;
        self.forwarded_out += other.forwarded_out;
        self.forwarded_out_completed += other.forwarded_out_completed;
        self.forwarded_in += other.forwarded_in;
        self.forwarded_in_completed += other.forwarded_in_completed;
        self.inspections += other.inspections;
        self.ack_secs.extend_from_slice(&other.ack_secs);
        self.complete_secs.extend_from_slice(&other.complete_secs);
    }
}

/// How a report is broken down besides its total.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Breakdown {
    /// Per child bureau of the root (the root's own tasks in a row of their own).
    Child,
    Day,
    /// Weeks starting on Monday.
    Week,
}

/// The figures of a bureau (subtree) over a period. Rates are `None` without a denominator.
#[derive(Clone, Debug, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Figures {
    pub received: u64,
    pub acknowledged: u64,
    pub completed: u64,
    pub closed: u64,
    pub cancelled: u64,
    pub ack_median_secs: Option<u32>,
    pub ack_p90_secs: Option<u32>,
    pub complete_median_secs: Option<u32>,
    pub complete_p90_secs: Option<u32>,
    /// Acknowledged by the ack deadline, of the tasks received (never acknowledged counts late).
    pub ack_on_time_rate: Option<f64>,
    /// Completed by the completion deadline, of the tasks completed.
    pub completion_on_time_rate: Option<f64>,
    /// 办结率: completed, of the tasks received and not cancelled.
    pub completion_rate: Option<f64>,
    pub escalations: u64,
    pub extensions: u64,
    pub forwarded_sent: u64,
    pub forwarded_received: u64,
    /// Completed, of the forwarded leads sent and received.
    pub forwarded_handled_rate: Option<f64>,
    /// 投诉举报有效处置率: complaints and tip-offs completed on time, of those received.
    pub complaint_on_time_rate: Option<f64>,
    /// 交办/转办办结率.
    pub assignment_referral_completion_rate: Option<f64>,
    pub inspections: u64,
    /// Dispatched and not yet completed, now (not limited to the period).
    pub open_now: u64,
    /// Of those, past the deadline that runs now.
    pub overdue_now: u64,
}

impl Figures {
    /// The field names in declaration order, for CSV columns (checked against the fields by a
    /// test).
    pub const COLUMNS: [&'static str; 22] = [
        "received",
        "acknowledged",
        "completed",
        "closed",
        "cancelled",
        "ack_median_secs",
        "ack_p90_secs",
        "complete_median_secs",
        "complete_p90_secs",
        "ack_on_time_rate",
        "completion_on_time_rate",
        "completion_rate",
        "escalations",
        "extensions",
        "forwarded_sent",
        "forwarded_received",
        "forwarded_handled_rate",
        "complaint_on_time_rate",
        "assignment_referral_completion_rate",
        "inspections",
        "open_now",
        "overdue_now",
    ];
}

fn rate(numerator: u64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

/// Nearest-rank percentile of unsorted values.
fn percentile(values: &mut [u32], fraction: f64) -> Option<u32> {
    if values.is_empty() {
        return None;
    }
    let rank = ((values.len() as f64 * fraction).ceil() as usize).clamp(1, values.len());
    Some(*values.select_nth_unstable(rank - 1).1)
}

impl Cell {
    fn figures(mut self, open_now: u64, overdue_now: u64) -> Figures {
        Figures {
            received: self.received,
            acknowledged: self.acked,
            completed: self.completed,
            closed: self.closed,
            cancelled: self.cancelled,
            ack_median_secs: percentile(&mut self.ack_secs, 0.5),
            ack_p90_secs: percentile(&mut self.ack_secs, 0.9),
            complete_median_secs: percentile(&mut self.complete_secs, 0.5),
            complete_p90_secs: percentile(&mut self.complete_secs, 0.9),
            ack_on_time_rate: rate(self.ack_on_time, self.received),
            completion_on_time_rate: rate(self.complete_on_time, self.completed),
            completion_rate: rate(self.completed, self.received - self.cancelled),
            escalations: self.escalations,
            extensions: self.extensions,
            forwarded_sent: self.forwarded_out,
            forwarded_received: self.forwarded_in,
            forwarded_handled_rate: rate(
                self.forwarded_out_completed + self.forwarded_in_completed,
                self.forwarded_out + self.forwarded_in,
            ),
            complaint_on_time_rate: rate(self.complaints_on_time, self.complaints),
            assignment_referral_completion_rate: rate(self.assignments_referrals_completed, self.assignments_referrals),
            inspections: self.inspections,
            open_now,
            overdue_now,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Row {
    /// A bureau code, or the first day of the day or week (YYYY-MM-DD).
    pub key: String,
    /// The bureau's name for a bureau row.
    pub name: Option<String>,
    pub figures: Figures,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub total: Figures,
    pub rows: Vec<Row>,
}

/// Every task by state and kind, for `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct Census {
    pub by_state_kind: BTreeMap<(TaskState, TaskKind), u64>,
    pub open: u64,
    pub overdue: u64,
}

#[derive(Default)]
pub struct Book {
    /// Every task's state and kind (dispatched or not).
    states: HashMap<TaskId, (TaskState, TaskKind)>,
    by_state_kind: BTreeMap<(TaskState, TaskKind), u64>,
    facts: HashMap<TaskId, Facts>,
    cells: BTreeMap<(BureauCode, u32), Cell>,
    /// Open tasks per bureau, with the deadline that runs now (if any).
    open: BTreeMap<BureauCode, BTreeSet<(Option<u64>, TaskId)>>,
}

impl Book {
    pub fn new() -> Book {
        Book::default()
    }

    pub fn tasks_counted(&self) -> usize {
        self.facts.len()
    }

    /// Takes the task as it stands now: its old facts out, its new facts in.
    pub fn update(&mut self, task: &Task) {
        let state_kind = (task.handling.state, task.kind);
        if let Some(old) = self.states.insert(task.id, state_kind) {
            if old == state_kind {
                return self.update_facts(task);
            }
            let count = self.by_state_kind.get_mut(&old).expect("counted before");
            *count -= 1;
        }
        *self.by_state_kind.entry(state_kind).or_default() += 1;
        self.update_facts(task);
    }

    /// The census of every task now; `overdue` counts open tasks past their running deadline.
    pub fn census(&self, now_ms: u64) -> Census {
        let open = self.open.values().map(|tasks| tasks.len() as u64).sum();
        let overdue = self
            .open
            .values()
            .flat_map(|tasks| tasks.iter())
            .filter(|(deadline, _)| deadline.is_some_and(|d| d < now_ms))
            .count() as u64;
        Census { by_state_kind: self.by_state_kind.clone(), open, overdue }
    }

    fn update_facts(&mut self, task: &Task) {
        let new = Facts::of(task);
        let old = self.facts.remove(&task.id);
        if old == new {
            if let Some(facts) = old {
                self.facts.insert(task.id, facts);
            }
            return;
        }
        if let Some(old) = old {
            let key = (old.bureau(), old.day);
            let cell = self.cells.get_mut(&key).expect("counted facts have their cell");
            cell.remove(&old);
            if cell.received == 0 {
                self.cells.remove(&key);
            }
            if old.open {
                let open = self.open.get_mut(&old.bureau()).expect("open tasks are listed");
                open.remove(&(old.running_deadline_ms, task.id));
                if open.is_empty() {
                    self.open.remove(&old.bureau());
                }
            }
        }
        if let Some(new) = new {
            self.cells.entry((new.bureau(), new.day)).or_default().add(&new);
            if new.open {
                self.open.entry(new.bureau()).or_default().insert((new.running_deadline_ms, task.id));
            }
            self.facts.insert(task.id, new);
        }
    }

    /// The figures of `root` and its subtree for tasks dispatched on Beijing days `from..=to`,
    /// broken down as asked.
    pub fn report(&self, root: BureauCode, from: u32, to: u32, breakdown: Breakdown, now_ms: u64) -> Report {
        let regions = Regions::get();
        let children: BTreeSet<BureauCode> = regions.children(root).map(|r| r.code).collect();
        // The child of `root` that `bureau` lies under (or root itself).
        let child_of = |bureau: BureauCode| -> BureauCode {
            if bureau == root {
                return root;
            }
            let mut current = bureau;
            while let Some(parent) = regions.parent(current) {
                if parent == root || children.contains(&current) {
                    return current;
                }
                current = parent;
            }
            root
        };
        let mut total = Cell::default();
        let mut rows: BTreeMap<String, (Option<BureauCode>, Cell)> = BTreeMap::new();
        let mut open_rows: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        let (mut open_total, mut overdue_total) = (0, 0);
        for region in regions.subtree(root) {
            let bureau = region.code;
            for ((_, day), cell) in self.cells.range((bureau, from)..=(bureau, to)) {
                total.merge(cell);
                let (key, code) = match breakdown {
                    Breakdown::Child => {
                        let child = child_of(bureau);
                        (child.to_string(), Some(child))
                    }
                    Breakdown::Day => (date(*day), None),
                    Breakdown::Week => (date(day.saturating_sub((day + 3) % 7)), None),
                };
                rows.entry(key).or_insert_with(|| (code, Cell::default())).1.merge(cell);
            }
            if let Some(open) = self.open.get(&bureau) {
                let count = open.len() as u64;
                let overdue = open.iter().filter(|(deadline, _)| deadline.is_some_and(|d| d < now_ms)).count() as u64;
                open_total += count;
                overdue_total += overdue;
                if breakdown == Breakdown::Child {
                    let entry = open_rows.entry(child_of(bureau).to_string()).or_default();
                    entry.0 += count;
                    entry.1 += overdue;
                }
            }
        }
        // Every row of the breakdown is listed, with or without tasks, so trends have no holes.
        match breakdown {
            Breakdown::Child => {
                for child in children.iter().copied().chain([root]) {
                    rows.entry(child.to_string()).or_insert_with(|| (Some(child), Cell::default()));
                }
            }
            Breakdown::Day => {
                for day in from..=to {
                    rows.entry(date(day)).or_insert_with(|| (None, Cell::default()));
                }
            }
            Breakdown::Week => {
                for day in (from.saturating_sub((from + 3) % 7)..=to).step_by(7) {
                    rows.entry(date(day)).or_insert_with(|| (None, Cell::default()));
                }
            }
        }
        let rows = rows
            .into_iter()
            .map(|(key, (code, cell))| {
                let (open, overdue) = open_rows.get(&key).copied().unwrap_or_default();
                Row {
                    name: code.and_then(|c| regions.name(c)).map(str::to_owned),
                    figures: cell.figures(open, overdue),
                    key,
                }
            })
            .collect();
        Report { total: total.figures(open_total, overdue_total), rows }
    }
}

/// YYYY-MM-DD of a Beijing day.
fn date(day: u32) -> String {
    let start = ::time::OffsetDateTime::from_unix_timestamp(i64::try_from(day_start_ms(day) / 1000).unwrap_or(0))
        .unwrap_or(::time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(::time::UtcOffset::from_hms(8, 0, 0).expect("a valid offset"));
    format!("{:04}-{:02}-{:02}", start.year(), u8::from(start.month()), start.day())
}
