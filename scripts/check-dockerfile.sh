#!/usr/bin/env bash
# Checks the container packaging without trusting that a container engine
# runs here: lints the Dockerfile with hadolint, then builds the image if
# Docker answers, or else runs the Dockerfile's own build command (read from
# the Dockerfile, so the two cannot drift apart) and checks the binary and
# the config the image ships.
set -euo pipefail
cd "$(dirname "$0")/.."

hadolint=$(command -v hadolint || echo .tools/venv/bin/hadolint)
echo "packaging: hadolint Dockerfile"
"$hadolint" Dockerfile

if docker info >/dev/null 2>&1; then
    echo "packaging: docker build"
    docker build -t bulwark:check .
    exit 0
fi

# The build stage's `RUN cargo build ...` line, without its continuation.
build=$(sed -n 's/^RUN \(cargo build [^&\\]*\).*/\1/p' Dockerfile | head -n 1 | sed 's/[[:space:]]*$//')
case "$build" in
    "cargo build --release --locked "*) ;;
    *) echo "packaging: the Dockerfile has no 'RUN cargo build --release --locked' line (found: '$build')" >&2; exit 1 ;;
esac
echo "packaging: no container engine answers; running the Dockerfile's build: $build"
$build

bin=target/release/bulwark
"$bin" --version
echo "packaging: bulwark check --config deploy/bulwark.yaml"
BULWARK_CLIENT_KEY=packaging-check-client-key "$bin" check --config deploy/bulwark.yaml
echo "packaging: OK"
