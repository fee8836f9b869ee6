//! Hits made by hand for tests and benches, with the fields a test does not vary filled
//! in once: a page view, with no visitor under a previous salt.
//!
//! ```
//! use footfall::SiteId;
//! use footfall::counter::HitKind;
//! use footfall::identity::VisitorId;
//! use footfall::store::conformance::fixtures::{self, HitFixture as _};
//!
//! let site = SiteId::new("caukee")?;
//! let at: jiff::Timestamp = "2026-11-30T03:00:00Z".parse()?;
//! let hit = fixtures::hit(&site, at, VisitorId::from_bytes([1; 16]));
//! assert_eq!(hit.kind, HitKind::Pageview);
//! assert_eq!(hit.previous_visitor, None);
//! assert_eq!(hit.heartbeat().kind, HitKind::Heartbeat);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::net::IpAddr;

use jiff::Timestamp;

use crate::counter::{Hit, HitKind};
use crate::identity::{IpTruncation, Salt, VisitorId};
use crate::site::SiteId;

/// A page view of `site` at `at` by `visitor`, with no visitor under a previous salt.
pub fn hit(site: &SiteId, at: Timestamp, visitor: VisitorId) -> Hit {
    Hit {
        site: site.clone(),
        at,
        visitor,
        previous_visitor: None,
        kind: HitKind::Pageview,
    }
}

/// The id of a reader of `site` at `ip` under `salt`, with the User-Agent `UA` and the
/// address untruncated: one address, one visitor.
pub fn visitor(salt: &Salt, site: &SiteId, ip: IpAddr) -> VisitorId {
    VisitorId::derive(salt, site.as_str(), ip, "UA", IpTruncation::None)
}

/// The changes a few tests make to a [`hit`].
pub trait HitFixture {
    /// The same hit as a heartbeat from a page still visible.
    #[must_use]
    fn heartbeat(self) -> Self;
    /// The same hit, also carrying its visitor's id under the previous salt.
    #[must_use]
    fn previous(self, visitor: VisitorId) -> Self;
}

impl HitFixture for Hit {
    fn heartbeat(self) -> Hit {
        Hit {
            kind: HitKind::Heartbeat,
            ..self
        }
    }

    fn previous(self, visitor: VisitorId) -> Hit {
        Hit {
            previous_visitor: Some(visitor),
            ..self
        }
    }
}
