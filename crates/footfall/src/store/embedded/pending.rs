//! Records the flusher's batches changed, held in memory and journaled until they are
//! written to `entries`.
//!
//! Before this, every batch rewrote each record it touched whole: a busy site's day
//! sketch (12 KB dense), its minute's online set (up to 32 KB) and that set's spill
//! sketch, several times a second, each a fresh copy-on-write page run in redb. With
//! 1,000 sites the file took 2.4 KB of writing per hit, almost all of it copies of
//! records that had changed by a few bytes.
//!
//! Now an apply commits one row of the `journal` table instead, holding what the batch
//! did in a form that replays exactly: the elements it added to sketches and sets
//! (16 bytes each; adding them again to the records as they were gives the records as
//! they are) and the new values of its small records (counters). The changed records
//! themselves stay in memory ([`Held`]), where the next batch reads them, and are written
//! to `entries` together, in the transaction that empties the journal, when they are
//! [`WRITE_OUT_AFTER`] old or pass [`WRITE_OUT_BYTES`], and before any other kind of
//! write (so a `set`, `delete` or `restore` always finds `entries` complete and the
//! journal empty). Opening a file replays its journal. A batch is therefore exactly as
//! durable as before: its journal row commits with it, `fsync` and all, and `entries`
//! plus the journal always hold every acknowledged batch.
//!
//! Readers see the held records over `entries`: a reader takes the read lock before it
//! opens its read transaction and keeps it to the end, and a write-out forgets the held
//! records (under the write lock) only after its commit, so no reader can pair a
//! snapshot from before a write-out with the held records already gone.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use redb::TableDefinition;

use super::convert::nanos;
use super::record::{decode, encode, encode_deadline, split_deadline};
use crate::keys::Key;
use crate::store::engine::{Record, Value};
use crate::store::{SetAdd, SketchAdd, StoreError};

/// Row number → one applied batch (see [`encode_row`]).
pub(super) const JOURNAL: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("journal");

/// How long changed records are held before an apply writes them out. Each write-out
/// writes every record changed since the last one, once; the held records take memory
/// and the journal's replay at open takes time in proportion.
pub(super) const WRITE_OUT_AFTER: Duration = Duration::from_secs(5);

/// About how much memory the held records may take before an apply writes them out
/// early. It must hold what five seconds of batches change, or every batch would write
/// everything out: at saturation with 1,000 sites one batch changes some 2,700 records
/// (dense day sketches of 16 KB, online sets of up to 32 KB), and with 16 MiB the soak
/// wrote more per hit than without holding anything.
pub(super) const WRITE_OUT_BYTES: usize = 64 * 1024 * 1024;

/// The records held (see the module docs), behind a lock readers share.
#[derive(Debug, Default)]
pub(super) struct Pending {
    held: RwLock<Held>,
}

/// Records newer than `entries`, by key (`None`: removed since).
#[derive(Debug, Default)]
pub(super) struct Held {
    records: BTreeMap<Key, Option<Record>>,
    /// About the memory `records` takes.
    bytes: usize,
    /// When the oldest held change was made.
    since: Option<Instant>,
    /// The key of the journal's next row.
    next_row: u64,
}

impl Held {
    pub(super) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The held state of `key`: `None` when it is not held (read `entries`),
    /// `Some(None)` when it was removed.
    pub(super) fn get(&self, key: &Key) -> Option<Option<&Record>> {
        self.records.get(key).map(Option::as_ref)
    }

    /// Held keys after `after`, in order.
    pub(super) fn after<'s>(
        &'s self,
        after: &str,
    ) -> impl Iterator<Item = (&'s Key, Option<&'s Record>)> + 's {
        self.records
            .range::<str, _>((Bound::Excluded(after), Bound::Unbounded))
            .map(|(key, record)| (key, record.as_ref()))
    }

    /// Every held record, with this transaction's `changed` ones in their place.
    pub(super) fn merged<'s>(
        &'s self,
        changed: &'s BTreeMap<Key, Option<Record>>,
    ) -> impl Iterator<Item = (&'s Key, Option<&'s Record>)> + 's {
        let older = self
            .records
            .iter()
            .filter(|(key, _)| !changed.contains_key(*key));
        older
            .chain(changed)
            .map(|(key, record)| (key, record.as_ref()))
    }

    pub(super) fn next_row(&self) -> u64 {
        self.next_row
    }

    /// About the memory the held records would take with `changed` held too. Most of
    /// what an apply changes is held already (the same sites' records, a batch later):
    /// a record it replaces is counted once, not twice.
    pub(super) fn bytes_with(&self, changed: &BTreeMap<Key, Option<Record>>) -> usize {
        let (added, replaced) = changed
            .iter()
            .fold((0, 0), |(added, replaced), (key, record)| {
                let old = self
                    .records
                    .get(key)
                    .map_or(0, |old| held_bytes(key, old.as_ref()));
                (added + held_bytes(key, record.as_ref()), replaced + old)
            });
        (self.bytes + added).saturating_sub(replaced)
    }

    /// True when an apply after which the held records would take `bytes` should write
    /// everything out rather than hold it longer.
    pub(super) fn due(&self, bytes: usize, now: Instant) -> bool {
        bytes > WRITE_OUT_BYTES
            || self
                .since
                .is_some_and(|since| now.duration_since(since) >= WRITE_OUT_AFTER)
    }

    pub(super) fn len(&self) -> usize {
        self.records.len()
    }

    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Pending {
    /// The held records, for one reader or writer; a poisoned lock still holds records
    /// that were complete (they change only by whole assignments).
    pub(super) fn read(&self) -> RwLockReadGuard<'_, Held> {
        self.held.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// After an apply's journal row committed: hold what it changed, `bytes` being
    /// [`Held::bytes_with`] those changes (measured under the writers' lock, so nothing
    /// changed the held records since).
    pub(super) fn hold(&self, changed: BTreeMap<Key, Option<Record>>, bytes: usize, now: Instant) {
        let mut held = self.held.write().unwrap_or_else(PoisonError::into_inner);
        held.since.get_or_insert(now);
        held.next_row += 1;
        held.bytes = bytes;
        held.records.extend(changed);
    }

    /// After a write-out committed: `entries` holds everything and the journal is empty.
    pub(super) fn forget(&self) {
        let mut held = self.held.write().unwrap_or_else(PoisonError::into_inner);
        let next_row = held.next_row;
        *held = Held {
            next_row,
            ..Held::default()
        };
    }
}

/// A held key's share of memory besides its value (the key's text, the map's node).
const KEY_OVERHEAD: usize = 96;

fn held_bytes(key: &Key, record: Option<&Record>) -> usize {
    KEY_OVERHEAD + key.as_str().len() + record.map_or(0, |record| value_bytes(&record.value))
}

fn value_bytes(value: &Value) -> usize {
    match value {
        Value::Counter(_) => 8,
        Value::Sketch(sketch) => sketch.heap_bytes(),
        Value::Set { members, .. } => members.capacity() * 16,
        Value::Bytes(bytes) => bytes.capacity(),
    }
}

// ---------------------------------------------------------------------------------------
// Journal rows.

const OP_SKETCH: u8 = 1;
const OP_SET: u8 = 2;
const OP_PUT: u8 = 3;
const OP_REMOVE: u8 = 4;

/// One applied batch, as its journal row holds it.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Row {
    /// The batch's time (expired records count as absent when it replays, as they did).
    pub(super) now: Timestamp,
    /// Its sketch additions, replayed as additions.
    pub(super) sketches: Vec<SketchAdd>,
    /// Its set additions (spills included), replayed as additions.
    pub(super) sets: Vec<SetAdd>,
    /// The new values of every other record it changed (`None`: removed).
    pub(super) records: Vec<(Key, Option<Record>)>,
}

/// A journal row: `[now: i128 LE ns]`, then operations, each `[op: u8][key length: u16
/// LE][key]` followed by, for a sketch addition, `[deadline][count: u32 LE][count ×
/// 16-byte elements]`; for a set addition, `[deadline][cap: u32 LE][spill flag: u8]
/// ([spill key length: u16 LE][spill key])[count: u32 LE][elements]`; for a put,
/// `[length: u32 LE][the record as `entries` stores it]`; for a removal, nothing. A
/// deadline is written as a record's is ([`encode_deadline`]).
///
/// Sketch and set records are left out of `records`: their additions rebuild them.
pub(super) fn encode_row<'r>(
    now: Timestamp,
    sketches: &[SketchAdd],
    sets: &[SetAdd],
    records: impl Iterator<Item = (&'r Key, Option<&'r Record>)>,
) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&nanos(now).to_le_bytes());
    for add in sketches {
        put_key(&mut out, OP_SKETCH, &add.key);
        encode_deadline(&mut out, add.expire_at);
        put_elements(&mut out, &add.elements);
    }
    for add in sets {
        put_key(&mut out, OP_SET, &add.key);
        encode_deadline(&mut out, add.expire_at);
        out.extend_from_slice(&u32::try_from(add.cap).unwrap_or(u32::MAX).to_le_bytes());
        match &add.spill {
            None => out.push(0),
            Some(spill) => {
                out.push(1);
                put_text(&mut out, spill.as_str());
            }
        }
        put_elements(&mut out, &add.elements);
    }
    for (key, record) in records {
        match record {
            Some(record) if matches!(record.value, Value::Sketch(_) | Value::Set { .. }) => {}
            Some(record) => {
                put_key(&mut out, OP_PUT, key);
                let encoded = encode(record);
                out.extend_from_slice(&u32::try_from(encoded.len()).unwrap_or(0).to_le_bytes());
                out.extend_from_slice(&encoded);
            }
            None => put_key(&mut out, OP_REMOVE, key),
        }
    }
    out
}

fn put_key(out: &mut Vec<u8>, op: u8, key: &Key) {
    out.push(op);
    put_text(out, key.as_str());
}

/// Keys are short (a site id and a few fields), far below the u16 a length takes.
fn put_text(out: &mut Vec<u8>, text: &str) {
    let len = u16::try_from(text.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&text.as_bytes()[..usize::from(len)]);
}

fn put_elements(out: &mut Vec<u8>, elements: &[[u8; 16]]) {
    out.extend_from_slice(&u32::try_from(elements.len()).unwrap_or(0).to_le_bytes());
    for element in elements {
        out.extend_from_slice(element);
    }
}

/// Reads a row back; anything malformed is reported as corrupt, never half-read.
pub(super) fn decode_row(row: u64, bytes: &[u8]) -> Result<Row, StoreError> {
    let corrupt = |message: &str| StoreError::Corrupt {
        key: format!("journal row {row}"),
        message: message.to_owned(),
    };
    let mut reader = Reader(bytes);
    let now = reader
        .i128()
        .ok_or_else(|| corrupt("truncated time"))
        .and_then(|at| timestamp(at).ok_or_else(|| corrupt("time out of range")))?;
    let mut decoded = Row {
        now,
        ..Row::default()
    };
    while !reader.0.is_empty() {
        let (op, key) = reader
            .u8()
            .zip(reader.key())
            .ok_or_else(|| corrupt("truncated or unknown key"))?;
        match op {
            OP_SKETCH => {
                let (expire_at, elements) = reader
                    .deadline()
                    .zip(reader.elements())
                    .ok_or_else(|| corrupt("malformed sketch addition"))?;
                decoded.sketches.push(SketchAdd {
                    key,
                    elements,
                    expire_at,
                });
            }
            OP_SET => {
                let expire_at = reader.deadline();
                let cap = reader.u32();
                let spill = match reader.u8() {
                    Some(0) => Some(None),
                    Some(1) => reader.key().map(Some),
                    _ => None,
                };
                let elements = reader.elements();
                let (((expire_at, cap), spill), elements) = expire_at
                    .zip(cap)
                    .zip(spill)
                    .zip(elements)
                    .ok_or_else(|| corrupt("malformed set addition"))?;
                decoded.sets.push(SetAdd {
                    key,
                    elements,
                    cap: cap as usize,
                    expire_at,
                    spill,
                });
            }
            OP_PUT => {
                let encoded = reader
                    .u32()
                    .and_then(|len| reader.take(len as usize))
                    .ok_or_else(|| corrupt("truncated record"))?;
                let record = decode(&key, encoded)?;
                decoded.records.push((key, Some(record)));
            }
            OP_REMOVE => decoded.records.push((key, None)),
            other => return Err(corrupt(&format!("unknown operation {other}"))),
        }
    }
    Ok(decoded)
}

fn timestamp(nanos: i128) -> Option<Timestamp> {
    Timestamp::from_nanosecond(nanos).ok()
}

/// A cursor over a row's bytes; every read is `None` past the end.
struct Reader<'b>(&'b [u8]);

impl<'b> Reader<'b> {
    fn take(&mut self, len: usize) -> Option<&'b [u8]> {
        let (head, rest) = self.0.split_at_checked(len)?;
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|bytes| bytes[0])
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn i128(&mut self) -> Option<i128> {
        Some(i128::from_le_bytes(self.take(16)?.try_into().ok()?))
    }

    fn key(&mut self) -> Option<Key> {
        let len = self.u16()?;
        let text = std::str::from_utf8(self.take(usize::from(len))?).ok()?;
        Key::parse(text)
    }

    fn deadline(&mut self) -> Option<Option<Timestamp>> {
        let (deadline, rest) = split_deadline(self.0)?;
        self.0 = rest;
        match deadline {
            None => Some(None),
            Some(nanos) => timestamp(nanos).map(Some),
        }
    }

    fn elements(&mut self) -> Option<Vec<[u8; 16]>> {
        let count = self.u32()? as usize;
        let bytes = self.take(count.checked_mul(16)?)?;
        let (chunks, _) = bytes.as_chunks::<16>();
        Some(chunks.to_vec())
    }
}
