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
pub use credential::{CurrentKey, LiveCredential, Reread};
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

/// The variable that names the queue's database when `--queue-url` is not given.
pub const QUEUE_URL_VARIABLE: &str = "AGENTFLEET_QUEUE_URL";

/// The queue's database URL, held as a secret: it may carry a password.
#[derive(Debug)]
pub struct QueueUrl {
    /// The URL.
    pub url: Secret,
    /// `--queue-url`, `AGENTFLEET_QUEUE_URL` or `[queue] url`.
    pub named_by: String,
}

/// The queue URL: `flag` (`--queue-url`), then `AGENTFLEET_QUEUE_URL`, then `[queue] url` of the
/// config (a relative SQLite path there is relative to the config file), then
/// `sqlite://agentfleet.db` in the working directory.
pub fn queue_url(
    config: Option<&Config>,
    flag: Option<&str>,
    env: &dyn Environment,
) -> Result<QueueUrl, String> {
    if let Some(url) = flag {
        return Ok(QueueUrl {
            url: Secret::new(url.to_owned()),
            named_by: "--queue-url".to_owned(),
        });
    }
    if let Some(url) = env.get(QUEUE_URL_VARIABLE).filter(|url| !url.is_empty()) {
        let url = url
            .into_string()
            .map_err(|_| format!("{QUEUE_URL_VARIABLE} is not valid UTF-8"))?;
        return Ok(QueueUrl {
            url: Secret::new(url),
            named_by: QUEUE_URL_VARIABLE.to_owned(),
        });
    }
    let Some(config) = config else {
        return Ok(QueueUrl {
            url: Secret::new("sqlite://agentfleet.db".to_owned()),
            named_by: "the default".to_owned(),
        });
    };
    let (url, named_by) = match &config.queue.url {
        Setting::Literal(url) => (url.clone(), "[queue] url".to_owned()),
        Setting::From(source) => {
            let read = resolve::read(source, &config.base_dir, env)
                .map_err(|failure| format!("[queue] url: {}; {}", failure.what, failure.fix))?;
            (
                read.value.expose().trim().to_owned(),
                format!("[queue] url ({})", read.origin.label()),
            )
        }
    };
    // A relative SQLite file lives beside the config, wherever the command runs from.
    let url = match url.strip_prefix("sqlite://") {
        Some(path) if !path.is_empty() && !path.starts_with('/') && !path.starts_with(':') => {
            format!("sqlite://{}", config.base_dir.join(path).display())
        }
        _ => url,
    };
    Ok(QueueUrl {
        url: Secret::new(url),
        named_by,
    })
}

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
    fn the_queue_url_comes_from_the_flag_the_variable_or_the_config() {
        let config = parse::parse(
            Path::new("/srv/fleet/agentfleet.toml"),
            "[queue]\nurl = \"sqlite://tasks.db\"\n",
        )
        .unwrap();
        let env = FixedEnv::new().with(QUEUE_URL_VARIABLE, "postgres://u:p@h/d");
        let url = queue_url(Some(&config), Some("sqlite://flag.db"), &env).unwrap();
        assert_eq!(
            (url.url.expose(), url.named_by.as_str()),
            ("sqlite://flag.db", "--queue-url")
        );
        let url = queue_url(Some(&config), None, &env).unwrap();
        assert_eq!(
            (url.url.expose(), url.named_by.as_str()),
            ("postgres://u:p@h/d", QUEUE_URL_VARIABLE)
        );
        let url = queue_url(Some(&config), None, &FixedEnv::new()).unwrap();
        assert_eq!(
            url.url.expose(),
            "sqlite:///srv/fleet/tasks.db",
            "beside the config file"
        );
        let from_source = parse::parse(
            Path::new("a.toml"),
            "[queue]\nurl = { env = \"DATABASE_URL\" }\n",
        )
        .unwrap();
        let error = queue_url(Some(&from_source), None, &FixedEnv::new()).unwrap_err();
        assert!(
            error.starts_with("[queue] url: DATABASE_URL is not set"),
            "{error}"
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
