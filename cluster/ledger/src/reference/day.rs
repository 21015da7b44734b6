//! Civil dates for the calendar kept in the ledger, without a date library: the ledger decides
//! with them inside `apply`, so they are plain numbers and arithmetic every build agrees on.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Beijing time is UTC+8 all year (China keeps no daylight saving time).
const BEIJING_OFFSET_MS: u64 = 8 * 60 * 60 * 1000;
const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// The years a calendar may cover: the platform's working life and then some.
pub const YEAR_FIRST: i32 = 2000;
pub const YEAR_LAST: i32 = 2100;

/// A calendar day, `yyyymmdd` (`20261001`): ordered as the days are. Decoded only when it is
/// a real day of the covered years (a plan filed by another group carries days), encoded as
/// the number it always was.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Day(u32);

impl TryFrom<u32> for Day {
    type Error = String;

    fn try_from(number: u32) -> Result<Day, String> {
        Day::new((number / 10_000) as i32, number / 100 % 100, number % 100)
            .ok_or_else(|| format!("{number} is no day"))
    }
}

impl From<Day> for u32 {
    fn from(day: Day) -> u32 {
        day.0
    }
}

impl Day {
    /// The day, when it exists and lies within the years a calendar may cover.
    pub fn new(year: i32, month: u32, day: u32) -> Option<Day> {
        let valid = (YEAR_FIRST..=YEAR_LAST).contains(&year)
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month);
        valid.then(|| Day(year as u32 * 10_000 + month * 100 + day))
    }

    /// Parses `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Option<Day> {
        let bytes = text.as_bytes();
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return None;
        }
        let number = |range: std::ops::Range<usize>| -> Option<u32> {
            let part = &text[range];
            part.bytes().all(|b| b.is_ascii_digit()).then(|| part.parse().ok()).flatten()
        };
        Day::new(number(0..4)? as i32, number(5..7)?, number(8..10)?)
    }

    /// The Beijing day of a Unix instant in milliseconds.
    pub fn beijing_of_ms(stamp_ms: u64) -> Day {
        let days = (stamp_ms.saturating_add(BEIJING_OFFSET_MS) / DAY_MS) as i64;
        let (year, month, day) = civil_from_days(days);
        // Out of the covered years only for stamps outside 2000-2100: clamp, the comparisons
        // that use it (which days are past) stay right.
        Day::new(year as i32, month, day).unwrap_or(if year < YEAR_FIRST as i64 {
            Day(YEAR_FIRST as u32 * 10_000 + 101)
        } else {
            Day(YEAR_LAST as u32 * 10_000 + 1231)
        })
    }

    pub fn year(self) -> i32 {
        (self.0 / 10_000) as i32
    }

    pub fn month(self) -> u32 {
        self.0 / 100 % 100
    }

    pub fn day(self) -> u32 {
        self.0 % 100
    }

    /// Saturday or Sunday.
    pub fn is_weekend(self) -> bool {
        // 1970-01-01 was a Thursday: day 0 → 4 (0 = Sunday).
        let weekday = (days_from_civil(self.year() as i64, self.month(), self.day()) + 4).rem_euclid(7);
        weekday == 0 || weekday == 6
    }

    /// A number read back from a stored table, when it is a day.
    fn from_number(number: u32) -> Option<Day> {
        Day::new((number / 10_000) as i32, number / 100 % 100, number % 100)
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year(), self.month(), self.day())
    }
}

impl fmt::Debug for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Checks a day decoded from outside (a core, a command): `Day` derives its decoding.
pub(crate) fn is_day(day: Day) -> bool {
    Day::from_number(day.0) == Some(day)
}

fn is_leap(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the era arithmetic of
/// H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day count since 1970-01-01 (the inverse of `days_from_civil`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 } as u32;
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_and_know_their_weekday() {
        // Every day of the covered years, walked from 2000-01-01 (a Saturday).
        let mut count = days_from_civil(2000, 1, 1);
        assert_eq!(civil_from_days(count), (2000, 1, 1));
        let mut weekday = 6;
        for year in YEAR_FIRST..=YEAR_LAST {
            for month in 1..=12 {
                for day in 1..=days_in_month(year, month) {
                    let date = Day::new(year, month, day).expect("a real day");
                    assert_eq!(days_from_civil(year as i64, month, day), count);
                    assert_eq!(civil_from_days(count), (year as i64, month, day));
                    assert_eq!(date.is_weekend(), weekday == 0 || weekday == 6, "{date}");
                    assert_eq!(Day::parse(&date.to_string()), Some(date));
                    count += 1;
                    weekday = (weekday + 1) % 7;
                }
            }
        }
        assert_eq!(Day::new(2026, 2, 29), None);
        assert_eq!(Day::new(2028, 2, 29).map(|d| d.to_string()), Some("2028-02-29".into()));
        assert_eq!(Day::new(2100, 2, 29), None);
        assert_eq!(Day::parse("2026-1-01"), None);
        assert_eq!(Day::parse("2026-01-+1"), None);
        assert_eq!(Day::parse("1999-12-31"), None);
    }

    #[test]
    fn a_stamp_falls_on_its_beijing_day() {
        // 2026-12-05T16:00:00Z is midnight of the 6th in Beijing.
        let midnight_ms = 1_796_486_400_000;
        assert_eq!(Day::beijing_of_ms(midnight_ms - 1).to_string(), "2026-12-05");
        assert_eq!(Day::beijing_of_ms(midnight_ms).to_string(), "2026-12-06");
        assert_eq!(Day::beijing_of_ms(0).to_string(), "2000-01-01", "clamped to the covered years");
    }
}
