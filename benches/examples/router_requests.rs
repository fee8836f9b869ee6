//! Sends a fixed number of requests of one kind through the service's router, in
//! process, for instruction counting under callgrind (which counts the same on a busy
//! machine as on a quiet one, unlike the clock):
//!
//! ```text
//! cargo build --release -p footfall-benches --example router_requests
//! for n in 2000 12000; do
//!   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$n \
//!     target/release/examples/router_requests hit $n
//! done
//! # instructions per request = (total Ir at 12000 − total Ir at 2000) / 10000
//! ```
//!
//! Kinds: `bare` (an axum handler answering 204, no layers), `unmatched` (footfall's
//! layers and its 404), `hit` (a beacon through footfall, memory store, flusher running).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use axum::routing::post;
use footfall::clock::{Clock, SystemClock};
use footfall::store::{AnyStore, MemoryStore};
use footfall_server::app::{RequestLimits, public_app};
use footfall_server::sites::{Site, SiteSettings, Sites};
use footfall_server::state::{AppState, Options};
use tower::ServiceExt;

const BROWSER: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const HIT: &str =
    r#"{"site":"demo","path":"/tin-tuc/bai-17.html","referrer":"https://www.google.com/"}"#;

fn request(method: &str, uri: &str, body: &'static str) -> Request<Body> {
    let peer: SocketAddr = "203.0.113.7:50000".parse().expect("an address");
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::USER_AGENT, BROWSER)
        .header(header::ACCEPT, "*/*")
        .header(header::ACCEPT_LANGUAGE, "vi-VN,vi;q=0.9,en;q=0.8")
        .header(header::CONTENT_TYPE, "text/plain;charset=UTF-8")
        .header(header::ORIGIN, "http://localhost:8080")
        .extension(ConnectInfo(peer))
        .body(Body::from(body))
        .expect("a request")
}

/// The allocator of the `footfall` binary, so the instructions counted are its own.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_else(|| "hit".to_owned());
    let count: u32 = args.next().map_or(10_000, |n| n.parse().expect("a count"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let _guard = runtime.enter();
    let demo = Site::from_settings(SiteSettings::demo(), "demo").expect("the demo site");
    let (state, flusher) = AppState::new(
        Arc::new(AnyStore::Memory(MemoryStore::new())),
        Arc::new(SystemClock) as Arc<dyn Clock>,
        Sites::new(vec![demo]),
        Options {
            rate_limit_per_minute: 1_000_000_000,
            ..Options::default()
        },
    )
    .expect("the state builds");
    runtime.spawn(flusher.run());
    let (app, method, uri, body, expect) = match kind.as_str() {
        "bare" => (
            Router::new().route("/api/v1/hit", post(|| async { StatusCode::NO_CONTENT })),
            "POST",
            "/api/v1/hit",
            HIT,
            StatusCode::NO_CONTENT,
        ),
        "unmatched" => (
            public_app(state.clone(), RequestLimits::default()),
            "GET",
            "/nope",
            "",
            StatusCode::NOT_FOUND,
        ),
        "hit" => (
            public_app(state.clone(), RequestLimits::default()),
            "POST",
            "/api/v1/hit",
            HIT,
            StatusCode::NO_CONTENT,
        ),
        other => panic!("unknown kind {other:?}: bare, unmatched or hit"),
    };
    for _ in 0..count {
        let response = runtime
            .block_on(app.clone().oneshot(request(method, uri, body)))
            .expect("infallible");
        assert_eq!(response.status(), expect);
    }
    state.begin_shutdown();
}
