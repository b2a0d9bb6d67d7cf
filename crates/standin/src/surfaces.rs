//! The provider surfaces: OpenAI, Azure OpenAI (classic and v1 paths) and Anthropic, each with
//! its own paths, auth header, success bodies, SSE framing and error bodies, as the real
//! services send them.
//!
//! These wire types are this server's own, written from the providers' formats independently of
//! agentfleet's clients, so that the client tests meet a second implementation, not a mirror.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Shared;
use crate::keys::Verdict;
use crate::script::{Conversation, Reply};

/// Which provider a request came in as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Surface {
    OpenAi,
    Azure,
    Anthropic,
}

impl Surface {
    fn name(self) -> &'static str {
        match self {
            Surface::OpenAi => "openai",
            Surface::Azure => "azure",
            Surface::Anthropic => "anthropic",
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn json_response(
    status: StatusCode,
    headers: &[(&'static str, String)],
    body: Vec<u8>,
) -> Response {
    let mut response = (status, body).into_response();
    let map = response.headers_mut();
    map.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            map.insert(*name, value);
        }
    }
    response
}

fn error_response(
    status: u16,
    headers: &[(&'static str, String)],
    body: serde_json::Value,
) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, headers, body.to_string().into_bytes())
}

/// OpenAI's masked echo of a refused key: the first 8 and last 4 characters around asterisks.
pub(crate) fn masked(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    let (head, tail) = if chars.len() > 12 {
        (8, 4)
    } else {
        (2.min(chars.len()), 2.min(chars.len().saturating_sub(2)))
    };
    let stars = chars.len().saturating_sub(head + tail).max(1);
    let head: String = chars[..head].iter().collect();
    let tail: String = chars[chars.len() - tail..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(stars))
}

fn openai_error(
    message: &str,
    r#type: &str,
    code: Option<&str>,
    param: Option<&str>,
) -> serde_json::Value {
    json!({"error": {"message": message, "type": r#type, "param": param, "code": code}})
}

/// The answer to a request whose key is missing or refused, in the surface's own shape.
fn auth_failure(surface: Surface, presented: &Presented) -> Response {
    match (surface, presented) {
        (Surface::OpenAi, Presented::Nothing) => error_response(
            401,
            &[],
            openai_error(
                "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                None,
                None,
            ),
        ),
        (Surface::OpenAi, Presented::Bearer(key) | Presented::Header(key)) => error_response(
            401,
            &[],
            openai_error(
                &format!(
                    "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
                    masked(key)
                ),
                "invalid_request_error",
                Some("invalid_api_key"),
                None,
            ),
        ),
        (Surface::Azure, Presented::Bearer(_)) => error_response(
            401,
            &[],
            json!({"statusCode": 401, "message": "Unauthorized. Access token is missing, invalid, audience is incorrect (https://cognitiveservices.azure.com), or have expired."}),
        ),
        (Surface::Azure, Presented::Nothing) => error_response(
            401,
            &[],
            json!({"error": {"code": "401", "message": "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API."}}),
        ),
        (Surface::Azure, Presented::Header(_)) => error_response(
            401,
            &[],
            json!({"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}}),
        ),
        (Surface::Anthropic, Presented::Nothing) => error_response(
            401,
            &[],
            json!({"type": "error", "error": {"type": "authentication_error", "message": "x-api-key header is required"}, "request_id": request_id("req_")}),
        ),
        (Surface::Anthropic, _) => error_response(
            401,
            &[],
            json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}, "request_id": request_id("req_")}),
        ),
    }
}

/// An injected fault in the surface's own shape.
fn fault(surface: Surface, status: u16) -> Response {
    let retry = [
        ("retry-after-ms", "20".to_owned()),
        ("retry-after", "0".to_owned()),
    ];
    match surface {
        Surface::OpenAi => {
            let body = match status {
                429 => openai_error(
                    "Rate limit reached for requests. Please try again shortly.",
                    "requests",
                    Some("rate_limit_exceeded"),
                    None,
                ),
                500 => openai_error(
                    "The server had an error while processing your request. Sorry about that!",
                    "server_error",
                    None,
                    None,
                ),
                503 => openai_error(
                    "The engine is currently overloaded, please try again later.",
                    "server_error",
                    None,
                    None,
                ),
                _ => openai_error(
                    "The stand-in injected this error.",
                    "server_error",
                    None,
                    None,
                ),
            };
            error_response(status, &retry, body)
        }
        Surface::Azure => {
            let body = match status {
                429 => {
                    json!({"error": {"code": "429", "message": "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 1 second."}})
                }
                other => {
                    json!({"error": {"code": "InternalServerError", "message": format!("The service failed with status {other}.")}})
                }
            };
            error_response(status, &retry, body)
        }
        Surface::Anthropic => {
            let (r#type, message) = match status {
                429 => (
                    "rate_limit_error",
                    "Number of request tokens has exceeded your per-minute rate limit.",
                ),
                529 => ("overloaded_error", "Overloaded"),
                _ => ("api_error", "Internal server error"),
            };
            error_response(
                status,
                &retry,
                json!({"type": "error", "error": {"type": r#type, "message": message}, "request_id": request_id("req_")}),
            )
        }
    }
}

fn request_id(prefix: &str) -> String {
    format!("{prefix}{:016x}", fastrand::u64(..))
}

/// The credential a request presented.
pub(crate) enum Presented {
    Nothing,
    Bearer(String),
    Header(String),
}

impl Presented {
    fn key(&self) -> Option<&str> {
        match self {
            Presented::Nothing => None,
            Presented::Bearer(key) | Presented::Header(key) => Some(key),
        }
    }
}

/// The credential a request presented where `surface` looks for one: OpenAI reads only
/// `Authorization: Bearer`, Anthropic only `x-api-key`, Azure `api-key` and then a bearer token.
fn presented(surface: Surface, headers: &HeaderMap) -> Presented {
    let named = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let bearer = || {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .map(str::to_owned)
    };
    let found = match surface {
        Surface::OpenAi => bearer().map(Presented::Bearer),
        Surface::Azure => named("api-key")
            .map(Presented::Header)
            .or_else(|| bearer().map(Presented::Bearer)),
        Surface::Anthropic => named("x-api-key").map(Presented::Header),
    };
    found.unwrap_or(Presented::Nothing)
}

/// Applies latency, auth and faults; `Ok` carries the key for the stats.
async fn admit(
    state: &Shared,
    surface: Surface,
    headers: &HeaderMap,
) -> Result<Option<String>, Response> {
    if !state.latency.is_zero() {
        tokio::time::sleep(state.latency).await;
    }
    let presented = presented(surface, headers);
    let accepted = presented
        .key()
        .is_some_and(|key| state.keys.verdict(key) == Verdict::Accepted);
    if !accepted {
        let key = presented.key().map(str::to_owned);
        state.stats.record(surface.name(), key.as_deref(), 401);
        return Err(auth_failure(surface, &presented));
    }
    let key = presented.key().map(str::to_owned);
    if let Some(status) = state.faults.draw() {
        state.stats.record(surface.name(), key.as_deref(), status);
        return Err(fault(surface, status));
    }
    Ok(key)
}

#[derive(Deserialize)]
struct OpenAiRequest {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    messages: Option<Vec<OpenAiMessage>>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<OpenAiStreamOptions>,
}

#[derive(Deserialize)]
struct OpenAiStreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Deserialize)]
struct OpenAiMessage {
    role: String,
    #[serde(default)]
    content: Option<serde_json::Value>,
}

/// Text of a content that is a string or an array of parts.
fn text_of(content: Option<&serde_json::Value>) -> String {
    match content {
        Some(serde_json::Value::String(text)) => text.clone(),
        Some(serde_json::Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| {
                part.get("text")
                    .and_then(|t| t.as_str())
                    .or_else(|| part.get("content").and_then(|c| c.as_str()))
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn openai_conversation(messages: &[OpenAiMessage]) -> Conversation {
    let mut conversation = Conversation::default();
    for message in messages {
        let text = text_of(message.content.as_ref());
        if message.role == "system" || message.role == "developer" {
            if !conversation.system.is_empty() {
                conversation.system.push('\n');
            }
            conversation.system.push_str(&text);
        } else {
            conversation.messages.push((message.role.clone(), text));
        }
    }
    conversation
}

#[derive(Serialize)]
struct Completion<'a> {
    id: String,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [CompletionChoice<'a>; 1],
    usage: CompletionUsage,
    system_fingerprint: &'static str,
}

#[derive(Serialize)]
struct CompletionChoice<'a> {
    index: u32,
    message: CompletionMessage<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct CompletionMessage<'a> {
    role: &'static str,
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<CompletionToolCall<'a>>,
    refusal: Option<()>,
}

#[derive(Serialize)]
struct CompletionToolCall<'a> {
    id: String,
    r#type: &'static str,
    function: CompletionFunction<'a>,
}

#[derive(Serialize)]
struct CompletionFunction<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize, Clone, Copy)]
struct CompletionUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

fn call_id(state: &Shared, prefix: &str) -> String {
    format!(
        "{prefix}{:012x}",
        state.counter.fetch_add(1, Ordering::Relaxed)
    )
}

/// Handles an OpenAI-format chat request on the OpenAI or Azure surface.
async fn openai_format_chat(
    state: Arc<Shared>,
    surface: Surface,
    headers: HeaderMap,
    body: Bytes,
    deployment: Option<String>,
) -> Response {
    let key = match admit(&state, surface, &headers).await {
        Ok(key) => key,
        Err(response) => return response,
    };
    let record = |status: u16| state.stats.record(surface.name(), key.as_deref(), status);
    let request: OpenAiRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(_) => {
            record(400);
            return error_response(
                400,
                &[],
                openai_error(
                    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
                    "invalid_request_error",
                    None,
                    None,
                ),
            );
        }
    };
    let Some(messages) = request.messages.filter(|m| !m.is_empty()) else {
        record(400);
        return error_response(
            400,
            &[],
            openai_error(
                "Missing required parameter: 'messages'.",
                "invalid_request_error",
                Some("missing_required_parameter"),
                Some("messages"),
            ),
        );
    };
    let model = match (request.model, deployment) {
        (_, Some(deployment)) => deployment,
        (Some(model), None) => model,
        (None, None) => {
            record(400);
            return error_response(
                400,
                &[],
                openai_error(
                    "you must provide a model parameter",
                    "invalid_request_error",
                    None,
                    None,
                ),
            );
        }
    };
    let conversation = openai_conversation(&messages);
    let reply = state.script.reply(&conversation);
    let usage = CompletionUsage {
        prompt_tokens: conversation.prompt_tokens(),
        completion_tokens: reply.completion_tokens(),
        total_tokens: conversation.prompt_tokens() + reply.completion_tokens(),
    };
    let id = call_id(&state, "chatcmpl-");
    let mut response_headers = vec![("x-request-id", request_id("req_"))];
    if surface == Surface::Azure {
        response_headers.push(("apim-request-id", request_id("")));
    }
    record(200);
    if request.stream {
        let include_usage = request.stream_options.is_some_and(|o| o.include_usage);
        let body = openai_sse(&state, &id, &model, &reply, usage, include_usage);
        return sse_response(body, &response_headers);
    }
    let tool_calls: Vec<CompletionToolCall<'_>> = reply
        .tool_calls
        .iter()
        .map(|(name, arguments)| CompletionToolCall {
            id: call_id(&state, "call_"),
            r#type: "function",
            function: CompletionFunction { name, arguments },
        })
        .collect();
    let finish_reason = if tool_calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    let content = if tool_calls.is_empty() || !reply.content.is_empty() {
        Some(reply.content.as_str())
    } else {
        None
    };
    let completion = Completion {
        id,
        object: "chat.completion",
        created: now(),
        model: &model,
        choices: [CompletionChoice {
            index: 0,
            message: CompletionMessage {
                role: "assistant",
                content,
                tool_calls,
                refusal: None,
            },
            logprobs: None,
            finish_reason,
        }],
        usage,
        system_fingerprint: "fp_standin",
    };
    json_response(
        StatusCode::OK,
        &response_headers,
        serde_json::to_vec(&completion).unwrap_or_default(),
    )
}

fn sse_response(body: String, headers: &[(&'static str, String)]) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let map = response.headers_mut();
    map.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    map.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            map.insert(*name, value);
        }
    }
    response
}

/// Splits text into word-sized pieces, each keeping its leading space, as models stream.
fn pieces(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (index, c) in text.char_indices().skip(1) {
        if c == ' ' {
            out.push(&text[start..index]);
            start = index;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

fn openai_sse(
    state: &Shared,
    id: &str,
    model: &str,
    reply: &Reply,
    usage: CompletionUsage,
    include_usage: bool,
) -> String {
    let created = now();
    let mut out = String::new();
    let mut chunk = |choices: serde_json::Value, usage: Option<CompletionUsage>| {
        let mut value = json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model, "system_fingerprint": "fp_standin", "choices": choices});
        if let Some(usage) = usage {
            value["usage"] = json!(usage);
        }
        out.push_str("data: ");
        out.push_str(&value.to_string());
        out.push_str("\n\n");
    };
    chunk(
        json!([{"index": 0, "delta": {"role": "assistant", "content": "", "refusal": null}, "logprobs": null, "finish_reason": null}]),
        None,
    );
    for piece in pieces(&reply.content) {
        chunk(
            json!([{"index": 0, "delta": {"content": piece}, "logprobs": null, "finish_reason": null}]),
            None,
        );
    }
    for (index, (name, arguments)) in reply.tool_calls.iter().enumerate() {
        chunk(
            json!([{"index": 0, "delta": {"tool_calls": [{"index": index, "id": call_id(state, "call_"), "type": "function", "function": {"name": name, "arguments": ""}}]}, "logprobs": null, "finish_reason": null}]),
            None,
        );
        let middle = arguments.len() / 2;
        let split = (middle..=arguments.len())
            .find(|i| arguments.is_char_boundary(*i))
            .unwrap_or(arguments.len());
        for part in [&arguments[..split], &arguments[split..]] {
            chunk(
                json!([{"index": 0, "delta": {"tool_calls": [{"index": index, "function": {"arguments": part}}]}, "logprobs": null, "finish_reason": null}]),
                None,
            );
        }
    }
    let finish = if reply.tool_calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    chunk(
        json!([{"index": 0, "delta": {}, "logprobs": null, "finish_reason": finish}]),
        None,
    );
    if include_usage {
        chunk(json!([]), Some(usage));
    }
    out.push_str("data: [DONE]\n\n");
    out
}

/// `POST /v1/chat/completions`.
pub(crate) async fn openai_chat(
    State(state): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    openai_format_chat(state, Surface::OpenAi, headers, body, None).await
}

/// `POST /openai/deployments/{deployment}/chat/completions?api-version=...`.
pub(crate) async fn azure_classic_chat(
    State(state): State<Arc<Shared>>,
    Path(deployment): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let has_version = uri.query().is_some_and(|q| {
        q.split('&')
            .any(|pair| pair.starts_with("api-version=") && pair.len() > "api-version=".len())
    });
    if !has_version {
        return error_response(
            404,
            &[],
            json!({"error": {"code": "404", "message": "Resource not found"}}),
        );
    }
    if let Some(deployments) = &state.deployments
        && !deployments.contains(&deployment)
    {
        // Azure authenticates before it looks the deployment up.
        if let Err(response) = admit(&state, Surface::Azure, &headers).await {
            return response;
        }
        state
            .stats
            .record("azure", presented(Surface::Azure, &headers).key(), 404);
        return error_response(
            404,
            &[],
            json!({"error": {"code": "DeploymentNotFound", "message": "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."}}),
        );
    }
    openai_format_chat(state, Surface::Azure, headers, body, Some(deployment)).await
}

/// `POST /openai/v1/chat/completions`.
pub(crate) async fn azure_v1_chat(
    State(state): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    openai_format_chat(state, Surface::Azure, headers, body, None).await
}

/// `GET /v1/models` (OpenAI, or Anthropic when its headers are present) and `GET /openai/v1/models`.
pub(crate) async fn list_models(
    State(state): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let surface = if uri.path().starts_with("/openai/") {
        Surface::Azure
    } else if headers.contains_key("anthropic-version") || headers.contains_key("x-api-key") {
        Surface::Anthropic
    } else {
        Surface::OpenAi
    };
    let key = match admit(&state, surface, &headers).await {
        Ok(key) => key,
        Err(response) => return response,
    };
    state.stats.record(surface.name(), key.as_deref(), 200);
    let body = match surface {
        Surface::Anthropic => {
            json!({"data": [{"type": "model", "id": "standin", "display_name": "Stand-in", "created_at": "2025-01-01T00:00:00Z"}], "has_more": false, "first_id": "standin", "last_id": "standin"})
        }
        _ => {
            json!({"object": "list", "data": [{"id": "standin", "object": "model", "created": 0, "owned_by": "agentfleet"}]})
        }
    };
    json_response(
        StatusCode::OK,
        &[("x-request-id", request_id("req_"))],
        body.to_string().into_bytes(),
    )
}

#[derive(Deserialize)]
struct AnthropicRequest {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    system: Option<serde_json::Value>,
    #[serde(default)]
    messages: Option<Vec<AnthropicMessage>>,
    #[serde(default)]
    stream: bool,
}

#[derive(Deserialize)]
struct AnthropicMessage {
    role: String,
    content: serde_json::Value,
}

fn anthropic_conversation(
    request: &AnthropicRequest,
    messages: &[AnthropicMessage],
) -> Conversation {
    let mut conversation = Conversation {
        system: text_of(request.system.as_ref()),
        messages: Vec::new(),
    };
    for message in messages {
        match &message.content {
            serde_json::Value::Array(blocks) => {
                let mut text = Vec::new();
                for block in blocks {
                    match block.get("type").and_then(|t| t.as_str()) {
                        Some("tool_result") => {
                            let result = match block.get("content") {
                                Some(serde_json::Value::String(s)) => s.clone(),
                                other => text_of(other),
                            };
                            conversation.messages.push(("tool".to_owned(), result));
                        }
                        Some("text") => text.push(
                            block
                                .get("text")
                                .and_then(|t| t.as_str())
                                .unwrap_or_default()
                                .to_owned(),
                        ),
                        _ => {}
                    }
                }
                if !text.is_empty() || message.role == "assistant" {
                    conversation
                        .messages
                        .push((message.role.clone(), text.join("\n")));
                }
            }
            other => conversation
                .messages
                .push((message.role.clone(), text_of(Some(other)))),
        }
    }
    conversation
}

fn anthropic_error(status: u16, r#type: &str, message: &str) -> Response {
    error_response(
        status,
        &[],
        json!({"type": "error", "error": {"type": r#type, "message": message}, "request_id": request_id("req_")}),
    )
}

/// `POST /v1/messages`.
pub(crate) async fn anthropic_messages(
    State(state): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = match admit(&state, Surface::Anthropic, &headers).await {
        Ok(key) => key,
        Err(response) => return response,
    };
    let record = |status: u16| state.stats.record("anthropic", key.as_deref(), status);
    if !headers.contains_key("anthropic-version") {
        record(400);
        return anthropic_error(
            400,
            "invalid_request_error",
            "anthropic-version: header is required",
        );
    }
    let Ok(request) = serde_json::from_slice::<AnthropicRequest>(&body) else {
        record(400);
        return anthropic_error(
            400,
            "invalid_request_error",
            "There was an issue with your request body: it is not valid JSON.",
        );
    };
    let Some(model) = request.model.clone() else {
        record(400);
        return anthropic_error(400, "invalid_request_error", "model: Field required");
    };
    if request.max_tokens.is_none() {
        record(400);
        return anthropic_error(400, "invalid_request_error", "max_tokens: Field required");
    }
    let Some(messages) = request.messages.as_deref().filter(|m| !m.is_empty()) else {
        record(400);
        return anthropic_error(400, "invalid_request_error", "messages: Field required");
    };
    let conversation = anthropic_conversation(&request, messages);
    let reply = state.script.reply(&conversation);
    let id = call_id(&state, "msg_");
    let input_tokens = conversation.prompt_tokens();
    let output_tokens = reply.completion_tokens();
    let stop_reason = if reply.tool_calls.is_empty() {
        "end_turn"
    } else {
        "tool_use"
    };
    let mut content = Vec::new();
    if !reply.content.is_empty() || reply.tool_calls.is_empty() {
        content.push(json!({"type": "text", "text": reply.content}));
    }
    for (name, arguments) in &reply.tool_calls {
        let input: serde_json::Value =
            serde_json::from_str(arguments).unwrap_or_else(|_| json!({}));
        content.push(json!({"type": "tool_use", "id": call_id(&state, "toolu_"), "name": name, "input": input}));
    }
    record(200);
    let headers = [("request-id", request_id("req_"))];
    if !request.stream {
        let body = json!({"id": id, "type": "message", "role": "assistant", "model": model, "content": content, "stop_reason": stop_reason, "stop_sequence": null, "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens}});
        return json_response(StatusCode::OK, &headers, body.to_string().into_bytes());
    }
    let mut out = String::new();
    let mut event = |name: &str, data: serde_json::Value| {
        out.push_str("event: ");
        out.push_str(name);
        out.push_str("\ndata: ");
        out.push_str(&data.to_string());
        out.push_str("\n\n");
    };
    event(
        "message_start",
        json!({"type": "message_start", "message": {"id": id, "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": input_tokens, "output_tokens": 1}}}),
    );
    for (index, block) in content.iter().enumerate() {
        match block["type"].as_str() {
            Some("text") => {
                event(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}),
                );
                event("ping", json!({"type": "ping"}));
                for piece in pieces(block["text"].as_str().unwrap_or_default()) {
                    event(
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}}),
                    );
                }
            }
            _ => {
                event(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}}),
                );
                let input = block["input"].to_string();
                let middle = (input.len() / 2..=input.len())
                    .find(|i| input.is_char_boundary(*i))
                    .unwrap_or(input.len());
                for part in [&input[..middle], &input[middle..]] {
                    event(
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": part}}),
                    );
                }
            }
        }
        event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        );
    }
    event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null}, "usage": {"output_tokens": output_tokens}}),
    );
    event("message_stop", json!({"type": "message_stop"}));
    sse_response(out, &headers)
}

/// `GET /stats`.
pub(crate) async fn stats(State(state): State<Arc<Shared>>) -> Response {
    json_response(
        StatusCode::OK,
        &[],
        serde_json::to_vec(&state.stats.snapshot()).unwrap_or_default(),
    )
}

/// Anything else: a 404 in OpenAI's shape, which is what most clients parse.
pub(crate) async fn not_found(uri: Uri) -> Response {
    error_response(
        404,
        &[],
        openai_error(
            &format!("Invalid URL ({})", uri.path()),
            "invalid_request_error",
            None,
            None,
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_follows_openai() {
        assert_eq!(
            masked("04e0e8440123456789abcdef01232687"),
            "04e0e844********************2687"
        );
        assert_eq!(masked("sk-proj-abcdefghij1234"), "sk-proj-**********1234");
        assert!(!masked("hello").contains("ell"));
    }

    #[test]
    fn pieces_rejoin_to_the_text() {
        let text = "Stand-in reply to: hello  there";
        assert_eq!(pieces(text).concat(), text);
        assert!(pieces("").is_empty());
    }
}
