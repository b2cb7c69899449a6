//! The store's behaviour, written once and run on every backend.

use std::time::Duration;

use bulwark::observe::UnixMs;
use bulwark::observe::component::{ComponentKind, ComponentState};
use bulwark::observe::incident::{Impact, Incident, IncidentStatus, TimelineEntry, TimelineKind};
use bulwark::observe::record::RequestRecord;
use bulwark_store::{
    LogWriter, PutOutcome, ResponseLimits, StoreError, StoredResponse, WriterOptions,
};
use tokio::time::Instant;

use super::{Kind, TestDb, bare_record, full_record};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;
/// 2026-05-01T00:00:00Z.
const T0: UnixMs = 1_777_593_600_000;

pub async fn connects_and_pings(db: &TestDb) {
    db.store.ping().await.expect("ping");
    let expected = match db.kind {
        Kind::Postgres => "postgres",
        Kind::SqliteFile | Kind::SqliteMemory => "sqlite",
    };
    assert_eq!(db.store.backend(), expected);
    if db.kind == Kind::SqliteFile {
        use sqlx::Row;
        let pragma = |name: &'static str| async move {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA {name}")))
                .fetch_one(db.store.pool())
                .await
                .expect("pragma");
            match row.try_get::<String, _>(0) {
                Ok(text) => text,
                Err(_) => row.try_get::<i64, _>(0).expect("pragma value").to_string(),
            }
        };
        assert_eq!(pragma("journal_mode").await, "wal");
        assert_eq!(pragma("synchronous").await, "1", "NORMAL");
        assert_eq!(pragma("busy_timeout").await, "5000");
    }
    // Connecting again runs the migrations again: a no-op, not an error.
    if db.kind != Kind::SqliteMemory {
        let again = bulwark_store::Store::connect(&db.url)
            .await
            .expect("reconnect");
        again.ping().await.expect("ping again");
    }
}

pub async fn requests_round_trip_field_by_field(db: &TestDb) {
    let batch = vec![
        full_record("r1", T0 + 5, "smart", 3),
        bare_record("r2", T0 + 1, "cheap", 200),
        full_record("r3", T0 + 5, "smart", 1),
        bare_record("r4", T0 + 10, "smart", 503),
    ];
    db.store.insert_requests(&batch).await.expect("insert");
    assert_eq!(db.count("requests").await, 4);
    assert_eq!(db.count("attempts").await, 4);

    let got = db
        .store
        .requests_between(T0, T0 + 11, None)
        .await
        .expect("read");
    // Ordered by time, then id.
    let ids: Vec<&str> = got.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["r2", "r1", "r3", "r4"]);
    for r in &got {
        let want = batch.iter().find(|w| w.id == r.id).expect("known id");
        assert_eq!(r.at, want.at);
        assert_eq!(r.route, want.route);
        assert_eq!(r.client_format, want.client_format);
        assert_eq!(r.stream, want.stream);
        assert_eq!(r.status, want.status);
        assert_eq!(r.error_class, want.error_class);
        assert_eq!(r.target, want.target);
        assert_eq!(r.fallback, want.fallback);
        assert_eq!(r.cache, want.cache);
        assert_eq!(r.degraded, want.degraded);
        assert_eq!(r.dropped, want.dropped);
        assert_eq!(r.latency_ms, want.latency_ms);
        assert_eq!(r.first_token_ms, want.first_token_ms);
        assert_eq!(r.input_tokens, want.input_tokens);
        assert_eq!(r.output_tokens, want.output_tokens);
        assert_eq!(r.key_id, want.key_id);
        assert_eq!(r.request_body, want.request_body);
        assert_eq!(r.attempts.len(), want.attempts.len(), "{}", r.id);
        for (a, w) in r.attempts.iter().zip(&want.attempts) {
            assert_eq!(a.target, w.target);
            assert_eq!(a.at, w.at);
            assert_eq!(a.latency_ms, w.latency_ms);
            assert_eq!(a.first_token_ms, w.first_token_ms);
            assert_eq!(a.status, w.status);
            assert_eq!(a.error_class, w.error_class);
            assert_eq!(a.hedge, w.hedge);
        }
        assert_eq!(r, want, "whole record");
    }

    // [from, to): the end is exclusive, the start inclusive.
    let window = db
        .store
        .requests_between(T0 + 5, T0 + 10, None)
        .await
        .expect("read");
    assert_eq!(
        window.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["r1", "r3"]
    );
    // A limit keeps the oldest, attempts included.
    let limited = db
        .store
        .requests_between(T0, T0 + 11, Some(2))
        .await
        .expect("read");
    assert_eq!(limited.len(), 2);
    assert_eq!(limited[1], batch[0]);
    assert!(
        db.store
            .requests_between(T0 + 11, T0 + 99, None)
            .await
            .expect("read")
            .is_empty()
    );
}

/// Same-shaped statements are reused: a NULL and then a real float in the
/// same slot must both work (sqlx's Any driver types a NULL f64 as FLOAT4,
/// which a cached PostgreSQL statement would then insist on). 1000 rows
/// make two 500-row statements in one transaction, on one connection.
pub async fn null_and_real_floats_alternate_across_statements(db: &TestDb) {
    let batch: Vec<RequestRecord> = (0..1_000)
        .map(|i| {
            let mut r = full_record(&format!("alt{i:04}"), T0 + i, "smart", 1);
            if i < 500 {
                r.first_token_ms = None;
                r.attempts[0].first_token_ms = None;
            }
            r
        })
        .collect();
    db.store.insert_requests(&batch).await.expect("insert");
    let got = db
        .store
        .requests_between(T0, T0 + 1_000, None)
        .await
        .expect("read");
    assert_eq!(got, batch);
}

pub async fn duplicate_ids_are_skipped_not_counted_twice(db: &TestDb) {
    let batch = vec![
        full_record("dup", T0, "smart", 2),
        full_record("dup", T0, "smart", 2),
        bare_record("other", T0, "smart", 200),
    ];
    db.store.insert_requests(&batch).await.expect("insert");
    db.store
        .insert_requests(&batch[..1])
        .await
        .expect("insert again");
    assert_eq!(db.count("requests").await, 2);
    assert_eq!(db.count("attempts").await, 2);
    assert_eq!(
        db.store
            .route_counts("smart", T0, T0 + HOUR)
            .await
            .expect("counts"),
        (2, 2)
    );
}

pub async fn rollups_count_per_route_and_hour(db: &TestDb) {
    let mut static_answer = bare_record("static", T0 + 3, "smart", 200);
    static_answer.degraded = Some("static".into());
    let mut client_quota = bare_record("quota", T0 + 4, "smart", 429);
    client_quota.error_class = Some("client_quota".into());
    let mut broken_stream = bare_record("broken", T0 + 5, "smart", 200);
    broken_stream.error_class = Some("stream".into());
    let batch: Vec<RequestRecord> = vec![
        bare_record("ok1", T0 + 1, "smart", 200),
        bare_record("ok2", T0 + 2, "smart", 200),
        static_answer,
        client_quota,
        broken_stream,
        bare_record("bad-input", T0 + 6, "smart", 400),
        bare_record("overloaded", T0 + 7, "smart", 529),
        bare_record("next-hour", T0 + HOUR + 1, "smart", 200),
        bare_record("other-route", T0 + 8, "cheap", 502),
    ];
    // What the rollups must say, computed from the records' own rules.
    let expect = |route: &str, from: i64, to: i64| {
        let counted: Vec<&RequestRecord> = batch
            .iter()
            .filter(|r| r.route == route && r.at >= from && r.at < to && !r.is_client_error())
            .collect();
        (
            counted.len() as u64,
            counted.iter().filter(|r| r.is_good()).count() as u64,
        )
    };
    // Two inserts into the same hour add up.
    db.store.insert_requests(&batch[..4]).await.expect("insert");
    db.store.insert_requests(&batch[4..]).await.expect("insert");

    let first_hour = db
        .store
        .route_counts("smart", T0, T0 + HOUR)
        .await
        .expect("counts");
    assert_eq!(first_hour, expect("smart", T0, T0 + HOUR));
    assert_eq!(
        first_hour,
        (5, 2),
        "ok1 ok2 good; static, broken, overloaded bad"
    );
    assert_eq!(
        db.store
            .route_counts("smart", T0, T0 + 2 * HOUR)
            .await
            .expect("counts"),
        (6, 3)
    );
    // Hour-granular: a window starting mid-hour includes that whole hour.
    assert_eq!(
        db.store
            .route_counts("smart", T0 + HOUR / 2, T0 + 2 * HOUR)
            .await
            .expect("counts"),
        (6, 3)
    );
    assert_eq!(
        db.store
            .route_counts("smart", T0 + HOUR, T0 + 2 * HOUR)
            .await
            .expect("counts"),
        (1, 1)
    );
    assert_eq!(
        db.store
            .route_counts("cheap", T0, T0 + HOUR)
            .await
            .expect("counts"),
        (1, 0)
    );
    assert_eq!(
        db.store
            .route_counts("nobody", T0, T0 + HOUR)
            .await
            .expect("counts"),
        (0, 0)
    );
}

pub async fn purge_removes_old_requests_and_attempts_only(db: &TestDb) {
    let batch = vec![
        full_record("old1", T0, "smart", 2),
        full_record("old2", T0 + 1, "smart", 1),
        full_record("new", T0 + DAY, "smart", 3),
    ];
    db.store.insert_requests(&batch).await.expect("insert");
    db.store
        .save_incident(&incident("inc-1", T0, 2))
        .await
        .expect("incident");
    let purged = db.store.purge_before(T0 + DAY).await.expect("purge");
    assert_eq!(purged, 2);
    assert_eq!(db.count("requests").await, 1);
    assert_eq!(db.count("attempts").await, 3);
    let left = db
        .store
        .requests_between(0, i64::MAX, None)
        .await
        .expect("read");
    assert_eq!(left, vec![batch[2].clone()]);
    // Rollups and incidents outlive the log.
    assert_eq!(
        db.store
            .route_counts("smart", T0, T0 + 2 * DAY)
            .await
            .expect("counts"),
        (3, 3)
    );
    assert!(db.store.incident("inc-1").await.expect("read").is_some());
    assert_eq!(db.store.purge_before(T0 + DAY).await.expect("purge"), 0);
}

fn incident(id: &str, started_at: UnixMs, entries: usize) -> Incident {
    Incident {
        id: id.into(),
        title: format!("Errors on {id}"),
        status: IncidentStatus::Investigating,
        worst: ComponentState::PartialOutage,
        components: vec!["anthropic/claude".into(), "smart".into()],
        started_at,
        updated_at: started_at + 1_000,
        resolved_at: None,
        impact: Impact {
            affected: 10,
            saved_by_fallback: 7,
            from_cache: 1,
            degraded: 1,
            failed: 1,
        },
        timeline: (0..entries)
            .map(|i| TimelineEntry {
                at: started_at + i as i64,
                kind: if i == 0 {
                    TimelineKind::Detected
                } else {
                    TimelineKind::BreakerOpened
                },
                component: (i % 2 == 0).then(|| "anthropic/claude".to_string()),
                status: IncidentStatus::Investigating,
                message: format!("entry {i}"),
            })
            .collect(),
    }
}

pub async fn incidents_upsert_and_replace_their_timeline(db: &TestDb) {
    let first = incident("inc-a", T0, 3);
    db.store.save_incident(&first).await.expect("save");
    assert_eq!(
        db.store.incident("inc-a").await.expect("read"),
        Some(first.clone())
    );

    let mut resolved = first.clone();
    resolved.status = IncidentStatus::Resolved;
    resolved.worst = ComponentState::MajorOutage;
    resolved.title = "Anthropic outage".into();
    resolved.components = vec!["anthropic/claude".into()];
    resolved.resolved_at = Some(T0 + 60_000);
    resolved.updated_at = T0 + 60_000;
    resolved.impact.failed = 3;
    resolved.timeline = vec![
        first.timeline[0].clone(),
        TimelineEntry {
            at: T0 + 60_000,
            kind: TimelineKind::Resolved,
            component: None,
            status: IncidentStatus::Resolved,
            message: "Recovered; \"quotes\" and 'apostrophes' survive".into(),
        },
    ];
    db.store.save_incident(&resolved).await.expect("save again");
    let got = db
        .store
        .incident("inc-a")
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(got.timeline.len(), 2, "timeline replaced, not appended");
    assert_eq!(got, resolved);
    assert_eq!(db.count("incidents").await, 1);
    assert_eq!(db.count("incident_timeline").await, 2);

    db.store
        .save_incident(&incident("inc-b", T0 + 10, 1))
        .await
        .expect("save");
    db.store
        .save_incident(&incident("inc-c", T0 + 5, 0))
        .await
        .expect("save");
    let all = db.store.incidents(10).await.expect("list");
    let ids: Vec<&str> = all.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["inc-b", "inc-c", "inc-a"], "newest first");
    assert_eq!(all[2], resolved, "with timelines");
    assert_eq!(all[0].timeline.len(), 1);
    assert!(all[1].timeline.is_empty());
    assert_eq!(db.store.incidents(1).await.expect("list").len(), 1);
    assert_eq!(db.store.incident("missing").await.expect("read"), None);
}

pub async fn uptime_accumulates_per_utc_day(db: &TestDb) {
    let s = &db.store;
    let op = ComponentState::Operational as usize;
    let degraded = ComponentState::DegradedPerformance as usize;
    // Two adds on the same day add up.
    s.add_uptime(
        "smart",
        ComponentKind::Route,
        T0 + HOUR,
        60.0,
        ComponentState::Operational,
    )
    .await
    .expect("add");
    s.add_uptime(
        "smart",
        ComponentKind::Route,
        T0 + 2 * HOUR,
        30.5,
        ComponentState::Operational,
    )
    .await
    .expect("add");
    s.add_uptime(
        "smart",
        ComponentKind::Route,
        T0 + 3 * HOUR,
        10.0,
        ComponentState::DegradedPerformance,
    )
    .await
    .expect("add");
    // 90 s ending 30 s after the next midnight: 60 s on day 0, 30 s on day 1.
    s.add_uptime(
        "smart",
        ComponentKind::Route,
        T0 + DAY + 30_000,
        90.0,
        ComponentState::MajorOutage,
    )
    .await
    .expect("add");
    // Another component does not mix in.
    s.add_uptime(
        "openai/gpt",
        ComponentKind::Target,
        T0 + HOUR,
        500.0,
        ComponentState::PartialOutage,
    )
    .await
    .expect("add");

    let days = s
        .uptime_days("smart", T0, T0 + 7 * DAY)
        .await
        .expect("days");
    assert_eq!(days.len(), 2);
    assert_eq!(days[0].day_start, T0);
    assert_eq!(days[0].date, "2026-05-01");
    assert_eq!(days[1].day_start, T0 + DAY);
    assert_eq!(days[1].date, "2026-05-02");
    assert_eq!(days[0].seconds[op], 90.5);
    assert_eq!(days[0].seconds[degraded], 10.0);
    assert_eq!(days[0].seconds[ComponentState::MajorOutage as usize], 60.0);
    assert_eq!(days[0].seconds[ComponentState::PartialOutage as usize], 0.0);
    assert_eq!(days[1].seconds, [0.0, 0.0, 0.0, 0.0, 30.0]);
    assert_eq!(days[0].worst(), ComponentState::MajorOutage);

    // A window starting mid-day includes that day; one ending at the next
    // midnight excludes the next day.
    let first = s
        .uptime_days("smart", T0 + HOUR, T0 + DAY)
        .await
        .expect("days");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].day_start, T0);
    let other = s
        .uptime_days("openai/gpt", 0, i64::MAX)
        .await
        .expect("days");
    assert_eq!(other.len(), 1);
    assert_eq!(
        other[0].seconds[ComponentState::PartialOutage as usize],
        500.0
    );
    assert!(
        s.uptime_days("nobody", 0, i64::MAX)
            .await
            .expect("days")
            .is_empty()
    );

    for bad in [-1.0, f64::NAN, f64::INFINITY, 1e12] {
        let err = s
            .add_uptime(
                "smart",
                ComponentKind::Route,
                T0,
                bad,
                ComponentState::Operational,
            )
            .await
            .expect_err("rejected");
        assert!(matches!(err, StoreError::InvalidSeconds { .. }), "{err}");
    }
}

fn records(prefix: &str, n: usize, start: UnixMs) -> Vec<RequestRecord> {
    (0..n)
        .map(|i| {
            full_record(
                &format!("{prefix}-{i:06}"),
                start + i as i64,
                "smart",
                1 + i % 3,
            )
        })
        .collect()
}

pub async fn writer_batches_everything_sent(db: &TestDb) {
    let (tx, task) = LogWriter::spawn(
        db.store.clone(),
        WriterOptions {
            capacity: 2_000,
            max_batch: 64,
            flush_every: Duration::from_millis(20),
        },
    );
    let batch = records("w", 1_000, T0);
    for r in batch.iter().cloned() {
        assert!(tx.send(r));
    }
    tx.flush().await;
    let stats = tx.stats();
    assert_eq!(stats.written, 1_000);
    assert_eq!(stats.dropped, 0);
    assert_eq!(stats.failed_batches, 0);
    assert_eq!(stats.pending, 0);
    assert_eq!(tx.last_error(), None);
    assert_eq!(db.count("requests").await, 1_000);
    let expected_attempts: usize = batch.iter().map(|r| r.attempts.len()).sum();
    assert_eq!(db.count("attempts").await, expected_attempts as i64);
    let got = db
        .store
        .requests_between(T0, T0 + 1_000, None)
        .await
        .expect("read");
    assert_eq!(got, batch);

    // A record sent and then left alone is written by the timer, no flush.
    let late = full_record("late", T0 + 5_000, "smart", 1);
    assert!(tx.send(late.clone()));
    let deadline = Instant::now() + Duration::from_secs(5);
    while tx.stats().written < 1_001 {
        assert!(Instant::now() < deadline, "timer flush never came");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Dropping the last sender writes the rest and ends the task.
    let extra = tx.clone();
    assert!(extra.send(full_record("last", T0 + 6_000, "smart", 1)));
    drop(tx);
    drop(extra);
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("writer ends")
        .expect("writer did not panic");
    assert_eq!(db.count("requests").await, 1_002);
}

/// Runs on a current-thread runtime: the writer cannot drain the buffer
/// while the test sends, so the counts are exact. A full buffer drops its
/// OLDEST records: the newest say most about what is happening now.
pub async fn writer_overflow_drops_and_counts(db: &TestDb) {
    let (tx, _task) = LogWriter::spawn(
        db.store.clone(),
        WriterOptions {
            capacity: 10,
            max_batch: 100,
            flush_every: Duration::from_secs(60),
        },
    );
    let sent = records("o", 100, T0);
    let room = sent.iter().filter(|r| tx.send((*r).clone())).count();
    assert_eq!(room, 10, "the first 10 fit without dropping any");
    let stats = tx.stats();
    assert_eq!(stats.dropped, 90);
    assert_eq!(stats.pending, 10);
    tx.flush().await;
    let stats = tx.stats();
    assert_eq!((stats.written, stats.dropped, stats.pending), (10, 90, 0));
    let kept = db
        .store
        .requests_between(T0, T0 + 1_000, None)
        .await
        .expect("read");
    assert_eq!(kept, sent[90..].to_vec(), "the newest 10 are kept");
}

/// The store fails (a table is gone): batches fail and are counted, sends
/// stay instant, and writing resumes once the store is back.
pub async fn writer_survives_a_failing_store(db: &TestDb) {
    let (tx, _task) = LogWriter::spawn(
        db.store.clone(),
        WriterOptions {
            capacity: 10_000,
            max_batch: 50,
            flush_every: Duration::from_millis(10),
        },
    );
    db.exec("ALTER TABLE requests RENAME TO requests_away")
        .await;

    let started = Instant::now();
    for r in records("f", 500, T0) {
        tx.send(r);
    }
    let send_time = started.elapsed();
    assert!(
        send_time < Duration::from_millis(500),
        "sending took {send_time:?}"
    );
    tx.flush().await;
    let stats = tx.stats();
    assert_eq!(stats.written, 0);
    assert_eq!(stats.failed_rows, 500);
    assert!(stats.failed_batches >= 10, "{stats:?}");
    assert_eq!(stats.pending, 0);
    let error = tx.last_error().expect("an error is kept");
    assert!(error.contains("writing request log rows"), "{error}");

    db.exec("ALTER TABLE requests_away RENAME TO requests")
        .await;
    for r in records("g", 100, T0 + 10_000) {
        tx.send(r);
    }
    tx.flush().await;
    assert_eq!(tx.stats().written, 100);
    assert_eq!(db.count("requests").await, 100);
}

/// Another client holds the write lock: the writer stalls, senders do not,
/// the overflow is dropped and counted, and once the lock goes everything
/// accepted is accounted for.
pub async fn writer_never_slows_senders_when_the_store_is_locked(db: &TestDb) {
    use sqlx::{Connection, Executor};
    sqlx::any::install_default_drivers();
    let mut locker = sqlx::AnyConnection::connect(&db.url)
        .await
        .expect("second client");
    match db.kind {
        Kind::Postgres => {
            locker.execute("BEGIN").await.expect("begin");
            locker
                .execute("LOCK TABLE requests IN ACCESS EXCLUSIVE MODE")
                .await
                .expect("lock");
        }
        _ => {
            locker.execute("BEGIN EXCLUSIVE").await.expect("lock");
        }
    }
    let (tx, _task) = LogWriter::spawn(
        db.store.clone(),
        WriterOptions {
            capacity: 100,
            max_batch: 50,
            flush_every: Duration::from_millis(5),
        },
    );
    let started = Instant::now();
    let mut accepted = 0;
    for r in records("l", 5_000, T0) {
        accepted += usize::from(tx.send(r));
        if accepted == 100 {
            // Give the writer a chance to start (and block on) a batch.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let send_time = started.elapsed();
    assert!(
        send_time < Duration::from_millis(1_000),
        "sending took {send_time:?}"
    );
    assert!(tx.stats().dropped > 0);
    assert_eq!(tx.stats().written, 0, "nothing gets past the lock");

    locker.execute("ROLLBACK").await.expect("unlock");
    tx.flush().await;
    let stats = tx.stats();
    assert_eq!(stats.pending, 0);
    assert_eq!(
        stats.written + stats.dropped + stats.failed_rows,
        5_000,
        "{stats:?}"
    );
    assert_eq!(db.count("requests").await as u64, stats.written);
    assert!(stats.written > 0);
}

/// PostgreSQL only: the database is dropped under a running writer.
pub async fn writer_survives_a_dropped_database(db: &TestDb) {
    let (tx, _task) = LogWriter::spawn(
        db.store.clone(),
        WriterOptions {
            capacity: 10_000,
            max_batch: 100,
            flush_every: Duration::from_millis(10),
        },
    );
    for r in records("a", 100, T0) {
        tx.send(r);
    }
    tx.flush().await;
    assert_eq!(tx.stats().written, 100);

    db.drop_postgres_database().await;
    let started = Instant::now();
    for r in records("b", 300, T0 + 1_000) {
        tx.send(r);
    }
    assert!(started.elapsed() < Duration::from_millis(500));
    tokio::time::timeout(Duration::from_secs(60), tx.flush())
        .await
        .expect("the writer keeps going");
    let stats = tx.stats();
    assert_eq!(stats.written, 100);
    assert_eq!(stats.failed_rows, 300);
    assert!(stats.failed_batches >= 3, "{stats:?}");
    assert!(tx.last_error().is_some());
    assert!(db.store.ping().await.is_err());
}

pub async fn retention_task_purges_old_rows(db: &TestDb) {
    let now = bulwark::observe::unix_ms_now();
    let batch = vec![
        full_record("ancient", now - 2 * DAY, "smart", 2),
        full_record("fresh", now, "smart", 1),
    ];
    db.store.insert_requests(&batch).await.expect("insert");
    let task = bulwark_store::spawn_retention(
        db.store.clone(),
        Duration::from_secs(3_600),
        Duration::from_millis(20),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while db.count("requests").await != 1 {
        assert!(Instant::now() < deadline, "retention never ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    task.abort();
    assert_eq!(db.count("attempts").await, 1);
    let left = db
        .store
        .requests_between(0, i64::MAX, None)
        .await
        .expect("read");
    assert_eq!(left, vec![batch[1].clone()]);
}

/// Prints write throughput for one 10 000-row batch (with 20 000 attempts).
pub async fn measure_batch_write(db: &TestDb) {
    let batch = records("m", 10_000, T0);
    let attempts: usize = batch.iter().map(|r| r.attempts.len()).sum();
    let started = Instant::now();
    db.store.insert_requests(&batch).await.expect("insert");
    let elapsed = started.elapsed();
    println!(
        "{:?}: 10000 requests + {attempts} attempts in one transaction: {:.0} ms, {:.0} requests/s",
        db.kind,
        elapsed.as_secs_f64() * 1e3,
        10_000.0 / elapsed.as_secs_f64()
    );
    assert_eq!(db.count("requests").await, 10_000);
    assert_eq!(db.count("attempts").await, attempts as i64);
    let started = Instant::now();
    let read = db
        .store
        .requests_between(T0, T0 + 10_000, None)
        .await
        .expect("read");
    println!(
        "{:?}: read them back in {:.0} ms",
        db.kind,
        started.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(read.len(), 10_000);
}

fn stored(id: &str, tenant: Option<&str>, created_ms: UnixMs, text: &str) -> StoredResponse {
    StoredResponse {
        id: id.into(),
        tenant: tenant.map(str::to_string),
        created_ms,
        input_items: format!(r#"[{{"type":"message","role":"user","content":"{text} ✓"}}]"#),
        response: format!(
            r#"{{"id":"{id}","object":"response","status":"completed","output":[]}}"#
        ),
    }
}

const CAP: ResponseLimits = ResponseLimits {
    max_bytes: 1 << 20,
    max_tenant_bytes: u64::MAX,
};

fn max_bytes(max_bytes: usize) -> ResponseLimits {
    ResponseLimits { max_bytes, ..CAP }
}

/// A tenant reads, lists and deletes only its own responses; a keyless
/// gateway's rows are a tenant of their own.
pub async fn responses_are_kept_per_tenant(db: &TestDb) {
    let s = &db.store;
    let a = stored("resp_a", Some("team-a"), T0, "from a");
    let open = stored("resp_open", None, T0, "keyless");
    assert_eq!(
        s.put_response(&a, CAP).await.expect("put"),
        PutOutcome::Stored
    );
    assert_eq!(
        s.put_response(&open, CAP).await.expect("put"),
        PutOutcome::Stored
    );

    assert_eq!(
        s.response("resp_a", Some("team-a"), 0).await.expect("get"),
        Some(a.clone())
    );
    assert_eq!(
        s.response("resp_open", None, 0).await.expect("get"),
        Some(open.clone())
    );
    for (id, tenant) in [
        ("resp_a", Some("team-b")),
        ("resp_a", None),
        ("resp_open", Some("team-a")),
        ("missing", Some("team-a")),
    ] {
        assert_eq!(
            s.response(id, tenant, 0).await.expect("get"),
            None,
            "{id} {tenant:?}"
        );
        assert_eq!(
            s.response_input_items(id, tenant, 0).await.expect("items"),
            None
        );
        assert!(!s.delete_response(id, tenant, 0).await.expect("delete"));
    }
    assert_eq!(
        s.response_input_items("resp_a", Some("team-a"), 0)
            .await
            .expect("items"),
        Some(a.input_items.clone())
    );
    assert_eq!(
        db.count("responses").await,
        2,
        "nothing deleted by a stranger"
    );

    assert!(
        s.delete_response("resp_a", Some("team-a"), 0)
            .await
            .expect("delete")
    );
    assert!(
        !s.delete_response("resp_a", Some("team-a"), 0)
            .await
            .expect("delete again")
    );
    assert_eq!(
        s.response("resp_a", Some("team-a"), 0).await.expect("get"),
        None
    );
    assert!(
        s.delete_response("resp_open", None, 0)
            .await
            .expect("delete")
    );
    assert_eq!(db.count("responses").await, 0);
}

/// The same tenant storing an id again replaces its row (a retried or
/// cached answer); another tenant cannot take it over.
pub async fn a_response_id_is_replaced_only_by_its_tenant(db: &TestDb) {
    let s = &db.store;
    let first = stored("resp_x", Some("team-a"), T0, "first");
    s.put_response(&first, CAP).await.expect("put");
    let again = stored("resp_x", Some("team-a"), T0 + 5, "second");
    assert_eq!(
        s.put_response(&again, CAP).await.expect("put"),
        PutOutcome::Stored
    );
    assert_eq!(
        s.response("resp_x", Some("team-a"), 0).await.expect("get"),
        Some(again.clone())
    );

    for thief in [
        stored("resp_x", Some("team-b"), T0 + 9, "stolen"),
        stored("resp_x", None, T0 + 9, "stolen"),
    ] {
        assert_eq!(
            s.put_response(&thief, CAP).await.expect("put"),
            PutOutcome::IdTaken
        );
    }
    assert_eq!(
        s.response("resp_x", Some("team-a"), 0).await.expect("get"),
        Some(again)
    );
    assert_eq!(
        s.response("resp_x", Some("team-b"), 0).await.expect("get"),
        None
    );
    assert_eq!(db.count("responses").await, 1);
}

pub async fn a_response_over_the_cap_is_refused_unwritten(db: &TestDb) {
    let big = stored("resp_big", Some("team-a"), T0, &"x".repeat(4_000));
    let err = db
        .store
        .put_response(&big, max_bytes(1_000))
        .await
        .expect_err("refused");
    match &err {
        StoreError::ResponseTooLarge {
            id,
            bytes,
            max_bytes,
        } => {
            assert_eq!(
                (id.as_str(), *bytes, *max_bytes),
                ("resp_big", big.size(), 1_000)
            );
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(err.to_string().contains("conversations.max_bytes"), "{err}");
    assert_eq!(db.count("responses").await, 0);
    // Exactly at the cap is allowed.
    db.store
        .put_response(&big, max_bytes(big.size()))
        .await
        .expect("at the cap");
    assert_eq!(db.count("responses").await, 1);
}

/// A client key's stored responses together stay within its budget: each
/// turn stores its whole history again, so a key continuing one large
/// conversation over and over is refused once it has used its share, and
/// another key is not.
pub async fn a_keys_stored_responses_stay_within_its_budget(db: &TestDb) {
    let limits = ResponseLimits {
        max_bytes: 1 << 20,
        max_tenant_bytes: 10_000,
    };
    let turn = |id: &str, tenant: &str| stored(id, Some(tenant), T0, &"x".repeat(3_000));
    for id in ["resp_1", "resp_2", "resp_3"] {
        db.store
            .put_response(&turn(id, "team-a"), limits)
            .await
            .expect("within the budget");
    }
    let err = db
        .store
        .put_response(&turn("resp_4", "team-a"), limits)
        .await
        .expect_err("over the budget");
    assert!(
        matches!(
            err,
            StoreError::KeyBudgetExceeded {
                max_bytes: 10_000,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("conversations.max_bytes_per_key"),
        "{err}"
    );
    assert_eq!(db.count("responses").await, 3);
    db.store
        .put_response(&turn("resp_5", "team-b"), limits)
        .await
        .expect("another key has its own budget");
    // Deleting frees the budget.
    assert!(
        db.store
            .delete_response("resp_1", Some("team-a"), 0)
            .await
            .expect("delete")
    );
    db.store
        .put_response(&turn("resp_4", "team-a"), limits)
        .await
        .expect("room again");
}

/// Expired responses read as missing at once, and the expiry task removes
/// them.
pub async fn responses_expire(db: &TestDb) {
    let now = bulwark::observe::unix_ms_now();
    let old = stored("resp_old", Some("t"), now - 2 * DAY, "old");
    let fresh = stored("resp_new", Some("t"), now, "new");
    db.store.put_response(&old, CAP).await.expect("put");
    db.store.put_response(&fresh, CAP).await.expect("put");
    let cutoff = now - DAY;
    assert_eq!(
        db.store
            .response("resp_old", Some("t"), cutoff)
            .await
            .expect("get"),
        None
    );
    assert_eq!(
        db.store
            .response_input_items("resp_old", Some("t"), cutoff)
            .await
            .expect("get"),
        None
    );
    assert!(
        !db.store
            .delete_response("resp_old", Some("t"), cutoff)
            .await
            .expect("delete")
    );
    assert!(
        db.store
            .response("resp_new", Some("t"), cutoff)
            .await
            .expect("get")
            .is_some()
    );

    let task = bulwark_store::spawn_response_expiry(
        db.store.clone(),
        Duration::from_secs(86_400),
        Duration::from_millis(20),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while db.count("responses").await != 1 {
        assert!(Instant::now() < deadline, "expiry never ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    task.abort();
    assert_eq!(
        db.store
            .response("resp_new", Some("t"), 0)
            .await
            .expect("get"),
        Some(fresh)
    );
    assert_eq!(
        db.store
            .purge_responses_before(now + 1)
            .await
            .expect("purge"),
        1
    );
}
