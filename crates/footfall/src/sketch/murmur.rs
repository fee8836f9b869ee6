//! MurmurHash64A, the hash Redis feeds its HyperLogLog with.

/// The multiplier of MurmurHash64A.
const MULTIPLIER: u64 = 0xc6a4a7935bd1e995;

/// The shift of MurmurHash64A's mixing steps.
const SHIFT: u32 = 47;

/// Austin Appleby's MurmurHash64A as Redis computes it.
///
/// Redis reads the 8-byte blocks and the tail bytes in little-endian order on every
/// platform, so this function does the same rather than following the host's byte
/// order; the result is identical on big- and little-endian machines. Redis passes
/// its 32-bit seed (`0xadc83b19`, see [`SEED`](super::SEED)) widened to 64 bits,
/// which is what `seed` is here.
///
/// ```
/// use footfall::sketch::{murmur64a, SEED};
/// // The empty input hashes to a fixed value that depends only on the seed.
/// assert_eq!(murmur64a(b"", SEED), murmur64a(&[], SEED));
/// assert_ne!(murmur64a(b"a", SEED), murmur64a(b"b", SEED));
/// ```
#[must_use]
pub fn murmur64a(data: &[u8], seed: u64) -> u64 {
    // The length enters the initial state; Redis multiplies it as a 64-bit value.
    let mut hash = seed ^ (data.len() as u64).wrapping_mul(MULTIPLIER);

    let (blocks, tail) = data.as_chunks::<8>();
    for block in blocks {
        let mut k = u64::from_le_bytes(*block);
        k = k.wrapping_mul(MULTIPLIER);
        k ^= k >> SHIFT;
        k = k.wrapping_mul(MULTIPLIER);
        hash ^= k;
        hash = hash.wrapping_mul(MULTIPLIER);
    }

    // The 1 to 7 remaining bytes are folded in as one little-endian word, and only
    // when there are any: an input whose length is a multiple of 8 skips this
    // multiplication entirely.
    if !tail.is_empty() {
        for (position, &byte) in tail.iter().enumerate() {
            hash ^= u64::from(byte) << (8 * position);
        }
        hash = hash.wrapping_mul(MULTIPLIER);
    }

    hash ^= hash >> SHIFT;
    hash = hash.wrapping_mul(MULTIPLIER);
    hash ^= hash >> SHIFT;
    hash
}
