//! End-to-end tests: one binary for the whole crate, one module per area.

mod deploy;
mod embedded_store;
mod faults;
mod history;
mod metrics;
mod migration;
mod redis_store;
mod redis_tls;
mod service;
mod sketch_parity;
