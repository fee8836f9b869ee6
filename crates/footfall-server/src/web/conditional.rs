//! Conditional GET: one ETag recipe and one `If-None-Match` rule for every route.

use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};

/// The strong ETag of `body`: 32 hex digits (128 bits) of its SHA-256, quoted.
pub fn etag_of(body: &[u8]) -> String {
    format!("\"{}\"", hex::encode(&Sha256::digest(body)[..16]))
}

/// True when the request's `If-None-Match` matches `etag`: `*`, or any listed tag,
/// compared weakly (RFC 9110, section 13.1.2: `W/"x"` matches `"x"`), over every
/// `If-None-Match` header.
pub fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    let etag = etag.trim_start_matches("W/");
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == etag
        })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn asking(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn if_none_match_takes_lists_weak_tags_stars_and_repeated_headers() {
        let etag = etag_of(b"counts");
        assert_eq!(etag.len(), 34);
        assert!(etag.starts_with('"') && etag.ends_with('"'));
        assert_ne!(etag, etag_of(b"counts2"));
        assert!(not_modified(&asking(&[&etag]), &etag));
        assert!(not_modified(&asking(&[&format!("W/{etag}")]), &etag));
        assert!(not_modified(&asking(&[&format!("\"a\", {etag}")]), &etag));
        assert!(not_modified(&asking(&["\"a\"", &etag]), &etag));
        assert!(not_modified(&asking(&["*"]), &etag));
        assert!(!not_modified(&asking(&["\"a\""]), &etag));
        assert!(!not_modified(&HeaderMap::new(), &etag));
    }
}
