//! Which page a request comes from: the host of its `Origin` or `Referer`.

use axum::http::{HeaderMap, header};

use crate::sites::Site;

/// Which header names the requesting page first.
#[derive(Clone, Copy, Debug)]
pub enum OriginPreference {
    /// `Origin`, else `Referer` (beacons: a POST always carries `Origin`).
    OriginFirst,
    /// `Referer`, else `Origin` (images and pages: a GET carries `Referer`).
    RefererFirst,
}

/// The hostname of the page that sent the request, from `Origin` or `Referer`, as sent
/// (compare it without regard to case).
pub fn origin_host(headers: &HeaderMap, preference: OriginPreference) -> Option<&str> {
    let from = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(host_of_url)
    };
    match preference {
        OriginPreference::OriginFirst => from(header::ORIGIN).or_else(|| from(header::REFERER)),
        OriginPreference::RefererFirst => from(header::REFERER).or_else(|| from(header::ORIGIN)),
    }
}

/// The host of an absolute http(s) URL (`Origin` or `Referer`), as written in it (compare
/// it without regard to case); bracketed for IPv6. `None` for anything else: another
/// scheme, no host, or a host with characters no hostname has.
///
/// Read straight from the text, byte by byte, rather than through a URL parser or
/// substring searches: it runs on every hit, and all it needs is the authority's host.
pub fn host_of_url(url: &str) -> Option<&str> {
    let rest = strip_scheme(url, "http://").or_else(|| strip_scheme(url, "https://"))?;
    let authority = &rest[..rest
        .bytes()
        .position(|b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len())];
    // Browsers never send credentials in these headers; a URL that has them names its
    // host after the last `@`.
    let host_and_port = &authority[authority
        .bytes()
        .rposition(|b| b == b'@')
        .map_or(0, |at| at + 1)..];
    let host = if host_and_port.starts_with('[') {
        let end = host_and_port.find(']')?;
        let (host, after) = host_and_port.split_at(end + 1);
        let inside = &host[1..host.len() - 1];
        let ipv6 = !inside.is_empty()
            && inside
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        if !ipv6 || !port_is_valid(after) {
            return None;
        }
        host
    } else {
        let (host, after) = host_and_port.split_at(
            host_and_port
                .bytes()
                .position(|b| b == b':')
                .unwrap_or(host_and_port.len()),
        );
        if !port_is_valid(after) {
            return None;
        }
        host
    };
    let hostname = host.starts_with('[')
        || host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
    (!host.is_empty() && hostname).then_some(host)
}

/// `url` after `scheme` (`http://` or `https://`, in any case).
fn strip_scheme<'a>(url: &'a str, scheme: &str) -> Option<&'a str> {
    let head = url.as_bytes().get(..scheme.len())?;
    // The scheme is ASCII, so the cut falls on a character boundary.
    head.eq_ignore_ascii_case(scheme.as_bytes())
        .then(|| &url[scheme.len()..])
}

/// Nothing, or `:` and at most five digits.
fn port_is_valid(after_host: &str) -> bool {
    match after_host.strip_prefix(':') {
        None => after_host.is_empty(),
        Some(port) => port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit()),
    }
}

/// Where the requesting page comes from, by its `Origin`, else its `Referer`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PageHost {
    /// Neither header: a direct fetch, an image proxy, a no-referrer page.
    Unknown,
    /// An http(s) page on this host, lowercased.
    Host(String),
    /// A header that names no http(s) host (`Origin: null`, a `file:` page).
    Opaque,
}

/// The requesting page's host, by its `Origin`, else its `Referer`.
pub fn page_host(headers: &HeaderMap) -> PageHost {
    let header = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER));
    match header {
        None => PageHost::Unknown,
        Some(value) => match value.to_str().ok().and_then(host_of_url) {
            Some(host) => PageHost::Host(host.to_ascii_lowercase()),
            None => PageHost::Opaque,
        },
    }
}

/// True unless the requesting page is known and is not one of the site's.
pub fn shown_on_site(site: &Site, headers: &HeaderMap) -> bool {
    match page_host(headers) {
        PageHost::Unknown => true,
        PageHost::Host(host) => site.allows_host(&host),
        PageHost::Opaque => false,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use axum::http::HeaderValue;

    use super::*;

    /// What a URL parser says the host is, lowercased: the reference `host_of_url` reads
    /// without one.
    fn parsed_host(url: &str) -> Option<String> {
        let uri: http::Uri = url.parse().ok()?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return None;
        }
        Some(uri.host()?.to_ascii_lowercase())
    }

    #[test]
    fn hosts_of_origins_and_referers() {
        let cases = [
            (
                "https://caukee.travinh.gov.vn",
                Some("caukee.travinh.gov.vn"),
            ),
            ("http://localhost:8080", Some("localhost")),
            ("https://Example.VN/tin-tuc/1?x=1#top", Some("Example.VN")),
            ("HTTPS://example.vn", Some("example.vn")),
            ("http://[::1]:8080/", Some("[::1]")),
            ("http://user:pw@example.vn/", Some("example.vn")),
            ("http://127.0.0.1", Some("127.0.0.1")),
            ("ftp://example.vn", None),
            ("example.vn", None),
            ("http://", None),
            ("http:///path", None),
            ("http://exa mple.vn", None),
            ("http://[::1", None),
            ("http://[zz]/", None),
            ("null", None),
        ];
        for (url, expected) in cases {
            assert_eq!(host_of_url(url), expected, "{url:?}");
        }
    }

    proptest! {
        /// Whatever the authority, a host read without a parser is the one a parser reads.
        /// (Paths and queries are drawn from URI characters: a parser also refuses a
        /// whole URL for a bad character there, which says nothing about its host.)
        #[test]
        fn agrees_with_a_url_parser(
            url in "(https?|HTTP|ftp)://([a-zA-Z0-9._@:-]{0,12}|\\[[0-9a-f:]{0,6}\\])(:[0-9]{0,5})?([/?#][a-zA-Z0-9/?=&%._~-]{0,10})?"
        ) {
            if let Some(host) = host_of_url(&url) {
                prop_assert_eq!(Some(host.to_ascii_lowercase()), parsed_host(&url), "{}", url);
            }
        }
    }

    #[test]
    fn page_hosts() {
        let with = |name: header::HeaderName, value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(name, HeaderValue::from_str(value).unwrap());
            page_host(&headers)
        };
        assert_eq!(page_host(&HeaderMap::new()), PageHost::Unknown);
        assert_eq!(
            with(header::REFERER, "https://caukee.travinh.gov.vn/tin/1"),
            PageHost::Host("caukee.travinh.gov.vn".to_owned())
        );
        assert_eq!(with(header::ORIGIN, "null"), PageHost::Opaque);
        assert_eq!(with(header::REFERER, "file:///x.html"), PageHost::Opaque);
    }
}
