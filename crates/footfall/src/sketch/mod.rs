//! A HyperLogLog that is bit-compatible with Redis 7.
//!
//! [`Hll`] hashes elements with [`murmur64a`] (seed [`SEED`]), keeps 16384 six-bit
//! registers like Redis (p = 14), estimates with Ertl's improved estimator exactly as
//! Redis ≥ 5 does, and reads and writes the bytes Redis stores under a key
//! ([`Hll::from_redis_bytes`], [`Hll::to_redis_bytes`]). For the same elements
//! [`Hll::count`] equals `PFCOUNT`, [`Hll::merge`] equals `PFMERGE` and
//! [`Hll::count_union`] equals a multi-key `PFCOUNT`.
//!
//! # The Redis format
//!
//! A Redis HyperLogLog is a string: a 16-byte header, then the registers.
//!
//! | bytes | meaning |
//! | --- | --- |
//! | 0..4 | `HYLL` |
//! | 4 | encoding: 0 dense, 1 sparse |
//! | 5..8 | unused, zero |
//! | 8..16 | cached cardinality, little-endian; bit 7 of byte 15 set means "stale" |
//!
//! *Dense*: 12288 bytes holding 16384 six-bit registers packed little-endian bitwise
//! (register `i` starts at bit `6 i`, least significant bits first).
//!
//! *Sparse*: a run-length code of the registers in index order, which must cover
//! exactly 16384 registers:
//! `00xxxxxx` (ZERO) is `xxxxxx + 1` zero registers (1..=64);
//! `01xxxxxx yyyyyyyy` (XZERO) is `xxxxxxyyyyyyyy + 1` zero registers (1..=16384);
//! `1vvvvvxx` (VAL) is `xx + 1` registers (1..=4) holding `vvvvv + 1` (1..=32).
//! Redis keeps a key sparse while every register fits a VAL opcode and the string
//! is at most `hll-sparse-max-bytes` (3000 by default) long, and converts it to dense
//! for good once either stops being true.
//!
//! Redis trusts the cached cardinality of a string written with `SET`, so a sketch
//! with a wrong cache makes `PFCOUNT` lie. This module never reads the cache when it
//! decodes and always marks it stale when it encodes.
//!
//! ```
//! use footfall::sketch::{Encoding, Hll};
//!
//! let mut today = Hll::new();
//! assert!(today.add(b"visitor-1"));
//! assert!(!today.add(b"visitor-1")); // Already counted: no register changed.
//! today.add(b"visitor-2");
//! assert_eq!(today.count(), 2);
//!
//! // The bytes are what `GET` would return for a key built with `PFADD`.
//! let bytes = today.to_redis_bytes();
//! assert_eq!(&bytes[..4], b"HYLL");
//! assert_eq!(today.encoding(), Encoding::Sparse);
//! assert_eq!(Hll::from_redis_bytes(&bytes)?, today);
//! # Ok::<(), footfall::sketch::SketchError>(())
//! ```

mod estimator;
mod murmur;
mod params;
mod redis_format;

#[cfg(test)]
mod tests;

use std::fmt;

pub use murmur::murmur64a;
pub use params::{
    DENSE_LEN, Encoding, HEADER_LEN, MAX_RANK, REGISTERS, SEED, SPARSE_MAX_BYTES, SketchError,
};
use params::{INDEX_BITS, INDEX_MASK, SPARSE_LIMIT};
pub use redis_format::{RedisHeader, read_header};

/// A HyperLogLog sketch with Redis's parameters, hash and estimator.
///
/// # In-memory layout
///
/// The layout is chosen for cheap [`add`](Hll::add), not for Redis's bytes (which
/// are produced on demand): a sketch starts as a sorted vector of its non-zero
/// registers (4 bytes each, nothing allocated while empty) and switches once and for
/// all to one byte per register (16 KiB) when it has more than 1024 of them. A store
/// holding many small sketches (one per site per day, per minute bucket) then pays
/// for what is in them, while a large sketch updates a register with one load, one
/// compare and one store, with no bit packing. Two sketches compare equal when their
/// registers are equal, whatever their layout.
#[derive(Clone, Default)]
pub struct Hll {
    registers: Registers,
}

/// The two in-memory layouts of [`Hll`]; see its documentation.
///
/// Invariant: `Sparse` holds at most [`SPARSE_LIMIT`] entries, sorted by index with
/// no duplicates and no zero values; `Dense` is used only once the sketch has more
/// than [`SPARSE_LIMIT`] non-zero registers. Every constructor goes through
/// [`Hll::from_dense`] or keeps this invariant by itself, so the layout is a
/// function of the registers.
#[derive(Clone)]
enum Registers {
    /// Non-zero registers as `index << 8 | value`, so sorting entries sorts indexes.
    Sparse(Vec<u32>),
    /// One register per byte.
    Dense(Box<[u8; REGISTERS]>),
}

impl Default for Registers {
    fn default() -> Self {
        Self::Sparse(Vec::new())
    }
}

impl Hll {
    /// An empty sketch; the same as [`Hll::default`].
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an element, hashed with [`murmur64a`] and [`SEED`] as Redis does.
    ///
    /// Returns true when a register changed, which is when `PFADD` of the same
    /// element to the same sketch in Redis replies 1.
    pub fn add(&mut self, element: &[u8]) -> bool {
        self.add_hash(murmur64a(element, SEED))
    }

    /// Adds an element by its 64-bit hash (the value [`murmur64a`] with [`SEED`]
    /// returns for it, or any well-mixed 64-bit value when Redis compatibility of the
    /// element itself does not matter).
    ///
    /// The low 14 bits select the register; the register becomes at least the
    /// position of the lowest set bit among the other 50 bits, counting from 1, or 51
    /// when they are all zero.
    pub fn add_hash(&mut self, hash: u64) -> bool {
        let index = (hash & INDEX_MASK) as usize;
        self.raise(index, rank(hash))
    }

    /// The estimated number of distinct elements added, equal to Redis `PFCOUNT`.
    #[must_use]
    pub fn count(&self) -> u64 {
        estimator::estimate(&self.histogram())
    }

    /// Merges another sketch into this one: each register becomes the larger of the
    /// two, which is what `PFMERGE` does. The result is the sketch of the union.
    pub fn merge(&mut self, other: &Hll) {
        match (&mut self.registers, &other.registers) {
            (Registers::Dense(mine), Registers::Dense(theirs)) => {
                for (mine, theirs) in mine.iter_mut().zip(theirs.iter()) {
                    *mine = (*mine).max(*theirs);
                }
            }
            (Registers::Dense(mine), Registers::Sparse(theirs)) => {
                for &entry in theirs {
                    let (index, value) = split_entry(entry);
                    if let Some(register) = mine.get_mut(index) {
                        *register = (*register).max(value);
                    }
                }
            }
            (Registers::Sparse(mine), Registers::Dense(theirs)) => {
                let mut merged = theirs.clone();
                for &entry in mine.iter() {
                    let (index, value) = split_entry(entry);
                    if let Some(register) = merged.get_mut(index) {
                        *register = (*register).max(value);
                    }
                }
                self.registers = Registers::Dense(merged);
            }
            (Registers::Sparse(mine), Registers::Sparse(theirs)) => {
                let merged = merge_sorted(mine, theirs);
                if merged.len() <= SPARSE_LIMIT {
                    *mine = merged;
                } else {
                    let mut dense = zeroed_registers();
                    for entry in merged {
                        let (index, value) = split_entry(entry);
                        if let Some(register) = dense.get_mut(index) {
                            *register = value;
                        }
                    }
                    self.registers = Registers::Dense(dense);
                }
            }
        }
    }

    /// The estimated number of distinct elements in the union of the sketches,
    /// equal to `PFCOUNT key1 key2 …` in Redis; 0 for no sketches.
    #[must_use]
    pub fn count_union(sketches: &[&Hll]) -> u64 {
        match sketches {
            [] => 0,
            [only] => only.count(),
            _ => {
                // A byte per register on the stack; the same max as `merge` without
                // cloning the first sketch.
                let mut union = [0u8; REGISTERS];
                for sketch in sketches {
                    sketch.max_into(&mut union);
                }
                estimator::estimate(&dense_histogram(&union))
            }
        }
    }

    /// The value of register `index` (0..=63; at most [`MAX_RANK`] for registers set
    /// by [`add`](Hll::add)). An index of [`REGISTERS`] or more has no register and
    /// reads as 0.
    #[must_use]
    pub fn register(&self, index: usize) -> u8 {
        match &self.registers {
            Registers::Dense(registers) => registers.get(index).copied().unwrap_or(0),
            Registers::Sparse(entries) => match u32::try_from(index) {
                Ok(index) => entries
                    .binary_search_by_key(&index, |entry| entry >> 8)
                    .map_or(0, |position| {
                        entries.get(position).map_or(0, |&e| split_entry(e).1)
                    }),
                Err(_) => 0,
            },
        }
    }

    /// How many registers hold each value: element `v` counts the registers equal
    /// to `v`, so the elements sum to [`REGISTERS`] and element 0 counts the
    /// registers never set. This is all the estimator looks at.
    #[must_use]
    pub fn histogram(&self) -> [u32; 64] {
        match &self.registers {
            Registers::Dense(registers) => dense_histogram(registers),
            Registers::Sparse(entries) => {
                let mut histogram = [0u32; 64];
                for &entry in entries {
                    histogram[usize::from(split_entry(entry).1 & 63)] += 1;
                }
                // At most SPARSE_LIMIT entries, so this neither overflows nor wraps.
                histogram[0] = (REGISTERS - entries.len()) as u32;
                histogram
            }
        }
    }

    /// Reads a sketch from the bytes Redis stores under a HyperLogLog key (what `GET`
    /// returns), sparse or dense.
    ///
    /// The cached cardinality in the header is ignored: Redis trusts it, so a stale
    /// or forged one would make the sketch count wrong. Bytes 5..8 of the header are
    /// ignored as Redis ignores them. Dense registers above [`MAX_RANK`], which no
    /// hash produces but Redis accepts, are kept as they are.
    ///
    /// # Errors
    ///
    /// A [`SketchError`] saying what is wrong when the bytes are not a well-formed
    /// Redis HyperLogLog: too short, wrong magic, unknown encoding, a dense sketch of
    /// the wrong length, or sparse opcodes that are cut off or do not cover exactly
    /// 16384 registers. It never panics, and allocates at most one 16 KiB register
    /// array whatever the input.
    pub fn from_redis_bytes(bytes: &[u8]) -> Result<Hll, SketchError> {
        let header = read_header(bytes)?;
        let body = bytes.get(HEADER_LEN..).unwrap_or_default();
        let registers = match header.encoding {
            Encoding::Dense => redis_format::decode_dense(body, bytes.len())?,
            Encoding::Sparse => redis_format::decode_sparse(body)?,
        };
        Ok(Self::from_dense(registers))
    }

    /// The bytes Redis would store for these registers, in the encoding
    /// [`encoding`](Hll::encoding) reports, with the cached cardinality marked
    /// stale so Redis recomputes it on the first `PFCOUNT`.
    ///
    /// A sparse result uses the shortest opcodes (one ZERO or XZERO per run of zero
    /// registers, VAL runs of four); Redis may split runs differently after a
    /// sequence of `PFADD`s, which decodes to the same registers.
    #[must_use]
    pub fn to_redis_bytes(&self) -> Vec<u8> {
        self.with_dense(|registers| match redis_format::sparse_len(registers) {
            Some(len) => redis_format::encode_sparse(registers, len),
            None => redis_format::encode_dense(registers),
        })
    }

    /// The encoding [`to_redis_bytes`](Hll::to_redis_bytes) emits: sparse while
    /// every register is at most 32 and the sparse string is at most
    /// [`SPARSE_MAX_BYTES`] long (Redis's default `hll-sparse-max-bytes`), else dense.
    #[must_use]
    pub fn encoding(&self) -> Encoding {
        self.with_dense(|registers| match redis_format::sparse_len(registers) {
            Some(_) => Encoding::Sparse,
            None => Encoding::Dense,
        })
    }

    /// About how much heap memory the sketch holds: a dense sketch one byte a register,
    /// a sparse one four bytes an entry (for callers that bound what they keep).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        match &self.registers {
            Registers::Sparse(entries) => entries.capacity() * 4,
            Registers::Dense(_) => REGISTERS,
        }
    }

    /// True when no element has been added (every register is zero).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        match &self.registers {
            Registers::Sparse(entries) => entries.is_empty(),
            Registers::Dense(registers) => registers.iter().all(|&register| register == 0),
        }
    }

    /// Builds a sketch from a byte-per-register array, choosing the layout that
    /// keeps the [`Registers`] invariant.
    fn from_dense(registers: Box<[u8; REGISTERS]>) -> Self {
        let nonzero = registers.iter().filter(|&&register| register != 0).count();
        if nonzero > SPARSE_LIMIT {
            return Self {
                registers: Registers::Dense(registers),
            };
        }
        let entries = registers
            .iter()
            .enumerate()
            .filter(|&(_, &value)| value != 0)
            .map(|(index, &value)| make_entry(index, value))
            .collect();
        Self {
            registers: Registers::Sparse(entries),
        }
    }

    /// Raises register `index` to `value` if it is lower; true when it changed.
    fn raise(&mut self, index: usize, value: u8) -> bool {
        match &mut self.registers {
            Registers::Dense(registers) => match registers.get_mut(index) {
                Some(register) if *register < value => {
                    *register = value;
                    true
                }
                _ => false,
            },
            Registers::Sparse(entries) => {
                let key = index as u32;
                match entries.binary_search_by_key(&key, |entry| entry >> 8) {
                    Ok(position) => match entries.get_mut(position) {
                        Some(entry) if split_entry(*entry).1 < value => {
                            *entry = make_entry(index, value);
                            true
                        }
                        _ => false,
                    },
                    Err(position) if entries.len() < SPARSE_LIMIT => {
                        entries.insert(position, make_entry(index, value));
                        true
                    }
                    Err(_) => {
                        // The new register would exceed the compact form: switch to
                        // a byte per register for good, then set it there.
                        let mut dense = zeroed_registers();
                        for &entry in entries.iter() {
                            let (entry_index, entry_value) = split_entry(entry);
                            if let Some(register) = dense.get_mut(entry_index) {
                                *register = entry_value;
                            }
                        }
                        if let Some(register) = dense.get_mut(index) {
                            *register = value;
                        }
                        self.registers = Registers::Dense(dense);
                        true
                    }
                }
            }
        }
    }

    /// Raises every register of `union` to at least this sketch's register.
    fn max_into(&self, union: &mut [u8; REGISTERS]) {
        match &self.registers {
            Registers::Dense(registers) => {
                for (target, &value) in union.iter_mut().zip(registers.iter()) {
                    *target = (*target).max(value);
                }
            }
            Registers::Sparse(entries) => {
                for &entry in entries {
                    let (index, value) = split_entry(entry);
                    if let Some(target) = union.get_mut(index) {
                        *target = (*target).max(value);
                    }
                }
            }
        }
    }

    /// Runs `f` on a byte-per-register view of the sketch, expanding the compact
    /// layout into a temporary array when needed.
    fn with_dense<R>(&self, f: impl FnOnce(&[u8; REGISTERS]) -> R) -> R {
        match &self.registers {
            Registers::Dense(registers) => f(registers),
            Registers::Sparse(_) => {
                let mut registers = zeroed_registers();
                self.max_into(&mut registers);
                f(&registers)
            }
        }
    }
}

impl PartialEq for Hll {
    /// Register equality: the in-memory layout does not matter.
    fn eq(&self, other: &Self) -> bool {
        match (&self.registers, &other.registers) {
            (Registers::Sparse(mine), Registers::Sparse(theirs)) => mine == theirs,
            (Registers::Dense(mine), Registers::Dense(theirs)) => mine == theirs,
            _ => (0..REGISTERS).all(|index| self.register(index) == other.register(index)),
        }
    }
}

impl Eq for Hll {}

impl fmt::Debug for Hll {
    /// A summary rather than 16384 registers: layout, non-zero registers, the
    /// largest register and the estimate.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let histogram = self.histogram();
        let nonzero = REGISTERS as u32 - histogram[0];
        let max = histogram.iter().rposition(|&count| count != 0).unwrap_or(0);
        let layout = match self.registers {
            Registers::Sparse(_) => "sparse",
            Registers::Dense(_) => "dense",
        };
        f.debug_struct("Hll")
            .field("layout", &layout)
            .field("nonzero_registers", &nonzero)
            .field("max_register", &max)
            .field("count", &self.count())
            .finish()
    }
}

/// The register value a hash sets: the 1-based position of the lowest set bit of
/// the 50 bits above the index, with a sentinel bit at position 51.
fn rank(hash: u64) -> u8 {
    let remaining = (hash >> INDEX_BITS) | (1 << (64 - INDEX_BITS));
    // trailing_zeros is at most 50 here thanks to the sentinel bit.
    (remaining.trailing_zeros() + 1) as u8
}

/// Packs a compact-layout entry.
fn make_entry(index: usize, value: u8) -> u32 {
    ((index as u32) << 8) | u32::from(value)
}

/// Unpacks a compact-layout entry into (index, value).
fn split_entry(entry: u32) -> (usize, u8) {
    ((entry >> 8) as usize, (entry & 0xff) as u8)
}

/// A zeroed byte-per-register array on the heap.
fn zeroed_registers() -> Box<[u8; REGISTERS]> {
    Box::new([0; REGISTERS])
}

/// Merges two sorted entry lists, keeping the larger value for equal indexes.
fn merge_sorted(left: &[u32], right: &[u32]) -> Vec<u32> {
    let mut merged = Vec::with_capacity(left.len() + right.len());
    let (mut left, mut right) = (left.iter().peekable(), right.iter().peekable());
    loop {
        let next = match (left.peek(), right.peek()) {
            (Some(&&l), Some(&&r)) => match (l >> 8).cmp(&(r >> 8)) {
                std::cmp::Ordering::Less => left.next().copied(),
                std::cmp::Ordering::Greater => right.next().copied(),
                std::cmp::Ordering::Equal => {
                    left.next();
                    right.next();
                    Some(l.max(r))
                }
            },
            (Some(_), None) => left.next().copied(),
            (None, Some(_)) => right.next().copied(),
            (None, None) => return merged,
        };
        merged.extend(next);
    }
}

/// The register histogram of a byte-per-register array.
///
/// Four interleaved partial histograms keep consecutive increments of the same
/// bucket (the common case: most registers hold one of a few values) from waiting
/// on each other through memory, which makes this several times faster than one.
fn dense_histogram(registers: &[u8; REGISTERS]) -> [u32; 64] {
    let mut partial = [[0u32; 64]; 4];
    for chunk in registers.as_chunks::<4>().0 {
        partial[0][usize::from(chunk[0] & 63)] += 1;
        partial[1][usize::from(chunk[1] & 63)] += 1;
        partial[2][usize::from(chunk[2] & 63)] += 1;
        partial[3][usize::from(chunk[3] & 63)] += 1;
    }
    let mut histogram = [0u32; 64];
    for (bucket, total) in histogram.iter_mut().enumerate() {
        *total = partial.iter().map(|part| part[bucket]).sum();
    }
    histogram
}
