//! The load harness behind `footfall-load`: bounded load against a `footfall serve`, and a
//! report (Markdown, JSON, SVG chart) of throughput, latency, CPU per hit and the accuracy
//! of the counts, with baselines measured in the same run.
//!
//! Two suites:
//! - **quick**: one open-loop phase at `--rate` for `--duration` against a local service
//!   or an operator's deployment (`--target`), then the counts read back and checked.
//! - **full** (local only): the bare and naive baselines, footfall on the memory and Redis
//!   stores, closed-loop ceilings, an open-loop ladder against offered load,
//!   `redis-benchmark`, memory, and the ratios against the aims.

pub mod chart;
pub mod drive;
pub mod procstat;
pub mod report;
pub mod service;
mod suite;
pub mod traffic;

use std::path::PathBuf;

pub use service::site_hostname;
pub use suite::run;

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
    /// Local service store: `memory`, `redis` (a redis-server the harness starts) or a
    /// `redis://` URL.
    #[arg(long, default_value = "memory")]
    pub store: String,
    /// `quick` (one open-loop phase) or `full` (baselines, ceilings, ladder; local only).
    #[arg(long, default_value = "quick")]
    pub suite: String,
    /// Offered hits per second of the quick suite's open loop.
    #[arg(long, default_value_t = 500.0)]
    pub rate: f64,
    /// Seconds each phase lasts.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Sites sharing the traffic.
    #[arg(long, default_value_t = 100)]
    pub sites: usize,
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
}

impl Options {
    /// The traffic mix.
    #[must_use]
    pub fn mix(&self) -> traffic::TrafficMix {
        traffic::TrafficMix {
            sites: self.sites,
            zipf: self.zipf,
            returning: self.returning,
            bots: self.bots,
            clients: self.clients,
        }
    }
}
