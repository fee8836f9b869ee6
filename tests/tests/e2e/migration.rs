//! `footfall migrate` between real stores: embedded → Redis → embedded keeps every entry
//! bit for bit and every figure the same.

use footfall::clock::{Clock, SystemClock};
use footfall::counter::{self, Hit};
use footfall::identity::{IpTruncation, Salt, VisitorId};
use footfall::store::conformance::fixtures;
use footfall::store::{AnyStore, EmbeddedStore, Entry, ScanCursor, Store};
use footfall::{CountingRules, Metric, SiteId, keys};
use footfall_server::cli;
use footfall_server::cli::migrate::MigrateArgs;
use footfall_server::config::RedisTlsArgs;
use footfall_tests::redis_server::RedisServer;
use jiff::{SignedDuration, Timestamp};

async fn scan_all(store: &impl Store, now: Timestamp) -> Vec<Entry> {
    let mut cursor = ScanCursor::default();
    let mut all = Vec::new();
    loop {
        let (page, next) = store.scan(&cursor, 500, now).await.expect("scan");
        all.extend(page);
        match next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    all.sort_by(|a, b| a.key.cmp(&b.key));
    all
}

/// Deadlines compared at millisecond precision, the finest Redis keeps.
fn normalized(entries: Vec<Entry>) -> Vec<(String, String, Option<i64>)> {
    entries
        .into_iter()
        .map(|e| {
            (
                e.key.to_string(),
                format!("{:?}", e.value),
                e.expire_at.map(|t| t.as_millisecond()),
            )
        })
        .collect()
}

/// Asserts equality, reporting only the first difference (the entries are large).
fn assert_same(
    actual: &[(String, String, Option<i64>)],
    expected: &[(String, String, Option<i64>)],
    what: &str,
) {
    let first_difference = actual.iter().zip(expected).find(|(a, e)| a != e);
    if let Some((a, e)) = first_difference {
        let short = |x: &(String, String, Option<i64>)| format!("{} {:.80} {:?}", x.0, x.1, x.2);
        panic!(
            "{what}: first difference:\n  got      {}\n  expected {}",
            short(a),
            short(e)
        );
    }
    assert_eq!(actual.len(), expected.len(), "{what}: entry count");
}

async fn migrate(from: &str, to: &str) -> footfall::migrate::MigrationReport {
    let args = MigrateArgs {
        from: from.to_owned(),
        to: to.to_owned(),
        page_size: 97,
        start: None,
        upgrade_layout: None,
        redis_tls: RedisTlsArgs::default(),
    };
    cli::migrate::run(&args, |_| {})
        .await
        .expect("migration succeeds")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_to_redis_to_embedded_is_lossless() {
    let now = SystemClock.now();
    let rules = CountingRules::default();
    let sites: Vec<SiteId> = ["caukee", "tuyengiao", "demo"]
        .iter()
        .map(|s| SiteId::new(s).unwrap())
        .collect();
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();

    // A day's traffic for three sites: 3,000 visitors (sparse and dense sketches), open
    // and expired visits, salts, baselines and a service-wide registry document.
    {
        let store = EmbeddedStore::open(first.path()).unwrap();
        let salt = Salt::generate().unwrap();
        let hits: Vec<Hit> = (0u32..6000)
            .map(|n| {
                let site = &sites[(n % 3) as usize];
                let ip = std::net::IpAddr::from((n % 3000).to_be_bytes());
                let visitor =
                    VisitorId::derive(&salt, site.as_str(), ip, "Mozilla/5.0", IpTruncation::None);
                // Within the last 20 minutes, so no entry expires while the test runs
                // (visit markers live 30 minutes, minute buckets 31).
                let at = now - SignedDuration::from_secs(i64::from(n % 1200));
                fixtures::hit(site, at, visitor)
            })
            .collect();
        for chunk in hits.chunks(1000) {
            counter::record(&store, chunk, |_| Some(&rules), now)
                .await
                .unwrap();
        }
        for site in &sites {
            counter::set_baseline(&store, site, Metric::Visits, 7_289_126, false, now)
                .await
                .unwrap();
            footfall::salts::load(&store, site, &rules, now)
                .await
                .unwrap();
        }
        assert!(
            store
                .compare_and_swap(&keys::registry(), None, Some(b"{\"version\":1}"), now)
                .await
                .unwrap()
        );
    }

    let redis = RedisServer::start();
    let first_location = first.path().to_str().unwrap().to_owned();
    let to_redis = migrate(&first_location, &redis.url()).await;
    assert_eq!(to_redis.sites.len(), 3);
    assert!(to_redis.sketches > 0 && to_redis.counters > 0 && to_redis.bytes > 0);
    // Copying again is harmless: same report, same target.
    let again = migrate(&first_location, &redis.url()).await;
    assert_eq!(again.entries(), to_redis.entries());

    let second_location = second.path().to_str().unwrap().to_owned();
    let back = migrate(&redis.url(), &second_location).await;
    assert_eq!(back.entries(), to_redis.entries());

    let original = AnyStore::connect(&first_location).await.unwrap();
    let in_redis = AnyStore::connect(&redis.url()).await.unwrap();
    let returned = AnyStore::connect(&second_location).await.unwrap();
    let original_entries = normalized(scan_all(&original, now).await);
    assert_eq!(original_entries.len() as u64, to_redis.entries());
    assert_same(
        &normalized(scan_all(&in_redis, now).await),
        &original_entries,
        "Redis holds exactly the embedded entries",
    );
    assert_same(
        &normalized(scan_all(&returned, now).await),
        &original_entries,
        "the round trip is lossless",
    );
    for site in &sites {
        let expected = counter::snapshot(&original, site, &rules, now)
            .await
            .unwrap();
        assert_eq!(
            counter::snapshot(&in_redis, site, &rules, now)
                .await
                .unwrap(),
            expected,
            "{site} in Redis"
        );
        assert_eq!(
            counter::snapshot(&returned, site, &rules, now)
                .await
                .unwrap(),
            expected,
            "{site} back home"
        );
        assert!(expected.value(footfall::Window::Total, Metric::Visits) > 7_289_126);
    }
}

#[tokio::test]
async fn migrate_refuses_the_same_store_and_bad_locations() {
    let same = MigrateArgs {
        from: "memory:".into(),
        to: "memory:".into(),
        page_size: 10,
        start: None,
        upgrade_layout: None,
        redis_tls: RedisTlsArgs::default(),
    };
    assert!(matches!(
        cli::migrate::run(&same, |_| {}).await,
        Err(cli::migrate::MigrateError::SameStore)
    ));
    let bad = MigrateArgs {
        from: "postgres://db".into(),
        to: "memory:".into(),
        page_size: 10,
        start: None,
        upgrade_layout: None,
        redis_tls: RedisTlsArgs::default(),
    };
    let error = cli::migrate::run(&bad, |_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("source") && error.contains("postgres"),
        "{error}"
    );
}
