//! The counting engine's hot path: planning a batch of hits and applying it to the memory
//! store, and deriving visitor ids.

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use footfall::counter::{self, Hit};
use footfall::identity::{IpTruncation, Salt, VisitorId};
use footfall::store::MemoryStore;
use footfall::store::conformance::fixtures;
use footfall::{CountingRules, SiteId};
use jiff::{SignedDuration, Timestamp};

/// 1,000 hits over 10 sites from 600 visitors within one minute: a busy flush.
fn batch(now: Timestamp) -> Vec<Hit> {
    let salt = Salt::from_bytes([3; 32]);
    let sites: Vec<SiteId> = (0..10)
        .map(|n| SiteId::new(&format!("site-{n}")).unwrap())
        .collect();
    (0u32..1000)
        .map(|n| {
            let site = &sites[(n % 10) as usize];
            let ip = IpAddr::from((n % 600).to_be_bytes());
            let visitor =
                VisitorId::derive(&salt, site.as_str(), ip, "Mozilla/5.0", IpTruncation::None);
            fixtures::hit(
                site,
                now - SignedDuration::from_millis(i64::from(n)),
                visitor,
            )
        })
        .collect()
}

fn record_batches(c: &mut Criterion) {
    let rules = CountingRules::default();
    let now: Timestamp = "2026-11-30T03:00:59Z".parse().unwrap();
    let hits = batch(now);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();

    let mut group = c.benchmark_group("counter");
    group.throughput(Throughput::Elements(hits.len() as u64));
    group.bench_function("plan 1000 hits", |b| {
        b.iter(|| black_box(counter::plan(black_box(&hits), |_| Some(&rules), now)))
    });
    // A store that already holds the day's keys, as in steady state.
    let warm = MemoryStore::new();
    runtime
        .block_on(counter::record(&warm, &hits, |_| Some(&rules), now))
        .unwrap();
    group.bench_function("record 1000 hits into memory store", |b| {
        b.iter(|| {
            runtime
                .block_on(counter::record(
                    &warm,
                    black_box(&hits),
                    |_| Some(&rules),
                    now,
                ))
                .unwrap()
        })
    });
    group.bench_function("record 1000 hits into empty memory store", |b| {
        b.iter_batched(
            MemoryStore::new,
            |store| {
                runtime
                    .block_on(counter::record(
                        &store,
                        black_box(&hits),
                        |_| Some(&rules),
                        now,
                    ))
                    .unwrap()
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();

    let salt = Salt::from_bytes([5; 32]);
    let ip: IpAddr = "203.0.113.77".parse().unwrap();
    let user_agent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    c.bench_function("visitor id derive", |b| {
        b.iter(|| {
            VisitorId::derive(
                &salt,
                black_box("caukee"),
                black_box(ip),
                black_box(user_agent),
                IpTruncation::Networks,
            )
        })
    });
    let site = SiteId::new("site-1").unwrap();
    c.bench_function("snapshot from memory store", |b| {
        b.iter(|| {
            runtime
                .block_on(counter::snapshot(&warm, black_box(&site), &rules, now))
                .unwrap()
        })
    });
}

criterion_group!(benches, record_batches);
criterion_main!(benches);
