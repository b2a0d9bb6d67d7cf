//! A loopback HTTP server that answers with canned responses, in order (repeating the last),
//! and records every request: method, path and query, headers, body.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// One canned answer.
#[derive(Clone, Debug)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Canned {
    pub fn json(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn sse(body: &str) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type", "text/event-stream".into())],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path_and_query: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("request body is JSON")
    }

    /// Every place a key could leak to other than `allowed_header`.
    pub fn everything_but(&self, allowed_header: &str) -> String {
        let headers: Vec<String> = self
            .headers
            .iter()
            .filter(|(name, _)| name != allowed_header)
            .map(|(name, value)| format!("{name}: {value}"))
            .collect();
        format!(
            "{} {}\n{}\n{}",
            self.method,
            self.path_and_query,
            headers.join("\n"),
            self.body
        )
    }
}

#[derive(Default)]
struct Log {
    answers: Vec<Canned>,
    next: usize,
    requests: Vec<Recorded>,
}

pub struct Recorder {
    pub url: String,
    log: Arc<Mutex<Log>>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Recorder {
    pub async fn start(answers: Vec<Canned>) -> Self {
        let log = Arc::new(Mutex::new(Log {
            answers,
            ..Log::default()
        }));
        let shared = log.clone();
        let handler = move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let log = shared.clone();
            async move {
                let canned = {
                    let mut log = log.lock().unwrap();
                    log.requests.push(Recorded {
                        method: method.to_string(),
                        path_and_query: uri
                            .path_and_query()
                            .map(|p| p.to_string())
                            .unwrap_or_default(),
                        headers: headers
                            .iter()
                            .map(|(n, v)| {
                                (
                                    n.as_str().to_owned(),
                                    v.to_str().unwrap_or("<binary>").to_owned(),
                                )
                            })
                            .collect(),
                        body: String::from_utf8_lossy(&body).into_owned(),
                    });
                    let index = log.next.min(log.answers.len() - 1);
                    log.next += 1;
                    log.answers[index].clone()
                };
                tokio::time::sleep(canned.delay).await;
                let mut response: Response =
                    (StatusCode::from_u16(canned.status).unwrap(), canned.body).into_response();
                for (name, value) in canned.headers {
                    response.headers_mut().insert(name, value.parse().unwrap());
                }
                response
            }
        };
        let app = axum::Router::new().fallback(handler);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            url,
            log,
            _shutdown: shutdown,
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().requests.clone()
    }

    pub fn only_request(&self) -> Recorded {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "{requests:#?}");
        requests.into_iter().next().unwrap()
    }
}

/// A recorded fixture body.
pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture")
}

/// A spec for `kind` at `url` with `key`, model `m`.
pub fn spec(
    kind: agentfleet_config::ProviderKind,
    url: Option<&str>,
    key: Option<&str>,
) -> agentfleet_client::ClientSpec {
    agentfleet_client::ClientSpec {
        name: "p".into(),
        kind,
        model: "m".into(),
        url: url.map(str::to_owned),
        deployment: None,
        api_version: None,
        organization: None,
        project: None,
        credential: key.map(|key| {
            Arc::new(agentfleet_config::LiveCredential::new(Arc::new(
                agentfleet_config::Secret::new(key.to_owned()),
            )))
        }),
        token: None,
    }
}

/// Options with quick retries and a short timeout, so failure paths test fast.
pub fn fast_options() -> agentfleet_client::ClientOptions {
    agentfleet_client::ClientOptions {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        retry: agentfleet_client::RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
        },
    }
}

pub fn build(spec: agentfleet_client::ClientSpec) -> Arc<dyn agentfleet_client::ModelClient> {
    agentfleet_client::build(spec, fast_options()).expect("client builds")
}
