//! Every scenario and SLO file we ship parses, and names an SLO file that
//! exists.

use std::path::Path;

#[test]
fn shipped_scenarios_and_slo_files_parse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut scenarios = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "toml") {
            let s = loadgen::files::read_scenario(&p).unwrap_or_else(|e| panic!("{e}"));
            if let Some(rel) = &s.slo {
                loadgen::files::read_slo_file(&root.join(rel)).unwrap_or_else(|e| panic!("{e}"));
            }
            scenarios += 1;
        }
    }
    for name in ["smoke", "baseline", "load", "stress", "spike", "soak"] {
        assert!(
            root.join(format!("{name}.toml")).exists(),
            "scenarios/{name}.toml"
        );
    }
    assert!(scenarios >= 6);
    for entry in std::fs::read_dir(root.join("slo")).unwrap() {
        let p = entry.unwrap().path();
        loadgen::files::read_slo_file(&p).unwrap_or_else(|e| panic!("{e}"));
    }
    let smoke = loadgen::files::read_scenario(&root.join("smoke.toml")).unwrap();
    assert!(
        smoke.warmup + smoke.duration <= std::time::Duration::from_secs(30),
        "smoke runs in 30 s at most"
    );
}

#[test]
fn committed_baselines_match_the_report_schema() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../reports/baselines");
    for name in ["smoke.json", "baseline.json"] {
        crate::support::assert_valid_report(&dir.join(name));
    }
}
