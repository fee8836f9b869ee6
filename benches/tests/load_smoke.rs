//! A short run of the load harness against a local `footfall serve` (memory store): the
//! report is produced and the counts add up. No throughput or latency is checked: this
//! is a correctness test on a shared machine.

use footfall_benches::load::{self, Options};

#[test]
fn a_three_second_run_counts_every_hit_it_should() {
    let out = tempfile::tempdir().expect("a temporary directory");
    let options = Options {
        target: None,
        admin: None,
        admin_token: None,
        store: "memory".to_owned(),
        suite: "quick".to_owned(),
        requests: "hits".to_owned(),
        rate: 100.0,
        duration: Some(3.0),
        sites: Some(10),
        zipf: 1.0,
        returning: 0.3,
        bots: 0.05,
        clients: 500,
        connections: 8,
        closed_connections: 4,
        ladder: Vec::new(),
        out: out.path().to_owned(),
        seed: 42,
        rounds: 1,
        drain_hits: 1_000,
        sample_every: 10.0,
        visit_timeout_minutes: None,
    };
    let report = load::run(&options).expect("the load run");

    for file in ["report.md", "report.json", "load.svg"] {
        let path = out.path().join(file);
        assert!(path.is_file(), "{} was not written", path.display());
    }
    let phase = &report.phases[0];
    assert!(phase.ok > 0, "no hit was acknowledged: {phase:?}");
    let metrics = phase
        .metrics
        .as_ref()
        .expect("metrics of the local service");
    assert!(metrics.accepted > 0.0, "no hit was accepted: {metrics:?}");

    let accuracy = &report.accuracy[0];
    // Every acknowledged hit is either counted as a pageview or dropped with a reason
    // the metrics show (here: the bots).
    assert_eq!(
        accuracy.pageviews_counted as f64,
        accuracy.hits_acknowledged as f64 - accuracy.dropped_by_metrics,
        "{accuracy:?}"
    );
    assert_eq!(
        accuracy.pageviews_counted, accuracy.pageviews_expected,
        "{accuracy:?}"
    );
    assert_eq!(
        accuracy.visits_counted, accuracy.visits_expected,
        "{accuracy:?}"
    );
}

/// The drain-capacity phase on the memory store: the flusher writes every queued hit,
/// in as few batches as its bound allows.
#[test]
fn a_drain_writes_every_queued_hit() {
    use footfall_benches::load::drain::{self, DrainSettings};
    use footfall_benches::load::stores::{StoreKind, StoreTarget};

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let target = StoreTarget::start(&StoreKind::Memory).expect("the memory store");
    let settings = DrainSettings {
        hits: 30_000,
        sites: 50,
        zipf: 1.0,
        returning: 0.3,
        seed: 7,
    };
    let report =
        drain::measure(&runtime, &target, "memory", &settings, "smoke").expect("the drain");
    assert_eq!(report.written, 30_000, "{report:?}");
    assert_eq!(report.not_written, 0, "{report:?}");
    // 20,000 per batch by default: a full batch and the rest.
    assert_eq!(report.batches, 2, "{report:?}");
    assert!(report.hits_per_second > 0.0, "{report:?}");
}
