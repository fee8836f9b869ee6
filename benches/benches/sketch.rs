//! Micro-benchmarks of the Redis-compatible HyperLogLog, with the `hyperloglog`
//! and `cardinality-estimator` crates at the same precision (2^14 registers) for
//! comparison.
//!
//! Run: `cargo bench -p footfall-benches --bench sketch -- --warm-up-time 1 --measurement-time 3`.
//!
//! Elements are 16-byte ids (the size of a visitor id). "add/element" hashes them
//! with each crate's own hash (MurmurHash64A here, SipHash-1-3 in `hyperloglog`,
//! WyHash in `cardinality-estimator`); "add/hash" feeds precomputed 64-bit hashes
//! to isolate the register update.

use std::hint::black_box;

use cardinality_estimator::CardinalityEstimator;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use footfall::sketch::{Hll, SEED, murmur64a};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Elements per measured batch.
const BATCH: usize = 100_000;

/// `hyperloglog`'s error-rate parameter for 2^14 registers: it picks
/// p = ceil(log2((1.04 / error)^2)), and 1.04 / 128 gives exactly 14.
const HYPERLOGLOG_ERROR: f64 = 1.04 / 128.0;

/// `cardinality-estimator` with 2^14 six-bit registers, like Redis.
type Estimator = CardinalityEstimator<[u8], wyhash::WyHash, 14, 6>;
type EstimatorByHash = CardinalityEstimator<u64, wyhash::WyHash, 14, 6>;

fn ids(seed: u64, n: usize) -> Vec<[u8; 16]> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.random()).collect()
}

fn footfall_of(elements: &[[u8; 16]]) -> Hll {
    let mut hll = Hll::new();
    for element in elements {
        hll.add(element);
    }
    hll
}

fn add(c: &mut Criterion) {
    let elements = ids(1, BATCH);
    let hashes: Vec<u64> = elements
        .iter()
        .map(|element| murmur64a(element, SEED))
        .collect();

    let mut group = c.benchmark_group("add/element");
    group.throughput(Throughput::Elements(BATCH as u64));
    // Each sketch is warmed with other elements first, so the measurement is the
    // steady state of a large (dense) sketch rather than its first registers.
    let warm = ids(2, 1_000_000);
    let mut footfall = footfall_of(&warm);
    group.bench_function("footfall", |b| {
        b.iter(|| {
            for element in &elements {
                black_box(footfall.add(black_box(element)));
            }
        });
    });
    let mut hyperloglog = hyperloglog::HyperLogLog::new_deterministic(HYPERLOGLOG_ERROR, 7);
    for element in &warm {
        hyperloglog.insert(element);
    }
    group.bench_function("hyperloglog", |b| {
        b.iter(|| {
            for element in &elements {
                hyperloglog.insert(black_box(element));
            }
        });
    });
    let mut estimator = Estimator::new();
    for element in &warm {
        estimator.insert(&element[..]);
    }
    group.bench_function("cardinality-estimator", |b| {
        b.iter(|| {
            for element in &elements {
                estimator.insert(black_box(&element[..]));
            }
        });
    });
    group.finish();

    let mut group = c.benchmark_group("add/hash");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("footfall", |b| {
        b.iter(|| {
            for &hash in &hashes {
                black_box(footfall.add_hash(black_box(hash)));
            }
        });
    });
    group.bench_function("hyperloglog", |b| {
        b.iter(|| {
            for &hash in &hashes {
                hyperloglog.insert_by_hash_value(black_box(hash));
            }
        });
    });
    let mut estimator_by_hash = EstimatorByHash::new();
    for &hash in &hashes {
        estimator_by_hash.insert_hash(hash);
    }
    group.bench_function("cardinality-estimator", |b| {
        b.iter(|| {
            for &hash in &hashes {
                estimator_by_hash.insert_hash(black_box(hash));
            }
        });
    });
    group.finish();

    // A new sketch filled with 1000 elements: the compact (sorted vector) phase.
    let small = ids(3, 1000);
    let mut group = c.benchmark_group("add/new-sketch-1000");
    group.throughput(Throughput::Elements(small.len() as u64));
    group.bench_function("footfall", |b| b.iter(|| footfall_of(black_box(&small))));
    group.bench_function("hyperloglog", |b| {
        b.iter(|| {
            let mut hll = hyperloglog::HyperLogLog::new_deterministic(HYPERLOGLOG_ERROR, 7);
            for element in &small {
                hll.insert(black_box(element));
            }
            hll
        });
    });
    group.bench_function("cardinality-estimator", |b| {
        b.iter(|| {
            let mut estimator = Estimator::new();
            for element in &small {
                estimator.insert(black_box(&element[..]));
            }
            estimator
        });
    });
    group.finish();
}

fn count(c: &mut Criterion) {
    let dense_ids = ids(4, 1_000_000);
    let sparse_ids = ids(5, 500);
    let dense = footfall_of(&dense_ids);
    let sparse = footfall_of(&sparse_ids);

    let mut group = c.benchmark_group("count");
    group.bench_function("footfall/dense", |b| b.iter(|| black_box(&dense).count()));
    group.bench_function("footfall/sparse", |b| b.iter(|| black_box(&sparse).count()));
    let mut hyperloglog = hyperloglog::HyperLogLog::new_deterministic(HYPERLOGLOG_ERROR, 7);
    for element in &dense_ids {
        hyperloglog.insert(element);
    }
    group.bench_function("hyperloglog/dense", |b| {
        b.iter(|| black_box(&hyperloglog).len())
    });
    let mut estimator = Estimator::new();
    for element in &dense_ids {
        estimator.insert(&element[..]);
    }
    // cardinality-estimator keeps its harmonic sum up to date on every insert, so
    // its estimate is O(1); the cost moves into insert.
    group.bench_function("cardinality-estimator/dense", |b| {
        b.iter(|| black_box(&estimator).estimate())
    });

    let others: Vec<Hll> = (0..4)
        .map(|seed| footfall_of(&ids(10 + seed, 200_000)))
        .collect();
    let union: Vec<&Hll> = std::iter::once(&dense).chain(&others).collect();
    group.bench_function("footfall/union-of-5-dense", |b| {
        b.iter(|| Hll::count_union(black_box(&union)))
    });
    group.finish();
}

fn merge(c: &mut Criterion) {
    let dense_a = footfall_of(&ids(6, 200_000));
    let dense_b = footfall_of(&ids(7, 200_000));
    let sparse_a = footfall_of(&ids(8, 400));
    let sparse_b = footfall_of(&ids(9, 400));

    let mut group = c.benchmark_group("merge");
    group.bench_function("footfall/dense-into-dense", |b| {
        b.iter_batched_ref(
            || dense_a.clone(),
            |target| target.merge(black_box(&dense_b)),
            BatchSize::SmallInput,
        );
    });
    group.bench_function("footfall/sparse-into-dense", |b| {
        b.iter_batched_ref(
            || dense_a.clone(),
            |target| target.merge(black_box(&sparse_b)),
            BatchSize::SmallInput,
        );
    });
    group.bench_function("footfall/sparse-into-sparse", |b| {
        b.iter_batched_ref(
            || sparse_a.clone(),
            |target| target.merge(black_box(&sparse_b)),
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn bytes(c: &mut Criterion) {
    let dense = footfall_of(&ids(11, 1_000_000));
    let sparse = footfall_of(&ids(12, 500));
    let dense_bytes = dense.to_redis_bytes();
    let sparse_bytes = sparse.to_redis_bytes();

    let mut group = c.benchmark_group("bytes");
    group.bench_function("to_redis_bytes/dense", |b| {
        b.iter(|| black_box(&dense).to_redis_bytes())
    });
    group.bench_function("to_redis_bytes/sparse", |b| {
        b.iter(|| black_box(&sparse).to_redis_bytes())
    });
    group.bench_function("from_redis_bytes/dense", |b| {
        b.iter(|| Hll::from_redis_bytes(black_box(&dense_bytes)))
    });
    group.bench_function("from_redis_bytes/sparse", |b| {
        b.iter(|| Hll::from_redis_bytes(black_box(&sparse_bytes)))
    });
    group.finish();
}

criterion_group!(benches, add, count, merge, bytes);
criterion_main!(benches);
