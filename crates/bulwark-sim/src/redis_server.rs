//! A `redis-server` of a test's own, on a free port, so that a test can
//! freeze (`-STOP`), thaw and kill the Redis its instances share without
//! touching the machine's. Test support, like [`crate::TcpProxy`].

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Killed (and thawed first, so it can die) on drop.
#[derive(Debug)]
pub struct PrivateRedis {
    pub port: u16,
    child: Child,
}

impl PrivateRedis {
    /// On a free port; returns once it accepts connections (or after 2 s).
    pub fn start() -> std::io::Result<PrivateRedis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        PrivateRedis::on(port)
    }

    /// On `port`, e.g. again after the last one there was dropped.
    pub fn on(port: u16) -> std::io::Result<PrivateRedis> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(PrivateRedis { port, child })
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Sends a signal by name: `-STOP` freezes it (connections stay open
    /// and nothing answers), `-CONT` thaws it.
    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
