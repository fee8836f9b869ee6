//! The statistics page in Chromium: a webmaster signs in through the form on the
//! internal listener, and the page renders under its CSP in light and dark, Vietnamese
//! and English, without overflowing a phone's width; screenshots go to
//! `target/screenshots/stats-{light,dark}-{vi,en}.png`.

use std::time::Duration;

use base64::Engine as _;
use footfall::SiteId;
use footfall_server::admin::tokens::{Scope, TokenGrant};
use footfall_server::sites::{Site, SiteSettings};
use serde_json::{Value, json};
use tokio::time::timeout;

use crate::browser::{BrowserTools, ChromeDriver, Session, WAIT, axe_audit, screenshot_dir};
use crate::support::{InProcessService, memory_service_config, spawn_service, store_with_baseline};

const SITE: &str = "caukee";
const TOKEN: &str = "caukee-webmaster-browser-token";
const UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_page_in_chromium_signs_in_and_renders_light_and_dark() {
    timeout(Duration::from_secs(60), scenario())
        .await
        .expect("the browser test finishes within 60 s");
}

async fn element(session: &Session, selector: &str) -> String {
    let found = session
        .command(
            "POST",
            "/element",
            Some(&json!({ "using": "css selector", "value": selector })),
        )
        .await;
    found
        .as_object()
        .and_then(|o| o.values().next())
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no {selector}: {found}"))
        .to_owned()
}

async fn scenario() {
    let tools = BrowserTools::find();
    let mut config = memory_service_config(&[
        "--no-demo",
        "--flush-interval-ms",
        "20",
        "--counts-ttl",
        "1",
    ]);
    let mut settings = SiteSettings::new(SITE, &["caukee.travinh.gov.vn"]);
    settings.name = "Cầu Kè".to_owned();
    config.sites = vec![Site::from_settings(settings, "").expect("a valid site")];
    config.options.admin_token_grants = vec![TokenGrant::new(
        TOKEN,
        Scope::Sites(vec![SiteId::new(SITE).expect("a valid id")]),
    )];
    let store = store_with_baseline(SITE, 7_289_126).await;
    let InProcessService {
        bound,
        stop,
        task: service,
    } = spawn_service(config, store, WAIT).await;
    let base = format!("http://127.0.0.1:{}", bound.internal.port());
    // Some readers today, so the page has figures to draw.
    for (n, reader) in ["Firefox/140.0", "Chrome/142.0", "Edg/142.0", "Safari/605.1"]
        .iter()
        .enumerate()
    {
        for _ in 0..=n {
            hit(
                bound.public,
                &format!("Mozilla/5.0 (X11; Linux x86_64) {reader}"),
            )
            .await;
        }
    }

    let driver = ChromeDriver::start(&tools);
    let browser = driver.session(UA).await;
    // Not signed in: the form. Sign in as a webmaster would.
    browser.goto(&format!("{base}/stats/{SITE}")).await;
    let input = element(&browser, "#token").await;
    // axe-core: zero violations and nothing left for review, on the form and the page.
    let mut findings = axe_audit(&browser, "the sign-in form").await;
    browser
        .command(
            "POST",
            &format!("/element/{input}/value"),
            Some(&json!({ "text": TOKEN })),
        )
        .await;
    let button = element(&browser, "button[type=submit]").await;
    browser
        .command(
            "POST",
            &format!("/element/{button}/click"),
            Some(&json!({})),
        )
        .await;
    browser
        .poll("return document.querySelector('svg.chart') ? true : null;")
        .await;
    // The session is not readable by script (HttpOnly), yet it keeps the page open.
    assert_eq!(browser.execute("return document.cookie;").await, "");

    let shots = screenshot_dir();
    for scheme in ["light", "dark"] {
        browser.emulate_color_scheme(scheme).await;
        for lang in ["vi", "en"] {
            browser
                .goto(&format!("{base}/stats/{SITE}?lang={lang}&days=30"))
                .await;
            let shown = browser
                .poll(
                    "var s = document.querySelector('svg.chart'); if (!s) return null; \
                     return {lang: document.documentElement.lang, \
                             background: getComputedStyle(document.body).backgroundColor, \
                             scripts: document.scripts.length, \
                             cards: document.querySelectorAll('.card').length, \
                             today: document.querySelectorAll('.card .value')[1].textContent, \
                             signOut: !!document.querySelector('form[action$=\"sign-out\"]'), \
                             styled: getComputedStyle(document.querySelector('.cards')).display, \
                             baseline: (document.querySelector('.baseline') || {}).textContent || ''};",
                )
                .await;
            assert_eq!(shown["lang"], lang, "{shown}");
            assert!(shown["today"].as_str().unwrap_or("0") != "0", "{shown}");
            assert_eq!(shown["scripts"], 0, "{shown}");
            assert_eq!(shown["cards"], 4, "{shown}");
            assert_eq!(shown["signOut"], true, "{shown}");
            // The hashed stylesheet applied (a CSP that blocked it would leave `block`).
            assert_eq!(shown["styled"], "grid", "{shown}");
            let background = if scheme == "dark" {
                "rgb(13, 17, 23)"
            } else {
                "rgb(246, 248, 250)"
            };
            assert_eq!(shown["background"], background, "{shown}");
            assert!(
                shown["baseline"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("7,289,126"),
                "{shown}"
            );
            let worst = browser.execute(LOWEST_CONTRAST).await;
            assert!(
                worst["ratio"].as_f64().unwrap_or(0.0) >= 4.5,
                "{scheme} {lang}: text below 4.5:1: {worst}"
            );
            findings
                .extend(axe_audit(&browser, &format!("/stats/{SITE}, {lang} ({scheme})")).await);
            let bytes = full_page_png(&browser).await;
            assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
            let path = shots.join(format!("stats-{scheme}-{lang}.png"));
            std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
    assert!(
        findings.is_empty(),
        "axe-core found {} problem(s):\n{}",
        findings.len(),
        findings.join("\n")
    );
    // No console error (a CSP violation is one). Network errors are expected: the
    // sign-in form comes with a 401, and there is no favicon.
    let severe = browser.console_errors(|e| e["source"] == "network").await;
    assert!(severe.is_empty(), "console errors: {severe:?}");

    // Printed: no navigation or forms, black on white.
    let print = json!({
        "cmd": "Emulation.setEmulatedMedia",
        "params": { "media": "print" },
    });
    browser
        .command("POST", "/goog/cdp/execute", Some(&print))
        .await;
    let printed = browser
        .execute(
            "return {nav: getComputedStyle(document.querySelector('nav')).display, \
                     form: getComputedStyle(document.querySelector('form')).display, \
                     color: getComputedStyle(document.body).color, \
                     background: getComputedStyle(document.body).backgroundColor};",
        )
        .await;
    assert_eq!(
        printed,
        json!({"nav": "none", "form": "none", "color": "rgb(0, 0, 0)", "background": "rgb(255, 255, 255)"})
    );
    let screen = json!({ "cmd": "Emulation.setEmulatedMedia", "params": { "media": "" } });
    browser
        .command("POST", "/goog/cdp/execute", Some(&screen))
        .await;

    // A phone's width: nothing wider than the screen.
    let phone = json!({
        "cmd": "Emulation.setDeviceMetricsOverride",
        "params": { "width": 320, "height": 640, "deviceScaleFactor": 1, "mobile": true },
    });
    browser
        .command("POST", "/goog/cdp/execute", Some(&phone))
        .await;
    browser.goto(&format!("{base}/stats/{SITE}?lang=vi")).await;
    let widths = browser
        .poll(
            "return document.querySelector('svg.chart') ? \
             {page: document.documentElement.scrollWidth, view: document.documentElement.clientWidth} : null;",
        )
        .await;
    assert_eq!(widths["view"], 320, "{widths}");
    assert!(
        widths["page"].as_u64() <= widths["view"].as_u64(),
        "the page overflows a phone: {widths}"
    );
    std::fs::write(
        shots.join("stats-phone-vi.png"),
        full_page_png(&browser).await,
    )
    .expect("a screenshot");
    browser.close().await;
    drop(driver);
    let _ = stop.send(());
    let _ = timeout(WAIT, service).await;
}

/// A screenshot of the whole page, beyond the window's height (DevTools
/// `Page.captureScreenshot`, through chromedriver).
async fn full_page_png(session: &Session) -> Vec<u8> {
    let size = session
        .execute(
            "return {width: document.documentElement.scrollWidth, \
                     height: document.documentElement.scrollHeight};",
        )
        .await;
    let params = json!({
        "cmd": "Page.captureScreenshot",
        "params": {
            "format": "png",
            "captureBeyondViewport": true,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        },
    });
    let shot = session
        .command("POST", "/goog/cdp/execute", Some(&params))
        .await;
    base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap_or(""))
        .expect("a base64 PNG")
}

/// One page view of the site, as a browser's beacon sends it.
async fn hit(public: std::net::SocketAddr, user_agent: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = format!(r#"{{"site":"{SITE}","path":"/"}}"#);
    let request = format!(
        "POST /api/v1/hit HTTP/1.1\r\nHost: {public}\r\nOrigin: https://caukee.travinh.gov.vn\r\n\
         User-Agent: {user_agent}\r\nContent-Type: text/plain;charset=UTF-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(public)
        .await
        .expect("the public listener accepts");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("the hit is sent");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
}

/// The text of the page with the lowest contrast against what is drawn behind it (WCAG
/// relative luminance of the computed colours; the nearest opaque background up the
/// tree), as `{ratio, text, color, background}`.
const LOWEST_CONTRAST: &str = r#"
function rgb(c) { var m = c.match(/[\d.]+/g); return m ? m.map(Number) : [0, 0, 0, 0]; }
function lum(c) {
  return [0, 1, 2].map(function (i) {
    var v = c[i] / 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  }).reduce(function (s, v, i) { return s + v * [0.2126, 0.7152, 0.0722][i]; }, 0);
}
function behind(el) {
  for (; el; el = el.parentElement) {
    var b = rgb(getComputedStyle(el).backgroundColor);
    if (b.length < 4 || b[3] > 0) return b;
  }
  return [255, 255, 255];
}
var worst = { ratio: 99 };
var walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
while (walker.nextNode()) {
  var node = walker.currentNode, el = node.parentElement;
  if (!node.textContent.trim() || !el || el.closest('svg,details:not([open])')) continue;
  var style = getComputedStyle(el);
  if (style.visibility === 'hidden' || style.display === 'none') continue;
  var fg = rgb(style.color), bg = behind(el);
  var a = lum(fg), b = lum(bg);
  var ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  if (ratio < worst.ratio) {
    worst = { ratio: ratio, text: node.textContent.trim().slice(0, 40), color: style.color, background: String(bg) };
  }
}
return worst;
"#;
