//! agentfleet's config file and credential layer.
//!
//! This crate is the only code in agentfleet that reads the process environment or secret files
//! (clippy's `disallowed-methods` and a repository test keep it so). It turns `agentfleet.toml`
//! into a validated [`Config`] whose credentials are *sources* (a variable, a file, a dotenv
//! entry), never strings, and it [`check`]s those sources in the process that will use them:
//! missing, empty, placeholder, whitespace, another provider's key, an endpoint that does not
//! fit. Keys are held in [`Secret`]s and shown only as [`Fingerprint`]s.
//!
//! ```text
//! locate → load (parse + validate) → check (resolve + rules) → CheckReport { key: Secret, ... }
//! ```

pub mod check;
pub mod credential;
pub mod dotenv;
pub mod env;
pub mod error;
pub mod fingerprint;
pub mod model;
pub mod parse;
pub mod problem;
pub mod resolve;
pub mod rules;
pub mod secret;
pub mod token;

use std::path::{Path, PathBuf};

pub use check::{CheckReport, ProviderCheck, check, check_provider};
pub use credential::{CurrentKey, LiveCredential};
pub use env::{Environment, FixedEnv, ProcessEnv};
pub use error::{ConfigError, Diagnostic};
pub use fingerprint::{Fingerprint, KeyFamily, KeyShape};
pub use model::{
    Agent, Config, CredentialSource, FleetSettings, KeySetting, Provider, ProviderKind,
    QueueSettings, Setting, Team, TeamMode, Termination, Tool, Users,
};
pub use problem::{Problem, ProblemCode, Severity};
pub use secret::Secret;
pub use token::TokenSource;

/// The variable that names the config file when `--config` is not given.
pub const CONFIG_VARIABLE: &str = "AGENTFLEET_CONFIG";

/// The file looked for in the working directory when nothing else names one.
pub const DEFAULT_CONFIG_FILE: &str = "agentfleet.toml";

/// Which config file to use and what named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigLocation {
    /// The file.
    pub path: PathBuf,
    /// `--config`, `AGENTFLEET_CONFIG` or `./agentfleet.toml`.
    pub named_by: &'static str,
}

/// Finds the config file: `flag` (from `--config`), then `AGENTFLEET_CONFIG`, then
/// `./agentfleet.toml`. A file named by the flag or the variable is used even if it does not
/// exist, so that reading it reports the precise problem.
pub fn locate(flag: Option<&Path>, env: &dyn Environment) -> Result<ConfigLocation, ConfigError> {
    if let Some(path) = flag {
        return Ok(ConfigLocation {
            path: path.to_owned(),
            named_by: "--config",
        });
    }
    if let Some(path) = env.get(CONFIG_VARIABLE).filter(|path| !path.is_empty()) {
        return Ok(ConfigLocation {
            path: PathBuf::from(path),
            named_by: CONFIG_VARIABLE,
        });
    }
    let default = PathBuf::from(DEFAULT_CONFIG_FILE);
    if default.exists() {
        return Ok(ConfigLocation {
            path: default,
            named_by: "the working directory",
        });
    }
    Err(ConfigError::NotFound)
}

/// Reads and validates the config file at `location`.
pub fn load(location: &ConfigLocation) -> Result<Config, ConfigError> {
    let text =
        std::fs::read_to_string(&location.path).map_err(|error| ConfigError::Unreadable {
            path: location.path.clone(),
            named_by: location.named_by,
            reason: match error.kind() {
                std::io::ErrorKind::NotFound => "no such file".to_owned(),
                std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
                std::io::ErrorKind::InvalidData => "not UTF-8 text".to_owned(),
                other => other.to_string(),
            },
        })?;
    parse::parse(&location.path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_then_the_variable() {
        let env = FixedEnv::new().with(CONFIG_VARIABLE, "/from/env.toml");
        let found = locate(Some(Path::new("/from/flag.toml")), &env).unwrap();
        assert_eq!(
            (found.path.as_path(), found.named_by),
            (Path::new("/from/flag.toml"), "--config")
        );
        let found = locate(None, &env).unwrap();
        assert_eq!(
            (found.path.as_path(), found.named_by),
            (Path::new("/from/env.toml"), CONFIG_VARIABLE)
        );
    }

    #[test]
    fn a_named_file_that_does_not_exist_says_who_named_it() {
        let location = ConfigLocation {
            path: "/nonexistent/agentfleet.toml".into(),
            named_by: CONFIG_VARIABLE,
        };
        let error = load(&location).unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot read config file /nonexistent/agentfleet.toml (named by AGENTFLEET_CONFIG): no such file"
        );
    }
}
