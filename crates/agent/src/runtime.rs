//! Building agents and teams from `agentfleet.toml`, in the process that will run them.
//!
//! Only the providers the chosen agent or team needs are checked, in this process, before any
//! client exists; a provider of kind `standin` without a `base_url` gets a stand-in server
//! started here on a loopback port with a key generated for it, reached over HTTP through the
//! same client and credential path as a real provider.

use std::path::Path;
use std::sync::Arc;

use agentfleet_client::{BuildError, ClientOptions, ClientSpec, ModelClient, ToolDefinition};
use agentfleet_config::{
    Config, Environment, LiveCredential, ProviderCheck, ProviderKind, Secret, TeamMode,
};
use agentfleet_standin::{Script, Standin, StandinConfig};

use crate::agent::AssistantAgent;
use crate::error::{AgentError, RunFailure};
use crate::message::{EventSink, TaskResult};
use crate::team::{Speakers, Team};
use crate::tool::{CommandTool, Tool};

/// What to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// One agent.
    Agent(&'a str),
    /// A team.
    Team(&'a str),
}

/// Why a runtime could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The named agent is not in the config.
    #[error("there is no agent named {name} (defined: {})", list(defined))]
    UnknownAgent {
        /// The name asked for.
        name: String,
        /// The agents that exist.
        defined: Vec<String>,
    },
    /// The named team is not in the config.
    #[error("there is no team named {name} (defined: {})", list(defined))]
    UnknownTeam {
        /// The name asked for.
        name: String,
        /// The teams that exist.
        defined: Vec<String>,
    },
    /// Providers the target needs failed their credential check in this process.
    #[error("{} needed by this run failed its credential check", if unusable.len() == 1 { "a provider" } else { "providers" })]
    Credentials {
        /// The failed checks, with their problems.
        unusable: Vec<ProviderCheck>,
    },
    /// The in-process stand-in could not start.
    #[error("provider {provider}: the in-process stand-in could not start: {reason}")]
    Standin {
        /// The provider.
        provider: String,
        /// Why.
        reason: String,
    },
    /// A client could not be built.
    #[error(transparent)]
    Client(#[from] BuildError),
    /// An agent or team could not be built.
    #[error(transparent)]
    Agent(#[from] AgentError),
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// One provider's credential as the runtime's client holds it.
#[derive(Clone, Debug)]
pub struct ProviderCredential {
    /// The provider.
    pub provider: String,
    /// Where the credential was read from (`env:NAME`, `file:PATH`, `generated`, ...).
    pub source: String,
    /// The key, swappable by rotation; `None` for a keyless provider or a token source.
    pub live: Option<Arc<LiveCredential>>,
    /// The token source, for an Azure provider with `entra_token`.
    pub token: Option<Arc<agentfleet_config::TokenSource>>,
}

impl ProviderCredential {
    /// The fingerprint and generation of what is sent now, if anything is.
    pub fn current(&self) -> Option<agentfleet_config::CurrentKey> {
        self.live
            .as_ref()
            .map(|live| live.current())
            .or_else(|| self.token.as_ref().and_then(|token| token.current()))
    }
}

/// Agents and teams ready to run, with the stand-ins they talk to.
#[derive(Debug)]
pub struct Runtime {
    agents: Vec<AssistantAgent>,
    teams: Vec<Team>,
    credentials: Vec<ProviderCredential>,
    clients: Vec<(String, Arc<dyn ModelClient>)>,
    /// Kept alive as long as the runtime: dropping one stops it.
    _standins: Vec<Standin>,
}

impl Runtime {
    /// Checks and builds what `target` needs. `env` is this process's environment (tools get
    /// their allowed variables from it).
    pub async fn build(
        config: &Config,
        env: &dyn Environment,
        target: Target<'_>,
        options: ClientOptions,
    ) -> Result<Self, RuntimeError> {
        let (agent_names, team_names): (Vec<&str>, Vec<&str>) = match target {
            Target::Agent(name) => {
                let agent = config
                    .agent(name)
                    .ok_or_else(|| RuntimeError::UnknownAgent {
                        name: name.to_owned(),
                        defined: config.agents.iter().map(|a| a.name.clone()).collect(),
                    })?;
                (vec![agent.name.as_str()], Vec::new())
            }
            Target::Team(name) => {
                let team = config.team(name).ok_or_else(|| RuntimeError::UnknownTeam {
                    name: name.to_owned(),
                    defined: config.teams.iter().map(|t| t.name.clone()).collect(),
                })?;
                (
                    team.members.iter().map(String::as_str).collect(),
                    vec![team.name.as_str()],
                )
            }
        };
        Self::build_targets(config, env, &agent_names, &team_names, options).await
    }

    /// Checks and builds every agent and team of the config: what a worker serves.
    pub async fn build_all(
        config: &Config,
        env: &dyn Environment,
        options: ClientOptions,
    ) -> Result<Self, RuntimeError> {
        let mut agent_names: Vec<&str> = config
            .agents
            .iter()
            .map(|agent| agent.name.as_str())
            .collect();
        agent_names.sort_unstable();
        agent_names.dedup();
        let team_names: Vec<&str> = config.teams.iter().map(|team| team.name.as_str()).collect();
        Self::build_targets(config, env, &agent_names, &team_names, options).await
    }

    /// The providers `agent_names` and the teams' selectors need, in config order.
    fn providers_for<'c>(
        config: &'c Config,
        agent_names: &[&str],
        team_names: &[&str],
    ) -> Vec<&'c agentfleet_config::Provider> {
        let mut names: Vec<&str> = agent_names
            .iter()
            .filter_map(|name| config.agent(name))
            .map(|agent| agent.provider.as_str())
            .collect();
        names.extend(
            team_names
                .iter()
                .filter_map(|name| config.team(name))
                .filter_map(|team| team.selector_provider.as_deref()),
        );
        config
            .providers
            .iter()
            .filter(|provider| names.contains(&provider.name.as_str()))
            .collect()
    }

    async fn build_targets(
        config: &Config,
        env: &dyn Environment,
        agent_names: &[&str],
        team_names: &[&str],
        options: ClientOptions,
    ) -> Result<Self, RuntimeError> {
        let checks: Vec<(&agentfleet_config::Provider, ProviderCheck)> =
            Self::providers_for(config, agent_names, team_names)
                .into_iter()
                .map(|provider| {
                    (
                        provider,
                        agentfleet_config::check_provider(config, provider, env),
                    )
                })
                .collect();
        let unusable: Vec<ProviderCheck> = checks
            .iter()
            .filter(|(_, c)| !c.is_usable())
            .map(|(_, c)| c.clone())
            .collect();
        if !unusable.is_empty() {
            return Err(RuntimeError::Credentials { unusable });
        }

        let mut standins = Vec::new();
        let mut clients: Vec<(String, Arc<dyn ModelClient>)> = Vec::new();
        let mut credentials = Vec::new();
        for (provider, check) in &checks {
            let spec = if provider.kind == ProviderKind::Standin && check.url.is_none() {
                let (standin, spec) = start_standin(config, provider).await?;
                standins.push(standin);
                spec
            } else {
                ClientSpec::from_check(provider, check)?
            };
            credentials.push(ProviderCredential {
                provider: provider.name.clone(),
                source: check.source.clone(),
                live: spec.credential.clone(),
                token: spec.token.clone(),
            });
            clients.push((
                provider.name.clone(),
                agentfleet_client::build(spec, options.clone())?,
            ));
        }
        let client = |name: &str| {
            clients
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, c)| c.clone())
        };

        let mut agents = Vec::new();
        for spec in agent_names.iter().filter_map(|name| config.agent(name)) {
            let Some(model) = client(&spec.provider) else {
                continue;
            };
            let mut builder = AssistantAgent::builder(spec.name.clone(), model)
                .max_tool_iterations(spec.max_tool_iterations)
                .reflect_on_tool_use(spec.reflect_on_tool_use)
                .stream(spec.stream);
            if let Some(system) = &spec.system_message {
                builder = builder.system_message(system.clone());
            }
            if let Some(description) = &spec.description {
                builder = builder.description(description.clone());
            }
            for tool in spec.tools.iter().filter_map(|name| config.tool(name)) {
                builder = builder.tool(command_tool(tool, &config.base_dir, env));
            }
            agents.push(builder.build()?);
        }

        let mut teams = Vec::new();
        for spec in team_names.iter().filter_map(|name| config.team(name)) {
            let members: Vec<AssistantAgent> = spec
                .members
                .iter()
                .filter_map(|member| agents.iter().find(|agent| agent.name() == member).cloned())
                .collect();
            let speakers = match spec.mode {
                TeamMode::RoundRobin => Speakers::RoundRobin,
                TeamMode::Selector => Speakers::Selector {
                    client: spec
                        .selector_provider
                        .as_deref()
                        .and_then(client)
                        .ok_or_else(|| BuildError::NoUrl {
                            provider: spec.selector_provider.clone().unwrap_or_default(),
                        })?,
                    prompt: spec.selector_prompt.clone(),
                },
            };
            teams.push(Team::new(
                spec.name.clone(),
                members,
                speakers,
                (&spec.termination).into(),
            )?);
        }
        Ok(Self {
            agents,
            teams,
            credentials,
            clients,
            _standins: standins,
        })
    }

    /// The credential each provider's client sends, with where it came from.
    pub fn credentials(&self) -> &[ProviderCredential] {
        &self.credentials
    }

    /// The client of one provider, for a probe.
    pub fn client(&self, provider: &str) -> Option<Arc<dyn ModelClient>> {
        self.clients
            .iter()
            .find(|(name, _)| name == provider)
            .map(|(_, client)| client.clone())
    }

    /// An agent that was built.
    pub fn agent(&self, name: &str) -> Option<&AssistantAgent> {
        self.agents.iter().find(|agent| agent.name() == name)
    }

    /// A team that was built.
    pub fn team(&self, name: &str) -> Option<&Team> {
        self.teams.iter().find(|team| team.name() == name)
    }

    /// Runs `task` on `target`, which must be among what the runtime was built for.
    pub async fn run(
        &self,
        target: Target<'_>,
        task: &str,
        events: &EventSink,
    ) -> Result<TaskResult, RunFailure> {
        let missing = |name: &str| RunFailure {
            messages: Vec::new(),
            error: AgentError::EmptyTeam {
                team: name.to_owned(),
            },
        };
        match target {
            Target::Agent(name) => match self.agent(name) {
                Some(agent) => agent.run(task, events).await,
                None => Err(missing(name)),
            },
            Target::Team(name) => match self.team(name) {
                Some(team) => team.run(task, events).await,
                None => Err(missing(name)),
            },
        }
    }
}

/// Starts the in-process stand-in for a `standin` provider, with a key made for it.
async fn start_standin(
    config: &Config,
    provider: &agentfleet_config::Provider,
) -> Result<(Standin, ClientSpec), RuntimeError> {
    let fail = |reason: String| RuntimeError::Standin {
        provider: provider.name.clone(),
        reason,
    };
    let script = match &provider.script {
        Some(path) => {
            Script::load(&config.base_dir.join(path)).map_err(|error| fail(error.to_string()))?
        }
        None => Script::default(),
    };
    let key = format!(
        "sk-standin-{:016x}{:016x}",
        fastrand::u64(..),
        fastrand::u64(..)
    );
    let standin = Standin::start(
        "127.0.0.1:0",
        StandinConfig {
            keys: vec![key.clone()],
            script,
            ..StandinConfig::default()
        },
    )
    .await
    .map_err(|error| fail(error.to_string()))?;
    let spec = ClientSpec {
        name: provider.name.clone(),
        kind: ProviderKind::Standin,
        model: provider
            .model
            .clone()
            .unwrap_or_else(|| "standin".to_owned()),
        url: Some(standin.url()),
        deployment: None,
        api_version: None,
        organization: None,
        project: None,
        credential: Some(Arc::new(LiveCredential::new(Arc::new(Secret::new(key))))),
        token: None,
    };
    Ok((standin, spec))
}

/// A config tool, with its environment built from its allow-list alone.
fn command_tool(
    tool: &agentfleet_config::Tool,
    base_dir: &Path,
    env: &dyn Environment,
) -> Arc<dyn Tool> {
    let definition = ToolDefinition {
        name: tool.name.clone(),
        description: tool.description.clone().unwrap_or_default(),
        parameters: tool
            .parameters
            .clone()
            .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
    };
    Arc::new(CommandTool::new(
        definition,
        tool.command.clone(),
        tool.timeout,
        tool.max_output_bytes,
        agentfleet_config::env::allowed(env, &tool.env),
        base_dir.to_owned(),
    ))
}
