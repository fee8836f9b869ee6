//! The footfall service and its command-line tools.
//!
//! The binary `footfall` is a thin layer over the modules here, so each command's
//! logic can be tested without spawning a process.
#![deny(missing_docs)]

pub mod sketch_cli;
