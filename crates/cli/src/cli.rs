//! The command line, as clap types. Argument parsing only: no command logic here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Run LLM agent workers that scale out and never fail on credentials in silence.
#[derive(Debug, Parser)]
#[command(name = "agentfleet", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Resolve and validate every credential the config needs, in this process.
    ///
    /// Exits 0 when every provider is usable and 78 when the config or any credential is not.
    /// Keys are never printed: a fingerprint (sha256: and 8 hex digits) stands in for each.
    Check(CheckArgs),
}

/// Where the config file is.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The config file [default: $AGENTFLEET_CONFIG, then ./agentfleet.toml]
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}
