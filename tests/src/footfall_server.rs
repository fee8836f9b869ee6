//! The real `footfall serve` binary on free loopback ports, killed when dropped, and a
//! small blocking HTTP/1.1 client to talk to it (and to other local servers the tests
//! start, such as Prometheus).
//!
//! The binary is the workspace's `target/<profile>/footfall`, found next to the test
//! binary's own directory. `cargo test --workspace` builds it (the server crate has
//! integration tests); when it is missing, or older than a file it was built from (a
//! run of this package alone does not rebuild it), the first test to ask builds it once
//! with `cargo build -p footfall-server --bin footfall`. Set `FOOTFALL_BIN` to test another
//! build.
//!
//! ```no_run
//! use footfall_tests::footfall_server::FootfallServer;
//!
//! let server = FootfallServer::builder().args(["--rate-limit", "100000"]).start();
//! let metrics = server.internal_get("/metrics");
//! assert_eq!(metrics.status, 200);
//! ```

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub use crate::free_port;

/// How many fresh port pairs to try when one is taken between choosing it and the
/// service binding it.
const PORT_ATTEMPTS: usize = 5;

/// How long a test HTTP exchange may take; generous for a busy two-core machine.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// The `footfall` binary under test, built once per test binary when missing or stale.
///
/// # Panics
///
/// When it is missing or stale and cannot be built.
pub fn footfall_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| match locate_or_build() {
        Ok(path) => path,
        Err(error) => panic!("{error:#}"),
    })
}

fn locate_or_build() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("FOOTFALL_BIN") {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("FOOTFALL_BIN={} is not a file", path.display());
        }
        return Ok(path);
    }
    // target/<profile>/deps/e2e-<hash> → target/<profile>/footfall
    let test_binary = std::env::current_exe().context("finding the test binary")?;
    let profile_dir = test_binary
        .parent()
        .and_then(Path::parent)
        .context("the test binary is not in target/<profile>/deps")?;
    let path = profile_dir.join(format!("footfall{}", std::env::consts::EXE_SUFFIX));
    if path.is_file() && !older_than_its_sources(&path) {
        return Ok(path);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let mut command = Command::new(cargo);
    command
        .args(["build", "-p", "footfall-server", "--bin", "footfall"])
        .arg("--manifest-path")
        .arg(&manifest);
    if profile_dir
        .file_name()
        .is_some_and(|name| name == "release")
    {
        command.arg("--release");
    }
    let status = command
        .status()
        .context("running cargo build for the footfall binary")?;
    if !status.success() || !path.is_file() {
        bail!(
            "`cargo build -p footfall-server --bin footfall` did not produce {} ({status})",
            path.display()
        );
    }
    Ok(path)
}

/// True when a file the binary was built from changed after it was written, by the list
/// cargo keeps beside it (`footfall.d`): a test run of one package (`cargo test -p
/// footfall-tests`) does not rebuild the service, and a stale binary fails in ways that
/// point everywhere but at itself. Without the list, or a time, it counts as fresh.
fn older_than_its_sources(binary: &Path) -> bool {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let Some(built) = modified(binary) else {
        return false;
    };
    let Ok(dep_info) = std::fs::read_to_string(binary.with_extension("d")) else {
        return false;
    };
    // `target: source source …`, paths with spaces escaped as `\ `.
    let Some((_, sources)) = dep_info
        .lines()
        .next()
        .and_then(|line| line.split_once(": "))
    else {
        return false;
    };
    sources
        .replace("\\ ", "\0")
        .split_whitespace()
        .map(|source| PathBuf::from(source.replace('\0', " ")))
        .filter_map(|source| modified(&source))
        .any(|changed| changed > built)
}

/// A running `footfall serve`, killed and reaped when dropped.
#[derive(Debug)]
pub struct FootfallServer {
    child: Child,
    public: SocketAddr,
    internal: SocketAddr,
    log_path: PathBuf,
    // Kept to start the same service again after it stopped (see `restart`).
    builder: FootfallServerBuilder,
    scratch: tempfile::TempDir,
}

/// Options for [`FootfallServer`]; start with [`FootfallServer::builder`].
#[derive(Debug, Clone)]
pub struct FootfallServerBuilder {
    store: String,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    startup_timeout: Duration,
}

impl FootfallServer {
    /// Options for a server; [`FootfallServerBuilder::start`] starts it. By default it
    /// runs on the in-memory store (`--store memory:`) with the demo site (`--demo`,
    /// which a store other than the default one would turn off; `--no-demo` in
    /// [`args`](FootfallServerBuilder::args) leaves it out).
    #[must_use]
    pub fn builder() -> FootfallServerBuilder {
        FootfallServerBuilder {
            store: "memory:".to_owned(),
            args: Vec::new(),
            envs: Vec::new(),
            startup_timeout: Duration::from_secs(30),
        }
    }

    /// The public listener's address.
    #[must_use]
    pub fn public(&self) -> SocketAddr {
        self.public
    }

    /// The internal listener's address (metrics, health, admin API).
    #[must_use]
    pub fn internal(&self) -> SocketAddr {
        self.internal
    }

    /// The service's log (stderr and stdout) so far, for failure messages.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_else(|error| format!("(no log: {error})"))
    }

    /// `GET path` on the internal listener.
    ///
    /// # Panics
    ///
    /// When the exchange fails, with the service's log.
    #[must_use]
    pub fn internal_get(&self, path: &str) -> HttpResponse {
        match HttpClient::connect(self.internal).and_then(|mut c| c.get(path)) {
            Ok(response) => response,
            Err(error) => panic!(
                "GET {path} on {}: {error:#}\nservice log:\n{}",
                self.internal,
                self.log()
            ),
        }
    }

    /// The process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM, as an orchestrator stopping the service would: it stops accepting,
    /// finishes requests in flight and flushes its buffer. See [`wait_exit`](Self::wait_exit).
    ///
    /// # Panics
    ///
    /// When the signal cannot be sent.
    pub fn terminate(&self) {
        // `kill(1)` rather than a libc binding: the tests crate has no unsafe code.
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("running kill -TERM");
        assert!(
            status.success(),
            "kill -TERM {} failed: {status}",
            self.child.id()
        );
    }

    /// Kills the service with SIGKILL, as a crash would: no flush, no cleanup.
    ///
    /// # Panics
    ///
    /// When the process cannot be reaped.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        self.child.wait().expect("reaping the killed footfall");
    }

    /// Waits at most `timeout` for the process to exit; its status, or `None` if it is
    /// still running then.
    ///
    /// # Panics
    ///
    /// When the process cannot be waited for.
    #[must_use]
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for footfall") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            // Polling: std has no wait with a timeout on a child.
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts the service again after it stopped ([`kill`](Self::kill), or an exit), with
    /// the same arguments, store and listener ports, and waits until `/livez` answers 200.
    /// The log goes on in the same file.
    ///
    /// # Panics
    ///
    /// When the service is still running, or does not start again.
    pub fn restart(&mut self) {
        assert!(
            !matches!(self.child.try_wait(), Ok(None)),
            "restart() needs a stopped service; call kill() or terminate() first"
        );
        let result = self.builder.spawn_on(
            self.public,
            self.internal,
            self.scratch.path(),
            &self.log_path,
        );
        self.child = match result {
            Ok(child) => child,
            Err(error) => panic!("{error:#}"),
        };
        if let Err(error) = wait_live(
            &mut self.child,
            self.internal,
            &self.log_path,
            self.builder.startup_timeout,
        ) {
            panic!("footfall serve did not restart: {error:#}");
        }
    }
}

impl Drop for FootfallServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl FootfallServerBuilder {
    /// The store (`--store`): `memory:` unless set here.
    #[must_use]
    pub fn store(mut self, store: impl Into<String>) -> Self {
        self.store = store.into();
        self
    }

    /// Adds arguments after `serve`, the listeners and the store (which have their own
    /// settings: clap refuses a flag given twice).
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable of the service (every inherited `FOOTFALL_*` one is
    /// removed, so the developer's environment cannot change a test).
    #[must_use]
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Starts the service and waits until `/livez` answers 200.
    ///
    /// # Panics
    ///
    /// When the service cannot be started, with its log.
    #[must_use]
    pub fn start(self) -> FootfallServer {
        match self.try_start() {
            Ok(server) => server,
            Err(error) => panic!("{error:#}"),
        }
    }

    /// Starts the service and waits until `/livez` answers 200.
    ///
    /// # Errors
    ///
    /// When the binary is missing and cannot be built, the service exits at startup
    /// (the message includes its log), or it does not answer in time.
    pub fn try_start(self) -> anyhow::Result<FootfallServer> {
        crate::on_a_free_port("footfall serve", PORT_ATTEMPTS, || self.start_once())
    }

    fn start_once(&self) -> anyhow::Result<Result<FootfallServer, anyhow::Error>> {
        let scratch = tempfile::Builder::new()
            .prefix("footfall-serve-")
            .tempdir()
            .context("creating a temporary directory for footfall serve")?;
        let public: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let internal: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let log_path = scratch.path().join("footfall.log");
        File::create(&log_path).context("creating the footfall log file")?;
        let child = self.spawn_on(public, internal, scratch.path(), &log_path)?;
        let mut server = FootfallServer {
            child,
            public,
            internal,
            log_path,
            builder: self.clone(),
            scratch,
        };
        match wait_live(
            &mut server.child,
            internal,
            &server.log_path,
            self.startup_timeout,
        ) {
            Ok(()) => Ok(Ok(server)),
            Err(StartError::PortTaken(error)) => Ok(Err(error)),
            Err(StartError::Failed(error)) => Err(error),
        }
    }

    /// Spawns `footfall serve` on the given listeners, appending its output to `log_path`.
    fn spawn_on(
        &self,
        public: SocketAddr,
        internal: SocketAddr,
        scratch: &Path,
        log_path: &Path,
    ) -> anyhow::Result<Child> {
        let log = File::options()
            .append(true)
            .open(log_path)
            .context("opening the footfall log file")?;
        let log_for_stderr = log.try_clone().context("sharing the footfall log file")?;
        let mut command = Command::new(footfall_binary());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("FOOTFALL_") {
                command.env_remove(key);
            }
        }
        // Text logs, which the tests read by eye and parse (`written=…`); a test may ask
        // for JSON with `env`.
        command.env("FOOTFALL_LOG_FORMAT", "text");
        // Every instance a test starts on one Redis shares one salt secret, as a
        // deployment's instances must (a test may give its own).
        let names_a_secret = self
            .args
            .iter()
            .any(|arg| arg.to_string_lossy().starts_with("--salt-secret"));
        if is_redis(&self.store) && !names_a_secret {
            command.env("FOOTFALL_SALT_SECRET", TEST_SALT_SECRET);
        }
        // The tests count on the demo site whatever the store; a test may turn it off,
        // and a trust key refuses it (`footfall serve` says why).
        let names_the_demo = self.args.iter().any(|arg| {
            let arg = arg.to_string_lossy();
            arg == "--no-demo" || arg == "--demo" || arg.starts_with("--trust-key-file")
        }) || self
            .envs
            .iter()
            .any(|(key, _)| key == "FOOTFALL_NO_DEMO" || key == "FOOTFALL_DEMO");
        command
            .arg("serve")
            .arg("--listen")
            .arg(public.to_string())
            .arg("--admin-listen")
            .arg(internal.to_string())
            .arg("--store")
            .arg(&self.store)
            .args((!names_the_demo).then_some("--demo"))
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .current_dir(scratch)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_for_stderr);
        command.spawn().context("spawning footfall serve")
    }
}

/// The salt secret of the services started on Redis (public: tests only).
pub const TEST_SALT_SECRET: &str = "footfall e2e tests: a public salt secret; never deploy it";

fn is_redis(store: &str) -> bool {
    store
        .split_once(':')
        .is_some_and(|(scheme, _)| scheme.starts_with("redis"))
}

/// Why a start did not work: a port taken between choosing it and the service binding it
/// (another pair may work), or anything else (final).
#[derive(Debug)]
enum StartError {
    PortTaken(anyhow::Error),
    Failed(anyhow::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::PortTaken(error) | StartError::Failed(error) => write!(f, "{error:#}"),
        }
    }
}

/// Waits until the service answers `/livez` with 200.
fn wait_live(
    child: &mut Child,
    internal: SocketAddr,
    log_path: &Path,
    timeout: Duration,
) -> Result<(), StartError> {
    let log =
        || std::fs::read_to_string(log_path).unwrap_or_else(|error| format!("(no log: {error})"));
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let log = log();
                let error =
                    anyhow::anyhow!("footfall serve exited at startup ({status}); its log:\n{log}");
                return Err(if log.contains("Address already in use") {
                    StartError::PortTaken(error)
                } else {
                    StartError::Failed(error)
                });
            }
            Ok(None) => {}
            Err(error) => {
                return Err(StartError::Failed(
                    anyhow::Error::new(error).context("checking on footfall"),
                ));
            }
        }
        let live = HttpClient::connect_timeout(internal, Duration::from_millis(500))
            .and_then(|mut client| client.get("/livez"));
        if live.is_ok_and(|response| response.status == 200) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(StartError::Failed(anyhow::anyhow!(
                "footfall serve did not answer /livez on {internal} within {timeout:?}; its log:\n{}",
                log()
            )));
        }
        // Polling for readiness: the service gives no other signal once it listens.
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The body as text (lossy).
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first header named `name` (lower case).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A blocking HTTP/1.1 client on one keep-alive connection: enough for tests that send
/// thousands of requests without opening thousands of sockets.
#[derive(Debug)]
pub struct HttpClient {
    address: SocketAddr,
    reader: BufReader<TcpStream>,
}

impl HttpClient {
    /// Connects to `address`.
    ///
    /// # Errors
    ///
    /// When the connection cannot be made.
    pub fn connect(address: SocketAddr) -> anyhow::Result<Self> {
        Self::connect_timeout(address, Duration::from_secs(5))
    }

    /// Connects to `address`, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// When the connection cannot be made.
    pub fn connect_timeout(address: SocketAddr, timeout: Duration) -> anyhow::Result<Self> {
        let stream = TcpStream::connect_timeout(&address, timeout)
            .with_context(|| format!("connecting to {address}"))?;
        stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
        stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            address,
            reader: BufReader::new(stream),
        })
    }

    /// `GET path`.
    ///
    /// # Errors
    ///
    /// When the exchange fails or the answer is not HTTP/1.1.
    pub fn get(&mut self, path: &str) -> anyhow::Result<HttpResponse> {
        self.request("GET", path, &[], b"")
    }

    /// Sends one request on the connection and reads the answer.
    ///
    /// # Errors
    ///
    /// When the exchange fails or the answer is not HTTP/1.1.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> anyhow::Result<HttpResponse> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.address);
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        stream.flush()?;
        self.read_response(method == "HEAD")
            .with_context(|| format!("{method} {path} on {}", self.address))
    }

    fn read_response(&mut self, head_only: bool) -> anyhow::Result<HttpResponse> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let mut parts = line.trim_end().splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        if !version.starts_with("HTTP/1.") {
            bail!("not an HTTP/1 answer: {line:?}");
        }
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("no status in {line:?}"))?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                bail!("connection closed in the headers");
            }
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            let (name, value) = trimmed
                .split_once(':')
                .with_context(|| format!("bad header line {trimmed:?}"))?;
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let mut body = Vec::new();
        if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
            // No body.
        } else if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                line.clear();
                self.reader.read_line(&mut line)?;
                let size_text = line.trim_end().split(';').next().unwrap_or_default();
                let size = usize::from_str_radix(size_text, 16)
                    .with_context(|| format!("bad chunk size {line:?}"))?;
                if size == 0 {
                    // Trailers, then the empty line.
                    loop {
                        line.clear();
                        if self.reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
                            break;
                        }
                    }
                    break;
                }
                let start = body.len();
                body.resize(start + size, 0);
                self.reader.read_exact(&mut body[start..])?;
                line.clear();
                self.reader.read_line(&mut line)?;
            }
        } else if let Some(length) = header("content-length") {
            let length: usize = length.parse().context("bad content-length")?;
            body.resize(length, 0);
            self.reader.read_exact(&mut body)?;
        } else {
            self.reader.read_to_end(&mut body)?;
        }
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

/// `GET path` on a fresh connection to `address`, for one-off calls.
///
/// # Errors
///
/// When the exchange fails.
pub fn http_get(address: SocketAddr, path: &str) -> anyhow::Result<HttpResponse> {
    HttpClient::connect(address)?.get(path)
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::time::{Duration, SystemTime};

    use super::older_than_its_sources;

    #[test]
    fn a_binary_older_than_a_source_it_lists_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("footfall");
        let source = dir.path().join("with space.rs");
        let other = dir.path().join("main.rs");
        let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s);
        let touch = |path: &std::path::Path, time| {
            File::create(path).unwrap().set_modified(time).unwrap();
        };
        touch(&other, at(0));
        touch(&source, at(0));
        touch(&binary, at(10));
        // No dep-info: cargo is not asked.
        assert!(!older_than_its_sources(&binary));
        let escaped = source.display().to_string().replace(' ', "\\ ");
        std::fs::write(
            dir.path().join("footfall.d"),
            format!("{}: {} {escaped}\n", binary.display(), other.display()),
        )
        .unwrap();
        assert!(!older_than_its_sources(&binary));
        // A source (its name has a space) edited after the build.
        touch(&source, at(20));
        assert!(older_than_its_sources(&binary));
    }
}
