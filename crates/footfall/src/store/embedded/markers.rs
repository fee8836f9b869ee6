//! Open-visit markers of the embedded store: those changed lately in memory, the rest in
//! the file, in small sorted chunks.
//!
//! A marker is written by every hit (its deadline moves with each page view), and its key
//! is a visitor's random-looking id. Written as a record of its own, each one copied a
//! leaf page of redb's copy-on-write B-tree and the pages above it: most of the store's
//! writing went to a value that lives half an hour. Held in memory instead, the markers
//! grew with the open visits (about 21 bytes each: a portal at saturation opens some
//! 10,000 a second and keeps each for 30 minutes, hundreds of megabytes) and were all
//! loaded at every start.
//!
//! So markers live in two tiers:
//! - **In memory**, per site, the markers changed since the last flush (`hot`: an id and
//!   its deadline, or a removal that hides a stored one), and the rare markers of another
//!   form (`other`, copied from an older store, kept whole in the site's `markers` row).
//! - **In the file**, the `visit_chunks` table: per site, chunks of up to a few hundred
//!   markers sorted by id (24 bytes each), keyed by the lowest id a chunk covers. A
//!   marker not in memory is looked up in the one chunk covering its id.
//!
//! [`Markers::flush_site`] merges a site's changed markers into the chunks they fall in
//! (dropping expired ones, splitting a chunk that grew too large), in a write transaction
//! of its own, and only after it commits are they forgotten in memory. The store flushes
//! at every upkeep (about every 10 seconds) and whenever [`HOT_LIMIT`] changed markers are
//! waiting, so memory holds at most that many whatever the number of open visits; each
//! flush also sweeps a share of the chunks for expired markers (see [`Markers::sweep`]).
//!
//! What a crash can lose is therefore the marker changes since the last flush, never a
//! hit: a reader whose visit spans a `kill -9` may start one more visit than they did.
//! The counters, sketches and sets of every acknowledged batch are as durable as before.
//!
//! Consistency: flushes, applies and purges of memory run under the store's writer lock,
//! one at a time, so a write transaction always sees memory and chunks in step. A reader takes the markers'
//! lock, looks in memory, and only then opens its own read transaction for the chunks;
//! a flush forgets its markers under that lock after its commit, so whatever a reader
//! does not find in memory any more is in every snapshot it can open.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use jiff::Timestamp;
use redb::{Database, ReadableDatabase, ReadableTable, Table, TableDefinition};

use super::convert::{backend, nanos};
use crate::keys::Key;
use crate::store::StoreError;

/// Site → that site's markers of another form, in a compact row of whole entries. Files
/// of layout version 4 kept every marker here (see [`decode_row`]); opening one moves the
/// usual ones into [`VISITS`].
pub(super) const MARKERS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("markers");

/// (site, the lowest id the chunk covers) → the usual markers with ids from that bound up
/// to the next chunk's, sorted by id and distinct: `[id: 16][deadline: i64 LE Unix ms]`
/// each. The lowest chunk of a site may start above the zero id: an id below every
/// chunk's bound has no marker stored.
pub(super) const VISITS: TableDefinition<'_, (&str, [u8; 16]), &[u8]> =
    TableDefinition::new("visit_chunks");

/// The table of chunks, as a write transaction opens it.
pub(super) type Chunks<'t> = Table<'t, (&'static str, [u8; 16]), &'static [u8]>;
/// The table of rows of other markers, as a write transaction opens it.
pub(super) type Rows<'t> = Table<'t, &'static str, &'static [u8]>;

/// The bytes of one marker in a chunk.
const ENTRY: usize = 24;
/// A chunk that a flush grows beyond this many markers is split.
const CHUNK_SPLIT: usize = 340;
/// The markers of each piece a split chunk is cut into: about 4 KB, a page of the file.
pub(super) const CHUNK_TARGET: usize = 170;

/// Changed markers held in memory that make a flush due at once (rather than at the next
/// upkeep): about 7 MB, a few seconds of a saturated portal's page views.
pub(super) const HOT_LIMIT: usize = 200_000;

/// In `hot`: the stored marker of this id is gone (removed, or replaced by one of
/// another form). No deadline is this far back.
const REMOVED: i64 = i64::MIN;

/// About what a changed marker takes in memory: a `BTreeMap` entry of 24 bytes, with the
/// tree's nodes and slack.
const HOT_ENTRY_BYTES: usize = 36;
/// About what a marker of another form takes beside its value.
const OTHER_ENTRY_BYTES: usize = 40;

/// One marker: its value as written (its deadline in Unix milliseconds, as text) and its
/// deadline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Marker {
    pub(super) value: Vec<u8>,
    pub(super) expire_at: Option<Timestamp>,
}

impl Marker {
    fn is_live(&self, now: Timestamp) -> bool {
        self.expire_at.is_none_or(|at| at > now)
    }
}

/// What memory says of a marker.
enum Held {
    /// Memory knows: this marker, or none.
    Known(Option<Marker>),
    /// Whatever the chunk at this bound holds (as the writer knows the chunks).
    Stored([u8; 16]),
}

/// A site's markers in memory.
///
/// An id is in at most one of: a live (not [`REMOVED`]) entry of `hot`, `other`.
#[derive(Debug, Default)]
struct SiteMarkers {
    /// Usual markers changed since the last flush: id → deadline (Unix ms), or [`REMOVED`]
    /// for one whose stored entry is gone.
    hot: BTreeMap<[u8; 16], i64>,
    /// Id → any other marker.
    other: BTreeMap<[u8; 16], Marker>,
    /// `other` changed since the site's row was written.
    other_changed: bool,
    /// Markers in the site's chunks (expired ones included until a flush or a sweep
    /// drops them).
    stored: usize,
    /// The bounds of the site's chunks, sorted: where the writer finds the chunk of an id
    /// with one lookup. Changed with the chunks, after their transaction commits.
    bounds: Vec<[u8; 16]>,
}

impl SiteMarkers {
    fn is_empty(&self) -> bool {
        self.hot.is_empty() && self.other.is_empty() && self.stored == 0 && !self.other_changed
    }

    fn is_dirty(&self) -> bool {
        !self.hot.is_empty() || self.other_changed
    }

    fn held(&self, id: &[u8; 16]) -> Held {
        match self.hot.get(id) {
            Some(&REMOVED) => Held::Known(self.other.get(id).cloned()),
            Some(&deadline_ms) => Held::Known(usual_marker(deadline_ms)),
            None => match self.other.get(id) {
                Some(marker) => Held::Known(Some(marker.clone())),
                None => match self.bound_of(id) {
                    Some(bound) => Held::Stored(bound),
                    None => Held::Known(None),
                },
            },
        }
    }

    /// The bound of the chunk covering `id`, if any.
    fn bound_of(&self, id: &[u8; 16]) -> Option<[u8; 16]> {
        let after = self.bounds.partition_point(|bound| bound <= id);
        after.checked_sub(1).map(|at| self.bounds[at])
    }

    fn set(&mut self, id: [u8; 16], marker: Option<&Marker>) {
        match marker.and_then(usual_deadline) {
            Some(deadline_ms) => {
                if self.other.remove(&id).is_some() {
                    self.other_changed = true;
                }
                self.hot.insert(id, deadline_ms);
            }
            None => {
                // Nothing stored to hide: forget the change instead of holding a removal.
                if self.stored == 0 {
                    self.hot.remove(&id);
                } else {
                    self.hot.insert(id, REMOVED);
                }
                let changed = match marker {
                    Some(marker) => self.other.insert(id, marker.clone()).as_ref() != Some(marker),
                    None => self.other.remove(&id).is_some(),
                };
                self.other_changed |= changed;
            }
        }
    }

    /// Drops the changed markers and the others expired at `now` (a changed one that may
    /// hide a stored marker becomes a removal); returns how many.
    fn purge(&mut self, now_ms: i64, now: Timestamp) -> usize {
        let stored = self.stored;
        let mut removed = 0;
        self.hot.retain(|_, deadline_ms| {
            if *deadline_ms == REMOVED || *deadline_ms > now_ms {
                return true;
            }
            removed += 1;
            *deadline_ms = REMOVED;
            stored > 0
        });
        let others = self.other.len();
        self.other.retain(|_, marker| marker.is_live(now));
        if self.other.len() != others {
            self.other_changed = true;
        }
        removed + others - self.other.len()
    }

    /// Markers held, about: the stored ones, the changed ones and the others (a changed
    /// marker that moves a stored one counts twice until the next flush).
    fn len(&self) -> usize {
        let live_hot = self.hot.values().filter(|ms| **ms != REMOVED).count();
        self.stored + live_hot + self.other.len()
    }

    fn bytes(&self) -> usize {
        let other: usize = self
            .other
            .values()
            .map(|marker| OTHER_ENTRY_BYTES + marker.value.capacity())
            .sum();
        self.hot.len() * HOT_ENTRY_BYTES + other
    }
}

/// The markers of one store: those in memory, and what memory knows of the file's.
#[derive(Debug)]
pub(super) struct Markers {
    state: Mutex<State>,
    /// Changed markers that make a flush due at once ([`HOT_LIMIT`] but in tests).
    limit: usize,
}

impl Default for Markers {
    fn default() -> Self {
        Markers::with_limit(HOT_LIMIT)
    }
}

#[derive(Debug, Default)]
struct State {
    /// `site}` → that site's markers. Keyed with the brace so that sites iterate in the
    /// order of their key strings (`}` sorts after every character a site id has).
    sites: BTreeMap<Box<str>, SiteMarkers>,
    /// Entries of every site's `hot`.
    hot: usize,
    /// The chunk the last sweep ended at, where the next one starts (after it).
    sweep_after: Option<(String, [u8; 16])>,
    /// Room for a site's map key (see [`braced`]).
    scratch: String,
}

impl State {
    /// Sets (or with `None` removes) the marker at `key`; a key of another form is
    /// ignored.
    fn set(&mut self, key: &str, marker: Option<&Marker>) {
        let Some((site, id)) = split_key(key) else {
            return;
        };
        let State {
            sites,
            hot,
            scratch,
            ..
        } = self;
        let braced = braced(scratch, site);
        let markers = match sites.get_mut(braced) {
            Some(markers) => markers,
            None if marker.is_none() => return,
            None => sites.entry(braced.into()).or_default(),
        };
        let before = markers.hot.len();
        markers.set(id, marker);
        *hot = *hot + markers.hot.len() - before;
    }

    /// What memory says of the marker `id` of `site`.
    fn held(&mut self, site: &str, id: &[u8; 16]) -> Held {
        match self.site(site) {
            Some(markers) => markers.held(id),
            None => Held::Known(None),
        }
    }

    fn site(&mut self, site: &str) -> Option<&mut SiteMarkers> {
        let State { sites, scratch, .. } = self;
        sites.get_mut(braced(scratch, site))
    }
}

/// `site}` in `scratch` (a map key, built without allocating on every hit).
fn braced<'a>(scratch: &'a mut String, site: &str) -> &'a str {
    scratch.clear();
    scratch.push_str(site);
    scratch.push('}');
    scratch
}

/// What a flush of one site wrote, to be forgotten in memory once its transaction
/// commits ([`Markers::flushed`]).
#[derive(Debug, Default)]
pub(super) struct Flushed {
    /// `site}`.
    site: Box<str>,
    /// The changed markers it wrote, by id.
    hot: Vec<([u8; 16], i64)>,
    /// Whether it wrote the site's row of other markers.
    row: bool,
    /// Markers the site's chunks hold afterwards.
    stored: usize,
    /// Bounds of chunks it removed, and of chunks it added.
    removed: Vec<[u8; 16]>,
    added: Vec<[u8; 16]>,
    /// Markers it wrote (changed ones, and those in the chunks it rewrote).
    pub(super) written: usize,
    /// Expired markers it dropped.
    pub(super) dropped: usize,
}

/// What a sweep did, to be recorded once its transaction commits ([`Markers::swept`]).
#[derive(Debug, Default)]
pub(super) struct Swept {
    /// `site}` → markers dropped from its chunks, and the bounds of the chunks it
    /// removed.
    dropped: BTreeMap<Box<str>, (usize, Vec<[u8; 16]>)>,
    /// Where the next sweep starts (`None`: from the first chunk).
    after: Option<(String, [u8; 16])>,
}

impl Swept {
    /// Expired markers it dropped.
    pub(super) fn dropped(&self) -> usize {
        self.dropped.values().map(|(dropped, _)| dropped).sum()
    }
}

impl Markers {
    pub(super) fn with_limit(limit: usize) -> Self {
        Markers {
            state: Mutex::default(),
            limit,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change below is a complete insert or removal: a poisoned map is consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The marker at `key`, expired or not, as a write transaction whose chunk table is
    /// `chunks` sees it (the store's writer lock held: no flush runs meanwhile).
    pub(super) fn get_in(
        &self,
        key: &Key,
        chunks: &impl ReadableTable<(&'static str, [u8; 16]), &'static [u8]>,
    ) -> Result<Option<Marker>, StoreError> {
        let Some((site, id)) = split_key(key.as_str()) else {
            return Ok(None);
        };
        let held = self.lock().held(site, &id);
        match held {
            Held::Known(marker) => Ok(marker),
            Held::Stored(bound) => {
                let Some(chunk) = chunks.get((site, bound)).map_err(backend)? else {
                    return Err(out_of_step(site));
                };
                let deadline = find(chunk.value(), &id).map_err(|()| corrupt_chunk(site))?;
                Ok(deadline.and_then(usual_marker))
            }
        }
    }

    /// The marker at `key`, expired or not, as committed (for a reader: the chunks are
    /// read in a snapshot opened after memory was looked at, under the markers' lock).
    pub(super) fn get_committed(
        &self,
        key: &Key,
        database: &Database,
    ) -> Result<Option<Marker>, StoreError> {
        let Some((site, id)) = split_key(key.as_str()) else {
            return Ok(None);
        };
        let mut state = self.lock();
        let held = state.held(site, &id);
        match held {
            Held::Known(marker) => Ok(marker),
            // Found in the snapshot's own chunks: the bounds in memory may be a flush
            // behind it.
            Held::Stored(_) => {
                let transaction = database.begin_read().map_err(backend)?;
                let chunks = transaction.open_table(VISITS).map_err(backend)?;
                Ok(stored_deadline(&chunks, site, &id)?.and_then(usual_marker))
            }
        }
    }

    /// Applies changes made by a committed transaction (`None`: removed).
    pub(super) fn apply(&self, changes: Vec<(Key, Option<Marker>)>) {
        if changes.is_empty() {
            return;
        }
        let mut state = self.lock();
        for (key, marker) in changes {
            state.set(key.as_str(), marker.as_ref());
        }
    }

    /// True when changed markers wait to be flushed.
    pub(super) fn is_dirty(&self) -> bool {
        self.lock().sites.values().any(SiteMarkers::is_dirty)
    }

    /// True when so many changed markers wait that a flush should not wait for the
    /// upkeep ([`HOT_LIMIT`]).
    pub(super) fn over_limit(&self) -> bool {
        self.lock().hot >= self.limit
    }

    /// The sites with changes to flush (`site}`), in order, and how many changed markers
    /// each holds.
    pub(super) fn dirty_sites(&self) -> Vec<(Box<str>, usize)> {
        self.lock()
            .sites
            .iter()
            .filter(|(_, markers)| markers.is_dirty())
            .map(|(site, markers)| (site.clone(), markers.hot.len() + markers.other.len()))
            .collect()
    }

    /// Drops changed and other markers expired at `now`; returns how many. Called with
    /// the store's writer lock held, like a flush: a site it forgets is not one a flush
    /// is writing.
    pub(super) fn purge(&self, now: Timestamp) -> usize {
        let mut state = self.lock();
        let now_ms = now.as_millisecond();
        let mut removed = 0;
        let mut hot = 0;
        state.sites.retain(|_, markers| {
            removed += markers.purge(now_ms, now);
            hot += markers.hot.len();
            !markers.is_empty()
        });
        state.hot = hot;
        removed
    }

    /// Writes the changes of `site` (`site}`) into its chunks and its row of other
    /// markers, dropping the expired markers of the chunks it rewrites. Nothing in memory
    /// changes until [`Markers::flushed`] is given the result after the commit.
    pub(super) fn flush_site(
        &self,
        chunks: &mut Chunks<'_>,
        rows: &mut Rows<'_>,
        site: &str,
        now: Timestamp,
    ) -> Result<Flushed, StoreError> {
        let (hot, row, stored, bounds) = {
            let state = self.lock();
            let Some(markers) = state.sites.get(site) else {
                return Ok(Flushed {
                    site: site.into(),
                    ..Flushed::default()
                });
            };
            let row = markers
                .other_changed
                .then(|| encode_row(site, &markers.other));
            (
                markers
                    .hot
                    .iter()
                    .map(|(id, ms)| (*id, *ms))
                    .collect::<Vec<_>>(),
                row,
                markers.stored,
                markers.bounds.clone(),
            )
        };
        let name = site.trim_end_matches('}');
        let now_ms = now.as_millisecond();
        let mut stored = stored;
        let (mut removed, mut added) = (Vec::new(), Vec::new());
        let mut written = 0;
        let mut dropped = 0;
        let mut rest = hot.as_slice();
        while let Some((first, _)) = rest.first() {
            // The chunk this change falls in (a new one at the zero id when it is below
            // every chunk), and the changes up to the next chunk's bound with it. The
            // bounds are those before this flush: the pieces it writes for a chunk lie
            // within that chunk's range.
            let after = bounds.partition_point(|bound| bound <= first);
            let covering = after.checked_sub(1).map(|at| bounds[at]);
            let next = bounds.get(after);
            let end = rest.partition_point(|(id, _)| next.is_none_or(|next| id < next));
            let (mine, later) = rest.split_at(end);
            rest = later;
            let old = match covering {
                Some(bound) => match chunks.get((name, bound)).map_err(backend)? {
                    Some(chunk) => chunk.value().to_vec(),
                    None => return Err(out_of_step(name)),
                },
                None => Vec::new(),
            };
            let bound = covering.unwrap_or([0; 16]);
            let (merged, expired) = merge_chunk(&old, mine, now_ms)?;
            dropped += expired;
            if merged.is_empty() && covering.is_some() {
                chunks.remove((name, bound)).map_err(backend)?;
                removed.push(bound);
            }
            // The first piece replaces the chunk at its bound.
            for piece in write_pieces(chunks, name, bound, &merged)? {
                if covering != Some(piece) {
                    added.push(piece);
                }
            }
            let new_len = merged.len() / ENTRY;
            written += new_len;
            stored = (stored + new_len).saturating_sub(old.len() / ENTRY);
        }
        if let Some(row) = &row {
            if row.is_empty() {
                rows.remove(name).map_err(backend)?;
            } else {
                rows.insert(name, row.as_slice()).map_err(backend)?;
            }
        }
        Ok(Flushed {
            site: site.into(),
            hot,
            row: row.is_some(),
            stored,
            removed,
            added,
            written,
            dropped,
        })
    }

    /// Forgets the changes `flushed` wrote (their transaction committed): each changed
    /// marker still as it was written, the row's change mark, and records what the
    /// site's chunks now hold.
    pub(super) fn flushed(&self, flushed: Vec<Flushed>) {
        let mut state = self.lock();
        for done in flushed {
            // What the flush wrote is what the file holds for the site, even if memory
            // let go of it meanwhile.
            let markers = state.sites.entry(done.site.clone()).or_default();
            markers.hot.retain(|id, deadline_ms| {
                let written = done.hot.binary_search_by(|(other, _)| other.cmp(id));
                written.map_or(true, |at| done.hot[at].1 != *deadline_ms)
            });
            if done.row {
                markers.other_changed = false;
            }
            markers.stored = done.stored;
            if !done.removed.is_empty() {
                markers.bounds.retain(|bound| !done.removed.contains(bound));
            }
            if !done.added.is_empty() {
                markers.bounds.extend(done.added);
                markers.bounds.sort_unstable();
                markers.bounds.dedup();
            }
            if markers.is_empty() {
                state.sites.remove(&done.site);
            }
        }
        state.hot = state.sites.values().map(|markers| markers.hot.len()).sum();
    }

    /// Rewrites, without their expired markers, those of the next `budget` chunks (after
    /// where the last sweep ended, from the first again once past the last) that hold
    /// any, and removes chunks left empty. Changed markers are flushed into the chunks
    /// they fall in, and those chunks lose their expired markers then; the sweep reaches
    /// the chunks of sites nobody visits any more.
    pub(super) fn sweep(
        &self,
        chunks: &mut Chunks<'_>,
        now: Timestamp,
        budget: usize,
    ) -> Result<Swept, StoreError> {
        let after = self.lock().sweep_after.clone();
        let now_ms = now.as_millisecond();
        let mut visited: Vec<(String, [u8; 16], Vec<u8>)> = Vec::new();
        {
            let start = match &after {
                Some((site, bound)) => Bound::Excluded((site.as_str(), *bound)),
                None => Bound::Unbounded,
            };
            for row in chunks
                .range::<(&str, [u8; 16])>((start, Bound::Unbounded))
                .map_err(backend)?
                .take(budget)
            {
                let (key, value) = row.map_err(backend)?;
                let (site, bound) = key.value();
                let bytes = value.value();
                let expired = entries(bytes)
                    .map_err(|()| corrupt_chunk(site))?
                    .any(|(_, deadline_ms)| deadline_ms <= now_ms);
                // Only the position is needed of a chunk with nothing to drop.
                let kept = if expired { bytes.to_vec() } else { Vec::new() };
                visited.push((site.to_owned(), bound, kept));
            }
        }
        let mut swept = Swept {
            after: visited
                .last()
                .filter(|_| visited.len() >= budget)
                .map(|(site, bound, _)| (site.clone(), *bound)),
            ..Swept::default()
        };
        for (site, bound, bytes) in visited {
            if bytes.is_empty() {
                continue;
            }
            let (kept, expired) = merge_chunk(&bytes, &[], now_ms)?;
            let (dropped, removed) = swept.dropped.entry(format!("{site}}}").into()).or_default();
            *dropped += expired;
            if kept.is_empty() {
                chunks.remove((site.as_str(), bound)).map_err(backend)?;
                removed.push(bound);
            } else {
                chunks
                    .insert((site.as_str(), bound), kept.as_slice())
                    .map_err(backend)?;
            }
        }
        Ok(swept)
    }

    /// Records a committed sweep.
    pub(super) fn swept(&self, swept: Swept) {
        let mut state = self.lock();
        for (site, (dropped, removed)) in swept.dropped {
            if let Some(markers) = state.sites.get_mut(&site) {
                markers.stored = markers.stored.saturating_sub(dropped);
                markers.bounds.retain(|bound| !removed.contains(bound));
                if markers.is_empty() {
                    state.sites.remove(&site);
                }
            }
        }
        state.sweep_after = swept.after;
    }

    /// Live markers with keys after `after`, at most `limit`, in key order, as committed
    /// (the chunks read in a snapshot opened under the markers' lock).
    pub(super) fn page(
        &self,
        database: &Database,
        after: &str,
        limit: usize,
        now: Timestamp,
    ) -> Result<Vec<(Key, Marker)>, StoreError> {
        let state = self.lock();
        let transaction = database.begin_read().map_err(backend)?;
        let chunks = transaction.open_table(VISITS).map_err(backend)?;
        // Every marker of a site that sorts before the cursor's site is before it; start
        // at the cursor's site and compare whole keys only there.
        let start_site: String = match after
            .strip_prefix("ff:{")
            .and_then(|rest| rest.split_once('}'))
        {
            Some((site, _)) => format!("{site}}}"),
            None if after < "ff:{" => String::new(),
            None => "\u{10ffff}".to_owned(),
        };
        // A cursor on a marker starts its site's walk after that id, so paging through a
        // site of a million markers does not pass every earlier one on each page.
        let cursor_id = split_key(after).map(|(_, id)| id);
        let mut page = Vec::new();
        for (site, markers) in state
            .sites
            .range::<str, _>((Bound::Included(start_site.as_str()), Bound::Unbounded))
        {
            let from = cursor_id.filter(|_| **site == *start_site);
            // The marker as a page entry, when it is live and after the cursor.
            let keyed = |id: [u8; 16], marker: Marker| {
                if !marker.is_live(now) {
                    return None;
                }
                let key = key_string(site, &id);
                if key.as_str() <= after {
                    return None;
                }
                Some((Key::parse(&key)?, marker))
            };
            let mut memory = union(
                markers
                    .hot
                    .range((after_bound(from), Bound::Unbounded))
                    .filter(|(_, ms)| **ms != REMOVED)
                    .filter_map(|(id, ms)| Some((*id, usual_marker(*ms)?))),
                markers
                    .other
                    .range((after_bound(from), Bound::Unbounded))
                    .map(|(id, marker)| (*id, marker.clone())),
            )
            .peekable();
            if markers.stored > 0 {
                let name = site.trim_end_matches('}');
                let first = match from {
                    Some(id) => {
                        covering_chunk(&chunks, name, &id, |bound, _| bound)?.unwrap_or([0; 16])
                    }
                    None => [0; 16],
                };
                let range = chunks
                    .range::<(&str, [u8; 16])>((name, first)..=(name, [0xff; 16]))
                    .map_err(backend)?;
                'chunks: for row in range {
                    let (_, value) = row.map_err(backend)?;
                    for (id, deadline_ms) in
                        entries(value.value()).map_err(|()| corrupt_chunk(name))?
                    {
                        if from.is_some_and(|from| id <= from) {
                            continue;
                        }
                        while let Some((next, _)) = memory.peek()
                            && *next <= id
                        {
                            let Some((next, marker)) = memory.next() else {
                                break;
                            };
                            page.extend(keyed(next, marker));
                        }
                        if !markers.hot.contains_key(&id)
                            && !markers.other.contains_key(&id)
                            && let Some(marker) = usual_marker(deadline_ms)
                        {
                            page.extend(keyed(id, marker));
                        }
                        if page.len() >= limit {
                            break 'chunks;
                        }
                    }
                }
            }
            for (id, marker) in memory {
                if page.len() >= limit {
                    break;
                }
                page.extend(keyed(id, marker));
            }
            if page.len() >= limit {
                break;
            }
        }
        page.truncate(limit);
        Ok(page)
    }

    /// Loads what memory needs of the file: how many markers each site's chunks hold, and
    /// the rows of other markers. Rows of a layout 4 file also hold usual markers: those
    /// not expired at `now` are taken as changed markers, for the first flush to move
    /// into chunks.
    pub(super) fn load(
        &self,
        rows: &impl ReadableTable<&'static str, &'static [u8]>,
        chunks: &impl ReadableTable<(&'static str, [u8; 16]), &'static [u8]>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        for row in chunks.iter().map_err(backend)? {
            let (key, value) = row.map_err(backend)?;
            let (site, bound) = key.value();
            if !value.value().len().is_multiple_of(ENTRY) {
                return Err(corrupt_chunk(site));
            }
            let count = value.value().len() / ENTRY;
            // In key order: each site's bounds come sorted.
            let markers = state.sites.entry(format!("{site}}}").into()).or_default();
            markers.stored += count;
            markers.bounds.push(bound);
        }
        for row in rows.iter().map_err(backend)? {
            let (site, bytes) = row.map_err(backend)?;
            let site = site.value();
            let corrupt = || StoreError::Corrupt {
                key: format!("markers of {site}"),
                message: "malformed marker row".to_owned(),
            };
            let site_brace = format!("{site}}}");
            let decoded = decode_row(&site_brace, bytes.value()).ok_or_else(corrupt)?;
            let mut moved = false;
            for (key, marker) in decoded {
                if !marker.is_live(now) {
                    moved = true;
                    continue;
                }
                if usual_deadline(&marker).is_some() {
                    moved = true;
                    state.set(&key, Some(&marker));
                } else if let Some((_, id)) = split_key(&key) {
                    // Held whole, as written: no stored marker has its id (the flush
                    // that wrote the row removed any).
                    state
                        .sites
                        .entry(site_brace.as_str().into())
                        .or_default()
                        .other
                        .insert(id, marker);
                }
            }
            // A row written before chunks, or with expired markers: rewrite it.
            if let Some(markers) = state.site(site) {
                markers.other_changed |= moved;
            }
        }
        Ok(())
    }

    /// How many markers are held, about (a walk over the sites, and over the changed
    /// markers: for the upkeep and tests, not the hot path).
    pub(super) fn len(&self) -> usize {
        self.lock().sites.values().map(SiteMarkers::len).sum()
    }

    /// About the memory the markers take, in bytes.
    pub(super) fn bytes(&self) -> usize {
        self.lock().sites.values().map(SiteMarkers::bytes).sum()
    }

    /// Markers in the file's chunks (a walk over the sites: for the sweep's share).
    pub(super) fn stored(&self) -> usize {
        self.lock()
            .sites
            .values()
            .map(|markers| markers.stored)
            .sum()
    }
}

/// The writer's bounds name a chunk the file does not have.
fn out_of_step(site: &str) -> StoreError {
    StoreError::Corrupt {
        key: format!("visit chunks of {site}"),
        message: "a chunk the store knows of is missing from the file".to_owned(),
    }
}

fn corrupt_chunk(site: &str) -> StoreError {
    StoreError::Corrupt {
        key: format!("visit chunk of {site}"),
        message: "malformed visit chunk".to_owned(),
    }
}

/// The markers of a chunk, in order: id and deadline (Unix ms); `Err` when its length is
/// not a whole number of entries.
fn entries(bytes: &[u8]) -> Result<impl Iterator<Item = ([u8; 16], i64)> + '_, ()> {
    if !bytes.len().is_multiple_of(ENTRY) {
        return Err(());
    }
    Ok(bytes.chunks_exact(ENTRY).map(entry))
}

fn entry(bytes: &[u8]) -> ([u8; 16], i64) {
    let mut id = [0u8; 16];
    id.copy_from_slice(&bytes[..16]);
    let mut deadline = [0u8; 8];
    deadline.copy_from_slice(&bytes[16..ENTRY]);
    (id, i64::from_le_bytes(deadline))
}

/// `f` of the bound and bytes of the chunk of `site` covering `id`, or `None` when `id`
/// is below every chunk's bound.
fn covering_chunk<R>(
    chunks: &impl ReadableTable<(&'static str, [u8; 16]), &'static [u8]>,
    site: &str,
    id: &[u8; 16],
    f: impl FnOnce([u8; 16], &[u8]) -> R,
) -> Result<Option<R>, StoreError> {
    let mut range = chunks
        .range::<(&str, [u8; 16])>((site, [0; 16])..=(site, *id))
        .map_err(backend)?;
    match range.next_back() {
        Some(row) => {
            let (key, value) = row.map_err(backend)?;
            Ok(Some(f(key.value().1, value.value())))
        }
        None => Ok(None),
    }
}

/// The deadline of the marker of `id` in the chunks of `site`, if one is stored.
fn stored_deadline(
    chunks: &impl ReadableTable<(&'static str, [u8; 16]), &'static [u8]>,
    site: &str,
    id: &[u8; 16],
) -> Result<Option<i64>, StoreError> {
    covering_chunk(chunks, site, id, |_, bytes| find(bytes, id))?
        .transpose()
        .map(Option::flatten)
        .map_err(|()| corrupt_chunk(site))
}

/// The deadline of `id` in a chunk's bytes (a binary search over its entries).
fn find(bytes: &[u8], id: &[u8; 16]) -> Result<Option<i64>, ()> {
    if !bytes.len().is_multiple_of(ENTRY) {
        return Err(());
    }
    let (mut low, mut high) = (0, bytes.len() / ENTRY);
    while low < high {
        let middle = low + (high - low) / 2;
        let at = &bytes[middle * ENTRY..(middle + 1) * ENTRY];
        match at[..16].cmp(id.as_slice()) {
            std::cmp::Ordering::Less => low = middle + 1,
            std::cmp::Ordering::Greater => high = middle,
            std::cmp::Ordering::Equal => return Ok(Some(entry(at).1)),
        }
    }
    Ok(None)
}

/// A chunk's markers with `updates` (sorted by id, distinct; [`REMOVED`] removes) applied
/// and those expired at `now_ms` left out, as chunk bytes; and how many expired markers
/// of the chunk it left out.
fn merge_chunk(
    old: &[u8],
    updates: &[([u8; 16], i64)],
    now_ms: i64,
) -> Result<(Vec<u8>, usize), StoreError> {
    let old_entries = entries(old).map_err(|()| StoreError::Corrupt {
        key: "visit chunk".to_owned(),
        message: "malformed visit chunk".to_owned(),
    })?;
    let mut out = Vec::with_capacity(old.len() + updates.len() * ENTRY);
    let mut expired = 0;
    let mut updates = updates.iter().peekable();
    let mut push = |id: &[u8; 16], deadline_ms: i64| {
        if deadline_ms != REMOVED && deadline_ms > now_ms {
            out.extend_from_slice(id);
            out.extend_from_slice(&deadline_ms.to_le_bytes());
        }
    };
    for (id, deadline_ms) in old_entries {
        while let Some((next, _)) = updates.peek()
            && *next < id
        {
            let Some((next, ms)) = updates.next() else {
                break;
            };
            push(next, *ms);
        }
        match updates.peek() {
            Some((next, ms)) if *next == id => {
                push(next, *ms);
                updates.next();
            }
            _ => {
                if deadline_ms <= now_ms {
                    expired += 1;
                }
                push(&id, deadline_ms);
            }
        }
    }
    for (id, ms) in updates {
        push(id, *ms);
    }
    Ok((out, expired))
}

/// Writes a site's merged markers from `bound` on: one chunk at `bound`, or when they are
/// more than [`CHUNK_SPLIT`], pieces of [`CHUNK_TARGET`], the first at `bound` and each
/// other at its first id. Nothing when there are none. Returns the bounds it wrote at.
fn write_pieces(
    chunks: &mut Chunks<'_>,
    site: &str,
    bound: [u8; 16],
    merged: &[u8],
) -> Result<Vec<[u8; 16]>, StoreError> {
    if merged.is_empty() {
        return Ok(Vec::new());
    }
    let piece = if merged.len() / ENTRY > CHUNK_SPLIT {
        CHUNK_TARGET * ENTRY
    } else {
        merged.len()
    };
    let mut written = Vec::new();
    for (n, bytes) in merged.chunks(piece).enumerate() {
        let key = if n == 0 { bound } else { entry(bytes).0 };
        chunks.insert((site, key), bytes).map_err(backend)?;
        written.push(key);
    }
    Ok(written)
}

fn after_bound(after: Option<[u8; 16]>) -> Bound<[u8; 16]> {
    after.map_or(Bound::Unbounded, Bound::Excluded)
}

/// Two id-ordered sequences with no id in common, as one.
fn union<T>(
    a: impl Iterator<Item = ([u8; 16], T)>,
    b: impl Iterator<Item = ([u8; 16], T)>,
) -> impl Iterator<Item = ([u8; 16], T)> {
    let mut a = a.peekable();
    let mut b = b.peekable();
    std::iter::from_fn(move || {
        let take_a = match (a.peek(), b.peek()) {
            (Some((x, _)), Some((y, _))) => x < y,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if take_a { a.next() } else { b.next() }
    })
}

/// The deadline of a usual marker (one whose value is its deadline's text, as every
/// marker this version writes), or `None` for any other.
fn usual_deadline(marker: &Marker) -> Option<i64> {
    use std::io::Write as _;
    let deadline_ms = marker.expire_at?.as_millisecond();
    // Compared as text on the stack: every hit passes here, under the markers' lock.
    let mut text = [0u8; 20];
    let mut cursor = std::io::Cursor::new(&mut text[..]);
    write!(cursor, "{deadline_ms}").ok()?;
    let len = usize::try_from(cursor.position()).ok()?;
    (marker.value == text[..len]).then_some(deadline_ms)
}

fn usual_marker(deadline_ms: i64) -> Option<Marker> {
    Some(Marker {
        value: deadline_ms.to_string().into_bytes(),
        expire_at: Some(Timestamp::from_millisecond(deadline_ms).ok()?),
    })
}

/// The parts of a marker key this module holds, or `None` for a key of another form
/// (kept as a record of the file instead).
pub(super) fn split_key(key: &str) -> Option<(&str, [u8; 16])> {
    let rest = key.strip_prefix("ff:{")?;
    let (site, hex) = rest.split_once("}:sess:")?;
    let bytes = hex.as_bytes();
    if bytes.len() != 32 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut id = [0u8; 16];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let digit = |b: u8| {
            if b.is_ascii_digit() {
                b - b'0'
            } else {
                b - b'a' + 10
            }
        };
        id[i] = (digit(pair[0]) << 4) | digit(pair[1]);
    }
    Some((site, id))
}

fn key_string(site_brace: &str, id: &[u8; 16]) -> String {
    let mut key = String::with_capacity(4 + site_brace.len() + 6 + 32);
    key.push_str("ff:{");
    key.push_str(site_brace);
    key.push_str(":sess:");
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for byte in id {
        key.push(char::from(HEX[usize::from(byte >> 4)]));
        key.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    key
}

/// The first bytes of a row in the compact format (an older row starts with a key's
/// length, which is never 65,535: keys are well under 200 bytes).
const COMPACT_ROW: [u8; 2] = [0xff, 0xff];
/// In a compact row: a marker whose value is its deadline, as id and deadline (ms).
const COMPACT_STANDARD: u8 = 0;
/// In a compact row: any other marker, in the older entry format.
const COMPACT_OTHER: u8 = 1;

/// The row of one site's markers of another form (`site_brace` is `site}`), in the
/// compact format; empty when it has none.
fn encode_row(site_brace: &str, other: &BTreeMap<[u8; 16], Marker>) -> Vec<u8> {
    if other.is_empty() {
        return Vec::new();
    }
    let mut row = Vec::from(COMPACT_ROW);
    for (id, marker) in other {
        row.push(COMPACT_OTHER);
        encode(&mut row, &key_string(site_brace, id), marker);
    }
    row
}

/// The markers of one row: the compact format (usual markers as 25 bytes each, which
/// only files of layout version 4 hold, and whole entries) or the older one (a key
/// string, an expiry and a value per marker), which files of an earlier version hold.
fn decode_row(site_brace: &str, bytes: &[u8]) -> Option<Vec<(String, Marker)>> {
    let Some(mut rest) = bytes.strip_prefix(&COMPACT_ROW) else {
        return decode(bytes);
    };
    let mut out = Vec::new();
    while let Some((&tag, after)) = rest.split_first() {
        match tag {
            COMPACT_STANDARD => {
                let (id, after) = after.split_at_checked(16)?;
                let (deadline, after) = after.split_at_checked(8)?;
                let id: [u8; 16] = id.try_into().ok()?;
                let deadline_ms = i64::from_le_bytes(deadline.try_into().ok()?);
                let expire_at = Timestamp::from_millisecond(deadline_ms).ok()?;
                out.push((
                    key_string(site_brace, &id),
                    Marker {
                        value: deadline_ms.to_string().into_bytes(),
                        expire_at: Some(expire_at),
                    },
                ));
                rest = after;
            }
            COMPACT_OTHER => {
                let (entry, after) = decode_one(after)?;
                out.push(entry);
                rest = after;
            }
            _ => return None,
        }
    }
    Some(out)
}

/// One entry of the older format at the front of `bytes`, and what follows it.
fn decode_one(bytes: &[u8]) -> Option<((String, Marker), &[u8])> {
    let (len, rest) = bytes.split_at_checked(2)?;
    let key_len = usize::from(u16::from_le_bytes([len[0], len[1]]));
    let (key, rest) = rest.split_at_checked(key_len)?;
    let key = String::from_utf8(key.to_vec()).ok()?;
    let (&flag, mut rest) = rest.split_first()?;
    let expire_at = match flag {
        0 => None,
        1 => {
            let (raw, after) = rest.split_at_checked(16)?;
            rest = after;
            let raw: [u8; 16] = raw.try_into().ok()?;
            Some(Timestamp::from_nanosecond(i128::from_le_bytes(raw)).ok()?)
        }
        _ => return None,
    };
    let (len, rest) = rest.split_at_checked(2)?;
    let value_len = usize::from(u16::from_le_bytes([len[0], len[1]]));
    let (value, rest) = rest.split_at_checked(value_len)?;
    Some((
        (
            key,
            Marker {
                value: value.to_vec(),
                expire_at,
            },
        ),
        rest,
    ))
}

fn encode(out: &mut Vec<u8>, key: &str, marker: &Marker) {
    let key_len = u16::try_from(key.len()).unwrap_or(u16::MAX);
    let value_len = u16::try_from(marker.value.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&key_len.to_le_bytes());
    out.extend_from_slice(&key.as_bytes()[..usize::from(key_len)]);
    match marker.expire_at {
        None => out.push(0),
        Some(at) => {
            out.push(1);
            out.extend_from_slice(&nanos(at).to_le_bytes());
        }
    }
    out.extend_from_slice(&value_len.to_le_bytes());
    out.extend_from_slice(&marker.value[..usize::from(value_len)]);
}

fn decode(mut bytes: &[u8]) -> Option<Vec<(String, Marker)>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (entry, rest) = decode_one(bytes)?;
        out.push(entry);
        bytes = rest;
    }
    Some(out)
}

/// A row as files of layout version 4 wrote it: every usual marker of the site as its id
/// and deadline (Unix ms).
#[cfg(test)]
pub(super) fn version_4_row(markers: &[([u8; 16], i64)]) -> Vec<u8> {
    let mut row = Vec::from(COMPACT_ROW);
    for (id, deadline_ms) in markers {
        row.push(COMPACT_STANDARD);
        row.extend_from_slice(id);
        row.extend_from_slice(&deadline_ms.to_le_bytes());
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng as _, SeedableRng as _};

    /// A file with the two tables, in a directory removed with it.
    struct File {
        _dir: tempfile::TempDir,
        database: Database,
    }

    fn file() -> File {
        let dir = tempfile::tempdir().unwrap();
        let database = Database::create(dir.path().join("markers.redb")).unwrap();
        let transaction = database.begin_write().unwrap();
        transaction.open_table(VISITS).unwrap();
        transaction.open_table(MARKERS).unwrap();
        transaction.commit().unwrap();
        File {
            _dir: dir,
            database,
        }
    }

    /// Flushes every changed site in one transaction, then sweeps `sweep` chunks in
    /// another; returns the expired markers dropped.
    fn flush(markers: &Markers, database: &Database, now: Timestamp, sweep: usize) -> usize {
        let transaction = database.begin_write().unwrap();
        let mut flushed = Vec::new();
        {
            let mut chunks = transaction.open_table(VISITS).unwrap();
            let mut rows = transaction.open_table(MARKERS).unwrap();
            for (site, _) in markers.dirty_sites() {
                flushed.push(
                    markers
                        .flush_site(&mut chunks, &mut rows, &site, now)
                        .unwrap(),
                );
            }
        }
        transaction.commit().unwrap();
        let mut dropped: usize = flushed.iter().map(|done| done.dropped).sum();
        markers.flushed(flushed);
        let transaction = database.begin_write().unwrap();
        let swept = {
            let mut chunks = transaction.open_table(VISITS).unwrap();
            markers.sweep(&mut chunks, now, sweep).unwrap()
        };
        transaction.commit().unwrap();
        dropped += swept.dropped();
        markers.swept(swept);
        dropped
    }

    fn get(markers: &Markers, database: &Database, key: &str) -> Option<Marker> {
        let key = Key::parse(key).unwrap();
        let committed = markers.get_committed(&key, database).unwrap();
        let transaction = database.begin_read().unwrap();
        let chunks = transaction.open_table(VISITS).unwrap();
        assert_eq!(markers.get_in(&key, &chunks).unwrap(), committed, "{key}");
        committed
    }

    fn chunk_rows(database: &Database) -> Vec<((String, [u8; 16]), usize)> {
        let transaction = database.begin_read().unwrap();
        let chunks = transaction.open_table(VISITS).unwrap();
        chunks
            .iter()
            .unwrap()
            .map(|row| {
                let (key, value) = row.unwrap();
                let (site, bound) = key.value();
                ((site.to_owned(), bound), value.value().len() / ENTRY)
            })
            .collect()
    }

    /// Memory and chunks together agree with a plain map through changes, removals,
    /// markers of another form, flushes at any point (chunks splitting as they grow and
    /// going as they empty), purges, sweeps, a reload from the file and page walks from
    /// any cursor.
    #[test]
    fn markers_match_a_plain_map_across_flushes() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(16);
        let file = file();
        let mut markers = Markers::default();
        let mut model: BTreeMap<String, Marker> = BTreeMap::new();
        let mut now_ms: i64 = 1_796_000_000_000;
        let sites = ["a}", "ab}", "b}"];
        for step in 0..30_000u32 {
            let site = sites[rng.random_range(0..sites.len())];
            // Ids from a small range, so that visitors come back.
            let n: u32 = rng.random_range(0..2_000);
            let mut id = [0u8; 16];
            id[..4].copy_from_slice(&n.wrapping_mul(2_654_435_761).to_be_bytes());
            let key = key_string(site, &id);
            let marker = match rng.random_range(0..100) {
                0..=79 => usual_marker(now_ms + rng.random_range(1..600_000)),
                80..=84 => Some(Marker {
                    value: format!("copied {step}").into_bytes(),
                    expire_at: Some(Timestamp::from_millisecond(now_ms + 300_000).unwrap()),
                }),
                _ => None,
            };
            markers.apply(vec![(Key::parse(&key).unwrap(), marker.clone())]);
            match marker {
                Some(marker) => model.insert(key.clone(), marker),
                None => model.remove(&key),
            };
            now_ms += 20;
            let now = Timestamp::from_millisecond(now_ms).unwrap();
            match step % 2_500 {
                700 => {
                    flush(&markers, &file.database, now, 7);
                }
                1_300 => {
                    markers.purge(now);
                    model.retain(|_, marker| marker.is_live(now));
                }
                2_000 => {
                    flush(&markers, &file.database, now, 1_000);
                    // Everything in the file now: a reload knows what the chunks hold
                    // and the others.
                    markers = Markers::default();
                    let transaction = file.database.begin_read().unwrap();
                    let rows = transaction.open_table(MARKERS).unwrap();
                    let chunks = transaction.open_table(VISITS).unwrap();
                    markers.load(&rows, &chunks, now).unwrap();
                    assert_eq!(markers.lock().hot, 0, "usual markers are in chunks only");
                }
                _ => {}
            }
            if step % 1_000 == 999 {
                for (key, expected) in &model {
                    let got = get(&markers, &file.database, key);
                    if expected.is_live(now) {
                        assert_eq!(got.as_ref(), Some(expected), "{key} at {step}");
                    } else if let Some(got) = got {
                        assert!(!got.is_live(now), "{key} at {step}");
                    }
                }
                // The writer's bounds are the file's, site by site.
                let mut in_file: BTreeMap<String, Vec<[u8; 16]>> = BTreeMap::new();
                for ((site, bound), _) in chunk_rows(&file.database) {
                    in_file.entry(format!("{site}}}")).or_default().push(bound);
                }
                let in_memory: BTreeMap<String, Vec<[u8; 16]>> = markers
                    .lock()
                    .sites
                    .iter()
                    .filter(|(_, site)| !site.bounds.is_empty())
                    .map(|(site, markers)| (site.to_string(), markers.bounds.clone()))
                    .collect();
                assert_eq!(in_memory, in_file, "at {step}");
                let walked = walk(&markers, &file.database, 37, now);
                let expected: Vec<String> = model
                    .iter()
                    .filter(|(_, marker)| marker.is_live(now))
                    .map(|(key, _)| key.clone())
                    .collect();
                assert_eq!(walked, expected, "at {step}");
            }
        }
        assert!(
            chunk_rows(&file.database).len() > sites.len(),
            "chunks were split"
        );
        // Chunks are sorted and within their bounds: each id at or above its chunk's
        // bound and below the next one's.
        let transaction = file.database.begin_read().unwrap();
        let chunks = transaction.open_table(VISITS).unwrap();
        type Row = ((String, [u8; 16]), Vec<u8>);
        let rows: Vec<Row> = chunks
            .iter()
            .unwrap()
            .map(|row| {
                let (key, value) = row.unwrap();
                let (site, bound) = key.value();
                ((site.to_owned(), bound), value.value().to_vec())
            })
            .collect();
        for (n, ((site, bound), bytes)) in rows.iter().enumerate() {
            let ids: Vec<[u8; 16]> = entries(bytes).unwrap().map(|(id, _)| id).collect();
            assert!(!ids.is_empty() && ids.len() <= CHUNK_SPLIT);
            assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
            assert!(ids[0] >= *bound);
            if let Some(((next_site, next_bound), _)) = rows.get(n + 1)
                && next_site == site
            {
                assert!(ids[ids.len() - 1] < *next_bound);
            }
        }
    }

    /// Every live marker after the cursor, following pages of `limit`.
    fn walk(markers: &Markers, database: &Database, limit: usize, now: Timestamp) -> Vec<String> {
        let mut walked = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = markers.page(database, &cursor, limit, now).unwrap();
            let Some((last, _)) = page.last() else { break };
            cursor = last.to_string();
            let full = page.len() == limit;
            walked.extend(page.into_iter().map(|(key, _)| key.to_string()));
            if !full {
                break;
            }
        }
        walked
    }

    /// Memory holds the changes since the last flush, not the open visits: a million
    /// markers flushed whenever the limit is reached leave at most that many in memory,
    /// and every one is found in the file.
    #[test]
    fn memory_holds_what_changed_since_the_last_flush() {
        let file = file();
        let markers = Markers::default();
        let now = Timestamp::from_millisecond(1_796_000_000_000).unwrap();
        let deadline = now.as_millisecond() + 1_800_000;
        let id = |n: u32| {
            let mut id = [0u8; 16];
            id[..4].copy_from_slice(&n.wrapping_mul(2_654_435_761).to_be_bytes());
            id[12..].copy_from_slice(&n.to_le_bytes());
            id
        };
        let mut most_bytes = 0;
        for start in (0..1_000_000u32).step_by(10_000) {
            let changes = (start..start + 10_000)
                .map(|n| {
                    let key = Key::parse(&key_string("caukee}", &id(n))).unwrap();
                    (key, usual_marker(deadline))
                })
                .collect();
            markers.apply(changes);
            most_bytes = most_bytes.max(markers.bytes());
            if markers.over_limit() {
                flush(&markers, &file.database, now, 0);
            }
        }
        assert!(
            most_bytes <= (HOT_LIMIT + 10_000) * HOT_ENTRY_BYTES,
            "{most_bytes} bytes"
        );
        flush(&markers, &file.database, now, 0);
        assert_eq!((markers.bytes(), markers.len()), (0, 1_000_000));
        for n in (0..1_000_000).step_by(9_973) {
            let key = key_string("caukee}", &id(n));
            assert_eq!(get(&markers, &file.database, &key), usual_marker(deadline));
        }
        // Chunks of about a page each.
        let rows = chunk_rows(&file.database);
        let per_chunk = 1_000_000 / rows.len();
        assert!(
            (CHUNK_TARGET..=CHUNK_SPLIT).contains(&per_chunk),
            "{per_chunk}"
        );
    }

    /// Expired markers leave the file: those in chunks a flush rewrites at once, the rest
    /// when the sweep, a share of the chunks at a time, comes by.
    #[test]
    fn expired_markers_are_dropped_by_flushes_and_sweeps() {
        let file = file();
        let markers = Markers::default();
        let start = 1_796_000_000_000;
        let at = |ms: i64| Timestamp::from_millisecond(start + ms).unwrap();
        let set = |site: &str, n: u8, deadline: i64| {
            let key = Key::parse(&key_string(site, &[n; 16])).unwrap();
            markers.apply(vec![(key, usual_marker(start + deadline))]);
        };
        for n in 0..100 {
            set("a}", n, 1_000);
            set("b}", n, 5_000);
        }
        assert_eq!(flush(&markers, &file.database, at(0), 0), 0);
        assert_eq!(markers.len(), 200);
        // One of a's markers moves: its chunk is rewritten without the 99 expired.
        set("a}", 7, 9_000);
        assert_eq!(flush(&markers, &file.database, at(2_000), 0), 99);
        assert_eq!(markers.len(), 101);
        // Nobody comes back to b: a sweep of one chunk at a time reaches it.
        let mut dropped = 0;
        for _ in 0..3 {
            dropped += flush(&markers, &file.database, at(6_000), 1);
        }
        assert_eq!(dropped, 100);
        assert_eq!(markers.len(), 1);
        assert_eq!(chunk_rows(&file.database).len(), 1);
        assert_eq!(
            get(&markers, &file.database, &key_string("b}", &[3; 16])),
            None
        );
        assert_eq!(
            get(&markers, &file.database, &key_string("a}", &[7; 16])),
            usual_marker(start + 9_000)
        );
    }

    /// Merging a chunk's bytes with changes: new ids in order, moved deadlines, removals,
    /// expired ones left out (and counted when they were the chunk's own).
    #[test]
    fn chunks_merge_changes_in_order() {
        let chunk = |pairs: &[(u8, i64)]| {
            let mut bytes = Vec::new();
            for (n, ms) in pairs {
                bytes.extend_from_slice(&[*n; 16]);
                bytes.extend_from_slice(&ms.to_le_bytes());
            }
            bytes
        };
        let old = chunk(&[(2, 50), (4, 500), (6, 600), (8, 800)]);
        let updates = [
            ([1; 16], 100),
            ([4; 16], 900),
            ([6; 16], REMOVED),
            ([9; 16], 40),
        ];
        let (merged, expired) = merge_chunk(&old, &updates, 60).unwrap();
        assert_eq!(merged, chunk(&[(1, 100), (4, 900), (8, 800)]));
        assert_eq!(expired, 1, "2 expired; 9 was a change, already past");
        assert_eq!(find(&merged, &[4; 16]), Ok(Some(900)));
        assert_eq!(find(&merged, &[5; 16]), Ok(None));
        assert_eq!(find(&merged[..30], &[4; 16]), Err(()));
        assert!(merge_chunk(&old[..30], &[], 0).is_err());
    }

    /// A file of layout version 4 kept every marker of a site in its row: loading it
    /// takes the usual ones as changes, and the first flush moves them into chunks and
    /// leaves the row with the others only.
    #[test]
    fn rows_of_a_version_4_file_move_into_chunks() {
        let file = file();
        let now = Timestamp::from_millisecond(1_796_000_000_000).unwrap();
        let usual = usual_marker(now.as_millisecond() + 60_000).unwrap();
        let other = Marker {
            value: b"copied from an older store".to_vec(),
            expire_at: None,
        };
        let expired = usual_marker(now.as_millisecond() - 1).unwrap();
        let mut row = version_4_row(&[
            ([1; 16], usual_deadline(&usual).unwrap()),
            ([3; 16], usual_deadline(&expired).unwrap()),
        ]);
        row.push(COMPACT_OTHER);
        encode(&mut row, &key_string("caukee}", &[2; 16]), &other);
        let transaction = file.database.begin_write().unwrap();
        transaction
            .open_table(MARKERS)
            .unwrap()
            .insert("caukee", row.as_slice())
            .unwrap();
        transaction.commit().unwrap();

        let markers = Markers::default();
        {
            let transaction = file.database.begin_read().unwrap();
            let rows = transaction.open_table(MARKERS).unwrap();
            let chunks = transaction.open_table(VISITS).unwrap();
            markers.load(&rows, &chunks, now).unwrap();
        }
        assert!(markers.is_dirty());
        flush(&markers, &file.database, now, 10);
        assert_eq!(
            chunk_rows(&file.database),
            vec![(("caukee".to_owned(), [0; 16]), 1)]
        );
        let transaction = file.database.begin_read().unwrap();
        let rows = transaction.open_table(MARKERS).unwrap();
        let rewritten = rows.get("caukee").unwrap().unwrap().value().to_vec();
        assert_eq!(
            decode_row("caukee}", &rewritten),
            Some(vec![(key_string("caukee}", &[2; 16]), other.clone())])
        );
        assert_eq!(
            get(&markers, &file.database, &key_string("caukee}", &[1; 16])),
            Some(usual)
        );
        assert_eq!(
            get(&markers, &file.database, &key_string("caukee}", &[2; 16])),
            Some(other)
        );
        assert_eq!(
            get(&markers, &file.database, &key_string("caukee}", &[3; 16])),
            None
        );
    }

    /// A chunk whose length is not a whole number of markers is refused at load and at a
    /// lookup, never misread.
    #[test]
    fn a_damaged_chunk_is_refused() {
        let file = file();
        let transaction = file.database.begin_write().unwrap();
        transaction
            .open_table(VISITS)
            .unwrap()
            .insert(("caukee", [0; 16]), [1u8; 30].as_slice())
            .unwrap();
        transaction.commit().unwrap();
        let transaction = file.database.begin_read().unwrap();
        let rows = transaction.open_table(MARKERS).unwrap();
        let chunks = transaction.open_table(VISITS).unwrap();
        let markers = Markers::default();
        assert!(matches!(
            markers.load(&rows, &chunks, Timestamp::UNIX_EPOCH),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(matches!(
            stored_deadline(&chunks, "caukee", &[1; 16]),
            Err(StoreError::Corrupt { .. })
        ));
    }

    /// Markers of another form are held whole and kept in the site's row; a usual marker
    /// replacing one (and back) is held once.
    #[test]
    fn other_markers_keep_their_value_and_deadline() {
        let file = file();
        let at: Timestamp = "2026-11-30T03:30:00Z".parse().unwrap();
        let markers = Markers::default();
        let kinds = [
            usual_marker(at.as_millisecond()).unwrap(),
            Marker {
                value: Vec::new(),
                expire_at: Some(at),
            },
            Marker {
                value: b"x".to_vec(),
                expire_at: None,
            },
        ];
        let key = |n: u8| key_string("caukee}", &[n; 16]);
        for (n, marker) in kinds.iter().enumerate() {
            markers.apply(vec![(
                Key::parse(&key(n as u8)).unwrap(),
                Some(marker.clone()),
            )]);
        }
        let before = at - jiff::SignedDuration::from_secs(60);
        flush(&markers, &file.database, before, 10);
        for (n, marker) in kinds.iter().enumerate() {
            assert_eq!(
                get(&markers, &file.database, &key(n as u8)).as_ref(),
                Some(marker)
            );
        }
        // The stored usual marker replaced by another form, and the other way round.
        markers.apply(vec![
            (Key::parse(&key(0)).unwrap(), Some(kinds[2].clone())),
            (Key::parse(&key(2)).unwrap(), Some(kinds[0].clone())),
        ]);
        assert_eq!(
            get(&markers, &file.database, &key(0)).as_ref(),
            Some(&kinds[2])
        );
        flush(&markers, &file.database, before, 10);
        assert_eq!(
            get(&markers, &file.database, &key(0)).as_ref(),
            Some(&kinds[2])
        );
        assert_eq!(
            get(&markers, &file.database, &key(2)).as_ref(),
            Some(&kinds[0])
        );
        assert_eq!(markers.len(), 3);
        // Expired ones go; the one without a deadline stays.
        assert_eq!(markers.purge(at), 1);
        assert_eq!(flush(&markers, &file.database, at, 10), 1);
        assert_eq!(walk(&markers, &file.database, 10, at), vec![key(0)]);
    }

    /// Only a value that is exactly its deadline's decimal text is held as a deadline.
    #[test]
    fn the_usual_form_is_the_deadline_text_exactly() {
        let marker = |value: &str, ms: i64| Marker {
            value: value.as_bytes().to_vec(),
            expire_at: Some(Timestamp::from_millisecond(ms).unwrap()),
        };
        let ms = 1_796_000_000_123;
        assert_eq!(usual_deadline(&marker("1796000000123", ms)), Some(ms));
        assert_eq!(usual_deadline(&marker("-1", -1)), Some(-1));
        for other in ["01796000000123", "+1796000000123", "1796000000124", "", "x"] {
            assert_eq!(usual_deadline(&marker(other, ms)), None, "{other:?}");
        }
        let without_deadline = Marker {
            value: b"1796000000123".to_vec(),
            expire_at: None,
        };
        assert_eq!(usual_deadline(&without_deadline), None);
    }

    #[test]
    fn keys_are_written_in_lowercase_hex() {
        let mut id = [0u8; 16];
        id[0] = 0xab;
        id[15] = 0x0f;
        assert_eq!(
            key_string("caukee}", &id),
            "ff:{caukee}:sess:ab00000000000000000000000000000f"
        );
    }

    #[test]
    fn rows_round_trip_and_damage_is_refused() {
        let markers = vec![
            (
                "ff:{caukee}:sess:00ff".to_owned(),
                Marker {
                    value: b"1796009400000".to_vec(),
                    expire_at: Some("2026-11-30T03:30:00Z".parse().unwrap()),
                },
            ),
            (
                "ff:{caukee}:sess:01ff".to_owned(),
                Marker {
                    value: Vec::new(),
                    expire_at: None,
                },
            ),
        ];
        let mut row = Vec::new();
        for (key, marker) in &markers {
            encode(&mut row, key, marker);
        }
        assert_eq!(decode(&row), Some(markers));
        for cut in 1..row.len() {
            // A row cut anywhere but between markers is refused, never misread.
            if let Some(decoded) = decode(&row[..cut]) {
                assert!(decoded.len() < 2, "cut at {cut}");
            }
        }
        assert_eq!(decode(&[1, 0, b'k', 7]), None);
    }

    #[test]
    fn marker_keys_split_and_order_as_strings() {
        let id = [0xa5; 16];
        let key = key_string("caukee}", &id);
        assert_eq!(key, format!("ff:{{caukee}}:sess:{}", "a5".repeat(16)));
        assert_eq!(split_key(&key), Some(("caukee", id)));
        for other in [
            "ff:{caukee}:sess:A5",
            "ff:{caukee}:sess:zz",
            "ff:{caukee}:pv:t",
            "x",
        ] {
            assert_eq!(split_key(other), None, "{other}");
        }
        // (`site}`, id) orders as the key strings do, a site a prefix of another too.
        let pairs = [("a}", [9u8; 16]), ("ab}", [0u8; 16]), ("a}", [0u8; 16])];
        let mut by_pair: Vec<_> = pairs.to_vec();
        by_pair.sort();
        let mut by_string: Vec<_> = pairs.to_vec();
        by_string.sort_by_key(|(site, id)| key_string(site, id));
        assert_eq!(by_pair, by_string);
    }
}
