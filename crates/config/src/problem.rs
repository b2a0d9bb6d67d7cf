//! Problems found with a provider's credential or endpoint, with stable codes.
//!
//! Codes are part of the JSON contract of `agentfleet check` and of the worker's preflight:
//! scripts match on them, so they never change meaning.

use std::fmt;

use serde::Serialize;

/// What kind of problem, as a stable kebab-case code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemCode {
    /// The variable, file or dotenv entry does not exist.
    Missing,
    /// It exists and is empty.
    Empty,
    /// It holds a placeholder, a masked value or a variable's name instead of a key.
    Placeholder,
    /// The key's shape belongs to another provider than the one it is sent to.
    ProviderMismatch,
    /// The endpoint or base URL does not fit the provider kind or the Azure path.
    EndpointMismatch,
    /// The key contains whitespace or a line break.
    Whitespace,
    /// The key contains characters an HTTP header cannot carry.
    NonAscii,
    /// A trailing newline was trimmed from a file (a note).
    TrailingNewline,
    /// The key is written into the config file.
    LiteralSecret,
    /// The source exists but cannot be read: permission, a directory, a dangling link, bad syntax.
    Unreadable,
    /// Both `NAME` and `NAME_FILE` are set, so which one is meant is unclear.
    AmbiguousSource,
    /// A URL that came from a source is not an http(s) URL.
    InvalidUrl,
    /// The key would travel in clear text to a host off this machine.
    InsecureEndpoint,
    /// A bearer token has expired, or will before it could be used.
    ExpiredToken,
    /// `api_key_fallback` holds the same key as `api_key`, so it cannot help when that is refused.
    FallbackSameKey,
}

impl ProblemCode {
    /// The code as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemCode::Missing => "missing",
            ProblemCode::Empty => "empty",
            ProblemCode::Placeholder => "placeholder",
            ProblemCode::ProviderMismatch => "provider-mismatch",
            ProblemCode::EndpointMismatch => "endpoint-mismatch",
            ProblemCode::Whitespace => "whitespace",
            ProblemCode::NonAscii => "non-ascii",
            ProblemCode::TrailingNewline => "trailing-newline",
            ProblemCode::LiteralSecret => "literal-secret",
            ProblemCode::Unreadable => "unreadable",
            ProblemCode::AmbiguousSource => "ambiguous-source",
            ProblemCode::InvalidUrl => "invalid-url",
            ProblemCode::InsecureEndpoint => "insecure-endpoint",
            ProblemCode::ExpiredToken => "expired-token",
            ProblemCode::FallbackSameKey => "fallback-same-key",
        }
    }
}

impl fmt::Display for ProblemCode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// How much a problem matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nothing is wrong.
    Note,
    /// Probably wrong; work may still succeed.
    Warning,
    /// The credential is unusable: no work may start with it.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One finding about one provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Stable code.
    pub code: ProblemCode,
    /// How much it matters.
    pub severity: Severity,
    /// One line naming the variable or file, the provider and its users; never the value.
    pub message: String,
    /// What to do about it.
    pub fix: String,
}

impl Problem {
    /// An error.
    pub fn error(code: ProblemCode, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            code,
            severity: Severity::Error,
            message: message.into(),
            fix: fix.into(),
        }
    }

    /// A warning.
    pub fn warning(code: ProblemCode, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            code,
            severity: Severity::Warning,
            message: message.into(),
            fix: fix.into(),
        }
    }

    /// A note.
    pub fn note(code: ProblemCode, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            code,
            severity: Severity::Note,
            message: message.into(),
            fix: fix.into(),
        }
    }
}
