//! The queue operations, written once and instantiated for each backend by `operations!`.
//!
//! Each backend module supplies its pool, `notify` (wake idle workers) and the connection and
//! migration code; everything a task goes through (submit, lease, renew, ack, fail, release,
//! cancel, list, stats) is this one text, so both backends have the same semantics by
//! construction, and the conformance suite checks them anyway.

use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::model::{Target, TaskRecord, TaskState, decode_needs};

/// Decodes a row selected with `sql::COLUMNS`: the record, its lease token and lease expiry.
pub(crate) fn record<'r, R>(
    row: &'r R,
) -> Result<(TaskRecord, Option<String>, Option<i64>), sqlx::Error>
where
    R: Row,
    usize: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let text = |index: usize| row.try_get::<String, _>(index);
    let optional_text = |index: usize| row.try_get::<Option<String>, _>(index);
    let number = |index: usize| row.try_get::<i64, _>(index);
    let state_name = text(8)?;
    let state = TaskState::from_name(&state_name)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown task state {state_name}").into()))?;
    let record = TaskRecord {
        id: text(0)?,
        task: text(1)?,
        target: Target::from_parts(&text(2)?, text(3)?),
        idempotency_key: optional_text(4)?,
        metadata: serde_json::from_str(&text(5)?).unwrap_or(serde_json::Value::Null),
        needs: decode_needs(&text(6)?),
        priority: i32::try_from(number(7)?).unwrap_or_default(),
        state,
        attempts: u32::try_from(number(9)?).unwrap_or_default(),
        max_attempts: u32::try_from(number(10)?).unwrap_or_default(),
        leased_by: optional_text(11)?,
        output: optional_text(12)?,
        error_kind: optional_text(13)?,
        error: optional_text(14)?,
        created_at: number(15)?,
        updated_at: number(16)?,
        finished_at: row.try_get::<Option<i64>, _>(17)?,
    };
    Ok((
        record,
        optional_text(18)?,
        row.try_get::<Option<i64>, _>(19)?,
    ))
}

/// Implements the queue operations on `$queue`, whose `pool` is a pool of `$db`.
macro_rules! operations {
    ($queue:ident, $db:ty) => {
        impl $queue {
            fn query(
                sql: &std::sync::Arc<str>,
            ) -> sqlx::query::Query<'static, $db, <$db as sqlx::Database>::Arguments> {
                sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            }

            fn fail_with(&self, error: sqlx::Error) -> $crate::QueueError {
                $crate::error::from_sqlx(&self.url, error)
            }

            /// The database's clock, in milliseconds since the epoch.
            pub async fn now(&self) -> Result<i64, $crate::QueueError> {
                let row = Self::query(&self.sql.now)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| self.fail_with(e))?;
                sqlx::Row::try_get::<i64, _>(&row, 0).map_err(|e| self.fail_with(e))
            }

            /// Submits tasks one statement each, in one transaction; a task whose idempotency key
            /// exists is not submitted again, and its existing id is returned.
            async fn submit_each(
                &self,
                tasks: &[$crate::NewTask],
            ) -> Result<Vec<$crate::Submitted>, $crate::QueueError> {
                let mut transaction = self.pool.begin().await.map_err(|e| self.fail_with(e))?;
                let mut submitted = Vec::with_capacity(tasks.len());
                for task in tasks {
                    let id = uuid::Uuid::now_v7().to_string();
                    let inserted = Self::query(&self.sql.submit)
                        .bind(id)
                        .bind(task.idempotency_key.clone())
                        .bind(task.target.kind())
                        .bind(task.target.name().to_owned())
                        .bind(task.task.clone())
                        .bind(task.metadata.to_string())
                        .bind($crate::model::encode_needs(&task.needs))
                        .bind(i64::from(task.priority))
                        .bind(i64::from(task.max_attempts.max(1)))
                        .fetch_optional(&mut *transaction)
                        .await
                        .map_err(|e| self.fail_with(e))?;
                    let (id, created) = match inserted {
                        Some(row) => (
                            sqlx::Row::try_get::<String, _>(&row, 0)
                                .map_err(|e| self.fail_with(e))?,
                            true,
                        ),
                        None => {
                            let row = Self::query(&self.sql.find_by_key)
                                .bind(task.idempotency_key.clone())
                                .fetch_one(&mut *transaction)
                                .await
                                .map_err(|e| self.fail_with(e))?;
                            (
                                sqlx::Row::try_get::<String, _>(&row, 0)
                                    .map_err(|e| self.fail_with(e))?,
                                false,
                            )
                        }
                    };
                    submitted.push($crate::Submitted { id, created });
                }
                transaction.commit().await.map_err(|e| self.fail_with(e))?;
                self.notify().await;
                Ok(submitted)
            }

            /// Leases up to `batch` available tasks for `lease` each: pending ones whose retry
            /// delay has passed, and leased ones whose lease expired, highest priority first and
            /// first in, first out within a priority, skipping tasks that need an excluded
            /// provider. Each leased task's attempt count grows by one.
            pub async fn lease(
                &self,
                worker: &str,
                lease: std::time::Duration,
                batch: u32,
                filter: &$crate::LeaseFilter,
            ) -> Result<Vec<$crate::Lease>, $crate::QueueError> {
                self.sweep_if_due().await?;
                let sql = self.sql.lease(filter.exclude_providers.len());
                let mut query = Self::query(&sql)
                    .bind(uuid::Uuid::now_v7().simple().to_string())
                    .bind(worker.to_owned())
                    .bind($crate::model::millis(lease))
                    .bind(i64::from(batch.max(1)));
                for provider in &filter.exclude_providers {
                    query = query.bind($crate::model::needs_pattern(provider));
                }
                let rows = query
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| self.fail_with(e))?;
                let mut leases = Vec::with_capacity(rows.len());
                for row in &rows {
                    let (record, token, expires_at) =
                        $crate::operations::record(row).map_err(|e| self.fail_with(e))?;
                    leases.push($crate::Lease {
                        attempt: record.attempts,
                        token: token.unwrap_or_default(),
                        expires_at: expires_at.unwrap_or_default(),
                        record,
                    });
                }
                leases.sort_by(|a, b| {
                    b.record
                        .priority
                        .cmp(&a.record.priority)
                        .then_with(|| a.record.id.cmp(&b.record.id))
                });
                Ok(leases)
            }

            /// Extends a lease the worker still holds; returns the new expiry.
            pub async fn renew(
                &self,
                lease: &$crate::Lease,
                duration: std::time::Duration,
            ) -> Result<i64, $crate::QueueError> {
                let row = Self::query(&self.sql.renew)
                    .bind(lease.token.clone())
                    .bind($crate::model::millis(duration))
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| self.fail_with(e))?;
                match row {
                    Some(row) => {
                        sqlx::Row::try_get::<i64, _>(&row, 0).map_err(|e| self.fail_with(e))
                    }
                    None => Err($crate::QueueError::LeaseLost {
                        task: lease.record.id.clone(),
                    }),
                }
            }

            /// Records the result. Refused when the lease is no longer held, so a task delivered
            /// twice has its result recorded once.
            pub async fn ack(
                &self,
                lease: &$crate::Lease,
                output: &str,
            ) -> Result<(), $crate::QueueError> {
                let done = Self::query(&self.sql.ack)
                    .bind(lease.token.clone())
                    .bind(output.to_owned())
                    .execute(&self.pool)
                    .await
                    .map_err(|e| self.fail_with(e))?;
                if done.rows_affected() == 1 {
                    Ok(())
                } else {
                    Err($crate::QueueError::LeaseLost {
                        task: lease.record.id.clone(),
                    })
                }
            }

            /// Records a failed attempt. A retryable failure makes the task pending again after
            /// `backoff`'s delay while attempts remain, and dead after the last; any other
            /// failure is final. Returns the task's new state.
            pub async fn fail(
                &self,
                lease: &$crate::Lease,
                kind: &str,
                message: &str,
                retryable: bool,
                backoff: &$crate::RetryBackoff,
            ) -> Result<$crate::TaskState, $crate::QueueError> {
                let row = Self::query(&self.sql.fail)
                    .bind(lease.token.clone())
                    .bind($crate::model::millis(backoff.delay(lease.attempt)))
                    .bind(i64::from(retryable))
                    .bind(kind.to_owned())
                    .bind(message.to_owned())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| self.fail_with(e))?;
                let Some(row) = row else {
                    return Err($crate::QueueError::LeaseLost {
                        task: lease.record.id.clone(),
                    });
                };
                let state: String = sqlx::Row::try_get(&row, 0).map_err(|e| self.fail_with(e))?;
                let state =
                    $crate::TaskState::from_name(&state).unwrap_or($crate::TaskState::Failed);
                if state == $crate::TaskState::Pending {
                    self.notify().await;
                }
                Ok(state)
            }

            /// Gives a task back at once without counting the attempt: the worker, not the task,
            /// is at fault (its credential was refused, or it is stopping). `reason` is kept as
            /// the task's last error.
            pub async fn release(
                &self,
                lease: &$crate::Lease,
                kind: &str,
                reason: &str,
            ) -> Result<(), $crate::QueueError> {
                let released = Self::query(&self.sql.release)
                    .bind(lease.token.clone())
                    .bind(kind.to_owned())
                    .bind(reason.to_owned())
                    .execute(&self.pool)
                    .await
                    .map_err(|e| self.fail_with(e))?;
                if released.rows_affected() != 1 {
                    return Err($crate::QueueError::LeaseLost {
                        task: lease.record.id.clone(),
                    });
                }
                self.notify().await;
                Ok(())
            }

            /// Cancels a task that has not finished.
            pub async fn cancel(&self, id: &str) -> Result<(), $crate::QueueError> {
                let cancelled = Self::query(&self.sql.cancel)
                    .bind(id.to_owned())
                    .execute(&self.pool)
                    .await
                    .map_err(|e| self.fail_with(e))?;
                if cancelled.rows_affected() == 1 {
                    return Ok(());
                }
                let record = self.get(id).await?;
                Err($crate::QueueError::AlreadyFinished {
                    id: id.to_owned(),
                    state: record.state.to_string(),
                })
            }

            /// One task.
            pub async fn get(&self, id: &str) -> Result<$crate::TaskRecord, $crate::QueueError> {
                let row = Self::query(&self.sql.get)
                    .bind(id.to_owned())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| self.fail_with(e))?;
                match row {
                    Some(row) => $crate::operations::record(&row)
                        .map(|(record, _, _)| record)
                        .map_err(|e| self.fail_with(e)),
                    None => Err($crate::QueueError::NotFound { id: id.to_owned() }),
                }
            }

            /// The most recent tasks, newest first, optionally in one state.
            pub async fn list(
                &self,
                state: Option<$crate::TaskState>,
                limit: u32,
            ) -> Result<Vec<$crate::TaskRecord>, $crate::QueueError> {
                let rows = match state {
                    Some(state) => {
                        Self::query(&self.sql.list_state)
                            .bind(state.as_str())
                            .bind(i64::from(limit))
                            .fetch_all(&self.pool)
                            .await
                    }
                    None => {
                        Self::query(&self.sql.list)
                            .bind(i64::from(limit))
                            .fetch_all(&self.pool)
                            .await
                    }
                }
                .map_err(|e| self.fail_with(e))?;
                rows.iter()
                    .map(|row| {
                        $crate::operations::record(row)
                            .map(|(record, _, _)| record)
                            .map_err(|e| self.fail_with(e))
                    })
                    .collect()
            }

            /// Counts per state and the oldest pending task's age.
            pub async fn stats(&self) -> Result<$crate::QueueStats, $crate::QueueError> {
                let mut stats = $crate::QueueStats::default();
                let rows = Self::query(&self.sql.counts)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| self.fail_with(e))?;
                for row in &rows {
                    let state: String =
                        sqlx::Row::try_get(row, 0).map_err(|e| self.fail_with(e))?;
                    let count: i64 = sqlx::Row::try_get(row, 1).map_err(|e| self.fail_with(e))?;
                    if let Some(state) = $crate::TaskState::from_name(&state) {
                        stats.add(state, u64::try_from(count).unwrap_or_default());
                    }
                }
                let row = Self::query(&self.sql.oldest)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| self.fail_with(e))?;
                stats.oldest_pending_ms =
                    sqlx::Row::try_get::<Option<i64>, _>(&row, 0).map_err(|e| self.fail_with(e))?;
                Ok(stats)
            }

            /// Registers a worker, or records its heartbeat with what it reports now.
            pub async fn report_worker(
                &self,
                report: &$crate::WorkerReport,
            ) -> Result<(), $crate::QueueError> {
                Self::query(&self.sql.upsert_worker)
                    .bind(report.name.clone())
                    .bind(report.host.clone())
                    .bind(i64::from(report.pid))
                    .bind(report.heartbeat_ms)
                    .bind(report.state.clone())
                    .bind(report.reason.clone())
                    .bind(i64::try_from(report.in_flight).unwrap_or(i64::MAX))
                    .bind(i64::try_from(report.done).unwrap_or(i64::MAX))
                    .bind(i64::try_from(report.failed).unwrap_or(i64::MAX))
                    .bind(report.credentials.to_string())
                    .bind(
                        report
                            .generation
                            .map(|g| i64::try_from(g).unwrap_or(i64::MAX)),
                    )
                    .execute(&self.pool)
                    .await
                    .map_err(|e| self.fail_with(e))?;
                Ok(())
            }

            /// Removes a worker that stopped cleanly.
            pub async fn deregister_worker(&self, name: &str) -> Result<(), $crate::QueueError> {
                Self::query(&self.sql.delete_worker)
                    .bind(name.to_owned())
                    .execute(&self.pool)
                    .await
                    .map_err(|e| self.fail_with(e))?;
                Ok(())
            }

            /// Every registered worker; those that missed three heartbeats are marked gone.
            pub async fn workers(&self) -> Result<Vec<$crate::WorkerRecord>, $crate::QueueError> {
                let rows = Self::query(&self.sql.workers)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| self.fail_with(e))?;
                let mut workers = Vec::with_capacity(rows.len());
                for row in &rows {
                    let number = |index: usize| sqlx::Row::try_get::<i64, _>(row, index);
                    let text = |index: usize| sqlx::Row::try_get::<String, _>(row, index);
                    let decode = || -> Result<$crate::WorkerRecord, sqlx::Error> {
                        let heartbeat_ms = number(5)?;
                        let last_heartbeat = number(4)?;
                        let now = number(12)?;
                        Ok($crate::WorkerRecord {
                            report: $crate::WorkerReport {
                                name: text(0)?,
                                host: text(1)?,
                                pid: u32::try_from(number(2)?).unwrap_or_default(),
                                heartbeat_ms,
                                state: text(6)?,
                                reason: sqlx::Row::try_get::<Option<String>, _>(row, 7)?,
                                in_flight: u64::try_from(number(8)?).unwrap_or_default(),
                                done: u64::try_from(number(9)?).unwrap_or_default(),
                                failed: u64::try_from(number(10)?).unwrap_or_default(),
                                credentials: serde_json::from_str(&text(11)?)
                                    .unwrap_or(serde_json::Value::Null),
                                generation: sqlx::Row::try_get::<Option<i64>, _>(row, 13)?
                                    .and_then(|g| u64::try_from(g).ok()),
                            },
                            started_at: number(3)?,
                            last_heartbeat,
                            gone: now - last_heartbeat > 3 * heartbeat_ms.max(1),
                        })
                    };
                    workers.push(decode().map_err(|e| self.fail_with(e))?);
                }
                Ok(workers)
            }

            /// Dead-letters tasks whose lease expired on their last attempt, at most once a
            /// second per queue handle.
            async fn sweep_if_due(&self) -> Result<(), $crate::QueueError> {
                {
                    let mut last = self.last_sweep.lock().unwrap_or_else(|p| p.into_inner());
                    if last.is_some_and(|at| at.elapsed() < std::time::Duration::from_secs(1)) {
                        return Ok(());
                    }
                    *last = Some(std::time::Instant::now());
                }
                Self::query(&self.sql.sweep)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| self.fail_with(e))?;
                Ok(())
            }
        }
    };
}

pub(crate) use operations;
