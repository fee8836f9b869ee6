//! Storage: one narrow trait and its backends.
//!
//! A [`Store`] knows counters, HyperLogLog sketches, bounded sets of ids, expiring markers
//! and small values under [`Key`]s. It knows nothing of visits, windows or calendars: the
//! [`counter`](crate::counter) module turns hits into a [`WriteBatch`] and figures into
//! [`Read`]s, so each backend stays small and every backend counts the same way.
//!
//! Every method takes the current time where expiry matters, so backends that expire
//! entries themselves (the memory store) never read the clock; Redis expires by its own
//! clock from the absolute deadlines given here.

use std::fmt;
use std::future::Future;

use jiff::Timestamp;

use crate::keys::Key;

mod any;
#[cfg(feature = "embedded")]
pub mod embedded;
mod engine;
mod memory;
mod options;
#[cfg(feature = "redis")]
mod redis;

pub use any::AnyStore;
#[cfg(feature = "embedded")]
pub use embedded::{EmbeddedStore, HeldInMemory};
pub use memory::MemoryStore;
pub use options::{RedisTls, StoreOptions};
#[cfg(feature = "redis")]
pub use redis::RedisStore;

/// Everything a backend can report. Backend-specific errors travel boxed as the source so
/// that, e.g., `redis::RedisError` never appears in this crate's API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend could not be reached or did not answer in time. Whether a write took
    /// effect is unknown (see [`StoreError::is_ambiguous`]).
    #[error("store unavailable: {message}")]
    Unavailable {
        /// What failed.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
        /// True when the request may have been applied before the failure.
        ambiguous: bool,
    },
    /// A stored value is not what its key says it is (e.g. a corrupt sketch).
    #[error("corrupt value at {key}: {message}")]
    Corrupt {
        /// The key holding the value.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// The store is open in another process.
    #[error("store is locked by another process: {0}")]
    Locked(String),
    /// The store's configuration or URL is wrong.
    #[error("store configuration: {0}")]
    Config(String),
    /// Any other backend failure.
    #[error("store error: {message}")]
    Backend {
        /// What failed.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl StoreError {
    /// True when a failed write may nonetheless have been applied, so retrying it could
    /// count twice.
    pub fn is_ambiguous(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable {
                ambiguous: true,
                ..
            }
        )
    }

    /// An [`Unavailable`](StoreError::Unavailable) error without a source.
    pub fn unavailable(message: impl Into<String>, ambiguous: bool) -> Self {
        StoreError::Unavailable {
            message: message.into(),
            source: None,
            ambiguous,
        }
    }
}

/// A counter increment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterAdd {
    /// The counter.
    pub key: Key,
    /// How much to add.
    pub by: u64,
    /// When the counter expires, set by the write that creates it; writes to a live
    /// counter keep its deadline (a period's deadline never moves, and not resetting it
    /// saves a command per counter). `None` creates a counter that never expires.
    pub expire_at: Option<Timestamp>,
}

/// Elements added to a HyperLogLog sketch, as `PFADD` would.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SketchAdd {
    /// The sketch.
    pub key: Key,
    /// The elements (visitor ids); each is hashed by the sketch.
    pub elements: Vec<[u8; 16]>,
    /// When the sketch expires, set by the write that creates it and kept by later
    /// writes (as for [`CounterAdd::expire_at`]); `None` creates a sketch that never
    /// expires.
    pub expire_at: Option<Timestamp>,
}

/// Elements added to a bounded set of 16-byte ids.
///
/// Each element not yet a member is added while the set holds fewer than `cap` entries.
/// An element that is not a member and finds the set full is *not* added; the set is
/// marked overflowed instead, and stays so until it expires, the mark taking one of the
/// `cap` places. So the set never grows past `cap` (memory stays bounded), and a set that
/// is not overflowed holds every distinct element ever added to it: its size is exact.
/// An element already a member never overflows a full set. (A later write with a larger
/// cap lets an overflowed set take more ids up to that cap; it still reads as
/// overflowed. Callers keep one cap per key, so this only settles what a change means.)
///
/// A set exists only while it has a member (as in Redis): adding no elements to an
/// absent set creates nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetAdd {
    /// The set.
    pub key: Key,
    /// The elements (visitor ids).
    pub elements: Vec<[u8; 16]>,
    /// The most members the set may hold; 0 is taken as 1.
    pub cap: usize,
    /// When the set expires, set by the write that creates it and kept by later writes
    /// (as for [`CounterAdd::expire_at`]); `None` creates a set that never expires.
    pub expire_at: Option<Timestamp>,
    /// A sketch that takes what the set cannot hold. From the write that overflows the
    /// set on, the write's elements and (that once) the set's members are added to it, and
    /// so are the elements of every later write: the set's members and the sketch together
    /// hold every element, and [`Read::SpilledUnion`] estimates the union when the exact
    /// count is lost. The sketch is created with the set's deadline. A set that never
    /// overflows never writes it.
    pub spill: Option<Key>,
}

/// What [`Read::SetUnion`] yields when one of its sets overflowed: the exact union is
/// then unknown. No exact union comes near this value (every set holds at most its cap
/// of 16-byte ids, which must fit in memory), so it is unambiguous.
///
/// A sentinel rather than a richer return type keeps [`Store::read`] one flat `Vec<u64>`
/// for every backend and every wrapper of the trait; only `SetUnion` can yield it.
pub const SET_OVERFLOWED: u64 = u64::MAX;

/// One hit's touch of its visit marker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionTouch {
    /// The marker, written (or refreshed) to expire at `expire_at`.
    pub key: Key,
    /// A marker the same visitor may have under the previous salt, right after a salt
    /// rotation. It is only read: its presence means the visit goes on.
    pub previous_key: Option<Key>,
    /// The marker's new deadline: the hit's time plus the visit timeout. A deadline
    /// only moves forward: a touch with an earlier deadline than the marker's (a batch
    /// applied after a later one) leaves it as it is. The marker's value is its deadline
    /// in Unix milliseconds, as decimal text.
    pub expire_at: Timestamp,
}

/// Hits that start a visit when their visitor has no open visit.
///
/// The backend touches the sessions in order; a touch *starts a visit* when neither its
/// `key` nor its `previous_key` existed (unexpired) just before it. Each counter is then
/// incremented by the number of visits started. Touches of the same key later in the
/// same batch see the earlier touch, so one visitor's burst starts one visit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VisitGroup {
    /// The visits counters of the window the hits fall in, with the deadline a counter
    /// gets when this group creates it (as for [`CounterAdd::expire_at`]).
    pub counters: Vec<(Key, Option<Timestamp>)>,
    /// The touches, in hit order.
    pub sessions: Vec<SessionTouch>,
}

/// A batch of writes, applied by one call (one round trip where the backend is remote).
///
/// Order of application: counters, sketches, sets, then visit groups. The batch as a whole is
/// not atomic; each part is applied at most once per call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteBatch {
    /// The time the batch was made; backends that expire entries themselves use it.
    pub now: Timestamp,
    /// Counter increments, one per key.
    pub counters: Vec<CounterAdd>,
    /// Sketch additions, one per key.
    pub sketches: Vec<SketchAdd>,
    /// Bounded set additions, one per key.
    pub sets: Vec<SetAdd>,
    /// Visit groups, one per distinct set of visits counters.
    pub visits: Vec<VisitGroup>,
}

impl WriteBatch {
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.counters.is_empty()
            && self.sketches.is_empty()
            && self.sets.is_empty()
            && self.visits.is_empty()
    }
}

/// What [`Store::apply`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// How many visits the batch started.
    pub visits_started: u64,
}

/// One figure to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Read {
    /// A counter's value; 0 when absent or expired.
    Counter(Key),
    /// The sum of several counters (e.g. the days of a rolling week).
    CounterSum(Vec<Key>),
    /// The estimated cardinality of the union of these sketches (`PFCOUNT k1 k2 …`);
    /// absent sketches count as empty.
    Cardinality(Vec<Key>),
    /// The exact number of distinct members of the union of these bounded sets (see
    /// [`SetAdd`]), or [`SET_OVERFLOWED`] when any of them overflowed. Absent sets count
    /// as empty.
    SetUnion(Vec<Key>),
    /// The estimated number of distinct elements in the union of these bounded sets and
    /// their spill sketches, each pair `(set, spill)` (see [`SetAdd::spill`]); absent
    /// ones count as empty. For when [`Read::SetUnion`] says a set overflowed.
    SpilledUnion(Vec<(Key, Key)>),
}

/// One stored entry, as copied between stores by [`Store::scan`] and [`Store::restore`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The key.
    pub key: Key,
    /// The value.
    pub value: EntryValue,
    /// The deadline, if the entry expires.
    pub expire_at: Option<Timestamp>,
}

/// A stored value, in a backend-neutral form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryValue {
    /// A counter.
    Counter(u64),
    /// A HyperLogLog sketch, as Redis bytes (so it moves bit for bit).
    Sketch(Vec<u8>),
    /// A bounded set (see [`SetAdd`]).
    Set {
        /// The members, sorted ascending and distinct, so that equal sets compare equal
        /// whatever order a backend keeps them in.
        members: Vec<[u8; 16]>,
        /// Whether an element was refused because the set was full.
        overflowed: bool,
    },
    /// Opaque bytes.
    Bytes(Vec<u8>),
}

impl EntryValue {
    /// Opaque bytes under `key`, as a scan reports them: a decimal string under a counter
    /// key (a baseline written with [`Store::set`]) is a counter, as Redis would treat
    /// it, so every backend scans the same entries the same way.
    pub fn from_stored_bytes(key: &Key, bytes: Vec<u8>) -> EntryValue {
        if key.kind() == crate::keys::KeyKind::Counter
            && let Some(n) = std::str::from_utf8(&bytes)
                .ok()
                .and_then(|text| text.parse().ok())
        {
            return EntryValue::Counter(n);
        }
        EntryValue::Bytes(bytes)
    }
}

/// Where a [`Store::scan`] goes on from; opaque to callers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanCursor(pub String);

/// The storage contract.
///
/// Implementations are `Debug + Send + Sync` and cheap to share behind an `Arc`. All
/// methods are async and cancel-safe in the sense that dropping a future leaves the store
/// usable, though a dropped write may or may not have been applied.
pub trait Store: fmt::Debug + Send + Sync {
    /// Applies a batch of writes (see [`WriteBatch`] for the order and semantics).
    ///
    /// On error, nothing is known about which parts were applied unless the error says
    /// it is not ambiguous ([`StoreError::is_ambiguous`]).
    fn apply(
        &self,
        batch: &WriteBatch,
    ) -> impl Future<Output = Result<ApplyReport, StoreError>> + Send;

    /// Reads figures, one value per [`Read`] in order. Reads have no side effects.
    fn read(
        &self,
        reads: &[Read],
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<u64>, StoreError>> + Send;

    /// Returns the value at `key`, or `None` when absent or expired.
    fn get(
        &self,
        key: &Key,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// Sets `key` to `value`, replacing any value, expiring at `expire_at`.
    fn set(
        &self,
        key: &Key,
        value: &[u8],
        expire_at: Option<Timestamp>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Sets `key` to `value` only when absent (or expired), and returns the value now
    /// stored: `value` when it was set, the existing one otherwise. Several processes
    /// calling this concurrently all get the same answer. Idempotent, safe to retry.
    fn set_if_absent(
        &self,
        key: &Key,
        value: &[u8],
        expire_at: Option<Timestamp>,
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<u8>, StoreError>> + Send;

    /// Replaces the value at `key` with `new` (or removes it, for `None`) only when the
    /// current value is `expected` (`None`: absent). Returns whether it did. Atomic
    /// against every other writer, so a read-modify-write loop over it never loses an
    /// update made by another process. Values written this way do not expire.
    fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Removes `keys`, in one round trip or transaction; removing an absent key is not an
    /// error. Idempotent.
    fn delete(&self, keys: &[Key]) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Returns a page of live entries (at most about `limit`) and the cursor of the next
    /// page, `None` after the last. Starting from `ScanCursor::default()` and following the
    /// cursors visits every entry that exists throughout the scan at least once; entries
    /// written during the scan may or may not be seen. Keys outside footfall's schema are
    /// skipped.
    fn scan(
        &self,
        cursor: &ScanCursor,
        limit: usize,
        now: Timestamp,
    ) -> impl Future<Output = Result<(Vec<Entry>, Option<ScanCursor>), StoreError>> + Send;

    /// Writes entries exactly as given, replacing what is there (sketches byte for byte,
    /// counters as values, sets with their members and overflow mark, deadlines as given).
    /// A set with no members is removed instead, since an empty set cannot exist.
    /// Idempotent.
    fn restore(&self, entries: &[Entry]) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Checks that the store answers.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

/// A store location (`--store`) fit for logs and error messages: any password in a URL's
/// user information is replaced with `***`. Paths and URLs without one are unchanged.
pub fn printable_location(location: &str) -> String {
    let Some((scheme, rest)) = location.split_once("://") else {
        return location.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, hosts)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}:***@{hosts}")
        }
        None => location.to_owned(),
    }
}
