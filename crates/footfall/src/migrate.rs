//! Copying every entry of one store into another (`footfall migrate --from … --to …`).
//!
//! The copy pages through [`Store::scan`] of the source and [`Store::restore`]s each page
//! into the target, so it needs nothing beyond the storage trait and works between any
//! two backends, e.g. memory → embedded, embedded → Redis and back:
//!
//! - **Faithful**: counters move as values, sketches as their Redis bytes (bit for bit),
//!   bounded sets with their members and overflow mark, bytes as given, each with its
//!   deadline.
//! - **Idempotent**: `restore` replaces what is there, so running the copy twice gives the
//!   same target. Entries only in the target are left alone.
//! - **Resumable**: the report carries the cursor after the last restored page; passing
//!   it as [`CopyOptions::start`] goes on from there after an interruption.
//! - **Expired entries are skipped**: they would be dead on arrival.
//!
//! The copy is not a snapshot: hits recorded into the source while it runs may or may not
//! be copied. Stop the writers first (or copy twice, the second time with writers
//! stopped) when every hit matters.
//!
//! ```
//! use footfall::migrate::{self, CopyOptions};
//! use footfall::store::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let (from, to) = (MemoryStore::new(), MemoryStore::new());
//! let now: jiff::Timestamp = "2026-11-30T03:00:00Z".parse()?;
//! let report = migrate::copy(&from, &to, &CopyOptions::default(), now).await?;
//! assert!(report.complete);
//! assert_eq!(report.entries(), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::collections::BTreeSet;

use jiff::Timestamp;

use crate::Error;
use crate::site::SiteId;
use crate::store::{EntryValue, ScanCursor, Store};

/// How to copy.
#[derive(Clone, Debug)]
pub struct CopyOptions {
    /// Entries per scanned and restored page. Each page is one `restore`, i.e. one commit
    /// on the embedded store and one pipeline on Redis: a few thousand keeps both cheap
    /// and memory small (a page of dense sketches is 12 KiB each).
    pub page_size: usize,
    /// Where to start: `ScanCursor::default()` for the beginning, or a report's
    /// [`last_cursor`](MigrationReport::last_cursor) to resume.
    pub start: ScanCursor,
    /// Stop after this many pages (the report is then not `complete`); `None` copies all.
    pub max_pages: Option<u64>,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            page_size: 1_000,
            start: ScanCursor::default(),
            max_pages: None,
        }
    }
}

/// What a copy did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Counters copied.
    pub counters: u64,
    /// Sketches copied.
    pub sketches: u64,
    /// Bounded sets copied (the online window's exact minute buckets).
    pub sets: u64,
    /// Other values (salts, visit markers) copied.
    pub bytes: u64,
    /// Entries skipped because they had expired by `now`.
    pub skipped_expired: u64,
    /// The sites whose entries were copied.
    pub sites: BTreeSet<SiteId>,
    /// Pages scanned and restored.
    pub pages: u64,
    /// The cursor after the last restored page: pass it as [`CopyOptions::start`] to go
    /// on. `None` once the scan is complete.
    pub last_cursor: Option<ScanCursor>,
    /// True when the whole source was scanned.
    pub complete: bool,
}

impl MigrationReport {
    /// Entries copied, of every kind.
    pub fn entries(&self) -> u64 {
        self.counters + self.sketches + self.sets + self.bytes
    }
}

/// Copies every live entry of `from` into `to` (see the [module docs](self)).
pub async fn copy<A: Store, B: Store>(
    from: &A,
    to: &B,
    options: &CopyOptions,
    now: Timestamp,
) -> Result<MigrationReport, Error> {
    copy_with_progress(from, to, options, now, |_| {}).await
}

/// [`copy`], calling `progress` with the report so far after each restored page, so a
/// command line can print the cursor to resume from if the copy is interrupted.
pub async fn copy_with_progress<A: Store, B: Store>(
    from: &A,
    to: &B,
    options: &CopyOptions,
    now: Timestamp,
    mut progress: impl FnMut(&MigrationReport),
) -> Result<MigrationReport, Error> {
    let page_size = options.page_size.max(1);
    let mut report = MigrationReport::default();
    let mut cursor = options.start.clone();
    loop {
        if options.max_pages.is_some_and(|max| report.pages >= max) {
            report.last_cursor = Some(cursor);
            return Ok(report);
        }
        let (mut page, next) = from.scan(&cursor, page_size, now).await?;
        let scanned = page.len();
        // Backends already leave out expired entries; a deadline that passes between the
        // source's check and ours is caught here.
        page.retain(|entry| entry.expire_at.is_none_or(|at| at > now));
        report.skipped_expired += (scanned - page.len()) as u64;
        for entry in &page {
            match entry.value {
                EntryValue::Counter(_) => report.counters += 1,
                EntryValue::Sketch(_) => report.sketches += 1,
                EntryValue::Set { .. } => report.sets += 1,
                EntryValue::Bytes(_) => report.bytes += 1,
            }
            // Service-wide keys (registry, audit) belong to no site.
            if let Some(site) = entry.key.site()
                && !report.sites.contains(&site)
            {
                report.sites.insert(site);
            }
        }
        if !page.is_empty() {
            to.restore(&page).await?;
        }
        report.pages += 1;
        match next {
            Some(next) => {
                cursor = next;
                report.last_cursor = Some(cursor.clone());
                progress(&report);
            }
            None => {
                report.last_cursor = None;
                report.complete = true;
                progress(&report);
                return Ok(report);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;
    use crate::counter::{self, Hit, Snapshot};
    use crate::identity::VisitorId;
    use crate::keys;
    use crate::store::conformance::fixtures;
    use crate::store::{Entry, MemoryStore};
    use crate::{CountingRules, Metric, Window};

    fn now() -> Timestamp {
        "2026-11-30T03:00:00Z".parse().expect("valid timestamp")
    }

    fn sites() -> Vec<SiteId> {
        ["caukee", "soyte", "ubnd"]
            .into_iter()
            .map(|name| SiteId::new(name).expect("valid site"))
            .collect()
    }

    /// A source with hits over two days for several sites, baselines and salts.
    async fn populated_source(rules: &CountingRules) -> MemoryStore {
        let store = MemoryStore::new();
        for (site_idx, site) in sites().into_iter().enumerate() {
            let hits: Vec<Hit> = (0..60u32)
                .map(|n| {
                    let mut id = [0u8; 16];
                    id[..4].copy_from_slice(&(n % (10 + site_idx as u32)).to_le_bytes());
                    // Over 20 hours: two local days (10:00 today back to 14:00 yesterday),
                    // all of them still writable.
                    let at = now() - SignedDuration::from_mins(i64::from(n) * 20);
                    fixtures::hit(&site, at, VisitorId::from_bytes(id))
                })
                .collect();
            counter::record(&store, &hits, |_| Some(rules), now())
                .await
                .unwrap();
            counter::set_baseline(
                &store,
                &site,
                Metric::Visits,
                1_000 + site_idx as u64,
                false,
                now(),
            )
            .await
            .unwrap();
            store
                .set(
                    &keys::salt(&site, "2026-11-30"),
                    &[site_idx as u8; 32],
                    None,
                )
                .await
                .unwrap();
        }
        store
    }

    async fn scan_all<S: Store>(store: &S) -> Vec<Entry> {
        let mut cursor = ScanCursor::default();
        let mut all = Vec::new();
        loop {
            let (page, next) = store.scan(&cursor, 10, now()).await.unwrap();
            all.extend(page);
            match next {
                Some(next) => cursor = next,
                None => return all,
            }
        }
    }

    async fn snapshots<S: Store>(store: &S, rules: &CountingRules) -> Vec<Snapshot> {
        let mut all = Vec::new();
        for site in sites() {
            all.push(counter::snapshot(store, &site, rules, now()).await.unwrap());
        }
        all
    }

    fn options(page_size: usize) -> CopyOptions {
        CopyOptions {
            page_size,
            ..CopyOptions::default()
        }
    }

    #[tokio::test]
    async fn a_copy_counts_what_it_moves_and_is_idempotent() {
        let rules = CountingRules::default();
        let source = populated_source(&rules).await;
        let target = MemoryStore::new();
        let source_entries = scan_all(&source).await;
        let first = copy(&source, &target, &options(7), now()).await.unwrap();
        assert!(first.complete);
        assert_eq!(first.last_cursor, None);
        assert_eq!(first.entries(), source_entries.len() as u64);
        assert_eq!(first.sites, sites().into_iter().collect());
        let count = |kind: fn(&EntryValue) -> bool| {
            source_entries.iter().filter(|e| kind(&e.value)).count() as u64
        };
        assert_eq!(
            first.counters,
            count(|v| matches!(v, EntryValue::Counter(_)))
        );
        assert_eq!(
            first.sketches,
            count(|v| matches!(v, EntryValue::Sketch(_)))
        );
        assert_eq!(first.sets, count(|v| matches!(v, EntryValue::Set { .. })));
        assert_eq!(first.bytes, count(|v| matches!(v, EntryValue::Bytes(_))));
        assert!(first.counters > 0 && first.sketches > 0 && first.sets > 0 && first.bytes > 0);
        assert_eq!(
            first.pages,
            first.entries().div_ceil(7) + u64::from(first.entries() % 7 == 0)
        );
        assert_eq!(scan_all(&target).await, source_entries);

        let second = copy(&source, &target, &options(7), now()).await.unwrap();
        assert_eq!(second, first, "a second copy reports the same");
        assert_eq!(
            scan_all(&target).await,
            source_entries,
            "and changes nothing"
        );
        assert_eq!(
            snapshots(&target, &rules).await,
            snapshots(&source, &rules).await
        );
    }

    #[tokio::test]
    async fn an_interrupted_copy_resumes_from_its_cursor() {
        let rules = CountingRules::default();
        let source = populated_source(&rules).await;
        let target = MemoryStore::new();
        let partial = copy(
            &source,
            &target,
            &CopyOptions {
                page_size: 5,
                max_pages: Some(2),
                ..CopyOptions::default()
            },
            now(),
        )
        .await
        .unwrap();
        assert!(!partial.complete);
        assert_eq!(partial.pages, 2);
        assert_eq!(partial.entries(), 10);
        assert_eq!(target.len(now()), 10);
        let mut pages_seen = Vec::new();
        let rest = copy_with_progress(
            &source,
            &target,
            &CopyOptions {
                page_size: 5,
                start: partial
                    .last_cursor
                    .clone()
                    .expect("a cursor to resume from"),
                max_pages: None,
            },
            now(),
            |report| pages_seen.push(report.pages),
        )
        .await
        .unwrap();
        assert!(rest.complete);
        assert_eq!(partial.entries() + rest.entries(), source.len(now()) as u64);
        assert_eq!(pages_seen, (1..=rest.pages).collect::<Vec<_>>());
        assert_eq!(scan_all(&target).await, scan_all(&source).await);
    }

    #[tokio::test]
    async fn expired_entries_are_not_copied() {
        let rules = CountingRules::default();
        let source = populated_source(&rules).await;
        let target = MemoryStore::new();
        // A day later the visit markers and minute buckets have expired.
        let later = now() + SignedDuration::from_hours(24);
        let report = copy(&source, &target, &options(100), later).await.unwrap();
        assert!(report.complete);
        assert_eq!(report.entries(), source.len(later) as u64);
        assert!(source.len(later) < source.len(now()));
        let mut cursor = ScanCursor::default();
        loop {
            let (page, next) = target.scan(&cursor, 50, now()).await.unwrap();
            for entry in &page {
                assert!(entry.expire_at.is_none_or(|at| at > later), "{}", entry.key);
                assert!(!entry.key.as_str().contains(":sess:"), "{}", entry.key);
            }
            match next {
                Some(next) => cursor = next,
                None => break,
            }
        }
        let totals = |snapshots: Vec<Snapshot>| -> Vec<u64> {
            snapshots
                .iter()
                .map(|s| s.value(Window::Total, Metric::Pageviews))
                .collect()
        };
        assert_eq!(totals(snapshots(&target, &rules).await), vec![60, 60, 60]);
    }

    #[cfg(feature = "embedded")]
    #[tokio::test]
    async fn memory_to_embedded_to_memory_is_lossless() {
        use crate::store::EmbeddedStore;

        let rules = CountingRules::default();
        let source = populated_source(&rules).await;
        let dir = tempfile::tempdir().unwrap();
        let embedded = EmbeddedStore::open(dir.path()).unwrap();
        let back = MemoryStore::new();
        let there = copy(&source, &embedded, &options(16), now()).await.unwrap();
        let home = copy(&embedded, &back, &options(16), now()).await.unwrap();
        assert_eq!(home, there);

        let source_entries = scan_all(&source).await;
        assert_eq!(scan_all(&embedded).await, source_entries);
        assert_eq!(scan_all(&back).await, source_entries);
        let expected = snapshots(&source, &rules).await;
        assert_eq!(snapshots(&embedded, &rules).await, expected);
        assert_eq!(snapshots(&back, &rules).await, expected);
        assert!(
            expected
                .iter()
                .all(|s| s.value(Window::Total, Metric::Pageviews) == 60)
        );

        // Again, into the same stores: nothing changes. (The snapshots above wrote each
        // store's all-time fold, the same bytes everywhere, since a fold is a function
        // of the settled days.)
        copy(&source, &embedded, &options(16), now()).await.unwrap();
        assert_eq!(scan_all(&embedded).await, scan_all(&source).await);
    }
}
