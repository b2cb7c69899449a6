//! Small helpers for writing SQL that both SQLite and PostgreSQL accept
//! through sqlx's Any driver.

use std::fmt::Write as _;

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Backend, StoreError};

/// Rows per multi-row statement. PostgreSQL allows 65 535 bind parameters
/// per statement and SQLite 32 766; 17 columns x 500 rows stays well under
/// both while still amortising the round trip.
pub(crate) const ROWS_PER_STATEMENT: usize = 500;

/// The n-th (1-based) bind parameter in `backend`'s dialect.
///
/// Written by hand because the Any driver's `QueryBuilder` emits `?`,
/// which PostgreSQL rejects. SQLite accepts `$n` too, but looks each named
/// parameter up by a linear scan, when preparing and again when binding:
/// quadratic, about 1 ms per row for a 500-row insert. Plain `?` is bound
/// by position, and our parameters are always in order.
fn placeholder(sql: &mut String, backend: Backend, n: usize) {
    match backend {
        Backend::Postgres => {
            let _ = write!(sql, "${n}");
        }
        Backend::Sqlite => sql.push('?'),
    }
}

/// `INSERT INTO table (cols) VALUES ($1, $2), ($3, $4) <tail>`, with
/// `?` for SQLite.
pub(crate) fn insert_values(
    backend: Backend,
    table: &str,
    columns: &[&str],
    rows: usize,
    tail: &str,
) -> String {
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    let mut n = 0;
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for col in 0..columns.len() {
            if col > 0 {
                sql.push_str(", ");
            }
            n += 1;
            placeholder(&mut sql, backend, n);
        }
        sql.push(')');
    }
    sql.push_str(tail);
    sql
}

/// `$1, $2, ...` (or `?, ?, ...`) for an `IN (...)` list of `count` values
/// that are the statement's only parameters.
pub(crate) fn placeholders(backend: Backend, count: usize) -> String {
    let mut sql = String::new();
    for n in 1..=count {
        if n > 1 {
            sql.push_str(", ");
        }
        placeholder(&mut sql, backend, n);
    }
    sql
}

/// PostgreSQL answers BOOLEAN, SQLite 0/1 (see the SQLite migration).
pub(crate) fn get_bool(row: &AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    match row.try_get::<bool, _>(column) {
        Ok(b) => Ok(b),
        Err(_) => row.try_get::<i64, _>(column).map(|n| n != 0),
    }
}

/// Counts are u64 in Rust but BIGINT in SQL; saturate rather than fail on
/// a value no real counter reaches.
pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Negative counts can only come from a hand-edited database; read them as 0.
pub(crate) fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

pub(crate) fn corrupt(what: &'static str, value: &str) -> StoreError {
    StoreError::Corrupt {
        what,
        value: value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_placeholders_across_rows() {
        assert_eq!(
            insert_values(
                Backend::Postgres,
                "t",
                &["a", "b"],
                2,
                " ON CONFLICT DO NOTHING"
            ),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) ON CONFLICT DO NOTHING"
        );
        assert_eq!(
            insert_values(Backend::Sqlite, "t", &["a", "b"], 2, ""),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)"
        );
        assert_eq!(placeholders(Backend::Postgres, 3), "$1, $2, $3");
        assert_eq!(placeholders(Backend::Sqlite, 2), "?, ?");
    }

    #[test]
    fn counters_saturate() {
        assert_eq!(to_i64(u64::MAX), i64::MAX);
        assert_eq!(to_u64(-1), 0);
        assert_eq!(to_u64(7), 7);
    }
}
