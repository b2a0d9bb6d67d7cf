//! The PostgreSQL backend: one database shared by workers on many machines.
//!
//! A lease selects with `FOR UPDATE SKIP LOCKED`, so concurrent leasers never wait on or take
//! each other's rows. Submissions and releases `NOTIFY`, and idle workers `LISTEN`, so they wake
//! within milliseconds of new work instead of polling.

use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::ConnectOptions;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};

use crate::error::{QueueError, from_sqlx};
use crate::operations::operations;
use crate::sql::{Dialect, SCHEMA_VERSION, Statements, schema};
use crate::url::mask;

/// The channel new work is announced on.
const CHANNEL: &str = "af_tasks";

/// The advisory lock that serializes schema changes between processes.
const MIGRATION_LOCK: i64 = 0x6166_7175_6575_65; // "afqueue"

/// A queue in a PostgreSQL database.
#[derive(Debug)]
pub struct PgQueue {
    pool: PgPool,
    url: String,
    sql: Statements,
    last_sweep: Mutex<Option<Instant>>,
    listener: tokio::sync::Mutex<Option<PgListener>>,
}

impl PgQueue {
    /// Connects to `url` and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Self, QueueError> {
        let masked = mask(url);
        let options = PgConnectOptions::from_str(url).map_err(|error| QueueError::InvalidUrl {
            url: masked.clone(),
            reason: error.to_string(),
        })?;
        // One direct connection first: a pool would retry a refused connection until its
        // timeout and then report only that it timed out, hiding the reason.
        let probe = tokio::time::timeout(Duration::from_secs(10), options.connect())
            .await
            .map_err(|_| QueueError::Unavailable {
                url: masked.clone(),
                reason: "no answer within 10 s".to_owned(),
            })?
            .map_err(|error| from_sqlx(&masked, error))?;
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|error| from_sqlx(&masked, error))?;
        let queue = Self {
            pool,
            url: masked,
            sql: Statements::new(Dialect::Postgres),
            last_sweep: Mutex::new(None),
            listener: tokio::sync::Mutex::new(None),
        };
        queue.migrate().await?;
        Ok(queue)
    }

    /// Creates or upgrades the schema under an advisory lock, so processes starting together
    /// take turns.
    async fn migrate(&self) -> Result<(), QueueError> {
        let mut transaction = self.pool.begin().await.map_err(|e| self.fail_with(e))?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *transaction)
            .await
            .map_err(|e| self.fail_with(e))?;
        for statement in schema(Dialect::Postgres) {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&mut *transaction)
                .await
                .map_err(|e| self.fail_with(e))?;
        }
        sqlx::query("INSERT INTO af_meta (name, value) VALUES ('schema_version', $1) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
            .bind(SCHEMA_VERSION.to_string())
            .execute(&mut *transaction)
            .await
            .map_err(|e| self.fail_with(e))?;
        transaction.commit().await.map_err(|e| self.fail_with(e))
    }

    /// Announces new work to idle workers. A lost notification only delays pickup until the
    /// next wait times out, so failures here are ignored.
    async fn notify(&self) {
        let _ = sqlx::query("SELECT pg_notify($1, '')")
            .bind(CHANNEL)
            .execute(&self.pool)
            .await;
    }

    /// Waits until new work is announced or `timeout` passes. The listening connection stays
    /// open between calls, so work announced while the worker was busy wakes it at once.
    pub async fn wait_for_work(&self, timeout: Duration) {
        let mut listener = self.listener.lock().await;
        if listener.is_none() {
            match PgListener::connect_with(&self.pool).await {
                Ok(mut fresh) => {
                    if fresh.listen(CHANNEL).await.is_ok() {
                        *listener = Some(fresh);
                    }
                }
                Err(_) => {
                    // The database is away: wait, and let the next lease report it.
                    tokio::time::sleep(timeout).await;
                    return;
                }
            }
        }
        let Some(active) = listener.as_mut() else {
            tokio::time::sleep(timeout).await;
            return;
        };
        match tokio::time::timeout(timeout, active.try_recv()).await {
            Ok(Ok(Some(_))) | Err(_) => {}
            // The connection dropped: start over next time.
            Ok(Ok(None)) | Ok(Err(_)) => *listener = None,
        }
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

operations!(PgQueue, sqlx::Postgres);
