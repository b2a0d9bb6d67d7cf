//! Rules about the repository itself, checked as tests so that they hold on every machine:
//! only the config crate reads the environment; every source file says what it is for; no test
//! is switched off; CI runs exactly the test command README.md gives.

use std::path::{Path, PathBuf};

use crate::util::repository_root;

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&path, found);
            }
        } else if name.ends_with(".rs") {
            found.push(path);
        }
    }
}

fn sources() -> Vec<(PathBuf, String)> {
    let root = repository_root();
    let mut files = Vec::new();
    for dir in ["crates", "examples"] {
        if root.join(dir).is_dir() {
            rust_files(&root.join(dir), &mut files);
        }
    }
    assert!(
        files.len() > 10,
        "found too few sources to check: {files:?}"
    );
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read source");
            (
                path.strip_prefix(&root).expect("inside root").to_owned(),
                text,
            )
        })
        .collect()
}

#[test]
fn only_the_config_crate_reads_the_environment() {
    // Spelled in pieces so that this file does not match itself.
    let forbidden = [
        ["env::", "var("],
        ["env::", "var_os("],
        ["env::", "vars("],
        ["env::", "vars_os("],
    ];
    let allowed = Path::new("crates/config/src/env.rs");
    let mut offenders = Vec::new();
    for (path, text) in sources() {
        if path == allowed {
            continue;
        }
        for pattern in &forbidden {
            let pattern = pattern.concat();
            if text.contains(&pattern) {
                offenders.push(format!("{}: {pattern}", path.display()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "read the environment through agentfleet_config::Environment:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn every_source_file_starts_by_saying_what_it_is_for() {
    let missing: Vec<String> = sources()
        .into_iter()
        .filter(|(_, text)| !text.trim_start().starts_with("//!"))
        .map(|(path, _)| path.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "add a //! line at the top of:\n{}",
        missing.join("\n")
    );
}

#[test]
fn no_test_is_switched_off() {
    let marker = ["#[", "ignore"].concat();
    let offenders: Vec<String> = sources()
        .into_iter()
        .filter(|(_, text)| text.contains(&marker))
        .map(|(path, _)| path.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "fix or delete the test instead:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn ci_runs_the_test_command_readme_gives() {
    let root = repository_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let ci = std::fs::read_to_string(root.join(".ci/run")).expect(".ci/run");
    let command = readme
        .lines()
        .find(|line| line.trim_start().starts_with("cargo test"))
        .expect("README.md gives a cargo test command");
    // The README may explain the command in a trailing shell comment.
    let command = command.split('#').next().unwrap_or_default().trim();
    assert!(
        ci.lines().any(|line| line.trim() == command),
        ".ci/run must run README's test command exactly: {command}"
    );
}
