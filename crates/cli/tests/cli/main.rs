//! End-to-end tests: the real `agentfleet` binary, run in temporary directories with an
//! environment built from nothing, so that a developer's own keys can never leak in or
//! make a test pass by accident.
//!
//! One test binary, so dependencies link once. Modules, by subject:

/// Building workspaces and running the binary.
mod util;

/// `agentfleet check`: every rule, both output formats, config discovery, exit codes.
mod check;

/// `agentfleet run`: the embedded default, JSON results, failures and their exit codes.
mod run;

/// `agentfleet submit`, `results`, `cancel` and `queue stats`, on SQLite and PostgreSQL.
mod queue;

/// The fleet: workers, quarantine, drift, `up` and `status`, with real processes.
mod fleet;

/// `agentfleet explain` and `doctor`: logs and code read, failures named, exit codes.
mod doctor;

/// `agentfleet k8s`: manifests that parse, hold no secret, and wire credentials as `check` says.
mod kubernetes;

/// `agentfleet standin` as a process, and `check --probe` against it.
mod probe;

/// A canary secret, planted everywhere a key can be, must appear in no output.
mod canary;

/// Rules about the repository itself: where the environment may be read, file headers.
mod repository;
