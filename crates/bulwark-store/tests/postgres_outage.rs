//! PostgreSQL shared by several instances, and PostgreSQL in trouble:
//! instances starting at once, and a link to the database that freezes or
//! is cut while requests keep being logged. Real PostgreSQL (a database per
//! test, created and dropped), behind a TCP proxy that can be paused and
//! cut (`bulwark_sim::TcpProxy`).

mod common;

use std::time::Duration;

use bulwark::observe::record::RequestRecord;
use bulwark_sim::TcpProxy;
use bulwark_store::{LogSender, LogWriter, Store, WriterOptions, WriterStats};
use common::{EmptyPostgres, full_record};
use sqlx::Row;
use tokio::time::Instant;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const T0: i64 = 1_700_000_000_000;

/// Three instances open a fresh database at once: all succeed, and the
/// schema is made once (the advisory lock serialises them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_at_once_migrate_once() -> TestResult {
    let db = EmptyPostgres::create().await;
    let url = db.url();
    let opens = (0..3).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { Store::connect(&url).await })
    });
    let mut stores = Vec::new();
    for open in opens {
        stores.push(open.await??);
    }
    let Some(store) = stores.first() else {
        return Err("no store".into());
    };
    let applied = sqlx::query("SELECT COUNT(*), COUNT(DISTINCT version) FROM _sqlx_migrations")
        .fetch_one(store.pool())
        .await?;
    let (rows, versions): (i64, i64) = (applied.try_get(0)?, applied.try_get(1)?);
    assert_eq!(rows, versions, "a migration recorded twice");
    assert!(rows >= 5, "{rows} migrations");
    let requests = sqlx::query("SELECT COUNT(*) FROM requests")
        .fetch_one(store.pool())
        .await?;
    assert_eq!(requests.try_get::<i64, _>(0)?, 0);
    for store in stores {
        store.close().await;
    }
    Ok(())
}

fn records(prefix: &str, n: usize, start: i64) -> Vec<RequestRecord> {
    (0..n)
        .map(|i| full_record(&format!("{prefix}-{i:06}"), start + i as i64, "smart", 1))
        .collect()
}

/// Sends every record, each without waiting: the slowest single send is
/// returned, which must be nothing like a database round trip.
fn send_all(log: &LogSender, records: Vec<RequestRecord>) -> Duration {
    let mut slowest = Duration::ZERO;
    for record in records {
        let started = Instant::now();
        log.send(record);
        slowest = slowest.max(started.elapsed());
    }
    slowest
}

/// Waits until nothing is pending: everything sent is written or lost.
async fn settled(log: &LogSender, within: Duration) -> Result<WriterStats, String> {
    let until = Instant::now() + within;
    loop {
        let stats = log.stats();
        if stats.pending == 0 {
            return Ok(stats);
        }
        if Instant::now() > until {
            return Err(format!("still pending after {within:?}: {stats:?}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn count(store: &Store) -> Result<u64, Box<dyn std::error::Error>> {
    let row = sqlx::query("SELECT COUNT(*) FROM requests")
        .fetch_one(store.pool())
        .await?;
    Ok(u64::try_from(row.try_get::<i64, _>(0)?)?)
}

/// The link to PostgreSQL freezes, then is cut while frozen, then comes
/// back: sending never waits, the buffer keeps the newest records and
/// counts the oldest it dropped, and once the database is reachable again
/// the log catches up: written + dropped == sent, with nothing lost
/// otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_rides_out_a_frozen_and_cut_link() -> TestResult {
    let db = EmptyPostgres::create().await;
    let direct = Store::connect(&db.url()).await?;
    let postgres = tokio::net::lookup_host("127.0.0.1:5432")
        .await?
        .next()
        .ok_or("no address for PostgreSQL")?;
    let proxy = TcpProxy::start(postgres).await?;
    let store = Store::connect(&db.url_via(proxy.addr())).await?;
    let (log, _writer) = LogWriter::spawn(
        store,
        WriterOptions {
            capacity: 200,
            max_batch: 20,
            flush_every: Duration::from_millis(10),
        },
    );
    // A send is a push onto a buffer: far below any database round trip,
    // with a wide margin for a busy machine.
    let instant = Duration::from_millis(50);

    let slowest = send_all(&log, records("before", 50, T0));
    assert!(slowest < instant, "a send took {slowest:?}");
    log.flush().await;
    assert_eq!(log.stats().written, 50);

    // Frozen: connections open, nothing answers.
    proxy.pause();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let slowest = send_all(&log, records("frozen", 500, T0 + 1_000));
    assert!(slowest < instant, "a send took {slowest:?} while frozen");
    // Longer than the pool's 5 s wait for a connection: the batch fails as
    // unreachable and is kept for a retry, not lost.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let frozen = log.stats();
    assert!(frozen.retries > 0, "{frozen:?}");
    assert_eq!(frozen.failed_rows, 0, "{frozen:?}");
    assert_eq!(frozen.written, 50, "nothing gets through a frozen link");
    assert!(frozen.dropped >= 500 - 200 - 20, "{frozen:?}");
    assert!(frozen.pending <= 200 + 20, "bounded: {frozen:?}");

    // Cut while frozen: the connection in use breaks, new ones hang.
    proxy.cut();
    let slowest = send_all(&log, records("cut", 100, T0 + 2_000));
    assert!(slowest < instant, "a send took {slowest:?} while cut");
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.resume();

    let stats = settled(&log, Duration::from_secs(30)).await?;
    assert_eq!(stats.failed_rows, 0, "{stats:?}");
    assert_eq!(stats.written + stats.dropped, 650, "{stats:?}");
    assert!(stats.dropped > 0, "{stats:?}");
    assert_eq!(count(&direct).await?, stats.written, "each row once");
    // The newest records are what the buffer kept.
    let newest = direct
        .requests_between(T0 + 2_000, T0 + 3_000, None)
        .await?;
    assert_eq!(newest.len(), 100, "every record sent last is written");

    // Back to normal: a record sent now is written at once.
    let slowest = send_all(&log, records("after", 10, T0 + 4_000));
    assert!(slowest < instant);
    log.flush().await;
    assert_eq!(log.stats().written, stats.written + 10);
    direct.close().await;
    Ok(())
}
