//! A throw-away Redis Cluster on free loopback ports, every node killed when dropped.
//!
//! Each node is a [`RedisServer`] started with `cluster-enabled yes` (so it has its own
//! temporary directory, removed with it); `redis-cli --cluster create` then assigns the
//! slots, and [`RedisCluster::start`] waits until every node reports
//! `cluster_state:ok`. Missing `redis-server` or `redis-cli` fails with an install hint.
//!
//! [`RedisCluster::start_tls`] starts one whose nodes speak only TLS, to clients and to
//! each other (`tls-cluster`, `tls-replication`).
//!
//! ```no_run
//! use footfall_tests::redis_cluster::RedisCluster;
//!
//! let cluster = RedisCluster::start(3, 0);
//! assert!(cluster.url().starts_with("redis+cluster://127.0.0.1:"));
//! ```

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::redis_server::RedisServer;
use crate::tls::{ClientCertificates, TestPki};

/// What to tell someone whose machine has no `redis-cli`.
const INSTALL_HINT: &str = "redis-cli was not found on PATH. The cluster tests create \
     their Redis Cluster with `redis-cli --cluster create`: run `apt-get install \
     redis-tools` (Debian/Ubuntu; `redis-server` brings it too), then run the tests again.";

/// How long `redis-cli --cluster create` and the cluster's convergence may take. A
/// three-master cluster on loopback is ready in about two seconds; a busy two-core
/// machine can be several times slower.
const CLUSTER_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running Redis Cluster of loopback nodes.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `masters` masters (at least 3, as Redis requires) with `replicas_per_master`
    /// replicas each, and waits until the cluster is ready.
    ///
    /// # Panics
    ///
    /// When the cluster cannot be created in time, with the nodes' logs; when
    /// `redis-server` or `redis-cli` is missing, with how to install it.
    #[must_use]
    pub fn start(masters: usize, replicas_per_master: usize) -> RedisCluster {
        Self::start_with(masters, replicas_per_master, None)
    }

    /// [`start`](Self::start) with nodes that speak only TLS, with the server
    /// certificate of `pki` (clients are not asked for certificates); the
    /// [`url`](Self::url) is then `rediss+cluster://…`.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    #[must_use]
    pub fn start_tls(masters: usize, replicas_per_master: usize, pki: &TestPki) -> RedisCluster {
        Self::start_with(masters, replicas_per_master, Some(pki))
    }

    fn start_with(
        masters: usize,
        replicas_per_master: usize,
        pki: Option<&TestPki>,
    ) -> RedisCluster {
        assert!(masters >= 3, "a Redis Cluster needs at least 3 masters");
        let n_nodes = masters * (1 + replicas_per_master);
        let nodes: Vec<RedisServer> = (0..n_nodes)
            .map(|_| {
                let mut builder = RedisServer::builder();
                if let Some(pki) = pki {
                    builder = builder.tls(pki, ClientCertificates::NotAsked).args([
                        "--tls-cluster",
                        "yes",
                        "--tls-replication",
                        "yes",
                    ]);
                }
                builder
                    .args([
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        // Short, so a test that kills a node sees the failure quickly.
                        "--cluster-node-timeout",
                        "2000",
                        // A replica may always be promoted. With the default (10), a
                        // replica whose first sync had not finished, or whose master was
                        // quiet, refuses ("disconnected from master for longer than
                        // allowed") and a killed master is never replaced.
                        "--cluster-replica-validity-factor",
                        "0",
                    ])
                    .start()
            })
            .collect();
        let cluster = RedisCluster { nodes };
        cluster.create(replicas_per_master);
        cluster.wait_until_ok();
        cluster
    }

    /// The nodes, masters first as created.
    #[must_use]
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// One node, to kill or restart it.
    #[must_use]
    pub fn node_mut(&mut self, index: usize) -> &mut RedisServer {
        &mut self.nodes[index]
    }

    /// The store URL naming every node as a seed:
    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,…` (`rediss+cluster://` over TLS).
    #[must_use]
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        let scheme = if self.pki().is_some() {
            "rediss+cluster"
        } else {
            "redis+cluster"
        };
        format!("{scheme}://{}", seeds.join(","))
    }

    /// The certificates of a TLS cluster.
    #[must_use]
    pub fn pki(&self) -> Option<&TestPki> {
        self.nodes.first().and_then(RedisServer::pki)
    }

    /// The slot of `key` as the cluster computes it (`CLUSTER KEYSLOT`).
    ///
    /// # Panics
    ///
    /// When the node does not answer.
    #[must_use]
    pub fn keyslot(&self, key: &str) -> u16 {
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut self.nodes[0].connection())
            .expect("CLUSTER KEYSLOT")
    }

    fn create(&self, replicas_per_master: usize) {
        let mut command = Command::new("redis-cli");
        command.arg("--cluster").arg("create");
        for node in &self.nodes {
            command.arg(format!("127.0.0.1:{}", node.port()));
        }
        if let Some(pki) = self.pki() {
            command
                .arg("--tls")
                .arg("--cacert")
                .arg(pki.ca_cert())
                .arg("--cert")
                .arg(pki.client_cert())
                .arg("--key")
                .arg(pki.client_key());
        }
        command
            .arg("--cluster-replicas")
            .arg(replicas_per_master.to_string())
            .arg("--cluster-yes")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => panic!("{INSTALL_HINT}"),
            Err(error) => panic!("spawning redis-cli: {error}"),
        };
        let deadline = Instant::now() + CLUSTER_READY_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    // Polling: std gives no wait with a timeout on a child.
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "redis-cli --cluster create did not finish within {CLUSTER_READY_TIMEOUT:?}"
                    );
                }
                Err(error) => panic!("waiting for redis-cli: {error}"),
            }
        }
        let output = child
            .wait_with_output()
            .expect("reading redis-cli's output");
        if !output.status.success() {
            panic!(
                "redis-cli --cluster create failed ({}):\n{}\n{}\nnode logs:\n{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
                self.logs()
            );
        }
    }

    fn wait_until_ok(&self) {
        let deadline = Instant::now() + CLUSTER_READY_TIMEOUT;
        loop {
            let all_ok = self.nodes.iter().all(|node| {
                redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query::<String>(&mut node.connection())
                    .is_ok_and(|info| info.contains("cluster_state:ok"))
            });
            if all_ok {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "the cluster did not reach cluster_state:ok on every node within \
                     {CLUSTER_READY_TIMEOUT:?}; node logs:\n{}",
                    self.logs()
                );
            }
            // Polling: nodes converge through gossip and announce nothing.
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|node| format!("--- node {} ---\n{}", node.port(), node.log()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}
