//! Errors as HTTP answers: a clear 4xx for the client's mistakes, a generic 5xx otherwise
//! with the details logged (never sent).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is malformed; the message says how.
    #[error("{0}")]
    BadRequest(String),
    /// No such site (or other resource).
    #[error("{0}")]
    NotFound(String),
    /// The body's media type is not accepted.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Missing or wrong credentials.
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// Valid credentials that do not cover what was asked; the message says what.
    #[error("{0}")]
    Forbidden(String),
    /// The request conflicts with the current state (e.g. lowering a baseline).
    #[error("{0}")]
    Conflict(String),
    /// The request took longer than the request timeout.
    #[error("the request took too long; it was stopped")]
    Timeout,
    /// The body is larger than the route accepts; the message says the bound.
    #[error("{0}")]
    TooLarge(String),
    /// The store cannot answer now; retry later.
    #[error("the counter store is unavailable; try again shortly")]
    Unavailable(#[source] Option<footfall::Error>),
    /// Anything else; details go to the log only.
    #[error("internal error")]
    Internal(String),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: String,
}

impl AppError {
    /// The status code and stable machine-readable code.
    fn status(&self) -> (StatusCode, &'static str) {
        match self {
            AppError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            AppError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            AppError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            AppError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            AppError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            AppError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            AppError::Timeout => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            AppError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            AppError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            AppError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

/// The one error shape, `{"error": {"code", "message"}}`, for answers that are not an
/// [`AppError`] (a status written by a layer, rewritten into the shape).
pub fn error_response(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        Json(ErrorBody {
            error: ErrorDetail { code, message },
        }),
    )
        .into_response()
}

/// The stable code of an error status without an [`AppError`] of its own.
pub fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::URI_TOO_LONG => "uri_too_long",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "header_fields_too_large",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        status if status.is_server_error() => "internal",
        _ => "bad_request",
    }
}

impl From<footfall::Error> for AppError {
    fn from(error: footfall::Error) -> Self {
        match error {
            footfall::Error::BaselineDecrease { .. } => AppError::Conflict(error.to_string()),
            other => AppError::Unavailable(Some(other)),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.status();
        match &self {
            AppError::Internal(details) => tracing::error!(details = %details, "internal error"),
            AppError::Unavailable(Some(source)) => {
                tracing::warn!(error = %source, "store unavailable")
            }
            _ => {}
        }
        let mut response = error_response(status, code, self.to_string());
        if matches!(self, AppError::Unauthorized) {
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer"),
            );
        }
        if matches!(self, AppError::Unavailable(_)) {
            response.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("5"),
            );
        }
        response
    }
}
