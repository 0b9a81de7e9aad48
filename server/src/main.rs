use clap::Parser;
use std::process::ExitCode;

/// jemalloc with its background threads gives freed memory back to the
/// system: after a crowd of streams leaves, the server's resident memory
/// returns near idle (glibc's allocator kept ~90 % of it; see the crowds
/// test).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = server::Cli::parse();
    // Purges freed pages after their decay time even when the server is idle.
    let _ = tikv_jemalloc_ctl::background_thread::write(true);
    match server::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("refserver: {err:#}");
            ExitCode::from(2)
        }
    }
}
