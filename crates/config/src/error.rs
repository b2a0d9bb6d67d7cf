//! Errors of the config layer: finding, reading and validating `agentfleet.toml`.
//!
//! Messages are lowercase fragments that name the key, file or variable at fault and never
//! quote a value that could be a credential.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// One problem in a config file, with where it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// What is wrong and, where one fits, how to fix it or what was probably meant.
    pub message: String,
    /// The config file.
    pub file: Option<PathBuf>,
    /// 1-based line.
    pub line: Option<usize>,
    /// 1-based column, in characters.
    pub column: Option<usize>,
}

impl fmt::Display for Diagnostic {
    /// `file:line:column: message`, dropping whatever is unknown.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(formatter, "{}", file.display())?;
            if let (Some(line), Some(column)) = (self.line, self.column) {
                write!(formatter, ":{line}:{column}")?;
            }
            formatter.write_str(": ")?;
        }
        formatter.write_str(&self.message)
    }
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No `--config`, no `AGENTFLEET_CONFIG` and no `./agentfleet.toml`.
    #[error(
        "no config file: pass --config PATH, set AGENTFLEET_CONFIG, or create ./agentfleet.toml"
    )]
    NotFound,
    /// The named file could not be read.
    #[error("cannot read config file {path} (named by {named_by}): {reason}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// `--config`, `AGENTFLEET_CONFIG` or the working directory.
        named_by: &'static str,
        /// The operating system's reason, without the file's content.
        reason: String,
    },
    /// The file was read and has problems; all of them are listed.
    #[error("{} in {}", plural(diagnostics.len(), "problem"), path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found, in file order.
        diagnostics: Vec<Diagnostic>,
    },
}

impl ConfigError {
    /// Every problem as a diagnostic, for reports that list them uniformly.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        match self {
            ConfigError::Invalid { diagnostics, .. } => diagnostics.clone(),
            ConfigError::Unreadable { path, .. } => vec![Diagnostic {
                message: self.to_string(),
                file: Some(path.clone()),
                line: None,
                column: None,
            }],
            ConfigError::NotFound => {
                vec![Diagnostic {
                    message: self.to_string(),
                    file: None,
                    line: None,
                    column: None,
                }]
            }
        }
    }
}

/// `1 problem`, `2 problems`.
pub(crate) fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_print_as_file_line_column() {
        let diagnostic = Diagnostic {
            message: "unknown key".into(),
            file: Some("agentfleet.toml".into()),
            line: Some(3),
            column: Some(1),
        };
        assert_eq!(diagnostic.to_string(), "agentfleet.toml:3:1: unknown key");
    }

    #[test]
    fn invalid_counts_its_problems() {
        let error = ConfigError::Invalid {
            path: "a.toml".into(),
            diagnostics: vec![],
        };
        assert_eq!(error.to_string(), "0 problems in a.toml");
        assert_eq!(plural(1, "problem"), "1 problem");
    }
}
