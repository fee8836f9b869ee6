//! The robot verdict: the old filter (43 hand-written substrings in one Aho-Corasick
//! automaton, copied here as the baseline) next to `BotFilter` (allow-list, supplement,
//! crawler-user-agents, generic rules), on typical User-Agents and on whole corpora.
//!
//! "first sight" is a User-Agent the filter has not judged before (`verdict_uncached`);
//! "repeated" is the usual case in real traffic, answered by the verdict cache.
//!
//! `cargo bench -p footfall-benches --bench robots`; figures measured on this machine are in
//! `crates/footfall-server/data/robots/README.md`.

use std::hint::black_box;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use footfall_server::bots::BotFilter;

/// The filter as it was before issue 11, kept to show what the new one costs next to it.
const OLD_PATTERNS: &[&str] = &[
    "bot",
    "crawl",
    "spider",
    "slurp",
    "scrap",
    "archiver",
    "fetch",
    "monitor",
    "checker",
    "preview",
    "lighthouse",
    "pagespeed",
    "pingdom",
    "uptime",
    "headlesschrome",
    "phantomjs",
    "selenium",
    "puppeteer",
    "playwright",
    "curl/",
    "wget/",
    "python-requests",
    "python-urllib",
    "aiohttp",
    "httpx",
    "go-http-client",
    "java/",
    "okhttp",
    "apache-httpclient",
    "libwww-perl",
    "node-fetch",
    "axios/",
    "facebookexternalhit",
    "whatsapp",
    "zalo",
    "github-camo",
    "feedfetcher",
    "mediapartners",
    "google-read-aloud",
    "ia_archiver",
    "yandex",
    "baiduspider",
    "coccoc",
];

struct OldFilter(AhoCorasick);

impl OldFilter {
    fn new() -> Self {
        let automaton = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostFirst)
            .build(OLD_PATTERNS)
            .expect("the old patterns compile");
        OldFilter(automaton)
    }

    fn is_bot(&self, user_agent: Option<&str>) -> bool {
        match user_agent {
            None => true,
            Some(ua) if ua.trim().is_empty() => true,
            Some(ua) => self.0.is_match(ua),
        }
    }
}

const CASES: &[(&str, &str)] = &[
    (
        "browser, Chrome on Windows",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    ),
    (
        "browser, Safari on iPhone",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    ),
    (
        "in-app, Zalo on Android",
        "Mozilla/5.0 (Linux; Android 13; SM-A536E Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.230 Mobile Safari/537.36 Zalo android/12100609 ZaloTheme/light ZaloLanguage/vi",
    ),
    (
        "crawler, Googlebot",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    ),
    (
        "crawler, GPTBot",
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.0; +https://openai.com/gptbot)",
    ),
];

const BROWSERS: &str =
    include_str!("../../crates/footfall-server/tests/data/user-agents/browsers-user-agents.txt");
const CRAWLERS: &str = include_str!(
    "../../crates/footfall-server/tests/data/user-agents/crawlers-crawler-user-agents.txt"
);

fn single_user_agents(c: &mut Criterion) {
    let old = OldFilter::new();
    let new = BotFilter::default();
    let mut group = c.benchmark_group("robot verdict");
    for (name, ua) in CASES {
        group.bench_function(format!("old: {name}"), |b| {
            b.iter(|| old.is_bot(black_box(Some(*ua))));
        });
        group.bench_function(format!("new, first sight: {name}"), |b| {
            b.iter(|| new.verdict_uncached(black_box(Some(*ua))));
        });
        group.bench_function(format!("new, repeated (cache hit): {name}"), |b| {
            b.iter(|| new.verdict(black_box(Some(*ua))));
        });
    }
    group.finish();
}

fn corpora(c: &mut Criterion) {
    let old = OldFilter::new();
    let new = BotFilter::default();
    for (name, text) in [
        ("browsers (user-agents)", BROWSERS),
        ("crawlers (crawler-user-agents)", CRAWLERS),
    ] {
        let uas: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let mut group = c.benchmark_group(format!("robot verdict per UA, corpus {name}"));
        group.throughput(Throughput::Elements(uas.len() as u64));
        group.bench_function("old", |b| {
            b.iter(|| {
                uas.iter()
                    .filter(|ua| old.is_bot(black_box(Some(**ua))))
                    .count()
            });
        });
        // Every User-Agent once: the cache cannot help.
        group.bench_function("new, first sight", |b| {
            b.iter(|| {
                uas.iter()
                    .filter(|ua| new.verdict_uncached(black_box(Some(**ua))).is_robot())
                    .count()
            });
        });
        group.finish();
    }
}

fn startup(c: &mut Criterion) {
    let mut group = c.benchmark_group("robot filter startup");
    group.sample_size(10);
    group.bench_function("BotFilter::default (parse and compile every list)", |b| {
        b.iter(BotFilter::default);
    });
    group.finish();
}

criterion_group!(benches, single_user_agents, corpora, startup);
criterion_main!(benches);
