//! The routers of both listeners and the layers around them.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::error::{AppError, code_of, error_response};
use crate::http::HostMissing;
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
        .merge(crate::trust::routes::routes())
        .merge(widget::routes())
        .merge(crate::stats::public_routes())
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
///
/// Everything under `/admin` needs a token, unknown paths and methods included: only
/// then is a 404 or a 405 answered, so the routes cannot be listed without a token.
pub fn internal_app(state: AppState, limits: RequestLimits) -> Router {
    let admin_routes = Router::new()
        .nest("/v1", admin::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admin::require_token,
        ));
    let router = Router::new()
        .route("/livez", get(health::livez))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics_with_buffer_depth))
        .route("/openapi.json", get(crate::openapi::openapi_endpoint))
        .merge(crate::stats::internal_routes())
        // `nest` takes `/admin` and `/admin/…` but not `/admin/` itself, which the same
        // guarded router answers (with its fallback, as the path is not stripped).
        .route_service("/admin/", admin_routes.clone().with_state(state.clone()))
        .nest("/admin", admin_routes)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    with_common_layers(router, limits, limits.max_body_bytes)
}

/// Panic catching, security headers, error bodies in the JSON shape, load shedding, the
/// request timeout, request metrics, the body limit and the `Host` rule, shared by both
/// listeners.
///
/// One `Router::layer` call: it wraps every route and the fallback separately (so
/// requests that match no route are counted too, as `route="unmatched"`, and matched
/// ones carry `MatchedPath`), and each call adds a boxed service per route, so stacking
/// them in one `ServiceBuilder` costs one box instead of one per layer.
///
/// Public so that the load harness can put the same protections around a handler that
/// does nothing (its `guarded` baseline): what they cost on their own, measured.
pub fn with_common_layers(router: Router, limits: RequestLimits, max_body_bytes: usize) -> Router {
    router.layer(
        ServiceBuilder::new()
            .layer(CatchPanicLayer::custom(panic_response))
            // Outside the timeout and the body limit, whose own answers the JSON error
            // body rewrites; the security headers then go on every answer. One layer for
            // both: each layer is a future polled per request.
            .map_response(move |response| {
                security_headers(json_error_body(response, max_body_bytes))
            })
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
            .layer(RequestBodyLimitLayer::new(max_body_bytes))
            .layer(RequireHostLayer),
    )
}

/// Error answers written without the JSON shape, rewritten into it: the timeout layer's
/// 408 (empty), the body limit's 413 (plain text, also what a handler's body extractor
/// returns past the limit), and any other error with a plain-text or empty body (an
/// extractor's rejection a handler let through). Headers such as `Allow` and
/// `Retry-After` are kept; errors of another type (an SVG badge, an HTML page) are
/// deliberate and left alone.
fn json_error_body(response: Response, max_body_bytes: usize) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let plain_or_none = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|value| value.as_bytes().starts_with(b"text/plain"));
    if !plain_or_none {
        return response;
    }
    let message = match status {
        StatusCode::REQUEST_TIMEOUT => AppError::Timeout.to_string(),
        StatusCode::PAYLOAD_TOO_LARGE => {
            format!("the request body is larger than {max_body_bytes} bytes")
        }
        other => other
            .canonical_reason()
            .unwrap_or("the request failed")
            .to_lowercase(),
    };
    let (mut parts, _) = response.into_parts();
    let json = error_response(status, code_of(status), message);
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in json.headers() {
        parts.headers.insert(name, value.clone());
    }
    Response::from_parts(parts, json.into_body())
}

/// Answers 400 to a request the accept loop marked [`HostMissing`]: HTTP/1.1 without
/// exactly one `Host` header (RFC 9112, section 3.2: a server MUST answer 400). A layer
/// of the router rather than a reply from the accept loop, so the answer carries the
/// security headers and is counted like any other.
#[derive(Clone, Copy, Debug)]
struct RequireHostLayer;

impl<S> tower::Layer<S> for RequireHostLayer {
    type Service = RequireHost<S>;

    fn layer(&self, inner: S) -> RequireHost<S> {
        RequireHost(inner)
    }
}

/// The service of [`RequireHostLayer`].
#[derive(Clone, Debug)]
struct RequireHost<S>(S);

impl<S, B> tower::Service<http::Request<B>> for RequireHost<S>
where
    S: tower::Service<http::Request<B>, Response = Response>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = S::Error;
    type Future = RequireHostFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.extensions().get::<HostMissing>().is_some() {
            let refusal = AppError::BadRequest(
                "an HTTP/1.1 request needs exactly one Host header".to_owned(),
            )
            .into_response();
            return RequireHostFuture::Refused(Some(refusal));
        }
        RequireHostFuture::Inner(self.0.call(request))
    }
}

/// The future of [`RequireHost`]: the route's answer, or the refusal.
#[derive(Debug)]
enum RequireHostFuture<F> {
    Inner(F),
    /// `None` once answered.
    Refused(Option<Response>),
}

impl<F, E> Future for RequireHostFuture<F>
where
    F: Future<Output = Result<Response, E>> + Unpin,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            RequireHostFuture::Inner(inner) => Pin::new(inner).poll(cx),
            RequireHostFuture::Refused(refusal) => Poll::Ready(Ok(refusal
                .take()
                .unwrap_or_else(|| Response::new(Body::empty())))),
        }
    }
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
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("this route does not accept {method}"),
    )
}
