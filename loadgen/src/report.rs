//! Writing `report.json` and the reports for people (`report.md`,
//! `junit.xml`, `report.html`); shared by `run` and by `loadgen report
//! DIR`, which rebuilds them from the saved files. The report itself is
//! `slo::report::build`'s.

use anyhow::Context;
use slo::report::{Files, Report};
use std::path::Path;

pub const REPORT_JSON: &str = "report.json";
pub const REPORT_MD: &str = "report.md";
pub const JUNIT_XML: &str = "junit.xml";
pub const REPORT_HTML: &str = "report.html";

/// The files every run writes, by role.
pub fn files() -> Files {
    Files {
        csv: crate::recorder::CSV_FILE.into(),
        interval_log: crate::recorder::HLOG_FILE.into(),
        goose_html: "goose.html".into(),
        goose_json: "goose.json".into(),
        report: REPORT_JSON.into(),
        markdown: REPORT_MD.into(),
        junit: JUNIT_XML.into(),
        html: REPORT_HTML.into(),
    }
}

/// Writes `report.json`, `report.md`, `junit.xml` and `report.html`.
pub fn write_all(out: &Path, r: &Report) -> anyhow::Result<()> {
    let files = [
        (
            REPORT_JSON,
            serde_json::to_string_pretty(r).expect("the report serializes"),
        ),
        (REPORT_MD, slo::render::markdown::render(r)),
        (JUNIT_XML, slo::render::junit::render(r)),
        (REPORT_HTML, slo::render::html::render(r)),
    ];
    for (name, text) in files {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
