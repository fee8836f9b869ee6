//! Visitor-id salts, shared by every service instance through the store.
//!
//! Each rotation period has one random salt under `ff:{site}:salt:<period>`. The first
//! instance to need it creates it with [`Store::set_if_absent`]; every other instance
//! reads the same value, so all instances derive the same visitor ids. Salts expire 48 h
//! after their period starts, so a salt is gone a day after it stops being used and no
//! visitor id can be recomputed from stored data after that.

use std::net::IpAddr;

use jiff::Timestamp;

use crate::Error;
use crate::identity::{Salt, SaltPeriod, VisitorId};
use crate::keys;
use crate::rules::CountingRules;
use crate::site::SiteId;
use crate::store::{Store, StoreError};

/// A site's current salt and, when it still exists, the previous one.
#[derive(Clone, Debug)]
pub struct SiteSalts {
    site: SiteId,
    period: SaltPeriod,
    current: Salt,
    previous: Option<Salt>,
}

/// Both ids of one hit: under the current salt, and under the previous salt while a visit
/// begun before the rotation may still be open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The id under the current salt.
    pub visitor: VisitorId,
    /// The id under the previous salt, within one visit timeout after the rotation.
    pub previous_visitor: Option<VisitorId>,
}

fn decode_salt(key: &keys::Key, bytes: &[u8]) -> Result<Salt, StoreError> {
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| StoreError::Corrupt {
        key: key.to_string(),
        message: format!("a salt has 32 bytes, found {}", bytes.len()),
    })?;
    Ok(Salt::from_bytes(bytes))
}

/// Fetches (creating when needed) the salt of the period containing `now`, and the
/// previous period's salt if it is still stored.
pub async fn load<S: Store>(
    store: &S,
    site: &SiteId,
    rules: &CountingRules,
    now: Timestamp,
) -> Result<SiteSalts, Error> {
    let rotation = rules.salt_rotation();
    let period = rotation.period(rules.calendar(), now);
    let key = keys::salt(site, &period.id);
    let candidate = Salt::generate()?;
    let stored = store
        .set_if_absent(&key, candidate.as_bytes(), Some(period.expires_at()), now)
        .await?;
    let current = decode_salt(&key, &stored)?;

    let previous_period = rotation.previous_period(rules.calendar(), now);
    let previous_key = keys::salt(site, &previous_period.id);
    let previous = match store.get(&previous_key, now).await? {
        Some(bytes) => Some(decode_salt(&previous_key, &bytes)?),
        None => None,
    };
    Ok(SiteSalts {
        site: site.clone(),
        period,
        current,
        previous,
    })
}

/// Replaces the current period's salt with a fresh one, at once. Visits open at that
/// moment end (their visitors get new ids); use it when a salt may have leaked. Other
/// instances pick the new salt up when they next [`load`].
pub async fn rotate_now<S: Store>(
    store: &S,
    site: &SiteId,
    rules: &CountingRules,
    now: Timestamp,
) -> Result<(), Error> {
    let period = rules.salt_rotation().period(rules.calendar(), now);
    let fresh = Salt::generate()?;
    store
        .set(
            &keys::salt(site, &period.id),
            fresh.as_bytes(),
            Some(period.expires_at()),
        )
        .await?;
    Ok(())
}

impl SiteSalts {
    /// The period these salts are current for.
    pub fn period(&self) -> &SaltPeriod {
        &self.period
    }

    /// True when `at` falls in the current period (otherwise [`load`] again).
    pub fn covers(&self, at: Timestamp) -> bool {
        self.period.start <= at && at < self.period.end
    }

    /// Derives a hit's visitor ids. The previous salt's id is included during the first
    /// visit timeout of the period, so a visit open across the rotation is not counted
    /// twice.
    pub fn identify(
        &self,
        rules: &CountingRules,
        ip: IpAddr,
        user_agent: &str,
        at: Timestamp,
    ) -> Identity {
        let site = self.site.as_str();
        let truncation = rules.ip_truncation();
        let visitor = VisitorId::derive(&self.current, site, ip, user_agent, truncation);
        // A hit stamped just before the period began gives a negative duration, which is
        // within the grace too.
        let within_grace = at.duration_since(self.period.start) < rules.visit_timeout();
        let previous_visitor = self
            .previous
            .as_ref()
            .filter(|_| within_grace)
            .map(|previous| VisitorId::derive(previous, site, ip, user_agent, truncation));
        Identity {
            visitor,
            previous_visitor,
        }
    }
}
