//! # loadgen: SSE chat traffic, measured from the client side
//!
//! A skeleton until the load-generator issue lands: the command line and
//! exit codes exist so CI and the docs can name them; `run` says plainly
//! that it is not built yet.
//!
//! # Layout
//! - [`Cli`] and [`run`]: the command line and its outcome.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Drives SSE chat traffic at a target and judges it against SLOs.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs a scenario file (not built yet).
    Run {
        /// The scenario file (TOML).
        scenario: PathBuf,
    },
}

/// The CI interface: 0 pass, 1 SLO violated, 2 usage or run error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    SloViolated,
    Error,
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> ExitCode {
        ExitCode::from(match o {
            Outcome::Pass => 0,
            Outcome::SloViolated => 1,
            Outcome::Error => 2,
        })
    }
}

pub fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Run { scenario } => anyhow::bail!(
            "cannot run {}: the load generator is not built yet; start the reference server with `cargo run -p server --bin refserver`",
            scenario.display()
        ),
    }
}
