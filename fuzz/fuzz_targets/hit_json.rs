//! The beacon body as `POST /api/v1/hit` parses it: arbitrary bytes are a `HitBody` or
//! an error, never a panic; a parsed body's site id is then validated as the handler does.
#![no_main]

use footfall::SiteId;
use footfall_server::ingest::HitBody;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = serde_json::from_slice::<HitBody<'_>>(data) {
        let _ = SiteId::new(&body.site);
    }
});
