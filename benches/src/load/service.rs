//! Talking to the service under test: its admin API (creating and deleting the load-test
//! sites), its metrics, its counts, and the local processes the harness starts itself.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use footfall_tests::footfall_server::{HttpClient, HttpResponse, free_port};

/// Where the service listens.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The public listener.
    pub public: SocketAddr,
    /// Its `Host` header.
    pub host: String,
    /// The internal listener (metrics, admin API), when known.
    pub admin: Option<SocketAddr>,
    /// The admin bearer token.
    pub admin_token: Option<String>,
}

/// `http://host:port` to an address and a `Host` header (plain HTTP only: put the harness
/// next to the service, not behind TLS).
///
/// # Errors
///
/// For another scheme or an unresolvable host.
pub fn resolve(url: &str) -> anyhow::Result<(SocketAddr, String)> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("{url}: only http:// URLs are supported"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let with_port = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let address = with_port
        .to_socket_addrs()
        .with_context(|| format!("resolving {authority}"))?
        .next()
        .with_context(|| format!("{authority} has no address"))?;
    Ok((address, authority.to_owned()))
}

/// The hostname a load-test site is registered with (`.invalid` never resolves).
#[must_use]
pub fn site_hostname(site: &str) -> String {
    format!("{site}.loadtest.invalid")
}

/// The load-test sites, registered through the admin API and removed when dropped, so a
/// production deployment keeps no trace but their (unreachable) counters.
#[derive(Debug)]
pub struct LoadTestSites {
    admin: SocketAddr,
    token: String,
    /// The site ids.
    pub ids: Vec<String>,
    /// Whether to delete them when dropped (not for a throw-away local service).
    delete_on_drop: bool,
}

impl LoadTestSites {
    /// Registers `count` sites named `loadtest-<run>-<n>`.
    ///
    /// # Errors
    ///
    /// When the admin API refuses one (the ones made so far are removed).
    pub fn create(endpoint: &Endpoint, run_id: &str, count: usize) -> anyhow::Result<Self> {
        let admin = endpoint
            .admin
            .context("the admin listener is needed to create the load-test sites (--admin)")?;
        let token = endpoint
            .admin_token
            .clone()
            .context("an admin token is needed to create the load-test sites (--admin-token)")?;
        let mut sites = LoadTestSites {
            admin,
            token,
            ids: Vec::with_capacity(count),
            delete_on_drop: true,
        };
        let mut client = HttpClient::connect(admin)?;
        for n in 0..count {
            let id = format!("loadtest-{run_id}-{n:04}");
            let body = serde_json::json!({ "hostnames": [site_hostname(&id)] }).to_string();
            let response = admin_request(
                &mut client,
                &sites.token,
                "PUT",
                &format!("/admin/v1/sites/{id}"),
                body.as_bytes(),
            )?;
            if !matches!(response.status, 200 | 201) {
                bail!(
                    "PUT /admin/v1/sites/{id}: {} {}",
                    response.status,
                    response.text()
                );
            }
            sites.ids.push(id);
        }
        super::progress(format_args!("{count} load-test sites registered"));
        Ok(sites)
    }
}

impl LoadTestSites {
    /// Sites a local service read from its sites file at start-up: nothing to create,
    /// and nothing to delete, since the service and its store are thrown away.
    #[must_use]
    pub fn preregistered(ids: Vec<String>) -> Self {
        LoadTestSites {
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: String::new(),
            ids,
            delete_on_drop: false,
        }
    }

    /// The sites file (TOML) that registers `ids` at start-up, each on its
    /// [`site_hostname`], with `visit_timeout_minutes` when given.
    #[must_use]
    pub fn sites_file(ids: &[String], visit_timeout_minutes: Option<u32>) -> String {
        let mut toml = String::new();
        for id in ids {
            // Ids are `loadtest-<hex>-<n>`: nothing to escape.
            toml.push_str(&format!(
                "[[sites]]\nid = \"{id}\"\nhostnames = [\"{}\"]\n",
                site_hostname(id)
            ));
            if let Some(minutes) = visit_timeout_minutes {
                toml.push_str(&format!("visit_timeout_minutes = {minutes}\n"));
            }
            toml.push('\n');
        }
        toml
    }
}

impl Drop for LoadTestSites {
    fn drop(&mut self) {
        if !self.delete_on_drop {
            return;
        }
        let Ok(mut client) = HttpClient::connect(self.admin) else {
            eprintln!("footfall-load: could not reach the admin API to delete the load-test sites");
            return;
        };
        for id in &self.ids {
            let path = format!("/admin/v1/sites/{id}");
            if let Err(error) = admin_request(&mut client, &self.token, "DELETE", &path, b"") {
                eprintln!("footfall-load: DELETE {path}: {error:#}");
            }
        }
        super::progress(format_args!("{} load-test sites deleted", self.ids.len()));
    }
}

fn admin_request(
    client: &mut HttpClient,
    token: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> anyhow::Result<HttpResponse> {
    let authorization = format!("Bearer {token}");
    client.request(
        method,
        path,
        &[
            ("Authorization", authorization.as_str()),
            ("Content-Type", "application/json"),
        ],
        body,
    )
}

/// The hit counters of `/metrics`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct HitMetrics {
    /// `footfall_hits_accepted_total`.
    pub accepted: f64,
    /// `footfall_hits_written_total`.
    pub written: f64,
    /// `footfall_hits_dropped_total` by reason.
    pub dropped: BTreeMap<String, f64>,
}

impl HitMetrics {
    /// Reads them from the internal listener.
    ///
    /// # Errors
    ///
    /// When `/metrics` cannot be read.
    pub fn scrape(admin: SocketAddr) -> anyhow::Result<Self> {
        Ok(Self::parse(&metrics_text(admin)?))
    }

    /// Parses the Prometheus text format (only the series named above).
    #[must_use]
    pub fn parse(text: &str) -> Self {
        let mut metrics = HitMetrics::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = series.split_once('{').unwrap_or((series, ""));
            match name {
                "footfall_hits_accepted_total" => metrics.accepted += value,
                "footfall_hits_written_total" => metrics.written += value,
                "footfall_hits_dropped_total" => {
                    let reason = labels
                        .split(',')
                        .find_map(|l| l.strip_prefix("reason=\""))
                        .map(|r| r.trim_end_matches(['"', '}']).to_owned())
                        .unwrap_or_default();
                    *metrics.dropped.entry(reason).or_default() += value;
                }
                _ => {}
            }
        }
        metrics
    }

    /// What changed since `before`.
    #[must_use]
    pub fn since(&self, before: &HitMetrics) -> HitMetrics {
        let mut dropped = self.dropped.clone();
        for (reason, value) in &mut dropped {
            *value -= before.dropped.get(reason).copied().unwrap_or(0.0);
        }
        dropped.retain(|_, v| *v != 0.0);
        HitMetrics {
            accepted: self.accepted - before.accepted,
            written: self.written - before.written,
            dropped,
        }
    }

    /// Every drop, whatever the reason.
    #[must_use]
    pub fn total_dropped(&self) -> f64 {
        self.dropped.values().sum()
    }

    /// Hits dropped after they were accepted into the buffer (the flusher's reasons: an
    /// ambiguous store failure, a site deleted meanwhile, a day already closed, the
    /// stop's deadline). Every other reason is decided before acceptance.
    #[must_use]
    pub fn dropped_after_acceptance(&self) -> f64 {
        AFTER_ACCEPTANCE
            .iter()
            .filter_map(|reason| self.dropped.get(*reason))
            .sum()
    }

    /// True when every accepted hit is written or dropped by the flusher with a reason.
    #[must_use]
    pub fn caught_up(&self) -> bool {
        self.written + self.dropped_after_acceptance() >= self.accepted
    }
}

/// The drop reasons the flusher counts, after a hit was accepted.
const AFTER_ACCEPTANCE: [&str; 4] = [
    "store_ambiguous",
    "unknown_site",
    "too_old",
    "shutting_down",
];

/// The body of `GET /metrics` on the internal listener.
///
/// # Errors
///
/// When it cannot be read or does not answer 200.
pub fn metrics_text(admin: SocketAddr) -> anyhow::Result<String> {
    let response = HttpClient::connect(admin)?
        .get("/metrics")
        .context("GET /metrics")?;
    if response.status != 200 {
        bail!("GET /metrics: {}", response.status);
    }
    Ok(response.text())
}

/// The write buffer's gauges (set when `/metrics` is read).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct BufferGauges {
    /// `footfall_buffer_hits`: hits waiting.
    pub buffer_hits: f64,
    /// `footfall_flush_lag_seconds`: age of the oldest hit taken and not yet written.
    pub flush_lag_seconds: f64,
}

impl BufferGauges {
    /// Parses them from the Prometheus text format.
    #[must_use]
    pub fn parse(text: &str) -> Self {
        let mut gauges = BufferGauges::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            match series {
                "footfall_buffer_hits" => gauges.buffer_hits = value,
                "footfall_flush_lag_seconds" => gauges.flush_lag_seconds = value,
                _ => {}
            }
        }
        gauges
    }
}

/// One site's figures for today, as the counts API serves them.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct SiteCounts {
    /// Pageviews today.
    pub pageviews: u64,
    /// Visits today.
    pub visits: u64,
    /// Visitors today (HyperLogLog).
    pub visitors: u64,
}

/// Reads `GET /api/v1/sites/{site}/counts` on `client`.
///
/// # Errors
///
/// When the answer is not a 200 with the expected JSON.
pub fn read_counts(client: &mut HttpClient, site: &str) -> anyhow::Result<SiteCounts> {
    let response = client.get(&format!("/api/v1/sites/{site}/counts"))?;
    if response.status != 200 {
        bail!("counts of {site}: {} {}", response.status, response.text());
    }
    let body: serde_json::Value = serde_json::from_slice(&response.body)?;
    let figure = |metric: &str| body["today"][metric].as_u64().unwrap_or(0);
    Ok(SiteCounts {
        pageviews: figure("pageviews"),
        visits: figure("visits"),
        visitors: figure("visitors"),
    })
}

/// Waits until the service has written every hit it accepted since `before` (bounded).
///
/// # Errors
///
/// When the metrics cannot be read.
pub fn wait_for_writes(
    admin: SocketAddr,
    before: &HitMetrics,
    limit: Duration,
) -> anyhow::Result<HitMetrics> {
    let deadline = Instant::now() + limit;
    loop {
        let now = HitMetrics::scrape(admin)?.since(before);
        if now.caught_up() || Instant::now() >= deadline {
            return Ok(now);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A baseline server process (`baseline-server`), killed when dropped.
#[derive(Debug)]
pub struct BaselineProcess {
    child: Child,
    /// Where it listens.
    pub address: SocketAddr,
}

impl BaselineProcess {
    /// Starts `baseline-server <args…> <address>` and waits until it accepts connections.
    ///
    /// # Errors
    ///
    /// When the binary is missing or does not listen within 10 s.
    pub fn start(mode: &str, redis_url: Option<&str>) -> anyhow::Result<Self> {
        let binary = sibling_binary("baseline-server")?;
        let address: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let mut command = Command::new(&binary);
        command.arg(mode).arg(address.to_string());
        if let Some(url) = redis_url {
            command.arg(url);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut process = BaselineProcess { child, address };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            if let Some(status) = process.child.try_wait()? {
                bail!("baseline-server {mode} exited at startup: {status}");
            }
            if Instant::now() >= deadline {
                bail!("baseline-server {mode} did not listen on {address} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(process)
    }

    /// Its process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for BaselineProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A binary of this workspace built next to the running one (`target/<profile>/`, or its
/// parent when running from `deps/`).
///
/// # Errors
///
/// When it is not there, saying how to build it.
pub fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .context("the harness binary has no directory")?;
    let candidates = [dir.join(name), dir.parent().unwrap_or(dir).join(name)];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .with_context(|| {
            format!(
                "{name} not found next to {}: build it with `cargo build --release -p footfall-benches --bins`",
                exe.display()
            )
        })
}

/// The `footfall` binary next to the harness, if any.
#[must_use]
pub fn sibling_footfall() -> Option<PathBuf> {
    sibling_binary("footfall")
        .ok()
        .filter(|p: &PathBuf| Path::is_file(p))
}
