//! Which environment variables a config reads credentials and settings from: what a supervisor
//! must hand its workers, and what a worker re-reads when it re-checks a credential.

use agentfleet_config::{Config, CredentialSource, KeySetting, Setting};

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
