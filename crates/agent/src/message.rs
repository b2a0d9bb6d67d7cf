//! What a run produces: the messages agents exchange, the events a watcher sees as they happen,
//! and the `TaskResult` at the end.

use std::sync::Arc;

use agentfleet_client::{ToolCall, Usage};
use serde::{Deserialize, Serialize};

/// What a message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// Text: the task, or an agent's reply.
    Text,
    /// An agent asked for tools to be called.
    ToolCall,
    /// What the tools returned.
    ToolResult,
    /// An agent's reply made of its tool results, when it does not reflect on them.
    ToolCallSummary,
}

/// The outcome of one tool call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolResult {
    /// The call it answers.
    pub call_id: String,
    /// The tool.
    pub name: String,
    /// What the tool returned, or what went wrong.
    pub content: String,
    /// Whether the call failed (the model is told so, and the run goes on).
    pub is_error: bool,
}

/// One message of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskMessage {
    /// Who produced it: `user` for the task, else the agent's name.
    pub source: String,
    /// What it is.
    pub kind: MessageKind,
    /// Its text (for tool calls, a one-line summary of the calls).
    pub content: String,
    /// The calls asked for, on `tool_call` messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// The results, on `tool_result` messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_results: Vec<ToolResult>,
    /// Tokens the model call behind this message used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

impl TaskMessage {
    /// The task, as the user's message.
    pub fn task(text: impl Into<String>) -> Self {
        Self::text("user", text, None)
    }

    pub(crate) fn text(
        source: impl Into<String>,
        content: impl Into<String>,
        usage: Option<Usage>,
    ) -> Self {
        Self {
            source: source.into(),
            kind: MessageKind::Text,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_results: Vec::new(),
            usage,
        }
    }

    /// Whether the message counts toward `max_messages`: the task and replies, not the tool
    /// traffic inside a turn.
    pub fn is_chat(&self) -> bool {
        matches!(self.kind, MessageKind::Text | MessageKind::ToolCallSummary)
    }
}

/// The end of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    /// Every message, the task first.
    pub messages: Vec<TaskMessage>,
    /// Why the run stopped.
    pub stop_reason: String,
    /// Tokens used by every model call, the selector's included.
    pub usage: Usage,
}

/// Something a watcher of a run sees as it happens.
#[derive(Clone, Debug, PartialEq)]
pub enum RunEvent {
    /// A message, once it is complete.
    Message(TaskMessage),
    /// A piece of an agent's reply as it streams in (only for agents with `stream = true`).
    Delta {
        /// The agent.
        source: String,
        /// The text.
        text: String,
    },
    /// A selector team picked its next speaker.
    Selected {
        /// The team.
        team: String,
        /// The agent chosen.
        speaker: String,
    },
}

/// Where run events go; cheap to clone.
pub type EventSink = Arc<dyn Fn(&RunEvent) + Send + Sync>;

/// A sink that drops every event.
pub fn no_events() -> EventSink {
    Arc::new(|_| {})
}
