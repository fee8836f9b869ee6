//! Site calendars (TEMPORARY STUB until the real module lands).
#![allow(missing_docs)]
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeekDefinition {
    StartsOn(Weekday),
    Rolling7Days,
}
impl Default for WeekDefinition {
    fn default() -> Self {
        WeekDefinition::StartsOn(Weekday::Monday)
    }
}
#[derive(Clone, Debug, PartialEq)]
pub struct Calendar {
    tz: TimeZone,
    name: String,
    week: WeekDefinition,
}
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CalendarError {
    #[error("unknown time zone {0}")]
    UnknownTimeZone(String),
}
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WeekKey {
    Iso { year: i16, week: i8 },
    StartingOn(Date),
    Rolling(Date),
}
impl fmt::Display for WeekKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WeekKey::Iso { year, week } => write!(f, "{year:04}-W{week:02}"),
            WeekKey::StartingOn(d) => write!(f, "w{d}"),
            WeekKey::Rolling(d) => write!(f, "r{d}"),
        }
    }
}
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MonthKey {
    pub year: i16,
    pub month: i8,
}
impl fmt::Display for MonthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Minute(pub i64);
impl Minute {
    pub fn of(at: Timestamp) -> Minute {
        Minute(at.as_second().div_euclid(60))
    }
    pub fn start(self) -> Timestamp {
        Timestamp::from_second(self.0 * 60).unwrap()
    }
}
pub fn online_minutes(at: Timestamp, window: SignedDuration) -> Vec<Minute> {
    let m = Minute::of(at).0;
    let n = window.as_mins().max(1);
    (m - n + 1..=m).map(Minute).collect()
}
impl Calendar {
    pub fn new(name: &str, week: WeekDefinition) -> Result<Self, CalendarError> {
        let tz = jiff::tz::db()
            .get(name)
            .map_err(|_| CalendarError::UnknownTimeZone(name.into()))?;
        Ok(Calendar {
            tz,
            name: name.into(),
            week,
        })
    }
    pub fn time_zone_name(&self) -> &str {
        &self.name
    }
    pub fn week_definition(&self) -> WeekDefinition {
        self.week
    }
    pub fn day(&self, at: Timestamp) -> Date {
        at.to_zoned_datetime(self.tz.clone()).date()
    }
    pub fn day_start(&self, day: Date) -> Timestamp {
        day.to_zoned_datetime(self.tz.clone()).unwrap().timestamp()
    }
    pub fn next_day_start(&self, at: Timestamp) -> Timestamp {
        self.day_start(self.day(at).tomorrow().unwrap())
    }
    pub fn week(&self, at: Timestamp) -> WeekKey {
        let d = self.day(at);
        match self.week {
            WeekDefinition::StartsOn(Weekday::Monday) => {
                let iso = d.iso_week_date();
                WeekKey::Iso {
                    year: iso.year(),
                    week: iso.week(),
                }
            }
            WeekDefinition::StartsOn(_) => WeekKey::StartingOn(self.week_days(at)[0]),
            WeekDefinition::Rolling7Days => WeekKey::Rolling(d),
        }
    }
    pub fn week_days(&self, at: Timestamp) -> [Date; 7] {
        let d = self.day(at);
        let first = match self.week {
            WeekDefinition::StartsOn(wd) => {
                let back = (d.weekday().to_monday_zero_offset() - wd.to_monday_zero_offset())
                    .rem_euclid(7);
                d.checked_sub((back as i64).days()).unwrap()
            }
            WeekDefinition::Rolling7Days => d.checked_sub(6.days()).unwrap(),
        };
        std::array::from_fn(|i| first.checked_add((i as i64).days()).unwrap())
    }
    pub fn week_start(&self, at: Timestamp) -> Timestamp {
        self.day_start(self.week_days(at)[0])
    }
    pub fn month(&self, at: Timestamp) -> MonthKey {
        let d = self.day(at);
        MonthKey {
            year: d.year(),
            month: d.month(),
        }
    }
    pub fn month_start(&self, at: Timestamp) -> Timestamp {
        self.day_start(self.day(at).first_of_month())
    }
}
