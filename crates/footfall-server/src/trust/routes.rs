//! The trust routes: badge, verification page, credential and public keys.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::credential;
use super::record::TrustRecord;
use super::render::{self, PageInput, Verdict};
use crate::describe::Lang;
use crate::error::AppError;
use crate::sites::Site;
use crate::state::AppState;
use crate::web::conditional::respond;
use crate::web::cors;
use crate::web::origin::{OriginPreference, origin_host};
use crate::web::site::{SiteSegment, registered_site};

/// The SVG badge's policy: nothing may load, the badge's own presentation attributes
/// and any inline style may apply. An SVG opened directly is a document, so this is what
/// keeps a badge from ever running script.
const BADGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'";

/// The verification page's policy: only the one stylesheet whose hash is given.
static PAGE_CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = STANDARD.encode(Sha256::digest(render::PAGE_STYLE.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
});

/// The routes, to merge into the public router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/trust/{site}/badge.svg", get(get_badge))
        // One route for the page and `{site}.json`: a path segment cannot mix a parameter
        // and a literal suffix in the router, and a site id never contains a dot.
        .route("/trust/{site}", get(get_page_or_credential))
        .route("/.well-known/footfall-trust-keys", get(get_keys))
}

/// `?lang=vi|en`; anything else is Vietnamese.
#[derive(Debug, Default, Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

fn lang_of(query: Result<Query<LangQuery>, QueryRejection>) -> Lang {
    // A malformed query string is not worth an error on a badge: it falls back to Vietnamese.
    Lang::parse(query.as_ref().ok().and_then(|q| q.lang.as_deref()))
}

/// The hostname of the page that shows the badge or sent the visitor: `Referer`, else
/// `Origin`.
fn requesting_host(headers: &HeaderMap) -> Option<String> {
    origin_host(headers, OriginPreference::RefererFirst).map(str::to_ascii_lowercase)
}

fn site_and_record(
    state: &AppState,
    id: &str,
) -> Result<(std::sync::Arc<Site>, TrustRecord), AppError> {
    let site = registered_site(&state.sites, id)?;
    match Site::trust_record(&site) {
        None => Err(AppError::NotFound(format!(
            "site {} has no trust record",
            site.id
        ))),
        Some(Err(error)) => Err(AppError::Internal(format!(
            "stored trust record of {} is invalid: {error}",
            site.id
        ))),
        Some(Ok(record)) => Ok((site, record)),
    }
}

fn display_name(site: &Site) -> &str {
    if site.settings.name.is_empty() {
        site.id.as_str()
    } else {
        &site.settings.name
    }
}

/// `GET /trust/{site}/badge.svg?lang=vi|en`.
///
/// Caching: `no-cache` with an `ETag`, and `Vary: Referer, Origin`. The answer depends on
/// the embedding page and on a status that can change at any moment (a revocation must
/// show on the next page view, not after a cache lifetime), and rendering costs no store
/// access, so every view revalidates and an unchanged badge costs a 304. `Vary` keeps any
/// cache that stores it anyway from handing one page's verdict to another.
async fn get_badge(
    State(state): State<AppState>,
    SiteSegment(site): SiteSegment,
    query: Result<Query<LangQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let (site, record) = site_and_record(&state, &site)?;
    let lang = lang_of(query);
    // No Referer counts as a wrong domain: a copier could strip it with
    // `referrerpolicy="no-referrer"`, and a badge must never say "valid" by default.
    let verdict = match requesting_host(&headers) {
        Some(host) if record.certifies_host(&host) => {
            Verdict::Status(record.status_at(state.clock.now()))
        }
        _ => Verdict::NotForThisDomain,
    };
    let svg = render::badge_svg(&record, display_name(&site), verdict, lang);
    let mut response = respond(&headers, svg, "image/svg+xml");
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(BADGE_CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("Referer, Origin"));
    // Pages that isolate themselves (COEP) may still show the badge.
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("cross-origin"),
    );
    Ok(response)
}

/// `GET /trust/{site}` (the page) and `GET /trust/{site}.json` (the credential).
async fn get_page_or_credential(
    State(state): State<AppState>,
    SiteSegment(site): SiteSegment,
    query: Result<Query<LangQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    match site.strip_suffix(".json") {
        Some(id) => credential_response(&state, id, &headers),
        None => page_response(&state, &site, lang_of(query), &headers),
    }
}

/// The credential of `site`, signed with the service's key: the same bytes for the same
/// record and key, whenever and however often it is asked for.
fn issue(state: &AppState, site: &Site, record: &TrustRecord) -> credential::Credential {
    credential::issue(
        site.id.as_str(),
        &site.settings.name,
        record,
        &state.keyring,
    )
}

fn credential_response(
    state: &AppState,
    id: &str,
    headers: &HeaderMap,
) -> Result<Response, AppError> {
    let (site, record) = site_and_record(state, id)?;
    let document = credential::to_document(&issue(state, &site, &record));
    let mut response = respond(headers, document, "application/json");
    let h = response.headers_mut();
    // A credential changes only with its record; a minute of caching bounds how long a
    // suspension or revocation takes to reach whoever fetches it again.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    // Public, signed data: any page may fetch it to verify a badge.
    cors::allow_everyone(h);
    Ok(response)
}

fn page_response(
    state: &AppState,
    id: &str,
    lang: Lang,
    headers: &HeaderMap,
) -> Result<Response, AppError> {
    let (site, record) = site_and_record(state, id)?;
    let credential = issue(state, &site, &record);
    let (Some(fingerprint), Some(payload_json)) = (
        credential::fingerprint(&credential),
        credential::payload_document(&credential),
    ) else {
        return Err(AppError::Internal(
            "a fresh credential did not decode".to_owned(),
        ));
    };
    let credential_json = credential::to_document(&credential);
    let visitor_host = requesting_host(headers);
    let html = render::verification_page(&PageInput {
        site_id: site.id.as_str(),
        site_name: &site.settings.name,
        record: &record,
        status: record.status_at(state.clock.now()),
        time_zone: &site.settings.time_zone,
        key_id: state.keyring.key_id(),
        fingerprint: &fingerprint,
        credential_json: &credential_json,
        payload_json: &payload_json,
        visitor_host: visitor_host.as_deref(),
        lang,
    });
    let mut response = axum::response::Html(html).into_response();
    let h = response.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(&PAGE_CSP) {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    // The page names the visitor's own origin and a live status: never shared.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    h.insert(header::VARY, HeaderValue::from_static("Referer, Origin"));
    Ok(response)
}

/// `GET /.well-known/footfall-trust-keys`.
async fn get_keys(State(state): State<AppState>) -> Response {
    let mut response = axum::Json(state.keyring.keys_document()).into_response();
    let h = response.headers_mut();
    // Keys change only on rotation; an hour's cache is harmless and spares the service.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    cors::allow_everyone(h);
    response
}
