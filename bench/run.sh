#!/usr/bin/env bash
# Benchmarks Bulwark against the direct path, nginx and LiteLLM on this
# machine (see bench/run.py for what is measured). Installs what it needs:
# oha (cargo), nginx (Debian), LiteLLM (PyPI, in bench/.venv-litellm).
# Usage: bench/run.sh [--quick] [--skip-litellm] [--streams N]
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "tools"
if ! command -v oha >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/oha" ]; then
    cargo install oha --locked
fi
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light || DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx
fi
if [[ " $* " != *" --skip-litellm "* ]] && [ ! -x bench/.venv-litellm/bin/litellm ]; then
    python3 -m venv bench/.venv-litellm
    bench/.venv-litellm/bin/pip install --quiet 'litellm[proxy]'
fi

step "release build"
cargo build --release --locked -p bulwark-cli --bin bulwark --example stream_load

step "benchmark"
exec python3 bench/run.py "$@"
