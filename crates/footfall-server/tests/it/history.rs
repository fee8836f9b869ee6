//! History out and in: the history as JSON and CSV (`format`, `Accept`), the import of an
//! earlier counter's days through the admin API (idempotent, audited, refusing live days
//! unless `replace`, bounded), and the shields.io endpoint badge.

use axum::body::Body;
use http::{StatusCode, header};
use jiff::SignedDuration;
use serde_json::Value;

use crate::support::{ADMIN_TOKEN, Harness, Reply, beacon, request, send};

const HEADER: &str = "date,pageviews,visits,visitors\n";

async fn import(harness: &Harness, query: &str, content_type: &str, body: &str) -> Reply {
    send(
        &harness.internal(),
        request("PUT", &format!("/admin/v1/sites/demo/history{query}"))
            .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body.to_owned()))
            .expect("a request"),
    )
    .await
}

async fn history(harness: &Harness, query: &str, accept: Option<&str>) -> Reply {
    let mut built = request("GET", &format!("/api/v1/sites/demo/history{query}"));
    if let Some(accept) = accept {
        built = built.header(header::ACCEPT, accept);
    }
    send(
        &harness.public(),
        built.body(Body::empty()).expect("a request"),
    )
    .await
}

/// An admin request without a body, with the token.
async fn admin(harness: &Harness, method: &str, path: &str) -> Value {
    send(
        &harness.internal(),
        request(method, path)
            .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
            .body(Body::empty())
            .expect("a request"),
    )
    .await
    .json()
}

/// The demo site's counts.
async fn counts(harness: &Harness) -> Value {
    send(
        &harness.public(),
        request("GET", "/api/v1/sites/demo/counts")
            .body(Body::empty())
            .expect("a request"),
    )
    .await
    .json()
}

fn day<'a>(json: &'a Value, date: &str) -> &'a Value {
    json["days"]
        .as_array()
        .expect("days")
        .iter()
        .find(|d| d["date"] == date)
        .unwrap_or_else(|| panic!("no {date} in {json}"))
}

#[tokio::test]
async fn imported_days_show_in_both_forms_and_a_second_import_changes_nothing() {
    let harness = Harness::new();
    // The clock is 2026-03-02 10:00 in Hồ Chí Minh City: settled through 2026-02-28.
    let csv = format!("{HEADER}2026-02-27,120,80,60\n2026-02-28,100,70,50\n");
    let first = import(&harness, "", "text/csv", &csv).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.json());
    let answer = first.json();
    assert_eq!(
        (answer["added"].as_u64(), answer["changed"].as_bool()),
        (Some(2), Some(true))
    );
    assert_eq!(answer["imported_total"]["pageviews"], 220);
    // No baseline was set: the imported days add up to more than it, and the answer says so.
    assert_eq!(
        answer["exceeds_baseline"],
        serde_json::json!(["pageviews", "visits", "visitors"])
    );
    assert!(
        answer["total_rule"]
            .as_str()
            .unwrap()
            .contains("never added to a total")
    );

    let again = import(&harness, "", "text/csv", &csv).await.json();
    assert_eq!(
        (again["unchanged"].as_u64(), again["changed"].as_bool()),
        (Some(2), Some(false))
    );
    assert!(
        again["message"]
            .as_str()
            .unwrap()
            .starts_with("nothing changed"),
        "{again}"
    );

    // Audited once, with the counts.
    let audit = admin(&harness, "GET", "/admin/v1/audit").await;
    let imports: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "history.import")
        .collect();
    assert_eq!(imports.len(), 1, "{audit}");
    assert_eq!(imports[0]["summary"]["added"], 2);
    assert_eq!(imports[0]["site"], "demo");

    let json = history(&harness, "?days=5", None).await;
    assert_eq!(json.status, StatusCode::OK);
    let vary: Vec<&str> = json
        .headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert!(vary.contains(&"Accept"), "{vary:?}");
    let json = json.json();
    assert_eq!(day(&json, "2026-02-27")["pageviews"], 120);
    assert_eq!(day(&json, "2026-02-27")["source"], "imported");
    assert_eq!(day(&json, "2026-03-01")["source"], "live");
    assert_eq!(day(&json, "2026-03-01")["pageviews"], 0);

    // The all-time total is untouched: history only.
    let counts = counts(&harness).await;
    assert_eq!(counts["total"]["pageviews"], 0, "{counts}");

    for (query, accept) in [
        ("?days=5&format=csv", Some("application/json")),
        ("?days=5", Some("text/csv")),
    ] {
        let csv = history(&harness, query, accept).await;
        assert_eq!(csv.status, StatusCode::OK);
        assert_eq!(
            csv.header(header::CONTENT_TYPE),
            Some("text/csv; charset=utf-8")
        );
        assert_eq!(
            csv.header(header::CONTENT_DISPOSITION),
            Some("attachment; filename=\"demo-history.csv\"")
        );
        assert_eq!(
            String::from_utf8_lossy(&csv.body),
            "date,pageviews,visits,visitors,source\n\
             2026-02-26,0,0,0,live\n\
             2026-02-27,120,80,60,imported\n\
             2026-02-28,100,70,50,imported\n\
             2026-03-01,0,0,0,live\n\
             2026-03-02,0,0,0,live\n"
        );
    }

    // The export imports back as it is (CSV with its source column, and the JSON document).
    let exported = history(&harness, "?days=5&format=csv", None).await;
    let back = import(
        &harness,
        "",
        "text/csv",
        &String::from_utf8_lossy(&exported.body),
    )
    .await;
    assert_eq!(back.status, StatusCode::BAD_REQUEST, "today is not settled");
    let settled: String = String::from_utf8_lossy(&exported.body)
        .lines()
        .filter(|l| !l.starts_with("2026-03"))
        .map(|l| format!("{l}\n"))
        .collect();
    let back = import(&harness, "", "text/csv", &settled).await.json();
    assert_eq!(back["replaced"], 0, "{back}");
    assert_eq!(back["added"], 1, "2026-02-26 with zeros: {back}");
    let document = history(&harness, "?days=4", None).await.json();
    let mut days = document["days"].as_array().unwrap().clone();
    days.retain(|d| !d["date"].as_str().unwrap().starts_with("2026-03"));
    let document =
        serde_json::json!({ "site": "demo", "time_zone": "Asia/Ho_Chi_Minh", "days": days });
    let back = import(&harness, "", "application/json", &document.to_string())
        .await
        .json();
    assert_eq!(back["unchanged"], 2, "{back}");
    assert_eq!(back["changed"], false, "{back}");
}

#[tokio::test]
async fn live_days_are_refused_unless_replaced_and_stay_in_the_total() {
    let mut harness = Harness::new();
    let reply = send(&harness.public(), beacon(r#"{"site":"demo","path":"/"}"#)).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    harness.flush().await;
    // Three days later 2026-03-02 is settled.
    harness.clock.advance(SignedDuration::from_hours(72));
    let csv = format!("{HEADER}2026-03-01,10,5,5\n2026-03-02,900,800,700\n");
    let refused = import(&harness, "", "text/csv", &csv).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    let message = refused.error_message();
    assert!(
        message.contains("2026-03-02") && !message.contains("2026-03-01"),
        "{message}"
    );
    assert!(message.contains("replace=true"), "{message}");
    let shown = history(&harness, "?days=5", None).await.json();
    assert_eq!(
        day(&shown, "2026-03-01")["source"],
        "live",
        "nothing written"
    );

    let replaced = import(&harness, "?replace=true", "text/csv", &csv)
        .await
        .json();
    assert_eq!(
        (
            replaced["added"].as_u64(),
            replaced["replaced_live"].as_u64()
        ),
        (Some(1), Some(1)),
        "{replaced}"
    );
    let shown = history(&harness, "?days=5", None).await.json();
    assert_eq!(day(&shown, "2026-03-02")["pageviews"], 900);
    assert_eq!(day(&shown, "2026-03-02")["source"], "imported");
    let counts = counts(&harness).await;
    assert_eq!(
        counts["total"]["pageviews"], 1,
        "the live count stays in the total: {counts}"
    );

    // Removing the imported days shows the live ones again.
    let deleted = admin(&harness, "DELETE", "/admin/v1/sites/demo/history").await;
    assert_eq!(deleted["deleted_days"], 2);
    let shown = history(&harness, "?days=5", None).await.json();
    assert_eq!(day(&shown, "2026-03-02")["pageviews"], 1);
}

#[tokio::test]
async fn bad_imports_get_clear_json_errors() {
    let harness = Harness::new();
    let big = "x".repeat(70 * 1024);
    let too_many: String = {
        let mut body = HEADER.to_owned();
        let mut date = jiff::civil::date(2000, 1, 1);
        for _ in 0..=3660 {
            body.push_str(&format!("{date},0,0,0\n"));
            date = date.tomorrow().unwrap();
        }
        body
    };
    assert!(too_many.len() < 64 * 1024, "fits the listener's body limit");
    let cases: [(&str, &str, &str, StatusCode, &str); 9] = [
        (
            "",
            "text/plain",
            "x",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "text/csv",
        ),
        (
            "",
            "text/csv",
            &big,
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger than",
        ),
        (
            "",
            "text/csv",
            &too_many,
            StatusCode::BAD_REQUEST,
            "more than 3660 days",
        ),
        (
            "?replace=maybe",
            "text/csv",
            HEADER,
            StatusCode::BAD_REQUEST,
            "query",
        ),
        (
            "?overwrite=true",
            "text/csv",
            HEADER,
            StatusCode::BAD_REQUEST,
            "query",
        ),
        (
            "",
            "text/csv",
            "date,pageviews,visits,visitors\n2026-02-01,5,9,1\n",
            StatusCode::BAD_REQUEST,
            "visits (9) is more than pageviews (5)",
        ),
        (
            "",
            "text/csv",
            "date,pageviews,visits,visitors\n2027-01-01,5,5,1\n",
            StatusCode::BAD_REQUEST,
            "only settled days",
        ),
        (
            "",
            "application/json",
            r#"{"site":"caukee","days":[{"date":"2025-01-01","pageviews":1,"visits":1,"visitors":1}]}"#,
            StatusCode::BAD_REQUEST,
            "history of \"caukee\"",
        ),
        (
            "",
            "application/json",
            r#"{"time_zone":"UTC","days":[{"date":"2025-01-01","pageviews":1,"visits":1,"visitors":1}]}"#,
            StatusCode::BAD_REQUEST,
            "time_zone",
        ),
    ];
    for (query, content_type, body, status, expected) in cases {
        let reply = import(&harness, query, content_type, body).await;
        assert_eq!(reply.status, status, "{query} {content_type} {expected}");
        let message = reply.error_message();
        assert!(message.contains(expected), "{expected}: {message}");
    }
    // Without a token: 401, as every admin route.
    let reply = send(
        &harness.internal(),
        request("PUT", "/admin/v1/sites/demo/history")
            .header(header::CONTENT_TYPE, "text/csv")
            .body(Body::from(HEADER))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    // An unknown site: 404.
    let reply = send(
        &harness.internal(),
        request("PUT", "/admin/v1/sites/nowhere/history")
            .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
            .header(header::CONTENT_TYPE, "text/csv")
            .body(Body::from(HEADER))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn history_formats_are_negotiated() {
    let harness = Harness::new();
    let reply = history(&harness, "?format=xml", None).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.error_message().contains("json or csv"));
    let reply = history(&harness, "", Some("image/png")).await;
    assert_eq!(reply.status, StatusCode::NOT_ACCEPTABLE);
    assert!(reply.error_message().contains("text/csv"));
    let reply = history(&harness, "?format=csv", Some("image/png")).await;
    assert_eq!(reply.status, StatusCode::OK, "the query wins");
    let reply = history(&harness, "", Some("text/html,*/*;q=0.8")).await;
    assert_eq!(reply.header(header::CONTENT_TYPE), Some("application/json"));
}

#[tokio::test]
async fn the_shields_endpoint_answers_exactly_its_schema_for_each_window() {
    let harness = Harness::new();
    for (window, vi_label) in [
        ("online", "Đang online"),
        ("today", "Hôm nay"),
        ("week", "Trong tuần"),
        ("month", "Trong tháng"),
        ("total", "Tất cả"),
    ] {
        let reply = send(
            &harness.public(),
            request("GET", &format!("/badge/demo/{window}.json"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{window}");
        assert_eq!(reply.header(header::CONTENT_TYPE), Some("application/json"));
        assert_eq!(reply.header(header::ACCESS_CONTROL_ALLOW_ORIGIN), Some("*"));
        assert_eq!(
            reply.header(header::CACHE_CONTROL),
            Some("no-cache, max-age=0")
        );
        let json = reply.json();
        let mut keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "cacheSeconds",
                "color",
                "label",
                "labelColor",
                "message",
                "schemaVersion"
            ]
        );
        assert_eq!(json["schemaVersion"], 1);
        assert_eq!(json["label"], vi_label, "{window}");
        assert_eq!(json["message"], "0");

        // English on request; a 304 for the same ETag.
        let en = send(
            &harness.public(),
            request("GET", &format!("/badge/demo/{window}.json?lang=en"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_ne!(en.json()["label"], vi_label);
        let etag = en.header(header::ETAG).expect("an ETag").to_owned();
        let cached = send(
            &harness.public(),
            request("GET", &format!("/badge/demo/{window}.json?lang=en"))
                .header(header::IF_NONE_MATCH, etag)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
    }
    for bad in ["year.json", "today.xml", "today"] {
        let reply = send(
            &harness.public(),
            request("GET", &format!("/badge/demo/{bad}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{bad}");
        assert!(reply.error_message().contains(".json"), "{bad}");
    }
}
