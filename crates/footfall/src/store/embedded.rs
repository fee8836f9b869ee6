//! The embedded store: durable in one local file, for a single `footfall serve` without
//! Redis.
//!
//! # Why redb
//!
//! [redb](https://docs.rs/redb) is pure Rust (no C toolchain, no `unsafe` of ours), keeps
//! the whole database in one file, is ACID with copy-on-write B-trees (a commit never
//! overwrites live pages, so a crash leaves the last committed tree intact), locks the
//! file against a second writer, and is actively maintained with a stable file format
//! since 2.0. SQLite would need C and a schema for a key-value job; sled is unmaintained;
//! fjall/LSM engines trade read latency and file count for write throughput we do not
//! need (writes arrive in batches).
//!
//! # Durability
//!
//! Every successful [`Store::apply`], [`Store::set`], [`Store::set_if_absent`],
//! [`Store::delete`] and [`Store::restore`] is one redb write transaction committed with
//! [`redb::Durability::Immediate`]: the commit `fsync`s the file (twice: data, then the
//! header that points at it) before the call returns. A `kill -9` or power loss after the
//! call returned loses nothing; one during the call loses that call's whole transaction
//! and nothing else (a batch is atomic here, which is stronger than the trait asks). An
//! fsync costs about a millisecond on an SSD, far more on a spinning disk, so callers
//! batch hits (the server's write-behind buffer) to keep commits few; see the
//! `embedded_store` benchmark for the figures.
//!
//! redb is synchronous. Each call runs on Tokio's blocking pool
//! ([`tokio::task::spawn_blocking`]) so a long commit never stalls the async executor;
//! outside a Tokio runtime (a plain `block_on`), the call runs inline instead of panicking.
//!
//! # Layout
//!
//! - `entries`: key → record. A record is a one-byte kind (counter, sketch, bytes, set),
//!   the deadline (a flag and, when set, the instant in nanoseconds since the Unix epoch,
//!   so deadlines round-trip exactly) and the value: counters as 8 little-endian bytes,
//!   sketches as Redis HyperLogLog bytes (so they move bit for bit to and from Redis),
//!   bytes as given, bounded sets as an overflow flag byte (0 or 1) followed by the
//!   members, 16 bytes each, sorted and distinct (so a set has one encoding).
//! - `expiry`: (deadline, key) → (). Every record with a deadline has exactly one row
//!   here, so [`EmbeddedStore::purge_expired`] is a range walk from the oldest deadline up
//!   to `now`, not a scan of the whole table. Each [`Store::apply`] also purges a bounded
//!   number of expired entries in its own transaction, so visit markers and minute
//!   buckets do not make the file grow without bound even if nobody calls the purge.
//!   Freed pages are reused by redb; the file itself does not shrink.
//! - `meta`: the layout version, checked on open. Version 2 added the set kind; a
//!   version 1 file is a valid version 2 file, so opening one upgrades its version in
//!   place, while a build that reads only version 1 refuses the upgraded file at open
//!   rather than failing later on a record kind it does not know.
//!
//! Reads ignore expired entries whether or not they have been purged yet, exactly as the
//! memory store does.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;
use redb::{
    Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, Table, TableDefinition,
    WriteTransaction,
};

use super::{
    ApplyReport, Entry, EntryValue, Read, SET_OVERFLOWED, ScanCursor, SetAdd, Store, StoreError,
    VisitGroup, WriteBatch,
};
use crate::keys::Key;
use crate::sketch::Hll;

/// The name of the database file inside the store's directory.
pub const FILE_NAME: &str = "footfall.redb";

/// The layout version written to `meta`; bumped on any change of the record encoding or
/// tables (2: the set record kind).
const LAYOUT_VERSION: u64 = 2;

/// Layout versions this build opens and upgrades to [`LAYOUT_VERSION`] in place, because
/// their files are valid files of the current layout.
const UPGRADABLE_LAYOUT_VERSIONS: &[u64] = &[1];

const ENTRIES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("entries");
const EXPIRY: TableDefinition<'_, (i128, &str), ()> = TableDefinition::new("expiry");
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");

/// Expired entries an [`Store::apply`] removes beyond its own size. A batch creates at most
/// one visit marker per hit, so purging as many as the batch touched plus this margin
/// keeps pace with creation while bounding the extra work of any one commit.
const PURGE_MARGIN_PER_APPLY: usize = 256;

/// Expired entries one purge transaction removes; keeps the write lock (and so the
/// latency of concurrent applies) short when a large backlog is purged.
const PURGE_CHUNK: usize = 10_000;

/// A store in one redb file. Cheap to share behind an `Arc`; all handles of one
/// [`EmbeddedStore`] share one open database.
#[derive(Clone)]
pub struct EmbeddedStore {
    database: Arc<Database>,
    path: Arc<PathBuf>,
}

impl fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens the store in `dir`, creating the directory and the database file
    /// ([`FILE_NAME`]) when absent.
    ///
    /// Fails with [`StoreError::Locked`] when the file is already open, by another process
    /// or by another `EmbeddedStore` in this one (redb holds an exclusive lock on the file
    /// while it is open), and with [`StoreError::Config`] when the file was written by an
    /// incompatible version of this module.
    ///
    /// Opening is synchronous: it may recover a file that was not closed cleanly, which
    /// reads the whole file. Call it at startup, or inside `spawn_blocking`.
    pub fn open(dir: &Path) -> Result<EmbeddedStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|error| StoreError::Backend {
            message: format!("cannot create the store directory {}", dir.display()),
            source: Some(Box::new(error)),
        })?;
        let path = dir.join(FILE_NAME);
        let database = match Database::create(&path) {
            Ok(database) => database,
            Err(DatabaseError::DatabaseAlreadyOpen) => {
                return Err(StoreError::Locked(format!(
                    "{} is open in another process (or another handle in this one)",
                    path.display()
                )));
            }
            Err(error) => {
                return Err(StoreError::Backend {
                    message: format!("cannot open {}", path.display()),
                    source: Some(Box::new(error)),
                });
            }
        };
        initialise(&database, &path)?;
        // redb fsyncs the file, not the directory entry naming it: without this, a power
        // loss soon after the first open could lose a freshly created file along with
        // commits already acknowledged into it. (A `kill -9` cannot: the entry is in the
        // page cache.)
        #[cfg(unix)]
        std::fs::File::open(dir)
            .and_then(|directory| directory.sync_all())
            .map_err(|error| StoreError::Backend {
                message: format!("cannot sync the store directory {}", dir.display()),
                source: Some(Box::new(error)),
            })?;
        Ok(EmbeddedStore {
            database: Arc::new(database),
            path: Arc::new(path),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes every entry whose deadline is at or before `now`, in transactions of at most
    /// 10,000 entries (so concurrent applies wait briefly), and returns how many it
    /// removed. Reads already ignore
    /// expired entries; purging frees their space for reuse.
    pub async fn purge_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        let mut removed_total = 0u64;
        loop {
            let removed = self
                .run(move |database| write(database, |tables| purge(tables, now, PURGE_CHUNK)))
                .await?;
            removed_total += removed as u64;
            if removed < PURGE_CHUNK {
                return Ok(removed_total);
            }
        }
    }

    /// Runs `job` on the blocking pool when inside a Tokio runtime, inline otherwise.
    async fn run<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let database = Arc::clone(&self.database);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime
                .spawn_blocking(move || job(&database))
                .await
                .map_err(|error| StoreError::Backend {
                    message: "an embedded store task failed".to_owned(),
                    source: Some(Box::new(error)),
                })?,
            Err(_) => job(&database),
        }
    }
}

/// Creates the tables and checks the layout version.
fn initialise(database: &Database, path: &Path) -> Result<(), StoreError> {
    write(database, |tables| {
        let mut meta = tables.transaction.open_table(META).map_err(backend)?;
        let stored = meta
            .get("layout")
            .map_err(backend)?
            .map(|guard| guard.value());
        match stored {
            None => {
                meta.insert("layout", LAYOUT_VERSION).map_err(backend)?;
                Ok(())
            }
            Some(old) if UPGRADABLE_LAYOUT_VERSIONS.contains(&old) => {
                meta.insert("layout", LAYOUT_VERSION).map_err(backend)?;
                Ok(())
            }
            Some(LAYOUT_VERSION) => Ok(()),
            Some(other) => Err(StoreError::Config(format!(
                "{} has layout version {other}; this build reads version {LAYOUT_VERSION}",
                path.display()
            ))),
        }
    })
}

fn backend(error: impl Into<redb::Error>) -> StoreError {
    let error: redb::Error = error.into();
    StoreError::Backend {
        message: error.to_string(),
        source: Some(Box::new(error)),
    }
}

fn wrong_type(key: &str, expected: &str) -> StoreError {
    StoreError::Corrupt {
        key: key.to_owned(),
        message: format!("expected a {expected}"),
    }
}

// ---------------------------------------------------------------------------------------
// Records.

const KIND_COUNTER: u8 = 1;
const KIND_SKETCH: u8 = 2;
const KIND_BYTES: u8 = 3;
const KIND_SET: u8 = 4;

/// A decoded record of the `entries` table.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Record {
    value: Value,
    /// Nanoseconds since the Unix epoch.
    deadline: Option<i128>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Value {
    Counter(u64),
    /// Redis HyperLogLog bytes, as stored.
    Sketch(Vec<u8>),
    /// Members sorted and distinct.
    Set {
        members: Vec<[u8; 16]>,
        overflowed: bool,
    },
    Bytes(Vec<u8>),
}

impl Record {
    fn is_live(&self, now: i128) -> bool {
        self.deadline.is_none_or(|deadline| deadline > now)
    }

    fn encode(&self) -> Vec<u8> {
        let (kind, payload): (u8, &[u8]) = match &self.value {
            Value::Counter(_) => (KIND_COUNTER, &[]),
            Value::Sketch(bytes) => (KIND_SKETCH, bytes),
            Value::Set { .. } => (KIND_SET, &[]),
            Value::Bytes(bytes) => (KIND_BYTES, bytes),
        };
        let mut out = Vec::with_capacity(2 + 16 + 8 + payload.len());
        out.push(kind);
        match self.deadline {
            None => out.push(0),
            Some(deadline) => {
                out.push(1);
                out.extend_from_slice(&deadline.to_le_bytes());
            }
        }
        match &self.value {
            Value::Counter(n) => out.extend_from_slice(&n.to_le_bytes()),
            Value::Set {
                members,
                overflowed,
            } => {
                out.reserve(1 + members.len() * 16);
                out.push(u8::from(*overflowed));
                for member in members {
                    out.extend_from_slice(member);
                }
            }
            _ => out.extend_from_slice(payload),
        }
        out
    }

    fn decode(key: &str, bytes: &[u8]) -> Result<Record, StoreError> {
        let corrupt = |message: &str| StoreError::Corrupt {
            key: key.to_owned(),
            message: format!("embedded record: {message}"),
        };
        let (deadline, payload) =
            decode_header(bytes).ok_or_else(|| corrupt("truncated header"))?;
        let value = match bytes[0] {
            KIND_COUNTER => {
                let raw: [u8; 8] = payload
                    .try_into()
                    .map_err(|_| corrupt("counter is not 8 bytes"))?;
                Value::Counter(u64::from_le_bytes(raw))
            }
            KIND_SKETCH => Value::Sketch(payload.to_vec()),
            KIND_BYTES => Value::Bytes(payload.to_vec()),
            KIND_SET => decode_set(payload).ok_or_else(|| corrupt("malformed set"))?,
            other => return Err(corrupt(&format!("unknown kind {other}"))),
        };
        Ok(Record { value, deadline })
    }

    /// The value as Redis `GET` would return it; a set has no such form (Redis answers
    /// `WRONGTYPE`).
    fn get_bytes(self, key: &str) -> Result<Vec<u8>, StoreError> {
        match self.value {
            Value::Counter(n) => Ok(n.to_string().into_bytes()),
            Value::Sketch(bytes) | Value::Bytes(bytes) => Ok(bytes),
            Value::Set { .. } => Err(wrong_type(key, "string, not a set")),
        }
    }
}

/// A set record's payload: the overflow flag, then sorted distinct 16-byte members.
/// Anything else (a bad flag, a ragged tail, members out of order) is `None`, so a
/// damaged record is reported rather than half-read.
fn decode_set(payload: &[u8]) -> Option<Value> {
    let (flag, rest) = payload.split_first()?;
    let overflowed = match flag {
        0 => false,
        1 => true,
        _ => return None,
    };
    let (chunks, tail) = rest.as_chunks::<16>();
    if !tail.is_empty() || chunks.is_empty() {
        return None;
    }
    if chunks.windows(2).any(|pair| pair[0] >= pair[1]) {
        return None;
    }
    Some(Value::Set {
        members: chunks.to_vec(),
        overflowed,
    })
}

/// The deadline and payload of an encoded record, or `None` when the header is cut short.
fn decode_header(bytes: &[u8]) -> Option<(Option<i128>, &[u8])> {
    let (_kind, rest) = bytes.split_first()?;
    let (flag, rest) = rest.split_first()?;
    match flag {
        0 => Some((None, rest)),
        1 => {
            let (raw, payload) = rest.split_first_chunk::<16>()?;
            Some((Some(i128::from_le_bytes(*raw)), payload))
        }
        _ => None,
    }
}

fn nanos(at: Timestamp) -> i128 {
    at.as_nanosecond()
}

fn timestamp(key: &str, deadline: Option<i128>) -> Result<Option<Timestamp>, StoreError> {
    deadline
        .map(|nanos| {
            Timestamp::from_nanosecond(nanos).map_err(|error| StoreError::Corrupt {
                key: key.to_owned(),
                message: format!("deadline out of range: {error}"),
            })
        })
        .transpose()
}

// ---------------------------------------------------------------------------------------
// Transactions.

/// The tables of one write transaction.
struct Tables<'t> {
    transaction: &'t WriteTransaction,
    entries: Table<'t, &'static str, &'static [u8]>,
    expiry: Table<'t, (i128, &'static str), ()>,
}

/// Runs `job` in one write transaction, committed durably when it succeeds and aborted
/// (leaving the file as it was) when it fails.
fn write<T>(
    database: &Database,
    job: impl FnOnce(&mut Tables<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut transaction = database.begin_write().map_err(backend)?;
    // Immediate is redb's default; set it anyway because acknowledging only what is on
    // disk is this store's whole promise.
    transaction
        .set_durability(Durability::Immediate)
        .map_err(backend)?;
    let result = {
        let mut tables = Tables {
            transaction: &transaction,
            entries: transaction.open_table(ENTRIES).map_err(backend)?,
            expiry: transaction.open_table(EXPIRY).map_err(backend)?,
        };
        job(&mut tables)?
    };
    transaction.commit().map_err(backend)?;
    Ok(result)
}

impl Tables<'_> {
    /// The record at `key`, expired or not.
    fn any(&self, key: &str) -> Result<Option<Record>, StoreError> {
        match self.entries.get(key).map_err(backend)? {
            None => Ok(None),
            Some(guard) => Record::decode(key, guard.value()).map(Some),
        }
    }

    /// The record at `key` when live at `now`.
    fn live(&self, key: &str, now: i128) -> Result<Option<Record>, StoreError> {
        Ok(self.any(key)?.filter(|record| record.is_live(now)))
    }

    fn exists_live(&self, key: &str, now: i128) -> Result<bool, StoreError> {
        // Only the header is needed to know whether a marker is open.
        match self.entries.get(key).map_err(backend)? {
            None => Ok(false),
            Some(guard) => {
                let (deadline, _) =
                    decode_header(guard.value()).ok_or_else(|| StoreError::Corrupt {
                        key: key.to_owned(),
                        message: "embedded record: truncated header".to_owned(),
                    })?;
                Ok(deadline.is_none_or(|deadline| deadline > now))
            }
        }
    }

    /// Writes `record` at `key` and keeps the expiry index in step.
    fn put(&mut self, key: &str, record: &Record) -> Result<(), StoreError> {
        let encoded = record.encode();
        let old_deadline = self
            .entries
            .insert(key, encoded.as_slice())
            .map_err(backend)?
            .and_then(|old| decode_header(old.value()).and_then(|(deadline, _)| deadline));
        if old_deadline != record.deadline {
            if let Some(old) = old_deadline {
                self.expiry.remove((old, key)).map_err(backend)?;
            }
            if let Some(new) = record.deadline {
                self.expiry.insert((new, key), ()).map_err(backend)?;
            }
        }
        Ok(())
    }

    fn remove(&mut self, key: &str) -> Result<(), StoreError> {
        let old_deadline = self
            .entries
            .remove(key)
            .map_err(backend)?
            .and_then(|old| decode_header(old.value()).and_then(|(deadline, _)| deadline));
        if let Some(old) = old_deadline {
            self.expiry.remove((old, key)).map_err(backend)?;
        }
        Ok(())
    }

    /// A counter's live value; a decimal string set with `set` counts too (baselines), as
    /// in Redis.
    fn add_to_counter(
        &mut self,
        key: &str,
        by: u64,
        deadline: Option<i128>,
        now: i128,
    ) -> Result<(), StoreError> {
        // A live counter keeps its deadline (set when the write created it).
        let existing = self.live(key, now)?;
        let deadline = existing.as_ref().map_or(deadline, |record| record.deadline);
        let current = counter_of(key, existing)?;
        self.put(
            key,
            &Record {
                value: Value::Counter(current.saturating_add(by)),
                deadline,
            },
        )
    }

    fn apply_visit_group(&mut self, group: &VisitGroup, now: i128) -> Result<u64, StoreError> {
        let mut started = 0u64;
        for touch in &group.sessions {
            let open = self.exists_live(touch.key.as_str(), now)?
                || match &touch.previous_key {
                    Some(previous) => self.exists_live(previous.as_str(), now)?,
                    None => false,
                };
            if !open {
                started += 1;
            }
            self.put(
                touch.key.as_str(),
                &Record {
                    value: Value::Bytes(Vec::new()),
                    deadline: Some(nanos(touch.expire_at)),
                },
            )?;
        }
        if started > 0 {
            for (key, expire_at) in &group.counters {
                self.add_to_counter(key.as_str(), started, expire_at.map(nanos), now)?;
            }
        }
        Ok(started)
    }
}

fn counter_of(key: &str, record: Option<Record>) -> Result<u64, StoreError> {
    match record.map(|record| record.value) {
        None => Ok(0),
        Some(Value::Counter(n)) => Ok(n),
        Some(Value::Bytes(bytes)) => std::str::from_utf8(&bytes)
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| wrong_type(key, "counter")),
        Some(Value::Sketch(_) | Value::Set { .. }) => Err(wrong_type(key, "counter")),
    }
}

/// Adds a [`SetAdd`]'s elements to sorted distinct `members` as its contract says;
/// returns the new overflow mark and whether anything changed.
fn add_to_set(members: &mut Vec<[u8; 16]>, mut overflowed: bool, add: &SetAdd) -> (bool, bool) {
    if overflowed {
        // Its count is already known to be inexact: growing it would only cost space.
        return (true, false);
    }
    let cap = add.cap.max(1);
    let mut changed = false;
    for element in &add.elements {
        match members.binary_search(element) {
            Ok(_) => {}
            Err(at) if members.len() < cap => {
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

fn decode_sketch(key: &str, bytes: &[u8]) -> Result<Hll, StoreError> {
    Hll::from_redis_bytes(bytes).map_err(|error| StoreError::Corrupt {
        key: key.to_owned(),
        message: error.to_string(),
    })
}

/// Removes up to `budget` entries whose deadline is at or before `now`; returns how many
/// index rows it consumed.
fn purge(tables: &mut Tables<'_>, now: Timestamp, budget: usize) -> Result<usize, StoreError> {
    let now = nanos(now);
    let mut due: Vec<(i128, String)> = Vec::new();
    for row in tables.expiry.iter().map_err(backend)? {
        let (row_key, _) = row.map_err(backend)?;
        let (deadline, key) = row_key.value();
        if deadline > now || due.len() >= budget {
            break;
        }
        due.push((deadline, key.to_owned()));
    }
    for (deadline, key) in &due {
        tables
            .expiry
            .remove((*deadline, key.as_str()))
            .map_err(backend)?;
        // The index row may be stale only if the record was rewritten without moving its
        // row, which `put` never does; checking the record's own deadline keeps a live
        // record safe anyway.
        let record_deadline = match tables.entries.get(key.as_str()).map_err(backend)? {
            None => continue,
            Some(guard) => decode_header(guard.value()).and_then(|(deadline, _)| deadline),
        };
        if record_deadline == Some(*deadline) {
            tables.entries.remove(key.as_str()).map_err(backend)?;
        }
    }
    Ok(due.len())
}

fn apply_batch(tables: &mut Tables<'_>, batch: &WriteBatch) -> Result<ApplyReport, StoreError> {
    let now = nanos(batch.now);
    for add in &batch.counters {
        tables.add_to_counter(add.key.as_str(), add.by, add.expire_at.map(nanos), now)?;
    }
    for add in &batch.sketches {
        let key = add.key.as_str();
        let deadline = add.expire_at.map(nanos);
        let (mut sketch, old_deadline) = match tables.live(key, now)? {
            None => (Hll::new(), None),
            Some(Record {
                value: Value::Sketch(bytes),
                deadline,
            }) => (decode_sketch(key, &bytes)?, Some(deadline)),
            Some(_) => return Err(wrong_type(key, "sketch")),
        };
        let mut changed = old_deadline.is_none();
        for element in &add.elements {
            changed |= sketch.add(element);
        }
        // An unchanged sketch with an unchanged deadline is not rewritten: copy-on-write
        // makes every rewrite of a 12 KiB dense sketch cost pages.
        if changed || old_deadline != Some(deadline) {
            tables.put(
                key,
                &Record {
                    value: Value::Sketch(sketch.to_redis_bytes()),
                    deadline,
                },
            )?;
        }
    }
    for add in &batch.sets {
        let key = add.key.as_str();
        let deadline = add.expire_at.map(nanos);
        let (mut members, overflowed, old_deadline) = match tables.live(key, now)? {
            None => (Vec::new(), false, None),
            Some(Record {
                value:
                    Value::Set {
                        members,
                        overflowed,
                    },
                deadline,
            }) => (members, overflowed, Some(deadline)),
            Some(_) => return Err(wrong_type(key, "set")),
        };
        let (overflowed, changed) = add_to_set(&mut members, overflowed, add);
        // An empty set cannot exist (as in Redis), so adding nothing creates nothing;
        // an unchanged set with an unchanged deadline is not rewritten (copy-on-write).
        if members.is_empty() || !(changed || old_deadline != Some(deadline)) {
            continue;
        }
        tables.put(
            key,
            &Record {
                value: Value::Set {
                    members,
                    overflowed,
                },
                deadline,
            },
        )?;
    }
    let mut report = ApplyReport::default();
    for group in &batch.visits {
        report.visits_started += tables.apply_visit_group(group, now)?;
    }
    let touched = batch.counters.len()
        + batch.sketches.len()
        + batch.sets.len()
        + batch
            .visits
            .iter()
            .map(|group| group.sessions.len())
            .sum::<usize>();
    purge(tables, batch.now, touched + PURGE_MARGIN_PER_APPLY)?;
    Ok(report)
}

fn read_all(database: &Database, reads: &[Read], now: Timestamp) -> Result<Vec<u64>, StoreError> {
    let transaction = database.begin_read().map_err(backend)?;
    let entries = transaction.open_table(ENTRIES).map_err(backend)?;
    let now = nanos(now);
    let live = |key: &Key| -> Result<Option<Record>, StoreError> {
        match entries.get(key.as_str()).map_err(backend)? {
            None => Ok(None),
            Some(guard) => Ok(Some(Record::decode(key.as_str(), guard.value())?)
                .filter(|record| record.is_live(now))),
        }
    };
    let mut values = Vec::with_capacity(reads.len());
    for read in reads {
        let value = match read {
            Read::Counter(key) => counter_of(key.as_str(), live(key)?)?,
            Read::CounterSum(keys) => {
                let mut sum = 0u64;
                for key in keys {
                    sum = sum.saturating_add(counter_of(key.as_str(), live(key)?)?);
                }
                sum
            }
            Read::Cardinality(keys) => {
                let mut sketches = Vec::with_capacity(keys.len());
                for key in keys {
                    match live(key)?.map(|record| record.value) {
                        None => {}
                        Some(Value::Sketch(bytes)) => {
                            sketches.push(decode_sketch(key.as_str(), &bytes)?);
                        }
                        Some(_) => return Err(wrong_type(key.as_str(), "sketch")),
                    }
                }
                let refs: Vec<&Hll> = sketches.iter().collect();
                Hll::count_union(&refs)
            }
            Read::SetUnion(keys) => {
                let mut union: std::collections::HashSet<[u8; 16]> =
                    std::collections::HashSet::new();
                let mut any_overflowed = false;
                for key in keys {
                    match live(key)?.map(|record| record.value) {
                        None => {}
                        Some(Value::Set {
                            members,
                            overflowed,
                        }) => {
                            any_overflowed |= overflowed;
                            union.extend(members);
                        }
                        Some(_) => return Err(wrong_type(key.as_str(), "set")),
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

fn scan_page(
    database: &Database,
    after: &str,
    limit: usize,
    now: Timestamp,
) -> Result<(Vec<Entry>, Option<ScanCursor>), StoreError> {
    let limit = limit.max(1);
    let transaction = database.begin_read().map_err(backend)?;
    let entries = transaction.open_table(ENTRIES).map_err(backend)?;
    let now = nanos(now);
    let mut page = Vec::with_capacity(limit.min(4096));
    let range = entries
        .range::<&str>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
        .map_err(backend)?;
    for row in range {
        let (raw_key, raw_value) = row.map_err(backend)?;
        let raw_key = raw_key.value();
        // Keys outside the schema are never copied.
        let Some(key) = Key::parse(raw_key) else {
            continue;
        };
        let record = Record::decode(raw_key, raw_value.value())?;
        if !record.is_live(now) {
            continue;
        }
        let expire_at = timestamp(raw_key, record.deadline)?;
        let value = match record.value {
            Value::Counter(n) => EntryValue::Counter(n),
            Value::Sketch(bytes) => EntryValue::Sketch(bytes),
            Value::Set {
                members,
                overflowed,
            } => EntryValue::Set {
                members,
                overflowed,
            },
            Value::Bytes(bytes) => EntryValue::from_stored_bytes(&key, bytes),
        };
        page.push(Entry {
            key,
            value,
            expire_at,
        });
        if page.len() >= limit {
            break;
        }
    }
    // Like the memory store: a full page always carries a cursor, so the caller learns
    // that the scan is over from an empty or short page.
    let next = (page.len() >= limit).then(|| {
        ScanCursor(
            page.last()
                .map(|entry| entry.key.to_string())
                .unwrap_or_default(),
        )
    });
    Ok((page, next))
}

impl Store for EmbeddedStore {
    async fn apply(&self, batch: &WriteBatch) -> Result<ApplyReport, StoreError> {
        if batch.is_empty() {
            return Ok(ApplyReport::default());
        }
        // The blocking pool needs owned data; a clone costs microseconds next to a commit.
        let batch = batch.clone();
        self.run(move |database| write(database, |tables| apply_batch(tables, &batch)))
            .await
    }

    async fn read(&self, reads: &[Read], now: Timestamp) -> Result<Vec<u64>, StoreError> {
        let reads = reads.to_vec();
        self.run(move |database| read_all(database, &reads, now))
            .await
    }

    async fn get(&self, key: &Key, now: Timestamp) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.clone();
        self.run(move |database| {
            let transaction = database.begin_read().map_err(backend)?;
            let entries = transaction.open_table(ENTRIES).map_err(backend)?;
            let Some(guard) = entries.get(key.as_str()).map_err(backend)? else {
                return Ok(None);
            };
            let record = Record::decode(key.as_str(), guard.value())?;
            if !record.is_live(nanos(now)) {
                return Ok(None);
            }
            record.get_bytes(key.as_str()).map(Some)
        })
        .await
    }

    async fn set(
        &self,
        key: &Key,
        value: &[u8],
        expire_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        let key = key.clone();
        let record = Record {
            value: Value::Bytes(value.to_vec()),
            deadline: expire_at.map(nanos),
        };
        self.run(move |database| write(database, |tables| tables.put(key.as_str(), &record)))
            .await
    }

    async fn set_if_absent(
        &self,
        key: &Key,
        value: &[u8],
        expire_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Vec<u8>, StoreError> {
        let key = key.clone();
        let record = Record {
            value: Value::Bytes(value.to_vec()),
            deadline: expire_at.map(nanos),
        };
        // One write transaction at a time: the check and the insert cannot interleave with
        // another caller's, so racing callers agree.
        self.run(move |database| {
            write(database, |tables| {
                if let Some(existing) = tables.live(key.as_str(), nanos(now))? {
                    return existing.get_bytes(key.as_str());
                }
                tables.put(key.as_str(), &record)?;
                record.get_bytes(key.as_str())
            })
        })
        .await
    }

    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let key = key.clone();
        let expected = expected.map(<[u8]>::to_vec);
        let record = new.map(|value| Record {
            value: Value::Bytes(value.to_vec()),
            deadline: None,
        });
        // The read and the write share one write transaction, which redb serialises with
        // every other writer: nothing can change the value in between.
        self.run(move |database| {
            write(database, |tables| {
                let current = tables
                    .live(key.as_str(), nanos(now))?
                    .map(|r| r.get_bytes(key.as_str()))
                    .transpose()?;
                if current != expected {
                    return Ok(false);
                }
                match &record {
                    Some(record) => tables.put(key.as_str(), record)?,
                    None => tables.remove(key.as_str())?,
                }
                Ok(true)
            })
        })
        .await
    }

    async fn delete(&self, key: &Key) -> Result<(), StoreError> {
        let key = key.clone();
        self.run(move |database| write(database, |tables| tables.remove(key.as_str())))
            .await
    }

    async fn scan(
        &self,
        cursor: &ScanCursor,
        limit: usize,
        now: Timestamp,
    ) -> Result<(Vec<Entry>, Option<ScanCursor>), StoreError> {
        let after = cursor.0.clone();
        self.run(move |database| scan_page(database, &after, limit, now))
            .await
    }

    async fn restore(&self, entries: &[Entry]) -> Result<(), StoreError> {
        // `None`: remove the key (an empty set cannot exist).
        let mut records: Vec<(Key, Option<Record>)> = Vec::with_capacity(entries.len());
        for entry in entries {
            let value = match &entry.value {
                EntryValue::Counter(n) => Value::Counter(*n),
                EntryValue::Set { members, .. } if members.is_empty() => {
                    records.push((entry.key.clone(), None));
                    continue;
                }
                EntryValue::Set {
                    members,
                    overflowed,
                } => {
                    // Sorted and distinct whatever the caller gave: one encoding per set.
                    let mut members = members.clone();
                    members.sort_unstable();
                    members.dedup();
                    Value::Set {
                        members,
                        overflowed: *overflowed,
                    }
                }
                EntryValue::Sketch(bytes) => {
                    // Refuse what could not be read back, but keep the bytes as given so
                    // sketches move bit for bit.
                    decode_sketch(entry.key.as_str(), bytes)?;
                    Value::Sketch(bytes.clone())
                }
                EntryValue::Bytes(bytes) => Value::Bytes(bytes.clone()),
            };
            records.push((
                entry.key.clone(),
                Some(Record {
                    value,
                    deadline: entry.expire_at.map(nanos),
                }),
            ));
        }
        self.run(move |database| {
            write(database, |tables| {
                for (key, record) in &records {
                    match record {
                        Some(record) => tables.put(key.as_str(), record)?,
                        None => tables.remove(key.as_str())?,
                    }
                }
                Ok(())
            })
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run(|database| {
            let transaction = database.begin_read().map_err(backend)?;
            transaction.open_table(ENTRIES).map_err(backend)?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests;
