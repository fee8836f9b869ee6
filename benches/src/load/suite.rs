//! The phases of a run and the report they make.

use std::collections::HashSet;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use footfall_tests::footfall_server::{FootfallServer, HttpClient};
use footfall_tests::redis_server::RedisServer;
use rand::Rng;

use super::Options;
use super::chart::{self, LadderPoint};
use super::drive::{self, Pace, PhaseResult, RequestKind, Workload};
use super::procstat::{self, CpuMeter};
use super::report::{Accuracy, Memory, PhaseReport, Ratio, RedisBenchmark, Report};
use super::service::{
    self, BaselineProcess, Endpoint, HitMetrics, LoadTestSites, SiteCounts, read_counts,
};
use super::traffic::Truth;

/// The admin token of the services the harness starts itself.
const LOCAL_ADMIN_TOKEN: &str = "footfall-load-local-token";
/// How long the service may take to write what it accepted before the counts are read.
const WRITE_WAIT: Duration = Duration::from_secs(30);
/// How long the counts may take to show every write (the counts cache refreshes in the
/// background; the local service caches for 1 s).
const COUNTS_WAIT: Duration = Duration::from_secs(20);
/// Visitors relative error is reported over sites with at least this many visitors
/// (below it the HyperLogLog is exact-ish and relative errors are noise).
const MIN_VISITORS_FOR_ERROR: usize = 100;

/// Runs the suite the options name and writes the report into `options.out`.
///
/// # Errors
///
/// When a process cannot be started, the service refuses the sites, or the report cannot
/// be written.
pub fn run(options: &Options) -> anyhow::Result<Report> {
    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("creating {}", options.out.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut report = Report {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        machine: machine(),
        mix: Some(options.mix()),
        ..Report::default()
    };
    match options.suite.as_str() {
        "quick" => quick(options, &runtime, &mut report)?,
        "full" => {
            if options.target.is_some() {
                bail!("the full suite starts its own services and baselines: drop --target");
            }
            full(options, &runtime, &mut report)?;
        }
        other => bail!("unknown suite {other:?}: quick or full"),
    }
    let svg = chart::render(
        "footfall: throughput and latency against offered load",
        &report.ladder,
    );
    std::fs::write(options.out.join("load.svg"), svg)?;
    std::fs::write(
        options.out.join("report.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    std::fs::write(options.out.join("report.md"), report.markdown("load.svg"))?;
    Ok(report)
}

/// A service the harness started, with what is needed to measure it.
struct Local {
    server: FootfallServer,
    redis_pid: Option<u32>,
}

impl Local {
    fn endpoint(&self) -> Endpoint {
        Endpoint {
            public: self.server.public(),
            host: self.server.public().to_string(),
            admin: Some(self.server.internal()),
            admin_token: Some(LOCAL_ADMIN_TOKEN.to_owned()),
        }
    }

    fn pids(&self) -> Vec<u32> {
        let mut pids = vec![self.server.pid()];
        pids.extend(self.redis_pid);
        pids
    }
}

fn start_footfall(store: &str, redis_pid: Option<u32>) -> anyhow::Result<Local> {
    let server = FootfallServer::builder()
        .store(store)
        .args([
            "--trusted-proxies",
            "127.0.0.1",
            // The per-client limit stays on the hot path, but high enough that the
            // simulated clients never reach it.
            "--rate-limit",
            "100000000",
            "--admin-tokens",
            LOCAL_ADMIN_TOKEN,
            "--counts-ttl",
            "1",
            "--no-demo",
        ])
        .try_start()?;
    Ok(Local { server, redis_pid })
}

fn run_id() -> String {
    let n: u32 = rand::rng().random();
    format!("{n:08x}")
}

fn workload(
    endpoint: &Endpoint,
    sites: &LoadTestSites,
    options: &Options,
    kind: RequestKind,
) -> Workload {
    Workload {
        address: endpoint.public,
        host: endpoint.host.clone(),
        sites: Arc::new(sites.ids.clone()),
        mix: options.mix(),
        kind,
    }
}

/// One phase, measured: the load itself, CPU of the given processes, metrics deltas.
#[allow(clippy::too_many_arguments)] // Each is a different knob of one measurement.
fn phase(
    runtime: &tokio::runtime::Runtime,
    name: &str,
    workload: &Workload,
    pace: Pace,
    connections: usize,
    duration: Duration,
    pids: &[u32],
    admin: Option<std::net::SocketAddr>,
    seed: u64,
) -> anyhow::Result<(PhaseReport, PhaseResult)> {
    let before = admin.map(HitMetrics::scrape).transpose()?;
    let mut all_pids = pids.to_vec();
    all_pids.push(std::process::id());
    let meter = CpuMeter::start(&all_pids);
    let result = runtime.block_on(drive::run(workload, pace, connections, duration, seed))?;
    let cpu = meter.read();
    let metrics = match (admin, before) {
        (Some(admin), Some(before)) => Some(HitMetrics::scrape(admin)?.since(&before)),
        _ => None,
    };
    let per_request = |seconds: f64| seconds * 1e6 / result.ok.max(1) as f64;
    let quantile = |q: f64| result.latency_us.value_at_quantile(q) as f64 / 1000.0;
    let report = PhaseReport {
        name: name.to_owned(),
        pace: match pace {
            Pace::Open(rate) => format!("open {rate:.0}/s, {connections} conns"),
            Pace::Closed => format!("closed, {connections} conns"),
        },
        offered: match pace {
            Pace::Open(rate) => Some(rate),
            Pace::Closed => None,
        },
        sent: result.sent,
        ok: result.ok,
        errors: result.errors,
        throughput: result.throughput(),
        p50_ms: quantile(0.5),
        p90_ms: quantile(0.9),
        p99_ms: quantile(0.99),
        max_ms: result.latency_us.max() as f64 / 1000.0,
        service_cpu_us: pids.first().map(|_| per_request(cpu[0])),
        redis_cpu_us: (pids.len() > 1).then(|| per_request(cpu[1])),
        harness_cpu_us: per_request(cpu[cpu.len() - 1]),
        metrics,
    };
    eprintln!(
        "footfall-load: {name} [{}]: {:.0} req/s, p99 {:.2} ms, errors {}, service CPU {} µs/req",
        report.pace,
        report.throughput,
        report.p99_ms,
        report.errors,
        report
            .service_cpu_us
            .map_or("–".into(), |v| format!("{v:.1}"))
    );
    Ok((report, result))
}

fn quick(
    options: &Options,
    runtime: &tokio::runtime::Runtime,
    report: &mut Report,
) -> anyhow::Result<()> {
    let duration = Duration::from_secs_f64(options.duration);
    // Local processes live until the end of this function.
    let mut _redis = None;
    let mut local = None;
    let (endpoint, pids) = if let Some(target) = &options.target {
        let (public, host) = service::resolve(target)?;
        let admin = options
            .admin
            .as_deref()
            .map(|url| service::resolve(url).map(|(address, _)| address))
            .transpose()?;
        let endpoint = Endpoint {
            public,
            host,
            admin,
            admin_token: options.admin_token.clone(),
        };
        report.notes.push(
            "Remote target: CPU is not measured (run the harness on the service's host to read /proc), and metrics deltas include any other traffic the deployment had during the run.".to_owned(),
        );
        (endpoint, Vec::new())
    } else {
        let (store, redis_pid) = local_store(&options.store, &mut _redis)?;
        let started = start_footfall(&store, redis_pid)?;
        let endpoint = started.endpoint();
        let pids = started.pids();
        local = Some(started);
        (endpoint, pids)
    };
    let sites = LoadTestSites::create(&endpoint, &run_id(), options.sites)?;
    let work = workload(&endpoint, &sites, options, RequestKind::Hits);
    let name = if options.target.is_some() {
        "target"
    } else {
        "footfall"
    };
    let (phase_report, result) = phase(
        runtime,
        &format!("{name} hits"),
        &work,
        Pace::Open(options.rate),
        options.connections,
        duration,
        &pids,
        endpoint.admin,
        options.seed,
    )?;
    report.ladder.push(ladder_point(&phase_report));
    report.phases.push(phase_report);
    if let Some(admin) = endpoint.admin {
        let accuracy = check_counts(&endpoint, admin, &sites, &result.truth, result.ok, name)?;
        report.accuracy.push(accuracy);
    } else {
        report
            .notes
            .push("No --admin: counts not checked against metrics.".to_owned());
    }
    if let Some(rss) = local
        .as_ref()
        .and_then(|local| procstat::rss_bytes(local.server.pid()))
    {
        report.memory.push(Memory {
            name: format!("footfall ({} sites)", options.sites),
            rss_bytes: rss,
        });
    }
    Ok(())
}

/// The store URL of a local service, starting a redis-server when asked to.
fn local_store(
    store: &str,
    redis: &mut Option<RedisServer>,
) -> anyhow::Result<(String, Option<u32>)> {
    Ok(match store {
        "memory" | "memory:" => ("memory:".to_owned(), None),
        "redis" => {
            let server = RedisServer::builder().try_start()?;
            let url = server.url();
            let pid = server.pid();
            *redis = Some(server);
            (url, Some(pid))
        }
        url if url.starts_with("redis://") => (url.to_owned(), None),
        other => bail!("--store {other:?}: memory, redis or a redis:// URL"),
    })
}

fn ladder_point(phase: &PhaseReport) -> LadderPoint {
    LadderPoint {
        offered: phase.offered.unwrap_or(phase.throughput),
        achieved: phase.throughput,
        p50_ms: phase.p50_ms,
        p90_ms: phase.p90_ms,
        p99_ms: phase.p99_ms,
        errors: phase.errors,
    }
}

/// Waits for the writes, reads every site's counts and compares them with the truth.
fn check_counts(
    endpoint: &Endpoint,
    admin: std::net::SocketAddr,
    sites: &LoadTestSites,
    truth: &Truth,
    acknowledged: u64,
    name: &str,
) -> anyhow::Result<Accuracy> {
    // Drops are counted at acceptance, so metrics since the first phase are wanted; the
    // caller passes totals, and the service was started fresh (or the notes say).
    let totals = service::wait_for_writes(admin, &HitMetrics::default(), WRITE_WAIT)?;
    let mut client = HttpClient::connect(endpoint.public)?;
    let mut counts = vec![SiteCounts::default(); sites.ids.len()];
    let mut pending: HashSet<usize> = (0..sites.ids.len()).collect();
    let deadline = Instant::now() + COUNTS_WAIT;
    while !pending.is_empty() {
        let mut still = HashSet::new();
        for &i in &pending {
            let c = read_counts(&mut client, &sites.ids[i])?;
            counts[i] = c;
            if c.pageviews != truth.pageviews[i] || c.visits != truth.visitors[i].len() as u64 {
                still.insert(i);
            }
        }
        pending = still;
        if pending.is_empty() || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut errors = Vec::new();
    for (i, c) in counts.iter().enumerate() {
        let exact = truth.visitors[i].len();
        if exact >= MIN_VISITORS_FOR_ERROR {
            errors.push((c.visitors as f64 - exact as f64) / exact as f64);
        }
    }
    let rms = if errors.is_empty() {
        0.0
    } else {
        (errors.iter().map(|e| e * e).sum::<f64>() / errors.len() as f64).sqrt()
    };
    Ok(Accuracy {
        name: name.to_owned(),
        active_sites: truth.pageviews.iter().filter(|&&p| p > 0).count(),
        hits_acknowledged: acknowledged,
        dropped_by_metrics: totals.total_dropped(),
        pageviews_expected: truth.total_pageviews(),
        pageviews_counted: counts.iter().map(|c| c.pageviews).sum(),
        pageview_mismatches: (0..counts.len())
            .filter(|&i| counts[i].pageviews != truth.pageviews[i])
            .count(),
        visits_expected: truth.visitors.iter().map(|v| v.len() as u64).sum(),
        visits_counted: counts.iter().map(|c| c.visits).sum(),
        visit_mismatches: (0..counts.len())
            .filter(|&i| counts[i].visits != truth.visitors[i].len() as u64)
            .count(),
        visitors_expected: truth.visitors.iter().map(|v| v.len() as u64).sum(),
        visitors_counted: counts.iter().map(|c| c.visitors).sum(),
        visitors_rms_error: rms,
        visitors_max_error: errors.iter().fold(0.0_f64, |m, e| m.max(e.abs())),
    })
}

/// footfall on one store: ceiling, open-loop steps, reads, accuracy, memory.
struct StoreRun {
    ceiling: PhaseReport,
    steps: Vec<PhaseReport>,
    reads: PhaseReport,
}

#[allow(clippy::too_many_arguments)] // One call per store, each knob named at the call.
fn footfall_on(
    label: &str,
    store: &str,
    redis_pid: Option<u32>,
    fractions: &[f64],
    options: &Options,
    runtime: &tokio::runtime::Runtime,
    report: &mut Report,
) -> anyhow::Result<StoreRun> {
    let duration = Duration::from_secs_f64(options.duration);
    let local = start_footfall(store, redis_pid)?;
    let endpoint = local.endpoint();
    let pids = local.pids();
    let sites = LoadTestSites::create(&endpoint, &run_id(), options.sites)?;
    let hits = workload(&endpoint, &sites, options, RequestKind::Hits);
    let mut truth = Truth::new(sites.ids.len());
    let mut acknowledged = 0;
    let mut seed = options.seed;
    let mut next_seed = || {
        seed += 1;
        seed
    };
    let (ceiling, result) = phase(
        runtime,
        &format!("footfall {label}, hits"),
        &hits,
        Pace::Closed,
        options.closed_connections,
        duration,
        &pids,
        endpoint.admin,
        next_seed(),
    )?;
    acknowledged += result.ok;
    truth.merge(result.truth);
    let mut steps = Vec::new();
    for &fraction in fractions {
        let rate = (ceiling.throughput * fraction).max(10.0);
        let (step, result) = phase(
            runtime,
            &format!(
                "footfall {label}, hits at {:.0} % of ceiling",
                fraction * 100.0
            ),
            &hits,
            Pace::Open(rate),
            options.connections,
            duration,
            &pids,
            endpoint.admin,
            next_seed(),
        )?;
        acknowledged += result.ok;
        truth.merge(result.truth);
        steps.push(step);
    }
    let accuracy = check_counts(
        &endpoint,
        endpoint.admin.context("local admin")?,
        &sites,
        &truth,
        acknowledged,
        &format!("footfall {label}"),
    )?;
    report.accuracy.push(accuracy);
    let reads_work = workload(&endpoint, &sites, options, RequestKind::Reads);
    let (reads, _) = phase(
        runtime,
        &format!("footfall {label}, cached count reads"),
        &reads_work,
        Pace::Closed,
        options.closed_connections,
        duration,
        &pids,
        None,
        next_seed(),
    )?;
    if let Some(rss) = procstat::rss_bytes(local.server.pid()) {
        report.memory.push(Memory {
            name: format!(
                "footfall {label} ({} sites registered and hit)",
                options.sites
            ),
            rss_bytes: rss,
        });
    }
    report.phases.push(ceiling.clone());
    report.phases.extend(steps.iter().cloned());
    report.phases.push(reads.clone());
    drop(sites);
    Ok(StoreRun {
        ceiling,
        steps,
        reads,
    })
}

fn full(
    options: &Options,
    runtime: &tokio::runtime::Runtime,
    report: &mut Report,
) -> anyhow::Result<()> {
    let duration = Duration::from_secs_f64(options.duration);
    let redis = RedisServer::builder().try_start()?;
    let redis_url = redis.url();
    let redis_pid = redis.pid();
    let fake_sites: Arc<Vec<String>> = Arc::new(
        (0..options.sites)
            .map(|n| format!("loadtest-bare-{n:04}"))
            .collect(),
    );

    // 1. The bare handler: the machine's ceiling.
    let bare = BaselineProcess::start("bare", None)?;
    let bare_endpoint_work = |kind| Workload {
        address: bare.address,
        host: bare.address.to_string(),
        sites: Arc::clone(&fake_sites),
        mix: options.mix(),
        kind,
    };
    let (bare_hits, _) = phase(
        runtime,
        "bare 204, hits",
        &bare_endpoint_work(RequestKind::Hits),
        Pace::Closed,
        options.closed_connections,
        duration,
        &[bare.pid()],
        None,
        options.seed,
    )?;
    let (bare_half, _) = phase(
        runtime,
        "bare 204, hits at 50 % of its ceiling",
        &bare_endpoint_work(RequestKind::Hits),
        Pace::Open(bare_hits.throughput * 0.5),
        options.connections,
        duration,
        &[bare.pid()],
        None,
        options.seed,
    )?;
    let (bare_reads, _) = phase(
        runtime,
        "bare 204, count reads (fixed 3 KB body)",
        &bare_endpoint_work(RequestKind::Reads),
        Pace::Closed,
        options.closed_connections,
        duration,
        &[bare.pid()],
        None,
        options.seed,
    )?;
    drop(bare);
    report
        .phases
        .extend([bare_hits.clone(), bare_half, bare_reads.clone()]);

    // 2. footfall on the memory store: ceiling and the ladder of the chart.
    let memory = footfall_on(
        "memory",
        "memory:",
        None,
        &options.ladder,
        options,
        runtime,
        report,
    )?;
    report.ladder = memory.steps.iter().map(ladder_point).collect();

    // 3. footfall on Redis: ceiling and half of it.
    let on_redis = footfall_on(
        "redis",
        &redis_url,
        Some(redis_pid),
        &[0.5],
        options,
        runtime,
        report,
    )?;

    // 4. The naive handler: one Redis round trip per hit.
    let naive = BaselineProcess::start("naive", Some(&redis_url))?;
    let naive_work = Workload {
        address: naive.address,
        host: naive.address.to_string(),
        sites: Arc::clone(&fake_sites),
        mix: options.mix(),
        kind: RequestKind::Hits,
    };
    let (naive_hits, _) = phase(
        runtime,
        "naive (PFADD+INCR per hit), hits",
        &naive_work,
        Pace::Closed,
        options.closed_connections,
        duration,
        &[naive.pid(), redis_pid],
        None,
        options.seed,
    )?;
    let (naive_half, _) = phase(
        runtime,
        "naive, hits at 50 % of its ceiling",
        &naive_work,
        Pace::Open(naive_hits.throughput * 0.5),
        options.connections,
        duration,
        &[naive.pid(), redis_pid],
        None,
        options.seed,
    )?;
    drop(naive);
    report.phases.extend([naive_hits.clone(), naive_half]);

    // 5. redis-benchmark, pipelined and not.
    for pipeline in [1, 16] {
        match redis_benchmark(redis.port(), redis_pid, pipeline) {
            Ok(result) => report.redis_benchmark.push(result),
            Err(error) => report
                .notes
                .push(format!("redis-benchmark -P {pipeline}: {error:#}")),
        }
    }
    if let Some(rss) = procstat::rss_bytes(redis_pid) {
        report.memory.push(Memory {
            name: "redis-server (after the run)".into(),
            rss_bytes: rss,
        });
    }
    drop(redis);

    // 6. The ratios.
    let ratio = |name: &str, value: f64, unit: &str, aim: &str, met: bool| Ratio {
        name: name.to_owned(),
        value,
        unit: unit.to_owned(),
        aim: aim.to_owned(),
        met,
    };
    let cpu = |p: &PhaseReport| p.total_cpu_us().unwrap_or(f64::NAN);
    let bare_cpu = cpu(&bare_hits);
    let redis_cpu = cpu(&on_redis.ceiling);
    let memory_cpu = cpu(&memory.ceiling);
    let naive_cpu = cpu(&naive_hits);
    let mut ratios = vec![
        ratio(
            "CPU per hit, footfall+Redis / bare",
            redis_cpu / bare_cpu,
            "×",
            "≤ 1.25",
            redis_cpu / bare_cpu <= 1.25,
        ),
        ratio(
            "CPU per hit, footfall memory / bare",
            memory_cpu / bare_cpu,
            "×",
            "≤ 1.25",
            memory_cpu / bare_cpu <= 1.25,
        ),
        ratio(
            "CPU per hit, footfall+Redis / naive+Redis",
            redis_cpu / naive_cpu,
            "×",
            "≤ 0.625",
            redis_cpu / naive_cpu <= 0.625,
        ),
        ratio(
            "Throughput, footfall+Redis / bare",
            on_redis.ceiling.throughput / bare_hits.throughput,
            "×",
            "≥ 0.8",
            on_redis.ceiling.throughput / bare_hits.throughput >= 0.8,
        ),
        ratio(
            "Throughput, footfall memory / bare",
            memory.ceiling.throughput / bare_hits.throughput,
            "×",
            "≥ 0.8",
            memory.ceiling.throughput / bare_hits.throughput >= 0.8,
        ),
    ];
    if let Some(half) = on_redis.steps.first() {
        ratios.push(ratio(
            "p99 at half ceiling, footfall+Redis",
            half.p99_ms,
            "ms",
            "< 2 ms",
            half.p99_ms < 2.0,
        ));
    }
    if let Some(half) = memory.steps.iter().find(|s| s.name.contains(" 50 %")) {
        ratios.push(ratio(
            "p99 at half ceiling, footfall memory",
            half.p99_ms,
            "ms",
            "< 2 ms",
            half.p99_ms < 2.0,
        ));
    }
    let read_ratio = cpu(&memory.reads) / cpu(&bare_reads);
    ratios.push(ratio(
        "Cached count reads CPU per request, footfall / bare",
        read_ratio,
        "×",
        "≤ 1.1",
        read_ratio <= 1.1,
    ));
    let read_ratio_redis = cpu(&on_redis.reads) / cpu(&bare_reads);
    ratios.push(ratio(
        "Cached count reads CPU per request (service+Redis), footfall+Redis / bare",
        read_ratio_redis,
        "×",
        "≤ 1.1",
        read_ratio_redis <= 1.1,
    ));
    if let Some(rss) = report
        .memory
        .iter()
        .find(|m| m.name.starts_with("footfall redis"))
    {
        let mib = rss.rss_bytes as f64 / 1048576.0;
        ratios.push(ratio(
            &format!("Service RSS, Redis store, {} sites", options.sites),
            mib,
            "MiB",
            "< 64 MiB with 1,000 sites",
            mib < 64.0,
        ));
    }
    report.ratios = ratios;
    Ok(())
}

fn redis_benchmark(port: u16, redis_pid: u32, pipeline: u32) -> anyhow::Result<RedisBenchmark> {
    let requests = if pipeline > 1 { 2_000_000 } else { 200_000 };
    // redis-benchmark 7 has no built-in PFADD test (`-t pfadd` runs nothing): give the
    // command, with a random element out of a million (`-r`) so the key turns dense.
    let args = [
        "-h".to_owned(),
        "127.0.0.1".to_owned(),
        "-p".to_owned(),
        port.to_string(),
        "-n".to_owned(),
        requests.to_string(),
        "-r".to_owned(),
        "1000000".to_owned(),
        "-P".to_owned(),
        pipeline.to_string(),
        "-q".to_owned(),
        "pfadd".to_owned(),
        "bench:hll".to_owned(),
        "__rand_int__".to_owned(),
    ];
    let meter = CpuMeter::start(&[redis_pid]);
    let output = Command::new("redis-benchmark")
        .args(&args)
        .output()
        .context("running redis-benchmark (apt-get install redis-tools)")?;
    let cpu = meter.read()[0];
    let text = String::from_utf8_lossy(&output.stdout);
    // "pfadd bench:hll __rand_int__: 91324.20 requests per second, p50=0.279 msec"
    // (after \r progress lines).
    let ops: f64 = text
        .split(['\r', '\n'])
        .find_map(|line| {
            let (_, rest) = line.rsplit_once(": ")?;
            let (number, _) = rest.split_once(" requests per second")?;
            number.trim().parse().ok()
        })
        .with_context(|| format!("no rate in redis-benchmark output: {text}"))?;
    Ok(RedisBenchmark {
        command: format!(
            "redis-benchmark -n {requests} -r 1000000 -P {pipeline} pfadd bench:hll __rand_int__"
        ),
        ops_per_second: ops,
        redis_cpu_us: cpu * 1e6 / f64::from(requests),
    })
}

fn machine() -> String {
    let nproc = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1048576.0);
    format!("{nproc} CPUs ({model}), {mem_gib:.1} GiB RAM")
}
