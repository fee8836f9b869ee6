//! End-to-end tests: one binary for the whole crate, one module per area.

mod embedded_store;
mod migration;
mod redis_store;
mod sketch_parity;
