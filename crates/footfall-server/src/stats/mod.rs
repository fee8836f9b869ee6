//! The statistics page, `GET /stats/{site}`: the site's four footer figures with their
//! definitions, a daily chart over 30, 90 or 365 days, the busiest days and the all-time
//! totals with the imported baseline set apart. Server-rendered HTML and SVG, no script,
//! one stylesheet allowed by its hash ([`page`], [`chart`]).
//!
//! Who sees it:
//! - on the internal listener, the site's owner: a token of the site (or an operator's)
//!   as `Authorization: Bearer`, or a session made by signing in with such a token
//!   through the page's form (`POST /stats/{site}/sign-in`; [`session`]: an HttpOnly,
//!   SameSite=Strict cookie on `/stats` for 12 hours, which holds no token). Sign-in and
//!   sign-out refuse a browser's cross-site form (its `Origin` or `Sec-Fetch-Site`).
//! - on the public listener, anyone, when the site's `stats_public` is on; otherwise the
//!   public `/stats/{site}` is 404 like an unknown site.

pub mod chart;
pub mod page;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{ConnectInfo, Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::admin::bearer_caller;
use crate::admin::tokens::{Caller, digest_of};
use crate::api::read_history;
use crate::describe::Lang;
use crate::error::AppError;
use crate::imported::HistoryDay;
use crate::sites::Site;
use crate::state::AppState;
use crate::web::site::{RegisteredSite, SiteSegment, registered_site};
use crate::widget::render::csp_hash;
use page::{PageModel, RANGES, Refusal};

/// The page on the public listener (answered only for sites with `stats_public`).
pub fn public_routes() -> Router<AppState> {
    Router::new().route("/stats/{site}", get(public_page))
}

/// The page, its sign-in and sign-out on the internal listener.
pub fn internal_routes() -> Router<AppState> {
    Router::new()
        .route("/stats/{site}", get(owner_page))
        .route("/stats/{site}/sign-in", post(sign_in))
        .route("/stats/{site}/sign-out", post(sign_out))
}

/// The page's query.
#[derive(Debug, Deserialize)]
pub struct StatsQuery {
    /// `vi` or `en`; otherwise the browser's `Accept-Language`, else Vietnamese.
    pub lang: Option<String>,
    /// The chart's range: 30 (default), 90 or 365 days.
    pub days: Option<u32>,
}

/// The language of a page: `?lang=` when given, else the first of Vietnamese and English
/// the browser prefers (`Accept-Language` with its `q` weights), else Vietnamese.
pub fn negotiate(requested: Option<&str>, headers: &HeaderMap) -> Lang {
    if let Some(code) = requested {
        return Lang::parse(Some(code));
    }
    let mut best: Option<(f32, Lang)> = None;
    for item in headers
        .get_all(header::ACCEPT_LANGUAGE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .take(32)
    {
        let mut parts = item.split(';').map(str::trim);
        let tag = parts.next().unwrap_or("");
        let primary = tag.split('-').next().unwrap_or("");
        let lang = if primary.eq_ignore_ascii_case("en") {
            Lang::En
        } else if primary.eq_ignore_ascii_case("vi") {
            Lang::Vi
        } else {
            continue;
        };
        let q = parts
            .find_map(|p| p.strip_prefix("q="))
            .and_then(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        if q > 0.0 && best.is_none_or(|(top, _)| q > top) {
            best = Some((q, lang));
        }
    }
    best.map_or(Lang::Vi, |(_, lang)| lang)
}

fn html_response(status: StatusCode, html: String, cache: &'static str) -> Response {
    let csp = format!(
        "default-src 'none'; style-src {}; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        csp_hash(page::STYLE)
    );
    let mut response = (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, cache),
            (header::VARY, "Accept-Language, Cookie, Authorization"),
        ],
        html,
    )
        .into_response();
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

/// The page of `site` for `lang` and the query's range.
async fn render(
    state: &AppState,
    site: &Arc<Site>,
    query: &StatsQuery,
    lang: Lang,
    signed_in: bool,
) -> Result<String, AppError> {
    let retention = site.rules.retention_days();
    let mut ranges: Vec<u32> = RANGES.into_iter().filter(|&r| r <= retention).collect();
    if ranges.is_empty() {
        ranges.push(retention);
    }
    let range = query.days.unwrap_or(ranges[0]);
    if !ranges.contains(&range) {
        let offered: Vec<String> = ranges.iter().map(u32::to_string).collect();
        return Err(AppError::BadRequest(format!(
            "days: one of {}",
            offered.join(", ")
        )));
    }
    let counts = state.counts.get(site).await?;
    // Imported days (the previous counter's) draw like live ones: the chart starts
    // before the switch to footfall.
    let days: Vec<_> = read_history(state, site, range)
        .await?
        .iter()
        .map(HistoryDay::figures)
        .collect();
    Ok(page::stats_html(&PageModel {
        site,
        snapshot: &counts.snapshot,
        stale: counts.stale,
        days: &days,
        range,
        ranges: &ranges,
        lang,
        signed_in,
    }))
}

/// `GET /stats/{site}` on the public listener: only for a site that opted in.
async fn public_page(
    State(state): State<AppState>,
    RegisteredSite(site): RegisteredSite,
    query: Result<Query<StatsQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if !site.settings.stats_public {
        return Err(AppError::NotFound(format!(
            "no site {} is registered",
            site.id
        )));
    }
    let Query(query) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let lang = negotiate(query.lang.as_deref(), &headers);
    let html = render(&state, &site, &query, lang, false).await?;
    Ok(html_response(StatusCode::OK, html, "no-cache"))
}

/// Who asks for an owner's page: the bearer token's caller, else the session's.
enum Owner {
    /// A token or a session of a caller.
    Caller(Caller, bool),
    /// A session cookie that no longer holds.
    Expired,
    /// Nothing presented.
    Nobody,
}

fn owner_of(state: &AppState, headers: &HeaderMap) -> Result<Owner, AppError> {
    if headers.contains_key(header::AUTHORIZATION) {
        // A script: a wrong token is a plain 401, as on the admin API.
        return bearer_caller(&state.admin, headers)
            .map(|caller| Owner::Caller(caller, false))
            .ok_or(AppError::Unauthorized);
    }
    Ok(match session::cookie_value(headers) {
        Some(value) => {
            let now = session::unix_now(state.clock.as_ref());
            match session::verify(value, now, &state.admin) {
                Some(caller) => Owner::Caller(caller, true),
                None => Owner::Expired,
            }
        }
        None => Owner::Nobody,
    })
}

/// The sign-in form, with why it is shown: 403 for a token of other sites, 401
/// otherwise. `clear_cookie` (its `Secure`) ends a session that no longer holds.
fn sign_in_page(
    site: &str,
    lang: Lang,
    refusal: Option<Refusal>,
    clear_cookie: Option<bool>,
) -> Response {
    let status = if refusal == Some(Refusal::OtherSite) {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::UNAUTHORIZED
    };
    let message = refusal.map(|r| page::refusal(r, lang));
    let mut response = html_response(status, page::sign_in_html(site, lang, message), "no-store");
    if let Some(secure) = clear_cookie
        && let Ok(value) = HeaderValue::from_str(&session::clear_cookie(secure))
    {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// The form again (403) when `caller` does not manage `site`.
fn scope_refusal(caller: &Caller, site: &str, lang: Lang) -> Option<Response> {
    (!caller.scope.covers(site)).then(|| sign_in_page(site, lang, Some(Refusal::OtherSite), None))
}

/// The `{site}` segment, validated as an id (the page of an unknown site is still the
/// sign-in form until someone allowed to know says otherwise).
fn site_id(raw: &str) -> Result<&str, AppError> {
    footfall::SiteId::validate(raw).map_err(|e| AppError::BadRequest(format!("site id: {e}")))?;
    Ok(raw)
}

/// `GET /stats/{site}` on the internal listener: the owner's page, or the sign-in form.
async fn owner_page(
    State(state): State<AppState>,
    SiteSegment(raw): SiteSegment,
    query: Result<Query<StatsQuery>, QueryRejection>,
    OverTls(secure): OverTls,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let id = site_id(&raw)?;
    let Query(query) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let lang = negotiate(query.lang.as_deref(), &headers);
    let (caller, signed_in) = match owner_of(&state, &headers)? {
        Owner::Caller(caller, signed_in) => (caller, signed_in),
        Owner::Expired => {
            return Ok(sign_in_page(id, lang, Some(Refusal::Expired), Some(secure)));
        }
        Owner::Nobody => return Ok(sign_in_page(id, lang, None, None)),
    };
    if let Some(refused) = scope_refusal(&caller, id, lang) {
        return Ok(refused);
    }
    let site = registered_site(&state.sites, id)?;
    let html = render(&state, &site, &query, lang, signed_in).await?;
    Ok(html_response(StatusCode::OK, html, "no-store"))
}

/// Whether the request reached the service over TLS: through a trusted proxy that says
/// so (`X-Forwarded-Proto: https`); the service itself speaks plain HTTP. Decides the
/// session cookie's `Secure`.
struct OverTls(bool);

impl axum::extract::FromRequestParts<AppState> for OverTls {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let from_proxy = parts
            .extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .is_some_and(|ConnectInfo(peer)| state.proxies.trusts(peer.ip()));
        Ok(OverTls(
            from_proxy
                && parts
                    .headers
                    .get("x-forwarded-proto")
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https")),
        ))
    }
}

/// Refuses a browser's form sent from another site (login CSRF, forced sign-out). A
/// browser says where a request comes from in `Sec-Fetch-Site`, which no page can
/// forge: when present it decides. Otherwise `Origin` must name this host (a page with
/// `Referrer-Policy: no-referrer`, as this one, sends `Origin: null`, accepted only with
/// `Sec-Fetch-Site`). A request with neither (a script) is no browser's and goes on.
fn same_origin(headers: &HeaderMap) -> Result<(), AppError> {
    let refused =
        || AppError::Forbidden("a form of another site cannot sign in or out here".to_owned());
    if let Some(site) = headers.get("sec-fetch-site") {
        return if matches!(site.as_bytes(), b"same-origin" | b"none") {
            Ok(())
        } else {
            Err(refused())
        };
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, rest)| rest);
        if host.is_none() || origin_host != host {
            return Err(refused());
        }
    }
    Ok(())
}

/// The sign-in form's body.
#[derive(Deserialize)]
pub struct SignIn {
    /// The token.
    token: String,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignIn { token: <hidden> }")
    }
}

/// The query of sign-in and sign-out: the page's language.
#[derive(Debug, Deserialize)]
pub struct LangQuery {
    /// `vi` or `en`.
    pub lang: Option<String>,
}

fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// `POST /stats/{site}/sign-in` (form `token=…`): a session cookie and back to the page,
/// or the form again with why not.
async fn sign_in(
    State(state): State<AppState>,
    SiteSegment(raw): SiteSegment,
    query: Result<Query<LangQuery>, QueryRejection>,
    OverTls(secure): OverTls,
    headers: HeaderMap,
    form: Result<Form<SignIn>, FormRejection>,
) -> Result<Response, AppError> {
    let id = site_id(&raw)?;
    same_origin(&headers)?;
    let lang = query.ok().and_then(|Query(q)| q.lang).map_or_else(
        || negotiate(None, &headers),
        |code| Lang::parse(Some(&code)),
    );
    let Form(form) = form.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let token = form.token.trim();
    let Some(caller) = state.admin.identify(token) else {
        return Ok(sign_in_page(id, lang, Some(Refusal::WrongToken), None));
    };
    if let Some(refused) = scope_refusal(&caller, id, lang) {
        return Ok(refused);
    }
    let now = session::unix_now(state.clock.as_ref());
    let value = session::issue(&digest_of(token), caller.fingerprint, now);
    tracing::info!(site = id, actor = %caller.actor(), scope = %caller.scope.label(), "statistics page: signed in");
    let mut response = see_other(&format!("/stats/{id}?lang={}", lang.code()));
    let cookie = HeaderValue::from_str(&session::set_cookie(&value, secure))
        .map_err(|_| AppError::Internal("a session cookie is not a header value".to_owned()))?;
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `POST /stats/{site}/sign-out`: ends the session and goes back to the form.
async fn sign_out(
    SiteSegment(raw): SiteSegment,
    query: Result<Query<LangQuery>, QueryRejection>,
    OverTls(secure): OverTls,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let id = site_id(&raw)?;
    same_origin(&headers)?;
    let lang = query.ok().and_then(|Query(q)| q.lang);
    let mut response = see_other(&format!(
        "/stats/{id}?lang={}",
        Lang::parse(lang.as_deref()).code()
    ));
    if let Ok(value) = HeaderValue::from_str(&session::clear_cookie(secure)) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_is_asked_for_or_negotiated() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT_LANGUAGE, value.parse().unwrap());
            headers
        };
        assert_eq!(negotiate(None, &HeaderMap::new()), Lang::Vi);
        assert_eq!(negotiate(None, &with("en-US,en;q=0.9")), Lang::En);
        assert_eq!(negotiate(None, &with("fr, en;q=0.5, vi;q=0.8")), Lang::Vi);
        assert_eq!(negotiate(None, &with("vi;q=0, en;q=0.1")), Lang::En);
        assert_eq!(negotiate(None, &with("de, fr")), Lang::Vi);
        assert_eq!(negotiate(Some("vi"), &with("en")), Lang::Vi);
        assert_eq!(negotiate(Some("en"), &HeaderMap::new()), Lang::En);
    }

    #[test]
    fn forms_from_other_sites_are_refused() {
        let with = |pairs: &[(&str, &str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.insert(
                    header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    value.parse().unwrap(),
                );
            }
            headers
        };
        assert!(same_origin(&with(&[("host", "127.0.0.1:9464")])).is_ok());
        assert!(
            same_origin(&with(&[
                ("host", "127.0.0.1:9464"),
                ("origin", "http://127.0.0.1:9464"),
                ("sec-fetch-site", "same-origin"),
            ]))
            .is_ok()
        );
        assert!(
            same_origin(&with(&[
                ("host", "127.0.0.1:9464"),
                ("origin", "https://evil.example"),
            ]))
            .is_err()
        );
        assert!(
            same_origin(&with(&[
                ("host", "127.0.0.1:9464"),
                ("sec-fetch-site", "cross-site"),
            ]))
            .is_err()
        );
        assert!(same_origin(&with(&[("host", "a"), ("origin", "null")])).is_err());
        assert!(
            same_origin(&with(&[
                ("host", "a"),
                ("origin", "null"),
                ("sec-fetch-site", "same-origin")
            ]))
            .is_ok()
        );
        assert!(
            same_origin(&with(&[
                ("host", "a"),
                ("origin", "http://a"),
                ("sec-fetch-site", "same-site")
            ]))
            .is_err()
        );
    }
}
