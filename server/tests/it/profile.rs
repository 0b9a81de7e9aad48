//! The `baseline` profile reproduces the guide's "Performance Baselines" on
//! an idle server. Runs the real pipeline with paused time, so thousands of
//! requests take well under a second and the result is deterministic.

use crate::support::{engine, run_job};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use server::pipeline::Step;
use slo::histogram::LatencyHistogram;

/// Idle-server percentiles over `n` sequential requests whose questions
/// repeat with probability `repeat` (the guide's cache baselines: KB
/// 60-70 %, TTS 50-60 %, come from a repeat ratio of about 0.6).
async fn idle_percentiles(args: &[&str], n: usize, repeat: f64) -> [LatencyHistogram; 3] {
    let engine = engine(args);
    let mut rng = StdRng::seed_from_u64(42);
    let mut asked: Vec<String> = Vec::new();
    let mut h = [
        LatencyHistogram::new(),
        LatencyHistogram::new(),
        LatencyHistogram::new(),
    ];
    for i in 0..n {
        let q = if !asked.is_empty() && rng.random::<f64>() < repeat {
            asked[rng.random_range(0..asked.len())].clone()
        } else {
            asked.push(format!("question {i} about our services"));
            asked.last().unwrap().clone()
        };
        let t0 = tokio::time::Instant::now();
        let steps = run_job(&engine, &q, true).await;
        let first_token = steps
            .iter()
            .find(|(_, s)| matches!(s, Step::Token(_)))
            .unwrap()
            .0;
        let first_audio = steps
            .iter()
            .find(|(_, s)| matches!(s, Step::Audio(_)))
            .unwrap()
            .0;
        let (done_at, done) = steps.last().unwrap();
        assert!(matches!(done, Step::Done(_)), "{done:?}");
        h[0].record(first_token - t0);
        h[1].record(first_audio - t0);
        h[2].record(*done_at - t0);
    }
    h
}

#[tokio::test(start_paused = true)]
async fn baseline_profile_matches_the_guide() {
    let [ft, fa, c] = idle_percentiles(&["--profile", "baseline"], 4000, 0.6).await;
    let p = |h: &LatencyHistogram, q: f64| h.quantile_us(q) / 1000;
    let report = format!(
        "first token p50 {} p95 {} p99 {}; first audio p50 {} p95 {} p99 {}; complete p50 {} p95 {} p99 {}",
        p(&ft, 0.5),
        p(&ft, 0.95),
        p(&ft, 0.99),
        p(&fa, 0.5),
        p(&fa, 0.95),
        p(&fa, 0.99),
        p(&c, 0.5),
        p(&c, 0.95),
        p(&c, 0.99),
    );
    eprintln!("{report}");
    let within = |h: &LatencyHistogram, q: f64, lo: u64, hi: u64| {
        let v = p(h, q);
        assert!(
            (lo..=hi).contains(&v),
            "p{} = {v} ms is outside {lo}-{hi}: {report}",
            q * 100.0
        );
    };
    within(&ft, 0.50, 400, 500);
    within(&ft, 0.95, 600, 800);
    within(&ft, 0.99, 800, 1000);
    within(&fa, 0.50, 1100, 1300);
    within(&fa, 0.95, 1400, 1600);
    within(&fa, 0.99, 1700, 2000);
    within(&c, 0.50, 2500, 3000);
    within(&c, 0.95, 3500, 4000);
    within(&c, 0.99, 4500, 5000);
}

#[tokio::test(start_paused = true)]
async fn degraded_profile_breaches_the_guides_warning_thresholds() {
    let [ft, fa, c] = idle_percentiles(&["--profile", "degraded"], 400, 0.6).await;
    let p95 = |h: &LatencyHistogram| h.quantile_us(0.95) / 1000;
    // Warning levels: first token > 1000 ms, first audio > 2000 ms, complete > 5000 ms.
    assert!(p95(&ft) > 1000, "first token p95 {}", p95(&ft));
    assert!(p95(&fa) > 2000, "first audio p95 {}", p95(&fa));
    assert!(p95(&c) > 5000, "complete p95 {}", p95(&c));
}

/// Every step of a run and when it came, relative to the run's start.
async fn timeline(seed: &str) -> Vec<(u128, String)> {
    let engine = engine(&["--profile", "baseline", "--seed", seed]);
    let t0 = tokio::time::Instant::now();
    let mut out = Vec::new();
    for q in ["first question", "second question", "first question"] {
        for (at, step) in run_job(&engine, q, true).await {
            out.push(((at - t0).as_micros(), format!("{step:?}")));
        }
    }
    out
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_gives_the_same_run() {
    let a = timeline("7").await;
    assert_eq!(a, timeline("7").await);
    assert_ne!(a, timeline("8").await, "another seed draws other delays");
}

/// The first token of a run with `--first-token-ms 50` (paused time:
/// exact), after the cache lookup and the prefill of the prompt's tokens.
async fn first_token_us(args: &[&str], message: &str) -> u128 {
    let engine = engine(&[&["--profile", "fast", "--first-token-ms", "50"], args].concat());
    let t0 = tokio::time::Instant::now();
    let steps = run_job(&engine, message, false).await;
    let (at, _) = steps
        .iter()
        .find(|(_, s)| matches!(s, server::pipeline::Step::Token(_)))
        .expect("a token");
    (*at - t0).as_micros()
}

#[tokio::test(start_paused = true)]
async fn a_long_prompt_costs_its_prefill_before_the_first_token() {
    // 2,000 words, and 2,000 tokens of cl100k_base ("word", " word"...).
    let prompt = format!("word{}", " word".repeat(1999));
    let base = first_token_us(&[], &prompt).await;
    assert!((50_000..60_000).contains(&base), "{base}");
    // 2,000 words (tokens without a tokenizer) at 20,000 a second: 100 ms;
    // two words: 100 µs, within tokio's 1 ms timer.
    let slow = ["--prefill-tokens-per-sec", "20000"];
    assert_eq!(first_token_us(&slow, &prompt).await, base + 100_000);
    assert!(first_token_us(&slow, "word word").await - base <= 1_000);
    // Counted by cl100k_base: the same 2,000.
    let counted = [
        "--prefill-tokens-per-sec",
        "20000",
        "--tokenizer",
        "cl100k_base",
    ];
    assert_eq!(first_token_us(&counted, &prompt).await, base + 100_000);
}

#[tokio::test(start_paused = true)]
async fn a_prompt_seen_before_skips_the_prefill_of_what_the_prefix_cache_holds() {
    let prompt = format!("word{}", " word".repeat(1999));
    let base = first_token_us(&[], &prompt).await;
    // One engine, the same 2,000-token prompt twice: the second reads only
    // what its 16-token blocks do not cover (2,000 = 125 whole blocks).
    let engine = engine(&[
        "--profile",
        "fast",
        "--first-token-ms",
        "50",
        "--prefill-tokens-per-sec",
        "20000",
        "--prefix-cache-blocks",
        "1000",
    ]);
    let mut firsts = Vec::new();
    for _ in 0..2 {
        let t0 = tokio::time::Instant::now();
        let steps = run_job(&engine, &prompt, false).await;
        let (at, _) = steps
            .iter()
            .find(|(_, s)| matches!(s, server::pipeline::Step::Token(_)))
            .expect("a token");
        firsts.push((*at - t0).as_micros());
    }
    assert_eq!(firsts, [base + 100_000, base], "{firsts:?}");
    let metrics = engine.metrics.prometheus((0, 0, 0));
    assert!(
        metrics.contains("chatbot_prefix_cache_queries_total 4000"),
        "{metrics}"
    );
    assert!(
        metrics.contains("chatbot_prefix_cache_hits_total 2000"),
        "{metrics}"
    );
}
