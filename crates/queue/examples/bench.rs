//! Measures the queue: tasks per second through submit, lease and ack with 1 and 8 concurrent
//! leasers, and how soon an idle worker picks up a task after it is submitted. Used by
//! `bench/queue.sh`; the results are in BENCHMARKS.md.
//!
//! ```sh
//! bench URL [TASKS]
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use agentfleet_queue::{LeaseFilter, NewTask, Queue, Target};

const LEASE: Duration = Duration::from_secs(60);

/// Submits `tasks` in batches while `leasers` lease (32 at a time) and ack (one by one, or all
/// of a lease batch with one commit); returns tasks per second from the first submit to the last
/// ack.
async fn throughput(
    url: &str,
    tasks: usize,
    leasers: usize,
    batched_acks: bool,
) -> Result<f64, Box<dyn std::error::Error>> {
    let producer = Queue::connect(url).await?;
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut handles = Vec::new();
    for index in 0..leasers {
        let url = url.to_owned();
        let done = done.clone();
        handles.push(tokio::spawn(async move {
            let queue = Queue::connect(&url).await.expect("connect");
            let name = format!("bench-{index}");
            while done.load(std::sync::atomic::Ordering::Relaxed) < tasks {
                let leases = queue
                    .lease(&name, LEASE, 32, &LeaseFilter::default())
                    .await
                    .expect("lease");
                if leases.is_empty() {
                    queue.wait_for_work(Duration::from_millis(5)).await;
                    continue;
                }
                if batched_acks {
                    let acks: Vec<(&agentfleet_queue::Lease, &str)> =
                        leases.iter().map(|held| (held, "ok")).collect();
                    for result in queue.ack_many(&acks).await.expect("ack") {
                        result.expect("held");
                    }
                } else {
                    for held in &leases {
                        queue.ack(held, "ok").await.expect("ack");
                    }
                }
                done.fetch_add(leases.len(), std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    let batch: Vec<NewTask> = (0..100)
        .map(|i| NewTask::new(format!("task {i}"), Target::Agent("a".into())))
        .collect();
    for _ in 0..tasks / batch.len() {
        producer.submit_many(&batch).await?;
    }
    for handle in handles {
        handle.await?;
    }
    Ok(tasks as f64 / started.elapsed().as_secs_f64())
}

/// Milliseconds from submit to lease for an idle worker: the 50th and 99th percentiles.
async fn pickup(url: &str, samples: usize) -> Result<(f64, f64), Box<dyn std::error::Error>> {
    let producer = Queue::connect(url).await?;
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let worker_url = url.to_owned();
    let worker = tokio::spawn(async move {
        let queue = Queue::connect(&worker_url).await.expect("connect");
        let mut seen = 0;
        while seen < samples {
            let leases = queue
                .lease("idle", LEASE, 1, &LeaseFilter::default())
                .await
                .expect("lease");
            if leases.is_empty() {
                queue.wait_for_work(Duration::from_secs(1)).await;
                continue;
            }
            let now = Instant::now();
            for held in &leases {
                queue.ack(held, "ok").await.expect("ack");
                seen += 1;
                let _ = sender.send(now);
            }
        }
    });
    let mut latencies = Vec::with_capacity(samples);
    for index in 0..samples {
        // Let the worker go idle first.
        tokio::time::sleep(Duration::from_millis(30)).await;
        let submitted = Instant::now();
        producer
            .submit(NewTask::new(
                format!("ping {index}"),
                Target::Agent("a".into()),
            ))
            .await?;
        let picked = receiver.recv().await.ok_or("the worker stopped")?;
        latencies.push(picked.saturating_duration_since(submitted).as_secs_f64() * 1000.0);
    }
    worker.await?;
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    Ok((at(0.5), at(0.99)))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let url = arguments.first().ok_or("usage: bench URL [TASKS]")?;
    let tasks: usize = arguments.get(1).map_or(Ok(20_000), |n| n.parse())?;
    for batched in [false, true] {
        for leasers in [1, 8] {
            let rate = throughput(url, tasks, leasers, batched).await?;
            let acks = if batched { "batched" } else { "each" };
            println!(
                "throughput leasers={leasers} acks={acks} tasks={tasks} tasks_per_second={rate:.0}"
            );
        }
    }
    let (p50, p99) = pickup(url, 200).await?;
    println!("pickup samples=200 p50_ms={p50:.2} p99_ms={p99:.2}");
    Ok(())
}
