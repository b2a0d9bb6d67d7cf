//! The validated configuration: what `agentfleet.toml` declares, as plain data.
//!
//! Every type here is data only. Credential *sources* say where a key lives and never hold it;
//! the only key a `Config` can carry is a literal written into the file, kept as a [`Secret`]
//! solely so that `check` can refuse it by name and fingerprint.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::secret::Secret;

/// A parsed and validated `agentfleet.toml`.
#[derive(Debug)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// The directory relative `file` and `dotenv` paths are resolved against: the file's own.
    pub base_dir: PathBuf,
    /// `[providers.NAME]`, in file order.
    pub providers: Vec<Provider>,
    /// `[agents.NAME]`, in file order.
    pub agents: Vec<Agent>,
    /// `[teams.NAME]`, in file order.
    pub teams: Vec<Team>,
    /// `[tools.NAME]`, in file order.
    pub tools: Vec<Tool>,
    /// `[queue]`.
    pub queue: QueueSettings,
    /// `[fleet]`.
    pub fleet: FleetSettings,
}

impl Config {
    /// The provider called `name`.
    pub fn provider(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|provider| provider.name == name)
    }

    /// The agent called `name`.
    pub fn agent(&self, name: &str) -> Option<&Agent> {
        self.agents.iter().find(|agent| agent.name == name)
    }

    /// The team called `name`.
    pub fn team(&self, name: &str) -> Option<&Team> {
        self.teams.iter().find(|team| team.name == name)
    }

    /// The tool called `name`.
    pub fn tool(&self, name: &str) -> Option<&Tool> {
        self.tools.iter().find(|tool| tool.name == name)
    }

    /// The providers a team needs: its members' and its selector's, each once, in file order.
    pub fn providers_of_team<'a>(&'a self, team: &'a Team) -> Vec<&'a str> {
        let mut needed: Vec<&str> = team
            .members
            .iter()
            .filter_map(|member| self.agent(member))
            .map(|agent| agent.provider.as_str())
            .chain(team.selector_provider.as_deref())
            .collect();
        needed.sort_by_key(|name| self.providers.iter().position(|p| p.name == *name));
        needed.dedup();
        needed
    }

    /// Who uses a provider: the agents that name it, then the teams that need it.
    pub fn users_of(&self, provider: &str) -> Users {
        Users {
            agents: self
                .agents
                .iter()
                .filter(|agent| agent.provider == provider)
                .map(|agent| agent.name.clone())
                .collect(),
            teams: self
                .teams
                .iter()
                .filter(|team| self.providers_of_team(team).contains(&provider))
                .map(|team| team.name.clone())
                .collect(),
        }
    }
}

/// The agents and teams that depend on one provider.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Users {
    /// Agent names.
    pub agents: Vec<String>,
    /// Team names.
    pub teams: Vec<String>,
}

impl Users {
    /// All names, agents first.
    pub fn names(&self) -> Vec<String> {
        self.agents.iter().chain(&self.teams).cloned().collect()
    }

    /// Whether nothing uses the provider.
    pub fn is_empty(&self) -> bool {
        self.agents.is_empty() && self.teams.is_empty()
    }
}

impl fmt::Display for Users {
    /// `agents writer, critic and team review`, or `no agent or team`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn group(noun: &str, names: &[String]) -> Option<String> {
            match names {
                [] => None,
                [one] => Some(format!("{noun} {one}")),
                many => Some(format!("{noun}s {}", many.join(", "))),
            }
        }
        let parts: Vec<String> = [group("agent", &self.agents), group("team", &self.teams)]
            .into_iter()
            .flatten()
            .collect();
        if parts.is_empty() {
            formatter.write_str("no agent or team")
        } else {
            formatter.write_str(&parts.join(" and "))
        }
    }
}

/// The provider kinds agentfleet speaks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// api.openai.com, or an OpenAI base_url.
    #[serde(rename = "openai")]
    OpenAi,
    /// An Azure OpenAI resource (classic deployments path or the v1 path).
    #[serde(rename = "azure_openai")]
    AzureOpenAi,
    /// api.anthropic.com.
    Anthropic,
    /// Any server speaking OpenAI's wire format (Ollama, vLLM, LiteLLM, Gemini's endpoint, ...).
    #[serde(rename = "openai_compatible")]
    OpenAiCompatible,
    /// agentfleet's local stand-in provider.
    Standin,
}

impl ProviderKind {
    /// Every kind, in the order the docs list them.
    pub const ALL: [ProviderKind; 5] = [
        ProviderKind::OpenAi,
        ProviderKind::AzureOpenAi,
        ProviderKind::Anthropic,
        ProviderKind::OpenAiCompatible,
        ProviderKind::Standin,
    ];

    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::AzureOpenAi => "azure_openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::OpenAiCompatible => "openai_compatible",
            ProviderKind::Standin => "standin",
        }
    }

    /// Parses the config file's name for a kind.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// The conventional variable for this kind's key, used in examples and fixes.
    pub fn conventional_variable(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "OPENAI_API_KEY",
            ProviderKind::AzureOpenAi => "AZURE_OPENAI_API_KEY",
            ProviderKind::Anthropic => "ANTHROPIC_API_KEY",
            ProviderKind::OpenAiCompatible => "LLM_API_KEY",
            ProviderKind::Standin => "STANDIN_API_KEY",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Where a value comes from. Plain data: describing a source never reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    /// `{ env = "NAME" }`: the variable, or the file named by `NAME_FILE` when that is set.
    Env {
        /// The variable's name.
        variable: String,
    },
    /// `{ file = "PATH" }`: the whole file, a trailing newline trimmed.
    File {
        /// The path as written; relative paths are relative to the config file.
        path: PathBuf,
    },
    /// `{ dotenv = "PATH", key = "NAME" }`: one entry of a dotenv file, parsed without touching
    /// the process environment.
    Dotenv {
        /// The dotenv file as written; relative paths are relative to the config file.
        path: PathBuf,
        /// The entry's name.
        key: String,
    },
    /// `{ command = ["PROGRAM", "ARG", ...] }`: what the command prints, re-run before the token
    /// it printed expires. Only for `entra_token`.
    Command {
        /// The program and its arguments.
        argv: Vec<String>,
    },
}

impl CredentialSource {
    /// The label shown in reports: `env:NAME`, `file:PATH` or `dotenv:PATH#KEY`.
    pub fn label(&self) -> String {
        match self {
            CredentialSource::Env { variable } => format!("env:{variable}"),
            CredentialSource::File { path } => format!("file:{}", path.display()),
            CredentialSource::Dotenv { path, key } => format!("dotenv:{}#{key}", path.display()),
            // The program only: arguments may hold anything.
            CredentialSource::Command { argv } => {
                format!("command:{}", argv.first().map_or("", String::as_str))
            }
        }
    }

    /// The variable or entry name a placeholder might repeat, when the source has one.
    pub fn name(&self) -> Option<&str> {
        match self {
            CredentialSource::Env { variable } => Some(variable),
            CredentialSource::File { .. } | CredentialSource::Command { .. } => None,
            CredentialSource::Dotenv { key, .. } => Some(key),
        }
    }
}

/// A non-secret setting (an endpoint, a base URL, an organization): a literal or a source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Setting {
    /// Written in the file.
    Literal(String),
    /// Read from a source when resolved.
    From(CredentialSource),
}

/// How a provider's key is configured.
#[derive(Debug)]
pub enum KeySetting {
    /// A source: the only accepted form.
    From(CredentialSource),
    /// A key written into the config file. Refused by `check` with a fix; kept only to fingerprint.
    Literal {
        /// The value, so that it can be fingerprinted and zeroized.
        secret: Secret,
        /// The variable the literal names, when the literal is a reference such as `$OPENAI_API_KEY`.
        referenced_variable: Option<String>,
        /// `file:line:column` of the literal.
        location: String,
    },
}

/// `[providers.NAME]`.
#[derive(Debug)]
pub struct Provider {
    /// The table's name.
    pub name: String,
    /// `kind`.
    pub kind: ProviderKind,
    /// `model`.
    pub model: Option<String>,
    /// `base_url`.
    pub base_url: Option<Setting>,
    /// `api_key`.
    pub api_key: Option<KeySetting>,
    /// `api_key_fallback`: a second key (Azure's KEY2, say), tried when `api_key` is refused.
    pub api_key_fallback: Option<CredentialSource>,
    /// `organization` (OpenAI).
    pub organization: Option<Setting>,
    /// `project` (OpenAI).
    pub project: Option<Setting>,
    /// `endpoint` (Azure): the resource root, or the root followed by `/openai/v1`.
    pub endpoint: Option<Setting>,
    /// `deployment` (Azure, classic path).
    pub deployment: Option<String>,
    /// `api_version` (Azure, classic path).
    pub api_version: Option<String>,
    /// `entra_token` (Azure): a Microsoft Entra access token, sent as a bearer token.
    pub entra_token: Option<CredentialSource>,
    /// `script` (stand-in): scripted replies for the in-process stand-in, relative to the
    /// config file.
    pub script: Option<PathBuf>,
}

/// `[agents.NAME]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Agent {
    /// The table's name.
    pub name: String,
    /// The provider it calls.
    pub provider: String,
    /// `system_message`.
    pub system_message: Option<String>,
    /// `description`: what a selector is told about this agent.
    pub description: Option<String>,
    /// Names of `[tools.NAME]` entries.
    pub tools: Vec<String>,
    /// How many rounds of tool calls one turn may make.
    pub max_tool_iterations: u32,
    /// Whether the agent makes one more model call to reflect on tool results.
    pub reflect_on_tool_use: bool,
    /// Whether model replies are streamed.
    pub stream: bool,
}

/// How a team chooses its next speaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TeamMode {
    /// Members speak in turn.
    RoundRobin,
    /// A model picks the next speaker.
    Selector,
}

/// When a team run stops.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Termination {
    /// Stop after this many messages.
    pub max_messages: Option<u32>,
    /// Stop when a message contains this text.
    pub text_mention: Option<String>,
    /// Stop after this long.
    pub timeout: Option<Duration>,
    /// Require every condition instead of any one.
    pub all: bool,
}

/// `[teams.NAME]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Team {
    /// The table's name.
    pub name: String,
    /// `mode`.
    pub mode: TeamMode,
    /// Agent names, in speaking order for `round_robin`.
    pub members: Vec<String>,
    /// `termination`.
    pub termination: Termination,
    /// The provider the selector's model calls (`selector` mode only).
    pub selector_provider: Option<String>,
    /// Extra instructions for the selector (`selector` mode only).
    pub selector_prompt: Option<String>,
}

/// `[tools.NAME]`: a command that takes JSON arguments on stdin and prints its result.
#[derive(Clone, Debug, PartialEq)]
pub struct Tool {
    /// The table's name.
    pub name: String,
    /// The program and its arguments.
    pub command: Vec<String>,
    /// What the model is told the tool does.
    pub description: Option<String>,
    /// The JSON Schema of the arguments.
    pub parameters: Option<serde_json::Value>,
    /// How long one call may run.
    pub timeout: Duration,
    /// The most output one call may print.
    pub max_output_bytes: u64,
    /// Variables passed through to the tool; nothing else is inherited.
    pub env: Vec<String>,
}

/// `[queue]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueSettings {
    /// `sqlite://PATH` or `postgres://...`; may come from a source since it can hold a password.
    pub url: Setting,
    /// How long a lease lasts before the task becomes available again.
    pub lease_timeout: Duration,
    /// Attempts before a task is dead-lettered.
    pub max_attempts: u32,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            url: Setting::Literal("sqlite://agentfleet.db".to_owned()),
            lease_timeout: Duration::from_secs(30),
            max_attempts: 5,
        }
    }
}

/// `[fleet]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetSettings {
    /// Worker processes `up` starts.
    pub workers: u32,
    /// Tasks each worker runs at once.
    pub concurrency: u32,
    /// Whether workers make one authenticated call per provider before taking work.
    pub probe: bool,
    /// How often a worker reports that it is alive.
    pub heartbeat_interval: Duration,
    /// How long a stopping worker may take to finish in-flight tasks.
    pub shutdown_grace: Duration,
    /// How often a worker re-reads its key files when it saw no change in their directories.
    pub key_reread_interval: Duration,
    /// Extra variables passed from the supervisor to its workers.
    pub env: Vec<String>,
}

impl Default for FleetSettings {
    fn default() -> Self {
        Self {
            workers: 2,
            concurrency: 16,
            probe: false,
            heartbeat_interval: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(30),
            key_reread_interval: Duration::from_secs(30),
            env: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_read_as_a_sentence() {
        let users = Users {
            agents: vec!["writer".into(), "critic".into()],
            teams: vec!["review".into()],
        };
        assert_eq!(users.to_string(), "agents writer, critic and team review");
        assert_eq!(Users::default().to_string(), "no agent or team");
        assert_eq!(users.names(), ["writer", "critic", "review"]);
    }

    #[test]
    fn kinds_round_trip_their_names() {
        for kind in ProviderKind::ALL {
            assert_eq!(ProviderKind::from_name(kind.as_str()), Some(kind));
        }
        assert_eq!(ProviderKind::from_name("openia"), None);
    }

    #[test]
    fn source_labels() {
        let env = CredentialSource::Env {
            variable: "OPENAI_API_KEY".into(),
        };
        assert_eq!(env.label(), "env:OPENAI_API_KEY");
        let dotenv = CredentialSource::Dotenv {
            path: ".env".into(),
            key: "K".into(),
        };
        assert_eq!(dotenv.label(), "dotenv:.env#K");
        assert_eq!(
            CredentialSource::File {
                path: "/s/k".into()
            }
            .label(),
            "file:/s/k"
        );
    }
}
