//! What the stand-in answers: a default reply that depends only on the request, or the first
//! rule of a script that matches (for tool calls, approvals after N turns, agent-specific text).
//!
//! A script is TOML:
//!
//! ```toml
//! [[rule]]
//! system_contains = "critic"          # optional: the system message contains this
//! last_contains = "weather"           # optional: the last message contains this
//! last_role = "tool"                  # optional: user, assistant or tool
//! min_messages = 4                    # optional: at least this many non-system messages
//! reply = "APPROVE"
//! tool_calls = [{ name = "get_weather", arguments = '{"city": "Paris"}' }]
//! ```

use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// A request as the reply rules see it, whatever surface it came through.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Conversation {
    /// System text, joined.
    pub system: String,
    /// Non-system messages: role (`user`, `assistant`, `tool`) and text.
    pub messages: Vec<(String, String)>,
}

impl Conversation {
    /// Words in the whole request: the prompt's token count, roughly and deterministically.
    pub fn prompt_tokens(&self) -> u64 {
        let words = |text: &str| text.split_whitespace().count() as u64;
        words(&self.system)
            + self
                .messages
                .iter()
                .map(|(_, text)| words(text))
                .sum::<u64>()
    }
}

/// What to answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Text.
    pub content: String,
    /// Tool calls: name and JSON arguments.
    pub tool_calls: Vec<(String, String)>,
}

impl Reply {
    /// Words written: the completion's token count.
    pub fn completion_tokens(&self) -> u64 {
        let count = self.content.split_whitespace().count()
            + self
                .tool_calls
                .iter()
                .map(|(_, args)| args.split_whitespace().count().max(1))
                .sum::<usize>();
        count.max(1) as u64
    }
}

/// A scripted rule.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The system message contains this.
    #[serde(default)]
    pub system_contains: Option<String>,
    /// The last message contains this.
    #[serde(default)]
    pub last_contains: Option<String>,
    /// The last message's role.
    #[serde(default)]
    pub last_role: Option<String>,
    /// At least this many non-system messages.
    #[serde(default)]
    pub min_messages: Option<usize>,
    /// The text to answer.
    #[serde(default)]
    pub reply: String,
    /// Tool calls to make.
    #[serde(default)]
    pub tool_calls: Vec<ScriptedCall>,
}

/// A scripted tool call.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ScriptedCall {
    /// The tool.
    pub name: String,
    /// Its arguments, as JSON text.
    #[serde(default = "empty_object")]
    pub arguments: String,
}

fn empty_object() -> String {
    "{}".to_owned()
}

/// Rules, tried in order.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// The rules.
    #[serde(default, rename = "rule")]
    pub rules: Vec<Rule>,
}

/// A script file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("script {path}: {reason}")]
pub struct ScriptError {
    path: String,
    reason: String,
}

impl Script {
    /// Reads a script file.
    pub fn load(path: &Path) -> Result<Self, ScriptError> {
        let fail = |reason: String| ScriptError {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.kind().to_string()))?;
        Self::parse(&text).map_err(fail)
    }

    /// Parses script text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let script: Script = toml::from_str(text).map_err(|e| e.to_string())?;
        for (index, rule) in script.rules.iter().enumerate() {
            for call in &rule.tool_calls {
                if serde_json::from_str::<serde_json::Value>(&call.arguments).is_err() {
                    return Err(format!(
                        "rule {}: tool call {} has arguments that are not JSON",
                        index + 1,
                        call.name
                    ));
                }
            }
        }
        Ok(script)
    }

    /// The reply for `conversation`: the first matching rule's, or the default.
    pub fn reply(&self, conversation: &Conversation) -> Reply {
        self.rules
            .iter()
            .find(|rule| rule.matches(conversation))
            .map(|rule| Reply {
                content: rule.reply.clone(),
                tool_calls: rule
                    .tool_calls
                    .iter()
                    .map(|c| (c.name.clone(), c.arguments.clone()))
                    .collect(),
            })
            .unwrap_or_else(|| default_reply(conversation))
    }
}

impl Rule {
    fn matches(&self, conversation: &Conversation) -> bool {
        let last = conversation.messages.last();
        self.system_contains
            .as_ref()
            .is_none_or(|text| conversation.system.contains(text.as_str()))
            && self
                .last_contains
                .as_ref()
                .is_none_or(|text| last.is_some_and(|(_, content)| content.contains(text.as_str())))
            && self
                .last_role
                .as_ref()
                .is_none_or(|role| last.is_some_and(|(r, _)| r == role))
            && self
                .min_messages
                .is_none_or(|min| conversation.messages.len() >= min)
    }
}

/// A reply that depends only on the request: a digest of the conversation and the start of the
/// last message.
pub fn default_reply(conversation: &Conversation) -> Reply {
    let mut hasher = Sha256::new();
    hasher.update(conversation.system.as_bytes());
    for (role, text) in &conversation.messages {
        hasher.update(role.as_bytes());
        hasher.update([0]);
        hasher.update(text.as_bytes());
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    let last: String = conversation
        .messages
        .last()
        .map(|(_, text)| {
            text.split_whitespace()
                .take(12)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    Reply {
        content: format!(
            "Stand-in reply {:02x}{:02x}{:02x}{:02x} to: {last}",
            digest[0], digest[1], digest[2], digest[3]
        ),
        tool_calls: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conversation(system: &str, messages: &[(&str, &str)]) -> Conversation {
        Conversation {
            system: system.to_owned(),
            messages: messages
                .iter()
                .map(|(r, t)| ((*r).to_owned(), (*t).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn the_default_reply_depends_only_on_the_request() {
        let a = default_reply(&conversation("s", &[("user", "hello there")]));
        assert_eq!(
            a,
            default_reply(&conversation("s", &[("user", "hello there")]))
        );
        assert_ne!(
            a,
            default_reply(&conversation("t", &[("user", "hello there")]))
        );
        assert!(a.content.ends_with("to: hello there"));
    }

    #[test]
    fn rules_match_in_order() {
        let script = Script::parse(
            r#"
            [[rule]]
            system_contains = "critic"
            min_messages = 3
            reply = "APPROVE"

            [[rule]]
            last_role = "tool"
            reply = "It is sunny."

            [[rule]]
            last_contains = "weather"
            tool_calls = [{ name = "get_weather", arguments = '{"city": "Paris"}' }]
            "#,
        )
        .unwrap();
        let weather = script.reply(&conversation("writer", &[("user", "weather in Paris?")]));
        assert_eq!(
            weather.tool_calls,
            [("get_weather".to_owned(), "{\"city\": \"Paris\"}".to_owned())]
        );
        let after_tool = script.reply(&conversation(
            "writer",
            &[("user", "weather?"), ("assistant", ""), ("tool", "sunny")],
        ));
        assert_eq!(after_tool.content, "It is sunny.");
        let early = script.reply(&conversation("critic", &[("user", "draft")]));
        assert!(early.content.starts_with("Stand-in reply"));
        let late = script.reply(&conversation(
            "critic",
            &[("user", "a"), ("assistant", "b"), ("user", "c")],
        ));
        assert_eq!(late.content, "APPROVE");
    }

    #[test]
    fn bad_scripts_are_refused() {
        assert!(
            Script::parse("[[rule]]\nreplly = \"x\"\n")
                .unwrap_err()
                .contains("replly")
        );
        assert!(
            Script::parse("[[rule]]\ntool_calls = [{ name = \"t\", arguments = \"{\" }]\n")
                .unwrap_err()
                .contains("not JSON")
        );
    }
}
