//! The process environment, behind a trait: the one place in agentfleet that reads it.
//!
//! Every other crate is denied `std::env::var` and friends by clippy (`clippy.toml`), and a
//! repository test checks the same, so a credential can only enter a process through this
//! crate's sources. Tests substitute a [`FixedEnv`] for the real one.

use std::collections::BTreeMap;
use std::ffi::OsString;

/// Something that answers "what is variable NAME in this process?".
pub trait Environment {
    /// The variable's value, or `None` when it is not set.
    fn get(&self, name: &str) -> Option<OsString>;
}

/// The environment of the running process.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessEnv;

impl Environment for ProcessEnv {
    #[allow(clippy::disallowed_methods)] // This is the one sanctioned reader.
    fn get(&self, name: &str) -> Option<OsString> {
        std::env::var_os(name)
    }
}

/// A fixed set of variables, for tests and for building a child's environment explicitly.
#[derive(Clone, Default)]
pub struct FixedEnv {
    variables: BTreeMap<String, OsString>,
}

impl FixedEnv {
    /// An environment with no variables.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a variable, builder style.
    pub fn with(mut self, name: &str, value: impl Into<OsString>) -> Self {
        self.variables.insert(name.to_owned(), value.into());
        self
    }
}

impl std::fmt::Debug for FixedEnv {
    /// Lists the names only: values may be credentials.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_set()
            .entries(self.variables.keys())
            .finish()
    }
}

impl Environment for FixedEnv {
    fn get(&self, name: &str) -> Option<OsString> {
        self.variables.get(name).cloned()
    }
}

/// The environment of a child process built from an allow-list: each listed variable that is
/// set here, and nothing else. This is how tools and workers start without inheriting provider
/// credentials by accident.
pub fn allowed(env: &dyn Environment, names: &[String]) -> Vec<(String, OsString)> {
    names
        .iter()
        .filter_map(|name| env.get(name).map(|value| (name.clone(), value)))
        .collect()
}

/// Whether `name` can be an environment variable's name: non-empty, no `=`, no NUL.
pub fn is_valid_variable_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('=') && !name.contains('\0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_env_answers_what_it_was_given_and_debug_hides_values() {
        let env = FixedEnv::new().with("A", "secret-value");
        assert_eq!(env.get("A"), Some(OsString::from("secret-value")));
        assert_eq!(env.get("B"), None);
        assert!(!format!("{env:?}").contains("secret-value"));
    }

    #[test]
    fn a_child_environment_holds_the_allowed_variables_only() {
        let env = FixedEnv::new()
            .with("PATH", "/bin")
            .with("OPENAI_API_KEY", "sk-secret");
        let child = allowed(&env, &["PATH".to_owned(), "UNSET".to_owned()]);
        assert_eq!(child, [("PATH".to_owned(), OsString::from("/bin"))]);
    }

    #[test]
    fn variable_names_are_checked() {
        assert!(is_valid_variable_name("OPENAI_API_KEY"));
        assert!(!is_valid_variable_name(""));
        assert!(!is_valid_variable_name("A=B"));
    }
}
