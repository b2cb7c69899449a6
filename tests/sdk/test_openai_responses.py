"""The official OpenAI Python SDK's Responses API (`client.responses.create`,
`.stream` and `.parse`) against the gateway's `POST /v1/responses` front door,
on a same-format route (an OpenAI target, reached as Chat Completions), a
cross-format route (an Anthropic target) and a failover route whose first
target answers 529. The sim answers deterministically (see
test_openai_sdk.py): `Simulated answer from <model>: <first 12 words>`.
"""

from __future__ import annotations

import json
import time

import openai
import pytest
from pydantic import BaseModel

from sdkutil import SYSTEM_PROMPT, TOOL_RESULT_TEXT, WEATHER_ARGS, WEATHER_SCHEMA, assert_tool_args

USER_TEXT = "Name three colours of the rainbow please"
BROKEN = "broken-responses"

ROUTES = [
    pytest.param("sim-openai/gpt-4o-mini", id="same-openai"),
    pytest.param("sim-anthropic/claude-sonnet-4-5", id="cross-anthropic"),
    pytest.param("resp-fallback", id="failover-529"),
]
STREAM = [pytest.param(False, id="unary"), pytest.param(True, id="stream")]

TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather forecast for a city",
        "parameters": WEATHER_SCHEMA,
        "strict": False,
    }
]


def answering_model(route: str) -> str:
    return "gpt-4o-mini" if route == "resp-fallback" else route.split("/", 1)[1]


def expected_text(route: str, user_text: str) -> str:
    echo = " ".join(user_text.split()[:12])
    return f"Simulated answer from {answering_model(route)}: {echo}"


@pytest.fixture(autouse=True)
def _first_target_overloaded(sim_faults):
    """The failover route's first target answers 529 (cleared after each test)."""
    sim_faults([{"match": {"model": BROKEN}, "fault": {"status": 529}}])


def expected_target(route: str) -> str:
    return "sim-openai/gpt-4o-mini" if route == "resp-fallback" else route


@pytest.mark.parametrize("route", ROUTES)
def test_create(oai, route):
    raw = oai.responses.with_raw_response.create(
        model=route, instructions=SYSTEM_PROMPT, input=USER_TEXT, max_output_tokens=200
    )
    assert raw.headers.get("x-bulwark-target") == expected_target(route)
    response = raw.parse()
    assert response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.output_text == expected_text(route, USER_TEXT)
    assert response.instructions == SYSTEM_PROMPT
    assert response.max_output_tokens == 200
    usage = response.usage
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_tokens_details.cached_tokens == 0
    assert usage.output_tokens_details.reasoning_tokens == 0


@pytest.mark.parametrize("route", ROUTES)
def test_create_stream_events(oai, route):
    events = list(oai.responses.create(model=route, input=USER_TEXT, stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == expected_text(route, USER_TEXT)
    final = events[-1].response
    assert final.output_text == text
    assert final.usage.total_tokens == final.usage.input_tokens + final.usage.output_tokens


@pytest.mark.parametrize("route", ROUTES)
def test_stream_helper(oai, route):
    deltas = []
    with oai.responses.stream(model=route, instructions=SYSTEM_PROMPT, input=USER_TEXT) as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    assert "".join(deltas) == expected_text(route, USER_TEXT)
    assert final.output_text == expected_text(route, USER_TEXT)
    assert final.status == "completed"


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("stream", STREAM)
def test_tool_call_then_output(oai, route, stream):
    prompt = "What is the weather like? sim:call get_weather"

    def ask(items):
        if not stream:
            return oai.responses.create(model=route, input=items, tools=TOOLS)
        with oai.responses.stream(model=route, input=items, tools=TOOLS) as s:
            for _ in s:
                pass
            return s.get_final_response()

    first = ask([{"role": "user", "content": prompt}])
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1, first.output
    call = calls[0]
    assert call.name == "get_weather"
    assert call.id.startswith("fc_")
    assert_tool_args(call.arguments, WEATHER_ARGS)

    # The client runs the tool and sends back the whole output with the result.
    second = ask(
        [{"role": "user", "content": prompt}]
        + first.output
        + [{"type": "function_call_output", "call_id": call.call_id, "output": TOOL_RESULT_TEXT}]
    )
    assert "the tool returned" in second.output_text, second.output_text
    assert TOOL_RESULT_TEXT.split()[0] in second.output_text


class Trip(BaseModel):
    city: str
    days: int
    tags: list[str]


@pytest.mark.parametrize("route", ROUTES)
def test_parse_structured_output(oai, route):
    response = oai.responses.parse(model=route, input="Plan a trip", text_format=Trip)
    parsed = response.output_parsed
    assert isinstance(parsed, Trip), response.output_text
    assert json.loads(response.output_text) == parsed.model_dump()


@pytest.mark.parametrize("route", ROUTES)
def test_max_output_tokens_cut_is_incomplete(oai, route):
    response = oai.responses.create(
        model=route, input="one two three four five six seven", max_output_tokens=3
    )
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"


def test_an_unknown_previous_response_id_is_not_found(oai):
    with pytest.raises(openai.NotFoundError) as raised:
        oai.responses.create(model="sim-openai/gpt-4o-mini", input="hi", previous_response_id="resp_1")
    assert raised.value.body["param"] == "previous_response_id"


def _stored(oai, response_id):
    """The stored response: Bulwark stores it after answering, off the answer's path."""
    for _ in range(500):
        try:
            return oai.responses.retrieve(response_id)
        except openai.NotFoundError:
            time.sleep(0.01)
    raise AssertionError(f"{response_id} was never stored")


@pytest.mark.parametrize("stream", STREAM)
def test_a_conversation_goes_on_by_previous_response_id_then_is_deleted(oai, stream):
    first = oai.responses.create(model="sim-openai/gpt-4o-mini", input="Remember the word kumquat.")
    assert _stored(oai, first.id).id == first.id
    if stream:
        with oai.responses.stream(
            model="sim-anthropic/claude-sonnet-4-5", input="Which word?", previous_response_id=first.id
        ) as events:
            second = events.get_final_response()
    else:
        second = oai.responses.create(
            model="sim-anthropic/claude-sonnet-4-5", input="Which word?", previous_response_id=first.id
        )
    assert second.status == "completed"
    _stored(oai, second.id)
    items = oai.responses.input_items.list(second.id, order="asc")
    texts = [part.text for item in items.data for part in (getattr(item, "content", None) or []) if hasattr(part, "text")]
    assert texts[0] == "Remember the word kumquat.", texts
    assert first.output_text in texts and texts[-1] == "Which word?", texts
    deleted = oai.responses.delete(second.id)
    assert deleted is None or getattr(deleted, "deleted", True)
    with pytest.raises(openai.NotFoundError):
        oai.responses.retrieve(second.id)


@pytest.mark.parametrize("stream", STREAM)
def test_every_target_failing_is_a_5xx(oai, sim_faults, stream):
    sim_faults([{"match": {"model": "dead-responses"}, "fault": {"status": 529}}])
    with pytest.raises(openai.APIStatusError) as raised:
        result = oai.responses.create(model="sim-anthropic/dead-responses", input="hi", stream=stream)
        if stream:
            list(result)
    assert raised.value.status_code >= 500


def test_error_after_content_reaches_the_sdk(oai, sim_faults):
    sim_faults([{"match": {"model": "midstream-broken"}, "fault": {"error_event": {"after_chunks": 5}}}])
    got = []
    with pytest.raises(openai.APIError):
        for event in oai.responses.create(
            model="sim-openai/midstream-broken",
            input="one two three four five six seven",
            stream=True,
        ):
            if event.type == "response.output_text.delta":
                got.append(event.delta)
    text = "".join(got)
    full = "Simulated answer from midstream-broken: one two three four five six seven"
    assert text and full.startswith(text), text
