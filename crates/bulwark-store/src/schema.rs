//! Schema migrations, one directory per backend because the two dialects
//! disagree on types (SQLite's BOOLEAN cannot be read through the Any
//! driver; PostgreSQL needs BIGINT where SQLite's INTEGER is already 64-bit).
//!
//! The SQL is embedded with `include_str!` rather than read from disk at
//! run time, so a deployed binary needs no migrations folder beside it, and
//! without `sqlx::migrate!`, which would pull in sqlx's macro machinery.

use std::borrow::Cow;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyConnection, AnyPool, Connection, Executor, SqlSafeStr};
use tokio::time::Instant;

use crate::{Backend, StoreError};

/// `(version, description, sql)`, in order. Append; never edit a shipped
/// one: sqlx checks the checksums of applied migrations.
const SQLITE: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "dropped",
        include_str!("../migrations/sqlite/0002_dropped.sql"),
    ),
    (
        3,
        "client_request_id",
        include_str!("../migrations/sqlite/0003_client_request_id.sql"),
    ),
    (
        4,
        "responses",
        include_str!("../migrations/sqlite/0004_responses.sql"),
    ),
    (
        5,
        "response_bytes",
        include_str!("../migrations/sqlite/0005_response_bytes.sql"),
    ),
];

const POSTGRES: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "dropped",
        include_str!("../migrations/postgres/0002_dropped.sql"),
    ),
    (
        3,
        "client_request_id",
        include_str!("../migrations/postgres/0003_client_request_id.sql"),
    ),
    (
        4,
        "responses",
        include_str!("../migrations/postgres/0004_responses.sql"),
    ),
    (
        5,
        "response_bytes",
        include_str!("../migrations/postgres/0005_response_bytes.sql"),
    ),
];

/// The PostgreSQL advisory lock held while the schema is brought up to
/// date (`bulwark` and a version byte). Every instance of a deployment
/// starts with the same key, so when several start at once one migrates
/// and the others wait for it, then find nothing left to do.
const SCHEMA_LOCK: i64 = 0x6275_6c77_6172_6b01;

/// How long an instance waits for another to finish migrating before it
/// gives up. Migrations take seconds; a holder that keeps the lock for a
/// minute is frozen or stuck, and a clear error beats a start that never
/// ends.
pub(crate) const SCHEMA_LOCK_WAIT: Duration = Duration::from_secs(60);

/// Between two attempts at the lock: cheap for the server, and a waiting
/// instance starts well under a second after the migrating one is done.
const LOCK_RETRY: Duration = Duration::from_millis(250);

/// While waiting, a line this often, so a slow start explains itself.
const LOCK_LOG_EVERY: Duration = Duration::from_secs(10);

/// Brings the schema up to date. On PostgreSQL under [`SCHEMA_LOCK`], held
/// on a connection of its own while the migrations run on another: sqlx
/// locks too, but on a key of its own choosing and only around its own
/// steps; this lock is ours, documented, and covers whatever setup is added
/// here later. Waits at most `lock_wait` for the lock.
pub(crate) async fn migrate(
    pool: &AnyPool,
    backend: Backend,
    lock_wait: Duration,
) -> Result<(), StoreError> {
    let failed = |source| StoreError::Migrate {
        backend: backend.name(),
        source,
    };
    let migrator = migrator(backend);
    if backend != Backend::Postgres {
        return migrator.run(pool).await.map_err(failed);
    }
    let mut conn = pool
        .acquire()
        .await
        .map_err(|source| failed(source.into()))?;
    lock(&mut conn, lock_wait).await?;
    // On the pool, not `&mut *conn`: that makes `Store::connect` a future
    // that cannot be spawned (sqlx's `Acquire` is not general enough).
    let migrated = migrator.run(pool).await;
    let unlocked = conn
        .execute(sqlx::AssertSqlSafe(format!(
            "SELECT 1 FROM pg_advisory_unlock({SCHEMA_LOCK})"
        )))
        .await;
    if unlocked.is_err() {
        // A session lock lives as long as its connection: this one must not
        // go back to the pool holding it.
        let _ = conn.detach().close().await;
    }
    migrated.map_err(failed)
}

/// Takes [`SCHEMA_LOCK`], trying rather than blocking: `pg_advisory_lock`
/// would wait forever behind a holder that is frozen (SIGSTOP, a hung VM)
/// with its session still open.
async fn lock(conn: &mut AnyConnection, wait: Duration) -> Result<(), StoreError> {
    let started = Instant::now();
    let mut next_log = started;
    loop {
        // `::int`: the Any driver reads integers more reliably than
        // PostgreSQL's bool.
        let taken: i32 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT pg_try_advisory_lock({SCHEMA_LOCK})::int"
        )))
        .fetch_one(&mut *conn)
        .await
        .map_err(|source| StoreError::Query {
            op: "taking the schema lock",
            backend: Backend::Postgres.name(),
            source,
        })?;
        if taken == 1 {
            return Ok(());
        }
        let now = Instant::now();
        if now >= started + wait {
            return Err(StoreError::SchemaLocked { waited: wait });
        }
        if now >= next_log {
            tracing::info!(
                waited = ?now - started,
                "waiting for another Bulwark instance to finish migrating the database schema"
            );
            next_log = now + LOCK_LOG_EVERY;
        }
        tokio::time::sleep(LOCK_RETRY.min(started + wait - now)).await;
    }
}

fn migrator(backend: Backend) -> Migrator {
    let source = match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    };
    let migrations = source
        .iter()
        .map(|&(version, description, sql)| {
            Migration::new(
                version,
                Cow::Borrowed(description),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// The maintenance database on the machine's PostgreSQL (trust auth).
    fn admin_url() -> String {
        std::env::var("BULWARK_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
    }

    /// A holder that keeps the lock (here: another session that never lets
    /// go, as a frozen instance would) makes the migration give up at its
    /// deadline with `SchemaLocked`, instead of waiting forever; once the
    /// lock is free the same migration goes through.
    #[tokio::test]
    async fn a_held_schema_lock_fails_the_migration_at_the_deadline() -> TestResult {
        sqlx::any::install_default_drivers();
        let admin = admin_url();
        let name = format!(
            "bulwark_schema_lock_{}_{}",
            std::process::id(),
            fastrand::u32(..)
        );
        let mut admin_conn = AnyConnection::connect(&admin).await?;
        admin_conn
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await?;
        let Some((base, _)) = admin.rsplit_once('/') else {
            panic!("no database in {admin}");
        };
        let url = format!("{base}/{name}");
        let outcome = async {
            let pool = AnyPool::connect(&url).await?;
            let mut holder = AnyConnection::connect(&url).await?;
            holder
                .execute(sqlx::AssertSqlSafe(format!(
                    "SELECT 1 FROM pg_advisory_lock({SCHEMA_LOCK})"
                )))
                .await?;
            let started = Instant::now();
            let wait = Duration::from_millis(600);
            let held = migrate(&pool, Backend::Postgres, wait).await;
            let took = started.elapsed();
            let Err(StoreError::SchemaLocked { waited }) = held else {
                panic!("expected SchemaLocked, got {held:?}");
            };
            assert_eq!(waited, wait);
            assert!(took >= wait, "gave up early, after {took:?}");
            assert!(took < wait + Duration::from_secs(5), "took {took:?}");
            holder.close().await?;
            migrate(&pool, Backend::Postgres, wait).await?;
            pool.close().await;
            Ok::<(), Box<dyn std::error::Error>>(())
        }
        .await;
        admin_conn
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .await?;
        outcome
    }

    #[test]
    fn both_backends_have_the_same_versions() {
        let versions = |m: &[(i64, &str, &str)]| m.iter().map(|m| m.0).collect::<Vec<_>>();
        assert_eq!(versions(SQLITE), versions(POSTGRES));
    }

    #[test]
    fn both_backends_create_the_same_tables() {
        let tables = |sql: &str| {
            sql.lines()
                .filter_map(|l| l.strip_prefix("CREATE TABLE "))
                .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(tables(SQLITE[0].2), tables(POSTGRES[0].2));
        assert_eq!(tables(SQLITE[0].2).len(), 6);
    }
}
