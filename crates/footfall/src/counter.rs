//! Counting: hits become store writes, store reads become figures.
//!
//! This is where the meaning of "visit", "visitor", "today" and "week" lives; the store
//! below only adds, touches and reads. Everything here is a pure function of its inputs
//! except the few `async fn`s that hand a batch to a [`Store`].

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};

use crate::Error;
use crate::calendar::{Minute, WeekDefinition, online_minutes};
use crate::identity::{SaltRotation, VisitorId};
use crate::keys::{self, Key, Scope};
use crate::rules::CountingRules;
use crate::site::SiteId;
use crate::store::{
    CounterAdd, Read, SET_OVERFLOWED, SessionTouch, SetAdd, SketchAdd, Store, VisitGroup,
    WriteBatch,
};
use crate::window::{Accuracy, Definition, Figure, Metric, Window};

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
    for hit in hits {
        let Some(site_rules) = rules(&hit.site) else {
            unknown_site += 1;
            continue;
        };
        builder.add(hit, site_rules);
    }
    Plan {
        batch: builder.finish(now),
        unknown_site,
    }
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
    pageviews: Vec<usize>,
    visitors: Vec<usize>,
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
    group_index: HashMap<Vec<Key>, usize>,
    /// Slots by site, then minute: looked up by reference, so no per-hit allocation.
    slots: HashMap<SiteId, HashMap<Minute, Slot>>,
}

const DAY: SignedDuration = SignedDuration::from_hours(24);

/// Expiry deadlines: a period's keys live for the retention after the period ends.
fn retention_end(period_end: Timestamp, rules: &CountingRules) -> Timestamp {
    let retention = DAY * i32::try_from(rules.retention_days()).unwrap_or(i32::MAX);
    period_end
        .saturating_add(retention)
        .unwrap_or(Timestamp::MAX)
}

/// The scopes a hit at `at` counts in, with each scope's expiry.
fn scopes(rules: &CountingRules, at: Timestamp) -> Vec<(Scope, Option<Timestamp>)> {
    let calendar = rules.calendar();
    let mut scopes = Vec::with_capacity(4);
    scopes.push((
        Scope::Day(calendar.day(at)),
        Some(retention_end(calendar.next_day_start(at), rules)),
    ));
    if let WeekDefinition::StartsOn(_) = calendar.week_definition() {
        // Weeks and months expire a little late rather than computing their exact
        // ends: 8 and 32 days after their start cover every calendar and DST shift.
        let week_end = calendar
            .week_start(at)
            .saturating_add(DAY * 8)
            .unwrap_or(Timestamp::MAX);
        scopes.push((
            Scope::Week(calendar.week(at)),
            Some(retention_end(week_end, rules)),
        ));
    }
    let month_end = calendar
        .month_start(at)
        .saturating_add(DAY * 32)
        .unwrap_or(Timestamp::MAX);
    scopes.push((
        Scope::Month(calendar.month(at)),
        Some(retention_end(month_end, rules)),
    ));
    scopes.push((Scope::Total, None));
    scopes
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
        if hit.kind == HitKind::Heartbeat {
            // The online minute's sketch is the slot's last sketch.
            if let Some(&online) = slot.visitors.last() {
                self.sketches[online].elements.push(*hit.visitor.as_bytes());
            }
            self.sets[slot.online_set]
                .elements
                .push(*hit.visitor.as_bytes());
            return;
        }
        for &index in &slot.pageviews {
            self.counters[index].by += 1;
        }
        for &index in &slot.visitors {
            self.sketches[index].elements.push(*hit.visitor.as_bytes());
        }
        self.sets[slot.online_set]
            .elements
            .push(*hit.visitor.as_bytes());
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
        let mut pageviews = Vec::new();
        let mut visitors = Vec::new();
        let mut visit_counters = Vec::new();
        for (scope, expire_at) in scopes(rules, at) {
            pageviews.push(self.counter(keys::metric(site, Metric::Pageviews, &scope), expire_at));
            visitors.push(self.sketch(keys::metric(site, Metric::Visitors, &scope), expire_at));
            visit_counters.push((keys::metric(site, Metric::Visits, &scope), expire_at));
        }
        // Minute buckets outlive the longest allowed online window, so a site whose
        // window grows still finds its recent buckets.
        let online_expiry = minute
            .start()
            .saturating_add(SignedDuration::from_mins(1) + CountingRules::MAX_ONLINE_WINDOW)
            .unwrap_or(Timestamp::MAX);
        visitors.push(self.sketch(keys::online_minute(site, minute), Some(online_expiry)));
        // The same visitors, exactly while few; a slot is made once per site and minute
        // per batch, so each set key appears once.
        self.sets.push(SetAdd {
            key: keys::online_minute_set(site, minute),
            elements: Vec::new(),
            cap: ONLINE_SET_CAP,
            expire_at: Some(online_expiry),
        });
        let online_set = self.sets.len() - 1;

        let group_key: Vec<Key> = visit_counters.iter().map(|(key, _)| key.clone()).collect();
        let group = match self.group_index.get(&group_key) {
            Some(&index) => index,
            None => {
                self.groups.push(VisitGroup {
                    counters: visit_counters,
                    sessions: Vec::new(),
                });
                self.group_index.insert(group_key, self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        Slot {
            pageviews,
            visitors,
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
        // A minute that only saw heartbeats made window keys it never wrote to: leave them
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

/// A site's figures at one instant: online visitors, and visits, visitors and pageviews
/// for today, this week, this month and all time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The site.
    pub site: SiteId,
    /// When it was read.
    pub as_of: Timestamp,
    /// Every figure, online first, then each window's visits, visitors, pageviews.
    pub figures: Vec<Figure>,
}

impl Snapshot {
    /// The figure of `metric` over `window`, when there is one (online has visitors only).
    pub fn get(&self, window: Window, metric: Metric) -> Option<&Figure> {
        self.figures
            .iter()
            .find(|f| f.definition.window == window && f.definition.metric == metric)
    }

    /// The value of `metric` over `window`, or 0 when there is no such figure.
    pub fn value(&self, window: Window, metric: Metric) -> u64 {
        self.get(window, metric).map_or(0, |f| f.value)
    }
}

/// How one figure is read, before the store answers.
struct PlannedRead {
    metric: Metric,
    window: Window,
    since: Option<Timestamp>,
}

fn day_keys(site: &SiteId, metric: Metric, days: &[jiff::civil::Date]) -> Vec<Key> {
    days.iter()
        .map(|&day| keys::metric(site, metric, &Scope::Day(day)))
        .collect()
}

fn read_for(metric: Metric, keys: Vec<Key>) -> Read {
    match (metric, keys.len()) {
        (Metric::Visitors, _) => Read::Cardinality(keys),
        (_, 1) => Read::Counter(keys.into_iter().next().expect("one key")),
        _ => Read::CounterSum(keys),
    }
}

/// Reads every figure of a site in one store call.
///
/// Online visitors are read twice in that call: exactly, as the union of the window's
/// minute sets, and as the union of its minute sketches. The exact count is used unless a
/// minute's set overflowed ([`ONLINE_SET_CAP`]), and the figure's accuracy says which was
/// used. Minute sets exist only from the release that writes them: for one online window
/// after an upgrade the older minutes have only sketches, so the exact count may miss
/// visitors seen just before the upgrade.
pub async fn snapshot<S: Store>(
    store: &S,
    site: &SiteId,
    rules: &CountingRules,
    now: Timestamp,
) -> Result<Snapshot, Error> {
    let calendar = rules.calendar();
    let mut planned = Vec::new();
    let mut reads = Vec::new();

    let minutes: Vec<Minute> = online_minutes(now, rules.online_window()).collect();
    let online: Vec<Key> = minutes
        .iter()
        .map(|&minute| keys::online_minute(site, minute))
        .collect();
    let online_exact = Read::SetUnion(
        minutes
            .iter()
            .map(|&minute| keys::online_minute_set(site, minute))
            .collect(),
    );
    planned.push(PlannedRead {
        metric: Metric::Visitors,
        window: Window::Online,
        since: now.checked_sub(rules.online_window()).ok(),
    });
    reads.push(Read::Cardinality(online));

    let week_days = calendar.week_days(now);
    for window in [Window::Today, Window::Week, Window::Month, Window::Total] {
        for metric in Metric::ALL {
            let (keys, since) = match window {
                Window::Today => (
                    vec![keys::metric(site, metric, &Scope::Day(calendar.day(now)))],
                    Some(calendar.day_start(calendar.day(now))),
                ),
                Window::Week => match calendar.week_definition() {
                    WeekDefinition::Rolling7Days => (
                        day_keys(site, metric, &week_days),
                        Some(calendar.week_start(now)),
                    ),
                    WeekDefinition::StartsOn(_) => (
                        vec![keys::metric(site, metric, &Scope::Week(calendar.week(now)))],
                        Some(calendar.week_start(now)),
                    ),
                },
                Window::Month => (
                    vec![keys::metric(
                        site,
                        metric,
                        &Scope::Month(calendar.month(now)),
                    )],
                    Some(calendar.month_start(now)),
                ),
                Window::Total | Window::Online => {
                    (vec![keys::metric(site, metric, &Scope::Total)], None)
                }
            };
            planned.push(PlannedRead {
                metric,
                window,
                since,
            });
            reads.push(read_for(metric, keys));
        }
    }
    for metric in Metric::ALL {
        reads.push(Read::Counter(keys::baseline(site, metric)));
    }
    // Last, so the figures and baselines keep their places; still the same store call.
    reads.push(online_exact);

    let values = store.read(&reads, now).await?;
    let (values, rest) = values.split_at(planned.len());
    let (baselines, online_exact) = rest.split_at(Metric::ALL.len());
    // The exact count unless a minute's set overflowed (or the store answered nothing).
    let online_exact = online_exact
        .first()
        .copied()
        .filter(|&count| count != SET_OVERFLOWED);
    let figures = planned
        .into_iter()
        .zip(values)
        .map(|(read, &value)| {
            let (value, accuracy) = match (read.window, online_exact) {
                (Window::Online, Some(exact)) => (exact, Accuracy::Exact),
                _ => (value, accuracy(read.metric, read.window, rules)),
            };
            let baseline = if read.window == Window::Total {
                let index = Metric::ALL
                    .iter()
                    .position(|&m| m == read.metric)
                    .expect("every metric has a baseline read");
                baselines[index]
            } else {
                0
            };
            Figure {
                value: value.saturating_add(baseline),
                definition: Definition {
                    metric: read.metric,
                    window: read.window,
                    time_zone: calendar.time_zone_name().to_owned(),
                    accuracy,
                    since: read.since,
                    window_minutes: (read.window == Window::Online).then(|| {
                        u32::try_from(rules.online_window().as_mins()).unwrap_or(u32::MAX)
                    }),
                    baseline,
                    as_of: now,
                },
            }
        })
        .collect();
    Ok(Snapshot {
        site: site.clone(),
        as_of: now,
        figures,
    })
}

fn accuracy(metric: Metric, window: Window, rules: &CountingRules) -> Accuracy {
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

/// One local day's figures, for charts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayFigures {
    /// The local date.
    pub date: jiff::civil::Date,
    /// Visits started that day.
    pub visits: u64,
    /// Distinct visitors that day (estimate).
    pub visitors: u64,
    /// Pageviews that day.
    pub pageviews: u64,
}

/// Reads the last `days` local days (today included, oldest first), at most the site's
/// retention.
pub async fn history<S: Store>(
    store: &S,
    site: &SiteId,
    rules: &CountingRules,
    days: u32,
    now: Timestamp,
) -> Result<Vec<DayFigures>, Error> {
    let days = days.clamp(1, rules.retention_days());
    let today = rules.calendar().day(now);
    let dates: Vec<jiff::civil::Date> = (0..i64::from(days))
        .rev()
        .filter_map(|back| today.checked_sub(jiff::Span::new().days(back)).ok())
        .collect();
    let mut reads = Vec::with_capacity(dates.len() * 3);
    for &date in &dates {
        let scope = Scope::Day(date);
        reads.push(Read::Counter(keys::metric(site, Metric::Visits, &scope)));
        reads.push(Read::Cardinality(vec![keys::metric(
            site,
            Metric::Visitors,
            &scope,
        )]));
        reads.push(Read::Counter(keys::metric(site, Metric::Pageviews, &scope)));
    }
    let values = store.read(&reads, now).await?;
    Ok(dates
        .into_iter()
        .zip(values.chunks_exact(3))
        .map(|(date, v)| DayFigures {
            date,
            visits: v[0],
            visitors: v[1],
            pageviews: v[2],
        })
        .collect())
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
