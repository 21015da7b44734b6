//! The working-day calendar: weekends, public holidays and make-up working days, and
//! working-day arithmetic in Beijing time. `config/calendar/cn.toml` (embedded) is version 0;
//! the calendar a group computes deadlines with is the version its ledger committed
//! (`ledger::reference`), in the same file format.
//!
//! Statutory periods are counted the legal way: the day the period starts is not counted, and
//! the period ends at 24:00 of its last working day (Asia/Shanghai, UTC+8 all year).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use time::{Date, Duration, Month, OffsetDateTime, Time, UtcOffset, Weekday};

/// Beijing time. China has no daylight saving time, so a fixed offset is exact.
pub const BEIJING: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(offset) => offset,
    Err(_) => panic!("+08:00 is a valid offset"),
};

/// Working days in one period at most: 60 covers every statutory period we know (a lead's 15
/// plus one 15-day extension, publication within 20) with room, and bounds the day walk.
pub const WORKING_DAYS_MAX: u32 = 60;

const CALENDAR_TOML: &str = include_str!("../calendar/cn.toml");

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("the working-day calendar has no schedule for {year} (it covers {first}-{last}); adopt a calendar that covers it (xietong admin reference calendar FILE)")]
    YearNotCovered { year: i32, first: i32, last: i32 },
    #[error("{days} working days is more than the {max} a period may have")]
    TooLong { days: u32, max: u32 },
    #[error("calendar data: {0}")]
    Data(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CalendarFile {
    year: Vec<YearFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YearFile {
    year: i32,
    source: String,
    provisional: bool,
    holidays: Vec<String>,
    workdays: Vec<String>,
}

/// One year of a calendar as built from parts (`WorkCalendar::from_years`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YearSpec {
    pub year: i32,
    pub source: String,
    pub provisional: bool,
    pub holidays: Vec<Date>,
    pub workdays: Vec<Date>,
}

#[derive(Debug, Clone)]
pub struct YearSchedule {
    pub source: String,
    pub provisional: bool,
    holidays: BTreeSet<Date>,
    workdays: BTreeSet<Date>,
}

#[derive(Debug, Clone)]
pub struct WorkCalendar {
    years: BTreeMap<i32, YearSchedule>,
}

fn parse_date(text: &str) -> Result<Date, CalendarError> {
    let bad = || CalendarError::Data(format!("{text:?} is not a YYYY-MM-DD date"));
    let mut parts = text.split('-');
    let (Some(y), Some(m), Some(d), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let year: i32 = y.parse().map_err(|_| bad())?;
    let month: u8 = m.parse().map_err(|_| bad())?;
    let day: u8 = d.parse().map_err(|_| bad())?;
    let month = Month::try_from(month).map_err(|_| bad())?;
    Date::from_calendar_date(year, month, day).map_err(|_| bad())
}

fn is_weekend(date: Date) -> bool {
    matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
}

impl WorkCalendar {
    /// The embedded calendar of China: version 0 of every group's, frozen (a group adopts later
    /// versions through its log, `xietong admin reference calendar`).
    pub fn china() -> WorkCalendar {
        WorkCalendar::parse(CALENDAR_TOML).expect("the embedded calendar is valid (checked by tests)")
    }

    /// Parses a calendar file (the format of `config/calendar/cn.toml`) and checks it.
    pub fn parse(text: &str) -> Result<WorkCalendar, CalendarError> {
        let file: CalendarFile = toml::from_str(text).map_err(|e| CalendarError::Data(e.to_string()))?;
        let mut years = Vec::with_capacity(file.year.len());
        for year in file.year {
            let holidays = year.holidays.iter().map(|d| parse_date(d)).collect::<Result<Vec<_>, _>>()?;
            let workdays = year.workdays.iter().map(|d| parse_date(d)).collect::<Result<Vec<_>, _>>()?;
            years.push(YearSpec {
                year: year.year,
                source: year.source,
                provisional: year.provisional,
                holidays,
                workdays,
            });
        }
        WorkCalendar::from_years(years)
    }

    /// A calendar of these years, checked: each year's days in that year, none both off and
    /// worked, make-up days on weekends, the years consecutive and each listed once.
    pub fn from_years(specs: Vec<YearSpec>) -> Result<WorkCalendar, CalendarError> {
        let mut years = BTreeMap::new();
        for spec in specs {
            let holidays: BTreeSet<Date> = spec.holidays.into_iter().collect();
            let workdays: BTreeSet<Date> = spec.workdays.into_iter().collect();
            for date in holidays.iter().chain(&workdays) {
                if date.year() != spec.year {
                    return Err(CalendarError::Data(format!("{date} is listed under {}", spec.year)));
                }
            }
            if let Some(both) = holidays.intersection(&workdays).next() {
                return Err(CalendarError::Data(format!("{both} is both a holiday and a make-up working day")));
            }
            if let Some(weekday) = workdays.iter().find(|d| !is_weekend(**d)) {
                return Err(CalendarError::Data(format!("make-up working day {weekday} is not on a weekend")));
            }
            let schedule = YearSchedule { source: spec.source, provisional: spec.provisional, holidays, workdays };
            if years.insert(spec.year, schedule).is_some() {
                return Err(CalendarError::Data(format!("{} is listed twice", spec.year)));
            }
        }
        let (Some(first), Some(last)) = (years.keys().next(), years.keys().next_back()) else {
            return Err(CalendarError::Data("no year".into()));
        };
        if (last - first + 1) as usize != years.len() {
            return Err(CalendarError::Data("the years must be consecutive".into()));
        }
        Ok(WorkCalendar { years })
    }

    /// Every year with its schedule, in order.
    pub fn years(&self) -> impl Iterator<Item = (i32, &YearSchedule)> {
        self.years.iter().map(|(year, schedule)| (*year, schedule))
    }

    fn schedule(&self, year: i32) -> Result<&YearSchedule, CalendarError> {
        self.years.get(&year).ok_or_else(|| CalendarError::YearNotCovered {
            year,
            first: *self.years.keys().next().expect("at least one year"),
            last: *self.years.keys().next_back().expect("at least one year"),
        })
    }

    /// The last day the calendar knows (31 December of its last year): a working-day deadline
    /// past it cannot be computed, so dispatches start failing as it comes near.
    pub fn covered_until(&self) -> Date {
        let last = *self.years.keys().next_back().expect("at least one year");
        Date::from_calendar_date(last, Month::December, 31).expect("31 December exists")
    }

    /// The last day of the last year whose schedule is published (not provisional).
    pub fn confirmed_until(&self) -> Option<Date> {
        let last = self.years.iter().rev().find(|(_, schedule)| !schedule.provisional).map(|(year, _)| *year)?;
        Date::from_calendar_date(last, Month::December, 31).ok()
    }

    /// The schedule of a year, e.g. to show whether it is provisional.
    pub fn year(&self, year: i32) -> Option<&YearSchedule> {
        self.years.get(&year)
    }

    pub fn is_working_day(&self, date: Date) -> Result<bool, CalendarError> {
        let schedule = self.schedule(date.year())?;
        Ok(schedule.workdays.contains(&date) || !(is_weekend(date) || schedule.holidays.contains(&date)))
    }

    /// The end (24:00 Beijing time, as a UTC instant) of the `days`-th working day after the
    /// Beijing calendar day of `start`.
    pub fn working_days_after(&self, start: OffsetDateTime, days: u32) -> Result<OffsetDateTime, CalendarError> {
        if days > WORKING_DAYS_MAX {
            return Err(CalendarError::TooLong { days, max: WORKING_DAYS_MAX });
        }
        let mut date = start.to_offset(BEIJING).date();
        let mut counted = 0;
        // Every 7 calendar days hold at least one working day even in the longest holiday, so
        // the walk ends within 7 × WORKING_DAYS_MAX days.
        for _ in 0..(7 * WORKING_DAYS_MAX + 14) {
            if counted == days {
                let end_of_day = date.next_day().expect("dates far from the end of time").with_time(Time::MIDNIGHT);
                return Ok(end_of_day.assume_offset(BEIJING).to_offset(UtcOffset::UTC));
            }
            date = date.next_day().expect("dates far from the end of time");
            if self.is_working_day(date)? {
                counted += 1;
            }
        }
        unreachable!("a working day occurs in every week")
    }
}

impl YearSchedule {
    /// The days off, in order.
    pub fn holidays(&self) -> impl Iterator<Item = Date> + '_ {
        self.holidays.iter().copied()
    }

    /// The make-up working days, in order.
    pub fn workdays(&self) -> impl Iterator<Item = Date> + '_ {
        self.workdays.iter().copied()
    }
}

impl WorkCalendar {
    /// Working days among the Beijing dates from `start`'s (included) to `end`'s (excluded):
    /// the working time a paused clock did not run.
    pub fn working_days_between(&self, start: OffsetDateTime, end: OffsetDateTime) -> Result<u32, CalendarError> {
        let mut date = start.to_offset(BEIJING).date();
        let end = end.to_offset(BEIJING).date();
        let mut count = 0;
        while date < end {
            if self.is_working_day(date)? {
                count += 1;
            }
            date = date.next_day().expect("dates far from the end of time");
        }
        Ok(count)
    }

    /// Moves a deadline later by `span`: elapsed time is added; working days are counted on
    /// from the deadline's own last day (a deadline ends at 24:00, so it belongs to the day
    /// before the instant it names).
    pub fn extend(&self, deadline: OffsetDateTime, span: Span) -> Result<OffsetDateTime, CalendarError> {
        match span {
            Span::Elapsed(duration) => Ok(deadline + duration),
            Span::WorkingDays(days) => self.working_days_after(deadline - Duration::milliseconds(1), days),
        }
    }
}

/// A span of time in a deadline rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// Elapsed time: minutes, hours or calendar days.
    Elapsed(Duration),
    WorkingDays(u32),
}

impl Span {
    /// Parses `30s`, `15m`, `4h`, `3d` or `15wd` (seconds are meant for tests and drills).
    pub fn parse(text: &str) -> Option<Span> {
        let split = text.find(|c: char| !c.is_ascii_digit())?;
        let (number, unit) = text.split_at(split);
        let value: u32 = number.parse().ok().filter(|v| *v > 0)?;
        match unit {
            "s" => Some(Span::Elapsed(Duration::seconds(value.into()))),
            "m" => Some(Span::Elapsed(Duration::minutes(value.into()))),
            "h" => Some(Span::Elapsed(Duration::hours(value.into()))),
            "d" => Some(Span::Elapsed(Duration::days(value.into()))),
            "wd" if value <= WORKING_DAYS_MAX => Some(Span::WorkingDays(value)),
            _ => None,
        }
    }

    /// The deadline this span sets when it starts at `start`.
    pub fn deadline_after(
        self,
        calendar: &WorkCalendar,
        start: OffsetDateTime,
    ) -> Result<OffsetDateTime, CalendarError> {
        match self {
            Span::Elapsed(duration) => Ok(start + duration),
            Span::WorkingDays(days) => calendar.working_days_after(start, days),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> Date {
        parse_date(text).expect(text)
    }

    /// `YYYY-MM-DD hh:mm` in Beijing time.
    fn beijing(day: &str, hour: u8, minute: u8) -> OffsetDateTime {
        date(day).with_hms(hour, minute, 0).expect("time").assume_offset(BEIJING)
    }

    /// The Beijing date on which a deadline falls due (it expires at 24:00 of that date).
    fn due_day(deadline: OffsetDateTime) -> Date {
        let beijing = deadline.to_offset(BEIJING);
        assert_eq!(beijing.time(), Time::MIDNIGHT, "working-day deadlines end at 24:00");
        beijing.date().previous_day().expect("date")
    }

    #[test]
    fn the_embedded_calendar_knows_weekends_holidays_and_make_up_days() {
        let calendar = WorkCalendar::china();
        assert!(calendar.is_working_day(date("2026-01-04")).expect("covered"), "a make-up Sunday");
        assert!(!calendar.is_working_day(date("2026-01-02")).expect("covered"), "a holiday Friday");
        assert!(calendar.is_working_day(date("2026-01-05")).expect("covered"));
        assert!(!calendar.is_working_day(date("2026-01-10")).expect("covered"), "an ordinary Saturday");
        assert!(!calendar.year(2026).expect("2026").provisional);
        assert!(calendar.year(2027).expect("2027").provisional);
        assert_eq!(
            calendar.is_working_day(date("2028-03-01")),
            Err(CalendarError::YearNotCovered { year: 2028, first: 2026, last: 2027 })
        );
    }

    #[test]
    fn periods_skip_weekends_holidays_and_count_make_up_days() {
        let calendar = WorkCalendar::china();
        let after = |start, days| due_day(calendar.working_days_after(start, days).expect("covered"));
        // Friday → the next Monday.
        assert_eq!(after(beijing("2026-03-06", 10, 0), 1), date("2026-03-09"));
        // Labour Day holiday 1-5 May: from Thursday 30 April, the first working day is 6 May.
        assert_eq!(after(beijing("2026-04-30", 10, 0), 1), date("2026-05-06"));
        // Saturday 9 May 2026 is a make-up working day.
        assert_eq!(after(beijing("2026-05-08", 10, 0), 1), date("2026-05-09"));
        // Spring Festival: make-up Saturday 14 Feb, then off 15-23 Feb.
        assert_eq!(after(beijing("2026-02-13", 10, 0), 2), date("2026-02-24"));
        // A lead's 15 working days across the year boundary (1 Jan 2027 is a holiday).
        assert_eq!(after(beijing("2026-12-30", 15, 0), 15), date("2027-01-21"));
        // The day is taken in Beijing time: 17:00 UTC on Friday is already Saturday there.
        let late_friday_utc = date("2026-03-06").with_hms(17, 0, 0).expect("time").assume_offset(UtcOffset::UTC);
        assert_eq!(after(late_friday_utc, 1), date("2026-03-09"));
        assert_eq!(after(beijing("2026-03-07", 1, 0), 1), date("2026-03-09"));
    }

    #[test]
    fn a_period_beyond_the_calendar_is_an_error() {
        let calendar = WorkCalendar::china();
        let error = calendar.working_days_after(beijing("2027-12-20", 9, 0), 15).expect_err("2028 unknown");
        assert_eq!(error, CalendarError::YearNotCovered { year: 2028, first: 2026, last: 2027 });
        assert!(error.to_string().contains("xietong admin reference calendar"), "the error names the remedy");
        assert!(matches!(
            calendar.working_days_after(beijing("2026-03-02", 9, 0), 61),
            Err(CalendarError::TooLong { .. })
        ));
    }

    #[test]
    fn bad_calendar_data_is_refused() {
        let twice =
            "[[year]]\nyear=2026\nsource='x'\nprovisional=false\nholidays=['2026-01-01']\nworkdays=['2026-01-01']\n";
        assert!(WorkCalendar::parse(twice).is_err());
        let weekday = "[[year]]\nyear=2026\nsource='x'\nprovisional=false\nholidays=[]\nworkdays=['2026-01-05']\n";
        assert!(WorkCalendar::parse(weekday).is_err(), "a make-up day must fall on a weekend");
        let wrong_year = "[[year]]\nyear=2026\nsource='x'\nprovisional=false\nholidays=['2025-12-31']\nworkdays=[]\n";
        assert!(WorkCalendar::parse(wrong_year).is_err());
        let bad_date = "[[year]]\nyear=2026\nsource='x'\nprovisional=false\nholidays=['2026-02-30']\nworkdays=[]\n";
        assert!(WorkCalendar::parse(bad_date).is_err());
    }

    #[test]
    fn deadlines_extend_from_their_last_day_and_pauses_count_working_days() {
        let calendar = WorkCalendar::china();
        // A deadline at the end of Friday 6 March, extended by 1 working day: end of Monday.
        let deadline = calendar.working_days_after(beijing("2026-03-05", 9, 0), 1).expect("covered");
        assert_eq!(due_day(deadline), date("2026-03-06"));
        assert_eq!(due_day(calendar.extend(deadline, Span::WorkingDays(1)).expect("covered")), date("2026-03-09"));
        assert_eq!(
            calendar.extend(deadline, Span::Elapsed(Duration::hours(2))).expect("elapsed"),
            deadline + Duration::hours(2)
        );
        // Paused from Thursday 30 April to Thursday 7 May: 30 Apr and 6 May are working days.
        let paused = calendar.working_days_between(beijing("2026-04-30", 15, 0), beijing("2026-05-07", 9, 0));
        assert_eq!(paused, Ok(2));
        assert_eq!(calendar.working_days_between(beijing("2026-03-09", 9, 0), beijing("2026-03-09", 17, 0)), Ok(0));
    }

    #[test]
    fn spans_parse_and_apply() {
        let calendar = WorkCalendar::china();
        let start = beijing("2026-03-06", 10, 0);
        assert_eq!(Span::parse("15m"), Some(Span::Elapsed(Duration::minutes(15))));
        assert_eq!(Span::parse("4h").expect("4h").deadline_after(&calendar, start), Ok(start + Duration::hours(4)));
        assert_eq!(Span::parse("3d"), Some(Span::Elapsed(Duration::days(3))));
        assert_eq!(Span::parse("15wd"), Some(Span::WorkingDays(15)));
        for bad in ["", "15", "0m", "m", "4x", "-1h", "61wd", "1.5h"] {
            assert_eq!(Span::parse(bad), None, "{bad}");
        }
    }
}
