//! Redis for a test: the machine's under a key prefix of the test's own,
//! or a private `redis-server` that can be frozen, killed and restarted.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::TestResult;
use super::process::{Running, free_port, wait_for_port};

/// The machine's Redis.
pub const MACHINE_PORT: u16 = 6379;

/// A key prefix no other test or run shares; its keys are deleted on drop.
pub struct Prefix {
    pub port: u16,
    pub prefix: String,
}

impl Prefix {
    pub fn new(port: u16, test: &str) -> Prefix {
        Prefix {
            port,
            prefix: format!("test:scale:{test}:{:08x}:", fastrand::u32(..)),
        }
    }

    /// The keys under the prefix now (none when Redis does not answer).
    pub fn keys(&self) -> Vec<String> {
        let pattern = format!("{}*", self.prefix);
        let Ok(out) = Command::new("redis-cli")
            .args([
                "-p",
                &self.port.to_string(),
                "--scan",
                "--pattern",
                &pattern,
            ])
            .stderr(Stdio::null())
            .output()
        else {
            return Vec::new();
        };
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .filter(|k| !k.is_empty())
            .collect()
    }

    /// A key's value as text, whatever its type (a hash's fields and
    /// values, a set's members...), for finding an instance id in it.
    pub fn get(&self, key: &str) -> Option<String> {
        let read = match self.cli(&["TYPE", key])?.as_str() {
            "string" => vec!["GET", key],
            "hash" => vec!["HGETALL", key],
            "set" => vec!["SMEMBERS", key],
            "zset" => vec!["ZRANGE", key, "0", "-1"],
            "list" => vec!["LRANGE", key, "0", "-1"],
            _ => return None,
        };
        self.cli(&read)
    }

    fn cli(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "--raw"])
            .args(args)
            .stderr(Stdio::null())
            .output()
            .ok()?;
        Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let keys = self.keys();
        for chunk in keys.chunks(500) {
            let _ = Command::new("redis-cli")
                .args(["-p", &self.port.to_string(), "DEL"])
                .args(chunk)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A `redis-server` of the test's own on a free port.
pub struct PrivateRedis {
    pub port: u16,
    bind: String,
    child: Option<Running>,
}

impl PrivateRedis {
    pub fn start() -> TestResult<PrivateRedis> {
        PrivateRedis::start_on("127.0.0.1")
    }

    /// Listening on loopback and on `address` too (a namespace bridge's).
    pub fn start_on(address: &str) -> TestResult<PrivateRedis> {
        let mut redis = PrivateRedis {
            port: free_port()?,
            bind: if address == "127.0.0.1" {
                address.to_string()
            } else {
                format!("127.0.0.1 {address}")
            },
            child: None,
        };
        redis.restart()?;
        Ok(redis)
    }

    /// Starts it (again) on the same port.
    pub fn restart(&mut self) -> TestResult {
        self.child = None;
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind"])
            .args(self.bind.split(' '))
            .args(["--save", "", "--appendonly", "no"])
            // Reachable from the namespaces' bridge without a password.
            .args(["--protected-mode", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(Running(child));
        wait_for_port(self.port, Duration::from_secs(10))
    }

    /// `-STOP` freezes it: connections stay open and nothing answers.
    pub fn signal(&self, name: &str) -> TestResult {
        self.child
            .as_ref()
            .ok_or("redis-server is not running")?
            .signal(name)
    }

    pub fn kill(&mut self) {
        self.child = None;
    }
}
