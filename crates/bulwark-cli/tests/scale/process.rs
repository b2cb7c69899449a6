//! Child processes and scratch directories that never outlive a test.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::TestResult;

/// A scratch directory of this test alone, removed when it ends (kept
/// when `BULWARK_KEEP_SCRATCH` is set, for the instances' logs).
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> TestResult<Scratch> {
        let dir = std::env::temp_dir().join(format!(
            "bulwark-scale-{name}-{}-{:06x}",
            std::process::id(),
            fastrand::u32(..0xff_ffff)
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }

    pub fn write(&self, name: &str, text: &str) -> TestResult<PathBuf> {
        let path = self.0.join(name);
        std::fs::write(&path, text)?;
        Ok(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("BULWARK_KEEP_SCRATCH").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Kills the child when the test ends, however it ends. A frozen child is
/// thawed first so that it can die.
pub struct Running(pub Child);

impl Running {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    pub fn signal(&self, name: &str) -> TestResult {
        let pid = self.0.id().to_string();
        if !Command::new("kill").args([name, &pid]).status()?.success() {
            return Err(format!("kill {name} {pid} failed").into());
        }
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.signal("-CONT");
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `command` and returns once it printed `prefix` followed by its
/// address on its first stdout line; stderr goes to `log`.
pub fn spawn_announcing(
    command: &mut Command,
    prefix: &str,
    log: &Path,
) -> TestResult<(Running, String)> {
    let mut child = Running(
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log)?)
            .spawn()?,
    );
    let stdout = child.0.stdout.take().ok_or("no stdout")?;
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let address = line
        .trim()
        .strip_prefix(prefix)
        .ok_or_else(|| format!("unexpected first line {line:?}; see {}", log.display()))?
        .to_string();
    // Keep reading so that the child never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while matches!(reader.read_line(&mut sink), Ok(n) if n > 0) {
            sink.clear();
        }
    });
    Ok((child, address))
}

/// A port nobody listens on now. The tiny race until the caller binds it
/// is acceptable for processes (nginx, redis-server) that take a port
/// number rather than `:0`.
pub fn free_port() -> TestResult<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits until something accepts connections on `port`.
pub fn wait_for_port(port: u16, within: Duration) -> TestResult {
    let steps = within.as_millis() / 20;
    for _ in 0..steps {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!("nothing listens on port {port} after {within:?}").into())
}
