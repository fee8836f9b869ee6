//! The key schema shared by every store.
//!
//! Every key of a site starts with `ff:{site}:`. The braces are a Redis Cluster hash tag:
//! all of a site's keys live in one slot, so a batch for a site can run as one script or
//! pipeline and multi-key reads never fail with `CROSSSLOT`. Keys are built only here,
//! only from validated parts ([`SiteId`], calendar keys, hex visitor ids), so nothing a
//! client sends reaches a key unchecked.
//!
//! | key | value | expires |
//! |---|---|---|
//! | `ff:{site}:pv:d:<date>` | pageviews of one local day | day end + the longer of the retention and 35 days |
//! | `ff:{site}:vs:d:<date>` | visits started that day | as above |
//! | `ff:{site}:uv:d:<date>` | visitors that day, HyperLogLog | as above |
//! | `ff:{site}:fold` | all-time totals of the settled days (see [`counter`](crate::counter)) | never |
//! | `ff:{site}:onx:<minute>` | visitors active in that UTC minute, a bounded set of ids (exact while small) | minute end + longest online window |
//! | `ff:{site}:on:<minute>` | the same minute's visitors once its set overflowed, HyperLogLog (written only then) | as its set |
//! | `ff:{site}:sess:<visitor>` | open visit marker (its deadline, Unix ms) | last hit + visit timeout |
//! | `ff:{site}:salt:<period>` | 32-byte salt | period start + 48 h |
//! | `ff:{site}:base:<metric>` | imported baseline for totals | never |
//! | `ff:{site}:hist:<year>` | the days of one local year imported from an earlier counter (the server's document) | never |
//! | `ff:registry`, `ff:audit` | the site registry and the audit log (the server's documents) | never |
//! | `ff:layout` | the layout the registered sites were brought to (`2`) | never |
//!
//! A hit writes one day's three keys, its minute's set and its visitor's marker, whatever
//! the windows: weeks, months and all time are derived from days when read.
//!
//! The first layout ("layout 1") also kept week, month and all-time keys,
//! `ff:{site}:<pv|vs|uv>:w:2026-W49` (or `w:w2026-11-29` for other week starts),
//! `…:m:2026-11` and `…:t`. Only the layout upgrade
//! ([`counter::upgrade_layout`](crate::counter::upgrade_layout)) reads them, to carry the
//! all-time totals over, and then deletes them.

use std::fmt;

use crate::calendar::{Minute, MonthKey, WeekKey};
use crate::identity::VisitorId;
use crate::site::SiteId;
use crate::window::Metric;

/// A store key. Only this module builds them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(String);

impl Key {
    /// The hash tag, the `site` inside `{…}` (the Cluster slot a key lives in), or ""
    /// for a key without one.
    pub fn hash_tag(&self) -> &str {
        self.as_str()
            .strip_prefix("ff:{")
            .and_then(|rest| rest.split_once('}'))
            .map_or("", |(tag, _)| tag)
    }

    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key's bytes, as sent to Redis.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Parses a stored key back, accepting only keys this schema could have built (used
    /// when copying a store, so foreign keys are never carried along).
    pub fn parse(raw: &str) -> Option<Key> {
        if raw == REGISTRY || raw == AUDIT || raw == LAYOUT || raw == AUDIT_HEAD {
            return Some(Key(raw.to_owned()));
        }
        if let Some(n) = raw.strip_prefix(AUDIT_CHUNK_PREFIX) {
            // Only the form `audit_chunk` writes: decimal, no leading zeros.
            return n
                .parse::<u64>()
                .ok()
                .filter(|parsed| parsed.to_string() == n)
                .map(audit_chunk);
        }
        let rest = raw.strip_prefix("ff:{")?;
        let (site, tail) = rest.split_once("}:")?;
        SiteId::new(site).ok()?;
        let tail_ok = !tail.is_empty()
            && tail
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b':' || b == b'-');
        tail_ok.then(|| Key(raw.to_owned()))
    }

    /// What kind of value the key holds, from its place in the schema.
    pub fn kind(&self) -> KeyKind {
        let tail = self.0.split_once("}:").map_or("", |(_, tail)| tail);
        match tail.split(':').next() {
            Some("pv" | "vs" | "base") => KeyKind::Counter,
            Some("uv" | "on") => KeyKind::Sketch,
            Some("onx") => KeyKind::Set,
            _ => KeyKind::Bytes,
        }
    }

    /// True for a visit marker ([`session`]).
    pub fn is_visit_marker(&self) -> bool {
        self.0
            .split_once("}:")
            .is_some_and(|(_, tail)| tail.starts_with("sess:"))
    }

    /// The site whose key this is; `None` for the service-wide keys ([`registry`],
    /// [`audit`], [`layout`]).
    pub fn site(&self) -> Option<SiteId> {
        let rest = self.0.strip_prefix("ff:{")?;
        let end = rest.find('}')?;
        SiteId::new(&rest[..end]).ok()
    }
}

/// A key orders and compares as its text, so maps keyed by [`Key`] are searched by `&str`.
impl std::borrow::Borrow<str> for Key {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const REGISTRY: &str = "ff:registry";
const AUDIT: &str = "ff:audit";
const AUDIT_HEAD: &str = "ff:audit:head";
const AUDIT_CHUNK_PREFIX: &str = "ff:audit:";
const LAYOUT: &str = "ff:layout";

/// The registry of sites (service-wide, so it has no hash tag: it is one key, and single-key
/// commands work on any cluster node).
pub fn registry() -> Key {
    Key(REGISTRY.to_owned())
}

/// The audit log of admin changes as one document, as versions before the chunked log
/// wrote it (service-wide, one key): read as the log's oldest part until it is dropped.
pub fn audit() -> Key {
    Key(AUDIT.to_owned())
}

/// The number of the audit log's chunk now appended to (service-wide, one key).
pub fn audit_head() -> Key {
    Key(AUDIT_HEAD.to_owned())
}

/// Chunk `n` of the audit log (service-wide): up to a hundred entries, oldest first.
pub fn audit_chunk(n: u64) -> Key {
    Key(format!("{AUDIT_CHUNK_PREFIX}{n}"))
}

/// The layout the store's registered sites were last brought to (service-wide, one key;
/// see [`counter::upgrade_layout`](crate::counter::upgrade_layout)).
pub fn layout() -> Key {
    Key(LAYOUT.to_owned())
}

/// The kind of value under a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// A decimal counter.
    Counter,
    /// A HyperLogLog sketch in Redis's format.
    Sketch,
    /// A bounded set of 16-byte ids (see [`SetAdd`](crate::store::SetAdd)).
    Set,
    /// Opaque bytes (salts, visit markers).
    Bytes,
}

/// The period a counter or sketch covers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// One local day: the only period written.
    Day(jiff::civil::Date),
    /// One calendar week (layout 1 only).
    Week(WeekKey),
    /// One local month (layout 1 only).
    Month(MonthKey),
    /// All time (layout 1 only).
    Total,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Day(date) => write!(f, "d:{date}"),
            Scope::Week(week) => write!(f, "w:{week}"),
            Scope::Month(month) => write!(f, "m:{month}"),
            Scope::Total => f.write_str("t"),
        }
    }
}

fn metric_tag(metric: Metric) -> &'static str {
    match metric {
        Metric::Pageviews => "pv",
        Metric::Visits => "vs",
        Metric::Visitors => "uv",
    }
}

/// The counter (pageviews, visits) or sketch (visitors) of `metric` over `scope`.
pub fn metric(site: &SiteId, metric: Metric, scope: &Scope) -> Key {
    Key(format!("ff:{{{site}}}:{}:{scope}", metric_tag(metric)))
}

/// The sketch of the visitors of one UTC minute that its bounded set could not hold (the
/// set's spill, see [`SetAdd::spill`](crate::store::SetAdd::spill)).
pub fn online_minute(site: &SiteId, minute: Minute) -> Key {
    Key(format!("ff:{{{site}}}:on:{minute}"))
}

/// The bounded set of visitors seen in one UTC minute: the online window's exact count
/// while it is small, spilling into the sketch of [`online_minute`] when the set
/// overflows.
pub fn online_minute_set(site: &SiteId, minute: Minute) -> Key {
    Key(format!("ff:{{{site}}}:onx:{minute}"))
}

/// The marker of a visitor's open visit.
pub fn session(site: &SiteId, visitor: &VisitorId) -> Key {
    // Built by hand: this runs once per hit, and `format!` with a hex `Display` costs
    // two allocations and the formatting machinery.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut key = String::with_capacity(site.as_str().len() + 5 + 6 + 32);
    key.push_str("ff:{");
    key.push_str(site.as_str());
    key.push_str("}:sess:");
    for byte in visitor.as_bytes() {
        key.push(char::from(HEX[usize::from(byte >> 4)]));
        key.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    Key(key)
}

/// The salt of one rotation period. `period` comes from
/// [`SaltRotation::period`](crate::identity::SaltRotation::period).
pub fn salt(site: &SiteId, period: &str) -> Key {
    debug_assert!(
        period
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    );
    Key(format!("ff:{{{site}}}:salt:{period}"))
}

/// The all-time totals of a site's settled days, folded once per day (see
/// [`counter`](crate::counter)).
pub fn fold(site: &SiteId) -> Key {
    Key(format!("ff:{{{site}}}:fold"))
}

/// The imported baseline added to the all-time figure of `metric`.
pub fn baseline(site: &SiteId, metric: Metric) -> Key {
    Key(format!("ff:{{{site}}}:base:{}", metric_tag(metric)))
}

/// The days of one local calendar year imported from the counter footfall replaced (a
/// document the server keeps; history only, never part of a total).
pub fn imported_history(site: &SiteId, year: i16) -> Key {
    Key(format!("ff:{{{site}}}:hist:{year}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_the_site_hash_tag() {
        let site = SiteId::new("caukee").unwrap();
        let day = Scope::Day("2026-11-30".parse().unwrap());
        let cases = [
            (
                metric(&site, Metric::Pageviews, &day),
                "ff:{caukee}:pv:d:2026-11-30",
                KeyKind::Counter,
            ),
            (
                metric(&site, Metric::Visits, &Scope::Total),
                "ff:{caukee}:vs:t",
                KeyKind::Counter,
            ),
            (
                online_minute(&site, Minute::from_index(29_412_345)),
                "ff:{caukee}:on:29412345",
                KeyKind::Sketch,
            ),
            (
                online_minute_set(&site, Minute::from_index(29_412_345)),
                "ff:{caukee}:onx:29412345",
                KeyKind::Set,
            ),
            (fold(&site), "ff:{caukee}:fold", KeyKind::Bytes),
            (
                baseline(&site, Metric::Visits),
                "ff:{caukee}:base:vs",
                KeyKind::Counter,
            ),
            (
                salt(&site, "2026-11-30"),
                "ff:{caukee}:salt:2026-11-30",
                KeyKind::Bytes,
            ),
            (
                imported_history(&site, 2025),
                "ff:{caukee}:hist:2025",
                KeyKind::Bytes,
            ),
            (
                session(&site, &VisitorId::from_bytes([0xa5; 16])),
                "ff:{caukee}:sess:a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5",
                KeyKind::Bytes,
            ),
        ];
        for (key, expected, kind) in cases {
            assert_eq!(key.as_str(), expected);
            assert_eq!(key.site(), Some(site.clone()));
            assert_eq!(key.kind(), kind, "{expected}");
            assert_eq!(Key::parse(expected), Some(key));
        }
    }

    #[test]
    fn service_wide_keys() {
        for key in [
            registry(),
            audit(),
            layout(),
            audit_head(),
            audit_chunk(0),
            audit_chunk(u64::MAX),
        ] {
            assert_eq!(key.site(), None);
            assert_eq!(key.hash_tag(), "");
            assert_eq!(key.kind(), KeyKind::Bytes);
            assert_eq!(Key::parse(key.as_str()), Some(key));
        }
        assert_eq!(audit_chunk(42).as_str(), "ff:audit:42");
        for foreign in [
            "ff:registry2",
            "ff:audit:",
            "ff:audit:042",
            "ff:audit:-1",
            "ff:audit:x",
        ] {
            assert_eq!(Key::parse(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn parse_rejects_foreign_keys() {
        for raw in [
            "",
            "ff:{caukee}",
            "ff:{caukee}:",
            "ff:{Cau}:pv:t",
            "ff:{caukee}:pv:t x",
            "other:{caukee}:pv:t",
            "ff:caukee:pv:t",
            "ff:{caukee}:pv:{t}",
        ] {
            assert_eq!(Key::parse(raw), None, "{raw:?}");
        }
    }
}
