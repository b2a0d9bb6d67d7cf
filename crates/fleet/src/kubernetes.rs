//! Kubernetes manifests for running a config's workers: a ConfigMap with the config file and a
//! Deployment whose pods get every credential the way the config says it is sourced.
//!
//! - A variable (`{ env = "NAME" }`) comes from the Secret through `secretKeyRef`: fixed when the
//!   pod starts, so a changed value needs new pods. The pod template carries a checksum of the
//!   variables' fingerprints (as the process generating the manifests sees them) and a Reloader
//!   annotation, so that re-applying after a rotation, or Reloader, rolls the pods.
//! - A file (`{ file }`, `{ dotenv }`, an Entra token file) comes from the Secret mounted as a
//!   directory, never with `subPath`, which never sees an update: the kubelet swaps the
//!   directory's `..data` link and the worker's watch picks the new key up live. A path relative
//!   to the config file lands in the config's own projected volume beside `agentfleet.toml`.
//! - Each pod probes its providers before it takes work and serves the worker's health
//!   endpoint: readiness only once its preflight and probe passed, a `preStop` that drains, and
//!   a grace period longer than the config's shutdown grace. With `maxUnavailable: 0`, a rolling
//!   update stops an old pod only once a new one is ready.
//!
//! No value is read into a manifest: the only thing taken from the environment is fingerprints,
//! for the checksum. A key written into the config file is refused, since the config is shipped
//! in a ConfigMap.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use agentfleet_config::{
    Config, CredentialSource, Environment, Fingerprint, FixedEnv, KeySetting, ProblemCode, Setting,
};
use serde_json::{Value, json};

/// Where the config lives in the pod.
pub const CONFIG_DIRECTORY: &str = "/etc/agentfleet";
/// The worker's health port in the pod.
pub const HEALTH_PORT: u16 = 8080;

/// What the manifests are for.
#[derive(Clone, Debug)]
pub struct ManifestOptions {
    /// The Deployment's name, its app label, and the ConfigMap's name with `-config`.
    pub name: String,
    /// The namespace to name in each manifest, if any.
    pub namespace: Option<String>,
    /// The container image; `agentfleet` must be its entrypoint or on its PATH.
    pub image: String,
    /// The Secret holding every credential.
    pub secret: String,
    /// Pods.
    pub replicas: u32,
}

/// The manifests, and what the Secret must hold for them.
#[derive(Debug)]
pub struct Manifests {
    /// The ConfigMap, then the Deployment.
    pub documents: Vec<Value>,
    /// Every key the Secret must have.
    pub secret_keys: Vec<SecretKey>,
    /// Things the reader should know (a SQLite queue replaced, a command the image must have,
    /// no checksum for want of the variables).
    pub notes: Vec<String>,
}

/// One key of the Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretKey {
    /// The key's name in the Secret.
    pub key: String,
    /// How the pod reads it: `variable NAME` or `file PATH`.
    pub wired_as: String,
    /// The source label `check` shows for it (`env:NAME`, `file:PATH`, `dotenv:PATH#KEY`), and
    /// who needs it.
    pub source: String,
}

/// Where one credential or setting comes from, as the pod must provide it.
enum Wiring {
    Variable(String),
    File(PathBuf),
}

struct Needed {
    wiring: Wiring,
    source: String,
    owner: String,
}

/// Builds the manifests for `config` (whose text is `config_text`). `env` is read only for the
/// fingerprints of the variables the config reads, for the checksum annotation. Errors say
/// what in the config cannot be shipped to a pod and how to change it.
pub fn manifests(
    config: &Config,
    config_text: &str,
    env: &dyn Environment,
    options: &ManifestOptions,
) -> Result<Manifests, Vec<String>> {
    let mut errors = literal_secrets(config);
    let mut notes = Vec::new();
    let mut needed = Vec::new();
    collect_sources(config, &mut needed, &mut notes);
    // Nothing a pod does can follow a file outside its volumes, or a key in the config itself.
    for need in &needed {
        if let Wiring::File(path) = &need.wiring
            && path.is_relative()
            && path
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            errors.push(format!(
                "{} reads {} from {}, outside the config's directory: a pod cannot mount it \
                 there; use an absolute path such as /var/run/secrets/agentfleet/{}",
                need.owner,
                need.source,
                path.display(),
                path.file_name()
                    .map_or_else(|| "key".into(), |n| n.to_string_lossy())
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let mut secret_keys: Vec<SecretKey> = Vec::new();
    let mut env_vars: Vec<Value> = Vec::new();
    let mut variable_fingerprints: Vec<String> = Vec::new();
    let mut missing_here: Vec<String> = Vec::new();
    // Absolute directories, each a volume of the Secret's items; relative files, items of the
    // config's projected volume.
    let mut directories: BTreeMap<PathBuf, Vec<(String, String)>> = BTreeMap::new();
    let mut beside_config: Vec<(String, String)> = Vec::new();
    for need in &needed {
        match &need.wiring {
            Wiring::Variable(variable) => {
                if secret_keys.iter().any(|k| k.key == *variable) {
                    continue;
                }
                env_vars.push(json!({
                    "name": variable,
                    "valueFrom": {"secretKeyRef": {"name": options.secret, "key": variable}},
                }));
                match env.get(variable).filter(|value| !value.is_empty()) {
                    Some(value) => variable_fingerprints.push(format!(
                        "{variable}={}",
                        Fingerprint::of(&value.to_string_lossy())
                    )),
                    None => missing_here.push(variable.clone()),
                }
                secret_keys.push(SecretKey {
                    key: variable.clone(),
                    wired_as: format!("variable {variable}"),
                    source: format!("{} ({})", need.source, need.owner),
                });
            }
            Wiring::File(path) => {
                let file_name = path
                    .file_name()
                    .map_or_else(|| "key".to_owned(), |n| n.to_string_lossy().into_owned());
                let pod_path = if path.is_absolute() {
                    path.clone()
                } else {
                    Path::new(CONFIG_DIRECTORY).join(path)
                };
                let wired_as = format!("file {}", pod_path.display());
                if secret_keys.iter().any(|k| k.wired_as == wired_as) {
                    continue;
                }
                let key = unique_key(&secret_keys, &file_name, &need.owner);
                secret_keys.push(SecretKey {
                    key: key.clone(),
                    wired_as,
                    source: format!("{} ({})", need.source, need.owner),
                });
                if path.is_absolute() {
                    let directory = path.parent().unwrap_or(Path::new("/")).to_owned();
                    directories
                        .entry(directory)
                        .or_default()
                        .push((key, file_name));
                } else {
                    let relative = path
                        .components()
                        .filter(|c| matches!(c, Component::Normal(_)))
                        .collect::<PathBuf>();
                    beside_config.push((key, relative.to_string_lossy().into_owned()));
                }
            }
        }
    }
    if !missing_here.is_empty() {
        notes.push(format!(
            "{} not set here, so the pod template has no secret checksum: a changed Secret rolls \
             the pods only through Reloader (annotated), or when these manifests are made again \
             where the variables are set and applied",
            and_list(&missing_here, "is", "are")
        ));
    }

    let labels = json!({
        "app.kubernetes.io/name": options.name,
        "app.kubernetes.io/component": "worker",
        "app.kubernetes.io/part-of": "agentfleet",
    });
    let metadata = |name: String| {
        let mut metadata = json!({"name": name, "labels": labels});
        if let Some(namespace) = &options.namespace {
            metadata["namespace"] = json!(namespace);
        }
        metadata
    };
    let config_map_name = format!("{}-config", options.name);
    let config_map = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(config_map_name.clone()),
        "data": {"agentfleet.toml": config_text},
    });

    let mut annotations = serde_json::Map::new();
    annotations.insert(
        "agentfleet.dev/config-checksum".to_owned(),
        json!(Fingerprint::of(config_text).to_string()),
    );
    if !env_vars.is_empty() {
        if missing_here.is_empty() {
            variable_fingerprints.sort();
            annotations.insert(
                "agentfleet.dev/secret-checksum".to_owned(),
                json!(Fingerprint::of(&variable_fingerprints.join("\n")).to_string()),
            );
        }
        annotations.insert(
            "secret.reloader.stakater.com/reload".to_owned(),
            json!(options.secret),
        );
    }

    let mut config_sources = vec![json!({"configMap": {
        "name": config_map_name,
        "items": [{"key": "agentfleet.toml", "path": "agentfleet.toml"}],
    }})];
    if !beside_config.is_empty() {
        config_sources.push(json!({"secret": {
            "name": options.secret,
            "items": items(&beside_config),
        }}));
    }
    let mut volumes = vec![json!({"name": "config", "projected": {"sources": config_sources}})];
    let mut mounts =
        vec![json!({"name": "config", "mountPath": CONFIG_DIRECTORY, "readOnly": true})];
    for (index, (directory, files)) in directories.iter().enumerate() {
        let volume = format!("secret-{}", index + 1);
        volumes.push(json!({"name": volume, "secret": {
            "secretName": options.secret,
            "items": items(files),
        }}));
        mounts.push(json!({"name": volume, "mountPath": directory, "readOnly": true}));
    }

    let grace = config.fleet.shutdown_grace.as_secs() + 15;
    let mut container = json!({
        "name": "worker",
        "image": options.image,
        "args": [
            "worker",
            "--config", format!("{CONFIG_DIRECTORY}/agentfleet.toml"),
            "--health-addr", format!("0.0.0.0:{HEALTH_PORT}"),
            "--probe",
        ],
        "ports": [{"name": "health", "containerPort": HEALTH_PORT}],
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "health"},
            "periodSeconds": 5,
            "failureThreshold": 2,
        },
        "livenessProbe": {
            "httpGet": {"path": "/livez", "port": "health"},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "lifecycle": {"preStop": {"httpGet": {"path": "/drain", "port": "health"}}},
        "volumeMounts": mounts,
    });
    if !env_vars.is_empty() {
        container["env"] = Value::Array(env_vars);
    }
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(options.name.clone()),
        "spec": {
            "replicas": options.replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": options.name}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": labels, "annotations": annotations},
                "spec": {
                    "terminationGracePeriodSeconds": grace,
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    });
    Ok(Manifests {
        documents: vec![config_map, deployment],
        secret_keys,
        notes,
    })
}

/// Keys written into the config, which would ship in a ConfigMap: judged by the config alone.
fn literal_secrets(config: &Config) -> Vec<String> {
    agentfleet_config::check(config, &FixedEnv::new())
        .providers
        .iter()
        .flat_map(|check| &check.problems)
        .filter(|problem| problem.code == ProblemCode::LiteralSecret)
        .map(|problem| {
            format!(
                "{}; the config file is shipped in a ConfigMap, readable by anyone who can read \
                 the namespace's ConfigMaps: {}",
                problem.message, problem.fix
            )
        })
        .collect()
}

fn collect_sources(config: &Config, needed: &mut Vec<Needed>, notes: &mut Vec<String>) {
    let mut add = |source: &CredentialSource, owner: String| {
        let (wiring, label) = match source {
            CredentialSource::Env { variable } => (
                Wiring::Variable(variable.clone()),
                format!("env:{variable}"),
            ),
            CredentialSource::File { path } => (
                Wiring::File(path.clone()),
                format!("file:{}", path.display()),
            ),
            CredentialSource::Dotenv { path, key } => (
                Wiring::File(path.clone()),
                format!("dotenv:{}#{key}", path.display()),
            ),
            CredentialSource::Command { argv } => {
                notes.push(format!(
                    "{owner} runs {} for its token: the image must contain it, and it must work \
                     inside the pod (workload identity, say)",
                    argv.first().map_or("a command", String::as_str)
                ));
                return;
            }
        };
        needed.push(Needed {
            wiring,
            source: label,
            owner,
        });
    };
    for provider in &config.providers {
        let owner = format!("provider {}", provider.name);
        if let Some(KeySetting::From(source)) = &provider.api_key {
            add(source, owner.clone());
        }
        if let Some(source) = &provider.api_key_fallback {
            add(source, format!("{owner}, api_key_fallback"));
        }
        if let Some(source) = &provider.entra_token {
            add(source, format!("{owner}, entra_token"));
        }
        for (what, setting) in [
            ("base_url", &provider.base_url),
            ("endpoint", &provider.endpoint),
            ("organization", &provider.organization),
            ("project", &provider.project),
        ] {
            if let Some(Setting::From(source)) = setting {
                add(source, format!("{owner}, {what}"));
            }
        }
    }
    match &config.queue.url {
        Setting::From(source) => add(source, "[queue] url".to_owned()),
        Setting::Literal(url) if url.starts_with("sqlite:") => {
            let note = format!(
                "[queue] url is a SQLite file ({url}), which each pod would hold alone: the pods \
                 read {} (a postgres:// URL that every pod and machine reaches) from the Secret \
                 instead",
                agentfleet_config::QUEUE_URL_VARIABLE
            );
            add(
                &CredentialSource::Env {
                    variable: agentfleet_config::QUEUE_URL_VARIABLE.to_owned(),
                },
                "the queue".to_owned(),
            );
            notes.push(note);
        }
        Setting::Literal(_) => {}
    }
}

/// A Secret key for a file: its name when free, else prefixed with its owner's name.
fn unique_key(taken: &[SecretKey], file_name: &str, owner: &str) -> String {
    let valid = |text: &str| -> String {
        text.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    let key = valid(file_name.trim_start_matches(".."));
    if !taken.iter().any(|k| k.key == key) {
        return key;
    }
    let owner = owner
        .trim_start_matches("provider ")
        .split([' ', ','])
        .next()
        .unwrap_or("key");
    let mut candidate = valid(&format!("{owner}-{key}"));
    let mut counter = 2;
    while taken.iter().any(|k| k.key == candidate) {
        candidate = valid(&format!("{owner}-{counter}-{key}"));
        counter += 1;
    }
    candidate
}

fn items(files: &[(String, String)]) -> Value {
    Value::Array(
        files
            .iter()
            .map(|(key, path)| json!({"key": key, "path": path}))
            .collect(),
    )
}

fn and_list(names: &[String], one: &str, many: &str) -> String {
    match names {
        [only] => format!("{only} {one}"),
        [rest @ .., last] => format!("{} and {last} {many}", rest.join(", ")),
        [] => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Config {
        agentfleet_config::parse::parse(Path::new("/etc/agentfleet/agentfleet.toml"), text)
            .expect("a valid config")
    }

    fn options() -> ManifestOptions {
        ManifestOptions {
            name: "workers".to_owned(),
            namespace: Some("agents".to_owned()),
            image: "agentfleet:test".to_owned(),
            secret: "keys".to_owned(),
            replicas: 2,
        }
    }

    #[test]
    fn two_files_of_one_name_get_two_keys_and_share_nothing() {
        let text = "[providers.a]\nkind = \"openai\"\nmodel = \"m\"\napi_key = { file = \"/run/a/api-key\" }\n\n\
                    [providers.b]\nkind = \"openai\"\nmodel = \"m\"\napi_key = { file = \"/run/b/api-key\" }\n\n\
                    [queue]\nurl = \"postgres://db/fleet\"\n";
        let built = manifests(&parsed(text), text, &FixedEnv::new(), &options()).unwrap();
        let keys: Vec<(&str, &str)> = built
            .secret_keys
            .iter()
            .map(|k| (k.key.as_str(), k.wired_as.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                ("api-key", "file /run/a/api-key"),
                ("b-api-key", "file /run/b/api-key")
            ]
        );
        let spec = &built.documents[1]["spec"]["template"]["spec"];
        assert_eq!(spec["volumes"][1]["secret"]["items"][0]["key"], "api-key");
        assert_eq!(spec["volumes"][2]["secret"]["items"][0]["key"], "b-api-key");
        assert_eq!(
            spec["containers"][0]["volumeMounts"][2]["mountPath"],
            "/run/b"
        );
        assert!(spec["containers"][0].get("env").is_none(), "no variable");
        assert!(built.notes.is_empty(), "{:?}", built.notes);
        assert_eq!(built.documents[0]["metadata"]["namespace"], "agents");
    }

    #[test]
    fn one_variable_read_twice_is_wired_once() {
        let text = "[providers.a]\nkind = \"openai\"\nmodel = \"m\"\napi_key = { env = \"KEY\" }\n\n\
                    [providers.b]\nkind = \"openai\"\nmodel = \"m\"\napi_key = { env = \"KEY\" }\n\n\
                    [queue]\nurl = \"postgres://db/fleet\"\n";
        let env = FixedEnv::new().with("KEY", "sk-proj-abc");
        let built = manifests(&parsed(text), text, &env, &options()).unwrap();
        let container = &built.documents[1]["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["env"].as_array().unwrap().len(), 1);
        let annotations = &built.documents[1]["spec"]["template"]["metadata"]["annotations"];
        assert_eq!(
            annotations["agentfleet.dev/secret-checksum"],
            Fingerprint::of(&format!("KEY={}", Fingerprint::of("sk-proj-abc"))).to_string()
        );
    }

    #[test]
    fn a_literal_key_and_a_path_out_of_the_config_directory_are_refused() {
        let text = "[providers.a]\nkind = \"openai\"\nmodel = \"m\"\napi_key = \"sk-proj-LiteralKey0123456789abcdef\"\n\n\
                    [providers.b]\nkind = \"openai\"\nmodel = \"m\"\napi_key = { dotenv = \"../.env\", key = \"K\" }\n";
        let errors = manifests(&parsed(text), text, &FixedEnv::new(), &options()).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(errors[0].contains("ConfigMap"), "{}", errors[0]);
        assert!(!errors[0].contains("LiteralKey"), "{}", errors[0]);
        assert!(
            errors[1].starts_with("provider b reads dotenv:../.env#K from ../.env, outside"),
            "{}",
            errors[1]
        );
    }
}
