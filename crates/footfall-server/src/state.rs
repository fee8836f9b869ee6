//! The state every handler shares.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use footfall::clock::Clock;
use governor::Quota;
use tokio::sync::watch;

use crate::admin::tokens::AdminTokens;
use crate::bots::BotFilter;
use crate::buffer::{self, BufferConfig, Flusher, HitBuffer};
use crate::cache::CountsCache;
use crate::client_ip::TrustedProxies;
use crate::rate_limit::{ClientRateLimiter, client_rate_limiter};
use crate::registry::Registry;
use crate::salt_cache::SaltCache;
use crate::sites::Sites;

pub use crate::store::AppStore;

/// Everything configurable about the request path.
#[derive(Clone, Debug)]
pub struct Options {
    /// Write-behind buffer settings.
    pub buffer: BufferConfig,
    /// Networks whose forwarding headers are believed.
    pub trusted_proxies: TrustedProxies,
    /// Hits allowed per client address (IPv6: per /64) per minute.
    pub rate_limit_per_minute: u32,
    /// Most client addresses tracked by the rate limiter at once.
    pub rate_limit_max_clients: usize,
    /// New visitors allowed per client address (IPv6: per /64) per hour.
    pub visitor_budget_per_hour: u32,
    /// Most visitors remembered for the budget and the widget's reader (see `recent`).
    pub recent_visitors: usize,
    /// Extra robot User-Agent substrings.
    pub extra_bot_patterns: Vec<String>,
    /// Extra human (in-app or regional browser) User-Agent substrings, checked first.
    pub extra_human_patterns: Vec<String>,
    /// How long cached counts are served before a background refresh.
    pub counts_fresh_for: Duration,
    /// Longest a store read may take.
    pub store_timeout: Duration,
    /// Admin bearer tokens of operators, in clear (`--admin-tokens`).
    pub admin_tokens: Vec<String>,
    /// Admin tokens of the tokens file (`--admin-tokens-file`), as digests with scopes.
    pub admin_token_grants: Vec<crate::admin::tokens::TokenGrant>,
    /// The trust credential signing key; `None`: a new ephemeral one per process.
    pub trust_keyring: Option<crate::trust::Keyring>,
    /// The secrets salts are sealed with in the store; `None`: a new one for this
    /// process (right for a memory store only: `service::run` resolves the real ones).
    pub salt_secrets: Option<footfall::salts::SaltSecrets>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            buffer: BufferConfig::default(),
            trusted_proxies: TrustedProxies::default(),
            // 120 a minute: a person clicking fast, or a small office behind one address;
            // raise for large NATs (or use trusted proxies with real client addresses).
            rate_limit_per_minute: 120,
            rate_limit_max_clients: 200_000,
            // 1,000 new visitors an hour from one address: the hit limit (120 a minute)
            // lets through about 1,440 people an hour at five page views each, so the
            // budget binds only on addresses with over a thousand different readers in an
            // hour (a script that changes its User-Agent per hit makes 7,200), and a
            // ministry building behind one NAT address stays under it. See README.
            visitor_budget_per_hour: 1_000,
            // About 70 bytes each: 14 MB at most.
            recent_visitors: 200_000,
            extra_bot_patterns: Vec::new(),
            extra_human_patterns: Vec::new(),
            // 5 s: "online now" moves by the minute; the store sees one read per site
            // per 5 s whatever the traffic.
            counts_fresh_for: Duration::from_secs(5),
            store_timeout: Duration::from_secs(2),
            admin_tokens: Vec::new(),
            admin_token_grants: Vec::new(),
            trust_keyring: None,
            salt_secrets: None,
        }
    }
}

impl Options {
    /// Every admin token: the operators' of `--admin-tokens`, then the tokens file's.
    pub fn admin_grants(&self) -> Vec<crate::admin::tokens::TokenGrant> {
        let mut grants = crate::admin::tokens::operator_grants(&self.admin_tokens);
        grants.extend(self.admin_token_grants.iter().cloned());
        grants
    }
}

/// Shared state; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Inner>);

/// The fields of [`AppState`].
#[derive(Debug)]
pub struct Inner {
    /// The store.
    pub store: Arc<AppStore>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Registered sites.
    pub sites: Arc<Sites>,
    /// The write-behind buffer.
    pub buffer: HitBuffer,
    /// Cached counts.
    pub counts: Arc<CountsCache>,
    /// Cached salts.
    pub salts: Arc<SaltCache>,
    /// Per-client rate limiter.
    pub limiter: ClientRateLimiter,
    /// Per-client budget of new visitors.
    pub visitor_budget: ClientRateLimiter,
    /// Visitors this instance saw in the last hour.
    pub recent: crate::recent::RecentVisitors,
    /// Forwarding-header policy.
    pub proxies: TrustedProxies,
    /// Robot detection.
    pub bots: BotFilter,
    /// The counters every hit touches.
    pub ingest_counters: crate::metrics::IngestCounters,
    /// Admin credentials.
    pub admin: AdminTokens,
    /// This instance's view of the site registry shared through the store.
    pub registry: Arc<Registry>,
    /// The key trust credentials are signed with.
    pub keyring: crate::trust::Keyring,
    /// The options it was built with.
    pub options: Options,
    /// Set once shutdown begins, to the instant by which the stop must be over (the
    /// buffer's last writes give up then).
    pub shutdown: watch::Sender<Option<tokio::time::Instant>>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Builds the state and the buffer's flusher (run it with `tokio::spawn`).
    pub fn new(
        store: Arc<AppStore>,
        clock: Arc<dyn Clock>,
        sites: Sites,
        options: Options,
    ) -> Result<(AppState, Flusher), String> {
        let sites = Arc::new(sites);
        let (shutdown, shutdown_rx) = watch::channel(None);
        let (buffer, flusher) = buffer::channel(
            Arc::clone(&store),
            Arc::clone(&sites),
            Arc::clone(&clock),
            options.buffer,
            shutdown_rx,
        );
        let per_minute = NonZeroU32::new(options.rate_limit_per_minute)
            .ok_or("rate limit must be at least 1 per minute")?;
        let new_visitors_per_hour = NonZeroU32::new(options.visitor_budget_per_hour)
            .ok_or("the visitor budget must be at least 1 an hour")?;
        let keyring = match &options.trust_keyring {
            Some(keyring) => keyring.clone(),
            None => crate::trust::Keyring::generate().map_err(|e| e.to_string())?,
        };
        let salt_secrets = match &options.salt_secrets {
            Some(secrets) => secrets.clone(),
            None => {
                footfall::salts::SaltSecrets::generate()
                    .map_err(|e| e.to_string())?
                    .0
            }
        };
        let counts = Arc::new(CountsCache::new(
            Arc::clone(&store),
            Arc::clone(&clock),
            options.counts_fresh_for,
            options.store_timeout,
        ));
        let salts = Arc::new(SaltCache::new(
            Arc::clone(&store),
            salt_secrets,
            options.store_timeout,
        ));
        let registry = Arc::new(Registry::new(
            Arc::clone(&store),
            Arc::clone(&clock),
            Arc::clone(&sites),
            Arc::clone(&counts),
            Arc::clone(&salts),
        ));
        let state = AppState(Arc::new(Inner {
            keyring,
            counts,
            salts,
            registry,
            limiter: client_rate_limiter(
                Quota::per_minute(per_minute),
                options.rate_limit_max_clients,
            ),
            visitor_budget: client_rate_limiter(
                Quota::per_hour(new_visitors_per_hour),
                options.rate_limit_max_clients,
            ),
            recent: crate::recent::RecentVisitors::new(options.recent_visitors),
            proxies: options.trusted_proxies.clone(),
            bots: BotFilter::with_patterns(
                &options.extra_bot_patterns,
                &options.extra_human_patterns,
            )?,
            ingest_counters: crate::metrics::IngestCounters::new(),
            admin: AdminTokens::with_grants(options.admin_grants()),
            store,
            clock,
            sites,
            buffer,
            options,
            shutdown,
        }));
        Ok((state, flusher))
    }

    /// Starts the background upkeep, every `every` until shutdown: the layout upgrade
    /// (until it has succeeded once), salt preloading, each site's all-time fold over
    /// newly settled days, purging, rate-limiter pruning and gauges.
    pub fn spawn_upkeep(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let state = self.clone();
        let mut stop = self.shutdown.subscribe();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut layout_upgraded = false;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.wait_for(Option::is_some) => return,
                }
                let now = state.clock.now();
                let sites = state.sites.all();
                if !layout_upgraded {
                    match crate::layout::upgrade(state.store.as_ref(), &sites, false, now).await {
                        Ok(done) => {
                            layout_upgraded = true;
                            if done.sites > 0 {
                                tracing::info!(
                                    sites = done.sites,
                                    "store layout upgraded: one record per site and day"
                                );
                            }
                        }
                        Err(error) => {
                            tracing::warn!(error = %error, "store layout upgrade failed; retrying at the next upkeep");
                        }
                    }
                }
                state.salts.preload(&sites, now).await;
                // Once a day per site (a memory check otherwise): the settled days go
                // into the all-time fold, which no reader might otherwise ask for before
                // the days expire.
                for site in &sites {
                    let fold = state
                        .counts
                        .settled()
                        .fold(state.store.as_ref(), &site.id, &site.rules, now)
                        .await;
                    if let Err(error) = fold {
                        tracing::warn!(site = %site.id, error = %error, "advancing the all-time totals failed; retrying at the next upkeep");
                        break;
                    }
                }
                // Read before the purge, which writes the held records out: the gauges
                // then show what builds up between two upkeeps, not an empty map.
                if let Some(held) = state.store.held_in_memory() {
                    crate::metrics::embedded_store(held);
                }
                if let Err(error) = state.store.purge_expired(now).await {
                    tracing::warn!(error = %error, "purging expired entries failed");
                }
                state.limiter.retain_recent();
                state.limiter.shrink_to_fit();
                state.visitor_budget.retain_recent();
                state.visitor_budget.shrink_to_fit();
                state.recent.prune(now);
                crate::metrics::service_gauges(
                    state.sites.len(),
                    state.buffer.capacity(),
                    state.limiter.len(),
                    state
                        .salts
                        .oldest_period_start()
                        .map(|start| now.duration_since(start).as_secs_f64()),
                );
                crate::metrics::upkeep();
            }
        })
    }

    /// Asks background tasks (the flusher, upkeep) to finish, the flusher within the
    /// buffer's shutdown grace from now.
    pub fn begin_shutdown(&self) {
        self.begin_shutdown_until(tokio::time::Instant::now() + self.options.buffer.shutdown_grace);
    }

    /// Asks background tasks to finish, the flusher's last writes by `deadline`.
    pub fn begin_shutdown_until(&self, deadline: tokio::time::Instant) {
        self.shutdown.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(deadline);
            true
        });
    }
}

impl axum::extract::FromRef<AppState> for Arc<Sites> {
    fn from_ref(state: &AppState) -> Arc<Sites> {
        Arc::clone(&state.sites)
    }
}
