"""Anthropic's own Bedrock client pointed straight at `bulwark sim`.

The sim's SigV4 verifier and event-stream encoder are written by hand; the
gateway's Bedrock tests trust them. These check that trust with independent
implementations: `AnthropicBedrock` signs with botocore's SigV4 signer and
reads streams with botocore's event-stream parser. The model id carries a
`:`, which the SDK (2.14) leaves raw in the path and botocore's canonical
request percent-encodes: exactly what the sim must rebuild to verify.

Last, plain `anthropic.Anthropic` talks to a `bulwark serve` of its own whose
`kind: bedrock` provider signs for the same sim (the shared gateway of
conftest.py stays as it is).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import anthropic
import httpx
import pytest

from conftest import BULWARK_BIN, ManagedProcess

MODEL = "anthropic.claude-sonnet-4-5-20250929-v1:0"
REGION = "us-east-1"
KEY_ID = "AKIDSDKTESTS"
SECRET = "sdk-tests-secret-key"
SESSION_TOKEN = "sdk-tests-session-token"
API_KEY = "sdk-tests-bedrock-api-key"
USER_TEXT = "Say hi please"
ANSWER = f"Simulated answer from {MODEL}: {USER_TEXT}"


@pytest.fixture(autouse=True)
def _no_ambient_aws(monkeypatch):
    """Only the credentials a test passes: the SDK would otherwise take a bearer token from the environment."""
    for name in ("AWS_BEARER_TOKEN_BEDROCK", "ANTHROPIC_BEDROCK_BASE_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)


def start_sim(workdir, name: str, bedrock: dict) -> ManagedProcess:
    scenario = workdir / f"{name}-scenario.yaml"
    scenario.write_text(json.dumps({"bedrock": bedrock}))
    return ManagedProcess(
        name,
        [BULWARK_BIN, "sim", "--listen", "127.0.0.1:0", "--scenario", str(scenario)],
        re.compile(r"bulwark-sim listening on (http://\S+)"),
        workdir,
    )


@pytest.fixture(scope="module")
def bedrock_sim(workdir) -> Iterator[str]:
    p = start_sim(
        workdir,
        "bedrock-sim",
        {"access_key_id": KEY_ID, "secret_access_key": SECRET, "api_key": API_KEY, "region": REGION},
    )
    try:
        yield p.url.rstrip("/")
    finally:
        p.stop()


@pytest.fixture(scope="module")
def bedrock_sim_with_token(workdir) -> Iterator[str]:
    p = start_sim(
        workdir,
        "bedrock-sim-token",
        {"access_key_id": KEY_ID, "secret_access_key": SECRET, "session_token": SESSION_TOKEN, "region": REGION},
    )
    try:
        yield p.url.rstrip("/")
    finally:
        p.stop()


def bedrock_client(sim_url: str, **credentials) -> anthropic.AnthropicBedrock:
    if "api_key" not in credentials:
        credentials = {"aws_access_key": KEY_ID, "aws_secret_key": SECRET, **credentials}
    return anthropic.AnthropicBedrock(
        aws_region=REGION, base_url=sim_url, max_retries=0, timeout=20, **credentials
    )


def requests_of(sim_url: str) -> list[dict]:
    return httpx.get(f"{sim_url}/_sim/requests").json()


def ask(client: anthropic.AnthropicBedrock):
    return client.messages.create(model=MODEL, max_tokens=100, messages=[{"role": "user", "content": USER_TEXT}])


def test_a_sigv4_signed_call_with_an_encoded_model_id_is_answered(bedrock_sim):
    r = ask(bedrock_client(bedrock_sim))
    assert r.content[0].text == ANSWER
    sent = requests_of(bedrock_sim)[-1]
    # The path as the SDK sent it, `:` raw: the sim verified the signature over it, encoded.
    assert sent["path"] == f"/model/{MODEL}/invoke"
    assert sent["outcome"] == "ok"
    assert sent["headers"]["authorization"] == "<redacted>"
    # 2.14 sends its API version date here, not `bedrock-2023-05-31`; the sim takes both.
    assert "anthropic_version" in sent["body"]
    assert "model" not in sent["body"]


def test_a_stream_is_assembled_from_botocores_event_stream_parser(bedrock_sim):
    client = bedrock_client(bedrock_sim)
    with client.messages.stream(
        model=MODEL, max_tokens=100, messages=[{"role": "user", "content": USER_TEXT}]
    ) as stream:
        text = "".join(stream.text_stream)
        message = stream.get_final_message()
    assert text == ANSWER
    assert message.stop_reason == "end_turn"
    assert requests_of(bedrock_sim)[-1]["path"] == f"/model/{MODEL}/invoke-with-response-stream"


def test_a_stream_of_thinking_and_a_tool_call_is_parsed(bedrock_sim):
    with bedrock_client(bedrock_sim).messages.stream(
        model=MODEL,
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        tools=[{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        messages=[{"role": "user", "content": 'Weather? sim:call get_weather {"city": "Oslo"}'}],
    ) as stream:
        message = stream.get_final_message()
    assert [b.type for b in message.content] == ["thinking", "tool_use"]
    assert message.content[1].input == {"city": "Oslo"}
    assert message.stop_reason == "tool_use"


def test_temporary_credentials_carry_the_session_token(bedrock_sim_with_token):
    r = ask(bedrock_client(bedrock_sim_with_token, aws_session_token=SESSION_TOKEN))
    assert r.content[0].text == ANSWER
    sent = requests_of(bedrock_sim_with_token)[-1]
    assert sent["outcome"] == "ok"
    assert sent["headers"]["x-amz-security-token"] == "<redacted>"
    with pytest.raises(anthropic.PermissionDeniedError, match="security token included in the request is invalid"):
        ask(bedrock_client(bedrock_sim_with_token, aws_session_token="some-other-token"))
    with pytest.raises(anthropic.PermissionDeniedError):
        ask(bedrock_client(bedrock_sim_with_token))


def test_a_wrong_secret_is_refused_and_logged(bedrock_sim):
    with pytest.raises(anthropic.PermissionDeniedError, match="signature we calculated does not match") as refused:
        ask(bedrock_client(bedrock_sim, aws_secret_key="not-the-secret"))
    assert refused.value.status_code == 403
    assert "not-the-secret" not in str(refused.value)
    sent = requests_of(bedrock_sim)[-1]
    assert sent["outcome"] == "error_403"
    assert sent["path"] == f"/model/{MODEL}/invoke"
    assert "not-the-secret" not in json.dumps(sent)


def test_a_bedrock_api_key_is_sent_as_a_bearer_token(bedrock_sim):
    r = ask(bedrock_client(bedrock_sim, api_key=API_KEY))
    assert r.content[0].text == ANSWER
    assert requests_of(bedrock_sim)[-1]["headers"]["authorization"] == "<redacted>"
    with pytest.raises(anthropic.PermissionDeniedError):
        ask(bedrock_client(bedrock_sim, api_key="not-the-key"))
    assert requests_of(bedrock_sim)[-1]["outcome"] == "error_403"


@pytest.fixture(scope="module")
def bedrock_gateway(bedrock_sim, workdir) -> Iterator[str]:
    config = workdir / "bedrock-gateway.yaml"
    config.write_text(
        f"""\
listen: 127.0.0.1:0
store: "sqlite::memory:"
providers:
  bedrock: {{ kind: bedrock, region: {REGION}, base_url: "{bedrock_sim}", aws: {{ access_key_id: {KEY_ID}, secret_access_key: "{SECRET}" }} }}
routes:
  claude-bedrock: {{ targets: ["bedrock/{MODEL}"], max_retries: 0 }}
"""
    )
    p = ManagedProcess(
        "bedrock-gateway",
        [BULWARK_BIN, "serve", "--config", str(config)],
        re.compile(r"bulwark listening on (http://\S+)"),
        workdir,
    )
    try:
        yield p.url.rstrip("/")
    finally:
        p.stop()


def test_the_anthropic_sdk_reaches_bedrock_through_the_gateway(bedrock_gateway, bedrock_sim):
    client = anthropic.Anthropic(base_url=bedrock_gateway, api_key="any", max_retries=0, timeout=20)
    r = client.messages.create(
        model="claude-bedrock", max_tokens=100, messages=[{"role": "user", "content": USER_TEXT}]
    )
    assert r.content[0].text == ANSWER
    sent = requests_of(bedrock_sim)[-1]
    assert sent["outcome"] == "ok"
    assert sent["path"].startswith("/model/")
    with client.messages.stream(
        model="claude-bedrock", max_tokens=100, messages=[{"role": "user", "content": USER_TEXT}]
    ) as stream:
        streamed = "".join(stream.text_stream)
    assert streamed == ANSWER
    sent = requests_of(bedrock_sim)[-1]
    assert sent["outcome"] == "ok"
    assert sent["path"].endswith("/invoke-with-response-stream")
