//! Runs the real-client suites in `tests/clients` (Claude Code, Codex CLI, the Vercel
//! AI SDK, LangChain and the official SDKs' helpers, each against its own
//! `bulwark sim` + `bulwark serve` on same-format, cross-format and failover
//! routes) and fails if any of them does.
//!
//! Needs the client environment that `scripts/clients-env.sh` installs:
//! `tests/clients/node_modules` (npm, pinned by its lockfile) and the
//! LangChain packages in `.venv`.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

const INSTALL_HINT: &str = "run `scripts/clients-env.sh` to install the client environment";

fn root() -> Result<PathBuf, String> {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .map_err(|e| format!("workspace root: {e}"))
}

/// Why the Node half of the client environment is unusable, if it is.
fn node_env_problem(root: &Path) -> Option<String> {
    let stamp = root.join("tests/clients/node_modules/.package-lock.sha256");
    if !stamp.is_file() {
        return Some(format!(
            "{} is missing, so the Node clients are not installed: {INSTALL_HINT}",
            stamp.display()
        ));
    }
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "`node --version` failed ({}): Node 20 or later is needed",
            out.status
        )),
        Err(e) => Some(format!("cannot run node ({e}): Node 20 or later is needed")),
    }
}

/// Why the Python half of the client environment is unusable, if it is.
fn python_env_problem(python: &Path) -> Option<String> {
    if !python.is_file() {
        return Some(format!("{} is missing: {INSTALL_HINT}", python.display()));
    }
    match Command::new(python)
        .args(["-c", "import langchain_openai, langchain_anthropic"])
        .output()
    {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "LangChain is not installed in .venv ({}): {INSTALL_HINT}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Some(format!(
            "cannot run {} ({e}): {INSTALL_HINT}",
            python.display()
        )),
    }
}

/// Runs one `node --test` file of tests/clients; the error says what failed
/// and how to rerun it.
fn node_suite(file: &str) -> Result<(), String> {
    let root = root()?;
    if let Some(problem) = node_env_problem(&root) {
        return Err(problem);
    }
    let mut command = Command::new("node");
    command
        .args(["--test", "--test-reporter=spec", file])
        .current_dir(root.join("tests/clients"));
    let status = common::run_streaming(command)?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "the real-client suite tests/clients/{file} failed ({status}); rerun with \
             `cd tests/clients && BULWARK_BIN=<target>/debug/bulwark node --test {file}`"
        ))
    }
}

#[test]
fn claude_code_suite_passes() {
    if let Err(e) = node_suite("claude_code.test.mjs") {
        panic!("{e}");
    }
}

#[test]
fn codex_cli_suite_passes() {
    if let Err(e) = node_suite("codex.test.mjs") {
        panic!("{e}");
    }
}

#[test]
fn vercel_ai_sdk_suite_passes() {
    if let Err(e) = node_suite("ai_sdk.test.mjs") {
        panic!("{e}");
    }
}

/// The Vercel AI SDK's default `openai(model)`, over the Responses API.
#[test]
fn vercel_ai_sdk_responses_suite_passes() {
    if let Err(e) = node_suite("ai_sdk_responses.test.mjs") {
        panic!("{e}");
    }
}

#[test]
fn python_clients_suite_passes() {
    let root = root().unwrap();
    let python = root.join(".venv/bin/python");
    if let Some(problem) = python_env_problem(&python) {
        panic!("{problem}");
    }
    let mut command = Command::new(&python);
    command
        .args(["-m", "pytest", "-v", "tests/clients"])
        .current_dir(&root);
    let status = common::run_streaming(command).unwrap();
    assert!(
        status.success(),
        "the Python real-client suite (LangChain, SDK helpers) failed ({status}); rerun with \
         `BULWARK_BIN=<target>/debug/bulwark .venv/bin/python -m pytest -v tests/clients`"
    );
}
