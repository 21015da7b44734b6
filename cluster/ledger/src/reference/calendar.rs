//! The working-day calendar as the ledger keeps it: which days are public holidays and which
//! weekend days are make-up working days, year by year. The leader computes deadlines with the
//! version committed when it stamps a command, so every leader uses the same one.

use serde::{Deserialize, Serialize};

use super::day::{is_day, Day, YEAR_FIRST, YEAR_LAST};

/// Years one calendar may cover (all of `YEAR_FIRST..=YEAR_LAST`).
pub const CALENDAR_YEARS_MAX: usize = (YEAR_LAST - YEAR_FIRST + 1) as usize;
/// A year's source note (the State Council notice it copies), in characters.
pub const CALENDAR_SOURCE_CHARS_MAX: usize = 200;

/// One year's schedule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarYear {
    pub year: i32,
    /// The notice the schedule copies, or why it is provisional.
    pub source: String,
    /// Not yet published: the statutory holidays only.
    pub provisional: bool,
    /// Every day off of the schedule, weekends inside a holiday included, in order.
    pub holidays: Vec<Day>,
    /// Weekend days worked instead (调休上班), in order.
    pub workdays: Vec<Day>,
}

/// A whole calendar: consecutive years, each with its schedule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarTable {
    pub years: Vec<CalendarYear>,
}

impl CalendarTable {
    /// The structural rules: consecutive years within the covered range, each year's days in
    /// order, in their year, a day not both off and worked, make-up days on weekends.
    pub fn check(&self) -> Result<(), String> {
        let Some(first) = self.years.first() else { return Err("a calendar has at least one year".into()) };
        if self.years.len() > CALENDAR_YEARS_MAX {
            return Err(format!("more than {CALENDAR_YEARS_MAX} years"));
        }
        for (offset, year) in self.years.iter().enumerate() {
            let number = year.year;
            if !(YEAR_FIRST..=YEAR_LAST).contains(&number) {
                return Err(format!("{number} is outside {YEAR_FIRST}-{YEAR_LAST}"));
            }
            if i64::from(number) != i64::from(first.year) + offset as i64 {
                return Err("the years must be consecutive and in order".into());
            }
            let chars = year.source.chars().count();
            if chars == 0 || chars > CALENDAR_SOURCE_CHARS_MAX || year.source.chars().any(char::is_control) {
                return Err(format!("{number}: a source of 1 to {CALENDAR_SOURCE_CHARS_MAX} printable characters"));
            }
            for (what, days) in [("holidays", &year.holidays), ("workdays", &year.workdays)] {
                if let Some(day) = days.iter().find(|day| !is_day(**day) || day.year() != number) {
                    return Err(format!("{number}: {what} lists {day:?}, not a day of {number}"));
                }
                if days.windows(2).any(|pair| pair[0] >= pair[1]) {
                    return Err(format!("{number}: {what} are not in order, or one is listed twice"));
                }
            }
            if let Some(both) = year.holidays.iter().find(|day| year.workdays.binary_search(day).is_ok()) {
                return Err(format!("{both} is both a holiday and a make-up working day"));
            }
            if let Some(weekday) = year.workdays.iter().find(|day| !day.is_weekend()) {
                return Err(format!("make-up working day {weekday} is not on a weekend"));
            }
        }
        Ok(())
    }

    pub fn first_year(&self) -> i32 {
        self.years.first().map_or(YEAR_FIRST, |year| year.year)
    }

    pub fn last_year(&self) -> i32 {
        self.years.last().map_or(YEAR_FIRST, |year| year.year)
    }

    /// The last year whose schedule is published (not provisional), if any.
    pub fn last_confirmed_year(&self) -> Option<i32> {
        self.years.iter().rev().find(|year| !year.provisional).map(|year| year.year)
    }

    fn year(&self, number: i32) -> Option<&CalendarYear> {
        self.years.iter().find(|year| year.year == number)
    }

    /// Whether `next` may follow this calendar on `today` (Beijing): it keeps every year this
    /// one covers (coverage never shrinks) and every day up to today as it was (a deadline
    /// already computed never changes meaning). Future days may change: a provisional year
    /// replaced by the published notice.
    pub fn may_be_followed_by(&self, next: &CalendarTable, today: Day) -> Result<(), String> {
        if next.first_year() > self.first_year() || next.last_year() < self.last_year() {
            return Err(format!(
                "the calendar covers {}-{}; the new one ({}-{}) must keep every year",
                self.first_year(),
                self.last_year(),
                next.first_year(),
                next.last_year()
            ));
        }
        for year in self.years.iter().filter(|year| year.year <= today.year()) {
            let new = next.year(year.year).expect("every year is kept (checked above)");
            let past = |days: &[Day]| days.iter().copied().filter(|day| *day <= today).collect::<Vec<_>>();
            if past(&year.holidays) != past(&new.holidays) || past(&year.workdays) != past(&new.workdays) {
                return Err(format!("{}: the days up to today ({today}) must stay as they were", year.year));
            }
        }
        Ok(())
    }
}

/// Version 0, the calendar compiled in (`config/calendar/cn.toml` as of 0.3.0, frozen: a test
/// checks the two agree and pins the file's SHA-256). What a group decides with until it adopts
/// a calendar through the log.
pub fn calendar_v0() -> CalendarTable {
    let days = |list: &[(u32, u32)], year: i32| -> Vec<Day> {
        list.iter().map(|(month, day)| Day::new(year, *month, *day).expect("version 0's days are real")).collect()
    };
    let year_2026 = CalendarYear {
        year: 2026,
        source: "国务院办公厅关于2026年部分节假日安排的通知 (2025-11-04, Xinhua)".into(),
        provisional: false,
        holidays: days(
            &[
                (1, 1),
                (1, 2),
                (1, 3),
                (2, 15),
                (2, 16),
                (2, 17),
                (2, 18),
                (2, 19),
                (2, 20),
                (2, 21),
                (2, 22),
                (2, 23),
                (4, 4),
                (4, 5),
                (4, 6),
                (5, 1),
                (5, 2),
                (5, 3),
                (5, 4),
                (5, 5),
                (6, 19),
                (6, 20),
                (6, 21),
                (9, 25),
                (9, 26),
                (9, 27),
                (10, 1),
                (10, 2),
                (10, 3),
                (10, 4),
                (10, 5),
                (10, 6),
                (10, 7),
            ],
            2026,
        ),
        workdays: days(&[(1, 4), (2, 14), (2, 28), (5, 9), (9, 20), (10, 10)], 2026),
    };
    let year_2027 = CalendarYear {
        year: 2027,
        source: "provisional: statutory holidays only (全国年节及纪念日放假办法, 2024 amendment)".into(),
        provisional: true,
        holidays: days(
            &[
                (1, 1),
                (2, 5),
                (2, 6),
                (2, 7),
                (2, 8),
                (4, 5),
                (5, 1),
                (5, 2),
                (6, 9),
                (9, 15),
                (10, 1),
                (10, 2),
                (10, 3),
            ],
            2027,
        ),
        workdays: Vec::new(),
    };
    CalendarTable { years: vec![year_2026, year_2027] }
}
