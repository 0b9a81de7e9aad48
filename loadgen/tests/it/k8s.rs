//! The Kubernetes manifests of `ci/k8s/`: valid against the Kubernetes
//! schemas (offline, `kubernetes-validate` from PyPI), and their command
//! lines accepted by this build's binary, the shipped scenario included.

use crate::support::BIN;
use std::path::PathBuf;
use std::process::Command;

fn k8s_dir() -> PathBuf {
    testkit::root().join("ci/k8s")
}

fn manifests() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(k8s_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v
}

/// Every document of a YAML file, as JSON (PyYAML, which
/// kubernetes-validate brings).
fn kind<'a>(
    docs: &'a [(PathBuf, serde_json::Value)],
    kind: &str,
    name: &str,
) -> &'a serde_json::Value {
    docs.iter()
        .map(|(_, d)| d)
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in ci/k8s"))
}

#[test]
fn the_manifests_validate_against_the_kubernetes_schemas() {
    let files = manifests();
    assert!(files.len() >= 5, "{files:?}");
    let o = Command::new("kubernetes-validate")
        .args(["--strict", "--kubernetes-version", "1.34.0"])
        .args(&files)
        .output()
        .expect("kubernetes-validate runs (ci/install.sh installs it from PyPI)");
    let said =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{said}");
    assert_eq!(said.matches(" passed ").count(), files.len(), "{said}");
    // A manifest the schemas refuse is refused: the check can fail.
    let dir = crate::support::temp_dir("k8s-invalid");
    let bad = dir.join("bad.yaml");
    let job = std::fs::read_to_string(k8s_dir().join("shards-job.yaml"))
        .unwrap()
        .replace(
            "completionMode: Indexed",
            "completionMode: Indexed\n  completionz: 4",
        );
    std::fs::write(&bad, job).unwrap();
    let o = Command::new("kubernetes-validate")
        .args(["--strict", "--kubernetes-version", "1.34.0"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!o.status.success(), "an unknown field passed");
}

#[test]
fn the_jobs_command_lines_are_accepted_by_the_binary() {
    let docs: Vec<(PathBuf, serde_json::Value)> = manifests()
        .into_iter()
        .flat_map(|p| {
            crate::support::yaml_documents(&p)
                .into_iter()
                .map(move |d| (p.clone(), d))
        })
        .collect();
    let dir = crate::support::temp_dir("k8s-commands");
    // The ConfigMap's files where the pods mount them (/config).
    let config = dir.join("config");
    std::fs::create_dir_all(&config).unwrap();
    for (name, text) in kind(&docs, "ConfigMap", "loadgen-scenario")["data"]
        .as_object()
        .unwrap()
    {
        std::fs::write(config.join(name), text.as_str().unwrap()).unwrap();
    }
    let secret = kind(&docs, "Secret", "loadgen-headers");
    let start_at = humantime::format_rfc3339_seconds(
        std::time::SystemTime::now() + std::time::Duration::from_secs(600),
    )
    .to_string();
    let env = [
        ("RUN_ID", "run-1"),
        ("TARGET_URL", "https://staging.example.com"),
        ("START_AT", start_at.as_str()),
    ];
    let expand = |arg: &str| {
        let mut a = arg.replace("/config/", &format!("{}/", config.display()));
        a = a.replace("/results/", &format!("{}/results/", dir.display()));
        for (k, v) in env {
            a = a.replace(&format!("$({k})"), v);
        }
        a
    };
    let args_of = |job: &serde_json::Value| -> Vec<String> {
        job["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| expand(a.as_str().unwrap()))
            .collect()
    };

    let shards = kind(&docs, "Job", "loadgen-shards");
    assert_eq!(shards["spec"]["completionMode"], "Indexed");
    let n = shards["spec"]["completions"].as_u64().unwrap();
    assert_eq!(shards["spec"]["parallelism"].as_u64(), Some(n));
    let args = args_of(shards);
    assert_eq!(args[0], "run");
    for i in 0..n {
        // Each pod as the Indexed Job starts it: its index in the
        // environment, the secret's keys too.
        let mut c = Command::new(BIN);
        c.args(&args)
            .arg("--dry-run")
            .env("JOB_COMPLETION_INDEX", i.to_string());
        for (k, v) in secret["stringData"].as_object().unwrap() {
            c.env(k, v.as_str().unwrap());
        }
        let o = c.output().unwrap();
        let said = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "shard {i}: {}{said}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            said.contains(&format!("shard: {i} of {n} (from 0)")),
            "{said}"
        );
        assert!(
            said.contains("target: https://staging.example.com"),
            "{said}"
        );
        assert!(said.contains("headers: Authorization"), "{said}");
        assert!(said.contains(&format!("results/run-1/shard-{i}")), "{said}");
        assert!(said.contains("judged: no"), "{said}");
    }
    // The scenario's own shard count is the Job's.
    let scenario = std::fs::read_to_string(config.join("scenario.toml")).unwrap();
    assert!(scenario.contains(&format!("shards = {n}")), "{scenario}");
    // Without the Indexed Job's variable, the same command line is refused.
    let o = Command::new(BIN)
        .args(&args)
        .arg("--dry-run")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("needs the shard's index"));

    let merge = kind(&docs, "Job", "loadgen-merge");
    let args = args_of(merge);
    assert_eq!(args[0], "merge");
    let shards_flag = args.iter().position(|a| a == "--shards").unwrap();
    assert_eq!(args[shards_flag + 1], n.to_string());
    let o = Command::new(BIN)
        .args(&args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // --help does check the flags before it: a wrong one is refused.
    let o = Command::new(BIN)
        .args(&args)
        .args(["--shard", "4", "--help"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}
