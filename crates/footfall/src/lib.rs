//! footfall: visitor counting for web sites.
//!
//! The library turns page views into the figures of a site's "visitor statistics" box:
//! visitors online now, and visits, visitors and pageviews for today, this week, this
//! month and all time, each in the site's time zone and each with its definition.
//!
//! - [`sketch`]: a HyperLogLog that reads, writes and counts exactly like Redis's.
//! - [`calendar`]: local days, weeks (ISO or otherwise) and months of a site.
//! - [`identity`]: privacy-preserving visitor ids (keyed hashes with rotating salts).
//! - [`counter`]: hits into store writes, reads into [`Figure`]s.
//! - [`store`]: the narrow storage trait and its backends.
//!
//! The core never reads the clock and does no I/O: time comes from a [`clock::Clock`]
//! held by the caller, and only [`store`] backends talk to the outside world.
//!
//! ```
//! use footfall::counter::{self, Hit, HitKind};
//! use footfall::identity::{IpTruncation, Salt, VisitorId};
//! use footfall::store::MemoryStore;
//! use footfall::{CountingRules, Metric, SiteId, Window};
//!
//! # tokio_test_block_on(async {
//! let store = MemoryStore::new();
//! let site = SiteId::new("caukee")?;
//! let rules = CountingRules::default();
//! let now: jiff::Timestamp = "2026-11-30T03:00:00Z".parse()?;
//! let salt = Salt::generate()?;
//! let visitor = VisitorId::derive(&salt, site.as_str(), "203.0.113.7".parse()?, "Mozilla/5.0", IpTruncation::None);
//! let hit = Hit { site: site.clone(), at: now, visitor, previous_visitor: None, kind: HitKind::Pageview };
//!
//! counter::record(&store, &[hit.clone(), hit], |_| Some(&rules), now).await?;
//! let snapshot = counter::snapshot(&store, &site, &rules, now).await?;
//! assert_eq!(snapshot.value(Window::Today, Metric::Pageviews), 2);
//! assert_eq!(snapshot.value(Window::Today, Metric::Visits), 1);
//! assert_eq!(snapshot.value(Window::Online, Metric::Visitors), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```
#![deny(missing_docs)]

pub mod calendar;
pub mod clock;
pub mod counter;
pub mod identity;
pub mod keys;
pub mod migrate;
pub mod rules;
pub mod salts;
pub mod site;
pub mod sketch;
pub mod store;
pub mod window;

pub use rules::CountingRules;
pub use site::SiteId;
pub use window::{Accuracy, Definition, Figure, Metric, Window};

/// Everything that can go wrong in the library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// No randomness was available for a salt.
    #[error(transparent)]
    Identity(#[from] identity::IdentityError),
    /// A stored salt does not open with the accepted salt secrets.
    #[error(transparent)]
    Salt(#[from] salts::SaltError),
    /// A baseline change would lower a public total.
    #[error(
        "the {metric} baseline is {current}; lowering it to {requested} would make the public total go down"
    )]
    BaselineDecrease {
        /// The metric's name.
        metric: &'static str,
        /// The stored baseline.
        current: u64,
        /// The refused value.
        requested: u64,
    },
}
