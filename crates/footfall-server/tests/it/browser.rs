//! The widget in a real browser: Debian's Chromium driven through chromedriver
//! (WebDriver), against the real service on a loopback port and a host page on another
//! port with a strict Content-Security-Policy.
//!
//! The WebDriver client is the few W3C commands the test needs, spoken over hyper (already
//! a dependency): a client crate would bring a TLS stack and Unicode segmentation tables
//! to compile for six JSON requests.
//!
//! Chromium and chromedriver must be installed (`scripts/install-test-deps.sh`); when they
//! are missing the test fails and says so, it never skips.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use footfall_server::client_ip::TrustedProxies;
use footfall_server::describe::Lang;
use footfall_server::http::ConnectionLimits;
use footfall_server::sites::{Site, SiteSettings};
use footfall_server::widget::render;
use http::{Request, header};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout};

use crate::support::{
    InProcessService, Server, memory_service_config, spawn_service, store_with_baseline,
};

/// The longest any single wait may take.
pub(crate) const WAIT: Duration = Duration::from_secs(10);
/// The whole test's budget.
const BUDGET: Duration = Duration::from_secs(60);
/// The site the host page embeds; registered for `localhost` only, so the same page
/// served as `127.0.0.1` is a foreign page.
const SITE: &str = "cauke";
/// A desktop Chrome's User-Agent: headless Chromium's own says "HeadlessChrome", which
/// the service rightly drops as a robot.
const UA_ONE: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36";
/// Another browser on the same machine.
const UA_TWO: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36 Edg/142.0.0.0";
/// The address the forwarding proxy reports for its client.
const OTHER_IP: &str = "198.51.100.23";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn widget_in_chromium_counts_renders_and_refuses_foreign_pages() {
    timeout(BUDGET, scenario())
        .await
        .expect("the browser test finishes within 60 s");
}

async fn scenario() {
    let tools = BrowserTools::find();
    let started = Instant::now();
    let fixture = Fixture::start().await;
    let (svc, host) = (fixture.svc, fixture.host);
    let page = |query: &str| format!("http://localhost:{}/?{query}", host.port());

    let driver = ChromeDriver::start(&tools);
    let shots = screenshot_dir();
    let mut hits = 0u64;

    // A page driven by automation (chromedriver's `navigator.webdriver`): the box is
    // drawn, and nothing is counted.
    let robot = driver.automated_session(UA_ONE).await;
    robot.goto(&page("metric-today=pageviews")).await;
    let drawn = robot.wait_for_box().await;
    assert!(!drawn.invalid, "{drawn:?}");
    assert_eq!(drawn.line("today").value, "0", "{drawn:?}");
    robot.assert_no_errors().await;
    robot.close().await;

    // Session A: the box renders with numbers, reloading counts page views. The site is
    // fresh (nothing counted yet): its first reader sees themselves, 1 and not 0.
    let a = driver.session(UA_ONE).await;
    a.goto(&page("metric-today=pageviews&frame=1")).await;
    hits += 1;
    let first = a.wait_for_box().await;
    assert!(!first.invalid, "{first:?}");
    assert_eq!(first.line("today").value, "1", "{first:?}");
    assert_eq!(first.line("online").value, "1", "{first:?}");
    for window in ["online", "today", "week", "total"] {
        let line = first.line(window);
        assert!(
            line.value.chars().all(|c| c.is_ascii_digit() || c == ','),
            "{window}: {line:?}"
        );
        assert!(
            !line.title.is_empty() && line.about == format!(" \u{2013} {}", line.title),
            "{line:?}"
        );
    }
    assert_eq!(first.line("online").label, "\u{2022} Đang online: ");
    assert_eq!(first.line("today").label, "\u{2022} Hôm nay: ");
    assert!(
        first.line("today").title.starts_with("Lượt xem trang"),
        "{first:?}"
    );
    assert_eq!(first.title, "Thống kê truy cập");
    a.assert_trust_badge_natural("hợp lệ").await;
    // The site's number format (comma, as the portal shows today), baseline included.
    assert!(
        first.line("total").value.starts_with("7,289,12"),
        "{first:?}"
    );
    // The iframe page renders the same box, allowed by its frame-ancestors.
    let frame_text = a.frame_text("iframe").await;
    assert!(
        frame_text.contains("Đang online") && frame_text.contains("Tất cả"),
        "{frame_text}"
    );
    wait_for_counts(svc, hits, 1).await;
    // Each reload shows the page views counted before it plus itself.
    for expected in [2, 3] {
        a.refresh().await;
        hits += 1;
        let shown = a.wait_for_box().await;
        assert_eq!(shown.line("today").value, expected.to_string(), "{shown:?}");
        assert_eq!(shown.line("online").value, "1", "{shown:?}");
        wait_for_counts(svc, hits, 1).await;
    }
    a.assert_no_errors().await;

    // Screenshots: light and dark, Vietnamese and English.
    for (query, name) in [
        ("theme=light&lang=vi", "footer-light-vi.png"),
        ("theme=dark&lang=vi&grouping=dot", "footer-dark-vi.png"),
        ("theme=light&lang=en", "footer-light-en.png"),
        ("theme=dark&lang=en", "footer-dark-en.png"),
    ] {
        a.goto(&page(query)).await;
        hits += 1;
        let shown = a.wait_for_box().await;
        if query.contains("grouping=dot") {
            assert!(
                shown.line("total").value.starts_with("7.289.12"),
                "{shown:?}"
            );
        }
        if query.ends_with("en") {
            assert_eq!(shown.title, "Visitor statistics", "{shown:?}");
            assert_eq!(shown.line("today").label, "\u{2022} Today: ");
        }
        a.screenshot_box(&shots.join(name)).await;
        a.assert_no_errors().await;
    }
    wait_for_counts(svc, hits, 1).await;

    // theme=auto follows the system's colour scheme, also when it changes after loading.
    a.emulate_color_scheme("light").await;
    a.goto(&page("theme=auto")).await;
    hits += 1;
    a.wait_for_box().await;
    a.wait_for_box_background(LIGHT_BACKGROUND).await;
    a.emulate_color_scheme("dark").await;
    a.wait_for_box_background(DARK_BACKGROUND).await;
    a.emulate_color_scheme("light").await;
    a.wait_for_box_background(LIGHT_BACKGROUND).await;
    a.assert_no_errors().await;
    wait_for_counts(svc, hits, 1).await;

    // The same page under a hostname the site does not list: no numbers, the notice.
    a.goto(&format!("http://127.0.0.1:{}/", host.port())).await;
    let foreign = a.wait_for_box().await;
    assert!(foreign.invalid, "{foreign:?}");
    assert!(
        foreign.text.contains("không hợp lệ trên tên miền này"),
        "{foreign:?}"
    );
    assert!(
        !foreign.text.chars().any(|c| c.is_ascii_digit()),
        "{foreign:?}"
    );
    a.screenshot_box(&shots.join("footer-foreign-vi.png")).await;
    a.assert_no_errors().await;
    a.close().await;

    // Session B: a fresh profile (no cookies, no storage), same address and browser: the
    // same visitor, since identity is a keyed hash of site, IP and User-Agent.
    let b = driver.session(UA_ONE).await;
    b.goto(&page("")).await;
    hits += 1;
    b.wait_for_box().await;
    wait_for_counts(svc, hits, 1).await;
    b.close().await;

    // Session C: same address, another User-Agent: a new visitor.
    let c = driver.session(UA_TWO).await;
    c.goto(&page("")).await;
    hits += 1;
    c.wait_for_box().await;
    wait_for_counts(svc, hits, 2).await;
    c.close().await;

    // Session D: the first browser's User-Agent from another address: a new visitor.
    let d = driver.session(UA_ONE).await;
    d.goto(&page("via=proxy")).await;
    hits += 1;
    d.wait_for_box().await;
    let counts = wait_for_counts(svc, hits, 3).await;
    assert_eq!(counts["today"]["visits"], 3, "{counts}");
    d.refresh().await;
    hits += 1;
    let shown = d.wait_for_box().await;
    assert_eq!(shown.line("online").value, "3", "{shown:?}");
    assert_eq!(shown.line("today").value, "3", "visits: {shown:?}");
    d.assert_no_errors().await;
    d.close().await;
    wait_for_counts(svc, hits, 3).await;

    drop(driver);
    fixture.stop().await;
    eprintln!(
        "browser test: screenshots in {} ({:?})",
        shots.display(),
        started.elapsed()
    );
}

/// The axe-core release the accessibility checks run: `scripts/install-test-deps.sh`
/// fetches it from the npm registry, checks the tarball against its pinned integrity and
/// caches `axe.min.js` where [`axe_source`] finds it. Change both together.
const AXE_VERSION: &str = "4.14.1";

/// The rule tags enabled on top of axe-core's default rules: WCAG 2.0, 2.1 and 2.2 at
/// levels A and AA, and Deque's best practices.
const AXE_TAGS: &[&str] = &[
    "wcag2a",
    "wcag2aa",
    "wcag21a",
    "wcag21aa",
    "wcag22aa",
    "best-practice",
];

/// The accessibility test's budget: sixteen pages, each audited by axe-core.
const A11Y_BUDGET: Duration = Duration::from_secs(150);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_pass_axe_core_in_light_and_dark_vietnamese_and_english() {
    timeout(A11Y_BUDGET, accessibility())
        .await
        .expect("the accessibility test finishes within its budget");
}

/// Every page a reader meets (the demo page, the embed page, the box and the iframe
/// snippet on a host page, the badges) in both languages and both colour schemes, with
/// reduced motion asked for: zero violations and zero results that need review.
async fn accessibility() {
    let tools = BrowserTools::find();
    axe_source();
    let fixture = Fixture::start().await;
    let svc = format!("http://127.0.0.1:{}", fixture.svc.port());
    let host = format!("http://localhost:{}", fixture.host.port());
    let driver = ChromeDriver::start(&tools);
    // Automation that says so: the boxes are drawn, nothing is counted.
    let session = driver.automated_session(UA_ONE).await;
    let mut findings = Vec::new();
    let mut audited = 0;
    for scheme in ["light", "dark"] {
        session.emulate_media(scheme, "reduce").await;
        for lang in ["vi", "en"] {
            let valid = if lang == "vi" { "hợp lệ" } else { "valid" };
            // The demo page: the real snippet, its box and the trust badge under it.
            session.goto(&format!("{svc}/?lang={lang}")).await;
            session.wait_for_box().await;
            session.assert_trust_badge_natural(valid).await;
            findings.extend(axe_audit(&session, &format!("/?lang={lang} ({scheme})")).await);
            // The embed page on its own.
            let embed = format!("/embed/{SITE}?lang={lang}&theme=auto");
            session.goto(&format!("{svc}{embed}")).await;
            findings.extend(axe_audit(&session, &format!("{embed} ({scheme})")).await);
            // A host page: the box the widget draws and the iframe snippet.
            session
                .goto(&format!("{host}/?lang={lang}&theme=auto&frame=1"))
                .await;
            session.wait_for_box().await;
            session.assert_trust_badge_natural(valid).await;
            session.assert_iframe_fits().await;
            findings.extend(axe_audit(&session, &format!("the box, {lang} ({scheme})")).await);
            session.assert_no_errors().await;
            // The badges, as images with a text alternative on a host page.
            session.goto(&format!("{host}/badges?lang={lang}")).await;
            session
                .poll(
                    "var all = [].slice.call(document.images); \
                     return all.every(function (i) { return i.complete && i.naturalWidth > 0; }) \
                       ? all.length : null;",
                )
                .await;
            findings.extend(axe_audit(&session, &format!("badges, {lang} ({scheme})")).await);
            session.assert_no_errors().await;
            audited += 4;
        }
    }
    session.close().await;
    drop(driver);
    fixture.stop().await;
    assert!(
        findings.is_empty(),
        "axe-core {AXE_VERSION} found {} problem(s) in {audited} pages:\n{}",
        findings.len(),
        findings.join("\n")
    );
    eprintln!("axe-core {AXE_VERSION}: {audited} pages, no violation, nothing to review");
}

/// axe.min.js, as `scripts/install-test-deps.sh` caches it, read once.
fn axe_source() -> &'static str {
    static SOURCE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))
            .expect("HOME or XDG_CACHE_HOME is set");
        let path = cache
            .join("footfall-test-deps")
            .join(format!("axe-core-{AXE_VERSION}"))
            .join("axe.min.js");
        std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "the accessibility checks need axe-core {AXE_VERSION} at {}: {e}; \
                 run scripts/install-test-deps.sh",
                path.display()
            )
        })
    });
    &SOURCE
}

/// Runs axe-core in the page `session` shows, and in each of its frames, with the default
/// rules and those of [`AXE_TAGS`]; when the reader asks for reduced motion (the session
/// emulates `prefers-reduced-motion`), also checks that nothing moves. Returns one line per
/// problem (`label`, the rule, and each node's target and why), empty when the page passes:
/// violations and results that need review both count. Reusable by any page's test:
/// navigate, wait for what the page draws, then audit.
pub(crate) async fn axe_audit(session: &Session, label: &str) -> Vec<String> {
    // Frames on another origin (the iframe snippet's) answer the page's copy only when
    // both allow it.
    let inject = format!(
        "{}\n;axe.configure({{ allowedOrigins: ['<unsafe_all_origins>'] }}); return axe.version;",
        axe_source()
    );
    let version = session.execute(&inject).await;
    assert_eq!(version, AXE_VERSION, "axe-core in {label}");
    // axe-core audits a frame through the copy running inside it.
    let frames = session
        .execute("return window.frames.length;")
        .await
        .as_u64()
        .unwrap_or_default();
    for index in 0..frames {
        session
            .command("POST", "/frame", Some(&json!({ "id": index })))
            .await;
        session.execute(&inject).await;
        session
            .command("POST", "/frame/parent", Some(&json!({})))
            .await;
    }
    let run = format!(
        r#"
var done = arguments[arguments.length - 1];
var rules = {{}};
axe.getRules({tags}).forEach(function (rule) {{
  var retired = rule.tags.indexOf('experimental') >= 0 || rule.tags.indexOf('deprecated') >= 0;
  if (!retired) rules[rule.ruleId] = {{ enabled: true }};
}});
var brief = function (results) {{
  return results.map(function (r) {{
    return {{ id: r.id, impact: r.impact, help: r.help, nodes: r.nodes.map(function (n) {{
      return {{ target: n.target, why: n.failureSummary || '', html: n.html }};
    }}) }};
  }});
}};
axe.run(document, {{ rules: rules, resultTypes: ['violations', 'incomplete'] }}).then(function (r) {{
  var moving = window.matchMedia('(prefers-reduced-motion: reduce)').matches && document.getAnimations
    ? document.getAnimations().length : 0;
  done({{ violations: brief(r.violations), incomplete: brief(r.incomplete),
          passes: r.passes.length, moving: moving }});
}}, function (e) {{ done({{ error: String(e) }}); }});
"#,
        tags = json!(AXE_TAGS),
    );
    let result = session.execute_async(&run).await;
    assert!(result["error"].is_null(), "axe-core in {label}: {result}");
    assert!(
        result["passes"].as_u64().unwrap_or_default() > 0,
        "axe-core ran no rule in {label}: {result}"
    );
    let mut findings = Vec::new();
    for (kind, key) in [("violation", "violations"), ("needs review", "incomplete")] {
        for rule in result[key].as_array().into_iter().flatten() {
            findings.push(format!(
                "{label}: {kind} {} ({}): {}",
                rule["id"].as_str().unwrap_or("?"),
                rule["impact"].as_str().unwrap_or("no impact"),
                rule["help"].as_str().unwrap_or(""),
            ));
            for node in rule["nodes"].as_array().into_iter().flatten() {
                findings.push(format!(
                    "    at {}: {} [{}]",
                    node["target"],
                    node["why"].as_str().unwrap_or("").replace('\n', " "),
                    node["html"]
                        .as_str()
                        .unwrap_or("")
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" "),
                ));
            }
        }
    }
    let moving = result["moving"].as_u64().unwrap_or_default();
    if moving > 0 {
        findings.push(format!(
            "{label}: {moving} animation(s) run although the reader asked for reduced motion"
        ));
    }
    findings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_page_navigations_count_once_per_address() {
    timeout(BUDGET, single_page_site())
        .await
        .expect("the single-page test finishes within 60 s");
}

/// A script that returns the box's today figure, and whether the online line is the
/// element marked at the start, once that figure is at least `pageviews`; else null.
fn today_reaches(pageviews: u64) -> String {
    format!(
        "var box = document.querySelector('[data-footfall]'); \
         var today = box.querySelector('li[data-window=today] strong').textContent; \
         return Number(today.replace(/\\D/g, '')) >= {pageviews} ? {{ today: today, \
           untouched: !!box.querySelector('li[data-window=online]').__untouched }} : null;"
    )
}

/// What a single-page site's router does: three new addresses, the same address again
/// (replaceState), and a hash change. Returns the widget's counted requests so far.
const NAVIGATE: &str = "history.pushState({}, '', '/app/a'); \
    history.pushState({}, '', '/app/b?tab=2'); \
    history.pushState({}, '', '/app/c'); \
    history.replaceState({}, '', '/app/c'); \
    history.pushState({}, '', '/app/c#part'); \
    return window.__hits;";

/// `data-spa`: one page view per client-side navigation to a new path or query (History
/// API and the back button), none for the same address or a hash; without it, only the
/// page load counts. The box takes the new figures in place, replacing only the lines
/// whose figure changed (its list is a polite live region).
async fn single_page_site() {
    let tools = BrowserTools::find();
    let fixture = Fixture::start().await;
    let svc = fixture.svc;
    let app = |query: &str| format!("http://localhost:{}/app?{query}", fixture.host.port());
    let driver = ChromeDriver::start(&tools);
    let s = driver.session(UA_ONE).await;

    // Without the attribute: the page load counts, the navigations do not.
    s.goto(&app("metric-today=pageviews")).await;
    s.wait_for_box().await;
    assert_eq!(s.execute(NAVIGATE).await, 1, "requests without data-spa");
    wait_for_counts(svc, 1, 1).await;

    // With it: the load and three new addresses; the repeat and the hash count nothing.
    s.goto(&app("metric-today=pageviews&spa")).await;
    s.wait_for_box().await;
    let live = s
        .execute(
            "var box = document.querySelector('[data-footfall]'); \
             box.querySelector('li[data-window=online]').__untouched = true; \
             return box.querySelector('ul').getAttribute('aria-live');",
        )
        .await;
    assert_eq!(live, "polite", "the figures are a polite live region");
    assert_eq!(s.execute(NAVIGATE).await, 4, "requests with data-spa");
    let mut pageviews = 1 + 4;
    wait_for_counts(svc, pageviews, 1).await;

    // One more address: the box comes to show every page view counted, in a new line;
    // the online line, unchanged, is the same element (nothing to announce).
    assert_eq!(
        s.execute("history.pushState({}, '', '/app/d'); return window.__hits;")
            .await,
        5
    );
    pageviews += 1;
    let shown = s.poll(&today_reaches(pageviews)).await;
    assert_eq!(shown["untouched"], true, "{shown}");
    wait_for_counts(svc, pageviews, 1).await;

    // The back button: /app/d to /app/c#part is a new address, /app/c#part to /app/c
    // only a hash.
    s.execute("history.back(); return null;").await;
    s.poll("return location.pathname === '/app/c' && location.hash === '#part' ? true : null;")
        .await;
    s.execute("history.back(); return null;").await;
    s.poll("return location.pathname === '/app/c' && location.hash === '' ? true : null;")
        .await;
    assert_eq!(s.execute("return window.__hits;").await, 6);
    pageviews += 1;
    wait_for_counts(svc, pageviews, 1).await;

    // Replies out of order: a navigation's reply reaches the page after the next
    // navigation's (the probe holds it back). Its older figures must not replace the
    // newer ones. The next navigation is sent once the first is counted, so that its
    // reply has the higher figure.
    assert_eq!(
        s.execute(
            "window.__slow = 5000; history.pushState({}, '', '/app/e'); return window.__hits;"
        )
        .await,
        7
    );
    pageviews += 1;
    wait_for_counts(svc, pageviews, 1).await;
    assert_eq!(
        s.execute("history.pushState({}, '', '/app/f'); return window.__hits;")
            .await,
        8
    );
    pageviews += 1;
    s.poll(&today_reaches(pageviews)).await;
    s.poll("return window.__released > 0 ? true : null;").await;
    sleep(Duration::from_millis(500)).await;
    let shown = s.execute(&today_reaches(pageviews)).await;
    assert!(
        !shown.is_null(),
        "the late reply of the earlier navigation replaced the figures: {}",
        s.execute("return document.querySelector('li[data-window=today] strong').textContent;")
            .await
    );
    wait_for_counts(svc, pageviews, 1).await;
    s.assert_no_errors().await;
    s.close().await;
    drop(driver);
    fixture.stop().await;
}

/// The service (memory store; SITE on `localhost` with a trust record and the old
/// counter's total; the demo site, for `/`), a proxy in front of it that presents another
/// client address, and the host page on a port of its own.
struct Fixture {
    /// The service's public listener.
    svc: SocketAddr,
    /// The host page's server.
    host: SocketAddr,
    service: InProcessService,
    _proxy: Server,
    _host: Server,
}

impl Fixture {
    async fn start() -> Fixture {
        // Flushes and count refreshes fast enough for a test, and 127.0.0.1 trusted as a
        // proxy so the forwarding proxy can present a second client address.
        let mut config = memory_service_config(&["--no-demo", "--flush-interval-ms", "20"]);
        let mut settings = SiteSettings::new(SITE, &["localhost"]);
        settings.name = "Cầu Kè".to_owned();
        // A trust record (the demo's: it certifies localhost), so the box shows its badge.
        settings.trust = SiteSettings::demo().trust;
        config.sites = vec![
            Site::from_settings(settings, "").expect("a valid site"),
            Site::from_settings(SiteSettings::demo(), "").expect("the demo site"),
        ];
        config.options.counts_fresh_for = Duration::from_millis(50);
        config.options.trusted_proxies = TrustedProxies::parse("127.0.0.1").expect("valid");
        // The old counter's total, as imported on the portal: the box must group it.
        let store = store_with_baseline(SITE, 7_289_126).await;
        let service = spawn_service(config, store, WAIT).await;
        let svc = service.bound.public;
        // A proxy in front of the service that says its client is OTHER_IP, as nginx would.
        let proxy = Server::start(
            Router::new().fallback(forward).with_state(svc),
            ConnectionLimits::default(),
        )
        .await;
        // The host page, on another port: the web team's site.
        let host = Server::start(
            Router::new()
                .route("/badges", axum::routing::get(badges_page))
                .fallback(host_page)
                .with_state(HostState {
                    svc,
                    proxy: proxy.address,
                }),
            ConnectionLimits::default(),
        )
        .await;
        Fixture {
            svc,
            host: host.address,
            service,
            _proxy: proxy,
            _host: host,
        }
    }

    async fn stop(self) {
        let _ = self.service.stop.send(());
        let _ = timeout(WAIT, self.service.task).await;
    }
}

/// The box's computed background in the light and dark themes (widget.js `THEMES`).
const LIGHT_BACKGROUND: &str = "rgb(255, 255, 255)";
const DARK_BACKGROUND: &str = "rgb(22, 27, 34)";

/// Chromium and chromedriver, or a failure that says how to install them.
pub(crate) struct BrowserTools {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

impl BrowserTools {
    pub(crate) fn find() -> BrowserTools {
        let hint = "install them with scripts/install-test-deps.sh \
                    (apt-get install -y chromium chromium-driver)";
        let find = |names: &[&str]| {
            let path = std::env::var_os("PATH").unwrap_or_default();
            names.iter().find_map(|name| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join(name))
                    .find(|candidate| candidate.is_file())
            })
        };
        let chromium = find(&["chromium", "chromium-browser", "google-chrome"])
            .unwrap_or_else(|| panic!("the browser test needs Chromium, which is missing: {hint}"));
        let chromedriver = find(&["chromedriver"]).unwrap_or_else(|| {
            panic!("the browser test needs chromedriver, which is missing: {hint}")
        });
        BrowserTools {
            chromium,
            chromedriver,
        }
    }
}

/// A chromedriver process on a free loopback port, killed on drop.
pub(crate) struct ChromeDriver {
    child: Child,
    address: SocketAddr,
    chromium: PathBuf,
    profiles: tempfile::TempDir,
}

impl ChromeDriver {
    pub(crate) fn start(tools: &BrowserTools) -> ChromeDriver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        // Its own process group: the browsers it starts join it, so the drop below ends
        // them too, even when a failed test never closed its session.
        let child = Command::new(&tools.chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", tools.chromedriver.display()));
        ChromeDriver {
            child,
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            chromium: tools.chromium.clone(),
            profiles: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    /// A new browser with a fresh profile and the given User-Agent, as a reader's:
    /// chromedriver's `navigator.webdriver` mark is switched off, so the widget counts it.
    pub(crate) async fn session(&self, user_agent: &str) -> Session {
        self.session_with(user_agent, true).await
    }

    /// A browser as chromedriver leaves it (`navigator.webdriver` true): automation.
    async fn automated_session(&self, user_agent: &str) -> Session {
        self.session_with(user_agent, false).await
    }

    async fn session_with(&self, user_agent: &str, hide_automation: bool) -> Session {
        let profile = tempfile::tempdir_in(self.profiles.path()).expect("a profile directory");
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--window-size=1000,800".to_owned(),
            "--force-device-scale-factor=1".to_owned(),
            "--hide-scrollbars".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--user-agent={user_agent}"),
        ];
        if hide_automation {
            args.push("--disable-blink-features=AutomationControlled".to_owned());
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": self.chromium,
                "args": args,
            },
        }}});
        // chromedriver may still be starting: retry the first request until it answers.
        let deadline = Instant::now() + WAIT;
        let reply = loop {
            match try_http(self.address, "POST", "/session", Some(&capabilities)).await {
                Ok(reply) => break reply,
                Err(error) if Instant::now() < deadline => {
                    let _ = error;
                    sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("chromedriver did not answer: {error}"),
            }
        };
        let id = reply["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {reply}"))
            .to_owned();
        Session {
            driver: self.address,
            id,
            _profile: profile,
        }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // The whole group (chromedriver and every browser it started), then chromedriver
        // itself should the group signal not reach it.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser session.
pub(crate) struct Session {
    driver: SocketAddr,
    id: String,
    _profile: tempfile::TempDir,
}

/// What the box shows, read from the DOM.
#[derive(Debug, serde::Deserialize)]
struct Shown {
    title: String,
    text: String,
    invalid: bool,
    lines: HashMap<String, ShownLine>,
}

#[derive(Debug, serde::Deserialize)]
struct ShownLine {
    label: String,
    value: String,
    title: String,
    /// What the figure counts, for screen readers (not drawn).
    about: String,
}

impl Shown {
    fn line(&self, window: &str) -> &ShownLine {
        self.lines
            .get(window)
            .unwrap_or_else(|| panic!("no {window} line in {self:?}"))
    }
}

const READ_BOX: &str = r#"
var box = document.querySelector('[data-footfall]');
if (!box) return null;
var lines = {};
box.querySelectorAll('li[data-window]').forEach(function (li) {
  var n = li.querySelector('strong');
  lines[li.getAttribute('data-window')] = {
    label: li.firstChild.textContent, value: n.textContent,
    title: n.title, about: (n.nextElementSibling || {}).textContent || ''
  };
});
return { title: box.firstChild.textContent, text: box.textContent,
         invalid: !!box.querySelector('[data-invalid]'), lines: lines };
"#;

impl Session {
    pub(crate) async fn command(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let path = format!("/session/{}{path}", self.id);
        let reply = try_http(self.driver, method, &path, body)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        if reply["value"]["error"].is_string() {
            panic!("{method} {path}: {reply}");
        }
        reply["value"].clone()
    }

    pub(crate) async fn goto(&self, url: &str) {
        self.command("POST", "/url", Some(&json!({ "url": url })))
            .await;
    }

    async fn refresh(&self) {
        self.command("POST", "/refresh", Some(&json!({}))).await;
    }

    pub(crate) async fn execute(&self, script: &str) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            Some(&json!({ "script": script, "args": [] })),
        )
        .await
    }

    /// Runs `script` asynchronously: it ends by calling its last argument.
    async fn execute_async(&self, script: &str) -> Value {
        self.command(
            "POST",
            "/execute/async",
            Some(&json!({ "script": script, "args": [] })),
        )
        .await
    }

    /// Makes the page see `scheme` (`light`, `dark`) as the system's colour scheme,
    /// through chromedriver's DevTools passthrough.
    pub(crate) async fn emulate_color_scheme(&self, scheme: &str) {
        self.emulate_media(scheme, "no-preference").await;
    }

    /// Makes the page see `scheme` as the colour scheme and `motion` (`reduce`,
    /// `no-preference`) as the reader's wish about motion, through chromedriver's DevTools
    /// passthrough; it holds across navigations.
    pub(crate) async fn emulate_media(&self, scheme: &str, motion: &str) {
        let params = json!({
            "cmd": "Emulation.setEmulatedMedia",
            "params": { "features": [
                { "name": "prefers-color-scheme", "value": scheme },
                { "name": "prefers-reduced-motion", "value": motion },
            ] },
        });
        self.command("POST", "/goog/cdp/execute", Some(&params))
            .await;
    }

    /// The first iframe on the page (the README's snippet) has no border and is as tall
    /// as the box it shows: no scroll bar, no empty space under the box.
    async fn assert_iframe_fits(&self) {
        let frame = self
            .execute(
                "var f = document.querySelector('iframe'), s = getComputedStyle(f);                  var r = f.getBoundingClientRect();                  return {width: r.width, height: r.height, borders: [s.borderTopWidth,                    s.borderRightWidth, s.borderBottomWidth, s.borderLeftWidth]};",
            )
            .await;
        assert_eq!(
            frame["borders"],
            json!(["0px", "0px", "0px", "0px"]),
            "{frame}"
        );
        let element = self
            .command(
                "POST",
                "/element",
                Some(&json!({ "using": "css selector", "value": "iframe" })),
            )
            .await;
        self.command("POST", "/frame", Some(&json!({ "id": element })))
            .await;
        let inside = self
            .poll(
                "var box = document.querySelector('[data-footfall]');                  if (!box) return null;                  var d = document.documentElement;                  return {bottom: box.getBoundingClientRect().bottom, right:                    box.getBoundingClientRect().right, scrollHeight: d.scrollHeight,                    clientHeight: d.clientHeight, scrollWidth: d.scrollWidth,                    clientWidth: d.clientWidth};",
            )
            .await;
        self.command("POST", "/frame", Some(&json!({ "id": null })))
            .await;
        let number = |value: &Value, name: &str| value[name].as_f64().unwrap_or(f64::NAN);
        let height = number(&frame, "height");
        assert!(
            (number(&inside, "bottom") - height).abs() <= 2.0,
            "the box is {} px tall in a {height} px iframe: {inside}",
            number(&inside, "bottom")
        );
        assert!(
            (number(&inside, "right") - number(&frame, "width")).abs() <= 2.0,
            "the box is {} px wide in a {} px iframe: {inside}",
            number(&inside, "right"),
            number(&frame, "width")
        );
        assert!(
            number(&inside, "scrollHeight") <= number(&inside, "clientHeight")
                && number(&inside, "scrollWidth") <= number(&inside, "clientWidth"),
            "the iframe scrolls: {inside}"
        );
    }

    /// The trust badge under the box is legible: drawn at its natural size (20 px tall,
    /// neither squeezed into the box's width nor stretched to it), and its text
    /// alternative ends with the record's `status`.
    async fn assert_trust_badge_natural(&self, status: &str) {
        let badge = self
            .poll(
                "var i = document.querySelector('[data-footfall] a img'); \
                 if (!i || !i.complete || !i.naturalHeight) return null; \
                 var r = i.getBoundingClientRect(); \
                 return {width: r.width, height: r.height, naturalWidth: i.naturalWidth, \
                         naturalHeight: i.naturalHeight, alt: i.alt};",
            )
            .await;
        let size = |name: &str| badge[name].as_f64().unwrap_or_default();
        assert!(
            size("height") >= 18.0,
            "the badge is drawn {} px tall: {badge}",
            size("height")
        );
        assert!(
            (size("width") - size("naturalWidth")).abs() <= 1.0
                && (size("height") - size("naturalHeight")).abs() <= 1.0,
            "the badge is not drawn at its natural size: {badge}"
        );
        let alt = badge["alt"].as_str().unwrap_or_default();
        assert!(alt.ends_with(status), "{badge}");
    }

    /// Waits (at most 10 s) until the widget's box has the computed `background`.
    async fn wait_for_box_background(&self, background: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let shown = self
                .execute(
                    "var b = document.querySelector('[data-footfall]'); \
                     return b ? getComputedStyle(b).backgroundColor : null;",
                )
                .await;
            if shown == background {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the box's background is {shown}, not {background}, after 10 s"
            );
            sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (at most 10 s) for the widget to draw its box, and reads it.
    /// Runs `script` until it returns something other than null (at most `WAIT`).
    pub(crate) async fn poll(&self, script: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let value = self.execute(script).await;
            if !value.is_null() {
                return value;
            }
            assert!(Instant::now() < deadline, "no answer from {script}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_for_box(&self) -> Shown {
        let deadline = Instant::now() + WAIT;
        loop {
            let value = self.execute(READ_BOX).await;
            if !value.is_null() {
                return serde_json::from_value(value.clone())
                    .unwrap_or_else(|e| panic!("box {value}: {e}"));
            }
            let probe = self.execute("return window.__ff || [];").await;
            assert!(
                Instant::now() < deadline,
                "the box did not appear within 10 s; page errors: {probe}"
            );
            sleep(Duration::from_millis(50)).await;
        }
    }

    /// The text of the first frame matching `selector`, once it has a body.
    async fn frame_text(&self, selector: &str) -> String {
        let element = self
            .command(
                "POST",
                "/element",
                Some(&json!({ "using": "css selector", "value": selector })),
            )
            .await;
        self.command("POST", "/frame", Some(&json!({ "id": element })))
            .await;
        let deadline = Instant::now() + WAIT;
        let text = loop {
            let text = self
                .execute("return document.body ? document.body.textContent : '';")
                .await;
            let text = text.as_str().unwrap_or("").to_owned();
            if !text.trim().is_empty() || Instant::now() >= deadline {
                break text;
            }
            sleep(Duration::from_millis(50)).await;
        };
        self.command("POST", "/frame", Some(&json!({ "id": null })))
            .await;
        text
    }

    /// No script error, CSP violation or console error on the page.
    async fn assert_no_errors(&self) {
        let probe = self.execute("return window.__ff || ['no probe'];").await;
        assert_eq!(probe, json!([]), "page errors or CSP violations");
        // The browser asks the service's pages (`/`, `/embed/…`) for a favicon of its
        // own accord; the service has none.
        let severe = self
            .console_errors(|e| {
                e["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("/favicon.ico ")
            })
            .await;
        assert!(severe.is_empty(), "console errors: {severe:?}");
    }

    /// The browser console's errors (`SEVERE`) since the last call, except those
    /// `expected` says the test expects.
    pub(crate) async fn console_errors(&self, expected: impl Fn(&Value) -> bool) -> Vec<Value> {
        let log = self
            .command("POST", "/se/log", Some(&json!({ "type": "browser" })))
            .await;
        match log {
            Value::Array(entries) => entries
                .into_iter()
                .filter(|e| e["level"] == "SEVERE" && !expected(e))
                .collect(),
            _ => Vec::new(),
        }
    }

    async fn screenshot_box(&self, path: &Path) {
        let element = self
            .command(
                "POST",
                "/element",
                Some(&json!({ "using": "css selector", "value": "[data-footfall]" })),
            )
            .await;
        let id = element
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element reference: {element}"))
            .to_owned();
        let png = self
            .command("GET", &format!("/element/{id}/screenshot"), None)
            .await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or(""))
            .expect("a base64 PNG");
        assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    pub(crate) async fn close(self) {
        let _ = try_http(
            self.driver,
            "DELETE",
            &format!("/session/{}", self.id),
            None,
        )
        .await;
    }
}

/// Polls the counts API (at most 10 s) until it shows `pageviews` page views today and
/// `visitors` visitors online, and returns the counts.
async fn wait_for_counts(svc: SocketAddr, pageviews: u64, visitors: u64) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let counts = try_http(svc, "GET", &format!("/api/v1/sites/{SITE}/counts"), None)
            .await
            .expect("the counts API answers");
        if counts["today"]["pageviews"] == pageviews && counts["online"]["visitors"] == visitors {
            return counts;
        }
        assert!(
            Instant::now() < deadline,
            "expected {pageviews} page views and {visitors} visitors within 10 s; today {}, online {}",
            counts["today"],
            counts["online"]
        );
        sleep(Duration::from_millis(50)).await;
    }
}

/// One JSON request over a fresh HTTP/1.1 connection, bounded in time.
async fn try_http(
    address: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, String> {
    let exchange = async {
        let stream = TcpStream::connect(address)
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, address.to_string())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.map(Value::to_string).unwrap_or_default()))
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| format!("{e}: {bytes:?}"))
    };
    timeout(WAIT, exchange)
        .await
        .map_err(|_| format!("no answer within 10 s from {address}{path}"))?
}

/// Forwards a request to the service with `X-Forwarded-For: OTHER_IP`.
async fn forward(State(svc): State<SocketAddr>, mut request: Request<Body>) -> Response {
    request
        .headers_mut()
        .insert("x-forwarded-for", http::HeaderValue::from_static(OTHER_IP));
    let exchange = async {
        let stream = TcpStream::connect(svc).await.map_err(|e| e.to_string())?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())
    };
    match timeout(WAIT, exchange).await {
        Ok(Ok(response)) => response.map(Body::new).into_response(),
        Ok(Err(error)) => (http::StatusCode::BAD_GATEWAY, error).into_response(),
        Err(_) => http::StatusCode::GATEWAY_TIMEOUT.into_response(),
    }
}

#[derive(Clone)]
struct HostState {
    svc: SocketAddr,
    proxy: SocketAddr,
}

/// The nonce of the test's own probe script: the only inline script the page allows.
const PROBE_NONCE: &str = "footfall-browser-test";

/// The test's probe, first in every host page: collects script errors and CSP
/// violations in `__ff`, and counts the widget's counted requests in `__hits` (a
/// single-page site's navigations must each send one, at once). Setting `__slow` to a
/// number of milliseconds holds the next counted request's reply back that long
/// (`__released` counts the replies let go).
const PROBE: &str = r#"
window.__ff = [];
window.__hits = 0;
window.__slow = 0;
window.__released = 0;
addEventListener('error', function (e) { __ff.push('error: ' + (e.message || e.target && e.target.src)); }, true);
addEventListener('unhandledrejection', function (e) { __ff.push('rejection: ' + e.reason); });
addEventListener('securitypolicyviolation', function (e) { __ff.push('csp: ' + e.violatedDirective + ' ' + e.blockedURI); });
var realFetch = window.fetch;
window.fetch = function (url) {
  var counted = String(url).indexOf('/api/v1/hit?counts=1') >= 0;
  if (counted) __hits += 1;
  var reply = realFetch.apply(this, arguments);
  var slow = counted ? __slow : 0;
  if (!slow) return reply;
  __slow = 0;
  return reply.then(function (r) {
    return new Promise(function (done) {
      setTimeout(function () { __released += 1; done(r); }, slow);
    });
  });
};
"#;

/// The web team's page: the widget's snippet under a strict CSP that allows only the
/// service's origin (and the test's own probe, by nonce, and the iframe snippet's one
/// style attribute, by hash). Query: `lang`, `theme`, `metric-today`, `grouping` become
/// the snippet's `data-*`; `spa` adds `data-spa`; `frame` adds the iframe snippet;
/// `via=proxy` loads the widget through the forwarding proxy.
async fn host_page(
    State(host): State<HostState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let via_proxy = query.get("via").is_some_and(|v| v == "proxy");
    let svc = format!(
        "http://127.0.0.1:{}",
        if via_proxy { host.proxy } else { host.svc }.port()
    );
    let theme = query.get("theme").map_or("light", String::as_str);
    let mut data = String::new();
    for name in ["lang", "theme", "metric-today", "grouping"] {
        if let Some(value) = query.get(name) {
            let value: String = value.chars().filter(char::is_ascii_alphanumeric).collect();
            data.push_str(&format!(" data-{name}=\"{value}\""));
        }
    }
    if query.contains_key("spa") {
        data.push_str(" data-spa");
    }
    let lang = Lang::parse(query.get("lang").map(String::as_str));
    let frame = if query.contains_key("frame") {
        let title = match lang {
            Lang::Vi => "Thống kê truy cập",
            Lang::En => "Visitor statistics",
        };
        render::iframe_snippet(&svc, SITE, lang, title, 4)
    } else {
        String::new()
    };
    let (background, colour) = if theme == "dark" {
        ("#0d1117", "#e6edf3")
    } else {
        ("#ffffff", "#1f2328")
    };
    let csp = format!(
        "default-src 'none'; script-src {svc} 'nonce-{PROBE_NONCE}'; connect-src {svc}; img-src {svc}; frame-src {svc}; style-src-attr 'unsafe-hashes' {border}; base-uri 'none'; form-action 'none'",
        border = render::csp_hash("border:0"),
    );
    let html = format!(
        r#"<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>Cầu Kè</title>
<script nonce="{PROBE_NONCE}">{PROBE}
document.documentElement.style.background = '{background}';
document.documentElement.style.color = '{colour}';
</script></head>
<body>
<main>
<h1>Cầu Kè</h1>
{frame}
</main>
<footer id="stats">
<script async src="{svc}/widget.js" data-site="{SITE}"{data}></script>
</footer>
</body></html>
"#
    );
    (
        [(header::CONTENT_SECURITY_POLICY, csp)],
        axum::response::Html(html),
    )
        .into_response()
}

/// The badges as a web team shows them, with a text alternative: the counter badge
/// and the trust badge (`?lang=vi|en`).
async fn badges_page(
    State(host): State<HostState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let svc = format!("http://127.0.0.1:{}", host.svc.port());
    let lang = Lang::parse(query.get("lang").map(String::as_str)).code();
    let csp = format!(
        "default-src 'none'; script-src 'nonce-{PROBE_NONCE}'; img-src {svc}; base-uri 'none'; form-action 'none'"
    );
    let html = format!(
        r#"<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>Cầu Kè: huy hiệu</title>
<script nonce="{PROBE_NONCE}">{PROBE}</script></head>
<body>
<main>
<h1>Cầu Kè</h1>
<p><img src="{svc}/badge/{SITE}/today.svg?lang={lang}" alt="Lượt truy cập hôm nay"></p>
<p><img src="{svc}/badge/{SITE}/total.svg?lang={lang}&amp;grouping=dot" alt="Tổng lượt truy cập"></p>
<p><img src="{svc}/trust/{SITE}/badge.svg?lang={lang}" alt="Chứng nhận tín nhiệm"></p>
</main>
</body></html>
"#
    );
    (
        [(header::CONTENT_SECURITY_POLICY, csp)],
        axum::response::Html(html),
    )
        .into_response()
}

/// `target/screenshots/`, created.
pub(crate) fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("screenshots");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}
