//! Site calendars: which local day, week and month an instant belongs to.
//!
//! Every counting window except "online" is defined in the site's own civil time: "today"
//! starts at local midnight, "this week" at the local start of the week, "this month" on
//! the local first of the month. A [`Calendar`] turns instants ([`Timestamp`]) into those
//! local periods and back, and names them with keys ([`DayKey`], [`WeekKey`],
//! [`MonthKey`]) whose `Display` strings become parts of store keys.
//!
//! The "online" window is the exception: it is a sliding window of whole UTC minutes
//! ([`Minute`], [`online_minutes`]), because "the last five minutes" means the same
//! thing in every time zone.
//!
//! # Purity
//!
//! Nothing here reads the clock: every instant comes in as an argument. Time zones come
//! from the IANA database bundled into the binary ([`TimeZoneDatabase::bundled`]), never
//! from the host's `/usr/share/zoneinfo` or `TZ`, so results do not depend on the machine
//! the service happens to run on.
//!
//! # Daylight saving time
//!
//! Local days are not always 24 hours long, and local midnight does not always exist:
//!
//! - In `Europe/Berlin` the last Sunday of March has 23 hours and the last Sunday of
//!   October has 25 (02:00–02:59 happens twice).
//! - In `America/Santiago` clocks jump from 00:00 straight to 01:00 on the first Sunday of
//!   September, so that day starts at 01:00.
//! - In `America/Havana` clocks go back from 01:00 to 00:00 on the first Sunday of
//!   November, so midnight happens twice; the day starts at the first one.
//!
//! [`Calendar::day_start`] therefore returns the *first instant* of a local day, which
//! is midnight when midnight exists and the end of the daylight-saving gap when it does
//! not.
//!
//! # Range
//!
//! jiff supports the years -9999 to 9999. Functions that return an instant saturate to
//! [`Timestamp::MIN`] or [`Timestamp::MAX`] when the true answer would fall outside that
//! range, and dates saturate to [`Date::MIN`] or [`Date::MAX`], so no input can make
//! them panic. Real traffic never comes near those edges.

use std::fmt;

use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::{AmbiguousOffset, Offset, TimeZone, TimeZoneDatabase};
use jiff::{SignedDuration, Timestamp, ToSpan};

mod minute;
mod period_names;
#[cfg(test)]
mod tests;

pub use minute::{Minute, MinuteRange, online_minutes};
pub use period_names::{DayKey, MonthKey, WeekKey};

/// The time zone a [`Calendar`] uses when a site does not choose one: Vietnam's, UTC+7
/// with no daylight saving time.
pub const DEFAULT_TIME_ZONE: &str = "Asia/Ho_Chi_Minh";

/// How a site's "this week" window is defined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WeekDefinition {
    /// Calendar weeks starting at local midnight on the given weekday.
    ///
    /// `StartsOn(Weekday::Monday)` is the ISO 8601 week, which is what Vietnamese
    /// portals show and the default; its keys use the ISO week-year ([`WeekKey::Iso`]).
    /// Any other start day gives keys named by the week's first date
    /// ([`WeekKey::StartingOn`]).
    StartsOn(Weekday),
    /// The last seven local days, today included: a window that slides by one day at
    /// each local midnight rather than resetting once a week.
    Rolling7Days,
}

impl Default for WeekDefinition {
    /// The ISO week: Monday to Sunday.
    fn default() -> Self {
        WeekDefinition::StartsOn(Weekday::Monday)
    }
}

/// A site's calendar: its IANA time zone and its week definition.
///
/// Construct it once from configuration with [`Calendar::new`] and share it; cloning is
/// cheap (the time zone data is reference-counted).
#[derive(Clone)]
pub struct Calendar {
    time_zone: TimeZone,
    // Kept next to the `TimeZone` because a zone's data does not always carry its name,
    // and the name is what configuration, the API and the widget's tooltip show.
    time_zone_name: String,
    week: WeekDefinition,
}

/// Why a calendar could not be built or a key could not be read back.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CalendarError {
    /// The name is not in the bundled IANA time zone database.
    #[error(
        "unknown time zone {name:?}: expected an IANA time zone name such as \"Asia/Ho_Chi_Minh\""
    )]
    UnknownTimeZone {
        /// The name that was asked for, exactly as given.
        name: String,
    },
    /// A string is not the canonical `Display` form of a key.
    #[error("invalid {kind} key {input:?}: expected {expected}")]
    InvalidKey {
        /// Which key was being read: "day", "week", "month" or "minute".
        kind: &'static str,
        /// The string that was rejected.
        input: String,
        /// A description of the accepted form.
        expected: &'static str,
    },
}

impl Calendar {
    /// Builds a calendar for an IANA time zone name such as `"Asia/Ho_Chi_Minh"` or
    /// `"Europe/Berlin"`.
    ///
    /// The name is looked up (case-insensitively) in the database bundled into the
    /// binary, never in the host's files, so a path or any other string is simply an
    /// unknown name. Fixed offsets like `"+07:00"` are not accepted: a site has a place,
    /// and places change their offsets.
    ///
    /// # Errors
    ///
    /// [`CalendarError::UnknownTimeZone`] when the database has no such zone.
    pub fn new(time_zone: &str, week: WeekDefinition) -> Result<Self, CalendarError> {
        let unknown = || CalendarError::UnknownTimeZone {
            name: time_zone.to_owned(),
        };
        let zone = bundled_time_zones().get(time_zone).map_err(|_| unknown())?;
        // The database answers with the canonical spelling, so "asia/ho_chi_minh" and
        // "Asia/Ho_Chi_Minh" give equal calendars.
        let time_zone_name = zone.iana_name().unwrap_or(time_zone).to_owned();
        Ok(Calendar {
            time_zone: zone,
            time_zone_name,
            week,
        })
    }

    /// The IANA name of the calendar's time zone, in the database's spelling.
    pub fn time_zone_name(&self) -> &str {
        &self.time_zone_name
    }

    /// The calendar's time zone, for callers that need jiff's own conversions.
    pub fn time_zone(&self) -> &TimeZone {
        &self.time_zone
    }

    /// The calendar's week definition.
    pub fn week_definition(&self) -> WeekDefinition {
        self.week
    }

    /// The local civil date and time at instant `at`.
    pub fn local_datetime(&self, at: Timestamp) -> DateTime {
        self.time_zone.to_datetime(at)
    }

    /// The local date at instant `at`.
    pub fn day(&self, at: Timestamp) -> Date {
        self.local_datetime(at).date()
    }

    /// The key of the local day at instant `at`.
    pub fn day_key(&self, at: Timestamp) -> DayKey {
        DayKey::new(self.day(at))
    }

    /// The first instant of local day `day`.
    ///
    /// That is local midnight when midnight exists. When a daylight-saving gap swallows
    /// midnight (`America/Santiago` on 2026-09-06 goes from 23:59:59 to 01:00:00), it is
    /// the instant the gap ends. When midnight happens twice, it is the first one. A day
    /// that a zone skipped entirely (`Pacific/Apia` skipped 2011-12-30) starts at the
    /// same instant as the day after it.
    pub fn day_start(&self, day: Date) -> Timestamp {
        self.occurrences(day.to_datetime(jiff::civil::Time::midnight()))
            .first
    }

    /// The first instant after `at` at which a later local day begins: the next local
    /// midnight (or the end of a gap that swallowed it).
    ///
    /// This is when a daily salt rotates. It is always later than `at`, except at the
    /// very end of jiff's range where it saturates to [`Timestamp::MAX`].
    pub fn next_day_start(&self, at: Timestamp) -> Timestamp {
        let today = self.day(at);
        // Normally tomorrow's midnight is the answer. Looking one day further only
        // matters if a zone ever repeats the previous evening after midnight has already
        // passed, in which case tomorrow's first midnight lies behind `at`.
        for days_ahead in 1..=2_i64 {
            let Ok(later_day) = today.checked_add(days_ahead.days()) else {
                return Timestamp::MAX;
            };
            let occurrences =
                self.occurrences(later_day.to_datetime(jiff::civil::Time::midnight()));
            if let Some(instant) = occurrences.first_after(at) {
                return instant;
            }
        }
        Timestamp::MAX
    }

    /// The key of the week window containing instant `at`.
    ///
    /// - `StartsOn(Monday)`: [`WeekKey::Iso`] with the ISO week-year, so 2024-12-30 is
    ///   `2025-W01` and 2027-01-01 is `2026-W53`.
    /// - `StartsOn(other day)`: [`WeekKey::StartingOn`] the week's first local date.
    /// - `Rolling7Days`: [`WeekKey::Rolling`] today's local date, the window's last day.
    pub fn week(&self, at: Timestamp) -> WeekKey {
        let today = self.day(at);
        match self.week {
            WeekDefinition::StartsOn(Weekday::Monday) => WeekKey::from_iso_date(today),
            WeekDefinition::StartsOn(first_weekday) => {
                WeekKey::StartingOn(first_day_of_week(today, first_weekday))
            }
            WeekDefinition::Rolling7Days => WeekKey::Rolling(today),
        }
    }

    /// The first instant of the week window containing `at`: the [`day_start`] of the
    /// window's first day (for `Rolling7Days`, of the day six days before today).
    ///
    /// [`day_start`]: Calendar::day_start
    pub fn week_start(&self, at: Timestamp) -> Timestamp {
        self.day_start(self.week_days(at)[0])
    }

    /// The seven local dates of the week window containing `at`, oldest first.
    ///
    /// For `StartsOn` they are the calendar week that contains today; for
    /// `Rolling7Days` they are the six days before today followed by today.
    pub fn week_days(&self, at: Timestamp) -> [Date; 7] {
        let today = self.day(at);
        let first = match self.week {
            WeekDefinition::StartsOn(first_weekday) => first_day_of_week(today, first_weekday),
            WeekDefinition::Rolling7Days => today.saturating_sub(6.days()),
        };
        let mut days = [first; 7];
        for (offset, day) in (0_i64..).zip(days.iter_mut()) {
            *day = first.saturating_add(offset.days());
        }
        days
    }

    /// The key of the local month containing instant `at`.
    pub fn month(&self, at: Timestamp) -> MonthKey {
        MonthKey::of_date(self.day(at))
    }

    /// The first instant of the local month containing `at`.
    pub fn month_start(&self, at: Timestamp) -> Timestamp {
        self.day_start(self.day(at).first_of_month())
    }

    /// Every instant at which the local clock shows `civil`, earliest first; a time
    /// inside a gap is represented by the instant the gap ends.
    pub(crate) fn occurrences(&self, civil: DateTime) -> Occurrences {
        match self.time_zone.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset } => Occurrences {
                first: to_timestamp_saturating(offset, civil),
                second: None,
            },
            AmbiguousOffset::Fold { before, after } => Occurrences {
                first: to_timestamp_saturating(before, civil),
                second: Some(to_timestamp_saturating(after, civil)),
            },
            AmbiguousOffset::Gap { before, after } => {
                // Inside a gap, `civil` read with the later offset is an instant just
                // before the transition and read with the earlier offset one at or after
                // it, so the transition is the first one following the former. jiff's
                // "compatible" choice (the earlier offset) is only right when the gap
                // starts exactly at `civil`.
                let lower_bound = to_timestamp_saturating(after, civil);
                let fallback = to_timestamp_saturating(before, civil);
                let gap_end = self
                    .time_zone
                    .following(lower_bound)
                    .next()
                    .map_or(fallback, |transition| transition.timestamp());
                Occurrences {
                    first: gap_end.min(fallback),
                    second: None,
                }
            }
        }
    }
}

impl Default for Calendar {
    /// `Asia/Ho_Chi_Minh` with ISO weeks.
    fn default() -> Self {
        Calendar::new(DEFAULT_TIME_ZONE, WeekDefinition::default())
            .expect("the bundled time zone database always contains Asia/Ho_Chi_Minh")
    }
}

impl PartialEq for Calendar {
    /// Calendars are equal when they name the same zone and define weeks the same way.
    fn eq(&self, other: &Self) -> bool {
        self.time_zone_name == other.time_zone_name && self.week == other.week
    }
}

impl Eq for Calendar {}

impl fmt::Debug for Calendar {
    // The zone's transition tables are noise in logs and test failures; its name says
    // everything.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Calendar")
            .field("time_zone", &self.time_zone_name)
            .field("week", &self.week)
            .finish()
    }
}

/// The instants at which a local clock shows one civil date and time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Occurrences {
    /// The earliest such instant.
    pub(crate) first: Timestamp,
    /// The second instant when the civil time falls in a repeated hour.
    pub(crate) second: Option<Timestamp>,
}

impl Occurrences {
    /// The earliest occurrence strictly after `at`.
    pub(crate) fn first_after(self, at: Timestamp) -> Option<Timestamp> {
        [Some(self.first), self.second]
            .into_iter()
            .flatten()
            .find(|instant| *instant > at)
    }
}

/// The bundled IANA database, built once: looking zones up in a fresh handle each time
/// would throw away its cache.
fn bundled_time_zones() -> &'static TimeZoneDatabase {
    static DATABASE: std::sync::OnceLock<TimeZoneDatabase> = std::sync::OnceLock::new();
    DATABASE.get_or_init(TimeZoneDatabase::bundled)
}

/// The date on or before `day` that falls on `first_weekday`.
fn first_day_of_week(day: Date, first_weekday: Weekday) -> Date {
    let days_since_start = i64::from(day.weekday().since(first_weekday));
    day.saturating_sub(days_since_start.days())
}

/// `civil` read at `offset`, clamped to jiff's range.
fn to_timestamp_saturating(offset: Offset, civil: DateTime) -> Timestamp {
    match offset.to_timestamp(civil) {
        Ok(instant) => instant,
        // Conversion only fails at the ends of the supported range; which end is decided
        // by the sign of the year, since the range is symmetric around year 0.
        Err(_) if civil.year() < 0 => Timestamp::MIN,
        Err(_) => Timestamp::MAX,
    }
}

/// `at` moved by `duration`, clamped to jiff's range.
pub(crate) fn saturating_shift(at: Timestamp, duration: SignedDuration) -> Timestamp {
    // jiff only reports an error here for calendar units, which a `SignedDuration` never
    // has; clamping in the direction of travel keeps the function total anyway.
    at.saturating_add(duration)
        .unwrap_or(if duration.is_negative() {
            Timestamp::MIN
        } else {
            Timestamp::MAX
        })
}
