//! The store this service runs on: any of the library's stores, chosen at start by
//! `--store`. A leaf, so every component can name it without knowing the service.

/// The store behind every component of the service.
pub type AppStore = footfall::store::AnyStore;
