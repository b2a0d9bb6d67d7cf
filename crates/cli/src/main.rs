//! The `agentfleet` binary: parse the command line, run one command, map its outcome to an exit
//! code. Everything that decides anything lives in the library crates; this crate only wires
//! them together, prints, and chooses exit codes.

mod cli;
mod commands;
mod exit;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(exit) => exit.into(),
        Err(error) => {
            // A closed pipe (`agentfleet check | head`) is the reader's choice, not a failure.
            if is_broken_pipe(&error) {
                return exit::Exit::Ok.into();
            }
            eprintln!("agentfleet: error: {error:#}");
            exit::Exit::Failure.into()
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(BrokenPipe)
    })
}
