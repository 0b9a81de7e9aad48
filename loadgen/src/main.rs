use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = loadgen::Cli::parse();
    match loadgen::run(cli) {
        Ok(outcome) => outcome.into(),
        Err(err) => {
            eprintln!("loadgen: {err:#}");
            loadgen::Outcome::Error.into()
        }
    }
}
