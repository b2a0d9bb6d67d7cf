//! The queue's data: tasks as submitted, as stored, as leased; and the counts `stats` reports.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a task runs: an agent or a team, by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// An agent.
    Agent(String),
    /// A team.
    Team(String),
}

impl Target {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Target::Agent(_) => "agent",
            Target::Team(_) => "team",
        }
    }

    pub(crate) fn name(&self) -> &str {
        match self {
            Target::Agent(name) | Target::Team(name) => name,
        }
    }

    pub(crate) fn from_parts(kind: &str, name: String) -> Self {
        if kind == "team" {
            Target::Team(name)
        } else {
            Target::Agent(name)
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} {}", self.kind(), self.name())
    }
}

/// A task to submit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTask {
    /// The task's text.
    pub task: String,
    /// What runs it.
    pub target: Target,
    /// A key that makes submitting twice submit once.
    pub idempotency_key: Option<String>,
    /// Free-form JSON kept with the task.
    pub metadata: serde_json::Value,
    /// Providers the target needs; workers that cannot use one of them do not lease the task.
    pub needs: Vec<String>,
    /// Higher first; equal priorities in submission order.
    pub priority: i32,
    /// Attempts before the task is dead-lettered.
    pub max_attempts: u32,
}

impl NewTask {
    /// A task with no key, no metadata, no needs, priority 0 and 5 attempts.
    pub fn new(task: impl Into<String>, target: Target) -> Self {
        Self {
            task: task.into(),
            target,
            idempotency_key: None,
            metadata: serde_json::json!({}),
            needs: Vec::new(),
            priority: 0,
            max_attempts: 5,
        }
    }
}

/// Where a task is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Waiting to be leased (possibly not before a retry delay).
    Pending,
    /// Held by a worker until its lease expires.
    Leased,
    /// Finished with a result.
    Done,
    /// Failed in a way retrying cannot fix.
    Failed,
    /// Failed on every allowed attempt.
    Dead,
    /// Cancelled before it finished.
    Cancelled,
}

impl TaskState {
    /// Every state, in life order.
    pub const ALL: [TaskState; 6] = [
        TaskState::Pending,
        TaskState::Leased,
        TaskState::Done,
        TaskState::Failed,
        TaskState::Dead,
        TaskState::Cancelled,
    ];

    /// The name stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Leased => "leased",
            TaskState::Done => "done",
            TaskState::Failed => "failed",
            TaskState::Dead => "dead",
            TaskState::Cancelled => "cancelled",
        }
    }

    /// Parses a stored or typed name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == name)
    }

    /// Whether nothing more will happen to the task.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TaskState::Done | TaskState::Failed | TaskState::Dead | TaskState::Cancelled
        )
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A task as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskRecord {
    /// Its id.
    pub id: String,
    /// The task's text.
    pub task: String,
    /// What runs it.
    pub target: Target,
    /// Its idempotency key.
    pub idempotency_key: Option<String>,
    /// Its metadata.
    pub metadata: serde_json::Value,
    /// Providers it needs.
    pub needs: Vec<String>,
    /// Its priority.
    pub priority: i32,
    /// Where it is.
    pub state: TaskState,
    /// Attempts so far (a released attempt does not count).
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// The worker holding or last holding it.
    pub leased_by: Option<String>,
    /// The result, once done.
    pub output: Option<String>,
    /// The kind of the last error (`auth-rejected`, `server`, `lease-expired`, ...).
    pub error_kind: Option<String>,
    /// The last error.
    pub error: Option<String>,
    /// When it was submitted, in milliseconds since the Unix epoch (the database's clock).
    pub created_at: i64,
    /// When it last changed.
    pub updated_at: i64,
    /// When it finished, if it has.
    pub finished_at: Option<i64>,
}

/// A task held by a worker: proof of the lease, needed to renew, ack, fail or release it.
#[derive(Clone, Debug, PartialEq)]
pub struct Lease {
    /// The task.
    pub record: TaskRecord,
    /// The lease's token: unique to this task and attempt.
    pub token: String,
    /// Which attempt this is, from 1.
    pub attempt: u32,
    /// When the lease ends unless renewed (the database's clock, ms since the epoch).
    pub expires_at: i64,
}

/// Which tasks a worker may lease.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseFilter {
    /// Leave tasks that need any of these providers (quarantined ones, say) to others.
    pub exclude_providers: Vec<String>,
}

/// Submitting one task: its id, and whether it was new (false when the key existed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Submitted {
    /// The task's id.
    pub id: String,
    /// Whether this submission created it.
    pub created: bool,
}

/// Counts per state, and how long the oldest pending task has waited.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct QueueStats {
    /// Waiting.
    pub pending: u64,
    /// Held by workers.
    pub leased: u64,
    /// Finished with a result.
    pub done: u64,
    /// Failed for good.
    pub failed: u64,
    /// Dead-lettered.
    pub dead: u64,
    /// Cancelled.
    pub cancelled: u64,
    /// Milliseconds the oldest pending task has waited.
    pub oldest_pending_ms: Option<i64>,
}

impl QueueStats {
    pub(crate) fn add(&mut self, state: TaskState, count: u64) {
        match state {
            TaskState::Pending => self.pending += count,
            TaskState::Leased => self.leased += count,
            TaskState::Done => self.done += count,
            TaskState::Failed => self.failed += count,
            TaskState::Dead => self.dead += count,
            TaskState::Cancelled => self.cancelled += count,
        }
    }
}

/// How a failed attempt is retried: exponential backoff with jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryBackoff {
    /// The ceiling of the first delay.
    pub base: Duration,
    /// The largest delay.
    pub max: Duration,
}

impl Default for RetryBackoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
        }
    }
}

impl RetryBackoff {
    /// The delay after attempt `attempt` failed: between half and all of the doubled ceiling.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1 << attempt.saturating_sub(1).min(20))
            .min(self.max);
        ceiling.mul_f64(0.5 + fastrand::f64() * 0.5)
    }
}

/// Stored form of the needs list: `,a,b,`, so a provider matches as `%,name,%`.
pub(crate) fn encode_needs(needs: &[String]) -> String {
    let mut sorted: Vec<&str> = needs.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    format!(",{},", sorted.join(","))
}

pub(crate) fn decode_needs(stored: &str) -> Vec<String> {
    stored
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A `LIKE` pattern matching a needs column that contains `provider`.
pub(crate) fn needs_pattern(provider: &str) -> String {
    let escaped = provider
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%,{escaped},%")
}

/// Lease duration in whole milliseconds, at least 1.
pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis())
        .unwrap_or(i64::MAX)
        .max(1)
}

/// A worker as it reports itself in the registry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerReport {
    /// Unique within the fleet.
    pub name: String,
    /// The machine it runs on.
    pub host: String,
    /// Its process id there.
    pub pid: u32,
    /// How often it heartbeats; three missed beats make it `gone`.
    pub heartbeat_ms: i64,
    /// `starting`, `healthy`, `quarantined` or `draining`, as the worker says.
    pub state: String,
    /// Why it is not healthy.
    pub reason: Option<String>,
    /// Tasks it is running now.
    pub in_flight: u64,
    /// Tasks it finished.
    pub done: u64,
    /// Task attempts that failed on it.
    pub failed: u64,
    /// Per provider: source, fingerprint and generation of the credential it holds.
    pub credentials: serde_json::Value,
    /// Which rollout of its supervisor started it (1 for the first); `None` for a worker
    /// started on its own.
    pub generation: Option<u64>,
}

/// A worker as the registry shows it, with `gone` decided by the database's clock.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorkerRecord {
    /// What it last reported.
    #[serde(flatten)]
    pub report: WorkerReport,
    /// When it registered (ms since the epoch, database clock).
    pub started_at: i64,
    /// Its last heartbeat.
    pub last_heartbeat: i64,
    /// Whether it missed three heartbeats: it vanished without deregistering.
    pub gone: bool,
}
