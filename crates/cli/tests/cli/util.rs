//! Helpers for running the built binary against files in a temporary directory.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// A temporary directory holding a config and whatever secret files a test needs.
pub struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `content` to `name` inside the workspace and returns its full path.
    pub fn write(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&path, content).expect("write file");
        path
    }

    /// Replaces `name` with `content` at once, as a rename over it, so that a process reading
    /// the file as it changes (the stand-in's keys file) sees the old content or the new, never
    /// a truncated file in between.
    pub fn replace(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(name);
        let staged = self.write(&format!("{name}.new"), content);
        std::fs::rename(&staged, &path).expect("rename into place");
        path
    }

    /// `agentfleet ARGS...` run inside the workspace with an empty environment (but PATH).
    pub fn agentfleet(&self, args: &[&str]) -> Command {
        let mut command = agentfleet();
        command.current_dir(self.path()).args(args);
        command
    }
}

/// The built binary with a cleared environment.
pub fn agentfleet() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_agentfleet"));
    command.env_clear().env("PATH", "/usr/bin:/bin");
    command
}

/// The repository's root directory.
pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// What a finished command printed, as text.
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}):\n{}", self.stdout))
    }
}

pub fn run(command: &mut Command) -> Output {
    let output = command.output().expect("run agentfleet");
    Output {
        code: output.status.code().expect("exited normally"),
        stdout: String::from_utf8(output.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("utf-8 stderr"),
    }
}
