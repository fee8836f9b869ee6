//! The service under faults, against real processes: Redis killed, slow or full, the
//! service stopped with SIGTERM or killed with SIGKILL, a Redis Cluster master killed.
//!
//! Every test keeps exact books: a hit is *acknowledged* when its `POST /api/v1/hit`
//! answered 204, and what the store ends up with is the acknowledged hits minus the hits
//! `/metrics` reports as dropped (`footfall_hits_dropped_total`, every reason). Where a
//! fault makes a write ambiguous (a timeout after the batch was sent, which Redis may still
//! run), the test says so and bounds the count on both sides instead.
//!
//! All hits come from one client (same address and User-Agent), so pageviews equal hits.
//! Waits are bounded by deadlines; the processes are killed when their handles drop.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use footfall::clock::Clock;
use footfall::counter;
use footfall::store::{EmbeddedStore, RedisStore, Store};
use footfall::{Metric, Window};
use footfall_server::sites::{Site, SiteSettings};
use footfall_tests::footfall_server::{FootfallServer, HttpClient, HttpResponse};
use footfall_tests::redis_cluster::RedisCluster;
use footfall_tests::redis_server::RedisServer;

/// The beacon every test sends: the demo site, registered by default.
const HIT_BODY: &[u8] = br#"{"site":"demo","path":"/"}"#;
const HIT_HEADERS: [(&str, &str); 3] = [
    ("Content-Type", "text/plain"),
    ("Origin", "http://localhost"),
    (
        "User-Agent",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    ),
];

/// No request may take longer than this, whatever the store does. A hit never waits on
/// the store, so requests take milliseconds; two seconds leaves room for a loaded two-core
/// machine while staying far below the 10 s request timeout and Redis's 2 s response
/// timeout plus reconnects (a request that waited on Redis would show up here).
const REQUEST_BOUND: Duration = Duration::from_secs(2);

/// How long the tests wait for the service to catch up (buffer drained, failover seen).
const CATCH_UP: Duration = Duration::from_secs(30);

/// So many hits per minute from one address that the rate limit never drops one.
const NO_RATE_LIMIT: &str = "100000000";

// ---------------------------------------------------------------------------------------
// Redis killed and restarted.

#[test]
fn redis_killed_under_load_then_restarted_buffered_hits_are_written() {
    let started = Instant::now();
    let mut redis = RedisServer::builder()
        .args(["--appendonly", "yes", "--appendfsync", "always"])
        .start();
    let server = FootfallServer::builder()
        .store(redis.url())
        .args(["--rate-limit", NO_RATE_LIMIT])
        .args(["--flush-interval-ms", "50", "--counts-ttl", "1"])
        .start();

    // A first hit, written, and a first read: the cache then has numbers to serve.
    let mut client = HttpClient::connect(server.public()).expect("connect");
    assert_eq!(post_hit(&mut client).status, 204);
    let warm_acked = 1;
    wait_until(&server, "the first hit is written", |m| {
        m.value("footfall_hits_written_total") >= 1
    });
    let (before, stale) = read_counts(&server);
    assert!(!stale, "counts are fresh while Redis is up");
    assert_eq!(before, 1);

    let load = Load::start(server.public(), 2, Duration::from_millis(2));
    std::thread::sleep(Duration::from_millis(1500));
    redis.kill();
    let killed_at = Instant::now();

    // The outage: the service stays alive and keeps serving the last numbers, marked stale.
    let mut saw_stale = false;
    let mut slowest_probe = Duration::ZERO;
    while killed_at.elapsed() < Duration::from_secs(10) {
        let probe = Instant::now();
        let live = server.internal_get("/livez");
        assert_eq!(
            live.status,
            200,
            "/livez during the outage: {}",
            live.text()
        );
        let (pageviews, stale) = read_counts(&server);
        slowest_probe = slowest_probe.max(probe.elapsed());
        assert!(
            pageviews >= before,
            "counts never go back: {pageviews} < {before}"
        );
        saw_stale |= stale;
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        saw_stale,
        "counts were never marked stale during a 10 s outage"
    );
    assert!(
        slowest_probe < REQUEST_BOUND,
        "/livez + counts took {slowest_probe:?} during the outage"
    );
    let at_restart = metrics(&server);
    let held = at_restart.in_memory();
    assert!(
        held > 0,
        "hits acknowledged during the outage should be held in the buffer: {at_restart:?}"
    );

    redis.restart();
    std::thread::sleep(Duration::from_millis(1500));
    let report = load.stop();
    report.assert_fast_and_all_acked();

    let settled = wait_until(&server, "the buffer drains after Redis returns", |m| {
        m.in_memory() == 0
    });
    assert!(
        settled.value("footfall_hits_written_total")
            >= at_restart.value("footfall_hits_written_total") + held,
        "the hits held at restart were written: at restart {at_restart:?}, now {settled:?}"
    );
    let acked = warm_acked + report.acked();
    let expected = acked - settled.dropped_total();
    let stored = block_on(async {
        let store = RedisStore::connect(&redis.url()).await.expect("connect");
        pageviews(&store).await
    });
    assert_eq!(
        stored, expected,
        "Redis holds acknowledged − dropped: acked {acked}, {settled:?}"
    );
    // The counts API catches up with the store once the cache refreshes.
    let deadline = Instant::now() + CATCH_UP;
    loop {
        let (pageviews, stale) = read_counts(&server);
        if !stale && pageviews == expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "counts API still says {pageviews} (stale {stale}), expected {expected}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "redis kill: acked {acked}, dropped {}, held at restart {held}, slowest request {:?}, took {:?}",
        settled.dropped_total(),
        report.slowest(),
        started.elapsed()
    );
}

/// Redis killed while the service's connection is idle: the next batch finds the
/// connection closed ("broken pipe") before anything was sent, so it is retried, not
/// dropped as possibly written; once Redis is back every hit is there.
#[test]
fn redis_killed_while_idle_the_next_batch_is_retried_not_dropped() {
    let mut redis = RedisServer::builder()
        .args(["--appendonly", "yes", "--appendfsync", "always"])
        .start();
    let server = FootfallServer::builder()
        .store(redis.url())
        .args(["--rate-limit", NO_RATE_LIMIT, "--flush-interval-ms", "20"])
        .start();
    let mut client = HttpClient::connect(server.public()).expect("connect");
    assert_eq!(post_hit(&mut client).status, 204);
    wait_until(&server, "the first hit is written", |m| {
        m.value("footfall_hits_written_total") >= 1
    });
    // Idle, then Redis goes away; hits keep coming.
    std::thread::sleep(Duration::from_millis(300));
    redis.kill();
    let mut acked = 1;
    for _ in 0..10 {
        if post_hit(&mut client).status == 204 {
            acked += 1;
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    redis.restart();
    let settled = wait_until(&server, "every hit is written after the restart", |m| {
        m.in_memory() == 0 && m.value("footfall_hits_written_total") >= acked
    });
    assert_eq!(settled.dropped("store_ambiguous"), 0, "{settled:?}");
    let stored = block_on(async {
        let store = RedisStore::connect(&redis.url()).await.expect("connect");
        pageviews(&store).await
    });
    assert_eq!(stored, acked, "{settled:?}");
}

// ---------------------------------------------------------------------------------------
// Redis slow, Redis full.

/// A small buffer, so the bound is reached in a second of load.
const SMALL_BUFFER: u64 = 200;
const SMALL_BATCH: u64 = 50;
/// Batches a Redis-backed service writes at once (`AnyStore::concurrent_batches`).
const REDIS_IN_FLIGHT: u64 = 4;

fn small_buffer_server(redis: &RedisServer) -> FootfallServer {
    FootfallServer::builder()
        .store(redis.url())
        .args(["--rate-limit", NO_RATE_LIMIT, "--flush-interval-ms", "20"])
        .args(["--buffer-capacity", &SMALL_BUFFER.to_string()])
        .args(["--flush-batch", &SMALL_BATCH.to_string()])
        .start()
}

/// Polls `/metrics` while `until` is false: the buffer never holds more than its bound.
/// Returns the fullest the buffer was seen.
fn watch_buffer_bound(server: &FootfallServer, until: impl Fn() -> bool) -> u64 {
    let mut fullest = 0;
    let deadline = Instant::now() + CATCH_UP;
    while !until() {
        let m = metrics(server);
        let gauge = m.value("footfall_buffer_hits");
        assert!(
            gauge <= SMALL_BUFFER,
            "footfall_buffer_hits {gauge} > capacity: {m:?}"
        );
        // Hits accepted and neither written nor dropped are in memory: the queue plus the
        // batches being written and the one the flusher is gathering.
        assert!(
            m.in_memory() <= SMALL_BUFFER + (REDIS_IN_FLIGHT + 1) * SMALL_BATCH,
            "{} hits in memory, more than capacity + the batches in hand: {m:?}",
            m.in_memory()
        );
        fullest = fullest.max(gauge);
        assert!(Instant::now() < deadline, "the fault did not end in time");
        std::thread::sleep(Duration::from_millis(100));
    }
    fullest
}

#[test]
fn redis_slow_buffer_stays_bounded_and_recovers() {
    let started = Instant::now();
    let redis = RedisServer::builder()
        .args(["--enable-debug-command", "local"])
        .start();
    let server = small_buffer_server(&redis);
    let load = Load::start(server.public(), 2, Duration::from_millis(1));
    std::thread::sleep(Duration::from_secs(1));

    // DEBUG SLEEP blocks the whole server, as a long fork or a slow disk would.
    let mut connection = redis.connection();
    let sleep_done = Arc::new(AtomicBool::new(false));
    let sleeper = {
        let sleep_done = Arc::clone(&sleep_done);
        std::thread::spawn(move || {
            let reply: redis::RedisResult<String> = redis::cmd("DEBUG")
                .arg("SLEEP")
                .arg(3)
                .query(&mut connection);
            sleep_done.store(true, Ordering::SeqCst);
            reply.expect("DEBUG SLEEP 3");
        })
    };
    let fullest = watch_buffer_bound(&server, || sleep_done.load(Ordering::SeqCst));
    assert!(
        fullest >= SMALL_BUFFER / 2,
        "footfall_buffer_hits never showed the buffer filling during the stall (at most {fullest})"
    );
    sleeper.join().expect("the DEBUG SLEEP thread");
    let after_sleep = metrics(&server);
    std::thread::sleep(Duration::from_millis(1500));
    let report = load.stop();
    report.assert_fast_and_all_acked();

    let settled = wait_until(&server, "the buffer drains after the sleep", |m| {
        m.in_memory() == 0
            && m.value("footfall_hits_written_total")
                > after_sleep.value("footfall_hits_written_total")
    });
    assert!(
        settled.dropped("buffer_full") > 0,
        "a 3 s stall with a {SMALL_BUFFER}-hit buffer must overflow it: {settled:?}"
    );
    // A batch that timed out (Redis answers in 2 s at most, the sleep is 3 s) was sent:
    // Redis runs it when it wakes up. The service cannot know, counts it dropped as
    // `store_ambiguous`, and the store may hold it.
    let acked = report.acked();
    let floor = acked - settled.dropped_total();
    let ceiling = floor + settled.dropped("store_ambiguous");
    let stored = block_on(async {
        let store = RedisStore::connect(&redis.url()).await.expect("connect");
        pageviews(&store).await
    });
    assert!(
        (floor..=ceiling).contains(&stored),
        "Redis holds {stored}, expected acked − dropped = {floor} (up to {ceiling} with the \
         ambiguous batches): {settled:?}"
    );
    eprintln!(
        "redis slow: acked {acked}, stored {stored}, fullest buffer {fullest}, {settled:?}, \
         slowest request {:?}, took {:?}",
        report.slowest(),
        started.elapsed()
    );
}

#[test]
fn a_batch_the_store_rejects_is_dropped_and_counted_not_retried_forever() {
    // A key of the demo site holding the wrong type makes Redis reject the site's batch
    // script part-way (WRONGTYPE), after earlier commands of it may have run: retrying
    // would count those twice, so the flusher drops the batch as `store_ambiguous`, and
    // the buffer keeps flowing instead of filling behind a batch retried forever.
    let redis = RedisServer::start();
    let server = small_buffer_server(&redis);
    let mut client = HttpClient::connect(server.public()).expect("public listener");
    // Today's visitor sketch of the demo site (in its time zone).
    let today = footfall::CountingRules::default()
        .calendar()
        .day(footfall::clock::SystemClock.now());
    let total = format!("ff:{{demo}}:uv:d:{today}");
    let mut connection = redis.connection();
    redis::cmd("SET")
        .arg(&total)
        .arg("not a sketch")
        .exec(&mut connection)
        .expect("SET");

    let mut acked = 0;
    for _ in 0..100 {
        if post_hit(&mut client).status == 204 {
            acked += 1;
        }
    }
    let settled = wait_until(&server, "every hit written or dropped", |m| {
        m.value("footfall_hits_accepted_total") == acked && m.in_memory() == 0
    });
    assert!(settled.dropped("store_ambiguous") > 0, "{settled:?}");
    assert!(
        settled.value(r#"footfall_store_errors_total{operation="apply"}"#) > 0,
        "{settled:?}"
    );
    assert_eq!(
        settled.value("footfall_buffer_hits"),
        0,
        "nothing is stuck in the buffer: {settled:?}"
    );

    // Repaired, the site counts again, exactly.
    redis::cmd("DEL")
        .arg(total)
        .exec(&mut connection)
        .expect("DEL");
    let before = settled.value("footfall_hits_written_total");
    for _ in 0..20 {
        assert_eq!(post_hit(&mut client).status, 204);
    }
    wait_until(&server, "the next hits written", |m| {
        m.value("footfall_hits_written_total") == before + 20
    });
}

#[test]
fn redis_full_buffer_stays_bounded_drops_are_counted_and_it_recovers() {
    let started = Instant::now();
    let redis = RedisServer::start();
    let server = small_buffer_server(&redis);
    let load = Load::start(server.public(), 2, Duration::from_millis(1));
    wait_until(&server, "hits are written", |m| {
        m.value("footfall_hits_written_total") > 0
    });

    // Below the current usage, with noeviction: every write is refused with OOM from now
    // on, deterministically (a limit just above the usage would wait for the hits to grow
    // the keys past it, which one visitor's hits barely do).
    let mut connection = redis.connection();
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query(&mut connection)
        .expect("INFO");
    let used: u64 = info
        .lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory in INFO memory");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("noeviction")
        .query(&mut connection)
        .expect("CONFIG SET maxmemory-policy");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(used / 2)
        .query(&mut connection)
        .expect("CONFIG SET maxmemory");
    let full_at = metrics(&server);

    // Full for a while: writes fail, the buffer fills and overflows, counted.
    let full_since = Instant::now();
    let fullest = watch_buffer_bound(&server, || full_since.elapsed() > Duration::from_secs(3));
    assert!(
        fullest >= SMALL_BUFFER / 2,
        "footfall_buffer_hits never showed the buffer filling while Redis was full (at most {fullest})"
    );
    let full = metrics(&server);
    assert!(
        full.value(r#"footfall_store_errors_total{operation="apply"}"#)
            > full_at.value(r#"footfall_store_errors_total{operation="apply"}"#),
        "writes failed while Redis was full: {full:?}"
    );
    assert!(
        full.dropped("buffer_full") > 0,
        "a full store with a {SMALL_BUFFER}-hit buffer must overflow it: {full:?}"
    );

    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(0)
        .query(&mut connection)
        .expect("CONFIG SET maxmemory 0");
    std::thread::sleep(Duration::from_millis(1500));
    let report = load.stop();
    report.assert_fast_and_all_acked();
    let settled = wait_until(&server, "the buffer drains once Redis has room", |m| {
        m.in_memory() == 0
            && m.value("footfall_hits_written_total") > full.value("footfall_hits_written_total")
    });
    // An OOM refusal is clean (the script's first write is refused, nothing runs), so the
    // books are exact.
    let acked = report.acked();
    let expected = acked - settled.dropped_total();
    let stored = block_on(async {
        let store = RedisStore::connect(&redis.url()).await.expect("connect");
        pageviews(&store).await
    });
    assert_eq!(stored, expected, "acked {acked}, {settled:?}");
    eprintln!(
        "redis full: acked {acked}, stored {stored}, fullest buffer {fullest}, {settled:?}, \
         slowest request {:?}, took {:?}",
        report.slowest(),
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------
// SIGTERM while the store is down: the stop always ends.

/// How the store is made unavailable before the service is stopped.
#[derive(Clone, Copy, Debug)]
enum Outage {
    /// Redis killed: connections are refused, and the flusher retries.
    Killed,
    /// Redis stopped with SIGSTOP: connections hang, and a write waits for its timeout
    /// (longer than the grace).
    Frozen,
}

/// A SIGTERM while Redis is unavailable stops the service within the shutdown grace
/// whatever the store does; the hits it could not write are logged and counted, not
/// silently lost to a supervisor's SIGKILL.
fn sigterm_with_the_store_unavailable_ends_within_the_grace(outage: Outage) {
    let mut redis = RedisServer::start();
    // Shorter than Redis's response timeout, so a frozen write is cut off by the stop.
    let grace = Duration::from_secs(1);
    let mut server = FootfallServer::builder()
        .store(redis.url())
        .args(["--rate-limit", NO_RATE_LIMIT, "--flush-interval-ms", "20"])
        .args(["--shutdown-grace", &grace.as_secs().to_string()])
        .start();
    let mut client = HttpClient::connect(server.public()).expect("connect");
    for _ in 0..5 {
        assert_eq!(post_hit(&mut client).status, 204);
    }
    wait_until(&server, "the first hits are written", |m| {
        m.value("footfall_hits_written_total") >= 5
    });
    match outage {
        Outage::Killed => redis.kill(),
        Outage::Frozen => {
            let status = std::process::Command::new("kill")
                .args(["-STOP", &redis.pid().to_string()])
                .status()
                .expect("kill -STOP");
            assert!(status.success());
        }
    }
    // Two waves: the first batch after a kill meets the dead connection, which may have
    // taken it ("broken pipe", counted as possibly written); the second finds Redis
    // refusing connections (or still frozen) and is held for retries.
    let mut held = 0;
    for wave in 0..2 {
        for _ in 0..20 {
            if post_hit(&mut client).status == 204 {
                held += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(if wave == 0 { 300 } else { 500 }));
    }
    let before = metrics(&server);
    assert!(before.in_memory() > 0, "hits are held: {before:?}");

    let terminated_at = Instant::now();
    server.terminate();
    let status = server.wait_exit(grace + Duration::from_secs(20));
    let exit_took = terminated_at.elapsed();
    if let Outage::Frozen = outage {
        let _ = std::process::Command::new("kill")
            .args(["-CONT", &redis.pid().to_string()])
            .status();
    }
    let status = status
        .unwrap_or_else(|| panic!("{outage:?}: still running after SIGTERM\n{}", server.log()));
    assert!(status.success(), "exit status {status}\n{}", server.log());
    // The grace, plus the drain of the listeners and the process's exit.
    assert!(
        exit_took < grace + Duration::from_secs(2),
        "{outage:?}: exited {exit_took:?} after SIGTERM, grace {grace:?}\n{}",
        server.log()
    );
    let log = strip_ansi(&server.log());
    let unwritten: u64 = log
        .lines()
        .rfind(|line| line.contains("stopped"))
        .and_then(|line| line.split("unflushed=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `stopped … unflushed=…` line in the log:\n{log}"));
    assert!(
        unwritten >= before.in_memory(),
        "{outage:?}: {unwritten} hits reported unwritten, {} were held of {held}\n{log}",
        before.in_memory()
    );
    assert!(
        log.contains("stopping with hits not written"),
        "the stop says what it could not write:\n{log}"
    );
    eprintln!("{outage:?}: exited {exit_took:?} after SIGTERM with {unwritten} hits unwritten");
}

#[test]
fn sigterm_while_redis_is_killed_ends_within_the_grace() {
    sigterm_with_the_store_unavailable_ends_within_the_grace(Outage::Killed);
}

#[test]
fn sigterm_while_redis_is_frozen_ends_within_the_grace() {
    sigterm_with_the_store_unavailable_ends_within_the_grace(Outage::Frozen);
}

// ---------------------------------------------------------------------------------------
// SIGTERM and SIGKILL of the service on the embedded store.

#[test]
fn sigterm_under_load_finishes_requests_flushes_and_exits_within_grace() {
    let started = Instant::now();
    let data = tempfile::tempdir().expect("tempdir");
    let grace = Duration::from_secs(10);
    let mut server = FootfallServer::builder()
        .store(data.path().display().to_string())
        // Nothing is written before the shutdown flush: no time or size trigger fires.
        .args([
            "--rate-limit",
            NO_RATE_LIMIT,
            "--flush-interval-ms",
            "60000",
        ])
        .args(["--flush-batch", "100000", "--buffer-capacity", "100000"])
        .args(["--shutdown-grace", &grace.as_secs().to_string()])
        .start();
    let load = Load::start(server.public(), 3, Duration::from_millis(1));
    std::thread::sleep(Duration::from_secs(2));
    let before = metrics(&server);
    assert_eq!(before.value("footfall_hits_written_total"), 0, "{before:?}");
    assert_eq!(before.dropped_total(), 0, "{before:?}");
    assert!(
        before.value("footfall_hits_accepted_total") > 0,
        "{before:?}"
    );

    // A request in flight at SIGTERM: its head and half its body are in, the rest comes
    // after the signal. It must still be answered, and counted.
    let mut in_flight = TcpStream::connect(server.public()).expect("connect");
    in_flight
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut head = format!("POST /api/v1/hit HTTP/1.1\r\nHost: {}\r\n", server.public());
    for (name, value) in HIT_HEADERS {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", HIT_BODY.len()));
    let (first_half, second_half) = HIT_BODY.split_at(HIT_BODY.len() / 2);
    in_flight.write_all(head.as_bytes()).expect("write head");
    in_flight.write_all(first_half).expect("write half a body");
    in_flight.flush().expect("flush");
    // Let the service read the head, so the request is under way when the signal lands.
    std::thread::sleep(Duration::from_millis(200));

    let terminated_at = Instant::now();
    server.terminate();
    std::thread::sleep(Duration::from_millis(300));
    in_flight.write_all(second_half).expect("write the rest");
    let mut status_line = String::new();
    BufReader::new(&in_flight)
        .read_line(&mut status_line)
        .expect("the in-flight request is answered");
    assert!(
        status_line.starts_with("HTTP/1.1 204"),
        "in-flight request got {status_line:?}\n{}",
        server.log()
    );

    let status = server
        .wait_exit(grace + Duration::from_secs(5))
        .unwrap_or_else(|| panic!("still running 15 s after SIGTERM\n{}", server.log()));
    let exit_took = terminated_at.elapsed();
    let report = load.stop();
    assert!(status.success(), "exit status {status}\n{}", server.log());
    assert!(
        exit_took < grace,
        "exited {exit_took:?} after SIGTERM, grace {grace:?}\n{}",
        server.log()
    );
    report.assert_fast();
    // Refused or reset connections after the listener closed are fine (not acknowledged);
    // every answer that came was a 204.
    assert!(
        report
            .samples
            .iter()
            .all(|s| s.status.is_none_or(|c| c == 204)),
        "answers other than 204 during shutdown"
    );
    let acked = report.acked() + 1;
    let log = strip_ansi(&server.log());
    let written: u64 = log
        .lines()
        .rfind(|line| line.contains("stopped"))
        .and_then(|line| line.split("written=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `stopped written=…` line in the log:\n{log}"));
    assert_eq!(
        written, acked,
        "the shutdown flush wrote every acknowledged hit"
    );
    let stored = block_on(async {
        let store = EmbeddedStore::open(data.path()).expect("reopen the store");
        pageviews(&store).await
    });
    assert_eq!(stored, acked, "the store holds every acknowledged hit");
    eprintln!(
        "sigterm: acked {acked}, exit after {exit_took:?}, took {:?}",
        started.elapsed()
    );
}

#[test]
fn sigkill_under_load_loses_at_most_the_flush_interval() {
    let started = Instant::now();
    let data = tempfile::tempdir().expect("tempdir");
    let flush_interval = Duration::from_millis(250);
    let mut server = FootfallServer::builder()
        .store(data.path().display().to_string())
        .args(["--rate-limit", NO_RATE_LIMIT])
        .args([
            "--flush-interval-ms",
            &flush_interval.as_millis().to_string(),
        ])
        .start();
    let load = Load::start(server.public(), 2, Duration::from_millis(2));
    std::thread::sleep(Duration::from_secs(3));
    let before = metrics(&server);
    assert_eq!(before.dropped_total(), 0, "{before:?}");
    let killed_at = Instant::now();
    server.kill();
    let report = load.stop();
    report.assert_fast();

    server.restart();
    let (stored, stale) = read_counts(&server);
    assert!(!stale, "a fresh read after restart");
    let acked = report.acked();
    // A hit waits at most one flush interval for its batch to be sent, then for the
    // commit: the previous batch's and its own. A commit (one fsync) takes milliseconds;
    // a second for both leaves room for a loaded machine.
    let commit_allowance = Duration::from_secs(1);
    let window_start = killed_at - flush_interval - commit_allowance;
    let safe = report
        .samples
        .iter()
        .filter(|s| s.status == Some(204) && s.sent + s.latency < window_start)
        .count() as u64;
    assert!(
        safe > 0,
        "the load ran long enough to have hits outside the window"
    );
    assert!(
        stored >= safe,
        "{stored} pageviews after restart, but {safe} hits were acknowledged more than \
         {:?} before the kill ({acked} in all)",
        flush_interval + commit_allowance
    );
    assert!(stored <= acked, "{stored} stored > {acked} acknowledged");
    eprintln!(
        "sigkill: acked {acked}, stored {stored}, lost {}, {} acknowledged within the \
         window; took {:?}",
        acked - stored,
        acked - safe,
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------
// Redis Cluster failover.

#[test]
fn cluster_master_killed_replica_promoted_service_recovers_by_itself() {
    let started = Instant::now();
    let mut cluster = RedisCluster::start(3, 1);
    let server = FootfallServer::builder()
        .store(cluster.url())
        .args(["--rate-limit", NO_RATE_LIMIT, "--flush-interval-ms", "50"])
        .start();
    // Every key of the site carries the hash tag {demo}: one slot, one master.
    let slot = cluster.keyslot("ff:{demo}:probe");
    let owner_port = slot_owner(&cluster, 0, slot).expect("the slot has a master");
    let victim = cluster
        .nodes()
        .iter()
        .position(|node| node.port() == owner_port)
        .expect("the owner is one of our nodes");
    let witness = (0..cluster.nodes().len())
        .find(|&i| i != victim)
        .expect("another node");

    let load = Load::start(server.public(), 2, Duration::from_millis(2));
    wait_until(&server, "hits are written", |m| {
        m.value("footfall_hits_written_total") > 0
    });
    assert_eq!(server.internal_get("/readyz").status, 200);

    cluster.node_mut(victim).kill();
    let killed_at = Instant::now();
    // Failover: a replica is promoted and the cluster is whole again.
    let deadline = Instant::now() + CATCH_UP;
    let new_owner = loop {
        let ok = redis::cmd("CLUSTER")
            .arg("INFO")
            .query::<String>(&mut cluster.nodes()[witness].connection())
            .is_ok_and(|info| info.contains("cluster_state:ok"));
        if ok
            && let Some(port) = slot_owner(&cluster, witness, slot)
            && port != owner_port
        {
            break port;
        }
        assert!(
            Instant::now() < deadline,
            "no failover within {CATCH_UP:?}; CLUSTER NODES on node {witness}:\n{}",
            redis::cmd("CLUSTER")
                .arg("NODES")
                .query::<String>(&mut cluster.nodes()[witness].connection())
                .unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let failover_took = killed_at.elapsed();
    let at_failover = metrics(&server);

    // The service finds the new master by itself: writes resume, /readyz says 200.
    wait_until(&server, "writes resume after the failover", |m| {
        m.value("footfall_hits_written_total") > at_failover.value("footfall_hits_written_total")
    });
    let deadline = Instant::now() + CATCH_UP;
    while server.internal_get("/readyz").status != 200 {
        assert!(
            Instant::now() < deadline,
            "/readyz not 200 after the failover"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let recovered_took = killed_at.elapsed();
    let report = load.stop();
    report.assert_fast_and_all_acked();
    let settled = wait_until(&server, "the buffer drains", |m| m.in_memory() == 0);

    let alive_url = format!(
        "redis+cluster://{}",
        cluster
            .nodes()
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != victim)
            .map(|(_, node)| format!("127.0.0.1:{}", node.port()))
            .collect::<Vec<_>>()
            .join(",")
    );
    let read = || {
        block_on(async {
            let store = RedisStore::connect(&alive_url).await.expect("connect");
            pageviews(&store).await
        })
    };
    // Asynchronous replication: writes the dead master acknowledged but had not passed to
    // its replica are gone (Redis Cluster's documented loss window), and a batch in flight
    // when it died is counted dropped though it may have run. So the store holds at most
    // acked − dropped + ambiguous over the whole run…
    let acked = report.acked();
    let stored = read();
    let ceiling = acked - settled.dropped_total() + settled.dropped("store_ambiguous");
    assert!(
        stored <= ceiling,
        "{stored} stored > {ceiling}: {settled:?}"
    );
    // …and after the failover the books are exact again: every new hit is written.
    let mut client = HttpClient::connect(server.public()).expect("connect");
    let n_after = 200;
    for _ in 0..n_after {
        assert_eq!(post_hit(&mut client).status, 204);
    }
    let after = wait_until(&server, "the new hits are written", |m| m.in_memory() == 0);
    assert_eq!(after.dropped_total(), settled.dropped_total(), "{after:?}");
    assert_eq!(
        read(),
        stored + n_after,
        "hits after the failover all counted"
    );
    eprintln!(
        "cluster failover: slot {slot} moved {owner_port} → {new_owner} in {failover_took:?}, \
         service recovered in {recovered_took:?}; acked {acked}, stored {stored}, {settled:?}; \
         took {:?}",
        started.elapsed()
    );
}

/// The port of the master serving `slot`, as node `asked` sees it (`CLUSTER NODES`).
fn slot_owner(cluster: &RedisCluster, asked: usize, slot: u16) -> Option<u16> {
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query(&mut cluster.nodes()[asked].connection())
        .ok()?;
    nodes.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let flags = fields.get(2)?;
        if !flags.split(',').any(|f| f == "master") || flags.contains("fail") {
            return None;
        }
        let serves = fields.iter().skip(8).any(|range| {
            let (low, high) = range.split_once('-').unwrap_or((range, range));
            matches!((low.parse::<u16>(), high.parse::<u16>()), (Ok(l), Ok(h)) if (l..=h).contains(&slot))
        });
        if !serves {
            return None;
        }
        let address = fields.get(1)?.split('@').next()?;
        address.rsplit(':').next()?.parse().ok()
    })
}

// ---------------------------------------------------------------------------------------
// Helpers.

fn post_hit(client: &mut HttpClient) -> HttpResponse {
    client
        .request("POST", "/api/v1/hit", &HIT_HEADERS, HIT_BODY)
        .expect("POST /api/v1/hit")
}

/// `text` without terminal colour sequences (`ESC [ … m`), as the text log has them.
fn strip_ansi(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

/// The demo site's all-time pageviews and whether the API marks them stale.
fn read_counts(server: &FootfallServer) -> (u64, bool) {
    let response =
        footfall_tests::footfall_server::http_get(server.public(), "/api/v1/sites/demo/counts")
            .expect("GET counts");
    assert_eq!(response.status, 200, "counts: {}", response.text());
    let json: serde_json::Value = serde_json::from_slice(&response.body).expect("counts JSON");
    let pageviews = json["total"]["pageviews"]
        .as_u64()
        .unwrap_or_else(|| panic!("no total.pageviews in {json}"));
    let stale = json["stale"]
        .as_bool()
        .unwrap_or_else(|| panic!("no stale in {json}"));
    (pageviews, stale)
}

/// The demo site's all-time pageviews read from `store` directly.
async fn pageviews<S: Store>(store: &S) -> u64 {
    let site = Site::from_settings(SiteSettings::demo(), "demo").expect("the demo site");
    let now = footfall::clock::SystemClock.now();
    counter::snapshot(store, &site.id, &site.rules, now)
        .await
        .expect("read the counts")
        .value(Window::Total, Metric::Pageviews)
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        tokio::time::timeout(CATCH_UP, future)
            .await
            .expect("the store answers in time")
    })
}

/// One scrape of `/metrics`.
struct Metrics(String);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "accepted {} written {} buffer {} dropped {:?}",
            self.value("footfall_hits_accepted_total"),
            self.value("footfall_hits_written_total"),
            self.value("footfall_buffer_hits"),
            self.0
                .lines()
                .filter(|l| l.starts_with("footfall_hits_dropped_total{") && !l.ends_with(" 0"))
                .collect::<Vec<_>>()
        )
    }
}

impl Metrics {
    /// The value of one series, named with its labels as the exporter writes them; 0 when
    /// absent.
    fn value(&self, series: &str) -> u64 {
        self.0
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0, |v| v.trim().parse::<f64>().expect("a number") as u64)
    }

    fn dropped(&self, reason: &str) -> u64 {
        self.value(&format!(
            r#"footfall_hits_dropped_total{{reason="{reason}"}}"#
        ))
    }

    fn dropped_total(&self) -> u64 {
        self.0
            .lines()
            .filter_map(|line| line.strip_prefix("footfall_hits_dropped_total{"))
            .map(|rest| {
                let value = rest.rsplit(' ').next().expect("a value");
                value.parse::<f64>().expect("a number") as u64
            })
            .sum()
    }

    /// Hits accepted into the buffer and neither written nor dropped since.
    fn in_memory(&self) -> u64 {
        let done = self.value("footfall_hits_written_total")
            + self.dropped("store_ambiguous")
            + self.dropped("unknown_site");
        self.value("footfall_hits_accepted_total")
            .checked_sub(done)
            .unwrap_or_else(|| panic!("more hits written or dropped than accepted: {self:?}"))
    }
}

fn metrics(server: &FootfallServer) -> Metrics {
    let response = server.internal_get("/metrics");
    assert_eq!(response.status, 200);
    Metrics(response.text())
}

/// Scrapes `/metrics` until `done` holds, for at most [`CATCH_UP`]; the last scrape.
fn wait_until(server: &FootfallServer, what: &str, done: impl Fn(&Metrics) -> bool) -> Metrics {
    let deadline = Instant::now() + CATCH_UP;
    loop {
        let m = metrics(server);
        if done(&m) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "waited {CATCH_UP:?} for: {what}; {m:?}\nservice log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One request of the load: when it was sent, how long it took, and its status (`None`
/// when the exchange failed).
#[derive(Clone, Copy, Debug)]
struct Sample {
    sent: Instant,
    latency: Duration,
    status: Option<u16>,
}

/// Threads posting hits on keep-alive connections, paced so the machine is shared.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Vec<Sample>>>,
}

impl Load {
    fn start(address: SocketAddr, n_threads: usize, pause: Duration) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..n_threads)
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || run_load(address, pause, &stop))
            })
            .collect();
        Load { stop, threads }
    }

    fn stop(self) -> LoadReport {
        self.stop.store(true, Ordering::SeqCst);
        let samples = self
            .threads
            .into_iter()
            .flat_map(|t| t.join().expect("a load thread"))
            .collect();
        LoadReport { samples }
    }
}

fn run_load(address: SocketAddr, pause: Duration, stop: &AtomicBool) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut client: Option<HttpClient> = None;
    while !stop.load(Ordering::SeqCst) {
        let sent = Instant::now();
        let status = match client
            .take()
            .map_or_else(|| HttpClient::connect(address), Ok)
        {
            Ok(mut c) => match c.request("POST", "/api/v1/hit", &HIT_HEADERS, HIT_BODY) {
                Ok(response) => {
                    client = Some(c);
                    Some(response.status)
                }
                Err(_) => None,
            },
            Err(_) => None,
        };
        samples.push(Sample {
            sent,
            latency: sent.elapsed(),
            status,
        });
        std::thread::sleep(pause);
    }
    samples
}

struct LoadReport {
    samples: Vec<Sample>,
}

impl LoadReport {
    fn acked(&self) -> u64 {
        self.samples
            .iter()
            .filter(|s| s.status == Some(204))
            .count() as u64
    }

    fn slowest(&self) -> Duration {
        self.samples
            .iter()
            .map(|s| s.latency)
            .max()
            .unwrap_or_default()
    }

    fn assert_fast(&self) {
        assert!(
            self.slowest() < REQUEST_BOUND,
            "a request took {:?} (bound {REQUEST_BOUND:?})",
            self.slowest()
        );
    }

    fn assert_fast_and_all_acked(&self) {
        self.assert_fast();
        let failed: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| s.status != Some(204))
            .collect();
        assert!(
            failed.is_empty(),
            "{} of {} requests not answered 204, e.g. {:?}",
            failed.len(),
            self.samples.len(),
            failed.first()
        );
        assert!(
            self.acked() > 100,
            "the load sent too little: {}",
            self.acked()
        );
    }
}
