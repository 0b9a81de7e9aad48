//! Stamps the commit the binary is built from into `loadgen --version`:
//! `LOADGEN_COMMIT` from the environment when set (a build without the
//! repository's history, e.g. a container image), else `git rev-parse`,
//! else "unknown". Reruns when the checkout moves to another commit.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn main() {
    println!("cargo:rerun-if-env-changed=LOADGEN_COMMIT");
    let commit = match std::env::var("LOADGEN_COMMIT") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_owned(),
        _ => {
            // A path that does not exist is stale to cargo on every build
            // (a missing packed-refs rebuilt loadgen each time): only what
            // is there is watched. A folder is scanned whole, so a branch
            // moving (a loose ref written, or refs packed away) is seen.
            let watch = |path: String| {
                if std::path::Path::new(&path).exists() {
                    println!("cargo:rerun-if-changed={path}");
                }
            };
            if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
                watch(format!("{dir}/HEAD"));
            }
            if let Some(common) = git(&["rev-parse", "--path-format=absolute", "--git-common-dir"])
            {
                watch(format!("{common}/packed-refs"));
                watch(format!("{common}/refs/heads"));
            }
            let hash = git(&["rev-parse", "--short=12", "HEAD"]);
            let date = git(&["show", "-s", "--format=%cs", "HEAD"]);
            match (hash, date) {
                (Some(h), Some(d)) => format!("{h} {d}"),
                (Some(h), None) => h,
                _ => "unknown".to_owned(),
            }
        }
    };
    println!("cargo:rustc-env=LOADGEN_COMMIT={commit}");
}
