//! footfall: visitor counting for web sites.
#![deny(missing_docs)]

pub mod calendar;
pub mod identity;
pub mod sketch;
