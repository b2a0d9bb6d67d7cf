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
use crate::sql::{Dialect, READ_SCHEMA_VERSION, SCHEMA_VERSION, Statements, schema, upgrades};
use crate::url::mask;

/// The channel new work is announced on.
const CHANNEL: &str = "af_tasks";

/// The advisory lock that serializes schema changes between processes.
const MIGRATION_LOCK: i64 = 0x0061_6671_7565_7565; // "afqueue" in ASCII

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
        let schema = schema(Dialect::Postgres);
        sqlx::query(sqlx::AssertSqlSafe(schema[0].clone()))
            .execute(&mut *transaction)
            .await
            .map_err(|e| self.fail_with(e))?;
        let version: Option<String> = sqlx::query_scalar(READ_SCHEMA_VERSION)
            .fetch_optional(&mut *transaction)
            .await
            .map_err(|e| self.fail_with(e))?;
        let version = version.and_then(|v| v.parse().ok());
        for statement in upgrades(version).into_iter().chain(schema) {
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

    /// Submits tasks in one statement, in order; a task whose idempotency key exists is not
    /// submitted again, and its existing id is returned.
    pub async fn submit_many(
        &self,
        tasks: &[crate::NewTask],
    ) -> Result<Vec<crate::Submitted>, QueueError> {
        // A key repeated within one call resolves to its first task: the one-by-one path does it.
        let mut keys = std::collections::HashSet::new();
        if tasks
            .iter()
            .filter_map(|t| t.idempotency_key.as_ref())
            .any(|key| !keys.insert(key))
        {
            return self.submit_each(tasks).await;
        }
        let ids: Vec<String> = tasks
            .iter()
            .map(|_| uuid::Uuid::now_v7().to_string())
            .collect();
        let column = |f: &dyn Fn(&crate::NewTask) -> String| -> Vec<String> {
            tasks.iter().map(f).collect()
        };
        let mut transaction = self.pool.begin().await.map_err(|e| self.fail_with(e))?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(self.sql.submit_many.clone()))
            .bind(ids.clone())
            .bind(
                tasks
                    .iter()
                    .map(|t| t.idempotency_key.clone())
                    .collect::<Vec<Option<String>>>(),
            )
            .bind(column(&|t| t.target.kind().to_owned()))
            .bind(column(&|t| t.target.name().to_owned()))
            .bind(column(&|t| t.task.clone()))
            .bind(column(&|t| t.metadata.to_string()))
            .bind(column(&|t| crate::model::encode_needs(&t.needs)))
            .bind(
                tasks
                    .iter()
                    .map(|t| i64::from(t.priority))
                    .collect::<Vec<i64>>(),
            )
            .bind(
                tasks
                    .iter()
                    .map(|t| i64::from(t.max_attempts.max(1)))
                    .collect::<Vec<i64>>(),
            )
            .fetch_all(&mut *transaction)
            .await
            .map_err(|e| self.fail_with(e))?;
        let inserted: std::collections::HashSet<String> = rows
            .iter()
            .filter_map(|row| sqlx::Row::try_get::<String, _>(row, 0).ok())
            .collect();
        let mut submitted = Vec::with_capacity(tasks.len());
        for (task, id) in tasks.iter().zip(ids) {
            if inserted.contains(&id) {
                submitted.push(crate::Submitted { id, created: true });
                continue;
            }
            let row = sqlx::query(sqlx::AssertSqlSafe(self.sql.find_by_key.clone()))
                .bind(task.idempotency_key.clone())
                .fetch_one(&mut *transaction)
                .await
                .map_err(|e| self.fail_with(e))?;
            let id = sqlx::Row::try_get::<String, _>(&row, 0).map_err(|e| self.fail_with(e))?;
            submitted.push(crate::Submitted { id, created: false });
        }
        transaction.commit().await.map_err(|e| self.fail_with(e))?;
        self.notify().await;
        Ok(submitted)
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

    /// Records many results in one statement: one commit for all of them. Each result is
    /// `Err(LeaseLost)` for a lease no longer held, as `ack` would say.
    pub async fn ack_many(
        &self,
        acks: &[(&crate::Lease, &str)],
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        let tokens: Vec<String> = acks.iter().map(|(lease, _)| lease.token.clone()).collect();
        let outputs: Vec<String> = acks
            .iter()
            .map(|(_, output)| (*output).to_owned())
            .collect();
        let rows = sqlx::query(sqlx::AssertSqlSafe(self.sql.ack_many.clone()))
            .bind(tokens)
            .bind(outputs)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.fail_with(e))?;
        let acked: std::collections::HashSet<String> = rows
            .iter()
            .filter_map(|row| sqlx::Row::try_get::<String, _>(row, 0).ok())
            .collect();
        Ok(acks
            .iter()
            .map(|(lease, _)| {
                if acked.contains(&lease.token) {
                    Ok(())
                } else {
                    Err(QueueError::LeaseLost {
                        task: lease.record.id.clone(),
                    })
                }
            })
            .collect())
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

operations!(PgQueue, sqlx::Postgres);
