//! One error type for the whole store, worded for the operator who has to
//! fix it: each message says what went wrong and where to look.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error(
        "unsupported database URL `{url}`: use `sqlite://path/to/file.db`, \
         `sqlite::memory:` or `postgres://user@host:5432/dbname`"
    )]
    UnsupportedUrl { url: String },

    #[error(
        "could not create the directory `{dir}` for the SQLite database: {source}; \
         check the path and its permissions"
    )]
    CreateDir {
        dir: String,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "could not connect to the {backend} database at `{url}`: {source}; check the URL, \
         that the server is running and accepts this user, and that the file is writable"
    )]
    Connect {
        backend: &'static str,
        /// Password removed.
        url: String,
        #[source]
        source: sqlx::Error,
    },

    #[error(
        "could not bring the {backend} schema up to date: {source}; if another Bulwark \
         version migrated this database, run the same version or point `store.url` at a \
         fresh database"
    )]
    Migrate {
        backend: &'static str,
        #[source]
        source: sqlx::migrate::MigrateError,
    },

    #[error(
        "gave up on the schema after waiting {waited:?} for another process to finish \
         migrating it (PostgreSQL advisory lock 0x62756c77_61726b01): that process may be \
         frozen or stuck; find it with `SELECT pid FROM pg_locks WHERE locktype = \
         'advisory' AND classid = 1651862647 AND objid = 1634888449`, stop it or end its \
         session (`SELECT pg_terminate_backend(pid)`), and start again"
    )]
    SchemaLocked { waited: std::time::Duration },

    #[error(
        "{op} failed on the {backend} database: {source}; check that the database is \
         reachable, not dropped, not read-only and not out of disk space"
    )]
    Query {
        op: &'static str,
        backend: &'static str,
        #[source]
        source: sqlx::Error,
    },

    #[error(
        "the stored {what} `{value}` is not one this Bulwark knows: the database was \
         probably written by a newer version; upgrade Bulwark or use another database"
    )]
    Corrupt { what: &'static str, value: String },

    #[error(
        "the response `{id}` was not stored: its conversation is {bytes} bytes, over the \
         {max_bytes}-byte cap (`conversations.max_bytes`); start a new conversation or \
         raise the cap"
    )]
    ResponseTooLarge {
        id: String,
        bytes: usize,
        max_bytes: usize,
    },

    #[error(
        "response {id} not stored: its {bytes} bytes would bring this client key's stored \
         conversations to {total} bytes, over the limit of {max_bytes} \
         (config key `conversations.max_bytes_per_key`); older ones are freed as they expire \
         (`conversations.ttl`) or are deleted"
    )]
    KeyBudgetExceeded {
        id: String,
        bytes: usize,
        total: u64,
        max_bytes: u64,
    },

    #[error(
        "uptime seconds must be finite, at least 0 and at most one year, got {seconds}: \
         pass the time observed since the previous report"
    )]
    InvalidSeconds { seconds: f64 },
}

impl StoreError {
    /// Whether the database could not be reached (a lost connection, no
    /// connection within the pool's wait, a server shutting down), as
    /// opposed to one that answered with an error. The request log retries
    /// the first kind: the same batch can succeed once the database is back.
    pub fn is_unreachable(&self) -> bool {
        let source = match self {
            StoreError::Query { source, .. } | StoreError::Connect { source, .. } => source,
            _ => return false,
        };
        // Not `Protocol`: the server answered, with something the driver did
        // not expect from this batch. Retried, the same batch would fail the
        // same way and hold up every later one at the head of the queue.
        match source {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::WorkerCrashed => true,
            // SQLSTATE class 08: connection exception; 57P01-03: the
            // server is shutting down or cannot accept connections yet.
            sqlx::Error::Database(error) => error
                .code()
                .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
            _ => false,
        }
    }
}

/// Removes the password from a connection URL so it can go into logs and
/// error messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{StoreError, redact_url};

    fn query(source: sqlx::Error) -> StoreError {
        StoreError::Query {
            op: "test",
            backend: "PostgreSQL",
            source,
        }
    }

    /// Only a database that could not be reached is retried: an answer the
    /// driver could not make sense of would come back for the same batch
    /// each time, and the writer would never get past it.
    #[test]
    fn only_connection_failures_are_unreachable() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(query(sqlx::Error::Io(io)).is_unreachable());
        assert!(query(sqlx::Error::PoolTimedOut).is_unreachable());
        assert!(query(sqlx::Error::WorkerCrashed).is_unreachable());
        assert!(!query(sqlx::Error::Protocol("unexpected message".into())).is_unreachable());
        assert!(!query(sqlx::Error::RowNotFound).is_unreachable());
        assert!(!query(sqlx::Error::ColumnNotFound("id".into())).is_unreachable());
        assert!(
            !StoreError::SchemaLocked {
                waited: std::time::Duration::from_secs(1)
            }
            .is_unreachable()
        );
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact_url("postgres://bob:s3cret@db:5432/x"),
            "postgres://bob:***@db:5432/x"
        );
        assert_eq!(redact_url("postgres://bob@db/x"), "postgres://bob@db/x");
        assert_eq!(redact_url("sqlite://data/b.db"), "sqlite://data/b.db");
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
    }
}
