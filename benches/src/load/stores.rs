//! The stores a local run measures footfall on, started by the harness: the in-process
//! memory store, the embedded store (the product's default) in a fresh temporary
//! directory, a `redis-server`, a three-master Redis Cluster, or a Redis the operator
//! names by URL.

use std::str::FromStr;

use anyhow::{Context, bail};
use footfall_tests::redis_cluster::RedisCluster;
use footfall_tests::redis_server::RedisServer;

use super::redis_nodes::{RedisNode, RedisNodes};

/// Masters of the cluster the harness starts (the fewest Redis Cluster accepts).
const CLUSTER_MASTERS: usize = 3;

/// Which store, as `--store` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    /// `memory`: the in-process store (nothing survives the process).
    Memory,
    /// `embedded`: the default store, in a fresh temporary directory.
    Embedded,
    /// `redis`: a `redis-server` the harness starts.
    Redis,
    /// `cluster`: a three-master Redis Cluster the harness starts.
    Cluster,
    /// A `redis://` or `redis+cluster://` URL of a Redis the operator runs (its CPU is
    /// not measured; its command counts include any other client's).
    Url(String),
}

impl FromStr for StoreKind {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<Self> {
        Ok(match text {
            "memory" | "memory:" => StoreKind::Memory,
            "embedded" => StoreKind::Embedded,
            "redis" => StoreKind::Redis,
            "cluster" => StoreKind::Cluster,
            url if url.starts_with("redis://") || url.starts_with("redis+cluster://") => {
                StoreKind::Url(url.to_owned())
            }
            other => bail!(
                "--store {other:?}: memory, embedded, redis, cluster, or a redis:// or redis+cluster:// URL"
            ),
        })
    }
}

impl StoreKind {
    /// A short name for reports.
    #[must_use]
    pub fn label(&self) -> &str {
        match self {
            StoreKind::Memory => "memory",
            StoreKind::Embedded => "embedded",
            StoreKind::Redis => "redis",
            StoreKind::Cluster => "cluster",
            StoreKind::Url(_) => "redis (URL)",
        }
    }
}

/// A started store: its location for `--store` or `AnyStore::connect`, its Redis nodes,
/// and what keeps it alive (dropped with it).
#[derive(Debug)]
pub struct StoreTarget {
    /// Which kind.
    pub kind: StoreKind,
    /// `memory:`, a directory, or a Redis URL.
    pub location: String,
    /// The Redis servers it writes to (none for memory and embedded).
    pub redis: RedisNodes,
    keep: Keep,
}

/// What a store needs to stay up; dropping it stops the servers and removes the files.
/// The directory and the cluster are only held, never read.
#[derive(Debug, Default)]
struct Keep {
    _directory: Option<tempfile::TempDir>,
    redis: Option<RedisServer>,
    _cluster: Option<RedisCluster>,
}

impl StoreTarget {
    /// Starts (or names) the store.
    ///
    /// # Errors
    ///
    /// When the directory cannot be made or the Redis servers cannot be started.
    pub fn start(kind: &StoreKind) -> anyhow::Result<Self> {
        let (location, redis, keep) = match kind {
            StoreKind::Memory => ("memory:".to_owned(), RedisNodes::none(), Keep::default()),
            StoreKind::Embedded => {
                let dir = tempfile::Builder::new()
                    .prefix("footfall-load-embedded-")
                    .tempdir()
                    .context("creating a directory for the embedded store")?;
                let location = dir
                    .path()
                    .to_str()
                    .context("the temporary directory's path is not UTF-8")?
                    .to_owned();
                let keep = Keep {
                    _directory: Some(dir),
                    ..Keep::default()
                };
                (location, RedisNodes::none(), keep)
            }
            StoreKind::Redis => {
                let server = RedisServer::builder().try_start()?;
                let url = server.url();
                let nodes = RedisNodes {
                    nodes: vec![RedisNode {
                        url: server.url(),
                        pid: Some(server.pid()),
                    }],
                };
                let keep = Keep {
                    redis: Some(server),
                    ..Keep::default()
                };
                (url, nodes, keep)
            }
            StoreKind::Cluster => {
                let cluster = start_cluster()?;
                let url = cluster.url();
                let nodes = RedisNodes {
                    nodes: cluster
                        .nodes()
                        .iter()
                        .map(|node| RedisNode {
                            url: node.url(),
                            pid: Some(node.pid()),
                        })
                        .collect(),
                };
                let keep = Keep {
                    _cluster: Some(cluster),
                    ..Keep::default()
                };
                (url, nodes, keep)
            }
            StoreKind::Url(url) => (url.clone(), nodes_of_url(url), Keep::default()),
        };
        Ok(StoreTarget {
            kind: kind.clone(),
            location,
            redis,
            keep,
        })
    }

    /// The port of the standalone Redis the harness started, for `redis-benchmark`.
    #[must_use]
    pub fn redis_port(&self) -> Option<u16> {
        self.keep.redis.as_ref().map(RedisServer::port)
    }
}

/// The cluster launcher panics (it is made for tests); the harness turns that into an
/// error so a run without a working cluster still reports the rest.
fn start_cluster() -> anyhow::Result<RedisCluster> {
    std::panic::catch_unwind(|| RedisCluster::start(CLUSTER_MASTERS, 0)).map_err(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "unknown error".to_owned());
        anyhow::anyhow!("starting a {CLUSTER_MASTERS}-master Redis Cluster: {message}")
    })
}

/// The nodes a Redis URL names, for `INFO` (no process ids: the harness did not start
/// them). A cluster URL lists its seeds, which the operator should give as the masters.
fn nodes_of_url(url: &str) -> RedisNodes {
    let nodes = match url.strip_prefix("redis+cluster://") {
        Some(seeds) => seeds
            .split(',')
            .map(|seed| RedisNode {
                url: format!("redis://{seed}"),
                pid: None,
            })
            .collect(),
        None => vec![RedisNode {
            url: url.to_owned(),
            pid: None,
        }],
    };
    RedisNodes { nodes }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_names_parse() {
        assert_eq!("memory".parse::<StoreKind>().ok(), Some(StoreKind::Memory));
        assert_eq!(
            "cluster".parse::<StoreKind>().ok(),
            Some(StoreKind::Cluster)
        );
        assert!("mongodb://x".parse::<StoreKind>().is_err());
        let nodes = nodes_of_url("redis+cluster://a:1,b:2");
        let urls: Vec<&str> = nodes.nodes.iter().map(|n| n.url.as_str()).collect();
        assert_eq!(urls, ["redis://a:1", "redis://b:2"]);
    }
}
