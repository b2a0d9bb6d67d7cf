//! Where a config reads credentials and settings from: the environment variables a supervisor
//! must hand its workers and a worker re-reads when it re-checks a credential, and the files a
//! worker watches for rotation.

use std::path::PathBuf;

use agentfleet_config::{Config, CredentialSource, Environment, KeySetting, Setting};

/// Every variable named by an `env` source of the config (providers and queue), and each one's
/// `_FILE` twin.
pub fn variables(config: &Config) -> Vec<String> {
    let mut names = Vec::new();
    let mut add = |source: &CredentialSource| {
        if let CredentialSource::Env { variable } = source {
            names.push(variable.clone());
            names.push(format!("{variable}_FILE"));
        }
    };
    for provider in &config.providers {
        if let Some(KeySetting::From(source)) = &provider.api_key {
            add(source);
        }
        if let Some(source) = &provider.api_key_fallback {
            add(source);
        }
        for setting in [
            &provider.base_url,
            &provider.endpoint,
            &provider.organization,
            &provider.project,
        ]
        .into_iter()
        .flatten()
        {
            if let Setting::From(source) = setting {
                add(source);
            }
        }
        if let Some(source) = &provider.entra_token {
            add(source);
        }
    }
    if let Setting::From(source) = &config.queue.url {
        add(source);
    }
    names.sort();
    names.dedup();
    names
}

/// Every file a provider's key (or its fallback) is read from, as `env` points now: `file` and
/// `dotenv` sources relative to the config file, and the file named by an `env` source's `_FILE`
/// twin.
pub fn key_files(config: &Config, env: &dyn Environment) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let sources = config.providers.iter().flat_map(|provider| {
        let key = match &provider.api_key {
            Some(KeySetting::From(source)) => Some(source),
            _ => None,
        };
        key.into_iter().chain(provider.api_key_fallback.as_ref())
    });
    for source in sources {
        match source {
            CredentialSource::Env { variable } => {
                if let Some(path) = env.get(&format!("{variable}_FILE")) {
                    files.push(PathBuf::from(path));
                }
            }
            CredentialSource::File { path } | CredentialSource::Dotenv { path, .. } => {
                files.push(config.base_dir.join(path));
            }
            CredentialSource::Command { .. } => {}
        }
    }
    files.sort();
    files.dedup();
    files
}
