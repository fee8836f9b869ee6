//! The routers of both listeners and the layers around them.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::error::AppError;
use crate::state::AppState;
use crate::{admin, api, health, ingest, widget};

/// Request-level limits of the public listener.
#[derive(Clone, Copy, Debug)]
pub struct RequestLimits {
    /// Requests handled at once; beyond it, a fast 503.
    pub max_concurrency: usize,
    /// A request (body included) must complete within this time.
    pub request_timeout: Duration,
    /// The largest body of any request except hits (which have their own, smaller bound).
    pub max_body_bytes: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            // 2,048 in flight: far above what two cores serve without queueing, so only a
            // stalled store or a flood reaches it.
            max_concurrency: 2048,
            request_timeout: Duration::from_secs(10),
            max_body_bytes: 64 * 1024,
        }
    }
}

/// The public listener's router: ingestion, the read API, widgets.
///
/// Its only route with a body is the hit beacon, so the whole listener takes bodies of
/// at most [`ingest::MAX_HIT_BODY`] bytes (`max_body_bytes` applies to the internal one).
pub fn public_app(state: AppState, limits: RequestLimits) -> Router {
    let router = Router::new()
        .route("/hit.gif", get(ingest::get_pixel))
        .route("/api/v1/hit", post(ingest::post_hit))
        .route("/api/v1/sites/{site}/counts", get(api::get_counts))
        .route("/api/v1/sites/{site}/history", get(api::get_history))
        .merge(crate::trust::routes())
        .merge(widget::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    with_common_layers(router, limits, ingest::MAX_HIT_BODY)
}

/// `GET /metrics`, with the buffer's depth sampled now: the gauge is only ever read here,
/// so sampling at scrape time is exact even while a flush waits on a slow or failing
/// store, and costs nothing on the write path.
async fn metrics_with_buffer_depth(State(state): State<AppState>) -> impl IntoResponse {
    crate::metrics::buffer_depth(state.buffer.depth());
    crate::metrics::flush_lag(state.buffer.lag(state.clock.now()));
    crate::metrics::metrics_endpoint().await
}

/// The internal listener's router: health, metrics and the admin API.
pub fn internal_app(state: AppState, limits: RequestLimits) -> Router {
    let admin_routes = admin::routes().route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        admin::require_token,
    ));
    let router = Router::new()
        .route("/livez", get(health::livez))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics_with_buffer_depth))
        .route("/openapi.json", get(crate::openapi::openapi_endpoint))
        .nest("/admin/v1", admin_routes)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    with_common_layers(router, limits, limits.max_body_bytes)
}

/// Panic catching, security headers, load shedding, the request timeout, request metrics
/// and the body limit, shared by both listeners.
///
/// One `Router::layer` call: it wraps every route and the fallback separately (so
/// requests that match no route are counted too, as `route="unmatched"`, and matched
/// ones carry `MatchedPath`), and each call adds a boxed service per route, so stacking
/// them in one `ServiceBuilder` costs one box instead of one per layer.
fn with_common_layers(router: Router, limits: RequestLimits, max_body_bytes: usize) -> Router {
    router.layer(
        ServiceBuilder::new()
            .layer(CatchPanicLayer::custom(panic_response))
            .map_response(security_headers)
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                limits.request_timeout,
            ))
            // One bound for the whole listener (the stack wraps each route separately,
            // and the layer's count is shared by all of them), with request metrics.
            .layer(crate::metrics::TrackLayer::new(
                limits.max_concurrency,
                overloaded,
            ))
            .layer(RequestBodyLimitLayer::new(max_body_bytes)),
    )
}

/// Headers every answer carries unless its handler set them.
fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "strict-origin-when-cross-origin"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ),
    ] {
        headers
            .entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    }
    response
}

fn overloaded() -> Response {
    let mut response = AppError::Unavailable(None).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    metrics::counter!("footfall_panics_total").increment(1);
    AppError::Internal("a request handler panicked".to_owned()).into_response()
}

async fn not_found() -> AppError {
    AppError::NotFound("no such route".to_owned())
}

/// 405 in the same JSON shape as every other error (axum's own has an empty body); axum
/// still adds the `Allow` header.
async fn method_not_allowed(method: axum::http::Method) -> Response {
    let body = serde_json::json!({
        "error": {
            "code": "method_not_allowed",
            "message": format!("this route does not accept {method}"),
        }
    });
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}
