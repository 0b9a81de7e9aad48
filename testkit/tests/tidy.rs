//! The architecture's rules, checked (as rust-analyzer's tidy test does):
//! a rule ARCHITECTURE.md states fails here the day the code breaks it.
//! Each check reads the sources as text; "code" below is a file's text
//! before its `#[cfg(test)]` module, with comments left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    testkit::root()
}

/// Every `.rs` file under `dir`, with its path relative to `dir`.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path.strip_prefix(dir).unwrap().to_path_buf(), text));
            }
        }
    }
    out.sort();
    out
}

/// A file's code: before its tests, without comments. Files that are
/// test modules themselves have none.
fn code(rel: &Path, text: &str) -> String {
    let name = rel.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if name == "tests" || name.starts_with("test_") {
        return String::new();
    }
    let before_tests = text.split("#[cfg(test)]").next().unwrap_or("");
    before_tests
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The names in a crate's `[dependencies]` (not dev-dependencies).
fn dependencies(krate: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join(krate).join("Cargo.toml")).unwrap();
    let manifest: toml::Table = toml::from_str(&text).unwrap();
    manifest
        .get("dependencies")
        .and_then(|d| d.as_table())
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn slo_and_wire_do_no_io_and_know_no_runtime() {
    for krate in ["slo", "wire"] {
        let deps = dependencies(krate);
        for banned in ["tokio", "tokio-util", "axum", "hyper", "reqwest", "goose"] {
            assert!(
                !deps.contains(banned),
                "{krate} depends on {banned}: the pure core and the wire must not (ARCHITECTURE.md)"
            );
        }
        let io = [
            "std::fs",
            "std::net",
            "std::process",
            "File::",
            "tokio",
            "stdin()",
        ];
        for (rel, text) in sources(&root().join(krate).join("src")) {
            let code = code(&rel, &text);
            for word in io {
                assert!(
                    !code.contains(word),
                    "{krate}/src/{} uses {word}: {krate} does no I/O; read and write in loadgen or server",
                    rel.display()
                );
            }
        }
    }
}

#[test]
fn the_server_speaks_the_wire_and_never_builds_on_the_core() {
    // Editing a renderer or a verdict must not rebuild the server: it
    // depends on `wire`, and on `slo` for its tests only.
    let deps = dependencies("server");
    assert!(deps.contains("wire"), "server: {deps:?}");
    assert!(
        !deps.contains("slo"),
        "server/Cargo.toml [dependencies] names slo: the server speaks `wire` (ARCHITECTURE.md)"
    );
}

#[test]
fn the_server_never_depends_on_the_load_generator() {
    let text = std::fs::read_to_string(root().join("server/Cargo.toml")).unwrap();
    let manifest: toml::Table = toml::from_str(&text).unwrap();
    for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
        if let Some(t) = manifest.get(section).and_then(|d| d.as_table()) {
            assert!(
                !t.contains_key("loadgen"),
                "server/Cargo.toml [{section}] names loadgen"
            );
        }
    }
}

/// The wire format's spellings: endpoint paths and the guide's JSON keys.
const WIRE: [&str; 13] = [
    "\"/api/",
    "\"/v1/",
    "\"/metrics\"",
    "\"/dashboard\"",
    "\"firstToken\"",
    "\"firstAudio\"",
    "\"activeStreams\"",
    "\"totalRequests\"",
    "\"errorCount\"",
    "\"hitRate\"",
    "\"chatbotId\"",
    "\"clientId\"",
    "\"successRate\"",
];

#[test]
fn only_slo_and_the_protocol_seam_spell_the_wire_format() {
    for krate in ["server", "loadgen"] {
        for (rel, text) in sources(&root().join(krate).join("src")) {
            if krate == "loadgen" && rel == Path::new("protocol.rs") {
                continue;
            }
            let code = code(&rel, &text);
            for word in WIRE {
                assert!(
                    !code.contains(word),
                    "{krate}/src/{} spells {word}: the wire format lives in wire::protocol and \
                     wire::monitoring (the load generator's seam is loadgen::protocol)",
                    rel.display()
                );
            }
        }
    }
}

/// The module a file is (its first path component, or itself).
fn module_of(rel: &Path) -> Option<String> {
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_owned())
}

/// The modules each module of a crate names (`crate::x`).
fn module_graph(krate: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in sources(&root().join(krate).join("src")) {
        let Some(module) = module_of(&rel) else {
            continue;
        };
        let code = code(&rel, &text);
        let mut named = BTreeSet::new();
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            if let Some(list) = rest.strip_prefix('{') {
                let list = &list[..list.find('}').unwrap_or(list.len())];
                for item in list.split(',') {
                    let item = item.trim();
                    let head = item.split("::").next().unwrap_or("").trim();
                    if head.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
                        named.insert(head.to_owned());
                    }
                }
            } else {
                let head: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                named.insert(head);
            }
        }
        named.remove(&module);
        graph.entry(module).or_default().extend(named);
    }
    graph
}

/// A circle among `graph`'s modules, if any.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        graph: &BTreeMap<String, BTreeSet<String>>,
        node: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut c = path[at..].to_vec();
            c.push(node.to_owned());
            return Some(c);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(graph, next, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(graph, n, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    for krate in ["wire", "slo", "server", "loadgen"] {
        let graph = module_graph(krate);
        assert!(graph.len() > 3, "{krate}: the module graph was not read");
        if let Some(c) = circle(&graph) {
            panic!(
                "{krate}: modules import each other in a circle: {}; move what they share \
                 to a module both import",
                c.join(" -> ")
            );
        }
    }
}

#[test]
fn the_circle_finder_finds_circles() {
    let g = |edges: &[(&str, &str)]| {
        let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            m.entry((*a).into()).or_default().insert((*b).into());
            m.entry((*b).into()).or_default();
        }
        m
    };
    assert_eq!(circle(&g(&[("a", "b"), ("b", "c")])), None);
    assert_eq!(
        circle(&g(&[("a", "b"), ("b", "c"), ("c", "a")])),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}

#[test]
fn committed_schemas_are_current() {
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
    for (file, make) in slo::schema::all() {
        let path = root().join(file);
        let text = serde_json::to_string_pretty(&make()).unwrap() + "\n";
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == text,
            "{file} is not current: run UPDATE_SCHEMAS=1 cargo test -p testkit --test tidy"
        );
    }
}

/// `ci/prometheus/rules.yml` is the harness's one definition of the
/// guide's alert rules rendered at the guide's timings: the load
/// generator evaluates the same rules during a drill.
#[test]
fn the_prometheus_rules_file_is_current() {
    let path = root().join("ci/prometheus/rules.yml");
    let text = slo::alerts::rules::yaml(&slo::alerts::rules::Timing::GUIDE);
    if std::env::var_os("UPDATE_SCHEMAS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "ci/prometheus/rules.yml is not current: run UPDATE_SCHEMAS=1 cargo test -p testkit --test tidy"
    );
}

/// The `module::name` of every test in `dir` (a test binary's folder)
/// whose first statement takes the turn (`support::turn()`).
fn tests_taking_the_turn(dir: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (rel, text) in sources(dir) {
        let module = rel.with_extension("").to_string_lossy().replace('/', "::");
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(rest) = line
                .strip_prefix("fn ")
                .or_else(|| line.strip_prefix("async fn "))
            else {
                continue;
            };
            let is_test = lines[..i]
                .iter()
                .rev()
                .take_while(|l| l.starts_with("#[") || l.starts_with("///"))
                .any(|l| l.starts_with("#[test]") || l.starts_with("#[tokio::test"));
            let first = lines.get(i + 1).map(|l| l.trim()).unwrap_or("");
            if is_test && first.starts_with("let _turn = ") && first.ends_with("turn();") {
                let name = rest.split('(').next().unwrap_or("");
                found.insert(format!("{module}::{name}"));
            }
        }
    }
    found
}

/// Tests that judge timing run alone: under nextest each test is its own
/// process, so the turn they take in code does not keep the others away;
/// `.config/nextest.toml` does, for the tests its filter names.
#[test]
fn every_test_that_takes_the_turn_runs_alone() {
    let text = std::fs::read_to_string(root().join(".config/nextest.toml")).unwrap();
    let config: toml::Table = toml::from_str(&text).unwrap();
    let overrides = config["profile"]["default"]["overrides"]
        .as_array()
        .unwrap();
    let alone: Vec<&str> = overrides
        .iter()
        .filter(|o| o.get("threads-required").and_then(|t| t.as_str()) == Some("num-test-threads"))
        .map(|o| o["filter"].as_str().unwrap())
        .collect();
    assert_eq!(alone.len(), 1, "one filter of tests that run alone");
    let named: BTreeSet<String> = alone[0]
        .split("test(=")
        .skip(1)
        .map(|s| s.split(')').next().unwrap().to_owned())
        .collect();
    assert!(alone[0].starts_with("binary_id(loadgen::it) & ("));
    // ci/test.sh's first timing tests (the override of priority 100 that
    // sets nothing else) are timing tests.
    let first: Vec<&str> = overrides
        .iter()
        .filter(|o| o.get("priority").and_then(|p| p.as_integer()) == Some(100))
        .map(|o| o["filter"].as_str().unwrap())
        .collect();
    assert_eq!(first.len(), 1, "one filter of the first timing tests");
    for name in first[0].split("test(=").skip(1) {
        let name = name.split(')').next().unwrap();
        assert!(
            named.contains(name),
            ".config/nextest.toml: {name} is among the first timing tests but not run alone"
        );
    }
    let taking = tests_taking_the_turn(&root().join("loadgen/tests/it"));
    assert!(taking.len() >= 5, "{taking:?}");
    let missing: Vec<_> = taking.difference(&named).collect();
    let extra: Vec<_> = named.difference(&taking).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        ".config/nextest.toml: tests taking the turn but not run alone: {missing:?}; \
         run alone but not taking the turn (or not found): {extra:?}"
    );
    for (rel, text) in sources(&root().join("server/tests")) {
        assert!(
            !text.contains("turn()"),
            "server/tests/{}: only loadgen's tests take the turn",
            rel.display()
        );
    }
}

/// Every non-test function of `dir`'s sources longer than `limit` lines,
/// as `file:name (lines)`: from its `fn` line to the closing brace at the
/// same indentation (rustfmt's layout).
fn long_functions(dir: &Path, limit: usize) -> BTreeMap<String, usize> {
    let mut found = BTreeMap::new();
    for (rel, text) in sources(dir) {
        let code = code(&rel, &text);
        let lines: Vec<&str> = code.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let indent = line.len() - line.trim_start().len();
            let head = line.trim_start();
            let head = head
                .strip_prefix("pub(crate) ")
                .or_else(|| head.strip_prefix("pub "))
                .unwrap_or(head);
            let head = head.strip_prefix("async ").unwrap_or(head);
            let Some(rest) = head.strip_prefix("fn ") else {
                continue;
            };
            let close = format!("{}}}", " ".repeat(indent));
            let Some(len) = lines[i..].iter().position(|l| *l == close) else {
                continue;
            };
            if len + 1 > limit {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                found.insert(format!("{}:{name}", rel.display()), len + 1);
            }
        }
    }
    found
}

/// The functions over the limit that issue 27 has yet to split. The list
/// only shrinks: a function on it that got shorter leaves it, and no
/// other function may grow past the limit.
const STILL_LONG: &[&str] = &[
    "loadgen/src/recorder.rs:record",
    // The guide's alert rules, a table: one call a pair of tiers.
    "slo/src/alerts/rules.rs:guide",
];

/// No non-test function over 120 lines: a long body becomes phases.
#[test]
fn no_function_is_longer_than_120_lines() {
    let mut long = BTreeMap::new();
    for krate in ["wire", "server", "loadgen", "slo", "testkit"] {
        for (f, n) in long_functions(&root().join(krate).join("src"), 120) {
            long.insert(format!("{krate}/src/{f}"), n);
        }
    }
    let new: Vec<_> = long
        .iter()
        .filter(|(f, _)| !STILL_LONG.contains(&f.as_str()))
        .collect();
    assert!(
        new.is_empty(),
        "functions over 120 lines (split them into parts): {new:?}"
    );
    let gone: Vec<_> = STILL_LONG
        .iter()
        .filter(|f| !long.contains_key(**f))
        .collect();
    assert!(
        gone.is_empty(),
        "no longer over 120 lines: take them off STILL_LONG: {gone:?}"
    );
}
