//! Scenario problems, reported the way `bulwark check` reports config
//! problems: `file: key.path: reason`, every problem at once.

use std::fmt;

/// One problem in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Dotted key path, e.g. `providers.anthropic.phases[1].errors.529`;
    /// empty for the file as a whole.
    pub path: String,
    pub message: String,
}

impl Issue {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// A scenario that cannot be used, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ScenarioError {
    /// The file name (or whatever the text came from).
    pub source_name: String,
    pub issues: Vec<Issue>,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.issues.len();
        write!(
            f,
            "{}: {count} problem{} found",
            self.source_name,
            if count == 1 { "" } else { "s" }
        )?;
        for issue in &self.issues {
            if issue.path.is_empty() {
                write!(f, "\n  {}: {}", self.source_name, issue.message)?;
            } else {
                write!(
                    f,
                    "\n  {}: {}: {}",
                    self.source_name, issue.path, issue.message
                )?;
            }
        }
        Ok(())
    }
}
