//! The `{site}` path segment, and the registered site it names.

use std::sync::Arc;

use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{FromRef, FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use footfall::SiteId;

use crate::error::AppError;
use crate::sites::{Site, Sites};

/// The `{site}` segment of a route, percent-decoded. A segment that does not decode to
/// UTF-8 (`%FF`) is a client mistake answered with the usual JSON 400, not axum's plain
/// text.
#[derive(Debug)]
pub struct SiteSegment(pub String);

impl<S: Send + Sync> FromRequestParts<S> for SiteSegment {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let params = site_param(parts, state).await?;
        Ok(SiteSegment(segment(&params)?.to_owned()))
    }
}

/// The route's parameters as the router decoded them: read raw rather than through
/// `Path<String>`, so a lookup that needs only the `&str` runs no deserialiser and makes
/// no `String`, and the segment is found by its name whatever else the route captures.
async fn site_param<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
) -> Result<RawPathParams, AppError> {
    RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|rejection| bad_segment(&rejection))
}

/// The `site` parameter among `params`.
fn segment(params: &RawPathParams) -> Result<&str, AppError> {
    params
        .iter()
        .find_map(|(key, value)| (key == "site").then_some(value))
        .ok_or_else(|| AppError::Internal("a site route without a {site} segment".to_owned()))
}

/// The 400 for a path that does not decode.
fn bad_segment(rejection: &RawPathParamsRejection) -> AppError {
    AppError::BadRequest(format!("site id: {}", rejection.body_text()))
}

/// The registered site a route's `{site}` names: 400 for a malformed id, 404 for an
/// unknown one.
#[derive(Debug)]
pub struct RegisteredSite(pub Arc<Site>);

impl<S> FromRequestParts<S> for RegisteredSite
where
    Arc<Sites>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let params = site_param(parts, state).await?;
        registered_site(&Arc::<Sites>::from_ref(state), segment(&params)?).map(RegisteredSite)
    }
}

/// Validates a site id and finds its site: 400 for a malformed id, 404 for an unknown one.
pub fn registered_site(sites: &Sites, id: &str) -> Result<Arc<Site>, AppError> {
    SiteId::validate(id).map_err(|e| AppError::BadRequest(format!("site id: {e}")))?;
    sites
        .get(id)
        .ok_or_else(|| AppError::NotFound(format!("no site {id} is registered")))
}
