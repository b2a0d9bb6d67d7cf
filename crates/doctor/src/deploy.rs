//! Deployments: Kubernetes manifests, compose files and Dockerfiles. Finds secret volumes
//! mounted with `subPath`, workloads that run the scanned code (or share an image with a
//! workload that has the keys) without a credential variable it reads, and `.env` files baked
//! into images.
//!
//! A workload is taken to run the scanned code when its command or arguments name a scanned
//! source file (or module), or, in compose, when it is built from the directory. A container
//! that takes whole Secrets or env files (`envFrom`, `env_file`) may hold any variable, and is
//! never reported missing one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::{Finding, Rule, Severity};

/// What the scanned code needs, for the workloads that run it.
#[derive(Debug, Default)]
pub struct CodeView {
    /// Each source file's stem (`worker` for `src/worker.py`) and the credential variables the
    /// files of that stem read.
    by_stem: BTreeMap<String, BTreeSet<String>>,
    /// Every credential variable any scanned file reads.
    all: BTreeSet<String>,
}

impl CodeView {
    /// Gathers the variables of every scanned source file.
    pub fn of(files: &[(String, crate::code::CodeFacts)]) -> Self {
        let mut view = Self::default();
        for (file, facts) in files {
            let stem = Path::new(file)
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
            view.by_stem
                .entry(stem)
                .or_default()
                .extend(facts.credential_variables.iter().cloned());
            view.all.extend(facts.credential_variables.iter().cloned());
        }
        view
    }

    /// The variables the code a command runs reads, when the command names scanned code.
    fn needed_by(&self, words: &[String]) -> Option<(String, &BTreeSet<String>)> {
        for word in words {
            for token in word.split_whitespace() {
                let token = token.trim_matches(['"', '\'']);
                let path = Path::new(token);
                let stem = if matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("py" | "js" | "mjs" | "cjs" | "ts" | "mts" | "tsx" | "jsx")
                ) {
                    path.file_stem().and_then(|s| s.to_str())
                } else if token.contains('.') && !token.contains('/') && !token.starts_with('-') {
                    // `python -m package.worker`
                    token.rsplit('.').next()
                } else {
                    None
                };
                if let Some(stem) = stem
                    && let Some(variables) = self.by_stem.get(stem)
                    && !variables.is_empty()
                {
                    return Some((token.to_owned(), variables));
                }
            }
        }
        None
    }
}

/// Whether a file is one this module reads: a Dockerfile, a compose file, or YAML holding a
/// Kubernetes object.
pub fn is_deployment_file(path: &Path, text: &str) -> bool {
    let name = crate::file_name(path);
    is_dockerfile(&name)
        || is_compose(&name)
        || (matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) && text.contains("apiVersion:")
            && text.contains("kind:"))
}

fn is_dockerfile(name: &str) -> bool {
    name == "Dockerfile" || name.starts_with("Dockerfile.") || name.ends_with(".dockerfile")
}

fn is_compose(name: &str) -> bool {
    matches!(
        name,
        "docker-compose.yml" | "docker-compose.yaml" | "compose.yml" | "compose.yaml"
    ) || (name.starts_with("docker-compose.")
        && (name.ends_with(".yml") || name.ends_with(".yaml")))
}

/// Applies the deployment rules to one file.
pub fn analyze(shown: &str, path: &Path, text: &str, code: &CodeView) -> Vec<Finding> {
    let name = crate::file_name(path);
    if is_dockerfile(&name) {
        dockerfile(shown, path, text)
    } else if is_compose(&name) {
        compose(shown, text, code)
    } else {
        kubernetes(shown, text, code)
    }
}

fn finding(
    file: &str,
    line: usize,
    column: usize,
    rule: Rule,
    message: String,
    fix: &str,
) -> Finding {
    Finding {
        rule,
        severity: Severity::Error,
        file: file.to_owned(),
        line,
        column,
        message,
        fix: fix.to_owned(),
    }
}

// ---- Kubernetes ---------------------------------------------------------------------------

#[derive(Deserialize)]
struct Object {
    kind: Option<String>,
    metadata: Option<Metadata>,
    spec: Option<Spec>,
}

#[derive(Deserialize)]
struct Metadata {
    name: Option<String>,
}

#[derive(Deserialize)]
struct Spec {
    template: Option<Template>,
    #[serde(rename = "jobTemplate")]
    job_template: Option<JobTemplate>,
    containers: Option<Vec<Container>>,
    #[serde(rename = "initContainers")]
    init_containers: Option<Vec<Container>>,
    volumes: Option<Vec<Volume>>,
}

#[derive(Deserialize)]
struct JobTemplate {
    spec: Option<Box<Spec>>,
}

#[derive(Deserialize)]
struct Template {
    spec: Option<Box<Spec>>,
}

#[derive(Deserialize)]
struct Container {
    name: Spanned<String>,
    image: Option<String>,
    command: Option<Vec<serde_json::Value>>,
    args: Option<Vec<serde_json::Value>>,
    env: Option<Vec<EnvVar>>,
    #[serde(rename = "envFrom")]
    env_from: Option<Vec<serde_json::Value>>,
    #[serde(rename = "volumeMounts")]
    volume_mounts: Option<Vec<Mount>>,
}

#[derive(Deserialize)]
struct EnvVar {
    name: String,
}

#[derive(Deserialize)]
struct Mount {
    name: String,
    #[serde(rename = "mountPath")]
    mount_path: Option<String>,
    #[serde(rename = "subPath")]
    sub_path: Option<Spanned<String>>,
    #[serde(rename = "subPathExpr")]
    sub_path_expr: Option<Spanned<String>>,
}

#[derive(Deserialize)]
struct Volume {
    name: String,
    secret: Option<serde_json::Value>,
    projected: Option<Projected>,
}

#[derive(Deserialize)]
struct Projected {
    sources: Option<Vec<serde_json::Value>>,
}

/// A container of a workload, as the rules need it.
struct Workload<'a> {
    what: String,
    container: &'a Container,
}

const WORKLOADS: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
    "Pod",
];

fn parse_objects(text: &str) -> Vec<Object> {
    if let Ok(objects) = serde_saphyr::from_multiple::<Object>(text) {
        return objects;
    }
    // One document the structs cannot read (a template, a CRD) must not hide the others.
    let mut objects = Vec::new();
    let mut offset_lines = 0usize;
    for document in text.split("\n---") {
        let padded = format!("{}{document}", "\n".repeat(offset_lines));
        offset_lines += document.matches('\n').count() + 1;
        if let Ok(object) = serde_saphyr::from_str::<Object>(&padded) {
            objects.push(object);
        }
    }
    objects
}

fn kubernetes(file: &str, text: &str, code: &CodeView) -> Vec<Finding> {
    let objects = parse_objects(text);
    let mut findings = Vec::new();
    let mut workloads: Vec<Workload> = Vec::new();
    for object in &objects {
        let Some(kind) = object.kind.as_deref().filter(|k| WORKLOADS.contains(k)) else {
            continue;
        };
        let name = object
            .metadata
            .as_ref()
            .and_then(|m| m.name.clone())
            .unwrap_or_default();
        let Some(spec) = object.spec.as_ref() else {
            continue;
        };
        let pod = match kind {
            "Pod" => Some(spec),
            "CronJob" => spec
                .job_template
                .as_ref()
                .and_then(|j| j.spec.as_deref())
                .and_then(|s| s.template.as_ref())
                .and_then(|t| t.spec.as_deref()),
            _ => spec.template.as_ref().and_then(|t| t.spec.as_deref()),
        };
        let Some(pod) = pod else {
            continue;
        };
        let secret_volumes: BTreeSet<&str> = pod
            .volumes
            .iter()
            .flatten()
            .filter(|volume| {
                volume.secret.is_some()
                    || volume.projected.as_ref().is_some_and(|p| {
                        p.sources
                            .iter()
                            .flatten()
                            .any(|source| source.get("secret").is_some())
                    })
            })
            .map(|volume| volume.name.as_str())
            .collect();
        let containers = pod
            .containers
            .iter()
            .flatten()
            .chain(pod.init_containers.iter().flatten());
        for container in containers {
            for mount in container.volume_mounts.iter().flatten() {
                let Some(sub_path) = mount.sub_path.as_ref().or(mount.sub_path_expr.as_ref())
                else {
                    continue;
                };
                if !secret_volumes.contains(mount.name.as_str()) {
                    continue;
                }
                findings.push(finding(
                    file,
                    sub_path.referenced.line() as usize,
                    sub_path.referenced.column() as usize,
                    Rule::SubpathSecretMount,
                    format!(
                        "container {} of {kind} {name} mounts the secret volume {} at {} with \
                         subPath {}: a subPath mount is a copy of the file as the pod started, and \
                         never receives a rotated key",
                        container.name.value,
                        mount.name,
                        mount.mount_path.as_deref().unwrap_or("?"),
                        sub_path.value
                    ),
                    "mount the secret volume as a directory (mountPath: /var/run/secrets/NAME, no \
                     subPath) and point the application at the file inside it; select files with \
                     the volume's items if needed",
                ));
            }
            workloads.push(Workload {
                what: format!("container {} of {kind} {name}", container.name.value),
                container,
            });
        }
    }
    let containers: Vec<Runs> = workloads
        .iter()
        .map(|workload| {
            let container = workload.container;
            let words: Vec<String> = container
                .command
                .iter()
                .flatten()
                .chain(container.args.iter().flatten())
                .map(|value| match value {
                    serde_json::Value::String(text) => text.clone(),
                    other => other.to_string(),
                })
                .collect();
            Runs {
                what: workload.what.clone(),
                line: container.name.referenced.line() as usize,
                column: container.name.referenced.column() as usize,
                image: container.image.clone(),
                built_here: false,
                words,
                provides: container
                    .env
                    .iter()
                    .flatten()
                    .map(|variable| variable.name.clone())
                    .collect(),
                takes_all: container.env_from.as_ref().is_some_and(|e| !e.is_empty()),
            }
        })
        .collect();
    findings.extend(missing_variables(file, &containers, code));
    findings
}

// ---- compose ------------------------------------------------------------------------------

#[derive(Deserialize)]
struct ComposeFile {
    services: Option<BTreeMap<String, Service>>,
}

#[derive(Deserialize)]
struct Service {
    build: Option<serde_json::Value>,
    image: Option<String>,
    command: Option<serde_json::Value>,
    entrypoint: Option<serde_json::Value>,
    environment: Option<serde_json::Value>,
    env_file: Option<serde_json::Value>,
}

fn compose(file: &str, text: &str, code: &CodeView) -> Vec<Finding> {
    let Ok(compose) = serde_saphyr::from_str::<ComposeFile>(text) else {
        return Vec::new();
    };
    let mut containers = Vec::new();
    for (name, service) in compose.services.iter().flatten() {
        let (line, column) = line_of_key(text, name);
        let words: Vec<String> = [&service.command, &service.entrypoint]
            .into_iter()
            .flatten()
            .flat_map(|value| match value {
                serde_json::Value::String(text) => vec![text.clone()],
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|item| {
                        item.as_str()
                            .map_or_else(|| item.to_string(), str::to_owned)
                    })
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
        let provides: BTreeSet<String> = match &service.environment {
            Some(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|item| item.as_str())
                .map(|item| item.split('=').next().unwrap_or(item).to_owned())
                .collect(),
            _ => BTreeSet::new(),
        };
        containers.push(Runs {
            what: format!("service {name}"),
            line,
            column,
            image: service.image.clone(),
            built_here: service.build.is_some(),
            words,
            provides,
            takes_all: service.env_file.is_some(),
        });
    }
    missing_variables(file, &containers, code)
}

/// The 1-based line and column of the first `name:` key in `text`.
fn line_of_key(text: &str, name: &str) -> (usize, usize) {
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let key = trimmed.trim_start_matches(['"', '\'']);
        if key.starts_with(name)
            && key[name.len()..]
                .trim_start_matches(['"', '\''])
                .starts_with(':')
        {
            return (index + 1, line.len() - trimmed.len() + 1);
        }
    }
    (1, 1)
}

// ---- both ---------------------------------------------------------------------------------

/// A container or service, as the variable rule sees it.
struct Runs {
    what: String,
    line: usize,
    column: usize,
    image: Option<String>,
    /// Built from this directory (compose `build:`): it runs the scanned code.
    built_here: bool,
    words: Vec<String>,
    provides: BTreeSet<String>,
    /// It takes whole Secrets or env files, and may hold any variable.
    takes_all: bool,
}

/// Variables an LLM client reads a credential from, by name.
fn is_llm_credential(variable: &str) -> bool {
    let upper = variable.to_ascii_uppercase();
    let provider = [
        "OPENAI",
        "ANTHROPIC",
        "CLAUDE",
        "GEMINI",
        "GOOGLE_API",
        "OPENROUTER",
        "GROQ",
        "MISTRAL",
        "COHERE",
        "LLM",
    ]
    .iter()
    .any(|name| upper.contains(name));
    provider && (upper.ends_with("KEY") || upper.ends_with("TOKEN") || upper.ends_with("ENDPOINT"))
}

fn image_repository(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    match without_digest.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => repository,
        _ => without_digest,
    }
}

fn missing_variables(file: &str, containers: &[Runs], code: &CodeView) -> Vec<Finding> {
    let mut findings = Vec::new();
    for container in containers.iter().filter(|c| !c.takes_all) {
        let mut reported = BTreeSet::new();
        let runs = code
            .needed_by(&container.words)
            .map(|(token, variables)| (token, variables.clone()));
        let runs = runs.or_else(|| {
            (container.built_here && !code.all.is_empty())
                .then(|| ("the code it is built from".to_owned(), code.all.clone()))
        });
        if let Some((token, needed)) = runs {
            for variable in needed.difference(&container.provides) {
                reported.insert(variable.clone());
                let shown = if token.starts_with("the code") {
                    token.clone()
                } else {
                    format!("{token}, which")
                };
                findings.push(finding(
                    file,
                    container.line,
                    container.column,
                    Rule::MissingSecretInManifest,
                    format!(
                        "{} runs {shown} reads {variable}, but it is given no {variable}: the \
                         variable you have locally never reaches it, and its first call fails \
                         with 401",
                        container.what
                    ),
                    "add the variable to this container (from a Secret: env with valueFrom \
                     secretKeyRef, or compose environment/secrets), or mount the key as a file",
                ));
            }
        }
        // The same image elsewhere gets LLM credentials this one does not.
        let Some(image) = container.image.as_deref().map(image_repository) else {
            continue;
        };
        for sibling in containers {
            if std::ptr::eq(sibling, container)
                || sibling.image.as_deref().map(image_repository) != Some(image)
            {
                continue;
            }
            for variable in sibling.provides.iter().filter(|v| is_llm_credential(v)) {
                if container.provides.contains(variable) || !reported.insert(variable.clone()) {
                    continue;
                }
                findings.push(finding(
                    file,
                    container.line,
                    container.column,
                    Rule::MissingSecretInManifest,
                    format!(
                        "{} runs the image {image} like {}, which is given {variable}, but it is \
                         not: the same code fails here with 401 as soon as it calls the provider",
                        container.what, sibling.what
                    ),
                    "give every container of the image the credential variables its code reads \
                     (or confirm this one never calls the provider and drop the key elsewhere)",
                ));
            }
        }
    }
    findings
}

// ---- Dockerfiles --------------------------------------------------------------------------

fn dockerfile(file: &str, path: &Path, text: &str) -> Vec<Finding> {
    let directory = path.parent().unwrap_or(Path::new("."));
    let env_beside = std::fs::read_dir(directory)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .any(|entry| is_env_file(&entry.file_name().to_string_lossy()))
        })
        .unwrap_or(false);
    let ignored = std::fs::read_to_string(directory.join(".dockerignore"))
        .map(|ignore| {
            ignore.lines().map(str::trim).any(|line| {
                matches!(
                    line,
                    ".env" | ".env*" | "*.env" | "**/.env" | "**/.env*" | "*" | "**"
                )
            })
        })
        .unwrap_or(false);
    let mut findings = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let mut words = trimmed.split_whitespace();
        let Some(instruction) = words.next() else {
            continue;
        };
        if !instruction.eq_ignore_ascii_case("COPY") && !instruction.eq_ignore_ascii_case("ADD") {
            continue;
        }
        let arguments: Vec<&str> = words.collect();
        if arguments.iter().any(|a| a.starts_with("--from")) {
            continue;
        }
        let operands: Vec<&str> = arguments
            .iter()
            .copied()
            .filter(|a| !a.starts_with("--"))
            .map(|a| a.trim_matches(['"', '[', ']', ',']))
            .collect();
        let Some((_, sources)) = operands.split_last() else {
            continue;
        };
        let column = line.len() - trimmed.len() + 1;
        if let Some(source) = sources.iter().find(|s| {
            is_env_file(
                Path::new(s)
                    .file_name()
                    .map_or(**s, |n| n.to_str().unwrap_or(s)),
            )
        }) {
            findings.push(finding(
                file,
                index + 1,
                column,
                Rule::MissingSecretInManifest,
                format!(
                    "{instruction} {source} bakes a .env file into the image: every copy of the \
                     image carries the keys, and a rotated key needs a rebuild (and old images \
                     keep the old one)"
                ),
                "remove it from the image and inject the variables at run time (compose \
                 env_file or environment, a Kubernetes Secret), and list .env in .dockerignore",
            ));
        } else if env_beside
            && !ignored
            && sources
                .iter()
                .any(|s| matches!(*s, "." | "./" | "./*" | "*"))
        {
            findings.push(finding(
                file,
                index + 1,
                column,
                Rule::MissingSecretInManifest,
                format!(
                    "{instruction} {} copies the whole build context, and the .env file beside \
                     this Dockerfile is not excluded by .dockerignore: the image carries the keys",
                    sources.join(" ")
                ),
                "add .env (and .env.*) to .dockerignore, and inject the variables at run time",
            ));
        }
    }
    findings
}

fn is_env_file(name: &str) -> bool {
    (name == ".env" || name.starts_with(".env.") || name.ends_with(".env"))
        && !name.ends_with(".example")
        && !name.ends_with(".sample")
        && !name.ends_with(".template")
}
