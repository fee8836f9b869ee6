//! Redis's HyperLogLog parameters, its two encodings, and what can be wrong with its
//! bytes: what the sketch, its estimator and its Redis format all build on.

/// The number of registers, 2^14, as in Redis.
pub const REGISTERS: usize = 1 << INDEX_BITS;

/// The seed Redis hashes HyperLogLog elements with.
pub const SEED: u64 = 0xadc8_3b19;

/// The length of the header that starts every Redis HyperLogLog string.
pub const HEADER_LEN: usize = 16;

/// The length of a dense Redis HyperLogLog string: the header plus 16384 × 6 bits.
pub const DENSE_LEN: usize = HEADER_LEN + REGISTERS * 6 / 8;

/// Redis's default `hll-sparse-max-bytes`: the longest sparse string (header
/// included) Redis keeps before it converts the key to dense.
pub const SPARSE_MAX_BYTES: usize = 3000;

/// The largest register value a hash can produce: 50 hash bits remain after the
/// 14 index bits, and a sentinel bit above them caps the run length at 50 + 1.
pub const MAX_RANK: u8 = 51;

/// The number of hash bits that select the register.
pub(super) const INDEX_BITS: u32 = 14;

/// The mask that keeps the register index bits of a hash.
pub(super) const INDEX_MASK: u64 = (1 << INDEX_BITS) - 1;

/// How many non-zero registers the compact in-memory form holds before the sketch
/// switches to a byte per register.
///
/// 1024 entries of 4 bytes are a quarter of the 16 KiB a byte-per-register array
/// takes, about the size at which Redis itself gives up on its sparse form (~1500
/// non-zero registers reach 3000 bytes), and small enough that inserting into the
/// sorted vector (a memmove of at most 4 KiB) stays cheap.
pub(super) const SPARSE_LIMIT: usize = 1024;

/// Which of Redis's two encodings a sketch is stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// The run-length encoding Redis uses for small sketches (encoding byte 1).
    Sparse,
    /// 16384 packed six-bit registers, 12304 bytes in all (encoding byte 0).
    Dense,
}

/// What is wrong with bytes that were supposed to be a Redis HyperLogLog.
///
/// Offsets count from the start of the string, header included.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SketchError {
    /// The input ends before the 16-byte header does.
    #[error("not a HyperLogLog: {len} bytes is shorter than the 16-byte header")]
    TooShort {
        /// The length of the input.
        len: usize,
    },
    /// The input does not start with `HYLL`.
    #[error("not a HyperLogLog: it starts with {found:02x?} instead of \"HYLL\"")]
    BadMagic {
        /// The first four bytes of the input.
        found: [u8; 4],
    },
    /// The encoding byte is neither 0 (dense) nor 1 (sparse).
    #[error("unknown HyperLogLog encoding byte {found} (0 is dense, 1 is sparse)")]
    BadEncoding {
        /// The encoding byte found.
        found: u8,
    },
    /// A dense sketch whose length is not exactly 12304 bytes.
    #[error("a dense HyperLogLog is {DENSE_LEN} bytes long, this one is {len}")]
    BadDenseLength {
        /// The length of the input.
        len: usize,
    },
    /// A sparse XZERO opcode whose second byte is missing.
    #[error(
        "sparse HyperLogLog truncated: the two-byte XZERO opcode at byte {offset} has no second byte"
    )]
    TruncatedOpcode {
        /// The offset of the opcode's first byte.
        offset: usize,
    },
    /// A sparse opcode that runs past the last register.
    #[error(
        "sparse HyperLogLog opcode at byte {offset} covers registers {start}..{end}, past the last register ({REGISTERS} in all)"
    )]
    SparseOverrun {
        /// The offset of the opcode.
        offset: usize,
        /// The first register the opcode covers.
        start: usize,
        /// One past the last register the opcode would cover.
        end: usize,
    },
    /// The sparse opcodes end before all registers are covered.
    #[error("sparse HyperLogLog opcodes cover only {covered} of the {REGISTERS} registers")]
    SparseIncomplete {
        /// How many registers the opcodes cover.
        covered: usize,
    },
}
