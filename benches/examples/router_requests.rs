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
//! layers and its 404), `hit` (a beacon through footfall, memory store, flusher running),
//! `read` (a cached count read, `GET /api/v1/sites/{site}/counts`), `widget` (a hit
//! answered with the counts, `POST /api/v1/hit?counts=1`) and `bare-read` (an axum
//! handler answering a fixed body of a read's size, no layers), and `guarded` and
//! `guarded-read` (those two bare handlers behind footfall's layers: the protections
//! every route has, on their own). The service's metrics recorder is installed, as in
//! the service.
//!
//! Two optional numbers after the count spread the hits over that many sites and
//! clients (addresses and User-Agents), in turn: `hit 12000 1000 5000` is the load
//! harness's 1,000 sites and 5,000 clients on one thread, so the time a hit takes with
//! large maps can be set beside the time with one site and one client. Each client has
//! its own User-Agent (the harness's share five), so with more clients than the robot
//! verdict cache's 4,096 slots nearly every hit is judged afresh: the worst case for it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use axum::routing::{get, post};
use footfall::clock::{Clock, SystemClock};
use footfall::store::{AnyStore, MemoryStore};
use footfall_server::app::{RequestLimits, public_app, with_common_layers};
use footfall_server::sites::{Site, SiteSettings, Sites};
use footfall_server::state::{AppState, Options};
use tower::ServiceExt;

const BROWSER: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const HIT: &str =
    r#"{"site":"demo","path":"/tin-tuc/bai-17.html","referrer":"https://www.google.com/"}"#;

fn request(method: &str, uri: &str, body: &'static str, client: u32, agent: &str) -> Request<Body> {
    let [_, a, b, c] = client.to_be_bytes();
    let peer = SocketAddr::from(([10, a, b, c], 50000));
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::USER_AGENT, agent)
        .header(header::ACCEPT, "*/*")
        .header(header::ACCEPT_LANGUAGE, "vi-VN,vi;q=0.9,en;q=0.8")
        .header(header::CONTENT_TYPE, "text/plain;charset=UTF-8")
        .header(header::ORIGIN, "http://localhost:8080")
        .extension(ConnectInfo(peer))
        .body(Body::from(body))
        .expect("a request")
}

/// A cached count read of the demo site (of the `n`th site when spread).
const READ_URI: &str = "/api/v1/sites/demo/counts";

/// The size of the demo site's counts body, about (the load harness's bare read answers
/// a fixed body of the size it measured).
const BARE_READ_BODY: usize = 5_400;

/// An axum handler answering 204 on the beacon's route, no layers.
fn bare_hit_router() -> Router {
    Router::new().route("/api/v1/hit", post(|| async { StatusCode::NO_CONTENT }))
}

/// An axum handler answering a fixed body of a read's size on the read's route, no layers.
fn bare_read_router() -> Router {
    let body = bytes::Bytes::from(vec![b'x'; BARE_READ_BODY]);
    Router::new().route(
        "/api/v1/sites/{site}/counts",
        get(move || {
            let body = body.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], body) }
        }),
    )
}

/// `router` behind the layers every footfall route has.
fn guarded(router: Router) -> Router {
    with_common_layers(
        router,
        RequestLimits::default(),
        footfall_server::ingest::MAX_HIT_BODY,
    )
}

/// The allocator of the `footfall` binary, so the instructions counted are its own.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_else(|| "hit".to_owned());
    let count: u32 = args.next().map_or(10_000, |n| n.parse().expect("a count"));
    let n_sites: u32 = args
        .next()
        .map_or(1, |n| n.parse().expect("a number of sites"));
    let n_clients: u32 = args
        .next()
        .map_or(1, |n| n.parse().expect("a number of clients"));
    assert!(
        n_sites >= 1 && n_clients >= 1,
        "at least one site and one client"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let _guard = runtime.enter();
    // The service's metrics recorder: without one, every `metrics` call does nothing.
    footfall_server::metrics::install();
    let demo = Site::from_settings(SiteSettings::demo(), "demo").expect("the demo site");
    let others = (1..n_sites).map(|n| {
        let id = format!("site-{n:04}");
        Site::from_settings(SiteSettings::new(&id, &["localhost"]), &id).expect("a site")
    });
    // Bodies and User-Agents made before the loop and kept for the run, so that a
    // request is built the same way whatever the spread.
    let bodies: Vec<&'static str> = (0..n_sites)
        .map(|n| match n {
            0 => HIT,
            n => HIT
                .replace(r#""site":"demo""#, &format!(r#""site":"site-{n:04}""#))
                .leak(),
        })
        .collect();
    // Reads spread over the sites the same way.
    let read_uris: Vec<&'static str> = (0..n_sites)
        .map(|n| match n {
            0 => READ_URI,
            n => format!("/api/v1/sites/site-{n:04}/counts").leak(),
        })
        .collect();
    let agents: Vec<&'static str> = (0..n_clients)
        .map(|n| match n {
            0 => BROWSER,
            n => format!("{BROWSER} client/{n}").leak(),
        })
        .collect();
    let (state, flusher) = AppState::new(
        Arc::new(AnyStore::Memory(MemoryStore::new())),
        Arc::new(SystemClock) as Arc<dyn Clock>,
        Sites::new(std::iter::once(demo).chain(others)),
        Options {
            rate_limit_per_minute: 1_000_000_000,
            ..Options::default()
        },
    )
    .expect("the state builds");
    runtime.spawn(flusher.run());
    let (app, method, uri, with_body, expect) = match kind.as_str() {
        "bare" => (
            bare_hit_router(),
            "POST",
            "/api/v1/hit",
            true,
            StatusCode::NO_CONTENT,
        ),
        "unmatched" => (
            public_app(state.clone(), RequestLimits::default()),
            "GET",
            "/nope",
            false,
            StatusCode::NOT_FOUND,
        ),
        "hit" => (
            public_app(state.clone(), RequestLimits::default()),
            "POST",
            "/api/v1/hit",
            true,
            StatusCode::NO_CONTENT,
        ),
        "widget" => (
            public_app(state.clone(), RequestLimits::default()),
            "POST",
            "/api/v1/hit?counts=1",
            true,
            StatusCode::OK,
        ),
        "read" => (
            public_app(state.clone(), RequestLimits::default()),
            "GET",
            READ_URI,
            false,
            StatusCode::OK,
        ),
        "bare-read" => (bare_read_router(), "GET", READ_URI, false, StatusCode::OK),
        // Bare's handlers behind footfall's layers: what the protections every route has
        // cost on their own (the load harness's `guarded` baseline, without its sockets).
        "guarded" => (
            guarded(bare_hit_router()),
            "POST",
            "/api/v1/hit",
            true,
            StatusCode::NO_CONTENT,
        ),
        "guarded-read" => (
            guarded(bare_read_router()),
            "GET",
            READ_URI,
            false,
            StatusCode::OK,
        ),
        other => panic!(
            "unknown kind {other:?}: bare, unmatched, hit, widget, read, bare-read, guarded or guarded-read"
        ),
    };
    for i in 0..count {
        let (site, client) = (i % n_sites, i % n_clients);
        let body = if with_body { bodies[site as usize] } else { "" };
        let uri = if uri == READ_URI {
            read_uris[site as usize]
        } else {
            uri
        };
        let agent = agents[client as usize];
        let response = runtime
            .block_on(
                app.clone()
                    .oneshot(request(method, uri, body, client, agent)),
            )
            .expect("infallible");
        assert_eq!(response.status(), expect);
    }
    state.begin_shutdown();
}
