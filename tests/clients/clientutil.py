"""Constants and helpers shared by the Python real-client tests (imported by
name, not from conftest, so that it cannot be confused with tests/sdk's)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

ANTHROPIC_MODEL = "claude-sonnet-4-5"
OPENAI_MODEL = "gpt-4o-mini"
BROKEN_MODEL = "broken-model"

SIM_FAULTS = [
    {"match": {"format": "anthropic", "model": BROKEN_MODEL}, "fault": {"status": 529}},
    {"match": {"format": "openai", "model": BROKEN_MODEL}, "fault": {"status": 503}},
]


@dataclass(frozen=True)
class RouteCase:
    kind: str
    route: str
    # The upstream model whose answer must come back ("Simulated answer from <model>").
    model: str
    fallback: bool


def route_cases(client_format: str) -> list:
    """The routes a client of `client_format` is tried on, as pytest params."""
    anthropic = client_format == "anthropic"
    cases = [
        RouteCase("same-format", "to-anthropic" if anthropic else "to-openai",
                  ANTHROPIC_MODEL if anthropic else OPENAI_MODEL, False),
        RouteCase("cross-format", "to-openai" if anthropic else "to-anthropic",
                  OPENAI_MODEL if anthropic else ANTHROPIC_MODEL, False),
        RouteCase("failover", "failover-to-openai" if anthropic else "failover-to-anthropic",
                  OPENAI_MODEL if anthropic else ANTHROPIC_MODEL, True),
    ]
    return [pytest.param(c, id=c.kind) for c in cases]


def sim_answer_prefix(model: str) -> str:
    return f"Simulated answer from {model}"
