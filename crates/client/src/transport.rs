//! Sending one request to a provider: a fresh request per attempt (so a rotated key is used at
//! once), classification of error answers, retries, and turning an SSE body into a stream.

use std::collections::VecDeque;
use std::time::Duration;

use std::sync::Arc;

use agentfleet_config::{KeyShape, LiveCredential, TokenSource};
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::ChatStream;
use crate::error::{
    ErrorBody, ErrorKind, ModelError, Sent, classify, general_hint, parse_error_body, scrub,
};
use crate::retry::RetryPolicy;
use crate::sse::{SseDecoder, SseEvent};
use crate::types::StreamEvent;

/// The largest error body read: enough for any provider's message.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Settings every client shares.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// How long to wait for a connection.
    pub connect_timeout: Duration,
    /// How long one non-streaming request may take, and how long a stream may stay silent.
    pub request_timeout: Duration,
    /// What to retry, and how.
    pub retry: RetryPolicy,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
            retry: RetryPolicy::default(),
        }
    }
}

/// How a provider wants its key sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyHeader {
    /// `Authorization: Bearer KEY` (OpenAI, compatible servers, Entra tokens).
    Bearer,
    /// `api-key: KEY` (Azure OpenAI).
    ApiKey,
    /// `x-api-key: KEY` (Anthropic).
    XApiKey,
}

/// What a client authenticates with.
#[derive(Clone, Debug)]
pub(crate) enum Credential {
    /// Nothing (a keyless OpenAI-compatible server).
    None,
    /// A key, swappable by rotation.
    Key(Arc<LiveCredential>),
    /// An expiring bearer token, read again before it expires.
    Token(Arc<TokenSource>),
}

/// The credential of one client and how it travels.
#[derive(Clone, Debug)]
pub(crate) struct Auth {
    pub credential: Credential,
    pub header: KeyHeader,
}

impl Auth {
    /// Makes sure a token is fresh before a request: reading its source may run a command, so
    /// it happens on a blocking thread. Keys need nothing.
    pub async fn refresh(&self, provider: &str) -> Result<(), ModelError> {
        let Credential::Token(source) = &self.credential else {
            return Ok(());
        };
        let source = source.clone();
        let refreshed = tokio::task::spawn_blocking(move || source.refresh_if_stale()).await;
        let sent = Sent {
            provider: provider.to_owned(),
            fingerprint: None,
            shape: None,
        };
        match refreshed {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(failure)) => Err(ModelError::local(
                ErrorKind::AuthMissing,
                &sent,
                format!("entra_token: {}", failure.what),
            )
            .with_hint(Some(failure.fix))),
            Err(_) => Err(ModelError::local(
                ErrorKind::AuthMissing,
                &sent,
                "reading the token failed",
            )),
        }
    }

    /// After the provider refused the key sent in `rejected`: whether another key is now worth
    /// one more try (the source was read again and holds a new key, or another request already
    /// swapped one in).
    pub async fn renewed_after(&self, rejected: &ModelError) -> bool {
        let (Credential::Key(credential), ErrorKind::AuthRejected, Some(fingerprint)) =
            (&self.credential, rejected.kind, rejected.fingerprint)
        else {
            return false;
        };
        let credential = credential.clone();
        tokio::task::spawn_blocking(move || credential.renew_after_rejection(fingerprint))
            .await
            .unwrap_or(false)
    }

    /// The header carrying the current key, marked sensitive so that no debug output shows it,
    /// and what was sent, for errors.
    pub fn header(
        &self,
        provider: &str,
    ) -> Result<(Option<(HeaderName, HeaderValue)>, Sent), ModelError> {
        let nothing = || Sent {
            provider: provider.to_owned(),
            fingerprint: None,
            shape: None,
        };
        let current = match &self.credential {
            Credential::None => return Ok((None, nothing())),
            Credential::Key(credential) => credential.current(),
            Credential::Token(source) => source.current().ok_or_else(|| {
                ModelError::local(
                    ErrorKind::AuthMissing,
                    &nothing(),
                    "no token has been read yet",
                )
            })?,
        };
        let key = current.secret.expose().trim();
        let sent = Sent {
            provider: provider.to_owned(),
            fingerprint: Some(current.fingerprint),
            shape: Some(KeyShape::of(key)),
        };
        let (name, text) = match self.header {
            KeyHeader::Bearer => (reqwest::header::AUTHORIZATION, format!("Bearer {key}")),
            KeyHeader::ApiKey => (HeaderName::from_static("api-key"), key.to_owned()),
            KeyHeader::XApiKey => (HeaderName::from_static("x-api-key"), key.to_owned()),
        };
        let mut value =
            HeaderValue::from_str(&text).map_err(|_| {
                ModelError::local(
                ErrorKind::AuthRejected,
                &sent,
                "the key cannot be sent in an HTTP header: it contains line breaks or characters \
                 headers cannot carry",
            )
            .with_hint(Some("run `agentfleet check` to see what is wrong with the key".to_owned()))
            })?;
        value.set_sensitive(true);
        Ok((Some((name, value)), sent))
    }
}

/// A request ready to send, with what it carries.
pub(crate) struct Prepared {
    pub request: reqwest::RequestBuilder,
    pub sent: Sent,
}

/// A provider's extra explanation of an error answer, tried before the general hints.
pub(crate) type Explain = fn(&ErrorBody, &Sent, ErrorKind) -> Option<String>;

/// An HTTP client with the retry policy.
#[derive(Clone, Debug)]
pub(crate) struct Transport {
    http: reqwest::Client,
    options: ClientOptions,
}

impl Transport {
    pub fn new(options: ClientOptions) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.request_timeout)
            .user_agent(concat!("agentfleet/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http, options })
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn request_timeout(&self) -> Duration {
        self.options.request_timeout
    }

    /// Sends until success, a final error, or the attempts run out. `prepare` builds each
    /// attempt anew from the credential's current key. A key the provider refuses is renewed
    /// from its source once, and the request sent again at once with the new key; that extra
    /// attempt does not count against the retry policy.
    pub async fn send(
        &self,
        auth: &Auth,
        prepare: &(dyn Fn() -> Result<Prepared, ModelError> + Send + Sync),
        explain: Explain,
    ) -> Result<(reqwest::Response, Sent), ModelError> {
        let policy = self.options.retry;
        let mut attempt = 0;
        let mut renewed = false;
        loop {
            attempt += 1;
            let Prepared { request, sent } = prepare()?;
            let error = match request.send().await {
                Ok(response) if response.status().is_success() => return Ok((response, sent)),
                Ok(response) => error_from_response(response, &sent, explain).await,
                Err(error) => transport_error(&error, &sent),
            };
            let error = ModelError {
                attempts: attempt,
                ..error
            };
            if !renewed && auth.renewed_after(&error).await {
                renewed = true;
                continue;
            }
            let counted = attempt - u32::from(renewed);
            if !error.kind.is_retryable() || counted >= policy.max_attempts.max(1) {
                return Err(error);
            }
            tokio::time::sleep(policy.delay(counted, error.retry_after)).await;
        }
    }
}

/// Classifies an error answer, reading at most `MAX_ERROR_BODY` of its body.
async fn error_from_response(
    response: reqwest::Response,
    sent: &Sent,
    explain: Explain,
) -> ModelError {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        body.extend_from_slice(&chunk);
        if body.len() >= MAX_ERROR_BODY {
            body.truncate(MAX_ERROR_BODY);
            break;
        }
    }
    let parsed = parse_error_body(&body);
    let kind = classify(status, &parsed, sent.fingerprint.is_some());
    let hint = explain(&parsed, sent, kind).or_else(|| general_hint(kind, sent));
    ModelError {
        kind,
        provider: sent.provider.clone(),
        status: Some(status),
        code: parsed.code(),
        request_id: request_id(&headers),
        fingerprint: sent.fingerprint,
        message: scrub(&parsed.message),
        hint,
        retry_after: retry_after(&headers),
        attempts: 1,
    }
}

/// A failure to get an answer at all. The URL is left out: it is in the config already.
pub(crate) fn transport_error(error: &reqwest::Error, sent: &Sent) -> ModelError {
    let kind = if error.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Connection
    };
    let mut message = match kind {
        ErrorKind::Timeout => "no answer in time".to_owned(),
        _ if error.is_connect() => "could not connect".to_owned(),
        _ => "the connection failed".to_owned(),
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    let hint = match kind {
        ErrorKind::Timeout => {
            "the provider is slow or unreachable; check the network path and the timeout"
        }
        _ => {
            "check base_url or endpoint, DNS, proxies and firewalls between this process and the provider"
        }
    };
    ModelError::local(kind, sent, scrub(&message)).with_hint(Some(hint.to_owned()))
}

pub(crate) fn request_id(headers: &HeaderMap) -> Option<String> {
    [
        "x-request-id",
        "request-id",
        "apim-request-id",
        "x-ms-request-id",
    ]
    .iter()
    .find_map(|name| headers.get(*name))
    .and_then(|value| value.to_str().ok())
    .map(str::to_owned)
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(millis) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return Some(Duration::from_secs_f64(millis.max(0.0) / 1000.0));
    }
    text("retry-after")
        .and_then(|v| v.parse::<f64>().ok())
        .map(|s| Duration::from_secs_f64(s.max(0.0)))
}

/// Reads a whole successful body.
pub(crate) async fn read_body(
    response: reqwest::Response,
    sent: &Sent,
) -> Result<(bytes::Bytes, Option<String>), ModelError> {
    let request_id = request_id(response.headers());
    let body = response
        .bytes()
        .await
        .map_err(|error| transport_error(&error, sent))?;
    Ok((body, request_id))
}

/// Turns one SSE event into stream events; `Ok(true)` ends the stream.
pub(crate) trait StreamParser: Send + 'static {
    fn event(
        &mut self,
        event: SseEvent,
        out: &mut VecDeque<StreamEvent>,
    ) -> Result<bool, ModelError>;
    /// The body ended without the parser's end marker.
    fn end(&mut self, out: &mut VecDeque<StreamEvent>) -> Result<(), ModelError>;
}

/// Streams a successful SSE response through `parser`.
pub(crate) fn sse_stream(
    response: reqwest::Response,
    sent: Sent,
    parser: impl StreamParser,
) -> ChatStream {
    struct State<P> {
        bytes: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
        decoder: SseDecoder,
        parser: P,
        pending: VecDeque<StreamEvent>,
        sent: Sent,
        done: bool,
    }
    let state = State {
        bytes: response.bytes_stream().boxed(),
        decoder: SseDecoder::default(),
        parser,
        pending: VecDeque::new(),
        sent,
        done: false,
    };
    futures_util::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(event) = state.pending.pop_front() {
                return Some((Ok(event), state));
            }
            if state.done {
                return None;
            }
            let outcome = match state.bytes.next().await {
                Some(Ok(chunk)) => {
                    let mut result = Ok(());
                    for event in state.decoder.push(&chunk) {
                        match state.parser.event(event, &mut state.pending) {
                            Ok(true) => {
                                state.done = true;
                                break;
                            }
                            Ok(false) => {}
                            Err(error) => {
                                result = Err(error);
                                break;
                            }
                        }
                    }
                    result
                }
                Some(Err(error)) => Err(transport_error(&error, &state.sent)),
                None => {
                    state.done = true;
                    let mut result = Ok(());
                    if let Some(event) = state.decoder.finish() {
                        result = state.parser.event(event, &mut state.pending).map(|_| ());
                    }
                    result.and_then(|()| state.parser.end(&mut state.pending))
                }
            };
            if let Err(error) = outcome {
                state.done = true;
                state.pending.clear();
                return Some((Err(error), state));
            }
        }
    })
    .boxed()
}

/// A malformed-response error for a body or event this client cannot read.
pub(crate) fn malformed(sent: &Sent, what: impl std::fmt::Display) -> ModelError {
    ModelError::local(
        ErrorKind::MalformedResponse,
        sent,
        format!("could not read the provider's answer: {what}"),
    )
}
