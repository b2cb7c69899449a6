#!/usr/bin/env bash
# Create (or refresh) the Python virtualenv used by the SDK test suite in tests/sdk.
# Idempotent: when .venv exists and tests/sdk/requirements.txt is unchanged since the
# last successful install (hash stored in .venv/.requirements.sha256), it does nothing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ROOT}/.venv"
REQ="${ROOT}/tests/sdk/requirements.txt"
STAMP="${VENV}/.requirements.sha256"
PYTHON="${PYTHON:-python3}"

want="$(sha256sum "${REQ}" | cut -d' ' -f1)"

if [[ -x "${VENV}/bin/python" && -f "${STAMP}" && "$(cat "${STAMP}")" == "${want}" ]]; then
    echo "python-env: ${VENV} is up to date"
    exit 0
fi

if [[ ! -x "${VENV}/bin/python" ]]; then
    echo "python-env: creating ${VENV}"
    "${PYTHON}" -m venv "${VENV}"
fi

echo "python-env: installing ${REQ}"
"${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check -r "${REQ}"
echo "${want}" > "${STAMP}"
echo "python-env: done"
