//! agentfleet's durable task queue: SQLite embedded by default, PostgreSQL when workers span
//! machines, with the same semantics on both.
//!
//! - A lease has a visibility timeout computed by the database's clock; the holder renews it
//!   while it works; an expired lease makes the task available again.
//! - An ack records the result exactly once: a late ack from a holder whose lease expired is
//!   refused, even if the task was delivered twice.
//! - A failed attempt is retried with exponential backoff and jitter up to a maximum, then
//!   dead-lettered; a release gives the task back at once without counting the attempt (the
//!   worker, not the task, was at fault).
//! - Workers lease only tasks whose providers they can use; submit is idempotent by key; order
//!   is first in, first out within a priority.
//!
//! The URL's password never appears in an error or output: [`url::mask`] stands in for it.

mod error;
mod model;
mod operations;
mod postgres;
mod sql;
mod sqlite;
pub mod url;

use std::time::Duration;

pub use error::QueueError;
pub use model::{
    Lease, LeaseFilter, NewTask, QueueStats, RetryBackoff, Submitted, Target, TaskRecord,
    TaskState, WorkerRecord, WorkerReport,
};
pub use postgres::PgQueue;
pub use sqlite::SqliteQueue;
pub use url::{Backend, mask};

/// A queue on one of the backends.
#[derive(Debug)]
pub enum Queue {
    /// A SQLite file.
    Sqlite(SqliteQueue),
    /// A PostgreSQL database.
    Postgres(PgQueue),
}

/// Calls the same method on whichever backend this is.
macro_rules! delegate {
    ($self:ident, $queue:ident => $call:expr) => {
        match $self {
            Queue::Sqlite($queue) => $call,
            Queue::Postgres($queue) => $call,
        }
    };
}

impl Queue {
    /// Connects to `url` (`sqlite://PATH` or `postgres://...`), creating or upgrading the schema.
    pub async fn connect(url: &str) -> Result<Self, QueueError> {
        Ok(match url::backend(url)? {
            Backend::Sqlite => Queue::Sqlite(SqliteQueue::connect(url).await?),
            Backend::Postgres => Queue::Postgres(PgQueue::connect(url).await?),
        })
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        match self {
            Queue::Sqlite(_) => Backend::Sqlite,
            Queue::Postgres(_) => Backend::Postgres,
        }
    }

    /// The database's clock, in milliseconds since the epoch.
    pub async fn now(&self) -> Result<i64, QueueError> {
        delegate!(self, queue => queue.now().await)
    }

    /// Submits one task.
    pub async fn submit(&self, task: NewTask) -> Result<Submitted, QueueError> {
        let mut submitted = self.submit_many(std::slice::from_ref(&task)).await?;
        Ok(submitted.remove(0))
    }

    /// Submits tasks together: all of them or, on error, none.
    pub async fn submit_many(&self, tasks: &[NewTask]) -> Result<Vec<Submitted>, QueueError> {
        delegate!(self, queue => queue.submit_many(tasks).await)
    }

    /// Leases up to `batch` tasks for `lease` each.
    pub async fn lease(
        &self,
        worker: &str,
        lease: Duration,
        batch: u32,
        filter: &LeaseFilter,
    ) -> Result<Vec<Lease>, QueueError> {
        delegate!(self, queue => queue.lease(worker, lease, batch, filter).await)
    }

    /// Extends a held lease; returns the new expiry.
    pub async fn renew(&self, lease: &Lease, duration: Duration) -> Result<i64, QueueError> {
        delegate!(self, queue => queue.renew(lease, duration).await)
    }

    /// Records a held task's result.
    pub async fn ack(&self, lease: &Lease, output: &str) -> Result<(), QueueError> {
        delegate!(self, queue => queue.ack(lease, output).await)
    }

    /// Records many held tasks' results with one commit. Each result is what `ack` would say
    /// for that lease.
    pub async fn ack_many(
        &self,
        acks: &[(&Lease, &str)],
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        delegate!(self, queue => queue.ack_many(acks).await)
    }

    /// Records a failed attempt; returns the task's new state.
    pub async fn fail(
        &self,
        lease: &Lease,
        kind: &str,
        message: &str,
        retryable: bool,
        backoff: &RetryBackoff,
    ) -> Result<TaskState, QueueError> {
        delegate!(self, queue => queue.fail(lease, kind, message, retryable, backoff).await)
    }

    /// Gives a held task back without counting the attempt.
    pub async fn release(&self, lease: &Lease, kind: &str, reason: &str) -> Result<(), QueueError> {
        delegate!(self, queue => queue.release(lease, kind, reason).await)
    }

    /// Cancels a task that has not finished.
    pub async fn cancel(&self, id: &str) -> Result<(), QueueError> {
        delegate!(self, queue => queue.cancel(id).await)
    }

    /// One task.
    pub async fn get(&self, id: &str) -> Result<TaskRecord, QueueError> {
        delegate!(self, queue => queue.get(id).await)
    }

    /// The most recent tasks, newest first.
    pub async fn list(
        &self,
        state: Option<TaskState>,
        limit: u32,
    ) -> Result<Vec<TaskRecord>, QueueError> {
        delegate!(self, queue => queue.list(state, limit).await)
    }

    /// Counts per state.
    pub async fn stats(&self) -> Result<QueueStats, QueueError> {
        delegate!(self, queue => queue.stats().await)
    }

    /// Registers a worker, or records its heartbeat.
    pub async fn report_worker(&self, report: &WorkerReport) -> Result<(), QueueError> {
        delegate!(self, queue => queue.report_worker(report).await)
    }

    /// Removes a worker that stopped cleanly.
    pub async fn deregister_worker(&self, name: &str) -> Result<(), QueueError> {
        delegate!(self, queue => queue.deregister_worker(name).await)
    }

    /// Every registered worker, with `gone` marked.
    pub async fn workers(&self) -> Result<Vec<WorkerRecord>, QueueError> {
        delegate!(self, queue => queue.workers().await)
    }

    /// Waits for new work (PostgreSQL: a notification; SQLite: a short poll) or `timeout`.
    pub async fn wait_for_work(&self, timeout: Duration) {
        delegate!(self, queue => queue.wait_for_work(timeout).await)
    }

    /// Closes the connections.
    pub async fn close(&self) {
        delegate!(self, queue => queue.close().await)
    }
}
