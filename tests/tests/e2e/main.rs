//! End-to-end tests: one binary for the whole crate, one module per area.

mod sketch_parity;
