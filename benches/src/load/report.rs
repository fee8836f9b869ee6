//! The report: the same numbers as JSON (for machines) and Markdown (for people).

use std::collections::BTreeMap;
use std::fmt::Write;

use super::chart::LadderPoint;
use super::procstat::CpuTimes;
use super::service::HitMetrics;
use super::traffic::TrafficMix;

/// Everything one run measured.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    /// The command line.
    pub command: String,
    /// `nproc`, CPU model, memory.
    pub machine: String,
    /// Wall time of the whole run, seconds (start-up of every process included).
    pub wall_seconds: f64,
    /// The traffic mix.
    pub mix: Option<TrafficMix>,
    /// footfall against the baselines and the aims; over several rounds, each aim's
    /// median round.
    pub ratios: Vec<Ratio>,
    /// Each round's aims, when the suite ran more than once.
    pub rounds: Vec<Vec<Ratio>>,
    /// footfall next to bare and to bare behind footfall's protections (the guarded
    /// baseline), per request kind; over several rounds, every round's rows.
    pub floor: Vec<FloorRow>,
    /// Each measured phase.
    pub phases: Vec<PhaseReport>,
    /// Drain capacity per store (the flusher alone, in process).
    pub drains: Vec<DrainReport>,
    /// Redis CPU per hit on one server and spread over a cluster's masters.
    pub scale_out: Vec<ScaleOut>,
    /// The saturation soak, when run.
    pub soak: Option<SoakReport>,
    /// Open-loop steps against offered load (the chart).
    pub ladder: Vec<LadderPoint>,
    /// Counts read back against the harness's own.
    pub accuracy: Vec<Accuracy>,
    /// `redis-benchmark` results.
    pub redis_benchmark: Vec<RedisBenchmark>,
    /// Resident memory readings.
    pub memory: Vec<Memory>,
    /// Free-form remarks (skipped steps, warnings).
    pub notes: Vec<String>,
}

/// One request kind measured three ways back to back: bare, guarded (bare's handlers
/// behind footfall's accept loop and layers) and footfall. Splits footfall ÷ bare into
/// what the protections cost on their own and what footfall's own work adds to them.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FloorRow {
    /// "memory: cached count reads".
    pub name: String,
    /// The round it was measured in (1-based; 1 when the suite ran once).
    pub round: usize,
    /// CPU per request, µs (service, plus Redis where there is one).
    pub bare_us: f64,
    /// The same for guarded.
    pub guarded_us: f64,
    /// The same for footfall.
    pub footfall_us: f64,
    /// The aim for footfall ÷ bare on this kind.
    pub aim_over_bare: f64,
}

impl FloorRow {
    /// The row of three phases of one kind.
    #[must_use]
    pub fn of(
        name: String,
        bare: &PhaseReport,
        guarded: &PhaseReport,
        footfall: &PhaseReport,
        aim_over_bare: f64,
    ) -> FloorRow {
        let cpu = |p: &PhaseReport| p.total_cpu_us().unwrap_or(f64::NAN);
        FloorRow {
            name,
            round: 1,
            bare_us: cpu(bare),
            guarded_us: cpu(guarded),
            footfall_us: cpu(footfall),
            aim_over_bare,
        }
    }

    /// What the protections alone cost, as a multiple of bare.
    #[must_use]
    pub fn guarded_over_bare(&self) -> f64 {
        self.guarded_us / self.bare_us
    }

    /// What footfall costs, as a multiple of the protections alone.
    #[must_use]
    pub fn footfall_over_guarded(&self) -> f64 {
        self.footfall_us / self.guarded_us
    }

    /// The CPU per request the aim leaves for footfall's own work above the protections
    /// (negative when the protections alone exceed it), µs.
    #[must_use]
    pub fn room_above_guarded_us(&self) -> f64 {
        self.aim_over_bare * self.bare_us - self.guarded_us
    }
}

/// One phase.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PhaseReport {
    /// What was measured ("footfall memory, hits").
    pub name: String,
    /// "closed, 32 conns" or "open 5000/s, 64 conns".
    pub pace: String,
    /// Offered rate, for open-loop phases.
    pub offered: Option<f64>,
    /// Requests sent.
    pub sent: u64,
    /// 2xx answers.
    pub ok: u64,
    /// Failures.
    pub errors: u64,
    /// 2xx answers per second.
    pub throughput: f64,
    /// Latency percentiles, milliseconds.
    pub p50_ms: f64,
    /// 90th.
    pub p90_ms: f64,
    /// 99th.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
    /// Server CPU (user + kernel) per 2xx request, microseconds.
    pub service_cpu_us: Option<f64>,
    /// Server user-space CPU per 2xx request, microseconds.
    pub service_user_us: Option<f64>,
    /// Server kernel CPU per 2xx request, microseconds.
    pub service_system_us: Option<f64>,
    /// Redis CPU (user + kernel, summed over the nodes) per 2xx request, microseconds.
    pub redis_cpu_us: Option<f64>,
    /// Redis user-space CPU per 2xx request, microseconds.
    pub redis_user_us: Option<f64>,
    /// Redis kernel CPU per 2xx request, microseconds.
    pub redis_system_us: Option<f64>,
    /// Redis CPU per 2xx request of each node (a cluster's masters), microseconds.
    pub redis_cpu_per_node_us: Vec<f64>,
    /// Redis commands (`INFO commandstats` calls, scripts' inner calls included, summed
    /// over the nodes) per 2xx request.
    pub redis_commands_per_request: Option<f64>,
    /// The harness's own CPU per request, microseconds.
    pub harness_cpu_us: f64,
    /// Seconds from the end of the load until the service had written what it accepted
    /// (hits phases with metrics; the CPU readings include this time).
    pub settle_seconds: f64,
    /// Metrics deltas over the phase, when the service has them.
    pub metrics: Option<HitMetrics>,
}

impl PhaseReport {
    /// Service plus Redis CPU per request.
    #[must_use]
    pub fn total_cpu_us(&self) -> Option<f64> {
        Some(self.service_cpu_us? + self.redis_cpu_us.unwrap_or(0.0))
    }
}

/// Counts read back for one store.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Accuracy {
    /// Which service.
    pub name: String,
    /// Sites that received hits.
    pub active_sites: usize,
    /// Hits answered 2xx (bots included).
    pub hits_acknowledged: u64,
    /// Drops the metrics report over the run, all reasons.
    pub dropped_by_metrics: f64,
    /// Pageviews the harness expects (non-bot 2xx).
    pub pageviews_expected: u64,
    /// Pageviews the service reports, summed over sites.
    pub pageviews_counted: u64,
    /// Sites whose pageviews differ.
    pub pageview_mismatches: usize,
    /// Visits expected (one per visitor in a short run).
    pub visits_expected: u64,
    /// Visits counted.
    pub visits_counted: u64,
    /// Sites whose visits differ.
    pub visit_mismatches: usize,
    /// Distinct visitors, summed over sites.
    pub visitors_expected: u64,
    /// HyperLogLog estimates, summed over sites.
    pub visitors_counted: u64,
    /// Root mean square of the per-site relative error of visitors (sites with ≥ 100).
    pub visitors_rms_error: f64,
    /// Largest per-site relative error of visitors (sites with ≥ 100).
    pub visitors_max_error: f64,
}

/// One `redis-benchmark` run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RedisBenchmark {
    /// The arguments.
    pub command: String,
    /// Operations per second.
    pub ops_per_second: f64,
    /// Redis CPU per operation, microseconds.
    pub redis_cpu_us: f64,
}

/// A resident memory reading.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Memory {
    /// What.
    pub name: String,
    /// Bytes.
    pub rss_bytes: u64,
}

/// footfall against a baseline or an aim.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Ratio {
    /// What is compared.
    pub name: String,
    /// The measured value.
    pub value: f64,
    /// How it is expressed ("×", "ms", "MiB").
    pub unit: String,
    /// The aim, as text.
    pub aim: String,
    /// Whether the aim is met.
    pub met: bool,
    /// The figures the ratio is made of ("39.8 µs vs 10.1 µs").
    pub detail: String,
}

/// Drain capacity of one store: the flusher writing a full buffer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DrainReport {
    /// Which store.
    pub store: String,
    /// Hits queued before the flusher started.
    pub hits: u64,
    /// Hits written.
    pub written: u64,
    /// Hits not written (store errors, or the drain's time limit).
    pub not_written: u64,
    /// From the flusher's start until it had written everything, seconds.
    pub seconds: f64,
    /// Hits written per second.
    pub hits_per_second: f64,
    /// Batches the flusher took.
    pub batches: u64,
    /// Hits per batch.
    pub mean_batch: f64,
    /// The process's CPU over the drain (the flusher's planning and store client).
    pub service_cpu: CpuTimes,
    /// Redis CPU over the drain, summed over the nodes, when measured.
    pub redis_cpu: Option<CpuTimes>,
    /// Redis nodes written to.
    pub redis_masters: usize,
    /// Redis commands per hit written, summed over the nodes.
    pub redis_commands_per_hit: Option<f64>,
    /// Hits written per CPU-second (service + Redis).
    pub hits_per_cpu_second: f64,
    /// The HTTP ingest ceiling of the same store in the same run (closed loop, 2xx/s).
    pub http_ceiling: Option<f64>,
    /// `hits_per_second` ÷ `http_ceiling`.
    pub capacity_over_ceiling: Option<f64>,
}

/// Redis CPU per hit at the ceiling, on one server or spread over a cluster.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScaleOut {
    /// "redis, 1 server" or "cluster, 3 masters".
    pub name: String,
    /// Hits per second at the ceiling (closed loop).
    pub throughput: f64,
    /// Redis CPU per hit, summed over the nodes, microseconds.
    pub redis_cpu_us: Option<f64>,
    /// Redis CPU per hit of each node, microseconds.
    pub per_node_us: Vec<f64>,
    /// Redis commands per hit, summed over the nodes.
    pub commands_per_hit: Option<f64>,
    /// The drain capacity on the same store, hits per second.
    pub drain_hits_per_second: Option<f64>,
}

/// The saturation soak (issue 16).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SoakReport {
    /// Which store.
    pub store: String,
    /// Seconds of load.
    pub duration_s: f64,
    /// Closed-loop connections.
    pub connections: usize,
    /// Sites sharing the traffic.
    pub sites: usize,
    /// 2xx answers per second over the load.
    pub throughput: f64,
    /// The readings every sampling interval, and one after the writes caught up.
    pub samples: Vec<SoakSample>,
    /// `footfall_hits_accepted_total` at the end.
    pub accepted: f64,
    /// `footfall_hits_written_total` at the end.
    pub written: f64,
    /// `footfall_hits_dropped_total` by reason at the end.
    pub dropped: BTreeMap<String, f64>,
    /// Of which `buffer_full` (the aim: 0).
    pub buffer_full: f64,
    /// Whether every accepted hit was written (written = accepted − hits dropped after
    /// acceptance, which the flusher counts: ambiguous store errors, deleted sites).
    pub all_written: bool,
    /// Seconds from the end of the load until the writes caught up.
    pub catch_up_seconds: f64,
    /// When the reference RSS was read, seconds into the load (after the first minute,
    /// or halfway through a shorter soak).
    pub rss_reference_at_s: f64,
    /// RSS then, bytes.
    pub rss_reference_bytes: u64,
    /// RSS at the end of the load, bytes.
    pub rss_end_bytes: u64,
    /// (end − reference) ÷ reference.
    pub rss_change: f64,
    /// Whether |change| ≤ 15 %.
    pub rss_steady: bool,
    /// Bytes the service wrote to storage from the start of the load until its writes
    /// caught up (`/proc/PID/io`), when readable.
    pub storage_written_bytes: Option<u64>,
    /// The service's CPU time over the same span (`/proc/PID/stat`).
    pub service_cpu: CpuTimes,
    /// Mean RSS (bytes) over the minute from the reference reading and over the last
    /// minute of the load, when the soak is long enough for two separate minutes.
    pub rss_minute_means: Option<(f64, f64)>,
}

/// One reading of the soak.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SoakSample {
    /// Seconds since the load began: when the reading was due during the load (it is
    /// taken within milliseconds), when it was taken after it.
    pub at_s: f64,
    /// Service RSS, bytes.
    pub rss_bytes: u64,
    /// `footfall_buffer_hits`.
    pub buffer_hits: f64,
    /// `footfall_flush_lag_seconds`.
    pub flush_lag_seconds: f64,
    /// `footfall_hits_dropped_total{reason="buffer_full"}`, cumulative.
    pub buffer_full: f64,
    /// `footfall_hits_accepted_total`, cumulative.
    pub accepted: f64,
    /// `footfall_hits_written_total`, cumulative.
    pub written: f64,
}

fn fmt_opt(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.1}"))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

impl Report {
    /// The report of several rounds of one suite: the last round's phases and tables,
    /// each aim taken from its median round (by the aim's value; the middle one of an
    /// odd number, the lower middle of an even one), and every round's aims kept.
    #[must_use]
    pub fn over_rounds(mut rounds: Vec<Report>) -> Report {
        let Some(mut report) = rounds.pop() else {
            return Report::default();
        };
        if rounds.is_empty() {
            return report;
        }
        rounds.push(report.clone());
        report.floor = rounds
            .iter()
            .enumerate()
            .flat_map(|(i, round)| {
                round.floor.iter().map(move |row| FloorRow {
                    round: i + 1,
                    ..row.clone()
                })
            })
            .collect();
        report.ratios = report
            .ratios
            .iter()
            .map(|last| {
                let mut values: Vec<&Ratio> = rounds
                    .iter()
                    .filter_map(|round| round.ratios.iter().find(|r| r.name == last.name))
                    .collect();
                values.sort_by(|a, b| a.value.total_cmp(&b.value));
                values[(values.len() - 1) / 2].clone()
            })
            .collect();
        report.rounds = rounds.into_iter().map(|round| round.ratios).collect();
        report
    }

    /// The Markdown rendering.
    #[must_use]
    pub fn markdown(&self, chart_file: &str) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# footfall load report\n");
        let _ = writeln!(md, "- command: `{}`", self.command);
        let _ = writeln!(md, "- machine: {}", self.machine);
        let _ = writeln!(
            md,
            "- wall time of the whole run: {:.0} s ({:.1} min)",
            self.wall_seconds,
            self.wall_seconds / 60.0
        );
        if let Some(mix) = &self.mix {
            let _ = writeln!(
                md,
                "- traffic: {} sites, Zipf {}, {:.0} % returning, {:.0} % bots, {} clients",
                mix.sites,
                mix.zipf,
                mix.returning * 100.0,
                mix.bots * 100.0,
                mix.clients
            );
        }
        self.ratios_md(&mut md);
        self.floor_md(&mut md);
        self.soak_md(&mut md);
        self.drains_md(&mut md);
        self.scale_out_md(&mut md);
        self.phases_md(&mut md);
        if !self.ladder.is_empty() {
            let _ = writeln!(
                md,
                "\n## Offered load ladder (open loop)\n\n![chart]({chart_file})\n"
            );
            let _ = writeln!(
                md,
                "| offered/s | achieved/s | p50 ms | p90 ms | p99 ms | errors |\n|---:|---:|---:|---:|---:|---:|"
            );
            for p in &self.ladder {
                let _ = writeln!(
                    md,
                    "| {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
                    p.offered, p.achieved, p.p50_ms, p.p90_ms, p.p99_ms, p.errors
                );
            }
        }
        self.accuracy_md(&mut md);
        if !self.redis_benchmark.is_empty() {
            let _ = writeln!(
                md,
                "\n## redis-benchmark\n\n| command | ops/s | Redis CPU µs/op |\n|---|---:|---:|"
            );
            for r in &self.redis_benchmark {
                let _ = writeln!(
                    md,
                    "| `{}` | {:.0} | {:.2} |",
                    r.command, r.ops_per_second, r.redis_cpu_us
                );
            }
        }
        if !self.memory.is_empty() {
            let _ = writeln!(md, "\n## Memory\n\n| process | RSS MiB |\n|---|---:|");
            for m in &self.memory {
                let _ = writeln!(md, "| {} | {:.1} |", m.name, mib(m.rss_bytes));
            }
        }
        if !self.notes.is_empty() {
            let _ = writeln!(md, "\n## Notes\n");
            for n in &self.notes {
                let _ = writeln!(md, "- {n}");
            }
        }
        md
    }

    fn ratios_md(&self, md: &mut String) {
        if self.ratios.is_empty() {
            return;
        }
        let number = |r: &Ratio| {
            if r.value.is_finite() {
                format!("{:.2}", r.value)
            } else {
                "–".to_owned()
            }
        };
        let fmt = |r: &Ratio| {
            if r.value.is_finite() {
                format!("{} {}", number(r), r.unit)
            } else {
                number(r)
            }
        };
        if self.rounds.len() > 1 {
            let _ = writeln!(
                md,
                "\n## The aims (median of {} rounds)\n\nEach aim's median round, and every round's figure in the order run; the median round's figures are the \"from\" column.\n",
                self.rounds.len()
            );
            let _ = writeln!(
                md,
                "| aim | median | rounds | target | met | from |\n|---|---:|---|---|---|---|"
            );
        } else {
            let _ = writeln!(md, "\n## The aims\n");
            let _ = writeln!(
                md,
                "| aim | measured | target | met | from |\n|---|---:|---|---|---|"
            );
        }
        for r in &self.ratios {
            let met = if r.met { "met" } else { "**not met**" };
            if self.rounds.len() > 1 {
                let rounds: Vec<String> = self
                    .rounds
                    .iter()
                    .filter_map(|round| round.iter().find(|other| other.name == r.name))
                    .map(number)
                    .collect();
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {met} | {} |",
                    r.name,
                    fmt(r),
                    rounds.join(", "),
                    r.aim,
                    r.detail
                );
            } else {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {met} | {} |",
                    r.name,
                    fmt(r),
                    r.aim,
                    r.detail
                );
            }
        }
        let met = self.ratios.iter().filter(|r| r.met).count();
        let _ = writeln!(md, "\n{met} of {} aims met.", self.ratios.len());
    }

    fn floor_md(&self, md: &mut String) {
        if self.floor.is_empty() {
            return;
        }
        let _ = writeln!(
            md,
            "\n## The floor: footfall's protections on their own\n\n\
             Each kind measured back to back: bare; guarded (bare's handlers behind footfall's \
             accept loop and every layer its routes have: panic catching, security headers, \
             request timeout, concurrency bound with request metrics, body limit, the `Host` \
             rule); footfall. CPU per request in µs. \"Room\" is what the aim leaves for \
             footfall's own work above the protections.\n"
        );
        let _ = writeln!(
            md,
            "| request | round | bare | guarded | footfall | guarded ÷ bare | footfall ÷ guarded | aim ÷ bare | room above guarded |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for row in &self.floor {
            let _ = writeln!(
                md,
                "| {} | {} | {:.1} | {:.1} | {:.1} | {:.2} × | {:.2} × | ≤ {} × | {:.1} µs (footfall uses {:.1}) |",
                row.name,
                row.round,
                row.bare_us,
                row.guarded_us,
                row.footfall_us,
                row.guarded_over_bare(),
                row.footfall_over_guarded(),
                row.aim_over_bare,
                row.room_above_guarded_us(),
                row.footfall_us - row.guarded_us,
            );
        }
    }

    fn phases_md(&self, md: &mut String) {
        if self.phases.is_empty() {
            return;
        }
        let _ = writeln!(md, "\n## Phases\n");
        let _ = writeln!(
            md,
            "CPU columns are microseconds per 2xx answer: user + kernel (`/proc/PID/stat`). \
             Redis is summed over every node; commands are `INFO commandstats` calls per 2xx.\n"
        );
        let _ = writeln!(
            md,
            "| phase | pace | sent | 2xx | errors | req/s | p50 ms | p99 ms | max ms | service CPU | service user + kernel | Redis CPU | Redis user + kernel | Redis cmds/req | harness CPU |"
        );
        let _ = writeln!(
            md,
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---:|---:|"
        );
        for p in &self.phases {
            let split = |user: Option<f64>, system: Option<f64>| match (user, system) {
                (Some(u), Some(s)) => format!("{u:.1} + {s:.1}"),
                _ => "–".to_owned(),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} | {} | {:.1} |",
                p.name,
                p.pace,
                p.sent,
                p.ok,
                p.errors,
                p.throughput,
                p.p50_ms,
                p.p99_ms,
                p.max_ms,
                fmt_opt(p.service_cpu_us),
                split(p.service_user_us, p.service_system_us),
                fmt_opt(p.redis_cpu_us),
                split(p.redis_user_us, p.redis_system_us),
                p.redis_commands_per_request
                    .map_or_else(|| "–".to_owned(), |c| format!("{c:.2}")),
                p.harness_cpu_us
            );
        }
    }

    fn drains_md(&self, md: &mut String) {
        if self.drains.is_empty() {
            return;
        }
        let _ = writeln!(
            md,
            "\n## Drain capacity (the flusher writing a full buffer)\n"
        );
        let _ = writeln!(
            md,
            "The buffer is filled while no flusher runs, then the service's own `Flusher` \
             writes it; CPU is this process's (the flusher) plus Redis's. The ratio to read is \
             drain capacity ÷ the HTTP ingest ceiling of the same store in this run (aim ≥ 2).\n"
        );
        let _ = writeln!(
            md,
            "| store | hits | written | seconds | hits/s | batches | mean batch | flusher CPU s (user + kernel) | Redis CPU s | Redis cmds/hit | hits per CPU-second | HTTP ceiling hits/s | capacity ÷ ceiling |\n|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"
        );
        for d in &self.drains {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.2} | {:.0} | {} | {:.0} | {:.2} ({:.2} + {:.2}) | {} | {} | {:.0} | {} | {} |",
                d.store,
                d.hits,
                d.written,
                d.seconds,
                d.hits_per_second,
                d.batches,
                d.mean_batch,
                d.service_cpu.total(),
                d.service_cpu.user,
                d.service_cpu.system,
                d.redis_cpu
                    .map_or_else(|| "–".to_owned(), |c| format!("{:.2}", c.total())),
                d.redis_commands_per_hit
                    .map_or_else(|| "–".to_owned(), |c| format!("{c:.3}")),
                d.hits_per_cpu_second,
                d.http_ceiling
                    .map_or_else(|| "–".to_owned(), |c| format!("{c:.0}")),
                d.capacity_over_ceiling
                    .map_or_else(|| "–".to_owned(), |c| format!("**{c:.2}×**")),
            );
        }
    }

    fn scale_out_md(&self, md: &mut String) {
        if self.scale_out.is_empty() {
            return;
        }
        let _ = writeln!(
            md,
            "\n## Capacity card: Redis scale-out (measured, not asserted)\n"
        );
        let _ = writeln!(
            md,
            "Redis CPU per hit at footfall's HTTP ceiling with the sites on one Redis, and spread \
             over the cluster's masters by their hash tags (per master: that master's CPU divided \
             by all hits, so the column sums to the total).\n"
        );
        let _ = writeln!(
            md,
            "| Redis | ceiling hits/s | Redis CPU µs/hit (total) | per node µs/hit | Redis cmds/hit | drain hits/s |\n|---|---:|---:|---|---:|---:|"
        );
        for s in &self.scale_out {
            let per_node = if s.per_node_us.is_empty() {
                "–".to_owned()
            } else {
                s.per_node_us
                    .iter()
                    .map(|v| format!("{v:.2}"))
                    .collect::<Vec<_>>()
                    .join(" / ")
            };
            let _ = writeln!(
                md,
                "| {} | {:.0} | {} | {} | {} | {} |",
                s.name,
                s.throughput,
                s.redis_cpu_us
                    .map_or_else(|| "–".to_owned(), |v| format!("{v:.2}")),
                per_node,
                s.commands_per_hit
                    .map_or_else(|| "–".to_owned(), |v| format!("{v:.2}")),
                s.drain_hits_per_second
                    .map_or_else(|| "–".to_owned(), |v| format!("{v:.0}")),
            );
        }
    }

    fn soak_md(&self, md: &mut String) {
        let Some(soak) = &self.soak else {
            return;
        };
        let _ = writeln!(md, "\n## Saturation soak ({})\n", soak.store);
        let _ = writeln!(
            md,
            "Closed loop, {} connections, {} sites, {:.0} s: {:.0} hits/s (2xx).\n",
            soak.connections, soak.sites, soak.duration_s, soak.throughput
        );
        // The service touches every reason at zero on start-up; only the ones that
        // happened are listed.
        let happened: Vec<String> = soak
            .dropped
            .iter()
            .filter(|(_, n)| **n > 0.0)
            .map(|(reason, n)| format!("{reason} {n:.0}"))
            .collect();
        let dropped = if happened.is_empty() {
            "none".to_owned()
        } else {
            happened.join(", ")
        };
        let yes_no = |b: bool| if b { "yes" } else { "**no**" };
        let _ = writeln!(md, "| measure | value |\n|---|---|");
        let _ = writeln!(md, "| hits accepted | {:.0} |", soak.accepted);
        let _ = writeln!(md, "| hits written | {:.0} |", soak.written);
        let _ = writeln!(md, "| dropped, by reason | {dropped} |");
        let _ = writeln!(
            md,
            "| dropped for a full buffer (aim 0) | {:.0} |",
            soak.buffer_full
        );
        let _ = writeln!(
            md,
            "| every accepted hit written | {} (caught up {:.1} s after the load) |",
            yes_no(soak.all_written),
            soak.catch_up_seconds
        );
        let _ = writeln!(
            md,
            "| RSS at {:.0} s → end of load | {:.1} → {:.1} MiB ({:+.1} %) |",
            soak.rss_reference_at_s,
            mib(soak.rss_reference_bytes),
            mib(soak.rss_end_bytes),
            soak.rss_change * 100.0
        );
        let _ = writeln!(
            md,
            "| RSS steady (within 15 %) | {} |",
            yes_no(soak.rss_steady)
        );
        if let Some((first, last)) = soak.rss_minute_means {
            let _ = writeln!(
                md,
                "| RSS, mean over the minute from {:.0} s → over the last minute | {:.1} → {:.1} MiB ({:+.1} %) |",
                soak.rss_reference_at_s,
                first / 1048576.0,
                last / 1048576.0,
                (last - first) / first * 100.0
            );
        }
        let per_hit = |seconds: f64| seconds * 1e6 / soak.written.max(1.0);
        let _ = writeln!(
            md,
            "| service CPU per written hit | {:.1} µs ({:.1} user + {:.1} kernel) |",
            per_hit(soak.service_cpu.total()),
            per_hit(soak.service_cpu.user),
            per_hit(soak.service_cpu.system)
        );
        if let Some(bytes) = soak.storage_written_bytes {
            let _ = writeln!(
                md,
                "| written to storage by the service | {:.1} MiB, {:.0} bytes a written hit |",
                mib(bytes),
                bytes as f64 / soak.written.max(1.0)
            );
        }
        let _ = writeln!(
            md,
            "\n| at s | RSS MiB | buffer hits | flush lag s | buffer_full drops | accepted | written |\n|---:|---:|---:|---:|---:|---:|---:|"
        );
        for s in &soak.samples {
            let _ = writeln!(
                md,
                "| {:.0} | {:.1} | {:.0} | {:.3} | {:.0} | {:.0} | {:.0} |",
                s.at_s,
                mib(s.rss_bytes),
                s.buffer_hits,
                s.flush_lag_seconds,
                s.buffer_full,
                s.accepted,
                s.written
            );
        }
    }

    fn accuracy_md(&self, md: &mut String) {
        if self.accuracy.is_empty() {
            return;
        }
        let _ = writeln!(md, "\n## Accuracy of the counts\n");
        let _ = writeln!(
            md,
            "| service | active sites | hits 2xx | drops (metrics) | pageviews expected / counted (sites off) | visits expected / counted (sites off) | visitors exact / HLL | visitors RMS / max rel. error |\n|---|---:|---:|---:|---|---|---|---|"
        );
        for a in &self.accuracy {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} / {} ({}) | {} / {} ({}) | {} / {} | {:.2} % / {:.2} % |",
                a.name,
                a.active_sites,
                a.hits_acknowledged,
                a.dropped_by_metrics,
                a.pageviews_expected,
                a.pageviews_counted,
                a.pageview_mismatches,
                a.visits_expected,
                a.visits_counted,
                a.visit_mismatches,
                a.visitors_expected,
                a.visitors_counted,
                a.visitors_rms_error * 100.0,
                a.visitors_max_error * 100.0
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{FloorRow, PhaseReport, Ratio, Report};

    fn ratio(name: &str, value: f64, target: f64) -> Ratio {
        Ratio {
            name: name.to_owned(),
            value,
            unit: "×".to_owned(),
            aim: format!("≤ {target} ×"),
            met: value <= target,
            detail: format!("from a round at {value}"),
        }
    }

    fn round(values: &[(&str, f64)]) -> Report {
        Report {
            ratios: values.iter().map(|&(n, v)| ratio(n, v, 1.5)).collect(),
            ..Report::default()
        }
    }

    #[test]
    fn each_aim_is_its_median_round() {
        let report = Report::over_rounds(vec![
            round(&[("cpu", 2.0), ("reads", 1.1)]),
            round(&[("cpu", 1.0), ("reads", 1.9)]),
            round(&[("cpu", 3.0), ("reads", 1.4)]),
        ]);
        let cpu = &report.ratios[0];
        assert_eq!((cpu.name.as_str(), cpu.value), ("cpu", 2.0));
        assert_eq!(
            cpu.detail, "from a round at 2",
            "the median round's figures"
        );
        assert!(!cpu.met);
        let reads = &report.ratios[1];
        assert_eq!((reads.value, reads.met), (1.4, true));
        assert_eq!(report.rounds.len(), 3);
        let md = report.markdown("load.svg");
        assert!(md.contains("median of 3 rounds"), "{md}");
        assert!(
            md.contains("| cpu | 2.00 × | 2.00, 1.00, 3.00 |"),
            "every round in the order run: {md}"
        );
    }

    #[test]
    fn an_even_number_of_rounds_takes_the_lower_middle_and_missing_aims_are_skipped() {
        let report = Report::over_rounds(vec![
            round(&[("cpu", 4.0)]),
            round(&[("cpu", 1.0), ("cluster", 9.0)]),
            round(&[("cpu", 3.0)]),
            round(&[("cpu", 2.0), ("cluster", 5.0)]),
        ]);
        assert_eq!(report.ratios[0].value, 2.0);
        assert_eq!(
            report.ratios[1].value, 5.0,
            "the median of the rounds that had it"
        );
        let md = report.markdown("load.svg");
        assert!(md.contains("| cluster | 5.00 × | 9.00, 5.00 |"), "{md}");
    }

    #[test]
    fn one_round_is_reported_as_it_was() {
        let report = Report::over_rounds(vec![round(&[("cpu", 2.5)])]);
        assert!(report.rounds.is_empty());
        let md = report.markdown("load.svg");
        assert!(md.contains("## The aims\n"), "{md}");
        assert!(
            md.contains("| cpu | 2.50 × | ≤ 1.5 × | **not met** |"),
            "{md}"
        );
    }

    fn phase(service_us: f64) -> PhaseReport {
        PhaseReport {
            service_cpu_us: Some(service_us),
            ..PhaseReport::default()
        }
    }

    #[test]
    fn the_floor_splits_footfall_over_bare_into_protections_and_own_work() {
        let row = FloorRow::of(
            "memory: cached count reads".to_owned(),
            &phase(10.0),
            &phase(13.0),
            &phase(19.5),
            1.2,
        );
        assert!((row.guarded_over_bare() - 1.3).abs() < 1e-9);
        assert!((row.footfall_over_guarded() - 1.5).abs() < 1e-9);
        assert!(
            (row.room_above_guarded_us() - -1.0).abs() < 1e-9,
            "the aim (12 µs) is below the protections alone (13 µs)"
        );
        let mut first = round(&[("cpu", 2.0)]);
        first.floor.push(row.clone());
        let mut second = round(&[("cpu", 3.0)]);
        second.floor.push(FloorRow {
            footfall_us: 20.0,
            ..row
        });
        let report = Report::over_rounds(vec![first, second]);
        let rounds: Vec<usize> = report.floor.iter().map(|r| r.round).collect();
        assert_eq!(rounds, [1, 2], "every round's rows, numbered");
        let md = report.markdown("load.svg");
        assert!(
            md.contains(
                "| memory: cached count reads | 1 | 10.0 | 13.0 | 19.5 | 1.30 × | 1.50 × | ≤ 1.2 × | -1.0 µs (footfall uses 6.5) |"
            ),
            "{md}"
        );
        assert!(md.contains("| memory: cached count reads | 2 |"), "{md}");
    }
}
