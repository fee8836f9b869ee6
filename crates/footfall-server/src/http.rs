//! The HTTP front: an accept loop that sets what `axum::serve` does not.
//!
//! `axum::serve` installs no timer, so hyper's header-read timeout never fires and a
//! client that sends half a request head holds its connection forever (slowloris); it
//! also leaves Nagle's algorithm on. This loop serves each connection with hyper-util's
//! auto (HTTP/1 and HTTP/2) builder, a Tokio timer, a header-read timeout, bounded header
//! sizes and `TCP_NODELAY`, inserts the peer address for `ConnectInfo`, and drains
//! connections on shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

/// Connection-level limits.
#[derive(Clone, Copy, Debug)]
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
        }
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

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting and waits
/// (at most `drain_timeout`) for open connections to finish their requests.
pub async fn serve(
    listener: TcpListener,
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
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
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
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(error = %error, "could not set TCP_NODELAY");
        }
        let service = app
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(peer));
                request
            });
        let builder = Arc::clone(&builder);
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            // hyper's header-read timer starts only once the protocol is known, and the
            // auto builder waits for that without any timer: a client that sends nothing,
            // or part of the HTTP/2 preface, would hold the connection forever.
            match tokio::time::timeout(limits.header_read_timeout, protocol_chosen(&stream)).await {
                Ok(Ok(true)) => {}
                Ok(Ok(false) | Err(_)) => return,
                Err(_) => {
                    tracing::debug!("no request within the header-read timeout; closing");
                    return;
                }
            }
            let connection = builder
                .serve_connection_with_upgrades(
                    TokioIo::new(stream),
                    TowerToHyperService::new(service),
                )
                .into_owned();
            // Errors here are clients going away or breaking the protocol; not ours to act on.
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(error = %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.drain_timeout) => {
            tracing::warn!("connections still open after the drain timeout; closing them");
        }
    }
}
