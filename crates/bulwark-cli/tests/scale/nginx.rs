//! nginx run from `deploy/nginx/bulwark.conf` itself: only the listen port
//! and the upstream servers are changed, so the tests prove the shipped
//! config.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::TestResult;
use super::process::{Running, free_port, wait_for_port};

pub const CONFIG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../deploy/nginx/bulwark.conf"
);

pub struct Nginx {
    pub url: String,
    _child: Running,
}

/// The shipped config with `listen 8080` turned into `port` on loopback and
/// the server lines between `# BEGIN servers` and `# END servers` pointed at
/// `upstreams`, keeping their passive-health parameters.
pub fn config_for(shipped: &str, port: u16, upstreams: &[String]) -> TestResult<String> {
    if shipped.matches("listen 8080").count() != 1 {
        return Err("the shipped nginx config must have one `listen 8080`".into());
    }
    let mut out = String::new();
    let mut inside = false;
    let mut replaced = false;
    for line in shipped.lines() {
        let trimmed = line.trim();
        if trimmed == "# BEGIN servers" {
            inside = true;
            out.push_str(line);
            out.push('\n');
            continue;
        }
        if trimmed == "# END servers" {
            inside = false;
        } else if inside {
            if !replaced && let Some(rest) = trimmed.strip_prefix("server ") {
                let parameters = rest.split_once(' ').map_or(";", |(_, p)| p);
                for upstream in upstreams {
                    out.push_str(&format!("        server {upstream} {parameters}\n"));
                }
                replaced = true;
            }
            continue;
        }
        out.push_str(&line.replace("listen 8080", &format!("listen 127.0.0.1:{port}")));
        out.push('\n');
    }
    if !replaced {
        return Err("no server lines between # BEGIN servers and # END servers".into());
    }
    Ok(out)
}

pub fn binary() -> &'static str {
    if Path::new("/usr/sbin/nginx").exists() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    }
}

/// nginx in the foreground with its prefix (temp files), pid and config in
/// `dir`, balancing over `upstreams` (`host:port`).
pub fn start(dir: &Path, upstreams: &[String]) -> TestResult<Nginx> {
    let shipped = std::fs::read_to_string(CONFIG)?;
    let port = free_port()?;
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, config_for(&shipped, port, upstreams)?)?;
    let log = std::fs::File::create(dir.join("nginx.log"))?;
    let child = Running(
        Command::new(binary())
            .arg("-p")
            .arg(dir)
            .arg("-e")
            .arg("stderr")
            .arg("-c")
            .arg(&conf)
            .arg("-g")
            .arg(format!(
                "daemon off; pid {};",
                dir.join("nginx.pid").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?,
    );
    wait_for_port(port, Duration::from_secs(10))?;
    Ok(Nginx {
        url: format!("http://127.0.0.1:{port}"),
        _child: child,
    })
}
