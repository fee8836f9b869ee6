//! Every public route and every error through `oneshot`: hits counted end to end, each
//! drop reason answered like an accepted hit and counted by reason, the error bodies,
//! caching and CORS of the read API, forwarding headers, and the internal listener.

use axum::body::Body;
use footfall::{Metric, Window};
use footfall_server::state::Options;
use http::{StatusCode, header};

use crate::support::*;

const GIF_MAGIC: &[u8] = b"GIF89a";

fn pixel(query: &str) -> http::request::Builder {
    request("GET", &format!("/hit.gif?{query}"))
        .header(header::REFERER, "http://localhost:8080/tin-tuc/bai-1")
        .header(header::USER_AGENT, BROWSER)
}

#[test]
fn a_beacon_and_a_pixel_are_counted_end_to_end() {
    let ((), counters) = recorded(|| async {
        let mut harness = Harness::new();
        let app = harness.public();

        let reply = send(&app, beacon(r#"{"site":"demo","path":"/","referrer":""}"#)).await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{reply:?}");
        assert!(reply.body.is_empty());

        let reply = send(
            &app,
            pixel("site=demo&path=%2Ftin-tuc%2Fbai-1")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(reply.header(header::CONTENT_TYPE), Some("image/gif"));
        assert!(reply.body.starts_with(GIF_MAGIC));
        assert!(
            reply
                .header(header::CACHE_CONTROL)
                .is_some_and(|v| v.contains("no-store")),
            "{reply:?}"
        );

        // Nothing reaches the store before the flush: the request path never waits on it.
        assert_eq!(
            harness
                .snapshot("demo")
                .await
                .value(Window::Total, Metric::Pageviews),
            0
        );
        let totals = harness.flush().await;
        assert_eq!(totals.written, 2, "{totals:?}");
        let snapshot = harness.snapshot("demo").await;
        assert_eq!(snapshot.value(Window::Today, Metric::Pageviews), 2);
        assert_eq!(snapshot.value(Window::Today, Metric::Visits), 1);
        assert_eq!(snapshot.value(Window::Today, Metric::Visitors), 1);
        assert_eq!(snapshot.value(Window::Online, Metric::Visitors), 1);

        // The same numbers through the read API.
        let reply = send(
            &app,
            request("GET", "/api/v1/sites/demo/counts")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        let json = reply.json();
        assert_eq!(json["site"], "demo");
        assert_eq!(json["today"]["pageviews"], 2, "{json}");
        assert_eq!(json["today"]["visits"], 1, "{json}");
        assert_eq!(json["total"]["pageviews"], 2, "{json}");
        assert_eq!(json["online"]["visitors"], 1, "{json}");
        assert_eq!(json["stale"], false);
        assert!(json["definitions"]["today.visits"]["description"]["vi"].is_string());

        let reply = send(
            &app,
            request("GET", "/api/v1/sites/demo/history?days=7")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        let json = reply.json();
        let days = json["days"].as_array().expect("days");
        assert_eq!(days.len(), 7, "{json}");
        let today = days
            .iter()
            .find(|d| d["date"] == "2026-03-02")
            .unwrap_or_else(|| panic!("no 2026-03-02 in {json}"));
        assert_eq!(today["pageviews"], 2, "{json}");
        assert_eq!(today["visits"], 1, "{json}");
        assert!(reply.header(header::CACHE_CONTROL).is_some());
    });
    assert_eq!(counters.accepted(), 2);
    assert_eq!(counters.get("footfall_hits_dropped_total", &[]), 0);
}

/// A request that a filter drops and the reason it must be counted under.
struct DropCase {
    reason: &'static str,
    /// For robots, the kind `footfall_robot_hits_total` counts them under.
    robot_kind: Option<&'static str>,
    request: fn() -> http::Request<Body>,
}

fn beacon_with(site: &str, headers: &[(&str, &str)]) -> http::Request<Body> {
    beacon_from(PEER, site, headers)
}

/// [`beacon_with`], from `peer`.
fn beacon_from(peer: &str, site: &str, headers: &[(&str, &str)]) -> http::Request<Body> {
    let mut builder =
        request_from("POST", "/api/v1/hit", peer).header(header::CONTENT_TYPE, "text/plain");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(Body::from(format!(r#"{{"site":"{site}","path":"/"}}"#)))
        .unwrap()
}

const LOCAL: (&str, &str) = ("origin", "http://localhost:8080");
const UA: (&str, &str) = ("user-agent", BROWSER);

#[test]
fn every_filter_drops_silently_and_counts_its_reason() {
    let cases = [
        DropCase {
            reason: "head",
            robot_kind: None,
            request: || {
                request("HEAD", "/hit.gif?site=demo")
                    .header(header::REFERER, "http://localhost/")
                    .header(header::USER_AGENT, BROWSER)
                    .body(Body::empty())
                    .unwrap()
            },
        },
        DropCase {
            reason: "prefetch",
            robot_kind: None,
            request: || beacon_with("demo", &[LOCAL, UA, ("sec-purpose", "prefetch")]),
        },
        DropCase {
            reason: "prefetch",
            robot_kind: None,
            request: || {
                pixel("site=demo")
                    .header("purpose", "prefetch")
                    .body(Body::empty())
                    .unwrap()
            },
        },
        DropCase {
            reason: "bot",
            robot_kind: Some("search"),
            request: || {
                beacon_with(
                    "demo",
                    &[
                        LOCAL,
                        (
                            "user-agent",
                            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                        ),
                    ],
                )
            },
        },
        DropCase {
            reason: "bot",
            robot_kind: Some("empty"),
            request: || beacon_with("demo", &[LOCAL]),
        },
        DropCase {
            reason: "foreign_origin",
            robot_kind: None,
            request: || beacon_with("demo", &[("origin", "https://evil.example"), UA]),
        },
        DropCase {
            reason: "foreign_origin",
            robot_kind: None,
            request: || beacon_with("demo", &[UA]),
        },
        DropCase {
            reason: "foreign_origin",
            robot_kind: None,
            request: || {
                request("GET", "/hit.gif?site=demo")
                    .header(header::REFERER, "http://localhost.evil.example/")
                    .header(header::USER_AGENT, BROWSER)
                    .body(Body::empty())
                    .unwrap()
            },
        },
        DropCase {
            reason: "do_not_track",
            robot_kind: None,
            request: || {
                beacon_with(
                    DNT_SITE,
                    &[
                        ("origin", "https://caukee.travinh.gov.vn"),
                        UA,
                        ("dnt", "1"),
                    ],
                )
            },
        },
        DropCase {
            reason: "do_not_track",
            robot_kind: None,
            request: || {
                beacon_with(
                    DNT_SITE,
                    &[
                        ("origin", "https://caukee.travinh.gov.vn"),
                        UA,
                        ("sec-gpc", "1"),
                    ],
                )
            },
        },
    ];
    for (index, case) in cases.iter().enumerate() {
        let request = (case.request)();
        let is_pixel = request.uri().path() == "/hit.gif";
        let is_head = request.method() == http::Method::HEAD;
        let (totals, counters) = recorded(|| async {
            let mut harness = Harness::new();
            let reply = send(&harness.public(), request).await;
            if is_pixel {
                assert_eq!(reply.status, StatusCode::OK, "case {index}: {reply:?}");
                assert_eq!(reply.header(header::CONTENT_TYPE), Some("image/gif"));
                assert_eq!(reply.body.starts_with(GIF_MAGIC), !is_head);
            } else {
                assert_eq!(
                    reply.status,
                    StatusCode::NO_CONTENT,
                    "case {index}: {reply:?}"
                );
                assert!(reply.body.is_empty());
            }
            let totals = harness.flush().await;
            for site in ["demo", DNT_SITE] {
                let snapshot = harness.snapshot(site).await;
                assert_eq!(
                    snapshot.value(Window::Total, Metric::Pageviews),
                    0,
                    "case {index}: counts moved"
                );
            }
            totals
        });
        assert_eq!(
            totals.written, 0,
            "case {index} ({}): {totals:?}",
            case.reason
        );
        assert_eq!(counters.accepted(), 0, "case {index} ({})", case.reason);
        assert_eq!(
            counters.dropped(case.reason),
            1,
            "case {index} ({}): {counters:?}",
            case.reason
        );
        assert_eq!(
            counters.get("footfall_hits_dropped_total", &[]),
            1,
            "case {index}: one reason only: {counters:?}"
        );
        // Robots are also counted by kind (a bounded label), and nothing else is.
        let robots = counters.get("footfall_robot_hits_total", &[]);
        assert_eq!(robots, u64::from(case.reason == "bot"), "case {index}");
        if let Some(kind) = case.robot_kind {
            assert_eq!(
                counters.get("footfall_robot_hits_total", &[("kind", kind)]),
                1,
                "case {index}: {counters:?}"
            );
        }
    }
}

#[test]
fn over_the_rate_limit_hits_are_dropped_and_counted() {
    let (totals, counters) = recorded(|| async {
        let mut harness = Harness::with_options(Options {
            rate_limit_per_minute: 2,
            ..test_options()
        });
        let app = harness.public();
        for _ in 0..3 {
            let reply = send(&app, beacon(r#"{"site":"demo"}"#)).await;
            assert_eq!(reply.status, StatusCode::NO_CONTENT);
        }
        // Another address has its own budget.
        let other = beacon_from("198.51.100.20:4000", "demo", &[LOCAL, UA]);
        assert_eq!(send(&app, other).await.status, StatusCode::NO_CONTENT);
        let totals = harness.flush().await;
        let snapshot = harness.snapshot("demo").await;
        assert_eq!(snapshot.value(Window::Today, Metric::Pageviews), 3);
        totals
    });
    assert_eq!(totals.written, 3);
    assert_eq!(counters.accepted(), 3);
    assert_eq!(counters.dropped("rate_limited"), 1, "{counters:?}");
}

/// A script that changes its User-Agent on every hit makes a new visitor each time: past
/// its address's hourly budget of new visitors those hits are dropped (`visitor_budget`),
/// while known visitors from the address, and other addresses, still count.
#[test]
fn new_visitors_past_an_address_budget_are_dropped_and_counted() {
    let (totals, counters) = recorded(|| async {
        let mut harness = Harness::with_options(Options {
            visitor_budget_per_hour: 3,
            ..test_options()
        });
        let app = harness.public();
        let from = |peer: &str, n: usize| {
            let ua =
                format!("Mozilla/5.0 (X11; Linux x86_64; rv:{n}.0) Gecko/20100101 Firefox/{n}.0");
            beacon_from(peer, "demo", &[LOCAL, ("user-agent", ua.as_str())])
        };
        for n in 0..10 {
            let reply = send(&app, from("203.0.113.9:4000", 120 + n)).await;
            // The same answer whatever became of the hit.
            assert_eq!(reply.status, StatusCode::NO_CONTENT);
        }
        // A visitor already seen is not new: the first one comes back and counts.
        assert_eq!(
            send(&app, from("203.0.113.9:4000", 120)).await.status,
            StatusCode::NO_CONTENT
        );
        // Another address has a budget of its own.
        assert_eq!(
            send(&app, from("198.51.100.7:4000", 120)).await.status,
            StatusCode::NO_CONTENT
        );
        let totals = harness.flush().await;
        let snapshot = harness.snapshot("demo").await;
        assert_eq!(snapshot.value(Window::Today, Metric::Pageviews), 5);
        assert_eq!(snapshot.value(Window::Today, Metric::Visitors), 4);
        totals
    });
    assert_eq!(totals.written, 5);
    assert_eq!(counters.dropped("visitor_budget"), 7, "{counters:?}");
}

#[test]
fn past_the_client_bound_new_addresses_are_refused_untracked_and_known_ones_still_count() {
    let (_, counters) = recorded(|| async {
        let mut harness = Harness::with_options(Options {
            rate_limit_max_clients: 2,
            ..test_options()
        });
        let app = harness.public();
        let from = |peer: &str| beacon_from(peer, "demo", &[LOCAL, UA]);
        for index in 0..50 {
            let reply = send(&app, from(&format!("198.51.100.{index}:4000"))).await;
            // Every answer is the same: a refused hit is not revealed to its sender.
            assert_eq!(reply.status, StatusCode::NO_CONTENT);
        }
        assert_eq!(
            harness.state.limiter.len(),
            2,
            "48 more addresses must not grow the limiter past its bound"
        );
        // A client it already tracks keeps its budget while the limiter is full.
        let reply = send(&app, from("198.51.100.0:4001")).await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT);
        harness.flush().await;
        let snapshot = harness.snapshot("demo").await;
        assert_eq!(snapshot.value(Window::Today, Metric::Pageviews), 3);
    });
    assert_eq!(counters.accepted(), 3);
    assert_eq!(counters.dropped("rate_limited"), 48, "{counters:?}");
}

#[test]
fn a_full_buffer_drops_and_counts_without_blocking() {
    let (totals, counters) = recorded(|| async {
        let mut options = test_options();
        options.buffer.capacity = 1;
        let mut harness = Harness::with_options(options);
        let app = harness.public();
        // The flusher is not running: the first hit fills the buffer.
        for _ in 0..3 {
            let reply = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                send(&app, beacon(r#"{"site":"demo"}"#)),
            )
            .await
            .expect("a full buffer never blocks a request");
            assert_eq!(reply.status, StatusCode::NO_CONTENT);
        }
        harness.flush().await
    });
    assert_eq!(totals.written, 1);
    assert_eq!(counters.accepted(), 1);
    assert_eq!(counters.dropped("buffer_full"), 2, "{counters:?}");
}

#[test]
fn hits_after_shutdown_and_for_removed_sites_are_dropped_and_counted() {
    let (totals, counters) = recorded(|| async {
        let mut harness = Harness::new();
        let app = harness.public();
        // Accepted, but the site is removed before the flush.
        assert_eq!(
            send(&app, beacon(r#"{"site":"demo"}"#)).await.status,
            StatusCode::NO_CONTENT
        );
        assert!(
            harness
                .state
                .sites
                .remove(&footfall::SiteId::new("demo").unwrap())
        );
        let totals = harness.flush().await;
        // After the flusher stopped, hits are refused but still answered alike.
        let late = beacon_with(DNT_SITE, &[("origin", "https://caukee.travinh.gov.vn"), UA]);
        assert_eq!(send(&app, late).await.status, StatusCode::NO_CONTENT);
        totals
    });
    assert_eq!(totals.written, 0, "{totals:?}");
    assert_eq!(counters.accepted(), 1);
    assert_eq!(counters.dropped("unknown_site"), 1, "{counters:?}");
    assert_eq!(counters.dropped("shutting_down"), 1, "{counters:?}");
}

#[tokio::test]
async fn client_mistakes_get_a_json_error_naming_the_problem() {
    let harness = Harness::new();
    let app = harness.public();
    let cases: Vec<(http::Request<Body>, StatusCode, &str)> = vec![
        (beacon("{not json"), StatusCode::BAD_REQUEST, "hit body"),
        (beacon(r#"{"path":"/"}"#), StatusCode::BAD_REQUEST, "site"),
        (
            beacon(r#"{"site":"Demo"}"#),
            StatusCode::BAD_REQUEST,
            "site id",
        ),
        (
            beacon(r#"{"site":"nowhere"}"#),
            StatusCode::NOT_FOUND,
            "nowhere",
        ),
        (
            request("POST", "/api/v1/hit")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from("site=demo"))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "application/x-www-form-urlencoded",
        ),
        (
            request("POST", "/api/v1/hit")
                .body(Body::from(r#"{"site":"demo"}"#))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "no content type",
        ),
        (
            pixel("path=/").body(Body::empty()).unwrap(),
            StatusCode::BAD_REQUEST,
            "site",
        ),
        (
            pixel("site=nowhere").body(Body::empty()).unwrap(),
            StatusCode::NOT_FOUND,
            "nowhere",
        ),
        (
            request("GET", "/api/v1/sites/nowhere/counts")
                .body(Body::empty())
                .unwrap(),
            StatusCode::NOT_FOUND,
            "nowhere",
        ),
        (
            request("GET", "/api/v1/sites/demo/history?days=0")
                .body(Body::empty())
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "days",
        ),
        (
            request("GET", "/no/such/thing")
                .body(Body::empty())
                .unwrap(),
            StatusCode::NOT_FOUND,
            "no such route",
        ),
    ];
    for (request, status, names) in cases {
        let what = format!("{} {}", request.method(), request.uri());
        let reply = send(&app, request).await;
        assert_eq!(reply.status, status, "{what}: {reply:?}");
        let message = reply.error_message();
        assert!(
            message.contains(names),
            "{what}: {message:?} should name {names:?}"
        );
    }
}

#[tokio::test]
async fn counts_carry_an_etag_cache_control_and_cors_for_registered_origins_only() {
    let harness = Harness::new();
    let app = harness.public();
    let counts = |origin: Option<&str>, if_none_match: Option<&str>| {
        let mut builder = request("GET", "/api/v1/sites/demo/counts");
        if let Some(origin) = origin {
            builder = builder.header(header::ORIGIN, origin);
        }
        if let Some(tag) = if_none_match {
            builder = builder.header(header::IF_NONE_MATCH, tag);
        }
        builder.body(Body::empty()).unwrap()
    };

    let first = send(&app, counts(Some("http://localhost:8080"), None)).await;
    assert_eq!(first.status, StatusCode::OK);
    let etag = first.header(header::ETAG).expect("an ETag").to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong ETag: {etag}"
    );
    let cache_control = first.header(header::CACHE_CONTROL).expect("Cache-Control");
    assert!(cache_control.contains("max-age="), "{cache_control}");
    assert!(
        cache_control.contains("stale-while-revalidate"),
        "{cache_control}"
    );
    assert_eq!(
        first.header(header::ACCESS_CONTROL_ALLOW_ORIGIN),
        Some("http://localhost:8080")
    );
    assert!(
        first
            .header(header::VARY)
            .is_some_and(|v| v.to_ascii_lowercase().contains("origin"))
    );

    // Revalidation: the same tag, alone or in a list, gets 304 with no body.
    for tag in [etag.clone(), format!("\"other\", {etag}")] {
        let reply = send(&app, counts(None, Some(&tag))).await;
        assert_eq!(reply.status, StatusCode::NOT_MODIFIED, "{tag}");
        assert!(reply.body.is_empty());
        assert_eq!(reply.header(header::ETAG), Some(etag.as_str()));
        assert!(reply.header(header::CACHE_CONTROL).is_some());
    }
    let reply = send(&app, counts(None, Some("\"stale-tag\""))).await;
    assert_eq!(reply.status, StatusCode::OK);

    // CORS only for the site's own hostnames.
    for foreign in [
        "https://evil.example",
        "http://localhost.evil.example",
        "null",
        "caukee.travinh.gov.vn",
        "https://caukee.travinh.gov.vn",
    ] {
        let reply = send(&app, counts(Some(foreign), None)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(
            reply.header(header::ACCESS_CONTROL_ALLOW_ORIGIN),
            None,
            "{foreign}"
        );
    }
    let history = request("GET", "/api/v1/sites/caukee/history")
        .header(header::ORIGIN, "https://caukee.travinh.gov.vn")
        .body(Body::empty())
        .unwrap();
    let reply = send(&app, history).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header(header::ACCESS_CONTROL_ALLOW_ORIGIN),
        Some("https://caukee.travinh.gov.vn")
    );
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let mut harness = Harness::new();
    let app = harness.public();
    let hit = |peer: &str, forwarded_for: &str| {
        beacon_from(
            peer,
            "caukee",
            &[
                ("origin", "https://caukee.travinh.gov.vn"),
                UA,
                ("x-forwarded-for", forwarded_for),
            ],
        )
    };
    // Behind the trusted proxy (10.0.0.0/8): two clients, two visitors on caukee.
    send(&app, hit("10.0.0.5:40000", "198.51.100.1")).await;
    send(&app, hit("10.0.0.5:40001", "198.51.100.2")).await;
    // Not a proxy: its forwarding header is the client's own words; one visitor on demo.
    for forwarded in ["198.51.100.1", "198.51.100.2"] {
        let reply = send(
            &app,
            beacon_from(
                "203.0.113.50:1234",
                "demo",
                &[LOCAL, UA, ("x-forwarded-for", forwarded)],
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT);
    }
    let totals = harness.flush().await;
    assert_eq!(totals.written, 4);
    let caukee = harness.snapshot(DNT_SITE).await;
    assert_eq!(caukee.value(Window::Today, Metric::Pageviews), 2);
    assert_eq!(caukee.value(Window::Today, Metric::Visitors), 2);
    assert_eq!(caukee.value(Window::Today, Metric::Visits), 2);
    let demo = harness.snapshot("demo").await;
    assert_eq!(demo.value(Window::Today, Metric::Pageviews), 2);
    assert_eq!(demo.value(Window::Today, Metric::Visitors), 1);
    assert_eq!(demo.value(Window::Today, Metric::Visits), 1);
}

#[tokio::test]
async fn the_internal_listener_answers_health_and_guards_the_admin_api() {
    let harness = Harness::new();
    let app = harness.internal();
    let get = |uri: &str| request("GET", uri).body(Body::empty()).unwrap();

    let reply = send(&app, get("/livez")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = send(&app, get("/readyz")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["status"], "ready");

    let reply = send(&app, get("/admin/v1/sites")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.header(header::WWW_AUTHENTICATE), Some("Bearer"));
    assert!(reply.error_message().contains("bearer token"));

    let authorised = request("GET", "/admin/v1/sites")
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let reply = send(&app, authorised).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["sites"].as_array().map(Vec::len), Some(2));

    let reply = send(&app, get("/metrics/nope")).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.error_message().contains("no such route"));
}

#[test]
fn requests_are_counted_by_route_template_method_and_status_class() {
    let (_, counters) = recorded(|| async {
        let harness = Harness::new();
        let app = harness.public();
        for site in ["demo", "caukee", "demo"] {
            let uri = format!("/api/v1/sites/{site}/counts");
            let reply = send(&app, request("GET", &uri).body(Body::empty()).unwrap()).await;
            assert_eq!(reply.status, StatusCode::OK);
        }
        let reply = send(&app, request("GET", "/nope/1").body(Body::empty()).unwrap()).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        let reply = send(
            &app,
            request("BREW", "/nope/2").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
    });
    let requests = |labels: &[(&str, &str)]| counters.get("footfall_http_requests_total", labels);
    let counts = "/api/v1/sites/{site}/counts";
    assert_eq!(
        requests(&[("route", counts), ("method", "GET"), ("status", "2xx")]),
        3,
        "{counters:?}"
    );
    assert_eq!(
        requests(&[("route", "unmatched"), ("method", "GET"), ("status", "4xx")]),
        1
    );
    assert_eq!(
        requests(&[
            ("route", "unmatched"),
            ("method", "other"),
            ("status", "4xx")
        ]),
        1
    );
    assert_eq!(requests(&[]), 5, "no request uncounted or counted twice");
    assert_eq!(
        requests(&[("route", "/nope/1")]) + requests(&[("site", "demo")]),
        0,
        "raw paths and sites never become labels"
    );
}
