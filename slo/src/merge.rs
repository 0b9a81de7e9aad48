//! A sharded run made one (`loadgen merge`): which shards belong together
//! and what is wrong with the set, where each shard's time zero falls on
//! the merged run's time line, and one self-check for all of them. The
//! figures merge by [`crate::aggregate::Aggregate::merge`] (histogram
//! addition, counts summed, the per-second series added second by second):
//! the property test below holds it equal to one aggregate of every
//! shard's records.

use crate::report::{Report, ShardInfo};
use crate::self_check::{LagFigures, SelfCheck, SelfCheckFigures};

/// Shards whose time zeros are further apart than this did not run
/// together, and their sum is not the load that was asked.
pub const START_SPREAD_MS: f64 = 1000.0;

/// One folder given to `loadgen merge`: its report, or why it has none.
pub struct Part<'a> {
    pub dir: &'a str,
    pub report: Result<&'a Report, String>,
}

/// Everything that keeps a set of shards from being one whole run, in
/// words; each fails the merged verdict. `expected`: the number of shards
/// the caller was told (`--shards`), else the shards' own count.
pub fn problems(parts: &[Part<'_>], expected: Option<u32>) -> Vec<String> {
    let mut out = Vec::new();
    let mut shards: Vec<(&str, &Report, &ShardInfo)> = Vec::new();
    for p in parts {
        match &p.report {
            Err(why) => out.push(format!("{}: {why}", p.dir)),
            Ok(r) => match &r.shard {
                None => out.push(format!(
                    "{}: not a shard's output (its report.json has no `shard`; run each part with --shard I/N)",
                    p.dir
                )),
                Some(s) => shards.push((p.dir, r, s)),
            },
        }
    }
    let Some(&(first_dir, first, first_shard)) = shards.first() else {
        out.push("no shard to merge".to_owned());
        return out;
    };
    let count = expected.unwrap_or(first_shard.count);
    for &(dir, r, s) in &shards {
        if s.count != count {
            out.push(format!(
                "{dir}: shard {} of {} does not belong to a run of {count} shards",
                s.index, s.count
            ));
        }
        if s.seed != first_shard.seed || r.scenario.name != first.scenario.name {
            out.push(format!(
                "{dir}: scenario `{}` with seed {} is not the run of {first_dir} (`{}`, seed {})",
                r.scenario.name, s.seed, first.scenario.name, first_shard.seed
            ));
        }
        if s.start_at != first_shard.start_at {
            out.push(format!(
                "{dir}: --start-at {} is not {first_dir}'s ({})",
                s.start_at.as_deref().unwrap_or("none"),
                first_shard.start_at.as_deref().unwrap_or("none")
            ));
        }
        if let Some(why) = &r.interrupted {
            out.push(format!("shard {} ({dir}) did not complete: {why}", s.index));
        }
        if !r.self_check.trustworthy {
            out.push(format!(
                "shard {} ({dir}) is not trustworthy: {}",
                s.index,
                r.self_check.reasons.join("; ")
            ));
        }
        if r.figures.requests.total == 0 {
            out.push(format!("shard {} ({dir}) measured no request", s.index));
        }
    }
    for i in 0..count {
        let holders: Vec<&str> = shards
            .iter()
            .filter(|(_, _, s)| s.index == i)
            .map(|(d, _, _)| *d)
            .collect();
        match holders.as_slice() {
            [] => out.push(format!(
                "shard {i} of {count} is missing: no folder given holds it (its part of the load is not in the figures)"
            )),
            [_] => {}
            many => out.push(format!(
                "shard {i} is given more than once ({})",
                many.join(", ")
            )),
        }
    }
    for &(dir, _, s) in &shards {
        if s.index >= count {
            out.push(format!(
                "{dir}: shard index {} is not below {count}",
                s.index
            ));
        }
    }
    let zeros = shards.iter().map(|(_, _, s)| s.zero_unix_us);
    let (lo, hi) = (zeros.clone().min(), zeros.max());
    if let (Some(lo), Some(hi)) = (lo, hi) {
        let spread_ms = crate::format::us_to_ms(hi - lo);
        if spread_ms > START_SPREAD_MS {
            out.push(format!(
                "the shards did not start together: their first requests are {spread_ms:.0} ms apart (at most {START_SPREAD_MS:.0} ms); give every shard one --start-at"
            ));
        }
    }
    out
}

/// Each shard's time zero after the earliest one's, in microseconds: what
/// its records are shifted by.
pub fn offsets(zeros_unix_us: &[u64]) -> Vec<u64> {
    let base = zeros_unix_us.iter().copied().min().unwrap_or(0);
    zeros_unix_us.iter().map(|z| z - base).collect()
}

/// The merged run's measured time: from the earliest shard's start of
/// measurement to the latest shard's end (shards ran side by side).
/// `parts`: each shard's offset (µs) and measured seconds.
pub fn measured_s(parts: &[(u64, f64)]) -> f64 {
    parts
        .iter()
        .map(|&(off, m)| off as f64 / 1e6 + m)
        .fold(0.0, f64::max)
}

/// One self-check for all shards: trustworthy only when every shard was;
/// each reason and warning names its shard; the worst lag, CPU and stall
/// of any shard, the stalls and stalled requests summed, the cores
/// summed, the largest peak memory (each shard is its own process).
pub fn self_check(shards: &[(u32, &SelfCheck)]) -> SelfCheck {
    let mut out = SelfCheck {
        trustworthy: !shards.is_empty() && shards.iter().all(|(_, c)| c.trustworthy),
        reasons: shards
            .iter()
            .flat_map(|(i, c)| c.reasons.iter().map(move |r| format!("shard {i}: {r}")))
            .collect(),
        figures: None,
    };
    let figures: Vec<(u32, &SelfCheckFigures)> = shards
        .iter()
        .filter_map(|(i, c)| c.figures.as_ref().map(|f| (*i, f)))
        .collect();
    if figures.len() < shards.len() {
        // A shard without figures: its reasons say why; nothing to add up.
        return out;
    }
    let max =
        |f: fn(&SelfCheckFigures) -> f64| figures.iter().map(|(_, x)| f(x)).fold(0.0, f64::max);
    out.figures = Some(SelfCheckFigures {
        warnings: figures
            .iter()
            .flat_map(|(i, f)| f.warnings.iter().map(move |w| format!("shard {i}: {w}")))
            .collect(),
        scheduler_lag_ms: LagFigures {
            p50: max(|f| f.scheduler_lag_ms.p50),
            p99: max(|f| f.scheduler_lag_ms.p99),
            max: max(|f| f.scheduler_lag_ms.max),
        },
        cpu_percent_avg: max(|f| f.cpu_percent_avg),
        cpu_percent_max: max(|f| f.cpu_percent_max),
        cores: figures.iter().map(|(_, f)| f.cores).sum(),
        stalls: figures.iter().map(|(_, f)| f.stalls).sum(),
        longest_stall_ms: max(|f| f.longest_stall_ms),
        stalled_requests: figures.iter().map(|(_, f)| f.stalled_requests).sum(),
        peak_rss_mb: figures
            .iter()
            .filter_map(|(_, f)| f.peak_rss_mb)
            .reduce(f64::max),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{Aggregate, GoodputLimits};
    use crate::record::{Outcome, RequestRecord};
    use crate::rng::Rng;
    use std::time::Duration;

    fn pick(rng: &mut Rng, n: u64) -> u64 {
        (rng.uniform() * n as f64) as u64 % n.max(1)
    }

    /// A request on the whole run's time line.
    fn record(rng: &mut Rng, seq: u64, earliest_us: u64) -> RequestRecord {
        let outcome = if pick(rng, 3) == 0 {
            Outcome::ALL[pick(rng, Outcome::ALL.len() as u64) as usize]
        } else {
            Outcome::Ok
        };
        let ok = outcome.is_ok();
        let start_us = earliest_us + pick(rng, 40_000_000);
        let lateness_us = if pick(rng, 4) == 0 {
            pick(rng, 50_000)
        } else {
            0
        };
        let first_token = 20_000 + pick(rng, 2_000_000);
        let tokens = pick(rng, 60) as u32;
        RequestRecord {
            seq,
            warmup: start_us < 5_000_000 && pick(rng, 2) == 0,
            scheduled_us: Some(start_us.saturating_sub(lateness_us)),
            start_us,
            lateness_us,
            first_token_us: ok.then_some(first_token),
            first_audio_us: (ok && pick(rng, 2) == 0).then(|| first_token + pick(rng, 500_000)),
            complete_us: ok.then(|| first_token + pick(rng, 3_000_000)),
            end_us: first_token + 3_000_000,
            streaming: true,
            tokens,
            audio_chunks: pick(rng, 3) as u32,
            underruns: pick(rng, 2) as u32,
            stall_us: pick(rng, 30_000),
            outcome,
            kb_cache: match pick(rng, 3) {
                0 => Some("hit".into()),
                1 => Some("miss".into()),
                _ => None,
            },
            tts_cache_hits: Some(pick(rng, 4)),
            tts_cache_misses: Some(pick(rng, 4)),
            client_stall_us: pick(rng, 20_000),
            reasoning_tokens: pick(rng, 3) as u32,
            first_reasoning_us: (pick(rng, 5) == 0).then(|| pick(rng, 100_000)),
            input_tokens: Some(pick(rng, 200)),
            word_count: (pick(rng, 2) == 0).then(|| u64::from(tokens)),
            buffered: pick(rng, 7) == 0,
            ..RequestRecord::default()
        }
    }

    fn gaps(rng: &mut Rng, r: &RequestRecord) -> Vec<u32> {
        (0..r.tokens.saturating_sub(1))
            .map(|_| pick(rng, 80_000) as u32)
            .collect()
    }

    fn view(a: &Aggregate) -> (String, String) {
        let measured = Duration::from_secs(35);
        (
            serde_json::to_string(&a.figures(measured, true)).unwrap(),
            serde_json::to_string(&a.series()).unwrap(),
        )
    }

    /// The property: for any records split among any number of shards
    /// (each shard's times counting from its own zero, and sampling its own
    /// open streams), merging the shards' aggregates, each record shifted by
    /// its shard's offset, gives every figure and every second of the
    /// series that one aggregate of all records gives.
    #[test]
    fn merged_shards_equal_one_aggregate_of_all_their_records() {
        let limits = GoodputLimits {
            first_token_ms: Some(900.0),
            first_audio_ms: None,
            complete_ms: Some(2500.0),
        };
        let fresh = || Aggregate {
            goodput_limits: limits,
            warmup_s: 5.0,
            ..Aggregate::default()
        };
        for case in 0..60u64 {
            let mut rng = Rng(0x9e37_79b9 ^ (case + 1).wrapping_mul(0x2545_f491));
            let n = 1 + pick(&mut rng, 6) as usize;
            // Whole seconds apart, as the per-second samples of open
            // streams are taken on each shard's own second.
            let offsets_us: Vec<u64> = (0..n).map(|_| pick(&mut rng, 2) * 1_000_000).collect();
            let mut whole = fresh();
            let mut parts: Vec<Aggregate> = (0..n).map(|_| fresh()).collect();
            for seq in 0..(50 + pick(&mut rng, 400)) {
                let shard = pick(&mut rng, n as u64) as usize;
                let global = record(&mut rng, seq, offsets_us[shard]);
                let g = gaps(&mut rng, &global);
                whole.add(&global, &g);
                // As the shard wrote it, then as the merge reads it back.
                let mut local = global.clone();
                local.start_us -= offsets_us[shard];
                local.scheduled_us = local.scheduled_us.map(|s| s - offsets_us[shard]);
                local.shift(offsets_us[shard]);
                assert_eq!(local, global);
                parts[shard].add(&local, &g);
            }
            for (shard, part) in parts.iter_mut().enumerate() {
                for t in 5..40 {
                    let active = pick(&mut rng, 30);
                    let global_t = t + offsets_us[shard] / 1_000_000;
                    part.sample_active(global_t, active, false);
                    let sum = whole.series.get(global_t as usize).map_or(0, |s| s.active);
                    whole.sample_active(global_t, sum + active, false);
                }
            }
            let mut merged = fresh();
            // In any order.
            for i in (0..n).rev() {
                merged.merge(&parts[i]);
            }
            assert_eq!(view(&merged), view(&whole), "case {case}: {n} shards");
            assert_eq!(merged.total, whole.total, "case {case}");
        }
    }

    fn report(index: u32, count: u32, zero_s: u64) -> Report {
        let mut a = Aggregate::default();
        for seq in 0..10 {
            let r = RequestRecord {
                seq,
                start_us: seq * 1000,
                first_token_us: Some(1000),
                complete_us: Some(2000),
                ..RequestRecord::default()
            };
            a.add(&r, &[]);
        }
        let info = crate::report::RunInfo {
            scenario: crate::report::ScenarioInfo {
                name: "shards".into(),
                file: "shards.toml".into(),
                description: String::new(),
            },
            target: crate::report::TargetInfo::default(),
            load: serde_json::Value::Null,
            started_at: String::new(),
            elapsed_s: 10.0,
            measured_s: 10.0,
            warmup_s: 0.0,
            interrupted: None,
            shard: Some(ShardInfo {
                index,
                count,
                seed: 7,
                start_at: Some("2026-11-30T12:00:00Z".into()),
                zero_unix_us: zero_s * 1_000_000 + u64::from(index) * 1000,
                whole_load: serde_json::Value::Null,
            }),
            judge: false,
            shards: Vec::new(),
            shard_problems: Vec::new(),
            events: Vec::new(),
            alerts: None,
            engine: Default::default(),
            windowed: Default::default(),
            server: crate::server_view::ServerView::default(),
            self_check: SelfCheck {
                trustworthy: true,
                ..SelfCheck::default()
            },
            slo: None,
            gate: crate::objective::Gate::default(),
            open_model: false,
            files: crate::report::Files::default(),
        };
        let r = crate::report::build(info, &a);
        assert_eq!(r.verdict, crate::report::Verdict::NotJudged);
        assert!(
            r.slo.is_empty() && r.verdict_reasons.is_empty(),
            "{:?}",
            r.verdict_reasons
        );
        r
    }

    #[test]
    fn a_whole_sound_set_has_no_problem_and_each_flaw_is_named() {
        let reports: Vec<Report> = (0..4).map(|i| report(i, 4, 100)).collect();
        let dirs = ["s0", "s1", "s2", "s3"];
        let parts = |rs: &[&Report]| -> Vec<(String, Report)> {
            rs.iter()
                .enumerate()
                .map(|(i, r)| (dirs[i].to_owned(), (*r).clone()))
                .collect()
        };
        let check = |set: &[(String, Report)], expected: Option<u32>| {
            let p: Vec<Part<'_>> = set
                .iter()
                .map(|(d, r)| Part {
                    dir: d,
                    report: Ok(r),
                })
                .collect();
            problems(&p, expected)
        };
        let all: Vec<&Report> = reports.iter().collect();
        assert_eq!(check(&parts(&all), None), Vec::<String>::new());

        let three = parts(&all[..3]);
        assert_eq!(
            check(&three, None),
            [
                "shard 3 of 4 is missing: no folder given holds it (its part of the load is not in the figures)"
            ]
        );
        let told = check(&parts(&all), Some(5));
        assert!(
            told.iter()
                .any(|p| p.starts_with("shard 4 of 5 is missing")),
            "{told:?}"
        );

        let mut twice = parts(&all);
        twice[3].1 = reports[2].clone();
        let p = check(&twice, None);
        assert!(
            p.contains(&"shard 2 is given more than once (s2, s3)".to_owned()),
            "{p:?}"
        );

        let mut broken = parts(&all);
        broken[1].1.interrupted = Some("SIGTERM".into());
        broken[2].1.self_check = SelfCheck::not_recorded();
        let p = check(&broken, None);
        assert!(
            p.contains(&"shard 1 (s1) did not complete: SIGTERM".to_owned()),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|x| x.starts_with("shard 2 (s2) is not trustworthy")),
            "{p:?}"
        );

        let mut late = parts(&all);
        late[3].1 = report(3, 4, 102);
        let p = check(&late, None);
        assert!(
            p.iter()
                .any(|x| x.starts_with("the shards did not start together")),
            "{p:?}"
        );

        let mut plain = parts(&all);
        plain[0].1.shard = None;
        let p = check(&plain, None);
        assert!(
            p.iter().any(|x| x.starts_with("s0: not a shard's output")),
            "{p:?}"
        );

        let missing = [Part {
            dir: "gone",
            report: Err("no report.json (the shard did not finish)".into()),
        }];
        assert_eq!(
            problems(&missing, None),
            [
                "gone: no report.json (the shard did not finish)",
                "no shard to merge"
            ]
        );
    }

    #[test]
    fn offsets_count_from_the_earliest_shard_and_measured_time_spans_them() {
        assert_eq!(offsets(&[5_000_300, 5_000_000, 5_001_000]), [300, 0, 1000]);
        assert_eq!(measured_s(&[(0, 30.0), (500_000, 30.0), (0, 29.0)]), 30.5);
    }

    #[test]
    fn the_merged_self_check_is_as_sound_as_its_weakest_shard() {
        let sound = SelfCheck {
            trustworthy: true,
            reasons: vec![],
            figures: Some(SelfCheckFigures {
                cores: 2,
                stalls: 1,
                peak_rss_mb: Some(100.0),
                scheduler_lag_ms: LagFigures {
                    p50: 0.1,
                    p99: 1.0,
                    max: 3.0,
                },
                ..SelfCheckFigures::default()
            }),
        };
        let mut busy = sound.clone();
        busy.trustworthy = false;
        busy.reasons = vec!["CPU saturated".into()];
        if let Some(f) = busy.figures.as_mut() {
            f.scheduler_lag_ms.p99 = 40.0;
            f.peak_rss_mb = Some(300.0);
        }
        let both = self_check(&[(0, &sound), (1, &sound)]);
        assert!(both.trustworthy);
        let f = both.figures.unwrap();
        assert_eq!((f.cores, f.stalls, f.peak_rss_mb), (4, 2, Some(100.0)));
        let mixed = self_check(&[(0, &sound), (1, &busy)]);
        assert!(!mixed.trustworthy);
        assert_eq!(mixed.reasons, ["shard 1: CPU saturated"]);
        let f = mixed.figures.unwrap();
        assert_eq!((f.scheduler_lag_ms.p99, f.peak_rss_mb), (40.0, Some(300.0)));
        assert!(!self_check(&[]).trustworthy);
        let unrecorded = SelfCheck::not_recorded();
        let none = self_check(&[(0, &sound), (1, &unrecorded)]);
        assert!(!none.trustworthy && none.figures.is_none());
    }
}
