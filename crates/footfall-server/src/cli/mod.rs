//! The operator commands beside `serve`, at the top of the crate: nothing below imports
//! them. `sketch` looks at Redis HyperLogLogs, `migrate` copies and upgrades stores,
//! `trust` makes keys and signs and verifies credentials, `healthcheck` asks a running
//! service whether it is ready.

pub mod healthcheck;
pub mod migrate;
pub mod sketch;
pub mod trust;
