//! Salts held in memory per site, so deriving a visitor id needs no store access except
//! once per site and rotation period. A background task loads the next period's salts
//! shortly before each rotation, so requests at midnight do not wait either.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use footfall::SiteId;
use footfall::salts::{self, Identity, SiteSalts};
use jiff::{SignedDuration, Timestamp};

use crate::sites::Site;
use crate::state::AppStore;

/// How early the next period's salt is loaded.
const PRELOAD_AHEAD: SignedDuration = SignedDuration::from_secs(120);

/// The salts cache.
#[derive(Debug)]
pub struct SaltCache {
    salts: Mutex<HashMap<SiteId, Vec<Arc<SiteSalts>>>>,
    store: Arc<AppStore>,
    load_timeout: Duration,
}

impl SaltCache {
    /// An empty cache over `store`.
    pub fn new(store: Arc<AppStore>, load_timeout: Duration) -> Self {
        SaltCache {
            salts: Mutex::new(HashMap::new()),
            store,
            load_timeout,
        }
    }

    fn cached(&self, id: &SiteId, at: Timestamp) -> Option<Arc<SiteSalts>> {
        let salts = self.salts.lock().unwrap_or_else(|p| p.into_inner());
        salts.get(id)?.iter().find(|s| s.covers(at)).cloned()
    }

    fn insert(&self, id: &SiteId, loaded: Arc<SiteSalts>, now: Timestamp) {
        let mut salts = self.salts.lock().unwrap_or_else(|p| p.into_inner());
        let entry = salts.entry(id.clone()).or_default();
        // Keep periods not yet over, and at most two (the current and the next).
        entry.retain(|s| s.period().end > now && s.period().id != loaded.period().id);
        entry.push(loaded);
        entry.sort_by_key(|s| s.period().start);
        if entry.len() > 2 {
            entry.remove(0);
        }
    }

    /// Loads (creating if needed) the salts of the period containing `at`.
    async fn load(
        &self,
        site: &Site,
        at: Timestamp,
        now: Timestamp,
    ) -> Result<Arc<SiteSalts>, footfall::Error> {
        let loaded = tokio::time::timeout(
            self.load_timeout,
            salts::load(self.store.as_ref(), &site.id, &site.rules, at),
        )
        .await
        .map_err(|_| {
            footfall::Error::Store(footfall::store::StoreError::unavailable(
                "salt load timed out",
                false,
            ))
        })??;
        let loaded = Arc::new(loaded);
        self.insert(&site.id, Arc::clone(&loaded), now);
        Ok(loaded)
    }

    /// Derives the ids of a hit at `at`; `None` when no salt can be had from the store.
    pub async fn identify(
        &self,
        site: &Site,
        ip: IpAddr,
        user_agent: &str,
        at: Timestamp,
    ) -> Option<Identity> {
        let salts = match self.cached(&site.id, at) {
            Some(salts) => salts,
            None => match self.load(site, at, at).await {
                Ok(salts) => salts,
                Err(error) => {
                    tracing::warn!(site = %site.id, error = %error, "no salt available");
                    return None;
                }
            },
        };
        Some(salts.identify(&site.rules, ip, user_agent, at))
    }

    /// The start of the oldest period any cached salt is current for: how long the
    /// oldest salt in use has been in use.
    pub fn oldest_period_start(&self) -> Option<Timestamp> {
        let salts = self.salts.lock().unwrap_or_else(|p| p.into_inner());
        salts
            .values()
            .filter_map(|periods| periods.first())
            .map(|s| s.period().start)
            .min()
    }

    /// Drops every cached salt of a site (after a forced rotation or deletion).
    pub fn forget(&self, id: &SiteId) {
        self.salts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Loads the next period's salts for sites whose period ends within
    /// two minutes of `now`.
    pub async fn preload(&self, sites: &[Arc<Site>], now: Timestamp) {
        for site in sites {
            let ahead = now.saturating_add(PRELOAD_AHEAD).unwrap_or(now);
            if self.cached(&site.id, ahead).is_none()
                && let Err(error) = self.load(site, ahead, now).await
            {
                tracing::warn!(site = %site.id, error = %error, "salt preload failed");
            }
        }
    }
}
