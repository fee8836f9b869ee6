//! The load harness behind `footfall-load`: bounded load against a `footfall serve`, and a
//! report (Markdown, JSON, SVG chart) of throughput, latency, CPU per hit (user and kernel,
//! service and Redis), Redis commands per hit, drain capacity and the accuracy of the
//! counts, with baselines measured in the same run.
//!
//! Three suites:
//! - **quick**: one open-loop phase at `--rate` for `--duration` against a local service
//!   (`--store memory|embedded|redis|cluster|URL`) or an operator's deployment
//!   (`--target`), then the counts read back and checked.
//! - **full** (local only, under three minutes with the default 3 s phases): the bare,
//!   guarded (bare behind footfall's protections, next to the memory store: the floor
//!   table) and naive baselines, footfall on the memory, embedded (1 and `--sites`
//!   sites), Redis and Redis Cluster stores: closed-loop ceilings, 10 % of each ceiling
//!   next to bare at the same offered rate, cached count reads, the widget's
//!   `?counts=1` reply, an open-loop ladder on `--store`, drain capacity per store,
//!   `redis-benchmark` (PFADD and the visit marker), memory, and the aims of issues 10
//!   and 16 as ratios.
//! - **soak** (local only, issue 16): closed-loop saturation for `--duration` (default
//!   240 s), sampling RSS, buffer depth, flush lag and `buffer_full` drops, then waiting
//!   until every accepted hit is written.

pub mod chart;
pub mod drain;
pub mod drive;
pub mod procstat;
pub mod redis_nodes;
pub mod report;
mod run;
pub mod service;
mod soak;
pub mod stores;
mod suite;
pub mod traffic;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

pub use run::run;
pub use service::site_hostname;

/// `footfall-load` options.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "footfall-load",
    about = "Bounded load tests of footfall serve, with a report"
)]
pub struct Options {
    /// The public listener of a running deployment (`http://host:8080`); without it a
    /// local `footfall serve` is started.
    #[arg(long)]
    pub target: Option<String>,
    /// Its internal listener (`http://host:9464`), for the admin API and metrics.
    #[arg(long)]
    pub admin: Option<String>,
    /// An admin bearer token of the deployment (also `FOOTFALL_LOAD_ADMIN_TOKEN`).
    #[arg(long, env = "FOOTFALL_LOAD_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Local service store: `memory`, `embedded` (a fresh temporary directory, the
    /// product's default store), `redis` (a redis-server the harness starts), `cluster`
    /// (a 3-master Redis Cluster the harness starts), or a `redis://` or
    /// `redis+cluster://` URL. In the full suite every store runs, and this one gets the
    /// open-loop ladder.
    #[arg(long, default_value = "memory")]
    pub store: String,
    /// `quick` (one open-loop phase), `full` (baselines, every store, ceilings, drain
    /// capacity, aims; local only) or `soak` (saturation for `--duration`; local only).
    #[arg(long, default_value = "quick")]
    pub suite: String,
    /// What the quick suite sends: `hits` (beacons), `widget` (`POST
    /// /api/v1/hit?counts=1`, a hit answered with the counts) or `reads` (cached count
    /// reads).
    #[arg(long, default_value = "hits")]
    pub requests: String,
    /// Offered hits per second of the quick suite's open loop.
    #[arg(long, default_value_t = 500.0)]
    pub rate: f64,
    /// Seconds each phase lasts (the soak: its whole load). Default: quick 10, full 3,
    /// soak 240.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Sites sharing the traffic. Default: quick 100, full and soak 1,000.
    #[arg(long)]
    pub sites: Option<usize>,
    /// Zipf exponent of site popularity.
    #[arg(long, default_value_t = 1.0)]
    pub zipf: f64,
    /// Share of hits from returning visitors.
    #[arg(long, default_value_t = 0.3)]
    pub returning: f64,
    /// Share of hits from crawlers.
    #[arg(long, default_value_t = 0.05)]
    pub bots: f64,
    /// Size of the client population (distinct IP and User-Agent pairs).
    #[arg(long, default_value_t = 5000)]
    pub clients: u32,
    /// Connections of the open loop.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Connections of the closed loop (the ceiling).
    #[arg(long, default_value_t = 32)]
    pub closed_connections: usize,
    /// Open-loop steps of the full suite, as fractions of footfall's ceiling.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0.1,0.25,0.5,0.75,0.9,1.0,1.2"
    )]
    pub ladder: Vec<f64>,
    /// Directory for report.md, report.json and load.svg.
    #[arg(long, default_value = "load-report")]
    pub out: PathBuf,
    /// Random seed of the traffic.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Rounds of the full suite. With more than one, each aim is reported as its median
    /// over the rounds, beside every round's figure: on a shared machine one round's
    /// ratios move by a fifth from the next one's.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub rounds: u32,
    /// Hits queued for each drain-capacity measurement of the full suite.
    #[arg(long, default_value_t = 200_000)]
    pub drain_hits: usize,
    /// Seconds between the soak's readings of RSS, buffer depth, lag and drops.
    #[arg(long, default_value_t = 10.0)]
    pub sample_every: f64,
    /// The local service's sites' `visit_timeout_minutes` (default: the product's, 30).
    /// A short one lets a soak reach the steady state of open visits within minutes. The
    /// accuracy table's visits then do not apply: it expects one visit per visitor.
    #[arg(long)]
    pub visit_timeout_minutes: Option<u32>,
}

impl Options {
    /// Seconds per phase (the soak: of load), with the suite's default.
    #[must_use]
    pub fn duration(&self) -> f64 {
        self.duration.unwrap_or(match self.suite.as_str() {
            "full" => 3.0,
            "soak" => 240.0,
            _ => 10.0,
        })
    }

    /// Sites sharing the traffic, with the suite's default.
    #[must_use]
    pub fn sites(&self) -> usize {
        self.sites.unwrap_or(match self.suite.as_str() {
            "full" | "soak" => 1000,
            _ => 100,
        })
    }

    /// The traffic mix.
    #[must_use]
    pub fn mix(&self) -> traffic::TrafficMix {
        traffic::TrafficMix {
            sites: self.sites(),
            zipf: self.zipf,
            returning: self.returning,
            bots: self.bots,
            clients: self.clients,
        }
    }
}

/// When the run began, for the progress lines.
static RUN_START: OnceLock<Instant> = OnceLock::new();

/// Prints a progress line to stderr with the seconds since the run began, so a slow step
/// shows in the log.
pub(crate) fn progress(message: std::fmt::Arguments<'_>) {
    let start = RUN_START.get_or_init(Instant::now);
    eprintln!(
        "footfall-load [{:6.1} s]: {message}",
        start.elapsed().as_secs_f64()
    );
}
