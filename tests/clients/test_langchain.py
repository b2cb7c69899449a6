"""LangChain's ChatOpenAI and ChatAnthropic against bulwark serve + bulwark sim.

invoke and stream, each on a same-format, a cross-format and a failover route.
"""

from __future__ import annotations

import pytest

from clientutil import route_cases, sim_answer_prefix

try:
    from langchain_anthropic import ChatAnthropic
    from langchain_openai import ChatOpenAI
except ImportError as e:  # the client environment is missing
    pytest.fail(f"{e}: run `scripts/python-env.sh` to install the client environment", pytrace=False)

PROMPT = "Say hello to the gateway test"


def _text(message) -> str:
    # In langchain-core 1.x `.text` is a str (calling it is deprecated).
    return str(message.text)


def _openai(gateway_url: str, route: str) -> ChatOpenAI:
    return ChatOpenAI(
        base_url=gateway_url + "/v1",
        api_key="sk-test-not-a-real-key",
        model=route,
        max_retries=0,
        timeout=30,
        # Puts the answer's HTTP headers in response_metadata["headers"].
        include_response_headers=True,
    )


def _anthropic(gateway_url: str, route: str) -> ChatAnthropic:
    return ChatAnthropic(
        base_url=gateway_url,
        api_key="sk-ant-test-not-a-real-key",
        model=route,
        max_retries=0,
        timeout=30,
    )


@pytest.mark.parametrize("case", route_cases("openai"))
def test_chat_openai_invoke(stack, case):
    msg = _openai(stack.gateway_url, case.route).invoke(PROMPT)
    assert _text(msg).startswith(sim_answer_prefix(case.model)), _text(msg)
    headers = {k.lower(): v for k, v in msg.response_metadata.get("headers", {}).items()}
    assert headers.get("x-bulwark-target", "").endswith("/" + case.model), headers
    if case.fallback:
        assert headers.get("x-bulwark-fallback") == "true", headers
        stack.assert_failover(case.model)


@pytest.mark.parametrize("case", route_cases("openai"))
def test_chat_openai_stream(stack, case):
    text = "".join(_text(chunk) for chunk in _openai(stack.gateway_url, case.route).stream(PROMPT))
    assert text.startswith(sim_answer_prefix(case.model)), text
    if case.fallback:
        stack.assert_failover(case.model)


@pytest.mark.parametrize("case", route_cases("anthropic"))
def test_chat_anthropic_invoke(stack, case):
    msg = _anthropic(stack.gateway_url, case.route).invoke(PROMPT)
    assert _text(msg).startswith(sim_answer_prefix(case.model)), _text(msg)
    if case.fallback:
        stack.assert_failover(case.model)


@pytest.mark.parametrize("case", route_cases("anthropic"))
def test_chat_anthropic_stream(stack, case):
    text = "".join(_text(chunk) for chunk in _anthropic(stack.gateway_url, case.route).stream(PROMPT))
    assert text.startswith(sim_answer_prefix(case.model)), text
    if case.fallback:
        stack.assert_failover(case.model)
