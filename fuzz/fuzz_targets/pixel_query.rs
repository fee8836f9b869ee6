//! The `/hit.gif` query as the route's `Query<PixelQuery>` extractor parses it (percent
//! decoding included): a query or a rejection, never a panic; a parsed site id is then
//! validated as the handler does.
#![no_main]

use axum::extract::Query;
use footfall::SiteId;
use footfall_server::ingest::PixelQuery;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut target = b"/hit.gif?".to_vec();
    target.extend_from_slice(data);
    // Only what a request line can carry reaches the extractor.
    let Ok(uri) = http::Uri::try_from(target) else {
        return;
    };
    if let Ok(Query(query)) = Query::<PixelQuery>::try_from_uri(&uri) {
        let _ = SiteId::new(&query.site);
    }
});
