"""Session fixtures for the black-box SDK suite.

One `bulwark sim` process plays every upstream provider (it speaks the OpenAI,
Anthropic and Gemini wire formats at their real paths); one `bulwark serve`
process is the gateway under test, configured with one provider of each kind
pointing at the sim. The official SDKs talk to the gateway with retries off,
so what is tested is the gateway's behaviour, not the SDK's.

Environment:
  BULWARK_BIN   path of the bulwark binary (default: target/debug/bulwark)
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

import anthropic
import httpx
import openai
import pytest

from sdkutil import MAX_REQUEST_BYTES, generated_routes, stop_process

ROOT = Path(__file__).resolve().parents[2]
BULWARK_BIN = os.environ.get("BULWARK_BIN", str(ROOT / "target" / "debug" / "bulwark"))
STARTUP_TIMEOUT_S = 30.0

def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM it if pytest dies without cleaning up."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:  # noqa: BLE001 - best effort, not on Linux
        pass


class ManagedProcess:
    """A child process whose stdout is read line by line on a thread.

    stderr goes to a file so a chatty process can never block on a full pipe,
    and so it can be shown when startup fails.
    """

    def __init__(self, name: str, args: list[str], ready: re.Pattern[str], workdir: Path):
        self.name = name
        self.args = args
        self.stderr_path = workdir / f"{name}.stderr.log"
        self._stderr = open(self.stderr_path, "wb")
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.stdout_lines: list[str] = []
        try:
            self.proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                cwd=workdir,
                env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "info")},
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        except OSError as e:
            self._stderr.close()
            pytest.exit(f"cannot start {name} ({' '.join(args)}): {e}", returncode=3)
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        self.url = self._wait_ready(ready)

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.stdout_lines.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def stderr_text(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        try:
            return self.stderr_path.read_text("utf-8", "replace")[-8000:]
        except OSError:
            return ""

    def _wait_ready(self, ready: re.Pattern[str]) -> str:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        eof = False
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                line = self._lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if line is None:  # stdout closed: the process exited
                eof = True
                break
            m = ready.search(line)
            if m:
                return m.group(1)
        if eof:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        exited = self.proc.poll() is not None
        self.stop()
        if exited:
            what = f"{self.name} exited with status {self.proc.returncode} before printing its listening line"
        else:
            what = f"{self.name} did not print its listening line within {STARTUP_TIMEOUT_S:.0f}s (killed)"
        self.fail(what)
        raise AssertionError("unreachable")

    def fail(self, what: str) -> None:
        stdout = "\n".join(self.stdout_lines[-50:])
        pytest.exit(
            f"{what}\ncommand: {' '.join(self.args)}\n"
            f"--- stdout ---\n{stdout}\n--- stderr ---\n{self.stderr_text()}",
            returncode=3,
        )

    def stop(self) -> None:
        stop_process(self.proc)
        self._stderr.close()


@dataclass
class Sim:
    url: str
    http: httpx.Client

    def set_faults(self, rules: list[dict]) -> None:
        r = self.http.put(f"{self.url}/_sim/faults", json=rules)
        assert r.status_code < 300, f"PUT /_sim/faults -> {r.status_code} {r.text}"

    def clear_faults(self) -> None:
        r = self.http.delete(f"{self.url}/_sim/faults")
        assert r.status_code < 300, f"DELETE /_sim/faults -> {r.status_code} {r.text}"

    def clear_requests(self) -> None:
        r = self.http.delete(f"{self.url}/_sim/requests")
        assert r.status_code < 300, f"DELETE /_sim/requests -> {r.status_code} {r.text}"

    def requests(self) -> list[dict]:
        """The requests the sim received since the last clear, oldest first."""
        r = self.http.get(f"{self.url}/_sim/requests")
        assert r.status_code == 200, f"GET /_sim/requests -> {r.status_code} {r.text}"
        data = r.json()
        if isinstance(data, dict):
            data = data.get("requests", data.get("data", []))
        return list(data)

    def last_request(self, fmt: str | None = None) -> dict:
        """The most recent request received (optionally of one wire format)."""
        reqs = [r for r in self.requests() if fmt is None or r.get("format") == fmt]
        assert reqs, f"the sim received no {fmt or ''} request; all: {self.requests()}"
        return reqs[-1]


def _gateway_config(sim_url: str) -> str:
    routes = "".join(
        f"  {name}: {spec}\n" for name, spec in generated_routes().items()
    )
    return f"""\
listen: 127.0.0.1:0
store: "sqlite::memory:"
max_request_bytes: {MAX_REQUEST_BYTES}
providers:
  sim-openai:    {{ kind: openai, base_url: "{sim_url}/v1", api_key: test }}
  sim-compat:    {{ kind: openai-compatible, base_url: "{sim_url}/v1" }}
  sim-anthropic: {{ kind: anthropic, base_url: "{sim_url}", api_key: test }}
  sim-gemini:    {{ kind: gemini, base_url: "{sim_url}", api_key: test }}
  sim-azure:     {{ kind: azure-openai, base_url: "{sim_url}", api_version: 2024-10-21, api_key: test }}
routes:
  smart:    {{ targets: [sim-anthropic/claude-sonnet-4-5, sim-openai/gpt-4o-mini] }}
  fallback: {{ targets: [sim-anthropic/broken-model, sim-openai/gpt-4o-mini], max_retries: 0 }}
  cached-oai: {{ targets: [sim-openai/gpt-4o-mini], cache: {{ ttl: 1h }} }}
  cached-ant: {{ targets: [sim-anthropic/claude-sonnet-4-5], cache: {{ ttl: 1h }} }}
  strict-oai: {{ targets: [sim-openai/gpt-4o-mini], translation: strict }}
  resp-fallback: {{ targets: [sim-anthropic/broken-responses, sim-openai/gpt-4o-mini], max_retries: 0 }}
  embed-oai: {{ targets: [sim-openai/text-embedding-3-small] }}
  embed-failover: {{ targets: [sim-openai/text-embedding-004, sim-gemini/text-embedding-004], max_retries: 0 }}
  count-ant: {{ targets: [sim-anthropic/claude-sonnet-4-5] }}
  count-failover: {{ targets: [sim-anthropic/claude-sonnet-4-5, sim-openai/gpt-4o-mini], max_retries: 0 }}
  azure:    {{ targets: [sim-azure/my-gpt, sim-openai/gpt-4o-mini], max_retries: 0 }}
{routes}"""


@pytest.fixture(scope="session")
def workdir():
    with tempfile.TemporaryDirectory(prefix="bulwark-sdk-tests-") as d:
        yield Path(d)


@pytest.fixture(scope="session")
def sim_process(workdir):
    if not os.access(BULWARK_BIN, os.X_OK):
        pytest.exit(
            f"bulwark binary not found at {BULWARK_BIN}: run `cargo build -p bulwark-cli` "
            "or set BULWARK_BIN",
            returncode=3,
        )
    p = ManagedProcess(
        "sim",
        [BULWARK_BIN, "sim", "--listen", "127.0.0.1:0"],
        re.compile(r"bulwark-sim listening on (http://\S+)"),
        workdir,
    )
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture(scope="session")
def sim(sim_process):
    with httpx.Client(timeout=10) as http:
        yield Sim(sim_process.url.rstrip("/"), http)


@pytest.fixture(scope="session")
def gateway_process(sim, workdir):
    config = workdir / "gateway.yaml"
    config.write_text(_gateway_config(sim.url))
    p = ManagedProcess(
        "gateway",
        [BULWARK_BIN, "serve", "--config", str(config)],
        re.compile(r"bulwark listening on (http://\S+)"),
        workdir,
    )
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture(scope="session")
def gateway(gateway_process) -> str:
    """Base URL of the gateway, e.g. http://127.0.0.1:1234 (no trailing slash)."""
    return gateway_process.url.rstrip("/")


@pytest.fixture(autouse=True)
def _reset_sim(request):
    """Every test starts with no faults and an empty request log."""
    s = request.getfixturevalue("sim")
    s.clear_faults()
    s.clear_requests()
    yield
    s.clear_faults()


@pytest.fixture
def sim_faults(sim):
    """Install sim fault rules for one test; they are cleared afterwards by _reset_sim."""
    return sim.set_faults


@pytest.fixture(scope="session")
def oai(gateway) -> openai.OpenAI:
    client = openai.OpenAI(base_url=gateway + "/v1", api_key="any", max_retries=0, timeout=20)
    yield client
    client.close()


@pytest.fixture(scope="session")
def ant(gateway) -> anthropic.Anthropic:
    client = anthropic.Anthropic(base_url=gateway, api_key="any", max_retries=0, timeout=20)
    yield client
    client.close()


@pytest.fixture(scope="session")
def http(gateway):
    """A raw HTTP client for requests the SDKs refuse to make (malformed JSON...)."""
    with httpx.Client(base_url=gateway, timeout=20) as c:
        yield c


def pytest_report_header(config):
    return f"bulwark binary: {BULWARK_BIN}"
