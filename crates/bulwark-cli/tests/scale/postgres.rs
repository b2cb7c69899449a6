//! A PostgreSQL database per test on the machine's server, and a TCP proxy
//! in front of it whose link the test can stop.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::TestResult;

pub const MACHINE_PORT: u16 = 5432;

/// A database created for the test and dropped (with its connections) when
/// the test ends.
pub struct Database {
    pub name: String,
}

fn psql(database: &str, sql: &str) -> TestResult<String> {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", database])
        .args(["-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(format!("psql {sql:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl Database {
    pub fn create(test: &str) -> TestResult<Database> {
        let name = format!("bulwark_scale_{test}_{:08x}", fastrand::u32(..));
        psql("test", &format!("CREATE DATABASE {name}"))?;
        Ok(Database { name })
    }

    /// Its URL through `port` (the server's, or a proxy's).
    pub fn url(&self, port: u16) -> String {
        format!("postgres://postgres@127.0.0.1:{port}/{}", self.name)
    }

    /// One value, read straight from the server.
    pub fn scalar(&self, sql: &str) -> TestResult<String> {
        psql(&self.name, sql)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = psql(
            "test",
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// Forwards connections to the server; while paused no byte passes in
/// either direction, as when the network to PostgreSQL is cut without a
/// reset: the client's writes and reads just hang.
pub struct PausableProxy {
    pub port: u16,
    paused: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl PausableProxy {
    pub async fn start(target_port: u16) -> TestResult<PausableProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let paused = Arc::new(AtomicBool::new(false));
        let flag = paused.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let flag = flag.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)).await {
                        let (client_read, client_write) = client.into_split();
                        let (server_read, server_write) = server.into_split();
                        tokio::join!(
                            pipe(client_read, server_write, flag.clone()),
                            pipe(server_read, client_write, flag),
                        );
                    }
                });
            }
        });
        Ok(PausableProxy { port, paused, task })
    }

    pub fn pause(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
    }
}

impl Drop for PausableProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    paused: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        while paused.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Bytes read just before a pause are held back too.
        while paused.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
