#!/usr/bin/env python3
"""Bulwark's benchmark: the cost of each proxy hop, side by side.

Starts `bulwark sim` (the upstream), then measures, against that same
upstream and with one load tool (oha):

  direct       the simulated provider itself (the physical limit)
  nginx        a plain reverse proxy (proxy_pass, keep-alive upstream)
  bulwark-1    Bulwark with a one-target route
  bulwark-3    Bulwark with a three-target route: two balanced by least
               latency with percentile hedging, one fallback; breakers,
               retry budgets and adaptive concurrency on
  litellm      LiteLLM proxy, the gateway most users would otherwise run

Figures: added latency one request at a time (median and p99 of interleaved
rounds, minus direct), maximum throughput at 50 connections, p50/p99 at a
fixed rate, idle and peak RSS, and for streams the time to first token added
and the memory and CPU cost of 1,000 concurrent open streams.

The proxy under test runs on CPU 0; the simulator and the load tool share
CPU 1, so every proxy gets the same core to itself. Absolute figures move
between runs on a shared machine; the ratios against direct and nginx are
the figures to compare.

Usage: bench/run.sh [--quick] [--skip-litellm]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
BULWARK = ROOT / "target/release/bulwark"
STREAM_LOAD = ROOT / "target/release/examples/stream_load"
LITELLM = ROOT / "bench/.venv-litellm/bin/litellm"
RESULTS = ROOT / "bench/results"
PROXY_CPU = "0"
LOAD_CPU = "1"

BODY = json.dumps({
    "model": "MODEL",
    "max_tokens": 32,
    "messages": [{"role": "user", "content": "Say hello to the benchmark in a few words."}],
})


def say(text: str) -> None:
    print(text, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, what: str, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f} s")


def http_ok(url: str, body: str | None = None) -> bool:
    data = body.encode() if body else None
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json", "authorization": "Bearer bench"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return 200 <= response.status < 300


class Process:
    """A process pinned to a CPU, killed with its whole group at the end."""

    def __init__(self, name: str, cmd: list[str], cpu: str, env: dict | None = None):
        self.name = name
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            ["taskset", "-c", cpu, *cmd],
            stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
            start_new_session=True,
        )

    def pids(self) -> list[int]:
        """The process and its descendants (nginx workers, uvicorn children)."""
        found, frontier = [], [self.proc.pid]
        while frontier:
            pid = frontier.pop()
            found.append(pid)
            try:
                children = pathlib.Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                children = []
            frontier.extend(int(c) for c in children)
        return found

    def memory_kb(self, field: str) -> int:
        total = 0
        for pid in self.pids():
            try:
                for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith(field + ":"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total

    def cpu_seconds(self) -> float:
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in self.pids():
            try:
                fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / ticks
            except (OSError, IndexError, ValueError):
                pass
        return total

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def oha(url: str, model: str, *, n: int | None = None, seconds: int | None = None, connections: int = 1, qps: int | None = None) -> dict:
    cmd = ["taskset", "-c", LOAD_CPU, OHA, "--no-tui", "--output-format", "json", "-m", "POST",
           "-H", "content-type: application/json", "-H", "authorization: Bearer bench",
           "-d", BODY.replace("MODEL", model), "-c", str(connections)]
    if n:
        cmd += ["-n", str(n)]
    if seconds:
        cmd += ["-z", f"{seconds}s"]
    if qps:
        cmd += ["-q", str(qps)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    report = json.loads(out)
    codes = report.get("statusCodeDistribution", {})
    ok = sum(v for k, v in codes.items() if k.startswith("2"))
    total = sum(codes.values()) or 1
    pct = report.get("latencyPercentiles", {})
    return {
        "rps": report["summary"]["requestsPerSec"],
        "p50_ms": (pct.get("p50") or 0) * 1000,
        "p99_ms": (pct.get("p99") or 0) * 1000,
        "success": ok / total,
    }


def stream_load(base: str, model: str, streams: int, proxy: Process | None) -> dict:
    cpu_before = proxy.cpu_seconds() if proxy else 0.0
    out = subprocess.run(["taskset", "-c", LOAD_CPU, str(STREAM_LOAD), base, str(streams), model],
                         capture_output=True, text=True, check=True, timeout=300).stdout
    result = json.loads(out.strip().splitlines()[-1])
    if proxy:
        result["cpu_s"] = proxy.cpu_seconds() - cpu_before
        result["peak_rss_mb"] = proxy.memory_kb("VmHWM") / 1024
    return result


def nginx_conf(directory: pathlib.Path, port: int, upstream: int) -> pathlib.Path:
    conf = directory / "nginx.conf"
    conf.write_text(f"""
daemon off;
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    upstream sim {{ server 127.0.0.1:{upstream}; keepalive 256; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://sim;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
}}
""")
    return conf


def bulwark_conf(directory: pathlib.Path, name: str, port: int, upstream: int) -> pathlib.Path:
    conf = directory / f"{name}.yaml"
    base = f"http://127.0.0.1:{upstream}/v1"
    conf.write_text(f"""
listen: 127.0.0.1:{port}
providers:
  a: {{ kind: openai-compatible, base_url: "{base}" }}
  b: {{ kind: openai-compatible, base_url: "{base}" }}
  c: {{ kind: openai-compatible, base_url: "{base}" }}
routes:
  one: {{ targets: [a/gpt-4o-mini] }}
  three:
    targets: [[a/gpt-4o-mini, b/gpt-4o-mini], c/gpt-4o-mini]
    balance: least_latency
    hedge_after: p95
""")
    return conf


def litellm_conf(directory: pathlib.Path, upstream: int) -> pathlib.Path:
    conf = directory / "litellm.yaml"
    conf.write_text(f"""
model_list:
  - model_name: bench
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: http://127.0.0.1:{upstream}/v1
      api_key: sk-bench
litellm_settings:
  drop_params: true
  telemetry: false
""")
    return conf


def start_targets(directory: pathlib.Path, upstream: int, skip_litellm: bool) -> dict[str, tuple[str, str, Process | None]]:
    """name -> (OpenAI base URL, model, process)."""
    targets: dict[str, tuple[str, str, Process | None]] = {"direct": (f"http://127.0.0.1:{upstream}/v1", "gpt-4o-mini", None)}
    port = free_port()
    nginx = Process("nginx", [shutil.which("nginx") or "/usr/sbin/nginx", "-p", str(directory), "-c", str(nginx_conf(directory, port, upstream))], PROXY_CPU)
    targets["nginx"] = (f"http://127.0.0.1:{port}/v1", "gpt-4o-mini", nginx)
    for name, model in [("bulwark-1", "one"), ("bulwark-3", "three")]:
        port = free_port()
        proc = Process(name, [str(BULWARK), "serve", "--config", str(bulwark_conf(directory, name, port, upstream))], PROXY_CPU, {"RUST_LOG": "error"})
        targets[name] = (f"http://127.0.0.1:{port}/v1", model, proc)
    if not skip_litellm:
        port = free_port()
        proc = Process("litellm", [str(LITELLM), "--config", str(litellm_conf(directory, upstream)), "--port", str(port), "--num_workers", "1"], PROXY_CPU,
                       # Offline, keyless, quiet: the proxy alone is measured.
                       {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR",
                        "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true"})
        targets["litellm"] = (f"http://127.0.0.1:{port}/v1", "bench", proc)
    for name, (base, model, proc) in targets.items():
        say(f"  waiting for {name} ...")
        wait_until(lambda: http_ok(f"{base}/chat/completions", BODY.replace("MODEL", model)), name, timeout=120)
    return targets


def measure(upstream_ms: int, quick: bool, skip_litellm: bool) -> dict:
    rounds, per_round, seconds = (2, 100, 4) if quick else (5, 300, 8)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bulwark-bench-") as tmp:
        directory = pathlib.Path(tmp)
        scenario = directory / "sim.yaml"
        scenario.write_text(f"latency: {{ headers_ms: {upstream_ms}, first_token_ms: 0, token_interval_ms: 0 }}\n")
        sim_port = free_port()
        sim = Process("sim", [str(BULWARK), "sim", "--listen", f"127.0.0.1:{sim_port}", "--scenario", str(scenario)], LOAD_CPU, {"RUST_LOG": "error"})
        try:
            say(f"upstream latency {upstream_ms} ms: starting the proxies")
            targets = start_targets(directory, sim_port, skip_litellm)
            for name, (_, _, proc) in targets.items():
                results[name] = {"idle_rss_mb": proc.memory_kb("VmRSS") / 1024 if proc else None}
            say(f"  one request at a time: {rounds} interleaved rounds of {per_round} per target")
            samples: dict[str, list[dict]] = {name: [] for name in targets}
            for r in range(rounds):
                for name, (base, model, _) in targets.items():
                    samples[name].append(oha(f"{base}/chat/completions", model, n=per_round))
                say(f"    round {r + 1}/{rounds} done")
            for name in targets:
                added50 = [s["p50_ms"] - d["p50_ms"] for s, d in zip(samples[name], samples["direct"])]
                added99 = [s["p99_ms"] - d["p99_ms"] for s, d in zip(samples[name], samples["direct"])]
                results[name].update({
                    "serial_p50_ms": statistics.median(s["p50_ms"] for s in samples[name]),
                    "added_p50_ms": statistics.median(added50),
                    "added_p99_ms": statistics.median(added99),
                })
            for name, (base, model, proc) in targets.items():
                say(f"  {name}: maximum throughput at 50 connections ({seconds} s), then 100 requests/s")
                peak = oha(f"{base}/chat/completions", model, seconds=seconds, connections=50)
                rate = oha(f"{base}/chat/completions", model, seconds=seconds, connections=50, qps=100)
                results[name].update({
                    "max_rps": peak["rps"],
                    "max_success": peak["success"],
                    "rate_p50_ms": rate["p50_ms"],
                    "rate_p99_ms": rate["p99_ms"],
                    "peak_rss_mb": proc.memory_kb("VmHWM") / 1024 if proc else None,
                })
            for name, (_, _, proc) in targets.items():
                if proc:
                    proc.stop()
        finally:
            sim.stop()
    return results


def measure_streams(streams: int, skip_litellm: bool) -> dict:
    """A realistic cadence: 60 ms to the first token, then 20 ms per token."""
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bulwark-bench-") as tmp:
        directory = pathlib.Path(tmp)
        scenario = directory / "sim.yaml"
        scenario.write_text("latency: { headers_ms: 0, first_token_ms: 60, token_interval_ms: 20 }\n")
        sim_port = free_port()
        sim = Process("sim", [str(BULWARK), "sim", "--listen", f"127.0.0.1:{sim_port}", "--scenario", str(scenario)], LOAD_CPU, {"RUST_LOG": "error"})
        try:
            say("streams: starting the proxies")
            targets = start_targets(directory, sim_port, skip_litellm)
            for name, (base, model, proc) in targets.items():
                say(f"  {name}: time to first token, 20 streams; then {streams} concurrent streams")
                few = stream_load(base, model, 20, None)
                many = stream_load(base, model, streams, proc)
                results[name] = {
                    "ttft_p50_ms": few["ttft_p50_ms"],
                    "many_completed": many["completed"],
                    "many_ttft_p99_ms": many["ttft_p99_ms"],
                    "many_cpu_s": many.get("cpu_s"),
                    "many_peak_rss_mb": many.get("peak_rss_mb"),
                }
            for name in targets:
                results[name]["ttft_added_ms"] = results[name]["ttft_p50_ms"] - results["direct"]["ttft_p50_ms"]
            for _, (_, _, proc) in targets.items():
                if proc:
                    proc.stop()
        finally:
            sim.stop()
    return results


def fmt(value, digits: int = 2, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}{unit}"


def ratio(value, base) -> str:
    if value is None or not base:
        return "-"
    return f"{value / base:.2f}x"


def table(r0: dict, r60: dict, streams: dict) -> str:
    names = list(r0)
    lines = [
        "| | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]

    def row(label: str, values) -> None:
        lines.append(f"| {label} | " + " | ".join(values) + " |")

    row("added latency p50, 0 ms upstream (µs)", [fmt(r0[n]["added_p50_ms"] * 1000, 0) for n in names])
    row("added latency p99, 0 ms upstream (µs)", [fmt(r0[n]["added_p99_ms"] * 1000, 0) for n in names])
    row("added latency p50, 60 ms upstream (µs)", [fmt(r60[n]["added_p50_ms"] * 1000, 0) for n in names])
    row("max throughput, 50 conns (req/s)", [fmt(r0[n]["max_rps"], 0) for n in names])
    row("  vs direct", [ratio(r0[n]["max_rps"], r0["direct"]["max_rps"]) for n in names])
    row("  vs nginx", [ratio(r0[n]["max_rps"], r0["nginx"]["max_rps"]) for n in names])
    row("  success share", [fmt(r0[n]["max_success"] * 100, 1, " %") for n in names])
    row("p50 / p99 at 100 req/s, 60 ms upstream (ms)", [f"{fmt(r60[n]['rate_p50_ms'], 1)} / {fmt(r60[n]['rate_p99_ms'], 1)}" for n in names])
    row("idle RSS (MB)", [fmt(r0[n]["idle_rss_mb"], 1) for n in names])
    row("peak RSS under load (MB)", [fmt(r0[n]["peak_rss_mb"], 1) for n in names])
    if streams:
        row("stream: first token added, p50 (ms)", [fmt(streams[n]["ttft_added_ms"], 2) for n in names])
        row("1,000 streams: completed", [str(streams[n]["many_completed"]) for n in names])
        row("1,000 streams: first token p99 (ms)", [fmt(streams[n]["many_ttft_p99_ms"], 0) for n in names])
        row("1,000 streams: proxy CPU (s)", [fmt(streams[n]["many_cpu_s"], 2) for n in names])
        row("1,000 streams: proxy peak RSS (MB)", [fmt(streams[n]["many_peak_rss_mb"], 1) for n in names])
    return "\n".join(lines)


def chart(r0: dict) -> str:
    """A bar chart of maximum throughput, as SVG."""
    names = list(r0)
    values = [r0[n]["max_rps"] or 0 for n in names]
    top = max(values) or 1
    width, bar, gap, left = 640, 28, 14, 110
    height = 40 + len(names) * (bar + gap)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="13">',
             f'<text x="{left}" y="20" font-weight="bold">Maximum throughput at 50 connections (requests/s, 0 ms upstream)</text>']
    for i, (name, value) in enumerate(zip(names, values)):
        y = 34 + i * (bar + gap)
        w = (width - left - 90) * value / top
        colour = "#2b6cb0" if name.startswith("bulwark") else "#a0aec0"
        parts.append(f'<text x="{left - 8}" y="{y + bar * 0.7}" text-anchor="end">{name}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar}" fill="{colour}"/>')
        parts.append(f'<text x="{left + w + 6:.1f}" y="{y + bar * 0.7}">{value:,.0f}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and shorter runs")
    parser.add_argument("--skip-litellm", action="store_true")
    parser.add_argument("--streams", type=int, default=1000)
    args = parser.parse_args()
    started = time.time()
    r0 = measure(0, args.quick, args.skip_litellm)
    r60 = measure(60, args.quick, args.skip_litellm)
    streams = measure_streams(args.streams, args.skip_litellm)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps({"upstream_0ms": r0, "upstream_60ms": r60, "streams": streams}, indent=2))
    (RESULTS / "throughput.svg").write_text(chart(r0))
    text = table(r0, r60, streams)
    (RESULTS / "latest.md").write_text(text + "\n")
    say("\n" + text)
    say(f"\nwritten: {RESULTS}/latest.md, latest.json, throughput.svg ({time.time() - started:.0f} s)")
    return 0


OHA = shutil.which("oha") or str(pathlib.Path.home() / ".cargo/bin/oha")

if __name__ == "__main__":
    sys.exit(main())
