//! `footfall serve` configuration: flags that are also `FOOTFALL_*` environment variables,
//! parsed once (clap) and validated into [`Config`]. Nothing deeper reads the environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use footfall::store::{RedisTls, StoreOptions};

use crate::app::RequestLimits;
use crate::buffer::BufferConfig;
use crate::client_ip::TrustedProxies;
use crate::http::ConnectionLimits;
use crate::salt_cache::ConfiguredSecrets;
use crate::sites::{Site, SiteSettings, parse_sites_file};
use crate::state::Options;

/// Flags of `footfall serve`.
#[derive(Clone, Debug, Args)]
pub struct ServeArgs {
    /// Public listener: hits, counts, widgets, badges.
    #[arg(long, env = "FOOTFALL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Internal listener: metrics, health, admin API. Keep it off the internet.
    #[arg(long, env = "FOOTFALL_ADMIN_LISTEN", default_value = "127.0.0.1:9464")]
    pub admin_listen: String,
    /// Store: a directory for the embedded store, `memory:` for a throw-away one, or a
    /// Redis URL (`redis://host:6379/0`, `redis+cluster://h1:p1,h2:p2`; over TLS
    /// `rediss://…`, `rediss+cluster://…`).
    #[arg(long, env = "FOOTFALL_STORE", default_value = DEFAULT_STORE)]
    pub store: String,
    /// Certificates for a Redis store over TLS.
    #[command(flatten)]
    pub redis_tls: RedisTlsArgs,
    /// Admin bearer tokens, comma-separated (several, to rotate without downtime). No
    /// token: the admin API refuses every request.
    #[arg(
        long,
        env = "FOOTFALL_ADMIN_TOKENS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub admin_tokens: Vec<String>,
    /// A TOML file of admin tokens kept as digests, each for some sites or for an
    /// operator (`footfall admin-token new` makes the entries). Read at start-up and
    /// again on SIGHUP, so a token is added, rotated or revoked without a restart.
    #[arg(long, env = "FOOTFALL_ADMIN_TOKENS_FILE", value_name = "FILE")]
    pub admin_tokens_file: Option<PathBuf>,
    /// Proxies whose `X-Forwarded-For` is believed: addresses and CIDR networks,
    /// comma-separated.
    #[arg(long, env = "FOOTFALL_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,
    /// A TOML file of `[[sites]]` registered at start-up.
    #[arg(long, env = "FOOTFALL_SITES_FILE")]
    pub sites_file: Option<PathBuf>,
    /// Do not register the `demo` site (localhost) on start-up. It is off already
    /// whenever a sites file, a store other than the default `./footfall-data` or a
    /// trust key is configured: those mean a real deployment.
    #[arg(long, env = "FOOTFALL_NO_DEMO")]
    pub no_demo: bool,
    /// Register the `demo` site even with a sites file or another store (a trial, a
    /// test). Refused with a trust key: the demo's record certifies localhost, and must
    /// never be signed with a real issuer key.
    #[arg(long, env = "FOOTFALL_DEMO", conflicts_with = "no_demo")]
    pub demo: bool,
    /// Hits held in memory waiting for the store; beyond it hits are dropped and counted.
    #[arg(long, env = "FOOTFALL_BUFFER_CAPACITY", default_value_t = 100_000)]
    pub buffer_capacity: usize,
    /// Most hits per store batch. The flusher takes every hit waiting up to this bound, so
    /// a backlog drains in large batches, which cost less per hit.
    #[arg(long, env = "FOOTFALL_FLUSH_BATCH", default_value_t = 20_000)]
    pub flush_batch: usize,
    /// Store batches written at once (default: 4 on Redis, whose connections pipeline
    /// them; 1 on the embedded and memory stores).
    #[arg(long, env = "FOOTFALL_FLUSH_CONCURRENCY")]
    pub flush_concurrency: Option<usize>,
    /// Longest a hit waits in memory before it is written, in milliseconds: the most a
    /// crash can lose.
    #[arg(long, env = "FOOTFALL_FLUSH_INTERVAL_MS", default_value_t = 100)]
    pub flush_interval_ms: u64,
    /// Hits per minute allowed from one client address (IPv6: one /64).
    #[arg(long, env = "FOOTFALL_RATE_LIMIT", default_value_t = 120)]
    pub rate_limit: u32,
    /// New visitors (ids not seen within the hour) one client address (IPv6: one /64)
    /// may add per hour; past it, their hits are dropped (`reason="visitor_budget"`),
    /// while visitors already seen keep counting. 1,000 covers an office of several
    /// hundred readers behind one NAT address (see the README's limits).
    #[arg(long, env = "FOOTFALL_VISITOR_BUDGET", default_value_t = 1_000)]
    pub visitor_budget: u32,
    /// Extra robot User-Agent substrings, comma-separated (case-insensitive, 3 characters
    /// at least); counted as robots of kind `configured`.
    #[arg(long, env = "FOOTFALL_BOT_PATTERNS", value_delimiter = ',')]
    pub bot_patterns: Vec<String>,
    /// Extra User-Agent substrings of people's browsers (an in-app browser the built-in
    /// allow-list lacks), comma-separated; checked before every robot rule, so keep them
    /// specific (`MyCityApp/`, not `MyCity`).
    #[arg(long, env = "FOOTFALL_HUMAN_PATTERNS", value_delimiter = ',')]
    pub human_patterns: Vec<String>,
    /// Requests handled at once per listener; beyond it a fast 503.
    #[arg(long, env = "FOOTFALL_MAX_CONCURRENCY", default_value_t = 2048)]
    pub max_concurrency: usize,
    /// Seconds a request may take.
    #[arg(
        long = "request-timeout",
        env = "FOOTFALL_REQUEST_TIMEOUT",
        default_value_t = 10
    )]
    pub request_timeout_secs: u64,
    /// Seconds a client has to send a whole request head.
    #[arg(
        long = "header-read-timeout",
        env = "FOOTFALL_HEADER_READ_TIMEOUT",
        default_value_t = 5
    )]
    pub header_read_timeout_secs: u64,
    /// Seconds a connection may sit with no request in flight before it is closed
    /// (default: the header-read timeout, which is when hyper closes an idle HTTP/1
    /// keep-alive connection, so an idle HTTP/2 connection is held no longer).
    #[arg(long = "idle-timeout", env = "FOOTFALL_IDLE_TIMEOUT")]
    pub idle_timeout_secs: Option<u64>,
    /// The most client connections open at once on each listener; further connections
    /// wait in the kernel's backlog until one closes. Keep it below the process's file
    /// descriptor limit.
    #[arg(
        long = "max-connections",
        env = "FOOTFALL_MAX_CONNECTIONS",
        default_value_t = 10_000
    )]
    pub max_connections: usize,
    /// The most connections one client address (IPv6: one /64) may hold open on a
    /// listener; more from it are closed at once (default: 256, or an eighth of
    /// --max-connections when that is smaller). Trusted proxies are exempt: behind one,
    /// its own per-client limits apply.
    #[arg(
        long = "max-connections-per-client",
        env = "FOOTFALL_MAX_CONNECTIONS_PER_CLIENT"
    )]
    pub max_connections_per_client: Option<usize>,
    /// Seconds cached counts are served before a background refresh.
    #[arg(long = "counts-ttl", env = "FOOTFALL_COUNTS_TTL", default_value_t = 5)]
    pub counts_ttl_secs: u64,
    /// Seconds shutdown waits for requests and the final flush.
    #[arg(
        long = "shutdown-grace",
        env = "FOOTFALL_SHUTDOWN_GRACE",
        default_value_t = 10
    )]
    pub shutdown_grace_secs: u64,
    /// The trust credential signing key, a file written by `footfall trust keygen`.
    /// Without it a new key is made at every start and credentials stop verifying after
    /// a restart.
    #[arg(long, env = "FOOTFALL_TRUST_KEY_FILE")]
    pub trust_key_file: Option<PathBuf>,
    /// Public keys this service signed with before, still published so their credentials
    /// keep verifying: a keys document saved from `/.well-known/footfall-trust-keys`
    /// before rotating the key file.
    #[arg(long, env = "FOOTFALL_TRUST_RETIRED_KEYS")]
    pub trust_retired_keys: Option<PathBuf>,
    /// A file of salt secrets, one per line (`openssl rand -hex 32`: at least 32
    /// characters, no commas; lines starting with `#` ignored): the first seals the visitor-id salts kept in the store, every one
    /// opens them (for rotating the secret). Every instance sharing a store needs the
    /// same file. Required with Redis; without it the embedded store keeps a secret of
    /// its own in `salt-secret` in its directory.
    #[arg(long, env = "FOOTFALL_SALT_SECRET_FILE", value_name = "FILE")]
    pub salt_secret_file: Option<PathBuf>,
    /// The salt secrets themselves, comma-separated, first the current one (instead of
    /// --salt-secret-file; prefer the variable to the flag, which other users of the host
    /// can see in the process list).
    #[arg(long, env = "FOOTFALL_SALT_SECRET", hide_env_values = true)]
    pub salt_secret: Option<String>,
    /// Log format: `json`, `text` (colour only on a terminal), or `auto` (the default:
    /// text on a terminal, JSON otherwise, e.g. under systemd or in a container).
    #[arg(long, env = "FOOTFALL_LOG_FORMAT", default_value = "auto")]
    pub log_format: String,
}

/// Certificates for Redis over TLS (`rediss://`, `rediss+cluster://`), flags of both
/// `footfall serve` and `footfall migrate`. Without them a TLS server is verified against
/// the system's trust store and no client certificate is sent.
#[derive(Clone, Debug, Default, Args)]
pub struct RedisTlsArgs {
    /// CA certificate (PEM) that signed the Redis server's certificate, trusted instead
    /// of the system's CAs; for a `rediss://` or `rediss+cluster://` store.
    #[arg(long, env = "FOOTFALL_REDIS_TLS_CA", value_name = "FILE")]
    pub redis_tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for a Redis that requires one (mutual TLS,
    /// `tls-auth-clients yes`); needs --redis-tls-key.
    #[arg(long, env = "FOOTFALL_REDIS_TLS_CERT", value_name = "FILE")]
    pub redis_tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --redis-tls-cert.
    #[arg(long, env = "FOOTFALL_REDIS_TLS_KEY", value_name = "FILE")]
    pub redis_tls_key: Option<PathBuf>,
}

impl RedisTlsArgs {
    /// The certificates as store options, checked against the store locations they are
    /// for: given without a TLS store, or a certificate without its key, the error names
    /// the flag. The files themselves are read when the store connects.
    pub fn validate(&self, locations: &[&str]) -> Result<RedisTls, ConfigError> {
        let tls = RedisTls {
            ca_cert: self.redis_tls_ca.clone(),
            client_cert: self.redis_tls_cert.clone(),
            client_key: self.redis_tls_key.clone(),
        };
        let setting = match (&tls.ca_cert, &tls.client_cert, &tls.client_key) {
            (Some(_), _, _) => CA_SETTING,
            (None, Some(_), _) => CERT_SETTING,
            (None, None, Some(_)) => KEY_SETTING,
            (None, None, None) => return Ok(tls),
        };
        if !locations.iter().any(|location| uses_tls(location)) {
            return Err(bad(
                setting,
                "applies only to a Redis store over TLS (rediss://… or rediss+cluster://…)",
            ));
        }
        match (&tls.client_cert, &tls.client_key) {
            (Some(_), None) => Err(bad(KEY_SETTING, "--redis-tls-cert needs its key")),
            (None, Some(_)) => Err(bad(CERT_SETTING, "--redis-tls-key needs its certificate")),
            _ => Ok(tls),
        }
    }
}

const CA_SETTING: &str = "--redis-tls-ca / FOOTFALL_REDIS_TLS_CA";
const CERT_SETTING: &str = "--redis-tls-cert / FOOTFALL_REDIS_TLS_CERT";
const KEY_SETTING: &str = "--redis-tls-key / FOOTFALL_REDIS_TLS_KEY";

/// True when `location` names a Redis store over TLS.
pub fn uses_tls(location: &str) -> bool {
    let location = location.trim_start();
    location.starts_with("rediss://") || location.starts_with("rediss+cluster://")
}

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Public listener address.
    pub listen: SocketAddr,
    /// Internal listener address.
    pub admin_listen: SocketAddr,
    /// Store location.
    pub store: String,
    /// How to open the store beyond its location (TLS certificates).
    pub store_options: StoreOptions,
    /// Sites registered at start-up.
    pub sites: Vec<Site>,
    /// Request-path options.
    pub options: Options,
    /// Per-request limits.
    pub request_limits: RequestLimits,
    /// Per-connection limits.
    pub connection_limits: ConnectionLimits,
    /// The log format.
    pub log_format: LogFormat,
    /// The salt secrets, when configured (otherwise the store decides, see
    /// [`crate::salt_cache::resolve_secrets`]).
    pub salt_secrets: Option<ConfiguredSecrets>,
    /// The admin tokens file, read again on SIGHUP.
    pub admin_tokens_file: Option<PathBuf>,
}

/// The setting naming the admin tokens file.
const TOKENS_FILE_SETTING: &str = "--admin-tokens-file / FOOTFALL_ADMIN_TOKENS_FILE";

/// Reads the admin tokens file (at start-up and on SIGHUP); the error names the setting,
/// the file and the entry at fault, never a token.
pub fn read_admin_tokens_file(
    path: &std::path::Path,
) -> Result<Vec<crate::admin::tokens::TokenGrant>, ConfigError> {
    crate::admin::tokens::read_tokens_file(path).map_err(|e| {
        bad(
            &format!("{TOKENS_FILE_SETTING} ({})", path.display()),
            e.to_string(),
        )
    })
}

/// How the service logs (to standard error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines, coloured only when standard error is a terminal.
    Text,
    /// One JSON object per line.
    Json,
    /// Text on a terminal, JSON otherwise: what a person at a console and a log
    /// collector each read best.
    Auto,
}

impl LogFormat {
    /// Whether to write JSON, given whether standard error is a terminal.
    pub fn json(self, stderr_is_terminal: bool) -> bool {
        match self {
            LogFormat::Text => false,
            LogFormat::Json => true,
            LogFormat::Auto => !stderr_is_terminal,
        }
    }
}

/// A setting naming both salt-secret sources.
const SALT_SECRET_SETTING: &str = "--salt-secret-file / FOOTFALL_SALT_SECRET_FILE";

/// A configuration error naming the setting (flag and environment variable).
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {message}")]
pub struct ConfigError {
    /// The setting, as `--flag / FOOTFALL_VAR`.
    pub setting: String,
    /// What is wrong.
    pub message: String,
}

fn bad(setting: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        setting: setting.to_owned(),
        message: message.into(),
    }
}

fn positive(setting: &str, value: u64) -> Result<Duration, ConfigError> {
    if value == 0 {
        return Err(bad(setting, "must be greater than 0"));
    }
    Ok(Duration::from_secs(value))
}

impl ServeArgs {
    /// Validates every setting; the first error names its flag and variable.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let listen = self.listen.parse().map_err(|_| {
            bad(
                "--listen / FOOTFALL_LISTEN",
                format!("not an address:port: {:?}", self.listen),
            )
        })?;
        let admin_listen = self.admin_listen.parse().map_err(|_| {
            bad(
                "--admin-listen / FOOTFALL_ADMIN_LISTEN",
                format!("not an address:port: {:?}", self.admin_listen),
            )
        })?;
        if self.store.trim().is_empty() {
            return Err(bad(
                "--store / FOOTFALL_STORE",
                "must name a directory, memory: or a Redis URL",
            ));
        }
        let store_options = StoreOptions {
            redis_tls: self.redis_tls.validate(&[&self.store])?,
        };
        // Parsed once: the forwarding-header policy believes these proxies, and the accept
        // loop exempts them from the per-client connection share.
        let proxy_networks = TrustedProxies::parse(&self.trusted_proxies)
            .and_then(|_| parse_networks(&self.trusted_proxies))
            .map_err(|m| bad("--trusted-proxies / FOOTFALL_TRUSTED_PROXIES", m))?;
        let trusted_proxies = TrustedProxies::new(proxy_networks.clone());
        if let Some(short) = self
            .admin_tokens
            .iter()
            .map(|t| t.trim())
            .find(|t| !t.is_empty() && t.len() < crate::admin::tokens::MIN_TOKEN_CHARS)
        {
            return Err(bad(
                "--admin-tokens / FOOTFALL_ADMIN_TOKENS",
                format!(
                    "a token of {} characters is too short to be secret; use 16 or more",
                    short.len()
                ),
            ));
        }
        if !(1..=10_000_000).contains(&self.buffer_capacity) {
            return Err(bad(
                "--buffer-capacity / FOOTFALL_BUFFER_CAPACITY",
                "must be 1 to 10,000,000",
            ));
        }
        if !(1..=100_000).contains(&self.flush_batch) {
            return Err(bad(
                "--flush-batch / FOOTFALL_FLUSH_BATCH",
                "must be 1 to 100,000",
            ));
        }
        if self
            .flush_concurrency
            .is_some_and(|n| !(1..=64).contains(&n))
        {
            return Err(bad(
                "--flush-concurrency / FOOTFALL_FLUSH_CONCURRENCY",
                "must be 1 to 64",
            ));
        }
        if !(1..=60_000).contains(&self.flush_interval_ms) {
            return Err(bad(
                "--flush-interval-ms / FOOTFALL_FLUSH_INTERVAL_MS",
                "must be 1 to 60000",
            ));
        }
        if self.rate_limit == 0 {
            return Err(bad(
                "--rate-limit / FOOTFALL_RATE_LIMIT",
                "must be at least 1",
            ));
        }
        if self.visitor_budget == 0 {
            return Err(bad(
                "--visitor-budget / FOOTFALL_VISITOR_BUDGET",
                "must be at least 1",
            ));
        }
        if self.max_concurrency == 0 {
            return Err(bad(
                "--max-concurrency / FOOTFALL_MAX_CONCURRENCY",
                "must be at least 1",
            ));
        }
        let log_format = match self.log_format.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            "auto" => LogFormat::Auto,
            other => {
                return Err(bad(
                    "--log-format / FOOTFALL_LOG_FORMAT",
                    format!("expected auto, text or json, got {other:?}"),
                ));
            }
        };
        let request_timeout = positive(
            "--request-timeout / FOOTFALL_REQUEST_TIMEOUT",
            self.request_timeout_secs,
        )?;
        let header_read_timeout = positive(
            "--header-read-timeout / FOOTFALL_HEADER_READ_TIMEOUT",
            self.header_read_timeout_secs,
        )?;
        let idle_timeout = match self.idle_timeout_secs {
            Some(secs) => positive("--idle-timeout / FOOTFALL_IDLE_TIMEOUT", secs)?,
            None => header_read_timeout,
        };
        if self.max_connections == 0 {
            return Err(bad(
                "--max-connections / FOOTFALL_MAX_CONNECTIONS",
                "must be at least 1",
            ));
        }
        let max_connections_per_client = match self.max_connections_per_client {
            Some(n) if n == 0 || n > self.max_connections => {
                return Err(bad(
                    "--max-connections-per-client / FOOTFALL_MAX_CONNECTIONS_PER_CLIENT",
                    format!("must be 1 to --max-connections ({})", self.max_connections),
                ));
            }
            Some(n) => n,
            None => ConnectionLimits::default_per_client(self.max_connections),
        };
        let salt_secrets = self.salt_secrets()?;
        if salt_secrets.is_none() && is_redis(&self.store) {
            return Err(bad(
                SALT_SECRET_SETTING,
                crate::salt_cache::REDIS_NEEDS_SECRET,
            ));
        }
        let counts_fresh_for =
            positive("--counts-ttl / FOOTFALL_COUNTS_TTL", self.counts_ttl_secs)?;
        let shutdown_grace = positive(
            "--shutdown-grace / FOOTFALL_SHUTDOWN_GRACE",
            self.shutdown_grace_secs,
        )?;

        let mut sites = Vec::new();
        if self.demo && self.trust_key_file.is_some() {
            return Err(bad(
                "--demo / FOOTFALL_DEMO",
                "the demo site certifies localhost, and a configured trust key \
                 (--trust-key-file) would sign that with the real issuer key; drop --demo",
            ));
        }
        if self.demo_wanted() {
            sites.push(
                Site::from_settings(SiteSettings::demo(), "demo site")
                    .expect("the demo site is valid"),
            );
        }
        if let Some(path) = &self.sites_file {
            let setting = format!("--sites-file / FOOTFALL_SITES_FILE ({})", path.display());
            let text = std::fs::read_to_string(path).map_err(|e| bad(&setting, e.to_string()))?;
            let from_file = parse_sites_file(&text).map_err(|e| bad(&setting, e.to_string()))?;
            // A file may redefine the demo site.
            sites.retain(|demo| !from_file.iter().any(|site| site.id == demo.id));
            sites.extend(from_file);
        }

        let patterns = |list: Vec<String>| -> Vec<String> {
            list.into_iter().filter(|p| !p.trim().is_empty()).collect()
        };
        let bot_patterns = patterns(self.bot_patterns);
        let human_patterns = patterns(self.human_patterns);
        crate::bots::BotFilter::new(&bot_patterns)
            .map_err(|m| bad("--bot-patterns / FOOTFALL_BOT_PATTERNS", m))?;
        crate::bots::BotFilter::with_patterns(&[], &human_patterns)
            .map_err(|m| bad("--human-patterns / FOOTFALL_HUMAN_PATTERNS", m))?;
        let trust_keyring = match (&self.trust_key_file, &self.trust_retired_keys) {
            (Some(path), retired) => {
                let keyring = crate::trust::Keyring::load(path).map_err(|e| {
                    bad("--trust-key-file / FOOTFALL_TRUST_KEY_FILE", e.to_string())
                })?;
                match retired {
                    Some(retired) => Some(keyring.with_retired_file(retired).map_err(|e| {
                        bad(
                            "--trust-retired-keys / FOOTFALL_TRUST_RETIRED_KEYS",
                            e.to_string(),
                        )
                    })?),
                    None => Some(keyring),
                }
            }
            (None, Some(_)) => {
                return Err(bad(
                    "--trust-retired-keys / FOOTFALL_TRUST_RETIRED_KEYS",
                    "retired keys are published beside a persistent signing key: set \
                     --trust-key-file too",
                ));
            }
            (None, None) => None,
        };
        let admin_token_grants = match &self.admin_tokens_file {
            Some(path) => read_admin_tokens_file(path)?,
            None => Vec::new(),
        };
        let options = Options {
            trust_keyring,
            admin_token_grants,
            buffer: BufferConfig {
                capacity: self.buffer_capacity,
                batch_max: self.flush_batch,
                flush_interval: Duration::from_millis(self.flush_interval_ms),
                shutdown_grace,
                max_in_flight: self.flush_concurrency,
            },
            trusted_proxies,
            rate_limit_per_minute: self.rate_limit,
            visitor_budget_per_hour: self.visitor_budget,
            extra_bot_patterns: bot_patterns,
            extra_human_patterns: human_patterns,
            counts_fresh_for,
            admin_tokens: self.admin_tokens,
            ..Options::default()
        };
        Ok(Config {
            listen,
            admin_listen,
            store: self.store,
            store_options,
            sites,
            options,
            request_limits: RequestLimits {
                max_concurrency: self.max_concurrency,
                request_timeout,
                ..RequestLimits::default()
            },
            connection_limits: ConnectionLimits {
                header_read_timeout,
                drain_timeout: shutdown_grace,
                idle_timeout,
                max_connections: self.max_connections,
                max_connections_per_client,
                exempt_from_share: proxy_networks.into(),
                ..ConnectionLimits::default()
            },
            log_format,
            salt_secrets,
            admin_tokens_file: self.admin_tokens_file,
        })
    }

    /// Whether the demo site is registered: asked for with `--demo`, refused with
    /// `--no-demo`, and otherwise only on a bare install (no sites file, the default
    /// store, no trust key), so a deployment never serves it, nor signs its localhost
    /// record with the real issuer key.
    fn demo_wanted(&self) -> bool {
        if self.no_demo {
            return false;
        }
        self.demo
            || (self.sites_file.is_none()
                && self.store.trim() == DEFAULT_STORE
                && self.trust_key_file.is_none())
    }

    /// The salt secrets of `--salt-secret-file` or `FOOTFALL_SALT_SECRET`; errors name
    /// the setting (never the secret).
    fn salt_secrets(&self) -> Result<Option<ConfiguredSecrets>, ConfigError> {
        match (&self.salt_secret_file, &self.salt_secret) {
            (Some(_), Some(_)) => Err(bad(
                "--salt-secret / FOOTFALL_SALT_SECRET",
                "give the salt secrets either in a file (--salt-secret-file) or in the \
                 variable, not both",
            )),
            (Some(path), None) => {
                let setting = format!("{SALT_SECRET_SETTING} ({})", path.display());
                let text =
                    std::fs::read_to_string(path).map_err(|e| bad(&setting, e.to_string()))?;
                let secrets = footfall::salts::SaltSecrets::parse(&text)
                    .map_err(|e| bad(&setting, e.to_string()))?;
                Ok(Some(ConfiguredSecrets {
                    secrets,
                    origin: format!("--salt-secret-file {}", path.display()),
                }))
            }
            (None, Some(text)) => {
                let secrets = footfall::salts::SaltSecrets::parse(text)
                    .map_err(|e| bad("--salt-secret / FOOTFALL_SALT_SECRET", e.to_string()))?;
                Ok(Some(ConfiguredSecrets {
                    secrets,
                    origin: "FOOTFALL_SALT_SECRET".to_owned(),
                }))
            }
            (None, None) => Ok(None),
        }
    }
}

/// The networks of `--trusted-proxies`, as `TrustedProxies::parse` reads them (which
/// has checked the list first, so its error messages are the ones users see).
fn parse_networks(list: &str) -> Result<Vec<ipnet::IpNet>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<ipnet::IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| format!("not an address or network: {item:?}"))
        })
        .collect()
}

/// The store `footfall serve` opens when none is configured: an embedded store in the
/// working directory. Any other store means a deployment, which gets no demo site.
pub const DEFAULT_STORE: &str = "./footfall-data";

/// True when `location` names a Redis store (any of its schemes).
fn is_redis(location: &str) -> bool {
    location
        .trim_start()
        .split_once(':')
        .is_some_and(|(scheme, _)| {
            matches!(
                scheme,
                "redis" | "rediss" | "redis+cluster" | "rediss+cluster"
            )
        })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn parse(args: &[&str]) -> Result<Config, ConfigError> {
        let mut argv = vec!["footfall"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)
            .expect("flags parse")
            .serve
            .validate()
    }

    #[test]
    fn defaults_are_loopback_with_the_demo_site() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.admin_listen.to_string(), "127.0.0.1:9464");
        assert_eq!(config.store, "./footfall-data");
        assert_eq!(config.sites.len(), 1);
        assert_eq!(config.sites[0].id.as_str(), "demo");
    }

    #[test]
    fn the_demo_site_is_on_only_on_a_bare_install() {
        let ids = |config: &Config| -> Vec<String> {
            config
                .sites
                .iter()
                .map(|site| site.id.to_string())
                .collect()
        };
        let dir = tempfile::tempdir().unwrap();
        let sites_file = dir.path().join("sites.toml");
        std::fs::write(
            &sites_file,
            "[[sites]]\nid = \"caukee\"\nhostnames = [\"caukee.vn\"]\n",
        )
        .unwrap();
        let key = dir.path().join("issuer.key");
        std::fs::write(
            &key,
            crate::trust::Keyring::generate().unwrap().to_key_file(),
        )
        .unwrap();
        let (sites_file, key) = (sites_file.to_str().unwrap(), key.to_str().unwrap());

        // No flags: the demo footer and its trust badge, as a newcomer expects.
        assert_eq!(ids(&parse(&[]).unwrap()), ["demo"]);
        assert_eq!(
            ids(&parse(&["--store", "./footfall-data"]).unwrap()),
            ["demo"]
        );
        // A sites file, another store or a trust key is a deployment: no demo.
        assert_eq!(
            ids(&parse(&["--sites-file", sites_file]).unwrap()),
            ["caukee"]
        );
        for store in ["memory:", "/var/lib/footfall", "footfall-data"] {
            assert!(
                ids(&parse(&["--store", store]).unwrap()).is_empty(),
                "{store}"
            );
        }
        let signed = parse(&["--trust-key-file", key]).unwrap();
        assert!(signed.options.trust_keyring.is_some());
        assert!(
            ids(&signed).is_empty(),
            "the demo's localhost record is never signed with a configured key"
        );
        assert!(ids(&parse(&["--no-demo"]).unwrap()).is_empty());
        // Asked for on purpose (a trial, a test), it comes back, but never under a key.
        assert_eq!(
            ids(&parse(&["--demo", "--sites-file", sites_file, "--store", "memory:"]).unwrap()),
            ["demo", "caukee"]
        );
        let error = parse(&["--demo", "--trust-key-file", key]).unwrap_err();
        assert!(error.setting.contains("FOOTFALL_DEMO"), "{error}");
        assert!(error.message.contains("--trust-key-file"), "{error}");
    }

    #[test]
    fn errors_name_the_setting() {
        let cases: &[(&[&str], &str)] = &[
            (&["--listen", "nowhere"], "FOOTFALL_LISTEN"),
            (&["--admin-listen", "1.2.3.4"], "FOOTFALL_ADMIN_LISTEN"),
            (
                &["--trusted-proxies", "10.0.0.0/99"],
                "FOOTFALL_TRUSTED_PROXIES",
            ),
            (&["--admin-tokens", "short"], "FOOTFALL_ADMIN_TOKENS"),
            (
                &["--admin-tokens-file", "/nonexistent/tokens.toml"],
                "FOOTFALL_ADMIN_TOKENS_FILE",
            ),
            (&["--buffer-capacity", "0"], "FOOTFALL_BUFFER_CAPACITY"),
            (&["--flush-interval-ms", "0"], "FOOTFALL_FLUSH_INTERVAL_MS"),
            (&["--rate-limit", "0"], "FOOTFALL_RATE_LIMIT"),
            (&["--visitor-budget", "0"], "FOOTFALL_VISITOR_BUDGET"),
            (&["--log-format", "xml"], "FOOTFALL_LOG_FORMAT"),
            (&["--request-timeout", "0"], "FOOTFALL_REQUEST_TIMEOUT"),
            (&["--idle-timeout", "0"], "FOOTFALL_IDLE_TIMEOUT"),
            (
                &["--max-connections-per-client", "0"],
                "FOOTFALL_MAX_CONNECTIONS_PER_CLIENT",
            ),
            (&["--salt-secret", "short"], "FOOTFALL_SALT_SECRET"),
            (&["--max-connections", "0"], "FOOTFALL_MAX_CONNECTIONS"),
            (
                &["--sites-file", "/nonexistent/sites.toml"],
                "FOOTFALL_SITES_FILE",
            ),
            (&["--bot-patterns", "ab"], "FOOTFALL_BOT_PATTERNS"),
            (&["--human-patterns", "ab"], "FOOTFALL_HUMAN_PATTERNS"),
            (&["--store", " "], "FOOTFALL_STORE"),
            (&["--redis-tls-ca", "ca.pem"], "FOOTFALL_REDIS_TLS_CA"),
            (
                &["--store", "redis://r:6379", "--redis-tls-cert", "c.pem"],
                "FOOTFALL_REDIS_TLS_CERT",
            ),
            (
                &["--store", "rediss://r:6379", "--redis-tls-cert", "c.pem"],
                "FOOTFALL_REDIS_TLS_KEY",
            ),
            (
                &[
                    "--store",
                    "rediss+cluster://r:7000",
                    "--redis-tls-key",
                    "k.pem",
                ],
                "FOOTFALL_REDIS_TLS_CERT",
            ),
        ];
        for (args, setting) in cases {
            let error = parse(args).unwrap_err();
            assert!(error.setting.contains(setting), "{args:?}: {error}");
        }
    }

    #[test]
    fn retired_trust_keys_are_published_beside_the_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("issuer.key");
        let retired = dir.path().join("retired.json");
        let current = crate::trust::Keyring::generate().unwrap();
        let old = crate::trust::Keyring::generate().unwrap();
        std::fs::write(&key, current.to_key_file()).unwrap();
        std::fs::write(
            &retired,
            serde_json::to_string(&old.keys_document()).unwrap(),
        )
        .unwrap();
        let (key, retired) = (key.to_str().unwrap(), retired.to_str().unwrap());

        let config = parse(&["--trust-key-file", key, "--trust-retired-keys", retired]).unwrap();
        let keyring = config.options.trust_keyring.expect("a keyring");
        let ids: Vec<String> = keyring
            .keys_document()
            .keys
            .into_iter()
            .map(|entry| entry.key_id)
            .collect();
        assert_eq!(ids, [current.key_id(), old.key_id()]);

        let error = parse(&["--trust-retired-keys", retired]).unwrap_err();
        assert!(
            error.setting.contains("FOOTFALL_TRUST_RETIRED_KEYS"),
            "{error}"
        );
        std::fs::write(dir.path().join("retired.json"), "{\"keys\": 1}").unwrap();
        let error = parse(&["--trust-key-file", key, "--trust-retired-keys", retired]).unwrap_err();
        assert!(
            error.setting.contains("FOOTFALL_TRUST_RETIRED_KEYS"),
            "{error}"
        );
        assert!(error.message.contains("retired.json"), "{error}");
    }

    #[test]
    fn redis_tls_flags_become_store_options() {
        let config = parse(&[
            "--store",
            "rediss://redis.internal:6380/0",
            "--redis-tls-ca",
            "/etc/footfall/ca.pem",
            "--redis-tls-cert",
            "/etc/footfall/client.pem",
            "--redis-tls-key",
            "/etc/footfall/client.key",
            "--salt-secret",
            SECRET,
        ])
        .unwrap();
        assert_eq!(
            config.store_options.redis_tls,
            RedisTls {
                ca_cert: Some("/etc/footfall/ca.pem".into()),
                client_cert: Some("/etc/footfall/client.pem".into()),
                client_key: Some("/etc/footfall/client.key".into()),
            }
        );
        let config = parse(&[
            "--store",
            "rediss+cluster://a:7000,b:7001",
            "--salt-secret",
            SECRET,
        ])
        .unwrap();
        assert!(config.store_options.redis_tls.is_empty());
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef-config-tests";

    #[test]
    fn a_redis_store_needs_a_salt_secret_from_a_file_or_the_variable() {
        for store in [
            "redis://r:6379/0",
            "rediss://r:6380",
            "redis+cluster://a:1,b:2",
        ] {
            let error = parse(&["--store", store]).unwrap_err();
            assert!(
                error.setting.contains("FOOTFALL_SALT_SECRET_FILE"),
                "{error}"
            );
            assert!(error.message.contains("FOOTFALL_SALT_SECRET"), "{error}");
        }
        let config = parse(&["--store", "redis://r:6379/0", "--salt-secret", SECRET]).unwrap();
        let secrets = config.salt_secrets.expect("configured");
        assert_eq!(secrets.origin, "FOOTFALL_SALT_SECRET");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("salt-secrets");
        let previous = "fedcba9876543210fedcba9876543210-the-previous-one";
        std::fs::write(
            &file,
            format!("# current\n{SECRET}\n# previous\n{previous}\n"),
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let config = parse(&["--store", "redis://r/", "--salt-secret-file", path]).unwrap();
        let secrets = config.salt_secrets.expect("configured").secrets;
        assert_eq!(secrets.key_ids().len(), 2);

        let error = parse(&["--salt-secret-file", path, "--salt-secret", SECRET]).unwrap_err();
        assert!(error.setting.contains("FOOTFALL_SALT_SECRET"), "{error}");
        // A bad secret is named by its setting, and never printed.
        std::fs::write(&file, "too-short-a-secret\n").unwrap();
        let error = parse(&["--salt-secret-file", path]).unwrap_err();
        assert!(error.setting.contains("salt-secrets"), "{error}");
        assert!(!error.to_string().contains("too-short"), "{error}");
        let error = parse(&["--salt-secret", "too-short-a-secret"]).unwrap_err();
        assert!(error.setting.contains("FOOTFALL_SALT_SECRET"), "{error}");
        assert!(!error.to_string().contains("too-short"), "{error}");
        // The embedded and memory stores need none.
        assert!(parse(&[]).unwrap().salt_secrets.is_none());
    }

    #[test]
    fn idle_connections_and_client_shares_default_sensibly() {
        let config = parse(&[]).unwrap();
        let limits = &config.connection_limits;
        // An idle HTTP/2 connection is closed when an idle HTTP/1 one is.
        assert_eq!(limits.idle_timeout, limits.header_read_timeout);
        assert_eq!(limits.idle_timeout, Duration::from_secs(5));
        assert_eq!(limits.max_connections_per_client, 256);
        let config = parse(&["--header-read-timeout", "2", "--max-connections", "100"]).unwrap();
        assert_eq!(
            config.connection_limits.idle_timeout,
            Duration::from_secs(2)
        );
        assert_eq!(config.connection_limits.max_connections_per_client, 12);
        let config =
            parse(&["--idle-timeout", "30", "--max-connections-per-client", "50"]).unwrap();
        assert_eq!(
            config.connection_limits.idle_timeout,
            Duration::from_secs(30)
        );
        assert_eq!(config.connection_limits.max_connections_per_client, 50);
        // Trusted proxies carry many clients: exempt from the share.
        let config = parse(&["--trusted-proxies", "10.0.0.0/8, 192.0.2.1"]).unwrap();
        assert_eq!(config.connection_limits.exempt_from_share.len(), 2);
        for bad in ["0", "10001"] {
            let error = parse(&["--max-connections-per-client", bad]).unwrap_err();
            assert!(
                error
                    .setting
                    .contains("FOOTFALL_MAX_CONNECTIONS_PER_CLIENT"),
                "{error}"
            );
        }
    }

    #[test]
    fn logs_are_json_unless_a_person_reads_them_at_a_terminal() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.log_format, LogFormat::Auto);
        assert!(
            config.log_format.json(false),
            "a file or a journal gets JSON"
        );
        assert!(!config.log_format.json(true), "a terminal gets text");
        assert!(
            parse(&["--log-format", "json"])
                .unwrap()
                .log_format
                .json(true)
        );
        assert!(
            !parse(&["--log-format", "text"])
                .unwrap()
                .log_format
                .json(false)
        );
    }

    #[test]
    fn sites_file_errors_name_the_file_and_setting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sites.toml");
        std::fs::write(&path, "[[sites]]\nid = \"caukee\"\nhostnames = [\"caukee.vn\"]\ntime_zone = \"Nowhere/City\"\n").unwrap();
        let error = parse(&["--sites-file", path.to_str().unwrap()]).unwrap_err();
        assert!(error.setting.contains("sites.toml"), "{error}");
        assert!(error.message.contains("sites[0].time_zone"), "{error}");
        std::fs::write(
            &path,
            "[[sites]]\nid = \"demo\"\nhostnames = [\"example.vn\"]\n",
        )
        .unwrap();
        let config = parse(&["--sites-file", path.to_str().unwrap()]).unwrap();
        assert_eq!(
            config.sites.len(),
            1,
            "the file's demo replaces the built-in one"
        );
        assert_eq!(config.sites[0].hostnames, ["example.vn"]);
    }
}
