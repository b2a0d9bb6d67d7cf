//! agentfleet's agents, tools and teams, in the shape AutoGen's AgentChat users know.
//!
//! - [`AssistantAgent`]: a model, a system message and tools; one turn calls the model, runs the
//!   tools it asks for concurrently, and replies.
//! - [`tool::function`] makes a tool of a typed async Rust function; [`CommandTool`] runs a
//!   command with an environment built from an allow-list.
//! - [`Team`]: agents taking turns round robin or as a selector model picks, until a
//!   [`Termination`] condition fires.
//! - [`Runtime`]: all of the above built from `agentfleet.toml` in the process that runs them,
//!   after that process has checked the credentials they need.
//!
//! Every model call goes through an `agentfleet_client::ModelClient` built from credentials the
//! running process resolved itself.

pub mod agent;
pub mod error;
pub mod message;
pub mod runtime;
pub mod team;
pub mod tool;

pub use agent::{AgentBuilder, AssistantAgent, TurnFailure};
pub use error::{AgentError, RunFailure};
pub use message::{
    EventSink, MessageKind, RunEvent, TaskMessage, TaskResult, ToolResult, no_events,
};
pub use runtime::{ProviderCredential, Runtime, RuntimeError, Target};
pub use team::{Speakers, Team, Termination};
pub use tool::{CommandTool, FunctionTool, Tool, function};
