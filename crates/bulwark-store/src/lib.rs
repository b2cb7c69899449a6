//! The request log and persistence layer: every request and its upstream
//! attempts, hourly per-route counts for SLOs, incidents with their
//! timelines, per-day uptime per component, and the stored OpenAI
//! Responses behind `previous_response_id`.
//!
//! SQLite is the default because a single gateway should need nothing but
//! a file; PostgreSQL is there for several gateways sharing one history.
//! Both go through sqlx's Any driver with SQL that both dialects accept, so
//! there is one implementation to test, run against both backends.
//!
//! Nothing here is on the request path: the gateway hands records to a
//! [`LogWriter`], which batches them off to the database and drops rather
//! than waits when the database is slow.

mod error;
mod incidents;
mod requests;
mod responses;
mod retention;
mod schema;
mod sql;
mod uptime;
pub mod writer;

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

pub use error::{StoreError, redact_url};
pub use responses::{PutOutcome, ResponseLimits, StoredResponse};
pub use retention::{spawn_response_expiry, spawn_retention};
pub use uptime::{UptimeDay, day_start, utc_date};
pub use writer::{LogSender, LogWriter, WriterOptions, WriterStats};

/// Connections wait this long for a locked SQLite database before failing,
/// so a concurrent writer (another gateway, a purge) delays rather than
/// loses a batch.
const SQLITE_BUSY_TIMEOUT_MS: u64 = 5_000;

/// A dead database should fail a batch within seconds, not the 30 s sqlx
/// default, so the writer can count the loss and move on.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A handle on the database. Cloning shares the connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Opens the database and brings its schema up to date.
    ///
    /// - `sqlite://path/to/file.db` (or `sqlite:path`): created with its
    ///   directory if missing; WAL, `synchronous=NORMAL` and a busy timeout,
    ///   so readers never block the writer and commits do not fsync twice.
    /// - `sqlite::memory:`: one connection, because each SQLite connection
    ///   to `:memory:` would otherwise be a separate, empty database.
    /// - `postgres://user@host:5432/db` (or `postgresql://`).
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        install_default_drivers();
        let (backend, connect_url, memory) = classify(url)?;

        let mut options = AnyPoolOptions::new().acquire_timeout(ACQUIRE_TIMEOUT);
        options = match (backend, memory) {
            (Backend::Sqlite, true) => options
                .max_connections(1)
                .min_connections(1)
                // The database lives only as long as its connection.
                .idle_timeout(None)
                .max_lifetime(None),
            (Backend::Sqlite, false) => options.max_connections(4),
            (Backend::Postgres, _) => options.max_connections(8),
        };
        if backend == Backend::Sqlite {
            options = options.after_connect(move |conn, _meta| {
                Box::pin(async move {
                    // Per-connection settings; WAL persists in the file but
                    // setting it again is harmless. In-memory databases
                    // answer `memory` and keep going.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute(sqlx::AssertSqlSafe(format!(
                        "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}"
                    )))
                    .await?;
                    Ok(())
                })
            });
        }

        let pool = options
            .connect(&connect_url)
            .await
            .map_err(|source| StoreError::Connect {
                backend: backend.name(),
                url: error::redact_url(url),
                source,
            })?;
        schema::migrate(&pool, backend, schema::SCHEMA_LOCK_WAIT).await?;
        Ok(Store { pool, backend })
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        self.backend.name()
    }

    /// Whether the database answers, for health and readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(self.err("ping"))?;
        Ok(())
    }

    /// The underlying pool, for ad-hoc queries (reports, tests) that have no
    /// method here. The schema is in `migrations/`.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes every connection; pending queries finish first.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) fn err(&self, op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError + use<> {
        let backend = self.backend.name();
        move |source| StoreError::Query {
            op,
            backend,
            source,
        }
    }
}

/// Picks the backend and the URL sqlx should see: SQLite files get
/// `mode=rwc` (sqlx opens read-write without creating by default) and their
/// directory is created.
fn classify(url: &str) -> Result<(Backend, String, bool), StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Backend::Postgres, url.to_string(), false));
    }
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return Err(StoreError::UnsupportedUrl {
            url: error::redact_url(url),
        });
    };
    let path = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    if path.is_empty() {
        return Err(StoreError::UnsupportedUrl {
            url: url.to_string(),
        });
    }
    let memory = path == ":memory:" || query.is_some_and(|q| q.contains("mode=memory"));
    if memory {
        return Ok((Backend::Sqlite, url.to_string(), true));
    }
    if let Some(dir) = std::path::Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            dir: dir.display().to_string(),
            source,
        })?;
    }
    let connect_url = match query {
        Some(q) if q.contains("mode=") => url.to_string(),
        Some(_) => format!("{url}&mode=rwc"),
        None => format!("{url}?mode=rwc"),
    };
    Ok((Backend::Sqlite, connect_url, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_the_backend() {
        let (b, u, m) = classify("postgres://a@h/db").unwrap();
        assert_eq!(
            (b, u.as_str(), m),
            (Backend::Postgres, "postgres://a@h/db", false)
        );
        let (b, _, m) = classify("sqlite::memory:").unwrap();
        assert_eq!((b, m), (Backend::Sqlite, true));
        let dir = std::env::temp_dir().join(format!("bulwark-classify-{}", std::process::id()));
        let url = format!("sqlite://{}/x.db", dir.display());
        let (b, u, m) = classify(&url).unwrap();
        assert_eq!((b, m), (Backend::Sqlite, false));
        assert_eq!(u, format!("{url}?mode=rwc"));
        assert!(dir.is_dir());
        let _ = std::fs::remove_dir_all(dir);
        assert!(matches!(
            classify("mysql://x"),
            Err(StoreError::UnsupportedUrl { .. })
        ));
    }
}
