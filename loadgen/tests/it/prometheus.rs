//! The reference server's Prometheus metrics for real: a Prometheus server
//! scrapes it while the load generator drives it, and PromQL agrees with
//! the harness; the alert rules pass promtool; every Grafana query names a
//! metric that exists.

use crate::support::{args, run, scenario, temp_dir};
use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use testkit::{free_port, root};

#[test]
fn alert_rules_pass_promtool() {
    let dir = root().join("ci/prometheus");
    for args in [
        vec!["check", "rules", "rules.yml"],
        vec!["test", "rules", "rules.test.yml"],
    ] {
        let out = Command::new("promtool")
            .args(&args)
            .current_dir(&dir)
            .output()
            .expect("promtool (Debian prometheus, installed by ci/install.sh) runs");
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Metric names a PromQL expression uses (identifiers that are not
/// functions, keywords or label names).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut in_braces = 0;
    let mut word = String::new();
    let flush = |w: &mut String, names: &mut BTreeSet<String>, next: char, depth: i32| {
        if !w.is_empty()
            && depth == 0
            && next != '('
            && (w.starts_with("chatbot") || w.starts_with("process_") || w.starts_with("loadgen_"))
        {
            names.insert(std::mem::take(w));
        }
        w.clear();
    };
    let chars: Vec<char> = expr.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
            continue;
        }
        let next = chars[i..]
            .iter()
            .find(|c| !c.is_whitespace())
            .copied()
            .unwrap_or(' ');
        flush(&mut word, &mut names, next, in_braces);
        match c {
            '{' => in_braces += 1,
            '}' => in_braces -= 1,
            _ => {}
        }
    }
    flush(&mut word, &mut names, ' ', in_braces);
    names
}

#[tokio::test]
async fn grafana_queries_name_exported_metrics() {
    let running = crate::support::reference_server(&[]).await;
    let text = crate::support::get(format!("{}/metrics", running.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    running.stop().await.unwrap();
    let mut exported = exported_names(&text);
    // The load generator's own (`--metrics-listen`), one request counted
    // so that every family has a series.
    let lg = loadgen::exporter::Exporter::new(
        "grafana",
        Some((0, 2)),
        std::sync::Arc::default(),
        std::sync::Arc::default(),
    );
    lg.observe(&slo::record::RequestRecord {
        first_token_us: Some(1000),
        first_audio_us: Some(2000),
        complete_us: Some(3000),
        ..Default::default()
    });
    let lg_names = exported_names(&lg.encode());
    assert!(lg_names.contains("loadgen_requests_total"), "{lg_names:?}");
    exported.extend(lg_names);
    let dashboard: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root().join("ci/grafana/chatbot-dashboard.json")).unwrap(),
    )
    .unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    let titles: Vec<&str> = panels
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    for t in [
        "Success Rate",
        "Latency",
        "Active Streams",
        "Cache Hit Rates",
        "Error Breakdown",
    ] {
        assert!(
            titles.iter().any(|x| x.contains(t)),
            "a {t} panel: {titles:?}"
        );
    }
    assert!(
        titles.iter().any(|t| t.starts_with("Load generator")),
        "a load-generator row: {titles:?}"
    );
    let mut checked = 0;
    for p in panels {
        // A row has no query.
        for target in p["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{expr}");
            for n in names {
                assert!(
                    exported.contains(&n),
                    "{:?} queries {n}, which /metrics does not export",
                    p["title"]
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 9);
    // The success-rate thresholds are the guide's: red < 95, yellow < 98, green >= 98.
    let steps = &panels[0]["fieldConfig"]["defaults"]["thresholds"]["steps"];
    assert_eq!(
        (steps[1]["value"].as_f64(), steps[2]["value"].as_f64()),
        (Some(95.0), Some(98.0))
    );
}

/// The metric names of an exposition: every sample's (a histogram's
/// `_bucket`, `_sum`, `_count`, a counter's `_total`) and every `# TYPE`d one.
fn exported_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (name, kind) = (parts.next().unwrap().to_owned(), parts.next().unwrap());
            if kind == "histogram" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            names.insert(name);
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_owned());
        }
    }
    names
}

async fn try_query(prom: &str, q: &str) -> Option<f64> {
    let encoded: String = q
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let r: serde_json::Value = crate::support::get(format!("{prom}/api/v1/query?query={encoded}"))
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    r["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

async fn query(prom: &str, q: &str) -> f64 {
    try_query(prom, q)
        .await
        .unwrap_or_else(|| panic!("no value for {q}"))
}

#[tokio::test]
async fn promql_agrees_with_the_harness() {
    let _turn = crate::support::turn();
    let dir = temp_dir("prometheus");
    // The server under test, outside the load generator.
    let running = crate::support::reference_server(&[
        "--first-token-ms",
        "300",
        "--token-interval-ms",
        "2",
        "--seed",
        "2",
    ])
    .await;
    // The load generator serves its own metrics there during the run.
    let lg_port = free_port();
    let yml = format!(
        "global:\n  scrape_interval: 500ms\n  evaluation_interval: 500ms\nscrape_configs:\n  - job_name: refserver\n    static_configs:\n      - targets: ['{}']\n  - job_name: loadgen\n    static_configs:\n      - targets: ['127.0.0.1:{lg_port}']\n",
        running.addr
    );
    let (_prometheus, prom) = crate::support::prometheus(&dir, &yml).await;
    // Load starts once Prometheus has scraped the idle server.
    let mut scraped = false;
    for _ in 0..150 {
        if try_query(&prom, "up{job=\"refserver\"}").await == Some(1.0) {
            scraped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(scraped, "prometheus never scraped the server");

    let text = "name = \"prom\"\nduration = \"6s\"\n[load]\nmodel = \"closed\"\nusers = 3\n[request]\naudio = true\nrepeat_ratio = 0.5\n";
    let mut a = args(&scenario(&dir, text), &dir.join("out"));
    a.target = Some(running.url());
    a.metrics_listen = Some(format!("127.0.0.1:{lg_port}").parse().unwrap());
    // Two scrapes of the final counts after the run.
    a.metrics_linger = Duration::from_millis(1250);
    let report = run(&a).await;
    // Two more scrapes after the last request.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let total = report.figures.requests.total as f64;
    assert!(total > 10.0);
    assert_eq!(
        query(&prom, "chatbot_requests_total").await,
        total,
        "requests: Prometheus and the harness"
    );
    assert_eq!(
        query(
            &prom,
            "chatbot_requests_success_total / chatbot_requests_total"
        )
        .await,
        report.figures.requests.ok as f64 / total
    );
    // The counter's increase over the run, as a rate, within 25 % of the
    // harness's requests per second (Prometheus extrapolates at the edges).
    let increase = query(&prom, "increase(chatbot_requests_total[1m])").await;
    assert!(
        (increase - total).abs() <= total * 0.25,
        "increase {increase} vs {total} requests"
    );
    // KB hit ratio from the labelled counters: exactly the done events' count.
    let kb = query(&prom, "sum(chatbot_cache_hits_total{cache=\"kb\"}) / (sum(chatbot_cache_hits_total{cache=\"kb\"}) + sum(chatbot_cache_misses_total{cache=\"kb\"}))").await;
    assert!(
        (kb * 100.0 - report.figures.cache.kb_hit_rate.unwrap()).abs() < 1e-6,
        "KB hit ratio {kb}"
    );
    // p95 first token from the histogram: within the bucket that holds the
    // harness's p95 (0.25 s to 0.5 s around the injected 0.3 s).
    let p95 = query(&prom, "histogram_quantile(0.95, sum by (le) (chatbot_latency_seconds_bucket{stage=\"first_token\"}))").await;
    let harness = report.figures.latency_ms.first_token.p95.expect("measured") / 1000.0;
    assert!((0.25..=0.5).contains(&harness), "harness p95 {harness}");
    assert!(
        (0.25..=0.5).contains(&p95),
        "PromQL p95 {p95} s, harness {harness} s: same bucket"
    );
    // The load generator's own metrics, scraped while it ran: the final
    // counts are report.json's (its target is gone now: the last samples).
    let last = |q: &str| format!("last_over_time({q}[2m])");
    assert_eq!(
        query(&prom, &format!("sum({})", last("loadgen_requests_total"))).await,
        total,
        "loadgen_requests_total and report.json's requests.total"
    );
    assert_eq!(
        query(&prom, &last("loadgen_requests_total{outcome=\"ok\"}")).await,
        report.figures.requests.ok as f64
    );
    assert_eq!(
        query(
            &prom,
            &last("loadgen_latency_seconds_count{latency=\"first_token\"}")
        )
        .await,
        report.figures.latency_ms.first_token.count as f64
    );
    assert_eq!(
        query(&prom, &last("loadgen_warmup_requests_total")).await,
        report.figures.requests.warmup_excluded as f64
    );
    assert_eq!(
        query(&prom, &last("loadgen_run_info{scenario=\"prom\"}")).await,
        1.0
    );
    // Open streams were sampled while it ran: some were open.
    assert!(query(&prom, "max_over_time(loadgen_active_streams[2m])").await >= 1.0);
    running.stop().await.unwrap();
}
