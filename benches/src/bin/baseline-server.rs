//! `baseline-server bare|guarded|naive ADDRESS [REDIS_URL]`: the baselines of the load harness
//! (see `footfall_benches::baseline`), as their own process so their CPU can be read from
//! `/proc`. The harness starts and kills it; it stops when its parent kills it.

use anyhow::{Context, bail};
use footfall_benches::baseline::{self, Baseline};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (baseline, address) = match args.as_slice() {
        [mode, address] if mode == "bare" => (Baseline::Bare, address),
        [mode, address] if mode == "guarded" => (Baseline::Guarded, address),
        [mode, address, redis_url] if mode == "naive" => (
            Baseline::Naive {
                redis_url: redis_url.clone(),
            },
            address,
        ),
        _ => bail!(
            "usage: baseline-server bare|guarded ADDRESS | baseline-server naive ADDRESS REDIS_URL"
        ),
    };
    let address = address.parse().context("ADDRESS is host:port")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(baseline::serve(baseline, address))
}
