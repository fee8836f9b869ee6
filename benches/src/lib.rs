//! Micro-benchmarks and the load harness.
//!
//! - [`load`]: `footfall-load`, bounded load tests of `footfall serve` with a report.
//! - [`baseline`]: the servers footfall is compared with (`baseline-server`).

pub mod baseline;
pub mod load;
