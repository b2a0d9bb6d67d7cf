//! The fleet as `agentfleet status` shows it: the queue's counts, each worker and its
//! credentials, and drift, where live workers of one provider hold different keys.

use std::collections::BTreeMap;

use agentfleet_queue::{Queue, QueueError, QueueStats, WorkerRecord};
use serde::Serialize;

/// Everything `status` reports.
#[derive(Debug, Serialize)]
pub struct FleetStatus {
    /// Counts per state.
    pub queue: QueueStats,
    /// Every registered worker.
    pub workers: Vec<WorkerStatus>,
    /// Providers whose live workers do not all hold one key.
    pub drift: Vec<Drift>,
    /// Why tasks wait, when they do and no worker can take them.
    pub waiting_because: Option<String>,
}

/// One worker.
#[derive(Debug, Serialize)]
pub struct WorkerStatus {
    /// Its name.
    pub name: String,
    /// Its machine.
    pub host: String,
    /// Its process.
    pub pid: u32,
    /// `healthy`, `quarantined`, `draining`, `starting`, or `gone` after missed heartbeats.
    pub state: String,
    /// Why it is not healthy.
    pub reason: Option<String>,
    /// Its last heartbeat, in milliseconds since the epoch.
    pub last_heartbeat: i64,
    /// Tasks running.
    pub in_flight: u64,
    /// Tasks finished.
    pub done: u64,
    /// Attempts failed.
    pub failed: u64,
    /// Per provider: source, fingerprint, and the key's generation (each rotation one more).
    pub credentials: serde_json::Value,
    /// The rollout of its supervisor that started it; `None` for a worker started on its own.
    pub generation: Option<u64>,
}

/// Live workers holding different keys for one provider.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Drift {
    /// The provider.
    pub provider: String,
    /// Each fingerprint, and the workers holding it.
    pub fingerprints: BTreeMap<String, Vec<String>>,
}

/// Reads the fleet's state from the queue.
pub async fn status(queue: &Queue) -> Result<FleetStatus, QueueError> {
    let stats = queue.stats().await?;
    let records = queue.workers().await?;
    let drift = drift(&records);
    let live: Vec<&WorkerRecord> = records.iter().filter(|w| !w.gone).collect();
    let waiting_because = if stats.pending == 0 {
        None
    } else if live.is_empty() {
        Some("no worker is running: start agentfleet worker or agentfleet up".to_owned())
    } else if live.iter().all(|w| w.report.state == "quarantined") {
        let reasons: Vec<String> = live
            .iter()
            .map(|w| {
                format!(
                    "{}: {}",
                    w.report.name,
                    w.report.reason.clone().unwrap_or_default()
                )
            })
            .collect();
        Some(format!(
            "every worker is quarantined; tasks wait for a working credential ({})",
            reasons.join("; ")
        ))
    } else {
        None
    };
    let workers = records
        .into_iter()
        .map(|record| WorkerStatus {
            state: if record.gone {
                "gone".to_owned()
            } else {
                record.report.state
            },
            name: record.report.name,
            host: record.report.host,
            pid: record.report.pid,
            reason: record.report.reason,
            last_heartbeat: record.last_heartbeat,
            in_flight: record.report.in_flight,
            done: record.report.done,
            failed: record.report.failed,
            credentials: record.report.credentials,
            generation: record.report.generation,
        })
        .collect();
    Ok(FleetStatus {
        queue: stats,
        workers,
        drift,
        waiting_because,
    })
}

/// Providers whose live workers report more than one fingerprint.
pub fn drift(workers: &[WorkerRecord]) -> Vec<Drift> {
    let mut by_provider: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for worker in workers.iter().filter(|w| !w.gone) {
        let Some(credentials) = worker.report.credentials.as_object() else {
            continue;
        };
        for (provider, credential) in credentials {
            if let Some(fingerprint) = credential.get("fingerprint").and_then(|f| f.as_str()) {
                by_provider
                    .entry(provider.clone())
                    .or_default()
                    .entry(fingerprint.to_owned())
                    .or_default()
                    .push(worker.report.name.clone());
            }
        }
    }
    by_provider
        .into_iter()
        .filter(|(_, fingerprints)| fingerprints.len() > 1)
        .map(|(provider, fingerprints)| Drift {
            provider,
            fingerprints,
        })
        .collect()
}
