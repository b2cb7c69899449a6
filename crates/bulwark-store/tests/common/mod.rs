//! A fresh, private database per test, on each backend, removed afterwards
//! (even when the test panics), so tests can run in parallel processes.

#![allow(
    dead_code,
    reason = "shared by several test binaries, each using part of it"
)]
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers and the shared suite: a failed setup fails the test"
)]

pub mod suite;

use std::path::PathBuf;

use bulwark::observe::UnixMs;
use bulwark::observe::record::{AttemptRecord, RequestRecord};
use bulwark_store::Store;
use sqlx::{Connection, Executor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    SqliteFile,
    SqliteMemory,
    Postgres,
}

pub struct TestDb {
    pub kind: Kind,
    pub store: Store,
    /// What another client would use to reach the same database.
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Nothing,
    File(PathBuf),
    Postgres { admin_url: String, name: String },
}

/// The maintenance database tests create theirs from; trust auth.
fn admin_urls() -> Vec<String> {
    match std::env::var("BULWARK_TEST_POSTGRES_URL") {
        Ok(url) => vec![url],
        Err(_) => vec![
            "postgres://postgres@127.0.0.1:5432/test".into(),
            "postgres://root@127.0.0.1:5432/test".into(),
        ],
    }
}

fn unique_name() -> String {
    format!(
        "bulwark_store_{}_{}",
        std::process::id(),
        fastrand::u64(..) & 0xffff_ffff_ffff
    )
}

async fn admin_connection() -> (String, sqlx::AnyConnection) {
    sqlx::any::install_default_drivers();
    let mut errors = Vec::new();
    for url in admin_urls() {
        match sqlx::AnyConnection::connect(&url).await {
            Ok(conn) => return (url, conn),
            Err(e) => errors.push(format!("{url}: {e}")),
        }
    }
    panic!(
        "PostgreSQL is needed for these tests (scripts/services.sh starts it); \
         set BULWARK_TEST_POSTGRES_URL to override. Tried: {errors:?}"
    );
}

impl TestDb {
    pub async fn new(kind: Kind) -> TestDb {
        match kind {
            Kind::SqliteMemory => {
                let url = "sqlite::memory:".to_string();
                let store = Store::connect(&url).await.expect("in-memory sqlite");
                TestDb {
                    kind,
                    store,
                    url,
                    cleanup: Cleanup::Nothing,
                }
            }
            Kind::SqliteFile => {
                let path = std::env::temp_dir().join(unique_name()).join("requests.db");
                let url = format!("sqlite://{}", path.display());
                let store = Store::connect(&url).await.expect("sqlite file");
                assert!(path.exists(), "the database file is created");
                TestDb {
                    kind,
                    store,
                    url,
                    cleanup: Cleanup::File(path),
                }
            }
            Kind::Postgres => {
                let (admin_url, mut admin) = admin_connection().await;
                let name = unique_name();
                admin
                    .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .await
                    .expect("create test database");
                let _ = admin.close().await;
                let url = match admin_url.rsplit_once('/') {
                    Some((base, _)) => format!("{base}/{name}"),
                    None => panic!("admin URL without a database: {admin_url}"),
                };
                let store = Store::connect(&url).await.expect("postgres");
                TestDb {
                    kind,
                    store,
                    url,
                    cleanup: Cleanup::Postgres { admin_url, name },
                }
            }
        }
    }

    /// Drops the PostgreSQL database under the store's feet.
    pub async fn drop_postgres_database(&self) {
        let Cleanup::Postgres { name, .. } = &self.cleanup else {
            panic!("not a PostgreSQL test database");
        };
        let (_, mut admin) = admin_connection().await;
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .await
            .expect("drop test database");
    }

    pub async fn count(&self, table: &str) -> i64 {
        use sqlx::Row;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(self.store.pool())
            .await
            .expect("count rows");
        row.try_get::<i64, _>(0).expect("count is an integer")
    }

    pub async fn exec(&self, sql: &str) {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(self.store.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        match &*self {
            Cleanup::Nothing => {}
            Cleanup::File(path) => {
                if let Some(dir) = path.parent() {
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
            Cleanup::Postgres { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Drop runs inside the test's runtime, which cannot block on
                // async work; a thread with its own runtime can.
                let _ = std::thread::spawn(move || {
                    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    else {
                        return;
                    };
                    rt.block_on(async move {
                        sqlx::any::install_default_drivers();
                        if let Ok(mut admin) = sqlx::AnyConnection::connect(&admin_url).await {
                            let _ = admin
                                .execute(sqlx::AssertSqlSafe(format!(
                                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                                )))
                                .await;
                            let _ = admin.close().await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

/// A new, empty PostgreSQL database (no schema), dropped with this value.
pub struct EmptyPostgres {
    /// `postgres://user@host:port/`, without the database name.
    pub server: String,
    pub name: String,
    _cleanup: Cleanup,
}

impl EmptyPostgres {
    pub async fn create() -> EmptyPostgres {
        let (admin_url, mut admin) = admin_connection().await;
        let name = unique_name();
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("create test database");
        let _ = admin.close().await;
        let Some((server, _)) = admin_url.rsplit_once('/') else {
            panic!("admin URL without a database: {admin_url}");
        };
        EmptyPostgres {
            server: format!("{server}/"),
            name: name.clone(),
            _cleanup: Cleanup::Postgres { admin_url, name },
        }
    }

    pub fn url(&self) -> String {
        format!("{}{}", self.server, self.name)
    }

    /// The same database through `addr` (a proxy) instead.
    pub fn url_via(&self, addr: std::net::SocketAddr) -> String {
        let user = self
            .server
            .split_once("://")
            .and_then(|(_, rest)| rest.split_once('@'))
            .map_or("postgres", |(user, _)| user);
        format!("postgres://{user}@{addr}/{}", self.name)
    }
}

/// A request with every optional field set, and `attempts` attempts (the
/// last one answering).
pub fn full_record(id: &str, at: UnixMs, route: &str, attempts: usize) -> RequestRecord {
    RequestRecord {
        id: id.into(),
        at,
        route: route.into(),
        client_format: "anthropic".into(),
        stream: true,
        status: 200,
        error_class: None,
        target: Some("openai/gpt-4o-mini".into()),
        fallback: attempts > 1,
        cache: Some("miss".into()),
        degraded: Some("openai/gpt-4o-mini".into()),
        dropped: vec!["thinking".into(), "cache_control".into()],
        latency_ms: 1234.5,
        first_token_ms: Some(321.25),
        input_tokens: Some(1_000_000_007),
        output_tokens: Some(42),
        key_id: Some("team-a".into()),
        request_body: Some(
            r#"{"model":"smart","messages":[{"role":"user","content":"héllo ✓"}]}"#.into(),
        ),
        client_request_id: Some("client-req-42".into()),
        attempts: (0..attempts)
            .map(|i| AttemptRecord {
                target: format!("provider{i}/model"),
                at: at + i as i64 * 10,
                latency_ms: 10.5 + i as f64,
                first_token_ms: (i + 1 == attempts).then_some(5.75),
                status: if i + 1 == attempts {
                    Some(200)
                } else {
                    Some(529)
                },
                error_class: (i + 1 != attempts).then(|| "overloaded".to_string()),
                hedge: i % 2 == 1,
            })
            .collect(),
    }
}

/// A request with every optional field empty.
pub fn bare_record(id: &str, at: UnixMs, route: &str, status: u16) -> RequestRecord {
    RequestRecord {
        id: id.into(),
        at,
        route: route.into(),
        client_format: "openai".into(),
        stream: false,
        status,
        error_class: None,
        target: None,
        fallback: false,
        cache: None,
        degraded: None,
        dropped: Vec::new(),
        latency_ms: 0.0,
        first_token_ms: None,
        input_tokens: None,
        output_tokens: None,
        key_id: None,
        request_body: None,
        client_request_id: None,
        attempts: Vec::new(),
    }
}
