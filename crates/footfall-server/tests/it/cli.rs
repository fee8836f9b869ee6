//! The `footfall` binary end to end: real process, real files.
//!
//! Expected values are computed with the library directly, independently of the
//! command-line parsing and file handling under test.

use footfall::sketch::{Encoding, Hll};

use crate::support::{LOOPBACK_LISTENERS, footfall, footfall_command, spawn_with_log, text};

#[test]
fn add_count_and_inspect_a_sketch_file() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let file = directory.path().join("site.hll");
    let elements: Vec<String> = (0..5000).map(|i| format!("visitor-{i}")).collect();
    let input = elements.join("\r\n") + "\r\n";

    let output = footfall(
        &["sketch".as_ref(), "add".as_ref(), file.as_os_str()],
        input.as_bytes(),
    );
    assert!(output.status.success(), "stderr: {}", text(&output.stderr));

    let mut expected = Hll::new();
    for element in &elements {
        expected.add(element.as_bytes());
    }
    let stdout = text(&output.stdout);
    assert!(stdout.contains("elements read: 5000\n"), "{stdout}");
    assert!(
        stdout.contains(&format!("estimate: {}\n", expected.count())),
        "{stdout}"
    );
    // 5000 distinct elements no longer fit Redis's sparse limit.
    assert_eq!(expected.encoding(), Encoding::Dense);
    assert_eq!(
        std::fs::read(&file).expect("written"),
        expected.to_redis_bytes()
    );

    // The file with redis-cli's newline appended counts the same.
    let copy = directory.path().join("copy.hll");
    let mut bytes = std::fs::read(&file).expect("read");
    bytes.push(b'\n');
    std::fs::write(&copy, &bytes).expect("write");
    let output = footfall(
        &[
            "sketch".as_ref(),
            "count".as_ref(),
            file.as_os_str(),
            copy.as_os_str(),
        ],
        b"",
    );
    assert!(output.status.success(), "stderr: {}", text(&output.stderr));
    assert_eq!(text(&output.stdout), format!("{}\n", expected.count()));

    let output = footfall(
        &["sketch".as_ref(), "inspect".as_ref(), copy.as_os_str()],
        b"",
    );
    assert!(output.status.success(), "stderr: {}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("encoding: dense\n"), "{stdout}");
    assert!(
        stdout.contains("size: 12304 bytes (plus the trailing newline"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("estimate: {}\n", expected.count())),
        "{stdout}"
    );
}

#[test]
fn corrupt_input_fails_with_a_message_and_nonzero_status() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let file = directory.path().join("bad.hll");
    std::fs::write(&file, b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0\x7f").expect("write");
    let output = footfall(
        &["sketch".as_ref(), "count".as_ref(), file.as_os_str()],
        b"",
    );
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("bad.hll"), "{stderr}");
    assert!(stderr.contains("XZERO"), "{stderr}");

    // `count` needs at least one file.
    let output = footfall(&["sketch".as_ref(), "count".as_ref()], b"");
    assert!(!output.status.success());
}

#[test]
fn a_store_password_never_reaches_the_output() {
    // Port 1 on loopback refuses at once, so both commands fail fast, naming the store.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let target = dir.path().join("target-data");
    let runs: [&[&std::ffi::OsStr]; 2] = [
        &[
            "serve".as_ref(),
            "--store".as_ref(),
            "redis://user:s3cret-pass@127.0.0.1:1/0".as_ref(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--admin-listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--salt-secret".as_ref(),
            "a-salt-secret-for-the-cli-tests-only".as_ref(),
        ],
        &[
            "migrate".as_ref(),
            "--from".as_ref(),
            "redis://:s3cret-pass@127.0.0.1:1".as_ref(),
            "--to".as_ref(),
            target.as_os_str(),
        ],
    ];
    for args in runs {
        let output = footfall(args, b"");
        let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
        assert!(!output.status.success(), "{args:?}: {stderr}");
        assert!(stderr.contains("127.0.0.1:1"), "{args:?}: {stderr}");
        assert!(stderr.contains(":***@"), "{args:?}: {stderr}");
        assert!(
            !stdout.contains("s3cret") && !stderr.contains("s3cret"),
            "{args:?}: the password was printed: {stdout}{stderr}"
        );
    }
}

#[test]
fn a_redis_store_without_a_salt_secret_is_refused_naming_the_setting() {
    let output = footfall(
        &[
            "serve".as_ref(),
            "--store".as_ref(),
            "redis://127.0.0.1:1/0".as_ref(),
        ],
        b"",
    );
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("FOOTFALL_SALT_SECRET_FILE"), "{stderr}");
    assert!(stderr.contains("FOOTFALL_SALT_SECRET"), "{stderr}");
}

/// `footfall serve` on an embedded store, its standard error a pipe as under systemd or
/// in a container: the log is JSON without colour codes, and the service says that it
/// made a salt secret and where it keeps it (mode 0600, beside the database file).
#[test]
fn serve_logs_json_without_colour_and_keeps_a_salt_secret_beside_its_store() {
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = dir.path().join("data");
    let mut command = footfall_command();
    command
        .arg("serve")
        .args(LOOPBACK_LISTENERS)
        .arg("--store")
        .arg(&store)
        // Whatever the environment running the tests says, the defaults are under test.
        .env_remove("FOOTFALL_LOG_FORMAT")
        .env_remove("FOOTFALL_SALT_SECRET")
        .env_remove("FOOTFALL_SALT_SECRET_FILE");
    let (mut child, lines) = spawn_with_log(&mut command);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.contains("footfall listening"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    child.kill().expect("stop the service");
    child.wait().expect("the service exits");
    let log = seen.join("\n");
    assert!(log.contains("footfall listening"), "never listened: {log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a piped log: {log}"
    );
    for line in &seen {
        let json: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(json["level"].is_string(), "{line}");
    }
    let secret = store.join("salt-secret");
    let announced = seen
        .iter()
        .find(|line| line.contains("salt secret"))
        .unwrap_or_else(|| panic!("no word of the salt secret: {log}"));
    assert!(announced.contains("made now"), "{announced}");
    assert!(
        announced.contains(&*secret.to_string_lossy()),
        "{announced}"
    );
    let kept = std::fs::read_to_string(&secret).expect("the secret is kept");
    assert!(
        !log.contains(kept.lines().last().expect("a secret line")),
        "the secret was logged"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret)
            .expect("kept")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
}

/// `footfall import-history` against `footfall serve` in process: a two-year CSV is sent
/// one year per request, read back through the history, and sent again without change;
/// a day with a broken rule stops it before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_history_sends_a_file_year_by_year_and_is_idempotent() {
    use std::sync::Arc;

    use footfall::store::{AnyStore, MemoryStore};

    use crate::support::{PATIENCE, memory_service_config, spawn_service};

    const TOKEN: &str = "import-history-cli-test-token";
    let config = memory_service_config(&["--admin-tokens", TOKEN, "--demo"]);
    let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
    let service = spawn_service(config, store, PATIENCE).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let token = dir.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).expect("write");
    // Two days in two years, both within the default retention of 400 days and settled:
    // ten days ago, and the last day of the year before it.
    let today = {
        use footfall::clock::Clock;
        footfall::clock::SystemClock
            .now()
            .in_tz("Asia/Ho_Chi_Minh")
            .expect("bundled")
            .date()
    };
    let recent = today.checked_sub(jiff::ToSpan::days(10)).expect("a date");
    let older = jiff::civil::date(recent.year() - 1, 12, 31);
    let file = dir.path().join("old-counter.csv");
    std::fs::write(
        &file,
        format!("date,pageviews,visits,visitors\r\n{older},50,40,30\r\n{recent},20,10,5\r\n"),
    )
    .expect("write");
    let server = format!("http://{}", service.bound.internal);
    let run = move |file: std::path::PathBuf, extra: &'static [&'static str]| {
        let (server, token) = (server.clone(), token.clone());
        tokio::task::spawn_blocking(move || {
            footfall_command()
                .args(["import-history", "--site", "demo", "--server", &server])
                .arg("--token-file")
                .arg(&token)
                .arg("--file")
                .arg(&file)
                .args(extra)
                .env_remove("FOOTFALL_ADMIN_URL")
                .output()
                .expect("footfall runs")
        })
    };
    let first = run(file.clone(), &[]).await.expect("joined");
    assert!(first.status.success(), "{}", text(&first.stderr));
    let report = text(&first.stdout);
    assert!(
        report.contains(&format!("2 day(s) from {older} to {recent} in 2 year(s)")),
        "{report}"
    );
    assert!(report.contains("2 day(s) were added"), "{report}");
    assert!(
        report.contains("warning: the imported days add up to more than the baseline"),
        "{report}"
    );

    let again = run(file.clone(), &[]).await.expect("joined");
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stdout).contains("2 unchanged: nothing changed"),
        "{}",
        text(&again.stdout)
    );

    // Read back through the service (the clock is real: ask for enough days).
    let history = tokio::task::spawn_blocking({
        let public = service.bound.public;
        move || {
            use std::io::{Read as _, Write as _};
            let mut stream = std::net::TcpStream::connect(public).expect("connect");
            stream
                .write_all(b"GET /api/v1/sites/demo/history?days=400&format=csv HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .expect("write");
            let mut answer = String::new();
            stream.read_to_string(&mut answer).expect("read");
            answer
        }
    })
    .await
    .expect("joined");
    assert!(
        history.contains(&format!("\n{older},50,40,30,imported\n")),
        "{history}"
    );
    assert!(
        history.contains(&format!("\n{recent},20,10,5,imported\n")),
        "{history}"
    );

    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "date,pageviews,visits,visitors\n2025-02-01,5,9,1\n").expect("write");
    let refused = run(bad, &[]).await.expect("joined");
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("visits (9) is more than pageviews (5)"),
        "{}",
        text(&refused.stderr)
    );

    let _ = service.stop.send(());
    let _ = tokio::time::timeout(PATIENCE, service.task).await;
}
