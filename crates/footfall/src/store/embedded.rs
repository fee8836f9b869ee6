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
//! redb is synchronous. Writes run on the store's own thread (see the `worker` module:
//! they are serialised anyway, and one thread keeps the memory their copies churn in
//! one allocator heap), reads on Tokio's blocking pool
//! ([`tokio::task::spawn_blocking`]), so a long commit never stalls the async executor;
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
//! - `visit_chunks`: open-visit markers, per site in sorted chunks of a few hundred,
//!   written by flushes; `markers`: per site, markers of another form (see the `markers`
//!   module: every hit moves one, so those changed lately are held in memory and merged
//!   into their chunks together, at every upkeep, about 10 s, or sooner when 200,000
//!   changes wait). A crash loses the marker changes since the last flush, never a hit.
//! - `journal`: row number → one applied batch, for the records its batches changed that
//!   are not in `entries` yet (see the `pending` module: a batch commits its journal row,
//!   the records it changed are held in memory and written to `entries` together every few
//!   seconds, in the transaction that empties the journal). Opening replays the journal.
//! - `meta`: the layout version, checked on open. Version 2 added the set kind; version 3
//!   moved visit markers from `entries` to `markers`; version 4 added the journal; version
//!   5 moved the usual markers from `markers` rows into `visit_chunks`. Older
//!   files are upgraded in place at open (a version 1 file is a valid version 2 file;
//!   version 2's markers are moved; a version 3 file has no journal yet),
//!   while a build that reads only an older version refuses the upgraded file at open
//!   rather than failing later on something it does not know.
//!
//! Reads ignore expired entries whether or not they have been purged yet, exactly as the
//! memory store does.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use jiff::Timestamp;
use redb::{
    Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, Table, TableDefinition,
    WriteTransaction,
};

use super::engine::{self, Record, Value, View};
use super::{ApplyReport, Entry, Read, ScanCursor, Store, StoreError, WriteBatch};
use crate::keys::Key;
use worker::Worker;

/// The name of the database file inside the store's directory.
pub const FILE_NAME: &str = "footfall.redb";

/// The layout version written to `meta`; bumped on any change of the record encoding or
/// tables (2: the set record kind; 3: visit markers in their own table; 4: the journal,
/// which an older build would ignore, losing the batches in it; 5: markers in chunks,
/// which an older build would not see, starting every open visit again).
const LAYOUT_VERSION: u64 = 5;

/// Layout versions this build opens and upgrades to [`LAYOUT_VERSION`] in place.
const UPGRADABLE_LAYOUT_VERSIONS: &[u64] = &[1, 2, 3, 4];

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

/// The memory redb may keep as a page cache. Its default (1 GiB) is a database server's
/// setting: with it the process grows by the pages every batch writes until the cache is
/// full. The hot working set is small (today's records of the active sites, the online
/// minutes: a few megabytes for a province's sites, and the records batches change are
/// held decoded in memory anyway, see the `pending` module), and the kernel's page cache
/// still holds the rest of the file, so 16 MiB keeps the service's memory steady and
/// small without reading from disk on the write path.
const CACHE_BYTES: usize = 16 * 1024 * 1024;

/// What an [`EmbeddedStore`] holds in memory beside its file
/// ([`EmbeddedStore::held_in_memory`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeldInMemory {
    /// Open-visit markers, about: one per open visit, in the file or changed in memory
    /// (see the module docs; one changed since the last flush may count twice, an
    /// expired one until a flush or sweep drops it).
    pub open_visits: usize,
    /// About the memory the markers changed since the last flush take, in bytes.
    pub marker_bytes: usize,
    /// Records batches changed since they were last written out.
    pub records: usize,
    /// About the memory those records take, in bytes.
    pub record_bytes: usize,
}

/// A store in one redb file. Cheap to share behind an `Arc`; all handles of one
/// [`EmbeddedStore`] share one open database.
#[derive(Clone)]
pub struct EmbeddedStore {
    shared: Arc<Shared>,
    path: Arc<PathBuf>,
    /// The thread its writes run on.
    worker: Arc<Worker>,
}

/// The open database and what is held in memory beside it.
struct Shared {
    database: Database,
    markers: Markers,
    pending: Pending,
    /// Held by every write transaction from its start until the records it changed are
    /// held in memory (after its commit), so the next one reads them: redb's own lock is
    /// released at the commit, a moment too early.
    writer: Mutex<()>,
}

impl Drop for Shared {
    /// The last handle is gone: write out the held records (so the next open has no
    /// journal to replay) and the markers that changed since the last flush (so a clean
    /// stop keeps every open visit).
    fn drop(&mut self) {
        // The read guard must be gone before the write-out takes the lock to write.
        let holding = !self.pending.read().is_empty();
        if holding && let Err(error) = write(self, |_| Ok(())) {
            // No logger in the library: say it where an operator's log collects stderr.
            // Nothing is lost: the journal holds it, and the next open replays it.
            eprintln!("footfall: writing out the held records failed: {error}");
        }
        if let Err(error) = flush(self, Timestamp::MIN, false) {
            // No logger in the library: say it where an operator's log collects stderr.
            eprintln!("footfall: the last flush of visit markers failed: {error}");
        }
    }
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
        Self::open_with(dir, Markers::default())
    }

    fn open_with(dir: &Path, markers: Markers) -> Result<EmbeddedStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|error| StoreError::Backend {
            message: format!("cannot create the store directory {}", dir.display()),
            source: Some(Box::new(error)),
        })?;
        let path = dir.join(FILE_NAME);
        let database = match Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
        {
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
        let shared = initialise(database, &path, markers)?;
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
            shared: Arc::new(shared),
            path: Arc::new(path),
            worker: Arc::new(Worker::start()?),
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
    ///
    /// It also flushes the visit markers changed since the last flush and sweeps a share
    /// of the stored ones for expired markers (see the module docs): the service's upkeep
    /// calls it about every 10 seconds.
    pub async fn purge_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        let mut removed_total = self
            .run_write(move |shared| {
                let purged = {
                    let _writer = shared.writer.lock().unwrap_or_else(PoisonError::into_inner);
                    shared.markers.purge(now)
                };
                Ok(purged + flush(shared, now, true)?.dropped)
            })
            .await? as u64;
        loop {
            let removed = self
                .run_write(move |shared| write(shared, |tables| purge(tables, now, PURGE_CHUNK)))
                .await?;
            removed_total += removed as u64;
            if removed < PURGE_CHUNK {
                return Ok(removed_total);
            }
        }
    }

    /// What the store holds in memory beside its file (for an operator's gauges).
    pub fn held_in_memory(&self) -> HeldInMemory {
        let held = self.shared.pending.read();
        HeldInMemory {
            open_visits: self.shared.markers.len(),
            marker_bytes: self.shared.markers.bytes(),
            records: held.len(),
            record_bytes: held.bytes(),
        }
    }

    /// Runs a write `job` on the store's writer thread (see the `worker` module) when
    /// inside a Tokio runtime, inline otherwise.
    async fn run_write<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Shared) -> Result<T, StoreError> + Send + 'static,
    {
        if tokio::runtime::Handle::try_current().is_err() {
            return job(&self.shared);
        }
        let shared = Arc::clone(&self.shared);
        // The job's handle is dropped when it returns, before the answer: a caller that
        // drops its last handle and opens the file again finds it closed.
        self.worker.run(move || job(&shared)).await
    }

    /// Runs a read `job` on the blocking pool when inside a Tokio runtime, inline
    /// otherwise.
    async fn run<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Shared) -> Result<T, StoreError> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime
                .spawn_blocking(move || job(&shared))
                .await
                .map_err(|error| StoreError::Backend {
                    message: "an embedded store task failed".to_owned(),
                    source: Some(Box::new(error)),
                })?,
            Err(_) => job(&self.shared),
        }
    }
}

/// Creates the tables, checks the layout version (upgrading an older file in place) and
/// loads the visit markers.
fn initialise(database: Database, path: &Path, markers: Markers) -> Result<Shared, StoreError> {
    let shared = Shared {
        database,
        markers,
        pending: Pending::default(),
        writer: Mutex::new(()),
    };
    write(&shared, |tables| {
        tables.transaction.open_table(MARKERS).map_err(backend)?;
        let mut meta = tables.transaction.open_table(META).map_err(backend)?;
        let stored = meta
            .get("layout")
            .map_err(backend)?
            .map(|guard| guard.value());
        match stored {
            None | Some(LAYOUT_VERSION) => {}
            Some(old) if UPGRADABLE_LAYOUT_VERSIONS.contains(&old) => {}
            Some(other) => {
                return Err(StoreError::Config(format!(
                    "{} has layout version {other}; this build reads version {LAYOUT_VERSION}",
                    path.display()
                )));
            }
        }
        meta.insert("layout", LAYOUT_VERSION).map_err(backend)?;
        drop(meta);
        replay_journal(tables)?;
        // Up to version 2 markers were records of `entries`: move them (none in a new
        // file; cheap to look for, since they share a key prefix per site).
        let mut old_markers = Vec::new();
        for row in tables.entries.iter().map_err(backend)? {
            let (key, value) = row.map_err(backend)?;
            if let Some(key) = Key::parse(key.value())
                && held_apart(&key)
            {
                old_markers.push((key, value.value().to_vec()));
            }
        }
        for (key, bytes) in &old_markers {
            let record = decode(key, bytes)?;
            let Value::Bytes(value) = record.value else {
                continue;
            };
            tables.remove_record(key)?;
            tables.staged.insert(
                key.clone(),
                Some(Marker {
                    value,
                    expire_at: record.expire_at,
                }),
            );
        }
        Ok(())
    })?;
    {
        let transaction = shared.database.begin_read().map_err(backend)?;
        let rows = transaction.open_table(MARKERS).map_err(backend)?;
        let chunks = transaction.open_table(VISITS).map_err(backend)?;
        shared.markers.load(&rows, &chunks, Timestamp::UNIX_EPOCH)?;
    }
    // Markers moved out of `entries` (version 2), or kept in rows (version 4): into
    // chunks with them.
    if shared.markers.is_dirty() {
        flush(&shared, Timestamp::MIN, false)?;
    }
    Ok(shared)
}

/// Applies the batches of the journal (left by a store that stopped without writing out
/// its held records) to `entries`, in order, and empties it.
fn replay_journal(tables: &mut Tables<'_>) -> Result<(), StoreError> {
    let mut journal = tables.transaction.open_table(JOURNAL).map_err(backend)?;
    let mut rows = Vec::new();
    for row in journal.iter().map_err(backend)? {
        let (number, bytes) = row.map_err(backend)?;
        rows.push(pending::decode_row(number.value(), bytes.value())?);
    }
    journal.retain(|_, _| false).map_err(backend)?;
    drop(journal);
    for row in rows {
        let batch = WriteBatch {
            now: row.now,
            sketches: row.sketches,
            sets: row.sets,
            ..WriteBatch::default()
        };
        engine::apply(tables, &batch)?;
        for (key, record) in &row.records {
            tables.write_record(key, record.as_ref())?;
        }
    }
    Ok(())
}

/// What a flush wrote and dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct FlushReport {
    /// Markers written (changed ones, and the others of the chunks rewritten).
    written: usize,
    /// Expired markers dropped from the file.
    dropped: usize,
}

/// Writes the visit markers changed since the last flush into their chunks, durably, and
/// with `sweep`, rewrites a share of the other chunks without their expired markers (see
/// the `markers` module). Markers expired at `now` are dropped from the chunks it
/// rewrites (`Timestamp::MIN`: none).
///
/// The sites go in transactions of about [`FLUSH_TRANSACTION_MARKERS`] changed markers
/// each (a site's changes are never split), so the flusher's batches get the single
/// writer between them. A crash between two of them leaves some sites' chunks newer than
/// others', which is as good as any flush: each marker is either as it was or as it is.
fn flush(shared: &Shared, now: Timestamp, sweep: bool) -> Result<FlushReport, StoreError> {
    flush_in_parts(shared, FLUSH_TRANSACTION_MARKERS, now, sweep)
}

/// About how many changed markers one flush transaction writes: a few milliseconds of
/// the writer.
const FLUSH_TRANSACTION_MARKERS: usize = 50_000;

/// The share of the stored markers' chunks each upkeep's flush sweeps: all of them in
/// about 30 upkeeps (5 minutes), and never fewer than [`SWEEP_LEAST`] chunks.
const SWEEP_SHARE: usize = 30;
const SWEEP_LEAST: usize = 64;

fn flush_in_parts(
    shared: &Shared,
    per_transaction: usize,
    now: Timestamp,
    sweep: bool,
) -> Result<FlushReport, StoreError> {
    let mut report = FlushReport::default();
    let mut sites = shared.markers.dirty_sites().into_iter().peekable();
    while sites.peek().is_some() {
        // Held from the snapshot of the changes to their forgetting, so no apply changes
        // a marker in between (see the `markers` module).
        let _writer = shared.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let transaction = begin_durable(shared)?;
        let mut flushed = Vec::new();
        {
            let mut chunks = transaction.open_table(VISITS).map_err(backend)?;
            let mut rows = transaction.open_table(MARKERS).map_err(backend)?;
            let mut changes = 0;
            while changes < per_transaction {
                let Some((site, count)) = sites.next() else {
                    break;
                };
                flushed.push(
                    shared
                        .markers
                        .flush_site(&mut chunks, &mut rows, &site, now)?,
                );
                changes += count.max(1);
            }
        }
        transaction.commit().map_err(backend)?;
        for done in &flushed {
            report.written += done.written;
            report.dropped += done.dropped;
        }
        shared.markers.flushed(flushed);
    }
    if sweep {
        let budget =
            (shared.markers.stored() / markers::CHUNK_TARGET / SWEEP_SHARE).max(SWEEP_LEAST);
        let _writer = shared.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let transaction = begin_durable(shared)?;
        let swept = {
            let mut chunks = transaction.open_table(VISITS).map_err(backend)?;
            shared.markers.sweep(&mut chunks, now, budget)?
        };
        transaction.commit().map_err(backend)?;
        report.dropped += swept.dropped();
        shared.markers.swept(swept);
    }
    Ok(report)
}

/// A write transaction committed with [`Durability::Immediate`] (redb's default; set
/// anyway because acknowledging only what is on disk is this store's whole promise).
fn begin_durable(shared: &Shared) -> Result<WriteTransaction, StoreError> {
    let mut transaction = shared.database.begin_write().map_err(backend)?;
    transaction
        .set_durability(Durability::Immediate)
        .map_err(backend)?;
    Ok(transaction)
}

// ---------------------------------------------------------------------------------------
// Transactions.

/// The tables of one write transaction: the engine's seam onto redb (and, for visit
/// markers, onto the markers held in memory, changed only once the transaction commits).
struct Tables<'t> {
    transaction: &'t WriteTransaction,
    entries: Table<'t, &'static str, &'static [u8]>,
    expiry: Table<'t, (i128, &'static str), ()>,
    /// The stored visit markers.
    chunks: Chunks<'t>,
    markers: &'t Markers,
    /// Marker changes of this transaction (`None`: removed).
    staged: BTreeMap<Key, Option<Marker>>,
    /// In an apply, the records held in memory: read over `entries`, and what the apply
    /// changes goes to `changed` instead of `entries`. `None`: reads and writes go to
    /// `entries` (which then holds every record: see [`transact`]).
    held: Option<&'t Held>,
    /// Records this apply changed (`None`: removed).
    changed: BTreeMap<Key, Option<Record>>,
}

/// How a write transaction treats the records held in memory.
enum Mode<'b> {
    /// Everything held is written to `entries` first, then the job reads and writes there.
    Direct,
    /// The batch's changes are held and journaled, or written out with everything held
    /// when that is due (see the `pending` module).
    Apply(&'b WriteBatch),
}

/// Runs `job` in one write transaction, committed durably when it succeeds and aborted
/// (leaving the file as it was) when it fails; the held records are written out first.
fn write<T>(
    shared: &Shared,
    job: impl FnOnce(&mut Tables<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    transact(shared, Mode::Direct, job)
}

fn transact<T>(
    shared: &Shared,
    mode: Mode<'_>,
    job: impl FnOnce(&mut Tables<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let _writer = shared.writer.lock().unwrap_or_else(PoisonError::into_inner);
    let held = shared.pending.read();
    let transaction = begin_durable(shared)?;
    let started = Instant::now();
    let (result, staged, outcome) = {
        let mut tables = Tables {
            transaction: &transaction,
            entries: transaction.open_table(ENTRIES).map_err(backend)?,
            expiry: transaction.open_table(EXPIRY).map_err(backend)?,
            chunks: transaction.open_table(VISITS).map_err(backend)?,
            markers: &shared.markers,
            staged: BTreeMap::new(),
            held: None,
            changed: BTreeMap::new(),
        };
        let mut outcome = Outcome::Unchanged;
        if let Mode::Apply(_) = mode {
            tables.held = Some(&*held);
        } else if !held.is_empty() {
            write_out(&mut tables, &held)?;
            outcome = Outcome::WroteOut;
        }
        let result = job(&mut tables)?;
        if let Mode::Apply(batch) = mode
            && !tables.changed.is_empty()
        {
            let bytes = held.bytes_with(&tables.changed);
            outcome = if held.due(bytes, started) {
                write_out(&mut tables, &held)?;
                Outcome::WroteOut
            } else {
                let row = pending::encode_row(
                    batch.now,
                    &batch.sketches,
                    &batch.sets,
                    tables
                        .changed
                        .iter()
                        .map(|(key, record)| (key, record.as_ref())),
                );
                let mut journal = transaction.open_table(JOURNAL).map_err(backend)?;
                journal
                    .insert(held.next_row(), row.as_slice())
                    .map_err(backend)?;
                Outcome::Held(std::mem::take(&mut tables.changed), bytes)
            };
        }
        (result, tables.staged, outcome)
    };
    transaction.commit().map_err(backend)?;
    drop(held);
    shared.markers.apply(staged.into_iter().collect());
    match outcome {
        Outcome::Unchanged => {}
        Outcome::WroteOut => shared.pending.forget(),
        Outcome::Held(changed, bytes) => shared.pending.hold(changed, bytes, started),
    }
    Ok(result)
}

/// What a committed transaction did to the held records.
enum Outcome {
    Unchanged,
    /// Wrote them (and its own changes) to `entries` and emptied the journal.
    WroteOut,
    /// Journaled these changes, to be held, after which the held records take about
    /// these bytes.
    Held(BTreeMap<Key, Option<Record>>, usize),
}

/// Writes every held record, with this transaction's changes in their place, to
/// `entries`, and empties the journal; afterwards the transaction reads and writes
/// `entries` only.
fn write_out(tables: &mut Tables<'_>, held: &Held) -> Result<(), StoreError> {
    let changed = std::mem::take(&mut tables.changed);
    for (key, record) in held.merged(&changed) {
        tables.write_record(key, record)?;
    }
    let mut journal = tables.transaction.open_table(JOURNAL).map_err(backend)?;
    journal.retain(|_, _| false).map_err(backend)?;
    tables.held = None;
    Ok(())
}

impl View for Tables<'_> {
    fn visit<R>(&self, key: &Key, f: impl FnOnce(Option<&Record>) -> R) -> Result<R, StoreError> {
        if held_apart(key) {
            let marker = match self.staged.get(key) {
                Some(staged) => staged.clone(),
                None => self.markers.get_in(key, &self.chunks)?,
            };
            return Ok(f(marker.map(marker_record).as_ref()));
        }
        if let Some(held) = self.held {
            if let Some(record) = self.changed.get(key) {
                return Ok(f(record.as_ref()));
            }
            if let Some(record) = held.get(key) {
                return Ok(f(record));
            }
        }
        visit_table(&self.entries, key, f)
    }
}

/// True for the keys kept with the markers in memory: visit markers of the usual form
/// (anything else under a marker-like key stays a record of the file).
fn held_apart(key: &Key) -> bool {
    key.is_visit_marker() && markers::split_key(key.as_str()).is_some()
}

/// A marker as the engine sees it.
fn marker_record(marker: Marker) -> Record {
    Record {
        value: Value::Bytes(marker.value),
        expire_at: marker.expire_at,
    }
}

impl engine::Tables for Tables<'_> {
    /// Writes the record and keeps the expiry index in step; a visit marker is staged for
    /// the markers held in memory instead.
    fn put(&mut self, key: &Key, record: Record) -> Result<(), StoreError> {
        if held_apart(key)
            && let Value::Bytes(value) = &record.value
        {
            self.staged.insert(
                key.clone(),
                Some(Marker {
                    value: value.clone(),
                    expire_at: record.expire_at,
                }),
            );
            return Ok(());
        }
        if self.held.is_some() {
            self.changed.insert(key.clone(), Some(record));
            return Ok(());
        }
        self.put_record(key, &record)
    }

    fn remove(&mut self, key: &Key) -> Result<(), StoreError> {
        if held_apart(key) {
            self.staged.insert(key.clone(), None);
        } else if self.held.is_some() {
            self.changed.insert(key.clone(), None);
            return Ok(());
        }
        self.remove_record(key)
    }
}

impl Tables<'_> {
    /// Writes `record` into `entries` and keeps the expiry index in step.
    fn put_record(&mut self, key: &Key, record: &Record) -> Result<(), StoreError> {
        let encoded = encode(record);
        let new_deadline = record.expire_at.map(nanos);
        let old_deadline = self
            .entries
            .insert(key.as_str(), encoded.as_slice())
            .map_err(backend)?
            .and_then(|old| deadline_of(old.value()));
        if old_deadline != new_deadline {
            if let Some(old) = old_deadline {
                self.expiry.remove((old, key.as_str())).map_err(backend)?;
            }
            if let Some(new) = new_deadline {
                self.expiry
                    .insert((new, key.as_str()), ())
                    .map_err(backend)?;
            }
        }
        Ok(())
    }

    /// Writes `record` into `entries`, or removes the key when it is `None`.
    fn write_record(&mut self, key: &Key, record: Option<&Record>) -> Result<(), StoreError> {
        match record {
            Some(record) => self.put_record(key, record),
            None => self.remove_record(key),
        }
    }

    fn remove_record(&mut self, key: &Key) -> Result<(), StoreError> {
        let old_deadline = self
            .entries
            .remove(key.as_str())
            .map_err(backend)?
            .and_then(|old| deadline_of(old.value()));
        if let Some(old) = old_deadline {
            self.expiry.remove((old, key.as_str())).map_err(backend)?;
        }
        Ok(())
    }
}

/// The engine's view of a read transaction (and of the markers and records held in
/// memory).
struct ReadTables<'s> {
    entries: redb::ReadOnlyTable<&'static str, &'static [u8]>,
    database: &'s Database,
    markers: &'s Markers,
    held: &'s Held,
}

impl View for ReadTables<'_> {
    fn visit<R>(&self, key: &Key, f: impl FnOnce(Option<&Record>) -> R) -> Result<R, StoreError> {
        if held_apart(key) {
            let marker = self.markers.get_committed(key, self.database)?;
            return Ok(f(marker.map(marker_record).as_ref()));
        }
        if let Some(record) = self.held.get(key) {
            return Ok(f(record));
        }
        visit_table(&self.entries, key, f)
    }
}

fn visit_table<R>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &Key,
    f: impl FnOnce(Option<&Record>) -> R,
) -> Result<R, StoreError> {
    match table.get(key.as_str()).map_err(backend)? {
        None => Ok(f(None)),
        Some(guard) => {
            let record = decode(key, guard.value())?;
            Ok(f(Some(&record)))
        }
    }
}

/// Runs `job` over a read transaction.
fn read_only<T>(
    shared: &Shared,
    job: impl FnOnce(&ReadTables<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    // The held records are locked before the snapshot is taken (see the `pending`
    // module: a write-out cannot forget them in between).
    let held = shared.pending.read();
    let transaction = shared.database.begin_read().map_err(backend)?;
    let entries = transaction.open_table(ENTRIES).map_err(backend)?;
    job(&ReadTables {
        entries,
        database: &shared.database,
        markers: &shared.markers,
        held: &held,
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
            Some(guard) => deadline_of(guard.value()),
        };
        if record_deadline == Some(*deadline) {
            tables.entries.remove(key.as_str()).map_err(backend)?;
        }
    }
    Ok(due.len())
}

fn apply_batch(tables: &mut Tables<'_>, batch: &WriteBatch) -> Result<ApplyReport, StoreError> {
    let report = engine::apply(tables, batch)?;
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

fn scan_page(
    shared: &Shared,
    after: &str,
    limit: usize,
    now: Timestamp,
) -> Result<(Vec<Entry>, Option<ScanCursor>), StoreError> {
    let limit = limit.max(1);
    let held = shared.pending.read();
    let transaction = shared.database.begin_read().map_err(backend)?;
    let entries = transaction.open_table(ENTRIES).map_err(backend)?;
    let mut page = Vec::with_capacity(limit.min(4096));
    let range = entries
        .range::<&str>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
        .map_err(backend)?;
    for row in range {
        let (raw_key, raw_value) = row.map_err(backend)?;
        // Keys outside the schema are never copied.
        let Some(key) = Key::parse(raw_key.value()) else {
            continue;
        };
        // A held record replaces the file's (below), whether it is live or not.
        if held.get(&key).is_some() {
            continue;
        }
        let record = decode(&key, raw_value.value())?;
        if !record.is_live(now) {
            continue;
        }
        page.push(engine::entry(&key, &record));
        if page.len() >= limit {
            break;
        }
    }
    // The records and markers held in memory, merged in key order: a page is the first
    // `limit` live entries after the cursor, wherever they are kept.
    let held_live = held
        .after(after)
        .filter_map(|(key, record)| Some((key, record.filter(|r| r.is_live(now))?)))
        .take(limit);
    for (key, record) in held_live {
        page.push(engine::entry(key, record));
    }
    for (key, marker) in shared.markers.page(&shared.database, after, limit, now)? {
        page.push(engine::entry(&key, &marker_record(marker)));
    }
    page.sort_by(|a, b| a.key.cmp(&b.key));
    page.truncate(limit);
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
        // The writer thread needs owned data; a clone costs microseconds next to a commit.
        let batch = batch.clone();
        self.run_write(move |shared| {
            let report = transact(shared, Mode::Apply(&batch), |tables| {
                apply_batch(tables, &batch)
            })?;
            // The batch is committed whatever happens here: a failed flush keeps its
            // changes in memory for the next one, and must not make the caller retry.
            if shared.markers.over_limit()
                && let Err(error) = flush(shared, batch.now, false)
            {
                // No logger in the library: say it where an operator's log collects stderr.
                eprintln!("footfall: a flush of visit markers failed: {error}");
            }
            Ok(report)
        })
        .await
    }

    async fn read(&self, reads: &[Read], now: Timestamp) -> Result<Vec<u64>, StoreError> {
        let reads = reads.to_vec();
        self.run(move |shared| read_only(shared, |view| engine::read(view, &reads, now)))
            .await
    }

    async fn get(&self, key: &Key, now: Timestamp) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.clone();
        self.run(move |shared| read_only(shared, |view| engine::get(view, &key, now)))
            .await
    }

    async fn set(
        &self,
        key: &Key,
        value: &[u8],
        expire_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        let key = key.clone();
        let value = value.to_vec();
        self.run_write(move |shared| {
            write(shared, |tables| {
                engine::set(tables, &key, &value, expire_at)
            })
        })
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
        let value = value.to_vec();
        // One write transaction at a time: the check and the insert cannot interleave with
        // another caller's, so racing callers agree.
        self.run_write(move |shared| {
            write(shared, |tables| {
                engine::set_if_absent(tables, &key, &value, expire_at, now)
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
        let new = new.map(<[u8]>::to_vec);
        // The read and the write share one write transaction, which redb serialises with
        // every other writer: nothing can change the value in between.
        self.run_write(move |shared| {
            write(shared, |tables| {
                engine::compare_and_swap(tables, &key, expected.as_deref(), new.as_deref(), now)
            })
        })
        .await
    }

    async fn delete(&self, keys: &[Key]) -> Result<(), StoreError> {
        let keys = keys.to_vec();
        self.run_write(move |shared| {
            write(shared, |tables| {
                keys.iter()
                    .try_for_each(|key| engine::Tables::remove(tables, key))
            })
        })
        .await
    }

    async fn scan(
        &self,
        cursor: &ScanCursor,
        limit: usize,
        now: Timestamp,
    ) -> Result<(Vec<Entry>, Option<ScanCursor>), StoreError> {
        let after = cursor.0.clone();
        self.run(move |shared| scan_page(shared, &after, limit, now))
            .await
    }

    async fn restore(&self, entries: &[Entry]) -> Result<(), StoreError> {
        let entries = entries.to_vec();
        self.run_write(move |shared| write(shared, |tables| engine::restore(tables, &entries)))
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run(|shared| {
            let transaction = shared.database.begin_read().map_err(backend)?;
            transaction.open_table(ENTRIES).map_err(backend)?;
            Ok(())
        })
        .await
    }
}

mod convert;
mod markers;
mod pending;
mod record;
mod worker;

use convert::{backend, nanos};
use markers::{Chunks, MARKERS, Marker, Markers, VISITS};
use pending::{Held, JOURNAL, Pending};
use record::{deadline_of, decode, encode};

#[cfg(test)]
mod tests;
