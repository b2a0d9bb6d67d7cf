//! agentfleet's fleet: workers that never take work without a checked credential and never fail
//! a task because of their own credential, the supervisor that runs them on one machine, and the
//! status that shows them all, on any machine, with key drift.
//!
//! ```text
//! up (supervisor) ──spawns, with an allow-listed env and a secrets pipe──► worker × N
//! worker: preflight ─► register ─► lease ─► run ─► ack | fail (retry) | release + quarantine
//! status: queue counts + registered workers + drift between their fingerprints
//! rollout ──control socket──► up: check anew ─► per slot: replacement healthy ─► drain the old
//! ```

pub mod control;
pub mod handoff;
pub mod health;
pub mod kubernetes;
pub mod rotation;
pub mod sources;
pub mod status;
pub mod supervisor;
pub mod worker;

pub use control::{ControlError, ControlSocket, RolloutEvent, RolloutRequest};
pub use handoff::{Handoff, WorkerEnv};
pub use status::{Drift, FleetStatus, WorkerStatus, status};
pub use supervisor::{Progress, UpExit, UpOptions, supervise};
pub use worker::{Log, WorkerExit, WorkerOptions};

/// This machine's name, from the kernel.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
}

/// This process's CPU time and peak resident memory, from `/proc/self`.
pub fn resource_usage() -> Option<(std::time::Duration, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat; after the name, 12 and 13 (0-based 11, 12).
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let cpu = std::time::Duration::from_millis(ticks * 10);
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let peak_kb: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some((cpu, peak_kb * 1024))
}
