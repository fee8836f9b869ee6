//! Who is calling an admin route, and what they may touch: the extractors every admin
//! handler takes its caller from. They live apart from the router so that handlers in
//! submodules (`history.rs`) and the router both import them without a cycle.

use axum::extract::FromRequestParts;
use footfall::SiteId;

use crate::audit::Actor;
use crate::error::AppError;
use crate::web::site::SiteSegment;

use super::tokens::Caller;

pub(super) fn require_operator(caller: &Caller) -> Result<(), AppError> {
    if caller.scope.is_operator() {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!(
            "this token manages {} only; this needs an operator's token",
            caller.scope.label()
        )))
    }
}

/// The caller of a request; the middleware always sets it, so a request without one is
/// refused rather than audited anonymously.
#[derive(Debug)]
pub struct RequestCaller(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for RequestCaller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, AppError> {
        if parts.extensions.get::<AccessChecked>().is_none() {
            return Err(AppError::Internal(format!(
                "the admin route {} is not declared in admin::ROUTES, so its scope is not checked",
                parts.uri.path()
            )));
        }
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .map(RequestCaller)
            .ok_or(AppError::Unauthorized)
    }
}

/// Set by `check_access`: the route is one of `ROUTES` and its access was checked.
#[derive(Clone, Copy, Debug)]
pub(super) struct AccessChecked;

/// The actor of a request, for the audit log.
pub(super) struct RequestActor(pub(super) Actor);

impl<S: Send + Sync> FromRequestParts<S> for RequestActor {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, AppError> {
        let RequestCaller(caller) = RequestCaller::from_request_parts(parts, state).await?;
        Ok(RequestActor(caller.actor()))
    }
}

/// The `{site}` of a route that the caller's token manages: 400 for a malformed id, 403
/// for a site of another scope (whether or not it is registered, so a site's token learns
/// nothing of other sites). The one line a `{site}` admin handler needs.
#[derive(Debug)]
pub struct ManagedSite {
    /// The site.
    pub id: SiteId,
    /// Who asked.
    pub caller: Caller,
}

impl ManagedSite {
    /// Checks that `caller` manages `id`.
    pub fn check(caller: &Caller, id: &SiteId) -> Result<(), AppError> {
        if caller.scope.covers(id.as_str()) {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "this token manages {} only, not {:?}",
                caller.scope.label(),
                id.as_str()
            )))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ManagedSite {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, AppError> {
        let RequestCaller(caller) = RequestCaller::from_request_parts(parts, state).await?;
        let SitePath(id) = SitePath::from_request_parts(parts, state).await?;
        ManagedSite::check(&caller, &id)?;
        Ok(ManagedSite { id, caller })
    }
}

/// The `{site}` path segment, validated, or a JSON 400 (axum's `Path` answers in plain
/// text, e.g. for a segment that is not UTF-8 once percent-decoded).
pub(super) struct SitePath(pub(super) SiteId);

impl<S: Send + Sync> FromRequestParts<S> for SitePath {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, AppError> {
        let SiteSegment(raw) = SiteSegment::from_request_parts(parts, state).await?;
        parse_site_id(&raw).map(SitePath)
    }
}

pub(super) fn parse_site_id(raw: &str) -> Result<SiteId, AppError> {
    SiteId::new(raw).map_err(|e| AppError::BadRequest(format!("site id {raw:?}: {e}")))
}
