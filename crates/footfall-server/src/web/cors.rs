//! Who may read an answer from a script on another origin (`Access-Control-Allow-Origin`),
//! by one of three policies. No route accepts a preflighted request (the beacon is a
//! `text/plain` POST, every read a GET), so these are the only CORS headers the service
//! writes. (tower-http's CORS layer decides per route, before the handler; the
//! site-bound policy needs the site the handler has found.)

use axum::http::{HeaderMap, HeaderValue, header};

use crate::sites::Site;
use crate::web::origin::host_of_url;

/// Public data any page may read (the script, its manifest, signed credentials): `*`.
pub fn allow_everyone(response: &mut HeaderMap) {
    response.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
}

/// Data for the site's own pages (counts, history): the request's `Origin` is echoed when
/// it is an http(s) page on one of the site's hostnames, and the answer varies by it.
pub fn allow_site_pages(site: &Site, request: &HeaderMap, response: &mut HeaderMap) {
    response.insert(header::VARY, HeaderValue::from_static("Origin"));
    let allowed = request.get(header::ORIGIN).filter(|origin| {
        origin
            .to_str()
            .ok()
            .and_then(host_of_url)
            .is_some_and(|host| site.allows_host(host))
    });
    if let Some(origin) = allowed {
        response.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    }
}

/// An answer every http(s) page may read because it says itself whether the page is
/// the site's (the widget's `"valid"`): the request's `Origin` is echoed when it is an
/// http(s) page, and the answer varies by it.
pub fn allow_any_page(request: &HeaderMap, response: &mut HeaderMap) {
    response.insert(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = request.get(header::ORIGIN)
        && origin.to_str().ok().and_then(host_of_url).is_some()
    {
        response.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    }
}
