//! A bounded capacity search against the reference server, whose capacity
//! is known from its flags: `--model-slots S` generations at once, each
//! taking 100 ms to the first token plus 10 ms a further token, so
//! capacity = S / mean generation time.

use crate::support::{args, scenario, temp_dir};
use loadgen::plan::Plan;
use slo::capacity::SearchConfig;
use std::path::Path;
use std::time::Duration;

/// The mean generation time of the questions the load generator asks.
fn mean_generation_s() -> f64 {
    let mut mix =
        loadgen::mix::PromptMix::new(1, &[], &["60f7b3b3e6b6f40015e6b6f4".to_owned()], 0.6);
    let n = 3000;
    let words: usize = (0..n)
        .map(|_| {
            let (bot, q) = mix.next_ask();
            server::corpus::answer(&bot, &q).word_count()
        })
        .sum();
    0.100 + (words as f64 / n as f64 - 1.0) * 0.010
}

async fn search(slots: usize, dir: &Path) -> slo::capacity::CapacityReport {
    std::fs::write(
        dir.join("slo.toml"),
        "name = \"cap\"\n[[objective]]\nname = \"first token p95\"\nmetric = \"latency_ms.first_token.corrected.p95\"\ndirection = \"max\"\ntarget = 300\nwarning = 400\ncritical = 3000\n\n[[objective]]\nname = \"success rate\"\nmetric = \"requests.success_rate\"\ndirection = \"min\"\ntarget = 99\nwarning = 98\ncritical = 95\n",
    )
    .unwrap();
    let text = format!(
        "name = \"cap{slots}\"\nduration = \"6s\"\nslo = \"slo.toml\"\n[server]\nargs = [\"--profile\", \"fast\", \"--first-token-ms\", \"100\", \"--token-interval-ms\", \"10\", \"--model-slots\", \"{slots}\"]\n[load]\nmodel = \"open\"\nrate = 1.0\nmax_users = 200\n[request]\naudio = false\n"
    );
    let plan = Plan::from_args(&args(&scenario(dir, &text), &dir.join("out"))).unwrap();
    let cfg = loadgen::capacity::CapacityArgs {
        step_duration: Duration::from_secs(6),
        step_warmup: Duration::from_secs(2),
        search: SearchConfig {
            start: 1.0,
            max: 64.0,
            min: 0.25,
            factor: 2.0,
            precision: 0.15,
            max_steps: 12,
        },
        expected_rps: Some(2.0),
    };
    loadgen::capacity::capacity(&plan, &cfg, |l| eprintln!("{l}"))
        .await
        .unwrap()
}

#[tokio::test]
async fn the_search_finds_the_servers_known_capacity() {
    let g = mean_generation_s();
    for slots in [4usize, 8] {
        let dir = temp_dir(&format!("capacity-{slots}"));
        let report = search(slots, &dir).await;
        let known = slots as f64 / g;
        let found = report.max_sustainable.value;
        eprintln!(
            "{slots} slots: known capacity {known:.2}/s (mean generation {g:.3} s), found {found:.2}/s"
        );
        // Stated tolerance: between 75 % and 110 % of the known capacity
        // (the objective breaks a little before saturation, as queues form).
        assert!(
            found >= 0.75 * known && found <= 1.10 * known,
            "{slots} slots: found {found:.2}/s, known {known:.2}/s"
        );
        assert_eq!(report.max_sustainable.unit, "requests/s");
        assert_eq!(
            report.limiting_objective.as_ref().unwrap().name,
            "first token p95"
        );
        assert!(report.steps.iter().any(|s| !s.passed) && report.steps.iter().any(|s| s.passed));
        assert!(report.knee.as_ref().unwrap().value <= found);
        assert_eq!(report.meets_expected, Some(found >= 2.0));
        let out = dir.join("out");
        for f in ["capacity.json", "capacity.md", "capacity.html"] {
            assert!(out.join(f).exists(), "{f}");
        }
        assert!(
            std::fs::read_to_string(out.join("capacity.html"))
                .unwrap()
                .contains("<svg")
        );
        let schema: serde_json::Value = serde_json::from_slice(
            &std::fs::read(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../reports/schema/capacity.schema.json"),
            )
            .unwrap(),
        )
        .unwrap();
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("capacity.json")).unwrap()).unwrap();
        let v = jsonschema::validator_for(&schema).unwrap();
        let errors: Vec<String> = v.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?}");
    }
}
