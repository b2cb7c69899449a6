//! Runs the black-box suite in `tests/sdk` (the official OpenAI and Anthropic
//! Python SDKs against `bulwark serve` + `bulwark sim`) and fails if pytest does.
//!
//! Needs the virtualenv that `scripts/python-env.sh` creates at `.venv`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;

#[test]
fn python_sdk_suite_passes() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize().expect("workspace root");
    let python = root.join(".venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run `scripts/python-env.sh` first to create the virtualenv \
         with the SDKs the suite in tests/sdk needs",
        python.display()
    );

    let mut child = Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/sdk"])
        .current_dir(&root)
        .env("BULWARK_BIN", env!("CARGO_BIN_EXE_bulwark"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));

    // Stream both pipes line by line (through print!, so libtest's capture
    // shows them on failure and `--nocapture` shows them live).
    let stdout = child.stdout.take().expect("stdout piped");
    let stderr = child.stderr.take().expect("stderr piped");
    let err_thread = thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
        }
    });
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        println!("{line}");
    }
    err_thread.join().expect("stderr reader");

    let status = child.wait().expect("wait for pytest");
    assert!(
        status.success(),
        "the Python SDK suite failed ({status}); rerun with \
         `.venv/bin/python -m pytest -q tests/sdk` for details"
    );
}
