use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = server::Cli::parse();
    match server::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("refserver: {err:#}");
            ExitCode::from(2)
        }
    }
}
