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
    #[arg(long, env = "FOOTFALL_STORE", default_value = "./footfall-data")]
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
    /// Proxies whose `X-Forwarded-For` is believed: addresses and CIDR networks,
    /// comma-separated.
    #[arg(long, env = "FOOTFALL_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,
    /// A TOML file of `[[sites]]` registered at start-up.
    #[arg(long, env = "FOOTFALL_SITES_FILE")]
    pub sites_file: Option<PathBuf>,
    /// Do not register the `demo` site (localhost) on start-up.
    #[arg(long, env = "FOOTFALL_NO_DEMO")]
    pub no_demo: bool,
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
    /// Seconds a connection may sit with no request in flight before it is closed.
    #[arg(
        long = "idle-timeout",
        env = "FOOTFALL_IDLE_TIMEOUT",
        default_value_t = 60
    )]
    pub idle_timeout_secs: u64,
    /// The most client connections open at once on each listener; further connections
    /// wait in the kernel's backlog until one closes. Keep it below the process's file
    /// descriptor limit.
    #[arg(
        long = "max-connections",
        env = "FOOTFALL_MAX_CONNECTIONS",
        default_value_t = 10_000
    )]
    pub max_connections: usize,
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
    /// Log format: `text` or `json`.
    #[arg(long, env = "FOOTFALL_LOG_FORMAT", default_value = "text")]
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
    /// JSON logs.
    pub json_logs: bool,
}

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
        let trusted_proxies = TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|m| bad("--trusted-proxies / FOOTFALL_TRUSTED_PROXIES", m))?;
        if let Some(short) = self
            .admin_tokens
            .iter()
            .map(|t| t.trim())
            .find(|t| !t.is_empty() && t.len() < 16)
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
        if self.max_concurrency == 0 {
            return Err(bad(
                "--max-concurrency / FOOTFALL_MAX_CONCURRENCY",
                "must be at least 1",
            ));
        }
        let json_logs = match self.log_format.as_str() {
            "text" => false,
            "json" => true,
            other => {
                return Err(bad(
                    "--log-format / FOOTFALL_LOG_FORMAT",
                    format!("expected text or json, got {other:?}"),
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
        let idle_timeout = positive(
            "--idle-timeout / FOOTFALL_IDLE_TIMEOUT",
            self.idle_timeout_secs,
        )?;
        if self.max_connections == 0 {
            return Err(bad(
                "--max-connections / FOOTFALL_MAX_CONNECTIONS",
                "must be at least 1",
            ));
        }
        let counts_fresh_for =
            positive("--counts-ttl / FOOTFALL_COUNTS_TTL", self.counts_ttl_secs)?;
        let shutdown_grace = positive(
            "--shutdown-grace / FOOTFALL_SHUTDOWN_GRACE",
            self.shutdown_grace_secs,
        )?;

        let mut sites = Vec::new();
        if !self.no_demo {
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
        let options = Options {
            trust_keyring,
            buffer: BufferConfig {
                capacity: self.buffer_capacity,
                batch_max: self.flush_batch,
                flush_interval: Duration::from_millis(self.flush_interval_ms),
                shutdown_grace,
                max_in_flight: self.flush_concurrency,
            },
            trusted_proxies,
            rate_limit_per_minute: self.rate_limit,
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
                ..ConnectionLimits::default()
            },
            json_logs,
        })
    }
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
    fn errors_name_the_setting() {
        let cases: &[(&[&str], &str)] = &[
            (&["--listen", "nowhere"], "FOOTFALL_LISTEN"),
            (&["--admin-listen", "1.2.3.4"], "FOOTFALL_ADMIN_LISTEN"),
            (
                &["--trusted-proxies", "10.0.0.0/99"],
                "FOOTFALL_TRUSTED_PROXIES",
            ),
            (&["--admin-tokens", "short"], "FOOTFALL_ADMIN_TOKENS"),
            (&["--buffer-capacity", "0"], "FOOTFALL_BUFFER_CAPACITY"),
            (&["--flush-interval-ms", "0"], "FOOTFALL_FLUSH_INTERVAL_MS"),
            (&["--rate-limit", "0"], "FOOTFALL_RATE_LIMIT"),
            (&["--log-format", "xml"], "FOOTFALL_LOG_FORMAT"),
            (&["--request-timeout", "0"], "FOOTFALL_REQUEST_TIMEOUT"),
            (&["--idle-timeout", "0"], "FOOTFALL_IDLE_TIMEOUT"),
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
        let config = parse(&["--store", "rediss+cluster://a:7000,b:7001"]).unwrap();
        assert!(config.store_options.redis_tls.is_empty());
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
