//! `SiteId::new` accepts exactly the strings the documented pattern
//! `[a-z0-9][a-z0-9-]{0,62}` matches (DESIGN.md 4.4), and an accepted id is kept as given.
#![no_main]

use std::sync::LazyLock;

use footfall::SiteId;
use libfuzzer_sys::fuzz_target;
use regex::Regex;

static PATTERN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\A[a-z0-9][a-z0-9-]{0,62}\z").expect("the pattern compiles"));

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let result = SiteId::new(text);
    assert_eq!(
        result.is_ok(),
        PATTERN.is_match(text),
        "SiteId::new({text:?}) = {result:?} disagrees with the pattern"
    );
    if let Ok(id) = result {
        assert_eq!(id.as_str(), text);
    }
});
