//! Imported history on a real `redis-server`: `footfall import-history` sends an old
//! counter's days to `footfall serve --store redis://…`, the service restarts, and the
//! history (CSV and JSON) still shows them as imported, stored in Redis under the site's
//! hash tag.

use std::process::Command;
use std::time::Duration;

use footfall::clock::Clock;
use footfall_tests::footfall_server::{FootfallServer, HttpClient, footfall_binary};
use footfall_tests::redis_server::RedisServer;

const TOKEN: &str = "e2e-history-admin-token-0123456789";

#[test]
fn imported_history_survives_a_restart_on_redis() {
    let redis = RedisServer::start();
    let mut server = FootfallServer::builder()
        .store(redis.url())
        .args(["--admin-tokens", TOKEN])
        .start();

    // Two settled days in two local years, within the default retention: ten days ago,
    // and the last day of the year before it.
    let today = footfall::clock::SystemClock
        .now()
        .in_tz("Asia/Ho_Chi_Minh")
        .expect("bundled zone")
        .date();
    let recent = today.checked_sub(jiff::ToSpan::days(10)).expect("a date");
    let older = jiff::civil::date(recent.year() - 1, 12, 31);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("old-counter.csv");
    std::fs::write(
        &file,
        format!("date,pageviews,visits,visitors\n{older},50,40,30\n{recent},20,10,5\n"),
    )
    .expect("write");
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).expect("write");
    // restart() keeps the listener ports.
    let internal = server.internal();
    let import = || {
        Command::new(footfall_binary())
            .args(["import-history", "--site", "demo", "--server"])
            .arg(format!("http://{internal}"))
            .arg("--token-file")
            .arg(&token)
            .arg("--file")
            .arg(&file)
            .env_remove("FOOTFALL_ADMIN_URL")
            .env_remove("FOOTFALL_ADMIN_TOKEN_FILE")
            .output()
            .expect("footfall import-history runs")
    };
    let output = import();
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains("2 day(s) were added"), "{report}");

    // Stored in Redis, one document per year, under the site's hash tag.
    let mut connection = redis.connection();
    for year in [older.year(), recent.year()] {
        let exists: bool = redis::cmd("EXISTS")
            .arg(format!("ff:{{demo}}:hist:{year}"))
            .query(&mut connection)
            .expect("EXISTS");
        assert!(exists, "no document for {year}");
    }

    server.terminate();
    assert!(
        server.wait_exit(Duration::from_secs(20)).is_some(),
        "stopped"
    );
    server.restart();

    let mut client = HttpClient::connect(server.public()).expect("public listener");
    let csv = client
        .get("/api/v1/sites/demo/history?days=400&format=csv")
        .expect("history answered");
    assert_eq!(csv.status, 200, "{}", csv.text());
    let csv = csv.text();
    assert!(
        csv.starts_with("date,pageviews,visits,visitors,source\n"),
        "{csv}"
    );
    assert!(
        csv.contains(&format!("\n{older},50,40,30,imported\n")),
        "{csv}"
    );
    assert!(
        csv.contains(&format!("\n{recent},20,10,5,imported\n")),
        "{csv}"
    );
    let mut client = HttpClient::connect(server.public()).expect("public listener");
    let json = client
        .get("/api/v1/sites/demo/history?days=400")
        .expect("history answered");
    let json: serde_json::Value = serde_json::from_slice(&json.body).expect("JSON");
    let imported = json["days"]
        .as_array()
        .expect("days")
        .iter()
        .filter(|d| d["source"] == "imported")
        .count();
    assert_eq!(imported, 2, "{json}");

    // After the restart the same file changes nothing.
    let again = import();
    let report = String::from_utf8_lossy(&again.stdout).into_owned();
    assert!(again.status.success(), "{report}");
    assert!(report.contains("nothing changed"), "{report}");
}
