//! The store semantics of the in-process backends, written once.
//!
//! The memory store and the embedded (redb) store keep the same values under the same
//! keys and must count exactly alike. Everything they share lives here, over a small
//! key-value seam ([`View`] to read, [`Tables`] to write inside one transaction): what a
//! counter, a sketch, a bounded set and a visit marker are, how a [`WriteBatch`] applies,
//! how each [`Read`] is answered, wrong-type rules, set-if-absent and compare-and-swap.
//! A backend only stores [`Record`]s and makes a transaction all-or-nothing (redb by its
//! write transaction, the memory store by staging writes until the call succeeds).
//! redb's own split between its storage engine and its `StorageBackend`s is the model.
//!
//! Expired records count as absent everywhere here, whether or not a backend has purged
//! them yet; purging is the backend's business.

use std::collections::HashSet;

use jiff::Timestamp;

use super::{
    ApplyReport, Entry, EntryValue, Read, SET_OVERFLOWED, SetAdd, StoreError, VisitGroup,
    WriteBatch,
};
use crate::keys::Key;
use crate::sketch::Hll;

/// One stored value with its deadline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Record {
    pub(super) value: Value,
    /// `None`: never expires.
    pub(super) expire_at: Option<Timestamp>,
}

/// A stored value, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Value {
    /// A counter.
    Counter(u64),
    /// A HyperLogLog sketch.
    Sketch(Box<Hll>),
    /// A bounded set (see [`SetAdd`]): members sorted ascending and distinct, so a set
    /// has one form whatever order its members came in.
    Set {
        members: Vec<[u8; 16]>,
        overflowed: bool,
    },
    /// Opaque bytes (salts, visit markers, documents).
    Bytes(Vec<u8>),
}

impl Record {
    pub(super) fn is_live(&self, now: Timestamp) -> bool {
        self.expire_at.is_none_or(|at| at > now)
    }
}

/// Read access to a backend's records.
pub(super) trait View {
    /// Calls `f` with the record at `key`, expired or not (`None` when there is none).
    /// A callback rather than a returned record, so a backend holding decoded values
    /// (the memory store) lends them without copying a sketch.
    fn visit<R>(&self, key: &Key, f: impl FnOnce(Option<&Record>) -> R) -> Result<R, StoreError>;
}

/// Write access inside one transaction: nothing written is visible to others, or
/// durable, until the backend commits, and a failed call commits nothing.
pub(super) trait Tables: View {
    /// Writes `record` at `key`, replacing what is there.
    fn put(&mut self, key: &Key, record: Record) -> Result<(), StoreError>;
    /// Removes `key`; removing an absent key is not an error.
    fn remove(&mut self, key: &Key) -> Result<(), StoreError>;
}

pub(super) fn wrong_type(key: &Key, expected: &str) -> StoreError {
    StoreError::Corrupt {
        key: key.to_string(),
        message: format!("expected a {expected}"),
    }
}

/// The live record at `key`, owned.
fn live<V: View + ?Sized>(
    view: &V,
    key: &Key,
    now: Timestamp,
) -> Result<Option<Record>, StoreError> {
    view.visit(key, |record| record.filter(|r| r.is_live(now)).cloned())
}

/// A counter's value from its record; like Redis, a string holding a decimal integer is
/// a counter too (baselines are written that way).
fn counter_of(key: &Key, record: Option<&Record>) -> Result<u64, StoreError> {
    match record.map(|r| &r.value) {
        None => Ok(0),
        Some(Value::Counter(n)) => Ok(*n),
        Some(Value::Bytes(bytes)) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| wrong_type(key, "counter")),
        Some(Value::Sketch(_) | Value::Set { .. }) => Err(wrong_type(key, "counter")),
    }
}

fn live_counter<V: View + ?Sized>(view: &V, key: &Key, now: Timestamp) -> Result<u64, StoreError> {
    view.visit(key, |record| {
        counter_of(key, record.filter(|r| r.is_live(now)))
    })?
}

/// The value as Redis `GET` would return it: counters as decimal text, sketches as HYLL
/// bytes; a set has no such form (Redis answers `WRONGTYPE`).
pub(super) fn get_bytes(key: &Key, value: &Value) -> Result<Vec<u8>, StoreError> {
    match value {
        Value::Counter(n) => Ok(n.to_string().into_bytes()),
        Value::Sketch(sketch) => Ok(sketch.to_redis_bytes()),
        Value::Set { .. } => Err(wrong_type(key, "string, not a set")),
        Value::Bytes(bytes) => Ok(bytes.clone()),
    }
}

/// Adds to a counter; a live counter keeps its deadline, a new one gets `expire_at`.
fn add_to_counter<T: Tables + ?Sized>(
    tables: &mut T,
    key: &Key,
    by: u64,
    expire_at: Option<Timestamp>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let existing = live(tables, key, now)?;
    let expire_at = existing
        .as_ref()
        .map_or(expire_at, |record| record.expire_at);
    let current = counter_of(key, existing.as_ref())?;
    tables.put(
        key,
        Record {
            value: Value::Counter(current.saturating_add(by)),
            expire_at,
        },
    )
}

/// Adds a [`SetAdd`]'s elements to sorted distinct `members` as its contract says;
/// returns the new overflow mark and whether anything changed.
fn add_to_set(members: &mut Vec<[u8; 16]>, mut overflowed: bool, add: &SetAdd) -> (bool, bool) {
    let cap = add.cap.max(1);
    let mut changed = false;
    // Room for what may be added, and no more: a set is held as it is grown (the
    // embedded store holds a busy minute's set of 2,000 ids between write-outs), and
    // doubling would leave up to half its memory unused.
    members.reserve_exact(add.elements.len().min(cap.saturating_sub(members.len())));
    for element in &add.elements {
        // The overflow mark takes one of the places, as it does inside a Redis set.
        let entries = members.len() + usize::from(overflowed);
        match members.binary_search(element) {
            Ok(_) => {}
            Err(at) if entries < cap => {
                members.insert(at, *element);
                changed = true;
            }
            Err(_) => {
                changed |= !overflowed;
                overflowed = true;
            }
        }
    }
    (overflowed, changed)
}

/// A visit marker's value: its deadline in Unix milliseconds as decimal text, the same
/// bytes the Redis backend keeps, so markers copy between stores unchanged.
fn marker_value(deadline: Timestamp) -> Vec<u8> {
    deadline.as_millisecond().to_string().into_bytes()
}

/// Applies a batch (see [`WriteBatch`] for its semantics).
pub(super) fn apply<T: Tables + ?Sized>(
    tables: &mut T,
    batch: &WriteBatch,
) -> Result<ApplyReport, StoreError> {
    let now = batch.now;
    for add in &batch.counters {
        add_to_counter(tables, &add.key, add.by, add.expire_at, now)?;
    }
    for add in &batch.sketches {
        let (mut sketch, expire_at, mut changed) = match live(tables, &add.key, now)? {
            None => (Box::default(), add.expire_at, true),
            Some(Record {
                value: Value::Sketch(sketch),
                expire_at,
            }) => (sketch, expire_at, false),
            Some(_) => return Err(wrong_type(&add.key, "sketch")),
        };
        for element in &add.elements {
            changed |= sketch.add(element);
        }
        // An unchanged sketch is not rewritten: in the embedded store every rewrite of a
        // 12 KiB dense sketch costs copy-on-write pages.
        if changed {
            tables.put(
                &add.key,
                Record {
                    value: Value::Sketch(sketch),
                    expire_at,
                },
            )?;
        }
    }
    for add in &batch.sets {
        let (mut members, was_overflowed, expire_at) = match live(tables, &add.key, now)? {
            None => (Vec::new(), false, add.expire_at),
            Some(Record {
                value:
                    Value::Set {
                        members,
                        overflowed,
                    },
                expire_at,
            }) => (members, overflowed, expire_at),
            Some(_) => return Err(wrong_type(&add.key, "set")),
        };
        let (overflowed, changed) = add_to_set(&mut members, was_overflowed, add);
        if overflowed && let Some(spill) = &add.spill {
            // From the overflow on, what the set cannot hold goes to the sketch: the
            // members once, and every element written.
            let earlier: &[[u8; 16]] = if was_overflowed { &[] } else { &members };
            spill_into(tables, spill, earlier, &add.elements, expire_at, now)?;
        }
        // An empty set cannot exist (as in Redis), so adding nothing creates nothing.
        if members.is_empty() || !changed {
            continue;
        }
        tables.put(
            &add.key,
            Record {
                value: Value::Set {
                    members,
                    overflowed,
                },
                expire_at,
            },
        )?;
    }
    let mut report = ApplyReport::default();
    for group in &batch.visits {
        report.visits_started += apply_visit_group(tables, group, now)?;
    }
    Ok(report)
}

/// Adds `earlier` and `elements` to the spill sketch of an overflowed set.
fn spill_into<T: Tables + ?Sized>(
    tables: &mut T,
    key: &Key,
    earlier: &[[u8; 16]],
    elements: &[[u8; 16]],
    expire_at: Option<Timestamp>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let (mut sketch, expire_at, mut changed) = match live(tables, key, now)? {
        None => (Box::default(), expire_at, true),
        Some(Record {
            value: Value::Sketch(sketch),
            expire_at,
        }) => (sketch, expire_at, false),
        Some(_) => return Err(wrong_type(key, "sketch")),
    };
    for element in earlier.iter().chain(elements) {
        changed |= sketch.add(element);
    }
    if changed {
        tables.put(
            key,
            Record {
                value: Value::Sketch(sketch),
                expire_at,
            },
        )?;
    }
    Ok(())
}

fn apply_visit_group<T: Tables + ?Sized>(
    tables: &mut T,
    group: &VisitGroup,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let mut started = 0u64;
    for touch in &group.sessions {
        let current = live(tables, &touch.key, now)?.and_then(|record| record.expire_at);
        let previous_open = match (&current, &touch.previous_key) {
            (None, Some(previous)) => live(tables, previous, now)?.is_some(),
            _ => false,
        };
        if current.is_none() && !previous_open {
            started += 1;
        }
        // A marker's deadline only moves forward: a touch applied after a later one (two
        // batches in flight) must not shorten the visit.
        let deadline = current.map_or(touch.expire_at, |at| at.max(touch.expire_at));
        tables.put(
            &touch.key,
            Record {
                value: Value::Bytes(marker_value(deadline)),
                expire_at: Some(deadline),
            },
        )?;
    }
    if started > 0 {
        for (key, expire_at) in &group.counters {
            add_to_counter(tables, key, started, *expire_at, now)?;
        }
    }
    Ok(started)
}

/// Answers reads, one value per [`Read`].
pub(super) fn read<V: View + ?Sized>(
    view: &V,
    reads: &[Read],
    now: Timestamp,
) -> Result<Vec<u64>, StoreError> {
    let mut values = Vec::with_capacity(reads.len());
    for read in reads {
        let value = match read {
            Read::Counter(key) => live_counter(view, key, now)?,
            Read::CounterSum(keys) => {
                let mut sum = 0u64;
                for key in keys {
                    sum = sum.saturating_add(live_counter(view, key, now)?);
                }
                sum
            }
            Read::Cardinality(keys) => cardinality(view, keys, now)?,
            Read::SetUnion(keys) => set_union(view, keys, now)?,
            Read::SpilledUnion(pairs) => spilled_union(view, pairs, now)?,
        };
        values.push(value);
    }
    Ok(values)
}

fn cardinality<V: View + ?Sized>(
    view: &V,
    keys: &[Key],
    now: Timestamp,
) -> Result<u64, StoreError> {
    // One sketch is counted where it lies; a union is merged into a copy first.
    let mut union: Option<Hll> = None;
    let mut single = None;
    for key in keys {
        view.visit(key, |record| match record.filter(|r| r.is_live(now)) {
            None => Ok(()),
            Some(Record {
                value: Value::Sketch(sketch),
                ..
            }) => {
                if keys.len() == 1 {
                    single = Some(sketch.count());
                } else {
                    union.get_or_insert_with(Hll::new).merge(sketch);
                }
                Ok(())
            }
            Some(_) => Err(wrong_type(key, "sketch")),
        })??;
    }
    Ok(single.or_else(|| union.map(|u| u.count())).unwrap_or(0))
}

fn set_union<V: View + ?Sized>(view: &V, keys: &[Key], now: Timestamp) -> Result<u64, StoreError> {
    let mut union: HashSet<[u8; 16]> = HashSet::new();
    let mut any_overflowed = false;
    for key in keys {
        view.visit(key, |record| match record.filter(|r| r.is_live(now)) {
            None => Ok(()),
            Some(Record {
                value:
                    Value::Set {
                        members,
                        overflowed,
                    },
                ..
            }) => {
                any_overflowed |= *overflowed;
                union.extend(members.iter().copied());
                Ok(())
            }
            Some(_) => Err(wrong_type(key, "set")),
        })??;
    }
    Ok(if any_overflowed {
        SET_OVERFLOWED
    } else {
        union.len() as u64
    })
}

fn spilled_union<V: View + ?Sized>(
    view: &V,
    pairs: &[(Key, Key)],
    now: Timestamp,
) -> Result<u64, StoreError> {
    let mut union = Hll::new();
    for (set, spill) in pairs {
        view.visit(set, |record| match record.filter(|r| r.is_live(now)) {
            None => Ok(()),
            Some(Record {
                value: Value::Set { members, .. },
                ..
            }) => {
                members.iter().for_each(|member| {
                    union.add(member);
                });
                Ok(())
            }
            Some(_) => Err(wrong_type(set, "set")),
        })??;
        view.visit(spill, |record| match record.filter(|r| r.is_live(now)) {
            None => Ok(()),
            Some(Record {
                value: Value::Sketch(sketch),
                ..
            }) => {
                union.merge(sketch);
                Ok(())
            }
            Some(_) => Err(wrong_type(spill, "sketch")),
        })??;
    }
    Ok(union.count())
}

/// `GET`: the live value at `key` as bytes.
pub(super) fn get<V: View + ?Sized>(
    view: &V,
    key: &Key,
    now: Timestamp,
) -> Result<Option<Vec<u8>>, StoreError> {
    view.visit(key, |record| {
        record
            .filter(|r| r.is_live(now))
            .map(|r| get_bytes(key, &r.value))
            .transpose()
    })?
}

/// `SET`: replaces whatever is at `key`.
pub(super) fn set<T: Tables + ?Sized>(
    tables: &mut T,
    key: &Key,
    value: &[u8],
    expire_at: Option<Timestamp>,
) -> Result<(), StoreError> {
    tables.put(
        key,
        Record {
            value: Value::Bytes(value.to_vec()),
            expire_at,
        },
    )
}

/// `SET … NX` that answers with the value now stored.
pub(super) fn set_if_absent<T: Tables + ?Sized>(
    tables: &mut T,
    key: &Key,
    value: &[u8],
    expire_at: Option<Timestamp>,
    now: Timestamp,
) -> Result<Vec<u8>, StoreError> {
    if let Some(existing) = get(tables, key, now)? {
        return Ok(existing);
    }
    set(tables, key, value, expire_at)?;
    Ok(value.to_vec())
}

/// Replaces (or removes, for `None`) the value at `key` when it is `expected`.
pub(super) fn compare_and_swap<T: Tables + ?Sized>(
    tables: &mut T,
    key: &Key,
    expected: Option<&[u8]>,
    new: Option<&[u8]>,
    now: Timestamp,
) -> Result<bool, StoreError> {
    if get(tables, key, now)?.as_deref() != expected {
        return Ok(false);
    }
    match new {
        Some(value) => set(tables, key, value, None)?,
        None => tables.remove(key)?,
    }
    Ok(true)
}

/// Writes entries exactly as given (see [`Store::restore`](super::Store::restore)).
pub(super) fn restore<T: Tables + ?Sized>(
    tables: &mut T,
    entries: &[Entry],
) -> Result<(), StoreError> {
    for entry in entries {
        let value = match &entry.value {
            EntryValue::Counter(n) => Value::Counter(*n),
            EntryValue::Set { members, .. } if members.is_empty() => {
                tables.remove(&entry.key)?;
                continue;
            }
            EntryValue::Set {
                members,
                overflowed,
            } => {
                // Sorted and distinct whatever the caller gave: one form per set.
                let mut members = members.clone();
                members.sort_unstable();
                members.dedup();
                Value::Set {
                    members,
                    overflowed: *overflowed,
                }
            }
            EntryValue::Sketch(bytes) => Value::Sketch(Box::new(decode_sketch(&entry.key, bytes)?)),
            EntryValue::Bytes(bytes) => Value::Bytes(bytes.clone()),
        };
        tables.put(
            &entry.key,
            Record {
                value,
                expire_at: entry.expire_at,
            },
        )?;
    }
    Ok(())
}

/// A record as [`Store::scan`](super::Store::scan) reports it.
pub(super) fn entry(key: &Key, record: &Record) -> Entry {
    let value = match &record.value {
        Value::Counter(n) => EntryValue::Counter(*n),
        Value::Sketch(sketch) => EntryValue::Sketch(sketch.to_redis_bytes()),
        Value::Set {
            members,
            overflowed,
        } => EntryValue::Set {
            members: members.clone(),
            overflowed: *overflowed,
        },
        Value::Bytes(bytes) => EntryValue::from_stored_bytes(key, bytes.clone()),
    };
    Entry {
        key: key.clone(),
        value,
        expire_at: record.expire_at,
    }
}

pub(super) fn decode_sketch(key: &Key, bytes: &[u8]) -> Result<Hll, StoreError> {
    Hll::from_redis_bytes(bytes).map_err(|error| StoreError::Corrupt {
        key: key.to_string(),
        message: error.to_string(),
    })
}
