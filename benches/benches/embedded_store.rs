//! The embedded (redb) store: what a commit costs, hits per second recorded in batches of
//! 100 and 1,000, and bytes on disk per site per day.
//!
//! `cargo bench -p footfall-benches --bench embedded_store` prints a table. Every write
//! is a durable commit (fsync), so the figures depend on the disk more than on the CPU;
//! the store's directory is a temporary directory on the default temp filesystem (set
//! `TMPDIR` to measure another disk).

use std::time::{Duration, Instant};

use footfall::counter::{self, Hit};
use footfall::identity::VisitorId;
use footfall::keys;
use footfall::migrate::{self, CopyOptions};
use footfall::store::conformance::fixtures;
use footfall::store::{CounterAdd, EmbeddedStore, EntryValue, ScanCursor, Store, WriteBatch};
use footfall::{CountingRules, SiteId};
use jiff::{SignedDuration, Timestamp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    runtime.block_on(async {
        commit_cost().await;
        println!();
        println!(
            "| batch | batches | hits/s (plan + apply) | hits/s (apply) | apply p50 | apply p99 |"
        );
        println!("|---:|---:|---:|---:|---:|---:|");
        throughput(100, 300).await;
        throughput(1_000, 60).await;
        println!();
        println!(
            "| daily visitors | pageviews/day | commits/day | file after day 1 | after day {DAYS} | file growth/day | live entries | compact copy | day-scoped data/day |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        bytes_per_day(1_000).await;
        bytes_per_day(10_000).await;
    });
}

/// Simulated days of the bytes-per-day figures: the first fills redb's initial regions,
/// the later ones show the steady growth.
const DAYS: i64 = 4;

fn start() -> Timestamp {
    "2026-11-30T00:00:00Z".parse().expect("valid timestamp")
}

fn visitor(n: u64) -> VisitorId {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&n.to_le_bytes());
    id[8] = 0x5a;
    VisitorId::from_bytes(id)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// The latency of the smallest durable commit: one counter increment.
async fn commit_cost() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = EmbeddedStore::open(dir.path()).expect("open");
    let site = SiteId::new("bench").expect("valid site");
    let key = keys::metric(&site, footfall::Metric::Pageviews, &keys::Scope::Total);
    let mut latencies = Vec::new();
    for _ in 0..200 {
        let batch = WriteBatch {
            now: start(),
            counters: vec![CounterAdd {
                key: key.clone(),
                by: 1,
                expire_at: None,
            }],
            ..WriteBatch::default()
        };
        let began = Instant::now();
        store.apply(&batch).await.expect("apply");
        latencies.push(began.elapsed());
    }
    latencies.sort_unstable();
    println!(
        "one durable commit (a single counter increment), 200 commits: p50 {:.2?}, p99 {:.2?}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
}

/// Hits from many visitors (a third returning) across five sites, in time order at about
/// 200 hits per simulated second, recorded `n_batches` times `batch_size` at a time.
async fn throughput(batch_size: usize, n_batches: usize) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = EmbeddedStore::open(dir.path()).expect("open");
    let rules = CountingRules::default();
    let sites: Vec<SiteId> = (0..5)
        .map(|n| SiteId::new(&format!("site-{n}")).expect("valid site"))
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut next_visitor = 0u64;
    let mut hit_idx = 0i64;
    let mut apply_latencies = Vec::with_capacity(n_batches);
    let mut total_plan_and_apply = Duration::ZERO;
    for _ in 0..n_batches {
        let hits: Vec<Hit> = (0..batch_size)
            .map(|_| {
                let visitor_n = if next_visitor > 0 && rng.random_bool(1.0 / 3.0) {
                    rng.random_range(0..next_visitor)
                } else {
                    next_visitor += 1;
                    next_visitor - 1
                };
                hit_idx += 1;
                fixtures::hit(
                    &sites[(visitor_n % sites.len() as u64) as usize],
                    start() + SignedDuration::from_millis(hit_idx * 5),
                    visitor(visitor_n),
                )
            })
            .collect();
        let now = hits.last().map_or(start(), |hit| hit.at);
        let began = Instant::now();
        let plan = counter::plan(&hits, |_| Some(&rules), now);
        let applying = Instant::now();
        store.apply(&plan.batch).await.expect("apply");
        let done = Instant::now();
        apply_latencies.push(done - applying);
        total_plan_and_apply += done - began;
    }
    let n_hits = (batch_size * n_batches) as f64;
    let total_apply: Duration = apply_latencies.iter().sum();
    apply_latencies.sort_unstable();
    println!(
        "| {batch_size} | {n_batches} | {:.0} | {:.0} | {:.2?} | {:.2?} |",
        n_hits / total_plan_and_apply.as_secs_f64(),
        n_hits / total_apply.as_secs_f64(),
        percentile(&apply_latencies, 0.5),
        percentile(&apply_latencies, 0.99),
    );
}

fn file_size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |meta| meta.len())
}

/// One site, `daily_visitors` visitors a day each viewing three pages at random times,
/// recorded in one batch per simulated minute (a write-behind flush interval), for
/// [`DAYS`] days; each day ends with a purge an hour after midnight (local time is UTC+7, so the
/// simulated days are UTC days and the figures straddle local days; the sizes do not
/// care).
async fn bytes_per_day(daily_visitors: u64) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = EmbeddedStore::open(dir.path()).expect("open");
    let rules = CountingRules::default();
    let site = SiteId::new("soyte").expect("valid site");
    let mut rng = ChaCha8Rng::seed_from_u64(daily_visitors);
    let mut sizes = Vec::new();
    let mut commits = 0u64;
    let pageviews_per_day = daily_visitors * 3;
    for day in 0..DAYS {
        let day_start = start() + SignedDuration::from_hours(24 * day);
        // Each visitor's three views at random seconds of the day; new visitors each day.
        let mut views: Vec<(i64, u64)> = (0..daily_visitors)
            .flat_map(|v| {
                let visitor_n = day as u64 * daily_visitors + v;
                let base = rng.random_range(0..86_400 - 600);
                [0, rng.random_range(10..300), rng.random_range(300..600)]
                    .map(|offset| (base + offset, visitor_n))
            })
            .collect();
        views.sort_unstable();
        for minute in views.chunk_by(|a, b| a.0 / 60 == b.0 / 60) {
            let hits: Vec<Hit> = minute
                .iter()
                .map(|&(second, visitor_n)| {
                    let at = day_start + SignedDuration::from_secs(second);
                    fixtures::hit(&site, at, visitor(visitor_n))
                })
                .collect();
            let now = hits.last().map_or(day_start, |hit| hit.at);
            counter::record(&store, &hits, |_| Some(&rules), now)
                .await
                .expect("record");
            commits += 1;
        }
        let after_day = day_start + SignedDuration::from_hours(25);
        store.purge_expired(after_day).await.expect("purge");
        sizes.push(file_size(store.path()));
    }
    // The live data alone: copied into a fresh file, which has no free pages.
    let compact_dir = tempfile::tempdir().expect("temporary directory");
    let compact = EmbeddedStore::open(compact_dir.path()).expect("open");
    let end = start() + SignedDuration::from_hours(24 * DAYS + 1);
    let report = migrate::copy(&store, &compact, &CopyOptions::default(), end)
        .await
        .expect("copy");
    drop(compact);
    // What a day leaves behind for the retention period: its day counters and sketch.
    let mut day_scoped_bytes = 0usize;
    let mut cursor = ScanCursor::default();
    loop {
        let (page, next) = store.scan(&cursor, 1_000, end).await.expect("scan");
        for entry in page.iter().filter(|e| e.key.as_str().contains(":d:")) {
            day_scoped_bytes += entry.key.as_str().len()
                + match &entry.value {
                    EntryValue::Counter(_) => 8,
                    EntryValue::Sketch(bytes) | EntryValue::Bytes(bytes) => bytes.len(),
                    EntryValue::Set { members, .. } => 1 + members.len() * 16,
                };
        }
        match next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    let compact_size = file_size(
        &compact_dir
            .path()
            .join(footfall::store::embedded::FILE_NAME),
    );
    let last = sizes.last().copied().unwrap_or(0);
    let days = DAYS as u64;
    println!(
        "| {daily_visitors} | {pageviews_per_day} | {} | {} KiB | {} KiB | {} KiB | {} | {} KiB | {} B |",
        commits / days,
        sizes[0] / 1024,
        last / 1024,
        last.saturating_sub(sizes[0]) / 1024 / (days - 1),
        report.entries(),
        compact_size / 1024,
        day_scoped_bytes as u64 / days,
    );
}
