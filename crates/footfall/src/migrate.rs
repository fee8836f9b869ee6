//! Copying every entry of one store into another (`footfall migrate --from … --to …`).
//!
//! The copy pages through [`Store::scan`] of the source and [`Store::restore`]s each page
//! into the target, so it needs nothing beyond the storage trait and works between any
//! two backends, e.g. memory → embedded, embedded → Redis and back:
//!
//! - **Faithful**: counters move as values, sketches as their Redis bytes (bit for bit),
//!   bytes as given, each with its deadline.
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
        self.counters + self.sketches + self.bytes
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
                EntryValue::Bytes(_) => report.bytes += 1,
            }
            let site = entry.key.site();
            if !report.sites.contains(&site) {
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
