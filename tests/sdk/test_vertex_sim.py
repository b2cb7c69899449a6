"""Google's and Anthropic's own Vertex AI clients pointed straight at `bulwark sim`.

The gateway's Vertex tests trust the sim's token endpoint and Vertex paths;
these check that trust with independent implementations: google-auth signs
the service account's JWT and exchanges it, `AnthropicVertex` and google-genai
(`vertexai=True`) build the URLs and bodies. The service account is the sim's
TEST-ONLY key, committed in crates/bulwark-sim/src/cloud/.
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
from google.oauth2 import service_account

from conftest import BULWARK_BIN, ManagedProcess

ROOT = Path(__file__).resolve().parents[2]
KEY = ROOT / "crates/bulwark-sim/src/cloud/sim-test-service-account.key.pem"
PROJECT = "proj-sdk"
REGION = "us-east5"
EMAIL = "sim-test-service-account@bulwark-sim.iam.gserviceaccount.com"
CLAUDE = "claude-sonnet-4-5@20250929"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
USER_TEXT = "Say hi please"


@pytest.fixture(scope="module")
def vertex_sim(workdir):
    scenario = workdir / "vertex-scenario.yaml"
    scenario.write_text(
        json.dumps({"vertex": {"project": PROJECT, "region": REGION, "client_email": EMAIL}})
    )
    p = ManagedProcess(
        "vertex-sim",
        [BULWARK_BIN, "sim", "--listen", "127.0.0.1:0", "--scenario", str(scenario)],
        re.compile(r"bulwark-sim listening on (http://\S+)"),
        workdir,
    )
    try:
        yield p.url
    finally:
        p.stop()


def credentials(sim_url: str, email: str = EMAIL):
    info = {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "sim-test-service-account-key-1",
        "private_key": KEY.read_text(),
        "client_email": email,
        "client_id": "1",
        "token_uri": f"{sim_url}/token",
    }
    return service_account.Credentials.from_service_account_info(info, scopes=SCOPES)


def anthropic_vertex(sim_url: str, project: str = PROJECT, email: str = EMAIL):
    return anthropic.AnthropicVertex(
        region=REGION,
        project_id=project,
        credentials=credentials(sim_url, email),
        base_url=f"{sim_url}/v1",
        max_retries=0,
        timeout=20,
    )


def tokens(sim_url: str) -> dict:
    return httpx.get(f"{sim_url}/_sim/tokens").json()


def last_request(sim_url: str) -> dict:
    return httpx.get(f"{sim_url}/_sim/requests").json()[-1]


def test_anthropic_vertex_gets_a_token_and_claude_answers(vertex_sim):
    before = tokens(vertex_sim)["grants"]
    client = anthropic_vertex(vertex_sim)
    r = client.messages.create(model=CLAUDE, max_tokens=100, messages=[{"role": "user", "content": USER_TEXT}])
    assert r.content[0].text == f"Simulated answer from {CLAUDE}: {USER_TEXT}"
    assert tokens(vertex_sim)["grants"] == before + 1
    sent = last_request(vertex_sim)
    assert sent["path"] == f"/v1/projects/{PROJECT}/locations/{REGION}/publishers/anthropic/models/{CLAUDE}:rawPredict"
    assert "model" not in sent["body"]
    assert sent["headers"]["authorization"] == "<redacted>"


def test_anthropic_vertex_streams_thinking_and_tools(vertex_sim):
    client = anthropic_vertex(vertex_sim)
    with client.messages.stream(
        model=CLAUDE,
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        tools=[{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        messages=[{"role": "user", "content": 'Weather? sim:call get_weather {"city": "Oslo"}'}],
    ) as stream:
        message = stream.get_final_message()
    assert [b.type for b in message.content] == ["thinking", "tool_use"]
    assert message.content[1].input == {"city": "Oslo"}
    assert message.stop_reason == "tool_use"
    assert last_request(vertex_sim)["path"].endswith(":streamRawPredict")


def test_another_project_is_denied_and_an_unknown_account_refused(vertex_sim):
    with pytest.raises(anthropic.PermissionDeniedError):
        anthropic_vertex(vertex_sim, project="someone-elses").messages.create(
            model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    from google.auth.exceptions import RefreshError

    with pytest.raises(RefreshError, match="invalid_grant"):
        anthropic_vertex(vertex_sim, email="stranger@elsewhere.iam.gserviceaccount.com").messages.create(
            model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )


def test_google_genai_on_vertex_reaches_gemini(vertex_sim):
    client = genai.Client(
        vertexai=True,
        project=PROJECT,
        location=REGION,
        credentials=credentials(vertex_sim),
        http_options=types.HttpOptions(base_url=f"{vertex_sim}/", api_version="v1"),
    )
    r = client.models.generate_content(model="gemini-2.5-flash", contents=USER_TEXT)
    assert r.text == f"Simulated answer from gemini-2.5-flash: {USER_TEXT}"
    streamed = "".join(c.text or "" for c in client.models.generate_content_stream(model="gemini-2.5-flash", contents=USER_TEXT))
    assert streamed == r.text
    assert last_request(vertex_sim)["path"] == (
        f"/v1/projects/{PROJECT}/locations/{REGION}/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    )
