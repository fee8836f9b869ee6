//! The servers footfall is measured against, on the same machine and in the same run.
//!
//! - **bare**: an axum handler that answers `POST /api/v1/hit` with 204 (with
//!   `?counts=1`, the widget's request, a fixed JSON body of the reply's size) and
//!   `GET /api/v1/sites/{site}/counts` with a fixed JSON body of the size footfall
//!   serves. It does no work, so its CPU per request is the cost of the HTTP stack and the
//!   loopback syscalls: the floor any handler on this machine shares.
//! - **guarded**: bare's handlers behind footfall's own protections: its accept loop
//!   (connection bound and per-client share, header-read and idle timeouts, head size
//!   limits), the layers every footfall route has (panic catching, security headers and
//!   JSON error bodies, request timeout, concurrency bound with request metrics recorded
//!   into the Prometheus recorder, body limit, the `Host` rule). What a request costs
//!   before footfall does any of its own work: the floor of a protected service on this
//!   stack.
//! - **naive**: the same routes, but each hit decodes its JSON body and makes one Redis
//!   round trip (`PFADD` of the visitor and `INCR` of the pageviews, pipelined). This is
//!   the design footfall's write-behind buffer replaces.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use footfall_server::app::{RequestLimits, with_common_layers};
use footfall_server::http::ConnectionLimits;
use redis::aio::MultiplexedConnection;
use serde::Deserialize;

/// A counts body of the size footfall renders for one site with the default settings
/// (5,412 bytes, measured with `curl` in December 2026), so that the read baseline moves
/// as many bytes as the real answer.
const COUNTS_BODY_LEN: usize = 5_400;
/// The widget's reply is the counts plus the footer's labels (5,862 bytes, measured the
/// same way).
const WIDGET_BODY_LEN: usize = 5_850;

/// Which baseline to run.
#[derive(Debug, Clone)]
pub enum Baseline {
    /// 204 and nothing else.
    Bare,
    /// Bare's handlers behind footfall's accept loop and common layers.
    Guarded,
    /// One Redis round trip per hit, to the server at this URL.
    Naive {
        /// `redis://host:port`.
        redis_url: String,
    },
}

#[derive(Clone)]
struct NaiveState {
    redis: MultiplexedConnection,
}

#[derive(Deserialize)]
struct HitBody {
    site: String,
}

/// Serves `baseline` on `address` until the process ends.
///
/// # Errors
///
/// When the address cannot be bound or Redis cannot be reached.
pub async fn serve(baseline: Baseline, address: SocketAddr) -> anyhow::Result<()> {
    let counts_body = Bytes::from(format!(
        "{{\"site\":\"bare\",\"padding\":\"{}\"}}",
        "x".repeat(COUNTS_BODY_LEN)
    ));
    let widget_body = Bytes::from(format!(
        "{{\"site\":\"bare\",\"padding\":\"{}\"}}",
        "x".repeat(WIDGET_BODY_LEN)
    ));
    let counts = move || {
        let body = counts_body.clone();
        async move { ([(header::CONTENT_TYPE, "application/json")], body) }
    };
    // The widget's request (`?counts=1`) is answered with a body of the reply's size, so
    // the widget baseline moves as many bytes as footfall's.
    let bare_hit = move |RawQuery(query): RawQuery, _body: Bytes| {
        let body = widget_body.clone();
        async move {
            if query.as_deref() == Some("counts=1") {
                ([(header::CONTENT_TYPE, "application/json")], body).into_response()
            } else {
                StatusCode::NO_CONTENT.into_response()
            }
        }
    };
    let bare_router = || {
        Router::new()
            .route("/api/v1/hit", post(bare_hit.clone()))
            .route("/api/v1/sites/{site}/counts", get(counts.clone()))
    };
    let router: Router = match baseline {
        Baseline::Bare => bare_router(),
        Baseline::Guarded => {
            // The service's recorder, so that the request metrics cost what they cost
            // there (without one, `metrics` macros do nothing).
            footfall_server::metrics::install();
            let app = with_common_layers(
                bare_router(),
                RequestLimits::default(),
                footfall_server::ingest::MAX_HIT_BODY,
            );
            let listener = tokio::net::TcpListener::bind(address).await?;
            footfall_server::http::serve(
                listener,
                "public",
                app,
                ConnectionLimits::default(),
                std::future::pending(),
            )
            .await;
            return Ok(());
        }
        Baseline::Naive { redis_url } => {
            let info = redis::IntoConnectionInfo::into_connection_info(redis_url.as_str())?
                .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
            let client = redis::Client::open(info)?;
            let redis = client.get_multiplexed_async_connection().await?;
            Router::new()
                .route("/api/v1/hit", post(naive_hit))
                .route("/api/v1/sites/{site}/counts", get(counts))
                .with_state(NaiveState { redis })
        }
    };
    // TCP_NODELAY as footfall sets it (NOTES.md: 40 ms stalls without it).
    let listener = tokio::net::TcpListener::bind(address).await?.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router).await?;
    Ok(())
}

async fn naive_hit(
    State(state): State<NaiveState>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let Ok(hit) = serde_json::from_slice::<HitBody>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let visitor = format!("{}|{}", text("x-forwarded-for"), text("user-agent"));
    let mut redis = state.redis.clone();
    let result: redis::RedisResult<()> = redis::pipe()
        .cmd("PFADD")
        .arg(format!("naive:{{{}}}:visitors", hit.site))
        .arg(visitor)
        .ignore()
        .cmd("INCR")
        .arg(format!("naive:{{{}}}:pageviews", hit.site))
        .ignore()
        .query_async(&mut redis)
        .await;
    match result {
        Ok(()) => StatusCode::NO_CONTENT,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}
