//! The registry of sites shared by every instance, kept in the store.
//!
//! All sites' [`SiteSettings`] live in one JSON document under [`keys::registry`]:
//!
//! ```json
//! {"format": 1, "version": 12, "updated_at": "2026-11-30T17:00:00Z",
//!  "sites": {"caukee": {"id": "caukee", "hostnames": ["caukee.travinh.gov.vn"], …}},
//!  "salt_rotations": {"caukee": "2026-11-30T16:59:00Z"}}
//! ```
//!
//! Writers change it only by read-modify-write over [`Store::compare_and_swap`]
//! ([`crate::cas::read_modify_write`]): a write based on a document another instance has replaced in
//! the meantime fails, is rebuilt from the new document and tried again, so two instances
//! editing at once never lose an update. `version` goes up by one with every change.
//!
//! Each instance serves from its in-memory [`Sites`]. It replaces
//! them from the document after its own changes (at once) and in [`sync`], which a
//! background task runs every [`SYNC_EVERY`]; so every instance converges within that
//! interval. A document that cannot be read (bad JSON, a newer format) is logged and
//! ignored: the instance keeps the last registry it had, and no write replaces the
//! unreadable document, so an operator can inspect and repair it.
//!
//! At start-up the sites of the sites file (and the demo site) are upserted into the
//! document ([`import_at_startup`]): the file wins for the sites it names, and sites
//! created through the admin API survive restarts. Winning is loud, never silent: a
//! stored site the import overwrites is logged at WARN with the settings it loses (and
//! audited), and the admin API warns when it changes a site the file names. When the
//! demo site is off, a stored demo site still holding the built-in settings is removed,
//! so a store that once ran with the defaults does not keep serving it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use footfall::SiteId;
use footfall::clock::Clock;
use footfall::keys;
use footfall::store::{Store, StoreError};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::audit::{self, Action, Actor, AuditEntry};
use crate::cache::CountsCache;
use crate::cas::{CasError, Step, read_modify_write};
use crate::error::AppError;
use crate::salt_cache::SaltCache;
use crate::sites::{DEMO_SITE, Site, SiteSettings, Sites};
use crate::store::AppStore;

/// The document format this version reads and writes. A document of another format is
/// left alone rather than overwritten by an older binary during a rolling upgrade.
pub const FORMAT: u32 = 1;

/// How often each instance re-reads the registry: the longest an edit made on one
/// instance takes to reach the others. One small `GET` per instance every 5 s costs the
/// store nothing worth measuring.
pub const SYNC_EVERY: Duration = Duration::from_secs(5);

/// The most sites the registry holds; it is one document, read whole by every instance.
pub const MAX_SITES: usize = 10_000;

/// The stored registry document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryDocument {
    /// The document format ([`FORMAT`]).
    pub format: u32,
    /// Goes up by one with every change.
    pub version: u64,
    /// When the last change was made.
    #[serde(default)]
    pub updated_at: Option<Timestamp>,
    /// Every site's settings, by id.
    #[serde(default)]
    pub sites: BTreeMap<String, SiteSettings>,
    /// When each site's salt was last rotated by hand, so other instances drop the salt
    /// they cached (a forced rotation replaces the salt of the current period, which
    /// they would otherwise keep using until the period ends).
    #[serde(default)]
    pub salt_rotations: BTreeMap<String, Timestamp>,
}

impl RegistryDocument {
    /// An empty document at version 0.
    pub fn empty() -> Self {
        RegistryDocument {
            format: FORMAT,
            version: 0,
            updated_at: None,
            sites: BTreeMap::new(),
            salt_rotations: BTreeMap::new(),
        }
    }

    /// Parses stored bytes; the error says what is wrong.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let document: RegistryDocument =
            serde_json::from_slice(bytes).map_err(|e| format!("not a registry document: {e}"))?;
        if document.format != FORMAT {
            return Err(format!(
                "registry format {} is not understood by this version (it reads {FORMAT})",
                document.format
            ));
        }
        Ok(document)
    }

    fn to_bytes(&self) -> Vec<u8> {
        // A document of strings, numbers and maps with string keys always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Why the registry could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored document cannot be read; the last good registry stays in use.
    #[error("the stored site registry ({key}) cannot be read: {message}")]
    Unreadable {
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// Other writers kept changing the document.
    #[error("the site registry kept changing under {attempts} attempts; try again")]
    Contended {
        /// How many attempts were made.
        attempts: u32,
    },
    /// The registry holds [`MAX_SITES`] already.
    #[error("the registry holds at most {max} sites")]
    Full {
        /// The limit.
        max: usize,
    },
}

impl From<RegistryError> for AppError {
    fn from(error: RegistryError) -> Self {
        match error {
            RegistryError::Store(error) => AppError::Unavailable(Some(error.into())),
            RegistryError::Unreadable { .. } => AppError::Internal(error.to_string()),
            RegistryError::Contended { .. } | RegistryError::Full { .. } => {
                AppError::Conflict(error.to_string())
            }
        }
    }
}

/// What a [`sync`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncOutcome {
    /// The stored document is the one already loaded.
    Unchanged,
    /// A changed document was loaded.
    Reloaded {
        /// Its version.
        version: u64,
    },
    /// No document is stored; the last registry stays in use.
    Missing,
}

/// This instance's view of the stored registry: what it loaded last, and the sites-file
/// import still to do if the store was unreachable at start-up; with what it reads and
/// changes (the store, the in-memory sites, and the caches a changed site invalidates).
#[derive(Debug)]
pub struct Registry {
    store: Arc<AppStore>,
    clock: Arc<dyn Clock>,
    sites: Arc<Sites>,
    counts: Arc<CountsCache>,
    salts: Arc<SaltCache>,
    /// Held while a document is read and applied, so an older document never replaces
    /// a newer one in memory (see [`apply_written`]).
    loaded: tokio::sync::Mutex<Loaded>,
    /// The version in use, readable without waiting (0: none loaded yet).
    version: AtomicU64,
    /// The sites of the sites file, until they are in the store.
    pending_import: Mutex<Option<Vec<SiteSettings>>>,
    /// The ids the sites file names (a deleted one comes back at the next start-up).
    file_sites: Mutex<BTreeSet<String>>,
}

#[derive(Debug, Default)]
struct Loaded {
    /// The version applied to the in-memory sites.
    version: Option<u64>,
    /// The digest of the stored bytes last looked at, applied or not: unchanged bytes
    /// are neither parsed again nor reported again.
    seen: Option<[u8; 32]>,
    /// The salt rotations of the applied document.
    salt_rotations: BTreeMap<String, Timestamp>,
}

impl Registry {
    /// A registry over `store`, serving its sites in `sites`; a changed or removed site
    /// is forgotten by `counts` and `salts`.
    pub fn new(
        store: Arc<AppStore>,
        clock: Arc<dyn Clock>,
        sites: Arc<Sites>,
        counts: Arc<CountsCache>,
        salts: Arc<SaltCache>,
    ) -> Self {
        Registry {
            store,
            clock,
            sites,
            counts,
            salts,
            loaded: tokio::sync::Mutex::default(),
            version: AtomicU64::new(0),
            pending_import: Mutex::new(None),
            file_sites: Mutex::new(BTreeSet::new()),
        }
    }

    /// The version of the registry in use (0 before one was loaded from the store).
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Relaxed)
    }

    /// True when the sites file names `id`.
    pub fn from_sites_file(&self, id: &str) -> bool {
        lock(&self.file_sites).contains(id)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded values are replaced whole, so a panic elsewhere cannot leave them torn.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Reads the stored registry and, when it changed, replaces the in-memory sites with it
/// (dropping the caches of sites that changed or went away). Runs a pending sites-file
/// import first. Never panics; on any failure the current sites stay in use.
pub async fn sync(registry: &Registry) -> Result<SyncOutcome, RegistryError> {
    let pending = lock(&registry.pending_import).clone();
    if let Some(sites) = pending {
        import(registry, &sites).await?;
        *lock(&registry.pending_import) = None;
    }
    let mut loaded = registry.loaded.lock().await;
    let bytes = registry
        .store
        .get(&keys::registry(), registry.clock.now())
        .await?;
    let Some(bytes) = bytes else {
        if loaded.seen.take().is_some() {
            tracing::warn!(key = %keys::registry(), "the site registry is gone from the store; keeping the sites in use (the next admin change writes them back)");
        }
        return Ok(SyncOutcome::Missing);
    };
    let seen = digest(&bytes);
    if loaded.seen == Some(seen) {
        return Ok(SyncOutcome::Unchanged);
    }
    loaded.seen = Some(seen);
    let document = RegistryDocument::parse(&bytes).map_err(|message| {
        let error = RegistryError::Unreadable {
            key: keys::registry().to_string(),
            message,
        };
        // Logged once per distinct bad document, since `seen` now holds it.
        tracing::error!(error = %error, "keeping the last good site registry");
        error
    })?;
    apply(registry, &mut loaded, &document);
    Ok(SyncOutcome::Reloaded {
        version: document.version,
    })
}

/// Makes a document this instance has just written the one in use, unless a newer one
/// already is (two local edits may finish in either order).
async fn apply_written(registry: &Registry, document: &RegistryDocument, bytes: &[u8]) {
    let mut loaded = registry.loaded.lock().await;
    if loaded.version.is_some_and(|v| v >= document.version) {
        return;
    }
    loaded.seen = Some(digest(bytes));
    apply(registry, &mut loaded, document);
}

/// Replaces the in-memory sites with the document's.
fn apply(registry: &Registry, loaded: &mut Loaded, document: &RegistryDocument) {
    let current = registry.sites.snapshot();
    let mut next = Vec::with_capacity(document.sites.len());
    for (id, settings) in &document.sites {
        let site = if settings.id == *id {
            Site::from_settings(settings.clone(), &format!("sites.{id}")).map_err(|e| e.to_string())
        } else {
            Err(format!("sites.{id}.id: is {:?}", settings.id))
        };
        match site {
            Ok(site) => next.push(site),
            Err(message) => {
                // A site another (newer) instance accepts but this one does not: keep
                // what this instance had for it rather than drop its counting.
                tracing::error!(site = %id, error = %message, "ignoring an invalid site in the stored registry");
                if let Some(old) = SiteId::new(id).ok().and_then(|id| current.get(&id)) {
                    next.push(Site::clone(old));
                }
            }
        }
    }
    let next_ids: BTreeMap<&SiteId, &Site> = next.iter().map(|site| (&site.id, site)).collect();
    for (id, old) in current.iter() {
        if next_ids
            .get(id)
            .is_none_or(|new| new.settings != old.settings)
        {
            // Cached counts carry rendered settings (labels, lines); salts depend on the
            // rotation period.
            registry.counts.forget(id);
            registry.salts.forget(id);
        }
    }
    for (id, at) in &document.salt_rotations {
        if loaded.salt_rotations.get(id) != Some(at)
            && let Ok(id) = SiteId::new(id)
        {
            registry.salts.forget(&id);
        }
    }
    let n_sites = next.len();
    registry.sites.replace_all(next);
    loaded.version = Some(document.version);
    loaded.salt_rotations = document.salt_rotations.clone();
    registry.version.store(document.version, Ordering::Relaxed);
    tracing::info!(
        version = document.version,
        sites = n_sites,
        "site registry loaded"
    );
}

/// What a change function decided.
#[derive(Debug)]
pub enum Edit<T> {
    /// The document was changed; write it.
    Changed(T),
    /// Nothing to write.
    Unchanged(T),
}

/// The result of [`update`].
#[derive(Debug)]
pub struct Updated<T> {
    /// What the change function returned on the attempt that took effect.
    pub value: T,
    /// The registry version after the change (or the current one when unchanged).
    pub version: u64,
    /// True when a new document was written.
    pub changed: bool,
}

/// Changes the stored registry through `change` (a read-modify-write, see
/// [`read_modify_write`]), then makes the result the registry in use here.
///
/// `change` may run several times, each time on the newest document; its errors are
/// returned as they are. When no document is stored but this instance had loaded one,
/// it starts from this instance's sites (so a wiped key is written back rather than
/// replaced by one site).
pub async fn update<T, E: From<RegistryError>>(
    registry: &Registry,
    mut change: impl FnMut(&mut RegistryDocument) -> Result<Edit<T>, E>,
) -> Result<Updated<T>, E> {
    let loaded_version = registry.version();
    let mut seed = RegistryDocument {
        version: loaded_version,
        ..RegistryDocument::empty()
    };
    if loaded_version > 0 {
        seed.sites = registry
            .sites
            .all()
            .iter()
            .map(|site| (site.id.to_string(), site.settings.clone()))
            .collect();
    }
    let now = registry.clock.now();
    type Written = Option<(RegistryDocument, Vec<u8>)>;
    let result = read_modify_write(
        registry.store.as_ref(),
        &keys::registry(),
        now,
        |current| -> Result<Step<(T, u64, Written)>, E> {
            let mut document = match current {
                None => seed.clone(),
                Some(bytes) => RegistryDocument::parse(bytes).map_err(|message| {
                    E::from(RegistryError::Unreadable {
                        key: keys::registry().to_string(),
                        message,
                    })
                })?,
            };
            match change(&mut document)? {
                Edit::Unchanged(value) => Ok(Step::Keep((value, document.version, None))),
                Edit::Changed(value) => {
                    if document.sites.len() > MAX_SITES {
                        return Err(E::from(RegistryError::Full { max: MAX_SITES }));
                    }
                    document.version += 1;
                    document.updated_at = Some(now);
                    let bytes = document.to_bytes();
                    let version = document.version;
                    Ok(Step::Write(
                        bytes.clone(),
                        (value, version, Some((document, bytes))),
                    ))
                }
            }
        },
    )
    .await;
    let (value, version, written) = match result {
        Ok(done) => done,
        Err(CasError::Rejected(error)) => return Err(error),
        Err(CasError::Store(error)) => return Err(E::from(RegistryError::Store(error))),
        Err(CasError::Contended { attempts }) => {
            return Err(E::from(RegistryError::Contended { attempts }));
        }
    };
    let changed = written.is_some();
    if let Some((document, bytes)) = written {
        apply_written(registry, &document, &bytes).await;
    }
    Ok(Updated {
        value,
        version,
        changed,
    })
}

/// Registers the sites-file sites at start-up: upserts them into the stored registry
/// (audited when anything changed), then loads the registry. Never fails: when the store
/// cannot be reached the given sites are served and the import is retried by every
/// [`sync`] until it succeeds.
pub async fn import_at_startup(registry: &Registry, sites: Vec<SiteSettings>) {
    *lock(&registry.file_sites) = sites.iter().map(|s| s.id.clone()).collect();
    *lock(&registry.pending_import) = Some(sites);
    // An unreachable store must not hold the listeners back: the sync task retries.
    match tokio::time::timeout(SYNC_EVERY, sync(registry)).await {
        Ok(Ok(outcome)) => {
            tracing::info!(
                ?outcome,
                sites = registry.sites.len(),
                version = registry.version(),
                "site registry ready"
            );
        }
        Ok(Err(error)) => {
            tracing::error!(error = %error, sites = registry.sites.len(), "site registry not loaded from the store; serving the configured sites and retrying in the background");
        }
        Err(_) => {
            tracing::error!(
                sites = registry.sites.len(),
                "site registry not loaded: the store did not answer in time; serving the configured sites and retrying in the background"
            );
        }
    }
}

/// What a start-up import changed in the stored registry.
#[derive(Debug, Default)]
struct Imported {
    /// Sites the store did not have.
    added: Vec<String>,
    /// Sites whose stored settings differed from the file's and were replaced by them,
    /// with the settings that changed (`{"setting": {"old": …, "new": …}}`).
    overwritten: Vec<(String, serde_json::Value)>,
    /// The built-in demo site, removed because it is off.
    removed: Vec<String>,
}

/// Upserts `sites` into the stored registry; the file wins for the sites it names. When
/// `sites` lacks the demo site, a stored demo site with the built-in settings goes.
async fn import(registry: &Registry, sites: &[SiteSettings]) -> Result<(), RegistryError> {
    let demo_off = !sites.iter().any(|settings| settings.id == DEMO_SITE);
    let updated = update(registry, |document| -> Result<_, RegistryError> {
        let mut imported = Imported::default();
        for settings in sites {
            match document.sites.insert(settings.id.clone(), settings.clone()) {
                None => imported.added.push(settings.id.clone()),
                Some(old) if old != *settings => imported
                    .overwritten
                    .push((settings.id.clone(), settings_diff(&old, settings))),
                Some(_) => {}
            }
        }
        if demo_off
            && document
                .sites
                .get(DEMO_SITE)
                .is_some_and(|stored| *stored == SiteSettings::demo())
        {
            document.sites.remove(DEMO_SITE);
            document.salt_rotations.remove(DEMO_SITE);
            imported.removed.push(DEMO_SITE.to_owned());
        }
        let nothing = imported.added.is_empty()
            && imported.overwritten.is_empty()
            && imported.removed.is_empty();
        // A fresh store gets a document even with no site, so every instance sees one.
        if nothing && document.version > 0 {
            Ok(Edit::Unchanged(imported))
        } else {
            Ok(Edit::Changed(imported))
        }
    })
    .await?;
    if updated.changed {
        let imported = updated.value;
        for (id, changes) in &imported.overwritten {
            let names: Vec<&str> = changes
                .as_object()
                .map(|changes| changes.keys().map(String::as_str).collect())
                .unwrap_or_default();
            tracing::warn!(
                site = %id,
                settings = ?names,
                "the sites file replaced settings of {id} that differed in the stored registry (an admin API change is undone: make it in the sites file to keep it)"
            );
        }
        if !imported.removed.is_empty() {
            tracing::info!(
                site = DEMO_SITE,
                "the demo site is off (a sites file, a store other than ./footfall-data, a trust key or --no-demo): removed from the registry"
            );
        }
        let updated_ids: Vec<&str> = imported
            .overwritten
            .iter()
            .map(|(id, _)| id.as_str())
            .collect();
        let overwritten: serde_json::Map<String, serde_json::Value> = imported
            .overwritten
            .iter()
            .map(|(id, changes)| (id.clone(), changes.clone()))
            .collect();
        let mut summary = serde_json::json!({
            "added": imported.added,
            "updated": updated_ids,
            "overwritten": overwritten,
            "registry_version": updated.version,
        });
        if !imported.removed.is_empty() {
            summary["removed"] = serde_json::json!(imported.removed);
        }
        audit::record(
            registry.store.as_ref(),
            registry.clock.now(),
            vec![AuditEntry::new(
                registry.clock.now(),
                Action::RegistryImport,
                None,
                &Actor::Startup,
                summary,
            )],
        )
        .await;
    }
    Ok(())
}

/// The settings that differ, as `{"setting": {"old": …, "new": …}}` (top-level
/// settings; `footer` and `trust` each as a whole).
pub fn settings_diff(old: &SiteSettings, new: &SiteSettings) -> serde_json::Value {
    use serde_json::Value;
    let (Ok(Value::Object(old)), Ok(Value::Object(new))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return Value::Null;
    };
    let mut changes = serde_json::Map::new();
    for (name, new_value) in &new {
        let old_value = old.get(name).unwrap_or(&Value::Null);
        if old_value != new_value {
            changes.insert(
                name.clone(),
                serde_json::json!({ "old": old_value, "new": new_value }),
            );
        }
    }
    // A setting only the old settings have (an optional one, removed).
    for (name, old_value) in &old {
        if !new.contains_key(name) {
            changes.insert(
                name.clone(),
                serde_json::json!({ "old": old_value, "new": Value::Null }),
            );
        }
    }
    Value::Object(changes)
}

/// Runs [`sync`] every `every` until shutdown. A failed sync is logged and the last
/// registry kept; the next tick tries again (no tighter loop than `every`).
pub fn spawn_sync(
    registry: &Arc<Registry>,
    every: Duration,
    mut stop: watch::Receiver<Option<tokio::time::Instant>>,
) -> tokio::task::JoinHandle<()> {
    let registry = Arc::clone(registry);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate and start-up has just synced.
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(Option::is_some) => return,
            }
            // A hung store must not stall the loop past the next tick.
            match tokio::time::timeout(every, sync(&registry)).await {
                Ok(Ok(outcome)) => tracing::debug!(?outcome, "site registry synced"),
                // Unreadable documents were logged (once) where they were found.
                Ok(Err(RegistryError::Unreadable { .. })) => {}
                Ok(Err(error)) => tracing::warn!(error = %error, "site registry sync failed"),
                Err(_) => tracing::warn!("site registry sync timed out"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use footfall::store::{
        ApplyReport, Entry, MemoryStore, Read, ScanCursor, Store, StoreError, WriteBatch,
    };

    use super::*;
    use footfall::keys::Key;

    use crate::cas::{MAX_CAS_ATTEMPTS, read_modify_write_pausing};

    /// A store that lets other tasks run between a read and the write that depends on it
    /// (as a network round trip does), or that always loses the race, and counts the
    /// compare-and-swaps that failed.
    #[derive(Debug, Default)]
    struct Racy {
        inner: MemoryStore,
        /// Another writer changes the key before every compare-and-swap.
        always_lose: bool,
        cas_calls: AtomicU32,
        cas_lost: AtomicU32,
    }

    impl Store for Racy {
        async fn apply(&self, batch: &WriteBatch) -> Result<ApplyReport, StoreError> {
            self.inner.apply(batch).await
        }
        async fn read(&self, reads: &[Read], now: Timestamp) -> Result<Vec<u64>, StoreError> {
            self.inner.read(reads, now).await
        }
        async fn get(&self, key: &Key, now: Timestamp) -> Result<Option<Vec<u8>>, StoreError> {
            let value = self.inner.get(key, now).await;
            tokio::task::yield_now().await;
            value
        }
        async fn set(
            &self,
            key: &Key,
            value: &[u8],
            expire_at: Option<Timestamp>,
        ) -> Result<(), StoreError> {
            self.inner.set(key, value, expire_at).await
        }
        async fn set_if_absent(
            &self,
            key: &Key,
            value: &[u8],
            expire_at: Option<Timestamp>,
            now: Timestamp,
        ) -> Result<Vec<u8>, StoreError> {
            self.inner.set_if_absent(key, value, expire_at, now).await
        }
        async fn compare_and_swap(
            &self,
            key: &Key,
            expected: Option<&[u8]>,
            new: Option<&[u8]>,
            now: Timestamp,
        ) -> Result<bool, StoreError> {
            let calls = self.cas_calls.fetch_add(1, Ordering::SeqCst);
            if self.always_lose {
                let interloper = format!("{{\"interloper\": {calls}}}");
                self.inner.set(key, interloper.as_bytes(), None).await?;
            }
            let swapped = self.inner.compare_and_swap(key, expected, new, now).await?;
            if !swapped {
                self.cas_lost.fetch_add(1, Ordering::SeqCst);
            }
            Ok(swapped)
        }
        async fn delete(&self, keys: &[Key]) -> Result<(), StoreError> {
            self.inner.delete(keys).await
        }
        async fn scan(
            &self,
            cursor: &ScanCursor,
            limit: usize,
            now: Timestamp,
        ) -> Result<(Vec<Entry>, Option<ScanCursor>), StoreError> {
            self.inner.scan(cursor, limit, now).await
        }
        async fn restore(&self, entries: &[Entry]) -> Result<(), StoreError> {
            self.inner.restore(entries).await
        }
        async fn ping(&self) -> Result<(), StoreError> {
            self.inner.ping().await
        }
    }

    fn now() -> Timestamp {
        "2026-11-30T17:00:00Z".parse().unwrap()
    }

    /// Adds `site` to the registry document in `store`.
    async fn add_site(store: &Racy, site: &str) -> Result<u64, CasError<String>> {
        read_modify_write_pausing(store, &keys::registry(), now(), no_pause, |current| {
            let mut document = match current {
                None => RegistryDocument::empty(),
                Some(bytes) => RegistryDocument::parse(bytes)?,
            };
            let settings = SiteSettings::new(site, &[&format!("{site}.vn")]);
            document.sites.insert(site.to_owned(), settings);
            document.version += 1;
            Ok(Step::Write(document.to_bytes(), document.version))
        })
        .await
    }

    #[tokio::test]
    async fn interleaved_read_modify_writes_lose_nothing() {
        let store = Racy::default();
        let ids: Vec<String> = (0..8).map(|n| format!("site-{n}")).collect();
        // All start from the same read (each yields after reading), so all but one lose
        // their first compare-and-swap and must start again from the winner's document.
        let results = futures_join_all(ids.iter().map(|id| add_site(&store, id))).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let stored = store
            .inner
            .get(&keys::registry(), now())
            .await
            .unwrap()
            .unwrap();
        let document = RegistryDocument::parse(&stored).unwrap();
        assert_eq!(document.sites.len(), 8);
        assert_eq!(document.version, 8);
        assert!(
            store.cas_lost.load(Ordering::SeqCst) >= 7,
            "the test must actually race: {} lost",
            store.cas_lost.load(Ordering::SeqCst)
        );
    }

    fn no_pause(_attempt: u32) -> Duration {
        Duration::ZERO
    }

    #[tokio::test]
    async fn a_read_modify_write_that_always_loses_gives_up() {
        let store = Racy {
            always_lose: true,
            ..Racy::default()
        };
        let mut calls_to_modify = 0;
        let result = read_modify_write_pausing(&store, &keys::registry(), now(), no_pause, |_| {
            calls_to_modify += 1;
            Ok::<_, ()>(Step::Write(b"{}".to_vec(), ()))
        })
        .await;
        assert!(
            matches!(result, Err(CasError::Contended { attempts }) if attempts == MAX_CAS_ATTEMPTS),
            "{result:?}"
        );
        assert_eq!(calls_to_modify, MAX_CAS_ATTEMPTS);
        assert_eq!(store.cas_calls.load(Ordering::SeqCst), MAX_CAS_ATTEMPTS);
    }

    #[tokio::test]
    async fn refusals_and_keeps_write_nothing() {
        let store = Racy::default();
        store
            .inner
            .set(&keys::registry(), b"{oops", None)
            .await
            .unwrap();
        let result = add_site(&store, "a").await;
        assert!(
            matches!(result, Err(CasError::Rejected(ref m)) if m.contains("not a registry document")),
            "{result:?}"
        );
        let kept = read_modify_write(&store, &keys::registry(), now(), |_| {
            Ok::<_, ()>(Step::Keep(7))
        })
        .await;
        assert_eq!(kept.unwrap(), 7);
        assert_eq!(store.cas_calls.load(Ordering::SeqCst), 0);
        assert_eq!(
            store
                .inner
                .get(&keys::registry(), now())
                .await
                .unwrap()
                .as_deref(),
            Some(&b"{oops"[..])
        );
    }

    #[test]
    fn documents_round_trip_and_unknown_formats_are_refused() {
        let mut document = RegistryDocument::empty();
        document.version = 3;
        document
            .sites
            .insert("demo".to_owned(), SiteSettings::demo());
        document.salt_rotations.insert("demo".to_owned(), now());
        assert_eq!(
            RegistryDocument::parse(&document.to_bytes()).unwrap(),
            document
        );
        document.format = FORMAT + 1;
        let error = RegistryDocument::parse(&document.to_bytes()).unwrap_err();
        assert!(error.contains("format 2"), "{error}");
        assert!(RegistryDocument::parse(br#"{"format":1,"version":-1}"#).is_err());
        // Old documents without the optional fields still read.
        let minimal = RegistryDocument::parse(br#"{"format":1,"version":5}"#).unwrap();
        assert_eq!((minimal.version, minimal.sites.len()), (5, 0));
    }

    /// Polls all futures in one task, so they interleave at their await points.
    async fn futures_join_all<F: std::future::Future>(
        futures: impl IntoIterator<Item = F>,
    ) -> Vec<F::Output> {
        let mut set = Vec::new();
        for future in futures {
            set.push(Box::pin(future));
        }
        let mut outputs: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
        std::future::poll_fn(|cx| {
            let mut pending = false;
            for (future, output) in set.iter_mut().zip(outputs.iter_mut()) {
                if output.is_none() {
                    match future.as_mut().poll(cx) {
                        std::task::Poll::Ready(value) => *output = Some(value),
                        std::task::Poll::Pending => pending = true,
                    }
                }
            }
            if pending {
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        })
        .await;
        outputs.into_iter().flatten().collect()
    }
}
