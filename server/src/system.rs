//! Process memory and CPU usage (the guide's "System Health"), read from
//! `/proc` and the cgroup, sampled once a second.

use serde::Serialize;
use std::time::Instant;

/// One reading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemSnapshot {
    /// Resident set size of this process.
    pub rss_bytes: u64,
    /// The memory allocated to it: the cgroup limit, else the machine's.
    pub limit_bytes: u64,
    /// Total CPU time used by the process so far.
    pub cpu_seconds: f64,
    /// CPU use over the last interval, as a share of all cores (0-100).
    pub cpu_percent: f64,
    pub cores: usize,
}

impl SystemSnapshot {
    pub fn memory_percent(&self) -> f64 {
        if self.limit_bytes == 0 {
            0.0
        } else {
            self.rss_bytes as f64 * 100.0 / self.limit_bytes as f64
        }
    }
}

/// Turns successive CPU-time readings into a usage percentage.
#[derive(Debug)]
pub struct Sampler {
    last: Option<(Instant, f64)>,
    cores: usize,
    limit_bytes: u64,
}

impl Default for Sampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Sampler {
    pub fn new() -> Self {
        Self {
            last: None,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            limit_bytes: memory_limit(),
        }
    }

    pub fn sample(&mut self) -> SystemSnapshot {
        let now = Instant::now();
        let cpu_seconds = cpu_seconds().unwrap_or(0.0);
        let cpu_percent = match self.last {
            Some((at, cpu)) => {
                let wall = now.duration_since(at).as_secs_f64();
                if wall > 0.0 {
                    ((cpu_seconds - cpu) / wall / self.cores as f64 * 100.0).clamp(0.0, 100.0)
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        self.last = Some((now, cpu_seconds));
        SystemSnapshot {
            rss_bytes: rss_bytes().unwrap_or(0),
            limit_bytes: self.limit_bytes,
            cpu_seconds,
            cpu_percent,
            cores: self.cores,
        }
    }
}

/// `VmRSS` of `/proc/self/status`.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    kib_field(&status, "VmRSS:")
}

fn kib_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    let kib: u64 = line[name.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// utime + stime of `/proc/self/stat`, at the kernel's USER_HZ of 100.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// The cgroup v2 memory limit, else the machine's total memory.
fn memory_limit() -> u64 {
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| kib_field(&m, "MemTotal:"));
    match (cgroup, total) {
        (Some(c), Some(t)) => c.min(t),
        (Some(c), None) => c,
        (None, Some(t)) => t,
        (None, None) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let mut s = Sampler::new();
        let first = s.sample();
        // Burn a little CPU so the second reading has something to measure.
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let second = s.sample();
        assert!(first.rss_bytes > 1024 * 1024, "rss {}", first.rss_bytes);
        assert!(first.limit_bytes > first.rss_bytes);
        assert!(second.cpu_seconds >= first.cpu_seconds);
        assert!((0.0..=100.0).contains(&second.cpu_percent));
        assert!(second.memory_percent() > 0.0 && second.memory_percent() < 100.0);
    }
}
