//! UTC minute buckets for the "online" window.

use std::fmt;
use std::iter::FusedIterator;
use std::str::FromStr;

use jiff::{SignedDuration, Timestamp};

use super::CalendarError;
use super::period_names::{invalid_key, require_canonical};

/// A whole UTC minute, numbered from the Unix epoch: minute 0 is
/// `1970-01-01T00:00:00Z` up to (not including) `00:01:00Z`, minute -1 the one before.
///
/// Minutes do not depend on any time zone: "online in the last five minutes" means the
/// same instants everywhere, and zones with offsets that are not whole minutes (historic
/// local mean time) cannot split a bucket. `Display` gives the plain integer, such as
/// `29933280`, for use in store keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Minute(i64);

/// The consecutive minutes returned by [`online_minutes`], oldest first.
#[derive(Clone, Debug)]
pub struct MinuteRange {
    // Both ends are inclusive; `remaining == 0` marks an empty range, which keeps the
    // representation valid at `i64::MIN` and `i64::MAX`.
    next_front: i64,
    next_back: i64,
    remaining: u64,
}

/// The minute buckets to read for the "online" window of length `window` ending at `at`:
/// the minute containing `at` and the `n - 1` minutes before it, oldest first, where
/// `n` is `window` rounded up to whole minutes.
///
/// Together they cover exactly the instants from the start of the oldest bucket up to
/// `at`: at least the last `n - 1` whole minutes plus the part of the current minute
/// that has passed, so between `n - 1` and `n` minutes. With the default five-minute
/// window at 10:05:30 the buckets are 10:01 to 10:05, covering 10:01:00 to 10:05:30.
/// Rounding the window to whole buckets is what makes the count cheap; the cost is that
/// the window's length wobbles by up to a minute as the current minute fills.
///
/// A zero or negative `window` gives no buckets. Buckets that would lie before
/// minute `i64::MIN` are left out rather than wrapping around.
pub fn online_minutes(at: Timestamp, window: SignedDuration) -> MinuteRange {
    let current = Minute::of(at).0;
    let nanos_per_minute = SignedDuration::from_mins(1).as_nanos();
    let window_nanos = window.as_nanos();
    if window_nanos <= 0 {
        return MinuteRange {
            next_front: current,
            next_back: current,
            remaining: 0,
        };
    }
    let whole_minutes = (window_nanos + nanos_per_minute - 1) / nanos_per_minute;
    // At most `current - i64::MIN + 1` buckets exist at or before `current`.
    let available = i128::from(current) - i128::from(i64::MIN) + 1;
    let n_buckets = whole_minutes.min(available);
    let oldest = i128::from(current) - n_buckets + 1;
    MinuteRange {
        next_front: i64::try_from(oldest).unwrap_or(i64::MIN),
        next_back: current,
        remaining: u64::try_from(n_buckets).unwrap_or(u64::MAX),
    }
}

impl Minute {
    /// The minute containing instant `at` (rounding towards the past, also before 1970).
    pub fn of(at: Timestamp) -> Self {
        // Whole seconds alone would round -60.5 s up to minute -1; the nanoseconds decide.
        let nanos_per_minute = SignedDuration::from_mins(1).as_nanos();
        let index = at.as_nanosecond().div_euclid(nanos_per_minute);
        // jiff's range is about ±3.2e11 minutes, far inside i64.
        Minute(i64::try_from(index).unwrap_or(if index < 0 { i64::MIN } else { i64::MAX }))
    }

    /// The minute with number `index` (minutes since the Unix epoch).
    pub fn from_index(index: i64) -> Self {
        Minute(index)
    }

    /// The number of minutes since the Unix epoch.
    pub fn index(self) -> i64 {
        self.0
    }

    /// The first instant of this minute, clamped to jiff's range.
    pub fn start(self) -> Timestamp {
        minute_start_saturating(i128::from(self.0))
    }

    /// The first instant after this minute (the start of the next one), clamped to
    /// jiff's range.
    pub fn end(self) -> Timestamp {
        minute_start_saturating(i128::from(self.0) + 1)
    }

    /// The minute `minutes` later (or earlier, when negative), or `None` on overflow.
    pub fn checked_add(self, minutes: i64) -> Option<Self> {
        self.0.checked_add(minutes).map(Minute)
    }
}

impl fmt::Display for Minute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Minute {
    type Err = CalendarError;

    /// Reads the canonical integer form (no `+`, no leading zeros, no spaces).
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let invalid = || invalid_key("minute", input, "an integer such as 29933280");
        let minute = input.parse::<i64>().map(Minute).map_err(|_| invalid())?;
        require_canonical(minute, input).ok_or_else(invalid)
    }
}

impl Iterator for MinuteRange {
    type Item = Minute;

    fn next(&mut self) -> Option<Minute> {
        if self.remaining == 0 {
            return None;
        }
        let minute = Minute(self.next_front);
        self.remaining -= 1;
        if self.remaining > 0 {
            self.next_front += 1;
        }
        Some(minute)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match usize::try_from(self.remaining) {
            Ok(remaining) => (remaining, Some(remaining)),
            Err(_) => (usize::MAX, None),
        }
    }
}

impl DoubleEndedIterator for MinuteRange {
    fn next_back(&mut self) -> Option<Minute> {
        if self.remaining == 0 {
            return None;
        }
        let minute = Minute(self.next_back);
        self.remaining -= 1;
        if self.remaining > 0 {
            self.next_back -= 1;
        }
        Some(minute)
    }
}

impl FusedIterator for MinuteRange {}

fn minute_start_saturating(minute: i128) -> Timestamp {
    let seconds = minute * 60;
    match i64::try_from(seconds).map(Timestamp::from_second) {
        Ok(Ok(start)) => start,
        _ if seconds < 0 => Timestamp::MIN,
        _ => Timestamp::MAX,
    }
}
