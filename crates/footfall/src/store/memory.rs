//! The in-memory store: for tests, benchmarks and single-process experiments.
//!
//! Its semantics are the shared [`engine`](super::engine)'s; this file only keeps
//! records in a map and makes each call all-or-nothing.

use std::sync::{Mutex, MutexGuard};

use foldhash::HashMap;
use jiff::Timestamp;

use super::engine::{self, Record, Tables, View};
use super::{ApplyReport, Entry, Read, ScanCursor, Store, StoreError, WriteBatch};
use crate::keys::Key;

/// A store held in process memory. Nothing survives the process.
///
/// One `std::sync::Mutex` guards the map: every operation is short and synchronous, and
/// the lock is never held across an `.await` (clippy's `await_holding_lock` checks it).
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<HashMap<Key, Record>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many entries are live at `now`.
    pub fn len(&self, now: Timestamp) -> usize {
        self.lock().values().filter(|r| r.is_live(now)).count()
    }

    /// True when no entry is live at `now`.
    pub fn is_empty(&self, now: Timestamp) -> bool {
        self.len(now) == 0
    }

    /// Drops every expired entry. Reads and writes ignore expired entries anyway; this
    /// bounds memory for long-running users.
    pub fn purge_expired(&self, now: Timestamp) {
        self.lock().retain(|_, record| record.is_live(now));
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Record>> {
        // A call's writes reach the map only after it succeeded (see `Transaction`), so a
        // panic never leaves a half-applied call behind and a poisoned map is consistent.
        self.records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `job` as one all-or-nothing transaction over the map.
    fn transaction<T>(
        &self,
        job: impl FnOnce(&mut Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut map = self.lock();
        let mut transaction = Transaction {
            map: &map,
            staged: HashMap::default(),
        };
        let result = job(&mut transaction)?;
        let staged = transaction.staged;
        for (key, record) in staged {
            match record {
                Some(record) => map.insert(key, record),
                None => map.remove(&key),
            };
        }
        Ok(result)
    }
}

impl View for HashMap<Key, Record> {
    fn visit<R>(&self, key: &Key, f: impl FnOnce(Option<&Record>) -> R) -> Result<R, StoreError> {
        Ok(f(self.get(key)))
    }
}

/// Writes staged over the map until the call succeeds: a call that fails half-way
/// (a wrong-type key in a batch) leaves the map as it was, as a redb transaction would.
struct Transaction<'m> {
    map: &'m HashMap<Key, Record>,
    /// `None`: removed.
    staged: HashMap<Key, Option<Record>>,
}

impl View for Transaction<'_> {
    fn visit<R>(&self, key: &Key, f: impl FnOnce(Option<&Record>) -> R) -> Result<R, StoreError> {
        Ok(match self.staged.get(key) {
            Some(staged) => f(staged.as_ref()),
            None => f(self.map.get(key)),
        })
    }
}

impl Tables for Transaction<'_> {
    fn put(&mut self, key: &Key, record: Record) -> Result<(), StoreError> {
        self.staged.insert(key.clone(), Some(record));
        Ok(())
    }

    fn remove(&mut self, key: &Key) -> Result<(), StoreError> {
        self.staged.insert(key.clone(), None);
        Ok(())
    }
}

impl Store for MemoryStore {
    async fn apply(&self, batch: &WriteBatch) -> Result<ApplyReport, StoreError> {
        self.transaction(|tables| engine::apply(tables, batch))
    }

    async fn read(&self, reads: &[Read], now: Timestamp) -> Result<Vec<u64>, StoreError> {
        engine::read(&*self.lock(), reads, now)
    }

    async fn get(&self, key: &Key, now: Timestamp) -> Result<Option<Vec<u8>>, StoreError> {
        engine::get(&*self.lock(), key, now)
    }

    async fn set(
        &self,
        key: &Key,
        value: &[u8],
        expire_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        self.transaction(|tables| engine::set(tables, key, value, expire_at))
    }

    async fn set_if_absent(
        &self,
        key: &Key,
        value: &[u8],
        expire_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Vec<u8>, StoreError> {
        self.transaction(|tables| engine::set_if_absent(tables, key, value, expire_at, now))
    }

    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.transaction(|tables| engine::compare_and_swap(tables, key, expected, new, now))
    }

    async fn delete(&self, keys: &[Key]) -> Result<(), StoreError> {
        self.transaction(|tables| keys.iter().try_for_each(|key| tables.remove(key)))
    }

    async fn scan(
        &self,
        cursor: &ScanCursor,
        limit: usize,
        now: Timestamp,
    ) -> Result<(Vec<Entry>, Option<ScanCursor>), StoreError> {
        // Keys in order, resuming after the cursor's key: stable while the map changes.
        let limit = limit.max(1);
        let map = self.lock();
        let mut keys: Vec<&Key> = map
            .iter()
            .filter(|(key, record)| record.is_live(now) && key.as_str() > cursor.0.as_str())
            .map(|(key, _)| key)
            .collect();
        keys.sort_unstable();
        keys.truncate(limit);
        let entries: Vec<Entry> = keys
            .iter()
            .map(|&key| engine::entry(key, &map[key]))
            .collect();
        // A full page always carries a cursor, so the caller learns that the scan is over
        // from an empty or short page.
        let next = (entries.len() >= limit).then(|| {
            ScanCursor(
                entries
                    .last()
                    .map(|e| e.key.to_string())
                    .unwrap_or_default(),
            )
        });
        Ok((entries, next))
    }

    async fn restore(&self, entries: &[Entry]) -> Result<(), StoreError> {
        self.transaction(|tables| engine::restore(tables, entries))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
