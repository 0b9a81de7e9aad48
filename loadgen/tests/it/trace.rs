//! Traces replayed (`model = "trace"`) through the binary against the
//! embedded reference server: each request at its row's time with its
//! row's lengths, at 1x and 4x; a trace the target cannot keep fails.

use crate::support::{checked_report, loadgen, records, run_bin, temp_dir};
use serde_json::Value;
use std::path::Path;

/// The shipped scenario's trace, its first `seconds` of run at `speedup`,
/// with a lateness the machine's other tests cannot reach (this test is
/// about the schedule and the lengths, not about the send-time error).
fn replay(dir: &Path, speedup: f64, seconds: u32) -> (Vec<Value>, std::path::PathBuf) {
    let shipped = testkit::root().join("scenarios/trace.toml");
    let trace = testkit::root().join("scenarios/traces/chat-60s.jsonl");
    let text = std::fs::read_to_string(&shipped)
        .unwrap()
        .replace("traces/chat-60s.jsonl", trace.to_str().unwrap())
        .replace(
            "speedup = 1.0",
            &format!("speedup = {speedup}\nmax_lateness = \"30s\""),
        )
        .replace("duration = \"20s\"", &format!("duration = \"{seconds}s\""));
    let file = dir.join(format!("trace-{speedup}.toml"));
    std::fs::write(&file, text).unwrap();
    let rows: Vec<Value> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &Value| {
            r["timestamp"].as_f64().unwrap() < f64::from(seconds) * speedup * 1000.0
        })
        .collect();
    (rows, file)
}

#[test]
fn the_shipped_trace_is_replayed_at_its_times_with_its_lengths_at_1x_and_4x() {
    let dir = temp_dir("trace-replay");
    for speedup in [1.0, 4.0] {
        let (rows, file) = replay(&dir, speedup, 3);
        let out = dir.join(format!("out-{speedup}"));
        // The verdict is the machine's (this test runs beside others, and
        // a debug build cuts and streams the tokens): what is asserted is
        // the replay itself.
        run_bin(&file, &out, &[]);
        let report = checked_report(&out);
        let mut sent = records(&out);
        sent.sort_by_key(|r| r.scheduled_us);
        assert_eq!(
            sent.len(),
            rows.len(),
            "{speedup}x: every row of the window, once"
        );
        let first = rows[0]["timestamp"].as_f64().unwrap();
        for (r, row) in sent.iter().zip(&rows) {
            // Each at its row's time on the run's clock (µs, rounded).
            let due = (row["timestamp"].as_f64().unwrap() - first) * 1000.0 / speedup;
            let at = r.scheduled_us.unwrap() as f64;
            assert!((at - due).abs() <= 1.0, "{speedup}x: {at} µs, due {due}");
            // A row the machine could not send in time (beside the suite's
            // other tests) is recorded as dropped, not left out.
            if r.outcome == slo::record::Outcome::Dropped {
                continue;
            }
            // Its prompt's and answer's lengths, by both counts.
            assert_eq!(
                u64::from(r.client_input_tokens.unwrap()),
                row["input_length"]
            );
            assert_eq!(
                r.input_tokens.map(Value::from),
                Some(row["input_length"].clone())
            );
            assert_eq!(
                u64::from(r.asked_output_tokens.unwrap()),
                row["output_length"]
            );
            assert_eq!(
                r.word_count.map(Value::from),
                Some(row["output_length"].clone())
            );
        }
        // The send-time error against the trace, over every request sent.
        let dropped = report["requests"]["dropped"].as_u64().unwrap() as usize;
        assert!(
            dropped * 4 < rows.len(),
            "{speedup}x: {dropped} of {} dropped",
            rows.len()
        );
        let e = &report["requests"]["send_error_ms"];
        assert_eq!(e["count"], rows.len() - dropped, "{e}");
        assert!(
            e["p50"].as_f64().unwrap() <= e["p99"].as_f64().unwrap(),
            "{e}"
        );
        assert!(
            e["max"].as_f64().unwrap() >= e["p99"].as_f64().unwrap(),
            "{e}"
        );
    }
}

/// Thirty requests in a second (our CSV format) at a target that takes
/// 1.5 s a first token and two users to carry them: most cannot start
/// within the second of lateness allowed, and the rows no user took
/// before the run ended are dropped too; dropped, they fail the run.
/// A bad row is a usage error naming the file and the line.
#[test]
fn a_trace_the_target_cannot_keep_fails_and_a_bad_row_is_named() {
    let dir = temp_dir("trace-late");
    let trace = dir.join("burst.csv");
    let mut text = String::from("time_s,input_tokens,output_tokens\n");
    for i in 0..30 {
        text += &format!("{:.3},50,5\n", f64::from(i) / 30.0);
    }
    std::fs::write(&trace, &text).unwrap();
    let file = dir.join("late.toml");
    std::fs::write(
        &file,
        "name = \"late\"\nduration = \"2s\"\nwarmup = \"0s\"\nprotocol = \"openai-chat\"\n\
         [server]\nargs = [\"--profile\", \"fast\", \"--first-token-ms\", \"1500\", \"--tokenizer\", \"cl100k_base\"]\n\
         [load]\nmodel = \"trace\"\ntrace = \"burst.csv\"\nmax_users = 2\n[openai]\nmodel = \"m\"\n\
         [tokens]\ntokenizer = \"cl100k_base\"\n",
    )
    .unwrap();
    let out = dir.join("out");
    let o = run_bin(&file, &out, &[]);
    let report = checked_report(&out);
    assert_eq!(o.status.code(), Some(1), "{}", report["verdict_reasons"]);
    assert_eq!(report["verdict"], "fail");
    let dropped = report["requests"]["dropped"].as_u64().unwrap();
    assert!(dropped >= 20, "{dropped} of 30 dropped");
    // Dropped arrivals are failed requests (README, "Load models"): the
    // success rate says so. Every row due is accounted for, taken or not.
    assert!(
        report["verdict_reasons"]
            .to_string()
            .contains("success rate"),
        "{}",
        report["verdict_reasons"]
    );
    assert_eq!(report["requests"]["total"], 30);

    std::fs::write(&trace, text.replace("0.100,50,5", "0.100,fifty,5")).unwrap();
    let o = loadgen(&["run", file.to_str().unwrap(), "--dry-run"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("burst.csv:5: input_tokens: a whole number of tokens"),
        "{err}"
    );
}

/// The value of a counter in a Prometheus text page.
fn counter(page: &str, name: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{page}"))
}

/// The shipped trace's `hash_ids` make prompts that share their leading
/// 512-token blocks: the reference server's prefix cache finds, in
/// tokens, what the trace says is shared (each row's leading blocks that
/// an earlier row began with), give or take a block of 16 at each join.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_prefixes_raise_the_prefix_cache_hit_rate_the_trace_implies() {
    let dir = temp_dir("trace-prefix");
    let server = crate::support::reference_server(&[
        "--tokenizer",
        "cl100k_base",
        "--prefix-cache-blocks",
        "1000000",
        "--first-token-ms",
        "5",
        "--token-interval-ms",
        "0",
    ])
    .await;
    let (rows, file) = replay(&dir, 1.0, 3);
    let text = std::fs::read_to_string(&file).unwrap().replace(
        "[server]",
        &format!("target = \"{}\"\n[server]", server.url()),
    );
    std::fs::write(&file, text).unwrap();
    let out = dir.join("out");
    tokio::task::block_in_place(|| run_bin(&file, &out, &[]));
    let report = checked_report(&out);
    assert_eq!(report["requests"]["total"], rows.len());
    // What the trace says: each row's leading whole blocks (not its last,
    // which the replay cuts on its own) that an earlier row began with.
    let mut seen = std::collections::HashSet::new();
    let (mut shared, mut total) = (0.0, 0.0);
    for row in &rows {
        let ids: Vec<u64> = row["hash_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        let input = row["input_length"].as_f64().unwrap();
        let whole = ids.len().saturating_sub(1).min((input as usize - 1) / 512);
        let mut k = 0;
        while k < whole && seen.contains(&ids[..=k]) {
            k += 1;
        }
        for j in 0..whole {
            seen.insert(ids[..=j].to_vec());
        }
        shared += k as f64 * 512.0;
        total += input;
    }
    let page = crate::support::get(format!("{}/metrics", server.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let queries = counter(&page, "chatbot_prefix_cache_queries_total");
    let hits = counter(&page, "chatbot_prefix_cache_hits_total");
    assert_eq!(queries, total, "every prompt token looked up once");
    let expected = shared / total;
    let got = hits / queries;
    eprintln!(
        "prefix cache: {hits} of {queries} tokens hit ({:.1} %), the trace implies {:.1} %",
        got * 100.0,
        expected * 100.0
    );
    assert!(expected > 0.2, "the window shares prefixes: {expected}");
    // At most a 16-token block lost at each shared prefix's join.
    assert!(
        got <= expected && got >= expected - 16.0 * rows.len() as f64 / total,
        "{got} vs {expected}"
    );
    // The run's server view holds the same change over the run (the
    // server was fresh: its counters are the run's).
    let view = &report["server"]["prefix_cache"];
    assert_eq!(
        view["metric"], "chatbot_prefix_cache_queries_total",
        "{view}"
    );
    assert_eq!(
        (view["queries"].as_f64(), view["hits"].as_f64()),
        (Some(queries), Some(hits)),
        "{view}"
    );
    let rate = view["hit_rate"].as_f64().unwrap();
    assert!((rate - got * 100.0).abs() < 1e-9, "{rate} vs {got}");
    server.stop().await.unwrap();
}
