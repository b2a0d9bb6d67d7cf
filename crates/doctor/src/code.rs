//! Source code, parsed with tree-sitter (TypeScript, TSX, JavaScript, Python): LLM clients built
//! at import time, child processes started with a wiped environment, one provider's key handed
//! to another's client, keys written into the code, and the variables the code reads
//! credentials from (explicitly, or through a client that reads its own).
//!
//! Each rule looks at syntax, never at names alone: a client is a constructor call of a known
//! class, "module scope" means no enclosing function, and an environment is wiped only when it
//! is an object or dict literal that does not start from the parent's.

use std::collections::BTreeSet;

use agentfleet_config::{KeyShape, rules};
use tree_sitter::{Node, Parser};

use crate::{Finding, Rule, Severity};

/// The languages read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    /// `.js`, `.jsx`, `.mjs`, `.cjs`.
    JavaScript,
    /// `.ts`, `.mts`, `.cts`.
    TypeScript,
    /// `.tsx`.
    Tsx,
    /// `.py`.
    Python,
}

impl Language {
    /// The language of a file, by its extension.
    pub fn of(path: &std::path::Path) -> Option<Self> {
        match path.extension()?.to_str()? {
            "js" | "jsx" | "mjs" | "cjs" => Some(Language::JavaScript),
            "ts" | "mts" | "cts" => Some(Language::TypeScript),
            "tsx" => Some(Language::Tsx),
            "py" => Some(Language::Python),
            _ => None,
        }
    }

    fn grammar(self) -> tree_sitter::Language {
        match self {
            Language::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
            Language::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            Language::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
            Language::Python => tree_sitter_python::LANGUAGE.into(),
        }
    }
}

/// What one source file says.
#[derive(Debug, Default)]
pub struct CodeFacts {
    /// Findings in it.
    pub findings: Vec<Finding>,
    /// Variables it reads credentials (and endpoints) from.
    pub credential_variables: BTreeSet<String>,
}

/// An LLM client class: whose keys it takes, and the variables it reads when given none.
struct Client {
    name: &'static str,
    family: Family,
    reads: &'static [&'static str],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    OpenAi,
    Azure,
    Anthropic,
    Google,
}

impl Family {
    fn label(self) -> &'static str {
        match self {
            Family::OpenAi => "OpenAI",
            Family::Azure => "Azure OpenAI",
            Family::Anthropic => "Anthropic",
            Family::Google => "Gemini",
        }
    }
}

const OPENAI_READS: &[&str] = &["OPENAI_API_KEY"];
const AZURE_READS: &[&str] = &["AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT"];
const ANTHROPIC_READS: &[&str] = &["ANTHROPIC_API_KEY"];
const GOOGLE_READS: &[&str] = &["GEMINI_API_KEY"];

const CLIENTS: &[Client] = &[
    Client {
        name: "OpenAI",
        family: Family::OpenAi,
        reads: OPENAI_READS,
    },
    Client {
        name: "AsyncOpenAI",
        family: Family::OpenAi,
        reads: OPENAI_READS,
    },
    Client {
        name: "OpenAIChatCompletionClient",
        family: Family::OpenAi,
        reads: OPENAI_READS,
    },
    Client {
        name: "ChatOpenAI",
        family: Family::OpenAi,
        reads: OPENAI_READS,
    },
    Client {
        name: "OpenAIEmbeddings",
        family: Family::OpenAi,
        reads: OPENAI_READS,
    },
    Client {
        name: "AzureOpenAI",
        family: Family::Azure,
        reads: AZURE_READS,
    },
    Client {
        name: "AsyncAzureOpenAI",
        family: Family::Azure,
        reads: AZURE_READS,
    },
    Client {
        name: "AzureOpenAIChatCompletionClient",
        family: Family::Azure,
        reads: AZURE_READS,
    },
    Client {
        name: "AzureChatOpenAI",
        family: Family::Azure,
        reads: AZURE_READS,
    },
    Client {
        name: "AzureOpenAIEmbeddings",
        family: Family::Azure,
        reads: AZURE_READS,
    },
    Client {
        name: "Anthropic",
        family: Family::Anthropic,
        reads: ANTHROPIC_READS,
    },
    Client {
        name: "AsyncAnthropic",
        family: Family::Anthropic,
        reads: ANTHROPIC_READS,
    },
    Client {
        name: "AnthropicChatCompletionClient",
        family: Family::Anthropic,
        reads: ANTHROPIC_READS,
    },
    Client {
        name: "ChatAnthropic",
        family: Family::Anthropic,
        reads: ANTHROPIC_READS,
    },
    Client {
        name: "GoogleGenerativeAI",
        family: Family::Google,
        reads: GOOGLE_READS,
    },
    Client {
        name: "ChatGoogleGenerativeAI",
        family: Family::Google,
        reads: GOOGLE_READS,
    },
    Client {
        name: "GoogleGenAI",
        family: Family::Google,
        reads: GOOGLE_READS,
    },
];

/// Argument names that carry a key, a base URL, an Azure endpoint or an Entra credential.
const KEY_ARGUMENTS: &[&str] = &[
    "apiKey",
    "api_key",
    "openai_api_key",
    "anthropic_api_key",
    "azure_api_key",
    "google_api_key",
];
const BASE_URL_ARGUMENTS: &[&str] = &[
    "baseURL",
    "baseUrl",
    "base_url",
    "openai_api_base",
    "api_base",
];
const ENDPOINT_ARGUMENTS: &[&str] = &["azure_endpoint", "azureEndpoint", "endpoint"];
const TOKEN_ARGUMENTS: &[&str] = &[
    "azure_ad_token",
    "azure_ad_token_provider",
    "azureADTokenProvider",
    "credential",
];

/// Reads one file. `file` is the path as findings name it.
pub fn analyze(file: &str, text: &str, language: Language) -> CodeFacts {
    let mut facts = CodeFacts::default();
    let mut parser = Parser::new();
    if parser.set_language(&language.grammar()).is_err() {
        return facts;
    }
    let Some(tree) = parser.parse(text, None) else {
        return facts;
    };
    let source = Source {
        file,
        text,
        python: language == Language::Python,
    };
    let mut stack = vec![tree.root_node()];
    while let Some(node) = stack.pop() {
        source.visit(node, &mut facts);
        let mut cursor = node.walk();
        let children: Vec<Node> = node.children(&mut cursor).collect();
        stack.extend(children.into_iter().rev());
    }
    facts.findings.sort_by_key(|f| (f.line, f.column));
    facts
}

struct Source<'a> {
    file: &'a str,
    text: &'a str,
    python: bool,
}

impl Source<'_> {
    fn text_of(&self, node: Node) -> &str {
        node.utf8_text(self.text.as_bytes()).unwrap_or_default()
    }

    fn finding(
        &self,
        node: Node,
        rule: Rule,
        severity: Severity,
        message: String,
        fix: &str,
    ) -> Finding {
        let position = node.start_position();
        Finding {
            rule,
            severity,
            file: self.file.to_owned(),
            line: position.row + 1,
            column: position.column + 1,
            message,
            fix: fix.to_owned(),
        }
    }

    fn visit(&self, node: Node, facts: &mut CodeFacts) {
        match (self.python, node.kind()) {
            (false, "new_expression") => {
                let name = node
                    .child_by_field_name("constructor")
                    .map(|c| last_segment(self.text_of(c)))
                    .unwrap_or_default();
                let arguments = node.child_by_field_name("arguments");
                if let Some(client) = CLIENTS.iter().find(|c| c.name == name) {
                    self.client(node, client, arguments, facts);
                } else if name == "Worker" {
                    self.child_process(node, "new Worker", arguments, facts);
                }
            }
            (false, "call_expression") => {
                let Some(function) = node.child_by_field_name("function") else {
                    return;
                };
                let name = last_segment(self.text_of(function));
                if matches!(
                    name,
                    "spawn"
                        | "spawnSync"
                        | "exec"
                        | "execSync"
                        | "execFile"
                        | "execFileSync"
                        | "fork"
                ) {
                    self.child_process(node, name, node.child_by_field_name("arguments"), facts);
                }
            }
            (true, "call") => {
                let Some(function) = node.child_by_field_name("function") else {
                    return;
                };
                let full = self.text_of(function);
                let name = last_segment(full);
                let arguments = node.child_by_field_name("arguments");
                if let Some(client) = CLIENTS.iter().find(|c| c.name == name) {
                    self.client(node, client, arguments, facts);
                } else if is_python_spawn(full) {
                    self.child_process(node, full, arguments, facts);
                }
                if matches!(
                    full,
                    "os.getenv" | "getenv" | "os.environ.get" | "environ.get"
                ) && let Some(variable) = arguments
                    .and_then(|a| a.named_child(0))
                    .and_then(|first| self.string_value(first))
                {
                    remember(facts, &variable);
                }
            }
            (true, "subscript") => {
                let value = node.child_by_field_name("value").map(|v| self.text_of(v));
                if matches!(value, Some("os.environ" | "environ"))
                    && let Some(variable) = node
                        .child_by_field_name("subscript")
                        .and_then(|s| self.string_value(s))
                {
                    remember(facts, &variable);
                }
            }
            (false, "member_expression") => {
                let object = node.child_by_field_name("object").map(|o| self.text_of(o));
                if object == Some("process.env")
                    && let Some(property) = node.child_by_field_name("property")
                {
                    remember(facts, self.text_of(property));
                }
            }
            (false, "subscript_expression") => {
                let object = node.child_by_field_name("object").map(|o| self.text_of(o));
                if object == Some("process.env")
                    && let Some(variable) = node
                        .child_by_field_name("index")
                        .and_then(|i| self.string_value(i))
                {
                    remember(facts, &variable);
                }
            }
            (_, "string") | (false, "template_string") => {
                if let Some(value) = self.string_value(node)
                    && let Some(finding) = self.literal_key(node, &value, false)
                {
                    facts.findings.push(finding);
                }
            }
            _ => {}
        }
    }

    /// The text of a string literal without interpolation, or `None`.
    fn string_value(&self, node: Node) -> Option<String> {
        match node.kind() {
            "string" | "template_string" => {
                let mut cursor = node.walk();
                let mut value = String::new();
                for child in node.named_children(&mut cursor) {
                    match child.kind() {
                        "string_fragment" | "string_content" => value.push_str(self.text_of(child)),
                        "escape_sequence" => value.push_str(self.text_of(child)),
                        "string_start" | "string_end" => {}
                        _ => return None,
                    }
                }
                Some(value)
            }
            _ => None,
        }
    }

    /// A key written into the code: any published prefixed shape anywhere, and Azure's
    /// unprefixed shapes only where a key is expected (`azure_context`).
    fn literal_key(&self, node: Node, value: &str, azure_context: bool) -> Option<Finding> {
        let shape = KeyShape::of(value);
        let prefixed = !matches!(
            shape,
            KeyShape::Unrecognised | KeyShape::AzureHex | KeyShape::AzureAnnotated | KeyShape::Jwt
        );
        let azure = azure_context && matches!(shape, KeyShape::AzureHex | KeyShape::AzureAnnotated);
        if !(prefixed || azure)
            || value.len() < 20
            || value.contains(char::is_whitespace)
            || rules::placeholder(value, None).is_some()
            || !value.bytes().any(|b| b.is_ascii_digit())
        {
            return None;
        }
        Some(self.finding(
            node,
            Rule::HardcodedKey,
            Severity::Error,
            format!(
                "a key is written into the code ({} {}): everyone with the source or the image \
                 has it, and rotating it means a new build",
                shape.label(),
                agentfleet_config::Fingerprint::of(value)
            ),
            "read it from the environment or a mounted secret file at run time, and revoke this \
             key: it has been seen",
        ))
    }

    fn client(&self, node: Node, client: &Client, arguments: Option<Node>, facts: &mut CodeFacts) {
        let arguments = self.arguments(arguments);
        let key = arguments
            .iter()
            .find(|(name, _)| KEY_ARGUMENTS.contains(&name.as_str()));
        let has = |names: &[&str]| {
            arguments
                .iter()
                .any(|(name, _)| names.contains(&name.as_str()))
        };
        let has_base_url = has(BASE_URL_ARGUMENTS);
        let has_token = has(TOKEN_ARGUMENTS);
        let positional_key = (client.family == Family::Google)
            .then(|| arguments.iter().find(|(name, _)| name.is_empty()))
            .flatten();
        let key = key.or(positional_key);

        if self.at_module_scope(node) {
            let reads = match key {
                Some((_, value)) => self
                    .env_read(*value)
                    .unwrap_or_else(|| "its key".to_owned()),
                None if has_token => "its token".to_owned(),
                None => client.reads[0].to_owned(),
            };
            facts.findings.push(self.finding(
                node,
                Rule::ClientAtModuleScope,
                Severity::Error,
                format!(
                    "{} is constructed at module scope: it reads {reads} once, when the module is \
                     imported, so a worker, child process or replica that imports it before its \
                     environment holds the key, or never gets it, fails on its first call",
                    client.name
                ),
                "build the client inside the function that uses it (or a factory it calls, \
                 cached per process), after the process's environment is set",
            ));
        }

        match key {
            Some((_, value)) => {
                if let Some(variable) = self.env_read(*value) {
                    remember(facts, &variable);
                    if let Some(finding) = self.mismatch(*value, client, &variable, has_base_url) {
                        facts.findings.push(finding);
                    }
                } else if let Some(literal) = self.string_value(*value)
                    && matches!(
                        KeyShape::of(&literal),
                        KeyShape::AzureHex | KeyShape::AzureAnnotated
                    )
                    && let Some(finding) = self.literal_key(*value, &literal, true)
                {
                    facts.findings.push(finding);
                }
            }
            None if !has_token && !has_base_url => {
                for variable in client.reads {
                    remember(facts, variable);
                }
            }
            None => {}
        }
        if client.family == Family::Azure {
            if !has(ENDPOINT_ARGUMENTS) && !has_base_url {
                remember(facts, "AZURE_OPENAI_ENDPOINT");
            }
            for (name, value) in &arguments {
                if !ENDPOINT_ARGUMENTS.contains(&name.as_str())
                    && !BASE_URL_ARGUMENTS.contains(&name.as_str())
                {
                    continue;
                }
                if let Some(url) = self.string_value(*value)
                    && url.starts_with("http")
                    && !is_azure_host(&url)
                {
                    facts.findings.push(self.finding(
                        *value,
                        Rule::ProviderKeyMismatch,
                        Severity::Error,
                        format!(
                            "{} is given the endpoint {}, which is not an Azure OpenAI resource: \
                             Azure keys are refused there, and the request goes to the wrong \
                             provider",
                            client.name,
                            shown_host(&url)
                        ),
                        "use https://RESOURCE.openai.azure.com (or the resource's \
                         cognitiveservices.azure.com endpoint), or an OpenAI client for \
                         api.openai.com",
                    ));
                }
            }
        }
        if client.family == Family::OpenAi {
            for (name, value) in &arguments {
                if BASE_URL_ARGUMENTS.contains(&name.as_str())
                    && let Some(url) = self.string_value(*value)
                    && is_azure_host(&url)
                    && !url.trim_end_matches('/').ends_with("/openai/v1")
                {
                    facts.findings.push(self.finding(
                        *value,
                        Rule::ProviderKeyMismatch,
                        Severity::Error,
                        format!(
                            "{}, a client for OpenAI, is pointed at the Azure resource {}: it sends \
                             the key as Authorization: Bearer and builds OpenAI's paths, and \
                             Azure answers 401 or 404",
                            client.name,
                            shown_host(&url)
                        ),
                        "use the Azure client (AzureOpenAI, AzureChatOpenAI, \
                         AzureOpenAIChatCompletionClient) with azure_endpoint, or Azure's v1 \
                         path https://RESOURCE.openai.azure.com/openai/v1",
                    ));
                }
            }
        }
    }

    fn mismatch(
        &self,
        value: Node,
        client: &Client,
        variable: &str,
        has_base_url: bool,
    ) -> Option<Finding> {
        let upper = variable.to_ascii_uppercase();
        let from = if upper.contains("AZURE") {
            Family::Azure
        } else if upper.contains("ANTHROPIC") || upper.contains("CLAUDE") {
            Family::Anthropic
        } else if upper.contains("GEMINI") || upper.contains("GOOGLE") {
            Family::Google
        } else if upper.contains("OPENAI") {
            Family::OpenAi
        } else {
            return None;
        };
        if from == client.family {
            return None;
        }
        // An OpenAI or Anthropic client with a base URL of its own talks to a compatible
        // server, which takes that server's key.
        if has_base_url && matches!(client.family, Family::OpenAi | Family::Anthropic) {
            return None;
        }
        let severity = if client.family == Family::Azure && from == Family::OpenAi {
            // Older setups keep Azure keys in OPENAI_API_KEY; worth a look, not a verdict.
            Severity::Warning
        } else {
            Severity::Error
        };
        Some(self.finding(
            value,
            Rule::ProviderKeyMismatch,
            severity,
            format!(
                "{} is given {variable}, which holds {} keys, but it is a client for {}: the \
                 provider refuses the key with 401",
                client.name,
                from.label(),
                client.family.label()
            ),
            "pass the variable of the client's own provider, or use the client that matches the \
             key (and its endpoint)",
        ))
    }

    /// A call's arguments as (name, value): keyword arguments and object-literal properties by
    /// name, positional ones with an empty name.
    fn arguments<'t>(&self, arguments: Option<Node<'t>>) -> Vec<(String, Node<'t>)> {
        let mut found = Vec::new();
        let Some(arguments) = arguments else {
            return found;
        };
        let mut cursor = arguments.walk();
        for argument in arguments.named_children(&mut cursor) {
            match argument.kind() {
                "keyword_argument" => {
                    if let (Some(name), Some(value)) = (
                        argument.child_by_field_name("name"),
                        argument.child_by_field_name("value"),
                    ) {
                        found.push((self.text_of(name).to_owned(), value));
                    }
                }
                "object" => {
                    let mut inner = argument.walk();
                    for pair in argument.named_children(&mut inner) {
                        if pair.kind() == "pair"
                            && let (Some(key), Some(value)) = (
                                pair.child_by_field_name("key"),
                                pair.child_by_field_name("value"),
                            )
                        {
                            let key = self.text_of(key).trim_matches(['"', '\'']).to_owned();
                            found.push((key, value));
                        } else if pair.kind() == "shorthand_property_identifier" {
                            found.push((self.text_of(pair).to_owned(), pair));
                        }
                    }
                }
                "comment" => {}
                _ => found.push((String::new(), argument)),
            }
        }
        found
    }

    /// The variable an expression reads from the environment, if it is such a read.
    fn env_read(&self, node: Node) -> Option<String> {
        let node = if matches!(node.kind(), "binary_expression" | "boolean_operator") {
            node.child_by_field_name("left")?
        } else {
            node
        };
        match node.kind() {
            "member_expression" => {
                let object = node.child_by_field_name("object")?;
                if self.text_of(object) != "process.env" {
                    return None;
                }
                Some(
                    self.text_of(node.child_by_field_name("property")?)
                        .to_owned(),
                )
            }
            "subscript_expression" => {
                let object = node.child_by_field_name("object")?;
                if self.text_of(object) != "process.env" {
                    return None;
                }
                self.string_value(node.child_by_field_name("index")?)
            }
            "subscript" => {
                let value = self.text_of(node.child_by_field_name("value")?);
                if !matches!(value, "os.environ" | "environ") {
                    return None;
                }
                self.string_value(node.child_by_field_name("subscript")?)
            }
            "call" => {
                let function = self.text_of(node.child_by_field_name("function")?);
                if !matches!(
                    function,
                    "os.getenv" | "getenv" | "os.environ.get" | "environ.get"
                ) {
                    return None;
                }
                self.string_value(node.child_by_field_name("arguments")?.named_child(0)?)
            }
            "non_null_expression" | "parenthesized_expression" | "as_expression" => {
                self.env_read(node.named_child(0)?)
            }
            _ => None,
        }
    }

    /// Whether `node` runs when its module is imported: no function, method or lambda encloses
    /// it (a class body at module level runs at import; a class field initializer does not),
    /// and it is not under Python's `if __name__ == "__main__":`.
    fn at_module_scope(&self, node: Node) -> bool {
        let mut current = node.parent();
        while let Some(ancestor) = current {
            match ancestor.kind() {
                "function_declaration"
                | "function"
                | "function_expression"
                | "arrow_function"
                | "method_definition"
                | "generator_function"
                | "generator_function_declaration"
                | "field_definition"
                | "public_field_definition"
                | "class_static_block"
                | "function_definition"
                | "lambda" => return false,
                "if_statement" if self.python => {
                    let condition = ancestor
                        .child_by_field_name("condition")
                        .map(|c| self.text_of(c).replace(['\'', ' '], "\""))
                        .unwrap_or_default();
                    if condition.contains("__name__\"==\"\"__main__")
                        || condition.contains("__name__==\"__main__\"")
                    {
                        return false;
                    }
                }
                _ => {}
            }
            current = ancestor.parent();
        }
        true
    }

    fn child_process(
        &self,
        node: Node,
        what: &str,
        arguments: Option<Node>,
        facts: &mut CodeFacts,
    ) {
        let arguments = self.arguments(arguments);
        let env = if self.python {
            arguments
                .iter()
                .find(|(name, _)| name == "env")
                .map(|(_, value)| *value)
                .or_else(|| {
                    // os.exec*e and os.spawn*e take the environment as their last argument.
                    let positional = what.starts_with("os.exec") || what.starts_with("os.spawn");
                    positional
                        .then(|| arguments.iter().rev().find(|(name, _)| name.is_empty()))
                        .flatten()
                        .map(|(_, value)| *value)
                })
        } else {
            arguments
                .iter()
                .find(|(name, _)| name == "env")
                .map(|(_, value)| *value)
        };
        let Some(env) = env else {
            return;
        };
        if !self.wipes_environment(env) {
            return;
        }
        let shown = self.text_of(env);
        let shown = if shown.len() > 60 {
            format!(
                "{}…",
                &shown[..shown.char_indices().nth(57).map_or(shown.len(), |(i, _)| i)]
            )
        } else {
            shown.to_owned()
        };
        let (message, fix) = if self.python {
            (
                format!(
                    "{what} is given env={shown}, which does not start from os.environ: the child \
                     gets only these variables, so OPENAI_API_KEY and every other credential (and \
                     PATH) vanish in it"
                ),
                "start from the parent's environment: env={**os.environ, \"EXTRA\": \"1\"} or \
                 dict(os.environ, EXTRA=\"1\"), or pass the credentials the child needs \
                 explicitly",
            )
        } else {
            (
                format!(
                    "{what} is given env: {shown}, which does not include ...process.env: the \
                     child gets only these variables, so OPENAI_API_KEY and every other credential \
                     (and PATH) vanish in it"
                ),
                "start from the parent's environment: env: { ...process.env, EXTRA: '1' }, or pass \
                 the credentials the child needs explicitly",
            )
        };
        facts
            .findings
            .push(self.finding(node, Rule::EnvWipedChild, Severity::Error, message, fix));
    }

    /// Whether an environment expression is a literal that does not start from the parent's:
    /// an object with no spread (`...process.env`), a dict with no `**` splat, a `dict(...)`
    /// call without `os.environ`. Anything else (a variable, a call we cannot see into) is given the
    /// benefit of the doubt.
    fn wipes_environment(&self, env: Node) -> bool {
        let mut cursor = env.walk();
        let children: Vec<Node> = env.named_children(&mut cursor).collect();
        // A spread of anything (`...baseEnv`, `**defaults`) may carry the parent's environment.
        match env.kind() {
            "object" => !children
                .iter()
                .any(|child| child.kind() == "spread_element"),
            "dictionary" => !children
                .iter()
                .any(|child| child.kind() == "dictionary_splat"),
            "call" => {
                let function = env
                    .child_by_field_name("function")
                    .map(|f| self.text_of(f))
                    .unwrap_or_default();
                let Some(arguments) = env.child_by_field_name("arguments") else {
                    return false;
                };
                let mut cursor = arguments.walk();
                let starts_from_parent = arguments.named_children(&mut cursor).any(|argument| {
                    argument.kind() != "keyword_argument"
                        && self.text_of(argument).contains("environ")
                });
                function == "dict" && !starts_from_parent
            }
            _ => false,
        }
    }
}

fn remember(facts: &mut CodeFacts, variable: &str) {
    let upper = variable.to_ascii_uppercase();
    let credential = ["API_KEY", "_KEY", "TOKEN", "SECRET", "ENDPOINT", "PASSWORD"]
        .iter()
        .any(|marker| upper.ends_with(marker) || upper.contains("API_KEY"));
    if credential
        && variable
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        facts.credential_variables.insert(variable.to_owned());
    }
}

fn last_segment(text: &str) -> &str {
    text.rsplit('.').next().unwrap_or(text).trim()
}

fn is_python_spawn(function: &str) -> bool {
    matches!(
        function,
        "subprocess.run"
            | "subprocess.Popen"
            | "subprocess.call"
            | "subprocess.check_call"
            | "subprocess.check_output"
            | "Popen"
            | "check_output"
            | "check_call"
            | "asyncio.create_subprocess_exec"
            | "asyncio.create_subprocess_shell"
            | "create_subprocess_exec"
            | "create_subprocess_shell"
            | "os.execve"
            | "os.execvpe"
            | "os.execle"
            | "os.execlpe"
            | "os.spawnve"
            | "os.spawnvpe"
            | "os.spawnle"
            | "os.spawnlpe"
            | "os.posix_spawn"
            | "os.posix_spawnp"
    )
}

fn is_azure_host(url: &str) -> bool {
    let host = shown_host(url);
    [
        ".openai.azure.com",
        ".cognitiveservices.azure.com",
        ".services.ai.azure.com",
        ".azure-api.net",
    ]
    .iter()
    .any(|suffix| host.ends_with(suffix))
}

/// The host of a URL, without user information, port or path.
fn shown_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    host.split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}
