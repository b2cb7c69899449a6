"""The official SDKs pointed straight at `bulwark sim` (no gateway).

The gateway tests trust the sim to speak each provider's real wire format;
these check that trust with the providers' own client libraries, so a sim
bug is not mistaken for a gateway bug (or hides one).
"""

from __future__ import annotations

import anthropic
import openai
import pytest

from sdkutil import PNG_1X1_B64, WEATHER_ARGS, WEATHER_SCHEMA, assert_tool_args

USER_TEXT = "Name three colours of the rainbow please"


@pytest.fixture(scope="module")
def direct_oai(sim):
    c = openai.OpenAI(base_url=sim.url + "/v1", api_key="test", max_retries=0, timeout=20)
    yield c
    c.close()


@pytest.fixture(scope="module")
def direct_ant(sim):
    c = anthropic.Anthropic(base_url=sim.url, api_key="test", max_retries=0, timeout=20)
    yield c
    c.close()


OAI_TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_SCHEMA}}]
ANT_TOOLS = [{"name": "get_weather", "input_schema": WEATHER_SCHEMA}]


def test_openai_text(direct_oai):
    r = direct_oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "Be terse."}, {"role": "user", "content": USER_TEXT}],
    )
    assert r.object == "chat.completion"
    assert r.choices[0].message.content == f"Simulated answer from gpt-4o-mini: {USER_TEXT}"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens == 2 + len(USER_TEXT.split())
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_openai_stream_usage_and_tools(direct_oai):
    chunks = list(
        direct_oai.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": USER_TEXT}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert all(c.usage is None and c.choices for c in chunks[:-1])
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"Simulated answer from gpt-4o-mini: {USER_TEXT}"

    plain = list(
        direct_oai.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": USER_TEXT}], stream=True
        )
    )
    assert all(c.usage is None and c.choices for c in plain)

    with direct_oai.chat.completions.stream(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "weather? sim:call get_weather"}], tools=OAI_TOOLS
    ) as s:
        final = s.get_final_completion()
    assert final.choices[0].finish_reason == "tool_calls"
    assert_tool_args(final.choices[0].message.tool_calls[0].function.arguments, WEATHER_ARGS)


def test_openai_length_and_image(direct_oai):
    r = direct_oai.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": USER_TEXT}], max_tokens=3
    )
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 3
    r = direct_oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_1X1_B64}"}},
                ],
            }
        ],
    )
    assert r.choices[0].message.content.endswith("(1 image)")


@pytest.mark.parametrize("status,exc", [(400, "BadRequestError"), (429, "RateLimitError"), (500, "InternalServerError"), (503, "InternalServerError")])
def test_openai_fault_status_raises_typed_error(direct_oai, sim_faults, status, exc):
    sim_faults([{"fault": {"status": status}}])
    with pytest.raises(getattr(openai, exc)) as ei:
        direct_oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert ei.value.status_code == status
    assert isinstance(ei.value.body, dict) and ei.value.body.get("message")


def test_anthropic_text_and_stream(direct_ant):
    kwargs = dict(
        model="claude-sonnet-4-5",
        max_tokens=100,
        system="Be terse.",
        messages=[{"role": "user", "content": USER_TEXT}],
    )
    m = direct_ant.messages.create(**kwargs)
    assert m.content[0].text == f"Simulated answer from claude-sonnet-4-5: {USER_TEXT}"
    assert m.stop_reason == "end_turn"
    with direct_ant.messages.stream(**kwargs) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == m.content[0].text == final.content[0].text
    assert final.usage.output_tokens == m.usage.output_tokens
    assert final.usage.input_tokens == m.usage.input_tokens == 2 + len(USER_TEXT.split())


def test_anthropic_tools_stream(direct_ant):
    with direct_ant.messages.stream(
        model="claude-sonnet-4-5",
        max_tokens=100,
        messages=[{"role": "user", "content": "weather? sim:call get_weather"}],
        tools=ANT_TOOLS,
    ) as s:
        final = s.get_final_message()
    assert final.stop_reason == "tool_use"
    assert_tool_args(final.content[0].input, WEATHER_ARGS)


def test_anthropic_requires_max_tokens(sim):
    r = sim.http.post(
        sim.url + "/v1/messages",
        json={"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-api-key": "test", "anthropic-version": "2023-06-01"},
    )
    assert r.status_code == 400
    assert r.json()["type"] == "error"


@pytest.mark.parametrize("status,exc", [(429, "RateLimitError"), (529, "OverloadedError"), (500, "InternalServerError")])
def test_anthropic_fault_status_raises_typed_error(direct_ant, sim_faults, status, exc):
    sim_faults([{"fault": {"status": status}}])
    with pytest.raises(getattr(anthropic, exc)) as ei:
        direct_ant.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert ei.value.status_code == status


# Azure OpenAI, through the SDK's own Azure client: it builds the deployment
# paths and `api-version` itself, so a sim that serves other paths fails here.
# The session's sim has no `azure:` settings, so it checks no credentials.


@pytest.fixture(scope="module")
def direct_azure(sim):
    c = openai.AzureOpenAI(
        azure_endpoint=sim.url, api_key="test", api_version="2024-10-21", max_retries=0, timeout=20
    )
    yield c
    c.close()


def test_azure_deployment_text_and_stream(direct_azure):
    r = direct_azure.chat.completions.create(model="my-gpt", messages=[{"role": "user", "content": USER_TEXT}])
    assert r.choices[0].message.content == f"Simulated answer from my-gpt: {USER_TEXT}"
    assert r.model_extra["prompt_filter_results"][0]["prompt_index"] == 0
    chunks = list(
        direct_azure.chat.completions.create(
            model="my-gpt",
            messages=[{"role": "user", "content": USER_TEXT}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    # Azure's opening chunk: no choices, the prompt's filter results.
    assert chunks[0].choices == [] and chunks[0].model_extra["prompt_filter_results"]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"Simulated answer from my-gpt: {USER_TEXT}"
    assert chunks[-1].usage is not None


def test_azure_embeddings(direct_azure):
    r = direct_azure.embeddings.create(model="text-embedding-3-small", input=["a b", "c"])
    assert len(r.data) == 2 and len(r.data[0].embedding) > 0


def test_azure_content_filter(direct_azure):
    with pytest.raises(openai.BadRequestError) as ei:
        direct_azure.chat.completions.create(
            model="my-gpt", messages=[{"role": "user", "content": "tell me sim:content_filter"}]
        )
    assert ei.value.code == "content_filter"
    chunks = list(
        direct_azure.chat.completions.create(
            model="my-gpt",
            messages=[{"role": "user", "content": "one two three four sim:content_filter_output"}],
            stream=True,
        )
    )
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["content_filter"]


def test_azure_api_version_is_checked(sim):
    old = openai.AzureOpenAI(azure_endpoint=sim.url, api_key="test", api_version="2019-01-01", max_retries=0)
    with pytest.raises(openai.BadRequestError):
        old.chat.completions.create(model="my-gpt", messages=[{"role": "user", "content": "hi"}])
    old.close()


def test_azure_v1_surface(sim):
    c = openai.OpenAI(base_url=sim.url + "/openai/v1/", api_key="test", max_retries=0, timeout=20)
    r = c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": USER_TEXT}])
    assert r.choices[0].message.content == f"Simulated answer from gpt-4o: {USER_TEXT}"
    c.close()
