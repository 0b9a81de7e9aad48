//! Reading the files people write (scenarios, SLO files): `slo` parses
//! their text and does no I/O, so reading them is here.

use slo::objective::SloFile;
use slo::scenario::{FileError, Scenario};
use std::path::Path;

/// The text of a `what` file, or an error naming it.
fn read_text(path: &Path, what: &str) -> Result<String, FileError> {
    std::fs::read_to_string(path).map_err(|e| FileError {
        file: path.display().to_string(),
        line: None,
        message: format!("cannot read the {what} file: {e}"),
    })
}

/// A scenario file, read and checked.
pub fn read_scenario(path: &Path) -> anyhow::Result<Scenario> {
    read_scenario_with(path, |_| Ok(()))
}

/// A scenario file, read, with `flags` applied (the command line
/// overrides the file), then checked.
pub fn read_scenario_with(
    path: &Path,
    flags: impl FnOnce(&mut Scenario) -> anyhow::Result<()>,
) -> anyhow::Result<Scenario> {
    let text = read_text(path, "scenario")?;
    let file = path.display().to_string();
    let mut scenario = Scenario::parse(&text, &file)?;
    flags(&mut scenario)?;
    Ok(scenario.checked(&text, &file)?)
}

/// An SLO file, read and checked.
pub fn read_slo_file(path: &Path) -> Result<SloFile, FileError> {
    SloFile::from_toml(&read_text(path, "SLO")?, &path.display().to_string())
}
