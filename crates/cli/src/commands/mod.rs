//! One module per subcommand; `run` dispatches.

mod check;
mod doctor;
mod fleet;
mod kubernetes;
mod queue;
mod run;
mod standin;

use crate::cli::{Cli, Command};
use crate::exit::Exit;

/// Runs the command the user asked for.
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Submit(args) => queue::submit(&args),
        Command::Worker(args) => fleet::worker(&args),
        Command::Up(args) => fleet::up(&args),
        Command::Status(args) => fleet::status(&args),
        Command::Rollout(args) => fleet::rollout(&args),
        Command::K8s(args) => kubernetes::run(&args),
        Command::Results(args) => queue::results(&args),
        Command::Cancel(args) => queue::cancel(&args),
        Command::Queue(crate::cli::QueueCommand::Stats(args)) => queue::stats(&args),
        Command::Doctor(args) => doctor::run(&args),
        Command::Explain(args) => doctor::explain(&args),
        Command::Standin(args) => standin::run(&args),
    }
}
