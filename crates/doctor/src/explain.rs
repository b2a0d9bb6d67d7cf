//! `explain`: credential failures in logs, tracebacks and raw error bodies, each named by cause,
//! provider, the line it was found on, and the fix.
//!
//! Every rule matches text that the provider, its SDK or a proxy in front of it prints, as
//! published in their bodies and messages (Python and Node tracebacks, SDK exceptions, raw HTTP
//! bodies from OpenAI, Azure OpenAI, Anthropic, Gemini, LiteLLM, vLLM and Ollama). A bare
//! "401" or "Unauthorized" with nothing else says too little to name a cause, and is left alone:
//! a wrong diagnosis costs more than a missed one. Quota and rate limits are diagnosed too,
//! because they are mistaken for credential failures, and marked as not being one.
//!
//! Evidence is the line as found with every key-shaped run of text masked, including the
//! partial keys providers echo back.

use agentfleet_config::KeyShape;
use agentfleet_config::fingerprint::looks_like_credential;
use serde::Serialize;

/// What went wrong. The names are a contract, like `check`'s problem codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// No key reached the provider: the variable was not set in that process.
    MissingKey,
    /// The provider refused the key: wrong, revoked, a placeholder.
    InvalidKey,
    /// A key meant for another provider was sent.
    ProviderMismatch,
    /// The variable's name was sent as the key.
    VariableNameAsKey,
    /// The key went in a header the provider does not read.
    WrongAuthHeader,
    /// A bearer token (Entra ID) expired.
    ExpiredToken,
    /// The organization sent does not match the key's.
    OrganizationMismatch,
    /// The account behind the key is deactivated; no key rotation fixes it.
    AccountDeactivated,
    /// The identity is known but lacks the role or access.
    PermissionDenied,
    /// Billing: the quota is used up. Not a credential failure.
    QuotaExhausted,
    /// Too many requests. Not a credential failure.
    RateLimited,
}

impl Cause {
    /// The stable kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::MissingKey => "missing-key",
            Cause::InvalidKey => "invalid-key",
            Cause::ProviderMismatch => "provider-mismatch",
            Cause::VariableNameAsKey => "variable-name-as-key",
            Cause::WrongAuthHeader => "wrong-auth-header",
            Cause::ExpiredToken => "expired-token",
            Cause::OrganizationMismatch => "organization-mismatch",
            Cause::AccountDeactivated => "account-deactivated",
            Cause::PermissionDenied => "permission-denied",
            Cause::QuotaExhausted => "quota-exhausted",
            Cause::RateLimited => "rate-limited",
        }
    }

    /// Whether it is a credential failure, as opposed to a look-alike (quota, rate limits).
    pub fn is_credential_failure(self) -> bool {
        !matches!(self, Cause::QuotaExhausted | Cause::RateLimited)
    }
}

/// One failure found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnosis {
    /// What went wrong.
    pub cause: Cause,
    /// `openai`, `azure_openai`, `anthropic`, `gemini`, `litellm`, `vllm`, `ollama`, when known.
    pub provider: Option<&'static str>,
    /// 1-based line of the input.
    pub line: usize,
    /// The line, trimmed, shortened, with key-shaped text masked.
    pub evidence: String,
    /// What to do about it.
    pub fix: String,
}

/// Every failure in `text`, in input order. The same failure repeated on nearby lines (a
/// traceback printing one error three ways: same cause, provider and fix within 12 lines) is
/// reported once.
pub fn explain(text: &str) -> Vec<Diagnosis> {
    let context = Context::of(text);
    let mut found: Vec<Diagnosis> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let Some((cause, provider, fix)) = classify(line, &context) else {
            continue;
        };
        let line_number = index + 1;
        let repeated = found.iter().rev().take(4).any(|earlier| {
            earlier.cause == cause
                && earlier.provider == provider
                && earlier.fix == fix
                && line_number - earlier.line <= 12
        });
        if repeated {
            continue;
        }
        found.push(Diagnosis {
            cause,
            provider,
            line: line_number,
            evidence: evidence(line),
            fix,
        });
    }
    found
}

/// What the whole input says about how it authenticates.
struct Context {
    /// It uses Entra ID tokens, so Azure's "access token is missing, invalid ... or expired"
    /// means a token, not a key in the wrong header.
    entra: bool,
}

impl Context {
    fn of(text: &str) -> Self {
        let entra = [
            "azure_ad_token",
            "azureADTokenProvider",
            "get_bearer_token_provider",
            "DefaultAzureCredential",
            "ManagedIdentityCredential",
            "ClientSecretCredential",
            "entra_token",
        ]
        .iter()
        .any(|marker| text.contains(marker));
        Self { entra }
    }
}

type Finding = (Cause, Option<&'static str>, String);

fn classify(line: &str, context: &Context) -> Option<Finding> {
    let has = |needle: &str| line.contains(needle);
    let lower = line.to_ascii_lowercase();
    let has_lower = |needle: &str| lower.contains(needle);

    // Look-alikes first: a 429 for billing or load says nothing about the key.
    if has("insufficient_quota") || has("You exceeded your current quota") {
        return Some((
            Cause::QuotaExhausted,
            Some("openai"),
            "not a credential failure: the key works, its organization's quota is used up; add \
             credit or raise the limit (rotating the key changes nothing)"
                .to_owned(),
        ));
    }
    if has("billing_error") || has("credit balance is too low") {
        return Some((
            Cause::QuotaExhausted,
            Some("anthropic"),
            "not a credential failure: the account's credit is used up; add credit in the \
             console (rotating the key changes nothing)"
                .to_owned(),
        ));
    }
    if has("rate_limit_exceeded")
        || has("rate_limit_error")
        || has("Rate limit reached for")
        || has("have exceeded call rate limit")
        || (has("RESOURCE_EXHAUSTED") && has("429"))
    {
        let provider = if has("rate_limit_error") {
            Some("anthropic")
        } else if has("have exceeded call rate limit") {
            Some("azure_openai")
        } else if has("RESOURCE_EXHAUSTED") {
            Some("gemini")
        } else {
            Some("openai")
        };
        return Some((
            Cause::RateLimited,
            provider,
            "not a credential failure: too many requests or tokens per minute; back off and \
             retry (honour Retry-After), or lower the fleet's concurrency"
                .to_owned(),
        ));
    }

    if has("mismatched_organization") || has("OpenAI-Organization header should match") {
        return Some((
            Cause::OrganizationMismatch,
            Some("openai"),
            "the organization sent (OpenAI-Organization, from OPENAI_ORG_ID or the client's \
             organization) is not the key's: unset it, or set the key's own organization id"
                .to_owned(),
        ));
    }
    if has("no such organization") || has("no_organization") {
        let null = has("organization : null") || has("organization: null");
        let fix = if null {
            "an unset organization variable was sent as the text \"null\": set it to the key's \
             organization id or stop sending one"
        } else {
            "the key belongs to no organization the request names: create a project key, or send \
             the key's own organization id"
        };
        return Some((Cause::OrganizationMismatch, Some("openai"), fix.to_owned()));
    }
    if has("account_deactivated")
        || has("associated with a deactivated account")
        || has("account associated with this API key has been deactivated")
        || has("access_terminated")
    {
        return Some((
            Cause::AccountDeactivated,
            Some("openai"),
            "the account behind the key is deactivated: a new key of the same account will fail \
             too; contact the provider, or use a key of another account"
                .to_owned(),
        ));
    }

    if has("Incorrect API key provided") {
        return Some(incorrect_openai_key(line));
    }
    if has("API keys are not supported by this API") && has("OAuth2") {
        return Some((
            Cause::ProviderMismatch,
            Some("gemini"),
            "a Gemini (AI Studio) API key was sent to Vertex AI, which takes OAuth2 tokens only: \
             unset GOOGLE_API_KEY and GEMINI_API_KEY in that process and use application default \
             credentials, or call the Gemini API instead"
                .to_owned(),
        ));
    }

    if has("Access token is missing, invalid, audience is incorrect") {
        return Some(if context.entra || has_lower("token expired") {
            (
                Cause::ExpiredToken,
                Some("azure_openai"),
                "the Entra ID token expired (they last about an hour) or is for another audience: \
                 get tokens from a provider that refreshes them (azure_ad_token_provider, or \
                 entra_token in agentfleet) for https://cognitiveservices.azure.com, instead of \
                 one token read at start-up"
                    .to_owned(),
            )
        } else {
            (
                Cause::WrongAuthHeader,
                Some("azure_openai"),
                "Azure OpenAI read no valid bearer token: an API key must go in the api-key \
                 header, not Authorization: Bearer (use an Azure client, not a plain OpenAI \
                 one); if you do use Entra ID, the token expired or is for another audience"
                    .to_owned(),
            )
        });
    }
    if has("ExpiredAuthenticationToken")
        || has("Lifetime validation failed, the token is expired")
        || (has("AADSTS") && has_lower("expired"))
    {
        return Some((
            Cause::ExpiredToken,
            Some("azure_openai"),
            "the Entra ID token expired: refresh it before its exp (a token provider, or \
             entra_token in agentfleet) instead of reading one at start-up"
                .to_owned(),
        ));
    }
    if has("Missing bearer or basic authentication in header") {
        return Some((
            Cause::WrongAuthHeader,
            Some("openai"),
            "the request had no Authorization: Bearer header: the key was sent in another header \
             (api-key, x-api-key) or not at all; OpenAI reads only Authorization: Bearer KEY"
                .to_owned(),
        ));
    }
    if has("Malformed API Key passed in") {
        return Some((
            Cause::WrongAuthHeader,
            Some("litellm"),
            "the proxy needs Authorization: Bearer sk-...: send the virtual key with the Bearer \
             prefix"
                .to_owned(),
        ));
    }

    if has("Principal does not have access to API/Operation")
        || (has("PermissionDenied") && has("lacks the required data action"))
    {
        return Some((
            Cause::PermissionDenied,
            Some("azure_openai"),
            "the Entra identity authenticated but has no role on the resource: grant it \
             Cognitive Services OpenAI User (or Contributor) on the Azure OpenAI resource; the \
             key or token itself is fine"
                .to_owned(),
        ));
    }
    if has("permission_error") {
        return Some((
            Cause::PermissionDenied,
            Some("anthropic"),
            "the key works but may not use this model or feature: check the key's workspace and \
             the organization's access"
                .to_owned(),
        ));
    }
    if has("does not have access to model") {
        return Some((
            Cause::PermissionDenied,
            Some("openai"),
            "the key's project may not use this model: allow the model in the project's \
             settings, or use a key of a project that has it"
                .to_owned(),
        ));
    }

    // No key at all.
    let missing_env = [
        (
            "The api_key client option must be set",
            "openai",
            "OPENAI_API_KEY",
        ),
        (
            "OPENAI_API_KEY environment variable is missing or empty",
            "openai",
            "OPENAI_API_KEY",
        ),
        ("You didn't provide an API key", "openai", "OPENAI_API_KEY"),
        (
            "Missing credentials. Please pass one of `api_key`, `azure_ad_token`",
            "azure_openai",
            "AZURE_OPENAI_API_KEY",
        ),
        (
            "Could not resolve authentication method",
            "anthropic",
            "ANTHROPIC_API_KEY",
        ),
        (
            "ANTHROPIC_API_KEY environment variable is missing or empty",
            "anthropic",
            "ANTHROPIC_API_KEY",
        ),
        ("No api key passed in", "litellm", "the proxy's virtual key"),
        (
            "Method doesn't allow unregistered callers",
            "gemini",
            "GEMINI_API_KEY",
        ),
        (
            "missing application credentials or subscription key",
            "azure_openai",
            "the api-key header",
        ),
    ];
    for (needle, provider, variable) in missing_env {
        if has(needle) {
            return Some((
                Cause::MissingKey,
                Some(provider),
                format!(
                    "no key reached the provider: {variable} was not set in the process that \
                     made the call (a container, pod, queue worker or child process gets only \
                     what its own manifest, unit or parent passes it); build the client inside \
                     that process, after its environment is set"
                ),
            ));
        }
    }

    // A key the provider does not accept.
    let refused: [(&str, &str, &str); 8] = [
        (
            "Access denied due to invalid subscription key or wrong API endpoint",
            "azure_openai",
            "Azure refused the key for this endpoint: the key is another resource's (or an \
             OpenAI key), or the endpoint is another resource's or region's; take KEY1 or KEY2 \
             from the same resource as the endpoint",
        ),
        (
            "invalid x-api-key",
            "anthropic",
            "Anthropic refused the key: it was revoked, is another provider's, or is an old \
             ANTHROPIC_API_KEY inherited from the environment; set the current key where the \
             process reads it",
        ),
        (
            "API key not valid. Please pass a valid API key",
            "gemini",
            "Gemini refused the key (with HTTP 400, not 401): it is wrong, revoked or restricted \
             to other APIs; create a key in AI Studio and set GEMINI_API_KEY",
        ),
        (
            "API Key not found. Please pass a valid API key",
            "gemini",
            "Gemini knows no such key: set a current GEMINI_API_KEY",
        ),
        (
            "reported as leaked",
            "gemini",
            "Google revoked the key because it was found in public: create a new key, and keep \
             it out of code and images",
        ),
        (
            "Invalid proxy server token passed",
            "litellm",
            "the proxy knows no such virtual key: create one with /key/generate or use an \
             existing one (the proxy's master key is not a provider key)",
        ),
        (
            "token_not_found_in_db",
            "litellm",
            "the proxy knows no such virtual key: create one with /key/generate or use an \
             existing one",
        ),
        (
            "unauthorized (status code: 401)",
            "ollama",
            "ollama.com refused the key: set a current OLLAMA_API_KEY (a local Ollama needs no \
             key: point the client at it instead)",
        ),
    ];
    for (needle, provider, fix) in refused {
        if has(needle) {
            return Some((Cause::InvalidKey, Some(provider), fix.to_owned()));
        }
    }
    if has("authentication_error") && has("\"type\":\"error\"")
        || has("authentication_error") && has("'type': 'error'")
    {
        return Some((
            Cause::InvalidKey,
            Some("anthropic"),
            "Anthropic refused the key: set a current ANTHROPIC_API_KEY where the process reads \
             it"
            .to_owned(),
        ));
    }
    let compact: String = line.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.contains("{\"error\":\"Unauthorized\"}") {
        return Some((
            Cause::InvalidKey,
            Some("vllm"),
            "vLLM was started with --api-key (or VLLM_API_KEY) and the request's Bearer key is \
             not that one; check both, including a VLLM_API_KEY left in a shell profile"
                .to_owned(),
        ));
    }
    None
}

/// OpenAI's "Incorrect API key provided: ECHO": the masked echo says what was sent.
fn incorrect_openai_key(line: &str) -> Finding {
    let echo = line
        .split("Incorrect API key provided:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .map(|echo| echo.trim_end_matches(['.', ',', '"', '\'']))
        .unwrap_or_default();
    let visible: String = echo.chars().filter(|c| *c != '*').collect();
    let provider = Some("openai");
    if echo.starts_with("sk-ant-") {
        return (
            Cause::ProviderMismatch,
            provider,
            "an Anthropic key (sk-ant-...) was sent to OpenAI: give the OpenAI client an OpenAI \
             key, or use an Anthropic client"
                .to_owned(),
        );
    }
    if echo.starts_with("sk-or-") {
        return (
            Cause::ProviderMismatch,
            provider,
            "an OpenRouter key (sk-or-...) was sent to api.openai.com: set the client's base URL \
             to https://openrouter.ai/api/v1, or use an OpenAI key"
                .to_owned(),
        );
    }
    if echo.starts_with("AIza") {
        return (
            Cause::ProviderMismatch,
            provider,
            "a Google API key (AIza...) was sent to OpenAI: use Gemini's endpoint for it, or an \
             OpenAI key"
                .to_owned(),
        );
    }
    let hex_length = echo.len() == 32 || echo.len() == 84;
    if hex_length
        && visible.len() >= 8
        && visible.chars().all(|c| c.is_ascii_hexdigit() || c == '*')
        && !echo.starts_with("sk-")
    {
        return (
            Cause::ProviderMismatch,
            provider,
            "an Azure OpenAI key (32 hex digits) was sent to api.openai.com: use an Azure client \
             with the resource's endpoint (https://RESOURCE.openai.azure.com), or an OpenAI key"
                .to_owned(),
        );
    }
    if echo.starts_with("http") {
        return (
            Cause::InvalidKey,
            provider,
            "a URL was sent as the key: the key and endpoint variables are swapped; put the key \
             in OPENAI_API_KEY and the URL in OPENAI_BASE_URL"
                .to_owned(),
        );
    }
    let upper = |text: &str| {
        text.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '*')
    };
    if !echo.is_empty() && upper(echo) && echo.contains('_') {
        if echo.starts_with("YOUR") || echo.contains("XXX") || echo.starts_with("REPLACE") {
            return (
                Cause::InvalidKey,
                provider,
                "a placeholder from an example (YOUR_..._KEY) was sent as the key: set the real \
                 key where the process reads it"
                    .to_owned(),
            );
        }
        if echo.ends_with("KEY") || echo.ends_with("TOKEN") {
            return (
                Cause::VariableNameAsKey,
                provider,
                "the variable's name was sent as the key (the literal text OPENAI_API_KEY, say): \
                 the code or config holds the name where it should read the variable's value, \
                 e.g. api_key=\"OPENAI_API_KEY\" instead of os.environ[\"OPENAI_API_KEY\"]"
                    .to_owned(),
            );
        }
    }
    (
        Cause::InvalidKey,
        provider,
        "OpenAI refused the key: it was revoked, mistyped, or is an old value still held by \
         this process or replica; set the current key where the process reads it and restart \
         the processes that read it at start-up"
            .to_owned(),
    )
}

/// The line, trimmed and at most 240 characters, with every key-shaped word masked.
fn evidence(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut word = String::new();
    let is_word = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '*' | '.');
    for c in line.trim().chars().chain(std::iter::once('\n')) {
        if is_word(c) {
            word.push(c);
            continue;
        }
        out.push_str(&mask(&word));
        word.clear();
        if c != '\n' {
            out.push(c);
        }
    }
    if out.chars().count() > 240 {
        out = out.chars().take(239).collect::<String>() + "…";
    }
    out
}

/// A key-shaped word, or an echo of one, as its published prefix and `[masked]`.
fn mask(word: &str) -> String {
    let trimmed = word.trim_end_matches('.');
    let suffix = &word[trimmed.len()..];
    let echo = trimmed.contains("***");
    let shaped = looks_like_credential(trimmed)
        || KeyShape::of(trimmed).family().is_some()
        || (echo && trimmed.len() >= 8);
    if !shaped || trimmed.len() < 8 {
        return word.to_owned();
    }
    let prefix = [
        "sk-proj-",
        "sk-svcacct-",
        "sk-ant-",
        "sk-or-v1-",
        "sk-",
        "AIza",
    ]
    .iter()
    .find(|prefix| trimmed.starts_with(**prefix))
    .copied()
    .unwrap_or("");
    format!("{prefix}[masked]{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_keeps_the_prefix_and_drops_the_rest() {
        assert_eq!(
            mask("sk-proj-abcDEF0123456789abcdefXYZ"),
            "sk-proj-[masked]"
        );
        assert_eq!(mask("sk-VKMIs*******************wjh3."), "sk-[masked].");
        assert_eq!(mask("04e0e844********************2687"), "[masked]");
        assert_eq!(mask("AuthenticationError"), "AuthenticationError");
        assert_eq!(mask("OPENAI_API_KEY"), "OPENAI_API_KEY");
    }

    #[test]
    fn a_repeated_failure_nearby_is_one_diagnosis() {
        let text = "openai.AuthenticationError: Error code: 401 - {'error': {'message': \"You didn't provide an API key.\"}}\n\
                    raise self._make_status_error_from_response(err.response) from None\n\
                    openai.AuthenticationError: Error code: 401 - {'error': {'message': \"You didn't provide an API key.\"}}\n";
        let found = explain(text);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].line, 1);
    }
}
