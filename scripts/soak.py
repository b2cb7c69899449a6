#!/usr/bin/env python3
"""A soak: hours-long steadiness, compressed into one run.

Starts `bulwark sim` with a moderate mix of every fault it injects (error
statuses, hangs, stalls, cut and malformed streams, error events inside a
200 stream, reset connections) and `bulwark serve` in front of it with a
SQLite request log, then sends mixed traffic at a steady rate for the given
time: both chat front doors, streamed and not, the Responses API, embeddings
and token counts, plus scrapes of the status page and metrics.

Every 10 s it samples the gateway's resident memory, peak memory, open file
descriptors, threads and live async tasks. At the end it writes:

  soak.csv      the samples
  soak-rss.svg  memory, descriptors and tasks over time
  summary.md    the figures docs/soak.md quotes, and a verdict

A leak shows as a line that keeps climbing after warm-up. The verdict
compares the second half's slope with a tolerance (memory) and the last
sample with the first after warm-up (descriptors, tasks).

Usage: scripts/soak.sh [--minutes 30] [--rate 40] [--out soak-results]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import pathlib
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent

# Faults at a moderate rate: about one request in eight meets one. Rules are
# tried in order; each fires with its own probability.
SIM_SCENARIO = """
latency: { headers_ms: 5, first_token_ms: 20, token_interval_ms: 2 }
models: [gpt-4o-mini, claude-sonnet-4-5, gemini-2.5-flash, text-embedding-3-small]
faults:
  - { probability: 0.03, fault: { status: 529 }, match: { format: anthropic } }
  - { probability: 0.02, fault: { status: 503 } }
  - { probability: 0.02, fault: { status: { status: 429, retry_after: 1 } } }
  - { probability: 0.01, fault: { hang: { duration_ms: 4000 } } }
  - { probability: 0.02, match: { stream: true }, fault: { stall: { after_chunks: 2, duration_ms: 3000 } } }
  - { probability: 0.01, match: { stream: true }, fault: { cut: { after_chunks: 3 } } }
  - { probability: 0.01, match: { stream: true }, fault: { malformed: { after_chunks: 2 } } }
  - { probability: 0.01, match: { stream: true }, fault: { error_event: { after_chunks: 1 } } }
  - { probability: 0.005, fault: connection_reset }
"""

GATEWAY_CONFIG = """
listen: 127.0.0.1:{gateway_port}
store: "sqlite://{store}"
providers:
  anthropic: {{ kind: anthropic, base_url: "http://127.0.0.1:{sim_port}", api_key: soak-key }}
  openai: {{ kind: openai, base_url: "http://127.0.0.1:{sim_port}/v1", api_key: soak-key }}
  gemini: {{ kind: gemini, base_url: "http://127.0.0.1:{sim_port}", api_key: soak-key }}
routes:
  chat:
    targets: [anthropic/claude-sonnet-4-5, openai/gpt-4o-mini, gemini/gemini-2.5-flash]
    first_token_timeout: 1s
    stream_idle_timeout: 1s
    deadline: 20s
    max_retries: 1
  cached:
    targets: [openai/gpt-4o-mini, anthropic/claude-sonnet-4-5]
    first_token_timeout: 1s
    cache: {{ ttl: 60s }}
  embed:
    targets: [openai/text-embedding-3-small]
breaker: {{ consecutive_failures: 5, base_ejection: 5s }}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, path: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing answered on port {port} within {seconds} s")


def requests_mix(n: int) -> tuple[str, str, dict]:
    """One request of the mix: (kind, path, body)."""
    text = f"soak request {n}: say something short"
    roll = random.random()
    if roll < 0.25:
        return "openai-stream", "/v1/chat/completions", {
            "model": "chat", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": text}]}
    if roll < 0.45:
        return "openai", "/v1/chat/completions", {
            "model": "chat", "messages": [{"role": "user", "content": text}]}
    if roll < 0.65:
        return "anthropic-stream", "/v1/messages", {
            "model": "chat", "max_tokens": 64, "stream": True,
            "messages": [{"role": "user", "content": text}]}
    if roll < 0.75:
        return "anthropic", "/v1/messages", {
            "model": "chat", "max_tokens": 64, "messages": [{"role": "user", "content": text}]}
    if roll < 0.85:
        return "responses-stream", "/v1/responses", {
            "model": "chat", "stream": True, "store": False, "input": text}
    if roll < 0.90:
        # A small set of prompts, so that the cache both hits and misses.
        return "cached", "/v1/chat/completions", {
            "model": "cached", "messages": [{"role": "user", "content": f"cached {n % 50}"}]}
    if roll < 0.95:
        return "embeddings", "/v1/embeddings", {"model": "embed", "input": [text, "second"]}
    return "count_tokens", "/v1/messages/count_tokens", {
        "model": "chat", "messages": [{"role": "user", "content": text}]}


class Load:
    """Sends the mix at a steady total rate from a few worker threads."""

    def __init__(self, port: int, rate: float, workers: int) -> None:
        self.port, self.rate, self.workers = port, rate, workers
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.sent = 0
        self.failed: dict[str, int] = {}
        self.by_kind: dict[str, int] = {}

    def run_worker(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        interval = self.workers / self.rate
        next_at = time.monotonic() + random.random() * interval
        n = 0
        while not self.stop.is_set():
            delay = next_at - time.monotonic()
            if delay > 0:
                self.stop.wait(delay)
            next_at += interval
            n += 1
            kind, path, body = requests_mix(n)
            status = self.send(conn, path, body)
            if status is None:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            with self.lock:
                self.sent += 1
                self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
                if status != 200:
                    key = f"{kind} {status}"
                    self.failed[key] = self.failed.get(key, 0) + 1

    @staticmethod
    def send(conn: http.client.HTTPConnection, path: str, body: dict) -> int | None:
        try:
            conn.request("POST", path, body=json.dumps(body),
                         headers={"content-type": "application/json", "anthropic-version": "2023-06-01"})
            response = conn.getresponse()
            data = response.read()
            # A stream that broke after its 200 is a failure the client sees.
            if response.status == 200 and b'"type":"error"' in data[-4096:]:
                return 599
            return response.status
        except (OSError, http.client.HTTPException):
            return None

    def run_scraper(self) -> None:
        while not self.stop.wait(5):
            for path in ("/status", "/api/v2/summary.json", "/metrics"):
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                    conn.request("GET", path)
                    conn.getresponse().read()
                    conn.close()
                except (OSError, http.client.HTTPException):
                    pass


def proc_sample(pid: int, port: int) -> dict:
    status = pathlib.Path(f"/proc/{pid}/status").read_text()
    fields = {}
    for line in status.splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM", "Threads"):
            fields[name] = int(rest.split()[0])
    tasks = None
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/metrics")
        for line in conn.getresponse().read().decode().splitlines():
            if line.startswith("bulwark_runtime_alive_tasks "):
                tasks = int(float(line.split()[1]))
        conn.close()
    except (OSError, http.client.HTTPException):
        pass
    return {
        "rss_mb": fields.get("VmRSS", 0) / 1024,
        "hwm_mb": fields.get("VmHWM", 0) / 1024,
        "threads": fields.get("Threads", 0),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "tasks": tasks,
    }


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope, in units per hour."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    var = sum((t - mx) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    return sum((t - mx) * (v - my) for t, v in points) / var * 3600


def chart(samples: list[dict]) -> str:
    """Memory (MB, left axis) and descriptors/tasks (right axis) over minutes."""
    width, height, left, right, top, bottom = 760, 340, 60, 60, 40, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    t_max = max(s["t"] for s in samples) or 1
    mem_max = max(max(s["hwm_mb"], s["rss_mb"]) for s in samples) * 1.15 or 1
    count_max = max(max(s["fds"], s["tasks"] or 0) for s in samples) * 1.15 or 1

    def x(t: float) -> float:
        return left + plot_w * t / t_max

    def y(v: float, top_value: float) -> float:
        return top + plot_h * (1 - v / top_value)

    def line(key: str, top_value: float, colour: str, dash: str = "") -> str:
        pts = " ".join(f"{x(s['t']):.1f},{y(s[key] or 0, top_value):.1f}" for s in samples)
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        return f'<polyline fill="none" stroke="{colour}" stroke-width="2"{extra} points="{pts}"/>'

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{left}" y="22" font-weight="bold" font-size="14">Bulwark soak: memory, descriptors and tasks over {t_max / 60:.0f} minutes</text>',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#444"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#444"/>',
             f'<line x1="{left + plot_w}" y1="{top}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#444"/>']
    for i in range(5):
        frac = i / 4
        parts.append(f'<text x="{left - 6}" y="{y(mem_max * frac, mem_max) + 4:.1f}" text-anchor="end">{mem_max * frac:.0f}</text>')
        parts.append(f'<text x="{left + plot_w + 6}" y="{y(count_max * frac, count_max) + 4:.1f}">{count_max * frac:.0f}</text>')
        parts.append(f'<text x="{x(t_max * frac):.1f}" y="{top + plot_h + 16}" text-anchor="middle">{t_max * frac / 60:.0f} min</text>')
    parts.append(f'<text x="14" y="{top + plot_h / 2}" transform="rotate(-90 14 {top + plot_h / 2})" text-anchor="middle">MB</text>')
    parts.append(f'<text x="{width - 10}" y="{top + plot_h / 2}" transform="rotate(90 {width - 10} {top + plot_h / 2})" text-anchor="middle">count</text>')
    parts.append(line("rss_mb", mem_max, "#2b6cb0"))
    parts.append(line("hwm_mb", mem_max, "#2b6cb0", "4 3"))
    parts.append(line("fds", count_max, "#c05621"))
    parts.append(line("tasks", count_max, "#2f855a"))
    legend = [("#2b6cb0", "", "resident memory (MB)"), ("#2b6cb0", "4 3", "peak resident (MB)"),
              ("#c05621", "", "open descriptors"), ("#2f855a", "", "live async tasks")]
    for i, (colour, dash, label) in enumerate(legend):
        lx = left + 10 + i * 170
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<line x1="{lx}" y1="{height - 8}" x2="{lx + 22}" y2="{height - 8}" stroke="{colour}" stroke-width="2"{extra}/>')
        parts.append(f'<text x="{lx + 27}" y="{height - 4}">{label}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=40, help="requests per second, all kinds together")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=3, help="minutes before the flatness verdict starts counting")
    parser.add_argument("--bin", default=str(ROOT / "target/release/bulwark"))
    parser.add_argument("--out", default=str(ROOT / "soak-results"))
    args = parser.parse_args()

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = pathlib.Path(tempfile.mkdtemp(prefix="bulwark-soak."))
    sim_port, gateway_port = free_port(), free_port()
    (work / "sim.yaml").write_text(SIM_SCENARIO)
    (work / "bulwark.yaml").write_text(GATEWAY_CONFIG.format(
        gateway_port=gateway_port, sim_port=sim_port, store=work / "soak.db"))

    logs = open(work / "processes.log", "w")
    sim = subprocess.Popen([args.bin, "sim", "--listen", f"127.0.0.1:{sim_port}", "--scenario", str(work / "sim.yaml")],
                           stdout=logs, stderr=logs)
    gateway = subprocess.Popen([args.bin, "serve", "--config", str(work / "bulwark.yaml")],
                               stdout=logs, stderr=subprocess.STDOUT, env={**os.environ, "RUST_LOG": "error"})
    try:
        for name, process, port, path in (("sim", sim, sim_port, "/v1/models"), ("gateway", gateway, gateway_port, "/readyz")):
            try:
                wait_for(port, path)
            except SystemExit:
                logs.flush()
                raise SystemExit(f"the {name} did not start (exit {process.poll()}):\n" + (work / "processes.log").read_text())
        print(f"soak: {args.minutes:g} min at {args.rate:g} requests/s; gateway pid {gateway.pid}; work dir {work}", flush=True)
        load = Load(gateway_port, args.rate, args.workers)
        threads = [threading.Thread(target=load.run_worker, daemon=True) for _ in range(args.workers)]
        threads.append(threading.Thread(target=load.run_scraper, daemon=True))
        for t in threads:
            t.start()
        started = time.monotonic()
        samples: list[dict] = []
        next_report = 60.0
        while (elapsed := time.monotonic() - started) < args.minutes * 60:
            sample = proc_sample(gateway.pid, gateway_port)
            sample["t"] = elapsed
            with load.lock:
                sample["sent"], sample["failed"] = load.sent, sum(load.failed.values())
            samples.append(sample)
            if elapsed >= next_report or len(samples) == 1:
                print(f"  {elapsed / 60:5.1f} min  sent {sample['sent']:7d}  failed {sample['failed']:4d}  "
                      f"rss {sample['rss_mb']:6.1f} MB  fds {sample['fds']:4d}  tasks {sample['tasks']}  threads {sample['threads']}",
                      flush=True)
                if elapsed >= next_report:
                    next_report += 60
            time.sleep(10)
        load.stop.set()
        for t in threads:
            t.join(timeout=70)
        time.sleep(2)
        final = proc_sample(gateway.pid, gateway_port)
        final["t"] = time.monotonic() - started
        final["sent"], final["failed"] = load.sent, sum(load.failed.values())
        samples.append(final)
    finally:
        gateway.send_signal(signal.SIGTERM)
        try:
            code = gateway.wait(timeout=60)
        except subprocess.TimeoutExpired:
            gateway.kill()
            code = "killed"
        sim.kill()
        sim.wait()

    with open(out / "soak.csv", "w") as f:
        f.write("seconds,rss_mb,hwm_mb,fds,threads,tasks,sent,failed\n")
        for s in samples:
            f.write(f"{s['t']:.0f},{s['rss_mb']:.1f},{s['hwm_mb']:.1f},{s['fds']},{s['threads']},{s['tasks']},{s['sent']},{s['failed']}\n")
    (out / "soak-rss.svg").write_text(chart(samples))

    warm = [s for s in samples if s["t"] >= args.warmup * 60] or samples
    second_half = [s for s in samples if s["t"] >= samples[-1]["t"] / 2]
    rss_slope = slope_per_hour([(s["t"], s["rss_mb"]) for s in second_half])
    first, last = warm[0], samples[-1]
    # Growth a real leak would show: more than 10 MB an hour of resident
    # memory in the second half, or descriptors and tasks well above where
    # warm-up left them (the load's own connections come and go).
    flat_memory = rss_slope <= 10
    flat_fds = last["fds"] <= first["fds"] + 20
    flat_tasks = last["tasks"] is None or first["tasks"] is None or last["tasks"] <= first["tasks"] + 50
    availability = 100 * (1 - sum(load.failed.values()) / max(load.sent, 1))
    verdict = "flat" if flat_memory and flat_fds and flat_tasks else "GROWING"
    lines = [
        f"# Soak: {args.minutes:g} minutes at {args.rate:g} requests/s",
        "",
        f"- requests sent: {load.sent}; answered 200 without a broken stream: {availability:.3f} %",
        f"- by kind: {json.dumps(dict(sorted(load.by_kind.items())))}",
        f"- failures by kind and status: {json.dumps(dict(sorted(load.failed.items()))) if load.failed else 'none'}",
        f"- resident memory: {first['rss_mb']:.1f} MB after warm-up ({first['t'] / 60:.1f} min), {last['rss_mb']:.1f} MB at the end; peak {last['hwm_mb']:.1f} MB",
        f"- resident memory slope over the second half: {rss_slope:+.1f} MB/hour",
        f"- open descriptors: {samples[0]['fds']} at the start, {first['fds']} after warm-up, {last['fds']} at the end",
        f"- live async tasks: {samples[0]['tasks']} at the start, {first['tasks']} after warm-up, {last['tasks']} at the end",
        f"- threads: {samples[0]['threads']} at the start, {last['threads']} at the end",
        f"- gateway exit code after SIGTERM: {code}",
        f"- verdict: **{verdict}**",
    ]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nwritten: {out}/soak.csv, soak-rss.svg, summary.md")
    return 0 if verdict == "flat" and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
