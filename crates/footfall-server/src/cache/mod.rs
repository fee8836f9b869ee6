//! Counts served from memory, refreshed in the background.
//!
//! Each site has one slot holding its last snapshot, already rendered to JSON with its
//! ETag, so a cached read costs no store access and no serialisation. Refreshes go
//! through one [`Settled`] memory, so they read only the days still open from the store
//! (settled days and the all-time fold are kept for good). A read of a slot older than
//! `fresh_for` starts one refresh (single-flight: a second reader does not start
//! another) and returns the slot at once while it is less than twice `fresh_for` old;
//! an older slot (a quiet site) is not served as current: the reader waits up to
//! a quarter second for the refresh, and otherwise gets the old figures marked stale.
//! The first read of a site waits for the store. When the store fails, the last numbers
//! keep being served, marked stale.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::http::HeaderValue;
use bytes::Bytes;
use foldhash::HashMap;
use footfall::clock::Clock;
use footfall::counter::{Settled, Snapshot};
use footfall::{SiteId, Window};
use serde_json::value::RawValue;
use tokio::time::Instant;

use crate::error::AppError;
use crate::metrics as m;
use crate::recent::Reader;
use crate::sites::Site;
use crate::store::AppStore;

mod wire;

pub use wire::counts_json;

/// How long a reader of figures older than twice the TTL waits for their refresh before
/// it gets them marked stale.
const REFRESH_WAIT: Duration = Duration::from_millis(250);

/// A site's counts as served.
#[derive(Debug)]
pub struct Counts {
    /// The figures.
    pub snapshot: Snapshot,
    /// True when the last refresh failed and these numbers may be old.
    pub stale: bool,
    /// The JSON body of `GET /api/v1/sites/{site}/counts`.
    pub json: Bytes,
    /// The body's strong ETag, as the header carries it (quoted hex digits, so always a
    /// valid header value): made once per refresh, not per read.
    pub etag: HeaderValue,
    /// The footer's labels (JSON escaped for a script) of the widget's answers on these
    /// counts, rendered by the first widget request (they depend only on the site's
    /// settings, a change of which replaces the cached counts), so the widget's hot path
    /// copies bytes only.
    footer: OnceLock<Box<RawValue>>,
    /// These figures marked stale, rendered by the first reader that needed them so (a
    /// late refresh), so that the others reuse it instead of each rendering its own.
    stale_copy: OnceLock<Arc<Counts>>,
    fetched_at: Instant,
}

impl Counts {
    /// The widget's answer on these counts for `reader` (the counts body with `reader`,
    /// `valid` and the footer first); `footer` renders the site's footer labels, JSON
    /// escaped for a script, and is called only by the first answer on these counts.
    pub fn widget_json(&self, reader: Option<Reader>, footer: impl FnOnce() -> String) -> Bytes {
        let footer = self.footer.get_or_init(|| {
            RawValue::from_string(footer())
                .unwrap_or_else(|_| RawValue::from_string("{}".to_owned()).expect("JSON"))
        });
        wire::widget_json(&self.json, footer, reader)
    }

    /// These figures marked stale: themselves when they are, else their stale rendering,
    /// made once for every reader of them.
    fn marked_stale(self: &Arc<Self>, site: &Site) -> Arc<Counts> {
        if self.stale {
            return Arc::clone(self);
        }
        Arc::clone(
            self.stale_copy
                .get_or_init(|| Arc::new(render(site, self.snapshot.clone(), true))),
        )
    }
}

#[derive(Debug, Default)]
struct Slot {
    current: Mutex<Option<Arc<Counts>>>,
    refresh: Arc<tokio::sync::Mutex<()>>,
}

impl Slot {
    fn current(&self) -> Option<Arc<Counts>> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set(&self, counts: Arc<Counts>) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(counts);
    }
}

/// The per-site counts cache.
#[derive(Debug)]
pub struct CountsCache {
    slots: Mutex<HashMap<SiteId, Arc<Slot>>>,
    settled: Settled,
    store: Arc<AppStore>,
    clock: Arc<dyn Clock>,
    fresh_for: Duration,
    read_timeout: Duration,
    lookups: m::CacheCounters,
}

impl CountsCache {
    /// A cache reading from `store`, refreshing entries older than `fresh_for`.
    pub fn new(
        store: Arc<AppStore>,
        clock: Arc<dyn Clock>,
        fresh_for: Duration,
        read_timeout: Duration,
    ) -> Self {
        CountsCache {
            slots: Mutex::new(HashMap::default()),
            settled: Settled::new(),
            store,
            clock,
            fresh_for,
            read_timeout,
            lookups: m::CacheCounters::new(),
        }
    }

    fn slot(&self, id: &SiteId) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = slots.get(id) {
            return Arc::clone(slot);
        }
        Arc::clone(slots.entry(id.clone()).or_default())
    }

    /// Forgets a site (after it is deleted).
    pub fn forget(&self, id: &SiteId) {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        self.settled.forget(id);
    }

    /// The memory of settled days and folds these counts are read through, shared with
    /// history reads and the daily fold.
    pub fn settled(&self) -> &Settled {
        &self.settled
    }

    /// The counts of `site`: cached, refreshed in the background when old, or read now
    /// when never read before.
    pub async fn get(self: &Arc<Self>, site: &Arc<Site>) -> Result<Arc<Counts>, AppError> {
        let slot = self.slot(&site.id);
        if let Some(counts) = slot.current() {
            self.lookups.lookup(true);
            let age = counts.fetched_at.elapsed();
            if age < self.fresh_for {
                return Ok(counts);
            }
            // One refresh at a time per site; a reader that finds one running does not
            // start another.
            let refresh = match Arc::clone(&slot.refresh).try_lock_owned() {
                Ok(guard) => {
                    let cache = Arc::clone(self);
                    let site = Arc::clone(site);
                    let slot = Arc::clone(&slot);
                    Some(tokio::spawn(async move {
                        let _guard = guard;
                        // Failures are recorded in the slot (stale) and logged by refresh.
                        cache.refresh(&slot, &site).await
                    }))
                }
                Err(_) => None,
            };
            // Within twice the TTL, the last figures are served while they refresh (a
            // busy site's readers never wait). Older than that (a quiet site, read
            // after minutes), they are not passed off as current: the reader waits a
            // little for the refresh, and gets the old figures marked stale if it is
            // not done by then.
            if age < self.fresh_for * 2 {
                return Ok(counts);
            }
            if let Some(refresh) = refresh
                && let Ok(Ok(Ok(fresh))) = tokio::time::timeout(REFRESH_WAIT, refresh).await
            {
                return Ok(fresh);
            }
            if let Some(newer) = slot.current()
                && newer.fetched_at.elapsed() < self.fresh_for
            {
                return Ok(newer);
            }
            return Ok(counts.marked_stale(site));
        }
        self.lookups.lookup(false);
        let _guard = slot.refresh.lock().await;
        if let Some(counts) = slot.current() {
            return Ok(counts);
        }
        self.refresh(&slot, site).await
    }

    /// Reads the store and replaces the slot; on failure marks the old counts stale.
    async fn refresh(&self, slot: &Slot, site: &Site) -> Result<Arc<Counts>, AppError> {
        let now = self.clock.now();
        let started = Instant::now();
        let read = tokio::time::timeout(
            self.read_timeout,
            self.settled
                .snapshot(self.store.as_ref(), &site.id, &site.rules, now),
        )
        .await;
        let result = match read {
            Ok(Ok(snapshot)) => Ok(snapshot),
            Ok(Err(error)) => Err(AppError::from(error)),
            Err(_) => Err(AppError::Unavailable(None)),
        };
        m::store_operation("read", started.elapsed(), result.is_ok());
        let previous = slot.current();
        match result {
            Ok(mut snapshot) => {
                if let Some(previous) = &previous {
                    keep_totals_monotonic(&mut snapshot, &previous.snapshot);
                }
                let counts = Arc::new(render(site, snapshot, false));
                slot.set(Arc::clone(&counts));
                Ok(counts)
            }
            Err(error) => {
                tracing::warn!(site = %site.id, error = %error, "counts refresh failed");
                match previous {
                    Some(previous) => {
                        // Rendered now, so the next refresh is tried after `fresh_for`.
                        let stale = Arc::new(render(site, previous.snapshot.clone(), true));
                        slot.set(Arc::clone(&stale));
                        Ok(stale)
                    }
                    None => Err(error),
                }
            }
        }
    }
}

/// A public all-time figure never goes down, even if a store loses data or a baseline is
/// corrected: each total is at least what this instance showed before.
fn keep_totals_monotonic(snapshot: &mut Snapshot, previous: &Snapshot) {
    for figure in &mut snapshot.figures {
        if figure.definition.window == Window::Total {
            let shown = previous.value(Window::Total, figure.definition.metric);
            figure.value = figure.value.max(shown);
        }
    }
}

fn render(site: &Site, snapshot: Snapshot, stale: bool) -> Counts {
    let json = wire::counts_json(site, &snapshot, stale);
    let etag = crate::web::conditional::etag_header(&json);
    Counts {
        snapshot,
        stale,
        json,
        etag,
        footer: OnceLock::new(),
        stale_copy: OnceLock::new(),
        fetched_at: Instant::now(),
    }
}

#[cfg(test)]
mod tests {
    use footfall::clock::ManualClock;
    use footfall::counter::{self, Hit, HitKind};
    use footfall::identity::VisitorId;
    use footfall::store::MemoryStore;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn figures_of_a_quiet_site_are_refreshed_before_they_are_served_again() {
        let store = Arc::new(AppStore::Memory(MemoryStore::new()));
        let now: jiff::Timestamp = "2026-11-30T03:00:00Z".parse().unwrap();
        let clock = Arc::new(ManualClock::new(now));
        let cache = Arc::new(CountsCache::new(
            Arc::clone(&store),
            Arc::clone(&clock) as Arc<dyn Clock>,
            Duration::from_secs(5),
            Duration::from_secs(5),
        ));
        let site = Arc::new(Site::from_settings(crate::sites::SiteSettings::demo(), "").unwrap());
        let online = |counts: &Counts| {
            counts
                .snapshot
                .value(Window::Online, footfall::Metric::Visitors)
        };
        assert_eq!(online(&cache.get(&site).await.unwrap()), 0);

        // Six quiet minutes, then a reader arrives just after a visitor did.
        tokio::time::advance(Duration::from_secs(360)).await;
        let later = now + jiff::SignedDuration::from_secs(360);
        clock.set(later);
        let hit = Hit {
            site: site.id.clone(),
            at: later,
            visitor: VisitorId::from_bytes([7; 16]),
            previous_visitor: None,
            kind: HitKind::Pageview,
        };
        counter::record(store.as_ref(), &[hit], |_| Some(&site.rules), later)
            .await
            .unwrap();
        let read = cache.get(&site).await.unwrap();
        assert_eq!(online(&read), 1, "not the six-minute-old figures");
        assert!(!read.stale);

        // Within twice the TTL the last figures are served at once, and refreshed behind.
        tokio::time::advance(Duration::from_secs(7)).await;
        let read = cache.get(&site).await.unwrap();
        assert_eq!(online(&read), 1);
    }

    #[tokio::test]
    async fn figures_marked_stale_are_rendered_once_for_all_their_readers() {
        let site = Site::from_settings(crate::sites::SiteSettings::demo(), "").unwrap();
        let now: jiff::Timestamp = "2026-11-30T03:00:00Z".parse().unwrap();
        let store = AppStore::Memory(MemoryStore::new());
        let snapshot = Settled::new()
            .snapshot(&store, &site.id, &site.rules, now)
            .await
            .unwrap();
        let fresh = Arc::new(render(&site, snapshot, false));
        let first = fresh.marked_stale(&site);
        let second = fresh.marked_stale(&site);
        assert!(first.stale);
        assert!(
            Arc::ptr_eq(&first, &second),
            "one rendering for every reader"
        );
        assert_ne!(
            first.json, fresh.json,
            "the body says the figures are stale"
        );
        assert_ne!(first.etag, fresh.etag);
        assert!(
            Arc::ptr_eq(&first.marked_stale(&site), &first),
            "stale figures are their own stale rendering"
        );
    }
}
