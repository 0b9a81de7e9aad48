//! Capacity searches through the binary against the reference server,
//! whose capacity is known from its flags: `--model-slots S` generations
//! at once, each holding its slot for the first-token delay plus a gap
//! per further token, so capacity = S / mean generation time.

use crate::support::{BIN, temp_dir};
use serde_json::Value;
use server::profile::{Profile, ProfileName};
use std::path::Path;
use std::process::Command;
use testkit::root;

/// The mean generation time, in seconds, of the questions the scenario
/// asks (its prompt mix, drawn as the load generator draws it) on the
/// profile: the first-token delay plus (words − 1) token gaps, at their
/// means.
fn mean_generation_s(scenario: &Path, profile: &Profile) -> f64 {
    let sc = loadgen::files::read_scenario(scenario).unwrap();
    let r = &sc.request;
    let mut mix = loadgen::mix::PromptMix::new(
        sc.seed,
        loadgen::mix::Source::prompts(&r.prompts),
        &r.chatbot_ids,
        r.repeat_ratio,
    );
    let n = 5000;
    let words: usize = (0..n)
        .map(|_| {
            let (bot, q) = mix.next_ask();
            server::corpus::answer(&bot, &q).word_count()
        })
        .sum();
    let w = words as f64 / n as f64;
    eprintln!("mean answer: {w:.1} words");
    (profile.first_token_ms.mean_ms() + (w - 1.0) * profile.token_interval_ms.mean_ms()) / 1000.0
}

fn capacity(args: &[&str]) -> (std::process::Output, Value) {
    let out = args[args.iter().position(|a| *a == "--out").unwrap() + 1];
    let o = Command::new(BIN)
        .arg("capacity")
        .args(args)
        .output()
        .unwrap();
    let path = Path::new(out).join("capacity.json");
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}\n{}",
            path.display(),
            String::from_utf8_lossy(&o.stderr)
        )
    }))
    .unwrap();
    testkit::assert_matches_schema("reports/schema/capacity.schema.json", &doc, "capacity.json");
    (o, doc)
}

/// The shipped scenario, shortened only as the README says (a higher idle
/// rate, a shorter warm-up and shorter steps), finds the reference
/// server's known capacity.
#[test]
fn the_shipped_scenario_finds_the_known_capacity() {
    let _turn = crate::support::turn();
    let file = root().join("scenarios/capacity.toml");
    let g = mean_generation_s(&file, &Profile::builtin(ProfileName::Baseline));
    let known = 32.0 / g;
    eprintln!("mean generation {g:.3} s");
    let dir = temp_dir("capacity-shipped");
    let out = dir.join("out");
    let (o, cap) = capacity(&[
        file.to_str().unwrap(),
        "--expected-rps",
        "10",
        "--start-rps",
        "10",
        "--factor",
        "1.3",
        "--warm",
        "5s",
        "--step-duration",
        "6s",
        "--step-warmup",
        "2s",
        "--precision",
        "0.15",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    eprintln!("{stderr}");
    let found = cap["max_sustainable"]["value"].as_f64().unwrap_or(0.0);
    eprintln!("known capacity {known:.2}/s, found {found:.2}/s");
    // Stated tolerance: 70 % to 105 % of the known capacity. The guide's
    // KPIs break a little before the slots saturate, as queues form (the
    // first-token p95 has ~250 ms to spare at idle), and the search
    // reports the highest rate *shown* to hold, within 10 %.
    assert!(
        found >= 0.70 * known && found <= 1.05 * known,
        "found {found:.2}/s, known {known:.2}/s\n{stderr}"
    );
    assert_eq!(cap["status"], "found", "{stderr}");
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert_eq!(cap["undefined"].as_array().unwrap().len(), 0, "{cap}");
    // The workload mix is reported, not deciding.
    let role = |name: &str| {
        cap["objectives"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == name)
            .map(|o| o["role"].clone())
    };
    assert_eq!(role("KB cache hit rate").unwrap(), "reports");
    assert_eq!(role("first token p95").unwrap(), "decides");
    let steps = cap["steps"].as_array().unwrap();
    // The idle step comes first, after any repeats of it (an objective
    // inconclusive at idle is run again longer before it is decided).
    let idle = steps.iter().position(|s| s["outcome"] == "idle").unwrap();
    for s in &steps[..idle] {
        assert!(s["outcome"] == "repeated" && s["idle"] == true, "{s}");
    }
    // Every step that decided on a percentile had its minimum of requests.
    for s in steps {
        if matches!(s["outcome"].as_str(), Some("held" | "idle")) {
            assert!(
                s["requests"].as_u64().unwrap() >= 100 && s["min_requests"] == 100,
                "{s}"
            );
            let ft = s["objectives"]
                .as_array()
                .unwrap()
                .iter()
                .find(|j| j["name"] == "first token p95")
                .unwrap();
            assert!(
                ["ok", "target_missed"].contains(&ft["level"].as_str().unwrap()),
                "{s}"
            );
            assert!(ft["interval"]["hi"].as_f64().unwrap() <= 1000.0, "{s}");
        }
        // Saturation evidence on every step: the server's own view.
        assert!(s["server_max_active_streams"].as_u64().is_some(), "{s}");
    }
    // Above the capacity, the step failed on a load-sensitive figure.
    let limiting = cap["limiting_objective"]["name"].as_str().unwrap();
    assert!(
        [
            "first token p95",
            "first audio p95",
            "complete p95",
            "arrivals dropped",
            "achieved rate"
        ]
        .contains(&limiting),
        "{limiting}"
    );
    // The knee needs a rise by half shown by the intervals; a search whose
    // first failing step failed by less has none. It is a measured rate
    // below the one where the latency bent; it may lie a step above the
    // capacity (a step can fail an objective, or stay inconclusive, before
    // its latency has risen by half), never past the known capacity by
    // more than the search's precision.
    if let Some(knee) = cap["knee"]["value"].as_f64() {
        let bent_at = cap["knee"]["bent_at"].as_f64().unwrap();
        assert!(knee < bent_at, "knee {knee}, bent at {bent_at}");
        assert!(
            knee <= known * 1.1,
            "knee {knee} past the known capacity {known:.2}"
        );
    }
    let html = std::fs::read_to_string(out.join("capacity.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("Carried load vs offered load"));
    assert_eq!(html.contains(">knee "), !cap["knee"].is_null());
    let md = std::fs::read_to_string(out.join("capacity.md")).unwrap();
    assert!(md.contains("Every objective, step by step"), "{md}");
    // The headroom in words, and the page read at a glance: the found
    // capacity's colour, the capacity and expected-traffic markers.
    assert!(md.contains("times the expected traffic"), "{md}");
    assert!(
        html.contains(">capacity ") && html.contains(">expected 10/s<"),
        "{html}"
    );
    let png = crate::support::assert_html_renders(&out.join("capacity.html"), &dir, "pass", &[]);
    let markers = png.count(|p| testkit::Pixels::is(p, "#b3261e", 40));
    assert!(markers > 100, "the markers: {markers} pixels");
}

/// An objective the server fails without load (its first token takes an
/// exact 100 ms; the objective asks for 50): set aside and reported, exit
/// 3, and the capacity comes from the other objective only.
/// The reference server as an engine: `slots` generations at once, each
/// holding its slot for the first-token delay, the prefill of its prompt
/// and a gap per further token, all exact (no jitter).
const ENGINE: (f64, f64, f64, f64) = (16.0, 5.0, 1500.0, 4.0);

/// The capacity the knobs imply for prompts of `input` tokens and answers
/// of `output`: slots / generation time, in requests a second.
fn engine_capacity(input: u32, output: u32) -> f64 {
    let (slots, first_ms, prefill_per_s, gap_ms) = ENGINE;
    let g_ms =
        first_ms + f64::from(input) * 1000.0 / prefill_per_s + f64::from(output - 1) * gap_ms;
    slots / (g_ms / 1000.0)
}

/// Two token-length workloads against the same engine knobs: long
/// prompts with short answers, short prompts with long answers. Each
/// search finds the capacity its lengths imply (within 15 %), and the two
/// differ as the lengths make them.
#[test]
fn token_length_workloads_find_the_capacity_their_lengths_imply() {
    let _turn = crate::support::turn();
    let (slots, first_ms, prefill_per_s, gap_ms) = ENGINE;
    let mut found_each = Vec::new();
    for (name, input, output) in [("prompts", 300, 16), ("answers", 30, 128)] {
        let known = engine_capacity(input, output);
        let dir = temp_dir(&format!("capacity-tokens-{name}"));
        // First token at idle: its delay and its prompt's prefill. Held
        // while the slots keep up (constant arrivals: no queue below the
        // capacity), broken within a step above it (the queue grows).
        // Its p90 (50 requests decide it, where a p95 needs 100) keeps
        // each step to about two seconds.
        let idle = first_ms + f64::from(input) * 1000.0 / prefill_per_s;
        std::fs::write(
            dir.join("slo.toml"),
            format!(
                "name = \"ttft\"\n[[objective]]\nname = \"first token p90\"\nmetric = \"scheduled_latency_ms.first_token.p90\"\ndirection = \"max\"\ntarget = {}\nwarning = {}\ncritical = {}\n\
                 [[objective]]\nname = \"success rate\"\nmetric = \"requests.success_rate\"\ndirection = \"min\"\ntarget = 99\nwarning = 98\ncritical = 95\n",
                idle + 50.0,
                idle + 100.0,
                idle + 300.0
            ),
        )
        .unwrap();
        let file = dir.join("s.toml");
        std::fs::write(
            &file,
            format!(
                "name = \"tokens-{name}\"\nduration = \"5s\"\nslo = \"slo.toml\"\nprotocol = \"openai-chat\"\n\
                 [openai]\nmodel = \"m\"\n\
                 [server]\nargs = [\"--profile\", \"fast\", \"--model-slots\", \"{slots}\", \"--first-token-ms\", \"{first_ms}\", \"--token-interval-ms\", \"{gap_ms}\", \"--prefill-tokens-per-sec\", \"{prefill_per_s}\", \"--tokenizer\", \"cl100k_base\"]\n\
                 [load]\nmodel = \"open\"\nrate = 1.0\narrival = \"constant\"\nmax_users = 400\nmax_lateness = \"2s\"\n\
                 [request]\naudio = false\nrepeat_ratio = 0.0\ntimeout = \"20s\"\n\
                 [tokens]\ntokenizer = \"cl100k_base\"\ninput = {{ dist = \"fixed\", value = {input} }}\noutput = {{ dist = \"fixed\", value = {output} }}\nmin_tokens = true\n"
            ),
        )
        .unwrap();
        let out = dir.join("out");
        let start = format!("{:.2}", known * 0.5);
        let (o, cap) = capacity(&[
            file.to_str().unwrap(),
            "--start-rps",
            &start,
            "--factor",
            "1.4",
            "--warm",
            "1s",
            "--step-duration",
            "2s",
            "--step-warmup",
            "1s",
            "--step-max-duration",
            "8s",
            "--precision",
            "0.15",
            "--out",
            out.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        let found = cap["max_sustainable"]["value"].as_f64().unwrap_or(0.0);
        eprintln!(
            "{name}: {input} in, {output} out: known {known:.1}/s, found {found:.1}/s\n{stderr}"
        );
        assert_eq!(cap["status"], "found", "{stderr}");
        // Stated tolerance: within 15 % of the knobs' capacity (the
        // search stops within 15 % below the first rate that breaks).
        assert!(
            (found / known - 1.0).abs() <= 0.15,
            "{name}: found {found:.2}/s, known {known:.2}/s\n{stderr}"
        );
        found_each.push(found);
    }
    // Long answers hold a slot twice as long as long prompts do here.
    assert!(found_each[0] > 1.5 * found_each[1], "{found_each:?}");
}

#[test]
fn an_objective_failing_at_idle_is_reported_not_made_a_capacity() {
    let _turn = crate::support::turn();
    // Alone: beside other tests the load generator's self-check found the
    // client saturated at 20/s and the step was repeated, not held.
    let dir = temp_dir("capacity-idle");
    let slo = dir.join("slo.toml");
    std::fs::write(
        &slo,
        "name = \"idle\"\n\
         [[objective]]\nname = \"first token p95\"\nmetric = \"scheduled_latency_ms.first_token.p95\"\ndirection = \"max\"\ntarget = 50\n\n\
         [[objective]]\nname = \"success rate\"\nmetric = \"requests.success_rate\"\ndirection = \"min\"\ntarget = 99\n",
    )
    .unwrap();
    let file = dir.join("scenario.toml");
    std::fs::write(
        &file,
        "name = \"idle\"\nduration = \"5s\"\nslo = \"slo.toml\"\n[server]\nargs = [\"--profile\", \"fast\", \"--first-token-ms\", \"100\", \"--token-interval-ms\", \"2\", \"--model-slots\", \"16\"]\n[load]\nmodel = \"open\"\nrate = 1.0\n[request]\naudio = false\n",
    )
    .unwrap();
    let out = dir.join("out");
    let (o, cap) = capacity(&[
        file.to_str().unwrap(),
        "--start-rps",
        "10",
        "--max-rps",
        "20",
        "--warm",
        "0s",
        "--step-duration",
        "4s",
        "--step-warmup",
        "1s",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{stderr}");
    assert_eq!(cap["status"], "undefined");
    let undefined = cap["undefined"].as_array().unwrap();
    assert_eq!(undefined.len(), 1, "{cap}");
    assert_eq!(undefined[0]["name"], "first token p95");
    assert_eq!(undefined[0]["role"], "fails_at_idle");
    assert!(
        stderr.contains("first token p95: fails at idle"),
        "{stderr}"
    );
    // The idle step measured the p95 at about 100 ms, with its interval,
    // from at least its minimum of requests.
    let idle = &cap["steps"][0];
    assert_eq!(idle["outcome"], "idle");
    assert!(idle["requests"].as_u64().unwrap() >= 100, "{idle}");
    // The capacity is the success rate's alone: the search went on to the
    // highest rate allowed, and no step failed on the idle failure.
    assert_eq!(
        cap["max_sustainable"]["value"].as_f64(),
        Some(20.0),
        "{cap}"
    );
    for s in cap["steps"].as_array().unwrap().iter().skip(1) {
        assert_eq!(s["outcome"], "held", "{s}");
    }
    assert!(cap["limiting_objective"].is_null(), "{cap}");
    let md = std::fs::read_to_string(out.join("capacity.md")).unwrap();
    assert!(md.contains("Set aside at idle"), "{md}");
}

/// The scenario of issue 32: an open model at 1 request/s judged by one
/// first-token objective; `extra` adds objectives.
fn failing_target_scenario(dir: &Path, target: &str, extra: &str) -> std::path::PathBuf {
    std::fs::write(
        dir.join("slo.toml"),
        format!(
            "name = \"t\"\n[[objective]]\nname = \"first token p95\"\nmetric = \"latency_ms.first_token.corrected.p95\"\ndirection = \"max\"\ntarget = 500\nwarning = 1000\ncritical = 2000\n{extra}"
        ),
    )
    .unwrap();
    let p = dir.join("s.toml");
    std::fs::write(
        &p,
        format!(
            "name = \"s\"\ntarget = \"{target}\"\nduration = \"4s\"\nwarmup = \"0s\"\nslo = \"slo.toml\"\n[load]\nmodel = \"open\"\nrate = 1.0\nmax_users = 50\n"
        ),
    )
    .unwrap();
    p
}

/// The command of issue 32, timed.
fn search_failing(file: &Path, out: &Path) -> (std::process::Output, Value, std::time::Duration) {
    let t0 = std::time::Instant::now();
    let (o, cap) = capacity(&[
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--step-duration",
        "3s",
        "--step-warmup",
        "1s",
        "--warm",
        "0s",
        "--start-rps",
        "1",
        "--max-rps",
        "8",
        "--min-rps",
        "0.5",
        "--expected-rps",
        "1",
        "--quiet",
    ]);
    (o, cap, t0.elapsed())
}

/// Issue 32: a target that answers only 503 is named within the first
/// step's minimum: no step repeated, no lower rate tried, exit 3.
#[test]
fn a_target_answering_only_errors_is_undefined_within_seconds() {
    let dir = temp_dir("capacity-503");
    let target = crate::misbehaving::misbehaving(crate::misbehaving::Misbehaves::Overloaded);
    let file = failing_target_scenario(&dir, &target, "");
    let (o, cap, took) = search_failing(&file, &dir.join("out"));
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(3), "{stderr}");
    assert!(
        took < std::time::Duration::from_secs(30),
        "{took:?}\n{stderr}"
    );
    assert_eq!(cap["status"], "undefined");
    assert!(cap["max_sustainable"].is_null());
    assert_eq!(cap["steps"].as_array().unwrap().len(), 1, "{cap}");
    let stopped = cap["stopped"].as_str().unwrap();
    assert!(
        stopped.contains("every request failed") && stopped.contains("HTTP 503 from the target"),
        "{stopped}"
    );
    assert!(stderr.contains("HTTP 503 from the target"), "{stderr}");
}

/// Issue 32: the same for a target that refuses every connection.
#[test]
fn a_target_refusing_connections_is_undefined_within_seconds() {
    let dir = temp_dir("capacity-refused");
    // A port just bound and let go: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let file = failing_target_scenario(&dir, &format!("http://127.0.0.1:{port}"), "");
    let (o, cap, took) = search_failing(&file, &dir.join("out"));
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(3), "{stderr}");
    assert!(
        took < std::time::Duration::from_secs(30),
        "{took:?}\n{stderr}"
    );
    assert_eq!(cap["steps"].as_array().unwrap().len(), 1, "{cap}");
    let stopped = cap["stopped"].as_str().unwrap();
    assert!(stopped.contains("connection refused"), "{stopped}");
}

/// Issue 32: a target that fails half its requests: the success-rate
/// objective, shown past its line by its interval, decides the first step.
#[test]
fn a_target_failing_half_its_requests_is_decided_by_the_success_rate() {
    let dir = temp_dir("capacity-half");
    let target = crate::misbehaving::misbehaving(crate::misbehaving::Misbehaves::Resets);
    let file = failing_target_scenario(
        &dir,
        &target,
        "[[objective]]\nname = \"success rate\"\nmetric = \"requests.success_rate\"\ndirection = \"min\"\ntarget = 99\nwarning = 98\ncritical = 95\n",
    );
    let (o, cap, took) = search_failing(&file, &dir.join("out"));
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(3), "{stderr}");
    assert!(
        took < std::time::Duration::from_secs(30),
        "{took:?}\n{stderr}"
    );
    let steps = cap["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 1, "{cap}");
    let rate = steps[0]["success_rate"].as_f64().unwrap();
    assert!((20.0..80.0).contains(&rate), "{rate}");
    let stopped = cap["stopped"].as_str().unwrap();
    assert!(
        stopped.contains("success rate") && stopped.contains("its upper bound is past"),
        "{stopped}"
    );
    assert_eq!(cap["limiting_objective"]["name"], "success rate", "{cap}");
}

/// Issue 32: `--dry-run` prints the worst case before anything runs, and
/// `--max-time` ends a search as interrupted with what it measured.
#[test]
fn a_search_has_a_worst_case_before_it_starts_and_a_max_time() {
    let dir = temp_dir("capacity-max-time");
    std::fs::write(
        dir.join("slo.toml"),
        "name = \"t\"\n[[objective]]\nname = \"first token p95\"\nmetric = \"latency_ms.first_token.p95\"\ndirection = \"max\"\ntarget = 5000\n",
    )
    .unwrap();
    let file = dir.join("s.toml");
    std::fs::write(
        &file,
        "name = \"s\"\nduration = \"4s\"\nslo = \"slo.toml\"\n[server]\nargs = [\"--profile\", \"fast\"]\n[load]\nmodel = \"open\"\nrate = 1.0\n",
    )
    .unwrap();
    let out = dir.join("out");
    let flags = [
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--step-duration",
        "2s",
        "--step-warmup",
        "0s",
        "--warm",
        "0s",
        "--start-rps",
        "20",
        "--max-rps",
        "80",
        "--step-max-duration",
        "30s",
        "--max-time",
        "5s",
        "--quiet",
    ];
    let dry = Command::new(BIN)
        .arg("capacity")
        .args(flags)
        .arg("--dry-run")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert_eq!(
        dry.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(!out.exists(), "a dry run writes nothing");
    // Rates 20 (idle), 10, 5, ... down to 0.1; 40, 80; bisections: the
    // line names the steps and their bound.
    let worst = text
        .lines()
        .find(|l| l.starts_with("worst case: "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(worst.contains("--max-time ends it after 5s"), "{worst}");
    let t0 = std::time::Instant::now();
    let (o, cap) = capacity(&flags);
    let took = t0.elapsed();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert_eq!(cap["status"], "incomplete", "{cap}");
    assert!(
        cap["stopped"]
            .as_str()
            .unwrap()
            .contains("--max-time (5s) ran out"),
        "{cap}"
    );
    // A step's requests drain for at most their timeout after the stop.
    assert!(took < std::time::Duration::from_secs(40), "{took:?}");
    assert!(out.join("capacity.md").is_file());
}
