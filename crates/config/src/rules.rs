//! The rules that judge a key and an endpoint without calling anyone: placeholders, a key shaped
//! for another provider, an endpoint that does not fit the provider kind or the Azure path.
//!
//! Each rule looks at shapes (prefixes, lengths, hosts, paths) and returns a finding that
//! describes what it saw by shape. No rule returns or formats the key itself.

use crate::fingerprint::{KeyFamily, KeyShape};
use crate::model::ProviderKind;
use crate::problem::{ProblemCode, Severity};

/// A finding before it is tied to a provider: the caller adds who is affected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Stable code.
    pub code: ProblemCode,
    /// How much it matters.
    pub severity: Severity,
    /// What was seen, by shape.
    pub what: String,
    /// What to do.
    pub fix: String,
}

impl Finding {
    fn new(code: ProblemCode, severity: Severity, what: String, fix: String) -> Self {
        Self {
            code,
            severity,
            what,
            fix,
        }
    }
}

/// The parts of an http(s) URL the rules look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    /// `http` or `https`, lowercased.
    pub scheme: String,
    /// The host, lowercased, without brackets or a trailing dot.
    pub host: String,
    /// `:PORT` when the URL names one, else empty.
    pub port: String,
    /// The path, without query or fragment (empty when absent).
    pub path: String,
    /// Whether the URL carries `user:password@`.
    pub has_userinfo: bool,
}

impl HttpUrl {
    /// Parses `http://` and `https://` URLs that have a host; anything else is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (scheme, rest) = text.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return None;
        }
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, after) = rest.split_at(authority_end);
        let (has_userinfo, host_port) = match authority.rsplit_once('@') {
            Some((_, host_port)) => (true, host_port),
            None => (false, authority),
        };
        let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
            let (host, after) = bracketed.split_once(']')?;
            (host, after)
        } else {
            host_port.split_at(host_port.find(':').unwrap_or(host_port.len()))
        };
        if !(port.is_empty() || (port.starts_with(':') && port[1..].parse::<u16>().is_ok())) {
            return None;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty() || host.contains(char::is_whitespace) {
            return None;
        }
        let path_end = after.find(['?', '#']).unwrap_or(after.len());
        Some(Self {
            scheme,
            host,
            port: port.to_owned(),
            path: after[..path_end].to_owned(),
            has_userinfo,
        })
    }

    /// The URL without user information, query or fragment: safe to show in any report.
    pub fn shown(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{}://{host}{}{}", self.scheme, self.port, self.path)
    }

    /// Whether the host is this machine.
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost" || self.host.starts_with("127.") || self.host == "::1"
    }

    /// Whether the path is Azure's v1 API (`/openai/v1`), which needs no `api-version`.
    pub fn is_azure_v1_path(&self) -> bool {
        let path = self.path.trim_end_matches('/');
        path.ends_with("/openai/v1") || path.contains("/openai/v1/")
    }

    /// The provider whose public API lives at this host, when it is a known one.
    pub fn provider_family(&self) -> Option<KeyFamily> {
        let host = self.host.as_str();
        Some(match host {
            "api.openai.com" => KeyFamily::OpenAi,
            "api.anthropic.com" => KeyFamily::Anthropic,
            "generativelanguage.googleapis.com" => KeyFamily::Google,
            "openrouter.ai" => KeyFamily::OpenRouter,
            "api.groq.com" => KeyFamily::Groq,
            "api.x.ai" => KeyFamily::Xai,
            _ if is_azure_host(host) => KeyFamily::Azure,
            _ => return None,
        })
    }
}

fn is_azure_host(host: &str) -> bool {
    [
        ".openai.azure.com",
        ".cognitiveservices.azure.com",
        ".services.ai.azure.com",
    ]
    .iter()
    .any(|suffix| host.ends_with(suffix))
}

fn host_owner(family: KeyFamily) -> &'static str {
    match family {
        KeyFamily::OpenAi => "OpenAI",
        KeyFamily::Azure => "Azure OpenAI",
        KeyFamily::Anthropic => "Anthropic",
        KeyFamily::Google => "Gemini",
        KeyFamily::OpenRouter => "OpenRouter",
        KeyFamily::Groq => "Groq",
        KeyFamily::Xai => "xAI",
        KeyFamily::Jwt => "a token service",
    }
}

/// Why a value is a placeholder rather than a key, or `None` when it may be a real key.
/// `name` is the variable or dotenv entry it came from, if any.
pub fn placeholder(value: &str, name: Option<&str>) -> Option<&'static str> {
    let value = value.trim();
    let lower = value.to_ascii_lowercase();
    if value.contains("***")
        || value.contains('•')
        || (!value.is_empty() && value.chars().all(|c| c == '*'))
    {
        return Some("a masked value (asterisks, as a masked config round-trip leaves behind)");
    }
    if (value.starts_with('<') && value.ends_with('>'))
        || (value.starts_with("{{") && value.ends_with("}}"))
    {
        return Some("a template marker such as <API_KEY> or {{ api_key }}");
    }
    if value.starts_with('$') {
        return Some("an unexpanded reference such as $NAME: nothing substitutes variables there");
    }
    if name.is_some_and(|name| lower == name.to_ascii_lowercase()) {
        return Some("the variable's own name instead of its value");
    }
    let is_upper_identifier = value.len() > 3
        && value
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && value.contains('_')
        && ["KEY", "TOKEN", "SECRET"]
            .iter()
            .any(|end| value.ends_with(end));
    if is_upper_identifier {
        return Some("a variable's name instead of a key");
    }
    const WORDS: &[&str] = &[
        "test",
        "testing",
        "test-key",
        "testkey",
        "test_key",
        "changeme",
        "change-me",
        "change_me",
        "placeholder",
        "dummy",
        "fake",
        "example",
        "sample",
        "none",
        "null",
        "nil",
        "undefined",
        "todo",
        "tbd",
        "fixme",
        "secret",
        "password",
        "apikey",
        "api_key",
        "api-key",
        "key",
        "token",
        "redacted",
        "default",
        "replaceme",
        "replace-me",
        "replace_me",
        "xxx",
        "foo",
        "bar",
        "foobar",
        "abc",
        "abc123",
        "123",
        "1234",
        "12345",
        "123456",
        "...",
    ];
    if WORDS.contains(&lower.as_str()) {
        return Some("a placeholder word such as test or changeme");
    }
    let squashed: String = lower
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let template_start = [
        "your", "my", "insert", "enter", "put", "paste", "replace", "add",
    ]
    .iter()
    .any(|start| squashed.starts_with(start));
    let template_end = ["key", "token", "secret", "here"]
        .iter()
        .any(|end| squashed.contains(end));
    if template_start && template_end {
        return Some("a template phrase such as YOUR_API_KEY");
    }
    let body = ["sk-proj-", "sk-ant-", "sk-"]
        .iter()
        .find_map(|prefix| value.strip_prefix(prefix))
        .unwrap_or(value);
    if body.is_empty()
        || body
            .chars()
            .all(|c| matches!(c, 'x' | 'X' | '.' | '-' | '_' | '#' | '0' | '…'))
    {
        return Some("a filler such as sk-xxxx or sk-...");
    }
    None
}

/// The family of key a provider expects, from its URL's host, or else from its kind.
fn expected_family(kind: ProviderKind, url: Option<&HttpUrl>) -> Option<KeyFamily> {
    if let Some(family) = url.and_then(HttpUrl::provider_family) {
        return Some(family);
    }
    match (kind, url) {
        (ProviderKind::AzureOpenAi, _) => Some(KeyFamily::Azure),
        (ProviderKind::OpenAi, None) => Some(KeyFamily::OpenAi),
        (ProviderKind::Anthropic, None) => Some(KeyFamily::Anthropic),
        _ => None,
    }
}

/// Whether a key of this shape belongs to the provider it is configured for.
pub fn key_fits_provider(
    kind: ProviderKind,
    url: Option<&HttpUrl>,
    shape: KeyShape,
) -> Option<Finding> {
    let expected = expected_family(kind, url);
    let destination = match url {
        Some(url) => url.host.clone(),
        None => default_host(kind).to_owned(),
    };
    let family = shape.family();
    let label = shape.label();
    match (family, expected) {
        (Some(KeyFamily::Jwt), Some(KeyFamily::Azure)) => Some(Finding::new(
            ProblemCode::ProviderMismatch,
            Severity::Warning,
            "holds a bearer token (JWT), probably a Microsoft Entra access token, where an \
             Azure key is expected; such tokens expire after about an hour"
                .to_owned(),
            "put the resource's key (KEY1 or KEY2 from the Azure portal) here; an Entra token \
             needs a token source that is re-read before it expires"
                .to_owned(),
        )),
        (Some(_), Some(_)) if family != expected => {
            let have = family.map_or("a key", KeyFamily::describe);
            let want = expected.map_or("a key", KeyFamily::describe);
            let fix = match (family, expected) {
                (Some(KeyFamily::Azure), Some(KeyFamily::OpenAi)) => {
                    "this is an Azure OpenAI key: use kind = \"azure_openai\" with endpoint = \
                     \"https://RESOURCE.openai.azure.com\", or put the OpenAI key here"
                        .to_owned()
                }
                (Some(KeyFamily::OpenAi), Some(KeyFamily::Azure)) => {
                    "Azure OpenAI takes the resource's own key (KEY1 or KEY2 from the Azure \
                     portal), not an OpenAI key; or use kind = \"openai\" for api.openai.com"
                        .to_owned()
                }
                _ => format!(
                    "point api_key at {want}, or change the provider's kind and endpoint to \
                     match {have}"
                ),
            };
            Some(Finding::new(
                ProblemCode::ProviderMismatch,
                Severity::Error,
                format!(
                    "holds {have} ({label} shape), but provider kind {kind} sends it to \
                     {destination} ({}), which expects {want}",
                    host_owner(expected.unwrap_or(KeyFamily::OpenAi))
                ),
                fix,
            ))
        }
        (Some(KeyFamily::Google), None) => Some(Finding::new(
            ProblemCode::ProviderMismatch,
            Severity::Warning,
            format!(
                "holds a Google (Gemini) API key (AIza shape), but provider kind {kind} sends it \
                 to {destination}, which is not Gemini"
            ),
            "use the key issued by the server at base_url, or point base_url at \
             https://generativelanguage.googleapis.com/v1beta/openai"
                .to_owned(),
        )),
        (None, Some(expected @ (KeyFamily::OpenAi | KeyFamily::Anthropic | KeyFamily::Google))) => {
            let prefix = match expected {
                KeyFamily::OpenAi => "sk-",
                KeyFamily::Anthropic => "sk-ant-",
                _ => "AIza",
            };
            Some(Finding::new(
                ProblemCode::ProviderMismatch,
                Severity::Warning,
                format!(
                    "does not have the shape of {} (those start with {prefix}), and it is sent \
                     to {destination}",
                    expected.describe()
                ),
                format!(
                    "check that this is {} and not another provider's key",
                    expected.describe()
                ),
            ))
        }
        _ => None,
    }
}

fn default_host(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::OpenAi => "api.openai.com",
        ProviderKind::Anthropic => "api.anthropic.com",
        ProviderKind::AzureOpenAi => "the Azure endpoint",
        ProviderKind::OpenAiCompatible => "the base_url",
        ProviderKind::Standin => "the stand-in",
    }
}

/// What the provider declares about its Azure path, for the endpoint rules.
#[derive(Clone, Copy, Debug, Default)]
pub struct AzurePath<'a> {
    /// `deployment`.
    pub deployment: Option<&'a str>,
    /// `api_version`.
    pub api_version: Option<&'a str>,
    /// `model`.
    pub model: Option<&'a str>,
}

/// Whether the URL fits the provider kind: `field` names the setting it came from.
pub fn endpoint_fits_provider(
    kind: ProviderKind,
    field: &str,
    url: &HttpUrl,
    azure: AzurePath<'_>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let host = url.host.as_str();
    if url.has_userinfo {
        findings.push(Finding::new(
            ProblemCode::LiteralSecret,
            Severity::Error,
            format!("{field} carries a user name or password in the URL"),
            "remove user:password@ from the URL: agentfleet sends credentials in headers only"
                .to_owned(),
        ));
    }
    if url.scheme == "http" && !url.is_loopback() {
        findings.push(Finding::new(
            ProblemCode::InsecureEndpoint,
            Severity::Warning,
            format!(
                "{field} is plain http to {host}, so the key would cross the network unencrypted"
            ),
            "use https, or keep plain http for servers on this machine".to_owned(),
        ));
    }
    let family = url.provider_family();
    match kind {
        ProviderKind::OpenAi if family == Some(KeyFamily::Azure) && !url.is_azure_v1_path() => {
            findings.push(Finding::new(
                ProblemCode::EndpointMismatch,
                Severity::Error,
                format!(
                    "{field} points at an Azure OpenAI resource ({host}), but the provider is \
                     kind openai and would call it without a deployment or api-version"
                ),
                format!(
                    "use kind = \"azure_openai\" with endpoint = \"https://{host}\", or Azure's \
                     v1 path: base_url = \"https://{host}/openai/v1\""
                ),
            ));
        }
        ProviderKind::AzureOpenAi if family.is_some() && family != Some(KeyFamily::Azure) => {
            findings.push(Finding::new(
                ProblemCode::EndpointMismatch,
                Severity::Error,
                format!(
                    "{field} points at {host} ({}), but the provider is kind azure_openai",
                    host_owner(family.unwrap_or(KeyFamily::OpenAi))
                ),
                format!(
                    "set endpoint to the Azure resource, https://RESOURCE.openai.azure.com, or use \
                     kind = \"{}\" for {host}",
                    if family == Some(KeyFamily::Anthropic) {
                        "anthropic"
                    } else {
                        "openai"
                    }
                ),
            ));
        }
        ProviderKind::AzureOpenAi => {
            if url.path.contains("/openai/deployments") {
                findings.push(Finding::new(
                    ProblemCode::EndpointMismatch,
                    Severity::Error,
                    format!("{field} includes the /openai/deployments/... path"),
                    format!(
                        "set endpoint to the resource root, https://{host}, and the deployment \
                         name in deployment = \"...\""
                    ),
                ));
            } else if !url.is_azure_v1_path() {
                if azure.api_version.is_none() {
                    findings.push(Finding::new(
                        ProblemCode::EndpointMismatch,
                        Severity::Error,
                        "the classic Azure path (/openai/deployments/...) needs api_version, and \
                         none is set"
                            .to_owned(),
                        format!(
                            "add api_version = \"2024-10-21\" (or the version your resource \
                             supports), or use the v1 path: endpoint = \"https://{host}/openai/v1\""
                        ),
                    ));
                }
                if azure.deployment.is_none() && azure.model.is_none() {
                    findings.push(Finding::new(
                        ProblemCode::EndpointMismatch,
                        Severity::Error,
                        "the classic Azure path needs a deployment name, and neither deployment \
                         nor model is set"
                            .to_owned(),
                        "add deployment = \"NAME\" (the deployment's name in the Azure portal)"
                            .to_owned(),
                    ));
                }
            }
        }
        ProviderKind::Anthropic if matches!(family, Some(KeyFamily::OpenAi | KeyFamily::Azure)) => {
            findings.push(Finding::new(
                ProblemCode::EndpointMismatch,
                Severity::Error,
                format!(
                    "{field} points at {host} ({}), but the provider is kind anthropic",
                    host_owner(family.unwrap_or(KeyFamily::OpenAi))
                ),
                "remove base_url to use https://api.anthropic.com, or change kind to match the host"
                    .to_owned(),
            ));
        }
        _ => {}
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> HttpUrl {
        HttpUrl::parse(text).unwrap()
    }

    #[test]
    fn urls_are_parsed_by_parts() {
        let parsed = url("https://User:pw@Res.OpenAI.Azure.com.:443/openai/v1/?x=1");
        assert_eq!(parsed.host, "res.openai.azure.com");
        assert_eq!(parsed.path, "/openai/v1/");
        assert!(parsed.has_userinfo);
        assert!(parsed.is_azure_v1_path());
        assert_eq!(parsed.provider_family(), Some(KeyFamily::Azure));
        assert_eq!(
            parsed.shown(),
            "https://res.openai.azure.com:443/openai/v1/"
        );
        assert!(url("http://[::1]:8080/v1").is_loopback());
        assert_eq!(url("http://[::1]:8080/v1").shown(), "http://[::1]:8080/v1");
        assert!(HttpUrl::parse("http://host:notaport/").is_none());
        assert!(HttpUrl::parse("ftp://x").is_none());
        assert!(HttpUrl::parse("api.openai.com").is_none());
        assert!(HttpUrl::parse("https:///v1").is_none());
    }

    #[test]
    fn placeholders_are_recognised() {
        let cases = [
            "**********",
            "sk-VKMIs*****************wjh3",
            "test",
            "changeme",
            "sk-xxxxxxxxxxxx",
            "sk-...",
            "your-api-key-here",
            "YOUR_OPENAI_API_KEY",
            "<API_KEY>",
            "{{ api_key }}",
            "$OPENAI_API_KEY",
            "${OPENAI_API_KEY}",
            "AZURE_OPENAI_API_KEY",
            "sk-",
        ];
        for value in cases {
            assert!(
                placeholder(value, Some("OPENAI_API_KEY")).is_some(),
                "{value}"
            );
        }
        assert_eq!(
            placeholder("openai_api_key", Some("OPENAI_API_KEY")),
            Some("the variable's own name instead of its value")
        );
    }

    #[test]
    fn real_keys_are_not_placeholders() {
        let keys = [
            "sk-proj-Abc123_def-456T3BlbkFJxyz789",
            "04e0e8440123456789abcdef01232687",
            "sk-ant-api03-Zq8vN3kL0pX9tYzA4cE8AA",
            "AIzaSyA1234567890abcdefghijklmnopqrstuv",
            "token-abc123def456",
            "xtest1234",
        ];
        for key in keys {
            assert_eq!(placeholder(key, Some("OPENAI_API_KEY")), None, "{key}");
        }
    }

    #[test]
    fn keys_for_another_provider_are_mismatches() {
        let openai = None;
        let azure_shape = KeyShape::of("04e0e8440123456789abcdef01232687");
        let found = key_fits_provider(ProviderKind::OpenAi, openai, azure_shape).unwrap();
        assert_eq!(
            (found.code, found.severity),
            (ProblemCode::ProviderMismatch, Severity::Error)
        );
        assert!(
            found.what.contains("holds an Azure key (azure-key shape)"),
            "{}",
            found.what
        );
        assert!(found.fix.contains("kind = \"azure_openai\""));

        let azure = url("https://res.openai.azure.com");
        let found = key_fits_provider(
            ProviderKind::AzureOpenAi,
            Some(&azure),
            KeyShape::OpenAiProject,
        )
        .unwrap();
        assert_eq!(found.severity, Severity::Error);
        assert!(found.what.contains("holds an OpenAI key"));

        let found = key_fits_provider(ProviderKind::OpenAi, None, KeyShape::AnthropicApi).unwrap();
        assert!(found.what.contains("holds an Anthropic key"));

        let found =
            key_fits_provider(ProviderKind::Anthropic, None, KeyShape::OpenAiProject).unwrap();
        assert_eq!(found.severity, Severity::Error);
    }

    #[test]
    fn matching_keys_pass() {
        assert_eq!(
            key_fits_provider(ProviderKind::OpenAi, None, KeyShape::OpenAiProject),
            None
        );
        let azure = url("https://res.openai.azure.com");
        assert_eq!(
            key_fits_provider(ProviderKind::AzureOpenAi, Some(&azure), KeyShape::AzureHex),
            None
        );
        assert_eq!(
            key_fits_provider(
                ProviderKind::AzureOpenAi,
                Some(&azure),
                KeyShape::AzureAnnotated
            ),
            None
        );
        // Azure's v1 path with the plain OpenAI client takes an Azure key: no mismatch.
        let v1 = url("https://res.openai.azure.com/openai/v1");
        assert_eq!(
            key_fits_provider(ProviderKind::OpenAi, Some(&v1), KeyShape::AzureHex),
            None
        );
        // An Azure gateway with an unknown host still expects Azure keys, and accepts them.
        let apim = url("https://gw.azure-api.net");
        assert_eq!(
            key_fits_provider(ProviderKind::AzureOpenAi, Some(&apim), KeyShape::AzureHex),
            None
        );
        // An OpenAI-compatible server decides its own keys.
        let local = url("http://127.0.0.1:8000/v1");
        assert_eq!(
            key_fits_provider(
                ProviderKind::OpenAiCompatible,
                Some(&local),
                KeyShape::Unrecognised
            ),
            None
        );
        assert_eq!(
            key_fits_provider(
                ProviderKind::OpenAiCompatible,
                Some(&local),
                KeyShape::OpenAiUser
            ),
            None
        );
    }

    #[test]
    fn google_keys_outside_gemini_and_unknown_shapes_warn() {
        let local = url("http://127.0.0.1:8000/v1");
        let found = key_fits_provider(
            ProviderKind::OpenAiCompatible,
            Some(&local),
            KeyShape::GoogleApi,
        )
        .unwrap();
        assert_eq!(found.severity, Severity::Warning);
        let gemini = url("https://generativelanguage.googleapis.com/v1beta/openai");
        assert_eq!(
            key_fits_provider(
                ProviderKind::OpenAiCompatible,
                Some(&gemini),
                KeyShape::GoogleApi
            ),
            None
        );
        let found = key_fits_provider(ProviderKind::OpenAi, None, KeyShape::GoogleApi).unwrap();
        assert_eq!(found.severity, Severity::Error);
        let found = key_fits_provider(ProviderKind::OpenAi, None, KeyShape::Unrecognised).unwrap();
        assert_eq!(found.severity, Severity::Warning);
        let found = key_fits_provider(
            ProviderKind::AzureOpenAi,
            Some(&url("https://r.openai.azure.com")),
            KeyShape::Jwt,
        )
        .unwrap();
        assert_eq!(found.severity, Severity::Warning);
    }

    #[test]
    fn endpoints_must_fit_the_kind_and_the_azure_path() {
        let azure = url("https://res.openai.azure.com");
        let found = endpoint_fits_provider(
            ProviderKind::OpenAi,
            "base_url",
            &azure,
            AzurePath::default(),
        );
        assert_eq!(found[0].code, ProblemCode::EndpointMismatch);
        let v1 = url("https://res.openai.azure.com/openai/v1");
        assert!(
            endpoint_fits_provider(ProviderKind::OpenAi, "base_url", &v1, AzurePath::default())
                .is_empty()
        );

        let openai = url("https://api.openai.com/v1");
        let found = endpoint_fits_provider(
            ProviderKind::AzureOpenAi,
            "endpoint",
            &openai,
            AzurePath::default(),
        );
        assert!(
            found[0].what.contains("api.openai.com (OpenAI)"),
            "{found:?}"
        );

        let found = endpoint_fits_provider(
            ProviderKind::AzureOpenAi,
            "endpoint",
            &azure,
            AzurePath {
                deployment: Some("d"),
                api_version: None,
                model: None,
            },
        );
        assert_eq!(found.len(), 1);
        assert!(found[0].what.contains("needs api_version"));
        let complete = AzurePath {
            deployment: Some("d"),
            api_version: Some("2024-10-21"),
            model: None,
        };
        assert!(
            endpoint_fits_provider(ProviderKind::AzureOpenAi, "endpoint", &azure, complete)
                .is_empty()
        );
        assert!(
            endpoint_fits_provider(
                ProviderKind::AzureOpenAi,
                "endpoint",
                &v1,
                AzurePath::default()
            )
            .is_empty()
        );

        let pasted = url("https://res.openai.azure.com/openai/deployments/gpt4o/chat/completions");
        let found =
            endpoint_fits_provider(ProviderKind::AzureOpenAi, "endpoint", &pasted, complete);
        assert!(found[0].what.contains("includes the /openai/deployments"));

        let found = endpoint_fits_provider(
            ProviderKind::Anthropic,
            "base_url",
            &openai,
            AzurePath::default(),
        );
        assert_eq!(found[0].code, ProblemCode::EndpointMismatch);

        let clear = url("http://llm.internal:8000/v1");
        let found = endpoint_fits_provider(
            ProviderKind::OpenAiCompatible,
            "base_url",
            &clear,
            AzurePath::default(),
        );
        assert_eq!(found[0].code, ProblemCode::InsecureEndpoint);
        let local = url("http://127.0.0.1:8000/v1");
        assert!(
            endpoint_fits_provider(
                ProviderKind::OpenAiCompatible,
                "base_url",
                &local,
                AzurePath::default()
            )
            .is_empty()
        );
    }
}
