//! [`AnyStore`]: the backend chosen at startup, behind one concrete type.
//!
//! Handlers and the migration tool take `AnyStore` and stay non-generic; each call
//! delegates with a `match` (ripgrep's `PatternMatcher` does the same), so there is no
//! boxing and no `async-trait`.

use jiff::Timestamp;

use super::{
    ApplyReport, Entry, MemoryStore, Read, RedisTls, ScanCursor, Store, StoreError, StoreOptions,
    WriteBatch,
};
use crate::keys::Key;

#[cfg(feature = "embedded")]
use super::EmbeddedStore;
#[cfg(feature = "redis")]
use super::RedisStore;

/// One of the store backends, chosen by [`AnyStore::open`].
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyStore {
    /// Process memory ([`MemoryStore`]); `memory:`.
    Memory(MemoryStore),
    /// One local redb file ([`EmbeddedStore`]); a path or `file:PATH`.
    #[cfg(feature = "embedded")]
    Embedded(EmbeddedStore),
    /// Redis or Redis Cluster ([`RedisStore`]); `redis://…`, `redis+cluster://…`, and
    /// over TLS `rediss://…`, `rediss+cluster://…`.
    #[cfg(feature = "redis")]
    Redis(RedisStore),
}

/// Calls the same method on whichever backend `self` holds.
macro_rules! delegate {
    ($self:expr, $store:ident => $call:expr) => {
        match $self {
            AnyStore::Memory($store) => $call,
            #[cfg(feature = "embedded")]
            AnyStore::Embedded($store) => $call,
            #[cfg(feature = "redis")]
            AnyStore::Redis($store) => $call,
        }
    };
}

impl AnyStore {
    /// Opens the store named by `url_or_path`:
    ///
    /// - `memory:` — a fresh [`MemoryStore`] (nothing survives the process);
    /// - `file:PATH`, `file://PATH` or a plain filesystem path — an `EmbeddedStore` in
    ///   the directory `PATH` (needs the `embedded` feature);
    /// - `redis://`, `redis+cluster://`, and over TLS `rediss://`, `rediss+cluster://` —
    ///   Redis (needs the `redis` feature).
    ///
    /// Any other `scheme:` prefix is a [`StoreError::Config`] naming the scheme. A plain
    /// path containing a colon must be written as `file:PATH`.
    ///
    /// Opening an embedded store is synchronous (it may recover the file after a crash):
    /// call this at startup or in `spawn_blocking`. Redis URLs need a connection: use
    /// [`AnyStore::connect`], which accepts every form.
    pub fn open(url_or_path: &str) -> Result<AnyStore, StoreError> {
        if url_or_path.trim().is_empty() {
            return Err(StoreError::Config(
                "empty store location; expected memory:, file:PATH, a path or a redis:// URL"
                    .to_owned(),
            ));
        }
        match split_scheme(url_or_path) {
            Some(("memory", _)) => Ok(AnyStore::Memory(MemoryStore::new())),
            Some(("file", rest)) => {
                // `file:///var/lib/x` and `file:/var/lib/x` both name /var/lib/x.
                let path = rest.strip_prefix("//").unwrap_or(rest);
                open_embedded(path)
            }
            Some((scheme, _)) if is_redis(scheme) => Err(StoreError::Config(format!(
                "{url_or_path:?} is a Redis URL: connect with AnyStore::connect"
            ))),
            Some((scheme, _)) => Err(StoreError::Config(format!(
                "unknown store scheme `{scheme}:` in {url_or_path:?}; expected memory:, \
                 file:PATH or a filesystem path (or a Redis URL in builds with Redis)"
            ))),
            None => open_embedded(url_or_path),
        }
    }

    /// Opens any store named by `url_or_path`, connecting to Redis for Redis URLs (the
    /// forms of [`AnyStore::open`], Redis URLs included). Embedded stores are opened on
    /// the blocking pool when called inside a Tokio runtime. The same as
    /// [`connect_with`](Self::connect_with) and `StoreOptions::default()`: a `rediss://`
    /// server is verified against the system's trust store.
    pub async fn connect(url_or_path: &str) -> Result<AnyStore, StoreError> {
        Self::connect_with(url_or_path, &StoreOptions::default()).await
    }

    /// [`connect`](Self::connect) with options: certificates for Redis over TLS (a
    /// private CA, a client certificate). Options that the store would not use are a
    /// [`StoreError::Config`] rather than ignored, e.g. TLS certificates with `redis://`
    /// or an embedded store.
    ///
    /// ```no_run
    /// use footfall::store::{AnyStore, RedisTls, StoreOptions};
    ///
    /// # async fn example() -> Result<(), footfall::store::StoreError> {
    /// let options = StoreOptions {
    ///     redis_tls: RedisTls {
    ///         ca_cert: Some("/etc/footfall/redis-ca.pem".into()),
    ///         ..RedisTls::default()
    ///     },
    /// };
    /// let _store = AnyStore::connect_with("rediss://redis.internal:6380/0", &options).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect_with(
        url_or_path: &str,
        options: &StoreOptions,
    ) -> Result<AnyStore, StoreError> {
        let StoreOptions { redis_tls } = options;
        match split_scheme(url_or_path) {
            #[cfg(feature = "redis")]
            Some((scheme, _)) if is_redis(scheme) => {
                RedisStore::connect_with(url_or_path, redis_tls)
                    .await
                    .map(AnyStore::Redis)
            }
            #[cfg(not(feature = "redis"))]
            Some((scheme, _)) if is_redis(scheme) => Err(StoreError::Config(format!(
                "{url_or_path:?} is a Redis URL, but this build lacks the `redis` feature"
            ))),
            _ if !redis_tls.is_empty() => Err(RedisTls::unused(url_or_path)),
            _ => open_blocking(url_or_path.to_owned()).await,
        }
    }

    /// Warnings about the backend's configuration to show an operator at start-up (an
    /// evicting Redis, one without persistence).
    pub fn warnings(&self) -> Vec<String> {
        match self {
            #[cfg(feature = "redis")]
            AnyStore::Redis(store) => store.server_warnings().to_vec(),
            _ => Vec::new(),
        }
    }

    /// A short name of the backend, for logs and metrics labels.
    pub fn backend_name(&self) -> &'static str {
        match self {
            AnyStore::Memory(_) => "memory",
            #[cfg(feature = "embedded")]
            AnyStore::Embedded(_) => "embedded",
            #[cfg(feature = "redis")]
            AnyStore::Redis(store) if store.is_cluster() => "redis-cluster",
            #[cfg(feature = "redis")]
            AnyStore::Redis(_) => "redis",
        }
    }

    /// How many write batches are worth keeping in flight at once: several on Redis,
    /// whose connections pipeline requests (the next batch travels while the last one
    /// runs); two on the embedded store, whose write transactions are serialised (the
    /// next batch is planned while the last one commits); one in memory, which applies
    /// a batch under one lock.
    pub fn concurrent_batches(&self) -> usize {
        match self {
            AnyStore::Memory(_) => 1,
            #[cfg(feature = "embedded")]
            AnyStore::Embedded(_) => 2,
            // Four: enough to keep a pipeline busy while one batch is planned and one
            // answered; more only queues on the same connection.
            #[cfg(feature = "redis")]
            AnyStore::Redis(_) => 4,
        }
    }

    /// What the embedded store holds in memory beside its file; `None` for the others.
    #[cfg(feature = "embedded")]
    pub fn held_in_memory(&self) -> Option<super::HeldInMemory> {
        match self {
            AnyStore::Embedded(store) => Some(store.held_in_memory()),
            _ => None,
        }
    }

    /// Removes expired entries where the backend keeps them until purged (memory,
    /// embedded); returns how many were removed when the backend knows. Backends that
    /// expire by themselves (Redis) do nothing.
    pub async fn purge_expired(&self, now: Timestamp) -> Result<Option<u64>, StoreError> {
        match self {
            AnyStore::Memory(store) => {
                store.purge_expired(now);
                Ok(None)
            }
            #[cfg(feature = "embedded")]
            AnyStore::Embedded(store) => store.purge_expired(now).await.map(Some),
            #[cfg(feature = "redis")]
            AnyStore::Redis(_) => Ok(None),
        }
    }
}

#[cfg(feature = "embedded")]
async fn open_blocking(location: String) -> Result<AnyStore, StoreError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return AnyStore::open(&location);
    }
    tokio::task::spawn_blocking(move || AnyStore::open(&location))
        .await
        .map_err(|error| StoreError::Config(format!("opening the store failed: {error}")))?
}

#[cfg(not(feature = "embedded"))]
async fn open_blocking(location: String) -> Result<AnyStore, StoreError> {
    AnyStore::open(&location)
}

#[cfg(feature = "embedded")]
fn open_embedded(path: &str) -> Result<AnyStore, StoreError> {
    EmbeddedStore::open(std::path::Path::new(path)).map(AnyStore::Embedded)
}

#[cfg(not(feature = "embedded"))]
fn open_embedded(path: &str) -> Result<AnyStore, StoreError> {
    Err(StoreError::Config(format!(
        "{path:?} names an embedded store, but this build lacks the `embedded` feature"
    )))
}

/// True for the schemes of Redis URLs ([`RedisStore`]).
fn is_redis(scheme: &str) -> bool {
    matches!(
        scheme,
        "redis" | "rediss" | "redis+cluster" | "rediss+cluster"
    )
}

/// Splits `scheme:rest` when the text starts with a URL scheme (RFC 3986: a letter, then
/// letters, digits, `+`, `-` or `.`). A single letter is not taken as a scheme, so a
/// Windows drive (`C:\data`) stays a path.
fn split_scheme(text: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = text.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    let is_scheme = scheme.len() >= 2
        && first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    is_scheme.then_some((scheme, rest))
}

impl Store for AnyStore {
    async fn apply(&self, batch: &WriteBatch) -> Result<ApplyReport, StoreError> {
        delegate!(self, store => store.apply(batch).await)
    }

    async fn read(&self, reads: &[Read], now: Timestamp) -> Result<Vec<u64>, StoreError> {
        delegate!(self, store => store.read(reads, now).await)
    }

    async fn get(&self, key: &Key, now: Timestamp) -> Result<Option<Vec<u8>>, StoreError> {
        delegate!(self, store => store.get(key, now).await)
    }

    async fn set(
        &self,
        key: &Key,
        value: &[u8],
        expire_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        delegate!(self, store => store.set(key, value, expire_at).await)
    }

    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        delegate!(self, store => store.compare_and_swap(key, expected, new, now).await)
    }

    async fn set_if_absent(
        &self,
        key: &Key,
        value: &[u8],
        expire_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Vec<u8>, StoreError> {
        delegate!(self, store => store.set_if_absent(key, value, expire_at, now).await)
    }

    async fn delete(&self, keys: &[Key]) -> Result<(), StoreError> {
        delegate!(self, store => store.delete(keys).await)
    }

    async fn scan(
        &self,
        cursor: &ScanCursor,
        limit: usize,
        now: Timestamp,
    ) -> Result<(Vec<Entry>, Option<ScanCursor>), StoreError> {
        delegate!(self, store => store.scan(cursor, limit, now).await)
    }

    async fn restore(&self, entries: &[Entry]) -> Result<(), StoreError> {
        delegate!(self, store => store.restore(entries).await)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        delegate!(self, store => store.ping().await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_are_told_from_paths() {
        assert_eq!(split_scheme("memory:"), Some(("memory", "")));
        assert_eq!(split_scheme("file:/var/x"), Some(("file", "/var/x")));
        assert_eq!(
            split_scheme("redis+cluster://h:1"),
            Some(("redis+cluster", "//h:1"))
        );
        assert_eq!(split_scheme("/var/lib/footfall"), None);
        assert_eq!(split_scheme("./data"), None);
        assert_eq!(split_scheme(r"C:\data"), None);
        assert_eq!(split_scheme("data dir:x"), None);
    }

    #[test]
    fn memory_and_unknown_schemes() {
        assert!(matches!(AnyStore::open("memory:"), Ok(AnyStore::Memory(_))));
        let error = AnyStore::open("postgres://db/x").unwrap_err();
        assert!(
            matches!(&error, StoreError::Config(message) if message.contains("`postgres:`")),
            "{error}"
        );
        assert!(matches!(AnyStore::open(" "), Err(StoreError::Config(_))));
        let error = AnyStore::open("rediss+cluster://a:1,b:2").unwrap_err();
        assert!(error.to_string().contains("AnyStore::connect"), "{error}");
    }

    #[tokio::test]
    async fn tls_options_with_a_store_that_is_not_redis_are_refused() {
        let options = StoreOptions {
            redis_tls: RedisTls {
                ca_cert: Some("/etc/footfall/ca.pem".into()),
                ..RedisTls::default()
            },
        };
        let error = AnyStore::connect_with("memory:", &options)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, StoreError::Config(message) if message.contains("rediss://")),
            "{error}"
        );
        assert!(matches!(
            AnyStore::connect_with("memory:", &StoreOptions::default()).await,
            Ok(AnyStore::Memory(_))
        ));
        // Refused before connecting: nothing listens on port 1, and the password stays
        // out of the message.
        #[cfg(feature = "redis")]
        for url in [
            "redis://:secret@127.0.0.1:1/0",
            "redis+cluster://127.0.0.1:1",
        ] {
            let error = AnyStore::connect_with(url, &options).await.unwrap_err();
            let message = error.to_string();
            assert!(
                matches!(error, StoreError::Config(_)) && message.contains("rediss://"),
                "{url}: {message}"
            );
            assert!(!message.contains("secret"), "{message}");
        }
    }

    #[cfg(feature = "embedded")]
    #[tokio::test]
    async fn paths_and_file_urls_open_embedded_stores() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        let store = AnyStore::open(plain.to_str().unwrap()).unwrap();
        assert_eq!(store.backend_name(), "embedded");
        store.ping().await.unwrap();
        assert!(plain.join(super::super::embedded::FILE_NAME).exists());
        for url in [
            format!("file:{}", dir.path().join("a").display()),
            format!("file://{}", dir.path().join("b").display()),
        ] {
            let store = AnyStore::open(&url).unwrap();
            assert_eq!(store.backend_name(), "embedded", "{url}");
        }
        assert!(dir.path().join("a").join("footfall.redb").exists());
        assert!(dir.path().join("b").join("footfall.redb").exists());
    }

    #[cfg(not(feature = "embedded"))]
    #[test]
    fn paths_need_the_embedded_feature() {
        assert!(matches!(
            AnyStore::open("/tmp/footfall"),
            Err(StoreError::Config(message)) if message.contains("embedded")
        ));
    }
}
