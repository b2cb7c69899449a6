#!/usr/bin/env bash
# Install (or refresh) the real-client environment used by tests/clients:
#  - the Node clients pinned in tests/clients/package-lock.json (Claude Code,
#    whose ~400 MB native binary comes through an optional dependency, and
#    the Codex CLI, whose native binary also comes through an optional
#    dependency, and the Vercel AI SDK) into tests/clients/node_modules, with `npm ci`;
#  - the Python clients (LangChain) through scripts/python-env.sh, since they
#    are pinned in tests/sdk/requirements.txt next to the official SDKs.
# Idempotent: when node_modules exists and the lockfile is unchanged since the
# last successful install (hash in node_modules/.package-lock.sha256), npm is
# not run again.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${ROOT}/tests/clients"
LOCK="${DIR}/package-lock.json"
STAMP="${DIR}/node_modules/.package-lock.sha256"

"${ROOT}/scripts/python-env.sh"

if ! command -v npm >/dev/null 2>&1; then
    echo "clients-env: npm is not installed (Node 20 or later is needed)" >&2
    exit 1
fi

want="$(sha256sum "${LOCK}" | cut -d' ' -f1)"
if [[ -f "${STAMP}" && "$(cat "${STAMP}")" == "${want}" ]]; then
    echo "clients-env: ${DIR}/node_modules is up to date"
    exit 0
fi

echo "clients-env: npm ci in ${DIR} (Claude Code's native binary is a ~400 MB download)"
# --loglevel=http prints each download, so a slow fetch shows progress.
(cd "${DIR}" && npm ci --no-audit --no-fund --loglevel=http)

# The Claude Code wrapper copies the platform's native binary over its
# bin/claude.exe placeholder in a postinstall step, which npm may skip
# (allowScripts); the tests then use the platform package's binary, as here.
bin_dir="${DIR}/node_modules/@anthropic-ai"
claude="${bin_dir}/claude-code/bin/claude.exe"
if ! "${claude}" --version 2>/dev/null; then
    claude="$(ls "${bin_dir}"/claude-code-linux-*/claude 2>/dev/null | head -n 1)"
    if [[ -z "${claude}" ]] || ! "${claude}" --version; then
        echo "clients-env: no runnable Claude Code binary under ${bin_dir} (did npm skip the optional dependency?)" >&2
        exit 1
    fi
fi
codex="${DIR}/node_modules/@openai/codex/bin/codex.js"
if ! node "${codex}" --version; then
    echo "clients-env: the Codex CLI under ${DIR}/node_modules/@openai does not run (did npm skip its optional dependency?)" >&2
    exit 1
fi
echo "${want}" > "${STAMP}"
echo "clients-env: done"
