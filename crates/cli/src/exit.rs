//! Exit codes: one per way the program can end, documented in README.md.
//!
//! The numbers follow sysexits(3) where one fits, so that supervisors and CI scripts can tell
//! "fix the config" from "the provider said no" from "the provider could not be reached".

use std::process::ExitCode;

/// How a command ended. Ordered by precedence: when several things went wrong, the greatest
/// decides the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// Everything checked out.
    Ok,
    /// An unexpected failure (an I/O error writing output, say).
    Failure,
    /// The command line asks for something that cannot be done.
    Usage,
    /// Input data is malformed, such as a bad line in a tasks file (EX_DATAERR).
    Data,
    /// A provider or the queue's database cannot be reached or is failing (EX_UNAVAILABLE).
    Unavailable,
    /// A provider refused its credential (EX_NOPERM).
    Rejected,
    /// The config, or a credential it needs, is unusable (EX_CONFIG).
    Config,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::Data => 65,
            Exit::Unavailable => 69,
            Exit::Rejected => 77,
            Exit::Config => 78,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}
