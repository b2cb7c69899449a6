//! A TCP link the test can cut: a proxy in front of Redis or PostgreSQL
//! that stops passing bytes, as a network that drops packets does (no
//! reset, so the client learns nothing until its own timeouts fire).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::TestResult;

/// Forwards connections to `127.0.0.1:<target>`; while paused no byte
/// passes in either direction, as when the network is cut without a reset:
/// the client's writes and reads just hang.
pub struct PausableProxy {
    pub port: u16,
    paused: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl PausableProxy {
    pub async fn start(target_port: u16) -> TestResult<PausableProxy> {
        PausableProxy::start_on("127.0.0.1", target_port).await
    }

    /// Listening on `address` (a namespace bridge's) instead of loopback.
    pub async fn start_on(address: &str, target_port: u16) -> TestResult<PausableProxy> {
        let listener = TcpListener::bind((address, 0)).await?;
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
