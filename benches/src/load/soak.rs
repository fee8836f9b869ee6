//! The saturation soak (issue 16): footfall at its ceiling for minutes, with 1,000 sites
//! of Zipf popularity, to show that the write path keeps up. Every few seconds the
//! service's RSS, buffer depth, flush lag and `buffer_full` drops are read; after the
//! load the harness waits until every accepted hit is written and checks the counts.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::Options;
use super::drive::{Pace, RequestKind};
use super::procstat;
use super::report::{Memory, Ratio, Report, SoakReport, SoakSample};
use super::service::{self, BufferGauges, HitMetrics};
use super::stores::{StoreKind, StoreTarget};
use super::suite::{Bench, Phase, check_counts, start_local, workload};

/// How long the writes may take to catch up after the load: a store that fell minutes
/// behind shows it here rather than in an endless wait.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(300);
/// The RSS is compared from this many seconds into the load on (the first minute warms
/// caches and fills the day's sketches), or from halfway through a shorter soak.
const RSS_REFERENCE_AFTER_S: f64 = 60.0;
/// "Steady": the RSS at the end within this share of the reference.
const RSS_STEADY_SHARE: f64 = 0.15;

/// Runs the soak on `--store` and puts it in `report`.
///
/// # Errors
///
/// When the store or the service cannot be started, or the sites cannot be created.
pub(super) fn soak(
    options: &Options,
    bench: &Bench<'_>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let kind: StoreKind = options.store.parse()?;
    let target = StoreTarget::start(&kind)?;
    let n_sites = options.sites();
    let local = start_local(&target.location, n_sites, options.visit_timeout_minutes)?;
    let (endpoint, sites) = (&local.endpoint, &local.sites);
    let admin = local.server.internal();
    let pid = local.server.pid();
    let measured = local.measured(&target.redis);
    let work = workload(endpoint, sites, &options.mix(), RequestKind::Hits);
    let (touched, mut truth) = bench.touch_every_site(&work, &measured)?;
    let duration = bench.duration;
    let every = Duration::from_secs_f64(options.sample_every.max(0.5));

    let written_before = procstat::storage_written_bytes(pid);
    let cpu_before = procstat::cpu_times(pid).unwrap_or_default();
    let load_started = Instant::now();
    let sampler =
        std::thread::spawn(move || sample_until(admin, pid, load_started, every, duration));
    let (phase, result) = bench.run_for(
        &Phase {
            name: format!("soak, footfall {}, hits", kind.label()),
            workload: &work,
            pace: Pace::Closed,
            connections: options.connections,
        },
        &measured,
        duration,
        CATCH_UP_LIMIT,
    )?;
    let mut samples = sampler
        .join()
        .map_err(|_| anyhow::anyhow!("the soak's sampler panicked"))?;
    let end_of_load = samples.last().cloned().unwrap_or_default();
    // One more reading once the writes caught up (or the limit passed).
    match read_sample(admin, pid, load_started.elapsed().as_secs_f64()) {
        Ok(sample) => samples.push(sample),
        Err(error) => eprintln!("footfall-load: soak reading after the load: {error:#}"),
    }
    let totals = HitMetrics::scrape(admin)?;
    let storage_written_bytes = procstat::storage_written_bytes(pid)
        .zip(written_before)
        .map(|(after, before)| after.saturating_sub(before));
    let service_cpu = procstat::cpu_times(pid)
        .unwrap_or(cpu_before)
        .since(&cpu_before);

    let duration_s = duration.as_secs_f64();
    let reference_at = RSS_REFERENCE_AFTER_S.min(duration_s / 2.0);
    let reference = samples
        .iter()
        .find(|s| s.at_s + 1e-6 >= reference_at)
        .cloned()
        .unwrap_or_default();
    let rss_change = if reference.rss_bytes > 0 {
        (end_of_load.rss_bytes as f64 - reference.rss_bytes as f64) / reference.rss_bytes as f64
    } else {
        f64::NAN
    };
    // Means over whole minutes as well as the two instants: an RSS that swings with a
    // minute's period reads, at two instants, the phase of the swing. Both windows end
    // by the end of the load, so the reading taken after the catch-up is left out.
    let rss_minute_means = (duration_s >= reference_at + 2.0 * MINUTE_S)
        .then(|| {
            mean_rss(&samples, reference_at, reference_at + MINUTE_S).zip(mean_rss(
                &samples,
                duration_s - MINUTE_S,
                duration_s,
            ))
        })
        .flatten();
    let buffer_full = totals.dropped.get("buffer_full").copied().unwrap_or(0.0);
    let not_written = totals.accepted - totals.written - totals.dropped_after_acceptance();
    let soak = SoakReport {
        store: kind.label().to_owned(),
        duration_s,
        connections: options.connections,
        sites: n_sites,
        throughput: phase.throughput,
        samples,
        accepted: totals.accepted,
        written: totals.written,
        dropped: totals.dropped.clone(),
        buffer_full,
        all_written: totals.caught_up(),
        catch_up_seconds: phase.settle_seconds,
        rss_reference_at_s: reference.at_s,
        rss_reference_bytes: reference.rss_bytes,
        rss_end_bytes: end_of_load.rss_bytes,
        rss_change,
        rss_steady: rss_change.abs() <= RSS_STEADY_SHARE,
        storage_written_bytes,
        service_cpu,
        rss_minute_means,
    };
    report.ratios = vec![
        Ratio {
            name: format!("{}: hits dropped for a full buffer", soak.store),
            value: buffer_full,
            unit: "hits".into(),
            aim: "0".into(),
            met: buffer_full == 0.0,
            detail: format!("of {:.0} accepted", totals.accepted),
        },
        Ratio {
            name: format!("{}: accepted hits not written after the stop", soak.store),
            value: not_written,
            unit: "hits".into(),
            aim: "0".into(),
            met: soak.all_written,
            detail: format!(
                "{:.0} written of {:.0} accepted ({:.0} dropped by the flusher), caught up {:.1} s after the load",
                totals.written,
                totals.accepted,
                totals.dropped_after_acceptance(),
                soak.catch_up_seconds
            ),
        },
        Ratio {
            // A store stall longer than its timeouts makes the flusher drop batches that
            // may have been applied (`store_ambiguous`): lost hits as much as a full
            // buffer's, so they are an aim of their own, not excused as "accounted for".
            name: format!("{}: accepted hits dropped by the flusher", soak.store),
            value: totals.dropped_after_acceptance(),
            unit: "hits".into(),
            aim: "0".into(),
            met: totals.dropped_after_acceptance() == 0.0,
            detail: format!(
                "store_ambiguous {:.0}, shutting_down {:.0}, too_old {:.0}, unknown_site {:.0}",
                totals
                    .dropped
                    .get("store_ambiguous")
                    .copied()
                    .unwrap_or(0.0),
                totals.dropped.get("shutting_down").copied().unwrap_or(0.0),
                totals.dropped.get("too_old").copied().unwrap_or(0.0),
                totals.dropped.get("unknown_site").copied().unwrap_or(0.0),
            ),
        },
        Ratio {
            name: format!(
                "{}: service RSS change from {:.0} s (after the first minute, or halfway through a shorter soak) to the end of the load",
                soak.store, soak.rss_reference_at_s
            ),
            value: rss_change * 100.0,
            unit: "%".into(),
            aim: "within ±15 %".into(),
            met: soak.rss_steady,
            detail: format!(
                "{:.1} MiB at {:.0} s → {:.1} MiB at the end of the load",
                soak.rss_reference_bytes as f64 / 1048576.0,
                soak.rss_reference_at_s,
                soak.rss_end_bytes as f64 / 1048576.0
            ),
        },
    ];
    report.phases.push(phase);
    report.soak = Some(soak);
    truth.merge(result.truth);
    let accuracy = check_counts(
        endpoint,
        admin,
        sites,
        &truth,
        touched + result.ok,
        &format!("footfall {} (soak)", kind.label()),
    )?;
    report.accuracy.push(accuracy);
    if let Some(rss) = procstat::rss_bytes(pid) {
        report.memory.push(Memory {
            name: format!("footfall {} after the soak ({n_sites} sites)", kind.label()),
            rss_bytes: rss,
        });
    }
    Ok(())
}

const MINUTE_S: f64 = 60.0;

/// The mean RSS, in bytes, of the samples taken from `from_s` to `to_s` seconds into
/// the load (both included); `None` when there is none.
fn mean_rss(samples: &[SoakSample], from_s: f64, to_s: f64) -> Option<f64> {
    let inside: Vec<f64> = samples
        .iter()
        .filter(|s| s.at_s + 1e-6 >= from_s && s.at_s <= to_s + 1e-6)
        .map(|s| s.rss_bytes as f64)
        .collect();
    (!inside.is_empty()).then(|| inside.iter().sum::<f64>() / inside.len() as f64)
}

/// Reads every `every` from `started` until `until` has passed, the last reading at
/// `until` itself (the end of the load).
fn sample_until(
    admin: SocketAddr,
    pid: u32,
    started: Instant,
    every: Duration,
    until: Duration,
) -> Vec<SoakSample> {
    let mut samples = Vec::new();
    let mut k = 1u32;
    loop {
        let due = (every * k).min(until);
        if let Some(wait) = (started + due).checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        // Stamped with the time it was due (it is taken a few milliseconds later), so a
        // reading due at the end of a minute window falls inside it.
        match read_sample(admin, pid, due.as_secs_f64()) {
            Ok(sample) => {
                super::progress(format_args!(
                    "soak at {:.0} s: RSS {:.1} MiB, buffer {:.0} hits, lag {:.3} s, buffer_full {:.0}, accepted {:.0}, written {:.0}",
                    sample.at_s,
                    sample.rss_bytes as f64 / 1048576.0,
                    sample.buffer_hits,
                    sample.flush_lag_seconds,
                    sample.buffer_full,
                    sample.accepted,
                    sample.written
                ));
                samples.push(sample);
            }
            Err(error) => eprintln!("footfall-load: soak reading: {error:#}"),
        }
        if due >= until {
            return samples;
        }
        k += 1;
    }
}

fn read_sample(admin: SocketAddr, pid: u32, at_s: f64) -> anyhow::Result<SoakSample> {
    let text = service::metrics_text(admin)?;
    let hits = HitMetrics::parse(&text);
    let gauges = BufferGauges::parse(&text);
    Ok(SoakSample {
        at_s,
        rss_bytes: procstat::rss_bytes(pid).context("the service's RSS")?,
        buffer_hits: gauges.buffer_hits,
        flush_lag_seconds: gauges.flush_lag_seconds,
        buffer_full: hits.dropped.get("buffer_full").copied().unwrap_or(0.0),
        accepted: hits.accepted,
        written: hits.written,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_s: f64, rss_mib: u64) -> SoakSample {
        SoakSample {
            at_s,
            rss_bytes: rss_mib << 20,
            ..SoakSample::default()
        }
    }

    #[test]
    fn minute_means_take_the_samples_inside_their_window() {
        // A sawtooth: 100, 200, 100, 200, ... MiB every 10 s.
        let samples: Vec<SoakSample> = (1..=24)
            .map(|k| sample(f64::from(k) * 10.0, if k % 2 == 0 { 200 } else { 100 }))
            .collect();
        let mib = |bytes: f64| bytes / 1048576.0;
        // 60..=120 s: 200, 100, 200, 100, 200, 100, 200 → 1100 / 7.
        let first = mean_rss(&samples, 60.0, 120.0).unwrap();
        assert!((mib(first) - 1100.0 / 7.0).abs() < 1e-9, "{}", mib(first));
        // 180..=240 s: 200, 100, 200, 100, 200, 100, 200 as well.
        let last = mean_rss(&samples, 180.0, 240.0).unwrap();
        assert!((mib(last) - mib(first)).abs() < 1e-9);
        assert_eq!(mean_rss(&samples, 250.0, 300.0), None);
    }
}
