//! Errors of agents and teams. A tool's failure is not among them: it becomes a message the
//! model reads. A model call's failure is, with the client's classification intact.

use agentfleet_client::ModelError;

use crate::message::TaskMessage;

/// Why an agent or team could not go on.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A model call failed (after the client's retries).
    #[error("agent {agent}: {error}")]
    Model {
        /// The agent, or `selector of team T`.
        agent: String,
        /// The classified failure.
        error: Box<ModelError>,
    },
    /// A reply stream ended without its final event.
    #[error("agent {agent}: the reply stream ended before the reply was complete")]
    Interrupted {
        /// The agent.
        agent: String,
    },
    /// Two tools of one agent share a name.
    #[error("agent {agent} has two tools named {tool}")]
    DuplicateTool {
        /// The agent.
        agent: String,
        /// The name.
        tool: String,
    },
    /// A team was given no members.
    #[error("team {team} has no members")]
    EmptyTeam {
        /// The team.
        team: String,
    },
}

impl AgentError {
    /// The model call's failure, when that is what this is.
    pub fn model_error(&self) -> Option<&ModelError> {
        match self {
            AgentError::Model { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// A run that stopped on an error, with the messages it had produced.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct RunFailure {
    /// Every message up to the failure, the task first.
    pub messages: Vec<TaskMessage>,
    /// What failed.
    pub error: AgentError,
}
