//! The error of a value that breaks its rule, shared by the scenario's
//! check and the tables it reads through their own modules.

/// A value of a scenario that breaks its rule: the dotted key and what
/// it must be.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field}: {problem}")]
pub struct InvalidField {
    pub field: &'static str,
    pub problem: String,
}
