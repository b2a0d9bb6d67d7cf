//! Model-call errors, classified into kinds the runtime acts on.
//!
//! Providers and the proxies in front of them report the same problem in many ways: OpenAI with
//! 401 and `invalid_api_key`, Gemini with 400 and `API_KEY_INVALID`, LiteLLM with a 500 wrapping
//! an upstream `AuthenticationError`. So the kind comes from the body as well as the status. The
//! provider's own message is kept, with anything key-shaped in it masked.

use std::fmt;
use std::time::Duration;

use agentfleet_config::fingerprint::looks_like_credential;
use agentfleet_config::{Fingerprint, KeyShape};
use serde::Serialize;

/// What went wrong, as the runtime needs to know it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// No credential reached the provider.
    AuthMissing,
    /// The provider refused the credential it got.
    AuthRejected,
    /// The credential is valid but may not do this (role, region, network, model access).
    PermissionDenied,
    /// Too many requests for now; retry after a while.
    RateLimited,
    /// Billing or quota: not a credential problem, and retrying will not help.
    QuotaExhausted,
    /// The provider refused the request itself.
    BadRequest,
    /// The model, deployment or path does not exist.
    NotFound,
    /// The provider failed.
    Server,
    /// No answer in time.
    Timeout,
    /// The provider could not be reached.
    Connection,
    /// The provider answered with something this client cannot read.
    MalformedResponse,
}

impl ErrorKind {
    /// The stable kebab-case code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::AuthMissing => "auth-missing",
            ErrorKind::AuthRejected => "auth-rejected",
            ErrorKind::PermissionDenied => "permission-denied",
            ErrorKind::RateLimited => "rate-limited",
            ErrorKind::QuotaExhausted => "quota-exhausted",
            ErrorKind::BadRequest => "bad-request",
            ErrorKind::NotFound => "not-found",
            ErrorKind::Server => "server",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connection => "connection",
            ErrorKind::MalformedResponse => "malformed-response",
        }
    }

    /// Whether the credential is the problem: the worker, not the task, is at fault.
    pub fn is_auth(self) -> bool {
        matches!(self, ErrorKind::AuthMissing | ErrorKind::AuthRejected)
    }

    /// Whether the same request may succeed if sent again later.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimited | ErrorKind::Server | ErrorKind::Timeout | ErrorKind::Connection
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A failed model call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct ModelError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// The provider's name in the config.
    pub provider: String,
    /// The HTTP status, when the provider answered.
    pub status: Option<u16>,
    /// The provider's error code or type (`invalid_api_key`, `DeploymentNotFound`, ...).
    pub code: Option<String>,
    /// The provider's request id (`x-request-id`, `request-id`, `apim-request-id`).
    pub request_id: Option<String>,
    /// The fingerprint of the key that was sent, if one was.
    pub fingerprint: Option<Fingerprint>,
    /// The provider's message, anything key-shaped masked; or what failed locally.
    pub message: String,
    /// The likely cause and what to do, in one line.
    pub hint: Option<String>,
    /// How long the provider asked us to wait, for rate limits.
    #[serde(skip)]
    pub retry_after: Option<Duration>,
    /// How many attempts were made.
    pub attempts: u32,
}

impl fmt::Display for ModelError {
    /// `openai: auth-rejected (HTTP 401, invalid_api_key, request req_1, key sha256:…): message; hint: …`
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}", self.provider, self.kind)?;
        let mut details = Vec::new();
        if let Some(status) = self.status {
            details.push(format!("HTTP {status}"));
        }
        if let Some(code) = &self.code {
            details.push(code.clone());
        }
        if let Some(request_id) = &self.request_id {
            details.push(format!("request {request_id}"));
        }
        if let Some(fingerprint) = &self.fingerprint {
            details.push(format!("key {fingerprint}"));
        }
        if self.attempts > 1 {
            details.push(format!("{} attempts", self.attempts));
        }
        if !details.is_empty() {
            write!(formatter, " ({})", details.join(", "))?;
        }
        if !self.message.is_empty() {
            write!(formatter, ": {}", self.message)?;
        }
        if let Some(hint) = &self.hint {
            write!(formatter, "; hint: {hint}")?;
        }
        Ok(())
    }
}

impl ModelError {
    /// An error raised before or without a provider's answer.
    pub(crate) fn local(kind: ErrorKind, sent: &Sent, message: impl Into<String>) -> Self {
        Self {
            kind,
            provider: sent.provider.clone(),
            status: None,
            code: None,
            request_id: None,
            fingerprint: sent.fingerprint,
            message: message.into(),
            hint: None,
            retry_after: None,
            attempts: 1,
        }
    }

    /// The same error with a hint, when it has none yet.
    pub(crate) fn with_hint(mut self, hint: Option<String>) -> Self {
        if self.hint.is_none() {
            self.hint = hint;
        }
        self
    }
}

/// What a request carried, for the error it may produce.
#[derive(Clone, Debug)]
pub(crate) struct Sent {
    /// The provider's name in the config.
    pub provider: String,
    /// The key's fingerprint, if a key was sent.
    pub fingerprint: Option<Fingerprint>,
    /// The key's shape, if a key was sent.
    pub shape: Option<KeyShape>,
}

/// A provider's error body, read from whichever envelope it used.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ErrorBody {
    /// The human message.
    pub message: String,
    /// `error.code`, `error.type`, `status`, `details[].reason`: whichever identify the error.
    pub codes: Vec<String>,
}

impl ErrorBody {
    /// The most specific code: the first one given.
    pub fn code(&self) -> Option<String> {
        self.codes.first().cloned()
    }

    /// Message and codes, lowercased, for matching.
    fn haystack(&self) -> String {
        let mut text = self.message.to_lowercase();
        for code in &self.codes {
            text.push(' ');
            text.push_str(&code.to_lowercase());
        }
        text
    }

    /// Whether the message or a code contains `needle` (lowercase).
    pub fn mentions(&self, needle: &str) -> bool {
        self.haystack().contains(needle)
    }
}

/// Reads the error envelopes seen in the wild: OpenAI's and LiteLLM's `{"error": {...}}`,
/// Azure's `{"error": {"code": "401"}}` and `{"statusCode": 401, "message"}`, Anthropic's
/// `{"type": "error", "error": {"type"}}`, Google's `{"error": {"status", "details"}}`, vLLM's
/// `{"error": "Unauthorized"}`, and plain text.
pub(crate) fn parse_error_body(body: &[u8]) -> ErrorBody {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        let text = String::from_utf8_lossy(body);
        return ErrorBody {
            message: text.trim().chars().take(500).collect(),
            codes: Vec::new(),
        };
    };
    let mut parsed = ErrorBody::default();
    let text = |value: &serde_json::Value| match value {
        serde_json::Value::String(text) => Some(text.clone()),
        serde_json::Value::Number(number) => Some(number.to_string()),
        _ => None,
    };
    match json.get("error") {
        Some(serde_json::Value::String(message)) => parsed.message = message.clone(),
        Some(error @ serde_json::Value::Object(_)) => {
            parsed.message = error.get("message").and_then(text).unwrap_or_default();
            for field in ["code", "type", "status"] {
                if let Some(code) = error.get(field).and_then(text) {
                    parsed.codes.push(code);
                }
            }
            if let Some(details) = error.get("details").and_then(|d| d.as_array()) {
                parsed.codes.extend(
                    details
                        .iter()
                        .filter_map(|d| d.get("reason"))
                        .filter_map(text),
                );
            }
        }
        _ => {
            parsed.message = json.get("message").and_then(text).unwrap_or_default();
            if let Some(code) = json.get("statusCode").and_then(text) {
                parsed.codes.push(code);
            }
        }
    }
    if parsed.message.is_empty() && parsed.codes.is_empty() {
        parsed.message = String::from_utf8_lossy(body).chars().take(500).collect();
    }
    parsed
}

const QUOTA: &[&str] = &[
    "insufficient_quota",
    "exceeded your current quota",
    "billing_error",
    "credit balance",
];
const AUTH_MISSING: &[&str] = &[
    "you didn't provide an api key",
    "missing bearer or basic authentication",
    "x-api-key header is required",
    "no api key passed",
    "unregistered callers",
    "must be set either by passing api_key",
    "could not resolve authentication method",
    "missing api key",
    "api key is missing",
];
const AUTH_REJECTED: &[&str] = &[
    "invalid_api_key",
    "incorrect api key",
    "invalid x-api-key",
    "api_key_invalid",
    "api key not valid",
    "api key not found",
    "invalid subscription key",
    "access token is missing, invalid",
    "invalid proxy server token",
    "token_not_found_in_db",
    "reported as leaked",
    "has been suspended",
    "account_deactivated",
    "has been deactivated",
    "mismatched_organization",
    "no_organization",
    "no such organization",
    "api keys are not supported",
    "authenticationerror",
];
const PERMISSION: &[&str] = &[
    "permissiondenied",
    "permission_error",
    "permission_denied",
    "principal does not have access",
    "unsupported_country_region_territory",
    "request_forbidden",
    "does not have access to model",
    "virtual network",
    "firewall rules",
    "public access is disabled",
];
const AUTH_WEAK: &[&str] = &[
    "authentication_error",
    "authentication error",
    "auth_error",
    "unauthorized",
    "invalid authentication",
];

/// The kind of an HTTP error answer. `sent_key` tells a bare 401 for a key that was refused
/// from one where none was sent.
pub(crate) fn classify(status: u16, body: &ErrorBody, sent_key: bool) -> ErrorKind {
    let text = body.haystack();
    let any = |needles: &[&str]| needles.iter().any(|needle| text.contains(needle));
    if any(QUOTA) {
        return ErrorKind::QuotaExhausted;
    }
    if status == 429 {
        return ErrorKind::RateLimited;
    }
    if any(AUTH_MISSING) {
        return ErrorKind::AuthMissing;
    }
    if any(AUTH_REJECTED) {
        return ErrorKind::AuthRejected;
    }
    if any(PERMISSION) {
        return ErrorKind::PermissionDenied;
    }
    if status == 401 || any(AUTH_WEAK) {
        return if sent_key {
            ErrorKind::AuthRejected
        } else {
            ErrorKind::AuthMissing
        };
    }
    match status {
        403 => ErrorKind::PermissionDenied,
        404 => ErrorKind::NotFound,
        408 => ErrorKind::Timeout,
        409 | 500..=599 => ErrorKind::Server,
        _ => ErrorKind::BadRequest,
    }
}

/// The provider's message with anything key-shaped masked (OpenAI echoes 12 characters of a
/// rejected key; LiteLLM echoes more) and its length bounded.
pub(crate) fn scrub(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.contains("**") || looks_like_credential(word.trim_end_matches('.')) {
            out.push_str("[key masked]");
            if word.ends_with('.') {
                out.push('.');
            }
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in message.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '*' | '.' | '…') {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    if out.chars().count() > 500 {
        out = out.chars().take(500).collect::<String>() + "…";
    }
    out
}

/// Hints any provider's errors can share; provider modules give more specific ones first.
pub(crate) fn general_hint(kind: ErrorKind, sent: &Sent) -> Option<String> {
    let key = sent
        .fingerprint
        .map_or_else(|| "the key".to_owned(), |f| format!("the key ({f})"));
    Some(match kind {
        ErrorKind::AuthMissing if sent.fingerprint.is_none() => {
            "no key was sent: configure api_key for this provider".to_owned()
        }
        ErrorKind::AuthMissing => {
            "no key reached the provider although one was sent: a proxy in between may drop the auth header".to_owned()
        }
        ErrorKind::AuthRejected => format!(
            "{key} was refused: it is wrong, revoked, or from another account or project; compare \
             the fingerprint with `agentfleet check` on a machine where it works"
        ),
        ErrorKind::PermissionDenied => {
            "the key works but may not do this (role, region, network or model access); a new key will not help".to_owned()
        }
        ErrorKind::QuotaExhausted => "billing or quota, not the credential: add credit or raise the limit".to_owned(),
        ErrorKind::NotFound => "check the model or deployment name and the base URL".to_owned(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(status: u16, body: &str) -> ErrorKind {
        classify(status, &parse_error_body(body.as_bytes()), true)
    }

    #[test]
    fn bodies_decide_as_well_as_statuses() {
        assert_eq!(
            kind(
                401,
                r#"{"error":{"message":"Incorrect API key provided: sk-abc***wxyz.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#
            ),
            ErrorKind::AuthRejected
        );
        assert_eq!(
            kind(
                401,
                r#"{"error":{"message":"You didn't provide an API key. You need to provide your API key in an Authorization header","type":"invalid_request_error","param":null,"code":null}}"#
            ),
            ErrorKind::AuthMissing
        );
        assert_eq!(
            kind(
                400,
                r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}"#
            ),
            ErrorKind::AuthRejected
        );
        assert_eq!(
            kind(
                500,
                r#"{"error": "litellm.AuthenticationError: AuthenticationError: OpenAIException - The api_key client option must be set either by passing api_key to the client or by setting the OPENAI_API_KEY environment variable"}"#
            ),
            ErrorKind::AuthMissing
        );
        assert_eq!(
            kind(
                401,
                r#"{"error":{"code":"PermissionDenied","message":"Principal does not have access to API/Operation."}}"#
            ),
            ErrorKind::PermissionDenied
        );
        assert_eq!(
            kind(
                429,
                r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#
            ),
            ErrorKind::QuotaExhausted
        );
        assert_eq!(
            kind(
                429,
                r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#
            ),
            ErrorKind::RateLimited
        );
        assert_eq!(
            kind(
                403,
                r#"{"error":{"code":403,"message":"Your API key was reported as leaked. Please use another API key.","status":"PERMISSION_DENIED"}}"#
            ),
            ErrorKind::AuthRejected
        );
        assert_eq!(
            kind(
                403,
                r#"{"error":{"code":403,"message":"Method doesn't allow unregistered callers (callers without established identity).","status":"PERMISSION_DENIED"}}"#
            ),
            ErrorKind::AuthMissing
        );
        assert_eq!(
            kind(401, r#"{"error": "Unauthorized"}"#),
            ErrorKind::AuthRejected
        );
        assert_eq!(
            classify(401, &parse_error_body(b"unauthorized"), false),
            ErrorKind::AuthMissing
        );
        assert_eq!(
            kind(
                404,
                r#"{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist."}}"#
            ),
            ErrorKind::NotFound
        );
        assert_eq!(
            kind(
                529,
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
            ),
            ErrorKind::Server
        );
        assert_eq!(
            kind(
                400,
                r#"{"error":{"message":"Invalid 'messages'","type":"invalid_request_error"}}"#
            ),
            ErrorKind::BadRequest
        );
        assert_eq!(kind(502, "<html>Bad Gateway</html>"), ErrorKind::Server);
        assert_eq!(
            kind(
                403,
                r#"{"error":{"code":"unsupported_country_region_territory","message":"Country, region, or territory not supported","type":"request_forbidden"}}"#
            ),
            ErrorKind::PermissionDenied
        );
    }

    #[test]
    fn envelopes_are_read() {
        let azure = parse_error_body(br#"{"statusCode":401,"message":"Unauthorized. Access token is missing, invalid, audience is incorrect (https://cognitiveservices.azure.com), or have expired."}"#);
        assert_eq!(azure.codes, ["401"]);
        assert!(azure.message.starts_with("Unauthorized. Access token"));
        let anthropic = parse_error_body(br#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"},"request_id":"req_1"}"#);
        assert_eq!(
            (anthropic.message.as_str(), anthropic.code()),
            ("invalid x-api-key", Some("authentication_error".to_owned()))
        );
    }

    #[test]
    fn key_echoes_are_masked() {
        let scrubbed = scrub(
            "Incorrect API key provided: sk-VKMIs***************************************wjh3. You can find your API key at https://platform.openai.com/account/api-keys.",
        );
        assert_eq!(
            scrubbed,
            "Incorrect API key provided: [key masked]. You can find your API key at https://platform.openai.com/account/api-keys."
        );
        assert!(
            !scrub("Received API Key = sk-proj-Zq8vN3kL0pX9tYzA4cE8fG1h, Key Hash")
                .contains("Zq8v")
        );
        assert_eq!(scrub("plain words stay"), "plain words stay");
    }

    #[test]
    fn kinds_know_what_the_runtime_does_with_them() {
        assert!(ErrorKind::AuthRejected.is_auth() && !ErrorKind::AuthRejected.is_retryable());
        assert!(!ErrorKind::PermissionDenied.is_retryable());
        assert!(ErrorKind::RateLimited.is_retryable() && ErrorKind::Connection.is_retryable());
        assert!(!ErrorKind::QuotaExhausted.is_retryable());
    }
}
