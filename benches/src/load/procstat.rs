//! CPU time and resident memory of a process, from `/proc` (Linux).
//!
//! CPU time per request is the figure that survives a noisy shared machine: wall-clock
//! throughput depends on what else runs, the CPU a request costs much less. User and
//! kernel time are kept apart because they answer different questions: kernel time on
//! loopback is mostly the TCP stack every server pays alike, user time is the server's
//! own work.

use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Clock ticks per second of `/proc/PID/stat` times (`getconf CLK_TCK`, 100 when unknown).
fn ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// User and kernel CPU time of a process, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct CpuTimes {
    /// Time in user space (`utime`).
    pub user: f64,
    /// Time in the kernel on the process's behalf (`stime`).
    pub system: f64,
}

impl CpuTimes {
    /// User plus kernel time.
    #[must_use]
    pub fn total(&self) -> f64 {
        self.user + self.system
    }

    /// What was used since `earlier`.
    #[must_use]
    pub fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user - earlier.user,
            system: self.system - earlier.system,
        }
    }

    /// The sum of both.
    #[must_use]
    pub fn plus(&self, other: &CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user + other.user,
            system: self.system + other.system,
        }
    }
}

/// User and kernel CPU time of `pid` (all its threads) so far; `None` when it cannot be
/// read.
#[must_use]
pub fn cpu_times(pid: u32) -> Option<CpuTimes> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) (utime, stime) are 11 and 12 after the name and state.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some(CpuTimes {
        user: utime / ticks_per_second(),
        system: stime / ticks_per_second(),
    })
}

/// User plus system CPU time of `pid` (all its threads) so far, in seconds; `None` when it
/// cannot be read.
#[must_use]
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    cpu_times(pid).map(|t| t.total())
}

/// Resident set size of `pid` in bytes (`VmRSS`).
#[must_use]
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Bytes `pid` caused to be written to storage so far (`write_bytes` of
/// `/proc/PID/io`: what reached the block layer, page-cache writeback included); `None`
/// when it cannot be read (another user's process, or a kernel without I/O accounting).
#[must_use]
pub fn storage_written_bytes(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let line = io.lines().find(|l| l.starts_with("write_bytes:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Waits until `pid` is close to idle: at most one clock tick of CPU over the last
/// `window` (checked every `window`), or `limit` passed. Returns how long it waited.
///
/// A service just started does one-off work in the background (footfall's first upkeep
/// pass reads every site's settled days), which would otherwise be charged to whichever
/// phase came first.
#[must_use]
pub fn wait_until_quiet(pid: u32, window: Duration, limit: Duration) -> Duration {
    let started = Instant::now();
    let tick = 1.0 / ticks_per_second();
    let mut last = cpu_times(pid).unwrap_or_default();
    while started.elapsed() < limit {
        std::thread::sleep(window);
        let Some(now) = cpu_times(pid) else { break };
        if now.since(&last).total() <= tick + 1e-9 {
            break;
        }
        last = now;
    }
    started.elapsed()
}

/// CPU time used by a set of processes between two readings.
#[derive(Debug, Clone)]
pub struct CpuMeter {
    pids: Vec<u32>,
    start: Vec<CpuTimes>,
}

impl CpuMeter {
    /// Starts measuring `pids`.
    #[must_use]
    pub fn start(pids: &[u32]) -> Self {
        CpuMeter {
            pids: pids.to_vec(),
            start: pids
                .iter()
                .map(|&p| cpu_times(p).unwrap_or_default())
                .collect(),
        }
    }

    /// CPU time each process used since [`CpuMeter::start`], in the order given (zero for
    /// a process that is gone).
    #[must_use]
    pub fn read(&self) -> Vec<CpuTimes> {
        self.pids
            .iter()
            .zip(&self.start)
            .map(|(&p, s)| cpu_times(p).unwrap_or(*s).since(s))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        let times = cpu_times(pid).expect("this process's stat");
        assert!(times.user >= 0.0 && times.system >= 0.0);
        assert!(cpu_seconds(pid).is_some());
        assert!(rss_bytes(pid).unwrap_or(0) > 0);
        // The counter itself: what a file write adds depends on the file system (nothing
        // on tmpfs), so only that it parses is checked.
        assert!(storage_written_bytes(pid).is_some());
    }
}
