"""Constants and helpers shared by the SDK test modules (and, for
`stop_process`, by tests/clients, whose pytest.ini puts this folder on the path)."""

from __future__ import annotations

import json
import re
import subprocess

import pytest


def stop_process(proc: subprocess.Popen) -> None:
    """Terminates `proc` if it still runs, and kills it if it has not exited 5 s later."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


# Small on purpose so the 413 test needs only a modest body.
MAX_REQUEST_BYTES = 65536

# The upstream targets every front door is exercised against: one per provider kind.
UPSTREAMS = [
    pytest.param("sim-openai/gpt-4o-mini", id="up-openai"),
    pytest.param("sim-compat/llama3", id="up-compat"),
    pytest.param("sim-anthropic/claude-sonnet-4-5", id="up-anthropic"),
    pytest.param("sim-gemini/gemini-2.5-flash", id="up-gemini"),
]
STREAM = [pytest.param(False, id="unary"), pytest.param(True, id="stream")]

KIND_OF = {
    "sim-openai": "openai",
    "sim-compat": "openai",
    "sim-anthropic": "anthropic",
    "sim-gemini": "gemini",
}


def upstream_format(model: str) -> str:
    """Wire format the gateway must speak to the provider of `provider/model`."""
    return KIND_OF[model.split("/", 1)[0]]


def upstream_model(model: str) -> str:
    return model.split("/", 1)[1]


# A 1x1 transparent PNG.
PNG_1X1_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
IMAGE_URL = "https://example.com/images/cat.png"

SYSTEM_PROMPT = "You are a terse assistant. Answer in one sentence."

# A tool whose schema covers every JSON type the sim fills in, all required,
# so the expected arguments are exact.
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "City name"},
        "days": {"type": "integer", "description": "Forecast length"},
        "latitude": {"type": "number"},
        "metric": {"type": "boolean"},
    },
    "required": ["city", "days", "latitude", "metric"],
}
WEATHER_ARGS = {"city": "sim", "days": 1, "latitude": 1.5, "metric": True}

CLOCK_SCHEMA = {
    "type": "object",
    "properties": {"timezone": {"type": "string"}},
    "required": ["timezone"],
}
CLOCK_ARGS = {"timezone": "sim"}

TOOL_RESULT_TEXT = "The forecast for sim: 21 degrees and sunny"


def assert_tool_args(raw: str | dict, expected: dict) -> None:
    args = json.loads(raw) if isinstance(raw, str) else raw
    assert args == expected, f"tool arguments {args!r} != schema-derived {expected!r}"


def mentions_image_count(text: str, n: int) -> bool:
    """Whether the sim's answer says it saw `n` images (e.g. "2 images", "1 image")."""
    words = {1: "one", 2: "two", 3: "three"}
    pat = rf"\b({n}|{words.get(n, n)})\s+image"
    return re.search(pat, text, re.IGNORECASE) is not None


def header(resp, name: str) -> str | None:
    return resp.headers.get(name)


# Fallback and all-failing scenarios each get a route of their own, with broken
# target model names of their own, so that a gateway that remembers failing
# targets (circuit breaker, cooldown) cannot make one test depend on another.
#
# How the first target of a fallback route fails: sim fault JSON by case name.
FALLBACK_FAULTS = {
    "529": {"status": 529},
    "429": {"status": 429},
    "503": {"status": 503},
    "500": {"status": 500},
    "reset": "connection_reset",
    "hang": {"hang": {"duration_ms": 5000}},
}
# Routes whose first target hangs get short timeouts so the test stays fast.
HANG_TIMEOUT = "400ms"
ALL_FAILING_STATUSES = [500, 529]
FRONTS = ["oai", "ant", "gem"]


def _mode(stream: bool) -> str:
    return "stream" if stream else "unary"


def fallback_route(front: str, case: str, stream: bool) -> tuple[str, str]:
    """(route name, broken model) for a route [sim-anthropic/<broken>, sim-openai/gpt-4o-mini]."""
    broken = f"broken-{front}-{_mode(stream)}-{case}"
    return f"fallback-{front}-{_mode(stream)}-{case}", broken


def all_failing_route(front: str, status: int, stream: bool) -> tuple[str, list[str]]:
    """(route name, [model1, model2]) for a route [sim-anthropic/<m1>, sim-openai/<m2>]."""
    base = f"dead-{front}-{_mode(stream)}-{status}"
    return f"all-{base}", [f"{base}-a", f"{base}-b"]


def generated_routes() -> dict[str, str]:
    """Route name -> the YAML flow mapping of its config."""
    routes: dict[str, str] = {}
    for front in FRONTS:
        for stream in (False, True):
            for case in [*FALLBACK_FAULTS, "error-event"]:
                name, broken = fallback_route(front, case, stream)
                # No retries in place: these routes check what the client sees
                # of a fallback (two attempts); retries have their own tests.
                extra = ", max_retries: 0"
                if case == "hang":
                    extra += f", attempt_timeout: {HANG_TIMEOUT}, first_token_timeout: {HANG_TIMEOUT}"
                routes[name] = f"{{ targets: [sim-anthropic/{broken}, sim-openai/gpt-4o-mini]{extra} }}"
            for status in ALL_FAILING_STATUSES:
                name, (m1, m2) = all_failing_route(front, status, stream)
                routes[name] = f"{{ targets: [sim-anthropic/{m1}, sim-openai/{m2}], max_retries: 0 }}"
    return routes
