//! What the documents show, checked by the binary: every TOML snippet of
//! the README and the manual is read as the file it stands for (a
//! scenario, an SLO file, a reference-server profile) and must be
//! accepted; and the install page's commands do what it says (the version
//! names the commit, the completions load into bash, the manual pages are
//! written).

use crate::support::{BIN, checked_report, loadgen, temp_dir};
use std::path::{Path, PathBuf};

/// What a snippet is: an SLO file holds objectives; a profile is marked
/// `<!-- snippet: refserver --profile-file -->` on the line before its
/// fence; anything else is a scenario, or part of one.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Scenario,
    Slo,
    Profile,
}

/// Every ```toml block of `file`: its first line's number, its kind and
/// its text.
fn snippets(file: &Path) -> Vec<(usize, Kind, String)> {
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let fence = lines[i].trim_start();
        if !fence.starts_with("```") {
            i += 1;
            continue;
        }
        let lang = fence.trim_start_matches('`').trim();
        let start = i + 1;
        let mut end = start;
        while end < lines.len() && !lines[end].trim_start().starts_with("```") {
            end += 1;
        }
        if lang == "toml" {
            let body = lines[start..end].join("\n") + "\n";
            let marked = i > 0 && lines[i - 1].contains("snippet: refserver --profile-file");
            let kind = if marked {
                Kind::Profile
            } else if body.lines().any(|l| l.trim() == "[[objective]]") {
                Kind::Slo
            } else {
                Kind::Scenario
            };
            out.push((start, kind, body));
        }
        i = end + 1;
    }
    out
}

/// The top-level keys and table headers of a snippet.
fn shape(toml: &str) -> (Vec<String>, Vec<String>) {
    let (mut keys, mut tables) = (Vec::new(), Vec::new());
    let mut top = true;
    for line in toml.lines().map(str::trim) {
        if line.starts_with('[') {
            top = false;
            tables.push(line.trim_matches(['[', ']']).to_owned());
        } else if top
            && !line.starts_with('#')
            && let Some((k, _)) = line.split_once('=')
        {
            keys.push(k.trim().to_owned());
        }
    }
    (keys, tables)
}

/// A whole scenario from a part of one: the keys every scenario needs
/// (a name, a short duration, one closed user) where the snippet has none.
fn completed(snippet: &str) -> String {
    let (keys, tables) = shape(snippet);
    let mut head = String::new();
    // Long enough for any timeline of a snippet (a dry run sends nothing).
    for (k, v) in [("name", "\"doc\""), ("duration", "\"1h\"")] {
        if !keys.iter().any(|x| x == k) {
            head.push_str(&format!("{k} = {v}\n"));
        }
    }
    let mut text = head + snippet;
    if !tables.iter().any(|t| t == "load") && !keys.iter().any(|k| k.starts_with("load")) {
        text.push_str("\n[load]\nmodel = \"closed\"\nusers = 1\n");
    }
    text
}

/// A folder where a snippet's relative paths resolve as they would
/// beside the shipped scenarios: each entry of `scenarios/` linked in.
fn beside_scenarios(name: &str) -> crate::support::Scratch {
    let dir = temp_dir(name);
    let shipped = testkit::root().join("scenarios");
    for e in std::fs::read_dir(&shipped).unwrap() {
        let p = e.unwrap().path();
        std::os::unix::fs::symlink(&p, dir.join(p.file_name().unwrap())).unwrap();
    }
    dir
}

/// Why the snippet is refused; `None` when the binary reads it.
fn refused(kind: &Kind, snippet: &str, dir: &Path) -> Option<String> {
    let scenario: PathBuf = dir.join("doc-snippet.toml");
    match kind {
        Kind::Profile => {
            let p = dir.join("doc-profile.toml");
            std::fs::write(&p, snippet).unwrap();
            return server::Config::from_args(["--profile-file", p.to_str().unwrap()])
                .err()
                .map(|e| format!("{e:#}"));
        }
        Kind::Slo => {
            let mut slo = snippet.to_owned();
            if !shape(snippet).0.iter().any(|k| k == "name") {
                slo = format!("name = \"doc\"\n{slo}");
            }
            std::fs::write(dir.join("doc-slo.toml"), slo).unwrap();
            std::fs::write(
                &scenario,
                completed("slo = \"doc-slo.toml\"\n[load]\nmodel = \"closed\"\nusers = 1\n"),
            )
            .unwrap();
        }
        Kind::Scenario => std::fs::write(&scenario, completed(snippet)).unwrap(),
    }
    // A timeline's `command` needs the user's leave: given, as the page
    // says to.
    let o = loadgen(&[
        "run",
        scenario.to_str().unwrap(),
        "--dry-run",
        "--allow-commands",
    ]);
    (o.status.code() != Some(0)).then(|| String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn every_toml_snippet_of_the_documents_is_read_by_the_binary() {
    let root = testkit::root();
    let mut files = vec![root.join("README.md")];
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    files.extend(pages);
    let dir = beside_scenarios("docs-snippets");
    let mut problems = Vec::new();
    let mut kinds = [0; 3];
    for file in &files {
        for (line, kind, text) in snippets(file) {
            kinds[kind as usize] += 1;
            if let Some(why) = refused(&kind, &text, &dir) {
                problems.push(format!(
                    "{}:{line}: a {kind:?} snippet is refused:\n{why}",
                    file.display()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    // Each kind is there, so the reading above is not vacuous.
    assert!(
        kinds[0] >= 8 && kinds[1] >= 3 && kinds[2] >= 1,
        "scenario, SLO and profile snippets: {kinds:?}"
    );
}

#[test]
fn a_wrong_snippet_is_refused_by_the_check() {
    let dir = beside_scenarios("docs-snippets-wrong");
    assert!(
        refused(
            &Kind::Scenario,
            "[load]\nmodel = \"closed\"\nuser = 1\n",
            &dir
        )
        .is_some()
    );
    assert!(
        refused(
            &Kind::Scenario,
            "[load]\nmodel = \"closed\"\nusers = 1\n",
            &dir
        )
        .is_none()
    );
    let slo = "[[objective]]\nname = \"x\"\nmetric = \"latency_ms.frist_token.p95\"\ndirection = \"max\"\ntarget = 1\n";
    let why = refused(&Kind::Slo, slo, &dir).expect("a misspelt path is refused");
    assert!(why.contains("frist_token"), "{why}");
    assert!(refused(&Kind::Profile, "first_token_ms = \"fast\"\n", &dir).is_some());
    assert_eq!(
        completed("[[scrape]]\nname = \"x\"\n"),
        "name = \"doc\"\nduration = \"1h\"\n[[scrape]]\nname = \"x\"\n\n[load]\nmodel = \"closed\"\nusers = 1\n"
    );
}

/// `loadgen --version` names the commit the binary was built from.
#[test]
fn the_version_names_the_commit() {
    let o = loadgen(&["--version"]);
    let out = String::from_utf8_lossy(&o.stdout);
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(testkit::root())
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
    assert_eq!(head.len(), 12, "git rev-parse: {head:?}");
    assert!(
        out.starts_with(&format!("loadgen {} ({head} ", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
}

/// The bash completions load into a real bash and complete subcommands;
/// zsh's and fish's name the command as their shells expect.
#[test]
fn completions_load_into_bash() {
    let o = std::process::Command::new("bash")
        .args([
            "-c",
            &format!(
                "source <({BIN} completions bash) && complete -p loadgen && \
                 COMP_WORDS=(loadgen ca); COMP_CWORD=1; _loadgen loadgen ca loadgen; echo \"${{COMPREPLY[@]}}\""
            ),
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("-F _loadgen loadgen"), "{out}");
    assert!(out.lines().last().unwrap().contains("capacity"), "{out}");
    let zsh = loadgen(&["completions", "zsh"]);
    assert!(String::from_utf8_lossy(&zsh.stdout).starts_with("#compdef loadgen"));
    let fish = loadgen(&["completions", "fish"]);
    assert!(String::from_utf8_lossy(&fish.stdout).contains("complete -c loadgen"));
}

#[test]
fn the_manual_pages_are_written() {
    let dir = temp_dir("docs-man");
    let out = dir.join("man1");
    let o = loadgen(&["man", "--out-dir", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let page = std::fs::read_to_string(out.join("loadgen.1")).unwrap();
    assert!(
        page.starts_with(".ie \\n(.g .ds Aq") || page.contains(".TH loadgen"),
        "{page}"
    );
    let run = std::fs::read_to_string(out.join("loadgen-run.1")).unwrap();
    assert!(
        run.contains(".TH loadgen-run") && run.contains("\\-\\-target"),
        "{run}"
    );
    // Every subcommand has its page.
    let help = String::from_utf8_lossy(&loadgen(&["--help"]).stdout).into_owned();
    for sub in [
        "capacity",
        "report",
        "merge",
        "compare",
        "ab",
        "completions",
        "man",
        "serve",
    ] {
        assert!(help.contains(sub), "{help}");
        assert!(
            out.join(format!("loadgen-{sub}.1")).is_file(),
            "no page of {sub}"
        );
    }
}

/// The install page's `cargo install --locked --path loadgen`, run: into
/// a folder of the test's, from the suite's own target folder (`--debug`
/// for its profile, `--offline`: nothing is fetched). loadgen's manifest
/// turns on the features the test build gets from dev-dependencies, so
/// the install compiles nothing: every unit is the test build's (without
/// that list, 80 of its 394 units differed, and an earlier version of this
/// test took 179 s in a fresh clone); a crate compiled here means a
/// feature went missing from that list, and the test names it. The
/// installed binary then serves the reference server (`loadgen serve`)
/// and runs a scenario against it.
#[test]
fn the_documented_install_builds_a_loadgen_that_serves_and_runs() {
    let root = testkit::root();
    let cargo = |args: &[&str]| {
        std::process::Command::new(env!("CARGO"))
            .args(args)
            .current_dir(&root)
            // Cargo gives the tests the build script's `rustc-env`; as
            // set, it would run that script again (`rerun-if-env-changed`).
            .env_remove("LOADGEN_COMMIT")
            .output()
            .unwrap()
    };
    let o = cargo(&[
        "metadata",
        "--locked",
        "--offline",
        "--no-deps",
        "--format-version",
        "1",
    ]);
    assert!(
        o.status.success(),
        "Cargo.lock is not current (cargo install --locked would fail): {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let target = meta["target_directory"].as_str().unwrap().to_owned();
    let page = std::fs::read_to_string(root.join("docs/install.md")).unwrap();
    assert!(
        page.contains("cargo install --locked --path loadgen"),
        "docs/install.md"
    );
    let dir = temp_dir("install");
    let prefix = dir.join("prefix");
    let o = cargo(&[
        "install",
        "--locked",
        "--offline",
        "--debug",
        "--path",
        "loadgen",
        "--root",
        prefix.to_str().unwrap(),
        "--target-dir",
        &target,
    ]);
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "cargo install failed:\n{log}");
    let compiled: Vec<&str> = log
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Compiling "))
        .collect();
    // Nothing at all: loadgen itself compiled again would also mean its
    // binary differs from the suite's, which the install would then write
    // over target/debug/loadgen while other tests run it.
    assert!(
        compiled.is_empty(),
        "the install compiled crates again, with features the test build does not give them: {compiled:?}; \
         add the features the workspace's dev-dependencies turn on to the list in loadgen/Cargo.toml \
         (compare `cargo tree -p loadgen -e normal,build -f '{{p}} {{f}}'` with `cargo tree --workspace -e all -f '{{p}} {{f}}'`)\n{log}"
    );
    let installed = prefix.join("bin/loadgen");
    let version = |bin: &Path| {
        let o = std::process::Command::new(bin)
            .arg("--version")
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let installed_version = version(&installed);
    assert!(
        installed_version.starts_with("loadgen 0.0.0 ("),
        "{installed_version:?}"
    );
    assert_eq!(installed_version, version(Path::new(BIN)));
    // The installed binary serves the reference server, and runs a
    // scenario against it that passes (the default policy: its success
    // rate), unless its self-check distrusts the run on a busy machine.
    let port = testkit::free_port();
    let _server = testkit::Daemon(
        std::process::Command::new(&installed)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--profile", "fast", "--log-level", "error"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    testkit::wait_for_port(port, "loadgen serve");
    let file = dir.join("s.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"installed\"\ntarget = \"http://127.0.0.1:{port}\"\nduration = \"2s\"\nwarmup = \"0s\"\n\
             [load]\nmodel = \"closed\"\nusers = 2\n[request]\naudio = false\n"
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let o = std::process::Command::new(&installed)
        .args([
            "run",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
        ])
        .output()
        .unwrap();
    let report = checked_report(&out);
    crate::support::passed_unless_distrusted(o.status.code(), &report);
    assert!(report["requests"]["ok"].as_u64().unwrap() > 0, "{report}");
}
