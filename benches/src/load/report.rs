//! The report: the same numbers as JSON (for machines) and Markdown (for people).

use std::fmt::Write;

use super::chart::LadderPoint;
use super::service::HitMetrics;
use super::traffic::TrafficMix;

/// Everything one run measured.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    /// The command line.
    pub command: String,
    /// `nproc`, CPU model, memory.
    pub machine: String,
    /// The traffic mix.
    pub mix: Option<TrafficMix>,
    /// Each measured phase.
    pub phases: Vec<PhaseReport>,
    /// Open-loop steps against offered load (the chart).
    pub ladder: Vec<LadderPoint>,
    /// Counts read back against the harness's own.
    pub accuracy: Vec<Accuracy>,
    /// `redis-benchmark` results.
    pub redis_benchmark: Vec<RedisBenchmark>,
    /// Resident memory readings.
    pub memory: Vec<Memory>,
    /// footfall against the baselines.
    pub ratios: Vec<Ratio>,
    /// Free-form remarks (skipped steps, warnings).
    pub notes: Vec<String>,
}

/// One phase.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PhaseReport {
    /// What was measured ("footfall memory, hits, closed").
    pub name: String,
    /// "closed, 32 connections" or "open, 5000/s".
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
    /// Server CPU per 2xx request, microseconds.
    pub service_cpu_us: Option<f64>,
    /// Redis CPU per 2xx request, microseconds.
    pub redis_cpu_us: Option<f64>,
    /// The harness's own CPU per request, microseconds.
    pub harness_cpu_us: f64,
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
}

fn fmt_opt(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.1}"))
}

impl Report {
    /// The Markdown rendering.
    #[must_use]
    pub fn markdown(&self, chart_file: &str) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# footfall load report\n");
        let _ = writeln!(md, "- command: `{}`", self.command);
        let _ = writeln!(md, "- machine: {}", self.machine);
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
        if !self.ratios.is_empty() {
            let _ = writeln!(md, "\n## footfall against the baselines and the aims\n");
            let _ = writeln!(md, "| measure | value | aim | met |\n|---|---:|---|---|");
            for r in &self.ratios {
                let _ = writeln!(
                    md,
                    "| {} | {:.3} {} | {} | {} |",
                    r.name,
                    r.value,
                    r.unit,
                    r.aim,
                    if r.met { "yes" } else { "**no**" }
                );
            }
        }
        let _ = writeln!(md, "\n## Phases\n");
        let _ = writeln!(
            md,
            "| phase | pace | sent | 2xx | errors | req/s | p50 ms | p90 ms | p99 ms | max ms | service CPU µs/req | Redis CPU µs/req | harness CPU µs/req |"
        );
        let _ = writeln!(
            md,
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for p in &self.phases {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {:.1} |",
                p.name,
                p.pace,
                p.sent,
                p.ok,
                p.errors,
                p.throughput,
                p.p50_ms,
                p.p90_ms,
                p.p99_ms,
                p.max_ms,
                fmt_opt(p.service_cpu_us),
                fmt_opt(p.redis_cpu_us),
                p.harness_cpu_us
            );
        }
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
        if !self.accuracy.is_empty() {
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
                let _ = writeln!(md, "| {} | {:.1} |", m.name, m.rss_bytes as f64 / 1048576.0);
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
}
