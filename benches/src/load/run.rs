//! One run of the harness: the suite the options name (quick, full or soak), and the
//! report it writes. Above the suites, so the soak and the full suite share their phases
//! without importing each other.

use std::cell::Cell;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::report::Report;
use super::suite::{self, Bench};
use super::{Options, chart, soak};

/// Runs the suite the options name and writes the report into `options.out`.
///
/// # Errors
///
/// When a process cannot be started, the service refuses the sites, or the report cannot
/// be written.
pub fn run(options: &Options) -> anyhow::Result<Report> {
    let started = Instant::now();
    super::progress(format_args!("suite {}", options.suite));
    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("creating {}", options.out.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut report = Report {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        machine: suite::machine(),
        mix: Some(options.mix()),
        ..Report::default()
    };
    let bench = Bench {
        runtime: &runtime,
        duration: Duration::from_secs_f64(options.duration()),
        seed: Cell::new(options.seed),
        settle_limit: suite::SETTLE_LIMIT,
    };
    if options.rounds > 1 && options.suite != "full" {
        bail!("--rounds applies to the full suite only");
    }
    match options.suite.as_str() {
        "quick" => suite::quick(options, &bench, &mut report)?,
        "full" => {
            if options.target.is_some() {
                bail!("the full suite starts its own services and baselines: drop --target");
            }
            let mut rounds = Vec::new();
            for round in 1..=options.rounds {
                if options.rounds > 1 {
                    super::progress(format_args!("round {round} of {}", options.rounds));
                }
                let mut this = report.clone();
                suite::full(options, &bench, &mut this)?;
                rounds.push(this);
            }
            report = Report::over_rounds(rounds);
        }
        "soak" => {
            if options.target.is_some() {
                bail!("the soak starts its own service: drop --target");
            }
            soak::soak(options, &bench, &mut report)?;
        }
        other => bail!("unknown suite {other:?}: quick, full or soak"),
    }
    report.wall_seconds = started.elapsed().as_secs_f64();
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
