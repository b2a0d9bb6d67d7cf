//! Anthropic's Messages API: `POST {base}/v1/messages` with `x-api-key` and
//! `anthropic-version`, content blocks for tool use and results, and named SSE events.
//!
//! The wire types here are private: the rest of agentfleet sees only `types.rs`.

use std::collections::{HashMap, VecDeque};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use reqwest::header::HeaderValue;
use serde::{Deserialize, Serialize};

use crate::error::{ErrorBody, ErrorKind, ModelError, Sent, classify, parse_error_body, scrub};
use crate::sse::SseEvent;
use crate::transport::{Auth, Prepared, StreamParser, Transport, malformed, read_body, sse_stream};
use crate::types::{
    Assembler, ChatRequest, ChatResponse, FinishReason, Role, StreamEvent, ToolCall, Usage,
};
use crate::{ChatStream, ModelClient};

/// The API version agentfleet speaks.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Anthropic requires a limit; this one applies when the request sets none.
const DEFAULT_MAX_TOKENS: u32 = 1024;

/// A client for Anthropic's Messages API.
#[derive(Debug)]
pub(crate) struct AnthropicClient {
    pub name: String,
    pub transport: Transport,
    pub model: String,
    /// `https://api.anthropic.com`, without `/v1`.
    pub base_url: String,
    pub auth: Auth,
}

impl AnthropicClient {
    fn prepare(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &[u8],
    ) -> Result<Prepared, ModelError> {
        let (auth_header, sent) = self.auth.header(&self.name)?;
        let mut request = self
            .transport
            .http()
            .request(method.clone(), format!("{}{path}", self.base_url))
            .header(
                "anthropic-version",
                HeaderValue::from_static(ANTHROPIC_VERSION),
            );
        if let Some((name, value)) = auth_header {
            request = request.header(name, value);
        }
        if method == reqwest::Method::POST {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        Ok(Prepared { request, sent })
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let body = serde_json::to_vec(&WireRequest::from_request(&self.model, request, false))
            .unwrap_or_default();
        let prepare = || {
            self.prepare(reqwest::Method::POST, "/v1/messages", &body)
                .map(|p| Prepared {
                    request: p.request.timeout(self.transport.request_timeout()),
                    ..p
                })
        };
        self.auth.refresh(&self.name).await?;
        let (response, sent) = self.transport.send(&self.auth, &prepare, explain).await?;
        let (bytes, request_id) = read_body(response, &sent).await?;
        let wire: WireResponse =
            serde_json::from_slice(&bytes).map_err(|error| malformed(&sent, error))?;
        Ok(wire.into_response(request_id))
    }

    async fn stream(&self, request: &ChatRequest) -> Result<ChatStream, ModelError> {
        let body = serde_json::to_vec(&WireRequest::from_request(&self.model, request, true))
            .unwrap_or_default();
        let prepare = || self.prepare(reqwest::Method::POST, "/v1/messages", &body);
        self.auth.refresh(&self.name).await?;
        let (response, sent) = self.transport.send(&self.auth, &prepare, explain).await?;
        let request_id = crate::transport::request_id(response.headers());
        let parser = EventParser {
            assembler: Assembler::default(),
            tool_index: HashMap::new(),
            finish: None,
            usage: Usage::default(),
            model: None,
            request_id,
            sent: sent.clone(),
        };
        Ok(sse_stream(response, sent, parser))
    }

    async fn check(&self) -> Result<(), ModelError> {
        let prepare = || {
            self.prepare(reqwest::Method::GET, "/v1/models", &[])
                .map(|p| Prepared {
                    request: p.request.timeout(self.transport.request_timeout()),
                    ..p
                })
        };
        self.auth.refresh(&self.name).await?;
        self.transport
            .send(&self.auth, &prepare, explain)
            .await
            .map(|_| ())
    }
}

impl ModelClient for AnthropicClient {
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
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: Vec<WireBlock<'a>>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireBlock<'a> {
    Text {
        text: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: serde_json::Value,
    },
    ToolResult {
        tool_use_id: &'a str,
        content: &'a str,
    },
}

#[derive(Serialize)]
struct WireTool<'a> {
    name: &'a str,
    description: &'a str,
    input_schema: &'a serde_json::Value,
}

impl<'a> WireRequest<'a> {
    fn from_request(model: &'a str, request: &'a ChatRequest, stream: bool) -> Self {
        let system: Vec<&str> = request
            .messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(|m| m.content.as_str())
            .collect();
        let mut messages: Vec<WireMessage<'a>> = Vec::new();
        for message in request.messages.iter().filter(|m| m.role != Role::System) {
            let role = if message.role == Role::Assistant {
                "assistant"
            } else {
                "user"
            };
            let mut blocks = Vec::new();
            match message.role {
                Role::Tool => blocks.push(WireBlock::ToolResult {
                    tool_use_id: message.tool_call_id.as_deref().unwrap_or_default(),
                    content: &message.content,
                }),
                _ => {
                    if !message.content.is_empty() {
                        blocks.push(WireBlock::Text {
                            text: &message.content,
                        });
                    }
                    for call in &message.tool_calls {
                        // Anthropic takes the arguments as an object; text that is not JSON
                        // (a model's mistake, already reported to it) is sent as no arguments.
                        let input = serde_json::from_str(&call.arguments)
                            .ok()
                            .filter(serde_json::Value::is_object)
                            .unwrap_or_else(|| serde_json::json!({}));
                        blocks.push(WireBlock::ToolUse {
                            id: &call.id,
                            name: &call.name,
                            input,
                        });
                    }
                }
            }
            // Anthropic wants user and assistant turns to alternate: merge neighbours.
            match messages.last_mut() {
                Some(last) if last.role == role => last.content.extend(blocks),
                _ => messages.push(WireMessage {
                    role,
                    content: blocks,
                }),
            }
        }
        Self {
            model,
            max_tokens: request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
            system: (!system.is_empty()).then(|| system.join("\n\n")),
            messages,
            tools: request
                .tools
                .iter()
                .map(|tool| WireTool {
                    name: &tool.name,
                    description: &tool.description,
                    input_schema: &tool.parameters,
                })
                .collect(),
            temperature: request.temperature,
            stream,
        }
    }
}

#[derive(Deserialize)]
struct WireResponse {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    content: Vec<WireContent>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireContent {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: serde_json::Value,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct WireUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
}

impl WireResponse {
    fn into_response(self, request_id: Option<String>) -> ChatResponse {
        let mut content = String::new();
        let mut tool_calls = Vec::new();
        for block in self.content {
            match block {
                WireContent::Text { text } => content.push_str(&text),
                WireContent::ToolUse { id, name, input } => {
                    tool_calls.push(ToolCall {
                        id,
                        name,
                        arguments: input.to_string(),
                    });
                }
                WireContent::Other => {}
            }
        }
        ChatResponse {
            content,
            tool_calls,
            finish_reason: stop_reason(self.stop_reason.as_deref()),
            usage: Usage {
                prompt_tokens: self.usage.input_tokens,
                completion_tokens: self.usage.output_tokens,
            },
            model: self.model,
            request_id,
        }
    }
}

fn stop_reason(reason: Option<&str>) -> FinishReason {
    match reason {
        Some("end_turn" | "stop_sequence") | None => FinishReason::Stop,
        Some("max_tokens") => FinishReason::Length,
        Some("tool_use") => FinishReason::ToolCalls,
        Some("refusal") => FinishReason::ContentFilter,
        Some(other) => FinishReason::Other(other.to_owned()),
    }
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireEvent {
    MessageStart {
        message: WireStartMessage,
    },
    ContentBlockStart {
        index: usize,
        content_block: WireStartBlock,
    },
    ContentBlockDelta {
        index: usize,
        delta: WireDelta,
    },
    MessageDelta {
        #[serde(default)]
        delta: WireMessageDelta,
        #[serde(default)]
        usage: Option<WireUsage>,
    },
    MessageStop,
    Error {
        error: serde_json::Value,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct WireStartMessage {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireStartBlock {
    ToolUse {
        id: String,
        name: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize, Default)]
struct WireMessageDelta {
    #[serde(default)]
    stop_reason: Option<String>,
}

/// Reads named events until `message_stop`.
struct EventParser {
    assembler: Assembler,
    /// Content block index → tool call ordinal.
    tool_index: HashMap<usize, usize>,
    finish: Option<FinishReason>,
    usage: Usage,
    model: Option<String>,
    request_id: Option<String>,
    sent: Sent,
}

impl StreamParser for EventParser {
    fn event(
        &mut self,
        event: SseEvent,
        out: &mut VecDeque<StreamEvent>,
    ) -> Result<bool, ModelError> {
        if event.data.trim().is_empty() {
            return Ok(false);
        }
        let wire: WireEvent =
            serde_json::from_str(&event.data).map_err(|error| malformed(&self.sent, error))?;
        match wire {
            WireEvent::MessageStart { message } => {
                self.model = message.model;
                self.usage.prompt_tokens = message.usage.input_tokens;
                self.usage.completion_tokens = message.usage.output_tokens;
            }
            WireEvent::ContentBlockStart {
                index,
                content_block: WireStartBlock::ToolUse { id, name },
            } => {
                let ordinal = self.tool_index.len();
                self.tool_index.insert(index, ordinal);
                self.assembler
                    .tool_fragment(ordinal, Some(&id), Some(&name), "");
                out.push_back(StreamEvent::ToolCallFragment {
                    index: ordinal,
                    id: Some(id),
                    name: Some(name),
                    arguments: String::new(),
                });
            }
            WireEvent::ContentBlockStart { .. } => {}
            WireEvent::ContentBlockDelta {
                delta: WireDelta::TextDelta { text },
                ..
            } => {
                self.assembler.text(&text);
                out.push_back(StreamEvent::Text(text));
            }
            WireEvent::ContentBlockDelta {
                index,
                delta: WireDelta::InputJsonDelta { partial_json },
            } => {
                let Some(&ordinal) = self.tool_index.get(&index) else {
                    return Err(malformed(
                        &self.sent,
                        "tool arguments for a block that is not a tool call",
                    ));
                };
                self.assembler
                    .tool_fragment(ordinal, None, None, &partial_json);
                out.push_back(StreamEvent::ToolCallFragment {
                    index: ordinal,
                    id: None,
                    name: None,
                    arguments: partial_json,
                });
            }
            WireEvent::ContentBlockDelta { .. } => {}
            WireEvent::MessageDelta { delta, usage } => {
                if let Some(reason) = delta.stop_reason {
                    self.finish = Some(stop_reason(Some(&reason)));
                }
                if let Some(usage) = usage {
                    self.usage.completion_tokens = usage.output_tokens;
                }
            }
            WireEvent::MessageStop => {
                let assembler = std::mem::take(&mut self.assembler);
                out.push_back(StreamEvent::Finished(assembler.finish(
                    self.finish.take().unwrap_or(FinishReason::Stop),
                    self.usage,
                    self.model.take(),
                    self.request_id.take(),
                )));
                return Ok(true);
            }
            WireEvent::Error { error } => {
                let body = parse_error_body(
                    serde_json::json!({ "type": "error", "error": error })
                        .to_string()
                        .as_bytes(),
                );
                let kind = classify(500, &body, self.sent.fingerprint.is_some());
                return Err(ModelError::local(kind, &self.sent, scrub(&body.message))
                    .with_hint(explain(&body, &self.sent, kind)));
            }
            WireEvent::Other => {}
        }
        Ok(false)
    }

    fn end(&mut self, _out: &mut VecDeque<StreamEvent>) -> Result<(), ModelError> {
        Err(ModelError::local(
            ErrorKind::Connection,
            &self.sent,
            "the stream ended before message_stop",
        ))
    }
}

/// Hints for Anthropic's error bodies.
pub(crate) fn explain(body: &ErrorBody, sent: &Sent, kind: ErrorKind) -> Option<String> {
    if kind == ErrorKind::AuthRejected && body.mentions("invalid x-api-key") {
        let family = sent.shape.and_then(|shape| shape.family());
        return Some(match family {
            Some(agentfleet_config::KeyFamily::Anthropic) | None => {
                "Anthropic refused the key: it is revoked or mistyped; an ANTHROPIC_API_KEY inherited \
                 from a parent shell or CI job is a common cause"
                    .to_owned()
            }
            Some(other) => format!("the key sent is {}, not an Anthropic key", other.describe()),
        });
    }
    if body.mentions("credit balance") {
        return Some("the Anthropic account is out of credit: billing, not the key".to_owned());
    }
    if body.mentions("overloaded_error") {
        return Some("Anthropic is overloaded; the request is retried with backoff".to_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_merge_turns_and_lift_the_system_message() {
        let request = ChatRequest {
            messages: vec![
                crate::Message::system("be brief"),
                crate::Message::user("weather?"),
                crate::Message {
                    tool_calls: vec![
                        ToolCall {
                            id: "t1".into(),
                            name: "w".into(),
                            arguments: "{\"city\":\"Paris\"}".into(),
                        },
                        ToolCall {
                            id: "t2".into(),
                            name: "w".into(),
                            arguments: "not json".into(),
                        },
                    ],
                    ..crate::Message::assistant("")
                },
                crate::Message::tool_result("t1", "sunny"),
                crate::Message::tool_result("t2", "rainy"),
            ],
            ..ChatRequest::default()
        };
        let wire =
            serde_json::to_value(WireRequest::from_request("claude", &request, false)).unwrap();
        assert_eq!(wire["system"], "be brief");
        assert_eq!(wire["max_tokens"], DEFAULT_MAX_TOKENS);
        let messages = wire["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 3, "{wire}");
        assert_eq!(messages[1]["content"][0]["input"]["city"], "Paris");
        assert_eq!(messages[1]["content"][1]["input"], serde_json::json!({}));
        assert_eq!(messages[2]["role"], "user");
        assert_eq!(messages[2]["content"][1]["tool_use_id"], "t2");
    }
}
