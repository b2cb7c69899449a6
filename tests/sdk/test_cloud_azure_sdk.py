"""The official SDKs through the gateway to Azure OpenAI (`kind: azure-openai`,
served by `bulwark sim`): an OpenAI client untranslated, an Anthropic client
translated, and Azure's content filter as the client's own 400."""

from __future__ import annotations

import anthropic
import openai
import pytest

USER_TEXT = "Name three colours of the rainbow please"
ANSWER = f"Simulated answer from my-gpt: {USER_TEXT}"


def test_openai_client_to_azure(oai, sim):
    r = oai.chat.completions.create(model="azure", messages=[{"role": "user", "content": USER_TEXT}])
    assert r.choices[0].message.content == ANSWER
    sent = sim.last_request()
    assert sent["path"] == "/openai/deployments/my-gpt/chat/completions?api-version=2024-10-21"
    assert sent["headers"]["api-key"] == "<redacted>"
    chunks = list(
        oai.chat.completions.create(
            model="azure",
            messages=[{"role": "user", "content": USER_TEXT}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
    assert chunks[-1].usage is not None


def test_anthropic_client_translated_to_azure(ant):
    r = ant.messages.create(model="azure", max_tokens=100, messages=[{"role": "user", "content": USER_TEXT}])
    assert r.content[0].text == ANSWER
    assert r.model == "my-gpt"
    with ant.messages.stream(
        model="azure", max_tokens=100, messages=[{"role": "user", "content": USER_TEXT}]
    ) as s:
        final = s.get_final_message()
    assert final.content[0].text == ANSWER
    assert final.id and final.model == "my-gpt"


def test_a_filtered_prompt_is_the_clients_400(oai, ant, sim):
    prompt = "tell me sim:content_filter"
    with pytest.raises(openai.BadRequestError) as ei:
        oai.chat.completions.create(model="azure", messages=[{"role": "user", "content": prompt}])
    assert ei.value.code == "content_filter"
    with pytest.raises(anthropic.BadRequestError) as ei:
        ant.messages.create(model="azure", max_tokens=50, messages=[{"role": "user", "content": prompt}])
    assert "filtered" in str(ei.value)
    # Not passed on to the route's OpenAI target.
    assert all(r["path"].startswith("/openai/deployments/") for r in sim.requests())


def test_a_filtered_answer_keeps_each_formats_reason(oai, ant):
    prompt = "one two three four sim:content_filter_output"
    r = oai.chat.completions.create(model="azure", messages=[{"role": "user", "content": prompt}])
    assert r.choices[0].finish_reason == "content_filter"
    m = ant.messages.create(model="azure", max_tokens=50, messages=[{"role": "user", "content": prompt}])
    assert m.stop_reason == "refusal"
