//! Leasers as separate processes: several draining one queue at once, and one killed with
//! SIGKILL while it holds a lease.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agentfleet_queue::{LeaseFilter, NewTask, Queue, Target, TaskState};

use crate::backends::{TestQueue, postgres, sqlite};

/// The `leaser` example, built by `cargo test` beside this test binary.
fn leaser() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("leaser");
    assert!(
        path.exists(),
        "{} is missing: cargo test builds it",
        path.display()
    );
    path
}

async fn processes_drain_the_queue_once_each(opened: TestQueue) {
    const TASKS: usize = 300;
    let tasks: Vec<NewTask> = (0..TASKS)
        .map(|i| NewTask::new(format!("t{i}"), Target::Agent("a".into())))
        .collect();
    opened.queue.submit_many(&tasks).await.unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(leaser())
                .args([&opened.url, "drain"])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut total = 0u64;
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
        total += String::from_utf8(output.stdout)
            .unwrap()
            .trim()
            .parse::<u64>()
            .unwrap();
    }
    assert_eq!(
        total, TASKS as u64,
        "the processes acked every task once between them"
    );
    let records = opened.queue.list(None, TASKS as u32).await.unwrap();
    assert!(
        records
            .iter()
            .all(|r| r.state == TaskState::Done && r.attempts == 1)
    );
    let by: std::collections::HashSet<_> =
        records.iter().filter_map(|r| r.output.clone()).collect();
    assert!(by.len() > 1, "the work was shared: {by:?}");
}

async fn a_killed_leaser_loses_its_task_to_the_next_after_the_lease(opened: TestQueue) {
    let id = opened
        .queue
        .submit(NewTask::new("survive", Target::Agent("a".into())))
        .await
        .unwrap()
        .id;
    let mut child = Command::new(leaser())
        .args([&opened.url, "hold", "800"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), id);
    Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    let filter = LeaseFilter::default();
    assert!(
        opened
            .queue
            .lease("next", Duration::from_secs(60), 1, &filter)
            .await
            .unwrap()
            .is_empty(),
        "held until its lease expires"
    );
    let started = Instant::now();
    let taken = loop {
        let leases = opened
            .queue
            .lease("next", Duration::from_secs(60), 1, &filter)
            .await
            .unwrap();
        if !leases.is_empty() || started.elapsed() > Duration::from_secs(10) {
            break leases;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        taken.len(),
        1,
        "the task came back after the killed leaser's lease expired"
    );
    assert_eq!(
        (taken[0].record.id.as_str(), taken[0].attempt),
        (id.as_str(), 2)
    );
    opened.queue.ack(&taken[0], "recovered").await.unwrap();
}

/// Migrations from several processes starting at once must not trip over each other.
async fn processes_starting_together_share_one_schema(url: String) {
    let connects: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { Queue::connect(&url).await.map(|_| ()) })
        })
        .collect();
    for connect in connects {
        connect.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn sqlite_processes_drain_the_queue_once_each() {
    processes_drain_the_queue_once_each(sqlite().await).await;
}

#[tokio::test]
async fn postgres_processes_drain_the_queue_once_each() {
    if let Some(opened) = postgres().await {
        processes_drain_the_queue_once_each(opened).await;
    }
}

#[tokio::test]
async fn sqlite_a_killed_leaser_loses_its_task_after_the_lease() {
    a_killed_leaser_loses_its_task_to_the_next_after_the_lease(sqlite().await).await;
}

#[tokio::test]
async fn postgres_a_killed_leaser_loses_its_task_after_the_lease() {
    if let Some(opened) = postgres().await {
        a_killed_leaser_loses_its_task_to_the_next_after_the_lease(opened).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_processes_starting_together_share_one_schema() {
    let directory = tempfile::tempdir().unwrap();
    processes_starting_together_share_one_schema(format!(
        "sqlite://{}",
        directory.path().join("fresh.db").display()
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_processes_starting_together_share_one_schema() {
    if let Some(opened) = postgres().await {
        // A schema with no tables yet: drop them so the concurrent connects create them.
        let pool = sqlx::PgPool::connect(&opened.url).await.unwrap();
        sqlx::query("DROP TABLE af_tasks, af_meta")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        processes_starting_together_share_one_schema(opened.url.clone()).await;
    }
}
