//! Hits per second through the Redis backend, against bare `PFADD` throughput with the
//! same pipelining, plus Redis CPU per hit and memory per site-day.
//!
//! `cargo bench -p footfall-benches --bench redis_store` starts its own `redis-server`
//! (no persistence, loopback) and prints a table; ratios within one run are what to
//! compare, since the machine is shared.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use footfall::clock::{Clock, SystemClock};
use footfall::counter::{self, Hit};
use footfall::identity::Salt;
use footfall::keys::{self, Scope};
use footfall::store::conformance::fixtures;
use footfall::store::{RedisStore, Store};
use footfall::{CountingRules, Metric, SiteId};
use footfall_tests::redis_server::RedisServer;
use jiff::{SignedDuration, Timestamp};

/// Hits per throughput run: enough for Redis CPU time (10 ms ticks) to be measurable.
const N_HITS: usize = 200_000;
/// Sites the hits spread over, as on a provincial portal's handful of sub-sites.
const N_SITES: u32 = 4;
/// Distinct visitors per site in the throughput runs.
const VISITORS_PER_SITE: u32 = 20_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run());
}

async fn run() {
    let server = RedisServer::start();
    let store = RedisStore::connect(&server.url())
        .await
        .expect("connecting to the bench's redis-server");
    let rules = CountingRules::default();
    let now = SystemClock.now();
    let sites: Vec<SiteId> = (0..N_SITES)
        .map(|n| SiteId::new(&format!("bench-{n}")).expect("valid site"))
        .collect();
    let hits = make_hits(&sites, N_HITS, VISITORS_PER_SITE, now);

    println!("| workload | batch | hits or ops/s | Redis CPU µs per hit or op |");
    println!("|---|---|---|---|");
    let mut results = Vec::new();
    for batch_size in [100, 1_000] {
        // Plan outside the timed part: planning is the library's CPU, not the store's.
        let plans: Vec<_> = hits
            .chunks(batch_size)
            .map(|chunk| counter::plan(chunk, |_| Some(&rules), now).batch)
            .collect();
        let cpu_before = redis_cpu(&server);
        let started = Instant::now();
        for batch in &plans {
            store.apply(batch).await.expect("applying a batch");
        }
        let elapsed = started.elapsed();
        let cpu = redis_cpu(&server) - cpu_before;
        let rate = N_HITS as f64 / elapsed.as_secs_f64();
        let cpu_per = cpu.as_secs_f64() * 1e6 / N_HITS as f64;
        println!(
            "| store.apply (counter::plan batches) | {batch_size} | {rate:.0} | {cpu_per:.2} |"
        );

        let (pfadd_rate, pfadd_cpu) = pfadd_baseline(&server, &hits, batch_size).await;
        println!(
            "| PFADD, one element per command, pipelined | {batch_size} | {pfadd_rate:.0} | {pfadd_cpu:.2} |"
        );
        results.push((batch_size, rate, cpu_per, pfadd_rate, pfadd_cpu));
    }
    println!();
    for (batch_size, rate, cpu, pfadd_rate, pfadd_cpu) in results {
        println!(
            "batch {batch_size}: store hits/s = {:.2} x PFADD ops/s; Redis CPU per hit = {:.2} x per PFADD",
            rate / pfadd_rate,
            cpu / pfadd_cpu
        );
    }

    println!();
    println!(
        "| daily visitors | day keys (pv, vs, uv) bytes | open-visit markers bytes | used_memory growth bytes |"
    );
    println!("|---|---|---|---|");
    for (n, visitors) in [1_000u32, 100_000, 1_000_000].into_iter().enumerate() {
        let site = SiteId::new(&format!("memory-{n}")).expect("valid site");
        let used_before = used_memory(&server);
        let day_hits = make_hits(
            std::slice::from_ref(&site),
            visitors as usize,
            visitors,
            now,
        );
        for chunk in day_hits.chunks(1_000) {
            counter::record(&store, chunk, |_| Some(&rules), now)
                .await
                .expect("recording a day");
        }
        let used_after = used_memory(&server);
        let day = Scope::Day(rules.calendar().day(now));
        let day_keys: Vec<String> = Metric::ALL
            .iter()
            .map(|&metric| keys::metric(&site, metric, &day).to_string())
            .collect();
        let day_bytes: u64 = day_keys.iter().map(|key| memory_usage(&server, key)).sum();
        let markers = marker_bytes(&server, &site);
        println!(
            "| {visitors} | {day_bytes} | {markers} | {} |",
            used_after.saturating_sub(used_before)
        );
    }
    // The store and the server go with the runtime; the server is killed on drop.
    let _ = store.ping().await;
}

/// `n_hits` hits over `sites`, from `visitors_per_site` visitors each, at `now`.
fn make_hits(sites: &[SiteId], n_hits: usize, visitors_per_site: u32, now: Timestamp) -> Vec<Hit> {
    let salt = Salt::from_bytes([3; 32]);
    (0..n_hits)
        .map(|n| {
            let n = u32::try_from(n).expect("hit counts fit u32");
            let site = &sites[(n as usize) % sites.len()];
            let visitor = (n / sites.len() as u32) % visitors_per_site;
            let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + visitor));
            let visitor = fixtures::visitor(&salt, site, ip);
            // Within the last minute, so the hits share today's keys.
            let at = now - SignedDuration::from_millis(i64::from(n % 50_000));
            fixtures::hit(site, at, visitor)
        })
        .collect()
}

/// `PFADD key element` for each hit, `depth` commands per pipeline: what `redis-benchmark
/// -t pfadd -P depth` measures, through the same client library.
async fn pfadd_baseline(server: &RedisServer, hits: &[Hit], depth: usize) -> (f64, f64) {
    let client = server.client();
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("a connection for the PFADD baseline");
    let key = format!("bench:pfadd:{depth}");
    let cpu_before = redis_cpu(server);
    let started = Instant::now();
    for chunk in hits.chunks(depth) {
        let mut pipeline = redis::pipe();
        for hit in chunk {
            pipeline
                .cmd("PFADD")
                .arg(&key)
                .arg(hit.visitor.as_bytes().as_slice())
                .ignore();
        }
        pipeline
            .query_async::<()>(&mut connection)
            .await
            .expect("PFADD pipeline");
    }
    let elapsed = started.elapsed();
    let cpu = redis_cpu(server) - cpu_before;
    (
        hits.len() as f64 / elapsed.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / hits.len() as f64,
    )
}

/// The server's user + system CPU time so far, from `/proc/<pid>/stat`.
fn redis_cpu(server: &RedisServer) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", server.pid()))
        .expect("reading redis-server's /proc stat");
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks =
        |index: usize| -> u64 { fields.get(index).and_then(|f| f.parse().ok()).unwrap_or(0) };
    // Linux reports in clock ticks of 1/100 s (USER_HZ) on every mainstream platform.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn used_memory(server: &RedisServer) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query(&mut server.connection())
        .expect("INFO memory");
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

fn memory_usage(server: &RedisServer, key: &str) -> u64 {
    redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(key)
        .arg("SAMPLES")
        .arg(0)
        .query::<Option<u64>>(&mut server.connection())
        .expect("MEMORY USAGE")
        .unwrap_or(0)
}

/// Sum of `MEMORY USAGE` over the site's open-visit markers, pipelined.
fn marker_bytes(server: &RedisServer, site: &SiteId) -> u64 {
    let mut connection = server.connection();
    let pattern = format!("ff:{{{site}}}:sess:*");
    let mut cursor = 0u64;
    let mut total = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(10_000)
            .query(&mut connection)
            .expect("SCAN");
        let mut pipeline = redis::pipe();
        for key in &keys {
            pipeline.cmd("MEMORY").arg("USAGE").arg(key);
        }
        let sizes: Vec<Option<u64>> = pipeline.query(&mut connection).expect("MEMORY USAGE");
        total += sizes.into_iter().flatten().sum::<u64>();
        if next == 0 {
            return total;
        }
        cursor = next;
    }
}
