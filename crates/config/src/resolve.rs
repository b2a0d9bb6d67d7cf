//! Reading a credential source in this process: a variable, its `_FILE` twin, a file, or a
//! dotenv entry.
//!
//! This and `env.rs` are the only code in agentfleet that reads the environment or secret files.
//! A value is moved into a [`Secret`] as soon as it is read; failures describe the source
//! (which variable, which path, which line) and never the content.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use zeroize::Zeroize;

use crate::dotenv;
use crate::env::Environment;
use crate::model::CredentialSource;
use crate::problem::ProblemCode;
use crate::secret::Secret;

/// The largest file accepted as holding one key.
const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// Where a value was actually read from. For `{ env = "NAME" }` this may be `NAME_FILE`'s file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The variable itself.
    Env {
        /// Its name.
        variable: String,
    },
    /// The file named by the variable `NAME_FILE` (the Docker convention).
    EnvFile {
        /// `NAME_FILE`.
        variable: String,
        /// The path it holds.
        path: PathBuf,
    },
    /// A `{ file = ... }` source.
    File {
        /// The path as written in the config.
        path: PathBuf,
    },
    /// A `{ dotenv = ..., key = ... }` source.
    Dotenv {
        /// The file as written in the config.
        path: PathBuf,
        /// The entry.
        key: String,
    },
    /// A `{ command = [...] }` source.
    Command {
        /// The program that was run.
        program: String,
    },
}

impl Origin {
    /// The source label in reports: `env:NAME`, `env-file:NAME_FILE=PATH`, `file:PATH`,
    /// `dotenv:PATH#KEY`.
    pub fn label(&self) -> String {
        match self {
            Origin::Env { variable } => format!("env:{variable}"),
            Origin::EnvFile { variable, path } => format!("env-file:{variable}={}", path.display()),
            Origin::File { path } => format!("file:{}", path.display()),
            Origin::Dotenv { path, key } => format!("dotenv:{}#{key}", path.display()),
            Origin::Command { program } => format!("command:{program}"),
        }
    }

    /// How a sentence names the source: `OPENAI_API_KEY`, `file /run/secrets/key`, ...
    pub fn describe(&self) -> String {
        match self {
            Origin::Env { variable } => variable.clone(),
            Origin::EnvFile { variable, path } => format!("{variable} (file {})", path.display()),
            Origin::File { path } => format!("file {}", path.display()),
            Origin::Dotenv { path, key } => format!("entry {key} in {}", path.display()),
            Origin::Command { program } => format!("the output of {program}"),
        }
    }

    /// Whether the value came from a file, where a trailing newline is expected and trimmed.
    pub fn is_file(&self) -> bool {
        !matches!(self, Origin::Env { .. })
    }
}

/// A value that was read.
#[derive(Debug)]
pub struct Read {
    /// The value; a file's trailing newline already trimmed.
    pub value: Secret,
    /// Where it came from.
    pub origin: Origin,
    /// Whether a trailing newline was trimmed.
    pub trimmed_newline: bool,
}

/// Why a source could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// `missing`, `empty`, `unreadable` or `ambiguous-source`.
    pub code: ProblemCode,
    /// Where the attempt was made (so reports can show the label).
    pub origin: Origin,
    /// What went wrong, naming the source.
    pub what: String,
    /// What to do.
    pub fix: String,
}

/// Reads `source` now, in this process. Relative paths are taken from `base_dir`.
pub fn read(
    source: &CredentialSource,
    base_dir: &Path,
    env: &dyn Environment,
) -> Result<Read, Failure> {
    match source {
        CredentialSource::Env { variable } => read_env(variable, env),
        CredentialSource::File { path } => {
            let origin = Origin::File { path: path.clone() };
            read_file(&base_dir.join(path), origin)
        }
        CredentialSource::Dotenv { path, key } => read_dotenv(&base_dir.join(path), path, key),
        CredentialSource::Command { argv } => read_command(argv, base_dir),
    }
}

/// How long a token command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs a token command in `base_dir` with this process's environment and reads its standard
/// output. Its standard error is not shown: a helper may print anything there.
fn read_command(argv: &[String], base_dir: &Path) -> Result<Read, Failure> {
    let program = argv.first().cloned().unwrap_or_default();
    let origin = Origin::Command {
        program: program.clone(),
    };
    let fail = |code, what: String, fix: &str| Failure {
        code,
        origin: origin.clone(),
        what,
        fix: fix.to_owned(),
    };
    let mut child = match Command::new(&program)
        .args(&argv[1..])
        .current_dir(base_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(error) if error.kind() == ErrorKind::NotFound => {
            return Err(fail(
                ProblemCode::Missing,
                format!("command {program} is not installed or not on PATH"),
                "install it in the image, or give its full path",
            ));
        }
        Err(error) => {
            return Err(fail(
                ProblemCode::Unreadable,
                format!("command {program} cannot be started ({})", error.kind()),
                "check that it is executable by this process's user",
            ));
        }
    };
    let stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        use std::io::Read as _;
        let mut bytes = Vec::new();
        if let Some(stdout) = stdout {
            let _ = stdout.take(MAX_SECRET_FILE_BYTES).read_to_end(&mut bytes);
        }
        bytes
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < COMMAND_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(10))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(
                    ProblemCode::Unreadable,
                    format!(
                        "command {program} did not finish within {} s",
                        COMMAND_TIMEOUT.as_secs()
                    ),
                    "run it by hand to see why it hangs (a login prompt, a network wait)",
                ));
            }
        }
    };
    let bytes = reader.join().unwrap_or_default();
    if !status.success() {
        let mut bytes = bytes;
        bytes.zeroize();
        return Err(fail(
            ProblemCode::Unreadable,
            format!("command {program} failed ({status})"),
            "run it by hand to see why (often an expired login: az login, or a missing identity)",
        ));
    }
    secret_text(
        bytes,
        origin.clone(),
        || {
            fail(
                ProblemCode::Unreadable,
                format!("command {program} printed something that is not UTF-8 text"),
                "make it print the token alone",
            )
        },
        || {
            fail(
                ProblemCode::Empty,
                format!("command {program} printed nothing"),
                "make it print the token alone",
            )
        },
    )
}

fn read_env(variable: &str, env: &dyn Environment) -> Result<Read, Failure> {
    let file_variable = format!("{variable}_FILE");
    let direct = env.get(variable);
    let file = env.get(&file_variable).filter(|path| !path.is_empty());
    match (direct, file) {
        (Some(_), Some(_)) => Err(Failure {
            code: ProblemCode::AmbiguousSource,
            origin: Origin::Env {
                variable: variable.to_owned(),
            },
            what: format!(
                "both {variable} and {file_variable} are set, so which key is meant is unclear"
            ),
            fix: format!(
                "unset one of them: with only {file_variable} set, agentfleet reads the file it names"
            ),
        }),
        (None, Some(path)) => {
            let path = PathBuf::from(path);
            let origin = Origin::EnvFile {
                variable: file_variable,
                path: path.clone(),
            };
            read_file(&path, origin)
        }
        (Some(value), None) => {
            let origin = Origin::Env {
                variable: variable.to_owned(),
            };
            let value = match value.into_string() {
                Ok(value) => value,
                Err(raw) => {
                    raw.into_encoded_bytes().zeroize();
                    return Err(Failure {
                        code: ProblemCode::Unreadable,
                        origin,
                        what: format!("{variable} is not valid UTF-8 text"),
                        fix: format!("set {variable} to the key itself, as plain text"),
                    });
                }
            };
            if value.is_empty() {
                return Err(Failure {
                    code: ProblemCode::Empty,
                    origin,
                    what: format!("{variable} is set in this process but empty"),
                    fix: format!(
                        "give {variable} the key's value; if it comes from a secret, check that \
                         the secret has that key and that it is not empty"
                    ),
                });
            }
            Ok(Read {
                value: Secret::new(value),
                origin,
                trimmed_newline: false,
            })
        }
        (None, None) => Err(Failure {
            code: ProblemCode::Missing,
            origin: Origin::Env {
                variable: variable.to_owned(),
            },
            what: format!("{variable} is not set in this process"),
            fix: format!(
                "set {variable} in the environment of the process that runs agentfleet (a \
                 container, pod or queue worker gets only what its own manifest or unit injects, \
                 not your shell's), or set {file_variable} to a file that holds the value"
            ),
        }),
    }
}

/// Reads a secret file. When the path came from a `_FILE` variable, a file that does not exist
/// is a broken pointer (unreadable) rather than a missing secret.
fn read_file(path: &Path, origin: Origin) -> Result<Read, Failure> {
    let shown = path.display().to_string();
    let fail = |code, what: String, fix: &str| Failure {
        code,
        origin: origin.clone(),
        what,
        fix: fix.to_owned(),
    };
    let link = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == ErrorKind::NotFound => {
            return Err(if let Origin::EnvFile { variable, .. } = &origin {
                fail(
                    ProblemCode::Unreadable,
                    format!("{variable} points at {shown}, which does not exist"),
                    "mount the secret file at that path, or correct or unset the variable",
                )
            } else {
                fail(
                    ProblemCode::Missing,
                    format!("file {shown} does not exist"),
                    "mount the secret at that path (in Kubernetes, a secret volume mounted as a \
                     directory), or correct the path",
                )
            });
        }
        Err(error) => return Err(io_failure(&fail, &shown, &error)),
    };
    let metadata = if link.file_type().is_symlink() {
        match fs::metadata(path) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == ErrorKind::NotFound => {
                return Err(fail(
                    ProblemCode::Unreadable,
                    format!("file {shown} is a symbolic link to a file that does not exist"),
                    "the secret volume behind the link is gone or was changed; check the mount",
                ));
            }
            Err(error) => return Err(io_failure(&fail, &shown, &error)),
        }
    } else {
        link
    };
    if metadata.is_dir() {
        return Err(fail(
            ProblemCode::Unreadable,
            format!("file {shown} is a directory"),
            "point at the file inside it: a mounted secret is a directory with one file per key",
        ));
    }
    if metadata.len() > MAX_SECRET_FILE_BYTES {
        return Err(fail(
            ProblemCode::Unreadable,
            format!(
                "file {shown} is {} bytes, too large to hold one key",
                metadata.len()
            ),
            "point at a file that holds the key alone",
        ));
    }
    let bytes = fs::read(path).map_err(|error| io_failure(&fail, &shown, &error))?;
    secret_text(
        bytes,
        origin.clone(),
        || {
            fail(
                ProblemCode::Unreadable,
                format!("file {shown} is not UTF-8 text"),
                "write the key as plain text, e.g. printf '%s' \"$KEY\" > FILE",
            )
        },
        || {
            fail(
                ProblemCode::Empty,
                format!("file {shown} is empty"),
                "write the key into the file, or point at the file that holds it",
            )
        },
    )
}

/// Turns bytes read from a file or a command into a secret: UTF-8, trailing newlines
/// trimmed, not empty. Bytes that are refused are zeroed before they are dropped.
fn secret_text(
    bytes: Vec<u8>,
    origin: Origin,
    not_text: impl FnOnce() -> Failure,
    empty: impl FnOnce() -> Failure,
) -> Result<Read, Failure> {
    let mut value = match String::from_utf8(bytes) {
        Ok(value) => value,
        Err(error) => {
            error.into_bytes().zeroize();
            return Err(not_text());
        }
    };
    let trimmed_newline = trim_trailing_newlines(&mut value);
    if value.is_empty() {
        return Err(empty());
    }
    Ok(Read {
        value: Secret::new(value),
        origin,
        trimmed_newline,
    })
}

fn io_failure(
    fail: &dyn Fn(ProblemCode, String, &str) -> Failure,
    shown: &str,
    error: &std::io::Error,
) -> Failure {
    if error.kind() == ErrorKind::PermissionDenied {
        fail(
            ProblemCode::Unreadable,
            format!("file {shown} cannot be read by this process (permission denied)"),
            "make it readable by the user this process runs as (in Kubernetes, the secret \
             volume's defaultMode or the pod's fsGroup)",
        )
    } else {
        fail(
            ProblemCode::Unreadable,
            format!("file {shown} cannot be read ({})", error.kind()),
            "check the path and the mount",
        )
    }
}

fn read_dotenv(full_path: &Path, written: &Path, key: &str) -> Result<Read, Failure> {
    let origin = Origin::Dotenv {
        path: written.to_owned(),
        key: key.to_owned(),
    };
    let shown = full_path.display().to_string();
    let mut text = match fs::read_to_string(full_path) {
        Ok(text) => text,
        Err(error) if error.kind() == ErrorKind::NotFound => {
            return Err(Failure {
                code: ProblemCode::Missing,
                origin,
                what: format!("dotenv file {shown} does not exist"),
                fix: "create it, or correct the path (relative paths start at the config file's \
                      directory)"
                    .to_owned(),
            });
        }
        Err(error) => {
            let fail = |code, what: String, fix: &str| Failure {
                code,
                origin: origin.clone(),
                what,
                fix: fix.to_owned(),
            };
            return Err(io_failure(&fail, &shown, &error));
        }
    };
    let found = dotenv::find(&text, key);
    text.zeroize();
    match found {
        Err(syntax) => Err(Failure {
            code: ProblemCode::Unreadable,
            origin,
            what: format!(
                "dotenv file {shown} line {}: {}",
                syntax.line, syntax.reason
            ),
            fix: "fix that line; values with spaces or # need quotes".to_owned(),
        }),
        Ok(None) => Err(Failure {
            code: ProblemCode::Missing,
            origin,
            what: format!("dotenv file {shown} has no entry {key}"),
            fix: format!("add {key}=... to it, or name the entry it has"),
        }),
        Ok(Some(value)) if value.is_empty() => Err(Failure {
            code: ProblemCode::Empty,
            origin,
            what: format!("entry {key} in dotenv file {shown} is empty"),
            fix: format!("give {key} the key's value"),
        }),
        Ok(Some(value)) => Ok(Read {
            value: Secret::new(value),
            origin,
            trimmed_newline: false,
        }),
    }
}

/// Removes trailing `\n` and `\r\n`; whether anything was removed.
fn trim_trailing_newlines(value: &mut String) -> bool {
    let kept = value.trim_end_matches(['\n', '\r']).len();
    let trimmed = kept < value.len();
    // Overwrite before truncating so that the removed bytes do not linger.
    value.replace_range(kept.., &" ".repeat(value.len() - kept));
    value.truncate(kept);
    trimmed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::FixedEnv;

    fn env_source(variable: &str) -> CredentialSource {
        CredentialSource::Env {
            variable: variable.into(),
        }
    }

    #[test]
    fn env_values_are_read_and_absence_is_named() {
        let env = FixedEnv::new().with("K", "sk-value");
        let read = read(&env_source("K"), Path::new("."), &env).unwrap();
        assert_eq!(read.value.expose(), "sk-value");
        assert_eq!(read.origin.label(), "env:K");

        let failure = super::read(&env_source("MISSING"), Path::new("."), &env).unwrap_err();
        assert_eq!(failure.code, ProblemCode::Missing);
        assert_eq!(failure.what, "MISSING is not set in this process");

        let env = FixedEnv::new().with("K", "");
        let failure = super::read(&env_source("K"), Path::new("."), &env).unwrap_err();
        assert_eq!(failure.code, ProblemCode::Empty);
    }

    #[test]
    fn the_file_twin_of_a_variable_is_honoured() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        fs::write(&path, "sk-from-file\n").unwrap();
        let env = FixedEnv::new().with("K_FILE", path.as_os_str());
        let read = read(&env_source("K"), Path::new("."), &env).unwrap();
        assert_eq!(read.value.expose(), "sk-from-file");
        assert!(read.trimmed_newline);
        assert_eq!(
            read.origin.label(),
            format!("env-file:K_FILE={}", path.display())
        );

        let env = FixedEnv::new().with("K_FILE", dir.path().join("nowhere").as_os_str());
        let failure = super::read(&env_source("K"), Path::new("."), &env).unwrap_err();
        assert_eq!(failure.code, ProblemCode::Unreadable);
        assert!(
            failure.what.starts_with("K_FILE points at "),
            "{}",
            failure.what
        );

        let env = FixedEnv::new()
            .with("K", "a")
            .with("K_FILE", path.as_os_str());
        let failure = super::read(&env_source("K"), Path::new("."), &env).unwrap_err();
        assert_eq!(failure.code, ProblemCode::AmbiguousSource);
    }

    #[test]
    fn files_relative_to_the_config_and_every_way_they_fail() {
        let dir = tempfile::tempdir().unwrap();
        let env = FixedEnv::new();
        let file = |name: &str| CredentialSource::File {
            path: PathBuf::from(name),
        };
        fs::write(dir.path().join("good"), "sk-good\r\n").unwrap();
        let read = read(&file("good"), dir.path(), &env).unwrap();
        assert_eq!(read.value.expose(), "sk-good");
        assert_eq!(read.origin.label(), "file:good");

        let failure = super::read(&file("absent"), dir.path(), &env).unwrap_err();
        assert_eq!(failure.code, ProblemCode::Missing);

        fs::create_dir(dir.path().join("dir")).unwrap();
        let failure = super::read(&file("dir"), dir.path(), &env).unwrap_err();
        assert_eq!(
            (failure.code, failure.what.ends_with("is a directory")),
            (ProblemCode::Unreadable, true)
        );

        std::os::unix::fs::symlink(dir.path().join("gone"), dir.path().join("dangling")).unwrap();
        let failure = super::read(&file("dangling"), dir.path(), &env).unwrap_err();
        assert!(
            failure
                .what
                .contains("symbolic link to a file that does not exist")
        );

        fs::write(dir.path().join("blank"), "\n").unwrap();
        let failure = super::read(&file("blank"), dir.path(), &env).unwrap_err();
        assert_eq!(failure.code, ProblemCode::Empty);

        fs::write(dir.path().join("binary"), [0xff, 0xfe, 0x00]).unwrap();
        let failure = super::read(&file("binary"), dir.path(), &env).unwrap_err();
        assert!(failure.what.contains("not UTF-8"));
    }

    #[test]
    fn permission_denied_is_named() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locked");
        fs::write(&path, "sk-x").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
        let result = read(
            &CredentialSource::File { path: path.clone() },
            dir.path(),
            &FixedEnv::new(),
        );
        // root reads any file regardless of mode; the rule is exercised where it can be.
        if fs::read(&path).is_err() {
            let failure = result.unwrap_err();
            assert_eq!(failure.code, ProblemCode::Unreadable);
            assert!(failure.what.contains("permission denied"));
        } else {
            assert!(result.is_ok());
        }
    }

    #[test]
    fn dotenv_entries_and_failures() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(".env"), "A=sk-a\nB=\n").unwrap();
        let source = |key: &str| CredentialSource::Dotenv {
            path: ".env".into(),
            key: key.into(),
        };
        let env = FixedEnv::new().with("A", "from-process");
        let read = read(&source("A"), dir.path(), &env).unwrap();
        assert_eq!(
            read.value.expose(),
            "sk-a",
            "the dotenv file wins over the process"
        );
        assert_eq!(read.origin.label(), "dotenv:.env#A");
        assert_eq!(
            super::read(&source("B"), dir.path(), &env)
                .unwrap_err()
                .code,
            ProblemCode::Empty
        );
        assert_eq!(
            super::read(&source("C"), dir.path(), &env)
                .unwrap_err()
                .code,
            ProblemCode::Missing
        );
        fs::write(dir.path().join(".env"), "A=sk-a\nthis line is broken\n").unwrap();
        let failure = super::read(&source("A"), dir.path(), &env).unwrap_err();
        assert_eq!(failure.code, ProblemCode::Unreadable);
        assert!(
            failure.what.ends_with("line 2: expected NAME=VALUE"),
            "{}",
            failure.what
        );
        assert!(!failure.what.contains("broken"));
    }

    #[test]
    fn trimming_reports_what_it_did() {
        let mut value = "abc\r\n\n".to_owned();
        assert!(trim_trailing_newlines(&mut value));
        assert_eq!(value, "abc");
        let mut value = "abc".to_owned();
        assert!(!trim_trailing_newlines(&mut value));
    }
}
