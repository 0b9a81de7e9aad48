//! The CI integrations as a runner would run them: `action.yml` and the
//! GitLab template validated against their published schemas (the
//! schemas `check-jsonschema` from PyPI carries), then their steps'
//! scripts, read out of the YAML, run here with the CI system's variables
//! set: the job summary, the step outputs, the pull-request comment (to a
//! stand-in for GitHub's API on loopback) and the exit codes, for a
//! passing run, a failing run and a gate that could not run.

use crate::support::{BIN, temp_dir};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A YAML file (of one document) as JSON.
fn yaml(path: &Path) -> Value {
    crate::support::yaml_documents(path).remove(0)
}

fn check_jsonschema(schema: &str, file: &Path) -> Output {
    Command::new("check-jsonschema")
        .args(["--builtin-schema", schema])
        .arg(file)
        .output()
        .expect("check-jsonschema runs (ci/install.sh installs it from PyPI)")
}

#[test]
fn the_action_and_the_gitlab_template_validate_against_their_schemas() {
    let root = testkit::root();
    for (schema, file) in [
        ("vendor.github-actions", root.join("action.yml")),
        (
            "vendor.gitlab-ci",
            root.join("ci/gitlab/chatload.gitlab-ci.yml"),
        ),
    ] {
        let o = check_jsonschema(schema, &file);
        assert!(
            o.status.success(),
            "{}: {}{}",
            file.display(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // The validator does judge: an action that is not composite fails it.
    let dir = temp_dir("ci-schema-bad");
    let text = std::fs::read_to_string(root.join("action.yml")).unwrap();
    let bad = dir.join("action.yml");
    std::fs::write(&bad, text.replace("using: composite", "using: compost")).unwrap();
    assert!(
        !check_jsonschema("vendor.github-actions", &bad)
            .status
            .success()
    );
}

/// `${{ expr }}` replaced by `values[expr]`; an expression the test does
/// not know fails it (so a new one in action.yml is a test to extend).
fn substitute(text: &str, values: &BTreeMap<&str, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("${{") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find("}}").expect("a closed expression") + i;
        let expr = rest[i + 3..end].trim();
        let v = values.get(expr).unwrap_or_else(|| {
            panic!("action.yml uses ${{{{ {expr} }}}}: give the test its value")
        });
        out.push_str(v);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// A runner's files for one job: the summary, the outputs, the path.
struct Job {
    dir: PathBuf,
    summary: PathBuf,
    output: PathBuf,
    path: PathBuf,
    bin: PathBuf,
}

impl Job {
    fn new(dir: &Path, name: &str) -> Job {
        let job = dir.join(name);
        std::fs::create_dir_all(&job).unwrap();
        // The cache restored: the binary of this build, as `cargo
        // install` would have put it.
        let bin = job.join("cache");
        std::fs::create_dir_all(bin.join("bin")).unwrap();
        std::fs::copy(BIN, bin.join("bin/loadgen")).unwrap();
        let j = Job {
            summary: job.join("summary.md"),
            output: job.join("output"),
            path: job.join("path"),
            bin,
            dir: job,
        };
        for f in [&j.summary, &j.output, &j.path] {
            std::fs::write(f, "").unwrap();
        }
        j
    }

    /// Runs a step's `run` with `env`, as a composite action's bash step.
    fn step(&self, run: &str, env: &BTreeMap<String, String>) -> Output {
        let path = format!(
            "{}:{}",
            std::fs::read_to_string(&self.path)
                .unwrap()
                .lines()
                .collect::<Vec<_>>()
                .join(":"),
            std::env::var("PATH").unwrap()
        );
        Command::new("bash")
            .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", run])
            .current_dir(&self.dir)
            .env("PATH", path)
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_WORKSPACE", &self.dir)
            .env("GITHUB_STEP_SUMMARY", &self.summary)
            .env("GITHUB_OUTPUT", &self.output)
            .env("GITHUB_PATH", &self.path)
            .env("CHATLOAD_BIN_DIR", &self.bin)
            .envs(env)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn outputs(&self) -> BTreeMap<String, String> {
        std::fs::read_to_string(&self.output)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

/// The step of `action` named `name`.
fn step<'a>(action: &'a Value, name: &str) -> &'a Value {
    action["runs"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("action.yml has no step {name:?}"))
}

/// A stand-in for GitHub's REST API on loopback: records each request's
/// method, path and body to `log`, answers 201.
fn api_recorder(log: &Path) -> (testkit::Daemon, u16) {
    let port = testkit::free_port();
    let script = r#"
import http.server, json, sys
log = sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(log, "a") as f:
            f.write(json.dumps({"path": self.path, "auth": self.headers.get("Authorization"), "body": json.loads(body)}) + "\n")
        self.send_response(201); self.send_header("Content-Type", "application/json"); self.end_headers()
        self.wfile.write(b'{"id": 1}')
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"#;
    let d = testkit::Daemon(
        Command::new("python3")
            .args(["-c", script, &port.to_string()])
            .arg(log)
            .spawn()
            .unwrap(),
    );
    testkit::wait_for_port(port, "the API recorder");
    (d, port)
}

/// A short scenario against the embedded reference server, and an SLO
/// file it meets (or, with `fail`, one no server meets).
fn scenario(dir: &Path, name: &str, fail: bool) -> PathBuf {
    let target = if fail { 0.001 } else { 5000.0 };
    std::fs::write(
        dir.join(format!("{name}-slo.toml")),
        format!(
            "name = \"gate\"\n[[objective]]\nname = \"success rate\"\nmetric = \"requests.success_rate\"\ndirection = \"min\"\ntarget = 99\n\
             [[objective]]\nname = \"complete mean\"\nmetric = \"latency_ms.complete.mean\"\ndirection = \"max\"\ntarget = {target}\n"
        ),
    )
    .unwrap();
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(
        &p,
        format!(
            "name = \"{name}\"\nduration = \"1s\"\nwarmup = \"0s\"\nslo = \"{name}-slo.toml\"\n\
             [server]\nargs = [\"--profile\", \"fast\"]\n\
             [load]\nmodel = \"closed\"\nusers = 2\n[request]\naudio = false\n"
        ),
    )
    .unwrap();
    p
}

#[test]
fn the_actions_steps_gate_summarize_and_comment_as_a_runner_runs_them() {
    let root = testkit::root();
    let action = yaml(&root.join("action.yml"));
    let dir = temp_dir("ci-action");
    let log = dir.join("api.jsonl");
    let (_api, port) = api_recorder(&log);
    for (name, fail) in [("pass", false), ("fail", true)] {
        let job = Job::new(&dir, name);
        let file = scenario(&job.dir, name, fail);
        let mut values: BTreeMap<&str, String> = [
            ("github.action_path", root.display().to_string()),
            ("github.action_ref", "v-test".to_owned()),
            (
                "inputs.scenario",
                file.file_name().unwrap().to_string_lossy().into_owned(),
            ),
            ("inputs.target", String::new()),
            ("inputs.slo", String::new()),
            ("inputs.fail-on", String::new()),
            ("inputs.baseline", String::new()),
            ("inputs.accept-inconclusive", "false".to_owned()),
            ("inputs.baseline-url", String::new()),
            ("inputs.candidate-url", String::new()),
            ("inputs.args", "--users 2".to_owned()),
            ("inputs.out", "chatload-run".to_owned()),
            ("inputs.github-token", "t0ken".to_owned()),
            ("github.event.pull_request.number", "7".to_owned()),
        ]
        .into_iter()
        .collect();
        let env_of = |s: &Value, values: &BTreeMap<&str, String>| -> BTreeMap<String, String> {
            s["env"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), substitute(v.as_str().unwrap(), values)))
                        .collect()
                })
                .unwrap_or_default()
        };
        // Build: the cached binary is used and put on the path.
        let build = step(&action, "Build the load generator");
        let o = job.step(
            &substitute(build["run"].as_str().unwrap(), &values),
            &env_of(build, &values),
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(
            String::from_utf8_lossy(&o.stdout).starts_with("loadgen "),
            "{o:?}"
        );
        assert!(
            std::fs::read_to_string(&job.path)
                .unwrap()
                .contains("cache/bin")
        );
        // The gate: its step never fails the job itself ...
        let gate = step(&action, "Run the gate");
        let o = job.step(
            &substitute(gate["run"].as_str().unwrap(), &values),
            &env_of(gate, &values),
        );
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{stderr}");
        // ... it records the verdict, and the summary has the report.
        let out = job.outputs();
        let (verdict, code) = if fail { ("fail", "1") } else { ("pass", "0") };
        assert_eq!(
            out.get("verdict").map(String::as_str),
            Some(verdict),
            "{stderr}"
        );
        assert_eq!(
            out.get("exit-code").map(String::as_str),
            Some(code),
            "{stderr}"
        );
        let summary = std::fs::read_to_string(&job.summary).unwrap();
        let mark = if fail { "FAIL" } else { "PASS" };
        assert!(
            summary.contains(mark) && summary.contains(name),
            "{summary}"
        );
        assert!(job.dir.join("chatload-run/junit.xml").is_file());
        // The comment goes to the pull request, with the report.
        let comment = step(&action, "Comment on the pull request");
        let mut env = env_of(comment, &values);
        env.insert("GITHUB_API_URL".into(), format!("http://127.0.0.1:{port}"));
        env.insert("GITHUB_REPOSITORY".into(), "team/service".into());
        let o = job.step(&substitute(comment["run"].as_str().unwrap(), &values), &env);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let posted: Value = serde_json::from_str(
            std::fs::read_to_string(&log)
                .unwrap()
                .lines()
                .last()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(posted["path"], "/repos/team/service/issues/7/comments");
        assert_eq!(posted["auth"], "Bearer t0ken");
        let body = posted["body"]["body"].as_str().unwrap();
        assert!(
            body.starts_with("### chatload performance gate: ") && body.contains(mark),
            "{body}"
        );
        // The last step gives the job its exit code.
        values.insert("steps.gate.outputs.exit-code", out["exit-code"].clone());
        values.insert("steps.gate.outputs.verdict", out["verdict"].clone());
        let last = step(&action, "Gate");
        let o = job.step(
            &substitute(last["run"].as_str().unwrap(), &values),
            &BTreeMap::new(),
        );
        assert_eq!(o.status.code(), Some(if fail { 1 } else { 0 }), "{o:?}");
    }
    // A gate step that gave no verdict (here: no such scenario) fails the
    // job with 2, not 0.
    let job = Job::new(&dir, "broken");
    let gate = step(&action, "Run the gate");
    let env: BTreeMap<String, String> =
        [("CHATLOAD_SCENARIO".to_owned(), "missing.toml".to_owned())].into();
    let run = gate["run"]
        .as_str()
        .unwrap()
        .replace("${{ github.action_path }}", &root.display().to_string());
    let o = job.step(&run, &env);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("missing.toml: no such file"),
        "{o:?}"
    );
    assert!(job.outputs().is_empty());
    let last = step(&action, "Gate");
    let values: BTreeMap<&str, String> = [
        ("steps.gate.outputs.exit-code", String::new()),
        ("steps.gate.outputs.verdict", String::new()),
    ]
    .into();
    let o = job.step(
        &substitute(last["run"].as_str().unwrap(), &values),
        &BTreeMap::new(),
    );
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("::error::"),
        "{o:?}"
    );
}

#[test]
fn the_gitlab_templates_script_gates_and_keeps_the_junit_report() {
    let root = testkit::root();
    let template = yaml(&root.join("ci/gitlab/chatload.gitlab-ci.yml"));
    let job_def = &template[".chatload-gate"];
    let script: Vec<&str> = job_def["script"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let dir = temp_dir("ci-gitlab");
    // GitLab runs the lines in one shell, stopping at the first failure.
    let run = |project: &Path, extra: &[(&str, &str)]| -> Output {
        let mut env: BTreeMap<String, String> = job_def["variables"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                let v = v
                    .as_str()
                    .unwrap()
                    .replace("$CI_PROJECT_DIR", &project.display().to_string());
                (k.clone(), v)
            })
            .collect();
        for (k, v) in extra {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        Command::new("bash")
            .args(["-e", "-c", &script.join("\n")])
            .current_dir(project)
            .env("CI", "true")
            .env("GITLAB_CI", "true")
            .env("CI_PROJECT_DIR", project)
            .env_remove("CHATLOAD_REPO")
            .envs(&env)
            .output()
            .unwrap()
    };
    for (name, fail) in [("pass", false), ("fail", true)] {
        let project = dir.join(name);
        std::fs::create_dir_all(project.join(".chatload/bin")).unwrap();
        // The job's cache restored: the built binary and the gate script.
        std::fs::copy(BIN, project.join(".chatload/bin/loadgen")).unwrap();
        std::fs::copy(
            root.join("ci/action/gate.sh"),
            project.join(".chatload/bin/chatload-gate"),
        )
        .unwrap();
        let file = scenario(&project, name, fail);
        let o = run(
            &project,
            &[(
                "CHATLOAD_SCENARIO",
                file.file_name().unwrap().to_str().unwrap(),
            )],
        );
        assert_eq!(
            o.status.code(),
            Some(if fail { 1 } else { 0 }),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        // The artifacts the template keeps: the run folder and its JUnit
        // report, at the paths it names.
        let out = job_def["variables"]["CHATLOAD_OUT"].as_str().unwrap();
        let junit = job_def["artifacts"]["reports"]["junit"]
            .as_str()
            .unwrap()
            .replace("$CHATLOAD_OUT", out);
        let xml = std::fs::read_to_string(project.join(junit)).unwrap();
        assert!(xml.contains("<testsuite"), "{xml}");
        assert_eq!(xml.contains("<failure"), fail, "{xml}");
    }
    // Nothing cached and no repository to build from: a clear error, 2.
    let project = dir.join("empty");
    std::fs::create_dir_all(&project).unwrap();
    let o = run(&project, &[("CHATLOAD_SCENARIO", "x.toml")]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("set CHATLOAD_REPO"),
        "{o:?}"
    );
}
