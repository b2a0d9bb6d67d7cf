//! What both backends must do alike. Each rule is an async function over a `Queue`, and
//! `conformance!` makes one test per rule per backend.

use std::time::{Duration, Instant};

use agentfleet_queue::{LeaseFilter, NewTask, Queue, QueueError, RetryBackoff, Target, TaskState};

const WORKER: &str = "worker-a";
const LONG: Duration = Duration::from_secs(60);

fn task(text: &str) -> NewTask {
    NewTask::new(text, Target::Agent("writer".into()))
}

fn all() -> LeaseFilter {
    LeaseFilter::default()
}

/// Leases until something comes back or `within` passes: for tasks whose retry delay or lease
/// must pass on the database's clock.
async fn lease_within(
    queue: &Queue,
    worker: &str,
    within: Duration,
) -> Vec<agentfleet_queue::Lease> {
    let started = Instant::now();
    loop {
        let leases = queue.lease(worker, LONG, 10, &all()).await.unwrap();
        if !leases.is_empty() || started.elapsed() > within {
            return leases;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn submit_lease_ack(queue: &Queue) {
    let mut new = task("write a haiku");
    new.metadata = serde_json::json!({"origin": "test"});
    new.needs = vec!["openai".into()];
    let submitted = queue.submit(new).await.unwrap();
    assert!(submitted.created);
    let leases = queue.lease(WORKER, LONG, 10, &all()).await.unwrap();
    assert_eq!(leases.len(), 1);
    let lease = &leases[0];
    assert_eq!(lease.record.id, submitted.id);
    assert_eq!(lease.record.task, "write a haiku");
    assert_eq!(lease.record.target, Target::Agent("writer".into()));
    assert_eq!(lease.record.metadata["origin"], "test");
    assert_eq!(lease.record.needs, ["openai"]);
    assert_eq!(lease.record.state, TaskState::Leased);
    assert_eq!(
        (lease.attempt, lease.record.leased_by.as_deref()),
        (1, Some(WORKER))
    );
    let now = queue.now().await.unwrap();
    assert!(
        lease.expires_at > now + 50_000 && lease.expires_at <= now + 60_000,
        "the database's clock sets the expiry"
    );
    assert!(
        queue
            .lease(WORKER, LONG, 10, &all())
            .await
            .unwrap()
            .is_empty(),
        "a leased task is not leased again"
    );

    queue.ack(lease, "a haiku").await.unwrap();
    let record = queue.get(&submitted.id).await.unwrap();
    assert_eq!(
        (record.state, record.output.as_deref(), record.attempts),
        (TaskState::Done, Some("a haiku"), 1)
    );
    assert!(record.finished_at.is_some());
    assert!(
        matches!(
            queue.ack(lease, "again").await,
            Err(QueueError::LeaseLost { .. })
        ),
        "one result, once"
    );
    assert_eq!(
        queue.get(&submitted.id).await.unwrap().output.as_deref(),
        Some("a haiku")
    );
}

pub async fn many_acks_commit_together_and_refuse_lost_leases(queue: &Queue) {
    queue
        .submit_many(&[task("1"), task("2"), task("3")])
        .await
        .unwrap();
    let leases = queue.lease(WORKER, LONG, 3, &all()).await.unwrap();
    queue.cancel(&leases[1].record.id).await.unwrap();
    let results = queue
        .ack_many(&[
            (&leases[0], "one"),
            (&leases[1], "two"),
            (&leases[2], "three"),
        ])
        .await
        .unwrap();
    assert!(results[0].is_ok() && results[2].is_ok());
    assert!(
        matches!(results[1], Err(QueueError::LeaseLost { .. })),
        "a cancelled task's lease is gone"
    );
    assert_eq!(
        queue
            .get(&leases[2].record.id)
            .await
            .unwrap()
            .output
            .as_deref(),
        Some("three")
    );
    assert_eq!(
        queue.get(&leases[1].record.id).await.unwrap().state,
        TaskState::Cancelled
    );
    let again = queue.ack_many(&[(&leases[0], "again")]).await.unwrap();
    assert!(
        matches!(again[0], Err(QueueError::LeaseLost { .. })),
        "one result, once"
    );
    assert_eq!(
        queue
            .get(&leases[0].record.id)
            .await
            .unwrap()
            .output
            .as_deref(),
        Some("one")
    );
}

pub async fn submit_is_idempotent_by_key(queue: &Queue) {
    let mut keyed = task("once");
    keyed.idempotency_key = Some("order-42".into());
    let first = queue.submit(keyed.clone()).await.unwrap();
    let second = queue.submit(keyed).await.unwrap();
    assert!(first.created && !second.created);
    assert_eq!(first.id, second.id);
    let batch = queue
        .submit_many(&[task("unkeyed"), task("unkeyed")])
        .await
        .unwrap();
    assert_ne!(batch[0].id, batch[1].id, "tasks without keys are distinct");
    let mut repeated = task("twice in one batch");
    repeated.idempotency_key = Some("batch-key".into());
    let mut existing = task("once");
    existing.idempotency_key = Some("order-42".into());
    let mixed = queue
        .submit_many(&[repeated.clone(), existing, repeated])
        .await
        .unwrap();
    assert!(
        mixed[0].created && !mixed[1].created && !mixed[2].created,
        "{mixed:?}"
    );
    assert_eq!(
        (mixed[0].id.as_str(), mixed[1].id.as_str()),
        (mixed[2].id.as_str(), first.id.as_str())
    );
    assert_eq!(queue.stats().await.unwrap().pending, 4);
}

pub async fn priority_first_then_first_in_first_out(queue: &Queue) {
    let mut urgent = task("urgent");
    urgent.priority = 5;
    queue
        .submit_many(&[task("a"), task("b"), urgent, task("c")])
        .await
        .unwrap();
    let order: Vec<String> = queue
        .lease(WORKER, LONG, 10, &all())
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.record.task)
        .collect();
    assert_eq!(order, ["urgent", "a", "b", "c"]);
}

pub async fn an_expired_lease_frees_the_task_and_refuses_the_late_ack(queue: &Queue) {
    let submitted = queue.submit(task("slow")).await.unwrap();
    let first = queue
        .lease("worker-a", Duration::from_millis(300), 1, &all())
        .await
        .unwrap()
        .remove(0);
    let second = lease_within(queue, "worker-b", Duration::from_secs(5)).await;
    assert_eq!(
        second.len(),
        1,
        "the task came back after the lease expired"
    );
    let second = &second[0];
    assert_eq!(
        (second.record.id.as_str(), second.attempt),
        (submitted.id.as_str(), 2)
    );
    assert_ne!(second.token, first.token);
    assert!(matches!(
        queue.ack(&first, "late").await,
        Err(QueueError::LeaseLost { .. })
    ));
    assert!(matches!(
        queue.renew(&first, LONG).await,
        Err(QueueError::LeaseLost { .. })
    ));
    queue.ack(second, "on time").await.unwrap();
    let record = queue.get(&submitted.id).await.unwrap();
    assert_eq!(
        (record.state, record.output.as_deref(), record.attempts),
        (TaskState::Done, Some("on time"), 2)
    );
}

pub async fn renewing_keeps_the_lease(queue: &Queue) {
    queue.submit(task("long")).await.unwrap();
    let held = queue
        .lease(WORKER, Duration::from_millis(300), 1, &all())
        .await
        .unwrap()
        .remove(0);
    let expiry = queue.renew(&held, Duration::from_secs(30)).await.unwrap();
    assert!(expiry > held.expires_at);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        queue
            .lease("worker-b", LONG, 1, &all())
            .await
            .unwrap()
            .is_empty(),
        "a renewed lease holds"
    );
    queue.ack(&held, "done").await.unwrap();
}

pub async fn failures_retry_with_backoff_then_go_dead(queue: &Queue) {
    let mut flaky = task("flaky");
    flaky.max_attempts = 2;
    let id = queue.submit(flaky).await.unwrap().id;
    let backoff = RetryBackoff {
        base: Duration::from_millis(200),
        max: Duration::from_millis(400),
    };
    let first = queue
        .lease(WORKER, LONG, 1, &all())
        .await
        .unwrap()
        .remove(0);
    let state = queue
        .fail(&first, "server", "HTTP 500", true, &backoff)
        .await
        .unwrap();
    assert_eq!(state, TaskState::Pending);
    assert!(
        queue
            .lease(WORKER, LONG, 1, &all())
            .await
            .unwrap()
            .is_empty(),
        "not before the backoff has passed"
    );
    let second = lease_within(queue, WORKER, Duration::from_secs(5))
        .await
        .remove(0);
    assert_eq!(second.attempt, 2);
    assert_eq!(
        second.record.error_kind.as_deref(),
        Some("server"),
        "the last error is kept"
    );
    let state = queue
        .fail(&second, "server", "HTTP 500 again", true, &backoff)
        .await
        .unwrap();
    assert_eq!(state, TaskState::Dead, "the last attempt dead-letters");
    let record = queue.get(&id).await.unwrap();
    assert_eq!(
        (record.state, record.attempts, record.error.as_deref()),
        (TaskState::Dead, 2, Some("HTTP 500 again"))
    );
    assert!(record.finished_at.is_some());
}

pub async fn a_final_failure_is_not_retried(queue: &Queue) {
    let id = queue.submit(task("bad request")).await.unwrap().id;
    let held = queue
        .lease(WORKER, LONG, 1, &all())
        .await
        .unwrap()
        .remove(0);
    let state = queue
        .fail(
            &held,
            "bad-request",
            "HTTP 400",
            false,
            &RetryBackoff::default(),
        )
        .await
        .unwrap();
    assert_eq!(state, TaskState::Failed);
    assert_eq!(queue.get(&id).await.unwrap().state, TaskState::Failed);
    assert!(
        queue
            .lease(WORKER, LONG, 1, &all())
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn a_release_returns_the_task_at_once_without_counting(queue: &Queue) {
    let id = queue.submit(task("needs a good key")).await.unwrap().id;
    let held = queue
        .lease("bad-worker", LONG, 1, &all())
        .await
        .unwrap()
        .remove(0);
    queue
        .release(
            &held,
            "auth-rejected",
            "openai refused the key sha256:1234abcd",
        )
        .await
        .unwrap();
    let record = queue.get(&id).await.unwrap();
    assert_eq!((record.state, record.attempts), (TaskState::Pending, 0));
    assert_eq!(record.error_kind.as_deref(), Some("auth-rejected"));
    let again = queue.lease("good-worker", LONG, 1, &all()).await.unwrap();
    assert_eq!(
        again[0].attempt, 1,
        "available at once, and the released attempt did not count"
    );
    assert!(matches!(
        queue.release(&held, "x", "y").await,
        Err(QueueError::LeaseLost { .. })
    ));
}

pub async fn workers_lease_only_what_they_can_serve(queue: &Queue) {
    let mut openai = task("for openai");
    openai.needs = vec!["openai".into()];
    let mut anthropic = task("for anthropic");
    anthropic.needs = vec!["anthropic".into()];
    let mut lookalike = task("for my_prov's lookalike");
    lookalike.needs = vec!["myXprov".into()];
    queue
        .submit_many(&[openai, anthropic, lookalike])
        .await
        .unwrap();
    let filter = LeaseFilter {
        exclude_providers: vec!["openai".into(), "my_prov".into()],
    };
    let leased: Vec<String> = queue
        .lease(WORKER, LONG, 10, &filter)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.record.task)
        .collect();
    assert_eq!(
        leased,
        ["for anthropic", "for my_prov's lookalike"],
        "'_' in a provider name is not a wildcard"
    );
    let rest = queue.lease(WORKER, LONG, 10, &all()).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].record.task, "for openai");
}

pub async fn cancel_stops_what_has_not_finished(queue: &Queue) {
    let pending = queue.submit(task("pending")).await.unwrap().id;
    queue.cancel(&pending).await.unwrap();
    assert_eq!(
        queue.get(&pending).await.unwrap().state,
        TaskState::Cancelled
    );
    assert!(
        matches!(queue.cancel(&pending).await, Err(QueueError::AlreadyFinished { ref state, .. }) if state == "cancelled")
    );
    let leased_id = queue.submit(task("leased")).await.unwrap().id;
    let held = queue
        .lease(WORKER, LONG, 1, &all())
        .await
        .unwrap()
        .remove(0);
    queue.cancel(&leased_id).await.unwrap();
    assert!(matches!(
        queue.ack(&held, "too late").await,
        Err(QueueError::LeaseLost { .. })
    ));
    assert!(matches!(
        queue.cancel("no-such-task").await,
        Err(QueueError::NotFound { .. })
    ));
    assert!(matches!(
        queue.get("no-such-task").await,
        Err(QueueError::NotFound { .. })
    ));
}

pub async fn stats_and_lists(queue: &Queue) {
    queue
        .submit_many(&[task("1"), task("2"), task("3")])
        .await
        .unwrap();
    let held = queue
        .lease(WORKER, LONG, 1, &all())
        .await
        .unwrap()
        .remove(0);
    queue.ack(&held, "ok").await.unwrap();
    let held = queue
        .lease(WORKER, LONG, 1, &all())
        .await
        .unwrap()
        .remove(0);
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.pending, stats.leased, stats.done), (1, 1, 1));
    assert!(stats.oldest_pending_ms.is_some_and(|age| age >= 0));
    let done = queue.list(Some(TaskState::Done), 10).await.unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].output.as_deref(), Some("ok"));
    let everything = queue.list(None, 10).await.unwrap();
    assert_eq!(
        everything
            .iter()
            .map(|r| r.task.as_str())
            .collect::<Vec<_>>(),
        ["3", "2", "1"],
        "newest first"
    );
    queue.ack(&held, "ok").await.unwrap();
    let empty_stats = queue.stats().await.unwrap();
    assert_eq!(empty_stats.done, 2);
}

pub async fn an_expired_last_attempt_is_dead_lettered(queue: &Queue) {
    let mut once = task("once");
    once.max_attempts = 1;
    let id = queue.submit(once).await.unwrap().id;
    let _stalled = queue
        .lease(WORKER, Duration::from_millis(200), 1, &all())
        .await
        .unwrap()
        .remove(0);
    let started = Instant::now();
    loop {
        let _ = queue.lease("worker-b", LONG, 1, &all()).await.unwrap();
        if queue.get(&id).await.unwrap().state == TaskState::Dead
            || started.elapsed() > Duration::from_secs(5)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let record = queue.get(&id).await.unwrap();
    assert_eq!(
        (record.state, record.error_kind.as_deref()),
        (TaskState::Dead, Some("lease-expired"))
    );
}

pub async fn workers_register_heartbeat_and_deregister(queue: &Queue) {
    let mut report = agentfleet_queue::WorkerReport {
        name: "host-1".into(),
        host: "host".into(),
        pid: 42,
        heartbeat_ms: 100,
        state: "starting".into(),
        reason: None,
        in_flight: 0,
        done: 0,
        failed: 0,
        credentials: serde_json::json!({"openai": {"source": "env:OPENAI_API_KEY", "fingerprint": "sha256:1234abcd", "generation": 1}}),
        generation: None,
    };
    queue.report_worker(&report).await.unwrap();
    assert_eq!(queue.workers().await.unwrap()[0].report, report);
    report.generation = Some(2);
    report.state = "quarantined".into();
    report.reason = Some("openai refused sha256:1234abcd".into());
    report.done = 3;
    queue.report_worker(&report).await.unwrap();
    let workers = queue.workers().await.unwrap();
    assert_eq!(workers.len(), 1);
    assert_eq!(workers[0].report, report);
    assert!(!workers[0].gone);
    // Three missed heartbeats of 100 ms: gone.
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(queue.workers().await.unwrap()[0].gone);
    queue.report_worker(&report).await.unwrap();
    assert!(
        !queue.workers().await.unwrap()[0].gone,
        "a heartbeat brings it back"
    );
    queue.deregister_worker("host-1").await.unwrap();
    assert!(queue.workers().await.unwrap().is_empty());
}

/// Many leasers sharing one queue at once: each task is held by one of them at a time, acked
/// once, and none is lost.
pub async fn concurrent_leasers_never_share_a_task(queue: &Queue, url: &str) {
    const TASKS: usize = 400;
    let tasks: Vec<NewTask> = (0..TASKS)
        .map(|index| task(&format!("task {index}")))
        .collect();
    for chunk in tasks.chunks(100) {
        queue.submit_many(chunk).await.unwrap();
    }
    let mut workers = Vec::new();
    for index in 0..8 {
        let url = url.to_owned();
        workers.push(tokio::spawn(async move {
            // A queue handle of its own, as a separate process would have.
            let queue = Queue::connect(&url).await.unwrap();
            let name = format!("worker-{index}");
            let mut acked = Vec::new();
            let mut empty = 0;
            while empty < 3 {
                let leases = queue
                    .lease(&name, LONG, 4, &LeaseFilter::default())
                    .await
                    .unwrap();
                if leases.is_empty() {
                    empty += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                empty = 0;
                for held in leases {
                    queue.ack(&held, &name).await.unwrap();
                    acked.push(held.record.id);
                }
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for worker in workers {
        acked.extend(worker.await.unwrap());
    }
    let mut unique = acked.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(acked.len(), TASKS, "every task acked exactly once");
    assert_eq!(unique.len(), TASKS, "no task acked twice");
    let stats = queue.stats().await.unwrap();
    assert_eq!(
        (stats.done, stats.pending, stats.leased),
        (TASKS as u64, 0, 0)
    );
    assert!(
        queue
            .list(None, TASKS as u32)
            .await
            .unwrap()
            .iter()
            .all(|record| record.attempts == 1),
        "no task was leased twice"
    );
}

/// A database whose worker registry predates the rollout generation (schema 2) is upgraded
/// when a queue opens it: the registry is rebuilt, and tasks are untouched.
pub async fn an_older_worker_registry_is_rebuilt_on_upgrade(queue: &Queue, url: &str) {
    let id = queue.submit(task("kept")).await.unwrap().id;
    let old_registry = [
        "DROP TABLE af_workers",
        "CREATE TABLE af_workers (name TEXT PRIMARY KEY, host TEXT NOT NULL, pid BIGINT NOT NULL, \
         started_at BIGINT NOT NULL, last_heartbeat BIGINT NOT NULL, heartbeat_ms BIGINT NOT NULL, \
         state TEXT NOT NULL, reason TEXT, in_flight BIGINT NOT NULL, done BIGINT NOT NULL, \
         failed BIGINT NOT NULL, credentials TEXT NOT NULL)",
        "INSERT INTO af_workers VALUES ('old', 'host', 1, 0, 0, 1000, 'healthy', NULL, 0, 0, 0, '{}')",
        "UPDATE af_meta SET value = '2' WHERE name = 'schema_version'",
    ];
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        for statement in old_registry {
            sqlx::query(statement).execute(&pool).await.unwrap();
        }
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        for statement in old_registry {
            sqlx::query(statement).execute(&pool).await.unwrap();
        }
        pool.close().await;
    }
    let upgraded = Queue::connect(url).await.unwrap();
    assert_eq!(upgraded.workers().await.unwrap(), Vec::new());
    let report = agentfleet_queue::WorkerReport {
        name: "new".into(),
        host: "host".into(),
        pid: 2,
        heartbeat_ms: 1000,
        state: "healthy".into(),
        reason: None,
        in_flight: 0,
        done: 0,
        failed: 0,
        credentials: serde_json::json!({}),
        generation: Some(3),
    };
    upgraded.report_worker(&report).await.unwrap();
    assert_eq!(upgraded.workers().await.unwrap()[0].report, report);
    assert_eq!(upgraded.get(&id).await.unwrap().task, "kept");
}

/// Runs every rule against one backend.
macro_rules! conformance {
    ($backend:ident, $open:path; $($rule:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $rule() {
                    let Some(opened) = $open().await else { return };
                    super::$rule(&opened.queue).await;
                }
            )*

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_leasers_never_share_a_task() {
                let Some(opened) = $open().await else { return };
                super::concurrent_leasers_never_share_a_task(&opened.queue, &opened.url).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn an_older_worker_registry_is_rebuilt_on_upgrade() {
                let Some(opened) = $open().await else { return };
                super::an_older_worker_registry_is_rebuilt_on_upgrade(&opened.queue, &opened.url).await;
            }
        }
    };
}

/// The rules, listed once for every backend.
macro_rules! for_every_rule {
    ($backend:ident, $open:path) => {
        conformance!(
            $backend, $open;
            submit_lease_ack,
            many_acks_commit_together_and_refuse_lost_leases,
            submit_is_idempotent_by_key,
            priority_first_then_first_in_first_out,
            an_expired_lease_frees_the_task_and_refuses_the_late_ack,
            renewing_keeps_the_lease,
            failures_retry_with_backoff_then_go_dead,
            a_final_failure_is_not_retried,
            a_release_returns_the_task_at_once_without_counting,
            workers_lease_only_what_they_can_serve,
            cancel_stops_what_has_not_finished,
            stats_and_lists,
            an_expired_last_attempt_is_dead_lettered,
            workers_register_heartbeat_and_deregister,
        );
    };
}

for_every_rule!(sqlite, crate::backends::sqlite_if_any);
for_every_rule!(postgres, crate::backends::postgres);
