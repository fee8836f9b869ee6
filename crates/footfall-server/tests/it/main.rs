//! The server crate's one integration-test binary (matklad, "Delete Cargo Integration
//! Tests"): one link step, one process, modules by concern.

mod admin_tokens;
mod bad_input;
mod browser;
mod cli;
mod history;
mod layering;
mod openapi;
mod routes;
mod sockets;
mod stats;
mod stats_browser;
mod support;
mod trust_cli;
mod widget;
