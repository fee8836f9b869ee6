//! What the tests of this binary share: a service state on a manual clock and an
//! in-memory store, requests sent through `oneshot` with a peer address, a local metrics
//! recorder; for the few real-socket tests, a router served on 127.0.0.1:0 and
//! `footfall serve` in process; and the `footfall` binary run as a process.

use std::ffi::OsStr;
use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use footfall::clock::{Clock, ManualClock};
use footfall::counter::{self, Snapshot};
use footfall::store::{AnyStore, MemoryStore};
use footfall_server::app::{RequestLimits, internal_app, public_app};
use footfall_server::buffer::{FlushTotals, Flusher};
use footfall_server::client_ip::TrustedProxies;
use footfall_server::config::{Config, ServeArgs};
use footfall_server::http::{ConnectionLimits, serve};
use footfall_server::sites::{Site, SiteSettings, Sites};
use footfall_server::state::{AppState, Options};
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tower::ServiceExt;

/// The admin token the test services accept.
pub(crate) const ADMIN_TOKEN: &str = "correct-horse-battery-staple";
/// A site that respects Do Not Track, besides the demo site.
pub(crate) const DNT_SITE: &str = "caukee";
/// Its hostname.
pub(crate) const DNT_HOST: &str = "caukee.travinh.gov.vn";
/// A browser's User-Agent.
pub(crate) const BROWSER: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0";
/// A peer that is not a trusted proxy.
pub(crate) const PEER: &str = "203.0.113.7:50000";
/// The bound on any single wait on a socket or a task, so a regression fails a test
/// instead of hanging it.
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);

/// The sites every test service registers: `demo` (localhost) and `caukee`.
pub(crate) fn test_sites() -> Vec<Site> {
    let mut caukee = SiteSettings::new(DNT_SITE, &[DNT_HOST]);
    caukee.respect_do_not_track = true;
    vec![
        Site::from_settings(SiteSettings::demo(), "demo").expect("the demo site is valid"),
        Site::from_settings(caukee, "caukee").expect("the caukee site is valid"),
    ]
}

/// Options for tests: a trusted proxy network, an admin token.
pub(crate) fn test_options() -> Options {
    Options {
        trusted_proxies: TrustedProxies::parse("10.0.0.0/8").expect("valid"),
        admin_tokens: vec![ADMIN_TOKEN.to_owned()],
        ..Options::default()
    }
}

/// A service state over a memory store and a manual clock, with its flusher not running.
pub(crate) struct Harness {
    pub(crate) state: AppState,
    pub(crate) store: Arc<AnyStore>,
    pub(crate) clock: Arc<ManualClock>,
    flusher: Option<Flusher>,
}

impl Harness {
    pub(crate) fn new() -> Self {
        Harness::with_options(test_options())
    }

    pub(crate) fn with_options(options: Options) -> Self {
        let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
        // 10:00 in Hồ Chí Minh City on a Monday.
        let clock = Arc::new(ManualClock::new(
            "2026-03-02T03:00:00Z".parse().expect("a timestamp"),
        ));
        let (state, flusher) = AppState::new(
            Arc::clone(&store),
            Arc::clone(&clock) as Arc<dyn Clock>,
            Sites::new(test_sites()),
            options,
        )
        .expect("the test state builds");
        Harness {
            state,
            store,
            clock,
            flusher: Some(flusher),
        }
    }

    pub(crate) fn public(&self) -> Router {
        public_app(self.state.clone(), RequestLimits::default())
    }

    pub(crate) fn internal(&self) -> Router {
        internal_app(self.state.clone(), RequestLimits::default())
    }

    /// Writes every queued hit to the store: asks the flusher to stop and runs it until
    /// the buffer is empty. The buffer refuses hits afterwards.
    pub(crate) async fn flush(&mut self) -> FlushTotals {
        let flusher = self.flusher.take().expect("flushed only once");
        self.state.begin_shutdown();
        tokio::time::timeout(std::time::Duration::from_secs(10), flusher.run())
            .await
            .expect("the flusher finishes")
    }

    /// The demo site's figures, read from the store directly (not through the cache).
    pub(crate) async fn snapshot(&self, site: &str) -> Snapshot {
        let site = self
            .state
            .sites
            .get(&footfall::SiteId::new(site).expect("valid id"))
            .expect("registered");
        counter::snapshot(self.store.as_ref(), &site.id, &site.rules, self.clock.now())
            .await
            .expect("the memory store answers")
    }
}

/// A request builder carrying the peer address the accept loop would insert.
pub(crate) fn request(method: &str, uri: &str) -> http::request::Builder {
    request_from(method, uri, PEER)
}

/// Like [`request`], from `peer`.
pub(crate) fn request_from(method: &str, uri: &str, peer: &str) -> http::request::Builder {
    let peer: SocketAddr = peer.parse().expect("a socket address");
    Request::builder()
        .method(method)
        .uri(uri)
        .extension(ConnectInfo(peer))
}

/// A beacon as a browser on localhost sends it.
pub(crate) fn beacon(body: &str) -> Request<Body> {
    request("POST", "/api/v1/hit")
        .header(header::CONTENT_TYPE, "text/plain;charset=UTF-8")
        .header(header::ORIGIN, "http://localhost:8080")
        .header(header::USER_AGENT, BROWSER)
        .body(Body::from(body.to_owned()))
        .expect("a valid request")
}

/// An answer, read whole.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    /// The body as JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} body is not JSON ({e}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The error message of a JSON error body, checking its shape.
    pub(crate) fn error_message(&self) -> String {
        let json = self.json();
        assert_eq!(
            self.headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "{json}"
        );
        assert!(json["error"]["code"].is_string(), "{json}");
        json["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message in {json}"))
            .to_owned()
    }

    pub(crate) fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends `request` through `app`; checks the security headers every answer carries.
pub(crate) async fn send(app: &Router, request: Request<Body>) -> Reply {
    let response = app
        .clone()
        .oneshot(request)
        .await
        .expect("the router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("the body reads")
        .to_bytes();
    let reply = Reply {
        status,
        headers,
        body,
    };
    assert_security_headers(&reply);
    reply
}

pub(crate) fn assert_security_headers(reply: &Reply) {
    assert_eq!(
        reply.header(header::X_CONTENT_TYPE_OPTIONS),
        Some("nosniff"),
        "{reply:?}"
    );
    assert_eq!(
        reply.header(header::REFERRER_POLICY),
        Some("strict-origin-when-cross-origin"),
        "{reply:?}"
    );
    let csp = reply
        .header(header::CONTENT_SECURITY_POLICY)
        .unwrap_or_else(|| panic!("no CSP: {reply:?}"));
    assert!(csp.contains("default-src 'none'"), "{csp}");
}

/// One counter series: name, labels, value.
type Series = (String, Vec<(String, String)>, u64);

/// Counters recorded by [`recorded`], by name and labels.
#[derive(Debug, Default)]
pub(crate) struct Counters(Vec<Series>);

impl Counters {
    /// The value of counter `name` with every label in `labels`; 0 when never touched.
    pub(crate) fn get(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.0
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, _, value)| value)
            .sum()
    }

    pub(crate) fn dropped(&self, reason: &str) -> u64 {
        self.get("footfall_hits_dropped_total", &[("reason", reason)])
    }

    pub(crate) fn accepted(&self) -> u64 {
        self.get("footfall_hits_accepted_total", &[])
    }
}

/// Runs `test` on a current-thread runtime with a metrics recorder local to this thread
/// (the global recorder is shared by every test in the process); returns its output and
/// the counters it recorded.
pub(crate) fn recorded<F: Future>(test: impl FnOnce() -> F) -> (F::Output, Counters) {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let output = metrics::with_local_recorder(&recorder, || runtime.block_on(test()));
    let counters = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| match value {
            DebugValue::Counter(n) => {
                let (_, key) = key.into_parts();
                let labels = key
                    .labels()
                    .map(|l| (l.key().to_owned(), l.value().to_owned()))
                    .collect();
                Some((key.name().to_owned(), labels, n))
            }
            _ => None,
        })
        .collect();
    (output, Counters(counters))
}

/// A router served by `http::serve` on 127.0.0.1:0 until dropped or stopped.
pub(crate) struct Server {
    /// Where it listens.
    pub(crate) address: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Serves `app` with connection `limits`.
    pub(crate) async fn start(app: Router, limits: ConnectionLimits) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("bound");
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(serve(listener, "public", app, limits, async {
            let _ = stopped.await;
        }));
        Server {
            address,
            stop: Some(stop),
            task,
        }
    }

    /// A new connection to the server.
    pub(crate) async fn connect(&self) -> TcpStream {
        connect(self.address).await
    }

    /// Stops accepting and waits for the drain.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        timeout(PATIENCE, &mut self.task)
            .await
            .expect("the server drains in time")
            .expect("the server task ends cleanly");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A new connection to `address`, within [`PATIENCE`].
pub(crate) async fn connect(address: SocketAddr) -> TcpStream {
    timeout(PATIENCE, TcpStream::connect(address))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// The flags of `footfall serve`.
#[derive(clap::Parser)]
struct ServeCli {
    #[command(flatten)]
    serve: ServeArgs,
}

/// Both listeners of `footfall serve` on free loopback ports.
pub(crate) const LOOPBACK_LISTENERS: [&str; 4] =
    ["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"];

/// The configuration of `footfall serve` on a memory store with both listeners on
/// 127.0.0.1:0, then the flags in `extra`.
pub(crate) fn memory_service_config(extra: &[&str]) -> Config {
    let base = ["footfall"]
        .iter()
        .chain(&LOOPBACK_LISTENERS)
        .chain(&["--store", "memory:"]);
    let args = <ServeCli as clap::Parser>::try_parse_from(base.chain(extra)).expect("flags parse");
    args.serve.validate().expect("a valid configuration")
}

/// `footfall serve` in process: `service::run_with_store` on a task, after it has bound.
pub(crate) struct InProcessService {
    /// Where it listens.
    pub(crate) bound: footfall_server::service::Bound,
    /// Send to begin shutdown.
    pub(crate) stop: tokio::sync::oneshot::Sender<()>,
    /// The service's task; its output is the final flush's totals.
    pub(crate) task:
        tokio::task::JoinHandle<Result<FlushTotals, footfall_server::service::RunError>>,
}

/// Runs `config` on `store` until [`InProcessService::stop`] is sent, once it has bound
/// its listeners (at most `within`).
pub(crate) async fn spawn_service(
    config: footfall_server::config::Config,
    store: Arc<AnyStore>,
    within: std::time::Duration,
) -> InProcessService {
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(footfall_server::service::run_with_store(
        config,
        store,
        async {
            let _ = stopped.await;
        },
        move |bound| {
            let _ = bound_tx.send(bound);
        },
    ));
    let bound = tokio::time::timeout(within, bound_rx)
        .await
        .expect("bound in time")
        .expect("the service binds");
    InProcessService { bound, stop, task }
}

/// The `footfall` binary of this package, as a command to add arguments to.
pub(crate) fn footfall_command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_footfall"))
}

/// Runs `footfall` with `args`, feeding `stdin`, and waits for it.
pub(crate) fn footfall(args: &[&OsStr], stdin: &[u8]) -> Output {
    let mut child = footfall_command()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the footfall binary starts");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("footfall finishes")
}

/// A process's output as text.
pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A memory store holding `site`'s imported all-time baseline of `visits`, as the
/// portal's old counter left it.
pub(crate) async fn store_with_baseline(site: &str, visits: u64) -> Arc<AnyStore> {
    let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
    counter::set_baseline(
        store.as_ref(),
        &footfall::SiteId::new(site).expect("a valid id"),
        footfall::Metric::Visits,
        visits,
        false,
        footfall::clock::SystemClock.now(),
    )
    .await
    .expect("the memory store takes a baseline");
    store
}

/// Starts `command` with its standard error piped, and returns the child and the lines
/// it writes there, read on a thread of their own so a test can wait for one with a
/// timeout.
pub(crate) fn spawn_with_log(
    command: &mut Command,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the footfall binary starts");
    let stderr = child.stderr.take().expect("piped stderr");
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    (child, lines)
}
