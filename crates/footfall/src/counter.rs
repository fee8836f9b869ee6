//! Counting: hits become store writes, store reads become figures.
//!
//! This is where the meaning of "visit", "visitor", "today" and "week" lives; the store
//! below only adds, touches and reads. Everything here is a pure function of its inputs
//! except the few `async fn`s that hand a batch to a [`Store`].
//!
//! # One record per day
//!
//! A hit writes only what cannot be derived: its local day's pageviews, visits and
//! visitor sketch, its minute's online set and sketch, and its visitor's open-visit
//! marker. Longer windows are sums of days, read when asked for:
//!
//! - **week** and **month**: the sum of their days' counters and of their days' visitor
//!   counts. Salts rotate at least daily and a rotation period never crosses midnight,
//!   so a visitor id never repeats across days: the union of day sketches has the
//!   cardinality of their sum, and the figure is what its definition already says
//!   ([`Accuracy::EstimatePerSaltPeriod`]).
//! - **all time**: a *fold* of the settled days (stored once per site under
//!   [`keys::fold`]) plus the days since, plus the imported baseline.
//!
//! A day is **settled** once no write can reach it any more: [`plan`] refuses hits
//! older than yesterday ([`Plan::too_old`]), and readers treat a day as settled only
//! from an hour ([`SETTLE_MARGIN`]) after that cut-off, which covers clocks a little
//! apart and batches still in flight. Settled days never change, so [`Settled`] keeps
//! their figures in memory for good, and the fold advances over them exactly once: its
//! new value is a pure function of the old one and of immutable days, so instances that
//! race to advance it compute the same bytes, and a compare-and-swap lets one of them
//! write it.

use foldhash::HashMap;
use jiff::{SignedDuration, Timestamp};

use crate::Error;
use crate::calendar::Minute;
use crate::identity::{SaltRotation, VisitorId};
use crate::keys::{self, Key, Scope};
use crate::rules::CountingRules;
use crate::site::SiteId;
use crate::store::{
    CounterAdd, Read, SessionTouch, SetAdd, SketchAdd, Store, VisitGroup, WriteBatch,
};
use crate::window::{Accuracy, Metric, Window};

mod settled;

pub use settled::{
    DayFigures, Fold, LayoutUpgrade, SETTLE_MARGIN, Settled, Snapshot, history, settled_through,
    snapshot, upgrade_layout,
};

/// One accepted page view, after identity was derived. Carries nothing personal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// The site.
    pub site: SiteId,
    /// When it happened.
    pub at: Timestamp,
    /// The visitor under the current salt.
    pub visitor: VisitorId,
    /// The visitor under the previous salt, given only shortly after a rotation so a
    /// visit that spans the rotation goes on (see
    /// [`SiteSalts::identify`](crate::salts::SiteSalts::identify)).
    pub previous_visitor: Option<VisitorId>,
    /// A page view, or a heartbeat from a page still visible.
    pub kind: HitKind,
}

/// What a hit reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum HitKind {
    /// A page view: counts in every window and metric.
    #[default]
    Pageview,
    /// "Still here" from a page left open and visible: keeps its visitor in the online
    /// window, and adds no page view, no visit and no visitor to the other windows.
    Heartbeat,
}

/// A [`WriteBatch`] and what could not be planned.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// The writes.
    pub batch: WriteBatch,
    /// Hits whose site had no rules (e.g. deleted since the hit was accepted).
    pub unknown_site: usize,
    /// Hits older than yesterday in their site's calendar at planning time: their day
    /// may already be settled (see the module docs), so writing them could change a
    /// figure already folded into the all-time total. Only a hit held back for more than
    /// a day (a store down that long) is this old.
    pub too_old: usize,
}

/// Turns hits into one batch of writes.
///
/// Writes are aggregated: pageviews of a window become one increment, visitors of a
/// window one sketch addition with each visitor once. `rules` gives each site's rules.
pub fn plan<'r>(
    hits: &[Hit],
    rules: impl Fn(&SiteId) -> Option<&'r CountingRules>,
    now: Timestamp,
) -> Plan {
    let mut builder = Builder::default();
    let mut unknown_site = 0;
    let mut too_old = 0;
    for hit in hits {
        let Some(site_rules) = rules(&hit.site) else {
            unknown_site += 1;
            continue;
        };
        if !writable(site_rules, hit.at, now) {
            too_old += 1;
            continue;
        }
        builder.add(hit, site_rules);
    }
    Plan {
        batch: builder.finish(now),
        unknown_site,
        too_old,
    }
}

/// True when a hit at `at` may still be written at `now`: its local day is today or
/// yesterday. Hits from the future (a clock ahead) are written.
fn writable(rules: &CountingRules, at: Timestamp, now: Timestamp) -> bool {
    let calendar = rules.calendar();
    let oldest = calendar.day(now).saturating_sub(jiff::Span::new().days(1));
    calendar.day(at) >= oldest
}

/// The most visitors one minute's bounded set keeps for the online window's exact count
/// (see [`SetAdd`]); past it the figure falls back to the minute sketches.
///
/// Why 2,000: below it, an exact count is worth having (a HyperLogLog already errs by a
/// visitor or two at a few hundred), and above it the sketch's 0.81 % is as good as exact
/// for a footer. It bounds the cost of the figure: a full set is 32 KB of ids (about
/// 120 KB in a Redis hash-table set), kept for 31 minutes (one minute plus the longest
/// online window), so at most about 4 MB per site in Redis, 1 MB in the embedded file,
/// and only for a site with 2,000 visitors a minute; and a union read walks at most
/// 30 × 2,000 ids, next to the data in Redis, returning one integer.
pub const ONLINE_SET_CAP: usize = 2_000;

/// The keys a hit writes, shared by all hits of one site in one minute.
#[derive(Debug)]
struct Slot {
    pageviews: usize,
    day_visitors: usize,
    online_set: usize,
    group: usize,
    visit_timeout: SignedDuration,
}

#[derive(Debug, Default)]
struct Builder {
    counters: Vec<CounterAdd>,
    counter_index: HashMap<Key, usize>,
    sketches: Vec<SketchAdd>,
    sketch_index: HashMap<Key, usize>,
    sets: Vec<SetAdd>,
    groups: Vec<VisitGroup>,
    group_index: HashMap<Key, usize>,
    /// Slots by site, then minute: looked up by reference, so no per-hit allocation.
    slots: HashMap<SiteId, HashMap<Minute, Slot>>,
}

const DAY: SignedDuration = SignedDuration::from_hours(24);

/// The shortest a day's keys are kept, whatever the retention: a month's figure sums its
/// days (up to 31 of them) and the all-time fold reads days until they settle.
pub const MIN_DAY_LIFETIME_DAYS: u32 = 35;

/// When the keys of the local day containing `at` expire: the retention (at least
/// [`MIN_DAY_LIFETIME_DAYS`]) after the day ends.
pub fn day_expiry(rules: &CountingRules, at: Timestamp) -> Timestamp {
    let days = rules.retention_days().max(MIN_DAY_LIFETIME_DAYS);
    let lifetime = DAY * i32::try_from(days).unwrap_or(i32::MAX);
    rules
        .calendar()
        .next_day_start(at)
        .saturating_add(lifetime)
        .unwrap_or(Timestamp::MAX)
}

impl Builder {
    fn add(&mut self, hit: &Hit, rules: &CountingRules) {
        let minute = Minute::of(hit.at);
        let known = self
            .slots
            .get(&hit.site)
            .is_some_and(|minutes| minutes.contains_key(&minute));
        if !known {
            let slot = self.make_slot(&hit.site, minute, hit.at, rules);
            self.slots
                .entry(hit.site.clone())
                .or_default()
                .insert(minute, slot);
        }
        let slot = &self.slots[&hit.site][&minute];
        let visitor = *hit.visitor.as_bytes();
        self.sets[slot.online_set].elements.push(visitor);
        if hit.kind == HitKind::Heartbeat {
            return;
        }
        self.counters[slot.pageviews].by += 1;
        self.sketches[slot.day_visitors].elements.push(visitor);
        let expire_at = hit
            .at
            .saturating_add(slot.visit_timeout)
            .unwrap_or(Timestamp::MAX);
        self.groups[slot.group].sessions.push(SessionTouch {
            key: keys::session(&hit.site, &hit.visitor),
            previous_key: hit
                .previous_visitor
                .map(|previous| keys::session(&hit.site, &previous)),
            expire_at,
        });
    }

    fn make_slot(
        &mut self,
        site: &SiteId,
        minute: Minute,
        at: Timestamp,
        rules: &CountingRules,
    ) -> Slot {
        let day = Scope::Day(rules.calendar().day(at));
        let day_expiry = Some(day_expiry(rules, at));
        let pageviews = self.counter(keys::metric(site, Metric::Pageviews, &day), day_expiry);
        let day_visitors = self.sketch(keys::metric(site, Metric::Visitors, &day), day_expiry);
        // Minute buckets outlive the longest allowed online window, so a site whose
        // window grows still finds its recent buckets.
        let online_expiry = minute
            .start()
            .saturating_add(SignedDuration::from_mins(1) + CountingRules::MAX_ONLINE_WINDOW)
            .unwrap_or(Timestamp::MAX);
        // The minute's visitors, exactly while few, spilling into the minute's sketch
        // past the cap; a slot is made once per site and minute per batch, so each set
        // key appears once.
        self.sets.push(SetAdd {
            key: keys::online_minute_set(site, minute),
            elements: Vec::new(),
            cap: ONLINE_SET_CAP,
            expire_at: Some(online_expiry),
            spill: Some(keys::online_minute(site, minute)),
        });
        let online_set = self.sets.len() - 1;

        let visits = keys::metric(site, Metric::Visits, &day);
        let group = match self.group_index.get(&visits) {
            Some(&index) => index,
            None => {
                self.groups.push(VisitGroup {
                    counters: vec![(visits.clone(), day_expiry)],
                    sessions: Vec::new(),
                });
                self.group_index.insert(visits, self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        Slot {
            pageviews,
            day_visitors,
            online_set,
            group,
            visit_timeout: rules.visit_timeout(),
        }
    }

    fn counter(&mut self, key: Key, expire_at: Option<Timestamp>) -> usize {
        if let Some(&index) = self.counter_index.get(&key) {
            return index;
        }
        self.counters.push(CounterAdd {
            key: key.clone(),
            by: 0,
            expire_at,
        });
        self.counter_index.insert(key, self.counters.len() - 1);
        self.counters.len() - 1
    }

    fn sketch(&mut self, key: Key, expire_at: Option<Timestamp>) -> usize {
        if let Some(&index) = self.sketch_index.get(&key) {
            return index;
        }
        self.sketches.push(SketchAdd {
            key: key.clone(),
            elements: Vec::new(),
            expire_at,
        });
        self.sketch_index.insert(key, self.sketches.len() - 1);
        self.sketches.len() - 1
    }

    fn finish(mut self, now: Timestamp) -> WriteBatch {
        for sketch in &mut self.sketches {
            // Each visitor once per sketch: smaller commands, same registers.
            sketch.elements.sort_unstable();
            sketch.elements.dedup();
        }
        for set in &mut self.sets {
            set.elements.sort_unstable();
            set.elements.dedup();
        }
        // A minute that only saw heartbeats made day keys it never wrote to: leave them
        // out rather than send empty writes.
        self.counters.retain(|counter| counter.by > 0);
        self.sketches.retain(|sketch| !sketch.elements.is_empty());
        self.sets.retain(|set| !set.elements.is_empty());
        self.groups.retain(|group| !group.sessions.is_empty());
        WriteBatch {
            now,
            counters: self.counters,
            sketches: self.sketches,
            sets: self.sets,
            visits: self.groups,
        }
    }
}

/// Plans and applies `hits` in one store call; returns how many visits started.
pub async fn record<'r, S: Store>(
    store: &S,
    hits: &[Hit],
    rules: impl Fn(&SiteId) -> Option<&'r CountingRules>,
    now: Timestamp,
) -> Result<u64, Error> {
    let plan = plan(hits, rules, now);
    if plan.batch.is_empty() {
        return Ok(0);
    }
    Ok(store.apply(&plan.batch).await?.visits_started)
}

/// How far a figure of `metric` over `window` can be trusted under `rules`.
pub(crate) fn accuracy(metric: Metric, window: Window, rules: &CountingRules) -> Accuracy {
    if metric != Metric::Visitors {
        return Accuracy::Exact;
    }
    let one_period = match window {
        // Only when the exact count was not available (see `snapshot`).
        Window::Online => true,
        Window::Today => rules.salt_rotation() == SaltRotation::Daily,
        Window::Week | Window::Month | Window::Total => false,
    };
    if one_period {
        Accuracy::Estimate
    } else {
        Accuracy::EstimatePerSaltPeriod
    }
}

/// What [`set_baseline`] changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BaselineChange {
    /// The baseline before.
    pub previous: u64,
    /// The baseline now.
    pub current: u64,
}

/// Sets the imported baseline that all-time figures of `metric` add to what footfall
/// counted (e.g. the old system's 7,289,126 visits).
///
/// The value is absolute, so setting it twice is the same as once. A public total never
/// goes down, so lowering the baseline is refused unless `allow_decrease` is given for a
/// correction (the caller owns telling the public).
pub async fn set_baseline<S: Store>(
    store: &S,
    site: &SiteId,
    metric: Metric,
    value: u64,
    allow_decrease: bool,
    now: Timestamp,
) -> Result<BaselineChange, Error> {
    let key = keys::baseline(site, metric);
    let previous = store.read(&[Read::Counter(key.clone())], now).await?[0];
    if value < previous && !allow_decrease {
        return Err(Error::BaselineDecrease {
            metric: metric.name(),
            current: previous,
            requested: value,
        });
    }
    if value != previous {
        store.set(&key, value.to_string().as_bytes(), None).await?;
    }
    Ok(BaselineChange {
        previous,
        current: value,
    })
}

#[cfg(test)]
mod tests;
