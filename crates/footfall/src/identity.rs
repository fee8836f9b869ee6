//! Visitor identity (TEMPORARY STUB until the real module lands).
#![allow(missing_docs)]
use crate::calendar::Calendar;
use jiff::{SignedDuration, Timestamp};
use std::fmt;
use std::net::IpAddr;

#[derive(Clone, PartialEq)]
pub struct Salt([u8; 32]);
impl fmt::Debug for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Salt(..)")
    }
}
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    #[error("no randomness")]
    Random,
}
impl Salt {
    pub fn generate() -> Result<Salt, IdentityError> {
        let mut b = [0u8; 32];
        getrandom::fill(&mut b).map_err(|_| IdentityError::Random)?;
        Ok(Salt(b))
    }
    pub fn from_bytes(b: [u8; 32]) -> Salt {
        Salt(b)
    }
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VisitorId([u8; 16]);
impl fmt::Display for VisitorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IpTruncation {
    #[default]
    None,
    Networks,
}
impl VisitorId {
    pub fn derive(salt: &Salt, site: &str, ip: IpAddr, ua: &str, _t: IpTruncation) -> VisitorId {
        let mut h = blake3::Hasher::new_keyed(&salt.0);
        h.update(site.as_bytes());
        h.update(ip.to_string().as_bytes());
        h.update(ua.as_bytes());
        let mut o = [0u8; 16];
        o.copy_from_slice(&h.finalize().as_bytes()[..16]);
        VisitorId(o)
    }
    pub fn from_bytes(b: [u8; 16]) -> VisitorId {
        VisitorId(b)
    }
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SaltRotation {
    #[default]
    Daily,
    Hours(u8),
}
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaltPeriod {
    pub id: String,
    pub start: Timestamp,
    pub end: Timestamp,
}
impl SaltPeriod {
    pub fn expires_at(&self) -> Timestamp {
        self.start + SignedDuration::from_hours(48)
    }
}
impl SaltRotation {
    pub fn period(&self, cal: &Calendar, at: Timestamp) -> SaltPeriod {
        let d = cal.day(at);
        SaltPeriod {
            id: d.to_string(),
            start: cal.day_start(d),
            end: cal.next_day_start(at),
        }
    }
    pub fn previous_period(&self, cal: &Calendar, at: Timestamp) -> SaltPeriod {
        let p = self.period(cal, at);
        self.period(cal, p.start - SignedDuration::from_secs(1))
    }
}
