//! What a figure counts: metrics, windows and their definitions.

use jiff::Timestamp;

/// What is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// Every accepted hit. Exact.
    Pageviews,
    /// Visits ("lượt truy cập"): a visit starts with a hit from a visitor who had no hit
    /// on the site within the visit timeout. Exact.
    Visits,
    /// Distinct visitor ids, estimated with a HyperLogLog (0.81 % standard error).
    Visitors,
}

impl Metric {
    /// Every metric, in display order.
    pub const ALL: [Metric; 3] = [Metric::Visits, Metric::Visitors, Metric::Pageviews];

    /// The metric's stable name in APIs and configuration.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Pageviews => "pageviews",
            Metric::Visits => "visits",
            Metric::Visitors => "visitors",
        }
    }

    /// Parses [`Metric::name`].
    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// The period a figure covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Window {
    /// Visitors active within the site's online window (default 5 minutes). Exact while
    /// no minute of the window saw more than
    /// [`ONLINE_SET_CAP`](crate::counter::ONLINE_SET_CAP) visitors, a HyperLogLog
    /// estimate otherwise; the figure's [`Accuracy`] says which.
    Online,
    /// Since local midnight.
    Today,
    /// Since the start of the local week (or the last 7 local days when rolling).
    Week,
    /// Since the first of the local month.
    Month,
    /// All time, including any imported baseline.
    Total,
}

impl Window {
    /// Every window, in display order.
    pub const ALL: [Window; 5] = [
        Window::Online,
        Window::Today,
        Window::Week,
        Window::Month,
        Window::Total,
    ];

    /// The window's stable name in APIs and configuration.
    pub fn name(self) -> &'static str {
        match self {
            Window::Online => "online",
            Window::Today => "today",
            Window::Week => "week",
            Window::Month => "month",
            Window::Total => "total",
        }
    }

    /// Parses [`Window::name`].
    pub fn from_name(name: &str) -> Option<Window> {
        Window::ALL.into_iter().find(|w| w.name() == name)
    }
}

/// How far a figure can be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Accuracy {
    /// Counted exactly.
    Exact,
    /// A HyperLogLog estimate (0.81 % standard error; exact in practice for a few hundred).
    Estimate,
    /// A HyperLogLog estimate over a window longer than one salt period: visitor ids
    /// change when the salt rotates, so a visitor returning on another day counts again.
    /// With daily rotation this is the sum of daily unique visitors.
    EstimatePerSaltPeriod,
}

/// Everything needed to say what a number means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Definition {
    /// What is counted.
    pub metric: Metric,
    /// Over which period.
    pub window: Window,
    /// The IANA time zone the window's boundaries are in.
    pub time_zone: String,
    /// Exact or estimated.
    pub accuracy: Accuracy,
    /// The first instant the window covers; `None` for all-time figures.
    pub since: Option<Timestamp>,
    /// For the online window, its length in minutes.
    pub window_minutes: Option<u32>,
    /// Any imported baseline included in the value (all-time figures only).
    pub baseline: u64,
    /// When the figure was read.
    pub as_of: Timestamp,
}

/// A number with its definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Figure {
    /// The value.
    pub value: u64,
    /// What it means.
    pub definition: Definition,
}
