//! OpenAI's chat completions wire format, spoken to api.openai.com, to any OpenAI-compatible
//! server, and (with Azure's URLs and header, see `azure.rs`) to Azure OpenAI.
//!
//! The wire types here are private: the rest of agentfleet sees only `types.rs`.

use std::collections::VecDeque;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use reqwest::header::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

use crate::error::{ErrorBody, ErrorKind, ModelError, Sent, classify, parse_error_body};
use crate::sse::SseEvent;
use crate::transport::{
    Auth, Explain, Prepared, StreamParser, Transport, malformed, read_body, sse_stream,
};
use crate::types::{
    Assembler, ChatRequest, ChatResponse, FinishReason, Role, StreamEvent, ToolCall, Usage,
};
use crate::{ChatStream, ModelClient};

/// How a client proves it works without spending much.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Probe {
    /// `GET` this URL (a model list).
    List(String),
    /// A one-token chat request (Azure's classic path has no cheaper authenticated call).
    TinyChat,
}

/// Which field limits the reply's length: OpenAI's current name, or the older one that
/// compatible servers and Azure accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenLimit {
    MaxCompletionTokens,
    MaxTokens,
}

/// A client for any server speaking OpenAI's chat completions.
#[derive(Debug)]
pub(crate) struct OpenAiClient {
    pub name: String,
    pub transport: Transport,
    pub model: String,
    pub chat_url: String,
    pub probe: Probe,
    pub auth: Auth,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub token_limit: TokenLimit,
    pub explain: Explain,
}

impl OpenAiClient {
    fn prepare(
        &self,
        body: &[u8],
        url: &str,
        method: reqwest::Method,
    ) -> Result<Prepared, ModelError> {
        let (auth_header, sent) = self.auth.header(&self.name)?;
        let mut request = self.transport.http().request(method.clone(), url);
        if let Some((name, value)) = auth_header {
            request = request.header(name, value);
        }
        for (name, value) in &self.headers {
            request = request.header(name.clone(), value.clone());
        }
        if method == reqwest::Method::POST {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        Ok(Prepared { request, sent })
    }

    fn body(&self, request: &ChatRequest, stream: bool) -> Vec<u8> {
        let wire = WireRequest::from_request(&self.model, request, stream, self.token_limit);
        // Serializing plain structs of strings and numbers cannot fail.
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let body = self.body(request, false);
        let prepare = || {
            self.prepare(&body, &self.chat_url, reqwest::Method::POST)
                .map(|p| Prepared {
                    request: p.request.timeout(self.transport.request_timeout()),
                    ..p
                })
        };
        self.auth.refresh(&self.name).await?;
        let (response, sent) = self
            .transport
            .send(&self.auth, &prepare, self.explain)
            .await?;
        let (bytes, request_id) = read_body(response, &sent).await?;
        let wire: WireResponse =
            serde_json::from_slice(&bytes).map_err(|error| malformed(&sent, error))?;
        wire.into_response(request_id, &sent)
    }

    async fn stream(&self, request: &ChatRequest) -> Result<ChatStream, ModelError> {
        let body = self.body(request, true);
        let prepare = || self.prepare(&body, &self.chat_url, reqwest::Method::POST);
        self.auth.refresh(&self.name).await?;
        let (response, sent) = self
            .transport
            .send(&self.auth, &prepare, self.explain)
            .await?;
        let request_id = crate::transport::request_id(response.headers());
        let parser = ChunkParser {
            assembler: Assembler::default(),
            finish: None,
            usage: Usage::default(),
            model: None,
            request_id,
            sent: sent.clone(),
        };
        Ok(sse_stream(response, sent, parser))
    }

    async fn check(&self) -> Result<(), ModelError> {
        match &self.probe {
            Probe::List(url) => {
                let prepare = || {
                    self.prepare(&[], url, reqwest::Method::GET)
                        .map(|p| Prepared {
                            request: p.request.timeout(self.transport.request_timeout()),
                            ..p
                        })
                };
                self.auth.refresh(&self.name).await?;
                self.transport
                    .send(&self.auth, &prepare, self.explain)
                    .await
                    .map(|_| ())
            }
            Probe::TinyChat => {
                let request = ChatRequest {
                    messages: vec![crate::Message::user("ping")],
                    max_tokens: Some(1),
                    ..ChatRequest::default()
                };
                self.complete(&request).await.map(|_| ())
            }
        }
    }
}

impl ModelClient for OpenAiClient {
    fn provider(&self) -> &str {
        &self.name
    }

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ModelError>> {
        self.complete(request).boxed()
    }

    fn chat_stream<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatStream, ModelError>> {
        self.stream(request).boxed()
    }

    fn probe(&self) -> BoxFuture<'_, Result<(), ModelError>> {
        self.check().boxed()
    }
}

#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

#[derive(Serialize)]
struct WireToolCall<'a> {
    id: &'a str,
    r#type: &'static str,
    function: WireFunctionCall<'a>,
}

#[derive(Serialize)]
struct WireFunctionCall<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct WireTool<'a> {
    r#type: &'static str,
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a serde_json::Value,
}

impl<'a> WireRequest<'a> {
    fn from_request(
        model: &'a str,
        request: &'a ChatRequest,
        stream: bool,
        limit: TokenLimit,
    ) -> Self {
        let messages = request
            .messages
            .iter()
            .map(|message| WireMessage {
                role: match message.role {
                    Role::System => "system",
                    Role::User => "user",
                    Role::Assistant => "assistant",
                    Role::Tool => "tool",
                },
                // An assistant message that only calls tools has null content, as OpenAI sends it.
                content: if message.content.is_empty() && !message.tool_calls.is_empty() {
                    None
                } else {
                    Some(&message.content)
                },
                tool_calls: message
                    .tool_calls
                    .iter()
                    .map(|call| WireToolCall {
                        id: &call.id,
                        r#type: "function",
                        function: WireFunctionCall {
                            name: &call.name,
                            arguments: &call.arguments,
                        },
                    })
                    .collect(),
                tool_call_id: message.tool_call_id.as_deref(),
            })
            .collect();
        let tools = request
            .tools
            .iter()
            .map(|tool| WireTool {
                r#type: "function",
                function: WireFunction {
                    name: &tool.name,
                    description: &tool.description,
                    parameters: &tool.parameters,
                },
            })
            .collect();
        let (max_tokens, max_completion_tokens) = match limit {
            TokenLimit::MaxTokens => (request.max_tokens, None),
            TokenLimit::MaxCompletionTokens => (None, request.max_tokens),
        };
        Self {
            model,
            messages,
            tools,
            temperature: request.temperature,
            max_tokens,
            max_completion_tokens,
            stream,
            stream_options: stream.then_some(StreamOptions {
                include_usage: true,
            }),
        }
    }
}

#[derive(Deserialize)]
struct WireResponse {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<WireChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireChoice {
    message: WireReply,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireReply {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<WireReplyToolCall>,
}

#[derive(Deserialize)]
struct WireReplyToolCall {
    id: String,
    function: WireReplyFunction,
}

#[derive(Deserialize)]
struct WireReplyFunction {
    name: String,
    #[serde(default)]
    arguments: String,
}

#[derive(Deserialize, Clone, Copy)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

impl From<WireUsage> for Usage {
    fn from(wire: WireUsage) -> Self {
        Usage {
            prompt_tokens: wire.prompt_tokens,
            completion_tokens: wire.completion_tokens,
        }
    }
}

impl WireResponse {
    fn into_response(
        self,
        request_id: Option<String>,
        sent: &Sent,
    ) -> Result<ChatResponse, ModelError> {
        let Some(choice) = self.choices.into_iter().next() else {
            return Err(malformed(sent, "the reply has no choices"));
        };
        Ok(ChatResponse {
            content: choice.message.content.unwrap_or_default(),
            tool_calls: choice
                .message
                .tool_calls
                .into_iter()
                .map(|call| ToolCall {
                    id: call.id,
                    name: call.function.name,
                    arguments: call.function.arguments,
                })
                .collect(),
            finish_reason: finish_reason(choice.finish_reason.as_deref()),
            usage: self.usage.map(Usage::from).unwrap_or_default(),
            model: self.model,
            request_id,
        })
    }
}

fn finish_reason(reason: Option<&str>) -> FinishReason {
    match reason {
        Some("stop") | None => FinishReason::Stop,
        Some("length") => FinishReason::Length,
        Some("tool_calls" | "function_call") => FinishReason::ToolCalls,
        Some("content_filter") => FinishReason::ContentFilter,
        Some(other) => FinishReason::Other(other.to_owned()),
    }
}

#[derive(Deserialize)]
struct WireChunk {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<WireChunkChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct WireChunkChoice {
    #[serde(default)]
    delta: WireDelta,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct WireDelta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<WireDeltaToolCall>,
}

#[derive(Deserialize)]
struct WireDeltaToolCall {
    #[serde(default)]
    index: usize,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<WireDeltaFunction>,
}

#[derive(Deserialize)]
struct WireDeltaFunction {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

/// Reads `data:` chunks until `[DONE]`.
struct ChunkParser {
    assembler: Assembler,
    finish: Option<FinishReason>,
    usage: Usage,
    model: Option<String>,
    request_id: Option<String>,
    sent: Sent,
}

impl ChunkParser {
    fn finished(&mut self, out: &mut VecDeque<StreamEvent>) {
        let assembler = std::mem::take(&mut self.assembler);
        out.push_back(StreamEvent::Finished(assembler.finish(
            self.finish.take().unwrap_or(FinishReason::Stop),
            self.usage,
            self.model.take(),
            self.request_id.take(),
        )));
    }
}

impl StreamParser for ChunkParser {
    fn event(
        &mut self,
        event: SseEvent,
        out: &mut VecDeque<StreamEvent>,
    ) -> Result<bool, ModelError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            self.finished(out);
            return Ok(true);
        }
        if data.is_empty() {
            return Ok(false);
        }
        let chunk: WireChunk =
            serde_json::from_str(data).map_err(|error| malformed(&self.sent, error))?;
        if let Some(error) = chunk.error {
            // Some servers report a failure inside a 200 stream.
            let body =
                parse_error_body(serde_json::json!({ "error": error }).to_string().as_bytes());
            let kind = classify(500, &body, self.sent.fingerprint.is_some());
            return Err(ModelError::local(
                kind,
                &self.sent,
                crate::error::scrub(&body.message),
            ));
        }
        if self.model.is_none() {
            self.model = chunk.model;
        }
        if let Some(usage) = chunk.usage {
            self.usage = usage.into();
        }
        for choice in chunk.choices {
            if let Some(text) = choice.delta.content.filter(|text| !text.is_empty()) {
                self.assembler.text(&text);
                out.push_back(StreamEvent::Text(text));
            }
            for call in choice.delta.tool_calls {
                let (name, arguments) = match call.function {
                    Some(function) => (function.name, function.arguments.unwrap_or_default()),
                    None => (None, String::new()),
                };
                self.assembler.tool_fragment(
                    call.index,
                    call.id.as_deref(),
                    name.as_deref(),
                    &arguments,
                );
                out.push_back(StreamEvent::ToolCallFragment {
                    index: call.index,
                    id: call.id,
                    name,
                    arguments,
                });
            }
            if let Some(reason) = choice.finish_reason {
                self.finish = Some(finish_reason(Some(&reason)));
            }
        }
        Ok(false)
    }

    fn end(&mut self, out: &mut VecDeque<StreamEvent>) -> Result<(), ModelError> {
        if self.finish.is_some() {
            // Some compatible servers end the stream without `[DONE]`; the reply is whole.
            self.finished(out);
            return Ok(());
        }
        Err(ModelError::local(
            ErrorKind::Connection,
            &self.sent,
            "the stream ended before the reply was complete",
        ))
    }
}

/// Hints for OpenAI's own error bodies. The masked echo of a refused key says what was sent.
pub(crate) fn explain(body: &ErrorBody, sent: &Sent, kind: ErrorKind) -> Option<String> {
    if body.mentions("mismatched_organization") {
        return Some("the OpenAI-Organization header does not match the key's organization: fix or remove organization".to_owned());
    }
    if body.mentions("no_organization") || body.mentions("no such organization") {
        return Some(
            "the key has no organization, or organization names one it does not belong to"
                .to_owned(),
        );
    }
    if body.mentions("account_deactivated") || body.mentions("has been deactivated") {
        return Some(
            "the OpenAI account is deactivated: a new key from the same account will not help"
                .to_owned(),
        );
    }
    if kind == ErrorKind::AuthRejected && echoed_key(&body.message).is_some() {
        return explain_compatible(body, sent, kind).or_else(|| {
            Some(
                "OpenAI refused the key: it is revoked, mistyped, or from another project; compare \
                 its fingerprint with the key in the OpenAI dashboard"
                    .to_owned(),
            )
        });
    }
    None
}

/// Hints for servers that copy OpenAI's error bodies: what the masked echo reveals, when it
/// reveals something.
pub(crate) fn explain_compatible(body: &ErrorBody, sent: &Sent, kind: ErrorKind) -> Option<String> {
    if kind != ErrorKind::AuthRejected {
        return None;
    }
    let echo = echoed_key(&body.message)?;
    describe_echo(echo, sent.shape.and_then(|shape| shape.family()))
}

/// The masked key OpenAI echoes in "Incorrect API key provided: sk-abc***wxyz."
fn echoed_key(message: &str) -> Option<&str> {
    let rest = message.split("Incorrect API key provided: ").nth(1)?;
    let end = rest
        .find(". ")
        .or_else(|| rest.strip_suffix('.').map(str::len))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

fn describe_echo(echo: &str, sent_family: Option<agentfleet_config::KeyFamily>) -> Option<String> {
    use agentfleet_config::KeyFamily;
    let visible: String = echo.chars().filter(|c| *c != '*').collect();
    let looks_like_name = echo
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '*')
        && echo.contains('_');
    if visible.to_lowercase().starts_with("your") {
        return Some("the provider received a placeholder, not a key".to_owned());
    }
    if looks_like_name {
        return Some("the provider received a variable's name instead of its value (an unexpanded $VAR, or a \
                config that names the variable as the key)"
            .to_owned());
    }
    let azure_shaped = echo.len() == 32 && echo.chars().all(|c| c.is_ascii_hexdigit() || c == '*');
    if azure_shaped || sent_family == Some(KeyFamily::Azure) {
        return Some("an Azure OpenAI key was sent to OpenAI: use kind = \"azure_openai\" with the resource's \
                endpoint, or put the OpenAI key here"
            .to_owned());
    }
    if echo.starts_with("http") {
        return Some(
            "a URL was sent where the key belongs: the key variable holds an endpoint".to_owned(),
        );
    }
    if visible.starts_with("sk-or-") {
        return Some(
            "an OpenRouter key was sent to OpenAI: point base_url at https://openrouter.ai/api/v1"
                .to_owned(),
        );
    }
    if visible.starts_with("sk-ant") || sent_family == Some(KeyFamily::Anthropic) {
        return Some("an Anthropic key was sent to OpenAI: use kind = \"anthropic\"".to_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent() -> Sent {
        Sent {
            provider: "openai".into(),
            fingerprint: None,
            shape: None,
        }
    }

    #[test]
    fn the_masked_echo_names_the_mistake() {
        let hint = |message: &str| {
            let body = ErrorBody {
                message: message.into(),
                codes: vec!["invalid_api_key".into()],
            };
            explain(&body, &sent(), ErrorKind::AuthRejected).unwrap()
        };
        assert!(hint("Incorrect API key provided: 04e0e844********************2687. You can find your API key at https://platform.openai.com/account/api-keys.").contains("Azure OpenAI key was sent to OpenAI"));
        assert!(
            hint("Incorrect API key provided: OPENAI_A**_KEY. You can find")
                .contains("variable's name")
        );
        assert!(
            hint("Incorrect API key provided: https://****lETQ. You can").contains("URL was sent")
        );
        assert!(
            hint("Incorrect API key provided: sk-or-v1****abcd. You can").contains("OpenRouter")
        );
        assert!(
            hint("Incorrect API key provided: YOUR_OPE***_KEY. You can").contains("placeholder")
        );
        assert!(hint("Incorrect API key provided: sk-proj-****MxYA. You can").contains("revoked"));
    }

    #[test]
    fn requests_use_the_wire_names() {
        let request = ChatRequest {
            messages: vec![
                crate::Message::system("be brief"),
                crate::Message {
                    tool_calls: vec![ToolCall {
                        id: "c1".into(),
                        name: "add".into(),
                        arguments: "{}".into(),
                    }],
                    ..crate::Message::assistant("")
                },
                crate::Message::tool_result("c1", "3"),
            ],
            max_tokens: Some(5),
            ..ChatRequest::default()
        };
        let wire = serde_json::to_value(WireRequest::from_request(
            "m",
            &request,
            true,
            TokenLimit::MaxCompletionTokens,
        ))
        .unwrap();
        assert_eq!(wire["messages"][1]["content"], serde_json::Value::Null);
        assert_eq!(wire["messages"][1]["tool_calls"][0]["type"], "function");
        assert_eq!(wire["messages"][2]["tool_call_id"], "c1");
        assert_eq!(wire["max_completion_tokens"], 5);
        assert!(wire.get("max_tokens").is_none());
        assert_eq!(wire["stream_options"]["include_usage"], true);
    }
}
