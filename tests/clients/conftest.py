"""Fixtures for the Python real-client tests (LangChain, the official SDKs' helpers).

Each test gets its own `bulwark sim` + `bulwark serve` pair on free ports,
configured like tests/clients/harness.mjs: a same-format, a cross-format and a
failover route for each client format, where a failover route's first target
fails every request (Anthropic 529, OpenAI 503) and its second target is the
other provider.

Environment:
  BULWARK_BIN   the bulwark binary (default: target/debug/bulwark)
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from clientutil import ANTHROPIC_MODEL, BROKEN_MODEL, OPENAI_MODEL, SIM_FAULTS
from sdkutil import stop_process

ROOT = Path(__file__).resolve().parents[2]
BULWARK_BIN = os.environ.get(
    "BULWARK_BIN",
    str(Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "bulwark"),
)
STARTUP_TIMEOUT_S = 30.0


def _gateway_config(sim_url: str) -> str:
    return f"""\
listen: 127.0.0.1:0
store: "sqlite::memory:"
providers:
  sim-openai:    {{ kind: openai, base_url: "{sim_url}/v1", api_key: test }}
  sim-anthropic: {{ kind: anthropic, base_url: "{sim_url}", api_key: test }}
routes:
  to-anthropic: {{ targets: [sim-anthropic/{ANTHROPIC_MODEL}] }}
  to-openai: {{ targets: [sim-openai/{OPENAI_MODEL}] }}
  failover-to-openai: {{ targets: [sim-anthropic/{BROKEN_MODEL}, sim-openai/{OPENAI_MODEL}], max_retries: 0 }}
  failover-to-anthropic: {{ targets: [sim-openai/{BROKEN_MODEL}, sim-anthropic/{ANTHROPIC_MODEL}], max_retries: 0 }}
"""


class _Process:
    """A bulwark child process; its stdout is read on a thread for the listening line."""

    def __init__(self, name: str, args: list[str], ready: re.Pattern[str], workdir: Path):
        self.name = name
        self.stderr_path = workdir / f"{name}.stderr.log"
        self._stderr = open(self.stderr_path, "wb")
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.proc = subprocess.Popen(
            [BULWARK_BIN, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=workdir,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        self.url = self._wait(ready, args)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self._lines.put(raw.decode("utf-8", "replace"))
        self._lines.put(None)

    def _wait(self, ready: re.Pattern[str], args: list[str]) -> str:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        seen = []
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                break
            seen.append(line)
            m = ready.search(line)
            if m:
                return m.group(1).rstrip("/")
        self.stop()
        raise RuntimeError(
            f"{self.name} did not start: {BULWARK_BIN} {' '.join(args)}\n"
            f"--- stdout ---\n{''.join(seen)}\n--- stderr ---\n"
            f"{self.stderr_path.read_text('utf-8', 'replace')[-4000:]}"
        )

    def stop(self) -> None:
        stop_process(self.proc)
        self._stderr.close()


@dataclass
class Stack:
    sim_url: str
    gateway_url: str

    def sim_requests(self) -> list[dict]:
        r = httpx.get(f"{self.sim_url}/_sim/requests", timeout=10)
        assert r.status_code == 200, f"GET /_sim/requests -> {r.status_code} {r.text}"
        data = r.json()
        if isinstance(data, dict):
            data = data.get("requests", data.get("data", []))
        return list(data)

    def assert_failover(self, model: str) -> None:
        """The sim saw the broken first target fail before `model` answered."""
        reqs = self.sim_requests()
        seen = [f"{r.get('model')}:{r.get('outcome')}" for r in reqs]
        broken = next((i for i, r in enumerate(reqs) if r.get("model") == BROKEN_MODEL), None)
        served = next(
            (i for i, r in enumerate(reqs) if r.get("model") == model and r.get("outcome") == "ok"), None
        )
        assert broken is not None and served is not None and broken < served, (
            f"expected {BROKEN_MODEL} to fail, then {model} to answer; the sim saw {seen}"
        )


@pytest.fixture
def stack():
    if not os.access(BULWARK_BIN, os.X_OK):
        pytest.fail(f"bulwark binary not found at {BULWARK_BIN}: run `cargo build -p bulwark-cli` or set BULWARK_BIN")
    with tempfile.TemporaryDirectory(prefix="bulwark-clients-py-") as d:
        workdir = Path(d)
        procs: list[_Process] = []
        try:
            sim = _Process("sim", ["sim", "--listen", "127.0.0.1:0"],
                           re.compile(r"bulwark-sim listening on (http://\S+)"), workdir)
            procs.append(sim)
            r = httpx.put(f"{sim.url}/_sim/faults", json=SIM_FAULTS, timeout=10)
            assert r.status_code < 300, f"PUT /_sim/faults -> {r.status_code} {r.text}"
            config = workdir / "gateway.yaml"
            config.write_text(_gateway_config(sim.url))
            gw = _Process("gateway", ["serve", "--config", str(config)],
                          re.compile(r"bulwark listening on (http://\S+)"), workdir)
            procs.append(gw)
            yield Stack(sim.url, gw.url)
        finally:
            for p in reversed(procs):
                p.stop()


def pytest_report_header(config):
    return f"bulwark binary: {BULWARK_BIN}"
