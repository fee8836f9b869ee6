//! End-to-end tests: one binary for the whole crate, one module per area.

mod deploy;
mod embedded_store;
mod metrics;
mod migration;
mod redis_store;
mod sketch_parity;
