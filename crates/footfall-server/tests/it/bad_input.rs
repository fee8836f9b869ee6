//! A corpus of hostile and malformed requests, each with the status it must get, run
//! through `oneshot`: none may produce a 5xx or a panic, and every error answer is the
//! one JSON shape (`{"error": {"code", "message"}}`, `application/json`), whichever
//! layer wrote it. A property test then throws random ids, queries and bodies.

use axum::body::Body;
use http::{HeaderValue, StatusCode, header};
use proptest::prelude::*;

use crate::support::*;

/// One bad request and the status it must get.
struct Case {
    name: &'static str,
    request: http::Request<Body>,
    status: StatusCode,
}

fn get(name: &'static str, uri: &str, status: StatusCode) -> Case {
    Case {
        name,
        request: request("GET", uri)
            .header(header::REFERER, "http://localhost/")
            .header(header::USER_AGENT, BROWSER)
            .body(Body::empty())
            .expect("a valid request"),
        status,
    }
}

fn post(name: &'static str, content_type: Option<&str>, body: Vec<u8>, status: StatusCode) -> Case {
    let mut builder = request("POST", "/api/v1/hit")
        .header(header::ORIGIN, "http://localhost")
        .header(header::USER_AGENT, BROWSER);
    if let Some(content_type) = content_type {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    Case {
        name,
        request: builder.body(Body::from(body)).expect("a valid request"),
        status,
    }
}

fn admin(name: &'static str, authorization: Option<HeaderValue>, status: StatusCode) -> Case {
    let mut builder = request("GET", "/admin/v1/sites");
    if let Some(value) = authorization {
        builder = builder.header(header::AUTHORIZATION, value);
    }
    Case {
        name,
        request: builder.body(Body::empty()).expect("a valid request"),
        status,
    }
}

fn counts(id: &str) -> String {
    format!("/api/v1/sites/{id}/counts")
}

const OK: StatusCode = StatusCode::OK;
const NO_CONTENT: StatusCode = StatusCode::NO_CONTENT;
const BAD: StatusCode = StatusCode::BAD_REQUEST;
const NOT_FOUND: StatusCode = StatusCode::NOT_FOUND;
const TOO_LARGE: StatusCode = StatusCode::PAYLOAD_TOO_LARGE;
const UNSUPPORTED: StatusCode = StatusCode::UNSUPPORTED_MEDIA_TYPE;
const UNAUTHORIZED: StatusCode = StatusCode::UNAUTHORIZED;

/// A beacon with an unknown field nested `depth` deep: serde skips unknown fields by
/// descending into them, so this reaches the parser's recursion (a wrongly typed known
/// field would be refused at its first bracket).
fn nested(depth: usize) -> Vec<u8> {
    let mut body = br#"{"site":"demo","extra":"#.to_vec();
    body.extend(std::iter::repeat_n(b'[', depth));
    body.extend(std::iter::repeat_n(b']', depth));
    body.push(b'}');
    body
}

fn public_cases() -> Vec<Case> {
    let long_id = "a".repeat(64);
    let longest_id = "a".repeat(63);
    let huge_param = "x".repeat(3000);
    let mut ten_kb = br#"{"site":"demo","path":""#.to_vec();
    ten_kb.extend(std::iter::repeat_n(b'a', 10 * 1024));
    ten_kb.extend(br#""}"#);
    let text = Some("text/plain");
    let json = Some("application/json");
    vec![
        // Site ids in the path: validated after percent-decoding.
        get("traversal", &counts("..%2F..%2Fetc"), BAD),
        get("dot dot", &counts(".."), BAD),
        get("encoded slash", &counts("demo%2Fcounts"), BAD),
        get("encoded NUL", &counts("demo%00"), BAD),
        get("braces", &counts("%7Bdemo%7D"), BAD),
        get("star", &counts("de*"), BAD),
        get("encoded star", &counts("de%2A"), BAD),
        get("upper case", &counts("DEMO"), BAD),
        get("leading hyphen", &counts("-demo"), BAD),
        get("64 characters", &counts(&long_id), BAD),
        get("63 characters, unknown", &counts(&longest_id), NOT_FOUND),
        get("very long", &counts(&"a".repeat(5000)), BAD),
        get("control character", &counts("de%0Amo"), BAD),
        get("bidi override", &counts("demo%E2%80%AE"), BAD),
        get("vietnamese", &counts("c%E1%BA%A7u-k%C3%A8"), BAD),
        get("invalid UTF-8", &counts("demo%FF"), BAD),
        get("truncated escape", &counts("demo%E2%80"), BAD),
        get("space", &counts("de%20mo"), BAD),
        get("registered", &counts("demo"), OK),
        // Trust routes decode their site segment too.
        get("trust credential, invalid UTF-8", "/trust/%FF.json", BAD),
        get("trust badge, invalid UTF-8", "/trust/%FF/badge.svg", BAD),
        get("trust page, invalid UTF-8", "/trust/%FF", BAD),
        get("trust page, unknown site", "/trust/nowhere", NOT_FOUND),
        get("trailing slash", "/api/v1/sites/demo/counts/", NOT_FOUND),
        get("empty id", "/api/v1/sites//counts", BAD),
        get("history traversal", "/api/v1/sites/..%2Fdemo/history", BAD),
        // History's days.
        get("days=0", "/api/v1/sites/demo/history?days=0", BAD),
        get("days=-1", "/api/v1/sites/demo/history?days=-1", BAD),
        get("days=99999", "/api/v1/sites/demo/history?days=99999", BAD),
        get(
            "days overflow",
            "/api/v1/sites/demo/history?days=99999999999999999999",
            BAD,
        ),
        get("days=abc", "/api/v1/sites/demo/history?days=abc", BAD),
        get("days empty", "/api/v1/sites/demo/history?days=", BAD),
        get(
            "days twice",
            "/api/v1/sites/demo/history?days=1&days=2",
            BAD,
        ),
        get("days=400", "/api/v1/sites/demo/history?days=400", OK),
        get("unknown param", "/api/v1/sites/demo/history?days=3&x=1", OK),
        // The pixel's query.
        get("pixel, no query", "/hit.gif", BAD),
        get("pixel, site twice", "/hit.gif?site=demo&site=caukee", BAD),
        get("pixel, site empty", "/hit.gif?site=", BAD),
        get("pixel, site traversal", "/hit.gif?site=..%2F..%2Fetc", BAD),
        get("pixel, site invalid UTF-8", "/hit.gif?site=demo%FF", BAD),
        get("pixel, site bidi", "/hit.gif?site=%E2%80%AEdemo", BAD),
        get(
            "pixel, path oversized",
            &format!("/hit.gif?site=demo&path={huge_param}"),
            BAD,
        ),
        get(
            "pixel, referrer oversized",
            &format!("/hit.gif?site=demo&referrer={huge_param}"),
            BAD,
        ),
        get("pixel, broken escapes", "/hit.gif?site=demo&path=%%%", OK),
        get("pixel, ok", "/hit.gif?site=demo&path=%2F", OK),
        // Beacon bodies.
        post("empty body", text, Vec::new(), BAD),
        post("whitespace body", text, b"  \n".to_vec(), BAD),
        post("not JSON", text, b"site=demo".to_vec(), BAD),
        post("JSON array", text, b"[]".to_vec(), BAD),
        post("JSON string", text, br#""demo""#.to_vec(), BAD),
        post("JSON null", text, b"null".to_vec(), BAD),
        post("missing site", text, br#"{"path":"/"}"#.to_vec(), BAD),
        post("site is a number", text, br#"{"site":1}"#.to_vec(), BAD),
        post("site is null", text, br#"{"site":null}"#.to_vec(), BAD),
        post(
            "site is an object",
            text,
            br#"{"site":{"id":"demo"}}"#.to_vec(),
            BAD,
        ),
        post(
            "path is a number",
            text,
            br#"{"site":"demo","path":5}"#.to_vec(),
            BAD,
        ),
        post(
            "site twice",
            text,
            br#"{"site":"demo","site":"demo"}"#.to_vec(),
            BAD,
        ),
        post(
            "trailing garbage",
            text,
            br#"{"site":"demo"} x"#.to_vec(),
            BAD,
        ),
        post(
            "two objects",
            text,
            br#"{"site":"demo"}{"site":"demo"}"#.to_vec(),
            BAD,
        ),
        post("truncated", text, br#"{"site":"de"#.to_vec(), BAD),
        post(
            "invalid UTF-8",
            text,
            b"{\"site\":\"de\xffmo\"}".to_vec(),
            BAD,
        ),
        post(
            "NUL in site",
            text,
            br#"{"site":"demo\u0000"}"#.to_vec(),
            BAD,
        ),
        post(
            "bidi in site",
            text,
            br#"{"site":"\u202edemo"}"#.to_vec(),
            BAD,
        ),
        post(
            "lone surrogate",
            text,
            br#"{"site":"\ud800"}"#.to_vec(),
            BAD,
        ),
        post("upper-case site", text, br#"{"site":"DEMO"}"#.to_vec(), BAD),
        post(
            "unknown site",
            text,
            br#"{"site":"nowhere"}"#.to_vec(),
            NOT_FOUND,
        ),
        post("10 KB", text, ten_kb, TOO_LARGE),
        post("nested 10,000 deep", text, nested(10_000), TOO_LARGE),
        post("nested 2,000 deep", text, nested(2_000), NO_CONTENT),
        post(
            "path oversized",
            text,
            format!(r#"{{"site":"demo","path":"{huge_param}"}}"#).into_bytes(),
            BAD,
        ),
        post(
            "ok, text/plain",
            text,
            br#"{"site":"demo"}"#.to_vec(),
            NO_CONTENT,
        ),
        post(
            "ok, application/json",
            json,
            br#"{"site":"demo"}"#.to_vec(),
            NO_CONTENT,
        ),
        post(
            "ok, charset",
            Some("text/plain; charset=UTF-8"),
            br#"{"site":"demo"}"#.to_vec(),
            NO_CONTENT,
        ),
        post(
            "ok, upper case type",
            Some("TEXT/PLAIN"),
            br#"{"site":"demo"}"#.to_vec(),
            NO_CONTENT,
        ),
        post(
            "ok, unknown field",
            text,
            br#"{"site":"demo","x":[1,{"y":2}]}"#.to_vec(),
            NO_CONTENT,
        ),
        // Media types.
        post(
            "no content type",
            None,
            br#"{"site":"demo"}"#.to_vec(),
            UNSUPPORTED,
        ),
        post(
            "form",
            Some("application/x-www-form-urlencoded"),
            b"site=demo".to_vec(),
            UNSUPPORTED,
        ),
        post(
            "multipart",
            Some("multipart/form-data; boundary=x"),
            b"--x--".to_vec(),
            UNSUPPORTED,
        ),
        post(
            "text/html",
            Some("text/html"),
            br#"{"site":"demo"}"#.to_vec(),
            UNSUPPORTED,
        ),
        post(
            "text/plainx",
            Some("text/plainx"),
            br#"{"site":"demo"}"#.to_vec(),
            UNSUPPORTED,
        ),
        post(
            "empty type",
            Some(""),
            br#"{"site":"demo"}"#.to_vec(),
            UNSUPPORTED,
        ),
        post(
            "non-ASCII type",
            Some("text/plain; charset=\u{e1}"),
            br#"{"site":"demo"}"#.to_vec(),
            UNSUPPORTED,
        ),
        // Routes and methods.
        get(
            "GET the beacon",
            "/api/v1/hit",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        get("unknown route", "/wp-login.php", NOT_FOUND),
        get("encoded route", "/api/v1/%73ites/demo/counts", NOT_FOUND),
        Case {
            name: "POST the pixel",
            request: request("POST", "/hit.gif?site=demo")
                .body(Body::empty())
                .unwrap(),
            status: StatusCode::METHOD_NOT_ALLOWED,
        },
        Case {
            name: "body on a read",
            request: request("GET", "/api/v1/sites/demo/counts")
                .body(Body::from(vec![b'x'; 100 * 1024]))
                .unwrap(),
            status: OK,
        },
        Case {
            name: "declared oversized body on a read",
            request: request("GET", "/api/v1/sites/demo/counts")
                .header(header::CONTENT_LENGTH, "10000000")
                .body(Body::from("x"))
                .unwrap(),
            status: TOO_LARGE,
        },
        Case {
            name: "If-None-Match garbage",
            request: request("GET", "/api/v1/sites/demo/counts")
                .header(
                    header::IF_NONE_MATCH,
                    HeaderValue::from_bytes(b"\"\xff\"").unwrap(),
                )
                .body(Body::empty())
                .unwrap(),
            status: OK,
        },
        Case {
            name: "Origin garbage",
            request: request("GET", "/api/v1/sites/demo/counts")
                .header(
                    header::ORIGIN,
                    HeaderValue::from_bytes(b"http://\xfflocalhost").unwrap(),
                )
                .body(Body::empty())
                .unwrap(),
            status: OK,
        },
    ]
}

fn internal_cases() -> Vec<Case> {
    let value = |s: &str| HeaderValue::from_str(s).expect("a header value");
    let mut non_ascii = b"Bearer ".to_vec();
    non_ascii.extend("mật-khẩu-quản-trị".as_bytes());
    vec![
        admin("no header", None, UNAUTHORIZED),
        admin("empty", Some(value("")), UNAUTHORIZED),
        admin("scheme only", Some(value("Bearer")), UNAUTHORIZED),
        admin("scheme and space", Some(value("Bearer ")), UNAUTHORIZED),
        admin("no scheme", Some(value(ADMIN_TOKEN)), UNAUTHORIZED),
        admin(
            "wrong token",
            Some(value("Bearer wrong-token-of-some-length")),
            UNAUTHORIZED,
        ),
        admin(
            "lower-case scheme, wrong",
            Some(value("bearer wrong-token-of-some-length")),
            UNAUTHORIZED,
        ),
        admin(
            "prefix of the token",
            Some(value(&format!("Bearer {}", &ADMIN_TOKEN[..10]))),
            UNAUTHORIZED,
        ),
        admin(
            "token plus more",
            Some(value(&format!("Bearer {ADMIN_TOKEN}x"))),
            UNAUTHORIZED,
        ),
        admin(
            "two tokens",
            Some(value(&format!("Bearer {ADMIN_TOKEN} {ADMIN_TOKEN}"))),
            UNAUTHORIZED,
        ),
        admin(
            "Basic",
            Some(value(
                "Basic YWRtaW46Y29ycmVjdC1ob3JzZS1iYXR0ZXJ5LXN0YXBsZQ==",
            )),
            UNAUTHORIZED,
        ),
        admin(
            "Basic with the token",
            Some(value(&format!("Basic {ADMIN_TOKEN}"))),
            UNAUTHORIZED,
        ),
        admin(
            "very long",
            Some(value(&format!("Bearer {}", "a".repeat(64 * 1024)))),
            UNAUTHORIZED,
        ),
        admin(
            "non-ASCII",
            Some(HeaderValue::from_bytes(&non_ascii).unwrap()),
            UNAUTHORIZED,
        ),
        admin(
            "tab inside the token",
            Some(value("Bearer correct-horse\tbattery-staple")),
            UNAUTHORIZED,
        ),
        admin(
            "obsolete text byte",
            Some(HeaderValue::from_bytes(b"Bearer \xe9\xe9\xe9").unwrap()),
            UNAUTHORIZED,
        ),
        admin(
            "right token",
            Some(value(&format!("Bearer {ADMIN_TOKEN}"))),
            OK,
        ),
        admin(
            "right token, lower-case scheme",
            Some(value(&format!("bearer {ADMIN_TOKEN}"))),
            OK,
        ),
    ]
    .into_iter()
    .chain(admin_paths())
    .collect()
}

/// Every request under `/admin` without a token gets 401, whether or not its route or
/// method exists, so the routes cannot be listed; with a token, 404 and 405 as usual.
fn admin_paths() -> Vec<Case> {
    let token = format!("Bearer {ADMIN_TOKEN}");
    let cases: &[(&str, &str, StatusCode)] = &[
        ("GET", "/admin/v1/../../etc/passwd", NOT_FOUND),
        ("GET", "/admin/v1/nope", NOT_FOUND),
        ("GET", "/admin/v2/sites", NOT_FOUND),
        ("GET", "/admin", NOT_FOUND),
        ("GET", "/admin/", NOT_FOUND),
        ("GET", "/admin/v1", NOT_FOUND),
        ("GET", "/admin/v1/", NOT_FOUND),
        ("DELETE", "/admin/v1/sites", StatusCode::METHOD_NOT_ALLOWED),
        (
            "GET",
            "/admin/v1/salts/rotate",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        ("BREW", "/admin/v1/audit", StatusCode::METHOD_NOT_ALLOWED),
    ];
    let mut all = Vec::new();
    for &(method, uri, with_token) in cases {
        all.push(Case {
            name: "admin path without token",
            request: request(method, uri).body(Body::empty()).unwrap(),
            status: UNAUTHORIZED,
        });
        all.push(Case {
            name: "admin path with token",
            request: request(method, uri)
                .header(header::AUTHORIZATION, token.as_str())
                .body(Body::empty())
                .unwrap(),
            status: with_token,
        });
    }
    // Outside `/admin/`, the usual 404.
    all.push(Case {
        name: "a path that only starts like admin",
        request: request("GET", "/administrator")
            .body(Body::empty())
            .unwrap(),
        status: NOT_FOUND,
    });
    all
}

/// A request body that never arrives: what a client that stops sending looks like.
struct Stalled;

impl hyper::body::Body for Stalled {
    type Data = axum::body::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Pending
    }
}

#[tokio::test]
async fn bad_input_gets_the_expected_4xx_and_never_a_5xx() {
    let harness = Harness::new();
    let public = harness.public();
    let internal = harness.internal();
    let mut failures = Vec::new();
    let all = public_cases()
        .into_iter()
        .map(|case| (&public, case))
        .chain(internal_cases().into_iter().map(|case| (&internal, case)));
    for (app, case) in all {
        let what = format!(
            "{} ({} {:.80})",
            case.name,
            case.request.method(),
            case.request.uri()
        );
        let reply = send(app, case.request).await;
        if reply.status != case.status {
            failures.push(format!(
                "{what}: expected {}, got {}: {:.200}",
                case.status,
                reply.status,
                String::from_utf8_lossy(&reply.body)
            ));
            continue;
        }
        if reply.status == StatusCode::METHOD_NOT_ALLOWED && reply.header(header::ALLOW).is_none() {
            failures.push(format!("{what}: 405 without Allow"));
        }
        if let Err(problem) = json_error_shape(&reply) {
            failures.push(format!("{what}: {problem}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Checks that an error answer (4xx, 5xx) is the one JSON shape, whichever layer wrote
/// it: the handlers, the router (405), the body limit (413) or the timeout (408).
fn json_error_shape(reply: &Reply) -> Result<(), String> {
    if !(reply.status.is_client_error() || reply.status.is_server_error()) {
        return Ok(());
    }
    let body = String::from_utf8_lossy(&reply.body);
    if reply.header(header::CONTENT_TYPE) != Some("application/json") {
        return Err(format!(
            "{} has content type {:?}: {body:.200}",
            reply.status,
            reply.header(header::CONTENT_TYPE)
        ));
    }
    let json: serde_json::Value = serde_json::from_slice(&reply.body)
        .map_err(|e| format!("{} body is not JSON ({e}): {body:.200}", reply.status))?;
    let code = json["error"]["code"].as_str().unwrap_or_default();
    let message = json["error"]["message"].as_str().unwrap_or_default();
    if code.is_empty() || message.is_empty() {
        return Err(format!(
            "{} body is not a JSON error: {body:.200}",
            reply.status
        ));
    }
    Ok(())
}

#[tokio::test]
async fn a_request_past_the_timeout_gets_408_in_the_json_shape() {
    let harness = Harness::new();
    let app = footfall_server::app::public_app(
        harness.state.clone(),
        footfall_server::app::RequestLimits {
            request_timeout: std::time::Duration::from_millis(50),
            ..footfall_server::app::RequestLimits::default()
        },
    );
    let stalled = request("POST", "/api/v1/hit")
        .header(header::CONTENT_TYPE, "text/plain")
        .header(header::ORIGIN, "http://localhost")
        .header(header::USER_AGENT, BROWSER)
        .body(Body::new(Stalled))
        .expect("a valid request");
    let reply = tokio::time::timeout(std::time::Duration::from_secs(10), send(&app, stalled))
        .await
        .expect("the timeout answers");
    assert_eq!(reply.status, StatusCode::REQUEST_TIMEOUT, "{reply:?}");
    json_error_shape(&reply).unwrap();
    assert_eq!(reply.json()["error"]["code"], "request_timeout");
}

#[tokio::test]
async fn deep_json_never_recurses_on_the_stack() {
    // The 4 KiB body limit caps nesting near 4,000 levels (10,000 gets 413 in the
    // corpus). Below it: serde_json skips an unknown field iteratively (its
    // `ignore_value` keeps the brackets in a heap buffer, so depth costs no stack), and a
    // known field is a string, refused at its first bracket. The recursion limit (128)
    // would guard any future field typed as a JSON value.
    let harness = Harness::new();
    let app = harness.public();
    let deep_unknown = nested(2_000);
    assert!(deep_unknown.len() < footfall_server::ingest::MAX_HIT_BODY);
    let mut deep_path = br#"{"site":"demo","path":"#.to_vec();
    deep_path.extend(std::iter::repeat_n(b'[', 3_000));
    for (body, status) in [(deep_unknown, NO_CONTENT), (deep_path, BAD)] {
        let request = request("POST", "/api/v1/hit")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ORIGIN, "http://localhost")
            .header(header::USER_AGENT, BROWSER)
            .body(Body::from(body))
            .expect("a valid request");
        let reply = send(&app, request).await;
        assert_eq!(reply.status, status, "{reply:?}");
    }
    // Unclosed brackets in the unknown field are malformed, and said so.
    let mut unclosed = br#"{"site":"demo","extra":"#.to_vec();
    unclosed.extend(std::iter::repeat_n(b'[', 3_000));
    let reply = send(&app, beacon(std::str::from_utf8(&unclosed).expect("ASCII"))).await;
    assert_eq!(reply.status, BAD);
    assert!(reply.error_message().contains("hit body"));
}

/// Characters that may appear in a URI path or query, and percent escapes of any byte.
const URI_PIECE: &str = "([A-Za-z0-9._~!$'()*+,;:@-]|%[0-9A-Fa-f]{2}|%|/|=|&){0,80}";

fn no_5xx(app: &axum::Router, request: http::Request<Body>) -> Result<(), TestCaseError> {
    let what = format!("{} {}", request.method(), request.uri());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let reply = runtime.block_on(send(app, request));
    prop_assert!(
        !reply.status.is_server_error(),
        "{what}: {} {:?}",
        reply.status,
        String::from_utf8_lossy(&reply.body)
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_site_ids_and_queries_never_get_a_5xx(
        id in URI_PIECE,
        query in URI_PIECE,
        route in 0..3usize,
    ) {
        let harness = Harness::new();
        let uri = match route {
            0 => format!("/api/v1/sites/{id}/counts?{query}"),
            1 => format!("/api/v1/sites/{id}/history?{query}"),
            _ => format!("/hit.gif?site={id}&{query}"),
        };
        // Some generated strings are not URIs at all (a lone '%' in a path is); a real
        // client could not send those past hyper either.
        if let Ok(request) = request("GET", &uri)
            .header(header::REFERER, "http://localhost/")
            .header(header::USER_AGENT, BROWSER)
            .body(Body::empty())
        {
            no_5xx(&harness.public(), request)?;
        }
    }

    #[test]
    fn random_beacon_bodies_never_get_a_5xx(
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..6000),
            "\\{\"site\":\"[a-z0-9\\\\\"\\-]{0,70}\"(,\"path\":\"[^\"]{0,100}\")?\\}"
                .prop_map(String::into_bytes),
            any::<String>().prop_map(String::into_bytes),
        ],
        content_type in prop_oneof![
            Just("text/plain".to_owned()),
            Just("application/json".to_owned()),
            "[ -~]{0,40}",
        ],
    ) {
        let harness = Harness::new();
        let mut builder = request("POST", "/api/v1/hit")
            .header(header::ORIGIN, "http://localhost")
            .header(header::USER_AGENT, BROWSER);
        if let Ok(value) = HeaderValue::from_str(&content_type) {
            builder = builder.header(header::CONTENT_TYPE, value);
        }
        no_5xx(&harness.public(), builder.body(Body::from(body)).expect("a valid request"))?;
    }
}
