//! Micro-benchmarks and the load harness.
