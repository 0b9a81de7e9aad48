//! Helpers: scenario files in a temp folder, runs, the CSV read back.

use loadgen::RunArgs;
use loadgen::plan::Plan;
use slo::record::RequestRecord;
use slo::report::Report;
use std::path::{Path, PathBuf};

/// A fresh folder under the system temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("loadgen-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `scenario.toml` into `dir`.
pub fn scenario(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("scenario.toml");
    std::fs::write(&p, text).unwrap();
    p
}

pub fn args(scenario: &Path, out: &Path) -> RunArgs {
    RunArgs {
        scenario: scenario.to_owned(),
        target: None,
        out: Some(out.to_owned()),
        duration: None,
        users: None,
        rate: None,
        slo: None,
        fail_on: loadgen::FailOnArg::Warning,
        quiet: true,
    }
}

pub async fn run(args: &RunArgs) -> Report {
    let plan = Plan::from_args(args).expect("a valid plan");
    loadgen::run::run(&plan).await.expect("the run completes")
}

pub fn records(out: &Path) -> Vec<RequestRecord> {
    let mut r = csv::Reader::from_path(out.join("requests.csv")).unwrap();
    r.deserialize().map(|row| row.expect("a CSV row")).collect()
}

/// A server that answers every connection with `response` and closes.
pub async fn canned(response: &'static [u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(response).await;
                let _ = s.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}
