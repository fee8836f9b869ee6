//! Counting a page view: `POST /api/v1/hit` (beacon) and `GET /hit.gif` (pixel).
//!
//! Every accepted or silently dropped hit gets the same fast answer, so robots and
//! forgers learn nothing from it; only malformed requests and unknown sites get a 4xx
//! that says what is wrong. The client's IP and User-Agent are used to derive the visitor
//! id and the robot verdict, and go no further.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use footfall::SiteId;
use footfall::counter::{Hit, HitKind};
use serde::Deserialize;

use crate::bots;
use crate::error::AppError;
use crate::metrics::DropReason;
use crate::recent::{Reader, Seen};
use crate::sites::Site;
use crate::state::AppState;

/// The largest hit body accepted, in bytes: a JSON object with a site, a path and a
/// referrer fits in far less.
pub const MAX_HIT_BODY: usize = 4 * 1024;
/// The longest path or referrer accepted, in bytes.
const MAX_URL_LEN: usize = 2048;

/// The beacon's body. Its strings borrow from the request body where they can (no
/// escapes), so reading a hit allocates nothing for them.
#[derive(Debug, Deserialize)]
pub struct HitBody<'a> {
    /// The site id.
    #[serde(borrow)]
    pub site: Cow<'a, str>,
    /// The page path (validated for size, not stored).
    #[serde(default, borrow)]
    pub path: Option<Cow<'a, str>>,
    /// The page's referrer (validated for size, not stored).
    #[serde(default, borrow)]
    pub referrer: Option<Cow<'a, str>>,
    /// A "still here" signal from a visible page (`widget.js` `data-heartbeat`): it keeps
    /// the visitor in the online window and adds no page view, visit or visitor
    /// elsewhere. It passes the same filters as a page view.
    #[serde(default)]
    pub heartbeat: bool,
    /// `false` asks for the answer without counting anything: `widget.js` sends it from a
    /// page driven by automation (WebDriver, headless frameworks), whose box is still
    /// drawn. Counting on a client's word is harmless: the worst a client can do with it
    /// is not be counted.
    #[serde(default = "record_by_default")]
    pub record: bool,
}

fn record_by_default() -> bool {
    true
}

/// The beacon's query: `?counts=1` answers with the site's counts instead of 204.
#[derive(Debug, Default, Deserialize)]
pub struct HitQuery {
    /// `1` for the counts JSON (the widget's one request).
    #[serde(default)]
    pub counts: Option<String>,
}

/// The pixel's query.
#[derive(Debug, Deserialize)]
pub struct PixelQuery {
    /// The site id.
    pub site: String,
    /// The page path.
    #[serde(default)]
    pub path: Option<String>,
    /// The page's referrer.
    #[serde(default)]
    pub referrer: Option<String>,
}

/// A transparent 1×1 GIF.
const PIXEL_GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// `POST /api/v1/hit` (`?counts=1`: answer with the counts, see
/// [`crate::widget::counts_reply`]).
///
/// It takes the request whole rather than through `HeaderMap` and `Bytes` extractors,
/// which would copy the headers of every hit.
pub async fn post_hit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Result<Response, AppError> {
    let (mut parts, body) = request.into_parts();
    let headers = std::mem::take(&mut parts.headers);
    let wants_counts = Query::<HitQuery>::try_from_uri(&parts.uri)
        .is_ok_and(|Query(q)| q.counts.as_deref() == Some("1"));
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim());
    let accepted = media_type.is_some_and(|media_type| {
        media_type.eq_ignore_ascii_case("text/plain")
            || media_type.eq_ignore_ascii_case("application/json")
    });
    if !accepted {
        return Err(AppError::UnsupportedMediaType(format!(
            "send the hit as text/plain or application/json, not {}",
            media_type.unwrap_or("no content type")
        )));
    }
    // The body limit layer bounds it; its rejection (413, or 400) is answered as is.
    let body = match Bytes::from_request(Request::from_parts(parts, body), &()).await {
        Ok(body) => body,
        Err(rejection) => return Ok(rejection.into_response()),
    };
    let body: HitBody<'_> = serde_json::from_slice(&body)
        .map_err(|e| AppError::BadRequest(format!("hit body: {e}")))?;
    check_url("path", body.path.as_deref())?;
    check_url("referrer", body.referrer.as_deref())?;
    let site = registered_site(&state, &body.site)?;
    let origin = origin_host(&headers, OriginPreference::OriginFirst);
    let kind = if body.heartbeat {
        HitKind::Heartbeat
    } else {
        HitKind::Pageview
    };
    // `"record": false` (the widget on a page driven by automation): answer, count nothing.
    let reader = if body.record {
        count(&state, &site, peer, &headers, origin, &Method::POST, kind).await
    } else {
        None
    };
    if wants_counts {
        return Ok(crate::widget::counts_reply(&state, &site, &headers, reader).await);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /hit.gif?site=…&path=…` (taking the request whole, like [`post_hit`]).
pub async fn get_pixel(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Result<Response, AppError> {
    let (parts, _) = request.into_parts();
    let Query(query) = Query::<PixelQuery>::try_from_uri(&parts.uri)
        .map_err(|e| AppError::BadRequest(e.body_text()))?;
    check_url("path", query.path.as_deref())?;
    check_url("referrer", query.referrer.as_deref())?;
    let site = registered_site(&state, &query.site)?;
    let origin = origin_host(&parts.headers, OriginPreference::RefererFirst);
    count(
        &state,
        &site,
        peer,
        &parts.headers,
        origin,
        &parts.method,
        HitKind::Pageview,
    )
    .await;
    Ok((
        [
            (header::CONTENT_TYPE, "image/gif"),
            (header::CACHE_CONTROL, "no-store, max-age=0"),
        ],
        PIXEL_GIF,
    )
        .into_response())
}

fn check_url(name: &str, value: Option<&str>) -> Result<(), AppError> {
    match value {
        Some(v) if v.len() > MAX_URL_LEN => Err(AppError::BadRequest(format!(
            "{name} is longer than {MAX_URL_LEN} bytes"
        ))),
        _ => Ok(()),
    }
}

/// Validates a site id and finds its site: 400 for a malformed id, 404 for an unknown one.
pub fn registered_site(state: &AppState, id: &str) -> Result<Arc<Site>, AppError> {
    SiteId::validate(id).map_err(|e| AppError::BadRequest(format!("site: {e}")))?;
    state
        .sites
        .get(id)
        .ok_or_else(|| AppError::NotFound(format!("no site {id} is registered")))
}

/// Which header names the requesting page first.
#[derive(Clone, Copy)]
pub(crate) enum OriginPreference {
    /// `Origin`, else `Referer` (beacons: a POST always carries `Origin`).
    OriginFirst,
    /// `Referer`, else `Origin` (images and pages: a GET carries `Referer`).
    RefererFirst,
}

/// The hostname of the page that sent the request, from `Origin` or `Referer`, as sent
/// (compare it without regard to case).
pub(crate) fn origin_host(headers: &HeaderMap, preference: OriginPreference) -> Option<&str> {
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
/// Read straight from the text rather than through a URL parser: it runs on every hit,
/// and all it needs is the authority's host.
pub fn host_of_url(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // Browsers never send credentials in these headers; a URL that has them names its
    // host after the last `@`.
    let host_and_port = authority.rsplit('@').next().unwrap_or_default();
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
        let (host, after) =
            host_and_port.split_at(host_and_port.find(':').unwrap_or(host_and_port.len()));
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

/// Nothing, or `:` and at most five digits.
fn port_is_valid(after_host: &str) -> bool {
    match after_host.strip_prefix(':') {
        None => after_host.is_empty(),
        Some(port) => port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit()),
    }
}

/// Applies the filters and queues the hit. Every outcome is counted by reason. For an
/// accepted page view, what it adds for its own reader (see [`Reader`]).
async fn count(
    state: &AppState,
    site: &Site,
    peer: SocketAddr,
    headers: &HeaderMap,
    origin: Option<&str>,
    method: &Method,
    kind: HitKind,
) -> Option<Reader> {
    let verdict = judge(state, site, peer, headers, origin, method, kind).await;
    let counters = &state.ingest_counters;
    let (hit, reader) = match verdict {
        Ok(accepted) => accepted,
        Err(reason) => {
            counters.dropped(reason);
            return None;
        }
    };
    match state.buffer.push(hit) {
        Ok(()) => {
            counters.accepted();
            reader
        }
        Err(reason) => {
            counters.dropped(reason);
            None
        }
    }
}

async fn judge(
    state: &AppState,
    site: &Site,
    peer: SocketAddr,
    headers: &HeaderMap,
    origin: Option<&str>,
    method: &Method,
    kind: HitKind,
) -> Result<(Hit, Option<Reader>), DropReason> {
    if method == Method::HEAD {
        return Err(DropReason::Head);
    }
    if bots::is_prefetch(headers) {
        return Err(DropReason::Prefetch);
    }
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    if let bots::Verdict::Robot(kind) = state.bots.verdict(user_agent) {
        state.ingest_counters.robot(kind);
        return Err(DropReason::Bot);
    }
    if !origin.is_some_and(|host| site.allows_host(host)) {
        return Err(DropReason::ForeignOrigin);
    }
    if site.settings.respect_do_not_track && asks_not_to_track(headers) {
        return Err(DropReason::DoNotTrack);
    }
    let client = state.proxies.client_ip(peer, headers);
    if !within_rate_limit(state, client) {
        return Err(DropReason::RateLimited);
    }
    let now = state.clock.now();
    let identity = state
        .salts
        .identify(site, client, user_agent.unwrap_or(""), now)
        .await
        .ok_or(DropReason::SaltUnavailable)?;
    // A visitor id this instance has not seen within the hour is charged to its address's
    // budget of new visitors: a script that changes its User-Agent on every hit makes a
    // new id each time, while people behind one address keep theirs.
    let seen = state.recent.touch(&site.id, &identity.visitor, now);
    if seen == Seen::New && !within_visitor_budget(state, client) {
        return Err(DropReason::VisitorBudget);
    }
    let previous = seen.last();
    let reader =
        (kind == HitKind::Pageview).then(|| Reader::of_page_view(previous, now, &site.rules));
    Ok((
        Hit {
            site: site.id.clone(),
            at: now,
            visitor: identity.visitor,
            previous_visitor: identity.previous_visitor,
            kind,
        },
        reader,
    ))
}

fn asks_not_to_track(headers: &HeaderMap) -> bool {
    headers.get("dnt").is_some_and(|v| v.as_bytes() == b"1")
        || headers.get("sec-gpc").is_some_and(|v| v.as_bytes() == b"1")
}

/// The bucket a client address is limited in: the IPv4 address, or the IPv6 /64 (a single
/// host usually owns a whole /64, so per-address buckets would let it rotate addresses
/// freely).
fn limit_key(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::from(octets)
        }
        v4 => v4,
    }
}

fn within_rate_limit(state: &AppState, client: IpAddr) -> bool {
    // Past its bound of clients the limiter refuses new addresses without tracking them
    // (see `rate_limit`), while the ones it tracks keep their budgets.
    state.limiter.check_key(&limit_key(client)).is_ok()
}

fn within_visitor_budget(state: &AppState, client: IpAddr) -> bool {
    state.visitor_budget.check_key(&limit_key(client)).is_ok()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::host_of_url;

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
}
