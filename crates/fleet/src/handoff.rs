//! How a supervisor hands its workers what they need without putting secrets in their
//! environment: a JSON line on the worker's standard input (a pipe only the two share), read
//! once at start. Nothing a worker spawns can inherit it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::BufRead;

use agentfleet_config::{Environment, ProcessEnv, Secret};
use serde::{Deserialize, Serialize};

/// What travels over the pipe.
#[derive(Default, Serialize, Deserialize)]
pub struct Handoff {
    /// Variables the config reads credentials from, with the supervisor's values.
    pub env: BTreeMap<String, String>,
    /// The queue's URL, which may carry a password.
    pub queue_url: Option<String>,
}

impl std::fmt::Debug for Handoff {
    /// Names only: the values are secrets.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Handoff")
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Handoff {
    /// Reads the one line a supervisor wrote to standard input.
    pub fn read_stdin() -> std::io::Result<Self> {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let handoff = serde_json::from_str(line.trim()).map_err(std::io::Error::other);
        // The line held secrets: overwrite it before it is freed.
        line.replace_range(.., &" ".repeat(line.len()));
        handoff
    }
}

/// The worker's view of the environment: the handed-off variables first, then its own.
#[derive(Debug, Default)]
pub struct WorkerEnv {
    handed: BTreeMap<String, Secret>,
}

impl WorkerEnv {
    /// An environment that sees `handoff`'s variables as if they were set.
    pub fn new(handoff: Handoff) -> Self {
        Self {
            handed: handoff
                .env
                .into_iter()
                .map(|(name, value)| (name, Secret::new(value)))
                .collect(),
        }
    }
}

impl Environment for WorkerEnv {
    fn get(&self, name: &str) -> Option<OsString> {
        match self.handed.get(name) {
            Some(value) => Some(OsString::from(value.expose())),
            None => ProcessEnv.get(name),
        }
    }
}
