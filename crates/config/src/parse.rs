//! Reading `agentfleet.toml` into a [`Config`], reporting every problem at once.
//!
//! The file is parsed into toml's spanned tree and walked by hand instead of through serde:
//! serde stops at the first error and its messages can quote the offending value, which may be
//! a key. Here each problem gets `file:line:column`, a "did you mean" where one fits, and text
//! that never repeats a value that looks like a credential.

use std::borrow::Cow;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

use crate::env::is_valid_variable_name;
use crate::error::{ConfigError, Diagnostic};
use crate::fingerprint::looks_like_credential;
use crate::model::{
    Agent, Config, CredentialSource, FleetSettings, KeySetting, Provider, ProviderKind,
    QueueSettings, Setting, Team, TeamMode, Termination, Tool,
};
use crate::secret::Secret;

type Value<'t> = Spanned<DeValue<'t>>;
type Key<'t> = Spanned<DeString<'t>>;

const TOP_LEVEL_KEYS: &[&str] = &["providers", "agents", "teams", "tools", "queue", "fleet"];
const PROVIDER_COMMON_KEYS: &[&str] = &["kind", "model", "base_url", "api_key", "api_key_fallback"];
const OPENAI_KEYS: &[&str] = &["organization", "project"];
const AZURE_KEYS: &[&str] = &["endpoint", "deployment", "api_version", "entra_token"];
const STANDIN_KEYS: &[&str] = &["script"];
/// Keys that belong to one provider kind.
const KIND_KEYS: &[(ProviderKind, &[&str])] = &[
    (ProviderKind::OpenAi, OPENAI_KEYS),
    (ProviderKind::AzureOpenAi, AZURE_KEYS),
    (ProviderKind::Standin, STANDIN_KEYS),
];
const AGENT_KEYS: &[&str] = &[
    "provider",
    "system_message",
    "description",
    "tools",
    "max_tool_iterations",
    "reflect_on_tool_use",
    "stream",
];
const TEAM_KEYS: &[&str] = &[
    "mode",
    "members",
    "termination",
    "selector_provider",
    "selector_prompt",
];
const TERMINATION_KEYS: &[&str] = &["max_messages", "text_mention", "timeout", "all"];
const TOOL_KEYS: &[&str] = &[
    "command",
    "description",
    "parameters",
    "timeout",
    "max_output_bytes",
    "env",
];
const QUEUE_KEYS: &[&str] = &["url", "lease_timeout", "max_attempts"];
const FLEET_KEYS: &[&str] = &[
    "workers",
    "concurrency",
    "probe",
    "heartbeat_interval",
    "shutdown_grace",
    "key_reread_interval",
    "env",
];
const SOURCE_KEYS: &[&str] = &["env", "file", "dotenv", "key", "command"];
const TEAM_MODES: &[&str] = &["round_robin", "selector"];

/// Parses and validates the text of a config file. `path` is used for locations and for
/// resolving relative paths; the file is not read again.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let mut reader = Reader::new(path, text);
    let config = reader.document();
    if reader.diagnostics.is_empty() {
        Ok(config)
    } else {
        let mut diagnostics = reader.diagnostics;
        diagnostics.sort_by_key(|d| (d.line, d.column));
        diagnostics.dedup();
        Err(ConfigError::Invalid {
            path: path.to_owned(),
            diagnostics,
        })
    }
}

/// Walks one document, collecting diagnostics.
struct Reader<'t> {
    path: PathBuf,
    text: &'t str,
    line_starts: Vec<usize>,
    diagnostics: Vec<Diagnostic>,
    /// Set when the TOML itself is broken: recovery may have dropped keys, so "needs X" would
    /// be noise on top of the real error.
    syntax_broken: bool,
}

/// A table's entries in file order, after unknown keys were reported.
struct Fields<'a, 't> {
    context: String,
    span: Range<usize>,
    entries: Vec<(&'a Key<'t>, &'a Value<'t>)>,
}

impl<'a, 't> Fields<'a, 't> {
    fn get(&self, key: &str) -> Option<&'a Value<'t>> {
        self.entries
            .iter()
            .find(|(name, _)| name.get_ref() == key)
            .map(|(_, value)| *value)
    }
}

impl<'t> Reader<'t> {
    fn new(path: &Path, text: &'t str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(index, _)| index + 1))
            .collect();
        Self {
            path: path.to_owned(),
            text,
            line_starts,
            diagnostics: Vec::new(),
            syntax_broken: false,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let line_start = self.line_starts[line - 1];
        let column = self
            .text
            .get(line_start..offset)
            .map_or(1, |s| s.chars().count() + 1);
        (line, column)
    }

    fn error(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let (line, column) = self.position(span.start);
        self.diagnostics.push(Diagnostic {
            message: message.into(),
            file: Some(self.path.clone()),
            line: Some(line),
            column: Some(column),
        });
    }

    /// Reports a required key that is absent, unless broken syntax may be why.
    fn missing(&mut self, span: &Range<usize>, message: impl Into<String>) {
        if !self.syntax_broken {
            self.error(span, message);
        }
    }

    fn location(&self, span: &Range<usize>) -> String {
        let (line, column) = self.position(span.start);
        format!("{}:{line}:{column}", self.path.display())
    }

    fn document(&mut self) -> Config {
        let (root, syntax_errors) = DeTable::parse_recoverable(self.text);
        self.syntax_broken = !syntax_errors.is_empty();
        for error in &syntax_errors {
            let span = error.span().unwrap_or(0..0);
            // `message()` is toml's description alone; the rendered error would quote the line.
            let message = format!(
                "invalid TOML: {}",
                error.message().trim().replace('\n', "; ")
            );
            self.error(&span, message);
        }
        let base_dir = self
            .path
            .parent()
            .map(|dir| {
                if dir.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    dir
                }
            })
            .unwrap_or(Path::new("."))
            .to_owned();
        let root_span = root.span();
        let root = root.into_inner();
        let top: Vec<(&Key<'t>, &Value<'t>)> = sorted_entries(&root);
        let top = Fields {
            context: "the top level".to_owned(),
            span: root_span,
            entries: top,
        };
        self.unknown_keys(&top, TOP_LEVEL_KEYS, &[]);

        // References are checked against every declared name, valid or not, so that one broken
        // entry is reported once rather than again by everything that names it.
        let provider_names = declared_names(&top, "providers");
        let tool_names = declared_names(&top, "tools");
        let agent_names = declared_names(&top, "agents");
        let providers = self.named_tables(&top, "providers", |reader, name, fields| {
            reader.provider(name, fields)
        });
        let tools = self.named_tables(&top, "tools", |reader, name, fields| {
            reader.tool(name, fields)
        });
        let agents = self.named_tables(&top, "agents", |reader, name, fields| {
            reader.agent(name, fields, &provider_names, &tool_names)
        });
        let teams = self.named_tables(&top, "teams", |reader, name, fields| {
            reader.team(name, fields, &agent_names, &provider_names)
        });
        let queue = match top.get("queue") {
            Some(value) => self.queue(value),
            None => QueueSettings::default(),
        };
        let fleet = match top.get("fleet") {
            Some(value) => self.fleet(value),
            None => FleetSettings::default(),
        };
        Config {
            path: self.path.clone(),
            base_dir,
            providers,
            agents,
            teams,
            tools,
            queue,
            fleet,
        }
    }

    /// Reads `[SECTION.NAME]` tables with `read`, checking each name.
    fn named_tables<T>(
        &mut self,
        top: &Fields<'_, 't>,
        section: &str,
        mut read: impl FnMut(&mut Self, &str, &Fields<'_, 't>) -> Option<T>,
    ) -> Vec<T> {
        let Some(value) = top.get(section) else {
            return Vec::new();
        };
        let DeValue::Table(table) = value.get_ref() else {
            self.error(
                &value.span(),
                format!(
                    "{section} must be a table of named entries such as [{section}.NAME], not {}",
                    article(value.get_ref().type_str())
                ),
            );
            return Vec::new();
        };
        let mut items = Vec::new();
        for (key, entry) in sorted_entries(table) {
            let name = key.get_ref().as_ref();
            if !is_plain_name(name) {
                self.error(
                    &key.span(),
                    format!(
                        "the name of this [{section}] entry is not a plain name: use letters, \
                         digits, '-' and '_', at most 64 characters, not shaped like a key"
                    ),
                );
                continue;
            }
            let context = format!("[{section}.{name}]");
            let Some(fields) = self.table(entry, &context) else {
                continue;
            };
            if let Some(item) = read(self, name, &fields) {
                items.push(item);
            }
        }
        items
    }

    /// The entries of a value that must be a table.
    fn table<'a>(&mut self, value: &'a Value<'t>, context: &str) -> Option<Fields<'a, 't>> {
        match value.get_ref() {
            DeValue::Table(table) => Some(Fields {
                context: context.to_owned(),
                span: value.span(),
                entries: sorted_entries(table),
            }),
            other => {
                self.error(
                    &value.span(),
                    format!(
                        "{context} must be a table, not {}",
                        article(other.type_str())
                    ),
                );
                None
            }
        }
    }

    /// Reports every key not in `known`, suggesting the nearest known key. Keys in
    /// `reported_elsewhere` are left for the caller, which explains them better.
    fn unknown_keys(
        &mut self,
        fields: &Fields<'_, 't>,
        known: &[&str],
        reported_elsewhere: &[&str],
    ) {
        for (key, _) in &fields.entries {
            let name = key.get_ref().as_ref();
            if known.contains(&name) || reported_elsewhere.contains(&name) {
                continue;
            }
            let mut message = format!("unknown key {} in {}", shown(name), fields.context);
            if let Some(suggestion) = suggest(name, known.iter().copied()) {
                message.push_str(&format!("; did you mean '{suggestion}'?"));
            } else {
                message.push_str(&format!("; expected one of: {}", known.join(", ")));
            }
            self.error(&key.span(), message);
        }
    }

    fn provider(&mut self, name: &str, fields: &Fields<'_, 't>) -> Option<Provider> {
        let context = &fields.context;
        let kind = match fields.get("kind") {
            None => {
                self.missing(
                    &fields.span,
                    format!(
                        "{context} needs kind = one of {}",
                        quoted_list(ProviderKind::ALL.map(ProviderKind::as_str).as_slice())
                    ),
                );
                None
            }
            Some(value) => match value.get_ref() {
                DeValue::String(text) => match ProviderKind::from_name(text) {
                    Some(kind) => Some(kind),
                    None => {
                        let names = ProviderKind::ALL.map(ProviderKind::as_str);
                        let mut message = format!("unknown provider kind {}", shown(text));
                        match suggest(text, names) {
                            Some(s) => message.push_str(&format!("; did you mean '{s}'?")),
                            None => message.push_str(&format!(
                                "; expected one of {}",
                                quoted_list(names.as_slice())
                            )),
                        }
                        self.error(&value.span(), message);
                        None
                    }
                },
                other => {
                    self.wrong_type(value, context, "kind", "a string", other);
                    None
                }
            },
        };
        let kind_specific: &[&str] = KIND_KEYS
            .iter()
            .find(|(owner, _)| Some(*owner) == kind)
            .map_or(&[], |(_, keys)| keys);
        let known: Vec<&str> = PROVIDER_COMMON_KEYS
            .iter()
            .chain(kind_specific)
            .copied()
            .collect();
        let other_kinds: Vec<&str> = KIND_KEYS
            .iter()
            .flat_map(|(_, keys)| keys.iter())
            .filter(|key| !known.contains(key))
            .copied()
            .collect();
        self.unknown_keys(fields, &known, &other_kinds);
        // Keys that belong to another kind get a message saying whose they are.
        if let Some(kind) = kind {
            for (key, _) in &fields.entries {
                let name = key.get_ref().as_ref();
                if !other_kinds.contains(&name) {
                    continue;
                }
                let owner = KIND_KEYS
                    .iter()
                    .find(|(_, keys)| keys.contains(&name))
                    .map_or("other", |(owner, _)| owner.as_str());
                self.error(
                    &key.span(),
                    format!(
                        "{name} applies to {owner} providers only, and {context} is kind {kind}; \
                         remove it or change kind"
                    ),
                );
            }
        }

        let model = self.string(fields, "model");
        let base_url = self.setting(fields, "base_url", true);
        let api_key = self.key_setting(fields);
        let api_key_fallback =
            fields
                .get("api_key_fallback")
                .and_then(|value| match value.get_ref() {
                    DeValue::Table(_) => self.source(
                        value,
                        &format!("{context} api_key_fallback"),
                        "api_key_fallback",
                    ),
                    other => {
                        self.wrong_type(
                            value,
                            context,
                            "api_key_fallback",
                            "a source such as { env = \"AZURE_OPENAI_API_KEY_2\" } (a key is never \
                         written into the config)",
                            other,
                        );
                        None
                    }
                });
        let organization = self.setting(fields, "organization", false);
        let project = self.setting(fields, "project", false);
        let endpoint = self.setting(fields, "endpoint", true);
        let deployment = self.string(fields, "deployment");
        let api_version = self.string(fields, "api_version");
        let script = self.string(fields, "script").map(PathBuf::from);
        let entra_token = fields.get("entra_token").and_then(|value| {
            let context = format!("{context} entra_token");
            self.source_of(value, &context, "entra_token", true)
        });
        let kind = kind?;

        let needs_model = matches!(
            kind,
            ProviderKind::OpenAi | ProviderKind::Anthropic | ProviderKind::OpenAiCompatible
        );
        if needs_model && model.is_none() && fields.get("model").is_none() {
            self.missing(
                &fields.span,
                format!("{context} needs model = \"...\" (kind {kind})"),
            );
        }
        if kind == ProviderKind::AzureOpenAi && fields.get("endpoint").is_none() {
            self.missing(
                &fields.span,
                format!(
                    "{context} needs endpoint = \"https://RESOURCE.openai.azure.com\" \
                     (or {{ env = \"AZURE_OPENAI_ENDPOINT\" }})"
                ),
            );
        }
        if kind == ProviderKind::OpenAiCompatible && fields.get("base_url").is_none() {
            self.missing(
                &fields.span,
                format!(
                    "{context} needs base_url = \"http://HOST:PORT/v1\" (kind openai_compatible)"
                ),
            );
        }
        if kind == ProviderKind::AzureOpenAi
            && fields.get("api_key").is_some()
            && fields.get("entra_token").is_some()
        {
            self.error(
                &fields.span,
                format!(
                    "{context} sets both api_key and entra_token; Azure takes one: keep api_key \
                     for a resource key, or entra_token for Microsoft Entra ID"
                ),
            );
        }
        if let Some(fallback) = fields.get("api_key_fallback")
            && fields.get("api_key").is_none()
        {
            self.error(
                &fallback.span(),
                format!(
                    "{context} sets api_key_fallback without api_key; the fallback is tried only \
                     when api_key is refused, so add api_key"
                ),
            );
        }
        let needs_key = matches!(
            kind,
            ProviderKind::OpenAi | ProviderKind::AzureOpenAi | ProviderKind::Anthropic
        ) && fields.get("entra_token").is_none();
        if needs_key && fields.get("api_key").is_none() {
            self.missing(
                &fields.span,
                format!(
                    "{context} needs api_key = {{ env = \"{}\" }} (or a file or dotenv source)",
                    kind.conventional_variable()
                ),
            );
        }
        Some(Provider {
            name: name.to_owned(),
            kind,
            model,
            base_url,
            api_key,
            api_key_fallback,
            organization,
            project,
            endpoint,
            deployment,
            api_version,
            entra_token,
            script,
        })
    }

    fn agent(
        &mut self,
        name: &str,
        fields: &Fields<'_, 't>,
        providers: &[&str],
        tools: &[&str],
    ) -> Option<Agent> {
        self.unknown_keys(fields, AGENT_KEYS, &[]);
        let provider = self.reference(fields, "provider", "providers", providers, true);
        let system_message = self.string(fields, "system_message");
        let description = self.string(fields, "description");
        let tool_names = self
            .reference_list(fields, "tools", "tools", tools)
            .unwrap_or_default();
        let max_tool_iterations = self
            .integer(fields, "max_tool_iterations", 1, 100)
            .map_or(1, |n| n as u32);
        let reflect_on_tool_use = self.boolean(fields, "reflect_on_tool_use").unwrap_or(false);
        let stream = self.boolean(fields, "stream").unwrap_or(false);
        Some(Agent {
            name: name.to_owned(),
            provider: provider?,
            system_message,
            description,
            tools: tool_names,
            max_tool_iterations,
            reflect_on_tool_use,
            stream,
        })
    }

    fn team(
        &mut self,
        name: &str,
        fields: &Fields<'_, 't>,
        agents: &[&str],
        providers: &[&str],
    ) -> Option<Team> {
        let context = fields.context.clone();
        self.unknown_keys(fields, TEAM_KEYS, &[]);
        if agents.contains(&name) {
            self.error(
                &fields.span,
                format!("{context} has the name of an agent; give teams and agents distinct names"),
            );
        }
        let mode = match fields.get("mode") {
            None => Some(TeamMode::RoundRobin),
            Some(value) => match value.get_ref() {
                DeValue::String(text) if text == "round_robin" => Some(TeamMode::RoundRobin),
                DeValue::String(text) if text == "selector" => Some(TeamMode::Selector),
                DeValue::String(text) => {
                    let mut message = format!("unknown team mode {}", shown(text));
                    match suggest(text, TEAM_MODES.iter().copied()) {
                        Some(s) => message.push_str(&format!("; did you mean '{s}'?")),
                        None => message.push_str("; expected \"round_robin\" or \"selector\""),
                    }
                    self.error(&value.span(), message);
                    None
                }
                other => {
                    self.wrong_type(value, &context, "mode", "a string", other);
                    None
                }
            },
        };
        let members = match fields.get("members") {
            None => {
                self.missing(
                    &fields.span,
                    format!("{context} needs members = [\"AGENT\", ...]"),
                );
                None
            }
            Some(_) => self.reference_list(fields, "members", "agents", agents),
        };
        if let (Some(members), Some(value)) = (&members, fields.get("members")) {
            if members.is_empty() && self.is_string_array(value) {
                self.error(
                    &value.span(),
                    format!("{context} members is empty; name at least one agent"),
                );
            }
            let mut seen: Vec<&str> = Vec::new();
            for member in members {
                if seen.contains(&member.as_str()) {
                    self.error(
                        &value.span(),
                        format!("{context} lists agent {member} twice in members"),
                    );
                }
                seen.push(member);
            }
        }
        let termination = match fields.get("termination") {
            None => {
                self.missing(
                    &fields.span,
                    format!(
                        "{context} needs a termination condition, such as \
                         termination = {{ max_messages = 10 }}"
                    ),
                );
                None
            }
            Some(value) => self.termination(value, &context),
        };
        let selector_provider = match mode {
            Some(TeamMode::Selector) => {
                if fields.get("selector_provider").is_none() {
                    self.missing(
                        &fields.span,
                        format!(
                            "{context} is mode selector and needs selector_provider = \"PROVIDER\": \
                             the model that picks the next speaker"
                        ),
                    );
                }
                self.reference(fields, "selector_provider", "providers", providers, false)
            }
            _ => {
                for key in ["selector_provider", "selector_prompt"] {
                    if let Some(value) = fields.get(key) {
                        self.error(
                            &value.span(),
                            format!("{key} applies to mode = \"selector\" only; {context} is round_robin"),
                        );
                    }
                }
                None
            }
        };
        let selector_prompt = self.string(fields, "selector_prompt");
        Some(Team {
            name: name.to_owned(),
            mode: mode?,
            members: members?,
            termination: termination?,
            selector_provider,
            selector_prompt,
        })
    }

    fn termination(&mut self, value: &Value<'t>, team_context: &str) -> Option<Termination> {
        let context = format!("{team_context} termination");
        let fields = self.table(value, &context)?;
        self.unknown_keys(&fields, TERMINATION_KEYS, &[]);
        let termination = Termination {
            max_messages: self
                .integer(&fields, "max_messages", 1, 100_000)
                .map(|n| n as u32),
            text_mention: self.string(&fields, "text_mention"),
            timeout: self.duration(&fields, "timeout"),
            all: self.boolean(&fields, "all").unwrap_or(false),
        };
        if let Some(value) = fields.get("text_mention")
            && termination.text_mention.as_deref() == Some("")
        {
            self.error(
                &value.span(),
                format!("{context} text_mention is empty; it would match every message"),
            );
        }
        let has_condition = ["max_messages", "text_mention", "timeout"]
            .iter()
            .any(|key| fields.get(key).is_some());
        if !has_condition {
            self.error(
                &fields.span,
                format!("{context} has no condition; set max_messages, text_mention or timeout"),
            );
        }
        Some(termination)
    }

    fn tool(&mut self, name: &str, fields: &Fields<'_, 't>) -> Option<Tool> {
        let context = fields.context.clone();
        self.unknown_keys(fields, TOOL_KEYS, &[]);
        let command = match fields.get("command") {
            None => {
                self.missing(
                    &fields.span,
                    format!("{context} needs command = [\"PROGRAM\", \"ARG\", ...]"),
                );
                None
            }
            Some(value) => {
                let command = self.string_array(value, &context, "command");
                if command.as_ref().is_some_and(Vec::is_empty) {
                    self.error(
                        &value.span(),
                        format!("{context} command is empty; name a program"),
                    );
                }
                command
            }
        };
        let description = self.string(fields, "description");
        let parameters = match fields.get("parameters") {
            None => None,
            Some(value) => match value.get_ref() {
                DeValue::Table(_) => Some(to_json(value.get_ref())),
                other => {
                    self.wrong_type(
                        value,
                        &context,
                        "parameters",
                        "a table (a JSON Schema)",
                        other,
                    );
                    None
                }
            },
        };
        let timeout = self
            .duration(fields, "timeout")
            .unwrap_or(Duration::from_secs(30));
        let max_output_bytes = self
            .integer(fields, "max_output_bytes", 1, i64::MAX)
            .map_or(1 << 20, |n| n as u64);
        let env = self.variable_list(fields, "env").unwrap_or_default();
        Some(Tool {
            name: name.to_owned(),
            command: command.filter(|c| !c.is_empty())?,
            description,
            parameters,
            timeout,
            max_output_bytes,
            env,
        })
    }

    fn queue(&mut self, value: &Value<'t>) -> QueueSettings {
        let defaults = QueueSettings::default();
        let Some(fields) = self.table(value, "[queue]") else {
            return defaults;
        };
        self.unknown_keys(&fields, QUEUE_KEYS, &[]);
        let url = self.setting(&fields, "url", false);
        if let (Some(Setting::Literal(url)), Some(value)) = (&url, fields.get("url"))
            && !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
        {
            self.error(
                &value.span(),
                "[queue] url must start with sqlite:// (one machine) or postgres:// (many machines)",
            );
        }
        QueueSettings {
            url: url.unwrap_or(defaults.url),
            lease_timeout: self
                .duration(&fields, "lease_timeout")
                .unwrap_or(defaults.lease_timeout),
            max_attempts: self
                .integer(&fields, "max_attempts", 1, 1000)
                .map_or(defaults.max_attempts, |n| n as u32),
        }
    }

    fn fleet(&mut self, value: &Value<'t>) -> FleetSettings {
        let defaults = FleetSettings::default();
        let Some(fields) = self.table(value, "[fleet]") else {
            return defaults;
        };
        self.unknown_keys(&fields, FLEET_KEYS, &[]);
        FleetSettings {
            workers: self
                .integer(&fields, "workers", 1, 1024)
                .map_or(defaults.workers, |n| n as u32),
            concurrency: self
                .integer(&fields, "concurrency", 1, 4096)
                .map_or(defaults.concurrency, |n| n as u32),
            probe: self.boolean(&fields, "probe").unwrap_or(defaults.probe),
            heartbeat_interval: self
                .duration(&fields, "heartbeat_interval")
                .unwrap_or(defaults.heartbeat_interval),
            shutdown_grace: self
                .duration(&fields, "shutdown_grace")
                .unwrap_or(defaults.shutdown_grace),
            key_reread_interval: self
                .duration(&fields, "key_reread_interval")
                .unwrap_or(defaults.key_reread_interval),
            env: self.variable_list(&fields, "env").unwrap_or_default(),
        }
    }

    fn wrong_type(
        &mut self,
        value: &Value<'t>,
        context: &str,
        key: &str,
        expected: &str,
        found: &DeValue<'t>,
    ) {
        self.error(
            &value.span(),
            format!(
                "{context} {key} must be {expected}, not {}",
                article(found.type_str())
            ),
        );
    }

    fn string(&mut self, fields: &Fields<'_, 't>, key: &str) -> Option<String> {
        let value = fields.get(key)?;
        match value.get_ref() {
            DeValue::String(text) => Some(text.to_string()),
            other => {
                self.wrong_type(value, &fields.context, key, "a string", other);
                None
            }
        }
    }

    fn boolean(&mut self, fields: &Fields<'_, 't>, key: &str) -> Option<bool> {
        let value = fields.get(key)?;
        match value.get_ref() {
            DeValue::Boolean(flag) => Some(*flag),
            other => {
                self.wrong_type(value, &fields.context, key, "true or false", other);
                None
            }
        }
    }

    fn integer(&mut self, fields: &Fields<'_, 't>, key: &str, min: i64, max: i64) -> Option<i64> {
        let value = fields.get(key)?;
        let DeValue::Integer(integer) = value.get_ref() else {
            self.wrong_type(
                value,
                &fields.context,
                key,
                "a whole number",
                value.get_ref(),
            );
            return None;
        };
        match i64::from_str_radix(integer.as_str(), integer.radix()) {
            Ok(number) if (min..=max).contains(&number) => Some(number),
            _ => {
                let range = if max == i64::MAX {
                    format!("at least {min}")
                } else {
                    format!("from {min} to {max}")
                };
                self.error(
                    &value.span(),
                    format!("{} {key} must be {range}", fields.context),
                );
                None
            }
        }
    }

    fn duration(&mut self, fields: &Fields<'_, 't>, key: &str) -> Option<Duration> {
        let value = fields.get(key)?;
        let parsed = match value.get_ref() {
            DeValue::String(text) => parse_duration(text),
            _ => None,
        };
        if parsed.is_none() {
            self.error(
                &value.span(),
                format!(
                    "{} {key} must be a duration such as \"500ms\", \"30s\", \"5m\" or \"1h\"",
                    fields.context
                ),
            );
        }
        parsed
    }

    fn is_string_array(&self, value: &Value<'t>) -> bool {
        matches!(value.get_ref(), DeValue::Array(items) if items.iter().all(|i| i.get_ref().is_str()))
    }

    fn string_array(&mut self, value: &Value<'t>, context: &str, key: &str) -> Option<Vec<String>> {
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong_type(value, context, key, "an array of strings", value.get_ref());
            return None;
        };
        let mut strings = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(text) => strings.push(text.to_string()),
                other => {
                    self.error(
                        &item.span(),
                        format!(
                            "{context} {key} must hold strings only, not {}",
                            article(other.type_str())
                        ),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(strings)
    }

    fn variable_list(&mut self, fields: &Fields<'_, 't>, key: &str) -> Option<Vec<String>> {
        let value = fields.get(key)?;
        let names = self.string_array(value, &fields.context, key)?;
        for name in &names {
            if !is_valid_variable_name(name) || looks_like_credential(name) {
                self.error(
                    &value.span(),
                    format!(
                        "{} {key} lists variable names to pass through; one entry is not a \
                         variable name (values never go here: name the variable instead)",
                        fields.context
                    ),
                );
                return None;
            }
        }
        Some(names)
    }

    /// A string naming an entry of `[section]`; `required` reports its absence.
    fn reference(
        &mut self,
        fields: &Fields<'_, 't>,
        key: &str,
        section: &str,
        defined: &[&str],
        required: bool,
    ) -> Option<String> {
        let Some(value) = fields.get(key) else {
            if required {
                let example = defined.first().copied().unwrap_or("NAME");
                self.missing(
                    &fields.span,
                    format!("{} needs {key} = \"{example}\"", fields.context),
                );
            }
            return None;
        };
        let DeValue::String(name) = value.get_ref() else {
            self.wrong_type(value, &fields.context, key, "a string", value.get_ref());
            return None;
        };
        self.check_defined(name, &value.span(), &fields.context, key, section, defined)
            .then(|| name.to_string())
    }

    fn reference_list(
        &mut self,
        fields: &Fields<'_, 't>,
        key: &str,
        section: &str,
        defined: &[&str],
    ) -> Option<Vec<String>> {
        let value = fields.get(key)?;
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong_type(
                value,
                &fields.context,
                key,
                "an array of names",
                value.get_ref(),
            );
            return None;
        };
        let mut names = Vec::new();
        let mut ok = true;
        for item in items.iter() {
            let DeValue::String(name) = item.get_ref() else {
                self.error(
                    &item.span(),
                    format!(
                        "{} {key} must hold names (strings), not {}",
                        fields.context,
                        article(item.get_ref().type_str())
                    ),
                );
                ok = false;
                continue;
            };
            if self.check_defined(name, &item.span(), &fields.context, key, section, defined) {
                names.push(name.to_string());
            } else {
                ok = false;
            }
        }
        ok.then_some(names)
    }

    fn check_defined(
        &mut self,
        name: &str,
        span: &Range<usize>,
        context: &str,
        key: &str,
        section: &str,
        defined: &[&str],
    ) -> bool {
        if defined.contains(&name) {
            return true;
        }
        let mut message = format!(
            "{context} {key} names {} {}, which is not defined",
            singular(section),
            shown(name)
        );
        match suggest(name, defined.iter().copied()) {
            Some(s) => message.push_str(&format!("; did you mean '{s}'?")),
            None if defined.is_empty() => {
                message.push_str(&format!("; there is no [{section}.NAME] entry"))
            }
            None => message.push_str(&format!("; defined: {}", defined.join(", "))),
        }
        self.error(span, message);
        false
    }

    /// A non-secret setting: a literal string or a source table. `url` literals must be HTTP(S).
    fn setting(&mut self, fields: &Fields<'_, 't>, key: &str, url: bool) -> Option<Setting> {
        let value = fields.get(key)?;
        match value.get_ref() {
            DeValue::String(text) => {
                if url && crate::rules::HttpUrl::parse(text).is_none() {
                    self.error(
                        &value.span(),
                        format!(
                            "{} {key} must be an http:// or https:// URL with a host, \
                             such as \"https://api.openai.com/v1\"",
                            fields.context
                        ),
                    );
                    return None;
                }
                Some(Setting::Literal(text.to_string()))
            }
            DeValue::Table(_) => {
                let context = format!("{} {key}", fields.context);
                self.source(value, &context, key).map(Setting::From)
            }
            other => {
                self.wrong_type(
                    value,
                    &fields.context,
                    key,
                    "a string or a source such as { env = \"NAME\" }",
                    other,
                );
                None
            }
        }
    }

    fn key_setting(&mut self, fields: &Fields<'_, 't>) -> Option<KeySetting> {
        let value = fields.get("api_key")?;
        match value.get_ref() {
            DeValue::String(text) => Some(KeySetting::Literal {
                referenced_variable: referenced_variable(text),
                secret: Secret::new(text.to_string()),
                location: self.location(&value.span()),
            }),
            DeValue::Table(_) => {
                let context = format!("{} api_key", fields.context);
                self.source(value, &context, "api_key")
                    .map(KeySetting::From)
            }
            other => {
                self.wrong_type(
                    value,
                    &fields.context,
                    "api_key",
                    "a source such as { env = \"OPENAI_API_KEY\" }",
                    other,
                );
                None
            }
        }
    }

    /// `{ env = "NAME" }`, `{ file = "PATH" }` or `{ dotenv = "PATH", key = "NAME" }`; and
    /// `{ command = [...] }` where `allow_command` (token sources, re-run before expiry).
    fn source(&mut self, value: &Value<'t>, context: &str, key: &str) -> Option<CredentialSource> {
        self.source_of(value, context, key, false)
    }

    fn source_of(
        &mut self,
        value: &Value<'t>,
        context: &str,
        key: &str,
        allow_command: bool,
    ) -> Option<CredentialSource> {
        let fields = self.table(value, context)?;
        self.unknown_keys(&fields, SOURCE_KEYS, &[]);
        let env = self.string(&fields, "env");
        let file = self.string(&fields, "file");
        let dotenv = self.string(&fields, "dotenv");
        let entry = self.string(&fields, "key");
        if let Some(command) = fields.get("command") {
            if !allow_command {
                self.error(
                    &command.span(),
                    format!(
                        "{context}: command sources are for entra_token only; read a key from \
                         env, file or dotenv"
                    ),
                );
                return None;
            }
            let others = ["env", "file", "dotenv", "key"]
                .iter()
                .any(|k| fields.get(k).is_some());
            let argv = self.string_array(command, context, "command")?;
            if others {
                self.error(
                    &fields.span,
                    format!("{context} needs exactly one of env, file or command"),
                );
                return None;
            }
            if argv.first().is_none_or(|program| program.is_empty()) {
                self.error(
                    &command.span(),
                    format!("{context} command is empty; name a program"),
                );
                return None;
            }
            return Some(CredentialSource::Command { argv });
        }
        let given = ["env", "file", "dotenv"]
            .iter()
            .filter(|k| fields.get(k).is_some())
            .count();
        if given != 1 {
            self.error(
                &fields.span,
                format!(
                    "{context} needs exactly one of env, file or dotenv: \
                     {key} = {{ env = \"NAME\" }}, {{ file = \"/run/secrets/NAME\" }} \
                     or {{ dotenv = \".env\", key = \"NAME\" }}"
                ),
            );
            return None;
        }
        if fields.get("key").is_some() && fields.get("dotenv").is_none() {
            self.error(
                &fields.span,
                format!("{context}: key goes with dotenv only"),
            );
            return None;
        }
        let empty = |reader: &mut Self, what: &str| {
            reader.error(&fields.span, format!("{context} {what} is empty"));
            None
        };
        if let Some(variable) = env {
            if !is_valid_variable_name(&variable) {
                return empty(self, "env (a variable name)");
            }
            if looks_like_credential(&variable) {
                self.error(
                    &fields.span,
                    format!(
                        "{context} env must name a variable, and this looks like a key itself; \
                         write {{ env = \"NAME\" }} and put the key in that variable"
                    ),
                );
                return None;
            }
            return Some(CredentialSource::Env { variable });
        }
        if let Some(path) = file {
            if path.is_empty() {
                return empty(self, "file");
            }
            return Some(CredentialSource::File {
                path: PathBuf::from(path),
            });
        }
        let path = dotenv?;
        if path.is_empty() {
            return empty(self, "dotenv");
        }
        let Some(entry) = entry else {
            self.error(
                &fields.span,
                format!("{context} dotenv needs key = \"NAME\": the entry to read from the file"),
            );
            return None;
        };
        if !is_valid_variable_name(&entry) || looks_like_credential(&entry) {
            return empty(self, "key (an entry name)");
        }
        Some(CredentialSource::Dotenv {
            path: PathBuf::from(path),
            key: entry,
        })
    }
}

/// The plain names declared under `[section]`, whatever their contents.
fn declared_names<'a>(top: &Fields<'a, '_>, section: &str) -> Vec<&'a str> {
    match top.get(section).map(Spanned::get_ref) {
        Some(DeValue::Table(table)) => sorted_entries(table)
            .into_iter()
            .map(|(key, _)| key.get_ref().as_ref())
            .filter(|name| is_plain_name(name))
            .collect(),
        _ => Vec::new(),
    }
}

/// A table's entries sorted by where they appear in the file.
fn sorted_entries<'a, 't>(table: &'a DeTable<'t>) -> Vec<(&'a Key<'t>, &'a Value<'t>)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    entries
}

/// Names of providers, agents, teams and tools: short, plain, and not key-shaped.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !looks_like_credential(name)
}

/// User text as it may appear in a message: quoted when it is a plain name, hidden otherwise.
fn shown(text: &str) -> Cow<'static, str> {
    let printable = text.len() <= 64
        && text.chars().all(|c| c.is_ascii_graphic() || c == ' ')
        && !looks_like_credential(text);
    if printable {
        Cow::Owned(format!("'{text}'"))
    } else {
        Cow::Borrowed("(not shown: it looks like a credential or is not plain text)")
    }
}

/// The nearest option within a small edit distance, ignoring case.
fn suggest<'c>(candidate: &str, options: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    if looks_like_credential(candidate) {
        return None;
    }
    let candidate = candidate.to_ascii_lowercase();
    let limit = (candidate.chars().count() / 3).max(1);
    options
        .into_iter()
        .map(|option| {
            (
                edit_distance(&candidate, &option.to_ascii_lowercase()),
                option,
            )
        })
        .filter(|(distance, _)| *distance <= limit && *distance < candidate.chars().count())
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, option)| option)
}

/// Levenshtein distance, with adjacent transpositions counted as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

/// `500ms`, `30s`, `5m`, `1h`.
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let millis = match unit.trim() {
        "ms" => number,
        "s" => number.checked_mul(1000)?,
        "m" => number.checked_mul(60_000)?,
        "h" => number.checked_mul(3_600_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(millis))
}

/// When a literal key is really a reference (`$NAME`, `${NAME}`, `env:NAME`, or a bare
/// `UPPER_CASE_NAME`), the variable it names, so that the fix can spell out the source.
fn referenced_variable(literal: &str) -> Option<String> {
    let trimmed = literal.trim();
    let name = trimmed
        .strip_prefix("${")
        .and_then(|rest| rest.strip_suffix('}'))
        .or_else(|| trimmed.strip_prefix('$'))
        .or_else(|| trimmed.strip_prefix("env:"))
        .unwrap_or(trimmed);
    let is_identifier = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit()
        && name.contains('_');
    is_identifier.then(|| name.to_owned())
}

fn to_json(value: &DeValue<'_>) -> serde_json::Value {
    match value {
        DeValue::String(text) => serde_json::Value::String(text.to_string()),
        DeValue::Integer(integer) => i64::from_str_radix(integer.as_str(), integer.radix())
            .map_or(serde_json::Value::Null, serde_json::Value::from),
        DeValue::Float(float) => float
            .as_str()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        DeValue::Boolean(flag) => serde_json::Value::Bool(*flag),
        DeValue::Datetime(datetime) => serde_json::Value::String(datetime.to_string()),
        DeValue::Array(items) => items.iter().map(|item| to_json(item.get_ref())).collect(),
        DeValue::Table(table) => serde_json::Value::Object(
            sorted_entries(table)
                .into_iter()
                .map(|(key, item)| (key.get_ref().to_string(), to_json(item.get_ref())))
                .collect(),
        ),
    }
}

fn article(type_name: &str) -> String {
    match type_name {
        "integer" | "array" => format!("an {type_name}"),
        other => format!("a {other}"),
    }
}

fn singular(section: &str) -> &str {
    section.strip_suffix('s').unwrap_or(section)
}

fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|item| format!("\"{item}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        match parse(Path::new("agentfleet.toml"), text) {
            Ok(_) => Vec::new(),
            Err(error) => error
                .diagnostics()
                .iter()
                .map(ToString::to_string)
                .collect(),
        }
    }

    fn parsed(text: &str) -> Config {
        parse(Path::new("agentfleet.toml"), text).unwrap_or_else(|error| {
            panic!("{:#?}", error.diagnostics());
        })
    }

    const GOOD: &str = r#"
[providers.openai]
kind = "openai"
model = "gpt-4o-mini"
api_key = { env = "OPENAI_API_KEY" }

[providers.azure]
kind = "azure_openai"
endpoint = { env = "AZURE_OPENAI_ENDPOINT" }
deployment = "gpt4o"
api_version = "2024-10-21"
api_key = { file = "/run/secrets/azure/api-key" }

[agents.writer]
provider = "openai"
system_message = "You write short, clear answers."
tools = ["search"]

[agents.critic]
provider = "azure"

[tools.search]
command = ["./search.sh"]
timeout = "5s"
env = ["PATH"]
parameters = { type = "object", properties = { query = { type = "string" } } }

[teams.review]
mode = "round_robin"
members = ["writer", "critic"]
termination = { max_messages = 6, text_mention = "APPROVE" }

[queue]
url = "sqlite://agentfleet.db"

[fleet]
workers = 2
concurrency = 16
"#;

    #[test]
    fn the_documented_shape_parses() {
        let config = parsed(GOOD);
        assert_eq!(config.providers.len(), 2);
        let openai = config.provider("openai").unwrap();
        assert_eq!(openai.kind, ProviderKind::OpenAi);
        assert!(matches!(
            &openai.api_key,
            Some(KeySetting::From(CredentialSource::Env { variable })) if variable == "OPENAI_API_KEY"
        ));
        let azure = config.provider("azure").unwrap();
        assert_eq!(azure.deployment.as_deref(), Some("gpt4o"));
        assert!(matches!(
            azure.endpoint,
            Some(Setting::From(CredentialSource::Env { .. }))
        ));
        let team = config.team("review").unwrap();
        assert_eq!(team.members, ["writer", "critic"]);
        assert_eq!(team.termination.max_messages, Some(6));
        assert_eq!(team.termination.text_mention.as_deref(), Some("APPROVE"));
        assert!(!team.termination.all);
        let tool = config.tool("search").unwrap();
        assert_eq!(tool.timeout, Duration::from_secs(5));
        assert_eq!(
            tool.parameters.as_ref().unwrap()["properties"]["query"]["type"],
            "string"
        );
        assert_eq!(config.fleet.workers, 2);
        assert_eq!(
            config.users_of("openai").to_string(),
            "agent writer and team review"
        );
        assert_eq!(config.users_of("azure").names(), ["critic", "review"]);
    }

    #[test]
    fn every_problem_is_reported_at_once_with_locations() {
        let found = problems(
            "[providers.openai]\nkind = \"openia\"\nmodle = \"x\"\n\n[agents.a]\nprovider = \"opnai\"\nstream = \"yes\"\n",
        );
        assert_eq!(found.len(), 4, "{found:#?}");
        assert!(
            found[0].starts_with(
                "agentfleet.toml:2:8: unknown provider kind 'openia'; did you mean 'openai'?"
            ),
            "{found:#?}"
        );
        assert!(
            found[1].starts_with("agentfleet.toml:3:1: unknown key 'modle'"),
            "{found:#?}"
        );
        assert!(found[1].contains("did you mean 'model'?"));
        assert!(
            found
                .iter()
                .any(|f| f.starts_with("agentfleet.toml:6:12:")
                    && f.contains("did you mean 'openai'?")),
            "{found:#?}"
        );
        assert!(
            found.iter().any(|f| f.starts_with("agentfleet.toml:7:10:")
                && f.contains("stream must be true or false, not a string")),
            "{found:#?}"
        );
    }

    #[test]
    fn broken_toml_is_located() {
        let found = problems("[providers.openai]\nkind = \"openai\nmodel = 3\n");
        assert!(found[0].starts_with("agentfleet.toml:2:"), "{found:#?}");
        assert!(found[0].contains("invalid TOML"), "{found:#?}");
    }

    #[test]
    fn a_fallback_key_is_a_source_and_needs_a_key() {
        let config = parse(
            Path::new("agentfleet.toml"),
            "[providers.a]\nkind = \"anthropic\"\nmodel = \"m\"\napi_key = { env = \"K1\" }\n\
             api_key_fallback = { file = \"/run/secrets/key2\" }\n",
        )
        .unwrap();
        assert!(matches!(
            &config.provider("a").unwrap().api_key_fallback,
            Some(CredentialSource::File { .. })
        ));
        let found = problems(
            "[providers.a]\nkind = \"openai\"\nmodel = \"m\"\napi_key = { env = \"K\" }\n\
             api_key_fallback = \"sk-proj-SecondLiteralKey123\"\n\
             [providers.b]\nkind = \"openai_compatible\"\nbase_url = \"http://h/v1\"\nmodel = \"m\"\n\
             api_key_fallback = { env = \"K2\" }\n",
        );
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(
            found[0].contains("[providers.a] api_key_fallback must be a source"),
            "{found:#?}"
        );
        assert!(!found[0].contains("SecondLiteralKey"), "{found:#?}");
        assert!(
            found[1].contains("[providers.b] sets api_key_fallback without api_key"),
            "{found:#?}"
        );
    }

    #[test]
    fn wrong_types_name_the_key_and_both_types() {
        let found = problems("[fleet]\nworkers = \"two\"\nconcurrency = 0\nprobe = 1\n");
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(found[0].contains("[fleet] workers must be a whole number, not a string"));
        assert!(found[1].contains("[fleet] concurrency must be from 1 to 4096"));
        assert!(found[2].contains("[fleet] probe must be true or false, not an integer"));
    }

    #[test]
    fn kind_specific_keys_are_explained() {
        let found = problems(
            "[providers.openai]\nkind = \"openai\"\nmodel = \"m\"\napi_key = { env = \"K\" }\ndeployment = \"d\"\n",
        );
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].contains("deployment applies to azure_openai providers only"),
            "{found:#?}"
        );
    }

    #[test]
    fn required_fields_are_named_with_an_example() {
        let found = problems(
            "[providers.a]\nkind = \"azure_openai\"\n[providers.b]\nkind = \"openai_compatible\"\n",
        );
        assert!(
            found
                .iter()
                .any(|f| f.contains("[providers.a] needs endpoint")),
            "{found:#?}"
        );
        assert!(found.iter().any(|f| {
            f.contains("[providers.a] needs api_key = { env = \"AZURE_OPENAI_API_KEY\" }")
        }));
        assert!(
            found
                .iter()
                .any(|f| f.contains("[providers.b] needs model"))
        );
        assert!(
            found
                .iter()
                .any(|f| f.contains("[providers.b] needs base_url"))
        );
        assert!(
            !found
                .iter()
                .any(|f| f.contains("[providers.b] needs api_key")),
            "auth is optional there"
        );
    }

    #[test]
    fn sources_need_exactly_one_form() {
        let found = problems(
            "[providers.a]\nkind = \"openai\"\nmodel = \"m\"\napi_key = { env = \"A\", file = \"/b\" }\n\
             [providers.b]\nkind = \"openai\"\nmodel = \"m\"\napi_key = { dotenv = \".env\" }\n\
             [providers.c]\nkind = \"openai\"\nmodel = \"m\"\napi_key = { envv = \"A\" }\n",
        );
        assert!(
            found
                .iter()
                .any(|f| f.contains("api_key needs exactly one of env, file or dotenv")),
            "{found:#?}"
        );
        assert!(
            found
                .iter()
                .any(|f| f.contains("dotenv needs key = \"NAME\"")),
            "{found:#?}"
        );
        assert!(
            found
                .iter()
                .any(|f| f.contains("unknown key 'envv'") && f.contains("did you mean 'env'?")),
            "{found:#?}"
        );
    }

    #[test]
    fn entra_tokens_are_azure_only_and_exclusive_with_keys() {
        let found = problems(
            "[providers.a]\nkind = \"azure_openai\"\nendpoint = \"https://r.openai.azure.com\"\n\
             api_key = { env = \"K\" }\nentra_token = { file = \"/t\" }\n\
             [providers.b]\nkind = \"openai\"\nmodel = \"m\"\napi_key = { command = [\"op\", \"read\"] }\n\
             [providers.c]\nkind = \"openai\"\nmodel = \"m\"\napi_key = { env = \"K\" }\nentra_token = { file = \"/t\" }\n",
        );
        assert!(
            found
                .iter()
                .any(|f| f.contains("sets both api_key and entra_token")),
            "{found:#?}"
        );
        assert!(
            found
                .iter()
                .any(|f| f.contains("command sources are for entra_token only")),
            "{found:#?}"
        );
        assert!(
            found
                .iter()
                .any(|f| f.contains("entra_token applies to azure_openai providers only")),
            "{found:#?}"
        );
        let config = parsed(
            "[providers.a]\nkind = \"azure_openai\"\nendpoint = \"https://r.openai.azure.com/openai/v1\"\nmodel = \"m\"\n\
             entra_token = { command = [\"az\", \"account\", \"get-access-token\"] }\n",
        );
        let provider = config.provider("a").unwrap();
        assert!(provider.api_key.is_none());
        assert_eq!(provider.entra_token.as_ref().unwrap().label(), "command:az");
    }

    #[test]
    fn a_literal_key_parses_and_is_kept_for_check_to_refuse() {
        let config = parsed(
            "[providers.a]\nkind = \"openai\"\nmodel = \"m\"\napi_key = \"$OPENAI_API_KEY\"\n",
        );
        match &config.provider("a").unwrap().api_key {
            Some(KeySetting::Literal {
                referenced_variable,
                location,
                ..
            }) => {
                assert_eq!(referenced_variable.as_deref(), Some("OPENAI_API_KEY"));
                assert_eq!(location, "agentfleet.toml:4:11");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn references_between_sections_are_checked() {
        let found = problems(
            "[providers.p]\nkind = \"standin\"\n[agents.a]\nprovider = \"p\"\ntools = [\"serch\"]\n\
             [tools.search]\ncommand = [\"x\"]\n\
             [teams.t]\nmode = \"selector\"\nmembers = [\"a\", \"b\"]\ntermination = {}\n\
             [teams.a]\nmembers = [\"a\"]\ntermination = { max_messages = 2 }\nselector_provider = \"p\"\n",
        );
        assert!(
            found
                .iter()
                .any(|f| f
                    .contains("names tool 'serch', which is not defined; did you mean 'search'?")),
            "{found:#?}"
        );
        assert!(
            found
                .iter()
                .any(|f| f.contains("names agent 'b', which is not defined")),
            "{found:#?}"
        );
        assert!(
            found
                .iter()
                .any(|f| f.contains("termination has no condition")),
            "{found:#?}"
        );
        assert!(
            found.iter().any(|f| f.contains("needs selector_provider")),
            "{found:#?}"
        );
        assert!(
            found
                .iter()
                .any(|f| f.contains("[teams.a] has the name of an agent")),
            "{found:#?}"
        );
        assert!(
            found
                .iter()
                .any(|f| f.contains("selector_provider applies to mode = \"selector\" only")),
            "{found:#?}"
        );
    }

    #[test]
    fn credential_shaped_text_is_never_echoed() {
        let canary = "sk-proj-CANARYzq8vN3kL0pX9tYzA4cE8fG1h";
        let text = format!(
            "[providers.\"{canary}\"]\nkind = \"{canary}\"\n[providers.x]\nkind = \"openai\"\nmodel = 1\napi_key = {{ env = \"{canary}\" }}\n\
             {canary} = 1\n[agents.a]\nprovider = \"{canary}\"\n[fleet]\nenv = [\"{canary}\"]\n"
        );
        let found = problems(&text);
        assert!(found.len() >= 5, "{found:#?}");
        for line in &found {
            assert!(!line.contains("CANARY"), "{line}");
        }
    }

    #[test]
    fn durations_and_names() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("30"), None);
        assert_eq!(parse_duration("s"), None);
        assert!(is_plain_name("writer-2"));
        assert!(!is_plain_name("a b"));
        assert_eq!(suggest("modle", ["model", "kind"]), Some("model"));
        assert_eq!(suggest("zzz", ["model", "kind"]), None);
        assert_eq!(
            suggest("y", ["x"]),
            None,
            "one letter is no basis for a guess"
        );
        assert_eq!(
            referenced_variable("${AZURE_OPENAI_API_KEY}").as_deref(),
            Some("AZURE_OPENAI_API_KEY")
        );
        assert_eq!(referenced_variable("sk-abc"), None);
    }
}
