//! The real `footfall serve` over real stores: the public and admin API on the embedded
//! store and on Redis, a restart of the embedded store, two instances sharing one Redis
//! that agree on every count, and a count through Redis over TLS.

use std::time::{Duration, Instant};

use footfall_tests::footfall_server::{
    FootfallServer, FootfallServerBuilder, HttpClient, HttpResponse,
};
use footfall_tests::redis_server::RedisServer;
use footfall_tests::tls::{ClientCertificates, TestPki};
use serde_json::{Value, json};

const TOKEN: &str = "e2e-admin-token-0123456789";
const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";

fn start(store: &str) -> FootfallServer {
    builder(store).start()
}

fn builder(store: &str) -> FootfallServerBuilder {
    FootfallServer::builder().store(store).args([
        "--admin-tokens",
        TOKEN,
        "--trusted-proxies",
        "127.0.0.1",
        "--rate-limit",
        "1000000",
        "--flush-interval-ms",
        "20",
        "--counts-ttl",
        "1",
    ])
}

fn json_of(response: &HttpResponse) -> Value {
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", response.text()))
}

/// Counts one page view of `site` from `client_ip` (through the trusted proxy header).
/// Sends one page view of `demo` and waits until today's figures are 1, 1, 1.
fn one_page_view_is_counted(server: &FootfallServer) {
    let mut client = HttpClient::connect(server.public()).unwrap();
    assert_eq!(
        hit(&mut client, "demo", "http://localhost", "203.0.113.9"),
        204
    );
    let c = eventually(
        Duration::from_secs(20),
        || counts(server, "demo"),
        |c| today(c).0 == 1,
    );
    assert_eq!(today(&c), (1, 1, 1), "{c}");
}

fn hit(client: &mut HttpClient, site: &str, origin: &str, client_ip: &str) -> u16 {
    let body = json!({ "site": site, "path": "/tin-tuc/1" }).to_string();
    client
        .request(
            "POST",
            "/api/v1/hit",
            &[
                ("Content-Type", "text/plain"),
                ("Origin", origin),
                ("User-Agent", BROWSER),
                ("X-Forwarded-For", client_ip),
            ],
            body.as_bytes(),
        )
        .expect("hit answered")
        .status
}

fn admin(server: &FootfallServer, method: &str, path: &str, body: Option<Value>) -> HttpResponse {
    let mut client = HttpClient::connect(server.internal()).expect("internal listener");
    let auth = format!("Bearer {TOKEN}");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    client
        .request(
            method,
            path,
            &[
                ("Authorization", auth.as_str()),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
        .expect("admin answered")
}

fn counts(server: &FootfallServer, site: &str) -> Value {
    let mut client = HttpClient::connect(server.public()).expect("public listener");
    let response = client
        .get(&format!("/api/v1/sites/{site}/counts"))
        .expect("counts answered");
    assert_eq!(response.status, 200, "{}", response.text());
    json_of(&response)
}

/// Polls `read` until `done` holds, at most `limit`; returns the last value.
fn eventually<T: std::fmt::Debug>(
    limit: Duration,
    mut read: impl FnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        let value = read();
        if done(&value) || Instant::now() > deadline {
            return value;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The value of a gauge without labels on `/metrics`, when it is there.
fn gauge(server: &FootfallServer, name: &str) -> Option<f64> {
    crate::metrics::sample(&server.internal_get("/metrics").text(), name)
}

/// Visitors are a HyperLogLog estimate: at a few dozen ids two of them share a register
/// with a few per cent probability, so the estimate may be one short. Pageviews and
/// visits are exact.
fn assert_visitors(actual: u64, exact: u64) {
    assert!(
        actual <= exact && actual + 1 + exact / 100 >= exact,
        "visitors {actual}, expected about {exact}"
    );
}

fn today(counts: &Value) -> (u64, u64, u64) {
    let t = &counts["today"];
    (
        t["pageviews"].as_u64().unwrap_or(0),
        t["visits"].as_u64().unwrap_or(0),
        t["visitors"].as_u64().unwrap_or(0),
    )
}

/// Creates a site, counts on it, imports a baseline, rotates salts, reads the audit log
/// and deletes the site: the whole admin and public API on one store.
fn exercise_the_api(server: &FootfallServer) {
    let created = admin(
        server,
        "PUT",
        "/admin/v1/sites/caukee",
        Some(json!({ "hostnames": ["caukee.travinh.gov.vn"] })),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let listed = json_of(&admin(server, "GET", "/admin/v1/sites", None));
    let ids: Vec<&str> = listed["sites"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(ids, ["caukee", "demo"]);

    let mut client = HttpClient::connect(server.public()).unwrap();
    for n in 0..30 {
        assert_eq!(
            hit(
                &mut client,
                "caukee",
                "https://caukee.travinh.gov.vn",
                &format!("198.51.100.{}", n % 10)
            ),
            204
        );
    }
    // A foreign origin is answered the same and not counted.
    assert_eq!(
        hit(
            &mut client,
            "caukee",
            "https://evil.example",
            "198.51.100.99"
        ),
        204
    );
    let now = eventually(
        Duration::from_secs(15),
        || counts(server, "caukee"),
        |c| today(c).0 == 30,
    );
    assert_eq!(today(&now).0, 30, "{now}");
    assert_eq!(today(&now).1, 10, "{now}");
    assert_visitors(today(&now).2, 10);
    assert_eq!(now["stale"], false);
    assert_eq!(now["definitions"]["today.visits"]["accuracy"], "exact");

    let history = json_of(&client.get("/api/v1/sites/caukee/history?days=3").unwrap());
    assert_eq!(history["days"].as_array().unwrap().len(), 3);
    assert_eq!(history["days"][2]["pageviews"], 30);

    let baseline = admin(
        server,
        "PUT",
        "/admin/v1/sites/caukee/baseline",
        Some(json!({ "value": 7_289_126 })),
    );
    assert_eq!(baseline.status, 200, "{}", baseline.text());
    let lowered = admin(
        server,
        "PUT",
        "/admin/v1/sites/caukee/baseline",
        Some(json!({ "value": 1 })),
    );
    assert_eq!(lowered.status, 409);
    let total = eventually(
        Duration::from_secs(15),
        || counts(server, "caukee"),
        |c| c["total"]["visits"] == 7_289_136,
    );
    assert_eq!(total["total"]["visits"], 7_289_136, "{total}");

    assert_eq!(
        admin(
            server,
            "POST",
            "/admin/v1/salts/rotate",
            Some(json!({ "site": "caukee" }))
        )
        .status,
        200
    );
    // After the rotation the same client is a new visitor (the old salt is gone).
    assert_eq!(
        hit(
            &mut client,
            "caukee",
            "https://caukee.travinh.gov.vn",
            "198.51.100.1"
        ),
        204
    );
    let rotated = eventually(
        Duration::from_secs(15),
        || counts(server, "caukee"),
        |c| today(c).0 == 31,
    );
    assert_eq!(today(&rotated).1, 11, "{rotated}");
    assert_visitors(today(&rotated).2, 11);

    let audit = json_of(&admin(server, "GET", "/admin/v1/audit?limit=10", None));
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in ["site.create", "baseline.set", "salt.rotate"] {
        assert!(actions.contains(&action), "{actions:?}");
    }
    assert!(
        !audit.to_string().contains(TOKEN),
        "the audit log never holds a token"
    );

    assert_eq!(
        admin(server, "DELETE", "/admin/v1/sites/caukee", None).status,
        200
    );
    assert_eq!(
        client.get("/api/v1/sites/caukee/counts").unwrap().status,
        404
    );
}

#[test]
fn the_api_on_the_embedded_store_survives_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let location = data.path().join("footfall-data");
    let location = location.to_str().unwrap();
    let server = start(location);
    exercise_the_api(&server);
    let mut client = HttpClient::connect(server.public()).unwrap();
    for n in 0..5 {
        assert_eq!(
            hit(
                &mut client,
                "demo",
                "http://localhost",
                &format!("192.0.2.{n}")
            ),
            204
        );
    }
    let before = eventually(
        Duration::from_secs(15),
        || counts(&server, "demo"),
        |c| today(c).0 == 5,
    );
    assert_eq!(today(&before).1, 5);
    // The upkeep reports what the store holds in memory: the five open visits at least.
    let open_visits = eventually(
        Duration::from_secs(15),
        || gauge(&server, "footfall_store_open_visits"),
        |value| value.is_some_and(|v| v >= 5.0),
    );
    assert!(open_visits.is_some_and(|v| v >= 5.0), "{open_visits:?}");
    assert!(gauge(&server, "footfall_store_held_bytes").is_some());
    // Five markers take some memory, and not a megabyte.
    let marker_bytes = gauge(&server, "footfall_store_marker_bytes");
    assert!(
        marker_bytes.is_some_and(|bytes| (100.0..1e6).contains(&bytes)),
        "{marker_bytes:?}"
    );
    drop(client);
    drop(server);

    let restarted = start(location);
    let after = counts(&restarted, "demo");
    assert_eq!(
        today(&after),
        today(&before),
        "the embedded store kept everything across the restart"
    );
    // The deleted site stays deleted; counters it left do not resurrect it.
    let mut client = HttpClient::connect(restarted.public()).unwrap();
    assert_eq!(
        client.get("/api/v1/sites/caukee/counts").unwrap().status,
        404
    );
}

#[test]
fn the_api_on_redis() {
    let redis = RedisServer::start();
    let server = start(&redis.url());
    exercise_the_api(&server);
}

/// `footfall serve --store rediss://… --redis-tls-ca …` against a server that also asks
/// for the client certificate (`--redis-tls-cert`, `--redis-tls-key`): a hit is counted and
/// read back through the API.
#[test]
fn a_hit_is_counted_through_redis_over_tls() {
    let pki = TestPki::generate();
    let redis = RedisServer::builder()
        .tls(&pki, ClientCertificates::Required)
        .start();
    let server = builder(&redis.url())
        .args(["--redis-tls-ca".into(), pki.ca_cert()])
        .env("FOOTFALL_REDIS_TLS_CERT", pki.client_cert())
        .env("FOOTFALL_REDIS_TLS_KEY", pki.client_key())
        .start();
    one_page_view_is_counted(&server);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("ff:{demo}:*")
        .query(&mut redis.connection())
        .expect("KEYS over TLS");
    assert!(!keys.is_empty(), "the service wrote to the TLS server");
}

#[test]
fn two_instances_on_one_redis_agree() {
    let redis = RedisServer::start();
    let first = start(&redis.url());
    let second = start(&redis.url());
    let mut clients = [
        HttpClient::connect(first.public()).unwrap(),
        HttpClient::connect(second.public()).unwrap(),
    ];
    // 50 visitors, each seen by both instances: ids must agree (shared salts), and a visit
    // open on one instance goes on when the next hit lands on the other.
    for n in 0..200 {
        let status = hit(
            &mut clients[n % 2],
            "demo",
            "http://localhost",
            &format!("203.0.113.{}", n % 50),
        );
        assert_eq!(status, 204);
    }
    let mut seen = Vec::new();
    for server in [&first, &second] {
        let c = eventually(
            Duration::from_secs(20),
            || counts(server, "demo"),
            |c| today(c).0 == 200,
        );
        assert_eq!(
            today(&c).1,
            50,
            "one visit per visitor across both instances: {c}"
        );
        assert_visitors(today(&c).2, 50);
        // Online is exact while small (bounded sets), unlike the day's HyperLogLog.
        assert_eq!(c["online"]["visitors"], 50, "{c}");
        assert_eq!(c["definitions"]["online.visitors"]["accuracy"], "exact");
        seen.push(today(&c));
    }
    assert_eq!(seen[0], seen[1], "both instances serve the same figures");

    // A site created through one instance is served by the other after its registry sync.
    let created = admin(
        &first,
        "PUT",
        "/admin/v1/sites/tuyengiao",
        Some(json!({ "hostnames": ["tuyengiao.travinh.gov.vn"] })),
    );
    assert_eq!(created.status, 201);
    let mut client = HttpClient::connect(second.public()).unwrap();
    let status = eventually(
        Duration::from_secs(20),
        || client.get("/api/v1/sites/tuyengiao/counts").unwrap().status,
        |status| *status == 200,
    );
    assert_eq!(status, 200, "the second instance learned the new site");
}

/// What someone who can read Redis finds under the salt keys: sealed values only (the
/// 4-byte tag, key id, nonce, and the salt encrypted), never a 32-byte salt; and an
/// instance with another secret can use none of them: its hits are dropped as
/// `salt_unavailable`, and its log says which secret sealed the salt.
#[test]
fn salts_in_redis_are_sealed_and_useless_without_the_secret() {
    let redis = RedisServer::start();
    let server = start(&redis.url());
    one_page_view_is_counted(&server);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("ff:{demo}:salt:*")
        .query(&mut redis.connection())
        .expect("KEYS");
    assert!(!keys.is_empty(), "a salt was stored");
    for key in &keys {
        let value: Vec<u8> = redis::cmd("GET")
            .arg(key)
            .query(&mut redis.connection())
            .expect("GET");
        assert_eq!(value.len(), 80, "{key}: {value:?}");
        assert!(value.starts_with(b"ffs1"), "{key}: {value:?}");
    }

    let other = builder(&redis.url())
        .env(
            "FOOTFALL_SALT_SECRET",
            "another deployment's secret of 32 bytes or more",
        )
        .start();
    let mut client = HttpClient::connect(other.public()).unwrap();
    // The beacon is answered as always; the hit cannot get a visitor id.
    assert_eq!(
        hit(&mut client, "demo", "http://localhost", "203.0.113.10"),
        204
    );
    let dropped = eventually(
        Duration::from_secs(20),
        || {
            let metrics = other.internal_get("/metrics").text();
            metrics.contains(r#"footfall_hits_dropped_total{reason="salt_unavailable"} 1"#)
        },
        |dropped| *dropped,
    );
    assert!(
        dropped,
        "the hit was not dropped as salt_unavailable:\n{}",
        other.log()
    );
    assert!(
        other.log().contains("not among the accepted salt secrets"),
        "{}",
        other.log()
    );
    assert_eq!(today(&counts(&server, "demo")).0, 1, "nothing counted");
}
