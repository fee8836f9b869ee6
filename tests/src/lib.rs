//! End-to-end test support: helpers that start the real processes the tests in
//! `tests/tests/` talk to.
#![deny(missing_docs)]

pub mod footfall_server;
pub mod redis_cluster;
pub mod redis_server;
