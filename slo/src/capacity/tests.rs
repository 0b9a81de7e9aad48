//! The search against simulated services whose samples are drawn, so
//! every step is judged as a real one is: order-statistic intervals of
//! the drawn samples, through [`crate::objective::Objective::judge`].

use super::*;
use crate::evidence::{CONFIDENCE, min_samples, rank_interval};
use crate::objective::{Direction, Objective, Source};
use crate::rng::Rng;
use serde_json::json;

/// A service of capacity `c` requests/s: a log-normal idle latency (median
/// `median` ms, shape `sigma`) plus a queueing wait that stays near zero
/// until the load nears capacity (exponential, mean `50 ms · ρ⁸ / (1 − ρ)`),
/// and beyond capacity a queue that grows through the step.
struct Service {
    c: f64,
    median: f64,
    sigma: f64,
}

impl Service {
    fn sample(&self, rate: f64, rng: &mut Rng) -> f64 {
        let idle = self.median * (self.sigma * rng.normal()).exp();
        let rho = rate / self.c;
        let wait_mean = if rho >= 0.999 {
            60_000.0
        } else {
            50.0 * rho.powi(8) / (1.0 - rho)
        };
        idle - wait_mean * rng.uniform().ln()
    }
}

fn objective(name: &str, metric: &str, direction: Direction, target: f64) -> Objective {
    Objective {
        name: name.into(),
        metric: metric.into(),
        source: Source::Client,
        direction,
        target,
        warning: None,
        critical: None,
        required: true,
        capacity: None,
        window: None,
        budget: None,
    }
}

fn slo(objectives: Vec<Objective>) -> SloFile {
    SloFile {
        name: "sim".into(),
        description: String::new(),
        objectives,
    }
}

fn cfg() -> SearchConfig {
    SearchConfig {
        start: 1.0,
        max: 1000.0,
        min: 0.1,
        factor: 2.0,
        precision: 0.1,
        max_steps: 40,
        max_tries: 3,
    }
}

/// The figures of `samples` as report.json has them: the p95 (the sample
/// at rank ⌈0.95 n⌉), its count and its 95 % interval; with `evidence`
/// false, no interval (the point estimate alone decides).
fn figures(samples: &mut [f64], evidence: bool) -> serde_json::Value {
    samples.sort_by(f64::total_cmp);
    let n = samples.len() as u64;
    let at = |rank: u64| samples[(rank.max(1) - 1) as usize];
    let p95 = at((0.95 * n as f64).ceil() as u64);
    let (lo, hi) = rank_interval(n, 0.95, CONFIDENCE);
    let mut lat = json!({ "p95": p95, "count": n });
    if evidence {
        lat["evidence"] = json!({ "p95": {
            "lo": lo.map(at),
            "hi": hi.map(at),
            "min_samples": min_samples(0.95),
        }});
    }
    json!({ "lat": lat, "ok": 100.0 })
}

/// One step as `loadgen` runs it: at least the percentiles' minimum of
/// samples (or `fixed`, when set), then a second's worth more at a time
/// until every deciding objective is decided, one is shown breached, or
/// the step's cap is reached (60 s or twice the minimum's time, whichever
/// is longer; doubled on each try).
fn step(
    svc: &Service,
    s: &Search,
    slo: &SloFile,
    next: Next,
    rng: &mut Rng,
    fixed: Option<usize>,
) -> Measured {
    let cap_s =
        (60.0f64).max(2.0 * min_samples(0.95) as f64 / next.rate) * next.cap_factor() as f64;
    let most = (next.rate * cap_s).ceil().max(1.0) as usize;
    let mut samples: Vec<f64> = Vec::new();
    let first = fixed.unwrap_or(min_samples(0.95) as usize).min(most);
    let per_second = next.rate.ceil().max(1.0) as usize;
    loop {
        let want = if samples.is_empty() {
            first
        } else {
            samples.len() + per_second
        };
        while samples.len() < want.min(most) {
            samples.push(svc.sample(next.rate, rng));
        }
        let doc = figures(&mut samples, fixed.is_none());
        let judged: Vec<Judged> = slo
            .objectives
            .iter()
            .map(|o| o.judge(&doc, &json!({}), s.fail_on))
            .collect();
        let m = Measured {
            offered_rps: next.rate,
            sent_rps: next.rate,
            achieved_rps: next.rate,
            measured_s: samples.len() as f64 / next.rate,
            requests: samples.len() as u64,
            min_requests: first as u64,
            cap_s,
            success_rate: 100.0,
            objectives: judged,
            ..Measured::default()
        };
        let (shown, _, undecided) = s.judge(&m);
        if fixed.is_some() || samples.len() >= most || !shown.is_empty() || undecided.is_empty() {
            return m;
        }
    }
}

fn search(svc: &Service, slo: &SloFile, seed: u64, fixed: Option<usize>) -> Search {
    search_from(svc, slo, seed, fixed, cfg())
}

fn search_from(
    svc: &Service,
    slo: &SloFile,
    seed: u64,
    fixed: Option<usize>,
    cfg: SearchConfig,
) -> Search {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut s = Search::new(cfg, slo, FailOn::Target, false);
    while let Some(next) = s.next() {
        let m = step(svc, &s, slo, next, &mut rng, fixed);
        s.record(next, m);
    }
    s
}

/// The rate at which the service's true p95 (of 200,000 samples) crosses
/// `line`, by bisection.
fn crossing(svc: &Service, line: f64) -> f64 {
    let mut rng = Rng(0x5EED);
    let (mut lo, mut hi) = (0.1, svc.c);
    for _ in 0..14 {
        let mid = (lo + hi) / 2.0;
        let mut s: Vec<f64> = (0..200_000).map(|_| svc.sample(mid, &mut rng)).collect();
        s.sort_by(f64::total_cmp);
        if s[189_999] > line {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    lo
}

fn spread(found: &[f64]) -> f64 {
    let lo = found.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = found.iter().copied().fold(0.0, f64::max);
    hi / lo - 1.0
}

#[test]
fn a_noisy_objective_near_its_line_at_idle_gives_searches_that_agree() {
    // Idle p95 = 200 · e^(1.645 · 0.4) ≈ 387 ms against a 430 ms line:
    // 10 % under it, inside the noise of the first hundred samples.
    let svc = Service {
        c: 40.0,
        median: 200.0,
        sigma: 0.4,
    };
    let kpi = slo(vec![objective("p95", "lat.p95", Direction::Max, 430.0)]);
    let truth = crossing(&svc, 430.0);
    let found: Vec<f64> = (1..=12)
        .map(|seed| {
            let s = search_from(
                &svc,
                &kpi,
                seed,
                None,
                SearchConfig {
                    start: 4.0,
                    ..cfg()
                },
            );
            let r = CapacityReport::new(&s, meta());
            // Decided at idle one way or the other, never a tiny capacity.
            match r.max_sustainable {
                Some(q) => q.value,
                None => {
                    assert_eq!(r.status, Status::Undefined);
                    f64::NAN
                }
            }
        })
        .collect();
    let defined: Vec<f64> = found.iter().copied().filter(|v| v.is_finite()).collect();
    // The stated spread: every search that finds a capacity finds one
    // within 35 % of the others', and most (10 of 12) find one.
    assert!(defined.len() >= 10, "{found:?}");
    assert!(spread(&defined) <= 0.35, "{found:?}");
    // And they land at or below where the true p95 crosses the line, and
    // not far below: the highest rate shown to hold.
    for v in &defined {
        assert!(
            *v <= truth * 1.05 && *v >= 0.6 * truth,
            "truth {truth}: {found:?}"
        );
    }

    // The old rule (19 samples a step, the point estimate decides) on the
    // same service: its searches disagree by more than 100 %. This is the
    // contrast that shows the assertions above can fail.
    let naive: Vec<f64> = (1..=12)
        .map(|seed| {
            let s = search_from(
                &svc,
                &kpi,
                seed,
                Some(19),
                SearchConfig {
                    start: 4.0,
                    ..cfg()
                },
            );
            s.last_pass.unwrap_or(0.05)
        })
        .collect();
    // (Measured when written: every evidence search found 30/s against a
    // true crossing at 31.4/s; the point-estimate searches found 0.05 to
    // 30/s.)
    assert!(spread(&naive) > 1.0, "{naive:?} vs {found:?}");
}

fn meta() -> ReportMeta {
    ReportMeta {
        scenario: "sim".into(),
        target: "sim".into(),
        slo_file: None,
        step: StepPlan {
            duration_s: 20.0,
            warmup_s: 5.0,
            cap_s: 20.0,
        },
        warm: None,
        expected_rps: Some(10.0),
    }
}

#[test]
fn an_objective_failing_at_idle_is_set_aside_not_made_a_capacity() {
    let svc = Service {
        c: 40.0,
        median: 100.0,
        sigma: 0.1,
    };
    // p95 ≈ 118 ms at idle: a 50 ms line fails without load.
    let both = slo(vec![
        objective("tight", "lat.p95", Direction::Max, 50.0),
        objective("loose", "lat.p95", Direction::Max, 400.0),
    ]);
    let s = search(&svc, &both, 7, None);
    let r = CapacityReport::new(&s, meta());
    assert_eq!(r.status, Status::Undefined);
    assert_eq!(r.undefined.len(), 1);
    assert_eq!(r.undefined[0].name, "tight");
    assert_eq!(r.undefined[0].role, Role::FailsAtIdle);
    assert!(
        r.undefined[0]
            .why
            .as_deref()
            .unwrap()
            .contains("fails at idle"),
        "{:?}",
        r.undefined[0]
    );
    // The other objective still finds where load breaks it.
    let found = r.max_sustainable.unwrap().value;
    assert!(found > 20.0 && found < 40.0, "{found}");
    assert_eq!(r.limiting_objective.unwrap().name, "loose");
    assert_eq!(r.idle_rps, Some(1.0));

    // Alone, it leaves nothing to decide: no capacity at all.
    let alone = slo(vec![objective("tight", "lat.p95", Direction::Max, 50.0)]);
    let s = search(&svc, &alone, 7, None);
    assert_eq!(s.steps.len(), 1);
    let r = CapacityReport::new(&s, meta());
    assert_eq!(r.max_sustainable, None);
    assert_eq!(r.status, Status::Undefined);
    assert_eq!(r.meets_expected, Some(false));
    assert!(r.stopped.unwrap().contains("capacity is undefined"));
}

#[test]
fn workload_mix_objectives_report_and_decide_nothing_unless_told() {
    let svc = Service {
        c: 40.0,
        median: 100.0,
        sigma: 0.1,
    };
    let mut hit = objective(
        "KB cache hit rate",
        "cache.kb_hit_rate",
        Direction::Min,
        60.0,
    );
    let mix = slo(vec![
        hit.clone(),
        objective("loose", "lat.p95", Direction::Max, 400.0),
    ]);
    let s = search(&svc, &mix, 3, None);
    assert_eq!(s.objectives[0].role, Role::Reports);
    // Not measured (the simulated figures have no cache) and yet no step
    // failed for it.
    assert!(
        s.steps
            .iter()
            .all(|st| st.breached.iter().all(|b| b.name != "KB cache hit rate"))
    );
    assert!(s.last_pass.unwrap() > 20.0);
    // Told to decide, its missing figure fails the idle step: undefined.
    hit.capacity = Some(CapacityRole::Decides);
    let s = search(&svc, &slo(vec![hit]), 3, None);
    assert_eq!(s.objectives[0].role, Role::FailsAtIdle);
    assert_eq!(s.last_pass, None);
}

/// A search decided by one objective, judged in each test's own terms.
fn deciding_on(name: &str, metric: &str, cfg: SearchConfig) -> Search {
    let mut s = Search::new(cfg, &slo(vec![]), FailOn::Warning, false);
    s.objectives.push(ObjectiveRole {
        name: name.into(),
        metric: metric.into(),
        role: Role::Decides,
        why: None,
    });
    s
}

fn held(rate: f64) -> Measured {
    Measured {
        offered_rps: rate,
        sent_rps: rate,
        achieved_rps: rate,
        measured_s: 100.0 / rate,
        requests: 100,
        cap_s: 60.0,
        success_rate: 100.0,
        ..Measured::default()
    }
}

#[test]
fn a_start_rate_not_carried_is_not_idle_and_the_search_goes_lower() {
    let mut s = deciding_on("success", "requests.success_rate", cfg());
    let next = s.next().unwrap();
    assert!(next.idle && next.rate == 1.0);
    // 1/s offered, 0.5/s achieved over 100 s: not Poisson noise.
    let short = Measured {
        achieved_rps: 0.5,
        ..held(1.0)
    };
    assert_eq!(s.record(next, short).outcome, Outcome::NotIdle);
    let next = s.next().unwrap();
    assert!(next.idle && next.rate == 0.5, "{next:?}");
    assert_eq!(s.record(next, held(0.5)).outcome, Outcome::Idle);
    // Then it bisects between the idle rate and the rate that failed.
    let next = s.next().unwrap();
    assert!(!next.idle && next.rate == 0.75, "{next:?}");
    let r = CapacityReport::new(&s, meta());
    assert_eq!(r.limiting_objective.unwrap().name, "achieved rate");
}

#[test]
fn an_inconclusive_step_is_repeated_longer_then_counts_as_not_held() {
    let two = SearchConfig {
        max_tries: 2,
        ..cfg()
    };
    let mut s = deciding_on("p95", "lat.p95", two.clone());
    let judged = |level: Level, needed: Option<u64>| Judged {
        name: "p95".into(),
        metric: "lat.p95".into(),
        source: Source::Client,
        level,
        point_level: Level::Ok,
        value: Some(390.0),
        threshold: 400.0,
        margin: Some(10.0),
        required: true,
        interval: Some(Interval {
            lo: Some(350.0),
            hi: Some(420.0),
            min_samples: 100,
        }),
        samples: Some(100),
        samples_needed: needed,
        decided_by: None,
        levels: None,
        window: None,
        budget: None,
        split: None,
    };
    let with = |rate: f64, j: Judged| Measured {
        objectives: vec![j],
        ..held(rate)
    };
    let idle = s.next().unwrap();
    s.record(idle, with(1.0, judged(Level::Ok, None)));
    let next = s.next().unwrap();
    assert_eq!((next.rate, next.attempt), (2.0, 1));
    let step = s.record(next, with(2.0, judged(Level::Inconclusive, Some(150))));
    assert_eq!(step.outcome, Outcome::Repeated);
    let again = s.next().unwrap();
    assert_eq!((again.rate, again.attempt, again.cap_factor()), (2.0, 2, 2));
    let step = s.record(again, with(2.0, judged(Level::Inconclusive, Some(150))));
    assert_eq!(step.outcome, Outcome::Inconclusive);
    assert_eq!(s.first_fail, Some(2.0));
    assert_eq!(s.last_pass, Some(1.0));
    let r = CapacityReport::new(&s, meta());
    let l = r.limiting_objective.unwrap();
    assert_eq!((l.name.as_str(), l.level.as_str()), ("p95", "inconclusive"));

    // Undecided at idle after every try: set aside, capacity undefined.
    let mut s = deciding_on("p95", "lat.p95", two);
    let idle = s.next().unwrap();
    let step = s.record(idle, with(1.0, judged(Level::Inconclusive, Some(5000))));
    assert_eq!(step.outcome, Outcome::Repeated);
    let again = s.next().unwrap();
    assert!(again.idle && again.attempt == 2);
    let step = s.record(again, with(1.0, judged(Level::Inconclusive, Some(5000))));
    assert_eq!(step.outcome, Outcome::Idle);
    assert_eq!(s.objectives[0].role, Role::UndecidedAtIdle);
    assert_eq!(s.last_pass, None);
    assert!(
        s.stopped
            .as_ref()
            .unwrap()
            .contains("capacity is undefined")
    );
}

#[test]
fn a_saturated_client_stops_the_search_without_blaming_the_server() {
    let mut s = deciding_on("success", "requests.success_rate", cfg());
    let idle = s.next().unwrap();
    s.record(idle, held(1.0));
    // Not trusted once: a stall of the client's scheduler, perhaps; the
    // step is run again. Not trusted on every try: saturated, stop.
    for attempt in 1..=3 {
        let next = s.next().unwrap();
        assert_eq!((next.rate, next.attempt), (2.0, attempt));
        let step = s.record(
            next,
            Measured {
                client_saturated: true,
                ..held(2.0)
            },
        );
        let expected = if attempt < 3 {
            Outcome::Repeated
        } else {
            Outcome::ClientSaturated
        };
        assert_eq!(step.outcome, expected);
    }
    assert_eq!(s.next(), None);
    assert_eq!(s.last_pass, Some(1.0));
    assert!(
        s.stopped
            .as_ref()
            .unwrap()
            .contains("load generator saturated")
    );
    let r = CapacityReport::new(
        &s,
        ReportMeta {
            expected_rps: Some(2.0),
            ..meta()
        },
    );
    assert_eq!(r.meets_expected, Some(false));
    assert_eq!(r.headroom_percent, Some(-50.0));
    assert_eq!(r.status, Status::ShortOfExpected);
}

#[test]
fn the_knee_is_where_latency_is_shown_to_rise() {
    let svc = Service {
        c: 40.0,
        median: 100.0,
        sigma: 0.1,
    };
    let kpi = slo(vec![objective("p95", "lat.p95", Direction::Max, 400.0)]);
    let s = search(&svc, &kpi, 11, None);
    let knee = s.knee().unwrap();
    let found = s.last_pass.unwrap();
    assert!(knee.value <= found, "{knee:?} vs {found}");
    assert!(knee.bent_at > knee.value);
    assert!(knee.why.contains("p95 rose"), "{knee:?}");
    // The idle p95 (~118 ms) is at most 1.5x'd (177 ms) below ρ ≈ 0.6.
    assert!(knee.value >= 16.0, "{knee:?}");
}

#[test]
fn carried_allows_poisson_noise_only() {
    // 100 expected, 91 achieved: within 10 %.
    assert!(carried(1.0, 0.91, 100.0));
    // 100 expected, 85: more than 10 % short but P(X <= 85) ≈ 7 %: noise.
    assert!(carried(1.0, 0.85, 100.0));
    // 10,000 expected, 8,500: far beyond noise.
    assert!(!carried(100.0, 85.0, 100.0));
}

#[test]
fn the_console_summary_says_the_status_first_and_the_objectives_held() {
    let svc = Service {
        c: 40.0,
        median: 100.0,
        sigma: 0.1,
    };
    let loose = slo(vec![objective("loose", "lat.p95", Direction::Max, 400.0)]);
    let r = CapacityReport::new(&search(&svc, &loose, 7, None), meta());
    let text = crate::render::capacity::console(&r);
    let first = text.lines().next().unwrap();
    assert!(first.starts_with("FOUND capacity: "), "{text}");
    assert!(text.contains("times the expected traffic"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("✔ ok") && l.contains("loose") && l.contains("threshold 400")),
        "{text}"
    );
    let tight = slo(vec![objective("tight", "lat.p95", Direction::Max, 50.0)]);
    let r = CapacityReport::new(&search(&svc, &tight, 7, None), meta());
    let text = crate::render::capacity::console(&r);
    assert!(text.starts_with("UNDEFINED capacity: undefined"), "{text}");
    assert!(text.contains("capacity undefined for tight: "), "{text}");
}

/// Issue 32: a start step in which nothing succeeded ends the search at
/// once: no lower rate, no repeat; capacity undefined, the cause named.
#[test]
fn a_target_failing_at_the_start_rate_ends_the_search_at_once() {
    let file = slo(vec![objective(
        "first token p95",
        "latency_ms.first_token.p95",
        Direction::Max,
        500.0,
    )]);
    let mut s = Search::new(cfg(), &file, FailOn::Warning, false);
    let next = s.next().unwrap();
    assert!(next.idle);
    let why = "every request failed (4 of 4): HTTP 503 from the target ×4".to_owned();
    let step = s.record(
        next,
        Measured {
            offered_rps: 1.0,
            requests: 4,
            other_failures: vec![why.clone()],
            target_failing: Some(why.clone()),
            // Even a stalled client does not make it worth repeating.
            client_saturated: true,
            ..Measured::default()
        },
    );
    assert_eq!(step.outcome, Outcome::Breached);
    assert_eq!(s.next(), None, "nothing more to run");
    let report = CapacityReport::new(
        &s,
        ReportMeta {
            scenario: "s".into(),
            target: "t".into(),
            slo_file: None,
            step: StepPlan {
                duration_s: 3.0,
                warmup_s: 1.0,
                cap_s: 60.0,
            },
            warm: None,
            expected_rps: Some(1.0),
        },
    );
    assert_eq!(report.status, Status::Undefined);
    assert_eq!(report.max_sustainable, None);
    let stopped = report.stopped.unwrap();
    assert!(
        stopped.contains(&why) && stopped.contains("capacity is undefined"),
        "{stopped}"
    );

    // Past the idle step, it fails that step at once, without a repeat.
    let mut s = Search::new(cfg(), &file, FailOn::Warning, false);
    let idle = s.next().unwrap();
    s.record(
        idle,
        Measured {
            offered_rps: 1.0,
            achieved_rps: 1.0,
            measured_s: 100.0,
            requests: 100,
            success_rate: 100.0,
            ..Measured::default()
        },
    );
    let ramp = s.next().unwrap();
    assert!(!ramp.idle);
    let step = s.record(
        ramp,
        Measured {
            offered_rps: ramp.rate,
            target_failing: Some("success rate shown past its line".into()),
            ..Measured::default()
        },
    );
    assert_eq!(step.outcome, Outcome::Breached);
    assert_eq!(s.first_fail, Some(ramp.rate));
    assert_ne!(s.next().map(|n| n.rate), Some(ramp.rate), "not repeated");
}

/// The worst case `--dry-run` prints bounds every search its flags allow.
#[test]
fn the_worst_case_bounds_every_search() {
    let bounds = StepBounds {
        warm_s: 0.0,
        warmup_s: 1.0,
        duration_s: 3.0,
        cap_s: 10.0,
        min_requests: 100,
        overhead_s: 2.0,
    };
    let cfg = SearchConfig {
        start: 1.0,
        max: 8.0,
        min: 0.5,
        factor: 2.0,
        precision: 0.1,
        max_steps: 40,
        max_tries: 3,
    };
    let (steps, seconds) = worst_case(&cfg, &bounds);
    // Rates: idle 1, 0.5; ramp 2, 4, 8; 4 bisections (1 / 0.1 -> 10 ->
    // 2^4 = 16 >= 10), each three tries.
    assert_eq!(steps, (2 + 3 + 4) * 3);
    // The slowest step: at 0.5 requests/s, a cap of 400 s, doubled twice.
    assert!(seconds >= 1.0 + 1600.0 + 2.0, "{seconds}");
    // Never more steps than the search allows.
    let few = SearchConfig {
        max_steps: 5,
        ..cfg
    };
    assert_eq!(worst_case(&few, &bounds).0, 5);
    assert!(worst_case(&few, &bounds).1 < seconds);
    // Simulated searches never take longer than their bound: each step
    // measured as long as its cap allows.
    let file = slo(vec![objective(
        "first token p95",
        "latency_ms.first_token.p95",
        Direction::Max,
        500.0,
    )]);
    let mut s = Search::new(cfg.clone(), &file, FailOn::Warning, false);
    let mut spent = 0.0;
    while let Some(next) = s.next() {
        let cap = bounds.cap_s.max(2.0 * 100.0 / next.rate) * f64::from(next.cap_factor());
        spent += bounds.warmup_s + cap + bounds.overhead_s;
        // Inconclusive every time: the longest search there is.
        s.record(
            next,
            Measured {
                offered_rps: next.rate,
                achieved_rps: next.rate,
                measured_s: cap,
                requests: (cap * next.rate) as u64,
                success_rate: 100.0,
                objectives: vec![Judged {
                    level: Level::Inconclusive,
                    ..judged_stub("first token p95")
                }],
                ..Measured::default()
            },
        );
    }
    assert!(spent <= seconds, "{spent} > {seconds}");
}

fn judged_stub(name: &str) -> Judged {
    Judged {
        name: name.into(),
        metric: "latency_ms.first_token.p95".into(),
        source: Source::Client,
        level: Level::Ok,
        point_level: Level::Ok,
        value: Some(100.0),
        threshold: 500.0,
        margin: Some(400.0),
        required: true,
        interval: None,
        samples: Some(100),
        samples_needed: None,
        decided_by: None,
        levels: None,
        window: None,
        budget: None,
        split: None,
    }
}
