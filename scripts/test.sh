#!/usr/bin/env bash
# Runs every check and test, installing what they need on a fresh machine:
# local services, the Python virtualenv with the official OpenAI and
# Anthropic SDKs, the real clients of tests/clients, then format, lints, and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "disk"
# A clean build and test run needs about 3 GB under target/.
df -h . | tail -n 1

step "services (PostgreSQL, Redis)"
scripts/services.sh

step "tools (Chromium, promtool, rsvg-convert, hadolint)"
scripts/tools.sh

step "Python SDK environment (.venv)"
scripts/python-env.sh

step "real-client environment (tests/clients: Claude Code, AI SDK, LangChain)"
scripts/clients-env.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast
    # nextest does not run doctests.
    cargo test --workspace --locked --doc
else
    cargo test --workspace --locked --no-fail-fast
fi

step "examples"
cargo run --quiet --locked -p bulwark --example in_process

step "packaging (Dockerfile: hadolint, and its release build)"
scripts/check-dockerfile.sh

printf '\nAll checks passed.\n'
