//! The operator commands beside `serve`, at the top of the crate: nothing below imports
//! them. `sketch` looks at Redis HyperLogLogs, `migrate` copies and upgrades stores,
//! `trust` makes keys and signs and verifies credentials, `healthcheck` asks a running
//! service whether it is ready, `admin_token` makes admin tokens for the tokens file,
//! `import_history` sends an earlier counter's days to a service.

pub mod admin_token;
pub mod healthcheck;
pub mod import_history;
pub mod migrate;
pub mod sketch;
pub mod trust;
