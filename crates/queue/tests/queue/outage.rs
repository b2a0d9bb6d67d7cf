//! PostgreSQL unreachable for a while: calls fail with a clear error naming the (masked) URL,
//! and succeed again once it is back, with nothing lost. The outage is a TCP proxy in front of
//! the real server that this test stops and restarts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentfleet_queue::{NewTask, Queue, QueueError, Target};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::backends::postgres;

/// Forwards connections from a local port to PostgreSQL until stopped.
struct Proxy {
    address: SocketAddr,
    task: Option<JoinHandle<()>>,
    connections: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(address: Option<SocketAddr>) -> Self {
        let listener = TcpListener::bind(address.unwrap_or_else(|| "127.0.0.1:0".parse().unwrap()))
            .await
            .unwrap();
        let address = listener.local_addr().unwrap();
        let connections: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let tracked = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let forward = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect("127.0.0.1:5432").await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tracked.lock().unwrap().push(forward);
            }
        });
        Self {
            address,
            task: Some(task),
            connections,
        }
    }

    /// Stops listening and cuts every open connection.
    fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_away_is_a_clear_error_and_coming_back_loses_nothing() {
    let Some(opened) = postgres().await else {
        return;
    };
    let mut proxy = Proxy::start(None).await;
    let schema_options = opened
        .url
        .split_once('?')
        .map(|(_, query)| query.to_owned())
        .unwrap();
    let url = format!(
        "postgres://postgres:hunter2@{}/test?{schema_options}",
        proxy.address
    );
    let queue = Queue::connect(&url).await.unwrap();
    let id = queue
        .submit(NewTask::new("keep me", Target::Agent("a".into())))
        .await
        .unwrap()
        .id;

    proxy.stop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let error = queue.stats().await.unwrap_err();
    assert!(matches!(error, QueueError::Unavailable { .. }), "{error}");
    assert!(error.is_transient());
    let message = error.to_string();
    assert!(
        message.contains(&format!("postgres://postgres:****@{}", proxy.address)),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");

    let address = proxy.address;
    let _restarted = Proxy::start(Some(address)).await;
    let started = Instant::now();
    let stats = loop {
        match queue.stats().await {
            Ok(stats) => break stats,
            Err(error) if error.is_transient() && started.elapsed() < Duration::from_secs(15) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("did not recover: {error}"),
        }
    };
    assert_eq!(stats.pending, 1, "nothing was lost");
    assert_eq!(queue.get(&id).await.unwrap().task, "keep me");
}
