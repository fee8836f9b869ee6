//! The `{site}` path segment, and the registered site it names.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRef, FromRequestParts, Path};
use axum::http::request::Parts;
use footfall::SiteId;

use crate::error::AppError;
use crate::sites::{Site, Sites};

/// The `{site}` segment of a route with that one parameter, percent-decoded. A segment
/// that does not decode to UTF-8 (`%FF`) is a client mistake answered with the usual JSON
/// 400, not axum's plain text.
#[derive(Debug)]
pub struct SiteSegment(pub String);

impl<S: Send + Sync> FromRequestParts<S> for SiteSegment {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(segment)| SiteSegment(segment))
            .map_err(|rejection| bad_segment(&rejection))
    }
}

/// The 400 for a path that does not decode.
fn bad_segment(rejection: &PathRejection) -> AppError {
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
        let SiteSegment(id) = SiteSegment::from_request_parts(parts, state).await?;
        registered_site(&Arc::<Sites>::from_ref(state), &id).map(RegisteredSite)
    }
}

/// Validates a site id and finds its site: 400 for a malformed id, 404 for an unknown one.
pub fn registered_site(sites: &Sites, id: &str) -> Result<Arc<Site>, AppError> {
    SiteId::validate(id).map_err(|e| AppError::BadRequest(format!("site id: {e}")))?;
    sites
        .get(id)
        .ok_or_else(|| AppError::NotFound(format!("no site {id} is registered")))
}
