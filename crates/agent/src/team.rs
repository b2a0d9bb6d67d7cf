//! Teams: agents taking turns on one task, round robin or chosen by a selector model, until a
//! termination condition fires; the stop reason says which.

use std::sync::Arc;
use std::time::Duration;

use agentfleet_client::{ChatRequest, Message, ModelClient, Usage};
use tokio::time::Instant;

use crate::agent::{AssistantAgent, total_usage};
use crate::error::{AgentError, RunFailure};
use crate::message::{EventSink, RunEvent, TaskMessage, TaskResult};

/// When a team run stops.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Termination {
    /// After this many messages (the task and replies; tool traffic inside a turn not counted).
    pub max_messages: Option<u32>,
    /// When a reply contains this text.
    pub text_mention: Option<String>,
    /// After this long; a turn still running then is abandoned.
    pub timeout: Option<Duration>,
    /// Every condition must have fired, instead of any one.
    pub all: bool,
}

impl From<&agentfleet_config::Termination> for Termination {
    fn from(config: &agentfleet_config::Termination) -> Self {
        Self {
            max_messages: config.max_messages,
            text_mention: config.text_mention.clone(),
            timeout: config.timeout,
            all: config.all,
        }
    }
}

/// Which conditions have fired, and why.
#[derive(Debug, Default)]
struct Fired {
    max_messages: Option<String>,
    text_mention: Option<String>,
    timeout: Option<String>,
}

impl Termination {
    fn has_conditions(&self) -> bool {
        self.max_messages.is_some() || self.text_mention.is_some() || self.timeout.is_some()
    }

    /// Updates `fired` after `messages` grew, and returns the stop reason if the run must stop.
    fn check(
        &self,
        fired: &mut Fired,
        messages: &[TaskMessage],
        elapsed: Duration,
    ) -> Option<String> {
        if let Some(max) = self.max_messages {
            let count = messages.iter().filter(|m| m.is_chat()).count();
            if count >= max as usize && fired.max_messages.is_none() {
                fired.max_messages = Some(format!(
                    "max_messages: {count} messages reached (limit {max})"
                ));
            }
        }
        if let (Some(text), Some(last)) = (&self.text_mention, messages.last())
            && fired.text_mention.is_none()
            && last.is_chat()
            && last.source != "user"
            && last.content.contains(text.as_str())
        {
            fired.text_mention = Some(format!("text_mention: {} said '{text}'", last.source));
        }
        if let Some(timeout) = self.timeout
            && elapsed >= timeout
            && fired.timeout.is_none()
        {
            fired.timeout = Some(format!("timeout: {} ms elapsed", timeout.as_millis()));
        }
        self.decide(fired)
    }

    fn decide(&self, fired: &Fired) -> Option<String> {
        let wanted = [
            (self.max_messages.is_some(), &fired.max_messages),
            (self.text_mention.is_some(), &fired.text_mention),
            (self.timeout.is_some(), &fired.timeout),
        ];
        let reasons: Vec<&str> = wanted
            .iter()
            .filter_map(|(_, reason)| reason.as_deref())
            .collect();
        let complete = wanted.iter().all(|(set, reason)| !set || reason.is_some());
        if self.all {
            complete.then(|| reasons.join(" and "))
        } else {
            reasons.first().map(|reason| (*reason).to_owned())
        }
    }

    /// Whether the timeout alone would end the run now that it has passed.
    fn timeout_ends_run(&self, fired: &Fired) -> bool {
        if self.timeout.is_none() {
            return false;
        }
        if !self.all {
            return true;
        }
        (self.max_messages.is_none() || fired.max_messages.is_some())
            && (self.text_mention.is_none() || fired.text_mention.is_some())
    }
}

/// How the next speaker is chosen.
#[derive(Clone, Debug)]
pub enum Speakers {
    /// In turn.
    RoundRobin,
    /// By a model, which has a provider and credential of its own.
    Selector {
        /// The selector's model.
        client: Arc<dyn ModelClient>,
        /// Extra instructions appended to the selection prompt.
        prompt: Option<String>,
    },
}

/// Agents working one task together.
#[derive(Clone, Debug)]
pub struct Team {
    name: String,
    members: Vec<AssistantAgent>,
    speakers: Speakers,
    termination: Termination,
}

/// How many times the selector may answer with something that is not a candidate's name.
const SELECTOR_ATTEMPTS: usize = 3;

impl Team {
    /// A team; it needs at least one member and at least one termination condition.
    pub fn new(
        name: impl Into<String>,
        members: Vec<AssistantAgent>,
        speakers: Speakers,
        termination: Termination,
    ) -> Result<Self, AgentError> {
        let name = name.into();
        if members.is_empty() {
            return Err(AgentError::EmptyTeam { team: name });
        }
        let termination = if termination.has_conditions() {
            termination
        } else {
            // Without a condition a team would talk forever; cap it as AutoGen users expect.
            Termination {
                max_messages: Some(10),
                ..termination
            }
        };
        Ok(Self {
            name,
            members,
            speakers,
            termination,
        })
    }

    /// The team's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `task` until a termination condition fires or a model call fails.
    pub async fn run(&self, task: &str, events: &EventSink) -> Result<TaskResult, RunFailure> {
        let started = Instant::now();
        let task = TaskMessage::task(task);
        events(&RunEvent::Message(task.clone()));
        let mut messages = vec![task];
        let mut fired = Fired::default();
        let mut selector_usage = Usage::default();
        let mut turn_index = 0usize;
        let mut last_speaker: Option<usize> = None;
        let finish = |messages: Vec<TaskMessage>, reason: String, selector_usage: Usage| {
            let mut usage = total_usage(&messages);
            usage += selector_usage;
            TaskResult {
                messages,
                stop_reason: reason,
                usage,
            }
        };
        if let Some(reason) = self
            .termination
            .check(&mut fired, &messages, started.elapsed())
        {
            return Ok(finish(messages, reason, selector_usage));
        }
        loop {
            let deadline_now = |fired: &Fired| {
                self.termination
                    .timeout
                    .map(|timeout| started + timeout)
                    .filter(|_| self.termination.timeout_ends_run(fired))
            };
            let speaker = match &self.speakers {
                Speakers::RoundRobin => turn_index % self.members.len(),
                Speakers::Selector { client, prompt } => {
                    let choice = self.select(
                        client.as_ref(),
                        prompt.as_deref(),
                        &messages,
                        last_speaker,
                        turn_index,
                    );
                    let Some(choice) = before(deadline_now(&fired), choice).await else {
                        let reason = self.timed_out(&mut fired, &messages, started);
                        return Ok(finish(messages, reason, selector_usage));
                    };
                    match choice {
                        Ok((index, usage)) => {
                            selector_usage += usage;
                            events(&RunEvent::Selected {
                                team: self.name.clone(),
                                speaker: self.members[index].name().to_owned(),
                            });
                            index
                        }
                        Err(error) => return Err(RunFailure { messages, error }),
                    }
                }
            };
            turn_index += 1;
            last_speaker = Some(speaker);
            let turn = self.members[speaker].turn(&messages, events);
            let Some(outcome) = before(deadline_now(&fired), turn).await else {
                let reason = self.timed_out(&mut fired, &messages, started);
                return Ok(finish(messages, reason, selector_usage));
            };
            match outcome {
                Ok(produced) => {
                    for message in produced {
                        messages.push(message);
                        if let Some(reason) =
                            self.termination
                                .check(&mut fired, &messages, started.elapsed())
                        {
                            return Ok(finish(messages, reason, selector_usage));
                        }
                    }
                }
                Err(failure) => {
                    messages.extend(failure.produced);
                    return Err(RunFailure {
                        messages,
                        error: failure.error,
                    });
                }
            }
        }
    }

    /// The stop reason when the run's time is up in the middle of a turn: the conditions that
    /// fired by then, or `timeout` alone.
    fn timed_out(&self, fired: &mut Fired, messages: &[TaskMessage], started: Instant) -> String {
        self.termination.check(fired, messages, started.elapsed());
        self.termination
            .decide(fired)
            .unwrap_or_else(|| "timeout".to_owned())
    }

    /// Asks the selector model for the next speaker among the candidates (everyone but the last
    /// speaker, when there is more than one member). A reply that names no candidate is retried;
    /// after that the turn goes round robin.
    async fn select(
        &self,
        client: &dyn ModelClient,
        prompt: Option<&str>,
        messages: &[TaskMessage],
        last: Option<usize>,
        turn_index: usize,
    ) -> Result<(usize, Usage), AgentError> {
        let candidates: Vec<usize> = (0..self.members.len())
            .filter(|index| self.members.len() == 1 || Some(*index) != last)
            .collect();
        let names: Vec<&str> = candidates
            .iter()
            .map(|&index| self.members[index].name())
            .collect();
        let roles: Vec<String> = self
            .members
            .iter()
            .map(|member| format!("{}: {}", member.name(), member.description()))
            .collect();
        let history: Vec<String> = messages
            .iter()
            .filter(|m| m.is_chat())
            .map(|m| format!("{}: {}", m.source, m.content))
            .collect();
        let mut text = format!(
            "You are in a role play game. The following roles are available:\n{}\n\nRead the following conversation. Then select the next role from [{}] to play. Only return the role.\n\n{}\n\nRead the above conversation. Then select the next role from [{}] to play. Only return the role.",
            roles.join("\n"),
            names.join(", "),
            history.join("\n"),
            names.join(", ")
        );
        if let Some(extra) = prompt {
            text.push_str("\n\n");
            text.push_str(extra);
        }
        let mut request = ChatRequest {
            messages: vec![Message::user(text)],
            ..ChatRequest::default()
        };
        let mut usage = Usage::default();
        for _ in 0..SELECTOR_ATTEMPTS {
            let reply = client
                .chat(&request)
                .await
                .map_err(|error| AgentError::Model {
                    agent: format!("selector of team {}", self.name),
                    error: Box::new(error),
                })?;
            usage += reply.usage;
            let answer = reply
                .content
                .trim()
                .trim_matches(|c: char| c == '"' || c == '\'' || c == '.');
            let exact = candidates
                .iter()
                .copied()
                .find(|&index| self.members[index].name() == answer);
            let mentioned: Vec<usize> = candidates
                .iter()
                .copied()
                .filter(|&index| reply.content.contains(self.members[index].name()))
                .collect();
            let chosen = exact.or(match mentioned.as_slice() {
                [only] => Some(*only),
                _ => None,
            });
            match chosen {
                Some(index) => return Ok((index, usage)),
                None => {
                    request.messages.push(Message::assistant(reply.content));
                    request.messages.push(Message::user(format!(
                        "That names no single role. Answer with exactly one of: {}.",
                        names.join(", ")
                    )));
                }
            }
        }
        Ok((candidates[turn_index % candidates.len()], usage))
    }
}

/// Awaits `work`, giving up at `deadline` when there is one; `None` when time ran out first.
async fn before<F: Future>(deadline: Option<Instant>, work: F) -> Option<F::Output> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, work).await.ok(),
        None => Some(work.await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(source: &str, content: &str) -> TaskMessage {
        TaskMessage::text(source, content, None)
    }

    #[test]
    fn any_one_condition_stops_and_says_which() {
        let termination = Termination {
            max_messages: Some(3),
            text_mention: Some("APPROVE".into()),
            ..Termination::default()
        };
        let mut fired = Fired::default();
        let mut messages = vec![message("user", "APPROVE this")];
        assert_eq!(
            termination.check(&mut fired, &messages, Duration::ZERO),
            None,
            "the task itself never mentions"
        );
        messages.push(message("critic", "I APPROVE"));
        assert_eq!(
            termination
                .check(&mut fired, &messages, Duration::ZERO)
                .as_deref(),
            Some("text_mention: critic said 'APPROVE'")
        );
        let mut fired = Fired::default();
        messages = vec![message("user", "t"), message("a", "x"), message("b", "y")];
        assert_eq!(
            termination
                .check(&mut fired, &messages, Duration::ZERO)
                .as_deref(),
            Some("max_messages: 3 messages reached (limit 3)")
        );
    }

    #[test]
    fn all_conditions_must_fire_when_all_is_set() {
        let termination = Termination {
            max_messages: Some(2),
            text_mention: Some("DONE".into()),
            all: true,
            ..Termination::default()
        };
        let mut fired = Fired::default();
        let mut messages = vec![message("user", "t"), message("a", "working")];
        assert_eq!(
            termination.check(&mut fired, &messages, Duration::ZERO),
            None
        );
        messages.push(message("b", "DONE"));
        assert_eq!(
            termination
                .check(&mut fired, &messages, Duration::ZERO)
                .as_deref(),
            Some("max_messages: 2 messages reached (limit 2) and text_mention: b said 'DONE'")
        );
    }

    #[test]
    fn timeouts_fire_on_elapsed_time() {
        let termination = Termination {
            timeout: Some(Duration::from_millis(50)),
            ..Termination::default()
        };
        let mut fired = Fired::default();
        let messages = vec![message("user", "t")];
        assert_eq!(
            termination.check(&mut fired, &messages, Duration::from_millis(10)),
            None
        );
        assert_eq!(
            termination
                .check(&mut fired, &messages, Duration::from_millis(60))
                .as_deref(),
            Some("timeout: 50 ms elapsed")
        );
    }
}
