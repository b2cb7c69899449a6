//! A PostgreSQL database per test on the machine's server.

use std::process::{Command, Stdio};

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

    /// Its URL through `host:port` (the server's, or a proxy's).
    pub fn url(&self, host: &str, port: u16) -> String {
        format!("postgres://postgres@{host}:{port}/{}", self.name)
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
