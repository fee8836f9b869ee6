//! Widgets: the embed script (`/widget.js`), the iframe page (`/embed/{site}`), counter
//! badges (`/badge/{site}/{window}.svg`, and `.json` for shields.io, in [`shields`]) and
//! the demo page (`/`).
//!
//! The HTTP side lives here; what the widgets look like is in [`render`], pure functions
//! of numbers and options. None of these routes counts anything by itself: the script
//! records its page view through `POST /api/v1/hit?counts=1` ([`counts_reply`]), and an
//! iframe load or a badge fetch is not a page view (a README badge is fetched by an
//! image proxy such as `github-camo`, not by a reader).
//!
//! Anti-forgery: a box or badge requested from a page whose hostname (`Origin`, else
//! `Referer`) is not registered for the site shows "không hợp lệ trên tên miền này" /
//! "not valid on this domain" instead of numbers. A request with neither header (a
//! README badge through an image proxy, a page with `Referrer-Policy: no-referrer`)
//! shows the numbers: they are public anyway (`/api/v1/sites/{site}/counts`), and the
//! iframe page is still kept off foreign pages by its `frame-ancestors`.

pub mod render;
pub mod script;
pub mod shields;

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use footfall::{Metric, SiteId, Window};
use serde::Deserialize;

use crate::describe::{self, Lang};
use crate::error::AppError;
use crate::sites::{DEMO_SITE, Site};
use crate::state::AppState;
use crate::web::conditional::{not_modified, respond};
use crate::web::cors;
use crate::web::origin::shown_on_site;
use crate::web::site::{RegisteredSite, registered_site};
use render::{Badge, Grouping, Theme};

/// `/widget.js` may change on upgrade: caches keep it 5 minutes.
const SCRIPT_CACHE_SHORT: &str = "public, max-age=300";
/// `/widget.<hash>.js` never changes: a year, immutable.
const SCRIPT_CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Badges and embeds show live numbers: caches (and image proxies) must revalidate.
const LIVE_CACHE: &str = "no-cache, max-age=0";
/// The longest custom badge label, in characters.
const MAX_BADGE_LABEL: usize = 40;

/// The widget routes, for the public listener.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(demo_page))
        .route("/widget.js", get(widget_js))
        .route(&script::script().versioned_path, get(widget_js_versioned))
        .route("/widget.json", get(widget_manifest))
        .route("/embed/{site}", get(embed_page))
        .route("/badge/{site}/{file}", get(badge))
}

/// The answer to `POST /api/v1/hit?counts=1`, after the hit went through the usual
/// filters: the site's counts JSON plus `"valid": true` and the footer's labels, for
/// accepted and silently dropped hits alike (a robot learns nothing). A page on a
/// hostname that is not the site's gets `"valid": false` and no numbers. Both carry
/// `Access-Control-Allow-Origin` for the requesting origin, so the script can read the
/// verdict and show "not valid on this domain" instead of failing with a CORS error; the
/// numbers themselves only ever go to registered origins.
///
/// The counts come from the cache, read before this page view was written; `reader` says
/// what the page view adds for its own reader (one page view; a visit, a visitor of the
/// day, an online visitor when it is the first), sent as `"reader"` for the script to add
/// to the numbers it draws, so a site's first reader sees 1, not 0.
pub async fn counts_reply(
    state: &AppState,
    site: &Arc<Site>,
    headers: &HeaderMap,
    reader: Option<crate::recent::Reader>,
) -> Response {
    let now = state.clock.now();
    let on_site = shown_on_site(site, headers);
    let footer = || render::json_for_script(&render::footer_json(site, now, on_site));
    let mut response = if on_site {
        match state.counts.get(site).await {
            Ok(counts) => (
                [(header::CONTENT_TYPE, "application/json")],
                counts.widget_json(reader, footer),
            )
                .into_response(),
            Err(error) => error.into_response(),
        }
    } else {
        let footer = footer();
        let site_id = render::json_for_script(&serde_json::Value::from(site.id.as_str()));
        (
            [(header::CONTENT_TYPE, "application/json")],
            format!("{{\"site\":{site_id},\"valid\":false,\"footer\":{footer}}}"),
        )
            .into_response()
    };
    let out = response.headers_mut();
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    cors::allow_any_page(headers, out);
    response
}

fn grouping_of(site: &Site, requested: Option<&str>) -> Grouping {
    match requested {
        Some(name @ ("dot" | "comma")) => Grouping::parse(name),
        _ => Grouping::parse(&site.settings.footer.number_format),
    }
}

fn header_value(value: &str) -> Result<HeaderValue, AppError> {
    HeaderValue::from_str(value)
        .map_err(|_| AppError::Internal("a computed header is not a valid value".to_owned()))
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

fn serve_script(headers: &HeaderMap, cache_control: &'static str) -> Response {
    let script = script::script();
    let mut response = if not_modified(headers, &script.etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else if accepts_gzip(headers) {
        (
            [(header::CONTENT_ENCODING, "gzip")],
            Bytes::from_static(script.gzip.as_slice()),
        )
            .into_response()
    } else {
        Bytes::from_static(script.body.as_bytes()).into_response()
    };
    let out = response.headers_mut();
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    out.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    // Any page may load the script; `*` also lets `integrity` + `crossorigin` (SRI) work.
    cors::allow_everyone(out);
    out.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("cross-origin"),
    );
    if let Ok(etag) = HeaderValue::from_str(&script.etag) {
        out.insert(header::ETAG, etag);
    }
    response
}

/// `GET /widget.js`: the current script, cached briefly.
pub async fn widget_js(headers: HeaderMap) -> Response {
    serve_script(&headers, SCRIPT_CACHE_SHORT)
}

/// `GET /widget.<hash>.js`: the same bytes under a name that changes with them.
pub async fn widget_js_versioned(headers: HeaderMap) -> Response {
    serve_script(&headers, SCRIPT_CACHE_IMMUTABLE)
}

/// `GET /widget.json`: where the versioned script is and its SRI value.
pub async fn widget_manifest() -> Response {
    let script = script::script();
    let body = serde_json::json!({
        "url": script.versioned_path,
        "integrity": script.integrity,
        "bytes": script.body.len(),
        "gzip_bytes": script.gzip.len(),
    });
    let mut response = (
        [(header::CACHE_CONTROL, SCRIPT_CACHE_SHORT)],
        axum::Json(body),
    )
        .into_response();
    cors::allow_everyone(response.headers_mut());
    response
}

/// The embed page's query.
#[derive(Debug, Deserialize)]
pub struct EmbedQuery {
    /// `vi` (default) or `en`.
    pub lang: Option<String>,
    /// `light` (default), `dark` or `auto`.
    pub theme: Option<String>,
    /// `dot` or `comma`; default: the site's number format.
    pub grouping: Option<String>,
}

/// `frame-ancestors` for a site: each hostname over http and https, any port. IPv6
/// literals are left out: CSP host sources cannot express them.
fn frame_ancestors(site: &Site) -> String {
    let sources: Vec<String> = site
        .hostnames
        .iter()
        .filter(|h| !h.starts_with('['))
        .flat_map(|h| [format!("http://{h}:*"), format!("https://{h}:*")])
        .collect();
    if sources.is_empty() {
        "'none'".to_owned()
    } else {
        sources.join(" ")
    }
}

/// `GET /embed/{site}?lang=&theme=&grouping=`: the box as a page for an iframe. It counts
/// nothing: an iframe load is not a page view (a page without JavaScript counts itself
/// with `/hit.gif`).
pub async fn embed_page(
    State(state): State<AppState>,
    RegisteredSite(site): RegisteredSite,
    query: Result<Query<EmbedQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let Query(query) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let lang = Lang::parse(query.lang.as_deref());
    let theme = Theme::parse(query.theme.as_deref());
    let grouping = grouping_of(&site, query.grouping.as_deref());
    let valid = shown_on_site(&site, &headers);
    let counts = state.counts.get(&site).await?;
    let mut model = render::box_model(&site, &counts.snapshot, lang, valid);
    // In an iframe the badge image's Referer would be this page, not the host page, so
    // footfall's own domain-bound badge cannot judge the host: the iframe shows only an
    // official seal, whose issuer judges by its own rules.
    model.trust = render::trust_slot(&site, lang).filter(|slot| slot.official_html.is_some());
    let seal_images = if model.trust.is_some() {
        " https://tinnhiemmang.vn"
    } else {
        ""
    };
    let css = render::embed_css(theme);
    let html = render::embed_html(&model, grouping, &css);
    let csp = format!(
        "default-src 'none'; style-src {}; img-src 'self'{seal_images}; base-uri 'none'; form-action 'none'; frame-ancestors {}",
        render::csp_hash(&css),
        frame_ancestors(&site),
    );
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, LIVE_CACHE),
            (header::VARY, "Referer, Origin"),
        ],
        html,
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, header_value(&csp)?);
    Ok(response)
}

/// The badge's query.
#[derive(Debug, Deserialize)]
pub struct BadgeQuery {
    /// `visits`, `visitors` or `pageviews`; default: the site's metric for the window.
    pub metric: Option<String>,
    /// `vi` (default) or `en`.
    pub lang: Option<String>,
    /// A label instead of the standard one (at most 40 characters).
    pub label: Option<String>,
    /// `dot` or `comma`; default: the site's number format.
    pub grouping: Option<String>,
}

/// `GET /badge/{site}/{window}.svg`: a shields-style counter badge. It counts nothing,
/// so an image proxy's fetch (`github-camo`) is never a page view.
pub async fn badge(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<BadgeQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let Path((site, file)) =
        path.map_err(|e| AppError::BadRequest(format!("badge path: {}", e.body_text())))?;
    let site = registered_site(&state.sites, &site)?;
    let (window, format) = shields::badge_file(&file)
        .ok_or_else(|| AppError::NotFound(shields::UNKNOWN_BADGE.to_owned()))?;
    let Query(query) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let metric = badge_metric(&site, window, query.metric.as_deref())?;
    let lang = Lang::parse(query.lang.as_deref());
    let label = match query.label {
        Some(label) => check_badge_label(label)?,
        None => render::label(&site, window, lang),
    };
    let grouping = grouping_of(&site, query.grouping.as_deref());
    let badge = if shown_on_site(&site, &headers) {
        let counts = state.counts.get(&site).await?;
        let figure = counts
            .snapshot
            .figures
            .iter()
            .find(|f| f.definition.window == window && f.definition.metric == metric)
            .ok_or_else(|| AppError::Internal(format!("no {window:?} {metric:?} figure")))?;
        let value = render::format_number(figure.value, grouping);
        let about = describe::describe(
            &figure.definition,
            site.settings.visit_timeout_minutes,
            lang,
        );
        Badge {
            title: format!("{label}: {value} \u{2013} {about}"),
            label,
            value,
            valid: true,
        }
    } else {
        let value = render::invalid_message(lang).to_owned();
        Badge {
            title: format!("{label}: {value}"),
            label,
            value,
            valid: false,
        }
    };
    if format == shields::BadgeFormat::ShieldsJson {
        return Ok(shields::endpoint_response(&badge, &headers, LIVE_CACHE));
    }
    let mut response = respond(
        &headers,
        render::badge_svg(&badge),
        "image/svg+xml; charset=utf-8",
    );
    let out = response.headers_mut();
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static(LIVE_CACHE));
    out.insert(header::VARY, HeaderValue::from_static("Referer, Origin"));
    Ok(response)
}

fn badge_metric(site: &Site, window: Window, requested: Option<&str>) -> Result<Metric, AppError> {
    let metric = match requested {
        Some(name) => Metric::from_name(name).ok_or_else(|| {
            AppError::BadRequest("metric: expected visits, visitors or pageviews".to_owned())
        })?,
        None if window == Window::Online => Metric::Visitors,
        None => site
            .lines
            .iter()
            .find(|(w, _)| *w == window)
            .map_or(Metric::Visits, |(_, m)| *m),
    };
    if window == Window::Online && metric != Metric::Visitors {
        return Err(AppError::BadRequest(
            "metric: online counts visitors only".to_owned(),
        ));
    }
    Ok(metric)
}

/// A badge label from the query: short, and free of control and bidi-override
/// characters (the same rule as configured labels); escaped where drawn.
fn check_badge_label(label: String) -> Result<String, AppError> {
    let bad = label.chars().any(crate::text::is_disallowed_char);
    if bad || label.chars().count() > MAX_BADGE_LABEL || label.trim().is_empty() {
        return Err(AppError::BadRequest(format!(
            "label: 1 to {MAX_BADGE_LABEL} characters, no control or bidirectional-override characters"
        )));
    }
    Ok(label)
}

/// The demo page's query.
#[derive(Debug, Deserialize)]
pub struct DemoQuery {
    /// `vi` (default) or `en`.
    pub lang: Option<String>,
}

/// The origin the browser used to reach us, for the snippet on the demo page. The Host
/// header is the client's own word, so it is only used when it looks like a host (and
/// is escaped where shown); it only ever reaches the page of the client that sent it.
fn request_origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("footfall.example.vn");
    let https = headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    format!("{}://{host}", if https { "https" } else { "http" })
}

/// `GET /`: the demo page, on an install where the `demo` site is registered.
pub async fn demo_page(
    State(state): State<AppState>,
    query: Result<Query<DemoQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let demo = SiteId::new(DEMO_SITE).map_err(|e| AppError::Internal(e.to_string()))?;
    let Some(site) = state.sites.get(&demo) else {
        return Err(AppError::NotFound(
            "no demo site here; see /widget.json and the README".to_owned(),
        ));
    };
    let Query(query) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let script = script::script();
    let lang = Lang::parse(query.lang.as_deref());
    let page = render::DemoPage {
        lang,
        origin: request_origin(&headers),
        script_path: script.versioned_path.clone(),
        integrity: script.integrity.clone(),
        box_title: render::title(&site, lang),
        box_lines: site.lines.len(),
    };
    let csp = format!(
        "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self'; style-src {}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        render::csp_hash(render::demo_css())
    );
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        render::demo_html(&page),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, header_value(&csp)?);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_negotiation() {
        let accepts = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_str(value).unwrap(),
            );
            accepts_gzip(&headers)
        };
        assert!(accepts("gzip, deflate, br"));
        assert!(accepts("br;q=1.0, GZIP;q=0.5"));
        assert!(!accepts("gzip;q=0"));
        assert!(!accepts("br, identity"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
