//! A worker's health endpoint, for an orchestrator's probes and its stop hook; off unless the
//! worker is given an address.
//!
//! - `GET /readyz` answers 200 only while the worker is `healthy`: its preflight passed (and its
//!   probe, when it probes), it registered, it is not draining, and no provider it serves is
//!   quarantined. Otherwise 503, with the state and why. A Kubernetes rolling update therefore
//!   waits for a new pod whose key works before it stops an old one.
//! - `GET /livez` answers 200 while the process serves requests at all.
//! - `GET /drain` makes the worker lease nothing more, finish or give back its tasks, and
//!   deregister, and answers once it has: a `preStop` hook that returns when the pod is drained.
//!
//! Bodies are small JSON objects made of states, counts and reasons; reasons name providers and
//! fingerprints, never keys.

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use tokio::sync::{Notify, watch};

/// What the endpoint reports, as the worker sees itself now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HealthView {
    /// `starting`, `healthy`, `quarantined`, `draining` or `stopped`.
    pub state: String,
    /// Why it is not healthy.
    pub reason: Option<String>,
    /// Tasks running now.
    pub in_flight: u64,
    /// Tasks finished.
    pub done: u64,
    /// Attempts failed.
    pub failed: u64,
}

/// How the endpoint reads the worker and asks it to drain.
#[derive(Clone)]
pub struct HealthHooks {
    /// The worker's state now.
    pub view: Arc<dyn Fn() -> HealthView + Send + Sync>,
    /// Notified to make the worker drain.
    pub drain: Arc<Notify>,
    /// Turns true once the worker has drained and deregistered.
    pub drained: watch::Receiver<bool>,
}

/// Serves the endpoint on `listener` until `hooks.drained` turns true and the answers under way
/// are written.
pub async fn serve(listener: tokio::net::TcpListener, hooks: HealthHooks) -> std::io::Result<()> {
    let mut drained = hooks.drained.clone();
    let app = router(hooks);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = drained.wait_for(|drained| *drained).await;
        })
        .await
}

fn router(hooks: HealthHooks) -> Router {
    let ready = hooks.clone();
    let drain = hooks;
    Router::new()
        .route(
            "/readyz",
            get(move || {
                let view = (ready.view)();
                async move {
                    let status = if view.state == "healthy" {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    json(status, &view)
                }
            }),
        )
        .route("/livez", get(|| async { json(StatusCode::OK, &"alive") }))
        .route(
            "/drain",
            get(move || {
                let hooks = drain.clone();
                async move {
                    hooks.drain.notify_one();
                    let mut drained = hooks.drained.clone();
                    let _ = drained.wait_for(|drained| *drained).await;
                    json(StatusCode::OK, &(hooks.view)())
                }
            }),
        )
}

fn json(status: StatusCode, body: &impl Serialize) -> Response {
    let body = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned());
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}
