//! The admin API's tests: through the internal router, as a client sees it.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use footfall::clock::ManualClock;
use footfall::keys;
use footfall::store::{AnyStore, MemoryStore, Read, Store};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

use super::*;
use crate::app::{RequestLimits, internal_app};
use crate::registry::SyncOutcome;
use crate::sites::Sites;
use crate::state::Options;

const TOKEN: &str = "first-admin-token-5f1c0e9a";
const ROTATED: &str = "second-admin-token-77b2d4";

/// One service instance over `store`: its state and its internal router.
fn instance(store: &Arc<AnyStore>) -> (AppState, Router) {
    let clock = Arc::new(ManualClock::new("2026-11-30T17:00:00Z".parse().unwrap()));
    // Instances sharing a store share the salt secret, as deployments must.
    let options = Options {
        admin_tokens: vec![TOKEN.to_owned(), ROTATED.to_owned()],
        salt_secrets: Some(
            footfall::salts::SaltSecrets::parse("admin tests: a salt secret of 32+ bytes").unwrap(),
        ),
        ..Options::default()
    };
    let (state, _flusher) =
        AppState::new(Arc::clone(store), clock, Sites::default(), options).unwrap();
    let app = internal_app(state.clone(), RequestLimits::default());
    (state, app)
}

async fn send_request(app: &Router, request: axum::http::Request<Body>) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Sends `body` (if any) as JSON with `token` (if any).
async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (StatusCode, Value) {
    let mut builder = axum::http::Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if body.is_some() {
        builder = builder.header(header::CONTENT_TYPE, "application/json");
    }
    let request = builder
        .body(Body::from(body.unwrap_or_default().to_owned()))
        .unwrap();
    send_request(app, request).await
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

fn settings_json(id: &str, hostname: &str) -> String {
    serde_json::to_string(&SiteSettings::new(id, &[hostname])).unwrap()
}

/// `PUT /admin/v1/sites/{id}` of a site with one `hostname`, as `token`.
async fn put_site(app: &Router, token: &str, id: &str, hostname: &str) -> (StatusCode, Value) {
    let uri = format!("/admin/v1/sites/{id}");
    send(
        app,
        "PUT",
        &uri,
        Some(token),
        Some(&settings_json(id, hostname)),
    )
    .await
}

async fn stored_bytes(store: &AnyStore, key: &footfall::keys::Key) -> Option<Vec<u8>> {
    store
        .get(key, "2026-11-30T17:00:00Z".parse().unwrap())
        .await
        .unwrap()
}

fn fingerprint(token: &str) -> String {
    // Computed here independently: SHA-256 of the token's SHA-256, first 4 bytes.
    let digest = Sha256::digest(token.as_bytes());
    hex::encode(&Sha256::digest(digest)[..4])
}

#[test]
fn tokens_match_exactly() {
    let tokens = AdminTokens::new(&["old-token".into(), " new-token ".into(), "".into()]);
    assert!(tokens.accepts("old-token"));
    assert!(tokens.accepts("new-token"));
    for wrong in [
        "",
        "old-toke",
        "old-token ",
        "OLD-TOKEN",
        "new-token\0",
        "x",
    ] {
        assert!(!tokens.accepts(wrong), "{wrong:?}");
    }
    assert!(AdminTokens::new(&[]).is_empty());
    assert!(!format!("{tokens:?}").contains("token\""));
    assert_eq!(
        tokens
            .identify("new-token")
            .unwrap()
            .fingerprint
            .to_string(),
        fingerprint("new-token")
    );
    assert_ne!(tokens.identify("old-token"), tokens.identify("new-token"));
}

#[tokio::test]
async fn every_route_requires_a_configured_token() {
    let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
    let (_state, app) = instance(&store);
    for route in ROUTES {
        let (uri, body) = example(route, "demo");
        let method = route.method.as_str();
        for token in [
            None,
            Some("wrong-token"),
            Some(""),
            Some("first-admin-token"),
        ] {
            let (status, response) = send(&app, method, &uri, token, body.as_deref()).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri} {token:?}");
            assert_eq!(response["error"]["code"], "unauthorized");
        }
    }
    let request = axum::http::Request::get("/admin/v1/sites")
        .header(header::AUTHORIZATION, format!("Basic {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        send_request(&app, request).await.0,
        StatusCode::UNAUTHORIZED
    );
    for token in [TOKEN, ROTATED] {
        let (status, body) = send(&app, "GET", "/admin/v1/sites", Some(token), None).await;
        assert_eq!(status, StatusCode::OK, "{token}");
        assert_eq!(body["sites"], json!([]));
    }
}

#[tokio::test]
async fn sites_are_created_read_replaced_and_deleted() {
    let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
    let (state, app) = instance(&store);
    // The body may omit the id: the path names the site.
    let (status, body) = send(
        &app,
        "PUT",
        "/admin/v1/sites/caukee",
        Some(TOKEN),
        Some(r#"{"name": "Cầu Kè", "hostnames": ["caukee.travinh.gov.vn"]}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["created"], true);
    assert_eq!(body["changed"], true);
    assert_eq!(body["site"]["id"], "caukee");
    assert_eq!(body["site"]["time_zone"], "Asia/Ho_Chi_Minh");
    assert_eq!(body["registry_version"], 1);
    let id = SiteId::new("caukee").unwrap();
    assert!(
        state.sites.get(&id).is_some(),
        "served at once by this instance"
    );

    let (status, body) = send(&app, "GET", "/admin/v1/sites/caukee", Some(TOKEN), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["site"]["name"], "Cầu Kè");

    // The same settings again (id now given, and equal): nothing changes.
    let same = r#"{"id": "caukee", "name": "Cầu Kè", "hostnames": ["caukee.travinh.gov.vn"]}"#;
    let (status, body) = send(
        &app,
        "PUT",
        "/admin/v1/sites/caukee",
        Some(TOKEN),
        Some(same),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["created"].clone(), body["changed"].clone()),
        (json!(false), json!(false))
    );
    assert_eq!(body["registry_version"], 1);

    let replaced =
        r#"{"name": "Cầu Kè", "hostnames": ["caukee.travinh.gov.vn"], "week": "rolling"}"#;
    let (status, body) = send(
        &app,
        "PUT",
        "/admin/v1/sites/caukee",
        Some(ROTATED),
        Some(replaced),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["changed"], true);
    assert_eq!(body["registry_version"], 2);
    assert_eq!(state.sites.get(&id).unwrap().settings.week, "rolling");

    let (status, body) = send(&app, "GET", "/admin/v1/sites", Some(TOKEN), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["sites"][0]["id"], "caukee");
    assert_eq!(body["registry_version"], 2);

    // Counters survive deletion.
    let baseline = keys::baseline(&id, Metric::Visits);
    store.set(&baseline, b"42", None).await.unwrap();
    let (status, body) = send(&app, "DELETE", "/admin/v1/sites/caukee", Some(TOKEN), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["deleted"], true);
    assert_eq!(body["counters_kept"], true);
    assert!(body["note"].as_str().unwrap().contains("stay in the store"));
    assert!(state.sites.get(&id).is_none());
    assert_eq!(
        stored_bytes(&store, &baseline).await.as_deref(),
        Some(&b"42"[..])
    );

    for (method, uri) in [
        ("GET", "/admin/v1/sites/caukee"),
        ("DELETE", "/admin/v1/sites/caukee"),
    ] {
        let (status, body) = send(&app, method, uri, Some(TOKEN), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}");
        assert!(message(&body).contains("caukee"), "{body}");
    }
}

#[tokio::test]
async fn put_site_refuses_bad_bodies_with_a_clear_message() {
    let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
    let (state, app) = instance(&store);
    let uri = "/admin/v1/sites/caukee";
    let valid = settings_json("caukee", "caukee.vn");
    let cases: Vec<(String, StatusCode, &str)> = vec![
        ("{\"hostnames\": [".to_owned(), StatusCode::BAD_REQUEST, "invalid JSON"),
        ("[1, 2]".to_owned(), StatusCode::BAD_REQUEST, "JSON object"),
        (
            r#"{"hostnames": ["caukee.vn"], "time_zone": "Mars/Olympus"}"#.to_owned(),
            StatusCode::BAD_REQUEST,
            "time_zone",
        ),
        (
            r#"{"hostnames": ["caukee.vn"], "online_window_minutes": 31}"#.to_owned(),
            StatusCode::BAD_REQUEST,
            "online_window_minutes",
        ),
        (
            r#"{"hostnames": ["caukee.vn"], "footer": {"lines": [{"window": "year", "metric": "visits"}]}}"#.to_owned(),
            StatusCode::BAD_REQUEST,
            "footer.lines[0].window",
        ),
        (
            r#"{"id": "tuyengiao", "hostnames": ["caukee.vn"]}"#.to_owned(),
            StatusCode::BAD_REQUEST,
            "id: the body's id \"tuyengiao\" does not match",
        ),
        (
            r#"{"id": 7, "hostnames": ["caukee.vn"]}"#.to_owned(),
            StatusCode::BAD_REQUEST,
            "id:",
        ),
        (
            r#"{"hostnames": ["caukee.vn"], "colour": "red"}"#.to_owned(),
            StatusCode::BAD_REQUEST,
            "colour",
        ),
        (r#"{"name": "x"}"#.to_owned(), StatusCode::BAD_REQUEST, "hostnames"),
    ];
    for (body, status, needle) in cases {
        let (got, response) = send(&app, "PUT", uri, Some(TOKEN), Some(&body)).await;
        assert_eq!(got, status, "{body} → {response}");
        assert_eq!(response["error"]["code"], "bad_request");
        assert!(
            message(&response).contains(needle),
            "{needle:?} not in {response}"
        );
    }
    let (status, body) = send(
        &app,
        "PUT",
        "/admin/v1/sites/Cau_Ke",
        Some(TOKEN),
        Some(&valid),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message(&body).contains("Cau_Ke"), "{body}");
    for uri in [
        "/admin/v1/sites/%FF",
        "/admin/v1/sites/a%2Fb",
        "/admin/v1/sites/%20",
    ] {
        let (status, body) = send(&app, "GET", uri, Some(TOKEN), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(message(&body).starts_with("site id"), "{uri}: {body}");
    }

    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut builder =
            axum::http::Request::put(uri).header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
        if let Some(content_type) = content_type {
            builder = builder.header(header::CONTENT_TYPE, content_type);
        }
        let request = builder.body(Body::from(valid.clone())).unwrap();
        let (status, body) = send_request(&app, request).await;
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
        assert!(message(&body).contains("application/json"), "{body}");
    }
    let request = axum::http::Request::put(uri)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .body(Body::from(valid.clone()))
        .unwrap();
    assert_eq!(send_request(&app, request).await.0, StatusCode::CREATED);

    let huge = format!(
        r#"{{"hostnames": ["caukee.vn"], "name": "{}"}}"#,
        "x".repeat(70_000)
    );
    let (status, _) = send(&app, "PUT", uri, Some(TOKEN), Some(&huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // Only the one valid request changed anything.
    assert_eq!(state.registry.version(), 1);
    let (_, audit) = send(&app, "GET", "/admin/v1/audit", Some(TOKEN), None).await;
    assert_eq!(audit["total"], 1, "{audit}");
}

#[tokio::test]
async fn baselines_are_absolute_idempotent_and_never_lowered_silently() {
    let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
    let (state, app) = instance(&store);
    let uri = "/admin/v1/sites/caukee/baseline";
    let (status, _) = send(&app, "PUT", uri, Some(TOKEN), Some(r#"{"value": 1}"#)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "unknown site");
    let site = settings_json("caukee", "caukee.vn");
    send(
        &app,
        "PUT",
        "/admin/v1/sites/caukee",
        Some(TOKEN),
        Some(&site),
    )
    .await;

    let (status, body) = send(
        &app,
        "PUT",
        uri,
        Some(TOKEN),
        Some(r#"{"metric": "visits", "value": 7289126, "allow_decrease": false}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"site": "caukee", "metric": "visits", "previous": 0, "current": 7289126, "changed": true})
    );
    // Again, with the metric left to its default: the same state, no change.
    let (status, body) = send(&app, "PUT", uri, Some(TOKEN), Some(r#"{"value": 7289126}"#)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["previous"].clone(), body["changed"].clone()),
        (json!(7289126), json!(false))
    );

    let (status, body) = send(&app, "PUT", uri, Some(TOKEN), Some(r#"{"value": 7000000}"#)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        message(&body).contains("7289126") && message(&body).contains("allow_decrease"),
        "{body}"
    );
    let (status, body) = send(
        &app,
        "PUT",
        uri,
        Some(TOKEN),
        Some(r#"{"value": 7000000, "allow_decrease": true}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["current"], 7000000);

    let id = SiteId::new("caukee").unwrap();
    let stored = store
        .read(
            &[Read::Counter(keys::baseline(&id, Metric::Visits))],
            state.clock.now(),
        )
        .await
        .unwrap();
    assert_eq!(stored, [7000000]);

    for (body, needle) in [
        (r#"{"metric": "hits", "value": 1}"#, "metric"),
        (r#"{"value": -1}"#, "invalid JSON"),
        (r#"{"value": 1, "extra": true}"#, "extra"),
        (r#"{"metric": "visits"}"#, "value"),
        (r#"{"value": 18446744073709551615}"#, "value: at most"),
    ] {
        let (status, response) = send(&app, "PUT", uri, Some(TOKEN), Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            message(&response).contains(needle),
            "{needle:?} not in {response}"
        );
    }
    // Two changes audited; the idempotent repeat and the refusals are not.
    let (_, audit) = send(&app, "GET", "/admin/v1/audit", Some(TOKEN), None).await;
    let entries = audit["entries"].as_array().unwrap();
    let baselines: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "baseline.set")
        .collect();
    assert_eq!(baselines.len(), 2, "{audit}");
    assert_eq!(baselines[0]["summary"]["old"], 7289126);
    assert_eq!(baselines[0]["summary"]["new"], 7000000);
    assert_eq!(baselines[1]["summary"]["old"], 0);
}

#[tokio::test]
async fn salts_rotate_for_one_site_or_all() {
    let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
    let (state, app) = instance(&store);
    for id in ["a", "b"] {
        let site = settings_json(id, &format!("{id}.vn"));
        send(
            &app,
            "PUT",
            &format!("/admin/v1/sites/{id}"),
            Some(TOKEN),
            Some(&site),
        )
        .await;
    }
    let now = state.clock.now();
    let salt_of = |id: &str| {
        let site = state.sites.get(&SiteId::new(id).unwrap()).unwrap();
        let store = Arc::clone(&store);
        async move {
            let period = site
                .rules
                .salt_rotation()
                .period(site.rules.calendar(), now);
            stored_bytes(&store, &keys::salt(&site.id, &period.id)).await
        }
    };
    for id in ["a", "b"] {
        let site = state.sites.get(&SiteId::new(id).unwrap()).unwrap();
        state
            .salts
            .secrets()
            .load(store.as_ref(), &site.id, &site.rules, now)
            .await
            .unwrap();
    }
    let (a0, b0) = (salt_of("a").await.unwrap(), salt_of("b").await.unwrap());

    let (status, body) = send(
        &app,
        "POST",
        "/admin/v1/salts/rotate",
        Some(TOKEN),
        Some(r#"{"site": "a"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["rotated"], json!(["a"]));
    let (a1, b1) = (salt_of("a").await.unwrap(), salt_of("b").await.unwrap());
    assert_ne!(a0, a1);
    assert_eq!(b0, b1);

    let (status, body) = send(
        &app,
        "POST",
        "/admin/v1/salts/rotate",
        Some(TOKEN),
        Some("{}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["rotated"], json!(["a", "b"]));
    assert_ne!(salt_of("a").await.unwrap(), a1);
    assert_ne!(salt_of("b").await.unwrap(), b1);

    let (status, _) = send(
        &app,
        "POST",
        "/admin/v1/salts/rotate",
        Some(TOKEN),
        Some(r#"{"site": "zz"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(
        &app,
        "POST",
        "/admin/v1/salts/rotate",
        Some(TOKEN),
        Some(r#"{"sites": []}"#),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // An empty body is not "all sites": rotating everything must be asked for.
    let request = axum::http::Request::post("/admin/v1/salts/rotate")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        send_request(&app, request).await.0,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );

    let (_, audit) = send(&app, "GET", "/admin/v1/audit?limit=3", Some(TOKEN), None).await;
    let sites: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["site"])
        .collect();
    assert_eq!(sites, [&json!("b"), &json!("a"), &json!("a")], "{audit}");
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["action"] == "salt.rotate")
    );
}

#[tokio::test]
async fn audit_names_the_token_by_fingerprint_only() {
    let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
    let (_state, app) = instance(&store);
    put_site(&app, TOKEN, "a", "a.vn").await;
    put_site(&app, ROTATED, "b", "b.vn").await;
    put_site(&app, ROTATED, "a", "a2.vn").await;

    let (status, audit) = send(&app, "GET", "/admin/v1/audit", Some(TOKEN), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(audit["total"], 3);
    let entries = audit["entries"].as_array().unwrap();
    let summary: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["site"].as_str().unwrap(),
                e["actor"].as_str().unwrap(),
            )
        })
        .collect();
    let (first, second) = (
        format!("token:{}", fingerprint(TOKEN)),
        format!("token:{}", fingerprint(ROTATED)),
    );
    assert_eq!(
        summary,
        [
            ("site.update", "a", second.as_str()),
            ("site.create", "b", second.as_str()),
            ("site.create", "a", first.as_str()),
        ]
    );
    assert_eq!(entries[0]["at"], "2026-11-30T17:00:00Z");
    assert_eq!(
        entries[0]["summary"]["changes"],
        json!({"hostnames": {"old": ["a.vn"], "new": ["a2.vn"]}})
    );

    let stored =
        String::from_utf8(stored_bytes(&store, &keys::audit_chunk(0)).await.unwrap()).unwrap();
    for secret in [
        TOKEN.to_owned(),
        ROTATED.to_owned(),
        hex::encode(Sha256::digest(TOKEN)),
        hex::encode(Sha256::digest(ROTATED)),
    ] {
        assert!(!stored.contains(&secret), "the audit log holds {secret}");
    }

    let (status, audit) = send(&app, "GET", "/admin/v1/audit?limit=1", Some(TOKEN), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(audit["entries"].as_array().unwrap().len(), 1);
    assert_eq!(audit["entries"][0]["action"], "site.update");
    for query in ["limit=0", "limit=abc", "limit=10001", "limt=5"] {
        let (status, body) = send(
            &app,
            "GET",
            &format!("/admin/v1/audit?{query}"),
            Some(TOKEN),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(body["error"]["code"], "bad_request", "{query}");
    }
}

#[tokio::test]
async fn two_instances_over_one_store_converge() {
    let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
    let (a, app_a) = instance(&store);
    let (b, app_b) = instance(&store);
    registry::import_at_startup(&a.registry, vec![SiteSettings::demo()]).await;
    registry::import_at_startup(&b.registry, vec![SiteSettings::demo()]).await;
    assert_eq!((a.registry.version(), b.registry.version()), (1, 1));

    put_site(&app_a, TOKEN, "caukee", "caukee.vn").await;
    assert_eq!(
        send(&app_b, "GET", "/admin/v1/sites/caukee", Some(TOKEN), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        registry::sync(&b.registry).await.unwrap(),
        SyncOutcome::Reloaded { version: 2 }
    );
    assert_eq!(
        registry::sync(&b.registry).await.unwrap(),
        SyncOutcome::Unchanged
    );
    let (status, body) = send(&app_b, "GET", "/admin/v1/sites/caukee", Some(TOKEN), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["site"]["hostnames"], json!(["caukee.vn"]));

    // B edits, A follows; A deletes, B follows.
    put_site(&app_b, TOKEN, "caukee", "caukee.travinh.gov.vn").await;
    registry::sync(&a.registry).await.unwrap();
    let id = SiteId::new("caukee").unwrap();
    assert_eq!(
        a.sites.get(&id).unwrap().settings.hostnames,
        ["caukee.travinh.gov.vn"]
    );
    send(
        &app_a,
        "DELETE",
        "/admin/v1/sites/caukee",
        Some(TOKEN),
        None,
    )
    .await;
    registry::sync(&b.registry).await.unwrap();
    assert!(b.sites.get(&id).is_none());
    assert!(b.sites.get(&SiteId::new("demo").unwrap()).is_some());
    assert_eq!(a.registry.version(), b.registry.version());
}

#[tokio::test]
async fn a_salt_rotated_on_one_instance_is_dropped_by_the_others_at_sync() {
    let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
    let (a, app_a) = instance(&store);
    let (b, _app_b) = instance(&store);
    registry::import_at_startup(
        &a.registry,
        vec![SiteSettings::new("caukee", &["caukee.vn"])],
    )
    .await;
    registry::import_at_startup(
        &b.registry,
        vec![SiteSettings::new("caukee", &["caukee.vn"])],
    )
    .await;
    let site = b.sites.get(&SiteId::new("caukee").unwrap()).unwrap();
    let ip = "203.0.113.7".parse().unwrap();
    let identify = || b.salts.identify(&site, ip, "Mozilla/5.0", b.clock.now());
    let before = identify().await.unwrap().visitor;

    let (status, _) = send(
        &app_a,
        "POST",
        "/admin/v1/salts/rotate",
        Some(TOKEN),
        Some("{}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        identify().await.unwrap().visitor,
        before,
        "B still has the old salt cached"
    );
    assert!(matches!(
        registry::sync(&b.registry).await.unwrap(),
        SyncOutcome::Reloaded { .. }
    ));
    assert_ne!(
        identify().await.unwrap().visitor,
        before,
        "B dropped it at sync"
    );
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn audit_log_lines_carry_the_fingerprint_and_never_the_token() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // With a single dispatcher registered, tracing computes a callsite's interest from
    // the default of whichever thread hits it first, and other test threads have
    // none: the audit callsite could be cached as "never" while this test runs. A
    // second live dispatcher makes it ask every registered dispatcher, this one too.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let _guard = tracing::subscriber::set_default(subscriber);
    let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
    let (_state, app) = instance(&store);
    let request = axum::http::Request::put("/admin/v1/sites/caukee")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-forwarded-for", "198.51.100.23")
        .body(Body::from(settings_json("caukee", "caukee.vn")))
        .unwrap();
    assert_eq!(send_request(&app, request).await.0, StatusCode::CREATED);
    send(
        &app,
        "GET",
        "/admin/v1/sites",
        Some("wrong-token-value"),
        None,
    )
    .await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("admin change"), "{logs}");
    assert!(
        logs.contains(&format!("token:{}", fingerprint(TOKEN))),
        "{logs}"
    );
    assert!(logs.contains("site.create"), "{logs}");
    for secret in [
        TOKEN,
        "wrong-token-value",
        "198.51.100.23",
        &hex::encode(Sha256::digest(TOKEN)),
    ] {
        assert!(!logs.contains(secret), "the logs hold {secret}: {logs}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_on_two_instances_lose_nothing() {
    let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
    let (a, app_a) = instance(&store);
    let (b, app_b) = instance(&store);
    let mut tasks = Vec::new();
    for n in 0..24 {
        let app = if n % 2 == 0 {
            app_a.clone()
        } else {
            app_b.clone()
        };
        tasks.push(tokio::spawn(async move {
            let id = format!("site-{n}");
            put_site(&app, TOKEN, &id, "x.vn").await.0
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::CREATED);
    }
    for state in [&a, &b] {
        registry::sync(&state.registry).await.unwrap();
        assert_eq!(state.sites.len(), 24);
        assert_eq!(state.registry.version(), 24);
    }
    let (_, audit) = send(&app_b, "GET", "/admin/v1/audit", Some(TOKEN), None).await;
    assert_eq!(audit["total"], 24, "every audit entry landed");
}

#[tokio::test]
async fn an_unreadable_registry_keeps_the_last_one_and_is_not_overwritten() {
    let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
    let (state, app) = instance(&store);
    registry::import_at_startup(&state.registry, vec![SiteSettings::demo()]).await;
    put_site(&app, TOKEN, "caukee", "caukee.vn").await;

    for garbage in [
        &b"{not json"[..],
        b"",
        b"[]",
        br#"{"format": 2, "version": 9, "sites": {}}"#,
        &[0xff, 0xfe][..],
    ] {
        store.set(&keys::registry(), garbage, None).await.unwrap();
        assert!(matches!(
            registry::sync(&state.registry).await,
            Err(registry::RegistryError::Unreadable { .. })
        ));
        // Seen once: not parsed (or logged) again.
        assert_eq!(
            registry::sync(&state.registry).await.unwrap(),
            SyncOutcome::Unchanged
        );
        let (status, body) = send(&app, "GET", "/admin/v1/sites", Some(TOKEN), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["sites"].as_array().unwrap().len(), 2, "{body}");
        let (status, body) = put_site(&app, TOKEN, "x", "x.vn").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
        assert_eq!(
            stored_bytes(&store, &keys::registry()).await.as_deref(),
            Some(garbage)
        );
    }

    // A wiped key is written back whole by the next change.
    store.delete(&[keys::registry()]).await.unwrap();
    assert_eq!(
        registry::sync(&state.registry).await.unwrap(),
        SyncOutcome::Missing
    );
    assert_eq!(state.sites.len(), 2);
    let (status, _) = put_site(&app, TOKEN, "x", "x.vn").await;
    assert_eq!(status, StatusCode::CREATED);
    let stored =
        registry::RegistryDocument::parse(&stored_bytes(&store, &keys::registry()).await.unwrap())
            .unwrap();
    assert_eq!(
        stored.sites.keys().collect::<Vec<_>>(),
        ["caukee", "demo", "x"]
    );
}

#[tokio::test]
async fn an_invalid_site_in_the_stored_registry_keeps_its_previous_settings() {
    let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
    let (state, _app) = instance(&store);
    registry::import_at_startup(
        &state.registry,
        vec![SiteSettings::new("caukee", &["caukee.vn"])],
    )
    .await;
    let mut document =
        registry::RegistryDocument::parse(&stored_bytes(&store, &keys::registry()).await.unwrap())
            .unwrap();
    document.version += 1;
    document.sites.get_mut("caukee").unwrap().time_zone = "Mars/Olympus".to_owned();
    document.sites.insert(
        "other".to_owned(),
        SiteSettings::new("other", &["other.vn"]),
    );
    document
        .sites
        .insert("wrong".to_owned(), SiteSettings::new("notwrong", &["w.vn"]));
    store
        .set(
            &keys::registry(),
            &serde_json::to_vec(&document).unwrap(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        registry::sync(&state.registry).await.unwrap(),
        SyncOutcome::Reloaded { version: 2 }
    );
    let ids: Vec<String> = state.sites.all().iter().map(|s| s.id.to_string()).collect();
    assert_eq!(ids, ["caukee", "other"]);
    assert_eq!(
        state
            .sites
            .get(&SiteId::new("caukee").unwrap())
            .unwrap()
            .settings
            .time_zone,
        "Asia/Ho_Chi_Minh"
    );
}

#[tokio::test]
async fn restarts_keep_api_sites_and_the_file_wins_for_its_own() {
    let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
    let file = vec![
        SiteSettings::demo(),
        SiteSettings::new("caukee", &["caukee.vn"]),
    ];
    let (first, app) = instance(&store);
    registry::import_at_startup(&first.registry, file.clone()).await;
    put_site(&app, TOKEN, "extra", "extra.vn").await;
    put_site(&app, TOKEN, "caukee", "edited.vn").await;
    let (status, body) = send(&app, "DELETE", "/admin/v1/sites/demo", Some(TOKEN), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body["note"].as_str().unwrap().contains("sites file"),
        "{body}"
    );

    // A restart with the same file: a new instance over the same store.
    let (second, app) = instance(&store);
    registry::import_at_startup(&second.registry, file.clone()).await;
    let ids: Vec<String> = second
        .sites
        .all()
        .iter()
        .map(|s| s.id.to_string())
        .collect();
    assert_eq!(ids, ["caukee", "demo", "extra"]);
    assert_eq!(
        second
            .sites
            .get(&SiteId::new("caukee").unwrap())
            .unwrap()
            .settings
            .hostnames,
        ["caukee.vn"]
    );

    // A third start changes nothing, so it writes and audits nothing.
    let version = second.registry.version();
    let (third, _) = instance(&store);
    registry::import_at_startup(&third.registry, file).await;
    assert_eq!(third.registry.version(), version);

    let (_, audit) = send(&app, "GET", "/admin/v1/audit", Some(TOKEN), None).await;
    let imports: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "registry.import")
        .collect();
    assert_eq!(imports.len(), 2, "{audit}");
    assert_eq!(imports[0]["actor"], "startup");
    assert_eq!(imports[0]["summary"]["added"], json!(["demo"]));
    assert_eq!(imports[0]["summary"]["updated"], json!(["caukee"]));
    assert_eq!(imports[1]["summary"]["added"], json!(["demo", "caukee"]));
}

/// `PATCH /admin/v1/sites/{site}` with a merge patch (`application/merge-patch+json`).
async fn patch_site(app: &Router, id: &str, patch: &str) -> (StatusCode, Value) {
    let request = axum::http::Request::patch(format!("/admin/v1/sites/{id}"))
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/merge-patch+json")
        .body(Body::from(patch.to_owned()))
        .unwrap();
    send_request(app, request).await
}

/// A site with every kind of setting a partial change must keep: a name, a footer
/// other than the default, and a trust record.
/// Creates `caukee` with every setting filled in (through `PUT`, checked 201).
async fn put_caukee_in_full(app: &Router) -> SiteSettings {
    let full = caukee_in_full();
    let (status, body) = send(
        app,
        "PUT",
        "/admin/v1/sites/caukee",
        Some(TOKEN),
        Some(&serde_json::to_string(&full).unwrap()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    full
}

fn caukee_in_full() -> SiteSettings {
    let mut settings = SiteSettings::demo();
    settings.id = "caukee".to_owned();
    settings.name = "Cầu Kè".to_owned();
    settings.hostnames = vec!["caukee.travinh.gov.vn".to_owned()];
    settings.footer.number_format = "dot".to_owned();
    settings.footer.title_en = "Visits".to_owned();
    settings.footer.lines.truncate(2);
    settings
}

#[tokio::test]
async fn a_partial_patch_keeps_every_other_setting() {
    let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
    let (state, app) = instance(&store);
    let full = put_caukee_in_full(&app).await;

    // The README's change: hostnames and time zone only.
    let (status, body) = patch_site(
        &app,
        "caukee",
        r#"{"hostnames": ["caukee.travinh.gov.vn", "www.caukee.travinh.gov.vn"],
            "time_zone": "Asia/Bangkok", "footer": {"title_en": "Visitors"}}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["changed"], true);
    assert_eq!(body["created"], false);
    assert!(body.get("warning").is_none(), "an API site: {body}");
    let mut expected = full.clone();
    expected
        .hostnames
        .push("www.caukee.travinh.gov.vn".to_owned());
    expected.time_zone = "Asia/Bangkok".to_owned();
    expected.footer.title_en = "Visitors".to_owned();
    let served = state.sites.get(&SiteId::new("caukee").unwrap()).unwrap();
    assert_eq!(
        served.settings, expected,
        "name, footer and trust record kept"
    );
    assert_eq!(serde_json::to_value(&expected).unwrap(), body["site"]);

    // Audited like PUT, with the diff.
    let (_, audit) = send(&app, "GET", "/admin/v1/audit", Some(TOKEN), None).await;
    let entry = &audit["entries"][0];
    assert_eq!(entry["action"], "site.update");
    assert_eq!(
        entry["summary"]["changes"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["footer", "hostnames", "time_zone"]
    );

    // The same patch again changes nothing, and writes nothing.
    let version = state.registry.version();
    let (status, body) = patch_site(&app, "caukee", r#"{"time_zone": "Asia/Bangkok"}"#).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["changed"], false);
    assert_eq!(state.registry.version(), version);

    // application/json is accepted as well.
    let (status, body) = send(
        &app,
        "PATCH",
        "/admin/v1/sites/caukee",
        Some(TOKEN),
        Some(r#"{"name": "Huyện Cầu Kè"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["site"]["name"], "Huyện Cầu Kè");
    assert_eq!(
        body["site"]["trust"],
        serde_json::to_value(&full.trust).unwrap()
    );
}

#[tokio::test]
async fn a_null_in_a_patch_removes_an_optional_setting() {
    let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
    let (state, app) = instance(&store);
    let full = put_caukee_in_full(&app).await;
    let (status, body) = patch_site(
        &app,
        "caukee",
        r#"{"trust": null, "name": null, "footer": {"number_format": null}}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let served = state.sites.get(&SiteId::new("caukee").unwrap()).unwrap();
    assert_eq!(served.settings.trust, None, "the trust record is removed");
    assert_eq!(
        served.settings.name, "",
        "a removed setting takes its default"
    );
    assert_eq!(served.settings.footer.number_format, "comma");
    assert_eq!(
        served.settings.footer.title_en, "Visits",
        "the rest of the footer is kept"
    );
    assert_eq!(served.settings.hostnames, full.hostnames);
    let (_, audit) = send(&app, "GET", "/admin/v1/audit", Some(TOKEN), None).await;
    let changes = &audit["entries"][0]["summary"]["changes"];
    assert_eq!(changes["trust"]["new"], Value::Null, "{changes}");
    assert!(changes["trust"]["old"].is_object(), "{changes}");
}

#[tokio::test]
async fn an_invalid_patched_result_is_refused_and_changes_nothing() {
    let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
    let (state, app) = instance(&store);
    let full = put_caukee_in_full(&app).await;
    let version = state.registry.version();
    let stored = stored_bytes(&store, &keys::registry()).await;
    for (patch, names) in [
        (r#"{"time_zone": "Nowhere/City"}"#, "time_zone"),
        (r#"{"hostnames": null}"#, "hostnames"),
        (r#"{"hostnames": []}"#, "hostnames"),
        (r#"{"online_window_minutes": 99}"#, "online_window"),
        (
            r#"{"footer": {"lines": [{"window": "year", "metric": "visits"}]}}"#,
            "window",
        ),
        (r#"{"colour": "red"}"#, "colour"),
        (r#"{"id": "other"}"#, "id"),
        (r#"["not", "an", "object"]"#, "object"),
    ] {
        let (status, body) = patch_site(&app, "caukee", patch).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{patch}: {body}");
        assert!(message(&body).contains(names), "{patch}: {body}");
    }
    assert_eq!(state.registry.version(), version);
    assert_eq!(stored_bytes(&store, &keys::registry()).await, stored);
    let served = state.sites.get(&SiteId::new("caukee").unwrap()).unwrap();
    assert_eq!(served.settings, full);

    let (status, body) = patch_site(&app, "nowhere", r#"{"name": "x"}"#).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(state.sites.get(&SiteId::new("nowhere").unwrap()).is_none());
    let request = axum::http::Request::patch("/admin/v1/sites/caukee")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(
        send_request(&app, request).await.0,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
}

#[tokio::test]
async fn changing_a_site_of_the_sites_file_warns_that_the_next_start_undoes_it() {
    let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
    let file = vec![SiteSettings::new("caukee", &["caukee.vn"])];
    let (first, app) = instance(&store);
    registry::import_at_startup(&first.registry, file.clone()).await;
    put_site(&app, TOKEN, "extra", "extra.vn").await;

    let (status, body) = patch_site(&app, "caukee", r#"{"name": "Cầu Kè"}"#).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let warning = body["warning"].as_str().unwrap_or_default();
    assert!(warning.contains("caukee is in the sites file"), "{body}");
    assert!(warning.contains("next start"), "{body}");
    assert_eq!(body["site"]["name"], "Cầu Kè", "the change still applies");
    let (status, body) = put_site(&app, TOKEN, "caukee", "other.vn").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body["warning"]
            .as_str()
            .unwrap_or_default()
            .contains("sites file"),
        "{body}"
    );
    // Sites of the admin API only get no warning.
    let (_, body) = patch_site(&app, "extra", r#"{"name": "Extra"}"#).await;
    assert!(body.get("warning").is_none(), "{body}");
    let (_, body) = send(&app, "DELETE", "/admin/v1/sites/extra", Some(TOKEN), None).await;
    assert!(body.get("warning").is_none(), "{body}");

    // The next start puts the file's settings back, and says which ones it replaced.
    let (second, app) = instance(&store);
    registry::import_at_startup(&second.registry, file).await;
    let served = second.sites.get(&SiteId::new("caukee").unwrap()).unwrap();
    assert_eq!(served.settings, SiteSettings::new("caukee", &["caukee.vn"]));
    let (_, audit) = send(&app, "GET", "/admin/v1/audit", Some(TOKEN), None).await;
    let import = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "registry.import")
        .unwrap();
    assert_eq!(import["summary"]["updated"], json!(["caukee"]));
    assert_eq!(
        import["summary"]["overwritten"]["caukee"],
        json!({
            "hostnames": {"old": ["other.vn"], "new": ["caukee.vn"]},
        }),
        "{import}"
    );

    let (_, body) = send(&app, "DELETE", "/admin/v1/sites/caukee", Some(TOKEN), None).await;
    assert!(
        body["warning"]
            .as_str()
            .unwrap_or_default()
            .contains("registered again"),
        "{body}"
    );
}

#[tokio::test]
async fn an_untouched_demo_site_leaves_the_registry_when_the_demo_is_off() {
    let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
    let (first, _) = instance(&store);
    registry::import_at_startup(&first.registry, vec![SiteSettings::demo()]).await;
    // Next start with a sites file: no demo.
    let (second, app) = instance(&store);
    registry::import_at_startup(
        &second.registry,
        vec![SiteSettings::new("caukee", &["caukee.vn"])],
    )
    .await;
    let ids: Vec<String> = second
        .sites
        .all()
        .iter()
        .map(|s| s.id.to_string())
        .collect();
    assert_eq!(ids, ["caukee"]);
    let (_, audit) = send(&app, "GET", "/admin/v1/audit", Some(TOKEN), None).await;
    assert_eq!(audit["entries"][0]["summary"]["removed"], json!(["demo"]));

    // A demo site someone changed through the API is theirs: it stays.
    let mut edited = SiteSettings::demo();
    edited.name = "our test page".to_owned();
    let (status, _) = send(
        &app,
        "PUT",
        "/admin/v1/sites/demo",
        Some(TOKEN),
        Some(&serde_json::to_string(&edited).unwrap()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (third, _) = instance(&store);
    registry::import_at_startup(
        &third.registry,
        vec![SiteSettings::new("caukee", &["caukee.vn"])],
    )
    .await;
    assert!(third.sites.get(&SiteId::new("demo").unwrap()).is_some());
}

/// A token of the `caukee` site only.
const CAUKEE_TOKEN: &str = "caukee-webmaster-token-31d9";
/// A token of the `tracu` site only.
const TRACU_TOKEN: &str = "tracu-webmaster-token-8a02";

/// An instance with the operator tokens and a token for each of `caukee` and `tracu`,
/// both sites registered by an operator.
async fn scoped_instance() -> (AppState, Router) {
    let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
    let clock = Arc::new(ManualClock::new("2026-11-30T17:00:00Z".parse().unwrap()));
    let site = |id: &str| Scope::Sites(vec![SiteId::new(id).unwrap()]);
    let options = Options {
        admin_tokens: vec![TOKEN.to_owned()],
        admin_token_grants: vec![
            tokens::TokenGrant::new(CAUKEE_TOKEN, site("caukee")),
            tokens::TokenGrant::new(TRACU_TOKEN, site("tracu")),
        ],
        ..Options::default()
    };
    let (state, _flusher) = AppState::new(store, clock, Sites::default(), options).unwrap();
    let app = internal_app(state.clone(), RequestLimits::default());
    for (id, host) in [("caukee", "caukee.vn"), ("tracu", "tracu.vn")] {
        assert_eq!(put_site(&app, TOKEN, id, host).await.0, StatusCode::CREATED);
    }
    (state, app)
}

/// A request of `route` about `site` that the route accepts: its URI and JSON body.
/// Every route of [`ROUTES`] needs one here, so the walks below cover each new route.
fn example(route: &AdminRoute, site: &str) -> (String, Option<String>) {
    let uri = format!("/admin/v1{}", route.path.replace("{site}", site));
    let body = match (route.method.as_str(), route.path) {
        ("GET", "/sites" | "/sites/{site}" | "/audit") | ("DELETE", "/sites/{site}") => None,
        ("PUT", "/sites/{site}") => Some(settings_json(site, &format!("{site}.vn"))),
        ("PATCH", "/sites/{site}") => Some(r#"{"name": "Renamed"}"#.to_owned()),
        ("PUT", "/sites/{site}/baseline") => Some(r#"{"value": 1000}"#.to_owned()),
        ("POST", "/salts/rotate") => Some(format!(r#"{{"site": "{site}"}}"#)),
        // A day the instance's clock (2026-11-30) has settled; the export's JSON form.
        ("PUT", "/sites/{site}/history") => Some(
            r#"{"days": [{"date": "2026-11-01", "pageviews": 30, "visits": 20, "visitors": 10}]}"#
                .to_owned(),
        ),
        ("DELETE", "/sites/{site}/history") => None,
        (method, path) => panic!("add an example request for {method} {path} to this test"),
    };
    (uri, body)
}

#[tokio::test]
async fn every_route_checks_the_scope_of_a_sites_token() {
    let (state, app) = scoped_instance().await;
    for route in ROUTES {
        let method = route.method.as_str();
        // Another site's token: refused before anything is read or changed, or (for the
        // routes that list) shown nothing of the other site.
        put_site(&app, TOKEN, "tracu", "tracu.vn").await;
        let (uri, body) = example(route, "tracu");
        let (status, answer) = send(&app, method, &uri, Some(CAUKEE_TOKEN), body.as_deref()).await;
        if route.access == Access::Filtered {
            assert_eq!(status, StatusCode::OK, "{method} {uri}: {answer}");
            assert!(
                !answer.to_string().contains("tracu"),
                "{method} {uri}: {answer}"
            );
        } else {
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {uri}: {answer}");
            assert_eq!(answer["error"]["code"], "forbidden", "{answer}");
            assert!(
                message(&answer).contains("sites:caukee"),
                "the refusal names the token's scope: {answer}"
            );
        }
        let tracu = state.sites.get("tracu").expect("still registered");
        assert_eq!(tracu.settings.name, "", "{method} {uri} changed tracu");

        // Its own site's token: allowed, except where only an operator may go.
        put_site(&app, TOKEN, "caukee", "caukee.vn").await;
        let (uri, body) = example(route, "caukee");
        let (status, answer) = send(&app, method, &uri, Some(CAUKEE_TOKEN), body.as_deref()).await;
        if route.access == Access::Operator {
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {uri}: {answer}");
            assert_eq!(answer["error"]["code"], "forbidden", "{answer}");
        } else {
            assert!(status.is_success(), "{method} {uri}: {status} {answer}");
        }

        // An operator's token: allowed everywhere.
        put_site(&app, TOKEN, "caukee", "caukee.vn").await;
        let (status, answer) = send(&app, method, &uri, Some(TOKEN), body.as_deref()).await;
        assert!(status.is_success(), "{method} {uri}: {status} {answer}");
    }
}

#[tokio::test]
async fn a_sites_token_sees_and_changes_only_its_own_sites() {
    let (_state, app) = scoped_instance().await;
    let (status, list) = send(&app, "GET", "/admin/v1/sites", Some(CAUKEE_TOKEN), None).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = list["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|site| site["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["caukee"]);

    // It replaces and patches its site, but creates none, even one its scope names.
    let (status, _) = put_site(&app, CAUKEE_TOKEN, "caukee", "www.caukee.vn").await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) =
        patch_site_as(&app, CAUKEE_TOKEN, "caukee", r#"{"stats_public": true}"#).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["site"]["stats_public"], true);
    let (status, answer) = send(&app, "DELETE", "/admin/v1/sites/caukee", Some(TOKEN), None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) = put_site(&app, CAUKEE_TOKEN, "caukee", "caukee.vn").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(message(&answer).contains("operator"), "{answer}");
    assert_eq!(
        put_site(&app, TOKEN, "caukee", "caukee.vn").await.0,
        StatusCode::CREATED
    );

    // The trust record is the issuer's: kept through its changes, never changed by it.
    let trust = serde_json::to_string(&SiteSettings::demo().trust).unwrap();
    let (status, answer) = patch_site_as(
        &app,
        CAUKEE_TOKEN,
        "caukee",
        &format!(r#"{{"trust": {trust}}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(message(&answer).starts_with("trust:"), "{answer}");
    let (status, _) =
        patch_site_as(&app, TOKEN, "caukee", &format!(r#"{{"trust": {trust}}}"#)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) =
        patch_site_as(&app, CAUKEE_TOKEN, "caukee", r#"{"name": "Cầu Kè"}"#).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["site"]["trust"]["certificate_id"], "DEMO-0001");
    let (status, answer) = patch_site_as(&app, CAUKEE_TOKEN, "caukee", r#"{"trust": null}"#).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");

    // `{}` rotates the salts of every site it manages, and only those.
    let (status, answer) = send(
        &app,
        "POST",
        "/admin/v1/salts/rotate",
        Some(CAUKEE_TOKEN),
        Some("{}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["rotated"], json!(["caukee"]));

    // Its audit log: its sites' entries only, each naming the token and its scope.
    let (status, audit) = send(&app, "GET", "/admin/v1/audit", Some(CAUKEE_TOKEN), None).await;
    assert_eq!(status, StatusCode::OK);
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(audit["total"], entries.len());
    assert!(entries.iter().all(|e| e["site"] == "caukee"), "{audit}");
    let own = format!("token:{}", fingerprint(CAUKEE_TOKEN));
    let by_it: Vec<&Value> = entries.iter().filter(|e| e["actor"] == own).collect();
    assert_eq!(by_it.len(), 4, "{audit}");
    assert!(
        by_it.iter().all(|e| e["scope"] == "sites:caukee"),
        "{audit}"
    );
    let (_, all) = send(&app, "GET", "/admin/v1/audit", Some(TOKEN), None).await;
    assert!(all["total"].as_u64().unwrap() > entries.len() as u64);
    let operator = format!("token:{}", fingerprint(TOKEN));
    assert!(
        all["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["actor"] == operator)
            .all(|e| e["scope"] == "operator"),
        "{all}"
    );
}

async fn patch_site_as(app: &Router, token: &str, id: &str, patch: &str) -> (StatusCode, Value) {
    let uri = format!("/admin/v1/sites/{id}");
    send(app, "PATCH", &uri, Some(token), Some(patch)).await
}

#[tokio::test]
async fn a_handler_mounted_outside_the_list_cannot_learn_its_caller() {
    async fn undeclared(ManagedSite { id, .. }: ManagedSite) -> String {
        id.to_string()
    }
    let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
    let (state, _) = instance(&store);
    let app = Router::new()
        .route(
            "/admin/v1/sites/{site}/extra",
            axum::routing::get(undeclared),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ))
        .with_state(state);
    let (status, answer) = send(&app, "GET", "/admin/v1/sites/demo/extra", Some(TOKEN), None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{answer}");
}
