//! The widget routes through the router: the script and its manifest, the
//! counts-returning hit, heartbeats, the embed page, badges, the demo page.

use std::io::Read as _;

use axum::body::Body;
use footfall::{Metric, Window};
use http::{StatusCode, header};

use crate::support::{BROWSER, Harness, recorded, request, send};

fn get(uri: &str, headers: &[(&str, &str)]) -> http::Request<Body> {
    let mut builder = request("GET", uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::empty()).unwrap()
}

fn counted_beacon(body: &str, origin: &str, user_agent: &str) -> http::Request<Body> {
    request("POST", "/api/v1/hit?counts=1")
        .header(header::CONTENT_TYPE, "text/plain;charset=UTF-8")
        .header(header::ORIGIN, origin)
        .header(header::USER_AGENT, user_agent)
        .body(Body::from(body.to_owned()))
        .unwrap()
}

#[tokio::test]
async fn the_script_is_versioned_cached_compressed_and_described() {
    let harness = Harness::new();
    let app = harness.public();
    let manifest = send(&app, get("/widget.json", &[])).await;
    assert_eq!(manifest.status, StatusCode::OK);
    let manifest = manifest.json();
    let url = manifest["url"].as_str().expect("a url").to_owned();
    assert!(url.starts_with("/widget.") && url.ends_with(".js"), "{url}");
    assert!(
        manifest["integrity"]
            .as_str()
            .is_some_and(|i| i.starts_with("sha384-")),
        "{manifest}"
    );

    let plain = send(&app, get("/widget.js", &[])).await;
    assert_eq!(plain.status, StatusCode::OK);
    assert_eq!(
        plain.header(header::CONTENT_TYPE),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(
        plain.header(header::CACHE_CONTROL),
        Some("public, max-age=300")
    );
    assert_eq!(plain.header(header::ACCESS_CONTROL_ALLOW_ORIGIN), Some("*"));
    assert_eq!(plain.header(header::CONTENT_ENCODING), None);
    assert_eq!(manifest["bytes"], plain.body.len());

    let versioned = send(&app, get(&url, &[("accept-encoding", "gzip, br")])).await;
    assert_eq!(versioned.status, StatusCode::OK);
    assert_eq!(
        versioned.header(header::CACHE_CONTROL),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(versioned.header(header::CONTENT_ENCODING), Some("gzip"));
    assert_eq!(versioned.header(header::VARY), Some("Accept-Encoding"));
    assert_eq!(manifest["gzip_bytes"], versioned.body.len());
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&versioned.body[..])
        .read_to_end(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, plain.body);

    let etag = plain.header(header::ETAG).expect("an etag").to_owned();
    let again = send(&app, get("/widget.js", &[("if-none-match", &etag)])).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());

    let other = send(&app, get("/widget.0000000000000000.js", &[])).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
}

#[test]
fn a_counted_hit_answers_with_the_counts_and_drops_stay_secret() {
    let ((), counters) = recorded(|| async {
        let mut harness = Harness::new();
        let app = harness.public();
        let body = r#"{"site":"demo","path":"/"}"#;

        let reply = send(&app, counted_beacon(body, "http://localhost:8080", BROWSER)).await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(
            reply.header(header::ACCESS_CONTROL_ALLOW_ORIGIN),
            Some("http://localhost:8080")
        );
        assert_eq!(reply.header(header::CACHE_CONTROL), Some("no-store"));
        let json = reply.json();
        assert_eq!(json["valid"], true, "{json}");
        assert_eq!(json["site"], "demo");
        assert!(json["today"]["visits"].is_u64(), "{json}");
        assert_eq!(json["footer"]["title"]["vi"], "Thống kê truy cập");
        assert_eq!(json["footer"]["labels"]["week"]["vi"], "Trong tuần");
        assert!(json["definitions"]["today.visits"]["description"]["en"].is_string());
        // The counts were read before this page view was written; the answer says what
        // it adds for its reader, new to everything on a fresh site.
        assert_eq!(
            json["reader"],
            serde_json::json!({"pageviews": 1, "visits": 1, "visitors": 1, "online": 1}),
            "{json}"
        );
        // The same reader again a moment later brings a page view only.
        let again = send(&app, counted_beacon(body, "http://localhost:8080", BROWSER)).await;
        assert_eq!(
            again.json()["reader"],
            serde_json::json!({"pageviews": 1, "visits": 0, "visitors": 0, "online": 0})
        );
        // `"record": false` (a page driven by automation): the answer, nothing counted.
        let unrecorded = send(
            &app,
            counted_beacon(
                r#"{"site":"demo","path":"/","record":false}"#,
                "http://localhost:8080",
                BROWSER,
            ),
        )
        .await;
        let unrecorded = unrecorded.json();
        assert_eq!(unrecorded["valid"], true, "{unrecorded}");
        assert!(unrecorded.get("reader").is_none(), "{unrecorded}");

        // A robot gets the very same kind of answer, and is not counted.
        let robot = send(
            &app,
            counted_beacon(body, "http://localhost:8080", "Googlebot/2.1"),
        )
        .await;
        assert_eq!(robot.status, StatusCode::OK, "{robot:?}");
        assert_eq!(robot.json()["valid"], true);

        // A page on a hostname the site does not list: the verdict, no numbers.
        let foreign = send(&app, counted_beacon(body, "https://evil.example", BROWSER)).await;
        assert_eq!(foreign.status, StatusCode::OK);
        assert_eq!(
            foreign.header(header::ACCESS_CONTROL_ALLOW_ORIGIN),
            Some("https://evil.example")
        );
        let json = foreign.json();
        assert_eq!(json["valid"], false, "{json}");
        assert!(
            json.get("today").is_none() && json.get("online").is_none(),
            "{json}"
        );

        // A heartbeat from a page left open (another visitor: another User-Agent) keeps
        // its visitor online and adds no page view, visit or visitor of the day.
        let heartbeat = send(
            &app,
            request("POST", "/api/v1/hit")
                .header(header::CONTENT_TYPE, "text/plain")
                .header(header::ORIGIN, "http://localhost:8080")
                .header(
                    header::USER_AGENT,
                    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) Safari/605.1.15",
                )
                .body(Body::from(r#"{"site":"demo","path":"/","heartbeat":true}"#))
                .unwrap(),
        )
        .await;
        assert_eq!(heartbeat.status, StatusCode::NO_CONTENT);

        harness.flush().await;
        let snapshot = harness.snapshot("demo").await;
        assert_eq!(snapshot.value(Window::Today, Metric::Pageviews), 2);
        assert_eq!(snapshot.value(Window::Today, Metric::Visits), 1);
        assert_eq!(snapshot.value(Window::Today, Metric::Visitors), 1);
        assert_eq!(snapshot.value(Window::Online, Metric::Visitors), 2);
    });
    // The two page views and the heartbeat.
    assert_eq!(counters.accepted(), 3);
    assert_eq!(counters.dropped("bot"), 1);
    assert_eq!(counters.dropped("foreign_origin"), 1);
}

#[tokio::test]
async fn the_embed_page_is_framed_only_by_the_site_and_counts_nothing() {
    let mut harness = Harness::new();
    let app = harness.public();
    let reply = send(
        &app,
        get(
            "/embed/demo?lang=en&theme=dark",
            &[("referer", "http://localhost:8080/tin-tuc")],
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(
        reply.header(header::CONTENT_TYPE),
        Some("text/html; charset=utf-8")
    );
    let csp = reply.header(header::CONTENT_SECURITY_POLICY).unwrap();
    assert!(
        csp.contains("frame-ancestors http://localhost:* https://localhost:* http://127.0.0.1:* https://127.0.0.1:*"),
        "{csp}"
    );
    assert!(!csp.contains("script-src"), "{csp}");
    let html = String::from_utf8(reply.body.to_vec()).unwrap();
    assert!(html.contains("<html lang=\"en\">"), "{html}");
    assert!(html.contains("• Online now: <strong"), "{html}");
    assert!(!html.contains("<script"), "{html}");
    // A page of its own: one main landmark, named by the one heading (so it stays a
    // distinct landmark inside a host page's iframe); what a figure counts is text for
    // screen readers, not an ARIA label on <strong>, which the role does not allow.
    assert_eq!(html.matches("<main").count(), 1, "{html}");
    assert!(
        html.contains("<main class=\"ff\" data-footfall=\"demo\" aria-labelledby=\"ff-title\">\n<h1 id=\"ff-title\">Visitor statistics</h1>"),
        "{html}"
    );
    assert!(!html.contains("aria-label="), "{html}");
    assert!(html.contains("<span class=\"sr\"> \u{2013} "), "{html}");
    // The inline style is the one the CSP allows by hash.
    let style = html
        .split("<style>")
        .nth(1)
        .and_then(|rest| rest.split("</style>").next())
        .expect("a style element");
    assert!(
        csp.contains(&footfall_server::widget::render::csp_hash(style)),
        "{csp}"
    );

    let foreign = send(
        &app,
        get("/embed/demo", &[("referer", "https://evil.example/")]),
    )
    .await;
    let html = String::from_utf8(foreign.body.to_vec()).unwrap();
    assert!(html.contains("không hợp lệ trên tên miền này"), "{html}");
    assert!(!html.contains("<strong"), "{html}");

    let unknown = send(&app, get("/embed/nosuchsite", &[])).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(harness.flush().await.written, 0);
}

#[tokio::test]
async fn badges_are_live_escaped_bound_to_the_site_and_count_nothing() {
    let mut harness = Harness::new();
    let app = harness.public();
    // An image proxy (README embedding): no Referer, numbers shown.
    let camo = send(
        &app,
        get(
            "/badge/demo/total.svg?lang=en",
            &[("user-agent", "github-camo (876de43e)")],
        ),
    )
    .await;
    assert_eq!(camo.status, StatusCode::OK, "{camo:?}");
    assert_eq!(
        camo.header(header::CONTENT_TYPE),
        Some("image/svg+xml; charset=utf-8")
    );
    assert_eq!(
        camo.header(header::CACHE_CONTROL),
        Some("no-cache, max-age=0")
    );
    let svg = String::from_utf8(camo.body.to_vec()).unwrap();
    assert!(
        svg.contains("role=\"img\"") && svg.contains("<title>All time: 0"),
        "{svg}"
    );
    let etag = camo.header(header::ETAG).expect("an etag").to_owned();
    let again = send(
        &app,
        get("/badge/demo/total.svg?lang=en", &[("if-none-match", &etag)]),
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);

    let foreign = send(
        &app,
        get(
            "/badge/demo/today.svg",
            &[("referer", "https://evil.example/")],
        ),
    )
    .await;
    let svg = String::from_utf8(foreign.body.to_vec()).unwrap();
    assert!(
        svg.contains(">không hợp lệ trên tên miền này</text>"),
        "{svg}"
    );

    let label = send(
        &app,
        get(
            "/badge/demo/online.svg?label=%3Cscript%3Ex%3C%2Fscript%3E",
            &[],
        ),
    )
    .await;
    assert_eq!(label.status, StatusCode::OK);
    let svg = String::from_utf8(label.body.to_vec()).unwrap();
    assert!(
        !svg.contains("<script>") && svg.contains("&lt;script&gt;x"),
        "{svg}"
    );

    for (uri, status) in [
        ("/badge/demo/year.svg", StatusCode::NOT_FOUND),
        ("/badge/demo/today.png", StatusCode::NOT_FOUND),
        (
            "/badge/demo/online.svg?metric=visits",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/badge/demo/today.svg?metric=clicks",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/badge/demo/today.svg?label=%E2%80%AEevil",
            StatusCode::BAD_REQUEST,
        ),
        ("/badge/nosuchsite/today.svg", StatusCode::NOT_FOUND),
    ] {
        let reply = send(&app, get(uri, &[])).await;
        assert_eq!(reply.status, status, "{uri}: {reply:?}");
    }
    let long = format!("/badge/demo/today.svg?label={}", "x".repeat(41));
    assert_eq!(
        send(&app, get(&long, &[])).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(harness.flush().await.written, 0);
}

#[tokio::test]
async fn the_demo_page_loads_the_versioned_script_from_its_own_origin() {
    let harness = Harness::new();
    let app = harness.public();
    let manifest = send(&app, get("/widget.json", &[])).await.json();
    let reply = send(&app, get("/?lang=en", &[("host", "127.0.0.1:8080")])).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let csp = reply.header(header::CONTENT_SECURITY_POLICY).unwrap();
    assert!(
        csp.contains("script-src 'self'; connect-src 'self'; img-src 'self'"),
        "{csp}"
    );
    let html = String::from_utf8(reply.body.to_vec()).unwrap();
    let tag = format!(
        "<script async src=\"{}\" integrity=\"{}\" crossorigin=\"anonymous\" data-site=\"demo\" data-lang=\"en\"></script>",
        manifest["url"].as_str().unwrap(),
        manifest["integrity"].as_str().unwrap()
    );
    assert!(html.contains(&tag), "{html}");
    assert!(html.contains("http://127.0.0.1:8080/widget."), "{html}");

    // A hostile Host header is not reflected.
    let reply = send(&app, get("/", &[("host", "x\"><script>")])).await;
    let html = String::from_utf8(reply.body.to_vec()).unwrap();
    assert!(html.contains("footfall.example.vn") && !html.contains("x\"><script>"));
}

/// The README's iframe snippet is the one the demo page shows: no border, a title, and
/// the height of the default four lines (`render::iframe_snippet`).
#[test]
fn the_readme_shows_the_fitted_iframe_snippet() {
    let readme = include_str!("../../../../README.md");
    let snippet = footfall_server::widget::render::iframe_snippet(
        "https://footfall.example.vn",
        "caukee",
        footfall_server::describe::Lang::Vi,
        "Thống kê truy cập",
        4,
    );
    assert!(readme.contains(&snippet), "README.md should show {snippet}");
    assert!(!readme.contains("height=\"190\""));
}
