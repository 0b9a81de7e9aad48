//! The load generator watches itself: the lag of its own scheduler (a
//! timer that should fire every 10 ms) and its process's CPU use, as a
//! share of the cores it may run on. A lag past
//! [`slo::record::STALL_FLAG_US`] is a *stall*: the requests it overlapped
//! are marked (CSV `client_stall_us`), and when more than
//! [`slo::self_check::MAX_STALLED_PERCENT`] of the measured requests were, the run is not
//! trustworthy. A run in which the client was the bottleneck is marked so,
//! with the reason ([`slo::self_check`] judges), and its numbers cannot
//! pass a gate.

use slo::histogram::LatencyHistogram;
use slo::self_check::{LagFigures, Observed, SelfCheck};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Default)]
pub struct ClientProbe {
    lag: LatencyHistogram,
    cpu: Vec<f64>,
    cores: usize,
    /// (from, to) of every stall, in the order seen.
    stalls: Vec<(Instant, Instant)>,
}

/// Samples until the task is aborted.
pub async fn probe(state: Arc<Mutex<ClientProbe>>) {
    let period = Duration::from_millis(10);
    let mut sampler = server::system::Sampler::new();
    sampler.sample();
    let mut expected = Instant::now() + period;
    let mut next_cpu = Instant::now() + Duration::from_secs(1);
    loop {
        tokio::time::sleep_until(expected).await;
        let now = Instant::now();
        let lag = now.saturating_duration_since(expected);
        let mut w = state.lock().expect("probe lock");
        w.lag.record(lag);
        if lag > Duration::from_micros(slo::record::STALL_FLAG_US) {
            w.stalls.push((expected, now));
        }
        if now >= next_cpu {
            let s = sampler.sample();
            w.cpu.push(s.cpu_percent);
            w.cores = s.cores;
            next_cpu = now + Duration::from_secs(1);
        }
        drop(w);
        expected = now + period;
    }
}

/// The self-check so far, as `--metrics-listen` shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LiveCheck {
    pub lag_p99_ms: f64,
    pub lag_max_ms: f64,
    pub stalls: u64,
    /// The last second's.
    pub cpu_percent: f64,
}

impl ClientProbe {
    pub fn live(&self) -> LiveCheck {
        let ms = slo::format::us_to_ms;
        LiveCheck {
            lag_p99_ms: if self.lag.is_empty() {
                0.0
            } else {
                ms(self.lag.quantile_us(0.99))
            },
            lag_max_ms: ms(self.lag.max_us()),
            stalls: self.stalls.len() as u64,
            cpu_percent: self.cpu.last().copied().unwrap_or(0.0),
        }
    }

    /// The stalled time, in µs, of the stalls that could have delayed one
    /// of these stamps (a request's send, first token, first audio, end).
    /// A stall `[a, b]` delays a stamp taken in it or soon after, while the
    /// client catches up on what arrived meanwhile: in `[a, b + (b − a)]`.
    /// A stall between two stamps distorts no latency: what the server
    /// sent meanwhile waited in the socket and is stamped when read, after
    /// the stall (a stamp that lands that late is caught by the window).
    pub fn stalled_at(&self, stamps: &[Instant]) -> u64 {
        self.stalls
            .iter()
            .filter(|&&(a, b)| {
                let until = b + b.saturating_duration_since(a);
                stamps.iter().any(|t| *t >= a && *t <= until)
            })
            .map(|&(a, b)| b.saturating_duration_since(a))
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .sum()
    }

    /// The verdict on the client ([`SelfCheck::judge`]); `shares_process`
    /// when the embedded server ran in this process (its CPU is counted
    /// here too); `stalled` of `measured` requests were overlapped by a
    /// stall.
    pub fn verdict(&self, shares_process: bool, stalled: u64, measured: u64) -> SelfCheck {
        let ms = slo::format::us_to_ms;
        let cpu_percent_avg = if self.cpu.is_empty() {
            0.0
        } else {
            self.cpu.iter().sum::<f64>() / self.cpu.len() as f64
        };
        SelfCheck::judge(Observed {
            lag_ms: LagFigures {
                p50: ms(self.lag.quantile_us(0.5)),
                p99: ms(self.lag.quantile_us(0.99)),
                max: ms(self.lag.max_us()),
            },
            cpu_percent_avg,
            cpu_percent_max: self.cpu.iter().copied().fold(0.0, f64::max),
            cores: self.cores,
            stalls: self.stalls.len() as u64,
            longest_stall_ms: self
                .stalls
                .iter()
                .map(|(a, b)| b.saturating_duration_since(*a).as_secs_f64() * 1000.0)
                .fold(0.0, f64::max),
            stalled,
            measured,
            shares_process,
            peak_rss_mb: peak_rss_mb(),
        })
    }
}

/// This process's peak resident memory so far, from `/proc/self/status`
/// (`VmHWM`, KiB); `None` where there is no such file.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some((kib / 1024.0 * 10.0).round() / 10.0)
}

/// A test-only hook that blocks every worker of the runtime on purpose,
/// as blocking I/O on an async thread would: `LOADGEN_TEST_STALL=AT,FOR`
/// (e.g. `3s,1500ms`) blocks them FOR long, AT after the run's first
/// request. Used by the tests of the stall detection; never set it in a
/// real run.
#[derive(Debug, Clone, Copy)]
pub struct StallHook {
    at: Duration,
    length: Duration,
}

impl StallHook {
    pub const VAR: &'static str = "LOADGEN_TEST_STALL";

    pub fn from_env() -> Option<StallHook> {
        let v = std::env::var(Self::VAR).ok()?;
        let (at, length) = v.split_once(',')?;
        Some(StallHook {
            at: humantime::parse_duration(at.trim()).ok()?,
            length: humantime::parse_duration(length.trim()).ok()?,
        })
    }

    pub async fn run(self, clock: Arc<std::sync::OnceLock<crate::shared::Clock>>) {
        let started = loop {
            match clock.get() {
                Some(c) => break c.started,
                None => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        };
        tokio::time::sleep_until(started + self.at).await;
        let workers = tokio::runtime::Handle::current().metrics().num_workers();
        for _ in 0..workers {
            let length = self.length;
            // Deliberately blocking: this is the fault under test.
            tokio::spawn(async move { std::thread::sleep(length) });
        }
    }
}

/// A warning when `users` connections to one address would fill more
/// than half of this machine's ephemeral ports: the kernel's search for a
/// free port in `connect()` then grows with every open connection and
/// stalls the load generator's thread (measured: stalls of 300-450 ms at
/// 15,000 connections with the default 28,232 ports, none with 63,977).
pub fn ports_warning(users: usize) -> Option<String> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    ports_warning_for(users, &range)
}

fn ports_warning_for(users: usize, range: &str) -> Option<String> {
    let mut bounds = range.split_whitespace().map(str::parse::<usize>);
    let (Some(Ok(low)), Some(Ok(high))) = (bounds.next(), bounds.next()) else {
        return None;
    };
    let ports = (high + 1).saturating_sub(low);
    (users > ports / 2).then(|| {
        format!(
            "{users} users need as many connections to one address, over half of this machine's {ports} ephemeral ports (net.ipv4.ip_local_port_range {low}-{high}): connect() slows as they fill and can stall the load generator; widen the range (sysctl -w net.ipv4.ip_local_port_range=\"1024 65000\") or run shards from several machines"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_judges_what_the_probe_saw() {
        let mut w = ClientProbe {
            cores: 2,
            ..ClientProbe::default()
        };
        for _ in 0..1000 {
            w.lag.record(Duration::from_millis(1));
            w.cpu.push(30.0);
        }
        let ok = w.verdict(false, 0, 100);
        assert!(ok.trustworthy && ok.reasons.is_empty());
        let figures = ok.figures.expect("a judged check has its figures");
        assert_eq!((figures.cores, figures.cpu_percent_avg), (2, 30.0));
        for _ in 0..50 {
            w.lag.record(Duration::from_millis(120));
        }
        let lagging = w.verdict(false, 0, 100);
        assert!(!lagging.trustworthy);
        assert!(
            lagging.reasons[0].contains("scheduler lagged"),
            "{:?}",
            lagging.reasons
        );
    }

    #[test]
    fn stalls_mark_the_requests_whose_stamps_they_delayed() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut w = ClientProbe {
            cores: 2,
            ..ClientProbe::default()
        };
        w.lag.record(Duration::from_millis(1));
        w.stalls.push((at(1000), at(2500)));
        // Stamps before the stall, or after its catch-up window (1.5 s
        // long, to 4 s), were not delayed; one inside it was.
        assert_eq!(w.stalled_at(&[at(0), at(900)]), 0);
        assert_eq!(w.stalled_at(&[at(900), at(4100)]), 0);
        assert_eq!(w.stalled_at(&[at(900), at(2600)]), 1_500_000);
        assert_eq!(w.stalled_at(&[at(1200)]), 1_500_000);
        // Two stamps in one stall count it once.
        assert_eq!(w.stalled_at(&[at(2500), at(3000)]), 1_500_000);
        let v = w.verdict(false, 1, 1000);
        assert!(v.trustworthy, "{v:?}");
        assert_eq!(v.figures.unwrap().longest_stall_ms, 1500.0);
        let v = w.verdict(false, 200, 1000);
        assert!(!v.trustworthy);
        assert!(v.reasons[0].contains("stalled 1 times"), "{:?}", v.reasons);
    }

    #[test]
    fn users_past_half_the_ephemeral_ports_are_warned_of() {
        assert_eq!(ports_warning_for(14_000, "32768\t60999\n"), None);
        let w = ports_warning_for(15_000, "32768\t60999\n").expect("a warning");
        assert!(w.contains("28232 ephemeral ports"), "{w}");
        assert!(w.contains("ip_local_port_range 32768-60999"), "{w}");
        assert_eq!(ports_warning_for(15_000, "1024 65000"), None);
        assert_eq!(ports_warning_for(15_000, "garbage"), None);
    }
}
