//! End-to-end test support: helpers that start the real processes the tests in
//! `tests/tests/` talk to.
#![deny(missing_docs)]

pub mod footfall_server;
pub mod redis_cluster;
pub mod redis_server;
pub mod tls;

/// Runs `attempt` until it starts a server, at most `attempts` times. An attempt returns
/// `Ok(Err(_))` when the free port it picked was taken by someone else between the probe
/// and the server's bind (worth another try on another port), and `Err(_)` when starting
/// failed for good.
fn on_a_free_port<T>(
    what: &str,
    attempts: usize,
    mut attempt: impl FnMut() -> anyhow::Result<Result<T, anyhow::Error>>,
) -> anyhow::Result<T> {
    let mut last_error = None;
    for _ in 0..attempts {
        match attempt()? {
            Ok(server) => return Ok(server),
            Err(port_taken) => last_error = Some(port_taken),
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow::anyhow!("{what} did not start")))
}

/// A loopback port nobody listens on right now.
///
/// # Errors
///
/// When no port can be bound.
pub fn free_port() -> anyhow::Result<u16> {
    use anyhow::Context;
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("finding a free loopback port")?;
    Ok(listener.local_addr()?.port())
}
