"""The official SDKs through `bulwark serve` to Claude and Gemini on Vertex AI
(`kind: vertex`), served by a `bulwark sim` that checks the service
account's tokens as Google does: an Anthropic client whose Anthropic target
fails over to Claude on Vertex (relayed, tools and thinking intact), and a
Gemini client served by Gemini on Vertex.

The service account is the sim's TEST-ONLY key, committed in
crates/bulwark-sim/src/cloud/.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import anthropic
import httpx
import pytest
from google import genai
from google.genai import types

from conftest import BULWARK_BIN, ManagedProcess

ROOT = Path(__file__).resolve().parents[2]
KEY = ROOT / "crates/bulwark-sim/src/cloud/sim-test-service-account.key.pem"
PROJECT = "proj-gateway"
REGION = "us-east5"
EMAIL = "sim-test-service-account@bulwark-sim.iam.gserviceaccount.com"
CLAUDE = "claude-sonnet-4-5@20250929"
USER_TEXT = "Say hi please"


@pytest.fixture(scope="module")
def vertex_gateway(workdir):
    scenario = workdir / "vertex-gateway-sim.yaml"
    scenario.write_text(json.dumps({"vertex": {"project": PROJECT, "region": REGION, "client_email": EMAIL}}))
    sim = ManagedProcess(
        "vertex-gateway-sim",
        [BULWARK_BIN, "sim", "--listen", "127.0.0.1:0", "--scenario", str(scenario)],
        re.compile(r"bulwark-sim listening on (http://\S+)"),
        workdir,
    )
    gateway = None
    try:
        sim_url = sim.url.rstrip("/")
        account = workdir / "vertex-service-account.json"
        account.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": PROJECT,
                    "private_key_id": "sim-test-service-account-key-1",
                    "private_key": KEY.read_text(),
                    "client_email": EMAIL,
                    "token_uri": f"{sim_url}/token",
                }
            )
        )
        config = workdir / "vertex-gateway.yaml"
        config.write_text(
            f"""\
listen: 127.0.0.1:0
store: "sqlite::memory:"
providers:
  anthropic: {{ kind: anthropic, base_url: "{sim_url}", api_key: test }}
  vertex: {{ kind: vertex, base_url: "{sim_url}", project: {PROJECT}, region: {REGION}, credentials_file: "{account}" }}
routes:
  claude: {{ targets: ["anthropic/broken-model", "vertex/{CLAUDE}"], max_retries: 0 }}
  gemini: {{ targets: [vertex/gemini-2.5-flash] }}
"""
        )
        gateway = ManagedProcess(
            "vertex-gateway",
            [BULWARK_BIN, "serve", "--config", str(config)],
            re.compile(r"bulwark listening on (http://\S+)"),
            workdir,
        )
        yield gateway.url.rstrip("/"), sim_url
    finally:
        if gateway is not None:
            gateway.stop()
        sim.stop()


def fail_anthropic(sim_url: str) -> None:
    """The Anthropic API's own target answers 529, as in the outage."""
    rule = {"match": {"model": "broken-model"}, "fault": {"status": 529}}
    r = httpx.put(f"{sim_url}/_sim/faults", json=[rule])
    assert r.status_code < 300, r.text


def test_an_anthropic_client_falls_back_to_claude_on_vertex(vertex_gateway):
    gateway, sim_url = vertex_gateway
    fail_anthropic(sim_url)
    client = anthropic.Anthropic(base_url=gateway, api_key="any", max_retries=0, timeout=20)
    r = client.messages.with_raw_response.create(
        model="claude", max_tokens=100, messages=[{"role": "user", "content": USER_TEXT}]
    )
    assert r.headers["x-bulwark-target"] == f"vertex/{CLAUDE}"
    assert r.headers["x-bulwark-fallback"] == "true"
    assert r.parse().content[0].text == f"Simulated answer from {CLAUDE}: {USER_TEXT}"

    with client.messages.stream(
        model="claude",
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        tools=[{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        messages=[{"role": "user", "content": 'Weather? sim:call get_weather {"city": "Oslo"}'}],
    ) as stream:
        message = stream.get_final_message()
    # Relayed from the same model on another cloud: thinking and the tool
    # call arrive as Claude wrote them, nothing dropped.
    assert [b.type for b in message.content] == ["thinking", "tool_use"]
    assert message.content[1].input == {"city": "Oslo"}
    assert "x-bulwark-dropped" not in stream.response.headers
    sent = httpx.get(f"{sim_url}/_sim/requests").json()[-1]
    assert sent["path"] == f"/v1/projects/{PROJECT}/locations/{REGION}/publishers/anthropic/models/{CLAUDE}:streamRawPredict"
    assert sent["body"]["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert "model" not in sent["body"]


def test_a_gemini_client_is_served_by_gemini_on_vertex(vertex_gateway):
    gateway, sim_url = vertex_gateway
    client = genai.Client(api_key="any", http_options=types.HttpOptions(base_url=gateway))
    r = client.models.generate_content(model="gemini", contents=USER_TEXT)
    assert r.text == f"Simulated answer from gemini-2.5-flash: {USER_TEXT}"
    sent = httpx.get(f"{sim_url}/_sim/requests").json()[-1]
    assert sent["path"].startswith(f"/v1/projects/{PROJECT}/locations/{REGION}/publishers/google/models/gemini-2.5-flash:")
