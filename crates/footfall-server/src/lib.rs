//! The footfall service and its command-line tools.
//!
//! [`app::public_app`] and [`app::internal_app`] build the routers of the two listeners
//! from an [`state::AppState`]; [`http::serve`] runs a router on a listener until told to
//! stop, so tests bind port 0 and own the shutdown. The binary `footfall` is a thin layer
//! over these modules.
#![deny(missing_docs)]
// The OpenAPI document is one `json!` literal, deeper than the default macro recursion.
#![recursion_limit = "256"]

pub mod admin;
pub mod api;
pub mod app;
pub mod audit;
pub mod bots;
pub mod buffer;
pub mod cache;
pub mod cas;
pub mod cli;
pub mod client_ip;
pub mod config;
pub mod describe;
pub mod error;
pub mod health;
pub mod http;
pub mod imported;
pub mod ingest;
pub mod layout;
pub mod metrics;
pub mod openapi;
pub mod rate_limit;
pub mod recent;
pub mod registry;
pub mod salt_cache;
pub mod service;
pub mod setting;
pub mod sites;
pub mod state;
pub mod stats;
pub mod store;
pub mod text;
pub mod trust;
pub mod web;
pub mod widget;
