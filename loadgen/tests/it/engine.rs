//! `[[scrape]]` through the binary: the reference server read with the
//! vLLM preset (its engine figures under vLLM's names), judged, failing
//! closed on a series it does not have, and rebuilt by `loadgen report`;
//! and exporters none of our code wrote (a real Prometheus's own
//! `/metrics`, Debian's node exporter) read as counters, gauges and a
//! histogram by their `# TYPE`.

use crate::support::{checked_report, loadgen, run_bin, scenario, temp_dir};
use serde_json::Value;

fn level<'a>(report: &'a Value, name: &str) -> &'a Value {
    &crate::support::judged(report, name)["level"]
}

#[test]
fn the_vllm_preset_reads_the_reference_server_and_its_objectives_are_judged() {
    let dir = temp_dir("engine-vllm");
    // One model slot: at 20 arrivals a second of 90 ms answers, requests
    // queue for it.
    let (_s, port) = crate::support::refserver(&[
        "--profile",
        "fast",
        "--first-token-ms",
        "30",
        "--token-interval-ms",
        "3",
        "--model-slots",
        "1",
    ]);
    std::fs::write(
        dir.join("slo.toml"),
        "name = \"engine\"\n\
         [[objective]]\nname = \"engine first token p95\"\nmetric = \"vllm.first_token.p95\"\nsource = \"engine\"\ndirection = \"max\"\ntarget = 10.0\n\
         [[objective]]\nname = \"nothing queued\"\nmetric = \"vllm.queue.max\"\nsource = \"engine\"\ndirection = \"max\"\ntarget = 0\n\
         [[objective]]\nname = \"engine inter-token p95\"\nmetric = \"vllm.inter_token.p95\"\nsource = \"engine\"\ndirection = \"max\"\ntarget = 1.0\nrequired = false\n\
         [[objective]]\nname = \"engine e2e p95\"\nmetric = \"vllm.e2e.p95\"\nsource = \"engine\"\ndirection = \"max\"\ntarget = 10.0\n\
         [[objective]]\nname = \"engine first token p95, any 1 s\"\nmetric = \"vllm.first_token.p95\"\nsource = \"engine\"\ndirection = \"max\"\ntarget = 10.0\nwindow = \"1s\"\n",
    )
    .unwrap();
    let file = scenario(
        &dir,
        &format!(
            "name = \"engine\"\ntarget = \"http://127.0.0.1:{port}\"\nduration = \"3s\"\nwarmup = \"1s\"\nslo = \"slo.toml\"\nprotocol = \"openai-chat\"\n\
             [openai]\nmodel = \"m\"\nmax_tokens = 20\n\
             [load]\nmodel = \"open\"\nrate = 20.0\narrival = \"constant\"\nmax_users = 100\n\
             [request]\naudio = false\nrepeat_ratio = 0.0\n\
             [[scrape]]\nname = \"vllm\"\npreset = \"vllm\"\ninterval = \"250ms\"\n"
        ),
    );
    let out = dir.join("out");
    let o = run_bin(&file, &out, &[]);
    let report = checked_report(&out);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    let vllm = &report["engine"]["vllm"];
    let series = &vllm["series"];
    // Read every 250 ms over the 3 s measured: a dozen readings.
    assert!(
        (10..=16).contains(&vllm["readings"].as_u64().unwrap()),
        "{vllm}"
    );
    assert_eq!(vllm["failed"], 0, "{vllm}");
    // The server's first token is 30 ms after the request has its slot,
    // later as the queue grows; the client's is later by the wire.
    let ft = &series["first_token"]["figures"];
    let client_p95 = report["latency_ms"]["first_token"]["p95"].as_f64().unwrap();
    assert!(
        ft["p50"].as_f64().unwrap() >= 0.02
            && ft["p95"].as_f64().unwrap() * 1000.0 <= client_p95 + 20.0,
        "{ft} vs the client's p95 {client_p95} ms"
    );
    // The slot answers about 11 requests a second (30 ms, then 20 tokens
    // 3 ms apart): about 33 first tokens in the measured 3 s (bounded by
    // the readings at either end), not the 60 that arrived.
    let count = ft["count"].as_f64().unwrap();
    assert!((20.0..=50.0).contains(&count), "{ft}");
    // One slot: never more than one generating, and some waiting.
    assert_eq!(series["running"]["figures"]["max"], 1.0, "{series}");
    assert!(
        series["queue"]["figures"]["max"].as_f64().unwrap() >= 1.0,
        "{series}"
    );
    assert_eq!(series["kv_cache_usage"]["figures"]["max"], 1.0, "{series}");
    assert!(
        series["generation_tokens"]["figures"]["rate"]
            .as_f64()
            .unwrap()
            > 100.0,
        "{series}"
    );
    // Judged: the queue breaks its objective; a series the server does
    // not have is no data, which fails only where it is required.
    assert_eq!(*level(&report, "nothing queued"), "warning");
    assert_eq!(*level(&report, "engine first token p95"), "ok");
    assert_eq!(*level(&report, "engine e2e p95"), "ok");
    assert_eq!(*level(&report, "engine inter-token p95"), "no_data");
    assert!(
        series["inter_token"]["missing"].as_str().is_some(),
        "{series}"
    );
    // Judged per whole second of the measured part (about 1-4 s): a
    // window each, summed up from its own readings, the worst at least
    // the median of the whole run's.
    let windowed = crate::support::judged(&report, "engine first token p95, any 1 s");
    assert_eq!(windowed["level"], "ok", "{windowed}");
    let w = &windowed["window"];
    let (warmup, measured) = (
        report["warmup_s"].as_f64().unwrap(),
        report["measured_s"].as_f64().unwrap(),
    );
    let seconds = ((warmup + measured).floor() - warmup.ceil()) as u64;
    assert!(seconds >= 2, "measured {measured} s");
    assert_eq!(
        (&w["width_s"], &w["windows"]),
        (&1.into(), &seconds.into()),
        "{w}"
    );
    assert_eq!(
        (&w["breached"], &w["inconclusive"]),
        (&0.into(), &0.into()),
        "{w}"
    );
    let worst = windowed["value"].as_f64().unwrap();
    assert!(worst >= ft["p50"].as_f64().unwrap(), "{windowed} vs {ft}");
    // The histogram is drawn as the p95 of each 250 ms between readings.
    assert!(
        series["first_token"]["points"].as_array().unwrap().len() >= 8,
        "{series}"
    );
    let reasons = report["verdict_reasons"].to_string();
    assert!(reasons.contains("nothing queued"), "{reasons}");
    assert!(!reasons.contains("engine inter-token"), "{reasons}");
    // The failing run's report names what moved in the engine: the queue
    // grew all along (one slot, more arrivals than it serves), and with
    // it the engine's first token (its p95 between readings); which of
    // the two grew more, relative to itself, is the run's.
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("Meanwhile in the engine: vllm.queue moved most")
            || md.contains("Meanwhile in the engine: vllm.first_token moved most"),
        "{md}"
    );
    // Drawn beside the client's figures: a chart per series with points,
    // the queue's with its objective's band.
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("Engine: vllm"), "no engine section");
    for chart in ["vllm.queue (", "vllm.running (", "vllm.generation_tokens ("] {
        assert!(html.contains(chart), "no chart {chart}");
    }
    assert!(html.contains("target 0"), "the queue objective's band");
    crate::support::assert_html_renders(&out.join("report.html"), &out, "fail", &[]);
    // The readings are kept, and `loadgen report` sums them up again.
    let lines = std::fs::read_to_string(out.join("engine.jsonl")).unwrap();
    assert!(lines.lines().count() >= 12, "{lines}");
    let before = report["engine"].clone();
    let o = loadgen(&["report", out.to_str().unwrap()]);
    assert!(o.status.code().is_some(), "{o:?}");
    let rebuilt = checked_report(&out);
    assert!(
        same(&rebuilt["engine"], &before),
        "{}\n{before}",
        rebuilt["engine"]
    );
    let again = crate::support::judged(&rebuilt, "engine first token p95, any 1 s");
    assert!(same(again, windowed), "{again}\n{windowed}");
}

/// Equal documents, numbers to 1e-9 of each other (a figure summed up
/// again from the readings as written may differ in its last digit).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn an_engine_path_the_scenario_cannot_have_is_named_before_the_run() {
    let dir = temp_dir("engine-bad");
    std::fs::write(
        dir.join("slo.toml"),
        "name = \"bad\"\n[[objective]]\nname = \"q\"\nmetric = \"vllm.queues.max\"\nsource = \"engine\"\ndirection = \"max\"\ntarget = 0\n",
    )
    .unwrap();
    let file = scenario(
        &dir,
        "name = \"bad\"\nduration = \"1s\"\nslo = \"slo.toml\"\n[load]\nmodel = \"closed\"\nusers = 1\n\
         [[scrape]]\nname = \"vllm\"\npreset = \"vllm\"\n",
    );
    let o = run_bin(&file, &dir.join("out"), &["--dry-run"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("scrape \"vllm\" has no series \"queues\"") && err.contains("slo.toml"),
        "{err}"
    );
    // A figure no series has is caught by the SLO file alone.
    std::fs::write(
        dir.join("slo.toml"),
        "name = \"bad\"\n[[objective]]\nname = \"q\"\nmetric = \"vllm.queue.p42\"\nsource = \"engine\"\ndirection = \"max\"\ntarget = 0\n",
    )
    .unwrap();
    let o = run_bin(&file, &dir.join("out"), &["--dry-run"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("\"p42\" is not a figure"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_prometheus_own_metrics_are_read_by_their_types() {
    let dir = temp_dir("engine-prometheus");
    // Prometheus scraping itself, so its own counters move.
    let (_p, prom) = crate::support::prometheus(
        &dir,
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: []\n",
    )
    .await;
    let dir2 = dir.to_path_buf();
    let (o, report) = tokio::task::spawn_blocking(move || {
        scrape_run(
            &dir2,
            ("prom", &format!("{prom}/metrics"), "200ms"),
            "\"go_goroutines\", \"prometheus_http_requests\", \"prometheus_http_request_duration_seconds\"",
            "[[objective]]\nname = \"goroutines\"\nmetric = \"prom.go_goroutines.max\"\nsource = \"engine\"\ndirection = \"min\"\ntarget = 1\n\
             [[objective]]\nname = \"scrape latency\"\nmetric = \"prom.prometheus_http_request_duration_seconds.p99\"\nsource = \"engine\"\ndirection = \"max\"\ntarget = 10\n",
        )
    })
    .await
    .unwrap();
    let series = &report["engine"]["prom"]["series"];
    assert_eq!(series["go_goroutines"]["kind"], "gauge", "{series}");
    assert_eq!(
        series["prometheus_http_requests"]["kind"], "counter",
        "{series}"
    );
    assert_eq!(
        series["prometheus_http_request_duration_seconds"]["kind"], "histogram",
        "{series}"
    );
    // Each reading is a request to /metrics: Prometheus counts each one
    // between the first reading and the last. (How many readings there
    // are is the machine's: the scrapes run at the least CPU priority,
    // and a suite's busy machine delays them.)
    let readings = report["engine"]["prom"]["readings"].as_f64().unwrap();
    assert!(readings >= 3.0, "{}", report["engine"]["prom"]);
    let requests = series["prometheus_http_requests"]["figures"]["increase"]
        .as_f64()
        .unwrap();
    assert!(requests >= readings - 1.0, "{readings} readings: {series}");
    let h = &series["prometheus_http_request_duration_seconds"]["figures"];
    assert!(h["count"].as_f64().unwrap() >= readings - 1.0, "{h}");
    assert_eq!(*level(&report, "goroutines"), "ok");
    assert_eq!(*level(&report, "scrape latency"), "ok");
    crate::support::passed_unless_distrusted(o.status.code(), &report);
}

#[test]
fn the_node_exporter_counts_every_cpu_second() {
    let dir = temp_dir("engine-node");
    let port = testkit::free_port();
    let _exporter = testkit::Daemon(
        std::process::Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args([
                "--collector.disable-defaults",
                "--collector.cpu",
                "--collector.loadavg",
                "--collector.meminfo",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("prometheus-node-exporter (Debian package, installed by ci/install.sh) starts"),
    );
    testkit::wait_for_port(port, "prometheus-node-exporter");
    let (o, report) = scrape_run(
        &dir,
        ("node", &format!("http://127.0.0.1:{port}/metrics"), "250ms"),
        "\"node_cpu_seconds\", \"node_load1\", \"node_memory_MemAvailable_bytes\"",
        "[[objective]]\nname = \"memory available\"\nmetric = \"node.node_memory_MemAvailable_bytes.min\"\nsource = \"engine\"\ndirection = \"min\"\ntarget = 1\n",
    );
    let series = &report["engine"]["node"]["series"];
    assert_eq!(series["node_load1"]["kind"], "gauge", "{series}");
    assert_eq!(series["node_cpu_seconds"]["kind"], "counter", "{series}");
    // Every CPU's seconds in every mode, summed: the machine's CPUs, each
    // second (the kernel's ticks: within a quarter of one).
    let cpus = std::thread::available_parallelism().unwrap().get() as f64;
    let rate = series["node_cpu_seconds"]["figures"]["rate"]
        .as_f64()
        .unwrap();
    assert!(
        (rate - cpus).abs() <= 0.25 * cpus,
        "{rate} CPU-s/s on {cpus} CPUs"
    );
    assert_eq!(*level(&report, "memory available"), "ok");
    crate::support::passed_unless_distrusted(o.status.code(), &report);
}

/// A 2 s closed run of one user that reads `(name, url, interval)` for
/// `metrics` and is judged by `objectives`: its exit and report.
fn scrape_run(
    dir: &std::path::Path,
    (name, url, interval): (&str, &str, &str),
    metrics: &str,
    objectives: &str,
) -> (std::process::Output, Value) {
    std::fs::write(
        dir.join("slo.toml"),
        format!("name = \"{name}\"\n{objectives}"),
    )
    .unwrap();
    let file = scenario(
        dir,
        &format!(
            "name = \"{name}\"\nduration = \"2s\"\nslo = \"slo.toml\"\n[load]\nmodel = \"closed\"\nusers = 1\n[request]\naudio = false\n\
             [[scrape]]\nname = \"{name}\"\nurl = \"{url}\"\ninterval = \"{interval}\"\nmetrics = [{metrics}]\n"
        ),
    );
    let out = dir.join("out");
    let o = run_bin(&file, &out, &[]);
    let report = checked_report(&out);
    (o, report)
}
