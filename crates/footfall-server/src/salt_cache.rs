//! Salts held in memory per site, so deriving a visitor id needs no store access except
//! once per site and rotation period. A background task loads the next period's salts
//! shortly before each rotation, so requests at midnight do not wait either.
//!
//! The store holds salts only sealed with the deployment's salt secrets
//! ([`SaltSecrets`]); [`resolve_secrets`] decides where those come from when no
//! `--salt-secret-file` or `FOOTFALL_SALT_SECRET` is configured.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use foldhash::HashMap;
use footfall::SiteId;
use footfall::salts::{Identity, SaltSecrets, SiteSalts};
use jiff::{SignedDuration, Timestamp};

use crate::sites::Site;
use crate::store::AppStore;

/// How early the next period's salt is loaded.
const PRELOAD_AHEAD: SignedDuration = SignedDuration::from_secs(120);

/// The salts cache.
#[derive(Debug)]
pub struct SaltCache {
    salts: Mutex<HashMap<SiteId, Vec<Arc<SiteSalts>>>>,
    /// One lock per site whose salts are being loaded: concurrent misses wait for the
    /// one load in flight instead of each asking the store (single flight).
    loading: Mutex<HashMap<SiteId, Arc<tokio::sync::Mutex<()>>>>,
    store: Arc<AppStore>,
    secrets: SaltSecrets,
    load_timeout: Duration,
}

impl SaltCache {
    /// An empty cache over `store`, whose salts are sealed with `secrets`.
    pub fn new(store: Arc<AppStore>, secrets: SaltSecrets, load_timeout: Duration) -> Self {
        SaltCache {
            salts: Mutex::new(HashMap::default()),
            loading: Mutex::new(HashMap::default()),
            store,
            secrets,
            load_timeout,
        }
    }

    /// The secrets salts are sealed with.
    pub fn secrets(&self) -> &SaltSecrets {
        &self.secrets
    }

    /// Replaces a site's current salt in the store at once and forgets the cached one
    /// ([`SaltSecrets::rotate_now`]).
    pub async fn rotate_now(&self, site: &Site, now: Timestamp) -> Result<(), footfall::Error> {
        self.secrets
            .rotate_now(self.store.as_ref(), &site.id, &site.rules, now)
            .await?;
        self.forget(&site.id);
        Ok(())
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

    /// Loads (creating if needed) the salts of the period containing `at`, once for all
    /// callers that need them at the same time: the first asks the store, the others
    /// wait for it and take what it cached (or try themselves if it failed).
    async fn load(
        &self,
        site: &Site,
        at: Timestamp,
        now: Timestamp,
    ) -> Result<Arc<SiteSalts>, footfall::Error> {
        let flight = {
            let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(loading.entry(site.id.clone()).or_default())
        };
        let _turn = flight.lock().await;
        if let Some(salts) = self.cached(&site.id, at) {
            return Ok(salts);
        }
        let result = self.load_now(site, at, now).await;
        // The last one out removes the site's lock (the map holds one `Arc`, this
        // caller another), so the map never outgrows the sites being loaded.
        let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
        if loading
            .get(&site.id)
            .is_some_and(|lock| Arc::strong_count(lock) <= 2)
        {
            loading.remove(&site.id);
        }
        result
    }

    async fn load_now(
        &self,
        site: &Site,
        at: Timestamp,
        now: Timestamp,
    ) -> Result<Arc<SiteSalts>, footfall::Error> {
        let loaded = tokio::time::timeout(
            self.load_timeout,
            self.secrets
                .load(self.store.as_ref(), &site.id, &site.rules, at),
        )
        .await
        .map_err(|_| {
            footfall::Error::Store(footfall::store::StoreError::unavailable(
                "salt load timed out",
                false,
            ))
        })??;
        if loaded.replaced_plain_salt() {
            tracing::info!(
                site = %site.id,
                period = %loaded.period().id,
                "replaced a salt an earlier version stored unsealed; this period's visitors count once more"
            );
        }
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

    /// Loads the salts a hit would need and the cache lacks, off the request path: the
    /// current period's (a site just started or added, or after the store was down) and
    /// the next period's for sites whose period ends within two minutes of `now`.
    pub async fn preload(&self, sites: &[Arc<Site>], now: Timestamp) {
        for site in sites {
            if self.cached(&site.id, now).is_none()
                && let Err(error) = self.load(site, now, now).await
            {
                tracing::warn!(site = %site.id, error = %error, "salt preload failed");
            }
            let ahead = now.saturating_add(PRELOAD_AHEAD).unwrap_or(now);
            if self.cached(&site.id, ahead).is_none()
                && let Err(error) = self.load(site, ahead, now).await
            {
                tracing::warn!(site = %site.id, error = %error, "salt preload failed");
            }
        }
    }
}

/// The salt secrets given by `--salt-secret-file` or `FOOTFALL_SALT_SECRET`.
#[derive(Clone, Debug)]
pub struct ConfiguredSecrets {
    /// The secrets.
    pub secrets: SaltSecrets,
    /// The setting they came from, for the start-up log.
    pub origin: String,
}

/// The salt secrets a service runs with, and where they came from.
#[derive(Clone, Debug)]
pub struct ResolvedSecrets {
    /// The secrets.
    pub secrets: SaltSecrets,
    /// Where they came from, for the start-up log.
    pub origin: String,
}

/// The file, in the embedded store's directory, that keeps the salt secret made when none
/// is configured. Not inside the database file: a copy of `footfall.redb` alone (a backup,
/// `footfall migrate`) then cannot link a visitor id to an address.
pub const EMBEDDED_SECRET_FILE: &str = "salt-secret";

/// Why a Redis store needs a configured secret; names the settings.
pub const REDIS_NEEDS_SECRET: &str = "a Redis store needs a salt secret shared by every instance: set \
     --salt-secret-file / FOOTFALL_SALT_SECRET_FILE (a file holding `openssl rand -hex 32`) \
     or FOOTFALL_SALT_SECRET; see \"Salt secrets\" in deploy/README.md";

/// The secrets to run with: the configured ones; else, for the embedded store, the one
/// kept in [`EMBEDDED_SECRET_FILE`] beside its database (made on first start); for the
/// memory store, one made for this process (its salts die with it). A Redis store without
/// a configured secret is refused: instances sharing it must share the secret, and a
/// secret made here would live beside nothing the other instances can read.
pub fn resolve_secrets(
    configured: Option<&ConfiguredSecrets>,
    store: &AppStore,
) -> Result<ResolvedSecrets, String> {
    if let Some(configured) = configured {
        return Ok(ResolvedSecrets {
            secrets: configured.secrets.clone(),
            origin: configured.origin.clone(),
        });
    }
    match store {
        footfall::store::AnyStore::Memory(_) => {
            let (secrets, _) = SaltSecrets::generate().map_err(|e| e.to_string())?;
            Ok(ResolvedSecrets {
                secrets,
                origin: "made for this process (memory store)".to_owned(),
            })
        }
        footfall::store::AnyStore::Embedded(embedded) => {
            let dir = embedded.path().parent().unwrap_or(Path::new("."));
            let (secrets, path, created) = kept_secret(dir)?;
            let origin = if created {
                format!("made now and kept in {}", path.display())
            } else {
                format!("kept in {}", path.display())
            };
            Ok(ResolvedSecrets { secrets, origin })
        }
        // Redis, and any store shared by several instances.
        _ => Err(REDIS_NEEDS_SECRET.to_owned()),
    }
}

/// Reads the secret kept in `dir`, making it first if absent: written whole to a
/// temporary file (mode 0600) and linked into place only if no file is there yet, so a
/// reader never sees half a secret and two processes starting at once keep one.
fn kept_secret(dir: &Path) -> Result<(SaltSecrets, PathBuf, bool), String> {
    let path = dir.join(EMBEDDED_SECRET_FILE);
    let read = |path: &Path| -> Result<Option<SaltSecrets>, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => SaltSecrets::parse(&text)
                .map(Some)
                .map_err(|e| format!("{}: {e}", path.display())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(format!("cannot read {}: {error}", path.display())),
        }
    };
    if let Some(secrets) = read(&path)? {
        return Ok((secrets, path, false));
    }
    let (secrets, text) = SaltSecrets::generate().map_err(|e| e.to_string())?;
    let cannot = |error: std::io::Error| format!("cannot write {}: {error}", path.display());
    // tempfile creates the file with mode 0600 on Unix.
    let mut file = tempfile::Builder::new()
        .prefix(".salt-secret.")
        .tempfile_in(dir)
        .map_err(cannot)?;
    write!(
        file,
        "# footfall: the secret this store's visitor-id salts are sealed with.\n\
         # Keep it private, and out of any copy of footfall.redb that leaves this host.\n\
         {text}\n"
    )
    .and_then(|()| file.as_file().sync_all())
    .map_err(cannot)?;
    match file.persist_noclobber(&path) {
        Ok(_) => {
            // The directory entry too, so a power loss cannot keep salts sealed with a
            // secret whose file vanished.
            if let Ok(directory) = std::fs::File::open(dir) {
                let _ = directory.sync_all();
            }
            Ok((secrets, path, true))
        }
        Err(error) if error.error.kind() == std::io::ErrorKind::AlreadyExists => {
            // Another process made it first: use its secret.
            let secrets = read(&path)?.ok_or_else(|| format!("{} vanished", path.display()))?;
            Ok((secrets, path, false))
        }
        Err(error) => Err(cannot(error.error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn concurrent_misses_share_one_load_and_preload_fills_the_cache() {
        let store = Arc::new(AppStore::Memory(footfall::store::MemoryStore::new()));
        let (secrets, _) = SaltSecrets::generate().unwrap();
        let cache = Arc::new(SaltCache::new(store, secrets, Duration::from_secs(5)));
        let site = Arc::new(
            Site::from_settings(crate::sites::SiteSettings::demo(), "").expect("the demo site"),
        );
        let now: Timestamp = "2026-11-30T03:00:00Z".parse().unwrap();
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        let hits: Vec<_> = (0..32)
            .map(|_| {
                let (cache, site) = (Arc::clone(&cache), Arc::clone(&site));
                tokio::spawn(async move { cache.identify(&site, ip, "UA", now).await })
            })
            .collect();
        let mut ids = Vec::new();
        for hit in hits {
            ids.push(hit.await.unwrap().expect("a salt").visitor);
        }
        assert!(ids.windows(2).all(|w| w[0] == w[1]), "one salt for all");
        assert!(
            cache.loading.lock().unwrap().is_empty(),
            "no lock outlives its load"
        );
        // The upkeep's preload loads the current period of a site not yet cached.
        cache.forget(&site.id);
        assert!(cache.cached(&site.id, now).is_none());
        cache.preload(std::slice::from_ref(&site), now).await;
        assert!(cache.cached(&site.id, now).is_some());
    }

    #[test]
    fn the_embedded_store_keeps_one_private_secret() {
        let dir = tempfile::tempdir().unwrap();
        let (made, path, created) = kept_secret(dir.path()).unwrap();
        assert!(created);
        assert_eq!(path, dir.path().join(EMBEDDED_SECRET_FILE));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        }
        // Kept: the next start reads the same secret.
        let (kept, _, created) = kept_secret(dir.path()).unwrap();
        assert!(!created);
        assert_eq!(kept.key_id(), made.key_id());
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [EMBEDDED_SECRET_FILE]);
        // A damaged file stops the start rather than being replaced (which would make
        // every stored salt unreadable).
        std::fs::write(&path, "short\n").unwrap();
        let error = kept_secret(dir.path()).unwrap_err();
        assert!(error.contains(EMBEDDED_SECRET_FILE), "{error}");
    }

    #[test]
    fn processes_starting_at_once_keep_one_secret() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<String> = std::thread::scope(|scope| {
            let starts: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| kept_secret(dir.path()).unwrap().0.key_id()))
                .collect();
            starts.into_iter().map(|s| s.join().unwrap()).collect()
        });
        assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");
    }

    #[test]
    fn a_redis_store_needs_a_configured_secret_and_memory_gets_its_own() {
        let memory = AppStore::Memory(footfall::store::MemoryStore::new());
        let first = resolve_secrets(None, &memory).unwrap();
        let second = resolve_secrets(None, &memory).unwrap();
        assert_ne!(first.secrets.key_id(), second.secrets.key_id());
        let configured = ConfiguredSecrets {
            secrets: SaltSecrets::parse(&"x".repeat(40)).unwrap(),
            origin: "FOOTFALL_SALT_SECRET".to_owned(),
        };
        let resolved = resolve_secrets(Some(&configured), &memory).unwrap();
        assert_eq!(resolved.secrets.key_id(), configured.secrets.key_id());
        assert!(REDIS_NEEDS_SECRET.contains("FOOTFALL_SALT_SECRET_FILE"));
    }
}
