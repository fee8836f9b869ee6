//! `Hll::from_redis_bytes` on arbitrary bytes: an error or a sketch, never a panic; and
//! what decodes survives a round trip (encode, decode, encode gives the same bytes and
//! the same estimate).
#![no_main]

use footfall::sketch::Hll;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(sketch) = Hll::from_redis_bytes(data) else {
        return;
    };
    let count = sketch.count();
    let bytes = sketch.to_redis_bytes();
    let again = Hll::from_redis_bytes(&bytes).expect("a sketch's own bytes decode");
    assert_eq!(again.to_redis_bytes(), bytes, "encode ∘ decode is stable");
    assert_eq!(again.count(), count, "the estimate survives the round trip");
});
