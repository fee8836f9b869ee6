//! The HTTP front: an accept loop that sets what `axum::serve` does not.
//!
//! `axum::serve` installs no timer, so hyper's header-read timeout never fires and a
//! client that sends half a request head holds its connection forever (slowloris); it
//! also leaves Nagle's algorithm on. This loop serves each connection with hyper-util's
//! auto (HTTP/1 and HTTP/2) builder, a Tokio timer, a header-read timeout, bounded header
//! sizes and `TCP_NODELAY`, inserts the peer address for `ConnectInfo`, and drains
//! connections on shutdown.
//!
//! It also bounds what idle clients can hold: at most `max_connections` connections are
//! open at once (past it the loop stops accepting, and new connections wait in the
//! kernel's backlog), one client address holds at most `max_connections_per_client` of
//! them (more from it are reset at once, so one client cannot take every slot and leave
//! other visitors waiting in the backlog), and a connection with no request in flight
//! for `idle_timeout` is closed gracefully. hyper ends idle HTTP/1 connections itself (at
//! the header-read timeout) but has no idle timeout for HTTP/2, whose clients answer
//! keep-alive pings forever.
//!
//! The per-client share applies to the TCP peer. Trusted proxies are exempt (every
//! visitor behind one shares its address); behind a proxy, its own per-client limits
//! apply (nginx: `limit_conn`).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use ipnet::IpNet;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt;

/// Connection-level limits.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    /// A request head must arrive whole within this time, or the connection is closed.
    /// A new connection has this long to send its first bytes (enough to tell HTTP/1 from
    /// HTTP/2), and then this long for the head: at worst twice this from connecting.
    pub header_read_timeout: Duration,
    /// The largest request head in bytes; larger ones get 431.
    pub max_header_bytes: usize,
    /// The most header fields; more get 431.
    pub max_headers: usize,
    /// How long shutdown waits for open connections to finish.
    pub drain_timeout: Duration,
    /// A connection with no request in flight for this long is closed (gracefully: an
    /// HTTP/2 client gets a GOAWAY). An idle HTTP/1 connection is closed after
    /// `header_read_timeout` whatever this says, because hyper times the wait for the
    /// next request head; the default is that same time, so HTTP/2 is held no longer.
    pub idle_timeout: Duration,
    /// The most connections open at once on one listener; past it, new connections wait
    /// to be accepted until another closes.
    pub max_connections: usize,
    /// The most connections one client address (an IPv4 address, an IPv6 /64) may hold
    /// open on one listener; a connection past it is reset as soon as it is accepted.
    pub max_connections_per_client: usize,
    /// Peers exempt from the per-client share: the trusted proxies, which carry many
    /// visitors' connections under one address.
    pub exempt_from_share: Arc<[IpNet]>,
}

impl ConnectionLimits {
    /// The default per-client share of `max_connections`: 256, or an eighth of the
    /// bound when that is smaller (at least 1).
    ///
    /// 256 is far above what people behind one address need and far below the bound: a
    /// page view with the widget opens one or two connections that close 5 s after
    /// their last request, so even the most hits one address may send (120 a minute,
    /// `--rate-limit`) keep about 20 open, and 256 leave room for a large office or
    /// school behind one NAT address reading counts and badges too. Yet 40 addresses
    /// are needed to fill the default 10,000, so one client flooding idle connections
    /// leaves 97 % of them to everyone else, and the most it can pin is about 8 MiB
    /// (an idle HTTP/2 connection holds about 30 KiB of the service's memory, measured).
    /// On a small bound the eighth keeps the same promise: eight clients at least
    /// before it is full.
    pub fn default_per_client(max_connections: usize) -> usize {
        (max_connections / 8).clamp(1, 256)
    }
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            // 5 s: a real browser sends its head in one packet; a slow mobile link in a
            // few hundred milliseconds.
            header_read_timeout: Duration::from_secs(5),
            // 16 KiB: browsers' heads with cookies of other apps stay far below.
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            drain_timeout: Duration::from_secs(10),
            // The header-read timeout: hyper closes an idle HTTP/1 keep-alive connection
            // then, and an idle HTTP/2 connection costs the same, so it gets no longer.
            idle_timeout: Duration::from_secs(5),
            // 10,000: each costs a file descriptor and tens of kilobytes of buffers; the
            // systemd unit allows 65,536 descriptors.
            max_connections: 10_000,
            max_connections_per_client: ConnectionLimits::default_per_client(10_000),
            exempt_from_share: Arc::new([]),
        }
    }
}

/// A client as far as the connection share goes: an IPv4 address, or an IPv6 /64 (a
/// subscriber is usually given a whole /64 and may use any address in it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum ClientKey {
    V4(u32),
    V6(u64),
}

impl ClientKey {
    fn of(ip: IpAddr) -> ClientKey {
        match canonical(ip) {
            IpAddr::V4(v4) => ClientKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => ClientKey::V6((u128::from(v6) >> 64) as u64),
        }
    }
}

/// IPv4-mapped IPv6 addresses (a dual-stack listener's IPv4 peers) as IPv4, so one
/// client has one key.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Open connections per client of one listener.
///
/// An entry lives only while its client has a connection open (it goes when the count
/// drops to 0), so the table never has more entries than there are open connections,
/// at most `max_connections`, whatever clients send.
#[derive(Debug, Default)]
struct Shares {
    open: Mutex<HashMap<ClientKey, usize>>,
}

impl Shares {
    /// Counts a connection of `key`, unless it already holds `limit`.
    fn take(self: &Arc<Self>, key: ClientKey, limit: usize) -> Option<Share> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(key).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(Share {
            shares: Arc::clone(self),
            key,
        })
    }
}

/// One connection counted in its client's share, until dropped.
#[derive(Debug)]
struct Share {
    shares: Arc<Shares>,
    key: ClientKey,
}

impl Drop for Share {
    fn drop(&mut self) {
        let mut open = self.shares.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Marks a request that names no single host: HTTP/1.1 without exactly one `Host` header
/// (RFC 9112, section 3.2), or HTTP/2 with neither `:authority` nor `Host`. The router
/// answers it 400 (`app.rs`), in the JSON shape and counted like any other answer; it is
/// marked here because only the accept loop sees requests as they came off the wire.
#[derive(Clone, Copy, Debug)]
pub struct HostMissing;

fn names_no_host<B>(request: &Request<B>) -> bool {
    let mut hosts = request.headers().get_all(http::header::HOST).iter();
    let one_host = hosts.next().is_some() && hosts.next().is_none();
    match request.version() {
        http::Version::HTTP_11 => !one_host,
        http::Version::HTTP_2 => request.uri().authority().is_none() && !one_host,
        _ => false,
    }
}

/// The HTTP/2 connection preface: a connection that starts with it speaks HTTP/2.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Waits until the client's first bytes show which protocol it speaks (they differ from
/// the HTTP/2 preface, or the whole preface arrived); false when it closed first. It only
/// peeks, so the bytes stay for hyper.
async fn protocol_chosen(stream: &TcpStream) -> std::io::Result<bool> {
    let mut start = [0u8; H2_PREFACE.len()];
    loop {
        let n = stream.peek(&mut start).await?;
        if n == 0 {
            return Ok(false);
        }
        if n == H2_PREFACE.len() || start[..n] != H2_PREFACE[..n] {
            return Ok(true);
        }
        // Part of the preface: peeking again would return the same bytes at once, so
        // wait a little for the rest rather than spin. Only HTTP/2 clients get here.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// When a connection last did something, and how many of its requests are in flight.
#[derive(Debug)]
struct Activity {
    opened: Instant,
    /// Milliseconds from `opened` to the last request's start or end.
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            opened: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let elapsed = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(elapsed, Ordering::Relaxed);
    }

    /// Marks a request in flight until the guard drops (its response is ready, or it was
    /// cancelled).
    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        InFlight(Arc::clone(self))
    }

    /// When the connection becomes idle for `idle` if nothing happens before.
    fn idle_at(&self, idle: Duration) -> Instant {
        self.opened + Duration::from_millis(self.last_ms.load(Ordering::Relaxed)) + idle
    }

    fn is_idle(&self, idle: Duration) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0 && Instant::now() >= self.idle_at(idle)
    }
}

/// A request in flight on a connection.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting and waits
/// (at most `drain_timeout`) for open connections to finish their requests. `name`
/// (`public`, `internal`) labels the listener's connection gauge.
pub async fn serve(
    listener: TcpListener,
    name: &'static str,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let builder = Arc::new(builder);
    // One permit per open connection: the bound while serving, and at shutdown, holding
    // every permit means every connection has closed.
    let max_connections = limits
        .max_connections
        .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
    let slots = Arc::new(Semaphore::new(max_connections));
    let shares = Arc::new(Shares::default());
    let per_client = limits.max_connections_per_client.max(1);
    let (header_read_timeout, idle_timeout) = (limits.header_read_timeout, limits.idle_timeout);
    let (closing, closing_seen) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let peer_ip = canonical(peer.ip());
        let share = if limits
            .exempt_from_share
            .iter()
            .any(|n| n.contains(&peer_ip))
        {
            None
        } else {
            match shares.take(ClientKey::of(peer_ip), per_client) {
                Some(share) => Some(share),
                None => {
                    // Reset rather than closed: no TIME_WAIT left behind per refused
                    // connection, and the client learns at once. Its slot is free again.
                    let _ = stream.set_zero_linger();
                    tracing::debug!("a client holds its share of connections; refusing another");
                    continue;
                }
            }
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(error = %error, "could not set TCP_NODELAY");
        }
        let activity = Arc::new(Activity::new());
        let service = {
            let activity = Arc::clone(&activity);
            app.clone()
                .map_request(move |mut request: Request<Incoming>| {
                    let host_missing = names_no_host(&request);
                    let extensions = request.extensions_mut();
                    extensions.insert(ConnectInfo::<SocketAddr>(peer));
                    if host_missing {
                        extensions.insert(HostMissing);
                    }
                    request
                })
                .map_future(move |response| {
                    let in_flight = activity.begin();
                    async move {
                        let response = response.await;
                        drop(in_flight);
                        response
                    }
                })
        };
        let builder = Arc::clone(&builder);
        let closing = closing_seen.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let _share = share;
            crate::metrics::connection_opened(name);
            // hyper's header-read timer starts only once the protocol is known, and the
            // auto builder waits for that without any timer: a client that sends nothing,
            // or part of the HTTP/2 preface, would hold the connection forever.
            match tokio::time::timeout(header_read_timeout, protocol_chosen(&stream)).await {
                Ok(Ok(true)) => {
                    let connection = builder.serve_connection_with_upgrades(
                        TokioIo::new(stream),
                        TowerToHyperService::new(service),
                    );
                    drive(connection, &activity, idle_timeout, closing).await;
                }
                Ok(Ok(false) | Err(_)) => {}
                Err(_) => {
                    tracing::debug!("no request within the header-read timeout; closing");
                }
            }
            crate::metrics::connection_closed(name);
        });
    }
    drop(listener);
    let _ = closing.send(true);
    let drained = tokio::time::timeout(
        limits.drain_timeout,
        slots.acquire_many(u32::try_from(max_connections).unwrap_or(u32::MAX)),
    )
    .await;
    if drained.is_err() {
        tracing::warn!("connections still open after the drain timeout; closing them");
    }
}

/// Runs one connection to its end, asking it to finish gracefully when the service shuts
/// down or when it has been idle for `idle`.
async fn drive<C, E>(
    connection: C,
    activity: &Activity,
    idle: Duration,
    mut closing: watch::Receiver<bool>,
) where
    C: Future<Output = Result<(), E>> + GracefulClose,
    E: std::fmt::Display,
{
    tokio::pin!(connection);
    let mut asked_to_close = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                // Errors here are clients going away or breaking the protocol; not ours
                // to act on.
                if let Err(error) = result {
                    tracing::debug!(error = %error, "connection ended with an error");
                }
                return;
            }
            _ = closing.wait_for(|closing| *closing), if !asked_to_close => {
                connection.as_mut().close_gracefully();
                asked_to_close = true;
            }
            () = tokio::time::sleep_until(activity.idle_at(idle)), if !asked_to_close => {
                if activity.is_idle(idle) {
                    tracing::debug!("connection idle; closing");
                    connection.as_mut().close_gracefully();
                    asked_to_close = true;
                }
            }
        }
    }
}

/// A connection that can be asked to finish its requests and close.
trait GracefulClose {
    fn close_gracefully(self: std::pin::Pin<&mut Self>);
}

impl<I, S, E> GracefulClose for auto::UpgradeableConnection<'_, I, S, E>
where
    S: hyper::service::HttpService<Incoming>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::ResBody: hyper::body::Body + Send + 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, S::ResBody>,
{
    fn close_gracefully(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> ClientKey {
        ClientKey::of(text.parse().expect("an address"))
    }

    #[test]
    fn a_client_is_an_ipv4_address_or_an_ipv6_slash_64() {
        assert_eq!(key("203.0.113.7"), key("::ffff:203.0.113.7"));
        assert_ne!(key("203.0.113.7"), key("203.0.113.8"));
        assert_eq!(
            key("2001:db8:1:2::1"),
            key("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        // An IPv4 address never shares a key with an IPv6 network.
        assert_ne!(key("0.0.0.1"), key("::1"));
    }

    #[test]
    fn shares_are_bounded_and_forgotten_when_the_last_connection_closes() {
        let shares = Arc::new(Shares::default());
        let flood: Vec<Share> = std::iter::from_fn(|| shares.take(key("192.0.2.1"), 3)).collect();
        assert_eq!(flood.len(), 3, "the share is 3");
        assert!(shares.take(key("192.0.2.1"), 3).is_none());
        // Another client is not affected.
        let other = shares.take(key("192.0.2.2"), 3).expect("its own share");
        drop(flood);
        assert!(shares.take(key("192.0.2.1"), 3).is_some(), "freed");
        drop(other);
        // Every entry went with its last connection: the table holds no more entries
        // than there are open connections.
        assert!(shares.open.lock().unwrap().is_empty());
    }

    #[test]
    fn the_default_share_is_256_or_an_eighth_of_a_small_bound() {
        assert_eq!(ConnectionLimits::default_per_client(10_000), 256);
        assert_eq!(ConnectionLimits::default_per_client(64), 8);
        assert_eq!(ConnectionLimits::default_per_client(1), 1);
    }

    #[test]
    fn a_request_names_its_host_once() {
        let request = |version, uri: &str, hosts: &[&str]| {
            let mut builder = Request::builder().version(version).uri(uri);
            for host in hosts {
                builder = builder.header(http::header::HOST, *host);
            }
            builder.body(()).expect("a request")
        };
        use http::Version;
        assert!(!names_no_host(&request(Version::HTTP_11, "/", &["a"])));
        assert!(names_no_host(&request(Version::HTTP_11, "/", &[])));
        assert!(names_no_host(&request(Version::HTTP_11, "/", &["a", "b"])));
        assert!(names_no_host(&request(Version::HTTP_11, "http://a/", &[])));
        assert!(!names_no_host(&request(Version::HTTP_10, "/", &[])));
        assert!(!names_no_host(&request(Version::HTTP_2, "http://a/", &[])));
        assert!(names_no_host(&request(Version::HTTP_2, "/", &[])));
    }
}
