//! The same suite against SQLite (file and memory) and PostgreSQL.

mod common;

use common::{Kind, TestDb, suite};

macro_rules! tests {
    ($kind:expr; $($name:ident),* $(,)?; current_thread: $($ct:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let db = TestDb::new($kind).await;
                suite::$name(&db).await;
            }
        )*
        $(
            #[tokio::test(flavor = "current_thread")]
            async fn $ct() {
                let db = TestDb::new($kind).await;
                suite::$ct(&db).await;
            }
        )*
    };
}

macro_rules! common_suite {
    ($kind:expr $(, $extra:ident)*) => {
        tests!(
            $kind;
            connects_and_pings,
            requests_round_trip_field_by_field,
            duplicate_ids_are_skipped_not_counted_twice,
            null_and_real_floats_alternate_across_statements,
            rollups_count_per_route_and_hour,
            purge_removes_old_requests_and_attempts_only,
            incidents_upsert_and_replace_their_timeline,
            uptime_accumulates_per_utc_day,
            writer_batches_everything_sent,
            writer_survives_a_failing_store,
            retention_task_purges_old_rows,
            measure_batch_write,
            responses_are_kept_per_tenant,
            a_response_id_is_replaced_only_by_its_tenant,
            a_response_over_the_cap_is_refused_unwritten,
            a_keys_stored_responses_stay_within_its_budget,
            responses_expire,
            $($extra,)*;
            current_thread: writer_overflow_drops_and_counts
        );
    };
}

mod sqlite_file {
    use super::*;
    common_suite!(
        Kind::SqliteFile,
        writer_never_slows_senders_when_the_store_is_locked
    );
}

mod sqlite_memory {
    use super::*;
    common_suite!(Kind::SqliteMemory);
}

mod postgres {
    use super::*;
    common_suite!(
        Kind::Postgres,
        writer_never_slows_senders_when_the_store_is_locked,
        writer_survives_a_dropped_database
    );
}

/// Errors that say what to fix, whatever the backend.
mod errors {
    use std::time::Duration;

    use bulwark_store::{Store, StoreError};
    use tokio::time::Instant;

    #[tokio::test]
    async fn unsupported_urls_list_the_supported_ones() {
        let err = Store::connect("mysql://root@localhost/db")
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::UnsupportedUrl { .. }));
        let text = err.to_string();
        assert!(
            text.contains("sqlite://") && text.contains("postgres://"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn an_uncreatable_sqlite_directory_is_named() {
        let err = Store::connect("sqlite:///proc/bulwark-no/such/dir/x.db")
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::CreateDir { .. }), "{err}");
        assert!(
            err.to_string().contains("/proc/bulwark-no/such/dir"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_missing_postgres_database_fails_fast_without_the_password() {
        let started = Instant::now();
        let err =
            Store::connect("postgres://postgres:hunter2@127.0.0.1:5432/bulwark_store_no_such_db")
                .await
                .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Connect {
                    backend: "postgres",
                    ..
                }
            ),
            "{err}"
        );
        let text = err.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("postgres:***@"), "{text}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
