//! Fingerprints and shapes: what stands in for a key everywhere a key would otherwise be shown.
//!
//! A [`Fingerprint`] is `sha256:` and the first 8 hex digits of the SHA-256 of the exact key
//! bytes: enough to tell two keys apart across replicas, far too little to recover one. A
//! [`KeyShape`] names the family a key looks like from its published format (prefix, length,
//! alphabet), so that a finding can say "an Azure-shaped key" without quoting the key.

use std::fmt;

use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};

/// `sha256:` followed by the first 8 hex digits of the SHA-256 of a key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u8; 4]);

impl Fingerprint {
    /// The fingerprint of `key`'s exact bytes (the caller trims first).
    pub fn of(key: &str) -> Self {
        let digest = Sha256::digest(key.as_bytes());
        Self([digest[0], digest[1], digest[2], digest[3]])
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0;
        write!(formatter, "sha256:{a:02x}{b:02x}{c:02x}{d:02x}")
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, formatter)
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Which provider issues keys of a given shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFamily {
    /// OpenAI (`sk-`, `sk-proj-`, `sk-svcacct-`, `sk-admin-`).
    OpenAi,
    /// Azure OpenAI and Azure AI services (32 hex digits, or the 84-character annotated format).
    Azure,
    /// Anthropic (`sk-ant-`).
    Anthropic,
    /// Google AI Studio / Gemini (`AIza` and 35 more).
    Google,
    /// OpenRouter (`sk-or-v1-`).
    OpenRouter,
    /// Groq (`gsk_`).
    Groq,
    /// xAI (`xai-`).
    Xai,
    /// A JSON Web Token, such as a Microsoft Entra access token.
    Jwt,
}

impl KeyFamily {
    /// How a message names the family.
    pub fn describe(self) -> &'static str {
        match self {
            KeyFamily::OpenAi => "an OpenAI key",
            KeyFamily::Azure => "an Azure key",
            KeyFamily::Anthropic => "an Anthropic key",
            KeyFamily::Google => "a Google (Gemini) API key",
            KeyFamily::OpenRouter => "an OpenRouter key",
            KeyFamily::Groq => "a Groq key",
            KeyFamily::Xai => "an xAI key",
            KeyFamily::Jwt => "a bearer token (JWT)",
        }
    }
}

/// The published shape a key matches. Shapes are labels, never secrets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyShape {
    /// `sk-proj-…`
    OpenAiProject,
    /// `sk-svcacct-…`
    OpenAiServiceAccount,
    /// `sk-admin-…`
    OpenAiAdmin,
    /// Any other `sk-…` key.
    OpenAiUser,
    /// `sk-or-v1-…`
    OpenRouter,
    /// `sk-ant-api03-…`
    AnthropicApi,
    /// `sk-ant-admin01-…`
    AnthropicAdmin,
    /// `sk-ant-oat01-…` and other `sk-ant-` tokens.
    AnthropicOther,
    /// 32 hexadecimal digits (the classic Azure key).
    AzureHex,
    /// The 84-character annotated Azure key (`JQQJ9` at offset 52).
    AzureAnnotated,
    /// `AIza` followed by 35 characters.
    GoogleApi,
    /// `gsk_…`
    Groq,
    /// `xai-…`
    Xai,
    /// Three base64url parts separated by dots, the first starting `eyJ`.
    Jwt,
    /// None of the published shapes.
    Unrecognised,
}

impl KeyShape {
    /// Classifies a key by prefix, alphabet and length. Never fails; never looks at more than shape.
    pub fn of(key: &str) -> Self {
        if !key.is_ascii() {
            return KeyShape::Unrecognised;
        }
        let bytes = key.as_bytes();
        if let Some(rest) = key.strip_prefix("sk-ant-") {
            return if rest.starts_with("api") {
                KeyShape::AnthropicApi
            } else if rest.starts_with("admin") {
                KeyShape::AnthropicAdmin
            } else {
                KeyShape::AnthropicOther
            };
        }
        if key.starts_with("sk-or-") {
            return KeyShape::OpenRouter;
        }
        if key.starts_with("sk-proj-") {
            return KeyShape::OpenAiProject;
        }
        if key.starts_with("sk-svcacct-") {
            return KeyShape::OpenAiServiceAccount;
        }
        if key.starts_with("sk-admin-") {
            return KeyShape::OpenAiAdmin;
        }
        if key.len() > 3 && key.starts_with("sk-") {
            return KeyShape::OpenAiUser;
        }
        if key.len() == 39 && key.starts_with("AIza") {
            return KeyShape::GoogleApi;
        }
        if key.starts_with("gsk_") {
            return KeyShape::Groq;
        }
        if key.starts_with("xai-") {
            return KeyShape::Xai;
        }
        if key.len() == 32 && bytes.iter().all(u8::is_ascii_hexdigit) {
            return KeyShape::AzureHex;
        }
        if key.len() >= 84
            && bytes.iter().all(u8::is_ascii_alphanumeric)
            && &key[52..57] == "JQQJ9"
            && matches!(bytes[57], b'9' | b'D' | b'H')
        {
            return KeyShape::AzureAnnotated;
        }
        if key.starts_with("eyJ") && key.split('.').count() == 3 {
            return KeyShape::Jwt;
        }
        KeyShape::Unrecognised
    }

    /// The family that issues keys of this shape, when the shape is a published one.
    pub fn family(self) -> Option<KeyFamily> {
        Some(match self {
            KeyShape::OpenAiProject
            | KeyShape::OpenAiServiceAccount
            | KeyShape::OpenAiAdmin
            | KeyShape::OpenAiUser => KeyFamily::OpenAi,
            KeyShape::OpenRouter => KeyFamily::OpenRouter,
            KeyShape::AnthropicApi | KeyShape::AnthropicAdmin | KeyShape::AnthropicOther => {
                KeyFamily::Anthropic
            }
            KeyShape::AzureHex | KeyShape::AzureAnnotated => KeyFamily::Azure,
            KeyShape::GoogleApi => KeyFamily::Google,
            KeyShape::Groq => KeyFamily::Groq,
            KeyShape::Xai => KeyFamily::Xai,
            KeyShape::Jwt => KeyFamily::Jwt,
            KeyShape::Unrecognised => return None,
        })
    }

    /// A stable kebab-case label, shown before a fingerprint (`openai-project-key sha256:…`).
    pub fn label(self) -> &'static str {
        match self {
            KeyShape::OpenAiProject => "openai-project-key",
            KeyShape::OpenAiServiceAccount => "openai-service-account-key",
            KeyShape::OpenAiAdmin => "openai-admin-key",
            KeyShape::OpenAiUser => "openai-key",
            KeyShape::OpenRouter => "openrouter-key",
            KeyShape::AnthropicApi => "anthropic-key",
            KeyShape::AnthropicAdmin => "anthropic-admin-key",
            KeyShape::AnthropicOther => "anthropic-token",
            KeyShape::AzureHex => "azure-key",
            KeyShape::AzureAnnotated => "azure-key-84",
            KeyShape::GoogleApi => "google-api-key",
            KeyShape::Groq => "groq-key",
            KeyShape::Xai => "xai-key",
            KeyShape::Jwt => "jwt",
            KeyShape::Unrecognised => "unrecognised",
        }
    }
}

impl Serialize for KeyShape {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.label())
    }
}

/// Whether a string looks like a credential rather than a name: any published key shape, or a
/// long run of mixed-case letters and digits. Used before echoing any user-supplied text.
pub fn looks_like_credential(text: &str) -> bool {
    if KeyShape::of(text) != KeyShape::Unrecognised {
        return true;
    }
    let has_upper = text.bytes().any(|b| b.is_ascii_uppercase());
    let has_lower = text.bytes().any(|b| b.is_ascii_lowercase());
    let has_digit = text.bytes().any(|b| b.is_ascii_digit());
    text.len() >= 20 && has_upper && has_lower && has_digit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_sha256_prefix_of_the_exact_bytes() {
        let fingerprint = Fingerprint::of("sk-test");
        let shown = fingerprint.to_string();
        assert!(shown.starts_with("sha256:"));
        assert_eq!(shown.len(), "sha256:".len() + 8);
        assert_eq!(Fingerprint::of("abc").to_string(), "sha256:ba7816bf");
        assert_ne!(Fingerprint::of("abc"), Fingerprint::of("abc\n"));
        assert_eq!(
            serde_json::to_string(&Fingerprint::of("abc")).unwrap(),
            "\"sha256:ba7816bf\""
        );
    }

    #[test]
    fn shapes_follow_the_published_formats() {
        // 52 random characters, then the JQQJ99 marker, then the rest of the 84.
        let azure_84 = format!("{}JQQJ99{}", "a1B2".repeat(13), "X".repeat(26));
        let azure_84 = azure_84.as_str();
        let cases = [
            ("sk-proj-abc_DEF-123T3BlbkFJxyz", KeyShape::OpenAiProject),
            ("sk-svcacct-abcdef", KeyShape::OpenAiServiceAccount),
            ("sk-admin-abcdef", KeyShape::OpenAiAdmin),
            (
                "sk-abcdefghijklmnopqrstT3BlbkFJabcdefghijklmnopqrst",
                KeyShape::OpenAiUser,
            ),
            ("sk-or-v1-0123456789abcdef", KeyShape::OpenRouter),
            ("sk-ant-api03-abcdefAA", KeyShape::AnthropicApi),
            ("sk-ant-admin01-abcdefAA", KeyShape::AnthropicAdmin),
            ("sk-ant-oat01-abcdef", KeyShape::AnthropicOther),
            ("04e0e8440123456789abcdef01232687", KeyShape::AzureHex),
            (azure_84, KeyShape::AzureAnnotated),
            (
                "AIzaSyA1234567890abcdefghijklmnopqrstuv",
                KeyShape::GoogleApi,
            ),
            ("gsk_abcdef", KeyShape::Groq),
            ("xai-abcdef", KeyShape::Xai),
            ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", KeyShape::Jwt),
            ("hello-world", KeyShape::Unrecognised),
            ("sk-", KeyShape::Unrecognised),
            ("0123456789abcdef0123456789abcdeg", KeyShape::Unrecognised),
            ("ключ", KeyShape::Unrecognised),
        ];
        for (key, expected) in cases {
            assert_eq!(KeyShape::of(key), expected, "{key}");
        }
        assert_eq!(azure_84.len(), 84);
    }

    #[test]
    fn families_group_shapes() {
        assert_eq!(KeyShape::OpenAiProject.family(), Some(KeyFamily::OpenAi));
        assert_eq!(KeyShape::AzureAnnotated.family(), Some(KeyFamily::Azure));
        assert_eq!(KeyShape::AnthropicApi.family(), Some(KeyFamily::Anthropic));
        assert_eq!(KeyShape::Unrecognised.family(), None);
    }

    #[test]
    fn credential_lookalikes_are_recognised_and_names_are_not() {
        assert!(looks_like_credential("sk-proj-abc"));
        assert!(looks_like_credential("Zq8vN3kL0pX9tYzA4cE8fG1h"));
        assert!(!looks_like_credential("gpt-4o-mini-2024-07-18"));
        assert!(!looks_like_credential("writer"));
        assert!(!looks_like_credential("OPENAI_API_KEY"));
    }
}
