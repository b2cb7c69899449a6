//! Schema migrations, one directory per backend because the two dialects
//! disagree on types (SQLite's BOOLEAN cannot be read through the Any
//! driver; PostgreSQL needs BIGINT where SQLite's INTEGER is already 64-bit).
//!
//! The SQL is embedded with `include_str!` rather than read from disk at
//! run time, so a deployed binary needs no migrations folder beside it, and
//! without `sqlx::migrate!`, which would pull in sqlx's macro machinery.

use std::borrow::Cow;

use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Connection, Executor, SqlSafeStr};

use crate::Backend;

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

/// Brings the schema up to date. On PostgreSQL under [`SCHEMA_LOCK`], held
/// on a connection of its own while the migrations run on another: sqlx
/// locks too, but on a key of its own choosing and only around its own
/// steps; this lock is ours, documented, and covers whatever setup is added
/// here later.
pub(crate) async fn migrate(pool: &AnyPool, backend: Backend) -> Result<(), MigrateError> {
    let migrator = migrator(backend);
    if backend != Backend::Postgres {
        return migrator.run(pool).await;
    }
    let mut conn = pool.acquire().await?;
    // pg_advisory_lock returns `void`, which the Any driver cannot decode:
    // selected from, it yields one row and no value to decode.
    conn.execute(sqlx::AssertSqlSafe(format!(
        "SELECT 1 FROM pg_advisory_lock({SCHEMA_LOCK})"
    )))
    .await?;
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
    migrated
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
