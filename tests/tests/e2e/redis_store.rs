//! The Redis backend against real `redis-server`s and a real three-master Cluster.
//!
//! The conformance suite runs on a server and on a cluster shared by the checks that run
//! at the same time (each check has its own site); the other tests start servers of their
//! own where they disturb them (restarts, pauses, configuration).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use footfall::clock::Clock;
use footfall::counter::{self, Hit};
use footfall::identity::Salt;
use footfall::keys::{self, Key, Scope};
use footfall::sketch::Hll;
use footfall::store::conformance::fixtures;
use footfall::store::{
    CounterAdd, MemoryStore, Read, RedisStore, ScanCursor, Store, StoreError, WriteBatch,
};
use footfall::{CountingRules, Metric, SiteId, Window};
use footfall_tests::redis_cluster::RedisCluster;
use footfall_tests::redis_server::RedisServer;
use jiff::{SignedDuration, Timestamp};

/// One value shared by whoever holds it at the moment, started again when nobody does, so
/// that every process it owns is killed (on the last drop) before the test binary exits.
pub(crate) struct Shared<T>(Mutex<Weak<T>>);

impl<T> Shared<T> {
    pub(crate) const fn new() -> Self {
        Shared(Mutex::new(Weak::new()))
    }

    pub(crate) fn get(&self, start: impl FnOnce() -> T) -> Arc<T> {
        let mut slot = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(value) = slot.upgrade() {
            return value;
        }
        let value = Arc::new(start());
        *slot = Arc::downgrade(&value);
        value
    }
}

static SERVER: Shared<RedisServer> = Shared::new();
static CLUSTER: Shared<RedisCluster> = Shared::new();

/// The store, and the server it talks to, kept alive as long as the store.
async fn single_node_store() -> (RedisStore, Arc<RedisServer>) {
    let server = SERVER.get(RedisServer::start);
    (connect(&server.url()).await, server)
}

async fn cluster_store() -> (RedisStore, Arc<RedisCluster>) {
    let cluster = CLUSTER.get(|| RedisCluster::start(3, 0));
    let store = connect(&cluster.url()).await;
    assert!(store.is_cluster());
    (store, cluster)
}

async fn connect(url: &str) -> RedisStore {
    match RedisStore::connect(url).await {
        Ok(store) => store,
        Err(error) => panic!("connecting to {url}: {error:?}"),
    }
}

footfall::store_conformance!(conformance_single_node, single_node_store());
footfall::store_conformance!(conformance_cluster, cluster_store());

fn now() -> Timestamp {
    // The real clock: Redis expires keys by its own clock, so deadlines must be real.
    footfall::clock::SystemClock.now()
}

fn site(name: &str) -> SiteId {
    SiteId::new(&format!("{name}-{}", std::process::id())).expect("valid site id")
}

/// `n_visitors` visitors of `site`, each with `hits_each` hits a few seconds apart
/// ending at `at`.
fn hits(site: &SiteId, n_visitors: u32, hits_each: u32, at: Timestamp) -> Vec<Hit> {
    let salt = Salt::from_bytes([7; 32]);
    let mut hits = Vec::new();
    for round in 0..hits_each {
        for n in 0..n_visitors {
            let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n));
            let visitor = fixtures::visitor(&salt, site, ip);
            let hit_at = at - SignedDuration::from_secs(i64::from(hits_each - round));
            hits.push(fixtures::hit(site, hit_at, visitor));
        }
    }
    hits
}

async fn record<S: Store>(store: &S, hits: &[Hit], rules: &CountingRules) -> u64 {
    counter::record(store, hits, |_| Some(rules), now())
        .await
        .expect("recording hits")
}

fn raw<T: redis::FromRedisValue>(server: &RedisServer, cmd: &mut redis::Cmd) -> T {
    cmd.query(&mut server.connection())
        .expect("raw Redis command")
}

/// Keys of `site` written through the store carry its hash tag, so they all map to the
/// slot of `{site}` on the cluster (and one script call per site is legal there); the
/// scan that lists them walks every master.
#[tokio::test]
async fn every_key_a_batch_writes_is_in_its_sites_slot() {
    let (store, _cluster) = cluster_store().await;
    let cluster = CLUSTER.get(|| unreachable!("held by the store"));
    let rules = CountingRules::default();
    let sites: Vec<SiteId> = ["slot-a", "slot-b", "slot-c", "slot-d"]
        .iter()
        .map(|name| site(name))
        .collect();
    // One batch spanning four sites: split into per-site script calls.
    let all_hits: Vec<Hit> = sites.iter().flat_map(|s| hits(s, 20, 2, now())).collect();
    record(&store, &all_hits, &rules).await;

    let mut cursor = ScanCursor::default();
    let mut seen = Vec::new();
    loop {
        let (page, next) = store.scan(&cursor, 100, now()).await.expect("scan");
        seen.extend(page.into_iter().map(|entry| entry.key));
        match next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    let mut slots = std::collections::BTreeSet::new();
    for site in &sites {
        let slot = cluster.keyslot(&format!("{{{site}}}"));
        slots.insert(slot);
        let keys: Vec<&Key> = seen
            .iter()
            .filter(|key| key.site().as_ref() == Some(site))
            .collect();
        // 20 markers, the day's pageviews and visits counters and visitors sketch, one
        // online minute's set at least.
        let at_least = 20 + 3 + 1;
        assert!(keys.len() >= at_least, "{site}: {} keys", keys.len());
        for key in keys {
            assert!(
                key.as_str().starts_with(&format!("ff:{{{site}}}:")),
                "{key}"
            );
            assert_eq!(cluster.keyslot(key.as_str()), slot, "{key}");
        }
    }
    assert!(
        slots.len() > 1,
        "the test sites should not all share a slot"
    );
}

/// Deadlines are as the key schema says: day keys the retention after the day ends,
/// minute buckets minutes, visit markers the visit timeout; nothing is written without a
/// deadline (no week, month or all-time keys at all).
#[tokio::test]
async fn key_deadlines_follow_the_schema() {
    let server = RedisServer::start();
    let store = connect(&server.url()).await;
    let rules = CountingRules::default();
    let site = site("ttl");
    let at = now();
    let hit = hits(&site, 1, 1, at + SignedDuration::from_secs(1));
    record(&store, &hit, &rules).await;

    let pttl = |key: &Key| -> i64 { raw(&server, redis::cmd("PTTL").arg(key.as_str())) };
    let close = |key: &Key, expected: SignedDuration| {
        let actual = pttl(key);
        let expected = expected.as_millis() as i64;
        // The hit's own time is one second off `at`, plus the test's run time.
        assert!(
            (actual - expected).abs() < 5_000,
            "{key}: PTTL {actual} ms, expected about {expected} ms"
        );
    };
    let calendar = rules.calendar();
    let day = Scope::Day(calendar.day(hit[0].at));
    let retention = SignedDuration::from_hours(24 * i64::from(rules.retention_days()));
    let day_deadline = calendar.next_day_start(hit[0].at) + retention;
    close(
        &keys::metric(&site, Metric::Pageviews, &day),
        day_deadline.duration_since(at),
    );
    close(
        &keys::metric(&site, Metric::Visitors, &day),
        day_deadline.duration_since(at),
    );
    let minute = footfall::calendar::Minute::of(hit[0].at);
    let minute_deadline =
        minute.start() + SignedDuration::from_mins(1) + CountingRules::MAX_ONLINE_WINDOW;
    close(
        &keys::session(&site, &hit[0].visitor),
        rules.visit_timeout() + SignedDuration::from_secs(1),
    );
    close(
        &keys::online_minute_set(&site, minute),
        minute_deadline.duration_since(at),
    );
    for metric in Metric::ALL {
        // -2: no such key.
        assert_eq!(pttl(&keys::metric(&site, metric, &Scope::Total)), -2);
    }
}

/// What the store writes into a sketch, Redis's own `PFCOUNT` counts as the library
/// does, and the stored bytes are the library's sketch register for register.
#[tokio::test]
async fn redis_pfcount_of_stored_sketches_equals_the_library_count() {
    let server = RedisServer::start();
    let store = connect(&server.url()).await;
    let rules = CountingRules::default();
    let site = site("pfcount");
    let hits = hits(&site, 20_000, 1, now());
    for chunk in hits.chunks(1_000) {
        record(&store, chunk, &rules).await;
    }
    let mut expected = Hll::new();
    for hit in &hits {
        expected.add(hit.visitor.as_bytes());
    }
    let key = keys::metric(
        &site,
        Metric::Visitors,
        &Scope::Day(rules.calendar().day(hits[0].at)),
    );
    let counted: u64 = raw(&server, redis::cmd("PFCOUNT").arg(key.as_str()));
    assert_eq!(counted, expected.count());
    let bytes: Vec<u8> = raw(&server, redis::cmd("GET").arg(key.as_str()));
    assert_eq!(
        Hll::from_redis_bytes(&bytes).expect("a HYLL value"),
        expected
    );
}

/// Two processes writing the same hits between them count what one would.
#[tokio::test]
async fn two_writers_count_like_one() {
    let server = RedisServer::start();
    let (first, second) = (connect(&server.url()).await, connect(&server.url()).await);
    let single = MemoryStore::new();
    let rules = CountingRules::default();
    let sites = [site("writers-a"), site("writers-b")];
    let all_hits: Vec<Hit> = sites.iter().flat_map(|s| hits(s, 300, 3, now())).collect();
    // Alternate batches between the writers, both in flight at once.
    let batches: Vec<&[Hit]> = all_hits.chunks(100).collect();
    for pair in batches.chunks(2) {
        let one = record(&first, pair[0], &rules);
        let other = async {
            match pair.get(1) {
                Some(batch) => record(&second, batch, &rules).await,
                None => 0,
            }
        };
        let _ = tokio::join!(one, other);
    }
    for batch in &batches {
        record(&single, batch, &rules).await;
    }
    for site in &sites {
        let split = counter::snapshot(&first, site, &rules, now())
            .await
            .expect("read");
        let whole = counter::snapshot(&single, site, &rules, now())
            .await
            .expect("read");
        for window in [Window::Today, Window::Total] {
            for metric in Metric::ALL {
                assert_eq!(
                    split.value(window, metric),
                    whole.value(window, metric),
                    "{site} {window:?} {metric:?}"
                );
            }
        }
        assert_eq!(split.value(Window::Total, Metric::Pageviews), 900);
        assert_eq!(split.value(Window::Total, Metric::Visits), 300);
    }
}

/// Redis killed with SIGKILL mid-run (AOF, fsync always): batches during the outage fail
/// in bounded time with an honest ambiguity flag, the store reconnects by itself
/// afterwards, and every acknowledged write is still there.
#[tokio::test]
async fn store_survives_a_redis_restart() {
    let mut server = RedisServer::builder()
        .args(["--appendonly", "yes", "--appendfsync", "always"])
        .start();
    let store = connect(&server.url()).await;
    assert!(
        store.server_warnings().is_empty(),
        "{:?}",
        store.server_warnings()
    );
    let rules = CountingRules::default();
    let site = site("restart");
    // Batches during the outage increment a key of their own; what was acknowledged is
    // read back as the site's all-time pageviews (a run may span local midnight).
    let total = keys::metric(
        &site,
        Metric::Pageviews,
        &Scope::Day("2000-01-01".parse().unwrap()),
    );
    let mut acknowledged = 0u64;
    for round in 0..5 {
        let batch = hits(&site, 10 + round, 1, now());
        record(&store, &batch, &rules).await;
        acknowledged += batch.len() as u64;
    }

    server.kill();
    let mut errors = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let result = store.apply(&increment(&total)).await;
        let took = started.elapsed();
        let error = result.expect_err("a batch cannot succeed while Redis is down");
        assert!(
            took < RedisStore::OPERATION_TIMEOUT + Duration::from_secs(1),
            "failing took {took:?}"
        );
        assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
        errors.push(error);
    }
    // The first batch meets the connection Redis closed while it was idle ("broken
    // pipe"): it was refused before a byte was written. Afterwards reconnecting is
    // refused. Nothing was sent either way, so no failure is ambiguous: the flusher
    // retries them all.
    assert!(
        errors.iter().all(|error| !error.is_ambiguous()),
        "{errors:?}"
    );
    assert!(
        store
            .read(&[Read::Counter(total.clone())], now())
            .await
            .is_err()
    );

    server.restart();
    // The store reconnects in the background; the first request may still meet the old
    // connection's failure, so allow a few, bounded.
    let deadline = Instant::now() + Duration::from_secs(10);
    let pageviews = || async {
        counter::snapshot(&store, &site, &rules, now())
            .await
            .map(|snapshot| vec![snapshot.value(Window::Total, Metric::Pageviews)])
    };
    let values = loop {
        match pageviews().await {
            Ok(values) => break values,
            Err(error) if Instant::now() < deadline => {
                eprintln!("after restart: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("the store did not reconnect: {error:?}"),
        }
    };
    assert_eq!(values, vec![acknowledged]);
    // The restarted server has forgotten the script: the store loads it again.
    let batch = hits(&site, 7, 1, now());
    record(&store, &batch, &rules).await;
    let values = pageviews().await.expect("read after restart");
    assert_eq!(values, vec![acknowledged + 7]);
}

fn increment(key: &Key) -> WriteBatch {
    WriteBatch {
        now: now(),
        counters: vec![CounterAdd {
            key: key.clone(),
            by: 1,
            expire_at: None,
        }],
        ..WriteBatch::default()
    }
}

/// On one server a batch of many sites travels in a few script calls, not one per site
/// (the fixed cost of a call is shared), and every site's writes land.
#[tokio::test]
async fn a_batch_of_many_sites_is_a_few_calls_on_one_server() {
    let server = RedisServer::start();
    let store = connect(&server.url()).await;
    let sites: Vec<SiteId> = (0..5_000).map(|i| site(&format!("many-{i}"))).collect();
    let counters: Vec<Key> = sites
        .iter()
        .map(|s| keys::metric(s, Metric::Pageviews, &Scope::Total))
        .collect();
    let batch = WriteBatch {
        now: now(),
        counters: counters
            .iter()
            .map(|key| CounterAdd {
                key: key.clone(),
                by: 1,
                expire_at: None,
            })
            .collect(),
        ..WriteBatch::default()
    };
    store.apply(&batch).await.expect("apply");
    let calls = |server: &RedisServer| -> u64 {
        let info: String = raw(server, redis::cmd("INFO").arg("commandstats"));
        info.lines()
            .find_map(|line| line.strip_prefix("cmdstat_evalsha:calls="))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let n_calls = calls(&server);
    assert!(
        (2..=4).contains(&n_calls),
        "5,000 sites in {n_calls} script calls"
    );
    let values = store
        .read(
            &counters
                .iter()
                .cloned()
                .map(Read::Counter)
                .collect::<Vec<_>>(),
            now(),
        )
        .await
        .expect("read");
    assert!(values.iter().all(|&v| v == 1), "{:?}", &values[..10]);
}

/// A batch whose answer does not come in time is sent again, and runs exactly once: here
/// Redis sleeps past the response timeout, then runs the first copy and the second, whose
/// token says it ran already. Without the token the counter would read 2.
#[tokio::test]
async fn a_timed_out_batch_is_sent_again_and_counted_once() {
    let server = RedisServer::builder()
        .args(["--enable-debug-command", "local"])
        .start();
    let store = connect(&server.url()).await;
    let key = keys::metric(&site("timeout"), Metric::Pageviews, &Scope::Total);
    let sleep_for = RedisStore::RESPONSE_TIMEOUT + Duration::from_secs(1);
    let mut sleeper = server.connection();
    let sleeping = std::thread::spawn(move || {
        redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg(sleep_for.as_secs_f64())
            .query::<()>(&mut sleeper)
    });
    // Let DEBUG SLEEP reach the server first.
    tokio::time::sleep(Duration::from_millis(200)).await;
    increment_through_the_stall(&store, &key).await;
    sleeping
        .join()
        .expect("sleeper thread")
        .expect("DEBUG SLEEP");

    // The token is a small key with a deadline, which scans (and so migrations and
    // backups) pass by.
    let mut connection = server.connection();
    let tokens: Vec<String> = redis::cmd("KEYS")
        .arg("ff:*applied.*")
        .query(&mut connection)
        .expect("KEYS");
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&tokens[0])
        .query(&mut connection)
        .expect("PTTL");
    assert!(ttl > 0 && ttl <= 600_000, "{ttl}");
    let (scanned, _) = store
        .scan(&ScanCursor::default(), 1000, now())
        .await
        .expect("scan");
    let scanned: Vec<&str> = scanned.iter().map(|entry| entry.key.as_str()).collect();
    assert_eq!(scanned, vec![key.as_str()]);
    // A second batch is a new call: it counts.
    store.apply(&increment(&key)).await.expect("second batch");
    let values = store
        .read(&[Read::Counter(key)], now())
        .await
        .expect("read");
    assert_eq!(values, vec![2]);
}

/// The same on a Cluster: the node owning the site's slot holds writes past the response
/// timeout (`CLIENT PAUSE … WRITE`), the batch is sent again, and it counts once.
#[tokio::test]
async fn a_timed_out_batch_on_a_cluster_is_sent_again_and_counted_once() {
    let cluster = RedisCluster::start(3, 0);
    let store = connect(&cluster.url()).await;
    let key = keys::metric(&site("paused"), Metric::Pageviews, &Scope::Total);
    let slot = cluster.keyslot(key.as_str());
    let owner = cluster
        .nodes()
        .iter()
        .find(|node| {
            let slots: Vec<Vec<redis::Value>> = redis::cmd("CLUSTER")
                .arg("SLOTS")
                .query(&mut node.connection())
                .expect("CLUSTER SLOTS");
            let me = node.port();
            slots.iter().any(|range| {
                let int = |v: &redis::Value| match v {
                    redis::Value::Int(n) => *n,
                    _ => -1,
                };
                let serves = (int(&range[0])..=int(&range[1])).contains(&i64::from(slot));
                let port = match &range[2] {
                    redis::Value::Array(node) => int(&node[1]),
                    _ => -1,
                };
                serves && port == i64::from(me)
            })
        })
        .expect("a node serves the slot");
    let pause = RedisStore::RESPONSE_TIMEOUT + Duration::from_secs(1);
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(pause.as_millis() as u64)
        .arg("WRITE")
        .query(&mut owner.connection())
        .expect("CLIENT PAUSE");
    increment_through_the_stall(&store, &key).await;
}

/// Applies one increment of `key` while the server holds writes past the response
/// timeout, and checks that it succeeds after that and counts once.
async fn increment_through_the_stall(store: &RedisStore, key: &Key) {
    let started = Instant::now();
    store
        .apply(&increment(key))
        .await
        .expect("sent again once the server took writes again");
    assert!(
        started.elapsed() > RedisStore::RESPONSE_TIMEOUT,
        "the first copy should have timed out: {:?}",
        started.elapsed()
    );
    let values = store
        .read(&[Read::Counter(key.clone())], now())
        .await
        .expect("read after the stall");
    assert_eq!(values, vec![1], "the batch was applied exactly once");
}

/// The configuration check warns about eviction and missing persistence, and stays
/// quiet for a production-like server.
#[tokio::test]
async fn server_warnings_name_risky_configuration() {
    let risky = RedisServer::builder()
        .args(["--maxmemory-policy", "allkeys-lru"])
        .start();
    let warnings = connect(&risky.url()).await.server_warnings().join("\n");
    assert!(warnings.contains("allkeys-lru"), "{warnings}");
    assert!(warnings.contains("persists nothing"), "{warnings}");

    let locked = RedisServer::builder()
        .args(["--rename-command", "CONFIG", ""])
        .start();
    let warnings = connect(&locked.url()).await.server_warnings().join("\n");
    assert!(warnings.contains("could not check"), "{warnings}");

    let good = RedisServer::builder()
        .args(["--appendonly", "yes", "--maxmemory-policy", "noeviction"])
        .start();
    assert_eq!(
        connect(&good.url()).await.server_warnings(),
        &[] as &[String]
    );
}

/// Bad URLs are configuration errors; a server that is not there is unavailable, and
/// not ambiguous (nothing was sent).
#[tokio::test]
async fn connect_errors_are_clear() {
    let error = RedisStore::connect("http://127.0.0.1:6379")
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Config(_)), "{error:?}");
    let error = RedisStore::connect("redis+cluster://127.0.0.1")
        .await
        .unwrap_err();
    assert!(error.to_string().contains("no port"), "{error}");
    // A port nobody listens on: bind one and close it again.
    let port = footfall_tests::free_port().expect("a free port");
    let started = Instant::now();
    let error = RedisStore::connect(&format!("redis://127.0.0.1:{port}/"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::Unavailable {
                ambiguous: false,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(started.elapsed() < RedisStore::OPERATION_TIMEOUT);
}
