//! The phases of a run and the report they make.

use std::cell::Cell;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use footfall_tests::footfall_server::{FootfallServer, HttpClient};
use rand::Rng;

use super::Options;
use super::chart::LadderPoint;
use super::drain::{self, DrainSettings};
use super::drive::{self, Pace, PhaseResult, RequestKind, Workload};
use super::procstat::{self, CpuMeter, CpuTimes};
use super::redis_nodes::RedisNodes;
use super::report::{
    Accuracy, DrainReport, FloorRow, Memory, PhaseReport, Ratio, RedisBenchmark, Report, ScaleOut,
};
use super::service::{
    self, BaselineProcess, Endpoint, HitMetrics, LoadTestSites, SiteCounts, read_counts,
};
use super::stores::{StoreKind, StoreTarget};
use super::traffic::{TrafficMix, Truth};

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
/// After a phase of hits, how long the service may take to write what it accepted before
/// the CPU and Redis readings are taken: a phase is charged for its own writes, and the
/// next one starts with an empty buffer.
pub(super) const SETTLE_LIMIT: Duration = Duration::from_secs(10);
/// The window over which a service counts as quiet before the first phase (see
/// [`procstat::wait_until_quiet`]).
const QUIET_WINDOW: Duration = Duration::from_millis(200);
/// The "low load" step: a share of the ceiling most sites live at, where fixed costs per
/// request (timers, wake-ups) show.
const LOW_LOAD: f64 = 0.1;

/// What one phase sends, and how fast.
#[derive(Debug)]
pub(super) struct Phase<'w> {
    /// The row's name in the report.
    pub(super) name: String,
    /// The requests.
    pub(super) workload: &'w Workload,
    /// Open loop at a rate, or closed loop.
    pub(super) pace: Pace,
    /// Keep-alive connections.
    pub(super) connections: usize,
}

/// What a phase measures besides the load: the service's process, its Redis nodes, and
/// its metrics listener.
#[derive(Debug, Clone, Default)]
pub(super) struct Measured {
    /// The server under load (footfall or a baseline), when it runs here.
    pub(super) service_pid: Option<u32>,
    /// The Redis servers behind it.
    pub(super) redis: RedisNodes,
    /// footfall's internal listener, for the hit metrics.
    pub(super) admin: Option<SocketAddr>,
}

/// The settings every phase of a run shares, held once.
#[derive(Debug)]
pub(super) struct Bench<'r> {
    /// The runtime the load is driven on.
    pub(super) runtime: &'r tokio::runtime::Runtime,
    /// How long each phase lasts.
    pub(super) duration: Duration,
    /// The last seed handed out; each phase draws its own traffic.
    pub(super) seed: Cell<u64>,
    /// The longest a phase waits after its load for the writes to catch up.
    pub(super) settle_limit: Duration,
}

impl Bench<'_> {
    /// One hit to every site before anything is measured (see
    /// [`drive::touch_every_site`]), then a wait until the service wrote them, so that
    /// the first phase starts from the steady state.
    pub(super) fn touch_every_site(
        &self,
        workload: &Workload,
        measured: &Measured,
    ) -> anyhow::Result<(u64, Truth)> {
        let (ok, truth) = self.runtime.block_on(drive::touch_every_site(workload))?;
        if let Some(admin) = measured.admin {
            service::wait_for_writes(admin, &HitMetrics::default(), self.settle_limit)?;
        }
        let waited = measured.service_pid.map_or(Duration::ZERO, |pid| {
            procstat::wait_until_quiet(pid, QUIET_WINDOW, self.settle_limit)
        });
        super::progress(format_args!(
            "one hit to each of {} sites; the service was quiet {:.1} s later",
            workload.sites.len(),
            waited.as_secs_f64()
        ));
        Ok((ok, truth))
    }

    fn next_seed(&self) -> u64 {
        let seed = self.seed.get() + 1;
        self.seed.set(seed);
        seed
    }

    /// Runs one phase for the run's duration.
    pub(super) fn run(
        &self,
        phase: &Phase<'_>,
        measured: &Measured,
    ) -> anyhow::Result<(PhaseReport, PhaseResult)> {
        self.run_for(phase, measured, self.duration, self.settle_limit)
    }

    /// Runs one phase, measured: the load itself, then (for hits, when the metrics are
    /// known) a wait of at most `settle` until the service wrote what it accepted, then
    /// the CPU of the service, Redis and the harness, Redis's commands and the metrics
    /// deltas.
    pub(super) fn run_for(
        &self,
        phase: &Phase<'_>,
        measured: &Measured,
        duration: Duration,
        settle: Duration,
    ) -> anyhow::Result<(PhaseReport, PhaseResult)> {
        let before = measured.admin.map(HitMetrics::scrape).transpose()?;
        let mut pids: Vec<u32> = measured.service_pid.into_iter().collect();
        pids.push(std::process::id());
        let meter = CpuMeter::start(&pids);
        let redis_before = measured.redis.read();
        let result = self.runtime.block_on(drive::run(
            phase.workload,
            phase.pace,
            phase.connections,
            duration,
            self.next_seed(),
        ))?;
        let load_ended = Instant::now();
        let metrics = match (measured.admin, before) {
            (Some(admin), Some(before)) if phase.workload.kind.is_hit() => {
                Some(service::wait_for_writes(admin, &before, settle)?)
            }
            (Some(admin), Some(before)) => Some(HitMetrics::scrape(admin)?.since(&before)),
            _ => None,
        };
        let settle_seconds = load_ended.elapsed().as_secs_f64();
        let cpu = meter.read();
        let redis = measured.redis.since(&redis_before);
        let ok = result.ok.max(1) as f64;
        let per_request = |seconds: f64| seconds * 1e6 / ok;
        let service = measured.service_pid.map(|_| cpu[0]);
        let harness = cpu.last().copied().unwrap_or_default();
        let redis_total = redis.total_cpu();
        let quantile = |q: f64| result.latency_us.value_at_quantile(q) as f64 / 1000.0;
        let report = PhaseReport {
            name: phase.name.clone(),
            pace: match phase.pace {
                Pace::Open(rate) => format!("open {rate:.0}/s, {} conns", phase.connections),
                Pace::Closed => format!("closed, {} conns", phase.connections),
            },
            offered: match phase.pace {
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
            service_cpu_us: service.map(|c| per_request(c.total())),
            service_user_us: service.map(|c| per_request(c.user)),
            service_system_us: service.map(|c| per_request(c.system)),
            redis_cpu_us: redis_total.map(|c| per_request(c.total())),
            redis_user_us: redis_total.map(|c| per_request(c.user)),
            redis_system_us: redis_total.map(|c| per_request(c.system)),
            redis_cpu_per_node_us: redis
                .cpu
                .iter()
                .map(|c| c.map_or(f64::NAN, |c| per_request(c.total())))
                .collect(),
            redis_commands_per_request: (!measured.redis.is_empty())
                .then_some(redis.commands)
                .flatten()
                .map(|c| c as f64 / ok),
            harness_cpu_us: per_request(harness.total()),
            settle_seconds,
            metrics,
        };
        super::progress(format_args!(
            "{} [{}]: {:.0} req/s, p99 {:.2} ms, errors {}, service CPU {} µs/req, Redis {} µs/req, {} cmds/req, settled in {:.2} s",
            report.name,
            report.pace,
            report.throughput,
            report.p99_ms,
            report.errors,
            fmt_opt(report.service_cpu_us),
            fmt_opt(report.redis_cpu_us),
            fmt_opt(report.redis_commands_per_request),
            report.settle_seconds,
        ));
        Ok((report, result))
    }
}

fn fmt_opt(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.1}"))
}

/// A `footfall serve` the harness started, with its load-test sites.
#[derive(Debug)]
pub(super) struct LocalService {
    /// The process.
    pub(super) server: FootfallServer,
    /// Where it listens.
    pub(super) endpoint: Endpoint,
    /// The sites it counts.
    pub(super) sites: LoadTestSites,
    /// Holds the sites file the service read (removed with it).
    _sites_dir: tempfile::TempDir,
}

impl LocalService {
    /// What a phase on this service measures: the service, `redis`, the metrics.
    pub(super) fn measured(&self, redis: &RedisNodes) -> Measured {
        Measured {
            service_pid: Some(self.server.pid()),
            redis: redis.clone(),
            admin: Some(self.server.internal()),
        }
    }
}

/// Starts `footfall serve` on a store location with `n_sites` load-test sites. They are
/// registered from a sites file at start-up rather than through the admin API: the API
/// takes seconds per thousand sites to register them and more to delete them, which
/// would be most of a full run's wall time, and a throw-away service needs neither.
pub(super) fn start_local(
    store: &str,
    n_sites: usize,
    visit_timeout_minutes: Option<u32>,
) -> anyhow::Result<LocalService> {
    let run = run_id();
    let ids: Vec<String> = (0..n_sites)
        .map(|n| format!("loadtest-{run}-{n:04}"))
        .collect();
    let sites_dir = tempfile::Builder::new()
        .prefix("footfall-load-sites-")
        .tempdir()
        .context("creating a directory for the sites file")?;
    let sites_path = sites_dir.path().join("sites.toml");
    std::fs::write(
        &sites_path,
        LoadTestSites::sites_file(&ids, visit_timeout_minutes),
    )
    .with_context(|| format!("writing {}", sites_path.display()))?;
    let server = start_footfall(store, &sites_path)?;
    super::progress(format_args!(
        "footfall serve on {store} with {n_sites} sites"
    ));
    Ok(LocalService {
        endpoint: local_endpoint(&server),
        server,
        sites: LoadTestSites::preregistered(ids),
        _sites_dir: sites_dir,
    })
}

/// Starts `footfall serve` on a store location, with settings that keep the per-client
/// limit and the counts cache on the hot path without getting in the way.
fn start_footfall(store: &str, sites_file: &std::path::Path) -> anyhow::Result<FootfallServer> {
    FootfallServer::builder()
        .store(store)
        .args([std::ffi::OsStr::new("--sites-file"), sites_file.as_os_str()])
        .args([
            "--trusted-proxies",
            "127.0.0.1",
            // The per-client limit stays on the hot path, but high enough that the
            // simulated clients never reach it.
            "--rate-limit",
            "100000000",
            // Likewise the budget of new visitors per address: simulated clients visit
            // hundreds of sites each, far more than a person does.
            "--visitor-budget",
            "100000000",
            "--admin-tokens",
            LOCAL_ADMIN_TOKEN,
            "--counts-ttl",
            "1",
            "--no-demo",
        ])
        .try_start()
        .with_context(|| format!("starting footfall serve on {store}"))
}

/// The endpoint of a service the harness started.
fn local_endpoint(server: &FootfallServer) -> Endpoint {
    Endpoint {
        public: server.public(),
        host: server.public().to_string(),
        admin: Some(server.internal()),
        admin_token: Some(LOCAL_ADMIN_TOKEN.to_owned()),
    }
}

/// A fresh id for the sites of one service, so runs on a shared store never mix.
pub(super) fn run_id() -> String {
    let n: u32 = rand::rng().random();
    format!("{n:08x}")
}

/// Requests of `kind` to `endpoint`'s `sites`.
pub(super) fn workload(
    endpoint: &Endpoint,
    sites: &LoadTestSites,
    mix: &TrafficMix,
    kind: RequestKind,
) -> Workload {
    Workload {
        address: endpoint.public,
        host: endpoint.host.clone(),
        sites: Arc::new(sites.ids.clone()),
        mix: mix.clone(),
        kind,
    }
}

pub(super) fn quick(
    options: &Options,
    bench: &Bench<'_>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let kind = match options.requests.as_str() {
        "hits" => RequestKind::Hits,
        "widget" => RequestKind::Widget,
        "reads" => RequestKind::Reads,
        other => bail!("--requests {other:?}: hits, widget or reads"),
    };
    // Local processes, and the sites of a remote target (deleted when dropped), live
    // until the end of this function.
    let mut _store = None;
    let mut local = None;
    let remote_sites;
    let (endpoint, measured, sites) = if let Some(target) = &options.target {
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
        let measured = Measured {
            admin,
            ..Measured::default()
        };
        remote_sites = LoadTestSites::create(&endpoint, &run_id(), options.sites())?;
        (endpoint, measured, &remote_sites)
    } else {
        let store_kind: StoreKind = options.store.parse()?;
        let target = StoreTarget::start(&store_kind)?;
        let started = start_local(
            &target.location,
            options.sites(),
            options.visit_timeout_minutes,
        )?;
        let measured = started.measured(&target.redis);
        _store = Some(target);
        let started = local.insert(started);
        (started.endpoint.clone(), measured, &started.sites)
    };
    let work = workload(&endpoint, sites, &options.mix(), kind);
    let (touched, mut truth) = bench.touch_every_site(&work, &measured)?;
    let name = if options.target.is_some() {
        "target".to_owned()
    } else {
        format!("footfall {}", options.store)
    };
    let (phase_report, result) = bench.run(
        &Phase {
            name: format!("{name}, {}", options.requests),
            workload: &work,
            pace: Pace::Open(options.rate),
            connections: options.connections,
        },
        &measured,
    )?;
    report.ladder.push(ladder_point(&phase_report));
    report.phases.push(phase_report);
    if let Some(admin) = endpoint.admin {
        truth.merge(result.truth);
        let acknowledged = touched + result.ok;
        let accuracy = check_counts(&endpoint, admin, sites, &truth, acknowledged, &name)?;
        report.accuracy.push(accuracy);
    } else if kind.is_hit() {
        report
            .notes
            .push("No --admin: counts not checked against metrics.".to_owned());
    }
    if let Some(rss) = measured
        .service_pid
        .filter(|_| local.is_some())
        .and_then(procstat::rss_bytes)
    {
        report.memory.push(Memory {
            name: format!("footfall {} ({} sites)", options.store, options.sites()),
            rss_bytes: rss,
        });
    }
    Ok(())
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
pub(super) fn check_counts(
    endpoint: &Endpoint,
    admin: SocketAddr,
    sites: &LoadTestSites,
    truth: &Truth,
    acknowledged: u64,
    name: &str,
) -> anyhow::Result<Accuracy> {
    // Drops are counted at acceptance, so metrics since the first phase are wanted; the
    // caller passes totals, and the service was started fresh (or the notes say).
    let totals = service::wait_for_writes(admin, &HitMetrics::default(), WRITE_WAIT)?;
    super::progress(format_args!("{name}: writes caught up, reading the counts"));
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
    super::progress(format_args!(
        "{name}: counts read, {} sites still off",
        pending.len()
    ));
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

/// A baseline (bare, or bare behind footfall's protections), kept running through the
/// full suite so that it can be measured right after each footfall phase it is compared
/// with.
struct Bare {
    /// How its phases are named: "bare" or "guarded".
    name: &'static str,
    process: BaselineProcess,
    sites: Arc<Vec<String>>,
    mix: TrafficMix,
}

impl Bare {
    fn workload(&self, kind: RequestKind) -> Workload {
        Workload {
            address: self.process.address,
            host: self.process.address.to_string(),
            sites: Arc::clone(&self.sites),
            mix: self.mix.clone(),
            kind,
        }
    }

    fn measured(&self) -> Measured {
        Measured {
            service_pid: Some(self.process.pid()),
            ..Measured::default()
        }
    }
}

/// What to run on one store.
struct StorePlan<'a> {
    /// "memory", "embedded, 1000 sites", …
    label: String,
    target: &'a StoreTarget,
    sites: usize,
    /// Open-loop steps as shares of the ceiling (the low-load step among them is
    /// followed by bare at the same rate).
    fractions: Vec<f64>,
    /// Cached count reads and the widget's `?counts=1` reply.
    reads_and_widget: bool,
    /// The guarded baseline, measured after bare next to each of this store's phases
    /// (the floor table).
    guarded: Option<&'a Bare>,
    /// The aim of a hit's CPU ÷ bare's on this store.
    hit_aim: f64,
}

/// footfall on one store.
struct StoreRun {
    label: String,
    ceiling: PhaseReport,
    /// Bare's ceiling, measured right after footfall's: the machine is shared, and a
    /// baseline taken a minute earlier may have run on a quieter (or busier) machine.
    bare_ceiling: PhaseReport,
    steps: Vec<(f64, PhaseReport)>,
    /// Bare at the offered rate of footfall's low-load step.
    bare_low: Option<PhaseReport>,
    /// footfall's cached reads, then bare's, back to back.
    reads: Option<(PhaseReport, PhaseReport)>,
    /// footfall's widget replies, then bare's, back to back.
    widget: Option<(PhaseReport, PhaseReport)>,
    rss_bytes: Option<u64>,
    /// footfall, bare and guarded side by side, when the plan had the guarded baseline.
    floor: Vec<FloorRow>,
}

impl StoreRun {
    fn low_load(&self) -> Option<&PhaseReport> {
        self.steps
            .iter()
            .find(|(f, _)| is_low_load(*f))
            .map(|(_, p)| p)
    }
}

fn is_low_load(fraction: f64) -> bool {
    (fraction - LOW_LOAD).abs() < 1e-9
}

/// footfall on one store: ceiling, open-loop steps (with bare at the low-load rate), the
/// widget's reply, accuracy, cached reads, memory; each closed loop (ceiling, widget,
/// reads) is followed by bare's of the same kind. The service stops at the end.
fn footfall_on(
    bench: &Bench<'_>,
    options: &Options,
    plan: &StorePlan<'_>,
    bare: &Bare,
    report: &mut Report,
) -> anyhow::Result<StoreRun> {
    let label = &plan.label;
    let local = start_local(
        &plan.target.location,
        plan.sites,
        options.visit_timeout_minutes,
    )?;
    let measured = local.measured(&plan.target.redis);
    let (server, endpoint, sites) = (&local.server, &local.endpoint, &local.sites);
    let mut mix = options.mix();
    mix.sites = plan.sites;
    let hits = workload(endpoint, sites, &mix, RequestKind::Hits);
    let (mut acknowledged, mut truth) = bench.touch_every_site(&hits, &measured)?;

    let (ceiling, result) = bench.run(
        &Phase {
            name: format!("footfall {label}, hits"),
            workload: &hits,
            pace: Pace::Closed,
            connections: options.closed_connections,
        },
        &measured,
    )?;
    acknowledged += result.ok;
    truth.merge(result.truth);
    report.phases.push(ceiling.clone());
    let baselines = Baselines {
        bench,
        options,
        bare,
        guarded: plan.guarded,
        label,
    };
    let mut floor = Vec::new();
    let (bare_ceiling, row) = baselines.next_to(
        &ceiling,
        RequestKind::Hits,
        Pace::Closed,
        "hits, closed loop",
        plan.hit_aim,
        report,
    )?;
    floor.extend(row);

    let mut steps = Vec::new();
    let mut bare_low = None;
    for &fraction in &plan.fractions {
        let rate = (ceiling.throughput * fraction).max(10.0);
        let (step, result) = bench.run(
            &Phase {
                name: format!(
                    "footfall {label}, hits at {:.0} % of ceiling",
                    fraction * 100.0
                ),
                workload: &hits,
                pace: Pace::Open(rate),
                connections: options.connections,
            },
            &measured,
        )?;
        acknowledged += result.ok;
        truth.merge(result.truth);
        report.phases.push(step.clone());
        if is_low_load(fraction) {
            let (bare_step, row) = baselines.next_to(
                &step,
                RequestKind::Hits,
                Pace::Open(rate),
                "hits at 10 % of the ceiling (open loop)",
                1.5,
                report,
            )?;
            floor.extend(row);
            bare_low = Some(bare_step);
        }
        steps.push((fraction, step));
    }

    let widget = if plan.reads_and_widget {
        let widget_work = workload(endpoint, sites, &mix, RequestKind::Widget);
        let (widget, result) = bench.run(
            &Phase {
                name: format!("footfall {label}, widget hit + counts (?counts=1)"),
                workload: &widget_work,
                pace: Pace::Closed,
                connections: options.closed_connections,
            },
            &measured,
        )?;
        acknowledged += result.ok;
        truth.merge(result.truth);
        report.phases.push(widget.clone());
        let (bare_widget, row) = baselines.next_to(
            &widget,
            RequestKind::Widget,
            Pace::Closed,
            "widget reply (`?counts=1`)",
            1.2,
            report,
        )?;
        floor.extend(row);
        Some((widget, bare_widget))
    } else {
        None
    };

    let accuracy = check_counts(
        endpoint,
        server.internal(),
        sites,
        &truth,
        acknowledged,
        &format!("footfall {label}"),
    )?;
    report.accuracy.push(accuracy);

    let reads = if plan.reads_and_widget {
        let reads_work = workload(endpoint, sites, &mix, RequestKind::Reads);
        let (reads, _) = bench.run(
            &Phase {
                name: format!("footfall {label}, cached count reads"),
                workload: &reads_work,
                pace: Pace::Closed,
                connections: options.closed_connections,
            },
            &measured,
        )?;
        report.phases.push(reads.clone());
        let (bare_reads, row) = baselines.next_to(
            &reads,
            RequestKind::Reads,
            Pace::Closed,
            "cached count reads",
            1.2,
            report,
        )?;
        floor.extend(row);
        Some((reads, bare_reads))
    } else {
        None
    };

    let rss_bytes = procstat::rss_bytes(server.pid());
    if let Some(rss) = rss_bytes {
        report.memory.push(Memory {
            name: format!(
                "footfall {label}, {} sites registered and hit, after its phases",
                plan.sites
            ),
            rss_bytes: rss,
        });
    }
    Ok(StoreRun {
        label: label.clone(),
        ceiling,
        bare_ceiling,
        steps,
        bare_low,
        reads,
        widget,
        rss_bytes,
        floor,
    })
}

/// The baselines a store's phases are compared with, and where they are reported.
struct Baselines<'a, 'r> {
    bench: &'a Bench<'r>,
    options: &'a Options,
    bare: &'a Bare,
    /// Measured after bare when the plan has it, for the floor table.
    guarded: Option<&'a Bare>,
    /// The store's label ("memory", …).
    label: &'a str,
}

impl Baselines<'_, '_> {
    /// Bare's phase of `kind` at `pace` (closed, or open at footfall's low-load rate),
    /// run right after `footfall`'s on the store, then guarded's when there is one, with
    /// the floor row of the three (`row` names it after the store's label; `aim` is the
    /// issue's aim for footfall ÷ bare).
    fn next_to(
        &self,
        footfall: &PhaseReport,
        kind: RequestKind,
        pace: Pace,
        row: &str,
        aim: f64,
        report: &mut Report,
    ) -> anyhow::Result<(PhaseReport, Option<FloorRow>)> {
        let bare = self.run(self.bare, kind, pace, report)?;
        let row = match self.guarded {
            Some(guarded) => Some(FloorRow::of(
                format!("{}: {row}", self.label),
                &bare,
                &self.run(guarded, kind, pace, report)?,
                footfall,
                aim,
            )),
            None => None,
        };
        Ok((bare, row))
    }

    /// One baseline's phase of `kind` at `pace`, next to footfall's on the store.
    fn run(
        &self,
        baseline: &Bare,
        kind: RequestKind,
        pace: Pace,
        report: &mut Report,
    ) -> anyhow::Result<PhaseReport> {
        let what = match kind {
            RequestKind::Hits => "204, hits",
            RequestKind::Widget => "widget hit + counts (fixed 5.9 KB body)",
            RequestKind::Reads => "count reads (fixed 5.4 KB body)",
        };
        let (name, connections) = match pace {
            Pace::Closed => (
                format!(
                    "{} {what}, right after footfall {}'s",
                    baseline.name, self.label
                ),
                self.options.closed_connections,
            ),
            Pace::Open(_) => (
                format!(
                    "{} {what} at the 10 % rate of footfall {}",
                    baseline.name, self.label
                ),
                self.options.connections,
            ),
        };
        let (phase, _) = self.bench.run(
            &Phase {
                name,
                workload: &baseline.workload(kind),
                pace,
                connections,
            },
            &baseline.measured(),
        )?;
        report.phases.push(phase.clone());
        Ok(phase)
    }
}

/// The drain capacity of `target`, next to the HTTP ceiling measured on it.
fn drain_on(
    bench: &Bench<'_>,
    options: &Options,
    target: &StoreTarget,
    run: &StoreRun,
    report: &mut Report,
) -> Option<DrainReport> {
    let settings = DrainSettings {
        hits: options.drain_hits,
        sites: options.sites(),
        zipf: options.zipf,
        returning: options.returning,
        seed: options.seed,
    };
    match drain::measure(bench.runtime, target, &run.label, &settings, &run_id()) {
        Ok(mut drain) => {
            let ceiling = run.ceiling.throughput;
            drain.http_ceiling = Some(ceiling);
            drain.capacity_over_ceiling = Some(drain.hits_per_second / ceiling.max(1e-9));
            report.drains.push(drain.clone());
            Some(drain)
        }
        Err(error) => {
            report
                .notes
                .push(format!("drain capacity on {}: {error:#}", run.label));
            None
        }
    }
}

pub(super) fn full(
    options: &Options,
    bench: &Bench<'_>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let n_sites = options.sites();
    let ladder_store: StoreKind = options.store.parse()?;
    if matches!(ladder_store, StoreKind::Url(_)) {
        bail!(
            "the full suite starts its own stores: --store picks the one that runs the ladder (memory, embedded, redis or cluster)"
        );
    }
    let fractions_for = |kind: &StoreKind| {
        let mut fractions = if *kind == ladder_store {
            options.ladder.clone()
        } else {
            Vec::new()
        };
        if !fractions.iter().any(|&f| is_low_load(f)) {
            fractions.insert(0, LOW_LOAD);
        }
        fractions
    };

    // 1. The bare handler: the machine's floor, for hits, reads and the widget's reply.
    // Each of footfall's closed loops is followed by bare's of the same kind, and the
    // aims divide by that one (on a shared machine the floor moves during a run).
    let bare_sites: Arc<Vec<String>> = Arc::new(
        (0..n_sites)
            .map(|n| format!("loadtest-bare-{n:04}"))
            .collect(),
    );
    let bare = Bare {
        name: "bare",
        process: BaselineProcess::start("bare", None)?,
        sites: Arc::clone(&bare_sites),
        mix: options.mix(),
    };
    // Bare's handlers behind footfall's accept loop and layers, measured next to the
    // memory store only (the store whose hits do the least): the floor table.
    let guarded = Bare {
        name: "guarded",
        process: BaselineProcess::start("guarded", None)?,
        sites: bare_sites,
        mix: options.mix(),
    };
    // 2. The memory store.
    let memory_target = StoreTarget::start(&StoreKind::Memory)?;
    let memory = footfall_on(
        bench,
        options,
        &StorePlan {
            label: "memory".into(),
            target: &memory_target,
            sites: n_sites,
            fractions: fractions_for(&StoreKind::Memory),
            reads_and_widget: true,
            guarded: Some(&guarded),
            hit_aim: 1.4,
        },
        &bare,
        report,
    )?;
    let memory_drain = drain_on(bench, options, &memory_target, &memory, report);

    // 3. The embedded store (the default), with every site and with one.
    let embedded_target = StoreTarget::start(&StoreKind::Embedded)?;
    let embedded = footfall_on(
        bench,
        options,
        &StorePlan {
            label: "embedded".into(),
            target: &embedded_target,
            sites: n_sites,
            fractions: fractions_for(&StoreKind::Embedded),
            reads_and_widget: true,
            guarded: None,
            hit_aim: 1.6,
        },
        &bare,
        report,
    )?;
    drop(embedded_target);
    // The drain writes into a directory of its own (the service's is gone with it).
    let embedded_drain = StoreTarget::start(&StoreKind::Embedded)
        .map(|target| drain_on(bench, options, &target, &embedded, report))
        .unwrap_or_else(|error| {
            report
                .notes
                .push(format!("drain capacity on embedded: {error:#}"));
            None
        });
    let embedded_one_target = StoreTarget::start(&StoreKind::Embedded)?;
    let embedded_one = footfall_on(
        bench,
        options,
        &StorePlan {
            label: "embedded, 1 site".into(),
            target: &embedded_one_target,
            sites: 1,
            fractions: Vec::new(),
            reads_and_widget: false,
            guarded: None,
            hit_aim: 1.6,
        },
        &bare,
        report,
    )?;
    drop(embedded_one_target);

    // 4. One redis-server: footfall, its drain, the naive handler, redis-benchmark.
    let redis_target = StoreTarget::start(&StoreKind::Redis)?;
    let on_redis = footfall_on(
        bench,
        options,
        &StorePlan {
            label: "redis".into(),
            target: &redis_target,
            sites: n_sites,
            fractions: fractions_for(&StoreKind::Redis),
            reads_and_widget: true,
            guarded: None,
            hit_aim: 1.6,
        },
        &bare,
        report,
    )?;
    let redis_drain = drain_on(bench, options, &redis_target, &on_redis, report);
    let naive = BaselineProcess::start("naive", Some(&redis_target.location))?;
    let naive_work = Workload {
        address: naive.address,
        host: naive.address.to_string(),
        sites: Arc::clone(&bare.sites),
        mix: options.mix(),
        kind: RequestKind::Hits,
    };
    let (naive_hits, _) = bench.run(
        &Phase {
            name: "naive (PFADD+INCR per hit), hits".into(),
            workload: &naive_work,
            pace: Pace::Closed,
            connections: options.closed_connections,
        },
        &Measured {
            service_pid: Some(naive.pid()),
            redis: redis_target.redis.clone(),
            admin: None,
        },
    )?;
    drop(naive);
    report.phases.push(naive_hits.clone());
    if let (Some(port), Some(pid)) = (
        redis_target.redis_port(),
        redis_target.redis.pids().first().copied(),
    ) {
        // PFADD, the naive handler's command; then the one command per hit an exact
        // visit count needs whatever the layout (a marker per open visit, its end as
        // its expiry, the old value returned), plain and pipelined: the floor under the
        // Redis CPU per hit, measured in a key space that holds the run's markers.
        let pfadd = ["pfadd", "bench:hll", "__rand_int__"];
        let marker = [
            "set",
            "bench:visit:__rand_int__",
            "1",
            "px",
            "1800000",
            "get",
        ];
        for (command, pipeline) in [
            (&pfadd[..], 1),
            (&pfadd[..], 16),
            (&marker[..], 1),
            (&marker[..], 16),
        ] {
            match redis_benchmark(port, pid, command, pipeline) {
                Ok(result) => report.redis_benchmark.push(result),
                Err(error) => report.notes.push(format!(
                    "redis-benchmark -P {pipeline} {}: {error:#}",
                    command.join(" ")
                )),
            }
        }
        if let Some(rss) = procstat::rss_bytes(pid) {
            report.memory.push(Memory {
                name: "redis-server (after the run)".into(),
                rss_bytes: rss,
            });
        }
    }
    drop(redis_target);

    // 5. A three-master cluster: ceiling, low load, commands and CPU per master, drain.
    let (on_cluster, cluster_drain) = match StoreTarget::start(&StoreKind::Cluster) {
        Ok(cluster_target) => {
            let run = footfall_on(
                bench,
                options,
                &StorePlan {
                    label: "cluster".into(),
                    target: &cluster_target,
                    sites: n_sites,
                    fractions: fractions_for(&StoreKind::Cluster),
                    reads_and_widget: false,
                    guarded: None,
                    hit_aim: 1.6,
                },
                &bare,
                report,
            )?;
            let drain = drain_on(bench, options, &cluster_target, &run, report);
            (Some(run), drain)
        }
        Err(error) => {
            report
                .notes
                .push(format!("Redis Cluster not measured: {error:#}"));
            (None, None)
        }
    };
    drop(guarded);
    drop(bare);

    // 6. The scale-out card, the ladder, and the aims.
    report.scale_out.push(scale_out(
        "redis, 1 server",
        &on_redis.ceiling,
        redis_drain.as_ref(),
    ));
    if let Some(cluster) = &on_cluster {
        report.scale_out.push(scale_out(
            "cluster, 3 masters",
            &cluster.ceiling,
            cluster_drain.as_ref(),
        ));
    }
    let ladder_run = match ladder_store {
        StoreKind::Embedded => Some(&embedded),
        StoreKind::Redis => Some(&on_redis),
        StoreKind::Cluster => on_cluster.as_ref(),
        _ => Some(&memory),
    };
    if let Some(run) = ladder_run {
        report.ladder = run.steps.iter().map(|(_, p)| ladder_point(p)).collect();
    }
    let runs = FullRuns {
        n_sites,
        naive_hits: &naive_hits,
        memory: &memory,
        embedded: &embedded,
        embedded_one: &embedded_one,
        redis: &on_redis,
        cluster: on_cluster.as_ref(),
        drains: [
            ("memory", memory_drain.as_ref()),
            ("embedded", embedded_drain.as_ref()),
            ("redis", redis_drain.as_ref()),
            ("cluster", cluster_drain.as_ref()),
        ],
    };
    report.ratios = aims(&runs);
    report.floor = memory.floor.clone();
    Ok(())
}

fn scale_out(name: &str, ceiling: &PhaseReport, drain: Option<&DrainReport>) -> ScaleOut {
    ScaleOut {
        name: name.to_owned(),
        throughput: ceiling.throughput,
        redis_cpu_us: ceiling.redis_cpu_us,
        per_node_us: ceiling.redis_cpu_per_node_us.clone(),
        commands_per_hit: ceiling.redis_commands_per_request,
        drain_hits_per_second: drain.map(|d| d.hits_per_second),
    }
}

/// Everything the aims are computed from.
struct FullRuns<'a> {
    n_sites: usize,
    naive_hits: &'a PhaseReport,
    memory: &'a StoreRun,
    embedded: &'a StoreRun,
    embedded_one: &'a StoreRun,
    redis: &'a StoreRun,
    cluster: Option<&'a StoreRun>,
    drains: [(&'a str, Option<&'a DrainReport>); 4],
}

/// A ratio against an aim; `at_most` says which side of `target` meets it.
fn aim(name: String, value: f64, unit: &str, target: f64, at_most: bool, detail: String) -> Ratio {
    let (met, aim) = if at_most {
        (value <= target, format!("≤ {target} {unit}"))
    } else {
        (value >= target, format!("≥ {target} {unit}"))
    };
    Ratio {
        name,
        value,
        unit: unit.to_owned(),
        aim,
        met: met && value.is_finite(),
        detail,
    }
}

fn cpu(phase: &PhaseReport) -> f64 {
    phase.total_cpu_us().unwrap_or(f64::NAN)
}

/// "41.2 µs (service 30.1 = 12.0 user + 18.1 kernel, Redis 11.1)".
fn cpu_detail(phase: &PhaseReport) -> String {
    let service = format!(
        "service {:.1} = {:.1} user + {:.1} kernel",
        phase.service_cpu_us.unwrap_or(f64::NAN),
        phase.service_user_us.unwrap_or(f64::NAN),
        phase.service_system_us.unwrap_or(f64::NAN)
    );
    match phase.redis_cpu_us {
        Some(redis) => format!("{:.1} µs ({service}, Redis {redis:.1})", cpu(phase)),
        None => format!("{:.1} µs ({service})", cpu(phase)),
    }
}

/// The aims of issues 10 and 16, as ratios of this run.
fn aims(runs: &FullRuns<'_>) -> Vec<Ratio> {
    let n = runs.n_sites;
    // Each store's ceiling against bare's, measured right after it.
    let cpu_vs_bare = |label: &str, run: &StoreRun, target: f64| {
        aim(
            format!("{label}: CPU per hit ÷ bare"),
            cpu(&run.ceiling) / cpu(&run.bare_ceiling),
            "×",
            target,
            true,
            format!(
                "{} vs bare {}",
                cpu_detail(&run.ceiling),
                cpu_detail(&run.bare_ceiling)
            ),
        )
    };
    let redis = &runs.redis.ceiling;
    let mut ratios = vec![
        cpu_vs_bare(
            &format!("Redis, {n} Zipf sites (service + Redis)"),
            runs.redis,
            1.6,
        ),
        aim(
            format!("Redis, {n} Zipf sites: CPU per hit ÷ naive (both with Redis)"),
            cpu(redis) / cpu(runs.naive_hits),
            "×",
            0.7,
            true,
            format!(
                "{} vs naive {}",
                cpu_detail(redis),
                cpu_detail(runs.naive_hits)
            ),
        ),
        aim(
            format!("Redis, {n} Zipf sites: Redis CPU per hit"),
            redis.redis_cpu_us.unwrap_or(f64::NAN),
            "µs",
            3.0,
            true,
            format!(
                "{:.1} user + {:.1} kernel",
                redis.redis_user_us.unwrap_or(f64::NAN),
                redis.redis_system_us.unwrap_or(f64::NAN)
            ),
        ),
        aim(
            format!("Redis, {n} Zipf sites: Redis commands per hit"),
            redis.redis_commands_per_request.unwrap_or(f64::NAN),
            "",
            3.0,
            true,
            format!(
                "INFO commandstats, scripts' calls included; naive: {:.2}",
                runs.naive_hits
                    .redis_commands_per_request
                    .unwrap_or(f64::NAN)
            ),
        ),
        aim(
            format!("Redis, {n} Zipf sites: throughput ÷ bare (closed loop)"),
            redis.throughput / runs.redis.bare_ceiling.throughput,
            "×",
            0.7,
            false,
            format!(
                "{:.0} vs {:.0} hits/s",
                redis.throughput, runs.redis.bare_ceiling.throughput
            ),
        ),
        cpu_vs_bare(
            &format!("Embedded store, {n} Zipf sites"),
            runs.embedded,
            1.6,
        ),
        cpu_vs_bare("Embedded store, 1 site", runs.embedded_one, 1.6),
        cpu_vs_bare(&format!("Memory store, {n} Zipf sites"), runs.memory, 1.4),
    ];
    for run in [runs.memory, runs.embedded, runs.redis] {
        if let Some((reads, bare_reads)) = &run.reads {
            ratios.push(aim(
                format!("{}: cached count reads, CPU per read ÷ bare", run.label),
                cpu(reads) / cpu(bare_reads),
                "×",
                1.2,
                true,
                format!("{} vs bare {}", cpu_detail(reads), cpu_detail(bare_reads)),
            ));
        }
        if let Some((widget, bare_widget)) = &run.widget {
            ratios.push(aim(
                format!(
                    "{}: widget reply (`?counts=1`), CPU per request ÷ bare",
                    run.label
                ),
                cpu(widget) / cpu(bare_widget),
                "×",
                1.2,
                true,
                format!("{} vs bare {}", cpu_detail(widget), cpu_detail(bare_widget)),
            ));
        }
    }
    let stores = [runs.memory, runs.embedded, runs.redis]
        .into_iter()
        .chain(runs.cluster);
    for run in stores {
        if let (Some(low), Some(bare_low)) = (run.low_load(), &run.bare_low) {
            ratios.push(aim(
                // The rate is in the detail, not the name: it moves with each round's
                // ceiling, and rounds are matched by name.
                format!(
                    "{}: at 10 % of its ceiling (open loop), CPU per hit ÷ bare at the same rate",
                    run.label,
                ),
                cpu(low) / cpu(bare_low),
                "×",
                1.5,
                true,
                format!(
                    "{:.0}/s: {} vs bare {}",
                    low.offered.unwrap_or(f64::NAN),
                    cpu_detail(low),
                    cpu_detail(bare_low)
                ),
            ));
        }
    }
    for run in [runs.embedded, runs.redis] {
        if let Some(rss) = run.rss_bytes {
            let mib = rss as f64 / 1048576.0;
            ratios.push(aim(
                format!("{}: service RSS with {n} active sites", run.label),
                mib,
                "MiB",
                64.0,
                true,
                "after every phase on the store".to_owned(),
            ));
        }
    }
    for (store, drain) in runs.drains {
        match drain {
            Some(drain) => ratios.push(aim(
                format!("{store}: drain capacity ÷ HTTP ingest ceiling"),
                drain.capacity_over_ceiling.unwrap_or(f64::NAN),
                "×",
                2.0,
                false,
                format!(
                    "{:.0} hits/s written ({} batches of {:.0}) vs {:.0} hits/s answered",
                    drain.hits_per_second,
                    drain.batches,
                    drain.mean_batch,
                    drain.http_ceiling.unwrap_or(f64::NAN)
                ),
            )),
            None => ratios.push(aim(
                format!("{store}: drain capacity ÷ HTTP ingest ceiling"),
                f64::NAN,
                "×",
                2.0,
                false,
                "not measured (see the notes)".to_owned(),
            )),
        }
    }
    ratios
}

fn redis_benchmark(
    port: u16,
    redis_pid: u32,
    command: &[&str],
    pipeline: u32,
) -> anyhow::Result<RedisBenchmark> {
    // Enough requests for a stable rate, few enough to keep the full suite short.
    let requests = if pipeline > 1 { 1_000_000 } else { 100_000 };
    // redis-benchmark 7 has no built-in PFADD test (`-t pfadd` runs nothing): give the
    // command, with a random element out of a million (`-r`: a PFADD's key turns dense,
    // a marker's key is one of up to a million).
    let mut args = vec![
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
    ];
    args.extend(command.iter().map(|&a| a.to_owned()));
    let meter = CpuMeter::start(&[redis_pid]);
    let output = Command::new("redis-benchmark")
        .args(&args)
        .output()
        .context("running redis-benchmark (apt-get install redis-tools)")?;
    let cpu: CpuTimes = meter.read()[0];
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
            "redis-benchmark -n {requests} -r 1000000 -P {pipeline} {}",
            command.join(" ")
        ),
        ops_per_second: ops,
        redis_cpu_us: cpu.total() * 1e6 / f64::from(requests),
    })
}

pub(super) fn machine() -> String {
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
