//! Counting a page view: `POST /api/v1/hit` (beacon) and `GET /hit.gif` (pixel).
//!
//! Every accepted or silently dropped hit gets the same fast answer, so robots and
//! forgers learn nothing from it; only malformed requests and unknown sites get a 4xx
//! that says what is wrong. The client's IP and User-Agent are used to derive the visitor
//! id and the robot verdict, and go no further.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use footfall::counter::{Hit, HitKind};
use serde::Deserialize;

use crate::bots;
use crate::error::AppError;
use crate::metrics::DropReason;
use crate::recent::{Reader, Seen};
use crate::sites::Site;
use crate::state::AppState;
use crate::web::origin::{OriginPreference, origin_host};
use crate::web::site::registered_site;

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
    pub path: Option<BodyText<'a>>,
    /// The page's referrer (validated for size, not stored).
    #[serde(default, borrow)]
    pub referrer: Option<BodyText<'a>>,
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

/// A string of the beacon's body, borrowed from it unless it has escapes. serde borrows
/// a `Cow<str>` field, but not one inside an `Option`, which it copies into a new
/// `String`: this newtype makes an optional one borrow too.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct BodyText<'a>(#[serde(borrow)] pub Cow<'a, str>);

impl BodyText<'_> {
    fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether a beacon's query asks for the counts (`?counts=1`: answer with the site's
/// counts instead of 204): its `counts` parameter, given once, is `1` (percent-decoded).
/// Read without a serde pass on every hit; the tests hold it to the rule of
/// deserialising a one-field struct, which earlier versions did (a repeated field is an
/// error there, so no counts).
fn wants_counts(query: Option<&str>) -> bool {
    let mut counts = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(name, _)| name == "counts")
        .map(|(_, value)| value);
    counts.next().is_some_and(|value| value == "1") && counts.next().is_none()
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
    let wants_counts = wants_counts(parts.uri.query());
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
    check_url("path", body.path.as_ref().map(BodyText::as_str))?;
    check_url("referrer", body.referrer.as_ref().map(BodyText::as_str))?;
    let site = registered_site(&state.sites, &body.site)?;
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
    let site = registered_site(&state.sites, &query.site)?;
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

    use super::*;

    /// The beacon's query as earlier versions read it.
    #[derive(Debug, Default, Deserialize)]
    struct HitQuery {
        #[serde(default)]
        counts: Option<String>,
    }

    /// The rule as it was: axum's `Query` over [`HitQuery`].
    fn wants_counts_by_serde(query: Option<&str>) -> bool {
        let uri: axum::http::Uri = match query {
            Some(query) => format!("/api/v1/hit?{query}"),
            None => "/api/v1/hit".to_owned(),
        }
        .parse()
        .expect("a URI");
        Query::<HitQuery>::try_from_uri(&uri).is_ok_and(|Query(q)| q.counts.as_deref() == Some("1"))
    }

    #[test]
    fn the_counts_flag_is_counts_1_given_once() {
        for (query, wants) in [
            (None, false),
            (Some(""), false),
            (Some("counts=1"), true),
            (Some("x=2&counts=1&y"), true),
            (Some("counts=%31"), true),
            (Some("%63ounts=1"), true),
            (Some("counts=0"), false),
            (Some("counts"), false),
            (Some("counts=1&counts=1"), false),
            (Some("counts=0&counts=1"), false),
            (Some("Counts=1"), false),
            (Some("counts=1%20"), false),
        ] {
            assert_eq!(wants_counts(query), wants, "{query:?}");
            assert_eq!(
                wants_counts_by_serde(query),
                wants,
                "the old rule on {query:?}"
            );
        }
    }

    proptest! {
        /// Same answer as deserialising the query into `HitQuery`, on queries of a few
        /// parameters whose names and values are the ones that matter (repeated, escaped,
        /// empty, without `=`).
        #[test]
        fn the_counts_flag_matches_the_serde_rule(
            params in proptest::collection::vec(
                (
                    prop_oneof![Just("counts"), Just("%63ounts"), Just("Counts"), Just("x"), Just("")],
                    proptest::option::of(prop_oneof![
                        Just("1"), Just("0"), Just("%31"), Just(""), Just("1+"), Just("%"), Just("1%26counts%3D1"),
                    ]),
                ),
                0..4,
            )
        ) {
            let query = params
                .iter()
                .map(|(name, value)| match value {
                    Some(value) => format!("{name}={value}"),
                    None => (*name).to_owned(),
                })
                .collect::<Vec<_>>()
                .join("&");
            prop_assert_eq!(wants_counts(Some(&query)), wants_counts_by_serde(Some(&query)), "{}", query);
        }
    }

    /// The beacon's strings borrow from the body (no copy per hit) unless they need
    /// unescaping, and read the same either way.
    #[test]
    fn hit_body_strings_borrow_unless_escaped() {
        let plain = br#"{"site":"demo","path":"/tin-tuc/a.html","referrer":"https://a.vn/"}"#;
        let body: HitBody<'_> = serde_json::from_slice(plain).unwrap();
        let path = body.path.expect("a path");
        let referrer = body.referrer.expect("a referrer");
        assert!(matches!(body.site, Cow::Borrowed("demo")));
        assert!(
            matches!(path.0, Cow::Borrowed("/tin-tuc/a.html")),
            "{path:?}"
        );
        assert!(
            matches!(referrer.0, Cow::Borrowed("https://a.vn/")),
            "{referrer:?}"
        );

        let escaped = br#"{"site":"demo","path":"/th\u00f4ng-b\u00e1o"}"#;
        let body: HitBody<'_> = serde_json::from_slice(escaped).unwrap();
        assert_eq!(body.path.expect("a path").as_str(), "/thông-báo");
        assert!(body.referrer.is_none());
        assert!(body.record && !body.heartbeat);
    }
}
