//! The one place where the library learns the time.
//!
//! Counting logic takes timestamps as arguments; only a [`Clock`] produces them. Services
//! use [`SystemClock`]; tests use [`ManualClock`] and move time by hand, so no test sleeps.
//! `clippy.toml` forbids reading the system time anywhere else.

use std::fmt;
use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

/// A source of the current time.
pub trait Clock: fmt::Debug + Send + Sync {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The real wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // The single sanctioned read of the system clock.
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            now: Mutex::new(start),
        }
    }

    /// Sets the time.
    pub fn set(&self, to: Timestamp) {
        *self.lock() = to;
    }

    /// Moves the time forward (or back, for a negative duration).
    pub fn advance(&self, by: SignedDuration) {
        let mut now = self.lock();
        *now = now
            .saturating_add(by)
            .expect("a signed duration never overflows a saturating add");
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Timestamp> {
        // A poisoned clock only means another test thread panicked mid-update of a Copy
        // value; the value itself is always whole.
        self.now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.lock()
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start: Timestamp = "2026-11-30T17:00:00Z".parse().unwrap();
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(SignedDuration::from_mins(5));
        assert_eq!(clock.now().to_string(), "2026-11-30T17:05:00Z");
        clock.set(start);
        assert_eq!(clock.now(), start);
    }
}
