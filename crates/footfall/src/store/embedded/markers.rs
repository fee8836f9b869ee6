//! Open-visit markers of the embedded store: held in memory, written to the file in
//! checkpoints.
//!
//! A marker is written by every hit (its deadline moves with each page view), and its key
//! is a visitor's random-looking id. In redb's copy-on-write B-tree each such write
//! copies a leaf page and the pages above it, so a batch of 20,000 hits dirtied some
//! 10,000 pages (40 MB) and the markers' expiry-index rows as many again: most of the
//! store's writing, memory and CPU went to a value that lives half an hour. Here they
//! live in an ordered map instead, and [`Markers::checkpoint`] writes each site's
//! markers as one row of the `markers` table when they changed (every upkeep, about every
//! 10 seconds, and when the store closes).
//!
//! What a crash can lose is therefore the marker updates since the last checkpoint, never
//! a hit: a reader whose visit spans a `kill -9` may start one more visit than they did.
//! The counters, sketches and sets of every acknowledged batch are as durable as before.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use jiff::Timestamp;
use redb::{ReadableTable, Table, TableDefinition};

use super::convert::{backend, nanos};
use crate::keys::Key;
use crate::store::StoreError;

/// Site hash tag → that site's markers: repeated `[key length: u16 LE][key][flag: u8]
/// [deadline: i128 LE nanoseconds, when the flag is 1][value length: u16 LE][value]`.
pub(super) const MARKERS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("markers");

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

/// A usual marker as a site's sorted array holds it: the id and the deadline in
/// milliseconds after the array's base, 20 bytes with no padding.
#[derive(Clone, Copy, Debug)]
struct Packed {
    id: [u8; 16],
    /// `u32` little-endian; [`GONE`] once the marker was removed or moved since the last
    /// merge.
    offset: [u8; 4],
}

impl Packed {
    fn offset(&self) -> u32 {
        u32::from_le_bytes(self.offset)
    }
}

/// The offset of a slot of the sorted array whose marker is no longer there.
const GONE: u32 = u32::MAX;

/// A deadline's offset from an array based at `base_ms`, when a slot can hold it: not
/// before the base, and less than [`GONE`] (about 49 days) after it.
fn offset_from(base_ms: i64, deadline_ms: i64) -> Option<u32> {
    let offset = u32::try_from(deadline_ms.checked_sub(base_ms)?).ok()?;
    (offset != GONE).then_some(offset)
}

/// The fewest new markers merged into the sorted array at once: a small site merges
/// every few dozen new visitors (a copy of a small array), a large one when its new
/// markers pass an eighth of the array. With a thousand sites, a floor of 1,024 held
/// up to a million markers in trees at twice the array's bytes each.
const MIN_MERGE: usize = 32;

/// About what a marker held in a `BTreeMap` takes, the tree's nodes and slack included
/// (measured over two million in a map of id to deadline: 39 bytes).
const TREE_ENTRY_BYTES: usize = 40;

/// A site's markers as held. The usual marker (its value is its deadline's text, as every
/// marker this version writes) is an id and a deadline: most of them sit in an array
/// sorted by id, 20 bytes each, where a visitor's next page view moves the deadline in
/// place; markers new since the last merge sit in a small tree (about 40 bytes each) and
/// are merged into the array when they pass an eighth of it. A million open visits take
/// about 22 MB this way, against 39 MB in a tree alone (and 86 when each held its site's
/// name and a spare value). Anything else (markers copied from an older store) is kept
/// whole beside them.
///
/// An id is in at most one of: a live slot of the array, `fresh`, `other`.
#[derive(Debug, Default)]
struct SiteMarkers {
    /// Usual markers, by id; a deadline is `base_ms` + the slot's offset.
    sorted: Vec<Packed>,
    base_ms: i64,
    /// Slots of `sorted` that are [`GONE`].
    gone: usize,
    /// Usual markers not in the array: new since the last merge, or with a deadline the
    /// array's offsets cannot reach. Id → deadline (Unix ms).
    fresh: BTreeMap<[u8; 16], i64>,
    /// Of `fresh`, at most how many the last merge could not place (their deadlines are
    /// more than 49 days from the base): they do not count towards the next merge. Never
    /// more than `fresh` holds (removing from it clamps this), so a marker the merge left
    /// and a page view then moved or removed can delay a merge, never stop one.
    unplaced: usize,
    /// Id → any other marker.
    other: BTreeMap<[u8; 16], Marker>,
}

impl SiteMarkers {
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn len(&self) -> usize {
        self.sorted.len() - self.gone + self.fresh.len() + self.other.len()
    }

    /// About the memory the markers take, in bytes.
    fn bytes(&self) -> usize {
        let other: usize = self
            .other
            .values()
            .map(|marker| TREE_ENTRY_BYTES + size_of::<Marker>() + marker.value.capacity())
            .sum();
        self.sorted.capacity() * size_of::<Packed>() + self.fresh.len() * TREE_ENTRY_BYTES + other
    }

    /// The offset of a deadline from the array's base, when it has one.
    fn offset_of(&self, deadline_ms: i64) -> Option<u32> {
        offset_from(self.base_ms, deadline_ms)
    }

    fn slot(&self, id: &[u8; 16]) -> Result<usize, usize> {
        self.sorted.binary_search_by(|packed| packed.id.cmp(id))
    }

    fn set(&mut self, id: [u8; 16], marker: Option<&Marker>) {
        let deadline = marker.and_then(usual_deadline);
        if let Ok(at) = self.slot(&id) {
            let was_live = self.sorted[at].offset() != GONE;
            match deadline.and_then(|ms| self.offset_of(ms)) {
                // The common case: a visitor's next page view moves its deadline.
                Some(offset) => {
                    self.sorted[at].offset = offset.to_le_bytes();
                    if was_live {
                        return;
                    }
                    self.gone -= 1;
                    self.remove_fresh(&id);
                    self.other.remove(&id);
                    return;
                }
                None if was_live => {
                    self.sorted[at].offset = GONE.to_le_bytes();
                    self.gone += 1;
                }
                None => {}
            }
        }
        match (deadline, marker) {
            (Some(deadline_ms), _) => {
                self.other.remove(&id);
                self.fresh.insert(id, deadline_ms);
                if self.fresh.len().saturating_sub(self.unplaced)
                    > MIN_MERGE.max(self.sorted.len() / 8)
                {
                    self.merge();
                }
            }
            (None, Some(marker)) => {
                self.remove_fresh(&id);
                self.other.insert(id, marker.clone());
            }
            (None, None) => {
                self.remove_fresh(&id);
                self.other.remove(&id);
            }
        }
    }

    fn remove_fresh(&mut self, id: &[u8; 16]) {
        if self.fresh.remove(id).is_some() {
            self.unplaced = self.unplaced.min(self.fresh.len());
        }
    }

    /// Moves the fresh markers into the sorted array (a new one, exactly as large as it
    /// needs to be, without the gone slots), based at the earliest deadline held.
    fn merge(&mut self) {
        let fresh = std::mem::take(&mut self.fresh);
        let held = union(
            self.live_slots(0),
            fresh.iter().map(|(id, deadline_ms)| (*id, *deadline_ms)),
        );
        let base_ms = self
            .live_slots(0)
            .map(|(_, ms)| ms)
            .chain(fresh.values().copied())
            .min()
            .unwrap_or(0);
        let mut sorted = Vec::with_capacity(self.sorted.len() - self.gone + fresh.len());
        let mut unplaced = BTreeMap::new();
        for (id, deadline_ms) in held {
            match offset_from(base_ms, deadline_ms) {
                Some(offset) => sorted.push(Packed {
                    id,
                    offset: offset.to_le_bytes(),
                }),
                None => {
                    unplaced.insert(id, deadline_ms);
                }
            }
        }
        self.sorted = sorted;
        self.base_ms = base_ms;
        self.gone = 0;
        self.unplaced = unplaced.len();
        self.fresh = unplaced;
    }

    /// The array's live markers from slot `start` on: id and deadline (Unix ms).
    fn live_slots(&self, start: usize) -> impl Iterator<Item = ([u8; 16], i64)> + '_ {
        let base_ms = self.base_ms;
        self.sorted[start.min(self.sorted.len())..]
            .iter()
            .filter(|packed| packed.offset() != GONE)
            .map(move |packed| (packed.id, base_ms + i64::from(packed.offset())))
    }

    fn get(&self, id: &[u8; 16]) -> Option<Marker> {
        if let Ok(at) = self.slot(id) {
            let offset = self.sorted[at].offset();
            if offset != GONE {
                return usual_marker(self.base_ms + i64::from(offset));
            }
        }
        match self.fresh.get(id) {
            Some(&deadline_ms) => usual_marker(deadline_ms),
            None => self.other.get(id).cloned(),
        }
    }

    /// Drops the markers expired at `now`; returns how many.
    fn purge(&mut self, now: Timestamp) -> usize {
        let before = self.len();
        let now_ms = now.as_millisecond();
        let base_ms = self.base_ms;
        self.sorted.retain(|packed| {
            packed.offset() != GONE && base_ms + i64::from(packed.offset()) > now_ms
        });
        self.gone = 0;
        if self.sorted.capacity() > 2 * self.sorted.len() + MIN_MERGE {
            self.sorted.shrink_to_fit();
        }
        self.fresh.retain(|_, deadline_ms| *deadline_ms > now_ms);
        self.unplaced = self.unplaced.min(self.fresh.len());
        self.other.retain(|_, marker| marker.is_live(now));
        before - self.len()
    }

    /// The usual markers with an id after `after` (all when `None`), in id order: id and
    /// deadline (Unix ms).
    fn usual_after(&self, after: Option<[u8; 16]>) -> impl Iterator<Item = ([u8; 16], i64)> + '_ {
        let start = after.map_or(0, |id| match self.slot(&id) {
            Ok(at) => at + 1,
            Err(at) => at,
        });
        let fresh = self
            .fresh
            .range((after_bound(after), Bound::Unbounded))
            .map(|(id, deadline_ms)| (*id, *deadline_ms));
        union(self.live_slots(start), fresh)
    }

    /// Every marker with an id after `after` (all when `None`), in id order.
    fn after(&self, after: Option<[u8; 16]>) -> impl Iterator<Item = ([u8; 16], Marker)> + '_ {
        let usual = self
            .usual_after(after)
            .filter_map(|(id, deadline_ms)| Some((id, usual_marker(deadline_ms)?)));
        let other = self
            .other
            .range((after_bound(after), Bound::Unbounded))
            .map(|(id, marker)| (*id, marker.clone()));
        union(usual, other)
    }
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

/// The markers of one store, and which sites changed since the last checkpoint.
#[derive(Debug, Default)]
pub(super) struct Markers {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// `site}` → that site's markers. Keyed with the brace so that sites iterate in the
    /// order of their key strings (`}` sorts after every character a site id has).
    sites: BTreeMap<Box<str>, SiteMarkers>,
    /// Sites (`site}`) whose markers changed since their last checkpoint.
    dirty: BTreeSet<Box<str>>,
    /// When the last periodic checkpoint ran (Unix ms), and how many markers it wrote.
    last_checkpoint: Option<(i64, usize)>,
    /// Room for a site's map key (see [`braced`]).
    scratch: String,
}

/// Markers a periodic checkpoint may write per second of the interval since the last
/// one: a checkpoint rewrites every open marker of the sites that changed, so with
/// millions of open visits (a 1,000-site portal at saturation) one every 10 s held the
/// store's single writer for much of the time and the flusher fell behind. Spacing them
/// by their size keeps the checkpoints' share of the writer small; what a crash can lose
/// grows with them (visits open since the last checkpoint start again after a restart;
/// no hit is lost).
const CHECKPOINT_MARKERS_PER_SECOND: usize = 20_000;
/// The longest interval between periodic checkpoints, whatever their size.
const MAX_CHECKPOINT_INTERVAL_MS: i64 = 5 * 60 * 1000;

impl State {
    /// Sets (or with `None` removes) the marker at `key`; a key of another form is
    /// ignored.
    fn set(&mut self, key: &str, marker: Option<&Marker>) {
        let Some((site, id)) = split_key(key) else {
            return;
        };
        let State {
            sites,
            dirty,
            scratch,
            ..
        } = self;
        let braced = braced(scratch, site);
        match sites.get_mut(braced) {
            Some(markers) => markers.set(id, marker),
            None if marker.is_none() => return,
            None => sites.entry(braced.into()).or_default().set(id, marker),
        }
        if !dirty.contains(braced) {
            dirty.insert(braced.into());
        }
    }
}

/// `site}` in `scratch` (a map key, built without allocating on every hit).
fn braced<'a>(scratch: &'a mut String, site: &str) -> &'a str {
    scratch.clear();
    scratch.push_str(site);
    scratch.push('}');
    scratch
}

impl Markers {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change below is a complete insert or removal: a poisoned map is consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The marker at `key`, expired or not.
    pub(super) fn get(&self, key: &Key) -> Option<Marker> {
        let (site, id) = split_key(key.as_str())?;
        let mut state = self.lock();
        let State { sites, scratch, .. } = &mut *state;
        sites.get(braced(scratch, site))?.get(&id)
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

    /// Live markers with keys after `after`, at most `limit`, in key order.
    pub(super) fn page(&self, after: &str, limit: usize, now: Timestamp) -> Vec<(Key, Marker)> {
        let state = self.lock();
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
        state
            .sites
            .range::<str, _>((Bound::Included(start_site.as_str()), Bound::Unbounded))
            .flat_map(|(site, markers)| {
                let from = cursor_id.filter(|_| **site == *start_site);
                markers
                    .after(from)
                    .map(move |(id, marker)| (key_string(site, &id), marker))
            })
            .filter(|(key, marker)| marker.is_live(now) && key.as_str() > after)
            .filter_map(|(key, marker)| Some((Key::parse(&key)?, marker)))
            .take(limit)
            .collect()
    }

    /// True when a periodic checkpoint is due at `now`: never run yet, or the interval
    /// its last size asks for (at least every call for small stores, at most
    /// [`MAX_CHECKPOINT_INTERVAL_MS`]) has passed.
    pub(super) fn checkpoint_due(&self, now: Timestamp) -> bool {
        let state = self.lock();
        match state.last_checkpoint {
            None => true,
            Some((at_ms, written)) => {
                let interval_ms = i64::try_from(written * 1000 / CHECKPOINT_MARKERS_PER_SECOND)
                    .unwrap_or(i64::MAX)
                    .min(MAX_CHECKPOINT_INTERVAL_MS);
                now.as_millisecond().saturating_sub(at_ms) >= interval_ms
            }
        }
    }

    /// Records a periodic checkpoint at `now` that wrote `written` markers.
    pub(super) fn checkpointed(&self, now: Timestamp, written: usize) {
        self.lock().last_checkpoint = Some((now.as_millisecond(), written));
    }

    /// Forgets expired markers (their sites are checkpointed without them); returns how
    /// many.
    pub(super) fn purge(&self, now: Timestamp) -> usize {
        let mut state = self.lock();
        let State { sites, dirty, .. } = &mut *state;
        let mut removed = 0;
        sites.retain(|site, markers| {
            let gone = markers.purge(now);
            if gone > 0 && !dirty.contains(site) {
                dirty.insert(site.clone());
            }
            removed += gone;
            !markers.is_empty()
        });
        removed
    }

    /// Takes the sites whose markers changed since the last checkpoint off the dirty list,
    /// in site order. Each is then written with [`Markers::write_row`]; any not written
    /// go back with [`Markers::restore_dirty`].
    pub(super) fn take_dirty(&self) -> Vec<Box<str>> {
        std::mem::take(&mut self.lock().dirty).into_iter().collect()
    }

    /// Writes `site`'s markers (`site}`) as its row of `table` (removes the row when it
    /// has none); returns how many markers the row holds.
    pub(super) fn write_row(
        &self,
        table: &mut Table<'_, &'static str, &'static [u8]>,
        site: &str,
    ) -> Result<usize, StoreError> {
        // Encoded under the lock, straight from the map: 25 bytes a usual marker, as
        // quick as a copy would be and half its memory (every batch the flusher applies
        // waits for this lock, and a site of a million open visits takes a few ms).
        let (row, written) = {
            let state = self.lock();
            match state.sites.get(site) {
                Some(markers) => (encode_row(site, markers), markers.len()),
                None => (Vec::new(), 0),
            }
        };
        let name = site.trim_end_matches('}');
        if row.is_empty() {
            table.remove(name).map_err(backend)?;
        } else {
            table.insert(name, row.as_slice()).map_err(backend)?;
        }
        Ok(written)
    }

    /// Marks `sites` changed again, after a checkpoint of them failed.
    pub(super) fn restore_dirty(&self, sites: Vec<Box<str>>) {
        self.lock().dirty.extend(sites);
    }

    /// Loads every row of the table (markers already expired at `now` are left out).
    pub(super) fn load(
        &self,
        table: &impl ReadableTable<&'static str, &'static [u8]>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        // Loaded as they were written: only what changed before stays to checkpoint.
        let dirty = std::mem::take(&mut state.dirty);
        for row in table.iter().map_err(backend)? {
            let (site, bytes) = row.map_err(backend)?;
            let site = site.value();
            let corrupt = || StoreError::Corrupt {
                key: format!("markers of {site}"),
                message: "malformed marker row".to_owned(),
            };
            let site_brace = format!("{site}}}");
            for (key, marker) in decode_row(&site_brace, bytes.value()).ok_or_else(corrupt)? {
                if marker.is_live(now) {
                    state.set(&key, Some(&marker));
                }
            }
        }
        state.dirty = dirty;
        Ok(())
    }

    /// How many markers are held, expired or not (a walk over the sites, not the
    /// markers: for the upkeep and tests, not the hot path).
    pub(super) fn len(&self) -> usize {
        self.lock().sites.values().map(SiteMarkers::len).sum()
    }

    /// About the memory the markers take, in bytes (a walk over the sites, and over the
    /// markers of another form).
    pub(super) fn bytes(&self) -> usize {
        self.lock().sites.values().map(SiteMarkers::bytes).sum()
    }
}

/// The first bytes of a row in the compact format (an older row starts with a key's
/// length, which is never 65,535: keys are well under 200 bytes).
const COMPACT_ROW: [u8; 2] = [0xff, 0xff];
/// In a compact row: a marker whose value is its deadline, as id and deadline (ms).
const COMPACT_STANDARD: u8 = 0;
/// In a compact row: any other marker, in the older entry format.
const COMPACT_OTHER: u8 = 1;

/// The row of one site's markers (`site_brace` is `site}`), in the compact format.
fn encode_row(site_brace: &str, markers: &SiteMarkers) -> Vec<u8> {
    if markers.is_empty() {
        return Vec::new();
    }
    let mut row = Vec::with_capacity(2 + markers.len() * 25);
    row.extend_from_slice(&COMPACT_ROW);
    // The usual marker: its id and deadline, 25 bytes.
    for (id, deadline_ms) in markers.usual_after(None) {
        row.push(COMPACT_STANDARD);
        row.extend_from_slice(&id);
        row.extend_from_slice(&deadline_ms.to_le_bytes());
    }
    for (id, marker) in &markers.other {
        row.push(COMPACT_OTHER);
        encode(&mut row, &key_string(site_brace, id), marker);
    }
    row
}

/// The markers of one row: the compact format (what checkpoints write: 25 bytes a
/// marker) or the older one (a key string, an expiry and a value per marker), which
/// files of an earlier version hold until their next checkpoint.
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

#[cfg(test)]
mod tests {
    use super::*;

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

    /// The array, its fresh markers and the others agree with a plain map through
    /// merges, moves between kinds, removals, deadlines too far apart for an offset,
    /// purges and walks from any cursor.
    #[test]
    fn site_markers_match_a_plain_map() {
        use rand::{Rng as _, SeedableRng as _};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(16);
        let mut site = SiteMarkers::default();
        let mut model: BTreeMap<[u8; 16], Marker> = BTreeMap::new();
        let mut now_ms: i64 = 1_796_000_000_000;
        let id = |n: u32| {
            let mut id = [0u8; 16];
            id[..4].copy_from_slice(&n.wrapping_mul(2_654_435_761).to_be_bytes());
            id[12..].copy_from_slice(&n.to_le_bytes());
            id
        };
        let mut merges = 0;
        for step in 0..120_000u32 {
            now_ms += rng.random_range(0..20);
            let target = id(rng.random_range(0..12_000));
            let marker = match rng.random_range(0..100) {
                0 => None,
                1 => Some(Marker {
                    value: b"copied".to_vec(),
                    expire_at: Some(Timestamp::from_millisecond(now_ms + 60_000).unwrap()),
                }),
                // Sixty days ahead: past what an offset from the base reaches.
                2 => usual_marker(now_ms + 60 * 86_400_000),
                _ => usual_marker(now_ms + rng.random_range(1_000..1_800_000)),
            };
            let array_before = site.sorted.len();
            site.set(target, marker.as_ref());
            // Only a merge changes the array's length on a set.
            merges += usize::from(site.sorted.len() != array_before);
            match marker {
                Some(marker) => model.insert(target, marker),
                None => model.remove(&target),
            };
            assert_eq!(
                site.get(&target),
                model.get(&target).cloned(),
                "step {step}"
            );
            if step % 10_000 == 9_999 {
                let now = Timestamp::from_millisecond(now_ms + 900_000).unwrap();
                let before = model.len();
                model.retain(|_, marker| marker.is_live(now));
                assert_eq!(site.purge(now), before - model.len(), "step {step}");
            }
            if step % 4_000 == 0 {
                assert_eq!(site.len(), model.len());
                let walked: Vec<_> = site.after(None).collect();
                let expected: Vec<_> = model.iter().map(|(k, m)| (*k, m.clone())).collect();
                assert_eq!(walked, expected, "step {step}");
                let cursor = id(rng.random_range(0..12_000));
                let walked: Vec<_> = site.after(Some(cursor)).map(|(id, _)| id).collect();
                let expected: Vec<_> = model
                    .range((Bound::Excluded(cursor), Bound::Unbounded))
                    .map(|(id, _)| *id)
                    .collect();
                assert_eq!(walked, expected, "step {step}");
            }
        }
        assert!(merges > 3, "merged {merges} times");
        assert!(
            site.unplaced > 0,
            "no deadline was out of an offset's reach"
        );
    }

    /// Markers a merge could not place (deadlines beyond an offset's reach) may be
    /// removed or replaced before the next merge: the count of unplaced ones follows,
    /// and the next new marker neither underflows it nor waits on markers long gone.
    #[test]
    fn unplaced_markers_removed_before_the_next_merge() {
        let mut site = SiteMarkers::default();
        let start_ms: i64 = 1_796_000_000_000;
        let near = |n: u8| usual_marker(start_ms + i64::from(n));
        let far = [[0xf0; 16], [0xf1; 16]];
        let merge_size = u8::try_from(MIN_MERGE).unwrap() + 1;
        // A first merge sets the base; then the far ones wait in the tree while new near
        // ones fill it up to the next merge, which cannot place them.
        for n in 0..merge_size {
            site.set([n; 16], near(n).as_ref());
        }
        for id in far {
            site.set(id, usual_marker(start_ms + 60 * 86_400_000).as_ref());
        }
        for n in 0..merge_size - 2 {
            site.set([0x80 + n; 16], near(n).as_ref());
        }
        assert_eq!((site.unplaced, site.fresh.len()), (2, 2), "{site:?}");
        // One moved into reach, then both removed: none is unplaced any more.
        site.set(far[0], near(7).as_ref());
        assert_eq!(site.get(&far[0]), near(7));
        for id in far {
            site.set(id, None);
        }
        assert_eq!((site.unplaced, site.fresh.len()), (0, 0));
        site.set([0xee; 16], near(9).as_ref());
        assert_eq!(site.get(&[0xee; 16]), near(9));
        assert_eq!(site.get(&far[0]), None);
        // The tree merges again after exactly MIN_MERGE + 1 new ones.
        for n in 1..merge_size {
            site.set([0xe0 - n; 16], near(n).as_ref());
        }
        assert_eq!(site.fresh.len(), 0, "{site:?}");
    }

    /// A million open visits take about 22 bytes each (20 in the array, the fresh ones
    /// more), where a tree took 39.
    #[test]
    fn a_million_markers_take_about_22_bytes_each() {
        let mut site = SiteMarkers::default();
        let start_ms: i64 = 1_796_000_000_000;
        for n in 0..1_000_000u32 {
            let mut id = [0u8; 16];
            id[..4].copy_from_slice(&n.wrapping_mul(2_654_435_761).to_be_bytes());
            id[12..].copy_from_slice(&n.to_le_bytes());
            let marker = usual_marker(start_ms + i64::from(n) + 1_800_000).unwrap();
            site.set(id, Some(&marker));
        }
        assert_eq!(site.len(), 1_000_000);
        let per_marker = site.bytes() as f64 / 1e6;
        assert!(
            (20.0..24.0).contains(&per_marker),
            "{per_marker} bytes a marker"
        );
        assert!(site.fresh.len() <= site.sorted.len() / 8 + 1);
    }

    #[test]
    fn checkpoints_are_spaced_by_their_size() {
        let markers = Markers::default();
        let at = |s: i64| Timestamp::from_second(1_796_000_000 + s).unwrap();
        assert!(markers.checkpoint_due(at(0)), "the first is always due");
        // A small store checkpoints at every upkeep.
        markers.checkpointed(at(0), 1_000);
        assert!(markers.checkpoint_due(at(10)));
        // Two million open visits: every 100 s.
        markers.checkpointed(at(10), 2_000_000);
        assert!(!markers.checkpoint_due(at(60)));
        assert!(markers.checkpoint_due(at(110)));
        // Never more than five minutes apart.
        markers.checkpointed(at(110), 100_000_000);
        assert!(!markers.checkpoint_due(at(400)));
        assert!(markers.checkpoint_due(at(410)));
    }

    #[test]
    fn compact_rows_round_trip_beside_older_entries() {
        let markers = Markers::default();
        let deadline: Timestamp = "2026-11-30T03:30:00Z".parse().unwrap();
        let standard = Marker {
            value: deadline.as_millisecond().to_string().into_bytes(),
            expire_at: Some(deadline),
        };
        let other = Marker {
            value: b"copied from an older store".to_vec(),
            expire_at: Some(deadline),
        };
        let first = key_string("caukee}", &[1; 16]);
        let second = key_string("caukee}", &[2; 16]);
        markers.lock().set(&first, Some(&standard));
        markers.lock().set(&second, Some(&other));
        let row = encode_row("caukee}", &markers.lock().sites["caukee}"]);
        // 25 bytes for the usual marker, the older entry for the other.
        let mut older = Vec::new();
        encode(&mut older, &second, &other);
        assert_eq!(row.len(), 2 + 25 + 1 + older.len());
        let decoded = decode_row("caukee}", &row).expect("a compact row");
        assert_eq!(decoded, vec![(first, standard), (second, other)]);
        // Damage anywhere is refused, never a panic.
        for cut in 2..row.len() {
            if let Some(partial) = decode_row("caukee}", &row[..cut]) {
                assert!(partial.len() < 2, "a cut row decoded whole at {cut}");
            }
        }
        assert_eq!(decode_row("caukee}", &[0xff, 0xff, 9]), None);
        // A site without markers has no row.
        assert!(encode_row("caukee}", &SiteMarkers::default()).is_empty());
    }

    /// Following cursors two markers at a time walks every live marker once, in key
    /// order, across sites one of which is a prefix of another, whether the cursor is a
    /// marker (its site's walk starts after its id) or another key of the same site.
    #[test]
    fn pages_follow_cursors_within_and_across_sites() {
        let markers = Markers::default();
        let now: Timestamp = "2026-11-30T03:00:00Z".parse().unwrap();
        let live = usual_marker(now.as_millisecond() + 60_000).unwrap();
        let expired = usual_marker(now.as_millisecond()).unwrap();
        let mut expected = Vec::new();
        for site in ["a}", "ab}"] {
            for n in [3u8, 1, 7, 5, 9] {
                let key = key_string(site, &[n; 16]);
                let marker = if n == 7 { &expired } else { &live };
                markers.lock().set(&key, Some(marker));
                if n != 7 {
                    expected.push(key);
                }
            }
        }
        expected.sort_unstable();
        let mut walked = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = markers.page(&cursor, 2, now);
            let Some((last, _)) = page.last() else { break };
            cursor = last.to_string();
            walked.extend(page.into_iter().map(|(key, _)| key.to_string()));
        }
        assert_eq!(walked, expected);
        // A cursor on another key of a site: every marker of that site after it.
        let page = markers.page("ff:{a}:pv:t", 10, now);
        let keys: Vec<String> = page.iter().map(|(key, _)| key.to_string()).collect();
        let after: Vec<&String> = expected
            .iter()
            .filter(|k| k.as_str() > "ff:{a}:pv:t")
            .collect();
        assert_eq!(keys.iter().collect::<Vec<_>>(), after);
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

    #[test]
    fn held_markers_keep_their_value_and_deadline() {
        let at: Timestamp = "2026-11-30T03:30:00Z".parse().unwrap();
        let markers = [
            Marker {
                value: at.as_millisecond().to_string().into_bytes(),
                expire_at: Some(at),
            },
            Marker {
                value: Vec::new(),
                expire_at: Some(at),
            },
            Marker {
                value: b"x".to_vec(),
                expire_at: None,
            },
        ];
        let mut site = SiteMarkers::default();
        for (i, marker) in markers.iter().enumerate() {
            site.set([i as u8; 16], Some(marker));
        }
        assert_eq!((site.len() - site.other.len(), site.other.len()), (1, 2));
        for (i, marker) in markers.iter().enumerate() {
            assert_eq!(site.get(&[i as u8; 16]).as_ref(), Some(marker));
        }
        // A usual marker replaced by another kind (and back) is held once.
        site.set([0; 16], Some(&markers[2]));
        assert_eq!((site.len() - site.other.len(), site.other.len()), (0, 3));
        site.set([0; 16], Some(&markers[0]));
        assert_eq!((site.len() - site.other.len(), site.other.len()), (1, 2));
        // Merged in id order across both kinds, after a cursor.
        let ids: Vec<u8> = site.after(Some([0; 16])).map(|(id, _)| id[0]).collect();
        assert_eq!(ids, vec![1, 2]);
        site.set([1; 16], None);
        assert_eq!(site.len(), 2);
        // Expired markers go; those without a deadline stay.
        assert_eq!(site.purge(at), 1);
        assert_eq!(
            site.after(None).map(|(id, _)| id[0]).collect::<Vec<_>>(),
            vec![2]
        );
    }
}
