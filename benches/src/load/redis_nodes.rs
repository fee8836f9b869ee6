//! The Redis servers behind a store, as the harness measures them: their CPU (from
//! `/proc`, when they run on this machine) and the commands they ran (`INFO
//! commandstats`, which counts the `redis.call`s inside scripts too, so a script is
//! charged for the work it does rather than as one command).

use std::time::Duration;

use anyhow::Context;

use super::procstat::{self, CpuTimes};

/// How long one `INFO` may take: the nodes are on loopback, but the machine is shared.
const INFO_TIMEOUT: Duration = Duration::from_secs(5);

/// One Redis server (a standalone server, or one master of a cluster).
#[derive(Debug, Clone)]
pub struct RedisNode {
    /// `redis://127.0.0.1:PORT`.
    pub url: String,
    /// Its process, when the harness started it (CPU is read only then).
    pub pid: Option<u32>,
}

/// The Redis servers a store writes to: none (memory, embedded), one, or every master of
/// a cluster.
#[derive(Debug, Clone, Default)]
pub struct RedisNodes {
    /// The nodes, in a fixed order (a cluster's masters as created).
    pub nodes: Vec<RedisNode>,
}

/// A reading of every node: CPU (when known) and the commands run so far.
#[derive(Debug, Clone, Default)]
pub struct RedisReading {
    /// Per node, the CPU time so far (`None` when its process is not known).
    pub cpu: Vec<Option<CpuTimes>>,
    /// Per node, the commands run so far (`None` when `INFO` failed).
    pub commands: Vec<Option<u64>>,
}

/// What the nodes did between two readings.
#[derive(Debug, Clone, Default)]
pub struct RedisUsage {
    /// Per node, the CPU used (`None` when its process is not known).
    pub cpu: Vec<Option<CpuTimes>>,
    /// Commands run, summed over the nodes (`None` when one could not be read).
    pub commands: Option<u64>,
}

impl RedisUsage {
    /// CPU summed over the nodes; `None` when no node's process is known.
    #[must_use]
    pub fn total_cpu(&self) -> Option<CpuTimes> {
        let known: Vec<&CpuTimes> = self.cpu.iter().flatten().collect();
        (!known.is_empty()).then(|| {
            known
                .into_iter()
                .fold(CpuTimes::default(), |sum, t| sum.plus(t))
        })
    }
}

impl RedisNodes {
    /// No Redis at all.
    #[must_use]
    pub fn none() -> Self {
        RedisNodes::default()
    }

    /// True when the store has no Redis.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The processes of the nodes the harness started.
    #[must_use]
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().filter_map(|n| n.pid).collect()
    }

    /// Reads every node now.
    #[must_use]
    pub fn read(&self) -> RedisReading {
        RedisReading {
            cpu: self
                .nodes
                .iter()
                .map(|n| n.pid.and_then(procstat::cpu_times))
                .collect(),
            commands: self
                .nodes
                .iter()
                .map(|n| match commands_run(&n.url) {
                    Ok(calls) => Some(calls),
                    Err(error) => {
                        eprintln!("footfall-load: INFO commandstats on {}: {error:#}", n.url);
                        None
                    }
                })
                .collect(),
        }
    }

    /// What the nodes did since `before`.
    #[must_use]
    pub fn since(&self, before: &RedisReading) -> RedisUsage {
        let now = self.read();
        let cpu = now
            .cpu
            .iter()
            .zip(&before.cpu)
            .map(|(now, before)| Some(now.as_ref()?.since(before.as_ref()?)))
            .collect();
        let commands = now
            .commands
            .iter()
            .zip(&before.commands)
            .map(|(now, before)| Some((*now)?.saturating_sub((*before)?)))
            .sum::<Option<u64>>();
        RedisUsage { cpu, commands }
    }
}

/// Commands the server at `url` has run since it started: the `calls=` of every command
/// in `INFO commandstats`, except `INFO` itself (the harness's own readings).
///
/// # Errors
///
/// When the server cannot be reached.
pub fn commands_run(url: &str) -> anyhow::Result<u64> {
    let client = redis::Client::open(url).with_context(|| format!("Redis URL {url}"))?;
    let mut connection = client
        .get_connection_with_timeout(INFO_TIMEOUT)
        .with_context(|| format!("connecting to {url}"))?;
    connection.set_read_timeout(Some(INFO_TIMEOUT))?;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut connection)
        .context("INFO commandstats")?;
    Ok(parse_commandstats(&info))
}

/// The sum of `calls=` over the `cmdstat_*` lines, `INFO` excluded.
#[must_use]
pub fn parse_commandstats(info: &str) -> u64 {
    info.lines()
        .filter_map(|line| {
            let (name, fields) = line.trim().split_once(':')?;
            let command = name.strip_prefix("cmdstat_")?;
            if command.eq_ignore_ascii_case("info") {
                return None;
            }
            fields
                .split(',')
                .find_map(|f| f.strip_prefix("calls="))?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commandstats_sums_calls_without_info() {
        let info = "# Commandstats\r\n\
            cmdstat_pfadd:calls=10,usec=50,usec_per_call=5.00,rejected_calls=0,failed_calls=0\r\n\
            cmdstat_evalsha:calls=3,usec=90,usec_per_call=30.00,rejected_calls=0,failed_calls=0\r\n\
            cmdstat_info:calls=7,usec=70,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\n\
            cmdstat_client|setname:calls=1,usec=1,usec_per_call=1.00,rejected_calls=0,failed_calls=0\r\n";
        assert_eq!(parse_commandstats(info), 14);
    }
}
