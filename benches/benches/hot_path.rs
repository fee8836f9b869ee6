//! The service's per-request work, piece by piece: deriving the visitor id, the bot check,
//! decoding the hit body, and rendering the counts JSON.
//!
//! `cargo bench -p footfall-benches --bench hot_path`

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, criterion_group, criterion_main};
use footfall::counter;
use footfall::identity::{IpTruncation, Salt, VisitorId};
use footfall::store::MemoryStore;
use footfall_server::bots::BotFilter;
use footfall_server::cache::counts_json;
use footfall_server::ingest::HitBody;
use footfall_server::sites::{Site, SiteSettings};
use jiff::Timestamp;

const BROWSER: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const CRAWLER: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
const HIT: &[u8] = br#"{"site":"thanhhoa-gov","path":"/tin-tuc/bai-17.html","referrer":"https://www.google.com/"}"#;

fn visitor_id(c: &mut Criterion) {
    let salt = Salt::from_bytes([7; 32]);
    let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));
    c.bench_function("visitor id (BLAKE3 keyed, IPv4, browser UA)", |b| {
        b.iter(|| {
            VisitorId::derive(
                black_box(&salt),
                black_box("thanhhoa-gov"),
                black_box(ip),
                black_box(BROWSER),
                IpTruncation::None,
            )
        });
    });
}

fn bot_check(c: &mut Criterion) {
    let filter = BotFilter::default();
    let mut group = c.benchmark_group("bot check");
    group.bench_function("browser (no match, full scan)", |b| {
        b.iter(|| filter.is_bot(black_box(Some(BROWSER))));
    });
    group.bench_function("crawler (match)", |b| {
        b.iter(|| filter.is_bot(black_box(Some(CRAWLER))));
    });
    group.finish();
}

fn hit_decode(c: &mut Criterion) {
    c.bench_function("hit JSON decode (serde_json, 90 bytes)", |b| {
        b.iter(|| serde_json::from_slice::<HitBody<'_>>(black_box(HIT)).expect("valid"));
    });
}

fn counts_render(c: &mut Criterion) {
    let site = Site::from_settings(SiteSettings::new("thanhhoa-gov", &["thanhhoa.gov.vn"]), "")
        .expect("valid settings");
    let now: Timestamp = "2026-11-30T03:00:59Z".parse().expect("a timestamp");
    let store = MemoryStore::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let snapshot = runtime
        .block_on(counter::snapshot(&store, &site.id, &site.rules, now))
        .expect("a snapshot of the empty store");
    c.bench_function(
        "counts JSON render (every window, vi+en definitions)",
        |b| {
            b.iter(|| counts_json(black_box(&site), black_box(&snapshot), false));
        },
    );
}

criterion_group!(benches, visitor_id, bot_check, hit_decode, counts_render);
criterion_main!(benches);
