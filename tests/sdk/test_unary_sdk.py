"""The official SDKs' unary calls against the gateway: the OpenAI SDK's
`embeddings.create` (base64 by default, and float) and the Anthropic SDK's
`messages.count_tokens`, on a same-format route and a failover route whose
first target answers 529.

The sim's vectors are derived from the model and the text alone, in every
wire format, so a fallback to the same model elsewhere gives the same ones.
"""

from __future__ import annotations

import base64
import struct

import pytest

TEXTS = ["a bulwark against outages", "a second input"]
MESSAGES = [{"role": "user", "content": "How many tokens is this sentence?"}]


def floats_of(b64: str) -> list[float]:
    raw = base64.b64decode(b64)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def assert_same_vectors(a, b) -> None:
    assert len(a.data) == len(b.data)
    for x, y in zip(a.data, b.data):
        assert x.embedding == pytest.approx(y.embedding)


def test_embeddings_create_asks_for_base64_by_default_and_gets_floats(oai, sim):
    resp = oai.embeddings.create(model="embed-oai", input=TEXTS)
    assert [d.index for d in resp.data] == [0, 1]
    assert all(len(d.embedding) == 16 for d in resp.data)
    assert all(isinstance(v, float) for v in resp.data[0].embedding)
    sent = sim.last_request("openai")
    assert sent["path"] == "/v1/embeddings"
    assert sent["body"]["encoding_format"] == "base64"
    assert sent["body"]["model"] == "text-embedding-3-small"
    assert resp.usage.prompt_tokens > 0


def test_embeddings_create_in_float_gives_the_same_vectors(oai, http):
    default = oai.embeddings.create(model="embed-oai", input=TEXTS)
    floats = oai.embeddings.create(model="embed-oai", input=TEXTS, encoding_format="float")
    assert_same_vectors(floats, default)
    # What the SDK decoded is what the wire carried.
    raw = http.post(
        "/v1/embeddings",
        json={"model": "embed-oai", "input": TEXTS, "encoding_format": "base64"},
    ).json()
    assert floats_of(raw["data"][1]["embedding"]) == pytest.approx(floats.data[1].embedding)


def test_embeddings_fail_over_to_the_same_model_after_a_529(oai, sim, sim_faults):
    before = oai.embeddings.create(model="embed-failover", input=TEXTS)
    sim_faults([{"match": {"format": "openai"}, "fault": {"status": 529}}])
    raw = oai.embeddings.with_raw_response.create(model="embed-failover", input=TEXTS)
    assert raw.headers["x-bulwark-fallback"] == "true"
    assert raw.headers["x-bulwark-target"] == "sim-gemini/text-embedding-004"
    after = raw.parse()
    assert_same_vectors(after, before)
    paths = [r["path"] for r in sim.requests()]
    assert "/v1beta/models/text-embedding-004:batchEmbedContents" in paths


def test_count_tokens_is_counted_by_the_anthropic_target(ant, sim):
    raw = ant.messages.with_raw_response.count_tokens(
        model="count-ant", system="You are brief.", messages=MESSAGES
    )
    assert "x-bulwark-estimated" not in raw.headers
    # The sim counts words: 3 in the system prompt, 6 in the message.
    assert raw.parse().input_tokens == 9
    sent = sim.last_request("anthropic")
    assert sent["path"] == "/v1/messages/count_tokens"
    assert sent["body"]["model"] == "claude-sonnet-4-5"


def test_count_tokens_is_estimated_when_the_anthropic_target_is_overloaded(ant, sim_faults):
    sim_faults([{"match": {"format": "anthropic"}, "fault": {"status": 529}}])
    raw = ant.messages.with_raw_response.count_tokens(
        model="count-failover", system="You are brief.", messages=MESSAGES
    )
    assert raw.headers["x-bulwark-estimated"] == "true"
    assert raw.parse().input_tokens > 0
