//! The aggregate book of response metrics: per (bureau, dispatch day) tallies
//! (`ledger::response::Tally`), kept up to date change by change (the task's old version's facts
//! out, its new version's in), so a query sums tallies instead of scanning tasks; and the open
//! tasks per bureau with the deadline that runs now, for "open now" and "overdue now".
//!
//! Its memory is bounded by bureaus × days and by open work, never by closed tasks: nothing is
//! kept per closed task. Durations are kept in buckets 1/128 wide (`ledger::response::Durations`),
//! so medians and p90s are within 0.8 % of the exact ones.

use std::collections::{BTreeMap, BTreeSet};

use ledger::response::{day_start_ms, facts_changed, Facts, Tally};
use ledger::{BureauCode, Regions, Task, TaskId, TaskKind, TaskState};
use serde::Serialize;

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
    /// Medians and p90s of durations, within 0.8 % of the exact value (they are read from
    /// buckets; exact below two minutes).
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
    /// 现场检查记录完整率: inspections completed with a complete on-site record (a photo, the
    /// inspectors' and the representative's signatures), of the inspections completed.
    pub inspection_record_rate: Option<f64>,
    /// Entities of the current register within the bureau's subtree (absent without a register,
    /// and in rows of days or weeks).
    pub register_entities: Option<u64>,
    /// 随机抽查数量比例: inspections drawn in the period, of the register's entities within the
    /// bureau (a year's figure when the period is the year).
    pub random_inspection_ratio: Option<f64>,
    /// Dispatched and not yet completed, now (not limited to the period).
    pub open_now: u64,
    /// Of those, past the deadline that runs now.
    pub overdue_now: u64,
}

impl Figures {
    /// The field names in declaration order, for CSV columns (checked against the fields by a
    /// test).
    pub const COLUMNS: [&'static str; 25] = [
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
        "inspection_record_rate",
        "register_entities",
        "random_inspection_ratio",
        "open_now",
        "overdue_now",
    ];
}

impl Figures {
    /// Puts in the register's size within the bureau and the share of it inspected.
    pub fn with_register(mut self, entities: u64) -> Figures {
        self.register_entities = Some(entities);
        self.random_inspection_ratio = rate(self.inspections, entities);
        self
    }
}

fn rate(numerator: u64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

/// The figures of a tally, with the open work now.
fn figures(tally: &Tally, open_now: u64, overdue_now: u64) -> Figures {
    let t = tally;
    Figures {
        received: t.received,
        acknowledged: t.acked,
        completed: t.completed,
        closed: t.closed,
        cancelled: t.cancelled,
        ack_median_secs: t.ack_secs.percentile(0.5),
        ack_p90_secs: t.ack_secs.percentile(0.9),
        complete_median_secs: t.complete_secs.percentile(0.5),
        complete_p90_secs: t.complete_secs.percentile(0.9),
        ack_on_time_rate: rate(t.ack_on_time, t.received),
        completion_on_time_rate: rate(t.complete_on_time, t.completed),
        completion_rate: rate(t.completed, t.received - t.cancelled),
        escalations: t.escalations,
        extensions: t.extensions,
        forwarded_sent: t.forwarded_out,
        forwarded_received: t.forwarded_in,
        forwarded_handled_rate: rate(
            t.forwarded_out_completed + t.forwarded_in_completed,
            t.forwarded_out + t.forwarded_in,
        ),
        complaint_on_time_rate: rate(t.complaints_on_time, t.complaints),
        assignment_referral_completion_rate: rate(t.assignments_referrals_completed, t.assignments_referrals),
        inspections: t.inspections,
        inspection_record_rate: rate(t.inspections_recorded, t.inspections_completed),
        register_entities: None,
        random_inspection_ratio: None,
        open_now,
        overdue_now,
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

/// One open task in the book: what "open now", "overdue now" and the lateness list read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct OpenTask {
    /// The deadline that runs now, if any.
    running_deadline_ms: Option<u64>,
    escalated: bool,
}

impl OpenTask {
    fn overdue_at(self, now_ms: u64) -> bool {
        self.running_deadline_ms.is_some_and(|deadline_ms| deadline_ms < now_ms)
    }
}

/// Per assignee bureau: how late it is now and has been (`GET /api/v1/escalations`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lateness {
    pub open: u64,
    pub overdue_now: u64,
    /// Tasks ever escalated.
    pub escalated: u64,
    pub escalated_open: u64,
    pub reminders: u64,
}

#[derive(Debug, Default, PartialEq)]
pub struct Book {
    /// Every task by state and kind (dispatched or not).
    by_state_kind: BTreeMap<(TaskState, TaskKind), u64>,
    tallies: BTreeMap<(BureauCode, u32), Tally>,
    /// Open tasks per bureau (dispatched, not yet completed).
    open: BTreeMap<BureauCode, BTreeMap<TaskId, OpenTask>>,
}

impl Book {
    pub fn new() -> Book {
        Book::default()
    }

    /// A book from a store's tallies and census (`cluster::store::tally`), with the open tasks
    /// still to be added (`add_open`).
    pub fn from_tallies(
        tallies: impl IntoIterator<Item = (BureauCode, u32, Tally)>,
        census: impl IntoIterator<Item = (TaskState, TaskKind, u64)>,
    ) -> Book {
        Book {
            by_state_kind: census.into_iter().map(|(state, kind, count)| ((state, kind), count)).collect(),
            tallies: tallies.into_iter().map(|(bureau, day, tally)| ((bureau, day), tally)).collect(),
            open: BTreeMap::new(),
        }
    }

    /// Adds a task to the open work, its facts already in the tallies.
    pub fn add_open(&mut self, task: &Task) {
        if let Some(facts) = Facts::of(task).filter(|facts| facts.open) {
            self.open.entry(facts.bureau).or_default().insert(task.id, open_task(&facts));
        }
    }

    /// Takes in one change of a task: the facts of its version `before` (`None` for a new task)
    /// out, those of `after` in.
    pub fn update(&mut self, before: Option<&Task>, after: &Task) {
        if let Some(before) = before {
            let count = self.by_state_kind.get_mut(&(before.handling.state, before.kind)).expect("counted before");
            *count -= 1;
            if *count == 0 {
                self.by_state_kind.remove(&(before.handling.state, before.kind));
            }
        }
        *self.by_state_kind.entry((after.handling.state, after.kind)).or_default() += 1;
        let Some((old, new)) = facts_changed(before, after) else { return };
        if let Some(old) = old {
            let key = (old.bureau, old.day);
            let tally = self.tallies.get_mut(&key).expect("counted facts have their tally");
            tally.remove(&old).expect("the facts taken out are those put in");
            if tally.is_empty() {
                self.tallies.remove(&key);
            }
            if old.open {
                let open = self.open.get_mut(&old.bureau).expect("open tasks are listed");
                open.remove(&after.id);
                if open.is_empty() {
                    self.open.remove(&old.bureau);
                }
            }
        }
        if let Some(new) = new {
            self.tallies.entry((new.bureau, new.day)).or_default().add(&new);
            if new.open {
                self.open.entry(new.bureau).or_default().insert(after.id, open_task(&new));
            }
        }
    }

    /// The census of every task now; `overdue` counts open tasks past their running deadline.
    pub fn census(&self, now_ms: u64) -> Census {
        let open = self.open.values().map(|tasks| tasks.len() as u64).sum();
        let overdue = self.open.values().flat_map(|tasks| tasks.values()).filter(|t| t.overdue_at(now_ms)).count();
        Census { by_state_kind: self.by_state_kind.clone(), open, overdue: overdue as u64 }
    }

    /// How late each assignee bureau in `root`'s subtree is, now and over all time; bureaus
    /// with nothing to show are left out.
    pub fn lateness(&self, regions: &Regions, root: BureauCode, now_ms: u64) -> BTreeMap<BureauCode, Lateness> {
        let mut by_bureau = BTreeMap::new();
        for region in regions.subtree(root) {
            let bureau = region.code;
            let mut lateness = Lateness::default();
            for (_, tally) in self.tallies.range((bureau, 0)..=(bureau, u32::MAX)) {
                lateness.escalated += tally.escalated_tasks;
                lateness.reminders += tally.reminders;
            }
            for task in self.open.get(&bureau).into_iter().flat_map(|tasks| tasks.values()) {
                lateness.open += 1;
                lateness.overdue_now += u64::from(task.overdue_at(now_ms));
                lateness.escalated_open += u64::from(task.escalated);
            }
            if lateness != Lateness::default() {
                by_bureau.insert(bureau, lateness);
            }
        }
        by_bureau
    }

    /// The figures of `root` and its subtree for tasks dispatched on Beijing days `from..=to`,
    /// broken down as asked.
    /// `regions` is the group's table (the tree the figures roll up along).
    pub fn report(
        &self,
        regions: &Regions,
        root: BureauCode,
        from: u32,
        to: u32,
        breakdown: Breakdown,
        now_ms: u64,
    ) -> Report {
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
        let mut total = Tally::default();
        let mut rows: BTreeMap<String, (Option<BureauCode>, Tally)> = BTreeMap::new();
        let mut open_rows: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        let (mut open_total, mut overdue_total) = (0, 0);
        for region in regions.subtree(root) {
            let bureau = region.code;
            for ((_, day), tally) in self.tallies.range((bureau, from)..=(bureau, to)) {
                total.merge(tally);
                let (key, code) = match breakdown {
                    Breakdown::Child => {
                        let child = child_of(bureau);
                        (child.to_string(), Some(child))
                    }
                    Breakdown::Day => (date(*day), None),
                    Breakdown::Week => (date(day.saturating_sub((day + 3) % 7)), None),
                };
                rows.entry(key).or_insert_with(|| (code, Tally::default())).1.merge(tally);
            }
            if let Some(open) = self.open.get(&bureau) {
                let count = open.len() as u64;
                let overdue = open.values().filter(|task| task.overdue_at(now_ms)).count() as u64;
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
                    rows.entry(child.to_string()).or_insert_with(|| (Some(child), Tally::default()));
                }
            }
            Breakdown::Day => {
                for day in from..=to {
                    rows.entry(date(day)).or_insert_with(|| (None, Tally::default()));
                }
            }
            Breakdown::Week => {
                for day in (from.saturating_sub((from + 3) % 7)..=to).step_by(7) {
                    rows.entry(date(day)).or_insert_with(|| (None, Tally::default()));
                }
            }
        }
        let rows = rows
            .into_iter()
            .map(|(key, (code, tally))| {
                let (open, overdue) = open_rows.get(&key).copied().unwrap_or_default();
                Row {
                    name: code.and_then(|c| regions.name(c)).map(str::to_owned),
                    figures: figures(&tally, open, overdue),
                    key,
                }
            })
            .collect();
        Report { total: figures(&total, open_total, overdue_total), rows }
    }
}

fn open_task(facts: &Facts) -> OpenTask {
    OpenTask { running_deadline_ms: facts.running_deadline_ms, escalated: facts.escalations > 0 }
}

/// YYYY-MM-DD of a Beijing day.
fn date(day: u32) -> String {
    let start = ::time::OffsetDateTime::from_unix_timestamp(i64::try_from(day_start_ms(day) / 1000).unwrap_or(0))
        .unwrap_or(::time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(::time::UtcOffset::from_hms(8, 0, 0).expect("a valid offset"));
    format!("{:04}-{:02}-{:02}", start.year(), u8::from(start.month()), start.day())
}
