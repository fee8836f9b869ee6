//! `footfall-load`: a bounded load test of `footfall serve` that writes a report
//! (see `footfall_benches::load`).
//!
//! ```text
//! cargo build --release -p footfall-server -p footfall-benches --bins
//! # Every store against the baselines, drain capacity and the aims, in under 3 minutes:
//! target/release/footfall-load --suite full --sites 1000 --out /tmp/load-full
//! # Four minutes at saturation on one store (memory, embedded, redis, cluster or a URL):
//! target/release/footfall-load --suite soak --store embedded --duration 240 --out /tmp/soak
//! # One open-loop phase against a local store or a deployment:
//! target/release/footfall-load --store cluster --rate 2000 --duration 10
//! target/release/footfall-load --target http://host:8080 --admin http://host:9464 \
//!     --admin-token … --rate 2000 --duration 30
//! ```

use clap::Parser;
use footfall_benches::load::{self, Options};

fn main() -> anyhow::Result<()> {
    // The launcher finds `footfall` through FOOTFALL_BIN when not run from `deps/`: point
    // it at the binary built next to this one by running again with it set.
    if std::env::var_os("FOOTFALL_BIN").is_none()
        && let Some(footfall) = load::service::sibling_footfall()
    {
        let status = std::process::Command::new(std::env::current_exe()?)
            .args(std::env::args_os().skip(1))
            .env("FOOTFALL_BIN", footfall)
            .status()?;
        std::process::exit(status.code().unwrap_or(1));
    }
    let options = Options::parse();
    let report = load::run(&options)?;
    println!("{}", report.markdown("load.svg"));
    println!("report written to {}", options.out.display());
    Ok(())
}
