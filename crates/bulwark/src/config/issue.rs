//! How a file's problems are reported: every one, each with its key path.

use std::fmt;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Dotted key path, e.g. `routes.smart.targets[1]`.
    pub path: String,
    pub message: String,
}

impl Issue {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Issue {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// A file that cannot be used, with every problem found: a config here,
/// and a drill scenario in `bulwark-drill`, reported the same way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub source_name: String,
    pub issues: Vec<Issue>,
}

impl ConfigError {
    pub fn new(source_name: impl Into<String>, issues: Vec<Issue>) -> Self {
        ConfigError {
            source_name: source_name.into(),
            issues,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.issues.len();
        writeln!(
            f,
            "{}: {count} problem{} found",
            self.source_name,
            if count == 1 { "" } else { "s" }
        )?;
        for issue in &self.issues {
            if issue.path.is_empty() {
                writeln!(f, "  {}: {}", self.source_name, issue.message)?;
            } else {
                writeln!(
                    f,
                    "  {}: {}: {}",
                    self.source_name, issue.path, issue.message
                )?;
            }
        }
        Ok(())
    }
}

/// `prefix.inner`, as issue paths are written.
pub(crate) fn join_path(prefix: &str, inner: &str) -> String {
    match (prefix.is_empty(), inner) {
        (_, "." | "") => prefix.to_string(),
        (true, _) => inner.to_string(),
        (false, _) => format!("{prefix}.{inner}"),
    }
}
