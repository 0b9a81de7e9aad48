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
pub fn read_scenario(path: &Path) -> Result<Scenario, FileError> {
    Scenario::from_toml(&read_text(path, "scenario")?, &path.display().to_string())
}

/// An SLO file, read and checked.
pub fn read_slo_file(path: &Path) -> Result<SloFile, FileError> {
    SloFile::from_toml(&read_text(path, "SLO")?, &path.display().to_string())
}
