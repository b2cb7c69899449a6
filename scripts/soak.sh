#!/usr/bin/env bash
# Builds the release binary and runs the soak (see scripts/soak.py):
#   scripts/soak.sh [--minutes 30] [--rate 40] [--out soak-results]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p bulwark-cli --bin bulwark
exec python3 scripts/soak.py "$@"
