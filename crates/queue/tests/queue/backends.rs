//! Fresh queues for tests: a SQLite file in a temporary directory, or a PostgreSQL schema made
//! for one test and dropped after it.

use agentfleet_config::{Environment, ProcessEnv};
use agentfleet_queue::Queue;

/// The PostgreSQL every machine of this project runs.
pub const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A queue and whatever must outlive it.
pub struct TestQueue {
    pub queue: Queue,
    pub url: String,
    _guard: Guard,
}

enum Guard {
    Directory(#[allow(dead_code)] tempfile::TempDir),
    Schema(String),
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Guard::Schema(schema) = self {
            let schema = schema.clone();
            // Drop runs outside any runtime's async context on a thread of its own.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                runtime.block_on(async {
                    let pool = sqlx::PgPool::connect(POSTGRES).await.ok()?;
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP SCHEMA IF EXISTS {schema} CASCADE"
                    )))
                    .execute(&pool)
                    .await
                    .ok()
                })
            })
            .join();
        }
    }
}

pub async fn sqlite() -> TestQueue {
    let directory = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", directory.path().join("queue.db").display());
    let queue = Queue::connect(&url).await.unwrap();
    TestQueue {
        queue,
        url,
        _guard: Guard::Directory(directory),
    }
}

/// A queue in a new schema, or `None` (with a loud message) when PostgreSQL is unreachable
/// outside CI. Under CI an unreachable PostgreSQL fails the test.
pub async fn postgres() -> Option<TestQueue> {
    let pool = match sqlx::PgPool::connect(POSTGRES).await {
        Ok(pool) => pool,
        Err(error) => {
            if ProcessEnv.get("CI").is_some() {
                panic!("PostgreSQL at {POSTGRES} is unreachable and CI is set: {error}");
            }
            eprintln!(
                "\n*** SKIPPING a PostgreSQL test: {POSTGRES} is unreachable ({error}) ***\n"
            );
            return None;
        }
    };
    let schema = format!("af_test_{}_{:x}", std::process::id(), fastrand::u64(..));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let url = format!("{POSTGRES}?options=-csearch_path%3D{schema}");
    let queue = Queue::connect(&url).await.unwrap();
    Some(TestQueue {
        queue,
        url,
        _guard: Guard::Schema(schema),
    })
}

/// `sqlite()` in the shape the conformance suite opens backends with.
pub async fn sqlite_if_any() -> Option<TestQueue> {
    Some(sqlite().await)
}
