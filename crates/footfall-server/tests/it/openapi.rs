//! The OpenAPI document describes routes that exist: every documented operation, sent to
//! the listener it belongs to, reaches a handler rather than the "no such route" fallback
//! or a 405.

use axum::body::Body;
use footfall_server::openapi;
use http::StatusCode;

use crate::support::{ADMIN_TOKEN, Harness, request, send};

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let harness = Harness::new();
    let doc = openapi::document();
    let mut checked = 0;
    for (path, operations) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in operations.as_object().expect("operations") {
            let internal = matches!(operation["tags"][0].as_str(), Some("internal" | "admin"));
            let app = if internal {
                harness.internal()
            } else {
                harness.public()
            };
            let uri = path.replace("{site}", "demo").replace("{window}", "today");
            let uri = if uri == "/hit.gif" {
                "/hit.gif?site=demo".to_owned()
            } else {
                uri
            };
            let body = match method.as_str() {
                "post" | "put" | "patch" => Body::from("{}"),
                _ => Body::empty(),
            };
            let built = request(&method.to_uppercase(), &uri)
                .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
                .header("content-type", "application/json")
                .header("origin", "http://localhost")
                .body(body)
                .expect("a request");
            let reply = send(&app, built).await;
            assert_ne!(
                reply.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            if reply.status == StatusCode::NOT_FOUND {
                assert!(
                    !reply.error_message().contains("no such route"),
                    "{method} {path} is documented but not routed"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 17, "only {checked} operations documented");
}

#[tokio::test]
async fn the_document_is_served_on_the_internal_listener() {
    let harness = Harness::new();
    let reply = send(
        &harness.internal(),
        request("GET", "/openapi.json").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["openapi"], "3.1.0");
    assert_eq!(reply.json(), openapi::document());
}
