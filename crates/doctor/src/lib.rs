//! agentfleet's doctor: finds the credential failures of scaled agents in other people's code,
//! deployments and logs, before and after they happen.
//!
//! - `doctor` walks source trees (respecting `.gitignore`), reads TypeScript, TSX, JavaScript
//!   and Python with tree-sitter (`code.rs`) and Kubernetes manifests, compose files and
//!   Dockerfiles (`deploy.rs`), and reports each finding at `file:line:column` with a rule id,
//!   a severity and the fix; `sarif.rs` writes the findings as SARIF 2.1.0.
//! - `explain` reads logs and error chains and names each credential failure (`explain.rs`).
//!
//! It depends only on the config layer, for the shapes of keys and placeholders, so it runs
//! where no agentfleet config exists. It reads the files it is pointed at and nothing else (no
//! environment), and no finding quotes a key: a key written into code is named by its shape and
//! fingerprint.

pub mod code;
pub mod deploy;
pub mod explain;
pub mod sarif;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use explain::{Cause, Diagnosis, explain};

/// The rules, by stable id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// An LLM client constructed when its module is imported.
    ClientAtModuleScope,
    /// A child process or worker thread started with an environment that drops the parent's.
    EnvWipedChild,
    /// One provider's key (or endpoint) given to another provider's client.
    ProviderKeyMismatch,
    /// A key written into the code.
    HardcodedKey,
    /// A workload that runs the code, or shares its image, without a variable the code needs;
    /// a `.env` file baked into an image.
    MissingSecretInManifest,
    /// A secret volume mounted with `subPath`, which never sees a rotation.
    SubpathSecretMount,
}

impl Rule {
    /// Every rule, in the order the docs list them.
    pub const ALL: [Rule; 6] = [
        Rule::ClientAtModuleScope,
        Rule::EnvWipedChild,
        Rule::ProviderKeyMismatch,
        Rule::HardcodedKey,
        Rule::MissingSecretInManifest,
        Rule::SubpathSecretMount,
    ];

    /// The stable id.
    pub fn id(self) -> &'static str {
        match self {
            Rule::ClientAtModuleScope => "client-at-module-scope",
            Rule::EnvWipedChild => "env-wiped-child",
            Rule::ProviderKeyMismatch => "provider-key-mismatch",
            Rule::HardcodedKey => "hardcoded-key",
            Rule::MissingSecretInManifest => "missing-secret-in-manifest",
            Rule::SubpathSecretMount => "subpath-secret-mount",
        }
    }

    /// One sentence on what the rule finds.
    pub fn summary(self) -> &'static str {
        match self {
            Rule::ClientAtModuleScope => {
                "an LLM client built at module scope reads its credential at import time"
            }
            Rule::EnvWipedChild => {
                "a child process started with an environment that drops the parent's loses its credentials"
            }
            Rule::ProviderKeyMismatch => {
                "one provider's key or endpoint is given to another provider's client"
            }
            Rule::HardcodedKey => "a credential is written into the code",
            Rule::MissingSecretInManifest => {
                "a workload lacks a credential variable its code reads, or an image holds a .env file"
            }
            Rule::SubpathSecretMount => {
                "a secret mounted with subPath never receives a rotated value"
            }
        }
    }
}

/// How bad a finding is: only errors make `doctor` exit 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look.
    Warning,
    /// Will fail when the code scales.
    Error,
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule.
    pub rule: Rule,
    /// How bad.
    pub severity: Severity,
    /// The file, as the walk reached it.
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub fix: String,
}

/// Why `doctor` could not run.
#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    /// A path given to it does not exist.
    #[error("{path}: no such file or directory")]
    NoSuchPath {
        /// The path.
        path: PathBuf,
    },
}

/// Everything one run found.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Sorted by file, line and column.
    pub findings: Vec<Finding>,
    /// Files read.
    #[serde(skip)]
    pub files_read: usize,
}

/// Walks `paths` (files or directories, `.gitignore` respected) and applies every rule.
pub fn doctor(paths: &[PathBuf]) -> Result<Report, DoctorError> {
    for path in paths {
        if !path.exists() {
            return Err(DoctorError::NoSuchPath { path: path.clone() });
        }
    }
    let mut report = Report::default();
    let mut code_files: Vec<(String, code::CodeFacts)> = Vec::new();
    let mut deploy_files: Vec<(String, PathBuf, String)> = Vec::new();
    for path in walk(paths) {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let shown = path.display().to_string();
        let shown = shown.strip_prefix("./").unwrap_or(&shown).to_owned();
        if let Some(language) = code::Language::of(&path) {
            report.files_read += 1;
            code_files.push((
                shown,
                code::analyze(&path.display().to_string(), &text, language),
            ));
        } else if deploy::is_deployment_file(&path, &text) {
            report.files_read += 1;
            deploy_files.push((shown, path, text));
        }
    }
    let code_view = deploy::CodeView::of(&code_files);
    for (_, facts) in &mut code_files {
        report.findings.append(&mut facts.findings);
    }
    for (shown, path, text) in &deploy_files {
        report
            .findings
            .extend(deploy::analyze(shown, path, text, &code_view));
    }
    for finding in &mut report.findings {
        if let Some(stripped) = finding.file.strip_prefix("./") {
            finding.file = stripped.to_owned();
        }
    }
    report.findings.sort_by(|a, b| {
        (&a.file, a.line, a.column, a.rule).cmp(&(&b.file, b.line, b.column, b.rule))
    });
    report.findings.dedup();
    Ok(report)
}

/// The files under `paths`, honouring `.gitignore` (in or out of a git repository) and leaving
/// out dependency directories and files over 1 MiB.
fn walk(paths: &[PathBuf]) -> Vec<PathBuf> {
    let Some((first, rest)) = paths.split_first() else {
        return Vec::new();
    };
    let mut builder = ignore::WalkBuilder::new(first);
    for path in rest {
        builder.add(path);
    }
    builder.require_git(false).filter_entry(|entry| {
        !matches!(
            entry.file_name().to_str(),
            Some("node_modules" | ".venv" | "venv" | "__pycache__" | "site-packages" | "target")
        )
    });
    let mut files: Vec<PathBuf> = builder
        .build()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_some_and(|t| t.is_file()))
        .filter(|entry| entry.metadata().is_ok_and(|m| m.len() <= 1 << 20))
        .map(|entry| entry.into_path())
        .collect();
    files.sort();
    files.dedup();
    files
}

/// The name a path is shown by, for messages.
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |name| name.to_string_lossy().into_owned())
}
