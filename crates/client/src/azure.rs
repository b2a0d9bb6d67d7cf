//! Azure OpenAI: OpenAI's wire format at Azure's URLs, with the `api-key` header (or an Entra
//! bearer token), and Azure's own error bodies and their meanings.
//!
//! Two URL shapes: the classic `{endpoint}/openai/deployments/{deployment}/chat/completions
//! ?api-version=...`, and the v1 path `{endpoint}/openai/v1/chat/completions`, which needs no
//! api-version and takes the model in the body.

use agentfleet_config::KeyFamily;

use crate::error::{ErrorBody, ErrorKind, Sent};
use crate::openai::Probe;

/// The URLs a provider's settings give.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AzureUrls {
    pub chat: String,
    pub probe: Probe,
}

/// The chat and probe URLs for `endpoint` (the resource root, or the root and `/openai/v1`).
pub(crate) fn urls(endpoint: &str, deployment: &str, api_version: Option<&str>) -> AzureUrls {
    let root = endpoint.trim_end_matches('/');
    if let Some(base) = v1_base(root) {
        return AzureUrls {
            chat: format!("{base}/chat/completions"),
            probe: Probe::List(format!("{base}/models")),
        };
    }
    let version = api_version.unwrap_or("2024-10-21");
    AzureUrls {
        chat: format!(
            "{root}/openai/deployments/{}/chat/completions?api-version={}",
            encode(deployment),
            encode(version)
        ),
        probe: Probe::TinyChat,
    }
}

/// `…/openai/v1` when the endpoint is on the v1 path.
fn v1_base(root: &str) -> Option<&str> {
    let index = root.find("/openai/v1")?;
    Some(&root[..index + "/openai/v1".len()])
}

/// Percent-encodes a path segment or query value.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Hints for Azure's error bodies.
pub(crate) fn explain(body: &ErrorBody, sent: &Sent, kind: ErrorKind) -> Option<String> {
    let sent_openai_key = sent.shape.and_then(|shape| shape.family()) == Some(KeyFamily::OpenAi);
    if body.mentions("invalid subscription key or wrong api endpoint") {
        let mut hint =
            "the key belongs to another Azure resource or region, or it is an OpenAI key: \
                        use this resource's KEY1 or KEY2 with its own endpoint"
                .to_owned();
        if sent_openai_key {
            hint.push_str(" (the key sent has the shape of an OpenAI key)");
        }
        return Some(hint);
    }
    if body.mentions("access token is missing, invalid, audience is incorrect") {
        return Some(
            "Azure got a bearer token it cannot accept: a key sent as Authorization: Bearer (keys go \
             in the api-key header), or an Entra token that has expired or has the wrong audience \
             (it must be https://cognitiveservices.azure.com)"
                .to_owned(),
        );
    }
    if body.mentions("principal does not have access") || body.mentions("permissiondenied") {
        return Some(
            "the Entra identity lacks a role on this resource: assign Cognitive Services OpenAI User"
                .to_owned(),
        );
    }
    if kind == ErrorKind::NotFound
        && (body.mentions("deploymentnotfound")
            || body.mentions("deployment for this resource does not exist"))
    {
        return Some("no deployment of that name on this resource: check deployment against the Azure portal".to_owned());
    }
    if body.mentions("virtual network")
        || body.mentions("firewall")
        || body.mentions("public access is disabled")
    {
        return Some(
            "the resource's network rules block this caller: a network problem, not a key problem"
                .to_owned(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_and_v1_urls() {
        let classic = urls(
            "https://res.openai.azure.com/",
            "gpt 4o",
            Some("2024-10-21"),
        );
        assert_eq!(
            classic.chat,
            "https://res.openai.azure.com/openai/deployments/gpt%204o/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(classic.probe, Probe::TinyChat);
        let v1 = urls("https://res.openai.azure.com/openai/v1/", "ignored", None);
        assert_eq!(
            v1.chat,
            "https://res.openai.azure.com/openai/v1/chat/completions"
        );
        assert_eq!(
            v1.probe,
            Probe::List("https://res.openai.azure.com/openai/v1/models".into())
        );
    }

    #[test]
    fn azure_bodies_get_their_meaning() {
        let sent = Sent {
            provider: "azure".into(),
            fingerprint: None,
            shape: Some(agentfleet_config::KeyShape::OpenAiProject),
        };
        let body = ErrorBody {
            message: "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.".into(),
            codes: vec!["401".into()],
        };
        let hint = explain(&body, &sent, ErrorKind::AuthRejected).unwrap();
        assert!(hint.contains("another Azure resource") && hint.contains("shape of an OpenAI key"));
        let body = ErrorBody { message: "Unauthorized. Access token is missing, invalid, audience is incorrect (https://cognitiveservices.azure.com), or have expired.".into(), codes: vec!["401".into()] };
        assert!(
            explain(&body, &sent, ErrorKind::AuthRejected)
                .unwrap()
                .contains("api-key header")
        );
    }
}
