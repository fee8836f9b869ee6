//! The Redis backend: one server, or a Redis Cluster.
//!
//! # Round trips
//!
//! - [`Store::apply`]: `EVALSHA` of a small Lua script (see `apply.lua`). On a single
//!   node one call carries many sites' parts (a few calls for a large batch), all in one
//!   pipeline: one round trip. On a Cluster a script may only touch one slot, and every
//!   key of a site shares the `{site}` hash tag, so the batch is split by site and the
//!   per-site calls are sent concurrently: one round trip per site-slot group, in
//!   parallel.
//! - [`Store::read`]: one pipeline of `MGET` (counters), `PFCOUNT` (sketches) and a
//!   small read-only script counting a union of bounded sets (`SUNION`); on a Cluster one
//!   pipeline per site, in parallel.
//!
//! # Bounded sets
//!
//! A bounded set is a Redis set of 16-byte ids. The overflow mark is the empty string as
//! a member: no id can equal it, and inside the set it shares the set's slot and TTL and
//! is scanned and restored with it, so no second key has to be kept in step.
//!
//! # Retries
//!
//! What is idempotent is retried (reads, `SET`, `SET … NX`, `DEL`, restores). A batch
//! increments counters, so it is made idempotent: each [`Store::apply`] borrows a lane
//! (one per concurrent call) and numbers its calls, and each site's script call carries
//! the lane's token and number and records them, atomically with its writes, in a small
//! key of the site (`apply.lua`). A call whose fate is unknown (a timeout, a connection
//! lost mid-request) is sent again with the same token for up to
//! [`RedisStore::APPLY_RETRY_BUDGET`]; if it had run, running it again changes nothing
//! (and reports no visits started: the counts are exact, that one report is not).
//! Only when that budget runs out is the failure ambiguous, and the caller decides. A
//! failure to connect at all is not ambiguous. A compare-and-swap is sent once.

mod apply;
mod tls;
mod url;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};
use std::time::Duration;

use jiff::Timestamp;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::io::tcp::TcpSettings;
use redis::{Cmd, ErrorKind, IntoConnectionInfo, RedisError, ServerErrorKind, Value};

use super::{
    ApplyReport, Entry, EntryValue, Read, RedisTls, SET_OVERFLOWED, ScanCursor, Store, StoreError,
    WriteBatch,
};
use crate::keys::{Key, KeyKind};
use crate::sketch::Hll;

/// The pause before retrying an idempotent request, long enough for the connection
/// manager to start reconnecting, short enough not to matter to a reader.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Counts the union of the bounded sets in KEYS: -1 when one carries the overflow mark
/// (checked first, so an overflowed union is never built), else the number of members.
/// Read-only, so it is retried like any read. `SUNION` runs next to the data: only one
/// integer crosses the network, however many ids the sets hold.
const SET_UNION_LUA: &str = r"
for _, name in ipairs(KEYS) do
  if redis.call('SISMEMBER', name, '') == 1 then return -1 end
end
return #redis.call('SUNION', unpack(KEYS))
";

/// The overflow mark inside a bounded set (see the module docs).
const OVERFLOW_MARK: &[u8] = b"";

/// A store in Redis or a Redis Cluster.
///
/// Cheap to clone: clones share the connections. Create it with [`RedisStore::connect`].
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    url: String,
    script_sha: String,
    warnings: Vec<String>,
    lanes: Arc<Lanes>,
}

/// The lanes batches are sent on: each [`Store::apply`] borrows one for its whole call,
/// so a lane's calls never overlap and its call numbers only grow; that is what lets a
/// site's token tell a call sent again from a new one (see `apply.lua`).
#[derive(Debug)]
struct Lanes {
    /// Random, unique to this connected store (and shared by its clones).
    writer: String,
    free: std::sync::Mutex<Vec<Lane>>,
    opened: AtomicU32,
}

#[derive(Debug)]
struct Lane {
    id: u32,
    seq: u64,
}

/// A lane borrowed by one call; it goes back to the free list when the call ends, or is
/// dropped half way (a cancelled write).
struct LaneGuard<'l> {
    lanes: &'l Lanes,
    lane: Option<Lane>,
}

impl Lanes {
    fn new() -> Result<Lanes, StoreError> {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(|error| {
            StoreError::Config(format!("no random numbers for the writer id: {error}"))
        })?;
        Ok(Lanes {
            writer: bytes.iter().map(|b| format!("{b:02x}")).collect(),
            free: std::sync::Mutex::new(Vec::new()),
            opened: AtomicU32::new(0),
        })
    }

    /// A free lane, or a new one when every lane is busy; its next call number.
    fn borrow(&self) -> (LaneGuard<'_>, apply::Token) {
        let reused = self
            .free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let mut lane = reused.unwrap_or_else(|| Lane {
            id: self.opened.fetch_add(1, AtomicOrdering::Relaxed),
            seq: 0,
        });
        lane.seq += 1;
        let token = apply::Token {
            lane: format!("{}.{}", self.writer, lane.id),
            seq: lane.seq,
        };
        let guard = LaneGuard {
            lanes: self,
            lane: Some(lane),
        };
        (guard, token)
    }
}

impl Drop for LaneGuard<'_> {
    fn drop(&mut self) {
        if let Some(lane) = self.lane.take() {
            self.lanes
                .free
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(lane);
        }
    }
}

#[derive(Clone)]
enum Connection {
    /// One multiplexed connection, reconnected in the background.
    Single(ConnectionManager),
    /// Two cluster connections: `writes` never retries (batches are not idempotent),
    /// `idempotent` lets redis-rs retry, redirect and reconnect.
    Cluster {
        writes: ClusterConnection,
        idempotent: ClusterConnection,
    },
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &url::redact(&self.url))
            .field(
                "mode",
                &match self.connection {
                    Connection::Single(_) => "single",
                    Connection::Cluster { .. } => "cluster",
                },
            )
            .finish_non_exhaustive()
    }
}

/// Whether a request may be sent again after an unclear failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Retry {
    /// Reads and absolute writes: retry once.
    Idempotent,
    /// Increments: never retry; an unclear failure is ambiguous.
    Once,
}

impl RedisStore {
    /// How long to wait for a TCP connection (and Redis's handshake) to a node. Loopback
    /// and LAN connects take well under a millisecond, and a lost SYN is retransmitted after
    /// one second: past that the server is down and failing fast beats queueing hits.
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

    /// How long to wait for Redis to answer a request. Every spurious timeout of a write
    /// batch is an ambiguous, possibly lost write, so this covers what a healthy server
    /// can take: a batch of up to 20,000 hits (about 0.1 s of Redis CPU) behind three
    /// others on the same connection, on a server stalled by a fork for a snapshot or an
    /// AOF rewrite or starved of CPU for a few seconds. A 2 s bound dropped 223,090 hits
    /// as ambiguous in a 4-minute soak on a busy 2-core machine; 5 s is still well under
    /// the shutdown grace, and a dead server is found at once (a refused or reset
    /// connection), not by this timeout. Reads are bounded by the callers' own timeouts.
    pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

    /// The outer bound of one store call, reconnection and retries included, so that no call
    /// can hang whatever redis-rs does inside: one connect, one request, one retry.
    pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(12);

    /// How long [`Store::apply`] keeps sending again the part of a batch whose fate it
    /// does not know (a timeout, a connection lost mid-request) before it gives up and
    /// reports the batch ambiguous. The batch's tokens make sending again safe; 30 s
    /// outlasts a Redis starved of CPU or paused by a fork for seconds, and a failover.
    pub const APPLY_RETRY_BUDGET: Duration = Duration::from_secs(30);

    /// Connects to `url`: `redis://host:port/db` for one server, or
    /// `redis+cluster://[user:password@]host1:port1,host2:port2,…` for the seed nodes of
    /// a Redis Cluster; `rediss://…` and `rediss+cluster://…` are the same over TLS,
    /// verified against the system's trust store. Loads the batch script and checks the
    /// server's configuration (see [`server_warnings`](Self::server_warnings)).
    pub async fn connect(url: &str) -> Result<RedisStore, StoreError> {
        Self::connect_with(url, &RedisTls::default()).await
    }

    /// [`connect`](Self::connect) with certificates for TLS: a private CA, a client
    /// certificate for mutual TLS. Giving any with a URL that is not `rediss://` or
    /// `rediss+cluster://` is a [`StoreError::Config`]; so are unreadable or invalid
    /// files (the error names the file) and a server whose certificate fails verification.
    pub async fn connect_with(url: &str, tls: &RedisTls) -> Result<RedisStore, StoreError> {
        let target = url::parse(url)?;
        if !target.tls() && !tls.is_empty() {
            return Err(RedisTls::unused(&url::redact(url)));
        }
        let certificates = if target.tls() {
            tls::install_crypto_provider();
            tls::certificates(tls)?
        } else {
            None
        };
        let tcp = TcpSettings::default().set_nodelay(true);
        let bad_url = |error: RedisError| {
            StoreError::Config(format!("Redis URL {:?}: {error}", url::redact(url)))
        };
        let connection = match target {
            url::Target::Single { url, .. } => {
                let info = url.as_str().into_connection_info().map_err(bad_url)?;
                // redis-rs leaves Nagle's algorithm on: with pipelined requests that
                // adds 40 ms stalls (NOTES.md).
                let info = info.set_tcp_settings(tcp);
                let client = match certificates {
                    Some(certificates) => redis::Client::build_with_tls(info, certificates),
                    None => redis::Client::open(info),
                }
                .map_err(bad_url)?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Self::CONNECT_TIMEOUT))
                    .set_response_timeout(Some(Self::RESPONSE_TIMEOUT))
                    // One reconnect attempt per failed request: the next request tries
                    // again, and a request never waits behind a long backoff.
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(200));
                let manager = within(
                    ConnectionManager::new_with_config(client, config),
                    Retry::Idempotent,
                )
                .await?
                .map_err(|error| connect_error(url.as_str(), error))?;
                Connection::Single(manager)
            }
            url::Target::Cluster {
                seeds,
                username,
                password,
                ..
            } => {
                let builder = |retries: u32| {
                    // The seeds' scheme (`rediss://`) turns TLS on for every node.
                    let mut builder = ClusterClientBuilder::new(seeds.clone())
                        .connection_timeout(Self::CONNECT_TIMEOUT)
                        .response_timeout(Self::RESPONSE_TIMEOUT)
                        .tcp_settings(tcp.clone())
                        .retries(retries);
                    if let Some(username) = &username {
                        builder = builder.username(username);
                    }
                    if let Some(password) = &password {
                        builder = builder.password(password);
                    }
                    if let Some(certificates) = &certificates {
                        builder = builder.certs(certificates.clone());
                    }
                    builder.build().map_err(bad_url)
                };
                let writes_client = builder(0)?;
                let idempotent_client = builder(3)?;
                let writes = within(writes_client.get_async_connection(), Retry::Idempotent)
                    .await?
                    .map_err(|error| connect_error(url, error))?;
                let idempotent =
                    within(idempotent_client.get_async_connection(), Retry::Idempotent)
                        .await?
                        .map_err(|error| connect_error(url, error))?;
                Connection::Cluster { writes, idempotent }
            }
        };
        let mut store = RedisStore {
            connection,
            url: url.to_owned(),
            script_sha: String::new(),
            warnings: Vec::new(),
            lanes: Arc::new(Lanes::new()?),
        };
        store.script_sha = store.load_script().await?;
        store.warnings = store.check_configuration().await;
        Ok(store)
    }

    /// What is risky about the server's configuration for counting, in words for an
    /// operator: an eviction policy other than `noeviction` (Redis may drop counters when
    /// full), no AOF, or no persistence at all. Checked once at connect; if `CONFIG` is
    /// disabled (managed Redis), one warning says the check could not be made.
    pub fn server_warnings(&self) -> &[String] {
        &self.warnings
    }

    /// True when connected to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.connection, Connection::Cluster { .. })
    }

    async fn load_script(&self) -> Result<String, StoreError> {
        let mut cmd = redis::cmd("SCRIPT");
        cmd.arg("LOAD").arg(apply::APPLY_LUA);
        // SCRIPT LOAD goes to every master of a Cluster.
        let value = self.run_one(cmd, Retry::Idempotent).await?;
        let sha = match value {
            Value::BulkString(bytes) => String::from_utf8(bytes).ok(),
            Value::SimpleString(text) => Some(text),
            _ => None,
        };
        sha.ok_or_else(|| backend("SCRIPT LOAD returned no digest", None))
    }

    /// The masters' addresses, sorted (a Cluster's scan and configuration check visit
    /// each); `None` on a single node.
    async fn masters(&self) -> Result<Option<Vec<(String, u16)>>, StoreError> {
        let Connection::Cluster { .. } = self.connection else {
            return Ok(None);
        };
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("NODES");
        let text = match self.run_one(cmd, Retry::Idempotent).await? {
            Value::BulkString(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Value::VerbatimString { text, .. } => text,
            other => return Err(unexpected("CLUSTER NODES", &other)),
        };
        let mut masters = Vec::new();
        for line in text.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            let (Some(address), Some(flags)) = (fields.get(1), fields.get(2)) else {
                continue;
            };
            let flags: Vec<&str> = flags.split(',').collect();
            if !flags.contains(&"master") || flags.contains(&"fail") {
                continue;
            }
            // `ip:port@cport[,hostname]`
            let address = address.split(['@', ',']).next().unwrap_or_default();
            if let Some((host, port)) = address.rsplit_once(':')
                && let Ok(port) = port.parse::<u16>()
                && !host.is_empty()
            {
                masters.push((host.to_owned(), port));
            }
        }
        masters.sort();
        Ok(Some(masters))
    }

    async fn check_configuration(&self) -> Vec<String> {
        let nodes: Vec<Option<(String, u16)>> = match self.masters().await {
            Ok(Some(masters)) => masters.into_iter().map(Some).collect(),
            Ok(None) => vec![None],
            Err(error) => {
                return vec![format!(
                    "could not list the cluster's masters to check their configuration \
                     ({error}); make sure maxmemory-policy is noeviction and AOF is on"
                )];
            }
        };
        let mut warnings = Vec::new();
        for node in nodes {
            let name = node.as_ref().map_or_else(
                || "Redis".to_owned(),
                |(h, p)| format!("Redis node {h}:{p}"),
            );
            let mut cmd = redis::cmd("CONFIG");
            cmd.arg("GET")
                .arg("maxmemory-policy")
                .arg("appendonly")
                .arg("save");
            let reply = match &node {
                None => self.run_one(cmd, Retry::Idempotent).await,
                Some((host, port)) => self.run_on_node(cmd, host, *port).await,
            };
            let Ok(Some(config)) = reply.map(config_pairs) else {
                warnings.push(format!(
                    "could not check {name}'s configuration (CONFIG GET is refused or \
                     unreadable, as on many managed services): make sure it runs with \
                     maxmemory-policy noeviction and AOF (appendonly yes)"
                ));
                continue;
            };
            let get = |name: &str| config.get(name).map(String::as_str).unwrap_or_default();
            let policy = get("maxmemory-policy");
            if policy != "noeviction" {
                warnings.push(format!(
                    "{name} has maxmemory-policy {policy:?}: when memory runs out it may \
                     evict counters and visitor sketches, silently losing totals; set \
                     maxmemory-policy noeviction"
                ));
            }
            let aof = get("appendonly") == "yes";
            let save = get("save");
            if !aof && save.trim().is_empty() {
                warnings.push(format!(
                    "{name} persists nothing (appendonly no, save \"\"): a restart loses \
                     every counter; turn on AOF (appendonly yes, appendfsync everysec)"
                ));
            } else if !aof {
                warnings.push(format!(
                    "{name} persists only RDB snapshots (save {save:?}): a crash loses \
                     the counts since the last snapshot; turn on AOF (appendonly yes, \
                     appendfsync everysec)"
                ));
            }
        }
        warnings
    }

    /// Runs one command with no key (or routed by redis-rs: `SCRIPT LOAD` to all masters).
    async fn run_one(&self, cmd: Cmd, retry: Retry) -> Result<Value, StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = within(
                async {
                    match &self.connection {
                        Connection::Single(manager) => {
                            cmd.query_async::<Value>(&mut manager.clone()).await
                        }
                        Connection::Cluster { idempotent, writes } => {
                            let mut connection = match retry {
                                Retry::Idempotent => idempotent.clone(),
                                Retry::Once => writes.clone(),
                            };
                            cmd.query_async::<Value>(&mut connection).await
                        }
                    }
                },
                retry,
            )
            .await
            .and_then(|result| result.map_err(|error| map_error(error, retry)));
            match result {
                Err(error) if should_retry(&error, retry, attempt) => {
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                other => return other.and_then(server_error_to_store),
            }
        }
    }

    async fn run_on_node(&self, cmd: Cmd, host: &str, port: u16) -> Result<Value, StoreError> {
        let Connection::Cluster { idempotent, .. } = &self.connection else {
            return self.run_one(cmd, Retry::Idempotent).await;
        };
        let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
            host: host.to_owned(),
            port,
        });
        within(
            idempotent.clone().route_command(cmd, routing),
            Retry::Idempotent,
        )
        .await?
        .map_err(|error| map_error(error, Retry::Idempotent))
        .and_then(server_error_to_store)
    }

    /// Runs commands tagged by site hash tag and returns their replies in order, server
    /// errors included as [`Value::ServerError`]. One pipeline on a single node; one
    /// pipeline per tag, concurrently, on a Cluster.
    async fn run_grouped(
        &self,
        commands: &[(&str, Cmd)],
        retry: Retry,
    ) -> Result<Vec<Value>, StoreError> {
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = within(self.run_grouped_once(commands, retry), retry)
                .await
                .and_then(|result| result);
            match result {
                Err(error) if should_retry(&error, retry, attempt) => {
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                other => return other,
            }
        }
    }

    async fn run_grouped_once(
        &self,
        commands: &[(&str, Cmd)],
        retry: Retry,
    ) -> Result<Vec<Value>, StoreError> {
        let (values, failure) = self.run_groups(commands, retry).await;
        match failure {
            Some(error) => Err(error),
            None => Ok(values
                .into_iter()
                .map(|v| v.unwrap_or(Value::Nil))
                .collect()),
        }
    }

    /// Sends commands tagged by site hash tag, like [`run_grouped`](Self::run_grouped),
    /// once, and returns each command's reply, `None` where its group failed, with the
    /// first failure (an ambiguous one before a clear one). On a Cluster some groups may
    /// succeed while others fail.
    async fn run_groups(
        &self,
        commands: &[(&str, Cmd)],
        retry: Retry,
    ) -> (Vec<Option<Value>>, Option<StoreError>) {
        let (writes, idempotent) = match &self.connection {
            Connection::Single(manager) => {
                let mut pipeline = redis::pipe();
                pipeline.ignore_errors();
                for (_, cmd) in commands {
                    pipeline.add_command(cmd.clone());
                }
                let reply = pipeline
                    .query_async::<Vec<Value>>(&mut manager.clone())
                    .await
                    .map_err(|error| map_error(error, retry))
                    .and_then(|values| check_len(values, commands.len()));
                return match reply {
                    Ok(values) => (values.into_iter().map(Some).collect(), None),
                    Err(error) => (vec![None; commands.len()], Some(error)),
                };
            }
            Connection::Cluster { writes, idempotent } => (writes, idempotent),
        };
        let connection = match retry {
            Retry::Idempotent => idempotent,
            Retry::Once => writes,
        };
        let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (index, (tag, _)) in commands.iter().enumerate() {
            groups.entry(tag).or_default().push(index);
        }
        let requests = groups.values().map(|indexes| {
            let mut pipeline = redis::pipe();
            pipeline.ignore_errors();
            for &index in indexes {
                pipeline.add_command(commands[index].1.clone());
            }
            let mut connection = connection.clone();
            async move {
                let values: Vec<Value> = pipeline.query_async(&mut connection).await?;
                Ok::<_, RedisError>(values)
            }
        });
        let replies = futures_util::future::join_all(requests).await;
        let mut values = vec![None; commands.len()];
        // Report the first failure, but only after every group has finished, so that an
        // ambiguous failure is not hidden behind a clear one.
        let mut failure: Option<StoreError> = None;
        for (indexes, reply) in groups.values().zip(replies) {
            let reply = reply
                .map_err(|error| map_error(error, retry))
                .and_then(|group_values| check_len(group_values, indexes.len()));
            match reply {
                Ok(group_values) => {
                    for (&index, value) in indexes.iter().zip(group_values) {
                        values[index] = Some(value);
                    }
                }
                Err(error) => {
                    if failure.as_ref().is_none_or(|f| !f.is_ambiguous()) {
                        failure = Some(error);
                    }
                }
            }
        }
        (values, failure)
    }

    /// Scans one page of one node (`None` = the single server).
    async fn scan_node(
        &self,
        node: Option<(&str, u16)>,
        cursor: u64,
        limit: usize,
    ) -> Result<(u64, Vec<Key>), StoreError> {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor)
            .arg("MATCH")
            // Site keys (`ff:{site}:…`) and the service-wide ones (`ff:registry`,
            // `ff:audit`, `ff:audit:…`); `Key::parse` drops anything else.
            .arg("ff:*")
            .arg("COUNT")
            .arg(limit.max(1));
        let reply = match node {
            None => self.run_one(cmd, Retry::Idempotent).await?,
            Some((host, port)) => self.run_on_node(cmd, host, port).await?,
        };
        let Value::Array(mut parts) = reply else {
            return Err(unexpected("SCAN", &reply));
        };
        let (Some(keys), Some(next)) = (parts.pop(), parts.pop()) else {
            return Err(backend("SCAN returned a short reply", None));
        };
        let next = match next {
            Value::BulkString(bytes) => std::str::from_utf8(&bytes)
                .ok()
                .and_then(|s| s.parse().ok()),
            Value::Int(n) => u64::try_from(n).ok(),
            _ => None,
        }
        .ok_or_else(|| backend("SCAN returned a bad cursor", None))?;
        let Value::Array(keys) = keys else {
            return Err(unexpected("SCAN", &keys));
        };
        let keys = keys
            .into_iter()
            .filter_map(|key| match key {
                Value::BulkString(bytes) => String::from_utf8(bytes).ok(),
                _ => None,
            })
            .filter_map(|raw| Key::parse(&raw))
            .collect();
        Ok((next, keys))
    }

    /// Reads entries of `keys` (`GET` and `PEXPIRETIME`), skipping keys gone meanwhile.
    async fn fetch_entries(&self, keys: Vec<Key>) -> Result<Vec<Entry>, StoreError> {
        let mut commands = Vec::with_capacity(keys.len() * 2);
        for key in &keys {
            let mut get = redis::cmd(if key.kind() == KeyKind::Set {
                "SMEMBERS"
            } else {
                "GET"
            });
            get.arg(key.as_bytes());
            // PEXPIRETIME (Redis 7) gives the absolute deadline, so an entry copied twice
            // carries the same deadline to the millisecond.
            let mut deadline = redis::cmd("PEXPIRETIME");
            deadline.arg(key.as_bytes());
            commands.push((key.hash_tag(), get));
            commands.push((key.hash_tag(), deadline));
        }
        let values = self.run_grouped(&commands, Retry::Idempotent).await?;
        let mut entries = Vec::with_capacity(keys.len());
        for (key, pair) in keys.iter().zip(values.chunks_exact(2)) {
            let set = key.kind() == KeyKind::Set;
            let (bytes, members) = match server_error_to_store(pair[0].clone())? {
                Value::Nil => continue,
                Value::BulkString(bytes) if !set => (bytes, Vec::new()),
                Value::Array(members) | Value::Set(members) if set => {
                    if members.is_empty() {
                        continue;
                    }
                    (Vec::new(), members)
                }
                other => return Err(unexpected("GET or SMEMBERS", &other)),
            };
            let expire_at = match server_error_to_store(pair[1].clone())? {
                Value::Int(-2) => continue,
                Value::Int(-1) => None,
                Value::Int(ms) => Some(Timestamp::from_millisecond(ms).map_err(|error| {
                    backend(
                        &format!("PEXPIRETIME of {key} out of range"),
                        Some(Box::new(error)),
                    )
                })?),
                other => return Err(unexpected("PEXPIRETIME", &other)),
            };
            let value = match key.kind() {
                KeyKind::Counter => EntryValue::Counter(parse_counter(key, &bytes)?),
                KeyKind::Sketch => EntryValue::Sketch(check_sketch(key, bytes)?),
                KeyKind::Set => set_entry(key, members)?,
                KeyKind::Bytes => EntryValue::Bytes(bytes),
            };
            entries.push(Entry {
                key: key.clone(),
                value,
                expire_at,
            });
        }
        Ok(entries)
    }
}

impl RedisStore {
    /// Sends a batch's script calls until each has an answer. A call whose answer is
    /// unknown (a timeout, a connection lost while it was on the wire) is sent again, with
    /// the same token, for up to [`APPLY_RETRY_BUDGET`](Self::APPLY_RETRY_BUDGET): the
    /// token makes a second run of a call that did run change nothing. A call NOSCRIPT
    /// refused did not run: the script is loaded and the call sent again.
    ///
    /// A failure that certainly wrote nothing anywhere is returned at once, unambiguous,
    /// for the caller to retry as it likes (a new call, with new tokens). Once any part of
    /// the batch may have been applied, only this call can finish it: its failure is then
    /// ambiguous, whatever the last error said.
    async fn send_batch(&self, commands: &[(&str, Cmd)]) -> Result<Vec<Value>, StoreError> {
        let mut replies: Vec<Option<Value>> = vec![None; commands.len()];
        let mut maybe_applied = false;
        let mut script_reloaded = false;
        // Once part of the batch may have run, every failure of this call is ambiguous.
        let failed = |error: StoreError, maybe_applied: bool| {
            if maybe_applied {
                ambiguous(error)
            } else {
                error
            }
        };
        let give_up = tokio::time::Instant::now() + Self::APPLY_RETRY_BUDGET;
        let mut pause = RETRY_PAUSE;
        loop {
            let pending: Vec<usize> = (0..commands.len())
                .filter(|&index| replies[index].is_none())
                .collect();
            if pending.is_empty() {
                return Ok(replies
                    .into_iter()
                    .map(|v| v.unwrap_or(Value::Nil))
                    .collect());
            }
            let sending: Vec<(&str, Cmd)> = pending
                .iter()
                .map(|&index| commands[index].clone())
                .collect();
            let (values, failure) = within(self.run_groups(&sending, Retry::Once), Retry::Once)
                .await
                .unwrap_or_else(|timeout| (vec![None; sending.len()], Some(timeout)));
            let mut noscript = false;
            for (&index, value) in pending.iter().zip(values) {
                match value {
                    Some(value) if is_noscript(&value) => noscript = true,
                    Some(value) => {
                        maybe_applied = true;
                        replies[index] = Some(value);
                    }
                    None => {}
                }
            }
            if noscript {
                // After a restart or SCRIPT FLUSH the server has forgotten the script: load
                // it once per call (a server that forgets it again is not spun on).
                if script_reloaded {
                    let error = backend("the server forgot the batch script twice", None);
                    return Err(failed(error, maybe_applied));
                }
                script_reloaded = true;
                let sha = self
                    .load_script()
                    .await
                    .map_err(|error| failed(error, maybe_applied))?;
                if sha != self.script_sha {
                    return Err(backend(
                        "the server hashes the batch script differently",
                        None,
                    ));
                }
            }
            let Some(error) = failure else { continue };
            maybe_applied |= error.is_ambiguous();
            let retryable = matches!(error, StoreError::Unavailable { .. })
                && maybe_applied
                && tokio::time::Instant::now() + pause < give_up;
            if !retryable {
                return Err(failed(error, maybe_applied));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }
}

/// `error`, marked ambiguous: part of what failed may have been applied.
fn ambiguous(error: StoreError) -> StoreError {
    match error {
        StoreError::Unavailable {
            message, source, ..
        } => StoreError::Unavailable {
            message,
            source,
            ambiguous: true,
        },
        other => StoreError::Unavailable {
            message: format!("part of the batch may have been applied: {other}"),
            source: Some(Box::new(other)),
            ambiguous: true,
        },
    }
}

impl Store for RedisStore {
    async fn apply(&self, batch: &WriteBatch) -> Result<ApplyReport, StoreError> {
        let (_lane, token) = self.lanes.borrow();
        let commands = apply::encode_batch(batch, &self.script_sha, self.is_cluster(), &token)?;
        let values = self.send_batch(&commands).await?;
        // Redis refuses a script's first write when it is out of memory (maxmemory with
        // noeviction), and every site's script writes nothing before its first write is
        // checked (it only reads its token): when every site was refused that way,
        // nothing was written and the whole batch may be retried.
        let refused_for_memory =
            |value: &Value| matches!(value, Value::ServerError(error) if error.code() == "OOM");
        if !values.is_empty() && values.iter().all(refused_for_memory) {
            return Err(StoreError::unavailable(
                "Redis is out of memory (maxmemory reached with noeviction): nothing was written",
                false,
            ));
        }
        let mut report = ApplyReport::default();
        let mut failure = None;
        for ((tag, _), value) in commands.iter().zip(values) {
            match value {
                Value::Int(started) => {
                    report.visits_started += u64::try_from(started).unwrap_or_default();
                }
                Value::ServerError(error) => {
                    // The script stopped on a server error (e.g. WRONGTYPE: a key holds
                    // something else); Lua does not roll back, so its site is partly
                    // written, and other sites of the batch were applied.
                    let key = if tag.is_empty() {
                        "ff:{…}:… (one call's sites)".to_owned()
                    } else {
                        format!("ff:{{{tag}}}:…")
                    };
                    failure.get_or_insert(StoreError::Corrupt {
                        key,
                        message: format!(
                            "the batch script failed for these keys (other calls of the \
                             batch were applied, this one maybe in part): {error}"
                        ),
                    });
                }
                other => {
                    failure.get_or_insert(unexpected("the batch script", &other));
                }
            }
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(report),
        }
    }

    async fn read(&self, reads: &[Read], _now: Timestamp) -> Result<Vec<u64>, StoreError> {
        // Commands, each with the site tag it is routed by, and what each reply feeds:
        // - every counter of a site goes into that site's one MGET;
        // - a sketch alone is one PFCOUNT (Redis caches its count while it is unchanged);
        // - a union of sketches is counted here, from their bytes (GET each): a multi-key
        //   PFCOUNT merges on every call and caches nothing (~130 µs of Redis CPU for
        //   five dense keys), which the read path never asks of Redis;
        // - a union of bounded sets is a small read-only script.
        let mut plan = ReadPlan::default();
        let mut unions: Vec<Vec<Hll>> = vec![Vec::new(); reads.len()];
        for (index, read) in reads.iter().enumerate() {
            match read {
                Read::Counter(key) => plan.counter(index, key),
                Read::CounterSum(keys) => keys.iter().for_each(|key| plan.counter(index, key)),
                Read::Cardinality(keys) if keys.len() == 1 => {
                    let mut cmd = redis::cmd("PFCOUNT");
                    cmd.arg(keys[0].as_bytes());
                    plan.push(&keys[0], cmd, Feed::Count(index));
                }
                Read::Cardinality(keys) => {
                    for key in keys {
                        let mut cmd = redis::cmd("GET");
                        cmd.arg(key.as_bytes());
                        plan.push(key, cmd, Feed::UnionPart(index, key));
                    }
                }
                Read::SpilledUnion(pairs) => {
                    // Only read when a set overflowed (busy sites): the members and the
                    // sketches come here and are counted together.
                    for (set, spill) in pairs {
                        let mut members = redis::cmd("SMEMBERS");
                        members.arg(set.as_bytes());
                        plan.push(set, members, Feed::SpillMembers(index));
                        let mut sketch = redis::cmd("GET");
                        sketch.arg(spill.as_bytes());
                        plan.push(spill, sketch, Feed::UnionPart(index, spill));
                    }
                }
                Read::SetUnion(keys) if keys.is_empty() => {}
                Read::SetUnion(keys) => {
                    if self.is_cluster() && by_tag(keys).len() > 1 {
                        return Err(StoreError::Config(
                            "a union of sets of several sites cannot be counted on a Redis \
                             Cluster (SUNION needs one slot)"
                                .to_owned(),
                        ));
                    }
                    let mut cmd = redis::cmd("EVAL");
                    cmd.arg(SET_UNION_LUA).arg(keys.len());
                    for key in keys {
                        cmd.arg(key.as_bytes());
                    }
                    plan.push(&keys[0], cmd, Feed::SetCount(index));
                }
            }
        }
        let ReadPlan {
            commands,
            feeds,
            mget_keys,
            ..
        } = plan;
        let values = self.run_grouped(&commands, Retry::Idempotent).await?;
        let mut results = vec![0u64; reads.len()];
        for (feed, value) in feeds.iter().zip(values) {
            let value = server_error_to_store(value)?;
            match (feed, value) {
                (Feed::Count(index), Value::Int(count)) => {
                    results[*index] = u64::try_from(count).unwrap_or_default();
                }
                (Feed::SetCount(index), Value::Int(-1)) => results[*index] = SET_OVERFLOWED,
                (Feed::SetCount(index), Value::Int(count)) if count >= 0 => {
                    results[*index] = u64::try_from(count).unwrap_or_default();
                }
                (Feed::UnionPart(_, _), Value::Nil) => {}
                (Feed::SpillMembers(index), Value::Array(members) | Value::Set(members)) => {
                    let mut sketch = Hll::new();
                    for member in members {
                        if let Value::BulkString(bytes) = member
                            && !bytes.is_empty()
                        {
                            sketch.add(&bytes);
                        }
                    }
                    unions[*index].push(sketch);
                }
                (Feed::UnionPart(index, key), Value::BulkString(bytes)) => {
                    let sketch =
                        Hll::from_redis_bytes(&bytes).map_err(|error| StoreError::Corrupt {
                            key: key.to_string(),
                            message: error.to_string(),
                        })?;
                    unions[*index].push(sketch);
                }
                (Feed::Mget(mget), Value::Array(items)) => {
                    for (&(index, key), item) in mget_keys[*mget].iter().zip(items) {
                        let value = match item {
                            Value::Nil => 0,
                            Value::BulkString(bytes) => parse_counter(key, &bytes)?,
                            other => return Err(unexpected("MGET", &other)),
                        };
                        results[index] = results[index].saturating_add(value);
                    }
                }
                (_, other) => return Err(unexpected("a read", &other)),
            }
        }
        for (index, sketches) in unions.iter().enumerate() {
            if !sketches.is_empty() {
                let refs: Vec<&Hll> = sketches.iter().collect();
                results[index] = Hll::count_union(&refs);
            }
        }
        Ok(results)
    }

    async fn get(&self, key: &Key, _now: Timestamp) -> Result<Option<Vec<u8>>, StoreError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(key.as_bytes());
        let values = self
            .run_grouped(&[(key.hash_tag(), cmd)], Retry::Idempotent)
            .await?;
        match first(values)? {
            Value::Nil => Ok(None),
            Value::BulkString(bytes) => Ok(Some(bytes)),
            other => Err(unexpected("GET", &other)),
        }
    }

    async fn set(
        &self,
        key: &Key,
        value: &[u8],
        expire_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        let cmd = set_command(key, value, expire_at);
        let values = self
            .run_grouped(&[(key.hash_tag(), cmd)], Retry::Idempotent)
            .await?;
        first(values).map(drop)
    }

    async fn set_if_absent(
        &self,
        key: &Key,
        value: &[u8],
        expire_at: Option<Timestamp>,
        _now: Timestamp,
    ) -> Result<Vec<u8>, StoreError> {
        // `SET … NX GET` (Redis 7) sets and returns the previous value atomically. A retry
        // after a lost reply finds our own value and returns it: the same answer.
        let mut cmd = set_command(key, value, expire_at);
        cmd.arg("NX").arg("GET");
        let values = self
            .run_grouped(&[(key.hash_tag(), cmd)], Retry::Idempotent)
            .await?;
        match first(values)? {
            Value::Nil => Ok(value.to_vec()),
            Value::BulkString(existing) => Ok(existing),
            other => Err(unexpected("SET NX GET", &other)),
        }
    }

    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        _now: Timestamp,
    ) -> Result<bool, StoreError> {
        // One script: Redis runs it without interleaving another client's command, so
        // the comparison and the write are atomic. GET yields `false` in Lua for an absent
        // key. Not retried: after a lost reply a retry would compare against our own
        // write and report failure.
        const SCRIPT: &str = r"
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current then
  return 0
end
if ARGV[3] == '1' then redis.call('SET', KEYS[1], ARGV[4]) else redis.call('DEL', KEYS[1]) end
return 1
";
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(SCRIPT)
            .arg(1)
            .arg(key.as_bytes())
            .arg(if expected.is_some() { "1" } else { "0" })
            .arg(expected.unwrap_or_default())
            .arg(if new.is_some() { "1" } else { "0" })
            .arg(new.unwrap_or_default());
        let values = self
            .run_grouped(&[(key.hash_tag(), cmd)], Retry::Once)
            .await?;
        match first(values)? {
            Value::Int(1) => Ok(true),
            Value::Int(0) => Ok(false),
            other => Err(unexpected("compare-and-swap script", &other)),
        }
    }

    async fn delete(&self, keys: &[Key]) -> Result<(), StoreError> {
        // One DEL per site (its keys share a slot), all in one pipeline per node.
        let commands: Vec<(&str, Cmd)> = by_tag(keys)
            .into_iter()
            .map(|(tag, keys)| {
                let mut cmd = redis::cmd("DEL");
                for key in keys {
                    cmd.arg(key.as_bytes());
                }
                (tag, cmd)
            })
            .collect();
        for value in self.run_grouped(&commands, Retry::Idempotent).await? {
            server_error_to_store(value)?;
        }
        Ok(())
    }

    async fn scan(
        &self,
        cursor: &ScanCursor,
        limit: usize,
        _now: Timestamp,
    ) -> Result<(Vec<Entry>, Option<ScanCursor>), StoreError> {
        let bad_cursor = || StoreError::Config(format!("bad scan cursor {:?}", cursor.0));
        match self.masters().await? {
            None => {
                let position = if cursor.0.is_empty() {
                    0
                } else {
                    cursor.0.parse().map_err(|_| bad_cursor())?
                };
                let (next, keys) = self.scan_node(None, position, limit).await?;
                let entries = self.fetch_entries(keys).await?;
                Ok((entries, (next != 0).then(|| ScanCursor(next.to_string()))))
            }
            Some(masters) => {
                // The cursor is `host:port/position`; masters are visited in address
                // order, so a node that left the cluster is simply passed over.
                let (node, position) = if cursor.0.is_empty() {
                    let Some(first) = masters.first() else {
                        return Ok((Vec::new(), None));
                    };
                    (first.clone(), 0)
                } else {
                    let (address, position) = cursor.0.rsplit_once('/').ok_or_else(bad_cursor)?;
                    let (host, port) = address.rsplit_once(':').ok_or_else(bad_cursor)?;
                    let wanted = (host.to_owned(), port.parse().map_err(|_| bad_cursor())?);
                    let position: u64 = position.parse().map_err(|_| bad_cursor())?;
                    match masters.iter().find(|master| **master >= wanted) {
                        Some(master) if *master == wanted => (wanted, position),
                        Some(master) => (master.clone(), 0),
                        None => return Ok((Vec::new(), None)),
                    }
                };
                let (next, keys) = self
                    .scan_node(Some((node.0.as_str(), node.1)), position, limit)
                    .await?;
                let entries = self.fetch_entries(keys).await?;
                let next_cursor = if next != 0 {
                    Some(format!("{}:{}/{next}", node.0, node.1))
                } else {
                    masters
                        .iter()
                        .find(|master| **master > node)
                        .map(|(host, port)| format!("{host}:{port}/0"))
                };
                Ok((entries, next_cursor.map(ScanCursor)))
            }
        }
    }

    async fn restore(&self, entries: &[Entry]) -> Result<(), StoreError> {
        let mut commands = Vec::with_capacity(entries.len());
        for entry in entries {
            let value = match &entry.value {
                EntryValue::Counter(n) => n.to_string().into_bytes(),
                EntryValue::Set {
                    members,
                    overflowed,
                } => {
                    // Replace, not merge: DEL first. An empty set is just the DEL.
                    let tag = entry.key.hash_tag();
                    let mut del = redis::cmd("DEL");
                    del.arg(entry.key.as_bytes());
                    commands.push((tag, del));
                    if members.is_empty() {
                        continue;
                    }
                    let mut add = redis::cmd("SADD");
                    add.arg(entry.key.as_bytes());
                    for member in members {
                        add.arg(&member[..]);
                    }
                    if *overflowed {
                        add.arg(OVERFLOW_MARK);
                    }
                    commands.push((tag, add));
                    if let Some(at) = entry.expire_at {
                        let mut expire = redis::cmd("PEXPIREAT");
                        expire.arg(entry.key.as_bytes()).arg(at.as_millisecond());
                        commands.push((tag, expire));
                    }
                    continue;
                }
                // Written byte for byte; only the header is checked, so that nothing but
                // a HyperLogLog lands under a sketch key.
                EntryValue::Sketch(bytes) => check_sketch(&entry.key, bytes.clone())?,
                EntryValue::Bytes(bytes) => bytes.clone(),
            };
            commands.push((
                entry.key.hash_tag(),
                set_command(&entry.key, &value, entry.expire_at),
            ));
        }
        let values = self.run_grouped(&commands, Retry::Idempotent).await?;
        for value in values {
            server_error_to_store(value)?;
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run_one(redis::cmd("PING"), Retry::Idempotent)
            .await
            .map(drop)
    }
}

/// What one read command's reply is for.
#[derive(Debug)]
enum Feed<'k> {
    /// The `i`th MGET: its items add to the reads listed in `mget_keys`.
    Mget(usize),
    /// A PFCOUNT answering read `i`.
    Count(usize),
    /// The bytes of one sketch of read `i`'s union.
    UnionPart(usize, &'k Key),
    /// A set-union script answering read `i`.
    SetCount(usize),
    /// The members of one set of read `i`'s spilled union.
    SpillMembers(usize),
}

/// The commands of one [`Store::read`], each routed by its site tag, and what each reply
/// is for.
#[derive(Default)]
struct ReadPlan<'k> {
    commands: Vec<(&'k str, Cmd)>,
    feeds: Vec<Feed<'k>>,
    /// Per site tag: its MGET's number and the index of its command.
    mget_of_tag: BTreeMap<&'k str, (usize, usize)>,
    /// Per MGET: the (read index, key) of each of its keys, in order.
    mget_keys: Vec<Vec<(usize, &'k Key)>>,
}

impl<'k> ReadPlan<'k> {
    fn push(&mut self, key: &'k Key, cmd: Cmd, feed: Feed<'k>) {
        self.commands.push((key.hash_tag(), cmd));
        self.feeds.push(feed);
    }

    /// Adds counter `key` (for read `index`) to its site's MGET, starting that MGET if
    /// needed.
    fn counter(&mut self, index: usize, key: &'k Key) {
        let tag = key.hash_tag();
        let (mget, command) = match self.mget_of_tag.get(tag) {
            Some(&found) => found,
            None => {
                let found = (self.mget_keys.len(), self.commands.len());
                self.push(key, redis::cmd("MGET"), Feed::Mget(found.0));
                self.mget_keys.push(Vec::new());
                self.mget_of_tag.insert(tag, found);
                found
            }
        };
        self.commands[command].1.arg(key.as_bytes());
        self.mget_keys[mget].push((index, key));
    }
}

/// Keys grouped by hash tag, tags in first-seen order.
fn by_tag(keys: &[Key]) -> Vec<(&str, Vec<&Key>)> {
    let mut groups: Vec<(&str, Vec<&Key>)> = Vec::new();
    for key in keys {
        let tag = key.hash_tag();
        match groups.iter_mut().find(|(t, _)| *t == tag) {
            Some((_, group)) => group.push(key),
            None => groups.push((tag, vec![key])),
        }
    }
    groups
}

fn set_command(key: &Key, value: &[u8], expire_at: Option<Timestamp>) -> Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(key.as_bytes()).arg(value);
    if let Some(at) = expire_at {
        cmd.arg("PXAT").arg(at.as_millisecond());
    }
    cmd
}

fn parse_counter(key: &Key, bytes: &[u8]) -> Result<u64, StoreError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| StoreError::Corrupt {
            key: key.to_string(),
            message: "expected a decimal counter".to_owned(),
        })
}

/// A bounded set's entry from its `SMEMBERS` reply: 16-byte ids and maybe the overflow
/// mark; any other member means the key holds something footfall did not write.
fn set_entry(key: &Key, members: Vec<Value>) -> Result<EntryValue, StoreError> {
    let corrupt = |message: &str| StoreError::Corrupt {
        key: key.to_string(),
        message: message.to_owned(),
    };
    let mut ids = Vec::with_capacity(members.len());
    let mut overflowed = false;
    for member in members {
        let Value::BulkString(bytes) = member else {
            return Err(corrupt("a set member is not a string"));
        };
        if bytes == OVERFLOW_MARK {
            overflowed = true;
            continue;
        }
        let id: [u8; 16] = bytes
            .try_into()
            .map_err(|_| corrupt("a set member is not a 16-byte id"))?;
        ids.push(id);
    }
    ids.sort_unstable();
    Ok(EntryValue::Set {
        members: ids,
        overflowed,
    })
}

fn check_sketch(key: &Key, bytes: Vec<u8>) -> Result<Vec<u8>, StoreError> {
    if bytes.len() >= 16 && bytes.starts_with(b"HYLL") {
        Ok(bytes)
    } else {
        Err(StoreError::Corrupt {
            key: key.to_string(),
            message: "expected a HyperLogLog (HYLL header)".to_owned(),
        })
    }
}

/// `CONFIG GET` reply as a map, whatever the protocol's shape.
fn config_pairs(value: Value) -> Option<BTreeMap<String, String>> {
    let text = |value: &Value| match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    };
    let pairs: Vec<(Value, Value)> = match value {
        Value::Map(pairs) => pairs,
        Value::Array(items) => {
            let mut pairs = Vec::new();
            let mut items = items.into_iter();
            while let (Some(name), Some(value)) = (items.next(), items.next()) {
                pairs.push((name, value));
            }
            pairs
        }
        _ => return None,
    };
    pairs
        .iter()
        .map(|(name, value)| Some((text(name)?, text(value)?)))
        .collect::<Option<BTreeMap<_, _>>>()
        .filter(|map| !map.is_empty())
}

fn is_noscript(value: &Value) -> bool {
    matches!(value, Value::ServerError(error) if error.kind() == Some(ServerErrorKind::NoScript))
}

fn check_len(values: Vec<Value>, expected: usize) -> Result<Vec<Value>, StoreError> {
    if values.len() == expected {
        Ok(values)
    } else {
        Err(backend(
            &format!("expected {expected} replies, got {}", values.len()),
            None,
        ))
    }
}

fn first(values: Vec<Value>) -> Result<Value, StoreError> {
    let value = values
        .into_iter()
        .next()
        .ok_or_else(|| backend("no reply", None))?;
    server_error_to_store(value)
}

/// Turns a server error reply into an error; passes other replies through.
fn server_error_to_store(value: Value) -> Result<Value, StoreError> {
    match value {
        Value::ServerError(error) => {
            let error = RedisError::from(error);
            Err(map_error(error, Retry::Idempotent))
        }
        other => Ok(other),
    }
}

fn unexpected(what: &str, value: &Value) -> StoreError {
    backend(&format!("{what} gave an unexpected reply: {value:?}"), None)
}

fn backend(message: &str, source: Option<Box<dyn std::error::Error + Send + Sync>>) -> StoreError {
    StoreError::Backend {
        message: message.to_owned(),
        source,
    }
}

fn connect_error(url: &str, error: RedisError) -> StoreError {
    if let Some(failure) = tls::failure(&error) {
        return StoreError::Config(format!("Redis at {:?}: {failure}", url::redact(url)));
    }
    match error.kind() {
        ErrorKind::AuthenticationFailed | ErrorKind::InvalidClientConfig => {
            StoreError::Config(format!(
                "Redis at {:?} refused the connection settings: {error}",
                url::redact(url)
            ))
        }
        _ => {
            // `rediss://` to a port without TLS: Redis reads the TLS hello as the start of
            // an inline command and waits for its end, so the handshake only times out.
            let hint = if error.is_timeout() && url.starts_with("rediss") {
                " (is the server speaking TLS on this port?)"
            } else {
                ""
            };
            let mut error = map_error(error, Retry::Idempotent);
            if let StoreError::Unavailable { message, .. } = &mut error {
                *message = format!("cannot connect to {}: {message}{hint}", url::redact(url));
            }
            error
        }
    }
}

/// Maps a redis-rs error. Only I/O failures after a request may have been sent are
/// ambiguous, and only for requests that are not idempotent.
fn map_error(error: RedisError, retry: Retry) -> StoreError {
    let message = error.to_string();
    let unavailable = |ambiguous: bool, error: RedisError| StoreError::Unavailable {
        message: message.clone(),
        source: Some(Box::new(error)),
        ambiguous,
    };
    if error.is_connection_refusal() {
        // Nothing was sent: the server was not there.
        return unavailable(false, error);
    }
    if is_broken_pipe(&error) {
        // The connection was already gone when the request was handed to it: Redis
        // closed it (a restart, a kill) while it sat idle, the connection's task ended,
        // and the request was refused before a byte was written. Not sent, so safe to
        // send again once the connection manager has reconnected. (A connection that
        // dies while a request is on the wire ends it with a reset, an end of file or a
        // timeout instead, which stay ambiguous.)
        return unavailable(false, error);
    }
    match error.kind() {
        ErrorKind::Io => unavailable(retry == Retry::Once, error),
        // The cluster client found no connection to the slot's node: not sent.
        ErrorKind::ClusterConnectionNotFound => unavailable(false, error),
        // The server answered that it cannot take the request now; it did not run it.
        ErrorKind::Server(
            ServerErrorKind::BusyLoading
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::MasterDown
            | ServerErrorKind::TryAgain
            | ServerErrorKind::Moved
            | ServerErrorKind::Ask
            | ServerErrorKind::ReadOnly,
        ) => unavailable(false, error),
        _ => StoreError::Backend {
            message,
            source: Some(Box::new(error)),
        },
    }
}

/// True for an I/O error of kind `BrokenPipe`. redis-rs keeps the I/O error private; it
/// is its source, and an I/O error's text names its kind ("broken pipe", or "Broken pipe
/// (os error 32)" from the kernel). The unit test below pins this against redis-rs.
fn is_broken_pipe(error: &RedisError) -> bool {
    error.kind() == ErrorKind::Io
        && std::error::Error::source(error).is_some_and(|io| {
            io.to_string()
                .to_ascii_lowercase()
                .starts_with("broken pipe")
        })
}

fn should_retry(error: &StoreError, retry: Retry, attempt: u32) -> bool {
    retry == Retry::Idempotent && attempt < 2 && matches!(error, StoreError::Unavailable { .. })
}

/// Bounds `future` by [`RedisStore::OPERATION_TIMEOUT`]; running out is ambiguous for writes that
/// are not idempotent (the request may be in flight).
async fn within<F: Future>(future: F, retry: Retry) -> Result<F::Output, StoreError> {
    tokio::time::timeout(RedisStore::OPERATION_TIMEOUT, future)
        .await
        .map_err(|_| {
            StoreError::unavailable(
                format!(
                    "Redis did not answer within {:?}",
                    RedisStore::OPERATION_TIMEOUT
                ),
                retry == Retry::Once,
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request refused by a connection that was already closed was never sent, so it
    /// is safe to send again; one cut off on the wire may have run.
    #[test]
    fn a_broken_pipe_is_not_ambiguous_a_reset_is() {
        let io = |kind| RedisError::from(std::io::Error::from(kind));
        let kernel_epipe = RedisError::from(std::io::Error::from_raw_os_error(32));
        for error in [io(std::io::ErrorKind::BrokenPipe), kernel_epipe] {
            assert!(!map_error(error, Retry::Once).is_ambiguous());
        }
        for kind in [
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::UnexpectedEof,
            std::io::ErrorKind::TimedOut,
        ] {
            assert!(map_error(io(kind), Retry::Once).is_ambiguous(), "{kind:?}");
        }
    }
}
