#!/usr/bin/env python3
"""What sharing state through Redis costs a request.

Runs the same one-target route with a per-minute quota (requests and
tokens: the decision every request makes, and the usage correction after
it) three ways:

  local        no `redis:`: quotas and cache in the process
  shared       `redis:` on the machine's Redis (127.0.0.1:6379)
  redis-down   `redis:` pointing at a Redis that is frozen (SIGSTOP): the
               fallback path, after the first call has paid the timeout

and reports, for each: added latency one request at a time (p50/p99 over
the direct path), throughput at 50 connections, and the Redis commands each
request cost (from `INFO commandstats`, before and after).

Usage: bench/shared.sh [--quick]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (the shared helpers of bench/run.py)

RESULTS = bench.ROOT / "bench/results"


def config(directory: pathlib.Path, name: str, port: int, upstream: int, redis: str | None) -> pathlib.Path:
    conf = directory / f"{name}.yaml"
    shared = f'redis: {{ url: "{redis}", key_prefix: "bench-{name}-{time.time_ns()}:" }}\n' if redis else ""
    conf.write_text(f"""{shared}
listen: 127.0.0.1:{port}
providers:
  a:
    kind: openai-compatible
    base_url: "http://127.0.0.1:{upstream}/v1"
    limits: {{ rpm: 100000000, tpm: 100000000000 }}
routes:
  one:
    targets: [a/gpt-4o-mini]
""")
    return conf


def redis_calls(port: int) -> tuple[int, int]:
    """(script calls, every command): Redis counts the commands a script
    runs as commands too, so the first is the round trips."""
    out = subprocess.run(["redis-cli", "-p", str(port), "INFO", "commandstats"], capture_output=True, text=True, check=True).stdout
    scripts = total = 0
    for line in out.splitlines():
        if line.startswith("cmdstat_") and "calls=" in line:
            calls = int(line.split("calls=")[1].split(",")[0])
            total += calls
            if line.startswith(("cmdstat_evalsha:", "cmdstat_eval:")):
                scripts += calls
    return scripts, total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds, per_round, seconds = (2, 100, 4) if args.quick else (5, 300, 8)
    started = time.time()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bulwark-bench-shared-") as tmp:
        directory = pathlib.Path(tmp)
        scenario = directory / "sim.yaml"
        scenario.write_text("latency: { headers_ms: 0, first_token_ms: 0, token_interval_ms: 0 }\n")
        sim_port = bench.free_port()
        sim = bench.Process("sim", [str(bench.BULWARK), "sim", "--listen", f"127.0.0.1:{sim_port}", "--scenario", str(scenario)], bench.LOAD_CPU, {"RUST_LOG": "error"})
        redis_port = bench.free_port()
        redis = bench.Process("redis", [shutil.which("redis-server") or "redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no"], bench.LOAD_CPU)
        frozen_port = bench.free_port()
        frozen = bench.Process("frozen-redis", [shutil.which("redis-server") or "redis-server", "--port", str(frozen_port), "--save", "", "--appendonly", "no"], bench.LOAD_CPU)
        try:
            bench.wait_until(lambda: subprocess.run(["redis-cli", "-p", str(redis_port), "ping"], capture_output=True).returncode == 0, "redis")
            bench.wait_until(lambda: subprocess.run(["redis-cli", "-p", str(frozen_port), "ping"], capture_output=True).returncode == 0, "frozen redis")
            variants = {
                "local": None,
                "shared": f"redis://127.0.0.1:{redis_port}/0",
                "redis-down": f"redis://127.0.0.1:{frozen_port}/0",
            }
            targets = {"direct": (f"http://127.0.0.1:{sim_port}/v1", "gpt-4o-mini", None)}
            for name, url in variants.items():
                port = bench.free_port()
                proc = bench.Process(name, [str(bench.BULWARK), "serve", "--config", str(config(directory, name, port, sim_port, url))], bench.PROXY_CPU, {"RUST_LOG": "error"})
                targets[name] = (f"http://127.0.0.1:{port}/v1", "one", proc)
            for name, (base, model, _) in targets.items():
                bench.say(f"  waiting for {name} ...")
                bench.wait_until(lambda: bench.http_ok(f"{base}/chat/completions", bench.BODY.replace("MODEL", model)), name, timeout=60)
            # Let the shared instance's heartbeat find Redis, then freeze
            # the other one's.
            time.sleep(2)
            subprocess.run(["kill", "-STOP", str(frozen.proc.pid)], check=True)
            bench.say("  redis-down: its Redis is frozen")
            bench.http_ok(f"{targets['redis-down'][0]}/chat/completions", bench.BODY.replace("MODEL", "one"))
            samples: dict[str, list[dict]] = {name: [] for name in targets}
            before = redis_calls(redis_port)
            served_shared = 0
            for r in range(rounds):
                for name, (base, model, _) in targets.items():
                    samples[name].append(bench.oha(f"{base}/chat/completions", model, n=per_round))
                served_shared += per_round
                bench.say(f"    round {r + 1}/{rounds} done")
            after = redis_calls(redis_port)
            for name in targets:
                added50 = [s["p50_ms"] - d["p50_ms"] for s, d in zip(samples[name], samples["direct"])]
                added99 = [s["p99_ms"] - d["p99_ms"] for s, d in zip(samples[name], samples["direct"])]
                results[name] = {
                    "added_p50_us": statistics_median(added50) * 1000,
                    "added_p99_us": statistics_median(added99) * 1000,
                }
            # The heartbeat (a script a second) and health sharing run
            # beside the requests; over a few seconds they are a rounding.
            results["shared"]["redis_scripts_per_request"] = (after[0] - before[0]) / max(served_shared, 1)
            results["shared"]["redis_commands_per_request"] = (after[1] - before[1]) / max(served_shared, 1)
            for name, (base, model, _) in targets.items():
                bench.say(f"  {name}: maximum throughput at 50 connections ({seconds} s)")
                peak = bench.oha(f"{base}/chat/completions", model, seconds=seconds, connections=50)
                results[name].update({"max_rps": peak["rps"], "success": peak["success"]})
            for _, (_, _, proc) in targets.items():
                if proc:
                    proc.stop()
        finally:
            subprocess.run(["kill", "-CONT", str(frozen.proc.pid)], check=False)
            frozen.stop()
            redis.stop()
            sim.stop()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "shared.json").write_text(json.dumps(results, indent=2))
    lines = ["| | direct | local | shared | redis-down |", "|---|---|---|---|---|"]
    def row(label: str, key: str, digits: int = 0) -> None:
        cells = [f"{results[n].get(key, 0):,.{digits}f}" if key in results[n] else "-" for n in ["direct", "local", "shared", "redis-down"]]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    row("added latency p50, 0 ms upstream (µs)", "added_p50_us")
    row("added latency p99, 0 ms upstream (µs)", "added_p99_us")
    row("max throughput, 50 conns (req/s)", "max_rps")
    row("success share at max throughput", "success", 3)
    row("Redis round trips (script calls) per request", "redis_scripts_per_request", 2)
    row("Redis commands per request, scripts' own included", "redis_commands_per_request", 1)
    text = "\n".join(lines)
    (RESULTS / "shared.md").write_text(text + "\n")
    bench.say("\n" + text)
    bench.say(f"\nwritten: {RESULTS}/shared.md, shared.json ({time.time() - started:.0f} s)")
    return 0


def statistics_median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


if __name__ == "__main__":
    sys.exit(main())
