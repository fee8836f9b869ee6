//! Sending requests: open loop at a fixed rate, or closed loop as fast as possible.
//!
//! The client is hyper's own HTTP/1.1 connection (`hyper::client::conn::http1`) over
//! keep-alive TCP connections with `TCP_NODELAY`: no pool, no redirects, no TLS, so the
//! harness spends as little of the shared CPU as a Rust client can, and every baseline is
//! driven by the same code.
//!
//! **Open loop.** Request `i` is due at `start + i / rate`, whatever happened before.
//! Connection `j` of `K` sends requests `j, j + K, j + 2K, …`. Latency is measured from
//! the due time whenever the connection was still busy with the previous answer at that
//! time, so a stalled server is charged for the whole queue it caused (no coordinated
//! omission, as in wrk2). When the connection was idle, latency starts when the request is
//! actually written: the client's timer waking late is the client's fault, not the
//! server's.
//!
//! **Closed loop.** `K` connections each send the next request as soon as the previous
//! answer arrives: the throughput ceiling.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::traffic::{PlannedHit, Traffic, TrafficMix, Truth};

/// The longest latency the histograms hold, in microseconds (a minute).
const MAX_LATENCY_US: u64 = 60_000_000;
/// How long one request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long after the end of a phase the last answers may still arrive.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// What to send.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The public listener.
    pub address: SocketAddr,
    /// The `Host` header.
    pub host: String,
    /// The site ids, by index.
    pub sites: Arc<Vec<String>>,
    /// The traffic shape.
    pub mix: TrafficMix,
    /// Hits, or count reads.
    pub kind: RequestKind,
}

/// The kind of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// `POST /api/v1/hit`.
    Hits,
    /// `GET /api/v1/sites/{site}/counts`.
    Reads,
    /// `POST /api/v1/hit?counts=1`: the widget's one request, a hit answered with the
    /// site's counts.
    Widget,
}

impl RequestKind {
    /// True for the kinds that record a hit.
    #[must_use]
    pub fn is_hit(self) -> bool {
        matches!(self, RequestKind::Hits | RequestKind::Widget)
    }
}

/// How fast to send.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// A fixed rate, in requests per second.
    Open(f64),
    /// As fast as the answers come.
    Closed,
}

/// What a phase did.
#[derive(Debug)]
pub struct PhaseResult {
    /// Requests sent.
    pub sent: u64,
    /// Requests answered 2xx.
    pub ok: u64,
    /// Requests that failed: non-2xx, connection errors, timeouts, or not sent in time.
    pub errors: u64,
    /// Latency of 2xx answers, in microseconds.
    pub latency_us: Histogram<u64>,
    /// From the first due time to the last answer.
    pub elapsed: Duration,
    /// What the service must count.
    pub truth: Truth,
}

impl PhaseResult {
    /// 2xx answers per second.
    #[must_use]
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs one phase: `connections` connections for `duration` at `pace`.
///
/// # Errors
///
/// When no connection can be made at all.
pub async fn run(
    workload: &Workload,
    pace: Pace,
    connections: usize,
    duration: Duration,
    seed: u64,
) -> anyhow::Result<PhaseResult> {
    let connections = connections.max(1);
    // Fail early and clearly when nothing listens.
    drop(connect(workload.address).await?);
    let start = Instant::now() + Duration::from_millis(50);
    let mut tasks = Vec::with_capacity(connections);
    for index in 0..connections {
        let workload = workload.clone();
        let seed = seed.wrapping_mul(1_000_003).wrapping_add(index as u64);
        tasks.push(tokio::spawn(async move {
            connection_loop(workload, pace, index, connections, start, duration, seed).await
        }));
    }
    let mut result = PhaseResult {
        sent: 0,
        ok: 0,
        errors: 0,
        latency_us: new_histogram(),
        elapsed: Duration::ZERO,
        truth: Truth::new(workload.sites.len()),
    };
    let mut last_answer = start;
    for task in tasks {
        let part = task.await.context("a load connection panicked")?;
        result.sent += part.sent;
        result.ok += part.ok;
        result.errors += part.errors;
        result
            .latency_us
            .add(&part.latency_us)
            .context("merging histograms")?;
        result.truth.merge(part.truth);
        last_answer = last_answer.max(part.last_answer);
    }
    result.elapsed = last_answer.saturating_duration_since(start);
    Ok(result)
}

/// Sends one hit to every site of `workload`, one at a time over one connection, and
/// returns the 2xx answers and what the service must count for them.
///
/// A site's first hit costs the service one-off work (its salt for the day, say); without
/// this, that work would land in whichever measured phase came first and inflate its CPU
/// per hit, although a real site pays it once a day.
///
/// # Errors
///
/// When no connection can be made.
pub async fn touch_every_site(workload: &Workload) -> anyhow::Result<(u64, Truth)> {
    let hits = Workload {
        kind: RequestKind::Hits,
        ..workload.clone()
    };
    let mut sender = Some(connect(hits.address).await?);
    let mut truth = Truth::new(hits.sites.len());
    let mut ok = 0;
    for site in 0..hits.sites.len() {
        let hit = PlannedHit {
            site,
            client: (site as u32) % hits.mix.clients.max(1),
            bot: false,
            page: 0,
        };
        if exchange(&mut sender, hits.address, build_request(&hits, &hit)).await {
            ok += 1;
            truth.record(&hit);
        }
    }
    Ok((ok, truth))
}

struct ConnectionResult {
    sent: u64,
    ok: u64,
    errors: u64,
    latency_us: Histogram<u64>,
    truth: Truth,
    last_answer: Instant,
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

async fn connect(address: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(address)
        .await
        .with_context(|| format!("connecting to {address}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP/1.1 handshake")?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

fn build_request(workload: &Workload, hit: &PlannedHit) -> http::Request<Full<Bytes>> {
    let site = &workload.sites[hit.site];
    match workload.kind {
        RequestKind::Hits | RequestKind::Widget => {
            let body = format!(
                r#"{{"site":"{site}","path":"/tin-tuc/bai-{}.html","referrer":"https://www.google.com/"}}"#,
                hit.page
            );
            let uri = if workload.kind == RequestKind::Widget {
                "/api/v1/hit?counts=1"
            } else {
                "/api/v1/hit"
            };
            http::Request::post(uri)
                .header(http::header::HOST, &workload.host)
                .header(http::header::CONTENT_TYPE, "text/plain;charset=UTF-8")
                .header(
                    http::header::ORIGIN,
                    format!("https://{}", super::site_hostname(site)),
                )
                .header(http::header::USER_AGENT, hit.user_agent())
                .header("x-forwarded-for", hit.client_ip())
                .body(Full::new(Bytes::from(body)))
                .expect("a valid request")
        }
        RequestKind::Reads => http::Request::get(format!("/api/v1/sites/{site}/counts"))
            .header(http::header::HOST, &workload.host)
            .body(Full::new(Bytes::new()))
            .expect("a valid request"),
    }
}

/// Sends one request; true on a 2xx answer whose body was read in full.
async fn exchange(
    sender: &mut Option<SendRequest<Full<Bytes>>>,
    address: SocketAddr,
    request: http::Request<Full<Bytes>>,
) -> bool {
    let attempt = async {
        if sender.as_ref().is_none_or(SendRequest::is_closed) {
            *sender = Some(connect(address).await?);
        }
        let connection = sender.as_mut().expect("connected above");
        connection.ready().await?;
        let response = connection.send_request(request).await?;
        let ok = response.status().is_success();
        response.into_body().collect().await?;
        anyhow::Ok(ok)
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, attempt).await {
        Ok(Ok(ok)) => ok,
        _ => {
            // A broken or timed-out connection is replaced on the next request.
            *sender = None;
            false
        }
    }
}

async fn connection_loop(
    workload: Workload,
    pace: Pace,
    index: usize,
    connections: usize,
    start: Instant,
    duration: Duration,
    seed: u64,
) -> ConnectionResult {
    let mut traffic = Traffic::new(&workload.mix, seed);
    let mut result = ConnectionResult {
        sent: 0,
        ok: 0,
        errors: 0,
        latency_us: new_histogram(),
        truth: Truth::new(workload.sites.len()),
        last_answer: start,
    };
    let end = start + duration;
    let hard_end = end + DRAIN_GRACE;
    let mut sender = connect(workload.address).await.ok();
    tokio::time::sleep_until(start.into()).await;
    let mut request_index = index as u64;
    loop {
        let from = match pace {
            Pace::Open(rate) => {
                let due = start + Duration::from_secs_f64(request_index as f64 / rate);
                if due >= end {
                    break;
                }
                if Instant::now() >= hard_end {
                    // Too far behind to finish: what was not sent failed.
                    let remaining =
                        ((end - due).as_secs_f64() * rate / connections as f64).ceil() as u64;
                    result.errors += remaining;
                    break;
                }
                let now = Instant::now();
                if now < due {
                    tokio::time::sleep_until(due.into()).await;
                    // Idle connection: latency from the actual send.
                    Instant::now()
                } else {
                    // Behind schedule: the server is charged from the due time.
                    due
                }
            }
            Pace::Closed => {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                now
            }
        };
        request_index += connections as u64;
        let hit = traffic.next_hit();
        let request = build_request(&workload, &hit);
        result.sent += 1;
        let ok = exchange(&mut sender, workload.address, request).await;
        let answered = Instant::now();
        result.last_answer = answered;
        if ok {
            result.ok += 1;
            let micros = answered.saturating_duration_since(from).as_micros() as u64;
            result.latency_us.saturating_record(micros.max(1));
            if workload.kind.is_hit() {
                result.truth.record(&hit);
            }
        } else {
            result.errors += 1;
        }
    }
    result
}
