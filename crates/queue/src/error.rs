//! Queue errors, normalised across backends into kinds a caller can act on.

/// What went wrong with a queue operation.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The URL is not one the queue understands.
    #[error("queue url {url}: {reason}")]
    InvalidUrl {
        /// The URL, password masked.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The database cannot be reached now; the call may succeed later.
    #[error("the queue database at {url} cannot be reached: {reason}")]
    Unavailable {
        /// The URL, password masked.
        url: String,
        /// Why, as the driver says (never with the password).
        reason: String,
    },
    /// The lease was lost: it expired, or the task was cancelled or is held by another worker.
    #[error(
        "the lease on task {task} is no longer held (it expired, or the task was cancelled or re-leased)"
    )]
    LeaseLost {
        /// The task.
        task: String,
    },
    /// No task has that id.
    #[error("no task {id}")]
    NotFound {
        /// The id.
        id: String,
    },
    /// The task has finished and cannot change.
    #[error("task {id} is already {state}")]
    AlreadyFinished {
        /// The id.
        id: String,
        /// Its final state.
        state: String,
    },
    /// The database refused an operation.
    #[error("the queue database refused the operation: {0}")]
    Database(String),
}

impl QueueError {
    /// Whether the same call may succeed later.
    pub fn is_transient(&self) -> bool {
        matches!(self, QueueError::Unavailable { .. })
    }
}

/// Normalises a driver error. `url` is already masked.
pub(crate) fn from_sqlx(url: &str, error: sqlx::Error) -> QueueError {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => QueueError::Unavailable {
            url: url.to_owned(),
            reason: error.to_string(),
        },
        sqlx::Error::Database(database) => {
            // SQLite's busy and locked, PostgreSQL's shutdown and connection errors are transient.
            let code = database.code().map(|c| c.to_string()).unwrap_or_default();
            let transient = matches!(
                code.as_str(),
                "5" | "6" | "517" | "57P01" | "57P02" | "57P03" | "08000" | "08003" | "08006"
            );
            if transient {
                QueueError::Unavailable {
                    url: url.to_owned(),
                    reason: database.message().to_owned(),
                }
            } else {
                QueueError::Database(database.message().to_owned())
            }
        }
        other => QueueError::Database(other.to_string()),
    }
}
