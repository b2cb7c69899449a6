//! What the test binaries that run an outside suite (pytest, `node --test`)
//! share: running it with its output streamed.

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;

/// Runs a suite with its output streamed line by line (through print!, so
/// libtest's capture shows it on failure and `--nocapture` shows it live).
pub fn run_streaming(mut command: Command) -> Result<ExitStatus, String> {
    let shown = format!("{command:?}");
    println!("running {shown}");
    let mut child = command
        .env("BULWARK_BIN", env!("CARGO_BIN_EXE_bulwark"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    let stdout = child.stdout.take().ok_or("stdout not piped")?;
    let stderr = child.stderr.take().ok_or("stderr not piped")?;
    let err_thread = thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
        }
    });
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        println!("{line}");
    }
    err_thread
        .join()
        .map_err(|_| "the stderr reader panicked".to_string())?;
    child.wait().map_err(|e| format!("wait for {shown}: {e}"))
}
