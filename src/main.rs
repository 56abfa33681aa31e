//! The `doodlebox` binary: parses the command line, starts logging, calls the library, and
//! maps errors to exit codes. Everything testable lives in the library ([`doodlebox::cli`]).

use std::process::ExitCode;

use clap::Parser;
use doodlebox::cli::Cli;

fn main() -> ExitCode {
    // Before any large buffer exists (see the module docs).
    doodlebox::malloc::fix_mmap_threshold();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DOODLEBOX_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match doodlebox::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("doodlebox: {e:#}");
            ExitCode::FAILURE
        }
    }
}
