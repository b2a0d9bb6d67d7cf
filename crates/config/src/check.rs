//! Checking every credential a config needs, in this process: what `agentfleet check` reports and
//! what a worker's preflight refuses to start without.
//!
//! A check resolves each provider's key and endpoint from their sources now, judges them by the
//! rules, and keeps the resolved key (as a [`Secret`]) for the caller that goes on to use it.
//! Nothing is cached across processes: each process checks its own view of the world.

use std::sync::Arc;

use serde::Serialize;

use crate::env::Environment;
use crate::fingerprint::{Fingerprint, KeyShape};
use crate::model::{Config, CredentialSource, KeySetting, Provider, ProviderKind, Setting, Users};
use crate::problem::{Problem, ProblemCode, Severity};
use crate::resolve::{self, Origin};
use crate::rules::{self, AzurePath, Finding, HttpUrl};
use crate::secret::Secret;
use crate::token::{self, TokenSource};

/// The outcome of checking every provider of a config.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    /// Whether every provider is usable (no problem of severity error).
    pub ok: bool,
    /// The config file checked.
    pub config: std::path::PathBuf,
    /// One entry per provider, in file order.
    pub providers: Vec<ProviderCheck>,
}

impl CheckReport {
    /// The entry for one provider.
    pub fn provider(&self, name: &str) -> Option<&ProviderCheck> {
        self.providers.iter().find(|check| check.name == name)
    }
}

/// The outcome of checking one provider.
#[derive(Clone, Debug, Serialize)]
pub struct ProviderCheck {
    /// The provider's name.
    pub name: String,
    /// Its kind.
    pub kind: ProviderKind,
    /// Where its key was read from: `env:NAME`, `env-file:NAME_FILE=PATH`, `file:PATH`,
    /// `dotenv:PATH#KEY`, `literal`, `generated` (the stand-in) or `none`.
    pub source: String,
    /// Whether a non-empty value was found.
    pub present: bool,
    /// The key's fingerprint, when one was found.
    pub fingerprint: Option<Fingerprint>,
    /// The published shape the key matches, when one was found.
    pub shape: Option<KeyShape>,
    /// Everything found wrong, most severe first.
    pub problems: Vec<Problem>,
    /// The agents, then the teams, that need this provider.
    pub used_by: Vec<String>,
    /// The resolved key, for the caller that uses it. Never serialized.
    #[serde(skip)]
    pub key: Option<Arc<Secret>>,
    /// The resolved base URL or Azure endpoint, when one is configured, without user
    /// information or query.
    pub url: Option<String>,
    /// `organization`, resolved, for the client to send. Never serialized.
    #[serde(skip)]
    pub organization: Option<String>,
    /// `project`, resolved, for the client to send. Never serialized.
    #[serde(skip)]
    pub project: Option<String>,
    /// For `entra_token`: the token source, holding the token read now. Never serialized.
    #[serde(skip)]
    pub token: Option<Arc<TokenSource>>,
    /// `api_key_fallback`, when the provider declares one.
    pub fallback: Option<FallbackCheck>,
}

/// The outcome of checking a provider's `api_key_fallback`. Its problems are warnings in the
/// provider's list: the provider works without it, but will have nothing to fall back on.
#[derive(Clone, Debug, Serialize)]
pub struct FallbackCheck {
    /// Where it was read from, labelled like the main key's source.
    pub source: String,
    /// Its fingerprint, when one was found.
    pub fingerprint: Option<Fingerprint>,
    /// The published shape it matches, when one was found.
    pub shape: Option<KeyShape>,
    /// The resolved key, when it passed every check. Never serialized.
    #[serde(skip)]
    pub key: Option<Arc<Secret>>,
}

impl ProviderCheck {
    /// Whether no problem of severity error was found.
    pub fn is_usable(&self) -> bool {
        self.problems
            .iter()
            .all(|problem| problem.severity < Severity::Error)
    }
}

/// Checks every provider of `config` against `env` and the file system, now.
pub fn check(config: &Config, env: &dyn Environment) -> CheckReport {
    let providers: Vec<ProviderCheck> = config
        .providers
        .iter()
        .map(|provider| check_provider(config, provider, env))
        .collect();
    CheckReport {
        ok: providers.iter().all(ProviderCheck::is_usable),
        config: config.path.clone(),
        providers,
    }
}

/// Checks one provider of `config`.
pub fn check_provider(
    config: &Config,
    provider: &Provider,
    env: &dyn Environment,
) -> ProviderCheck {
    let users = config.users_of(&provider.name);
    let context = Context {
        provider: &provider.name,
        users: &users,
    };
    let mut problems = Vec::new();

    let url_field = if provider.kind == ProviderKind::AzureOpenAi {
        "endpoint"
    } else {
        "base_url"
    };
    let url_setting = if provider.kind == ProviderKind::AzureOpenAi {
        &provider.endpoint
    } else {
        &provider.base_url
    };
    let url = url_setting.as_ref().and_then(|setting| {
        let text = resolve_setting(config, setting, url_field, env, &context, &mut problems)?;
        match HttpUrl::parse(&text) {
            Some(url) => Some((url.shown(), url)),
            None => {
                problems.push(context.problem(Finding {
                    code: ProblemCode::InvalidUrl,
                    severity: Severity::Error,
                    what: format!(
                        "{url_field} from {} is not an http:// or https:// URL with a host",
                        setting_label(setting)
                    ),
                    fix: "set it to a URL such as https://RESOURCE.openai.azure.com".to_owned(),
                }));
                None
            }
        }
    });
    let mut resolve_optional = |field: &str, setting: &Option<Setting>| {
        let setting = setting.as_ref()?;
        resolve_setting(config, setting, field, env, &context, &mut problems)
            .map(|value| value.trim().to_owned())
    };
    let organization = resolve_optional("organization", &provider.organization);
    let project = resolve_optional("project", &provider.project);
    if let Some((_, url)) = &url {
        let azure = AzurePath {
            deployment: provider.deployment.as_deref(),
            api_version: provider.api_version.as_deref(),
            model: provider.model.as_deref(),
        };
        for finding in rules::endpoint_fits_provider(provider.kind, url_field, url, azure) {
            problems.push(context.problem(finding));
        }
    }

    let mut check = ProviderCheck {
        name: provider.name.clone(),
        kind: provider.kind,
        source: String::new(),
        present: false,
        fingerprint: None,
        shape: None,
        problems: Vec::new(),
        used_by: users.names(),
        key: None,
        url: url.as_ref().map(|(text, _)| text.clone()),
        organization,
        project,
        token: None,
        fallback: None,
    };
    if let Some(source) = &provider.entra_token {
        check_token(
            config,
            provider,
            source,
            env,
            &context,
            &mut check,
            &mut problems,
        );
        problems.sort_by_key(|problem| std::cmp::Reverse(problem.severity));
        check.problems = problems;
        return check;
    }
    match &provider.api_key {
        None => {
            check.source = if provider.kind == ProviderKind::Standin {
                "generated"
            } else {
                "none"
            }
            .to_owned();
        }
        Some(KeySetting::Literal {
            secret,
            referenced_variable,
            location,
        }) => {
            check.source = "literal".to_owned();
            let fix = match referenced_variable {
                Some(variable) => format!(
                    "write api_key = {{ env = \"{variable}\" }}: the config file never expands \
                     variables, so this text would be sent as the key"
                ),
                None => format!(
                    "move the key out of the file and reference it: api_key = {{ env = \"{}\" }}, \
                     {{ file = \"/run/secrets/{}-api-key\" }} or {{ dotenv = \".env\", key = \"{}\" }}; \
                     then rotate it, since it was stored in plain text",
                    provider.kind.conventional_variable(),
                    provider.name,
                    provider.kind.conventional_variable()
                ),
            };
            if referenced_variable.is_none() {
                check.present = true;
                check.fingerprint = Some(Fingerprint::of(secret.expose().trim()));
                check.shape = Some(KeyShape::of(secret.expose().trim()));
            }
            problems.push(context.problem(Finding {
                code: ProblemCode::LiteralSecret,
                severity: Severity::Error,
                what: format!("api_key at {location} is written into the config as a literal"),
                fix,
            }));
        }
        Some(KeySetting::From(source)) => match resolve::read(source, &config.base_dir, env) {
            Err(failure) => {
                check.source = failure.origin.label();
                problems.push(context.problem(Finding {
                    code: failure.code,
                    severity: Severity::Error,
                    what: failure.what,
                    fix: failure.fix,
                }));
            }
            Ok(read) => {
                check.source = read.origin.label();
                let value = read.value.expose();
                let trimmed = value.trim();
                check.present = !trimmed.is_empty();
                check.fingerprint = check.present.then(|| Fingerprint::of(trimmed));
                let shape = KeyShape::of(trimmed);
                check.shape = check.present.then_some(shape);
                let described = read.origin.describe();
                if read.trimmed_newline {
                    problems.push(context.problem(Finding {
                        code: ProblemCode::TrailingNewline,
                        severity: Severity::Note,
                        what: format!("a trailing newline was trimmed from {described}"),
                        fix: "nothing to do; printf '%s' \"$KEY\" > FILE writes a file without one"
                            .to_owned(),
                    }));
                }
                // When the endpoint contradicts the kind, judging the key against that endpoint
                // would only repeat the same mistake from another angle.
                let endpoint_wrong = problems
                    .iter()
                    .any(|p| p.code == ProblemCode::EndpointMismatch);
                let judged_url = if endpoint_wrong {
                    None
                } else {
                    url.as_ref().map(|(_, u)| u)
                };
                for finding in inspect_key(
                    value,
                    &read.origin,
                    source.name(),
                    provider.kind,
                    judged_url,
                    !endpoint_wrong,
                ) {
                    problems.push(context.problem(finding));
                }
                if problems
                    .iter()
                    .all(|problem| problem.severity < Severity::Error)
                {
                    check.key = Some(Arc::new(read.value));
                }
            }
        },
    }
    if let Some(source) = &provider.api_key_fallback {
        let endpoint_wrong = problems
            .iter()
            .any(|p| p.code == ProblemCode::EndpointMismatch);
        let judged_url = url.as_ref().map(|(_, u)| u).filter(|_| !endpoint_wrong);
        let inspect = |value: &str, origin: &Origin, name: Option<&str>| {
            inspect_key(
                value,
                origin,
                name,
                provider.kind,
                judged_url,
                !endpoint_wrong,
            )
        };
        check.fallback = Some(check_fallback(
            config,
            source,
            env,
            check.fingerprint,
            &inspect,
            &mut |finding| problems.push(context.problem(finding)),
        ));
    }
    problems.sort_by_key(|problem| std::cmp::Reverse(problem.severity));
    check.problems = problems;
    check
}

/// Judges a key read from `origin` (a source named `name`, if any) against where it is sent.
type InspectKey<'a> = dyn Fn(&str, &Origin, Option<&str>) -> Vec<Finding> + 'a;

/// Resolves and judges `api_key_fallback` like `api_key`, reporting what is wrong as warnings.
fn check_fallback(
    config: &Config,
    source: &CredentialSource,
    env: &dyn Environment,
    primary: Option<Fingerprint>,
    inspect: &InspectKey<'_>,
    report: &mut dyn FnMut(Finding),
) -> FallbackCheck {
    let mut warn = |finding: Finding| {
        report(Finding {
            severity: finding.severity.min(Severity::Warning),
            what: format!("api_key_fallback: {}", finding.what),
            ..finding
        })
    };
    let read = match resolve::read(source, &config.base_dir, env) {
        Ok(read) => read,
        Err(failure) => {
            warn(Finding {
                code: failure.code,
                severity: Severity::Warning,
                what: failure.what,
                fix: failure.fix,
            });
            return FallbackCheck {
                source: failure.origin.label(),
                fingerprint: None,
                shape: None,
                key: None,
            };
        }
    };
    let trimmed = read.value.expose().trim();
    let fingerprint = (!trimmed.is_empty()).then(|| Fingerprint::of(trimmed));
    let shape = fingerprint.map(|_| KeyShape::of(trimmed));
    let findings = inspect(read.value.expose(), &read.origin, source.name());
    let usable = findings.iter().all(|f| f.severity < Severity::Error);
    for finding in findings {
        warn(finding);
    }
    if let (Some(fingerprint), Some(primary)) = (fingerprint, primary)
        && fingerprint == primary
    {
        warn(Finding {
            code: ProblemCode::FallbackSameKey,
            severity: Severity::Warning,
            what: format!(
                "{} holds the same key as api_key ({fingerprint}), so it cannot help when that \
                 key is refused",
                read.origin.describe()
            ),
            fix: "point api_key_fallback at the provider's second key (Azure: KEY2)".to_owned(),
        });
    }
    FallbackCheck {
        source: read.origin.label(),
        fingerprint,
        shape,
        key: usable.then(|| Arc::new(read.value)),
    }
}

/// Resolves and judges an Entra token: its characters, that it is a JWT, and its expiry.
fn check_token(
    config: &Config,
    provider: &Provider,
    source: &CredentialSource,
    env: &dyn Environment,
    context: &Context<'_>,
    check: &mut ProviderCheck,
    problems: &mut Vec<Problem>,
) {
    let read = match resolve::read(source, &config.base_dir, env) {
        Ok(read) => read,
        Err(failure) => {
            check.source = failure.origin.label();
            problems.push(context.problem(Finding {
                code: failure.code,
                severity: Severity::Error,
                what: format!("entra_token: {}", failure.what),
                fix: failure.fix,
            }));
            return;
        }
    };
    check.source = read.origin.label();
    let value = read.value.expose();
    let trimmed = value.trim();
    check.present = !trimmed.is_empty();
    check.fingerprint = check.present.then(|| Fingerprint::of(trimmed));
    let shape = KeyShape::of(trimmed);
    check.shape = check.present.then_some(shape);
    let described = read.origin.describe();
    let mut findings = inspect_key(
        value,
        &read.origin,
        source.name(),
        provider.kind,
        None,
        false,
    );
    let refreshed = matches!(source, CredentialSource::Command { .. });
    if findings.iter().all(|f| f.severity < Severity::Error) {
        match token::jwt_expiry(trimmed) {
            None if shape != KeyShape::Jwt => findings.push(Finding {
                code: ProblemCode::ProviderMismatch,
                severity: Severity::Error,
                what: format!("{described} is not a Microsoft Entra access token (a JWT: three dot-separated parts starting eyJ)"),
                fix: "put the resource's key in api_key instead, or point entra_token at the token (az account get-access-token --resource https://cognitiveservices.azure.com)".to_owned(),
            }),
            None => {}
            Some(expires) => {
                let now = std::time::SystemTime::now();
                if expires <= now {
                    let ago = now.duration_since(expires).unwrap_or_default().as_secs() / 60;
                    findings.push(Finding {
                        code: ProblemCode::ExpiredToken,
                        severity: Severity::Error,
                        what: format!("the token from {described} expired {ago} min ago"),
                        fix: if refreshed {
                            "the command printed an expired token: refresh its login (az login, or the workload identity)".to_owned()
                        } else {
                            "Entra tokens last about an hour: use entra_token = { command = [\"az\", \"account\", \"get-access-token\", \"--resource\", \"https://cognitiveservices.azure.com\", \"--query\", \"accessToken\", \"-o\", \"tsv\"] }, which is re-run before expiry, or keep the file refreshed".to_owned()
                        },
                    });
                } else if !refreshed && expires <= now + token::REFRESH_AHEAD {
                    findings.push(Finding {
                        code: ProblemCode::ExpiredToken,
                        severity: Severity::Warning,
                        what: format!("the token from {described} expires within {} min", token::REFRESH_AHEAD.as_secs() / 60),
                        fix: "make sure whatever writes it refreshes it, or use a command source".to_owned(),
                    });
                }
            }
        }
    }
    if read.trimmed_newline && read.origin.is_file() && !refreshed {
        findings.push(Finding {
            code: ProblemCode::TrailingNewline,
            severity: Severity::Note,
            what: format!("a trailing newline was trimmed from {described}"),
            fix: "nothing to do".to_owned(),
        });
    }
    let usable = findings.iter().all(|f| f.severity < Severity::Error);
    problems.extend(findings.into_iter().map(|finding| context.problem(finding)));
    if usable {
        let secret = Arc::new(read.value);
        check.key = Some(secret.clone());
        check.token = Some(Arc::new(TokenSource::new(
            source.clone(),
            config.base_dir.clone(),
            Some((secret, read.origin)),
        )));
    }
}

/// The rules a key's value must pass: no whitespace, ASCII only, not a placeholder, and shaped
/// for the provider it is sent to.
fn inspect_key(
    value: &str,
    origin: &Origin,
    name: Option<&str>,
    kind: ProviderKind,
    url: Option<&HttpUrl>,
    judge_shape: bool,
) -> Vec<Finding> {
    let described = origin.describe();
    let mut findings = Vec::new();
    let trimmed = value.trim();
    if trimmed.is_empty() {
        findings.push(Finding {
            code: ProblemCode::Empty,
            severity: Severity::Error,
            what: format!("{described} holds only whitespace"),
            fix: "put the key itself there".to_owned(),
        });
        return findings;
    }
    if trimmed.len() != value.len() {
        let why = if value.ends_with('\n') || value.ends_with('\r') {
            "ends with a line break (often from echo without -n, or a secret created from a file with one)"
        } else {
            "has spaces at the start or end"
        };
        findings.push(Finding {
            code: ProblemCode::Whitespace,
            severity: Severity::Error,
            what: format!("{described} {why}"),
            fix: "store the key without surrounding whitespace, e.g. printf '%s' \"$KEY\""
                .to_owned(),
        });
    }
    if trimmed.chars().any(char::is_whitespace) {
        findings.push(Finding {
            code: ProblemCode::Whitespace,
            severity: Severity::Error,
            what: format!("{described} has whitespace inside the key (two values pasted together, or a wrapped line)"),
            fix: "store the key alone, on one line".to_owned(),
        });
    }
    if !trimmed.is_ascii() {
        findings.push(Finding {
            code: ProblemCode::NonAscii,
            severity: Severity::Error,
            what: format!(
                "{described} contains non-ASCII characters, which an HTTP header cannot carry \
                 (often a smart quote or an invisible character from copy and paste)"
            ),
            fix: "copy the key again from the provider's console, as plain text".to_owned(),
        });
    }
    if let Some(reason) = rules::placeholder(trimmed, name) {
        let hosted = matches!(
            kind,
            ProviderKind::OpenAi | ProviderKind::AzureOpenAi | ProviderKind::Anthropic
        );
        findings.push(Finding {
            code: ProblemCode::Placeholder,
            severity: if hosted {
                Severity::Error
            } else {
                Severity::Warning
            },
            what: format!("{described} holds {reason}, not a key"),
            fix: format!("put the real key in {described}"),
        });
        return findings;
    }
    // A key already refused for its characters has no shape worth judging.
    if !judge_shape
        || findings
            .iter()
            .any(|finding| finding.severity == Severity::Error)
    {
        return findings;
    }
    if let Some(finding) = rules::key_fits_provider(kind, url, KeyShape::of(trimmed)) {
        findings.push(Finding {
            what: format!("{described} {}", finding.what),
            ..finding
        });
    }
    findings
}

/// Reads a non-secret setting, reporting a source that fails. The value is not a secret, but it
/// is still never echoed: a key pasted into the wrong variable must not appear in a report.
fn resolve_setting(
    config: &Config,
    setting: &Setting,
    field: &str,
    env: &dyn Environment,
    context: &Context<'_>,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    match setting {
        Setting::Literal(text) => Some(text.clone()),
        Setting::From(source) => match resolve::read(source, &config.base_dir, env) {
            Ok(read) => Some(read.value.expose().to_owned()),
            Err(failure) => {
                problems.push(context.problem(Finding {
                    code: failure.code,
                    severity: Severity::Error,
                    what: format!("{field}: {}", failure.what),
                    fix: failure.fix,
                }));
                None
            }
        },
    }
}

fn setting_label(setting: &Setting) -> String {
    match setting {
        Setting::Literal(_) => "the config".to_owned(),
        Setting::From(source) => source.label(),
    }
}

/// Who is affected, appended to every message so that one line says it all.
struct Context<'a> {
    provider: &'a str,
    users: &'a Users,
}

impl Context<'_> {
    fn problem(&self, finding: Finding) -> Problem {
        Problem {
            code: finding.code,
            severity: finding.severity,
            message: format!(
                "{} (provider {}, used by {})",
                finding.what, self.provider, self.users
            ),
            fix: finding.fix,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::env::FixedEnv;
    use crate::parse::parse;

    const AZURE_KEY: &str = "04e0e8440123456789abcdef01232687";
    const OPENAI_KEY: &str = "sk-proj-Abc123_def-456T3BlbkFJxyz789";

    fn config(text: &str) -> Config {
        parse(Path::new("agentfleet.toml"), text)
            .unwrap_or_else(|error| panic!("{:#?}", error.diagnostics()))
    }

    const TEAM: &str = r#"
[providers.openai]
kind = "openai"
model = "gpt-4o-mini"
api_key = { env = "OPENAI_API_KEY" }

[agents.writer]
provider = "openai"

[agents.critic]
provider = "openai"

[teams.review]
members = ["writer", "critic"]
termination = { max_messages = 6 }
"#;

    fn codes(check: &ProviderCheck) -> Vec<&'static str> {
        check.problems.iter().map(|p| p.code.as_str()).collect()
    }

    #[test]
    fn a_good_key_is_usable_and_fingerprinted() {
        let config = config(TEAM);
        let report = check(&config, &FixedEnv::new().with("OPENAI_API_KEY", OPENAI_KEY));
        assert!(report.ok);
        let openai = report.provider("openai").unwrap();
        assert!(openai.problems.is_empty(), "{:?}", openai.problems);
        assert_eq!(openai.source, "env:OPENAI_API_KEY");
        assert_eq!(openai.fingerprint, Some(Fingerprint::of(OPENAI_KEY)));
        assert_eq!(openai.shape, Some(KeyShape::OpenAiProject));
        assert_eq!(openai.key.as_ref().unwrap().expose(), OPENAI_KEY);
        assert_eq!(openai.used_by, ["writer", "critic", "review"]);
    }

    const AZURE_WITH_FALLBACK: &str = r#"
[providers.azure]
kind = "azure_openai"
endpoint = "https://contoso.openai.azure.com"
deployment = "gpt4o"
api_version = "2024-10-21"
api_key = { env = "AZURE_OPENAI_API_KEY" }
api_key_fallback = { env = "AZURE_OPENAI_API_KEY_2" }
"#;

    #[test]
    fn a_fallback_is_checked_like_the_key_but_only_warns() {
        let config = config(AZURE_WITH_FALLBACK);
        let second = "a4e0e8440123456789abcdef0123ffff";
        let env = FixedEnv::new()
            .with("AZURE_OPENAI_API_KEY", AZURE_KEY)
            .with("AZURE_OPENAI_API_KEY_2", second);
        let azure = check_provider(&config, config.provider("azure").unwrap(), &env);
        assert!(azure.problems.is_empty(), "{:?}", azure.problems);
        let fallback = azure.fallback.as_ref().unwrap();
        assert_eq!(fallback.source, "env:AZURE_OPENAI_API_KEY_2");
        assert_eq!(fallback.fingerprint, Some(Fingerprint::of(second)));
        assert_eq!(fallback.key.as_ref().unwrap().expose(), second);
        let json = serde_json::to_string(&azure).unwrap();
        assert!(json.contains("\"fallback\":{\"source\":\"env:AZURE_OPENAI_API_KEY_2\""));
        assert!(!json.contains(second), "{json}");

        // Missing, or a key of another provider: the provider still works, with a warning.
        for (value, code) in [(None, "missing"), (Some(OPENAI_KEY), "provider-mismatch")] {
            let mut env = FixedEnv::new().with("AZURE_OPENAI_API_KEY", AZURE_KEY);
            if let Some(value) = value {
                env = env.with("AZURE_OPENAI_API_KEY_2", value);
            }
            let azure = check_provider(&config, config.provider("azure").unwrap(), &env);
            assert!(azure.is_usable(), "{:?}", azure.problems);
            assert!(azure.key.is_some());
            assert_eq!(codes(&azure), [code], "{:?}", azure.problems);
            assert_eq!(azure.problems[0].severity, Severity::Warning);
            assert!(
                azure.problems[0].message.starts_with("api_key_fallback: "),
                "{}",
                azure.problems[0].message
            );
            assert!(azure.fallback.as_ref().unwrap().key.is_none());
        }

        let env = FixedEnv::new()
            .with("AZURE_OPENAI_API_KEY", AZURE_KEY)
            .with("AZURE_OPENAI_API_KEY_2", AZURE_KEY);
        let azure = check_provider(&config, config.provider("azure").unwrap(), &env);
        assert_eq!(codes(&azure), ["fallback-same-key"]);
        assert!(azure.problems[0].fix.contains("KEY2"));
    }

    #[test]
    fn a_missing_key_names_variable_provider_and_users_in_one_line() {
        let report = check(&config(TEAM), &FixedEnv::new());
        assert!(!report.ok);
        let openai = report.provider("openai").unwrap();
        assert_eq!(codes(openai), ["missing"]);
        assert_eq!(
            openai.problems[0].message,
            "OPENAI_API_KEY is not set in this process (provider openai, used by agents writer, critic and team review)"
        );
        assert!(!openai.present);
        assert!(openai.fingerprint.is_none());
        assert!(openai.key.is_none());
    }

    #[test]
    fn placeholders_whitespace_and_non_ascii_are_refused() {
        let config = config(TEAM);
        for (value, code) in [
            ("**********", "placeholder"),
            ("OPENAI_API_KEY", "placeholder"),
            ("changeme", "placeholder"),
            ("sk-proj-abc def", "whitespace"),
            ("sk-proj-abcdef\n", "whitespace"),
            ("sk-proj-abcdéf", "non-ascii"),
        ] {
            let report = check(&config, &FixedEnv::new().with("OPENAI_API_KEY", value));
            let openai = report.provider("openai").unwrap();
            assert!(
                codes(openai).contains(&code),
                "{value:?}: {:?}",
                openai.problems
            );
            assert!(!openai.is_usable());
            assert!(openai.key.is_none(), "an unusable key is not handed out");
            if value.len() > 12 && value != "OPENAI_API_KEY" {
                for problem in &openai.problems {
                    assert!(!problem.message.contains(value.trim()), "{problem:?}");
                }
            }
        }
    }

    #[test]
    fn an_azure_key_on_openai_is_a_provider_mismatch() {
        let report = check(
            &config(TEAM),
            &FixedEnv::new().with("OPENAI_API_KEY", AZURE_KEY),
        );
        let openai = report.provider("openai").unwrap();
        assert_eq!(codes(openai), ["provider-mismatch"]);
        assert!(
            openai.problems[0]
                .message
                .starts_with("OPENAI_API_KEY holds an Azure key (azure-key shape)")
        );
        assert!(!openai.problems[0].message.contains(AZURE_KEY));
        assert_eq!(openai.fingerprint, Some(Fingerprint::of(AZURE_KEY)));
    }

    #[test]
    fn azure_providers_check_endpoint_key_and_path() {
        let text = r#"
[providers.azure]
kind = "azure_openai"
endpoint = { env = "AZURE_OPENAI_ENDPOINT" }
deployment = "gpt4o"
api_key = { env = "AZURE_OPENAI_API_KEY" }
"#;
        let config = config(text);
        let env = FixedEnv::new()
            .with("AZURE_OPENAI_ENDPOINT", "https://api.openai.com/v1")
            .with("AZURE_OPENAI_API_KEY", OPENAI_KEY);
        let report = check(&config, &env);
        let azure = report.provider("azure").unwrap();
        // The endpoint is the mistake; the key matches where it would be sent, so one finding.
        assert_eq!(codes(azure), ["endpoint-mismatch"]);
        assert!(
            azure.problems[0]
                .message
                .starts_with("endpoint points at api.openai.com (OpenAI)")
        );

        let env = FixedEnv::new()
            .with("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com/")
            .with("AZURE_OPENAI_API_KEY", AZURE_KEY);
        let report = check(&config, &env);
        let azure = report.provider("azure").unwrap();
        assert_eq!(
            codes(azure),
            ["endpoint-mismatch"],
            "classic path without api_version"
        );
        assert_eq!(azure.url.as_deref(), Some("https://res.openai.azure.com/"));

        let env = FixedEnv::new()
            .with(
                "AZURE_OPENAI_ENDPOINT",
                "https://user:hunter2@res.openai.azure.com/openai/v1?key=hunter2",
            )
            .with("AZURE_OPENAI_API_KEY", AZURE_KEY);
        let report = check(&config, &env);
        let azure = report.provider("azure").unwrap();
        assert_eq!(
            azure.url.as_deref(),
            Some("https://res.openai.azure.com/openai/v1")
        );
        assert_eq!(
            codes(azure),
            ["literal-secret"],
            "credentials in a URL are refused"
        );
        assert!(!format!("{azure:?}").contains("hunter2"));

        let report = check(
            &config,
            &FixedEnv::new().with("AZURE_OPENAI_API_KEY", AZURE_KEY),
        );
        let azure = report.provider("azure").unwrap();
        assert!(
            azure.problems[0]
                .message
                .starts_with("endpoint: AZURE_OPENAI_ENDPOINT is not set"),
            "{:?}",
            azure.problems
        );
    }

    #[test]
    fn literal_keys_are_refused_with_the_reference_to_write() {
        let text = "[providers.a]\nkind = \"openai\"\nmodel = \"m\"\napi_key = \"sk-proj-LITERALabc123XYZ\"\n\
                    [providers.b]\nkind = \"openai\"\nmodel = \"m\"\napi_key = \"${OPENAI_API_KEY}\"\n";
        let report = check(&config(text), &FixedEnv::new());
        let a = report.provider("a").unwrap();
        assert_eq!(codes(a), ["literal-secret"]);
        assert_eq!(a.source, "literal");
        assert!(
            a.problems[0]
                .fix
                .contains("api_key = { env = \"OPENAI_API_KEY\" }")
        );
        assert!(a.fingerprint.is_some());
        assert!(!format!("{:?}", a.problems).contains("LITERAL"));
        let b = report.provider("b").unwrap();
        assert!(
            b.problems[0]
                .fix
                .starts_with("write api_key = { env = \"OPENAI_API_KEY\" }")
        );
        assert!(!b.present);
    }

    #[test]
    fn file_sources_note_a_trimmed_newline_and_stay_usable() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key"), format!("{OPENAI_KEY}\n")).unwrap();
        let text = TEAM.replace("{ env = \"OPENAI_API_KEY\" }", "{ file = \"key\" }");
        let config = parse(&dir.path().join("agentfleet.toml"), &text).unwrap();
        let report = check(&config, &FixedEnv::new());
        let openai = report.provider("openai").unwrap();
        assert!(report.ok);
        assert_eq!(codes(openai), ["trailing-newline"]);
        assert_eq!(openai.problems[0].severity, Severity::Note);
        assert_eq!(openai.fingerprint, Some(Fingerprint::of(OPENAI_KEY)));
        assert_eq!(openai.source, "file:key");
    }

    #[test]
    fn standin_and_keyless_compatible_providers_need_no_key() {
        let text = "[providers.local]\nkind = \"standin\"\n\
                    [providers.ollama]\nkind = \"openai_compatible\"\nmodel = \"llama3\"\nbase_url = \"http://127.0.0.1:11434/v1\"\n";
        let report = check(&config(text), &FixedEnv::new());
        assert!(report.ok);
        assert_eq!(report.provider("local").unwrap().source, "generated");
        assert_eq!(report.provider("ollama").unwrap().source, "none");
    }

    #[test]
    fn debug_output_of_config_and_report_hides_every_key() {
        let canary = "sk-proj-CANARYdebug0123456789abcdefXYZ";
        let text = format!(
            "[providers.a]\nkind = \"openai\"\nmodel = \"m\"\napi_key = \"{canary}\"\n\
             [providers.b]\nkind = \"openai\"\nmodel = \"m\"\napi_key = {{ env = \"K\" }}\n"
        );
        let config = config(&text);
        let report = check(&config, &FixedEnv::new().with("K", canary));
        let shown = format!("{config:?}{config:#?}{report:?}{report:#?}");
        assert!(!shown.contains("CANARY"), "{shown}");
        assert!(shown.contains("Secret(<redacted>)"));
        // The key is there for the caller that uses it, behind expose().
        assert_eq!(
            report.provider("b").unwrap().key.as_ref().unwrap().expose(),
            canary
        );
    }

    #[test]
    fn entra_tokens_are_checked_for_shape_and_expiry() {
        use crate::token::tests::token;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("fresh"), token(now + 3600, "fresh") + "\n").unwrap();
        std::fs::write(dir.path().join("expired"), token(now - 600, "old")).unwrap();
        std::fs::write(dir.path().join("plain"), AZURE_KEY).unwrap();
        let provider = |name: &str, source: &str| {
            format!(
                "[providers.{name}]\nkind = \"azure_openai\"\nendpoint = \"https://r.openai.azure.com/openai/v1\"\nmodel = \"m\"\nentra_token = {source}\n"
            )
        };
        let text = [
            provider("fresh", r#"{ file = "fresh" }"#),
            provider("expired", r#"{ file = "expired" }"#),
            provider("plain", r#"{ file = "plain" }"#),
            provider(
                "command",
                &format!(
                    r#"{{ command = ["sh", "-c", "echo {}"] }}"#,
                    token(now + 3600, "cmd")
                ),
            ),
            provider("broken", r#"{ command = ["sh", "-c", "exit 1"] }"#),
        ]
        .concat();
        let config = parse(&dir.path().join("agentfleet.toml"), &text).unwrap();
        let report = check(&config, &FixedEnv::new());
        let fresh = report.provider("fresh").unwrap();
        assert_eq!(codes(fresh), ["trailing-newline"], "{:?}", fresh.problems);
        assert_eq!(
            (fresh.source.as_str(), fresh.shape),
            ("file:fresh", Some(KeyShape::Jwt))
        );
        assert!(fresh.token.is_some());
        let expired = report.provider("expired").unwrap();
        assert_eq!(codes(expired), ["expired-token"]);
        assert!(
            expired.problems[0].message.contains("expired 10 min ago"),
            "{:?}",
            expired.problems
        );
        assert!(expired.problems[0].fix.contains("get-access-token"));
        assert!(expired.token.is_none());
        assert_eq!(
            codes(report.provider("plain").unwrap()),
            ["provider-mismatch"]
        );
        let command = report.provider("command").unwrap();
        assert!(command.is_usable(), "{:?}", command.problems);
        assert_eq!(command.source, "command:sh");
        let broken = report.provider("broken").unwrap();
        assert_eq!(codes(broken), ["unreadable"]);
        assert!(
            broken.problems[0]
                .message
                .starts_with("entra_token: command sh failed")
        );
    }

    #[test]
    fn the_report_serializes_without_the_key() {
        let report = check(
            &config(TEAM),
            &FixedEnv::new().with("OPENAI_API_KEY", OPENAI_KEY),
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["ok"], true);
        assert_eq!(
            json["providers"][0]["fingerprint"],
            Fingerprint::of(OPENAI_KEY).to_string()
        );
        assert_eq!(json["providers"][0]["shape"], "openai-project-key");
        assert!(!json.to_string().contains(OPENAI_KEY));
    }
}
