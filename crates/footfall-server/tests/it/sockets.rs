//! The HTTP front on real sockets (127.0.0.1, port 0): slow and oversized clients are cut
//! off on time, overload gets a fast 503, keep-alive and HTTP/2 work, and shutdown drains
//! requests and writes every acknowledged hit.
//!
//! Timeouts are configured short (a few hundred milliseconds) so the tests are fast; each
//! wait is bounded, so a regression fails a test instead of hanging it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use footfall::clock::{Clock, SystemClock};
use footfall::counter;
use footfall::store::{AnyStore, MemoryStore};
use footfall::{Metric, SiteId, Window};
use footfall_server::app::{RequestLimits, public_app};
use footfall_server::http::ConnectionLimits;
use footfall_server::sites::{Site, SiteSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::support::{
    Harness, InProcessService, PATIENCE, Server, connect, memory_service_config, spawn_service,
};

/// The header-read timeout of the test servers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_millis(300);
/// The request timeout of the test servers.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(600);
/// Scheduling slack allowed on top of a timeout (two cores shared with other builds).
const MARGIN: Duration = Duration::from_millis(1500);

const HIT: &str = r#"{"site":"demo","path":"/"}"#;

/// `app` served with the test servers' connection limits.
async fn start(app: Router) -> Server {
    Server::start(app, test_connection_limits()).await
}

fn test_connection_limits() -> ConnectionLimits {
    ConnectionLimits {
        header_read_timeout: HEADER_READ_TIMEOUT,
        drain_timeout: Duration::from_secs(5),
        ..ConnectionLimits::default()
    }
}

fn test_request_limits() -> RequestLimits {
    RequestLimits {
        request_timeout: REQUEST_TIMEOUT,
        ..RequestLimits::default()
    }
}

fn public(harness: &Harness, limits: RequestLimits) -> Router {
    public_app(harness.state.clone(), limits)
}

/// A response as read off the wire.
struct RawResponse {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl std::fmt::Debug for RawResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body = String::from_utf8_lossy(&self.body);
        let end = body
            .char_indices()
            .nth(200)
            .map_or(body.len(), |(at, _)| at);
        write!(f, "{}{}", self.head, &body[..end])
    }
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }
}

/// Reads one response (head and a `Content-Length` or chunked body) within `PATIENCE`.
/// `buffer` keeps bytes read past it, for the next response on the connection.
async fn read_response(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
) -> std::io::Result<RawResponse> {
    timeout(PATIENCE, read_response_unbounded(stream, buffer))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "no response within {PATIENCE:?}; read so far: {:?}",
                String::from_utf8_lossy(buffer)
            )
        })
}

async fn fill(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 8192];
    let n = stream.read(&mut chunk).await?;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    buffer.extend_from_slice(&chunk[..n]);
    Ok(())
}

async fn read_response_unbounded(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
) -> std::io::Result<RawResponse> {
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        fill(stream, buffer).await?;
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    buffer.drain(..head_end);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a status line: {head:?}"));
    let mut response = RawResponse {
        status,
        head,
        body: Vec::new(),
    };
    if response
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let Some(line_end) = buffer.windows(2).position(|w| w == b"\r\n") else {
                fill(stream, buffer).await?;
                continue;
            };
            let size =
                usize::from_str_radix(String::from_utf8_lossy(&buffer[..line_end]).trim(), 16)
                    .expect("a chunk size");
            while buffer.len() < line_end + 2 + size + 2 {
                fill(stream, buffer).await?;
            }
            response
                .body
                .extend_from_slice(&buffer[line_end + 2..line_end + 2 + size]);
            buffer.drain(..line_end + 2 + size + 2);
            if size == 0 {
                break;
            }
        }
    } else {
        let length: usize = response
            .header("content-length")
            .map_or(0, |v| v.parse().expect("a content length"));
        while buffer.len() < length {
            fill(stream, buffer).await?;
        }
        response.body = buffer.drain(..length).collect();
    }
    Ok(response)
}

/// Sends `request` on a fresh connection and reads the answer.
async fn exchange(server: &Server, request: &str) -> RawResponse {
    let mut stream = server.connect().await;
    stream.write_all(request.as_bytes()).await.expect("write");
    read_response(&mut stream, &mut Vec::new())
        .await
        .expect("a response")
}

/// Waits until the server closes `stream` (end of file or reset), discarding what it
/// sends; returns how long that took. Panics after `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> (Duration, Vec<u8>) {
    let started = Instant::now();
    let mut received = Vec::new();
    let result = timeout(within, async {
        let mut chunk = [0u8; 1024];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(
        result.is_ok(),
        "the connection was still open after {within:?} (received {:?})",
        String::from_utf8_lossy(&received)
    );
    (started.elapsed(), received)
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")
}

fn hit_head(content_length: usize, extra: &str) -> String {
    format!(
        "POST /api/v1/hit HTTP/1.1\r\nHost: localhost\r\nOrigin: http://localhost\r\n\
         User-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0\r\n\
         Content-Type: text/plain\r\nContent-Length: {content_length}\r\n{extra}\r\n"
    )
}

#[tokio::test]
async fn slow_request_heads_are_cut_at_the_header_read_timeout_while_others_are_served() {
    let harness = Harness::new();
    let server = start(public(&harness, test_request_limits())).await;
    // Half a head; the start of the HTTP/2 preface; nothing at all. Each must be closed
    // on time, or a few thousand such sockets exhaust the server's descriptors.
    let partial_heads: [&[u8]; 4] = [
        b"GET /api/v1/sites/demo/counts HTTP/1.1\r\nHost: local",
        b"G",
        b"PRI * HTTP/2.0\r\n",
        b"",
    ];
    let mut slow = Vec::new();
    for partial in partial_heads {
        let mut stream = server.connect().await;
        let sent = Instant::now();
        stream.write_all(partial).await.expect("write");
        slow.push((partial, stream, sent));
    }
    // A normal client meanwhile is served at once.
    let started = Instant::now();
    let reply = exchange(&server, &get("/api/v1/sites/demo/counts")).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(
        started.elapsed() < HEADER_READ_TIMEOUT,
        "{:?}",
        started.elapsed()
    );

    // The hyper timer covers the HTTP/1 head; a connection still choosing its protocol
    // may take one timeout to choose and one to read the head.
    let bound = 2 * HEADER_READ_TIMEOUT + MARGIN;
    for (partial, mut stream, sent) in slow {
        let (_, received) = closed_within(&mut stream, bound).await;
        let took = sent.elapsed();
        assert!(took < bound, "closed after {took:?}");
        eprintln!(
            "slow head {:?}: closed after {took:?}, having received {:?}",
            String::from_utf8_lossy(partial),
            String::from_utf8_lossy(&received)
                .lines()
                .next()
                .unwrap_or("")
        );
        assert!(
            took + Duration::from_millis(50)
                >= HEADER_READ_TIMEOUT.saturating_sub(Duration::from_millis(100)),
            "closed before the timeout, after {took:?}"
        );
        let received = String::from_utf8_lossy(&received);
        assert!(
            received.is_empty() || received.starts_with("HTTP/1.1 408"),
            "{received:?}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_trickled_body_is_cut_at_the_request_timeout() {
    let harness = Harness::new();
    let server = start(public(&harness, test_request_limits())).await;
    let mut stream = server.connect().await;
    let started = Instant::now();
    stream
        .write_all(hit_head(HIT.len(), "").as_bytes())
        .await
        .expect("write");
    let (mut reader, mut writer) = stream.into_split();
    // One byte every 100 ms: the whole body would take 2.6 s.
    let trickle = tokio::spawn(async move {
        for byte in HIT.bytes() {
            if writer.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut received = Vec::new();
    let read = timeout(PATIENCE, reader.read_to_end(&mut received)).await;
    let took = started.elapsed();
    trickle.abort();
    assert!(read.is_ok(), "still open after {PATIENCE:?}");
    let received = String::from_utf8_lossy(&received);
    eprintln!(
        "trickled body: cut after {took:?}, having received {:?}",
        received.lines().next().unwrap_or("")
    );
    assert!(
        received.is_empty() || received.starts_with("HTTP/1.1 408"),
        "{received:?}"
    );
    // When the 408 gets out before the connection closes, it is the JSON error shape.
    if !received.is_empty() {
        assert!(
            received.contains("content-type: application/json"),
            "{received:?}"
        );
        assert!(
            received.contains(r#""code":"request_timeout""#),
            "{received:?}"
        );
    }
    assert!(
        took >= REQUEST_TIMEOUT - Duration::from_millis(50),
        "{took:?}"
    );
    assert!(took < REQUEST_TIMEOUT + MARGIN, "{took:?}");
    server.stop().await;
}

#[tokio::test]
async fn an_oversized_body_gets_413_before_it_is_read() {
    let harness = Harness::new();
    let server = start(public(&harness, test_request_limits())).await;
    let mut stream = server.connect().await;
    let started = Instant::now();
    stream
        .write_all(hit_head(10_000_000, "").as_bytes())
        .await
        .expect("write");
    stream.write_all(&[b'x'; 1024]).await.expect("write");
    let reply = read_response(&mut stream, &mut Vec::new())
        .await
        .expect("a response");
    eprintln!("oversized body: 413 after {:?}", started.elapsed());
    assert_eq!(reply.status, 413, "{reply:?}");
    assert_json_error(&reply, "payload_too_large");
    // Long before the request timeout: nobody waited for ten megabytes.
    assert!(
        started.elapsed() < REQUEST_TIMEOUT,
        "{:?}",
        started.elapsed()
    );
    // And on the reads' limit too, for a client that declares less than it sends.
    let reply = exchange(
        &server,
        "GET /api/v1/sites/demo/counts HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10000000\r\n\r\nxx",
    )
    .await;
    assert_eq!(reply.status, 413, "{reply:?}");
    assert_json_error(&reply, "payload_too_large");
    server.stop().await;
}

/// Checks that `reply` is the service's JSON error with `code`.
fn assert_json_error(reply: &RawResponse, code: &str) {
    assert_eq!(
        reply.header("content-type"),
        Some("application/json"),
        "{reply:?}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&reply.body).unwrap_or_else(|e| panic!("not JSON ({e}): {reply:?}"));
    assert_eq!(json["error"]["code"], code, "{reply:?}");
    assert!(
        json["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{reply:?}"
    );
}

#[tokio::test]
async fn an_http11_request_without_exactly_one_host_gets_400() {
    let harness = Harness::new();
    let server = start(public(&harness, test_request_limits())).await;
    for request in [
        "GET /api/v1/sites/demo/counts HTTP/1.1\r\n\r\n",
        "GET /api/v1/sites/demo/counts HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET http://localhost/api/v1/sites/demo/counts HTTP/1.1\r\n\r\n",
        "GET /nope HTTP/1.1\r\n\r\n",
    ] {
        let reply = exchange(&server, request).await;
        assert_eq!(reply.status, 400, "{request:?}: {reply:?}");
        assert_json_error(&reply, "bad_request");
        assert!(
            reply.header("content-security-policy").is_some(),
            "{reply:?}"
        );
    }
    // HTTP/1.0 may leave it out (RFC 9112 asks it only of 1.1).
    let reply = exchange(&server, "GET /api/v1/sites/demo/counts HTTP/1.0\r\n\r\n").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    server.stop().await;
}

#[tokio::test]
async fn oversized_or_too_many_headers_get_431() {
    let harness = Harness::new();
    let server = start(public(&harness, test_request_limits())).await;
    let big = format!(
        "GET /api/v1/sites/demo/counts HTTP/1.1\r\nHost: localhost\r\nX-Filler: {}\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    let reply = exchange(&server, &big).await;
    assert_eq!(reply.status, 431, "{reply:?}");
    // hyper writes this answer itself, before any service sees the request, and has no
    // hook for its body: it stays empty (documented in deploy/README.md).
    assert_eq!(reply.header("content-length"), Some("0"), "{reply:?}");
    let many = format!(
        "GET /api/v1/sites/demo/counts HTTP/1.1\r\nHost: localhost\r\n{}\r\n",
        (0..100)
            .map(|i| format!("X-H{i}: v\r\n"))
            .collect::<String>()
    );
    let reply = exchange(&server, &many).await;
    assert_eq!(reply.status, 431, "{reply:?}");
    // Within the limits, the same server answers.
    let reply = exchange(&server, &get("/api/v1/sites/demo/counts")).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    server.stop().await;
}

#[tokio::test]
async fn beyond_the_concurrency_bound_requests_are_shed_fast() {
    let harness = Harness::new();
    let limits = RequestLimits {
        max_concurrency: 1,
        request_timeout: Duration::from_secs(5),
        ..RequestLimits::default()
    };
    let server = start(public(&harness, limits)).await;

    // Hold the one slot: a beacon whose body is not sent yet. `Expect: 100-continue`
    // makes hyper say when the handler starts reading the body, so the test knows the
    // slot is taken without sleeping.
    let mut holder = server.connect().await;
    holder
        .write_all(hit_head(HIT.len(), "Expect: 100-continue\r\n").as_bytes())
        .await
        .expect("write");
    let mut holder_buffer = Vec::new();
    let interim = read_response(&mut holder, &mut holder_buffer)
        .await
        .expect("an interim response");
    assert_eq!(interim.status, 100, "{interim:?}");

    let started = Instant::now();
    let reply = exchange(&server, &get("/api/v1/sites/demo/counts")).await;
    let took = started.elapsed();
    eprintln!("load shedding: 503 after {took:?}");
    assert_eq!(reply.status, 503, "{reply:?}");
    assert_eq!(reply.header("retry-after"), Some("1"), "{reply:?}");
    // Fast: no queueing behind the held request (which may take 5 s).
    assert!(took < Duration::from_secs(1), "shed in {took:?}");

    // The held request completes, and the slot is free again.
    holder.write_all(HIT.as_bytes()).await.expect("write");
    let reply = read_response(&mut holder, &mut holder_buffer)
        .await
        .expect("a response");
    assert_eq!(reply.status, 204, "{reply:?}");
    let reply = exchange(&server, &get("/api/v1/sites/demo/counts")).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    server.stop().await;
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let harness = Harness::new();
    let server = start(public(&harness, test_request_limits())).await;
    let mut stream = server.connect().await;
    let mut buffer = Vec::new();
    for path in [
        "/api/v1/sites/demo/counts",
        "/api/v1/sites/demo/history?days=3",
        "/nope",
    ] {
        stream.write_all(get(path).as_bytes()).await.expect("write");
        let reply = read_response(&mut stream, &mut buffer)
            .await
            .expect("a response on the same connection");
        assert!(
            reply.status == 200 || (path == "/nope" && reply.status == 404),
            "{reply:?}"
        );
    }
    // Pipelined: two requests in one write, two answers in order.
    let two = format!("{}{}", get("/api/v1/sites/demo/counts"), get("/nope"));
    stream.write_all(two.as_bytes()).await.expect("write");
    assert_eq!(
        read_response(&mut stream, &mut buffer)
            .await
            .expect("first")
            .status,
        200
    );
    assert_eq!(
        read_response(&mut stream, &mut buffer)
            .await
            .expect("second")
            .status,
        404
    );
    server.stop().await;
}

#[tokio::test]
async fn http2_prior_knowledge_is_served() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let harness = Harness::new();
    let server = start(public(&harness, test_request_limits())).await;
    let stream = server.connect().await;
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("an HTTP/2 handshake");
    let connection = tokio::spawn(connection);
    for _ in 0..2 {
        let request = http::Request::get(format!(
            "http://{}/api/v1/sites/demo/counts",
            server.address
        ))
        .body(Empty::<bytes::Bytes>::new())
        .expect("a request");
        let response = timeout(PATIENCE, sender.send_request(request))
            .await
            .expect("an answer in time")
            .expect("an answer");
        assert_eq!(response.status(), 200);
        assert_eq!(response.version(), http::Version::HTTP_2);
        let body = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(json["site"], "demo");
    }
    drop(sender);
    let _ = timeout(PATIENCE, connection).await;
    server.stop().await;
}

/// The public app of `harness` served with connection `limits`.
async fn public_server_with(harness: &Harness, limits: ConnectionLimits) -> Server {
    Server::start(public(harness, test_request_limits()), limits).await
}

/// An HTTP/2 connection to `address` that has answered one request; the task drives the
/// client side of the connection and ends when the server closes it.
async fn http2_connection_after_one_request(
    address: SocketAddr,
) -> (
    hyper::client::conn::http2::SendRequest<http_body_util::Empty<bytes::Bytes>>,
    tokio::task::JoinHandle<()>,
) {
    use http_body_util::Empty;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let stream = connect(address).await;
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("an HTTP/2 handshake");
    let connection = tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = http::Request::get(format!("http://{address}/nope"))
        .body(Empty::<bytes::Bytes>::new())
        .expect("a request");
    let response = timeout(PATIENCE, sender.send_request(request))
        .await
        .expect("an answer in time")
        .expect("an answer");
    assert_eq!(response.status(), 404);
    (sender, connection)
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_after_the_idle_timeout() {
    const IDLE: Duration = Duration::from_millis(400);
    let harness = Harness::new();
    let server = public_server_with(
        &harness,
        ConnectionLimits {
            idle_timeout: IDLE,
            ..test_connection_limits()
        },
    )
    .await;
    let started = Instant::now();
    // The client answers the server's keep-alive pings, so only the idle timer ends it.
    let (_sender, connection) = http2_connection_after_one_request(server.address).await;
    timeout(IDLE + MARGIN, connection)
        .await
        .expect("the server closes an idle HTTP/2 connection")
        .expect("the client task ends cleanly");
    let took = started.elapsed();
    assert!(
        took >= IDLE,
        "closed after {took:?}, before the idle timeout"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_request_longer_than_the_idle_timeout_keeps_its_connection() {
    const IDLE: Duration = Duration::from_millis(150);
    let harness = Harness::new();
    // A request timeout far above the trickle, so only the idle timer could end it.
    let requests = RequestLimits {
        request_timeout: PATIENCE,
        ..test_request_limits()
    };
    let connections = ConnectionLimits {
        idle_timeout: IDLE,
        ..test_connection_limits()
    };
    let server = Server::start(public(&harness, requests), connections).await;
    let mut stream = server.connect().await;
    // The body takes about 3 idle timeouts to arrive.
    stream
        .write_all(hit_head(HIT.len(), "").as_bytes())
        .await
        .expect("write");
    for chunk in HIT.as_bytes().chunks(HIT.len().div_ceil(5)) {
        tokio::time::sleep(IDLE * 3 / 5).await;
        stream.write_all(chunk).await.expect("write");
    }
    let mut buffer = Vec::new();
    let reply = read_response(&mut stream, &mut buffer)
        .await
        .expect("the slow request is answered");
    assert_eq!(reply.status, 204, "{reply:?}");
    assert_ne!(
        reply.header("connection"),
        Some("close"),
        "a busy connection was asked to close: {reply:?}"
    );
    // The same connection serves the next request.
    stream
        .write_all(get("/nope").as_bytes())
        .await
        .expect("write");
    let reply = read_response(&mut stream, &mut buffer)
        .await
        .expect("a second answer on the same connection");
    assert_eq!(reply.status, 404, "{reply:?}");
    server.stop().await;
}

#[tokio::test]
async fn past_the_connection_bound_new_connections_wait_for_a_free_slot() {
    let harness = Harness::new();
    let server = public_server_with(
        &harness,
        ConnectionLimits {
            max_connections: 2,
            ..test_connection_limits()
        },
    )
    .await;
    let (first, first_connection) = http2_connection_after_one_request(server.address).await;
    let (_second, _second_connection) = http2_connection_after_one_request(server.address).await;

    // The kernel completes the third handshake, but the service does not take it up.
    let mut third = server.connect().await;
    third
        .write_all(get("/nope").as_bytes())
        .await
        .expect("write");
    let mut buffer = Vec::new();
    let waited = timeout(Duration::from_millis(500), fill(&mut third, &mut buffer)).await;
    assert!(
        waited.is_err(),
        "a third connection was served past the bound of two: {:?}",
        String::from_utf8_lossy(&buffer)
    );

    // Closing one frees its slot, and the waiting connection is served.
    drop(first);
    let _ = timeout(PATIENCE, first_connection).await;
    let reply = read_response(&mut third, &mut buffer)
        .await
        .expect("served once a slot is free");
    assert_eq!(reply.status, 404, "{reply:?}");
    server.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight_and_writes_every_acknowledged_hit() {
    let config = memory_service_config(&[
        // The demo site, which another store than the default one turns off.
        "--demo",
        // Nothing is flushed by time during the test: the shutdown must write it all.
        "--flush-interval-ms",
        "60000",
        "--rate-limit",
        "10000",
    ]);
    let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
    let InProcessService {
        bound,
        stop: stop_tx,
        task: service,
    } = spawn_service(config, Arc::clone(&store), PATIENCE).await;

    // Hits on one keep-alive connection, each acknowledged.
    const HITS: u64 = 25;
    let mut stream = connect(bound.public).await;
    let mut buffer = Vec::new();
    for _ in 0..HITS {
        let request = format!("{}{HIT}", hit_head(HIT.len(), ""));
        stream.write_all(request.as_bytes()).await.expect("write");
        let reply = read_response(&mut stream, &mut buffer)
            .await
            .expect("a response");
        assert_eq!(reply.status, 204, "{reply:?}");
    }
    drop(stream);

    // One more hit in flight when shutdown begins: its head is read, its body not yet.
    let mut in_flight = connect(bound.public).await;
    in_flight
        .write_all(hit_head(HIT.len(), "Expect: 100-continue\r\n").as_bytes())
        .await
        .expect("write");
    let mut in_flight_buffer = Vec::new();
    let interim = read_response(&mut in_flight, &mut in_flight_buffer)
        .await
        .expect("an interim response");
    assert_eq!(interim.status, 100);

    stop_tx.send(()).expect("the service waits for shutdown");
    // Shutdown has begun once the listener is gone; a connection that still gets in is
    // closed at once so it does not hold up the drain.
    let refused = timeout(PATIENCE, async {
        loop {
            match TcpStream::connect(bound.public).await {
                Err(_) => return,
                Ok(stream) => drop(stream),
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(refused.is_ok(), "the listener still accepts after shutdown");

    in_flight.write_all(HIT.as_bytes()).await.expect("write");
    let reply = read_response(&mut in_flight, &mut in_flight_buffer)
        .await
        .expect("the request in flight is answered");
    assert_eq!(reply.status, 204, "{reply:?}");
    drop(in_flight);

    let totals = timeout(PATIENCE, service)
        .await
        .expect("the service stops in time")
        .expect("the service task ends cleanly")
        .expect("the service runs");
    assert_eq!(totals.written, HITS + 1, "{totals:?}");
    assert_eq!(totals.unflushed_at_shutdown, 0);

    let site = Site::from_settings(SiteSettings::demo(), "demo").expect("valid");
    assert_eq!(site.id, SiteId::new("demo").expect("valid"));
    let snapshot = counter::snapshot(store.as_ref(), &site.id, &site.rules, SystemClock.now())
        .await
        .expect("the memory store answers");
    assert_eq!(snapshot.value(Window::Total, Metric::Pageviews), HITS + 1);
}

#[tokio::test]
async fn an_idle_http1_keep_alive_connection_is_closed_after_the_header_read_timeout() {
    // hyper times the wait for the next request head too, so an HTTP/1 client cannot
    // hold an idle connection longer than the header-read timeout (well before the idle
    // timeout, which is for HTTP/2).
    let harness = Harness::new();
    let server = start(public(&harness, test_request_limits())).await;
    let mut stream = server.connect().await;
    let mut buffer = Vec::new();
    stream
        .write_all(get("/nope").as_bytes())
        .await
        .expect("write");
    let reply = read_response(&mut stream, &mut buffer)
        .await
        .expect("a response");
    assert_eq!(reply.status, 404, "{reply:?}");
    let (took, _) = closed_within(&mut stream, HEADER_READ_TIMEOUT + MARGIN).await;
    // The server's timer started before this side read the answer, so only a loose
    // lower bound holds on a busy machine: kept open, not closed with the answer.
    assert!(took >= HEADER_READ_TIMEOUT / 2, "closed after {took:?}");
    server.stop().await;
}

/// A TCP connection to `to` from the loopback address `from` (all of 127.0.0.0/8 is
/// loopback on Linux), so one test can play two clients. An error is a connection the
/// server reset so fast that the connect itself saw it.
/// A connection from `from` past its share is cut at once: whatever it sends is never
/// answered. (The connect itself may already fail, which shows the same.)
async fn refused_unanswered(from: &str, to: SocketAddr) {
    if let Ok(mut extra) = connect_from(from, to).await {
        let _ = extra.write_all(get("/nope").as_bytes()).await;
        let (_, received) = closed_within(&mut extra, MARGIN).await;
        assert!(
            received.is_empty(),
            "{from} was answered past its share: {:?}",
            String::from_utf8_lossy(&received)
        );
    }
}

async fn connect_from(from: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind(format!("{from}:0").parse().expect("an address"))
        .expect("bind a loopback source address");
    timeout(PATIENCE, socket.connect(to))
        .await
        .expect("connect in time")
}

/// The HTTP/2 preface and an empty SETTINGS frame: a client that speaks HTTP/2 and then
/// sends nothing, so the server holds the connection until its idle timeout.
const IDLE_HTTP2: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

#[tokio::test]
async fn a_flood_of_idle_connections_from_one_address_leaves_others_served() {
    const BOUND: usize = 64;
    let harness = Harness::new();
    let share = ConnectionLimits::default_per_client(BOUND);
    assert_eq!(share, 8);
    let server = public_server_with(
        &harness,
        ConnectionLimits {
            max_connections: BOUND,
            max_connections_per_client: share,
            // Far longer than the test: only the share can keep a slot free.
            idle_timeout: Duration::from_secs(60),
            ..test_connection_limits()
        },
    )
    .await;
    // Three times the whole bound, from 127.0.0.2, each an idle HTTP/2 connection.
    let mut flood = Vec::new();
    for _ in 0..3 * BOUND {
        // A connection past the share is reset, and may refuse the write or even the
        // connect: that is the point.
        if let Ok(mut stream) = connect_from("127.0.0.2", server.address).await {
            let _ = stream.write_all(IDLE_HTTP2).await;
            flood.push(stream);
        }
    }
    // Another visitor, from 127.0.0.1, is served at once.
    let started = Instant::now();
    let mut stream = connect_from("127.0.0.1", server.address)
        .await
        .expect("connect");
    stream
        .write_all(get("/api/v1/sites/demo/counts").as_bytes())
        .await
        .expect("write");
    let reply = timeout(
        Duration::from_secs(2),
        read_response_unbounded(&mut stream, &mut Vec::new()),
    )
    .await
    .expect("another address is answered while the flood holds its connections")
    .expect("a response");
    let took = started.elapsed();
    eprintln!(
        "served beside a flood of {} idle connections in {took:?}",
        flood.len()
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");

    // The flooding address holds its share and no more: a further connection of its own
    // is cut at once, unanswered.
    refused_unanswered("127.0.0.2", server.address).await;
    // Once the flood ends, its address is served again.
    drop(flood);
    let served = timeout(PATIENCE, async {
        loop {
            if let Ok(mut stream) = connect_from("127.0.0.2", server.address).await
                && stream.write_all(get("/nope").as_bytes()).await.is_ok()
                && let Ok(reply) = read_response_unbounded(&mut stream, &mut Vec::new()).await
            {
                return reply.status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the flooding address is served once its connections close");
    assert_eq!(served, 404);
    server.stop().await;
}

#[tokio::test]
async fn by_default_an_idle_http2_connection_is_closed_as_soon_as_an_idle_http1_one() {
    // The service as configured by flags: only the header-read timeout is set, and it
    // bounds idle HTTP/2 connections too (it used to be a minute).
    let config = memory_service_config(&["--demo", "--header-read-timeout", "1"]);
    let header_read_timeout = config.connection_limits.header_read_timeout;
    let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
    let service = spawn_service(config, store, PATIENCE).await;
    let started = Instant::now();
    let (_sender, connection) = http2_connection_after_one_request(service.bound.public).await;
    timeout(header_read_timeout + MARGIN, connection)
        .await
        .expect("the server closes an idle HTTP/2 connection at the header-read timeout")
        .expect("the client task ends cleanly");
    eprintln!(
        "idle HTTP/2 connection closed after {:?}",
        started.elapsed()
    );
    let _ = service.stop.send(());
    let _ = timeout(PATIENCE, service.task).await;
}

#[tokio::test]
async fn a_trusted_proxy_is_not_held_to_one_clients_share() {
    // Every visitor behind a proxy arrives from its address; its own limits apply.
    let harness = Harness::new();
    let server = public_server_with(
        &harness,
        ConnectionLimits {
            max_connections_per_client: 1,
            exempt_from_share: vec!["127.0.0.2/32".parse().expect("a network")].into(),
            // Long enough that the answered connections stay open while the test runs.
            header_read_timeout: PATIENCE,
            idle_timeout: PATIENCE,
            ..test_connection_limits()
        },
    )
    .await;
    let mut held = Vec::new();
    for from in ["127.0.0.2", "127.0.0.2", "127.0.0.2", "127.0.0.1"] {
        let mut stream = connect_from(from, server.address).await.expect("connect");
        stream
            .write_all(get("/nope").as_bytes())
            .await
            .expect("write");
        let reply = read_response(&mut stream, &mut Vec::new())
            .await
            .expect("each connection is answered");
        assert_eq!(reply.status, 404, "{from}: {reply:?}");
        held.push(stream);
    }
    // 127.0.0.1 is not exempt: its second connection while the first is open is cut.
    refused_unanswered("127.0.0.1", server.address).await;
    drop(held);
    server.stop().await;
}
