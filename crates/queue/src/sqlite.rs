//! The SQLite backend: one file on one machine, nothing to install.
//!
//! WAL mode lets readers work beside the one writer, and a busy timeout makes concurrent
//! writers (several worker processes on one machine) wait their turn instead of failing. A
//! lease is one `UPDATE ... RETURNING`, which SQLite runs under its write lock, so no task is
//! handed to two workers. Idle workers poll: SQLite cannot signal another process.

use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::error::{QueueError, from_sqlx};
use crate::operations::operations;
use crate::sql::{Dialect, READ_SCHEMA_VERSION, SCHEMA_VERSION, Statements, schema, upgrades};
use crate::url::mask;

/// How often an idle worker looks again.
const POLL: Duration = Duration::from_millis(10);

/// A queue in a SQLite file.
#[derive(Debug)]
pub struct SqliteQueue {
    pool: SqlitePool,
    url: String,
    sql: Statements,
    last_sweep: Mutex<Option<Instant>>,
}

impl SqliteQueue {
    /// Opens (creating if absent) the database at `url` and brings its schema up to date.
    ///
    /// Processes opening a new file at the same moment can meet SQLite's lock where its busy
    /// timeout does not apply (switching the journal to WAL), so a busy open is tried again a
    /// few times before it is reported.
    pub async fn connect(url: &str) -> Result<Self, QueueError> {
        let mut attempt = 0u32;
        loop {
            match Self::open(url).await {
                Err(QueueError::Unavailable { reason, .. })
                    if attempt < 20 && reason.contains("locked") =>
                {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(25 * u64::from(attempt))).await;
                }
                opened => return opened,
            }
        }
    }

    async fn open(url: &str) -> Result<Self, QueueError> {
        let masked = mask(url);
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|error| QueueError::InvalidUrl {
                url: masked.clone(),
                reason: error.to_string(),
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30));
        // An in-memory database exists per connection: keep to one.
        let connections = if url.contains(":memory:") { 1 } else { 8 };
        let pool = SqlitePoolOptions::new()
            .max_connections(connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(|error| from_sqlx(&masked, error))?;
        let queue = Self {
            pool,
            url: masked,
            sql: Statements::new(Dialect::Sqlite),
            last_sweep: Mutex::new(None),
        };
        queue.migrate().await?;
        Ok(queue)
    }

    /// Creates or upgrades the schema under SQLite's write lock, so processes starting together
    /// take turns.
    async fn migrate(&self) -> Result<(), QueueError> {
        let mut connection = self.pool.acquire().await.map_err(|e| self.fail_with(e))?;
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *connection)
            .await
            .map_err(|e| self.fail_with(e))?;
        let result = async {
            let schema = schema(Dialect::Sqlite);
            sqlx::query(sqlx::AssertSqlSafe(schema[0].clone())).execute(&mut *connection).await?;
            let version: Option<String> = sqlx::query_scalar(READ_SCHEMA_VERSION)
                .fetch_optional(&mut *connection)
                .await?;
            let version = version.and_then(|v| v.parse().ok());
            for statement in upgrades(version).into_iter().chain(schema) {
                sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&mut *connection).await?;
            }
            sqlx::query("INSERT INTO af_meta (name, value) VALUES ('schema_version', $1) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
                .bind(SCHEMA_VERSION.to_string())
                .execute(&mut *connection)
                .await?;
            Ok::<(), sqlx::Error>(())
        }
        .await;
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        let ended = sqlx::query(sqlx::AssertSqlSafe(end))
            .execute(&mut *connection)
            .await;
        result.and(ended.map(|_| ())).map_err(|e| self.fail_with(e))
    }

    /// Submits tasks in one transaction; a task whose idempotency key exists is not submitted
    /// again, and its existing id is returned.
    pub async fn submit_many(
        &self,
        tasks: &[crate::NewTask],
    ) -> Result<Vec<crate::Submitted>, QueueError> {
        self.submit_each(tasks).await
    }

    /// Nothing to do: other processes find new work by polling.
    async fn notify(&self) {}

    /// Waits a little before an idle worker leases again.
    pub async fn wait_for_work(&self, timeout: Duration) {
        tokio::time::sleep(timeout.min(POLL)).await;
    }

    /// Records many results in one transaction: one commit for all of them. Each result is
    /// `Err(LeaseLost)` for a lease no longer held, as `ack` would say.
    pub async fn ack_many(
        &self,
        acks: &[(&crate::Lease, &str)],
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        let mut transaction = self.pool.begin().await.map_err(|e| self.fail_with(e))?;
        let mut results = Vec::with_capacity(acks.len());
        for (lease, output) in acks {
            let done = sqlx::query(sqlx::AssertSqlSafe(self.sql.ack.clone()))
                .bind(lease.token.clone())
                .bind((*output).to_owned())
                .execute(&mut *transaction)
                .await
                .map_err(|e| self.fail_with(e))?;
            results.push(if done.rows_affected() == 1 {
                Ok(())
            } else {
                Err(QueueError::LeaseLost {
                    task: lease.record.id.clone(),
                })
            });
        }
        transaction.commit().await.map_err(|e| self.fail_with(e))?;
        Ok(results)
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

operations!(SqliteQueue, sqlx::Sqlite);
