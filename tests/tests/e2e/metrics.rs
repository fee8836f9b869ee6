//! `/metrics` of the real `footfall serve` binary: what promtool thinks of it, that
//! clients cannot create series, and that a real Prometheus scrapes and stores it.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use footfall_tests::footfall_server::{FootfallServer, HttpClient, free_port, http_get};

/// A browser's User-Agent: not a robot, so its hits are counted.
pub(crate) const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";

/// What to tell someone whose machine has no promtool or prometheus.
pub(crate) const PROMETHEUS_HINT: &str = "is part of Debian's `prometheus` package: run \
     `apt-get install prometheus` or `scripts/install-test-deps.sh`";

/// A service whose rate limit never gets in the way of a test's thousands of hits from
/// one address, and whose buffer flushes quickly.
pub(crate) fn start_service() -> FootfallServer {
    FootfallServer::builder()
        .args(["--rate-limit", "100000000", "--flush-interval-ms", "20"])
        .start()
}

/// Posts one beacon hit as a browser on `localhost` would; returns the status.
pub(crate) fn post_hit(client: &mut HttpClient, site: &str, path: &str) -> u16 {
    let body = serde_json::json!({ "site": site, "path": path }).to_string();
    client
        .request(
            "POST",
            "/api/v1/hit",
            &[
                ("Content-Type", "text/plain"),
                ("Origin", "http://localhost"),
                ("User-Agent", BROWSER),
            ],
            body.as_bytes(),
        )
        .expect("POST /api/v1/hit")
        .status
}

fn get_status(client: &mut HttpClient, path: &str, headers: &[(&str, &str)]) -> u16 {
    client
        .request("GET", path, headers, b"")
        .unwrap_or_else(|e| panic!("GET {path}: {e:#}"))
        .status
}

/// One request of every kind the public listener sees, so every series that traffic can
/// create exists afterwards; returns how many hits were accepted.
pub(crate) fn traffic_of_every_kind(server: &FootfallServer) -> u64 {
    let mut client = HttpClient::connect(server.public()).expect("connecting");
    let browser = [
        ("User-Agent", BROWSER),
        ("Referer", "http://localhost/page"),
    ];
    let mut accepted = 0;
    for path in ["/", "/tin-tuc/1"] {
        let status = post_hit(&mut client, "demo", path);
        assert!(matches!(status, 202 | 204), "beacon hit: {status}");
        accepted += 1;
    }
    assert_eq!(post_hit(&mut client, "nosuch", "/"), 404);
    assert_eq!(post_hit(&mut client, "Not A Site", "/"), 400);
    assert_eq!(
        get_status(&mut client, "/hit.gif?site=demo&path=/gioi-thieu", &browser),
        200
    );
    accepted += 1;
    assert_eq!(
        get_status(&mut client, "/hit.gif?site=nosuch", &browser),
        404
    );
    // A robot, a foreign page and a HEAD are dropped with their reasons.
    let robot = [
        ("User-Agent", "Googlebot/2.1"),
        ("Referer", "http://localhost/"),
    ];
    get_status(&mut client, "/hit.gif?site=demo", &robot);
    let foreign = [("User-Agent", BROWSER), ("Referer", "http://evil.example/")];
    get_status(&mut client, "/hit.gif?site=demo", &foreign);
    let head = client
        .request("HEAD", "/hit.gif?site=demo", &browser, b"")
        .expect("HEAD /hit.gif");
    assert!(head.status < 500, "HEAD: {}", head.status);
    for _ in 0..2 {
        assert_eq!(
            get_status(&mut client, "/api/v1/sites/demo/counts", &[]),
            200
        );
    }
    assert_eq!(
        get_status(&mut client, "/api/v1/sites/nosuch/counts", &[]),
        404
    );
    assert_eq!(get_status(&mut client, "/no/such/route", &[]), 404);
    accepted
}

/// The series of an exposition: every sample line without its value.
pub(crate) fn series(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            line.rsplit_once(' ')
                .map_or(line, |(series, _value)| series)
                .to_owned()
        })
        .collect()
}

/// The value of the sample `series` (name and labels exactly as rendered).
pub(crate) fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok())?
    })
}

/// Polls `/metrics` until `ready` holds, for at most `within`.
pub(crate) fn metrics_when(
    server: &FootfallServer,
    within: Duration,
    what: &str,
    ready: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + within;
    loop {
        let metrics = server.internal_get("/metrics").text();
        if ready(&metrics) {
            return metrics;
        }
        assert!(
            Instant::now() < deadline,
            "{what} within {within:?}; last /metrics:\n{metrics}"
        );
        // Polling the service's own metrics: it gives no other signal.
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `program args` with `input` on stdin; panics with `hint` when it is missing.
pub(crate) fn run_tool(
    program: &str,
    args: &[&str],
    input: Option<&[u8]>,
    hint: &str,
) -> std::process::Output {
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            panic!("{program} was not found on PATH; it {hint}")
        }
        Err(error) => panic!("running {program}: {error}"),
    };
    if let Some(input) = input {
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin.write_all(input).expect("writing to the tool's stdin");
    }
    child.wait_with_output().expect("waiting for the tool")
}

#[test]
fn promtool_accepts_the_live_metrics_after_traffic() {
    let server = start_service();
    let accepted = traffic_of_every_kind(&server);
    let metrics = metrics_when(&server, Duration::from_secs(20), "the hits written", |m| {
        sample(m, "footfall_hits_written_total").is_some_and(|n| n >= accepted as f64)
    });
    let output = run_tool(
        "promtool",
        &["check", "metrics"],
        Some(metrics.as_bytes()),
        PROMETHEUS_HINT,
    );
    assert!(
        output.status.success(),
        "promtool check metrics failed ({}):\n{}{}\n--- /metrics:\n{metrics}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );

    // Histograms are real histograms (not summaries) with the service's buckets, and the
    // route label is the template, never the raw path.
    assert!(metrics.contains("# TYPE footfall_http_request_duration_seconds histogram"));
    assert!(metrics.contains("# TYPE footfall_flush_batch_hits histogram"));
    assert!(
        metrics.contains(r#"route="/api/v1/sites/{site}/counts""#),
        "{metrics}"
    );
    assert!(
        !metrics.contains("nosuch"),
        "a raw site id leaked into a label"
    );
    assert_eq!(
        sample(&metrics, "footfall_hits_accepted_total"),
        Some(accepted as f64)
    );
    assert_eq!(
        sample(&metrics, r#"footfall_hits_dropped_total{reason="bot"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &metrics,
            r#"footfall_hits_dropped_total{reason="foreign_origin"}"#
        ),
        Some(1.0)
    );
    for name in [
        "footfall_hits_accepted_total",
        "footfall_hits_dropped_total",
        "footfall_hits_written_total",
        "footfall_buffer_hits",
        "footfall_buffer_capacity_hits",
        "footfall_flush_batch_hits_bucket",
        "footfall_flush_duration_seconds_bucket",
        "footfall_store_operation_duration_seconds_bucket",
        "footfall_store_errors_total",
        "footfall_cache_lookups_total",
        "footfall_http_requests_total",
        "footfall_http_request_duration_seconds_bucket",
        "footfall_http_requests_in_flight",
        "footfall_http_shed_total",
        "footfall_panics_total",
        "footfall_sites",
        "footfall_rate_limiter_clients",
        "footfall_build_info",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    ] {
        let present = series(&metrics)
            .iter()
            .any(|s| s == name || s.starts_with(&format!("{name}{{")));
        assert!(present, "{name} is missing from /metrics:\n{metrics}");
    }
}

#[test]
fn series_stay_flat_under_ten_thousand_sites_and_paths() {
    let server = start_service();
    let accepted = traffic_of_every_kind(&server);
    // Counters and histograms for every route and status class seen once; the salt age
    // appears at the upkeep after the first hit. Compare from a settled point.
    let before = series(&metrics_when(
        &server,
        Duration::from_secs(20),
        "the first hits written",
        |m| sample(m, "footfall_hits_written_total").is_some_and(|n| n > 0.0),
    ));

    let mut client = HttpClient::connect(server.public()).expect("connecting");
    let browser = [("User-Agent", BROWSER), ("Referer", "http://localhost/")];
    for i in 0..10_000 {
        // Unknown sites (404 on both ingestion routes and on the read API).
        let site = format!("unknown-site-{i}");
        assert_eq!(post_hit(&mut client, &site, "/"), 404, "{site}");
        if i % 10 == 0 {
            let pixel = format!("/hit.gif?site={site}&path=/p{i}");
            assert_eq!(get_status(&mut client, &pixel, &browser), 404);
            let counts = format!("/api/v1/sites/{site}/counts");
            assert_eq!(get_status(&mut client, &counts, &[]), 404);
            assert_eq!(get_status(&mut client, &format!("/raw/{site}"), &[]), 404);
        }
        // The registered site, a different page every time.
        let status = post_hit(&mut client, "demo", &format!("/tin-tuc/{i}?utm={i}"));
        assert!(matches!(status, 202 | 204), "demo hit {i}: {status}");
    }
    let after_text = metrics_when(
        &server,
        Duration::from_secs(30),
        "all 10,000 more demo hits written",
        |m| {
            sample(m, "footfall_hits_written_total")
                .is_some_and(|n| n >= (accepted + 10_000) as f64)
        },
    );
    let after = series(&after_text);
    let appeared: Vec<_> = after.difference(&before).collect();
    let vanished: Vec<_> = before.difference(&after).collect();
    // The salt age gauge may appear between the two readings (upkeep runs every 10 s);
    // it is one series with no labels, not something a client controls.
    let appeared: Vec<_> = appeared
        .into_iter()
        .filter(|s| *s != "footfall_salt_age_seconds")
        .collect();
    assert!(
        appeared.is_empty() && vanished.is_empty(),
        "series changed after 10,000 sites and paths ({} before, {} after)\nappeared: {appeared:#?}\nvanished: {vanished:#?}",
        before.len(),
        after.len()
    );
    assert!(
        !after_text.contains("unknown-site") && !after_text.contains("tin-tuc"),
        "a site id or path leaked into a label"
    );
}

/// A throw-away Prometheus on a free loopback port, killed when dropped.
struct Prometheus {
    child: Child,
    address: SocketAddr,
    dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts Prometheus scraping `target` every second and waits until it is ready.
    fn scraping(target: SocketAddr) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: footfall\n    scrape_interval: 1s\n    \
                 scrape_timeout: 1s\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("writing prometheus.yml");
        let address: SocketAddr = format!("127.0.0.1:{}", free_port().expect("a free port"))
            .parse()
            .expect("an address");
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("a log file");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("sharing the log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| {
                if error.kind() == std::io::ErrorKind::NotFound {
                    panic!("prometheus was not found on PATH; it {PROMETHEUS_HINT}")
                }
                panic!("starting prometheus: {error}")
            });
        let mut prometheus = Self {
            child,
            address,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = prometheus.child.try_wait() {
                panic!(
                    "prometheus exited at startup ({status}); its log:\n{}",
                    prometheus.log()
                );
            }
            if http_get(address, "/-/ready").is_ok_and(|r| r.status == 200) {
                return prometheus;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus did not get ready on {address} within 60 s; its log:\n{}",
                prometheus.log()
            );
            // Polling for readiness: Prometheus gives no other signal.
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The result vector of an instant query.
    fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let path = format!("/api/v1/query?query={}", percent_encode(promql));
        let response = http_get(self.address, &path).expect("querying prometheus");
        assert_eq!(response.status, 200, "{promql}: {}", response.text());
        let body: serde_json::Value =
            serde_json::from_slice(&response.body).expect("prometheus answers JSON");
        assert_eq!(body["status"], "success", "{promql}: {body}");
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn a_real_prometheus_scrapes_and_stores_the_series() {
    let server = start_service();
    let mut client = HttpClient::connect(server.public()).expect("connecting");
    const HITS: u64 = 7;
    for i in 0..HITS {
        let status = post_hit(&mut client, "demo", &format!("/p/{i}"));
        assert!(matches!(status, 202 | 204), "hit {i}: {status}");
    }
    let prometheus = Prometheus::scraping(server.internal());

    // Scraped every second: the value must arrive well within the bound.
    let deadline = Instant::now() + Duration::from_secs(60);
    let query = r#"footfall_hits_accepted_total{job="footfall"}"#;
    let value = loop {
        let result = prometheus.query(query);
        let value = result
            .first()
            .and_then(|series| series["value"][1].as_str())
            .and_then(|v| v.parse::<f64>().ok());
        if value == Some(HITS as f64) {
            break value;
        }
        assert!(
            Instant::now() < deadline,
            "{query} did not reach {HITS} in Prometheus within 60 s (last: {result:?}); \
             prometheus log:\n{}",
            prometheus.log()
        );
        // Polling Prometheus's API until the next scrape lands.
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(value, Some(HITS as f64));

    // The scrape itself is healthy, and a histogram arrives as buckets Prometheus can
    // compute quantiles from.
    let up = prometheus.query(r#"up{job="footfall"}"#);
    assert_eq!(up.len(), 1, "{up:?}");
    assert_eq!(up[0]["value"][1], "1", "{up:?}");
    let quantile = prometheus.query(
        r#"histogram_quantile(0.99, sum by (le) (footfall_http_request_duration_seconds_bucket{route="/api/v1/hit"}))"#,
    );
    let p99: f64 = quantile
        .first()
        .and_then(|series| series["value"][1].as_str())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no quantile: {quantile:?}"));
    assert!(p99 > 0.0 && p99 <= 10.0, "p99 {p99}");
}

#[test]
fn open_connections_are_gauged_by_listener() {
    let server = start_service();
    let public = r#"footfall_http_connections{listener="public"}"#;
    let internal = r#"footfall_http_connections{listener="internal"}"#;
    // Three keep-alive connections, each having had an answer, so each was accepted.
    let held: Vec<HttpClient> = (0..3)
        .map(|_| {
            let mut client = HttpClient::connect(server.public()).expect("connecting");
            assert_eq!(
                get_status(&mut client, "/api/v1/sites/demo/counts", &[]),
                200
            );
            client
        })
        .collect();
    let metrics = metrics_when(
        &server,
        Duration::from_secs(10),
        "three public connections",
        |m| sample(m, public) == Some(3.0),
    );
    // The scrape's own connection is open while it is answered.
    assert!(
        sample(&metrics, internal).is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
    drop(held);
    metrics_when(
        &server,
        Duration::from_secs(10),
        "the public connections closed",
        |m| sample(m, public) == Some(0.0),
    );
}
