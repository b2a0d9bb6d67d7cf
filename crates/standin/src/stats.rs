//! Request counters, served at `GET /stats`: per status, per surface, and per key fingerprint,
//! so that a test can tell which replica sent which key without the server keeping keys.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

/// Counts for one key.
#[derive(Clone, Debug, Default, Serialize)]
pub struct KeyCounts {
    /// Requests that presented this key.
    pub requests: u64,
    /// Their statuses.
    pub by_status: BTreeMap<u16, u64>,
}

/// Everything counted since start.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Snapshot {
    /// All requests to the provider surfaces.
    pub requests: u64,
    /// By HTTP status.
    pub by_status: BTreeMap<u16, u64>,
    /// By surface: `openai`, `azure`, `anthropic`.
    pub by_surface: BTreeMap<&'static str, u64>,
    /// By the fingerprint of the key presented, or `none`.
    pub by_key: BTreeMap<String, KeyCounts>,
}

/// The live counters.
#[derive(Debug, Default)]
pub struct Stats {
    inner: Mutex<Snapshot>,
}

impl Stats {
    /// Counts one answered request.
    pub fn record(&self, surface: &'static str, key: Option<&str>, status: u16) {
        let mut snapshot = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        snapshot.requests += 1;
        *snapshot.by_status.entry(status).or_default() += 1;
        *snapshot.by_surface.entry(surface).or_default() += 1;
        let label = key.map_or_else(|| "none".to_owned(), crate::keys::fingerprint);
        let counts = snapshot.by_key.entry(label).or_default();
        counts.requests += 1;
        *counts.by_status.entry(status).or_default() += 1;
    }

    /// A copy of the counters.
    pub fn snapshot(&self) -> Snapshot {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
