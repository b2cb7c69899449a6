//! Runs the black-box suite in `tests/sdk` (the official OpenAI and Anthropic
//! Python SDKs against `bulwark serve` + `bulwark sim`) and fails if pytest does.
//!
//! Needs the virtualenv that `scripts/python-env.sh` creates at `.venv`.

use std::path::PathBuf;
use std::process::Command;

mod common;

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

    let mut command = Command::new(&python);
    command
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/sdk"])
        .current_dir(&root);
    let status = common::run_streaming(command).unwrap();
    assert!(
        status.success(),
        "the Python SDK suite failed ({status}); rerun with \
         `.venv/bin/python -m pytest -q tests/sdk` for details"
    );
}
