//! Reading and writing the bytes Redis stores for a HyperLogLog key.
//!
//! The format is described in the parent module's documentation. Decoding goes
//! through a byte-per-register array so both encodings share one path into
//! [`Hll`](super::Hll); encoding works from such an array too.

use super::params::{DENSE_LEN, Encoding, HEADER_LEN, REGISTERS, SPARSE_MAX_BYTES, SketchError};

/// The magic bytes every Redis HyperLogLog starts with.
const MAGIC: &[u8; 4] = b"HYLL";

/// The encoding byte of a dense sketch.
const DENSE_BYTE: u8 = 0;

/// The encoding byte of a sparse sketch.
const SPARSE_BYTE: u8 = 1;

/// The bit of header byte 15 that marks the cached cardinality stale.
const CACHE_STALE_BIT: u8 = 0x80;

/// The longest zero run a one-byte ZERO opcode holds.
const ZERO_MAX_RUN: usize = 64;

/// The longest run a VAL opcode holds.
const VAL_MAX_RUN: usize = 4;

/// The largest value a VAL opcode holds.
const VAL_MAX_VALUE: u8 = 32;

/// The header of a Redis HyperLogLog string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisHeader {
    /// The encoding byte, decoded.
    pub encoding: Encoding,
    /// The cached cardinality, without the stale bit (the low 63 bits of bytes 8..16).
    /// Redis returns it from `PFCOUNT` without looking at the registers when
    /// [`cached_cardinality_valid`](RedisHeader::cached_cardinality_valid) is true.
    pub cached_cardinality: u64,
    /// False when bit 7 of byte 15 is set, which tells Redis to recompute.
    pub cached_cardinality_valid: bool,
}

/// Reads and checks the 16-byte header of a Redis HyperLogLog string.
///
/// This checks what Redis checks before it accepts a string as a HyperLogLog: the
/// length of the header, the magic and the encoding byte. It does not look at the
/// registers; [`Hll::from_redis_bytes`](super::Hll::from_redis_bytes) does.
///
/// # Errors
///
/// [`SketchError::TooShort`], [`SketchError::BadMagic`] or
/// [`SketchError::BadEncoding`].
pub fn read_header(bytes: &[u8]) -> Result<RedisHeader, SketchError> {
    let Some(header) = bytes.first_chunk::<HEADER_LEN>() else {
        return Err(SketchError::TooShort { len: bytes.len() });
    };
    let magic = [header[0], header[1], header[2], header[3]];
    if &magic != MAGIC {
        return Err(SketchError::BadMagic { found: magic });
    }
    let encoding = match header[4] {
        DENSE_BYTE => Encoding::Dense,
        SPARSE_BYTE => Encoding::Sparse,
        found => return Err(SketchError::BadEncoding { found }),
    };
    let raw = u64::from_le_bytes([
        header[8], header[9], header[10], header[11], header[12], header[13], header[14],
        header[15],
    ]);
    Ok(RedisHeader {
        encoding,
        cached_cardinality: raw & !(1 << 63),
        cached_cardinality_valid: header[15] & CACHE_STALE_BIT == 0,
    })
}

/// Unpacks dense registers; `total_len` is the length of the whole string.
pub(super) fn decode_dense(
    body: &[u8],
    total_len: usize,
) -> Result<Box<[u8; REGISTERS]>, SketchError> {
    if total_len != DENSE_LEN || body.len() != DENSE_LEN - HEADER_LEN {
        return Err(SketchError::BadDenseLength { len: total_len });
    }
    let mut registers = Box::new([0u8; REGISTERS]);
    // Three bytes hold exactly four six-bit registers, least significant bits first.
    for (packed, unpacked) in body
        .as_chunks::<3>()
        .0
        .iter()
        .zip(registers.as_chunks_mut::<4>().0)
    {
        let [a, b, c] = *packed;
        unpacked[0] = a & 0x3f;
        unpacked[1] = (a >> 6 | b << 2) & 0x3f;
        unpacked[2] = (b >> 4 | c << 4) & 0x3f;
        unpacked[3] = c >> 2;
    }
    Ok(registers)
}

/// Decodes sparse opcodes (the bytes after the header).
///
/// Every opcode covers at least one register and decoding stops at the first one
/// that would pass the last register, so the work is bounded by 16384 opcodes
/// whatever the length of the input.
///
/// A final XZERO without its second byte is an error here, although Redis 7.0
/// accepts it when the run it reads with a zero second byte (Redis reads the NUL
/// that terminates its string) happens to end exactly at the last register. Redis
/// never writes such a string itself, so it can only come from damage; refusing
/// it is the safer reading.
pub(super) fn decode_sparse(body: &[u8]) -> Result<Box<[u8; REGISTERS]>, SketchError> {
    let mut registers = Box::new([0u8; REGISTERS]);
    let mut covered = 0usize;
    let mut position = 0usize;
    while let Some(&opcode) = body.get(position) {
        let offset = HEADER_LEN + position;
        let (run, value, width) = match opcode >> 6 {
            // ZERO: 00xxxxxx.
            0b00 => (usize::from(opcode & 0x3f) + 1, 0, 1),
            // XZERO: 01xxxxxx yyyyyyyy, a 14-bit run length minus one.
            0b01 => {
                let Some(&low) = body.get(position + 1) else {
                    return Err(SketchError::TruncatedOpcode { offset });
                };
                (
                    (usize::from(opcode & 0x3f) << 8 | usize::from(low)) + 1,
                    0,
                    2,
                )
            }
            // VAL: 1vvvvvxx.
            _ => (
                usize::from(opcode & 0x03) + 1,
                ((opcode >> 2) & 0x1f) + 1,
                1,
            ),
        };
        let end = covered + run;
        let Some(target) = registers.get_mut(covered..end) else {
            return Err(SketchError::SparseOverrun {
                offset,
                start: covered,
                end,
            });
        };
        target.fill(value);
        covered = end;
        position += width;
    }
    if covered != REGISTERS {
        return Err(SketchError::SparseIncomplete { covered });
    }
    Ok(registers)
}

/// The runs of equal registers, in index order, as (value, length).
fn runs(registers: &[u8]) -> impl Iterator<Item = (u8, usize)> + '_ {
    let mut rest = registers;
    std::iter::from_fn(move || {
        let &first = rest.first()?;
        let len = rest.iter().take_while(|&&value| value == first).count();
        rest = rest.get(len..).unwrap_or_default();
        Some((first, len))
    })
}

/// How many opcode bytes the shortest sparse encoding of a run takes, or `None`
/// when the value does not fit a VAL opcode.
fn run_opcode_len(value: u8, len: usize) -> Option<usize> {
    match value {
        0 if len <= ZERO_MAX_RUN => Some(1),
        0 => Some(2),
        1..=VAL_MAX_VALUE => Some(len.div_ceil(VAL_MAX_RUN)),
        _ => None,
    }
}

/// The length of the sparse string (header included) for these registers, or
/// `None` when Redis would hold them dense: a value above 32, or a string longer
/// than [`SPARSE_MAX_BYTES`].
pub(super) fn sparse_len(registers: &[u8; REGISTERS]) -> Option<usize> {
    runs(registers).try_fold(HEADER_LEN, |total, (value, len)| {
        let total = total + run_opcode_len(value, len)?;
        (total <= SPARSE_MAX_BYTES).then_some(total)
    })
}

/// A header with the given encoding byte and a stale, zero cached cardinality.
fn header(encoding_byte: u8, capacity: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(capacity);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&[encoding_byte, 0, 0, 0]);
    bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, CACHE_STALE_BIT]);
    bytes
}

/// Encodes registers as a sparse string of `len` bytes (from [`sparse_len`]).
pub(super) fn encode_sparse(registers: &[u8; REGISTERS], len: usize) -> Vec<u8> {
    let mut bytes = header(SPARSE_BYTE, len);
    for (value, len) in runs(registers) {
        if value == 0 {
            // A zero run is at most 16384 long, so one opcode always holds it.
            let stored = len - 1;
            if len <= ZERO_MAX_RUN {
                bytes.push(stored as u8);
            } else {
                bytes.push(0x40 | (stored >> 8) as u8);
                bytes.push((stored & 0xff) as u8);
            }
        } else {
            let mut left = len;
            while left > 0 {
                let chunk = left.min(VAL_MAX_RUN);
                bytes.push(0x80 | (value - 1) << 2 | (chunk - 1) as u8);
                left -= chunk;
            }
        }
    }
    debug_assert_eq!(bytes.len(), len);
    bytes
}

/// Encodes registers as a dense string.
pub(super) fn encode_dense(registers: &[u8; REGISTERS]) -> Vec<u8> {
    let mut bytes = header(DENSE_BYTE, DENSE_LEN);
    bytes.resize(DENSE_LEN, 0);
    let body = bytes.get_mut(HEADER_LEN..).unwrap_or_default();
    for (unpacked, packed) in registers
        .as_chunks::<4>()
        .0
        .iter()
        .zip(body.as_chunks_mut::<3>().0)
    {
        let [r0, r1, r2, r3] = unpacked.map(|register| register & 0x3f);
        packed[0] = r0 | r1 << 6;
        packed[1] = r1 >> 2 | r2 << 4;
        packed[2] = r2 >> 4 | r3 << 2;
    }
    bytes
}
