//! A throw-away `redis-server` on a free loopback port, killed when dropped.
//!
//! Tests start their own server rather than relying on one that happens to run on
//! the machine: nothing has to be running before `cargo test`, tests never touch a
//! developer's data on port 6379, and each test sees a server in a known state.
//! A missing `redis-server` is a test failure that says how to install it, never a
//! silent skip.
//!
//! A server started with [`RedisServerBuilder::tls`] listens only for TLS (`--port 0
//! --tls-port P`), with certificates of a [`TestPki`]; its [`url`](RedisServer::url) is
//! `rediss://…` and its helper connections speak TLS.
//!
//! ```no_run
//! use footfall_tests::redis_server::RedisServer;
//!
//! let server = RedisServer::builder().args(["--hll-sparse-max-bytes", "3000"]).start();
//! let mut connection = server.connection();
//! let pong: String = redis::cmd("PING").query(&mut connection).expect("PING");
//! assert_eq!(pong, "PONG");
//! ```

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::free_port;
use crate::tls::{ClientCertificates, TestPki};

/// What to tell someone whose machine has no `redis-server`.
const INSTALL_HINT: &str = "redis-server was not found on PATH. The end-to-end tests start their own \
     Redis and need it installed: run `apt-get install redis-server` (Debian/Ubuntu) or \
     `scripts/install-test-deps.sh`, then run the tests again.";

/// How many fresh ports to try when the one picked is taken between choosing it
/// and the server binding it.
const PORT_ATTEMPTS: usize = 5;

/// How long a command may take on the helper connections: generous, because a
/// pipeline of a million `PFADD` elements takes a while on a busy machine.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `redis-server`, killed and reaped when dropped.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    port: u16,
    data_dir: PathBuf,
    log_path: PathBuf,
    // Kept to start the same server again after a kill (see `restart`).
    config_file: Option<PathBuf>,
    extra_args: Vec<OsString>,
    tls: Option<ServerTls>,
    startup_timeout: Duration,
    // Holds the log file (and the data when the caller chose no directory) until
    // the server is gone.
    _scratch: tempfile::TempDir,
}

/// Options for [`RedisServer`]; start with [`RedisServer::builder`].
#[derive(Debug, Clone)]
pub struct RedisServerBuilder {
    config_file: Option<PathBuf>,
    extra_args: Vec<OsString>,
    data_dir: Option<PathBuf>,
    tls: Option<ServerTls>,
    startup_timeout: Duration,
}

/// A server's TLS: its certificates, and whether it asks clients for theirs.
#[derive(Debug, Clone)]
struct ServerTls {
    pki: TestPki,
    client_certificates: ClientCertificates,
}

impl RedisServer {
    /// Starts a server with the default options: no persistence, loopback only.
    ///
    /// # Panics
    ///
    /// When the server cannot be started, with a message saying why (including how
    /// to install `redis-server` when it is missing).
    #[must_use]
    pub fn start() -> Self {
        Self::builder().start()
    }

    /// Options for a server; [`RedisServerBuilder::start`] starts it.
    #[must_use]
    pub fn builder() -> RedisServerBuilder {
        RedisServerBuilder {
            config_file: None,
            extra_args: Vec::new(),
            data_dir: None,
            tls: None,
            startup_timeout: Duration::from_secs(10),
        }
    }

    /// The loopback port the server listens on (its TLS port for a TLS server).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of the server, `redis://127.0.0.1:PORT/` (`rediss://` for a TLS server).
    #[must_use]
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}/", self.port)
    }

    /// The certificates of a TLS server.
    #[must_use]
    pub fn pki(&self) -> Option<&TestPki> {
        self.tls.as_ref().map(|tls| &tls.pki)
    }

    /// The server's working directory (`--dir`), where RDB and AOF files go.
    #[must_use]
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// A client for the server; for a TLS server it trusts the test CA and presents the
    /// client certificate.
    ///
    /// # Panics
    ///
    /// When the certificate files cannot be read (the URL is always well formed).
    #[must_use]
    pub fn client(&self) -> redis::Client {
        let Some(tls) = &self.tls else {
            return redis::Client::open(self.url()).expect("a loopback redis:// URL is valid");
        };
        crate::tls::install_crypto_provider();
        let certificates = tls
            .pki
            .redis_certificates()
            .unwrap_or_else(|error| panic!("{error:#}"));
        redis::Client::build_with_tls(self.url(), certificates)
            .expect("a loopback rediss:// URL with the test certificates is valid")
    }

    /// A new synchronous connection with a generous command timeout.
    ///
    /// # Panics
    ///
    /// When the server does not accept the connection, with the server's log.
    #[must_use]
    pub fn connection(&self) -> redis::Connection {
        let connect = || -> anyhow::Result<redis::Connection> {
            let connection = self
                .client()
                .get_connection_with_timeout(Duration::from_secs(5))?;
            connection.set_read_timeout(Some(COMMAND_TIMEOUT))?;
            connection.set_write_timeout(Some(COMMAND_TIMEOUT))?;
            Ok(connection)
        };
        match connect() {
            Ok(connection) => connection,
            Err(error) => panic!(
                "cannot connect to redis-server on port {}: {error:#}\nserver log:\n{}",
                self.port,
                self.log()
            ),
        }
    }

    /// The server's log so far, for failure messages.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_else(|error| format!("(no log: {error})"))
    }

    /// The server's process id (e.g. to read its CPU time from `/proc`).
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the server with SIGKILL, as a crash would: no shutdown save, no final
    /// fsync. Only what it had already written to its AOF or RDB survives.
    ///
    /// # Panics
    ///
    /// When the process cannot be reaped.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        self.child.wait().expect("reaping the killed redis-server");
    }

    /// Starts the server again on the same port, directory and arguments (after
    /// [`kill`](Self::kill), or when it died), and waits until it answers `PING`, which
    /// Redis does only once it has loaded its AOF or RDB.
    ///
    /// # Panics
    ///
    /// When the server is still running, or cannot be started again (e.g. someone
    /// took the port meanwhile), with its log.
    pub fn restart(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            panic!("restart() needs a stopped server; call kill() first");
        }
        let spawned = spawn(
            self.port,
            &self.data_dir,
            &self.log_path,
            self.config_file.as_deref(),
            &self.extra_args,
            self.tls.as_ref(),
        );
        self.child = match spawned {
            Ok(child) => child,
            Err(error) => panic!("{error:#}"),
        };
        let deadline = Instant::now() + self.startup_timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "redis-server exited at restart ({status}); its log:\n{}",
                    self.log()
                );
            }
            if ping(&self.client()) {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "redis-server on port {} did not answer PING within {:?} after restart; its log:\n{}",
                    self.port,
                    self.startup_timeout,
                    self.log()
                );
            }
            // Polling for readiness, as at the first start.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // The process may already be gone; either way it must be reaped so no
        // zombie outlives the test.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RedisServerBuilder {
    /// Starts from the configuration file at `path` (a deployment's `redis.conf`) instead
    /// of the defaults: only the port, the loopback address, the working directory and
    /// `--daemonize no` are set over it, so its persistence settings stand.
    #[must_use]
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config_file = Some(path.into());
        self
    }

    /// Adds one argument after the defaults; a later `--option value` overrides an
    /// earlier one, so `arg("--appendonly").arg("yes")` turns AOF on.
    #[must_use]
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    /// Adds several arguments; see [`arg`](Self::arg).
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.extra_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Uses `dir` as the server's working directory instead of a fresh temporary
    /// one, so a second server can restart from the first one's AOF or RDB files.
    #[must_use]
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Listens for TLS only, with the server certificate of `pki`, asking clients for a
    /// certificate of its CA or not.
    #[must_use]
    pub fn tls(mut self, pki: &TestPki, client_certificates: ClientCertificates) -> Self {
        self.tls = Some(ServerTls {
            pki: pki.clone(),
            client_certificates,
        });
        self
    }

    /// How long to wait for the server to answer `PING` (10 s by default).
    #[must_use]
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Starts the server and waits until it answers `PING`.
    ///
    /// # Panics
    ///
    /// When the server cannot be started, with a message saying why.
    #[must_use]
    pub fn start(self) -> RedisServer {
        match self.try_start() {
            Ok(server) => server,
            Err(error) => panic!("{error:#}"),
        }
    }

    /// Starts the server and waits until it answers `PING`.
    ///
    /// # Errors
    ///
    /// When `redis-server` is missing (the message says how to install it), exits
    /// at startup (the message includes its log), or does not answer in time.
    pub fn try_start(self) -> anyhow::Result<RedisServer> {
        crate::on_a_free_port("redis-server", PORT_ATTEMPTS, || self.start_once())
    }

    /// One attempt on one free port. The outer error is final; the inner one means
    /// the port was taken and another may work.
    fn start_once(&self) -> anyhow::Result<Result<RedisServer, anyhow::Error>> {
        let scratch = tempfile::Builder::new()
            .prefix("footfall-redis-")
            .tempdir()
            .context("creating a temporary directory for redis-server")?;
        let data_dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| scratch.path().to_path_buf());
        let port = free_port()?;
        let log_path = scratch.path().join("redis-server.log");
        File::create(&log_path).context("creating the redis-server log file")?;
        let child = spawn(
            port,
            &data_dir,
            &log_path,
            self.config_file.as_deref(),
            &self.extra_args,
            self.tls.as_ref(),
        )?;
        let server = RedisServer {
            child,
            port,
            data_dir,
            log_path,
            config_file: self.config_file.clone(),
            extra_args: self.extra_args.clone(),
            tls: self.tls.clone(),
            startup_timeout: self.startup_timeout,
            _scratch: scratch,
        };
        server.wait_ready()
    }
}

/// Starts `redis-server` on `port` (only for TLS when `tls` is given) with `config_file`
/// or else the defaults, then `extra_args`, appending its output to the log at
/// `log_path`.
fn spawn(
    port: u16,
    data_dir: &Path,
    log_path: &Path,
    config_file: Option<&Path>,
    extra_args: &[OsString],
    tls: Option<&ServerTls>,
) -> anyhow::Result<Child> {
    let log = File::options()
        .append(true)
        .open(log_path)
        .context("opening the redis-server log file")?;
    let log_for_stderr = log
        .try_clone()
        .context("sharing the redis-server log file")?;
    let mut command = Command::new("redis-server");
    // redis-server takes a configuration file only as its first argument.
    if let Some(config_file) = config_file {
        command.arg(config_file);
    }
    match tls {
        None => command.arg("--port").arg(port.to_string()),
        Some(ServerTls {
            pki,
            client_certificates,
        }) => command
            .args(["--port", "0", "--tls-port"])
            .arg(port.to_string())
            .arg("--tls-cert-file")
            .arg(pki.server_cert())
            .arg("--tls-key-file")
            .arg(pki.server_key())
            .arg("--tls-ca-cert-file")
            .arg(pki.ca_cert())
            .arg("--tls-auth-clients")
            .arg(match client_certificates {
                ClientCertificates::NotAsked => "no",
                ClientCertificates::Required => "yes",
            }),
    };
    command.arg("--bind").arg("127.0.0.1");
    if config_file.is_none() {
        command.args(["--save", "", "--appendonly", "no"]);
    }
    command
        .arg("--daemonize")
        .arg("no")
        .arg("--dir")
        .arg(data_dir)
        .args(extra_args)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_for_stderr);
    match command.spawn() {
        Ok(child) => Ok(child),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => bail!("{INSTALL_HINT}"),
        Err(error) => Err(error).context("spawning redis-server"),
    }
}

impl RedisServer {
    /// Waits until the server answers `PING`. The outer error is final; the inner one
    /// means the port was taken and another may work.
    fn wait_ready(mut self) -> anyhow::Result<Result<RedisServer, anyhow::Error>> {
        let deadline = Instant::now() + self.startup_timeout;
        let port = self.port;
        let client = self.client();
        loop {
            if let Some(status) = self.child.try_wait().context("checking on redis-server")? {
                let log = self.log();
                let error =
                    anyhow::anyhow!("redis-server exited at startup ({status}); its log:\n{log}");
                return if log.contains("Address already in use") {
                    Ok(Err(error))
                } else {
                    Err(error)
                };
            }
            if ping(&client) {
                return Ok(Ok(self));
            }
            if Instant::now() >= deadline {
                bail!(
                    "redis-server on port {port} did not answer PING within {:?}; its log:\n{}",
                    self.startup_timeout,
                    self.log()
                );
            }
            // Polling for readiness: the server gives no other signal that it has
            // finished loading.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// True when the server of `client` answers `PING` with `PONG` (over TLS for a TLS
/// server, so a server that cannot load its certificates is never taken as ready).
fn ping(client: &redis::Client) -> bool {
    let Ok(mut connection) = client.get_connection_with_timeout(Duration::from_millis(500)) else {
        return false;
    };
    let _ = connection.set_read_timeout(Some(Duration::from_millis(500)));
    matches!(
        redis::cmd("PING")
            .query::<String>(&mut connection)
            .as_deref(),
        Ok("PONG")
    )
}
