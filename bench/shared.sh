#!/usr/bin/env bash
# What sharing state through Redis costs a request (see bench/shared.py).
# Installs oha (cargo) when missing; needs redis-server and redis-cli.
# Usage: bench/shared.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v oha >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/oha" ]; then
    cargo install oha --locked
fi
cargo build --release --locked -p bulwark-cli --bin bulwark
exec python3 bench/shared.py "$@"
