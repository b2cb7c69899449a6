"""The official Python SDKs' higher-level helpers against bulwark serve + bulwark sim.

OpenAI's `chat.completions.parse(response_format=<Pydantic model>)` (structured
output through a `json_schema` response format, parsed and validated by the
SDK) and Anthropic's `messages.stream(...).get_final_message()`, each on a
same-format, a cross-format and a failover route.
"""

from __future__ import annotations

import anthropic
import openai
import pydantic
import pytest

from clientutil import route_cases, sim_answer_prefix


class Greeting(pydantic.BaseModel):
    greeting: str
    words: int


@pytest.mark.parametrize("case", route_cases("openai"))
def test_openai_chat_completions_parse(stack, case):
    client = openai.OpenAI(base_url=stack.gateway_url + "/v1", api_key="sk-test-not-a-real-key", max_retries=0, timeout=30)
    with client:
        completion = client.chat.completions.parse(
            model=case.route,
            messages=[{"role": "user", "content": "Greet the gateway test"}],
            response_format=Greeting,
        )
    # The SDK parses and validates the answer against the schema; an answer
    # that is not JSON of that shape raises before this line.
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Greeting), completion
    assert case.model in completion.model, completion.model
    if case.fallback:
        stack.assert_failover(case.model)


@pytest.mark.parametrize("case", route_cases("anthropic"))
def test_anthropic_messages_stream_get_final_message(stack, case):
    client = anthropic.Anthropic(base_url=stack.gateway_url, api_key="sk-ant-test-not-a-real-key", max_retries=0, timeout=30)
    with client:
        with client.messages.stream(
            model=case.route,
            max_tokens=256,
            messages=[{"role": "user", "content": "Say hello to the gateway test"}],
        ) as stream:
            message = stream.get_final_message()
            headers = stream.response.headers
    text = "".join(b.text for b in message.content if b.type == "text")
    assert text.startswith(sim_answer_prefix(case.model)), message
    assert headers.get("x-bulwark-target", "").endswith("/" + case.model), dict(headers)
    if case.fallback:
        assert headers.get("x-bulwark-fallback") == "true", dict(headers)
        stack.assert_failover(case.model)
