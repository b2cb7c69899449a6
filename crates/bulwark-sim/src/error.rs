//! Errors surfaced to Rust callers of the simulator (not to HTTP clients,
//! which always get a provider-shaped error body instead).

use std::path::PathBuf;

/// Failures when loading a scenario or running the server.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The scenario file could not be read.
    #[error("cannot read scenario {path}: {source}")]
    ScenarioIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The scenario file is not a valid simulator config.
    #[error("invalid scenario {path}: {reason}")]
    Scenario { path: PathBuf, reason: String },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server stopped with an I/O error.
    #[error("server error: {0}")]
    Serve(#[source] std::io::Error),
}
