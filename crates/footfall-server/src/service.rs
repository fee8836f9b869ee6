//! Running the whole service: both listeners, the flusher and the upkeep, with an
//! orderly shutdown (stop accepting, finish requests, flush the buffer, exit).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use footfall::clock::{Clock, SystemClock};
use footfall::store::StoreOptions;
use tokio::net::TcpListener;

use crate::app::{internal_app, public_app};
use crate::buffer::FlushTotals;
use crate::config::Config;
use crate::http;
use crate::sites::Sites;
use crate::state::AppState;
use crate::store::AppStore;

/// Why the service could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A listener could not be bound.
    #[error("cannot listen on {address} ({setting}): {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The setting that named it.
        setting: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error("cannot open the store {location:?} (--store / FOOTFALL_STORE): {message}")]
    Store {
        /// Where (a URL's password replaced).
        location: String,
        /// Why.
        message: String,
    },
    /// Anything else at start-up.
    #[error("{0}")]
    Startup(String),
}

/// Opens the store named by `--store` (with the `--redis-tls-*` certificates in
/// `options`), and warns about risky Redis settings.
pub async fn open_store(location: &str, options: &StoreOptions) -> Result<AppStore, RunError> {
    let store = AppStore::connect_with(location, options)
        .await
        .map_err(|error| RunError::Store {
            location: footfall::store::printable_location(location),
            message: error.to_string(),
        })?;
    for warning in store.warnings() {
        tracing::warn!(store = store.backend_name(), "{warning}");
    }
    Ok(store)
}

/// The addresses the service actually listens on (useful with port 0).
#[derive(Clone, Copy, Debug)]
pub struct Bound {
    /// Public listener.
    pub public: SocketAddr,
    /// Internal listener.
    pub internal: SocketAddr,
}

/// Runs until `shutdown` resolves; `on_bound` is told the listening addresses first.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()>,
    on_bound: impl FnOnce(Bound),
) -> Result<FlushTotals, RunError> {
    crate::metrics::install();
    let store = Arc::new(open_store(&config.store, &config.store_options).await?);
    run_with_store(config, store, shutdown, on_bound).await
}

/// [`run`] on a store opened by the caller (`config.store` is then only reported), so a
/// test can read what the service wrote after it stopped.
pub async fn run_with_store(
    config: Config,
    store: Arc<AppStore>,
    shutdown: impl Future<Output = ()>,
    on_bound: impl FnOnce(Bound),
) -> Result<FlushTotals, RunError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // Salts are kept in the store only sealed with this secret (salt_cache.rs says where
    // it comes from when none is configured; never the secret itself in the log).
    let salt_secrets = crate::salt_cache::resolve_secrets(config.salt_secrets.as_ref(), &store)
        .map_err(RunError::Startup)?;
    tracing::info!(
        key_ids = ?salt_secrets.secrets.key_ids(),
        origin = %salt_secrets.origin,
        "visitor-id salts are stored sealed with salt secret {}",
        salt_secrets.secrets.key_id()
    );
    let options = crate::state::Options {
        salt_secrets: Some(salt_secrets.secrets),
        ..config.options.clone()
    };
    let (state, flusher) = AppState::new(store, clock, Sites::new(config.sites.clone()), options)
        .map_err(RunError::Startup)?;
    // The sites file wins for its sites; sites added through the admin API survive.
    crate::registry::import_at_startup(
        &state.registry,
        config
            .sites
            .iter()
            .map(|site| site.settings.clone())
            .collect(),
    )
    .await;
    if config.options.trust_keyring.is_none() {
        tracing::warn!(
            key_id = state.keyring.key_id(),
            "no --trust-key-file: trust credentials are signed with a key made for this run only and will not verify after a restart"
        );
    }
    let bind = |address: SocketAddr, setting: &'static str| async move {
        TcpListener::bind(address)
            .await
            .map_err(|source| RunError::Bind {
                address,
                setting,
                source,
            })
    };
    let public = bind(config.listen, "--listen / FOOTFALL_LISTEN").await?;
    let internal = bind(
        config.admin_listen,
        "--admin-listen / FOOTFALL_ADMIN_LISTEN",
    )
    .await?;
    let bound = Bound {
        public: public
            .local_addr()
            .map_err(|e| RunError::Startup(e.to_string()))?,
        internal: internal
            .local_addr()
            .map_err(|e| RunError::Startup(e.to_string()))?,
    };
    tracing::info!(public = %bound.public, internal = %bound.internal, store = %footfall::store::printable_location(&config.store), sites = state.sites.len(), "footfall listening");
    on_bound(bound);

    let flusher = tokio::spawn(flusher.run());
    let token_reload = spawn_token_reload(&state, &config);
    let upkeep = state.spawn_upkeep(Duration::from_secs(10));
    let registry_sync = crate::registry::spawn_sync(
        &state.registry,
        crate::registry::SYNC_EVERY,
        state.shutdown.subscribe(),
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let public_server = tokio::spawn(http::serve(
        public,
        "public",
        public_app(state.clone(), config.request_limits),
        config.connection_limits.clone(),
        stopped(stop_rx.clone()),
    ));
    let internal_server = tokio::spawn(http::serve(
        internal,
        "internal",
        internal_app(state.clone(), config.request_limits),
        config.connection_limits,
        stopped(stop_rx),
    ));

    shutdown.await;
    // The whole stop, the drain of requests and the last writes, ends by this instant,
    // whatever the store does: past it a supervisor would kill the process anyway, and
    // what is then unwritten is better counted than lost silently.
    let deadline = tokio::time::Instant::now() + config.options.buffer.shutdown_grace;
    tracing::info!("shutting down: draining requests, then flushing");
    stop_tx.send_replace(true);
    let _ = public_server.await;
    let _ = internal_server.await;
    state.begin_shutdown_until(deadline);
    // Upkeep and registry sync hold nothing that must be finished; one of them may be
    // waiting on a store that does not answer.
    upkeep.abort();
    registry_sync.abort();
    token_reload.abort();
    let _ = upkeep.await;
    let _ = registry_sync.await;
    let totals = flusher
        .await
        .map_err(|e| RunError::Startup(format!("flusher failed: {e}")))?;
    tracing::info!(
        written = totals.written,
        unflushed = totals.unflushed_at_shutdown,
        "stopped"
    );
    Ok(totals)
}

/// Reads the admin tokens file again on each SIGHUP (Unix) and replaces the accepted
/// tokens whole: `--admin-tokens` stay, the file's entries are the new ones. A file that
/// no longer parses is refused with an ERROR and the tokens in use stay.
fn spawn_token_reload(state: &AppState, config: &Config) -> tokio::task::JoinHandle<()> {
    let state = state.clone();
    let path = config.admin_tokens_file.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut hangups) = signal(SignalKind::hangup()) else {
                tracing::warn!(
                    "cannot listen for SIGHUP: the admin tokens file is read at start-up only"
                );
                return;
            };
            while hangups.recv().await.is_some() {
                let Some(path) = &path else {
                    tracing::info!("SIGHUP: no --admin-tokens-file to read again");
                    continue;
                };
                let file = path.clone();
                match tokio::task::spawn_blocking(move || {
                    crate::config::read_admin_tokens_file(&file)
                })
                .await
                {
                    Ok(Ok(grants)) => {
                        let fingerprints: Vec<String> = grants
                            .iter()
                            .map(|grant| {
                                format!("{} {}", grant.fingerprint(), grant.scope().label())
                            })
                            .collect();
                        let mut all =
                            crate::admin::tokens::operator_grants(&state.options.admin_tokens);
                        all.extend(grants);
                        state.admin.replace(all);
                        tracing::info!(tokens = state.admin.len(), file_tokens = ?fingerprints, "SIGHUP: admin tokens file read again");
                    }
                    Ok(Err(error)) => {
                        tracing::error!(error = %error, "SIGHUP: the admin tokens file was not read again; the tokens in use stay");
                    }
                    Err(error) => {
                        tracing::error!(error = %error, "SIGHUP: reading the admin tokens file failed")
                    }
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = (state, path);
        }
    })
}
