//! What this instance saw of each visitor in the last hour: when a visitor id last sent a
//! hit to a site.
//!
//! Two things need to know, at the moment a hit is accepted and without asking the store,
//! whether its visitor is new:
//!
//! - the budget of new visitors per client address ([`crate::ingest`]): a script that
//!   changes its User-Agent on every hit makes a new visitor id each time, and that is
//!   what the budget charges;
//! - the widget's answer, which counts its own reader: today's pageviews go up by the page
//!   view it just recorded, and online, today's visitors and visits by one when the reader
//!   is new to them, so a site's first reader never sees 0.
//!
//! It is an instance's view, not the store's: a visitor last seen by another instance
//! behind the same load balancer looks new here. The budget is then per instance (as the
//! hit rate limit is), and the widget may show one more than the store will count, until
//! its next read. Exact counting stays the store's (visit markers, sketches).
//!
//! Memory is bounded by `capacity` entries (24 bytes of key and time, about 40 with the
//! table's slack), whatever clients send: entries older than [`KEEP`] are pruned by the
//! upkeep, and while the map is full a new visitor is not remembered (it looks new again
//! on its next hit).

use std::hash::BuildHasher as _;
use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::DashMap;
use foldhash::fast::RandomState;
use footfall::SiteId;
use footfall::identity::VisitorId;
use jiff::{SignedDuration, Timestamp};

/// How long a visitor is remembered: the budget's window (an hour), which also covers the
/// default visit timeout (30 minutes) and every online window (at most 30 minutes).
pub const KEEP: SignedDuration = SignedDuration::from_hours(1);

/// What an instance knew of a hit's visitor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// Its last hit, within [`KEEP`].
    Before(Timestamp),
    /// Not seen within [`KEEP`]: new, and now remembered.
    New,
    /// Not remembered, and not remembered now either: the map is full. It may well be
    /// a visitor seen a minute ago, so it is not charged to its address's budget (that
    /// would charge every hit of every reader behind a busy NAT address while the map
    /// is full); filling the map takes more new visitors than one address's budget.
    Untracked,
}

impl Seen {
    /// The visitor's last hit within [`KEEP`], if this instance knows it.
    pub fn last(self) -> Option<Timestamp> {
        match self {
            Seen::Before(at) => Some(at),
            Seen::New | Seen::Untracked => None,
        }
    }
}

/// Last hit times by site and visitor.
#[derive(Debug)]
pub struct RecentVisitors {
    /// [`slot`] → the last hit, Unix milliseconds. The keys are derived with the salt's
    /// secret key, so no client can aim them at one bucket: a fast hasher is enough.
    last_seen: DashMap<[u8; 16], i64, RandomState>,
    /// Hashes a site's id for [`slot`]: the same for the instance's life.
    fold: RandomState,
    /// Entries, kept beside the map so a hit does not count the map's shards.
    len: AtomicUsize,
    capacity: usize,
}

impl RecentVisitors {
    /// Remembers at most `capacity` visitors.
    pub fn new(capacity: usize) -> Self {
        RecentVisitors {
            last_seen: DashMap::with_hasher(RandomState::default()),
            fold: RandomState::default(),
            len: AtomicUsize::new(0),
            capacity,
        }
    }

    /// Records a hit of `visitor` on `site` at `now`, and says what this instance knew of
    /// it.
    pub fn touch(&self, site: &SiteId, visitor: &VisitorId, now: Timestamp) -> Seen {
        let key = slot(self.fold.hash_one(site.as_str()), visitor);
        let now_ms = now.as_millisecond();
        if let Some(mut seen) = self.last_seen.get_mut(&key) {
            let previous = *seen;
            *seen = previous.max(now_ms);
            return Timestamp::from_millisecond(previous)
                .ok()
                .filter(|&at| now.duration_since(at) < KEEP)
                .map_or(Seen::New, Seen::Before);
        }
        if self.len.load(Ordering::Relaxed) >= self.capacity {
            return Seen::Untracked;
        }
        if self.last_seen.insert(key, now_ms).is_none() {
            self.len.fetch_add(1, Ordering::Relaxed);
        }
        Seen::New
    }

    /// Forgets visitors not seen for [`KEEP`].
    pub fn prune(&self, now: Timestamp) {
        let oldest = now
            .checked_sub(KEEP)
            .unwrap_or(Timestamp::MIN)
            .as_millisecond();
        let mut removed = 0;
        self.last_seen.retain(|_, seen| {
            let keep = *seen >= oldest;
            if !keep {
                removed += 1;
            }
            keep
        });
        self.len.fetch_sub(removed, Ordering::Relaxed);
        self.last_seen.shrink_to_fit();
    }

    /// How many visitors are remembered.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// True when no visitor is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The map's key for a visitor of a site: the id with a hash of the site (`site_hash`)
/// folded into its low half. A derived id already depends on its site
/// ([`VisitorId::derive`] hashes the site in), so ids of two sites are as unlikely to
/// meet as any two ids; the fold keeps equal ids given to two sites apart too. An entry
/// is then 24 bytes where the site's shared name made it 40, which is most of this map
/// at its capacity.
fn slot(site_hash: u64, visitor: &VisitorId) -> [u8; 16] {
    (u128::from_le_bytes(*visitor.as_bytes()) ^ u128::from(site_hash)).to_le_bytes()
}

/// What a page view adds for its own reader to the figures drawn for it: always a page
/// view, and a visit, a visitor of the day and an online visitor when it is the first of
/// them (as far as this instance knows).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reader {
    /// The page view itself.
    pub pageview: bool,
    /// It starts a visit (no hit within the site's visit timeout).
    pub visit: bool,
    /// It is the visitor's first hit of the local day.
    pub visitor: bool,
    /// The visitor was not online (no hit within the online window).
    pub online: bool,
}

impl Reader {
    /// The reader of a page view accepted at `now`, last seen at `previous`.
    pub fn of_page_view(
        previous: Option<Timestamp>,
        now: Timestamp,
        rules: &footfall::CountingRules,
    ) -> Reader {
        let within =
            |window: SignedDuration| previous.is_some_and(|at| now.duration_since(at) <= window);
        let calendar = rules.calendar();
        Reader {
            pageview: true,
            visit: !within(rules.visit_timeout()),
            visitor: previous.is_none_or(|at| calendar.day(at) != calendar.day(now)),
            online: !within(rules.online_window()),
        }
    }
}

#[cfg(test)]
mod tests {
    use footfall::CountingRules;

    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("a timestamp")
    }

    #[test]
    fn a_visitor_is_new_once_then_known_for_an_hour() {
        let recent = RecentVisitors::new(10);
        let site = SiteId::new("caukee").expect("a site");
        let visitor = VisitorId::from_bytes([7; 16]);
        let t0 = at("2026-11-30T03:00:00Z");
        assert_eq!(recent.touch(&site, &visitor, t0), Seen::New);
        let t1 = t0 + SignedDuration::from_mins(40);
        assert_eq!(recent.touch(&site, &visitor, t1), Seen::Before(t0));
        // Another site's visitor with the same id bytes is another visitor.
        let other = SiteId::new("soyte").expect("a site");
        assert_eq!(recent.touch(&other, &visitor, t1), Seen::New);
        assert_eq!(recent.len(), 2);
        // Past an hour of silence it is forgotten.
        recent.prune(t1 + KEEP + SignedDuration::from_secs(1));
        assert!(recent.is_empty());
        assert_eq!(recent.touch(&site, &visitor, t1 + KEEP * 2), Seen::New);
    }

    #[test]
    fn memory_is_bounded_by_the_capacity() {
        let recent = RecentVisitors::new(3);
        let site = SiteId::new("caukee").expect("a site");
        let t0 = at("2026-11-30T03:00:00Z");
        let seen: Vec<Seen> = (0..10u8)
            .map(|n| recent.touch(&site, &VisitorId::from_bytes([n; 16]), t0))
            .collect();
        assert_eq!(seen[..3], [Seen::New; 3]);
        assert_eq!(seen[3..], [Seen::Untracked; 7]);
        assert_eq!(recent.len(), 3);
        // Those remembered are still known; the others stay untracked (not charged to
        // a budget as new, not remembered) until the prune makes room.
        assert_eq!(
            recent.touch(&site, &VisitorId::from_bytes([0; 16]), t0),
            Seen::Before(t0)
        );
        assert_eq!(
            recent.touch(&site, &VisitorId::from_bytes([9; 16]), t0),
            Seen::Untracked
        );
        recent.prune(t0 + KEEP + SignedDuration::from_secs(1));
        assert_eq!(
            recent.touch(&site, &VisitorId::from_bytes([9; 16]), t0 + KEEP * 2),
            Seen::New
        );
    }

    #[test]
    fn a_reader_adds_what_it_is_new_to() {
        let rules = CountingRules::default();
        // 10:00 local in Asia/Ho_Chi_Minh.
        let now = at("2026-11-30T03:00:00Z");
        let first = Reader::of_page_view(None, now, &rules);
        assert_eq!(
            first,
            Reader {
                pageview: true,
                visit: true,
                visitor: true,
                online: true
            }
        );
        let minutes_ago = |m: i64| Some(now - SignedDuration::from_mins(m));
        assert_eq!(
            Reader::of_page_view(minutes_ago(2), now, &rules),
            Reader {
                pageview: true,
                ..Reader::default()
            }
        );
        let after_ten = Reader::of_page_view(minutes_ago(10), now, &rules);
        assert!(after_ten.online && !after_ten.visit && !after_ten.visitor);
        let after_forty = Reader::of_page_view(minutes_ago(40), now, &rules);
        assert!(after_forty.online && after_forty.visit && !after_forty.visitor);
        // Seen yesterday evening: a new visitor of today.
        let yesterday = Reader::of_page_view(Some(at("2026-11-29T16:30:00Z")), now, &rules);
        assert!(yesterday.visitor);
    }
}
