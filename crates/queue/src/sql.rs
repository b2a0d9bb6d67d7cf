//! The queue's SQL, written once for both backends: the two dialects differ only in how they
//! read the clock, how they declare the sequence column, and how a lease locks its rows.
//!
//! Every time is an integer of milliseconds since the Unix epoch from the database's own clock,
//! so workers on machines with different clocks agree on when a lease expires.

use std::sync::Arc;

/// The two SQL dialects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The database's clock, in milliseconds since the epoch.
    fn now(self) -> &'static str {
        match self {
            Dialect::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
            Dialect::Postgres => "(extract(epoch from clock_timestamp()) * 1000)::bigint",
        }
    }
}

/// The columns a task is read from, in the order `record` decodes them.
pub(crate) const COLUMNS: &str = "id, task, target_kind, target, idempotency_key, metadata, needs, priority, state, \
     attempts, max_attempts, leased_by, output, error_kind, error, created_at, updated_at, finished_at, \
     lease_token, lease_expires_at";

/// The schema, created if absent. Safe to run from several processes at once: the caller holds
/// the database's write lock (SQLite) or an advisory lock (PostgreSQL) while it runs.
pub(crate) fn schema(dialect: Dialect) -> Vec<String> {
    let (sequence, integer) = match dialect {
        Dialect::Sqlite => ("seq INTEGER PRIMARY KEY AUTOINCREMENT", "INTEGER"),
        Dialect::Postgres => ("seq BIGSERIAL PRIMARY KEY", "BIGINT"),
    };
    vec![
        "CREATE TABLE IF NOT EXISTS af_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)".to_owned(),
        format!(
            "CREATE TABLE IF NOT EXISTS af_tasks (
                {sequence},
                id TEXT NOT NULL UNIQUE,
                idempotency_key TEXT UNIQUE,
                target_kind TEXT NOT NULL,
                target TEXT NOT NULL,
                task TEXT NOT NULL,
                metadata TEXT NOT NULL,
                needs TEXT NOT NULL,
                priority {integer} NOT NULL,
                state TEXT NOT NULL,
                attempts {integer} NOT NULL,
                max_attempts {integer} NOT NULL,
                available_at {integer} NOT NULL,
                lease_token TEXT UNIQUE,
                leased_by TEXT,
                lease_expires_at {integer},
                output TEXT,
                error_kind TEXT,
                error TEXT,
                created_at {integer} NOT NULL,
                updated_at {integer} NOT NULL,
                finished_at {integer}
            )"
        ),
        "CREATE INDEX IF NOT EXISTS af_tasks_ready ON af_tasks (priority DESC, seq) WHERE state IN ('pending', 'leased')"
            .to_owned(),
        // On SQLite this index is in submission order within each state (seq is the rowid), so
        // the oldest pending task is its first pending entry. (A (state, seq) index would say
        // the same on PostgreSQL, but its planner then reads it for acks, four times slower
        // than through the lease token.)
        "CREATE INDEX IF NOT EXISTS af_tasks_state ON af_tasks (state)".to_owned(),
        format!(
            "CREATE TABLE IF NOT EXISTS af_workers (
                name TEXT PRIMARY KEY,
                host TEXT NOT NULL,
                pid {integer} NOT NULL,
                started_at {integer} NOT NULL,
                last_heartbeat {integer} NOT NULL,
                heartbeat_ms {integer} NOT NULL,
                state TEXT NOT NULL,
                reason TEXT,
                in_flight {integer} NOT NULL,
                done {integer} NOT NULL,
                failed {integer} NOT NULL,
                credentials TEXT NOT NULL,
                generation {integer}
            )"
        ),
    ]
}

/// The schema version this code writes.
pub(crate) const SCHEMA_VERSION: i64 = 3;

/// Reads the schema version a database holds, once `af_meta` exists.
pub(crate) const READ_SCHEMA_VERSION: &str =
    "SELECT value FROM af_meta WHERE name = 'schema_version'";

/// What turns a database written at `version` into the current schema, run before `schema`.
/// The worker registry is soft state (every worker re-registers with its next heartbeat), so a
/// registry of an older shape is dropped and created anew rather than altered column by column.
pub(crate) fn upgrades(version: Option<i64>) -> Vec<String> {
    let mut statements = Vec::new();
    let Some(version) = version else {
        return statements;
    };
    if version < 3 {
        statements.push("DROP TABLE IF EXISTS af_workers".to_owned());
    }
    statements
}

/// Every statement, built once per queue.
#[derive(Debug)]
pub(crate) struct Statements {
    pub dialect: Dialect,
    pub now: Arc<str>,
    pub submit: Arc<str>,
    pub find_by_key: Arc<str>,
    pub ack: Arc<str>,
    pub renew: Arc<str>,
    pub fail: Arc<str>,
    pub release: Arc<str>,
    pub cancel: Arc<str>,
    pub get: Arc<str>,
    pub list: Arc<str>,
    pub list_state: Arc<str>,
    pub counts: Arc<str>,
    pub oldest: Arc<str>,
    pub sweep: Arc<str>,
    /// Registers a worker or records its heartbeat.
    pub upsert_worker: Arc<str>,
    /// Removes a worker that stopped cleanly.
    pub delete_worker: Arc<str>,
    /// Every registered worker, with the database's clock.
    pub workers: Arc<str>,
    /// PostgreSQL only: many submissions in one statement, as arrays in submission order.
    pub submit_many: Arc<str>,
    /// PostgreSQL only: many acks in one statement (`$1` tokens, `$2` outputs, as arrays).
    pub ack_many: Arc<str>,
    lease_plain: Arc<str>,
}

impl Statements {
    pub fn new(dialect: Dialect) -> Self {
        let now = dialect.now();
        let s = |text: String| -> Arc<str> { Arc::from(text.as_str()) };
        let still_held =
            format!("lease_token = $1 AND state = 'leased' AND lease_expires_at > {now}");
        Self {
            dialect,
            now: s(format!("SELECT {now}")),
            submit: s(format!(
                "INSERT INTO af_tasks (id, idempotency_key, target_kind, target, task, metadata, needs, priority, \
                 state, attempts, max_attempts, available_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', 0, $9, {now}, {now}, {now}) \
                 ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
            )),
            find_by_key: s("SELECT id FROM af_tasks WHERE idempotency_key = $1".to_owned()),
            ack: s(format!(
                "UPDATE af_tasks SET state = 'done', output = $2, error_kind = NULL, error = NULL, \
                 lease_token = NULL, lease_expires_at = NULL, finished_at = {now}, updated_at = {now} \
                 WHERE {still_held}"
            )),
            renew: s(format!(
                "UPDATE af_tasks SET lease_expires_at = {now} + $2, updated_at = {now} WHERE {still_held} \
                 RETURNING lease_expires_at"
            )),
            fail: s(format!(
                "UPDATE af_tasks SET \
                 state = CASE WHEN $3 = 1 AND attempts < max_attempts THEN 'pending' WHEN $3 = 1 THEN 'dead' ELSE 'failed' END, \
                 finished_at = CASE WHEN $3 = 1 AND attempts < max_attempts THEN NULL ELSE {now} END, \
                 available_at = {now} + $2, error_kind = $4, error = $5, \
                 lease_token = NULL, lease_expires_at = NULL, updated_at = {now} \
                 WHERE {still_held} RETURNING state"
            )),
            release: s(format!(
                "UPDATE af_tasks SET state = 'pending', attempts = attempts - 1, available_at = {now}, \
                 error_kind = $2, error = $3, lease_token = NULL, lease_expires_at = NULL, updated_at = {now} \
                 WHERE {still_held}"
            )),
            cancel: s(format!(
                "UPDATE af_tasks SET state = 'cancelled', lease_token = NULL, lease_expires_at = NULL, \
                 finished_at = {now}, updated_at = {now} WHERE id = $1 AND state IN ('pending', 'leased')"
            )),
            get: s(format!("SELECT {COLUMNS} FROM af_tasks WHERE id = $1")),
            list: s(format!(
                "SELECT {COLUMNS} FROM af_tasks ORDER BY seq DESC LIMIT $1"
            )),
            list_state: s(format!(
                "SELECT {COLUMNS} FROM af_tasks WHERE state = $1 ORDER BY seq DESC LIMIT $2"
            )),
            counts: s("SELECT state, COUNT(*) FROM af_tasks GROUP BY state".to_owned()),
            // Tasks are created in `seq` order by the database's clock, so the first pending
            // task in that order is the oldest, found through the index.
            oldest: s(format!(
                "SELECT {now} - (SELECT created_at FROM af_tasks WHERE state = 'pending' \
                 ORDER BY seq LIMIT 1)"
            )),
            sweep: s(format!(
                "UPDATE af_tasks SET state = 'dead', error_kind = 'lease-expired', \
                 error = 'the lease expired on the last allowed attempt: the worker stopped or stalled', \
                 lease_token = NULL, lease_expires_at = NULL, finished_at = {now}, updated_at = {now} \
                 WHERE state = 'leased' AND lease_expires_at <= {now} AND attempts >= max_attempts"
            )),
            upsert_worker: s(format!(
                "INSERT INTO af_workers (name, host, pid, started_at, last_heartbeat, heartbeat_ms, state, reason, \
                 in_flight, done, failed, credentials, generation) \
                 VALUES ($1, $2, $3, {now}, {now}, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (name) DO UPDATE SET host = excluded.host, pid = excluded.pid, \
                 last_heartbeat = excluded.last_heartbeat, heartbeat_ms = excluded.heartbeat_ms, state = excluded.state, \
                 reason = excluded.reason, in_flight = excluded.in_flight, done = excluded.done, \
                 failed = excluded.failed, credentials = excluded.credentials, generation = excluded.generation"
            )),
            delete_worker: s("DELETE FROM af_workers WHERE name = $1".to_owned()),
            workers: s(format!(
                "SELECT name, host, pid, started_at, last_heartbeat, heartbeat_ms, state, reason, in_flight, done, failed, \
                 credentials, {now}, generation FROM af_workers ORDER BY name"
            )),
            submit_many: s(format!(
                "INSERT INTO af_tasks (id, idempotency_key, target_kind, target, task, metadata, needs, priority, \
                 state, attempts, max_attempts, available_at, created_at, updated_at) \
                 SELECT id, key, kind, target, task, metadata, needs, priority, 'pending', 0, max_attempts, {now}, {now}, {now} \
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
                             $8::bigint[], $9::bigint[]) WITH ORDINALITY \
                      AS v(id, key, kind, target, task, metadata, needs, priority, max_attempts, position) \
                 ORDER BY position \
                 ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
            )),
            ack_many: s(format!(
                "UPDATE af_tasks t SET state = 'done', output = v.output, error_kind = NULL, error = NULL, \
                 lease_token = NULL, lease_expires_at = NULL, finished_at = {now}, updated_at = {now} \
                 FROM (SELECT unnest($1::text[]) AS token, unnest($2::text[]) AS output) v \
                 WHERE t.lease_token = v.token AND t.state = 'leased' AND t.lease_expires_at > {now} \
                 RETURNING v.token"
            )),
            lease_plain: s(Self::lease_sql(dialect, 0)),
        }
    }

    /// The lease statement excluding `excluded` providers: `$1` token prefix, `$2` worker,
    /// `$3` lease milliseconds, `$4` batch size, `$5...` needs patterns to avoid.
    pub fn lease(&self, excluded: usize) -> Arc<str> {
        if excluded == 0 {
            self.lease_plain.clone()
        } else {
            Arc::from(Self::lease_sql(self.dialect, excluded).as_str())
        }
    }

    fn lease_sql(dialect: Dialect, excluded: usize) -> String {
        let now = dialect.now();
        let exclusions: String = (0..excluded)
            .map(|index| format!(" AND needs NOT LIKE ${} ESCAPE '\\'", index + 5))
            .collect();
        // Candidates are read in lease order from the partial index of pending and leased
        // tasks, stopping at the batch size. Left to itself SQLite's planner reads every pending
        // task through the state index and sorts them all, for every lease: with a backlog of
        // 400,000 tasks that is most of a second each time.
        // PostgreSQL's planner finds that index unaided.
        let indexed = match dialect {
            Dialect::Sqlite => {
                " INDEXED BY af_tasks_ready WHERE state IN ('pending', 'leased') AND"
            }
            Dialect::Postgres => " WHERE",
        };
        let candidates = format!(
            "SELECT seq FROM af_tasks{indexed} \
             ((state = 'pending' AND available_at <= {now}) \
                OR (state = 'leased' AND lease_expires_at <= {now} AND attempts < max_attempts)){exclusions} \
             ORDER BY priority DESC, seq LIMIT $4"
        );
        match dialect {
            Dialect::Sqlite => format!(
                "UPDATE af_tasks SET state = 'leased', attempts = attempts + 1, \
                 lease_token = $1 || ':' || seq || ':' || (attempts + 1), leased_by = $2, \
                 lease_expires_at = {now} + $3, updated_at = {now} \
                 WHERE seq IN ({candidates}) RETURNING {COLUMNS}"
            ),
            Dialect::Postgres => {
                let columns: String = COLUMNS
                    .split(", ")
                    .map(|c| format!("t.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!(
                    "WITH picked AS ({candidates} FOR UPDATE SKIP LOCKED) \
                     UPDATE af_tasks t SET state = 'leased', attempts = t.attempts + 1, \
                     lease_token = $1 || ':' || t.seq || ':' || (t.attempts + 1), leased_by = $2, \
                     lease_expires_at = {now} + $3, updated_at = {now} \
                     FROM picked WHERE t.seq = picked.seq RETURNING {columns}"
                )
            }
        }
    }
}
