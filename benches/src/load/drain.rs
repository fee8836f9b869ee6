//! Drain capacity (issue 16): how fast a store takes what the HTTP side accepts, measured
//! in process with the service's own flusher.
//!
//! The buffer is filled while no flusher runs (as while a store is paused), then
//! [`Flusher::run`](footfall_server::buffer::Flusher::run) starts and the clock runs
//! until every hit is written. What is measured is therefore the write path alone:
//! planning, aggregation per site and day, the store's round trips or transactions,
//! with the flusher's real batch bound and batches in flight. The process's own CPU over the drain is the flusher's (nothing
//! else in the harness runs meanwhile), and Redis's CPU is read from `/proc`.
//!
//! The hits are shaped like the HTTP traffic: sites with Zipf popularity, a share of
//! returning visitors, and random 16-byte visitor ids (a real id is a keyed hash, as
//! random to the store).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use footfall::SiteId;
use footfall::clock::{Clock, SystemClock};
use footfall::counter::Hit;
use footfall::identity::VisitorId;
use footfall::store::AnyStore;
use footfall::store::conformance::fixtures;
use footfall_server::buffer::{self, BufferConfig};
use footfall_server::sites::{Site, SiteSettings, Sites};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use tokio::sync::watch;

use super::procstat;
use super::report::DrainReport;
use super::stores::StoreTarget;

/// The longest a drain may take before the harness stops it and reports what was written.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);
/// How often the harness looks whether the buffer is empty; short next to any drain.
const POLL_EVERY: Duration = Duration::from_millis(2);
/// Returning visitors are drawn from at most this many earlier visitors per site, so the
/// generator's memory stays bounded.
const SEEN_PER_SITE: usize = 4096;

/// What to drain.
#[derive(Debug, Clone)]
pub struct DrainSettings {
    /// Hits to queue before the flusher starts.
    pub hits: usize,
    /// Registered sites the hits go to.
    pub sites: usize,
    /// Zipf exponent of site popularity (0: uniform).
    pub zipf: f64,
    /// Share of hits from a returning visitor of the same site.
    pub returning: f64,
    /// Random seed.
    pub seed: u64,
}

/// Fills a buffer on `target` with `settings.hits` hits, lets the flusher write them all,
/// and reports the rate and its cost. `label` names the store in the report; `run_id`
/// keeps the site ids apart from any other run's on a shared store.
///
/// # Errors
///
/// When the store cannot be opened or the buffer refuses a hit.
pub fn measure(
    runtime: &tokio::runtime::Runtime,
    target: &StoreTarget,
    label: &str,
    settings: &DrainSettings,
    run_id: &str,
) -> anyhow::Result<DrainReport> {
    runtime.block_on(drain(target, label, settings, run_id))
}

async fn drain(
    target: &StoreTarget,
    label: &str,
    settings: &DrainSettings,
    run_id: &str,
) -> anyhow::Result<DrainReport> {
    if settings.hits == 0 || settings.sites == 0 {
        bail!("a drain needs hits and sites");
    }
    let store = AnyStore::connect(&target.location)
        .await
        .with_context(|| format!("opening the {label} store at {}", target.location))?;
    let ids: Vec<String> = (0..settings.sites)
        .map(|n| format!("drain-{run_id}-{n:04}"))
        .collect();
    let registered = ids
        .iter()
        .map(|id| {
            let host = super::site_hostname(id);
            Site::from_settings(SiteSettings::new(id, &[host.as_str()]), "drain")
                .with_context(|| format!("site {id}"))
        })
        .collect::<anyhow::Result<Vec<Site>>>()?;
    let site_ids: Vec<SiteId> = registered.iter().map(|s| s.id.clone()).collect();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (stop, stop_rx) = watch::channel(None);
    let config = BufferConfig {
        capacity: settings.hits,
        ..BufferConfig::default()
    };
    let (buffer, flusher) = buffer::channel(
        Arc::new(store),
        Arc::new(Sites::new(registered)),
        Arc::clone(&clock),
        config,
        stop_rx,
    );

    // The store is "paused": nothing writes while the buffer fills.
    let mut shape = HitShape::new(site_ids, settings);
    let at = clock.now();
    for _ in 0..settings.hits {
        buffer
            .push(shape.next_hit(at))
            .map_err(|reason| anyhow::anyhow!("the buffer refused a hit: {}", reason.as_str()))?;
    }

    // Resume: the flusher runs until the buffer is empty and nothing is in hand.
    let own_pid = std::process::id();
    let cpu_before = procstat::cpu_times(own_pid).unwrap_or_default();
    let redis_before = target.redis.read();
    let started = Instant::now();
    let running = tokio::spawn(flusher.run());
    loop {
        tokio::time::sleep(POLL_EVERY).await;
        // Between a batch leaving the channel and its writer starting, both read zero
        // for a moment; stopping then is harmless, since the stop writes whatever is
        // left and the clock runs until the flusher returns.
        let idle = buffer.depth() == 0 && buffer.lag(clock.now()).is_zero();
        if idle || started.elapsed() > DRAIN_LIMIT || running.is_finished() {
            break;
        }
    }
    stop.send_replace(Some(tokio::time::Instant::now() + DRAIN_LIMIT));
    let totals = running.await.context("the flusher panicked")?;
    let elapsed = started.elapsed().as_secs_f64();
    let service_cpu = procstat::cpu_times(own_pid)
        .unwrap_or_default()
        .since(&cpu_before);
    let redis = target.redis.since(&redis_before);
    let redis_cpu = redis.total_cpu();
    let cpu_seconds = service_cpu.total() + redis_cpu.map_or(0.0, |c| c.total());
    let written = totals.written;
    let report = DrainReport {
        store: label.to_owned(),
        hits: settings.hits as u64,
        written,
        not_written: settings.hits as u64 - written.min(settings.hits as u64),
        seconds: elapsed,
        hits_per_second: written as f64 / elapsed.max(1e-9),
        batches: totals.batches,
        mean_batch: written as f64 / totals.batches.max(1) as f64,
        service_cpu,
        redis_cpu,
        redis_masters: target.redis.nodes.len(),
        redis_commands_per_hit: (!target.redis.is_empty())
            .then_some(redis.commands)
            .flatten()
            .map(|c| c as f64 / written.max(1) as f64),
        hits_per_cpu_second: written as f64 / cpu_seconds.max(1e-9),
        http_ceiling: None,
        capacity_over_ceiling: None,
    };
    super::progress(format_args!(
        "drain {label}: {written} of {} hits in {elapsed:.2} s = {:.0} hits/s, {} batches, {:.0} hits per CPU second",
        settings.hits, report.hits_per_second, report.batches, report.hits_per_cpu_second
    ));
    Ok(report)
}

/// Hits like the HTTP traffic's, as the buffer receives them (bots are dropped before).
#[derive(Debug)]
struct HitShape {
    sites: Vec<SiteId>,
    zipf: Option<Zipf<f64>>,
    returning: f64,
    rng: SmallRng,
    seen: Vec<Vec<[u8; 16]>>,
}

impl HitShape {
    fn new(sites: Vec<SiteId>, settings: &DrainSettings) -> Self {
        let zipf = (settings.zipf > 0.0)
            .then(|| Zipf::new(sites.len() as f64, settings.zipf).ok())
            .flatten();
        let n_sites = sites.len();
        HitShape {
            sites,
            zipf,
            returning: settings.returning.clamp(0.0, 1.0),
            rng: SmallRng::seed_from_u64(settings.seed),
            seen: vec![Vec::new(); n_sites],
        }
    }

    fn next_hit(&mut self, at: jiff::Timestamp) -> Hit {
        let n_sites = self.sites.len();
        let site = match &self.zipf {
            // Zipf draws 1..=n.
            Some(zipf) => (zipf.sample(&mut self.rng) as usize).clamp(1, n_sites) - 1,
            None => self.rng.random_range(0..n_sites),
        };
        let seen = &mut self.seen[site];
        let visitor = if !seen.is_empty() && self.rng.random_bool(self.returning) {
            seen[self.rng.random_range(0..seen.len())]
        } else {
            let id: [u8; 16] = self.rng.random();
            if seen.len() < SEEN_PER_SITE {
                seen.push(id);
            }
            id
        };
        fixtures::hit(&self.sites[site], at, VisitorId::from_bytes(visitor))
    }
}
