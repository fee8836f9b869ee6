//! `footfall healthcheck`: asks a running service's internal listener whether it is ready
//! (`/readyz`) or alive (`/livez`), for container health checks that must not depend on
//! `curl` being in the image (the runtime image has no shell and no HTTP client).
//!
//! It speaks just enough HTTP/1.1 over a plain [`tokio::net::TcpStream`]: one `GET` with
//! `Connection: close`, then the status line and the start of the body. The whole
//! exchange runs under one deadline, so a service that accepts and never answers fails
//! the check instead of hanging it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Most bytes of the answer read: the status line and enough of the body (the readiness
/// JSON names the store error) for a useful one-line reason.
const MAX_RESPONSE_BYTES: usize = 16 * 1024;

/// Most characters of the body quoted in a failure reason, so the reason stays one line
/// that fits in `docker inspect` output.
const MAX_REASON_BODY_CHARS: usize = 200;

/// Flags of `footfall healthcheck`.
#[derive(Clone, Debug, Args)]
pub struct HealthcheckArgs {
    /// The service's internal listener. An unspecified address (`0.0.0.0`, `[::]`), as a
    /// container listens on, is asked on loopback.
    #[arg(long, env = "FOOTFALL_ADMIN_LISTEN", default_value = "127.0.0.1:9464")]
    pub admin_listen: String,
    /// Ask `/livez` (the process answers) instead of `/readyz` (the store answers too).
    #[arg(long)]
    pub live: bool,
    /// Seconds the whole check may take.
    #[arg(long = "timeout", default_value_t = 3)]
    pub timeout_secs: u64,
}

/// Why a check failed; its `Display` is the one-line reason printed.
#[derive(Debug, thiserror::Error)]
pub enum HealthcheckError {
    /// The flags are wrong.
    #[error("{0}")]
    Usage(String),
    /// No connection, or it broke.
    #[error("GET {path} on {address}: {source}")]
    Io {
        /// The path asked.
        path: &'static str,
        /// The address asked.
        address: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// No complete answer in time.
    #[error("GET {path} on {address}: no answer within {timeout:?}")]
    TimedOut {
        /// The path asked.
        path: &'static str,
        /// The address asked.
        address: SocketAddr,
        /// The deadline.
        timeout: Duration,
    },
    /// The answer is not HTTP.
    #[error("GET {path} on {address}: not an HTTP answer: {start:?}")]
    Malformed {
        /// The path asked.
        path: &'static str,
        /// The address asked.
        address: SocketAddr,
        /// The first bytes received.
        start: String,
    },
    /// An HTTP status other than 200.
    #[error("GET {path} on {address} answered {status}: {body}")]
    Status {
        /// The path asked.
        path: &'static str,
        /// The address asked.
        address: SocketAddr,
        /// The status code.
        status: u16,
        /// The start of the body, on one line.
        body: String,
    },
}

impl HealthcheckArgs {
    /// The path asked: `/livez` with `--live`, else `/readyz`.
    pub fn path(&self) -> &'static str {
        if self.live { "/livez" } else { "/readyz" }
    }

    /// The address to connect to: the listener's, with an unspecified IP replaced by
    /// loopback of the same family.
    pub fn target(&self) -> Result<SocketAddr, HealthcheckError> {
        let address: SocketAddr = self.admin_listen.parse().map_err(|_| {
            HealthcheckError::Usage(format!(
                "--admin-listen / FOOTFALL_ADMIN_LISTEN: not an address:port: {:?}",
                self.admin_listen
            ))
        })?;
        Ok(reachable(address))
    }

    /// The deadline of the whole check.
    pub fn timeout(&self) -> Result<Duration, HealthcheckError> {
        if self.timeout_secs == 0 {
            return Err(HealthcheckError::Usage(
                "--timeout: must be greater than 0".to_owned(),
            ));
        }
        Ok(Duration::from_secs(self.timeout_secs))
    }

    /// Runs the check on a small runtime of its own; `Ok` holds a one-line summary.
    pub fn run(&self) -> Result<String, HealthcheckError> {
        let address = self.target()?;
        let timeout = self.timeout()?;
        let path = self.path();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| HealthcheckError::Io {
                path,
                address,
                source,
            })?;
        runtime.block_on(check(address, path, timeout))?;
        Ok(format!("GET {path} on {address}: 200"))
    }
}

/// Where to reach a listener bound to `address`: a wildcard bind is reachable on loopback.
pub fn reachable(address: SocketAddr) -> SocketAddr {
    let ip = match address.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, address.port())
}

/// `GET path` on `address`; `Ok` when the answer is `200`, within `timeout` in all.
pub async fn check(
    address: SocketAddr,
    path: &'static str,
    timeout: Duration,
) -> Result<(), HealthcheckError> {
    match tokio::time::timeout(timeout, exchange(address, path)).await {
        Ok(result) => result,
        Err(_) => Err(HealthcheckError::TimedOut {
            path,
            address,
            timeout,
        }),
    }
}

async fn exchange(address: SocketAddr, path: &'static str) -> Result<(), HealthcheckError> {
    let io = |source| HealthcheckError::Io {
        path,
        address,
        source,
    };
    let mut stream = TcpStream::connect(address).await.map_err(io)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: footfall-healthcheck\r\n\
         Accept: */*\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.map_err(io)?;
    // `Connection: close` makes the server end the answer with EOF; stop early when the
    // answer is longer than anything worth quoting.
    let mut response = Vec::with_capacity(1024);
    let mut chunk = [0_u8; 4096];
    while response.len() < MAX_RESPONSE_BYTES {
        let n = stream.read(&mut chunk).await.map_err(io)?;
        if n == 0 {
            break;
        }
        response.extend_from_slice(&chunk[..n]);
    }
    let (status, body) = parse_response(&response).ok_or_else(|| HealthcheckError::Malformed {
        path,
        address,
        start: String::from_utf8_lossy(&response[..response.len().min(40)]).into_owned(),
    })?;
    if status == 200 {
        return Ok(());
    }
    Err(HealthcheckError::Status {
        path,
        address,
        status,
        body,
    })
}

/// The status code and the start of the body (on one line) of an HTTP/1.x answer.
fn parse_response(response: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(response);
    let (status_line, rest) = text.split_once("\r\n")?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    let status = parts.next()?;
    if status.len() != 3 {
        return None;
    }
    let status = status.parse().ok()?;
    let body = rest.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    let body: String = body
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_REASON_BODY_CHARS)
        .collect();
    Some((status, body))
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    /// A one-shot server that answers the first connection with `answer` (after reading
    /// the request head), or never answers when `answer` is `None`.
    async fn fake_server(
        answer: Option<&'static str>,
    ) -> (SocketAddr, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut byte = [0_u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if stream.read(&mut byte).await.unwrap() == 0 {
                    break;
                }
                head.push(byte[0]);
            }
            match answer {
                Some(answer) => stream.write_all(answer.as_bytes()).await.unwrap(),
                None => std::future::pending::<()>().await,
            }
            String::from_utf8(head).unwrap()
        });
        (address, task)
    }

    const TIMEOUT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn ok_on_200_and_sends_a_minimal_request() {
        let (address, server) =
            fake_server(Some("HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n")).await;
        check(address, "/readyz", TIMEOUT).await.unwrap();
        let head = server.await.unwrap();
        assert!(head.starts_with("GET /readyz HTTP/1.1\r\n"), "{head}");
        assert!(head.contains("\r\nConnection: close\r\n"), "{head}");
        assert!(head.contains(&format!("\r\nHost: {address}\r\n")), "{head}");
    }

    #[tokio::test]
    async fn fails_on_503_quoting_the_body_on_one_line() {
        let (address, _server) = fake_server(Some(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\r\n{\"status\":\"not_ready\",\n \"store\":\"connection refused\"}",
        ))
        .await;
        let error = check(address, "/readyz", TIMEOUT).await.unwrap_err();
        let reason = error.to_string();
        assert!(
            matches!(error, HealthcheckError::Status { status: 503, .. }),
            "{reason}"
        );
        assert!(reason.contains("answered 503"), "{reason}");
        assert!(reason.contains("connection refused"), "{reason}");
        assert!(!reason.contains('\n'), "one line: {reason:?}");
    }

    #[tokio::test]
    async fn fails_on_other_statuses_and_non_http() {
        let (address, _server) = fake_server(Some("HTTP/1.1 204 No Content\r\n\r\n")).await;
        let error = check(address, "/livez", TIMEOUT).await.unwrap_err();
        assert!(
            matches!(error, HealthcheckError::Status { status: 204, .. }),
            "{error}"
        );

        let (address, _server) = fake_server(Some("SSH-2.0-OpenSSH_9.2\r\n")).await;
        let error = check(address, "/livez", TIMEOUT).await.unwrap_err();
        assert!(
            matches!(error, HealthcheckError::Malformed { .. }),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_silent_server_fails_within_the_timeout() {
        let (address, _server) = fake_server(None).await;
        let started = std::time::Instant::now();
        let error = check(address, "/readyz", Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(
            matches!(error, HealthcheckError::TimedOut { .. }),
            "{error}"
        );
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn nobody_listening_fails() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let error = check(address, "/readyz", TIMEOUT).await.unwrap_err();
        assert!(matches!(error, HealthcheckError::Io { .. }), "{error}");
        assert!(error.to_string().contains(&address.to_string()), "{error}");
    }

    #[test]
    fn wildcard_listeners_are_asked_on_loopback() {
        let args = |listen: &str, live| HealthcheckArgs {
            admin_listen: listen.to_owned(),
            live,
            timeout_secs: 3,
        };
        assert_eq!(
            args("0.0.0.0:9464", false).target().unwrap(),
            "127.0.0.1:9464".parse().unwrap()
        );
        assert_eq!(
            args("[::]:9464", false).target().unwrap(),
            "[::1]:9464".parse().unwrap()
        );
        assert_eq!(
            args("10.1.2.3:9000", false).target().unwrap(),
            "10.1.2.3:9000".parse().unwrap()
        );
        assert_eq!(args("x", false).path(), "/readyz");
        assert_eq!(args("x", true).path(), "/livez");
        let error = args("localhost", false).target().unwrap_err();
        assert!(
            error.to_string().contains("FOOTFALL_ADMIN_LISTEN"),
            "{error}"
        );
    }
}
