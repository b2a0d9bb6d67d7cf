//! agentfleet's model clients: one [`ModelClient`] trait, one module per provider.
//!
//! Clients are built inside the process (and runtime) that uses them, from credentials that
//! process resolved itself, and they ask the [`LiveCredential`] for the current key on every
//! request, so a rotated key needs no rebuilt client. A key only ever travels in its header,
//! marked sensitive; errors carry its fingerprint, never the key.
//!
//! ```text
//! ClientSpec (from a checked provider) ──build──► Arc<dyn ModelClient>
//!     openai.rs     OpenAI, OpenAI-compatible servers, the stand-in      Authorization: Bearer
//!     azure.rs      Azure OpenAI (classic deployments path, v1 path)      api-key
//!     anthropic.rs  Anthropic Messages                                    x-api-key
//! ```

// `ModelError` carries everything a caller acts on (kind, status, code, request id,
// fingerprint, hint) as plain fields. It only ever travels back from a network round trip, where
// moving 150 bytes is nothing, so it is not boxed for clippy's sake.
#![allow(clippy::result_large_err)]

mod anthropic;
mod azure;
pub mod error;
mod openai;
pub mod retry;
pub mod sse;
mod transport;
pub mod types;

use std::pin::Pin;
use std::sync::Arc;

use agentfleet_config::{LiveCredential, Provider, ProviderCheck, ProviderKind, TokenSource};
use futures_util::Stream;
use futures_util::future::BoxFuture;
use reqwest::header::{HeaderName, HeaderValue};

pub use anthropic::ANTHROPIC_VERSION;
pub use error::{ErrorKind, ModelError};
pub use retry::RetryPolicy;
pub use transport::ClientOptions;
pub use types::{
    ChatRequest, ChatResponse, FinishReason, Message, Role, StreamEvent, ToolCall, ToolDefinition,
    Usage,
};

/// A streamed reply: text and tool-call fragments, then [`StreamEvent::Finished`].
pub type ChatStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, ModelError>> + Send>>;

/// A model behind some provider's API.
pub trait ModelClient: Send + Sync + std::fmt::Debug {
    /// The provider's name in the config.
    fn provider(&self) -> &str;

    /// One reply, whole.
    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ModelError>>;

    /// One reply, as it is written.
    fn chat_stream<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatStream, ModelError>>;

    /// One cheap authenticated call, to prove the credential and endpoint work.
    fn probe(&self) -> BoxFuture<'_, Result<(), ModelError>>;
}

/// Everything needed to build a client for one provider, all of it already resolved.
#[derive(Clone, Debug)]
pub struct ClientSpec {
    /// The provider's name in the config.
    pub name: String,
    /// Its kind.
    pub kind: ProviderKind,
    /// The model (for Azure's classic path, the deployment if no model is set).
    pub model: String,
    /// `base_url`, or Azure's `endpoint`; `None` for the provider's public API.
    pub url: Option<String>,
    /// Azure's deployment.
    pub deployment: Option<String>,
    /// Azure's api-version.
    pub api_version: Option<String>,
    /// OpenAI's organization header.
    pub organization: Option<String>,
    /// OpenAI's project header.
    pub project: Option<String>,
    /// The key, if the provider takes one.
    pub credential: Option<Arc<LiveCredential>>,
    /// An Entra token source (Azure), sent as a bearer token instead of a key.
    pub token: Option<Arc<TokenSource>>,
}

impl ClientSpec {
    /// The spec of a provider that passed its check in this process.
    pub fn from_check(provider: &Provider, check: &ProviderCheck) -> Result<Self, BuildError> {
        if !check.is_usable() {
            return Err(BuildError::Unusable {
                provider: provider.name.clone(),
            });
        }
        Ok(Self {
            name: provider.name.clone(),
            kind: provider.kind,
            model: provider
                .model
                .clone()
                .or_else(|| provider.deployment.clone())
                .unwrap_or_else(|| "standin".to_owned()),
            url: check.url.clone(),
            deployment: provider.deployment.clone(),
            api_version: provider.api_version.clone(),
            organization: check.organization.clone(),
            project: check.project.clone(),
            credential: match check.token {
                Some(_) => None,
                None => check
                    .key
                    .clone()
                    .map(|key| Arc::new(LiveCredential::new(key))),
            },
            token: check.token.clone(),
        })
    }
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The provider's check found an error; run `agentfleet check`.
    #[error(
        "provider {provider} did not pass its credential check; run `agentfleet check` for why"
    )]
    Unusable {
        /// The provider.
        provider: String,
    },
    /// A provider that needs a URL has none (a `standin` provider before its server started).
    #[error("provider {provider} has no base_url to send requests to")]
    NoUrl {
        /// The provider.
        provider: String,
    },
    /// A header value (organization, project) cannot be sent.
    #[error("provider {provider}: {field} holds characters an HTTP header cannot carry")]
    BadHeader {
        /// The provider.
        provider: String,
        /// The setting.
        field: &'static str,
    },
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Builds the client for `spec`. Call it inside the runtime that will use the client.
pub fn build(spec: ClientSpec, options: ClientOptions) -> Result<Arc<dyn ModelClient>, BuildError> {
    let transport = transport::Transport::new(options)?;
    let ClientSpec {
        name,
        kind,
        model,
        url,
        deployment,
        api_version,
        organization,
        project,
        credential,
        token,
    } = spec;
    let key = |header| transport::Auth {
        credential: credential
            .clone()
            .map_or(transport::Credential::None, transport::Credential::Key),
        header,
    };
    let root = |default: &str| {
        url.clone()
            .unwrap_or_else(|| default.to_owned())
            .trim_end_matches('/')
            .to_owned()
    };
    let header = |field: &'static str,
                  value: &Option<String>|
     -> Result<Option<(HeaderName, HeaderValue)>, BuildError> {
        let Some(value) = value else { return Ok(None) };
        let value = HeaderValue::from_str(value).map_err(|_| BuildError::BadHeader {
            provider: name.clone(),
            field,
        })?;
        let header = if field == "organization" {
            "openai-organization"
        } else {
            "openai-project"
        };
        Ok(Some((HeaderName::from_static(header), value)))
    };
    let client: Arc<dyn ModelClient> = match kind {
        ProviderKind::OpenAi | ProviderKind::OpenAiCompatible | ProviderKind::Standin => {
            let base = match kind {
                ProviderKind::OpenAi => root("https://api.openai.com/v1"),
                ProviderKind::Standin => {
                    let Some(url) = &url else {
                        return Err(BuildError::NoUrl { provider: name });
                    };
                    format!("{}/v1", url.trim_end_matches('/'))
                }
                _ => {
                    let Some(url) = &url else {
                        return Err(BuildError::NoUrl { provider: name });
                    };
                    url.trim_end_matches('/').to_owned()
                }
            };
            let headers = [
                header("organization", &organization)?,
                header("project", &project)?,
            ]
            .into_iter()
            .flatten()
            .collect();
            Arc::new(openai::OpenAiClient {
                transport,
                model,
                chat_url: format!("{base}/chat/completions"),
                probe: openai::Probe::List(format!("{base}/models")),
                auth: key(transport::KeyHeader::Bearer),
                headers,
                token_limit: if kind == ProviderKind::OpenAi {
                    openai::TokenLimit::MaxCompletionTokens
                } else {
                    openai::TokenLimit::MaxTokens
                },
                explain: if kind == ProviderKind::OpenAi {
                    openai::explain
                } else {
                    openai::explain_compatible
                },
                name,
            })
        }
        ProviderKind::AzureOpenAi => {
            let Some(endpoint) = &url else {
                return Err(BuildError::NoUrl { provider: name });
            };
            let deployment = deployment.unwrap_or_else(|| model.clone());
            let urls = azure::urls(endpoint, &deployment, api_version.as_deref());
            Arc::new(openai::OpenAiClient {
                transport,
                model,
                chat_url: urls.chat,
                probe: urls.probe,
                auth: match token {
                    Some(token) => transport::Auth {
                        credential: transport::Credential::Token(token),
                        header: transport::KeyHeader::Bearer,
                    },
                    None => key(transport::KeyHeader::ApiKey),
                },
                headers: Vec::new(),
                token_limit: openai::TokenLimit::MaxTokens,
                explain: azure::explain,
                name,
            })
        }
        ProviderKind::Anthropic => {
            let base = root("https://api.anthropic.com");
            let base = base.strip_suffix("/v1").unwrap_or(&base).to_owned();
            Arc::new(anthropic::AnthropicClient {
                transport,
                model,
                base_url: base,
                auth: key(transport::KeyHeader::XApiKey),
                name,
            })
        }
    };
    Ok(client)
}
