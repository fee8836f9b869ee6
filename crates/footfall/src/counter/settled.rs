//! Reading figures: day records, the all-time fold, and the memory of settled days.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use foldhash::HashMap;
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp, ToSpan};

use super::{MIN_DAY_LIFETIME_DAYS, accuracy};
use crate::Error;
use crate::calendar::{WeekDefinition, online_minutes};
use crate::keys::{self, Key, Scope};
use crate::rules::CountingRules;
use crate::site::SiteId;
use crate::store::{Read, SET_OVERFLOWED, Store, StoreError};
use crate::window::{Accuracy, Definition, Figure, Metric, Window};

/// How long after writers stop taking a day's hits readers still treat it as open: it
/// covers instances whose clocks are a little apart and batches already in flight when
/// the day closed.
pub const SETTLE_MARGIN: SignedDuration = SignedDuration::from_hours(1);

/// How many days back [`Settled`] remembers: enough for a month and a week that began in
/// the month before, and for the days the fold has not reached yet.
const MEMORY_DAYS: i64 = 40;

/// The last settled day of a site at `now`: writers refuse hits older than yesterday, so
/// the day before yesterday takes no more writes, and [`SETTLE_MARGIN`] later no batch
/// can still be on its way to it.
pub fn settled_through(rules: &CountingRules, now: Timestamp) -> Date {
    let reference = now.checked_sub(SETTLE_MARGIN).unwrap_or(now);
    rules.calendar().day(reference).saturating_sub(2.days())
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

/// One local day's figures, for charts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DayFigures {
    /// The local date.
    pub date: Date,
    /// Visits started that day.
    pub visits: u64,
    /// Distinct visitors that day (estimate).
    pub visitors: u64,
    /// Pageviews that day.
    pub pageviews: u64,
}

impl DayFigures {
    fn zero(date: Date) -> Self {
        DayFigures {
            date,
            visits: 0,
            visitors: 0,
            pageviews: 0,
        }
    }

    /// The value of `metric`.
    pub fn value(&self, metric: Metric) -> u64 {
        match metric {
            Metric::Pageviews => self.pageviews,
            Metric::Visits => self.visits,
            Metric::Visitors => self.visitors,
        }
    }
}

/// The all-time totals of a site's days up to and including `through`, stored under
/// [`keys::fold`]. Visitors are the sum of daily visitor counts (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fold {
    /// The last day included.
    pub through: Date,
    /// Pageviews of every day up to `through`.
    pub pageviews: u64,
    /// Visits of every day up to `through`.
    pub visits: u64,
    /// The sum of daily visitor counts up to `through`.
    pub visitors: u64,
}

impl Fold {
    /// The version tag that starts the stored form, so a later layout can tell.
    const VERSION: &'static str = "1";

    fn empty(through: Date) -> Self {
        Fold {
            through,
            pageviews: 0,
            visits: 0,
            visitors: 0,
        }
    }

    /// The value of `metric`.
    pub fn value(&self, metric: Metric) -> u64 {
        match metric {
            Metric::Pageviews => self.pageviews,
            Metric::Visits => self.visits,
            Metric::Visitors => self.visitors,
        }
    }

    fn add(&mut self, day: &DayFigures) {
        self.pageviews = self.pageviews.saturating_add(day.pageviews);
        self.visits = self.visits.saturating_add(day.visits);
        self.visitors = self.visitors.saturating_add(day.visitors);
    }

    /// The stored form: `1 <through> <pageviews> <visits> <visitors>`, ASCII. Plain
    /// text so an operator can read it with `redis-cli GET`, and one value so a
    /// compare-and-swap moves it whole.
    pub fn encode(&self) -> Vec<u8> {
        format!(
            "{} {} {} {} {}",
            Self::VERSION,
            self.through,
            self.pageviews,
            self.visits,
            self.visitors
        )
        .into_bytes()
    }

    /// Reads [`Fold::encode`]'s form; anything else is a corrupt value.
    pub fn decode(key: &Key, bytes: &[u8]) -> Result<Fold, StoreError> {
        let corrupt = || StoreError::Corrupt {
            key: key.to_string(),
            message: "expected `1 <date> <pageviews> <visits> <visitors>`".to_owned(),
        };
        let text = std::str::from_utf8(bytes).map_err(|_| corrupt())?;
        let mut parts = text.split(' ');
        if parts.next() != Some(Self::VERSION) {
            return Err(corrupt());
        }
        let through = parts
            .next()
            .and_then(|date| date.parse().ok())
            .ok_or_else(corrupt)?;
        let mut number = || {
            parts
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(corrupt)
        };
        let fold = Fold {
            through,
            pageviews: number()?,
            visits: number()?,
            visitors: number()?,
        };
        if parts.next().is_some() {
            return Err(corrupt());
        }
        Ok(fold)
    }
}

/// The figures of settled days and each site's fold, kept in memory for good.
///
/// Settled days never change (see the module docs), so once read their figures are
/// served from here and a counts read touches only the days still open (today,
/// yesterday, and the day before for the first hour). Memory is bounded by the sites
/// asked about: at most 40 days and one fold per site. Share one `Settled`
/// for all reads of a process; call [`Settled::forget`] when a site is deleted.
#[derive(Debug, Default)]
pub struct Settled {
    sites: Mutex<HashMap<SiteId, SiteMemory>>,
}

#[derive(Debug, Default)]
struct SiteMemory {
    fold: Option<Fold>,
    days: BTreeMap<Date, DayFigures>,
}

impl Settled {
    /// An empty memory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets everything about `site`.
    pub fn forget(&self, site: &SiteId) {
        self.lock().remove(site);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<SiteId, SiteMemory>> {
        // Every update below is a single insert or retain: a poisoned map is consistent.
        self.sites.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The site's fold, advanced over every settled day (writing the advanced fold to
    /// the store when this instance is the first to get there).
    pub async fn fold<S: Store>(
        &self,
        store: &S,
        site: &SiteId,
        rules: &CountingRules,
        now: Timestamp,
    ) -> Result<Fold, Error> {
        let target = settled_through(rules, now);
        let remembered = self.lock().get(site).and_then(|memory| memory.fold);
        if let Some(fold) = remembered
            && fold.through >= target
        {
            return Ok(fold);
        }
        let key = keys::fold(site);
        // Each round either finds the fold current, or tries to advance what it read; a
        // lost race means another instance wrote the same (or a later) fold, which the
        // next round reads.
        for _ in 0..4 {
            let stored = store.get(&key, now).await?;
            let current = stored
                .as_deref()
                .map(|bytes| Fold::decode(&key, bytes))
                .transpose()?;
            let next = match current {
                Some(fold) if fold.through >= target => {
                    self.remember_fold(site, fold);
                    return Ok(fold);
                }
                Some(fold) => {
                    let first = fold.through.saturating_add(1.day());
                    let days = self
                        .days_between(store, site, rules, first, target, now)
                        .await?;
                    let mut next = fold;
                    days.iter().for_each(|day| next.add(day));
                    next.through = target;
                    next
                }
                None => self.first_fold(store, site, rules, target, now).await?,
            };
            if store
                .compare_and_swap(&key, stored.as_deref(), Some(&next.encode()), now)
                .await?
            {
                self.remember_fold(site, next);
                return Ok(next);
            }
        }
        Err(Error::Store(StoreError::Backend {
            message: format!("the all-time totals at {key} kept changing while being advanced"),
            source: None,
        }))
    }

    /// The first fold of a site: the layout-1 all-time totals when the site has them
    /// (minus the days that are not settled yet, which are read as days), else the sum
    /// of every day still kept.
    async fn first_fold<S: Store>(
        &self,
        store: &S,
        site: &SiteId,
        rules: &CountingRules,
        target: Date,
        now: Timestamp,
    ) -> Result<Fold, Error> {
        let today = rules.calendar().day(now);
        let legacy = vec![
            Read::Counter(keys::metric(site, Metric::Pageviews, &Scope::Total)),
            Read::Counter(keys::metric(site, Metric::Visits, &Scope::Total)),
            Read::Cardinality(vec![keys::metric(site, Metric::Visitors, &Scope::Total)]),
        ];
        let open_days = dates_between(target.saturating_add(1.day()), today);
        let (open, legacy) = self
            .days(store, site, rules, &open_days, legacy, now)
            .await?;
        let mut fold = Fold::empty(target);
        if legacy.iter().any(|&value| value > 0) {
            let open_sum = |metric: Metric| open.iter().map(|day| day.value(metric)).sum::<u64>();
            fold.pageviews = legacy[0].saturating_sub(open_sum(Metric::Pageviews));
            fold.visits = legacy[1].saturating_sub(open_sum(Metric::Visits));
            fold.visitors = legacy[2].saturating_sub(open_sum(Metric::Visitors));
            return Ok(fold);
        }
        let lifetime = i64::from(rules.retention_days().max(MIN_DAY_LIFETIME_DAYS)) + 1;
        let oldest = today.saturating_sub(lifetime.days());
        self.days_between(store, site, rules, oldest, target, now)
            .await?
            .iter()
            .for_each(|day| fold.add(day));
        Ok(fold)
    }

    /// The figures of every day from `first` to `last` (see [`Settled::days`]).
    async fn days_between<S: Store>(
        &self,
        store: &S,
        site: &SiteId,
        rules: &CountingRules,
        first: Date,
        last: Date,
        now: Timestamp,
    ) -> Result<Vec<DayFigures>, Error> {
        let dates = dates_between(first, last);
        Ok(self
            .days(store, site, rules, &dates, Vec::new(), now)
            .await?
            .0)
    }

    fn remember_fold(&self, site: &SiteId, fold: Fold) {
        let mut sites = self.lock();
        let memory = sites.entry(site.clone()).or_default();
        // Folds only grow: never replace a later one with an earlier one read from a
        // store that has not caught up.
        if memory.fold.is_none_or(|known| known.through < fold.through) {
            memory.fold = Some(fold);
        }
    }

    /// The figures of `dates` (settled ones from memory where known) and the values of
    /// `extra` reads, all from one store call.
    async fn days<S: Store>(
        &self,
        store: &S,
        site: &SiteId,
        rules: &CountingRules,
        dates: &[Date],
        extra: Vec<Read>,
        now: Timestamp,
    ) -> Result<(Vec<DayFigures>, Vec<u64>), Error> {
        let settled = settled_through(rules, now);
        let mut figures: Vec<Option<DayFigures>> = {
            let sites = self.lock();
            let memory = sites.get(site);
            dates
                .iter()
                .map(|date| {
                    memory
                        .filter(|_| *date <= settled)
                        .and_then(|memory| memory.days.get(date).copied())
                })
                .collect()
        };
        let missing: Vec<usize> = (0..dates.len())
            .filter(|&index| figures[index].is_none())
            .collect();
        let mut reads = Vec::with_capacity(missing.len() * 3 + extra.len());
        for &index in &missing {
            let day = Scope::Day(dates[index]);
            reads.push(Read::Counter(keys::metric(site, Metric::Visits, &day)));
            reads.push(Read::Cardinality(vec![keys::metric(
                site,
                Metric::Visitors,
                &day,
            )]));
            reads.push(Read::Counter(keys::metric(site, Metric::Pageviews, &day)));
        }
        let n_day_reads = reads.len();
        reads.extend(extra);
        let values = if reads.is_empty() {
            Vec::new()
        } else {
            store.read(&reads, now).await?
        };
        let (day_values, extra_values) = values.split_at(n_day_reads.min(values.len()));
        for (&index, v) in missing.iter().zip(day_values.chunks_exact(3)) {
            figures[index] = Some(DayFigures {
                date: dates[index],
                visits: v[0],
                visitors: v[1],
                pageviews: v[2],
            });
        }
        let figures: Vec<DayFigures> = figures
            .into_iter()
            .zip(dates)
            .map(|(figures, &date)| figures.unwrap_or_else(|| DayFigures::zero(date)))
            .collect();
        self.remember_days(site, rules, &figures, settled, now);
        Ok((figures, extra_values.to_vec()))
    }

    fn remember_days(
        &self,
        site: &SiteId,
        rules: &CountingRules,
        figures: &[DayFigures],
        settled: Date,
        now: Timestamp,
    ) {
        let floor = rules.calendar().day(now).saturating_sub(MEMORY_DAYS.days());
        let mut sites = self.lock();
        let memory = sites.entry(site.clone()).or_default();
        for day in figures {
            if day.date <= settled && day.date >= floor {
                memory.days.insert(day.date, *day);
            }
        }
        memory.days.retain(|date, _| *date >= floor);
    }

    /// Reads every figure of a site: one store call for the open days, the baselines and
    /// the online set, plus one more only when the online set overflowed (and, once a
    /// day, the fold's advance).
    ///
    /// Online visitors are counted exactly, as the union of the window's minute sets,
    /// unless a minute's set overflowed ([`ONLINE_SET_CAP`](super::ONLINE_SET_CAP));
    /// then they are estimated from the minute sketches, and the figure's accuracy says
    /// so.
    pub async fn snapshot<S: Store>(
        &self,
        store: &S,
        site: &SiteId,
        rules: &CountingRules,
        now: Timestamp,
    ) -> Result<Snapshot, Error> {
        let calendar = rules.calendar();
        let today = calendar.day(now);
        let fold = self.fold(store, site, rules, now).await?;
        let week_days: Vec<Date> = calendar
            .week_days(now)
            .into_iter()
            .filter(|day| *day <= today)
            .collect();
        let month_first = today.first_of_month();
        let first = week_days
            .first()
            .copied()
            .unwrap_or(today)
            .min(month_first)
            .min(fold.through.saturating_add(1.day()));
        let dates = dates_between(first, today);

        let minutes: Vec<_> = online_minutes(now, rules.online_window()).collect();
        let mut extra: Vec<Read> = Metric::ALL
            .iter()
            .map(|&metric| Read::Counter(keys::baseline(site, metric)))
            .collect();
        extra.push(Read::SetUnion(
            minutes
                .iter()
                .map(|&minute| keys::online_minute_set(site, minute))
                .collect(),
        ));
        let (days, extra) = self.days(store, site, rules, &dates, extra, now).await?;
        let baselines = &extra[..Metric::ALL.len()];
        let (online, online_accuracy) = match extra.get(Metric::ALL.len()) {
            Some(&exact) if exact != SET_OVERFLOWED => (exact, Accuracy::Exact),
            _ => {
                // A minute overflowed its set: estimate from the sets and the sketches
                // they spilled into. Only very busy sites get here.
                let pairs = minutes
                    .iter()
                    .map(|&minute| {
                        (
                            keys::online_minute_set(site, minute),
                            keys::online_minute(site, minute),
                        )
                    })
                    .collect();
                let estimate = store.read(&[Read::SpilledUnion(pairs)], now).await?;
                (
                    estimate.first().copied().unwrap_or(0),
                    accuracy(Metric::Visitors, Window::Online, rules),
                )
            }
        };

        let sum = |metric: Metric, range: &mut dyn Iterator<Item = &DayFigures>| {
            range.map(|day| day.value(metric)).sum::<u64>()
        };
        let definition = |metric, window, since, baseline| Definition {
            metric,
            window,
            time_zone: calendar.time_zone_name().to_owned(),
            accuracy: if window == Window::Online {
                online_accuracy
            } else {
                accuracy(metric, window, rules)
            },
            since,
            window_minutes: (window == Window::Online)
                .then(|| u32::try_from(rules.online_window().as_mins()).unwrap_or(u32::MAX)),
            baseline,
            as_of: now,
        };
        let mut figures = vec![Figure {
            value: online,
            definition: definition(
                Metric::Visitors,
                Window::Online,
                now.checked_sub(rules.online_window()).ok(),
                0,
            ),
        }];
        let week_start = calendar.week_start(now);
        for window in [Window::Today, Window::Week, Window::Month, Window::Total] {
            for (index, &metric) in Metric::ALL.iter().enumerate() {
                let (value, since, baseline) = match window {
                    Window::Today => (
                        sum(metric, &mut days.iter().filter(|d| d.date == today)),
                        Some(calendar.day_start(today)),
                        0,
                    ),
                    Window::Week => (
                        sum(
                            metric,
                            &mut days.iter().filter(|d| week_days.contains(&d.date)),
                        ),
                        Some(week_start),
                        0,
                    ),
                    Window::Month => (
                        sum(metric, &mut days.iter().filter(|d| d.date >= month_first)),
                        Some(calendar.day_start(month_first)),
                        0,
                    ),
                    Window::Total | Window::Online => {
                        let since_fold =
                            sum(metric, &mut days.iter().filter(|d| d.date > fold.through));
                        let baseline = baselines[index];
                        (
                            fold.value(metric)
                                .saturating_add(since_fold)
                                .saturating_add(baseline),
                            None,
                            baseline,
                        )
                    }
                };
                figures.push(Figure {
                    value,
                    definition: definition(metric, window, since, baseline),
                });
            }
        }
        Ok(Snapshot {
            site: site.clone(),
            as_of: now,
            figures,
        })
    }

    /// Reads the last `days` local days (today included, oldest first), at most the
    /// site's retention.
    pub async fn history<S: Store>(
        &self,
        store: &S,
        site: &SiteId,
        rules: &CountingRules,
        days: u32,
        now: Timestamp,
    ) -> Result<Vec<DayFigures>, Error> {
        let days = days.clamp(1, rules.retention_days());
        let today = rules.calendar().day(now);
        let oldest = today.saturating_sub((i64::from(days) - 1).days());
        self.days_between(store, site, rules, oldest, today, now)
            .await
    }
}

/// Every date from `first` to `last`, both included (none when `first` is later).
fn dates_between(first: Date, last: Date) -> Vec<Date> {
    let mut dates = Vec::new();
    let mut date = first;
    while date <= last {
        dates.push(date);
        match date.tomorrow() {
            Ok(next) => date = next,
            Err(_) => break,
        }
    }
    dates
}

/// Reads every figure of a site in one store call (see [`Settled::snapshot`]), with no
/// memory of earlier reads: for one-off reads and tests. A service keeps one [`Settled`].
pub async fn snapshot<S: Store>(
    store: &S,
    site: &SiteId,
    rules: &CountingRules,
    now: Timestamp,
) -> Result<Snapshot, Error> {
    Settled::new().snapshot(store, site, rules, now).await
}

/// Reads the last `days` local days (see [`Settled::history`]), with no memory of earlier
/// reads.
pub async fn history<S: Store>(
    store: &S,
    site: &SiteId,
    rules: &CountingRules,
    days: u32,
    now: Timestamp,
) -> Result<Vec<DayFigures>, Error> {
    Settled::new().history(store, site, rules, days, now).await
}

/// What [`upgrade_layout`] did for one site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayoutUpgrade {
    /// The site's fold after the upgrade.
    pub fold: Fold,
    /// How many layout-1 keys were named for deletion (whether or not they existed).
    pub legacy_keys: usize,
}

/// Brings one site's data to the day-record layout: makes sure its fold exists (carrying
/// layout 1's all-time totals over, see [`Settled::fold`]), then deletes layout 1's week,
/// month and all-time keys, which nothing reads any more.
///
/// Idempotent and safe while the service runs: the fold is written only when absent or
/// behind, by compare-and-swap, and is what every reader uses from then on; the keys it
/// deletes are never read once the fold exists. Week and month keys older than the
/// retention expired on their own.
pub async fn upgrade_layout<S: Store>(
    store: &S,
    site: &SiteId,
    rules: &CountingRules,
    now: Timestamp,
) -> Result<LayoutUpgrade, Error> {
    let fold = Settled::new().fold(store, site, rules, now).await?;
    let calendar = rules.calendar();
    let today = calendar.day(now);
    let lifetime = i64::from(rules.retention_days().max(MIN_DAY_LIFETIME_DAYS)) + 40;
    let mut scopes: Vec<Scope> = vec![Scope::Total];
    for date in dates_between(today.saturating_sub(lifetime.days()), today) {
        let at = calendar.day_start(date);
        let month = Scope::Month(calendar.month(at));
        if !scopes.contains(&month) {
            scopes.push(month);
        }
        if let WeekDefinition::StartsOn(_) = calendar.week_definition() {
            let week = Scope::Week(calendar.week(at));
            if !scopes.contains(&week) {
                scopes.push(week);
            }
        }
    }
    let legacy: Vec<Key> = scopes
        .iter()
        .flat_map(|scope| {
            [Metric::Pageviews, Metric::Visits, Metric::Visitors]
                .into_iter()
                .map(move |metric| keys::metric(site, metric, scope))
        })
        .collect();
    store.delete(&legacy).await?;
    Ok(LayoutUpgrade {
        fold,
        legacy_keys: legacy.len(),
    })
}
