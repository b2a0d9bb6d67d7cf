//! `AssistantAgent`: a model with a system message and tools, taking one turn in a conversation.
//!
//! A turn calls the model; when it asks for tools, they run concurrently and their results go
//! back to the model, up to `max_tool_iterations` rounds; then the agent either reflects on the
//! results with one more model call or replies with them as they are. Every model call goes
//! through the client built from this process's own credentials.

use std::sync::Arc;

use agentfleet_client::{
    ChatRequest, ChatResponse, Message, ModelClient, Role, StreamEvent, ToolCall, ToolDefinition,
    Usage,
};
use futures_util::StreamExt;

use crate::error::{AgentError, RunFailure};
use crate::message::{EventSink, MessageKind, RunEvent, TaskMessage, TaskResult, ToolResult};
use crate::tool::Tool;

/// An agent backed by a model and, optionally, tools.
#[derive(Clone, Debug)]
pub struct AssistantAgent {
    name: String,
    description: String,
    system_message: Option<String>,
    client: Arc<dyn ModelClient>,
    tools: Vec<Arc<dyn Tool>>,
    max_tool_iterations: u32,
    reflect_on_tool_use: bool,
    stream: bool,
}

/// Builds an [`AssistantAgent`].
#[derive(Debug)]
pub struct AgentBuilder {
    agent: AssistantAgent,
}

impl AgentBuilder {
    /// What a selector is told about the agent.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.agent.description = description.into();
        self
    }

    /// The system message.
    pub fn system_message(mut self, message: impl Into<String>) -> Self {
        self.agent.system_message = Some(message.into());
        self
    }

    /// Adds a tool.
    pub fn tool(mut self, tool: Arc<dyn Tool>) -> Self {
        self.agent.tools.push(tool);
        self
    }

    /// How many rounds of tool calls one turn may make (at least 1).
    pub fn max_tool_iterations(mut self, rounds: u32) -> Self {
        self.agent.max_tool_iterations = rounds.max(1);
        self
    }

    /// Whether to make one more model call to turn tool results into a reply.
    pub fn reflect_on_tool_use(mut self, reflect: bool) -> Self {
        self.agent.reflect_on_tool_use = reflect;
        self
    }

    /// Whether to stream replies (watchers then see [`RunEvent::Delta`]s).
    pub fn stream(mut self, stream: bool) -> Self {
        self.agent.stream = stream;
        self
    }

    /// The agent. Tool names must be unique.
    pub fn build(self) -> Result<AssistantAgent, AgentError> {
        let mut names: Vec<&str> = self
            .agent
            .tools
            .iter()
            .map(|t| t.definition().name.as_str())
            .collect();
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(AgentError::DuplicateTool {
                agent: self.agent.name.clone(),
                tool: pair[0].to_owned(),
            });
        }
        Ok(self.agent)
    }
}

impl AssistantAgent {
    /// Starts building an agent called `name` that calls `client`.
    pub fn builder(name: impl Into<String>, client: Arc<dyn ModelClient>) -> AgentBuilder {
        let name = name.into();
        AgentBuilder {
            agent: AssistantAgent {
                description: format!("{name}, an assistant"),
                name,
                system_message: None,
                client,
                tools: Vec::new(),
                max_tool_iterations: 1,
                reflect_on_tool_use: false,
                stream: false,
            },
        }
    }

    /// The agent's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What a selector is told about the agent.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The provider its model calls go to.
    pub fn provider(&self) -> &str {
        self.client.provider()
    }

    /// Runs `task` alone: one turn, then stop.
    pub async fn run(&self, task: &str, events: &EventSink) -> Result<TaskResult, RunFailure> {
        let task = TaskMessage::task(task);
        events(&RunEvent::Message(task.clone()));
        let mut messages = vec![task];
        let turn = match self.turn(&messages, events).await {
            Ok(turn) => turn,
            Err(failure) => {
                messages.extend(failure.produced);
                return Err(RunFailure {
                    messages,
                    error: failure.error,
                });
            }
        };
        let usage = total_usage(&turn);
        messages.extend(turn);
        Ok(TaskResult {
            messages,
            stop_reason: format!("{} replied", self.name),
            usage,
        })
    }

    /// Takes one turn in `history`, returning the messages it adds (already sent to `events`).
    /// On failure, the messages produced before it are returned with the error.
    pub async fn turn(
        &self,
        history: &[TaskMessage],
        events: &EventSink,
    ) -> Result<Vec<TaskMessage>, TurnFailure> {
        let mut context = self.context(history);
        let mut produced: Vec<TaskMessage> = Vec::new();
        let definitions: Vec<ToolDefinition> = self
            .tools
            .iter()
            .map(|tool| tool.definition().clone())
            .collect();
        let fail = |produced: Vec<TaskMessage>, error| TurnFailure { produced, error };
        let emit = |message: TaskMessage, produced: &mut Vec<TaskMessage>| {
            events(&RunEvent::Message(message.clone()));
            produced.push(message);
        };
        for _ in 0..self.max_tool_iterations {
            let response = match self.call(&context, definitions.clone(), events).await {
                Ok(response) => response,
                Err(error) => return Err(fail(produced, error)),
            };
            if response.tool_calls.is_empty() {
                emit(
                    TaskMessage::text(&self.name, response.content, Some(response.usage)),
                    &mut produced,
                );
                return Ok(produced);
            }
            let calls = response.tool_calls.clone();
            let summary = calls
                .iter()
                .map(|c| format!("{}({})", c.name, c.arguments))
                .collect::<Vec<_>>()
                .join(", ");
            emit(
                TaskMessage {
                    kind: MessageKind::ToolCall,
                    content: summary,
                    tool_calls: calls.clone(),
                    ..TaskMessage::text(&self.name, "", Some(response.usage))
                },
                &mut produced,
            );
            let results = self.execute(&calls).await;
            context.messages.push(Message {
                tool_calls: calls,
                ..Message::assistant(response.content)
            });
            for result in &results {
                context.messages.push(Message::tool_result(
                    result.call_id.clone(),
                    result.content.clone(),
                ));
            }
            let text = results
                .iter()
                .map(|r| r.content.clone())
                .collect::<Vec<_>>()
                .join("\n");
            emit(
                TaskMessage {
                    kind: MessageKind::ToolResult,
                    tool_results: results,
                    ..TaskMessage::text(&self.name, text, None)
                },
                &mut produced,
            );
        }
        if self.reflect_on_tool_use {
            let response = match self.call(&context, Vec::new(), events).await {
                Ok(response) => response,
                Err(error) => return Err(fail(produced, error)),
            };
            emit(
                TaskMessage::text(&self.name, response.content, Some(response.usage)),
                &mut produced,
            );
        } else {
            let last = produced
                .last()
                .map(|m| m.content.clone())
                .unwrap_or_default();
            emit(
                TaskMessage {
                    kind: MessageKind::ToolCallSummary,
                    ..TaskMessage::text(&self.name, last, None)
                },
                &mut produced,
            );
        }
        Ok(produced)
    }

    /// The conversation as this agent's model sees it: its own replies as the assistant's,
    /// everyone else's as the user's; other agents' tool traffic stays theirs.
    fn context(&self, history: &[TaskMessage]) -> ChatRequest {
        let mut messages = Vec::new();
        if let Some(system) = &self.system_message {
            messages.push(Message::system(system.clone()));
        }
        for message in history {
            let own = message.source == self.name;
            match (message.kind, own) {
                (MessageKind::Text | MessageKind::ToolCallSummary, true) => {
                    messages.push(Message::assistant(message.content.clone()))
                }
                (MessageKind::Text | MessageKind::ToolCallSummary, false) => {
                    messages.push(Message::user(message.content.clone()))
                }
                (MessageKind::ToolCall, true) => messages.push(Message {
                    tool_calls: message.tool_calls.clone(),
                    ..Message::assistant("")
                }),
                (MessageKind::ToolResult, true) => {
                    for result in &message.tool_results {
                        messages.push(Message::tool_result(
                            result.call_id.clone(),
                            result.content.clone(),
                        ));
                    }
                }
                (MessageKind::ToolCall | MessageKind::ToolResult, false) => {}
            }
        }
        // A model must not see a conversation that ends with its own reply and nothing to answer.
        if messages.last().is_some_and(|m| m.role == Role::Assistant) {
            messages.push(Message::user("Continue."));
        }
        ChatRequest {
            messages,
            ..ChatRequest::default()
        }
    }

    async fn call(
        &self,
        context: &ChatRequest,
        tools: Vec<ToolDefinition>,
        events: &EventSink,
    ) -> Result<ChatResponse, AgentError> {
        let request = ChatRequest {
            tools,
            ..context.clone()
        };
        let model_error = |error| AgentError::Model {
            agent: self.name.clone(),
            error: Box::new(error),
        };
        if !self.stream {
            return self.client.chat(&request).await.map_err(model_error);
        }
        let mut stream = self
            .client
            .chat_stream(&request)
            .await
            .map_err(model_error)?;
        while let Some(event) = stream.next().await {
            match event.map_err(model_error)? {
                StreamEvent::Text(text) => events(&RunEvent::Delta {
                    source: self.name.clone(),
                    text,
                }),
                StreamEvent::ToolCallFragment { .. } => {}
                StreamEvent::Finished(response) => return Ok(response),
            }
        }
        Err(AgentError::Interrupted {
            agent: self.name.clone(),
        })
    }

    /// Runs the calls concurrently; each becomes a result, failures included.
    async fn execute(&self, calls: &[ToolCall]) -> Vec<ToolResult> {
        let runs = calls.iter().map(|call| async move {
            let outcome = match self
                .tools
                .iter()
                .find(|tool| tool.definition().name == call.name)
            {
                None => Err(format!("there is no tool named {}", call.name)),
                Some(tool) => match serde_json::from_str::<serde_json::Value>(
                    if call.arguments.trim().is_empty() {
                        "{}"
                    } else {
                        &call.arguments
                    },
                ) {
                    Err(error) => Err(format!("the arguments are not valid JSON: {error}")),
                    Ok(arguments) => tool.call(arguments).await,
                },
            };
            let (content, is_error) = match outcome {
                Ok(output) => (output, false),
                Err(message) => (format!("error: {message}"), true),
            };
            ToolResult {
                call_id: call.id.clone(),
                name: call.name.clone(),
                content,
                is_error,
            }
        });
        futures_util::future::join_all(runs).await
    }
}

/// A turn that failed, with what it produced before failing.
#[derive(Debug)]
pub struct TurnFailure {
    /// Messages produced before the failure.
    pub produced: Vec<TaskMessage>,
    /// What failed.
    pub error: AgentError,
}

/// The usage of every message.
pub(crate) fn total_usage(messages: &[TaskMessage]) -> Usage {
    let mut usage = Usage::default();
    for message in messages {
        if let Some(used) = message.usage {
            usage += used;
        }
    }
    usage
}
