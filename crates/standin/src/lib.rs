//! agentfleet's stand-in provider: a local HTTP server that speaks OpenAI's, Azure OpenAI's and
//! Anthropic's wire formats, including their auth rules and error bodies, so that tests,
//! benchmarks and the offline quickstart run the real client and credential path over real HTTP.
//!
//! | surface | paths | key |
//! | --- | --- | --- |
//! | OpenAI | `POST /v1/chat/completions`, `GET /v1/models` | `Authorization: Bearer` |
//! | Azure OpenAI | `POST /openai/deployments/{d}/chat/completions?api-version=`, `POST /openai/v1/chat/completions`, `GET /openai/v1/models` | `api-key`, or a bearer token |
//! | Anthropic | `POST /v1/messages`, `GET /v1/models` with `anthropic-version` | `x-api-key` |
//!
//! `GET /stats` counts requests per status, surface and key fingerprint.

mod faults;
mod keys;
pub mod script;
mod stats;
mod surfaces;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;

pub use faults::{Faults, FaultsError};
pub use keys::{KEYS_FILE_POLL, KeyRing};
pub use script::{Script, ScriptError};
pub use stats::{KeyCounts, Snapshot};

/// How a stand-in behaves.
#[derive(Clone, Debug, Default)]
pub struct StandinConfig {
    /// Keys accepted from the start.
    pub keys: Vec<String>,
    /// A file of keys, one a line, re-read when it changes.
    pub keys_file: Option<PathBuf>,
    /// Added before every answer.
    pub latency: Duration,
    /// Injected failures.
    pub faults: Faults,
    /// Scripted replies.
    pub script: Script,
    /// When set, the only Azure deployments that exist; others answer 404 DeploymentNotFound.
    pub deployments: Option<Vec<String>>,
}

/// Why a stand-in could not start.
#[derive(Debug, thiserror::Error)]
pub enum StandinError {
    /// No key would ever be accepted.
    #[error(
        "no keys: pass --key KEY or --keys-file FILE (the stand-in enforces auth like the real providers)"
    )]
    NoKeys,
    /// The keys file could not be read at start.
    #[error("{0}")]
    KeysFile(String),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

/// State shared by every request.
#[derive(Debug)]
pub(crate) struct Shared {
    pub keys: Arc<KeyRing>,
    pub latency: Duration,
    pub faults: Faults,
    pub script: Script,
    pub stats: stats::Stats,
    pub deployments: Option<HashSet<String>>,
    pub counter: AtomicU64,
}

/// The router, for serving or for testing without a socket.
fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(surfaces::openai_chat))
        .route("/v1/models", get(surfaces::list_models))
        .route(
            "/openai/deployments/{deployment}/chat/completions",
            post(surfaces::azure_classic_chat),
        )
        .route("/openai/v1/chat/completions", post(surfaces::azure_v1_chat))
        .route("/openai/v1/models", get(surfaces::list_models))
        .route("/v1/messages", post(surfaces::anthropic_messages))
        .route("/stats", get(surfaces::stats))
        .fallback(surfaces::not_found)
        .with_state(shared)
}

/// A running stand-in.
#[derive(Debug)]
pub struct Standin {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Standin {
    /// Binds `addr` and serves in the current runtime until [`Standin::stop`] or drop.
    pub async fn start(addr: &str, config: StandinConfig) -> Result<Self, StandinError> {
        let keys = Arc::new(KeyRing::new(&config.keys));
        let first_stamp = config.keys_file.as_deref().map(keys::stamp);
        if let Some(path) = &config.keys_file {
            keys::read_keys_file(&keys, path).map_err(StandinError::KeysFile)?;
        }
        if keys.is_empty() && config.keys_file.is_none() {
            return Err(StandinError::NoKeys);
        }
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StandinError::Bind {
                addr: addr.to_owned(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StandinError::Bind {
            addr: addr.to_owned(),
            source,
        })?;
        let shared = Arc::new(Shared {
            keys: keys.clone(),
            latency: config.latency,
            faults: config.faults,
            script: config.script,
            stats: stats::Stats::default(),
            deployments: config.deployments.map(|d| d.into_iter().collect()),
            counter: AtomicU64::new(1),
        });
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let watcher = config
            .keys_file
            .map(|path| tokio::spawn(keys::watch_keys_file(keys, path, first_stamp.flatten())));
        let app = router(shared.clone());
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(error) = served.await {
                eprintln!("standin: server error: {error}");
            }
            if let Some(watcher) = watcher {
                watcher.abort();
            }
        });
        Ok(Self {
            addr,
            shared,
            shutdown: Some(shutdown),
            task,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`: the root every surface's paths hang from.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The counters so far.
    pub fn stats(&self) -> Snapshot {
        self.shared.stats.snapshot()
    }

    /// Replaces the keys that came from the keys file (for tests that rotate in process).
    pub fn set_file_keys(&self, text: &str) {
        self.shared.keys.load(text);
    }

    /// Stops accepting connections and waits for the server to finish.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// Waits until the server ends (it ends only when stopped).
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}
