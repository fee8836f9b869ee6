//! Names of local periods, used as parts of store keys.
//!
//! Their `Display` strings are a storage format: they must never change, must name
//! exactly one period each, and contain only ASCII digits, letters and `-` (in
//! particular no `:`, `{`, `}` or spaces, which Redis key layouts and hash tags reserve).
//! Years are always written with four digits, and a year before 1 CE gets a leading
//! `-` (`-0001-12-31`), so strings of one kind also sort in time order while the year is
//! positive.
//!
//! `FromStr` accepts exactly the canonical `Display` form and nothing else, so one period
//! can never end up under two keys.

use std::fmt;
use std::str::FromStr;

use jiff::civil::{Date, ISOWeekDate, Weekday};

use super::CalendarError;

/// A local date as a key: `Display` gives `2026-11-30`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DayKey(Date);

/// A week window as a key.
///
/// The derived ordering compares variants first and is only meaningful between keys of
/// the same variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WeekKey {
    /// An ISO 8601 week (Monday to Sunday), named by its ISO week-year and week number:
    /// `2025-W01`. The week-year differs from the calendar year near New Year:
    /// 2024-12-30 is in `2025-W01` and 2027-01-01 in `2026-W53`.
    Iso {
        /// The ISO week-year.
        year: i16,
        /// The week number, 1 to 52 or 53.
        week: i8,
    },
    /// A week starting on a weekday other than Monday, named by its first local date:
    /// `w2026-11-29`.
    StartingOn(Date),
    /// A rolling seven-day window, named by its last local date (today): `r2026-11-30`.
    Rolling(Date),
}

/// A local month as a key: `Display` gives `2026-11`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MonthKey {
    year: i16,
    month: i8,
}

impl DayKey {
    /// The key of local date `date`.
    pub fn new(date: Date) -> Self {
        DayKey(date)
    }

    /// The local date this key names.
    pub fn date(self) -> Date {
        self.0
    }
}

impl From<Date> for DayKey {
    fn from(date: Date) -> Self {
        DayKey(date)
    }
}

impl WeekKey {
    /// The ISO week key of the week containing `date`.
    pub fn from_iso_date(date: Date) -> Self {
        let iso = date.iso_week_date();
        WeekKey::Iso {
            year: iso.year(),
            week: iso.week(),
        }
    }

    /// The first local date of the week this key names, or `None` for an ISO week that
    /// does not exist (such as `2025-W53`, since 2025 has 52 ISO weeks).
    pub fn first_day(self) -> Option<Date> {
        match self {
            WeekKey::Iso { year, week } => ISOWeekDate::new(year, week, Weekday::Monday)
                .ok()
                .map(ISOWeekDate::date),
            WeekKey::StartingOn(first) => Some(first),
            WeekKey::Rolling(last) => last.checked_sub(jiff::ToSpan::days(6)).ok(),
        }
    }
}

impl MonthKey {
    /// The key of month `month` (1 to 12) of `year` (-9999 to 9999), or `None` when either
    /// is out of range.
    pub fn new(year: i16, month: i8) -> Option<Self> {
        Date::new(year, month, 1).ok().map(MonthKey::of_date)
    }

    /// The key of the month containing `date`.
    pub fn of_date(date: Date) -> Self {
        MonthKey {
            year: date.year(),
            month: date.month(),
        }
    }

    /// The year.
    pub fn year(self) -> i16 {
        self.year
    }

    /// The month, 1 to 12.
    pub fn month(self) -> i8 {
        self.month
    }

    /// The first date of the month.
    pub fn first_day(self) -> Date {
        // The fields were validated on construction, so this cannot fail; the fallback
        // keeps the function total all the same.
        Date::new(self.year, self.month, 1).unwrap_or(Date::MIN)
    }
}

impl fmt::Display for DayKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_date(f, self.0)
    }
}

impl fmt::Display for WeekKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WeekKey::Iso { year, week } => {
                write_year(f, year)?;
                write!(f, "-W{week:02}")
            }
            WeekKey::StartingOn(first) => {
                f.write_str("w")?;
                write_date(f, first)
            }
            WeekKey::Rolling(last) => {
                f.write_str("r")?;
                write_date(f, last)
            }
        }
    }
}

impl fmt::Display for MonthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_year(f, self.year)?;
        write!(f, "-{:02}", self.month)
    }
}

impl FromStr for DayKey {
    type Err = CalendarError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let invalid = || invalid_key("day", input, "a local date such as 2026-11-30");
        let key = parse_date(input).map(DayKey).ok_or_else(invalid)?;
        require_canonical(key, input).ok_or_else(invalid)
    }
}

impl FromStr for WeekKey {
    type Err = CalendarError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let invalid = || {
            invalid_key(
                "week",
                input,
                "an ISO week such as 2025-W01, w followed by a first date such as \
                 w2026-11-29, or r followed by a last date such as r2026-11-30",
            )
        };
        let key = if let Some(first) = input.strip_prefix('w') {
            parse_date(first).map(WeekKey::StartingOn)
        } else if let Some(last) = input.strip_prefix('r') {
            parse_date(last).map(WeekKey::Rolling)
        } else {
            parse_iso_week(input)
        };
        require_canonical(key.ok_or_else(invalid)?, input).ok_or_else(invalid)
    }
}

impl FromStr for MonthKey {
    type Err = CalendarError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let invalid = || invalid_key("month", input, "a month such as 2026-11");
        let (year, rest) = split_year(input).ok_or_else(invalid)?;
        let month = rest
            .strip_prefix('-')
            .and_then(parse_two_digits)
            .ok_or_else(invalid)?;
        let key = MonthKey::new(year, month).ok_or_else(invalid)?;
        require_canonical(key, input).ok_or_else(invalid)
    }
}

pub(super) fn invalid_key(
    kind: &'static str,
    input: &str,
    expected: &'static str,
) -> CalendarError {
    CalendarError::InvalidKey {
        kind,
        input: input.to_owned(),
        expected,
    }
}

/// Returns `key` only if it prints back as exactly `input`.
///
/// The parsers below are already strict; this final check makes "one period, one string"
/// hold by construction even if a parser is later loosened by mistake.
pub(super) fn require_canonical<K: fmt::Display>(key: K, input: &str) -> Option<K> {
    (key.to_string() == input).then_some(key)
}

fn write_year(f: &mut fmt::Formatter<'_>, year: i16) -> fmt::Result {
    let sign = if year < 0 { "-" } else { "" };
    write!(f, "{sign}{:04}", year.unsigned_abs())
}

fn write_date(f: &mut fmt::Formatter<'_>, date: Date) -> fmt::Result {
    write_year(f, date.year())?;
    write!(f, "-{:02}-{:02}", date.month(), date.day())
}

/// Reads `YYYY-Www` with a week that exists in that ISO week-year.
fn parse_iso_week(input: &str) -> Option<WeekKey> {
    let (year, rest) = split_year(input)?;
    let week = parse_two_digits(rest.strip_prefix("-W")?)?;
    ISOWeekDate::new(year, week, Weekday::Monday).ok()?;
    Some(WeekKey::Iso { year, week })
}

/// Reads `YYYY-MM-DD` naming a real date.
fn parse_date(input: &str) -> Option<Date> {
    let (year, rest) = split_year(input)?;
    let rest = rest.strip_prefix('-')?;
    let (month, rest) = rest.split_at_checked(2)?;
    let day = rest.strip_prefix('-')?;
    Date::new(year, parse_two_digits(month)?, parse_two_digits(day)?).ok()
}

/// Splits an optionally negative four-digit year off the front of `input`.
fn split_year(input: &str) -> Option<(i16, &str)> {
    let (negative, unsigned) = match input.strip_prefix('-') {
        Some(unsigned) => (true, unsigned),
        None => (false, input),
    };
    let (digits, rest) = unsigned.split_at_checked(4)?;
    let magnitude = i16::try_from(parse_digits(digits)?).ok()?;
    let year = if negative { -magnitude } else { magnitude };
    Some((year, rest))
}

fn parse_two_digits(input: &str) -> Option<i8> {
    if input.len() != 2 {
        return None;
    }
    i8::try_from(parse_digits(input)?).ok()
}

/// Reads a non-empty run of ASCII digits (and nothing else: no sign, no spaces, no
/// non-ASCII digits) as a number.
pub(super) fn parse_digits(input: &str) -> Option<u32> {
    if input.is_empty() || input.len() > 9 || !input.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    input.parse().ok()
}
