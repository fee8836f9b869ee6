//! Conditional GET: one ETag recipe and one `If-None-Match` rule for every route.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The strong ETag of `body`: 32 hex digits (128 bits) of its SHA-256, quoted.
pub fn etag_of(body: &[u8]) -> String {
    format!("\"{}\"", hex::encode(&Sha256::digest(body)[..16]))
}

/// [`etag_of`] as the header carries it: quoted hex digits are always a valid header
/// value.
pub fn etag_header(body: &[u8]) -> HeaderValue {
    HeaderValue::from_str(&etag_of(body)).expect("quoted hex digits are a valid header value")
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

/// The answer to a GET of `body`, a document rendered per request: `304 Not Modified`
/// when the request's `If-None-Match` names its ETag, else `body`; either way with
/// `Content-Type: content_type` and the ETag. The caller adds caching and CORS headers.
pub fn respond(headers: &HeaderMap, body: String, content_type: &'static str) -> Response {
    let etag = etag_header(body.as_bytes());
    let mut response = if not_modified(headers, etag.to_str().unwrap_or_default()) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        body.into_response()
    };
    let out = response.headers_mut();
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    out.insert(header::ETAG, etag);
    response
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
