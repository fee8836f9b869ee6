//! The in-memory store: for tests, benchmarks and single-process experiments.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use jiff::Timestamp;

use super::{
    ApplyReport, Entry as StoreEntry, EntryValue, Read, SET_OVERFLOWED, ScanCursor, SetAdd, Store,
    StoreError, WriteBatch,
};
use crate::keys::Key;
use crate::sketch::Hll;

/// A store held in process memory. Nothing survives the process.
///
/// One `std::sync::Mutex` guards the map: every operation is short and synchronous, and
/// the lock is never held across an `.await` (clippy's `await_holding_lock` checks it).
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<Key, Entry>>,
}

#[derive(Clone, Debug)]
struct Entry {
    value: Value,
    expire_at: Option<Timestamp>,
}

#[derive(Clone, Debug)]
enum Value {
    Counter(u64),
    Sketch(Box<Hll>),
    Set {
        members: HashSet<[u8; 16]>,
        overflowed: bool,
    },
    Bytes(Vec<u8>),
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many entries are live at `now`.
    pub fn len(&self, now: Timestamp) -> usize {
        self.lock().values().filter(|e| e.is_live(now)).count()
    }

    /// True when no entry is live at `now`.
    pub fn is_empty(&self, now: Timestamp) -> bool {
        self.len(now) == 0
    }

    /// Drops every expired entry. Reads and writes ignore expired entries anyway; this
    /// bounds memory for long-running users.
    pub fn purge_expired(&self, now: Timestamp) {
        self.lock().retain(|_, entry| entry.is_live(now));
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Entry>> {
        // Every mutation below completes or leaves the map as it was before the panic, so
        // a poisoned map is still consistent.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Entry {
    fn is_live(&self, now: Timestamp) -> bool {
        self.expire_at.is_none_or(|at| at > now)
    }
}

fn wrong_type(key: &Key, expected: &str) -> StoreError {
    StoreError::Corrupt {
        key: key.to_string(),
        message: format!("expected a {expected}"),
    }
}

/// The live entry at `key`, with expired entries treated as absent and removed.
fn live<'m>(map: &'m mut HashMap<Key, Entry>, key: &Key, now: Timestamp) -> Option<&'m mut Entry> {
    if map.get(key).is_some_and(|e| !e.is_live(now)) {
        map.remove(key);
    }
    map.get_mut(key)
}

fn counter_value(
    map: &mut HashMap<Key, Entry>,
    key: &Key,
    now: Timestamp,
) -> Result<u64, StoreError> {
    match live(map, key, now).map(|e| &e.value) {
        None => Ok(0),
        Some(Value::Counter(n)) => Ok(*n),
        // Like Redis, a string holding a decimal integer is a counter (baselines are set
        // that way).
        Some(Value::Bytes(bytes)) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| wrong_type(key, "counter")),
        Some(Value::Sketch(_) | Value::Set { .. }) => Err(wrong_type(key, "counter")),
    }
}

/// Adds a [`SetAdd`]'s elements to `members` as its contract says; returns the new
/// overflow mark.
fn add_to_set(members: &mut HashSet<[u8; 16]>, mut overflowed: bool, add: &SetAdd) -> bool {
    if overflowed {
        // Its count is already known to be inexact: growing it would only cost memory.
        return true;
    }
    let cap = add.cap.max(1);
    for element in &add.elements {
        if members.len() < cap {
            members.insert(*element);
        } else if !members.contains(element) {
            overflowed = true;
        }
    }
    overflowed
}

/// Adds to a counter; a live counter keeps its deadline, a new one gets `expire_at`.
fn add_to_counter(
    map: &mut HashMap<Key, Entry>,
    key: &Key,
    by: u64,
    expire_at: Option<Timestamp>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let current = counter_value(map, key, now)?;
    let expire_at = map.get(key).map_or(expire_at, |entry| entry.expire_at);
    map.insert(
        key.clone(),
        Entry {
            value: Value::Counter(current.saturating_add(by)),
            expire_at,
        },
    );
    Ok(())
}

impl Store for MemoryStore {
    async fn apply(&self, batch: &WriteBatch) -> Result<ApplyReport, StoreError> {
        let now = batch.now;
        let mut map = self.lock();
        // Check types first so a batch either applies whole or not at all here, as a
        // Redis script would refuse on its first WRONGTYPE.
        for add in &batch.counters {
            counter_value(&mut map, &add.key, now)?;
        }
        for add in &batch.sketches {
            if let Some(entry) = live(&mut map, &add.key, now)
                && !matches!(entry.value, Value::Sketch(_))
            {
                return Err(wrong_type(&add.key, "sketch"));
            }
        }
        for add in &batch.sets {
            if let Some(entry) = live(&mut map, &add.key, now)
                && !matches!(entry.value, Value::Set { .. })
            {
                return Err(wrong_type(&add.key, "set"));
            }
        }
        for add in &batch.counters {
            add_to_counter(&mut map, &add.key, add.by, add.expire_at, now)?;
        }
        for add in &batch.sketches {
            let entry = map.entry(add.key.clone()).or_insert_with(|| Entry {
                value: Value::Sketch(Box::default()),
                expire_at: None,
            });
            if let Value::Sketch(sketch) = &mut entry.value {
                for element in &add.elements {
                    sketch.add(element);
                }
            }
            entry.expire_at = add.expire_at;
        }
        for add in &batch.sets {
            // An empty set cannot exist (as in Redis), so adding nothing creates nothing.
            let Some(entry) = live(&mut map, &add.key, now) else {
                if add.elements.is_empty() {
                    continue;
                }
                let mut members = HashSet::new();
                let overflowed = add_to_set(&mut members, false, add);
                map.insert(
                    add.key.clone(),
                    Entry {
                        value: Value::Set {
                            members,
                            overflowed,
                        },
                        expire_at: add.expire_at,
                    },
                );
                continue;
            };
            if let Value::Set {
                members,
                overflowed,
            } = &mut entry.value
            {
                *overflowed = add_to_set(members, *overflowed, add);
            }
            entry.expire_at = add.expire_at;
        }
        let mut report = ApplyReport::default();
        for group in &batch.visits {
            let mut started = 0u64;
            for touch in &group.sessions {
                let open = live(&mut map, &touch.key, now).is_some()
                    || touch
                        .previous_key
                        .as_ref()
                        .is_some_and(|previous| live(&mut map, previous, now).is_some());
                if !open {
                    started += 1;
                }
                map.insert(
                    touch.key.clone(),
                    Entry {
                        value: Value::Bytes(Vec::new()),
                        expire_at: Some(touch.expire_at),
                    },
                );
            }
            if started > 0 {
                for (key, expire_at) in &group.counters {
                    add_to_counter(&mut map, key, started, *expire_at, now)?;
                }
            }
            report.visits_started += started;
        }
        Ok(report)
    }

    async fn read(&self, reads: &[Read], now: Timestamp) -> Result<Vec<u64>, StoreError> {
        let mut map = self.lock();
        let mut values = Vec::with_capacity(reads.len());
        for read in reads {
            let value = match read {
                Read::Counter(key) => counter_value(&mut map, key, now)?,
                Read::CounterSum(keys) => {
                    let mut sum = 0u64;
                    for key in keys {
                        sum = sum.saturating_add(counter_value(&mut map, key, now)?);
                    }
                    sum
                }
                Read::Cardinality(keys) => {
                    let mut sketches = Vec::with_capacity(keys.len());
                    for key in keys {
                        match live(&mut map, key, now).map(|e| &e.value) {
                            None => {}
                            Some(Value::Sketch(sketch)) => sketches.push((**sketch).clone()),
                            Some(_) => return Err(wrong_type(key, "sketch")),
                        }
                    }
                    let refs: Vec<&Hll> = sketches.iter().collect();
                    Hll::count_union(&refs)
                }
                Read::SetUnion(keys) => {
                    let mut union: HashSet<[u8; 16]> = HashSet::new();
                    let mut any_overflowed = false;
                    for key in keys {
                        match live(&mut map, key, now).map(|e| &e.value) {
                            None => {}
                            Some(Value::Set {
                                members,
                                overflowed,
                            }) => {
                                any_overflowed |= *overflowed;
                                union.extend(members);
                            }
                            Some(_) => return Err(wrong_type(key, "set")),
                        }
                    }
                    if any_overflowed {
                        SET_OVERFLOWED
                    } else {
                        union.len() as u64
                    }
                }
            };
            values.push(value);
        }
        Ok(values)
    }

    async fn get(&self, key: &Key, now: Timestamp) -> Result<Option<Vec<u8>>, StoreError> {
        let mut map = self.lock();
        live(&mut map, key, now)
            .map(|entry| encode(key, &entry.value))
            .transpose()
    }

    async fn set(
        &self,
        key: &Key,
        value: &[u8],
        expire_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        self.lock().insert(
            key.clone(),
            Entry {
                value: Value::Bytes(value.to_vec()),
                expire_at,
            },
        );
        Ok(())
    }

    async fn set_if_absent(
        &self,
        key: &Key,
        value: &[u8],
        expire_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Vec<u8>, StoreError> {
        let mut map = self.lock();
        if let Some(entry) = live(&mut map, key, now) {
            return encode(key, &entry.value);
        }
        map.insert(
            key.clone(),
            Entry {
                value: Value::Bytes(value.to_vec()),
                expire_at,
            },
        );
        Ok(value.to_vec())
    }

    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut map = self.lock();
        let current = live(&mut map, key, now)
            .map(|entry| encode(key, &entry.value))
            .transpose()?;
        if current.as_deref() != expected {
            return Ok(false);
        }
        match new {
            Some(value) => {
                map.insert(
                    key.clone(),
                    Entry {
                        value: Value::Bytes(value.to_vec()),
                        expire_at: None,
                    },
                );
            }
            None => {
                map.remove(key);
            }
        }
        Ok(true)
    }

    async fn delete(&self, key: &Key) -> Result<(), StoreError> {
        self.lock().remove(key);
        Ok(())
    }

    async fn scan(
        &self,
        cursor: &ScanCursor,
        limit: usize,
        now: Timestamp,
    ) -> Result<(Vec<StoreEntry>, Option<ScanCursor>), StoreError> {
        // Keys in order, resuming after the cursor's key: stable while the map changes.
        let map = self.lock();
        let mut keys: Vec<&Key> = map
            .iter()
            .filter(|(key, entry)| entry.is_live(now) && key.as_str() > cursor.0.as_str())
            .map(|(key, _)| key)
            .collect();
        keys.sort_unstable();
        keys.truncate(limit.max(1));
        let entries: Vec<StoreEntry> = keys
            .iter()
            .map(|&key| {
                let entry = &map[key];
                StoreEntry {
                    key: key.clone(),
                    value: match &entry.value {
                        Value::Counter(n) => EntryValue::Counter(*n),
                        Value::Sketch(sketch) => EntryValue::Sketch(sketch.to_redis_bytes()),
                        Value::Set {
                            members,
                            overflowed,
                        } => {
                            let mut members: Vec<[u8; 16]> = members.iter().copied().collect();
                            members.sort_unstable();
                            EntryValue::Set {
                                members,
                                overflowed: *overflowed,
                            }
                        }
                        Value::Bytes(bytes) => EntryValue::from_stored_bytes(key, bytes.clone()),
                    },
                    expire_at: entry.expire_at,
                }
            })
            .collect();
        let next = (entries.len() >= limit.max(1)).then(|| {
            ScanCursor(
                entries
                    .last()
                    .map(|e| e.key.to_string())
                    .unwrap_or_default(),
            )
        });
        Ok((entries, next))
    }

    async fn restore(&self, entries: &[StoreEntry]) -> Result<(), StoreError> {
        let mut decoded = Vec::with_capacity(entries.len());
        let mut removed = Vec::new();
        for entry in entries {
            let value = match &entry.value {
                EntryValue::Counter(n) => Value::Counter(*n),
                EntryValue::Set { members, .. } if members.is_empty() => {
                    removed.push(entry.key.clone());
                    continue;
                }
                EntryValue::Set {
                    members,
                    overflowed,
                } => Value::Set {
                    members: members.iter().copied().collect(),
                    overflowed: *overflowed,
                },
                EntryValue::Sketch(bytes) => {
                    Value::Sketch(Box::new(Hll::from_redis_bytes(bytes).map_err(|error| {
                        StoreError::Corrupt {
                            key: entry.key.to_string(),
                            message: error.to_string(),
                        }
                    })?))
                }
                EntryValue::Bytes(bytes) => Value::Bytes(bytes.clone()),
            };
            decoded.push((
                entry.key.clone(),
                Entry {
                    value,
                    expire_at: entry.expire_at,
                },
            ));
        }
        let mut map = self.lock();
        for key in &removed {
            map.remove(key);
        }
        map.extend(decoded);
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A value as Redis `GET` would return it: counters as decimal text, sketches as HYLL
/// bytes; a set has no such form (Redis answers `WRONGTYPE`).
fn encode(key: &Key, value: &Value) -> Result<Vec<u8>, StoreError> {
    match value {
        Value::Counter(n) => Ok(n.to_string().into_bytes()),
        Value::Sketch(sketch) => Ok(sketch.to_redis_bytes()),
        Value::Set { .. } => Err(wrong_type(key, "string, not a set")),
        Value::Bytes(bytes) => Ok(bytes.clone()),
    }
}
