//! The same suite against SQLite (file and memory) and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

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
            measure_batch_write,
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
