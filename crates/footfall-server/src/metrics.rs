//! The service's metrics, named once here. Label values come only from the closed sets
//! below (drop reasons, operations, route templates), so the number of series is fixed.

use std::time::Duration;

/// Why a hit was not counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// A robot's User-Agent.
    Bot,
    /// A prefetch or prerender.
    Prefetch,
    /// `Origin`/`Referer` not among the site's hostnames (or absent).
    ForeignOrigin,
    /// The browser asked not to be tracked and the site respects it.
    DoNotTrack,
    /// Over the per-address rate limit.
    RateLimited,
    /// The write buffer is full (the store is slow or down).
    BufferFull,
    /// The service is shutting down.
    ShuttingDown,
    /// The store failed in a way that may or may not have written the hits (a timeout, or
    /// a batch rejected after part of it was applied).
    StoreAmbiguous,
    /// The site was removed between acceptance and flush.
    UnknownSite,
    /// No salt could be had from the store to derive the visitor id.
    SaltUnavailable,
    /// A `HEAD` request.
    Head,
    /// Held back so long (the store down for more than a day) that its day had closed.
    TooOld,
    /// A new visitor from an address that already brought its hour's budget of new
    /// visitors (`--visitor-budget`).
    VisitorBudget,
}

impl DropReason {
    /// Every reason, for touching the series at start-up.
    pub const ALL: [DropReason; 13] = [
        DropReason::Bot,
        DropReason::Prefetch,
        DropReason::ForeignOrigin,
        DropReason::DoNotTrack,
        DropReason::RateLimited,
        DropReason::BufferFull,
        DropReason::ShuttingDown,
        DropReason::StoreAmbiguous,
        DropReason::UnknownSite,
        DropReason::SaltUnavailable,
        DropReason::Head,
        DropReason::TooOld,
        DropReason::VisitorBudget,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Bot => "bot",
            DropReason::Prefetch => "prefetch",
            DropReason::ForeignOrigin => "foreign_origin",
            DropReason::DoNotTrack => "do_not_track",
            DropReason::RateLimited => "rate_limited",
            DropReason::BufferFull => "buffer_full",
            DropReason::ShuttingDown => "shutting_down",
            DropReason::StoreAmbiguous => "store_ambiguous",
            DropReason::UnknownSite => "unknown_site",
            DropReason::SaltUnavailable => "salt_unavailable",
            DropReason::Head => "head",
            DropReason::TooOld => "too_old",
            DropReason::VisitorBudget => "visitor_budget",
        }
    }
}

/// The counters every hit touches, made once (with the recorder current then) so a hit
/// does not look its series up by name: accepted, dropped by reason, robots by kind.
#[derive(Debug)]
pub struct IngestCounters {
    accepted: metrics::Counter,
    dropped: [metrics::Counter; DropReason::ALL.len()],
    robots: [metrics::Counter; crate::bots::RobotKind::ALL.len()],
}

impl IngestCounters {
    /// Handles on the recorder installed now (the global one in the service; a test's
    /// local one in tests).
    pub fn new() -> Self {
        IngestCounters {
            accepted: metrics::counter!("footfall_hits_accepted_total"),
            dropped: DropReason::ALL.map(|reason| {
                metrics::counter!("footfall_hits_dropped_total", "reason" => reason.as_str())
            }),
            robots: crate::bots::RobotKind::ALL.map(|kind| {
                metrics::counter!("footfall_robot_hits_total", "kind" => kind.label())
            }),
        }
    }

    /// A hit accepted into the buffer.
    pub fn accepted(&self) {
        self.accepted.increment(1);
    }

    /// A hit dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) {
        self.dropped[reason as usize].increment(1);
    }

    /// A robot's hit, by kind (also dropped as `bot`).
    pub fn robot(&self, kind: crate::bots::RobotKind) {
        self.robots[kind as usize].increment(1);
    }
}

impl Default for IngestCounters {
    fn default() -> Self {
        Self::new()
    }
}

/// Hits dropped for `reason`.
pub fn hits_dropped(reason: DropReason, count: u64) {
    metrics::counter!("footfall_hits_dropped_total", "reason" => reason.as_str()).increment(count);
}

/// The buffer's current depth.
pub fn buffer_depth(depth: usize) {
    metrics::gauge!("footfall_buffer_hits").set(depth as f64);
}

/// The flusher's lag: the age of the oldest hit taken from the buffer and not yet
/// written.
pub fn flush_lag(lag: Duration) {
    metrics::gauge!("footfall_flush_lag_seconds").set(lag.as_secs_f64());
}

/// A store operation's outcome and latency.
pub fn store_operation(operation: &'static str, took: Duration, ok: bool) {
    metrics::histogram!("footfall_store_operation_duration_seconds", "operation" => operation)
        .record(took.as_secs_f64());
    if !ok {
        metrics::counter!("footfall_store_errors_total", "operation" => operation).increment(1);
    }
}

/// A flushed batch.
pub fn flushed(hits: usize, took: Duration) {
    metrics::histogram!("footfall_flush_batch_hits").record(hits as f64);
    metrics::histogram!("footfall_flush_duration_seconds").record(took.as_secs_f64());
    metrics::counter!("footfall_hits_written_total").increment(hits as u64);
}

/// The listeners, as the `listener` label of the connection gauge.
pub const LISTENERS: [&str; 2] = ["public", "internal"];

/// A client connection was accepted on `listener` (one of [`LISTENERS`]).
pub fn connection_opened(listener: &'static str) {
    metrics::gauge!("footfall_http_connections", "listener" => listener).increment(1.0);
}

/// A client connection on `listener` closed.
pub fn connection_closed(listener: &'static str) {
    metrics::gauge!("footfall_http_connections", "listener" => listener).decrement(1.0);
}

/// The counts cache's lookups by outcome, made once like [`IngestCounters`]: looking a
/// labelled series up by name took a cached read about 1,200 instructions.
#[derive(Debug)]
pub struct CacheCounters {
    hit: metrics::Counter,
    miss: metrics::Counter,
}

impl CacheCounters {
    /// Handles on the recorder installed now.
    pub fn new() -> Self {
        CacheCounters {
            hit: metrics::counter!("footfall_cache_lookups_total", "outcome" => "hit"),
            miss: metrics::counter!("footfall_cache_lookups_total", "outcome" => "miss"),
        }
    }

    /// A counts read served from the cache (`hit`) or not.
    pub fn lookup(&self, hit: bool) {
        if hit { &self.hit } else { &self.miss }.increment(1);
    }
}

impl Default for CacheCounters {
    fn default() -> Self {
        Self::new()
    }
}

use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::Instant;

use axum::extract::MatchedPath;
use axum::response::Response;
use foldhash::HashMap;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets in seconds: 0.5 ms to 10 s, dense where a healthy request lands
/// (sub-millisecond to tens of milliseconds).
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Batch-size buckets in hits.
const BATCH_BUCKETS: &[f64] = &[
    1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 10000.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static PROCESS: OnceLock<metrics_process::Collector> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once; later calls reuse it) and touches
/// every known series, so dashboards and alerts see zeros rather than gaps.
pub fn install() -> &'static PrometheusHandle {
    let handle = HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .with_recommended_naming(true)
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("footfall_flush_batch_hits".to_owned()),
                    BATCH_BUCKETS,
                )
            })
            .expect("bucket lists are not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
        }
        handle
    });
    let process = PROCESS.get_or_init(metrics_process::Collector::default);
    process.describe();
    describe_and_touch();
    handle
}

fn describe_and_touch() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "footfall_hits_accepted_total",
        "Hits accepted into the write buffer."
    );
    describe_counter!(
        "footfall_hits_dropped_total",
        "Hits not counted, by reason."
    );
    describe_counter!("footfall_hits_written_total", "Hits written to the store.");
    describe_counter!(
        "footfall_robot_hits_total",
        "Hits from robots (dropped as reason=\"bot\"), by kind of robot."
    );
    describe_gauge!("footfall_buffer_hits", "Hits waiting in the write buffer.");
    describe_gauge!("footfall_buffer_capacity_hits", "The write buffer's bound.");
    describe_histogram!("footfall_flush_batch_hits", "Hits per store batch.");
    describe_gauge!(
        "footfall_flush_lag_seconds",
        Unit::Seconds,
        "Age of the oldest hit taken from the write buffer and not yet written (0 when none)."
    );
    describe_histogram!(
        "footfall_flush_duration_seconds",
        Unit::Seconds,
        "Time to write one batch."
    );
    describe_histogram!(
        "footfall_store_operation_duration_seconds",
        Unit::Seconds,
        "Store call latency, by operation."
    );
    describe_counter!(
        "footfall_store_errors_total",
        "Failed store calls, by operation."
    );
    describe_counter!(
        "footfall_cache_lookups_total",
        "Counts cache lookups, by outcome."
    );
    describe_counter!(
        "footfall_http_requests_total",
        "HTTP requests, by route, method and status class."
    );
    describe_histogram!(
        "footfall_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request latency, by route and method."
    );
    describe_gauge!(
        "footfall_http_requests_in_flight",
        "HTTP requests being handled."
    );
    describe_gauge!(
        "footfall_http_connections",
        "Open client connections, by listener."
    );
    describe_counter!(
        "footfall_http_shed_total",
        "Requests refused fast because the service was at its concurrency bound."
    );
    describe_counter!(
        "footfall_panics_total",
        "Request handlers that panicked (answered 500)."
    );
    describe_gauge!("footfall_sites", "Registered sites.");
    describe_gauge!(
        "footfall_rate_limiter_clients",
        "Client addresses tracked by the rate limiter."
    );
    describe_gauge!(
        "footfall_salt_age_seconds",
        "Age of the oldest salt in use; grows past a day if rotation stalls."
    );
    describe_gauge!(
        "footfall_store_open_visits",
        "Embedded store: visit markers, about (open visits, and expired ones until a flush or sweep drops them), in the file and changed in memory."
    );
    describe_gauge!(
        "footfall_store_marker_bytes",
        "Embedded store: about the memory the visit markers changed since the last flush take."
    );
    describe_gauge!(
        "footfall_store_held_records",
        "Embedded store: records changed since they were last written out (journaled), read before the upkeep writes them out."
    );
    describe_gauge!(
        "footfall_store_held_bytes",
        "Embedded store: about the memory the held records take."
    );
    describe_gauge!("footfall_build_info", "Build information; the value is 1.");

    metrics::gauge!("footfall_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    metrics::counter!("footfall_hits_accepted_total").absolute(0);
    metrics::counter!("footfall_hits_written_total").absolute(0);
    for reason in DropReason::ALL {
        metrics::counter!("footfall_hits_dropped_total", "reason" => reason.as_str()).increment(0);
    }
    for kind in crate::bots::RobotKind::ALL {
        metrics::counter!("footfall_robot_hits_total", "kind" => kind.label()).increment(0);
    }
    for operation in ["apply", "read", "salt"] {
        metrics::counter!("footfall_store_errors_total", "operation" => operation).increment(0);
    }
    for outcome in ["hit", "miss"] {
        metrics::counter!("footfall_cache_lookups_total", "outcome" => outcome).increment(0);
    }
    metrics::counter!("footfall_http_shed_total").increment(0);
    metrics::counter!("footfall_panics_total").increment(0);
    metrics::gauge!("footfall_http_requests_in_flight").increment(0.0);
    metrics::gauge!("footfall_flush_lag_seconds").set(0.0);
    for listener in LISTENERS {
        metrics::gauge!("footfall_http_connections", "listener" => listener).increment(0.0);
    }
}

/// The Prometheus text of every metric, with process metrics sampled now.
pub fn render() -> String {
    if let Some(process) = PROCESS.get() {
        process.collect();
    }
    HANDLE
        .get()
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}

/// Periodic work of the exporter (histogram maintenance).
pub fn upkeep() {
    if let Some(handle) = HANDLE.get() {
        handle.run_upkeep();
    }
}

/// Gauges sampled by the service's upkeep task.
pub fn service_gauges(
    sites: usize,
    buffer_capacity: usize,
    limiter_clients: usize,
    salt_age_seconds: Option<f64>,
) {
    metrics::gauge!("footfall_sites").set(sites as f64);
    metrics::gauge!("footfall_buffer_capacity_hits").set(buffer_capacity as f64);
    metrics::gauge!("footfall_rate_limiter_clients").set(limiter_clients as f64);
    if let Some(age) = salt_age_seconds {
        metrics::gauge!("footfall_salt_age_seconds").set(age);
    }
}

/// What the embedded store holds in memory beside its file, set by the upkeep.
pub fn embedded_store(held: footfall::store::HeldInMemory) {
    metrics::gauge!("footfall_store_open_visits").set(held.open_visits as f64);
    metrics::gauge!("footfall_store_marker_bytes").set(held.marker_bytes as f64);
    metrics::gauge!("footfall_store_held_records").set(held.records as f64);
    metrics::gauge!("footfall_store_held_bytes").set(held.record_bytes as f64);
}

/// The method label values; anything else is `other`, so clients cannot create series.
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "other"];
/// The status class label values.
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn method_index(method: &http::Method) -> usize {
    match *method {
        http::Method::GET => 0,
        http::Method::HEAD => 1,
        http::Method::POST => 2,
        http::Method::PUT => 3,
        http::Method::DELETE => 4,
        http::Method::OPTIONS => 5,
        _ => 6,
    }
}

fn status_class_index(status: http::StatusCode) -> usize {
    match status.as_u16() {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        _ => 4,
    }
}

/// One route's request metrics, created on first use (a series exists only once a request
/// had its labels) and reused after, so a request does not build and look up label sets.
#[derive(Debug)]
struct RouteMetrics {
    /// The route template, the `route` label.
    name: String,
    requests: [[OnceLock<metrics::Counter>; STATUS_CLASSES.len()]; METHODS.len()],
    durations: [OnceLock<metrics::Histogram>; METHODS.len()],
}

/// The request metrics of one router, by route template. Handles belong to the recorder
/// that was current when they were made, so each router keeps its own (tests give each
/// service a recorder of its own).
#[derive(Clone, Debug, Default)]
pub struct HttpMetrics {
    routes: Arc<RwLock<HashMap<Arc<str>, Arc<RouteMetrics>>>>,
    in_flight: Arc<OnceLock<metrics::Gauge>>,
    shed: Arc<OnceLock<metrics::Counter>>,
}

impl HttpMetrics {
    fn route(&self, route: &str) -> Arc<RouteMetrics> {
        if let Some(found) = self
            .routes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(route)
        {
            return Arc::clone(found);
        }
        // Routes are templates from `MatchedPath` or "unmatched": a fixed set.
        let mut routes = self.routes.write().unwrap_or_else(PoisonError::into_inner);
        let metrics = routes.entry(Arc::from(route)).or_insert_with(|| {
            Arc::new(RouteMetrics {
                name: route.to_owned(),
                requests: Default::default(),
                durations: Default::default(),
            })
        });
        Arc::clone(metrics)
    }
}

/// Counts and times requests by route template (never the raw path), and bounds the
/// requests in flight: past `max_in_flight` a request is answered at once with
/// `overloaded()` (a fast 503) instead of queueing.
///
/// One layer for both jobs because they share the in-flight count, and written as a
/// plain `tower::Layer` rather than axum's `from_fn` or tower's concurrency limit and
/// load shedding: those box the request's future, take a semaphore permit and wrap
/// errors on every request, which on a hit cost more than the counting itself.
#[derive(Clone, Debug)]
pub struct TrackLayer {
    metrics: HttpMetrics,
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    max_in_flight: usize,
    overloaded: fn() -> Response,
}

impl TrackLayer {
    /// A layer for one listener: one metrics set and one bound for all its routes.
    pub fn new(max_in_flight: usize, overloaded: fn() -> Response) -> Self {
        TrackLayer {
            metrics: HttpMetrics::default(),
            in_flight: Arc::default(),
            max_in_flight: max_in_flight.max(1),
            overloaded,
        }
    }
}

impl<S> tower::Layer<S> for TrackLayer {
    type Service = Track<S>;

    fn layer(&self, inner: S) -> Track<S> {
        Track {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`TrackLayer`].
#[derive(Clone, Debug)]
pub struct Track<S> {
    inner: S,
    layer: TrackLayer,
}

impl<S, B, ResBody> tower::Service<http::Request<B>> for Track<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Future: Unpin,
    ResBody: axum::body::HttpBody<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = TrackFuture<S::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        use std::sync::atomic::Ordering;
        let layer = &self.layer;
        let route = layer.metrics.route(
            request
                .extensions()
                .get::<MatchedPath>()
                .map_or("unmatched", MatchedPath::as_str),
        );
        let method = method_index(request.method());
        let started = Instant::now();
        let in_flight = InFlight {
            count: Arc::clone(&layer.in_flight),
            gauge: layer
                .metrics
                .in_flight
                .get_or_init(|| metrics::gauge!("footfall_http_requests_in_flight"))
                .clone(),
        };
        in_flight.gauge.increment(1.0);
        let inner = if in_flight.count.fetch_add(1, Ordering::AcqRel) >= layer.max_in_flight {
            layer
                .metrics
                .shed
                .get_or_init(|| metrics::counter!("footfall_http_shed_total"))
                .increment(1);
            Err((layer.overloaded)())
        } else {
            Ok(self.inner.call(request))
        };
        TrackFuture {
            inner: Some(inner),
            route,
            method,
            started,
            _in_flight: in_flight,
        }
    }
}

/// One request in flight: counted while it lives, whatever ends it (an answer, a
/// timeout, a dropped connection).
#[derive(Debug)]
struct InFlight {
    count: Arc<std::sync::atomic::AtomicUsize>,
    gauge: metrics::Gauge,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.count.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        self.gauge.decrement(1.0);
    }
}

/// The future of [`Track`]: the route's answer (or the shed answer), recorded when it
/// comes.
#[derive(Debug)]
pub struct TrackFuture<F> {
    /// `Err`: shed, answered without calling the route. `None` once answered.
    inner: Option<Result<F, Response>>,
    route: Arc<RouteMetrics>,
    method: usize,
    started: Instant,
    _in_flight: InFlight,
}

impl<F, E, ResBody> std::future::Future for TrackFuture<F>
where
    F: std::future::Future<Output = Result<http::Response<ResBody>, E>> + Unpin,
    ResBody: axum::body::HttpBody<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Output = Result<Response, E>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = &mut *self;
        let result = match this.inner.as_mut() {
            // The one conversion to axum's body that the router would make anyway.
            Some(Ok(future)) => std::task::ready!(std::pin::Pin::new(future).poll(cx))
                .map(|response| response.map(axum::body::Body::new)),
            Some(Err(_)) => match this.inner.take() {
                Some(Err(shed)) => Ok(shed),
                _ => unreachable!("the shed answer was just seen"),
            },
            None => panic!("TrackFuture polled after it completed"),
        };
        this.inner = None;
        if let Ok(response) = &result {
            let (route, method) = (&this.route, this.method);
            let status = status_class_index(response.status());
            route.requests[method][status]
                .get_or_init(|| {
                    metrics::counter!(
                        "footfall_http_requests_total",
                        "route" => route.name.clone(),
                        "method" => METHODS[method],
                        "status" => STATUS_CLASSES[status]
                    )
                })
                .increment(1);
            route.durations[method]
                .get_or_init(|| {
                    metrics::histogram!(
                        "footfall_http_request_duration_seconds",
                        "route" => route.name.clone(),
                        "method" => METHODS[method]
                    )
                })
                .record(this.started.elapsed().as_secs_f64());
        }
        std::task::Poll::Ready(result)
    }
}

/// `GET /metrics`.
pub async fn metrics_endpoint() -> ([(http::HeaderName, &'static str); 1], String) {
    (
        [(
            http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `IngestCounters` indexes its handles by discriminant: the lists must be in
    /// declaration order.
    #[test]
    fn reasons_and_kinds_are_listed_in_declaration_order() {
        for (index, reason) in DropReason::ALL.into_iter().enumerate() {
            assert_eq!(reason as usize, index, "{reason:?}");
        }
        for (index, kind) in crate::bots::RobotKind::ALL.into_iter().enumerate() {
            assert_eq!(kind as usize, index, "{kind:?}");
        }
    }
}
