//! A site's counting rules: its calendar and the parameters of each window.

use jiff::SignedDuration;

use crate::calendar::{Calendar, WeekDefinition};
use crate::identity::{IpTruncation, SaltRotation};

pub use crate::calendar::DEFAULT_TIME_ZONE;

/// How one site is counted. Build with [`CountingRules::new`] or `Default`, then change
/// fields through the checked setters.
#[derive(Clone, Debug, PartialEq)]
pub struct CountingRules {
    calendar: Calendar,
    visit_timeout: SignedDuration,
    online_window: SignedDuration,
    retention_days: u32,
    salt_rotation: SaltRotation,
    ip_truncation: IpTruncation,
}

/// A rule outside its allowed range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RulesError {
    /// `online_window` must be 1 to 30 minutes.
    #[error("online_window must be between 1 and 30 minutes, got {0} s")]
    OnlineWindow(i64),
    /// `visit_timeout` must be 1 minute to 24 hours.
    #[error("visit_timeout must be between 1 minute and 24 hours, got {0} s")]
    VisitTimeout(i64),
    /// `retention_days` must be 1 to 3,660.
    #[error("retention_days must be between 1 and 3660, got {0}")]
    Retention(u32),
}

impl Default for CountingRules {
    fn default() -> Self {
        CountingRules {
            calendar: Calendar::new(DEFAULT_TIME_ZONE, WeekDefinition::default())
                .expect("the default time zone is in the bundled database"),
            // 30 minutes: the convention of Google Analytics, Matomo and Plausible, and
            // what the portal's "lượt truy cập" figure is understood to mean.
            visit_timeout: SignedDuration::from_mins(30),
            // 5 minutes: long enough for a reader on one article, short enough to mean
            // "now".
            online_window: SignedDuration::from_mins(5),
            // 400 days: a year of daily history plus a month for year-on-year charts.
            retention_days: 400,
            salt_rotation: SaltRotation::Daily,
            ip_truncation: IpTruncation::None,
        }
    }
}

impl CountingRules {
    /// Default rules in `calendar`.
    pub fn new(calendar: Calendar) -> Self {
        CountingRules {
            calendar,
            ..CountingRules::default()
        }
    }

    /// The site's calendar.
    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    /// How long without a hit ends a visit.
    pub fn visit_timeout(&self) -> SignedDuration {
        self.visit_timeout
    }

    /// How far back "online" looks.
    pub fn online_window(&self) -> SignedDuration {
        self.online_window
    }

    /// How many days of per-day history are kept.
    pub fn retention_days(&self) -> u32 {
        self.retention_days
    }

    /// How often visitor-id salts rotate.
    pub fn salt_rotation(&self) -> SaltRotation {
        self.salt_rotation
    }

    /// Whether client addresses are truncated before hashing.
    pub fn ip_truncation(&self) -> IpTruncation {
        self.ip_truncation
    }

    /// Replaces the calendar.
    pub fn with_calendar(mut self, calendar: Calendar) -> Self {
        self.calendar = calendar;
        self
    }

    /// Sets the visit timeout (1 minute to 24 hours).
    pub fn with_visit_timeout(mut self, timeout: SignedDuration) -> Result<Self, RulesError> {
        if timeout < SignedDuration::from_mins(1) || timeout > SignedDuration::from_hours(24) {
            return Err(RulesError::VisitTimeout(timeout.as_secs()));
        }
        self.visit_timeout = timeout;
        Ok(self)
    }

    /// Sets the online window (1 to 30 minutes, whole minutes; seconds are dropped because
    /// the window is made of minute buckets).
    pub fn with_online_window(mut self, window: SignedDuration) -> Result<Self, RulesError> {
        let whole = SignedDuration::from_mins(window.as_mins());
        if whole < SignedDuration::from_mins(1) || whole > SignedDuration::from_mins(30) {
            return Err(RulesError::OnlineWindow(window.as_secs()));
        }
        self.online_window = whole;
        Ok(self)
    }

    /// Sets the per-day history retention (1 to 3,660 days).
    pub fn with_retention_days(mut self, days: u32) -> Result<Self, RulesError> {
        if !(1..=3660).contains(&days) {
            return Err(RulesError::Retention(days));
        }
        self.retention_days = days;
        Ok(self)
    }

    /// Sets the salt rotation.
    pub fn with_salt_rotation(mut self, rotation: SaltRotation) -> Self {
        self.salt_rotation = rotation;
        self
    }

    /// Sets IP truncation.
    pub fn with_ip_truncation(mut self, truncation: IpTruncation) -> Self {
        self.ip_truncation = truncation;
        self
    }

    /// The longest online window any site may have; minute buckets live this long.
    pub const MAX_ONLINE_WINDOW: SignedDuration = SignedDuration::from_mins(30);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_enforced() {
        let rules = CountingRules::default();
        assert_eq!(rules.calendar().time_zone_name(), "Asia/Ho_Chi_Minh");
        assert!(
            rules
                .clone()
                .with_online_window(SignedDuration::from_secs(59))
                .is_err()
        );
        assert!(
            rules
                .clone()
                .with_online_window(SignedDuration::from_mins(31))
                .is_err()
        );
        assert_eq!(
            rules
                .clone()
                .with_online_window(SignedDuration::from_secs(150))
                .unwrap()
                .online_window(),
            SignedDuration::from_mins(2)
        );
        assert!(
            rules
                .clone()
                .with_visit_timeout(SignedDuration::from_secs(30))
                .is_err()
        );
        assert!(
            rules
                .clone()
                .with_visit_timeout(SignedDuration::from_hours(25))
                .is_err()
        );
        assert!(rules.clone().with_retention_days(0).is_err());
        assert!(rules.clone().with_retention_days(3661).is_err());
        assert_eq!(rules.with_retention_days(30).unwrap().retention_days(), 30);
    }
}
