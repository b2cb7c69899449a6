"""The official Anthropic Python SDK against the gateway's Anthropic front door
(`POST /v1/messages`), over every upstream kind.

The sim answers deterministically (see crates/bulwark-sim/src/answer.rs):
`Simulated answer from <upstream model>: <first 12 words of the last user text>`,
a token is a whitespace-separated word, prompt tokens are the words of every
input text (system prompt included), stop sequences cut the text, max_tokens
truncates it to that many words.
"""

from __future__ import annotations

import json

import anthropic
import pytest

from sdkutil import (
    ALL_FAILING_STATUSES,
    CLOCK_ARGS,
    CLOCK_SCHEMA,
    FALLBACK_FAULTS,
    IMAGE_URL,
    MAX_REQUEST_BYTES,
    PNG_1X1_B64,
    STREAM,
    SYSTEM_PROMPT,
    TOOL_RESULT_TEXT,
    UPSTREAMS,
    WEATHER_ARGS,
    WEATHER_SCHEMA,
    all_failing_route,
    assert_tool_args,
    fallback_route,
    upstream_format,
    upstream_model,
)

USER_TEXT = "Name three colours of the rainbow please"
RAW_EVENT_TYPES = {
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
}

TOOLS = [
    {"name": "get_weather", "description": "Weather forecast for a city", "input_schema": WEATHER_SCHEMA},
    {"name": "get_time", "description": "Current time in a timezone", "input_schema": CLOCK_SCHEMA},
]


def words(*texts: str) -> int:
    return sum(len(t.split()) for t in texts)


def expected_text(model: str, user_text: str, suffix: str = "") -> str:
    echo = " ".join(user_text.split()[:12])
    return f"Simulated answer from {upstream_model(model)}: {echo}{suffix}"


class Streamed:
    """What `client.messages.stream(...)` yields, plus the SDK's final message."""

    def __init__(self, s):
        self.raw_types: list[str] = []
        self.text_deltas: list[str] = []
        self.json_deltas: list[str] = []
        for ev in s:
            if ev.type in RAW_EVENT_TYPES:
                self.raw_types.append(ev.type)
            if ev.type == "text":
                self.text_deltas.append(ev.text)
            if ev.type == "input_json":
                self.json_deltas.append(ev.partial_json)
        self.final = s.get_final_message()

    def check_framing(self) -> None:
        t = self.raw_types
        assert t and t[0] == "message_start", t
        assert t[-2:] == ["message_delta", "message_stop"], t
        assert t.count("message_start") == 1 and t.count("message_stop") == 1, t
        # Every block is opened before its deltas and closed once.
        assert t.count("content_block_start") == t.count("content_block_stop") >= 1, t


def create(ant: anthropic.Anthropic, stream: bool, **kwargs):
    """The final Message; streamed through the SDK's MessageStream when `stream`."""
    kwargs.setdefault("max_tokens", 256)
    if stream:
        with ant.messages.stream(**kwargs) as s:
            st = Streamed(s)
        st.check_framing()
        return st.final
    return ant.messages.create(**kwargs)


def text_of(msg) -> str:
    return "".join(b.text for b in msg.content if b.type == "text")


# --------------------------------------------------------------------------- text


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("model", UPSTREAMS)
def test_text_with_system_prompt(ant, model, stream):
    m = create(
        ant,
        stream,
        model=model,
        system=SYSTEM_PROMPT,
        messages=[{"role": "user", "content": USER_TEXT}],
        # This SDK version has no typed sampling parameters; the wire format still does.
        extra_body={"temperature": 0.5, "top_p": 0.9},
    )
    want = expected_text(model, USER_TEXT)
    assert m.type == "message"
    assert m.role == "assistant"
    assert m.id
    assert [b.type for b in m.content] == ["text"]
    assert m.content[0].text == want
    assert m.stop_reason == "end_turn"
    assert m.stop_sequence is None
    assert m.usage.input_tokens == words(SYSTEM_PROMPT, USER_TEXT)
    assert m.usage.output_tokens == words(want)


@pytest.mark.parametrize("model", UPSTREAMS)
def test_stream_text_deltas_match_unary(ant, model):
    kwargs = dict(model=model, max_tokens=100, messages=[{"role": "user", "content": USER_TEXT}])
    unary = ant.messages.create(**kwargs)
    with ant.messages.stream(**kwargs) as s:
        st = Streamed(s)
    assert len(st.text_deltas) > 1, "the answer was not streamed incrementally"
    assert "".join(st.text_deltas) == text_of(unary) == expected_text(model, USER_TEXT)
    assert st.final.usage.input_tokens == unary.usage.input_tokens
    assert st.final.usage.output_tokens == unary.usage.output_tokens


@pytest.mark.parametrize("model", UPSTREAMS)
def test_system_as_blocks(ant, model):
    m = ant.messages.create(
        model=model,
        max_tokens=100,
        system=[{"type": "text", "text": SYSTEM_PROMPT}],
        messages=[{"role": "user", "content": [{"type": "text", "text": USER_TEXT}]}],
    )
    assert text_of(m) == expected_text(model, USER_TEXT)
    assert m.usage.input_tokens == words(SYSTEM_PROMPT, USER_TEXT)


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("model", UPSTREAMS)
def test_multi_turn(ant, sim, model, stream):
    msgs = [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Nice to meet you, Ada."},
        {"role": "user", "content": "What is my name?"},
    ]
    m = create(ant, stream, model=model, system=SYSTEM_PROMPT, messages=msgs)
    assert text_of(m) == expected_text(model, "What is my name?")
    assert m.usage.input_tokens == words(SYSTEM_PROMPT, *(x["content"] for x in msgs))

    up = sim.last_request()["body"]
    fmt = upstream_format(model)
    if fmt == "openai":
        assert [x["role"] for x in up["messages"]] == ["system", "user", "assistant", "user"]
    elif fmt == "anthropic":
        assert [x["role"] for x in up["messages"]] == ["user", "assistant", "user"]
    else:
        assert [c["role"] for c in up["contents"]] == ["user", "model", "user"]


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("model", UPSTREAMS)
def test_max_tokens_truncates(ant, model, stream):
    m = create(ant, stream, model=model, max_tokens=3, messages=[{"role": "user", "content": USER_TEXT}])
    assert text_of(m) == "Simulated answer from"
    assert m.stop_reason == "max_tokens"
    assert m.usage.output_tokens == 3


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("model", UPSTREAMS)
def test_stop_sequence(ant, model, stream):
    m = create(
        ant,
        stream,
        model=model,
        messages=[{"role": "user", "content": "alpha beta gamma delta"}],
        stop_sequences=["gamma", "zzz-never"],
    )
    assert text_of(m) == f"Simulated answer from {upstream_model(model)}: alpha beta"
    if upstream_format(model) == "anthropic":
        assert m.stop_reason == "stop_sequence"
        assert m.stop_sequence == "gamma"
    else:
        # OpenAI and Gemini do not say which stop sequence matched.
        assert m.stop_reason in ("end_turn", "stop_sequence")
        if m.stop_reason == "stop_sequence":
            assert m.stop_sequence == "gamma"
        else:
            assert m.stop_sequence is None


@pytest.mark.parametrize("model", UPSTREAMS)
def test_parameters_translated_upstream(ant, sim, model):
    ant.messages.create(
        model=model,
        max_tokens=77,
        system=SYSTEM_PROMPT,
        messages=[{"role": "user", "content": USER_TEXT}],
        stop_sequences=["END", "STOP"],
        extra_body={"temperature": 0.25, "top_p": 0.75},
    )
    req = sim.last_request()
    up = req["body"]
    fmt = upstream_format(model)
    if fmt == "openai":
        assert up["model"] == upstream_model(model)
        assert up["messages"][0]["role"] in ("system", "developer")
        assert SYSTEM_PROMPT in json.dumps(up["messages"][0]["content"])
        assert up.get("max_tokens", up.get("max_completion_tokens")) == 77
        assert up["temperature"] == 0.25
        assert up["top_p"] == 0.75
        assert up["stop"] == ["END", "STOP"]
        assert "stop_sequences" not in up and "system" not in up
    elif fmt == "anthropic":
        assert up["model"] == upstream_model(model)
        assert up["system"] == SYSTEM_PROMPT or SYSTEM_PROMPT in json.dumps(up["system"])
        assert up["max_tokens"] == 77
        assert up["stop_sequences"] == ["END", "STOP"]
        assert up["temperature"] == 0.25 and up["top_p"] == 0.75
    else:
        assert req.get("model") == upstream_model(model) or upstream_model(model) in req["path"]
        si = up["systemInstruction"]
        assert SYSTEM_PROMPT in json.dumps(si)
        gc = up["generationConfig"]
        assert gc["maxOutputTokens"] == 77
        assert gc["temperature"] == 0.25
        assert gc["topP"] == 0.75
        assert gc["stopSequences"] == ["END", "STOP"]
        assert "system" not in up and "max_tokens" not in up


@pytest.mark.parametrize("model", ["sim-anthropic/claude-sonnet-4-5", "sim-gemini/gemini-2.5-flash"])
def test_top_k_where_expressible(ant, sim, model):
    m = ant.messages.create(
        model=model, max_tokens=50, extra_body={"top_k": 5}, messages=[{"role": "user", "content": USER_TEXT}]
    )
    assert text_of(m) == expected_text(model, USER_TEXT)
    up = sim.last_request()["body"]
    if upstream_format(model) == "gemini":
        assert up["generationConfig"]["topK"] == 5
    else:
        assert up["top_k"] == 5


def test_top_k_dropped_for_openai_upstream(ant, sim):
    """OpenAI Chat Completions has no top_k: a lenient route (the default)
    serves the request without it and says so in `x-bulwark-dropped`."""
    raw = ant.messages.with_raw_response.create(
        model="sim-openai/gpt-4o-mini",
        max_tokens=50,
        extra_body={"top_k": 5},
        messages=[{"role": "user", "content": USER_TEXT}],
    )
    assert raw.headers.get("x-bulwark-dropped") == "top_k", dict(raw.headers)
    assert text_of(raw.parse()) == expected_text("sim-openai/gpt-4o-mini", USER_TEXT)
    assert "top_k" not in sim.last_request()["body"]


def test_top_k_rejected_on_a_strict_route(ant, sim):
    """`translation: strict` refuses what it would have to drop, before any call."""
    with pytest.raises(anthropic.BadRequestError) as ei:
        ant.messages.create(
            model="strict-oai",
            max_tokens=50,
            extra_body={"top_k": 5},
            messages=[{"role": "user", "content": USER_TEXT}],
        )
    assert "top_k" in str(ei.value.message), ei.value.message
    assert ei.value.response.json()["type"] == "error"
    assert sim.requests() == [], "a rejected request must not reach the upstream"


def test_top_k_forwarded_to_openai_compatible(ant, sim):
    """OpenAI-compatible servers (vLLM, llama.cpp, Ollama...) take top_k as an extension."""
    m = ant.messages.create(
        model="sim-compat/llama3",
        max_tokens=50,
        extra_body={"top_k": 5},
        messages=[{"role": "user", "content": USER_TEXT}],
    )
    assert text_of(m) == expected_text("sim-compat/llama3", USER_TEXT)
    assert sim.last_request()["body"]["top_k"] == 5


# -------------------------------------------------------------------------- tools


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("model", UPSTREAMS)
def test_tool_use_then_tool_result(ant, sim, model, stream):
    question = {"role": "user", "content": "What's the weather in Paris? sim:call get_weather"}
    if stream:
        with ant.messages.stream(model=model, max_tokens=200, messages=[question], tools=TOOLS) as s:
            st = Streamed(s)
        st.check_framing()
        first = st.final
        # Arguments arrive as input_json deltas the SDK must concatenate.
        assert st.json_deltas, "no input_json delta was streamed"
        assert_tool_args("".join(st.json_deltas), WEATHER_ARGS)
    else:
        first = ant.messages.create(model=model, max_tokens=200, messages=[question], tools=TOOLS)
    assert first.stop_reason == "tool_use"
    uses = [b for b in first.content if b.type == "tool_use"]
    assert len(uses) == 1, first.content
    use = uses[0]
    assert use.id
    assert use.name == "get_weather"
    assert_tool_args(use.input, WEATHER_ARGS)
    assert first.usage.output_tokens > 0

    up = sim.last_request()["body"]
    fmt = upstream_format(model)
    if fmt == "openai":
        assert [t["type"] for t in up["tools"]] == ["function", "function"]
        assert [t["function"]["name"] for t in up["tools"]] == ["get_weather", "get_time"]
        assert up["tools"][0]["function"]["parameters"] == WEATHER_SCHEMA
    elif fmt == "gemini":
        decls = [d for t in up["tools"] for d in t.get("functionDeclarations", [])]
        assert [d["name"] for d in decls] == ["get_weather", "get_time"]

    second = create(
        ant,
        stream,
        model=model,
        tools=TOOLS,
        messages=[
            question,
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": use.id, "content": TOOL_RESULT_TEXT}],
            },
        ],
    )
    assert second.stop_reason == "end_turn"
    prefix = f"Simulated answer from {upstream_model(model)}: the tool returned "
    if fmt == "gemini":
        # A Gemini functionResponse carries a JSON object, which the sim quotes
        # as JSON; how the gateway wraps the text in it is its own choice.
        assert text_of(second).startswith(prefix) and TOOL_RESULT_TEXT in text_of(second)
    else:
        assert text_of(second) == prefix + TOOL_RESULT_TEXT

    up = sim.last_request()["body"]
    if fmt == "openai":
        msgs = up["messages"]
        assert msgs[1]["role"] == "assistant"
        assert msgs[1]["tool_calls"][0]["id"] == use.id
        assert json.loads(msgs[1]["tool_calls"][0]["function"]["arguments"]) == WEATHER_ARGS
        assert msgs[2]["role"] == "tool" and msgs[2]["tool_call_id"] == use.id
        assert TOOL_RESULT_TEXT in json.dumps(msgs[2]["content"])
    elif fmt == "gemini":
        fc = [p["functionCall"] for p in up["contents"][1]["parts"] if "functionCall" in p]
        fr = [p["functionResponse"] for c in up["contents"][2:] for p in c["parts"] if "functionResponse" in p]
        assert fc and fc[0]["name"] == "get_weather" and fc[0]["args"] == WEATHER_ARGS
        assert fr and fr[0]["name"] == "get_weather", "functionResponse must name the tool that was called"
        assert TOOL_RESULT_TEXT in json.dumps(fr[0]["response"])


@pytest.mark.parametrize("model", UPSTREAMS)
def test_tool_result_as_blocks_with_text(ant, model):
    """A tool_result whose content is a list of text blocks, next to more user text."""
    m = ant.messages.create(
        model=model,
        max_tokens=200,
        tools=TOOLS,
        messages=[
            {"role": "user", "content": "What's the weather in Paris?"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_abc123", "name": "get_weather", "input": WEATHER_ARGS}],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_abc123",
                        "content": [{"type": "text", "text": TOOL_RESULT_TEXT}],
                    }
                ],
            },
        ],
    )
    assert m.stop_reason == "end_turn"
    assert TOOL_RESULT_TEXT in text_of(m)


@pytest.mark.parametrize("model", UPSTREAMS)
def test_named_tool_choice(ant, sim, model):
    m = ant.messages.create(
        model=model,
        max_tokens=200,
        messages=[{"role": "user", "content": "What time is it?"}],
        tools=TOOLS,
        tool_choice={"type": "tool", "name": "get_time"},
    )
    uses = [b for b in m.content if b.type == "tool_use"]
    assert uses and uses[0].name == "get_time"
    assert_tool_args(uses[0].input, CLOCK_ARGS)
    up = sim.last_request()["body"]
    fmt = upstream_format(model)
    if fmt == "openai":
        assert up["tool_choice"] == {"type": "function", "function": {"name": "get_time"}}
    elif fmt == "gemini":
        fcc = up["toolConfig"]["functionCallingConfig"]
        assert fcc["mode"] == "ANY" and fcc["allowedFunctionNames"] == ["get_time"]


@pytest.mark.parametrize("model", UPSTREAMS)
def test_tool_choice_none(ant, model):
    m = ant.messages.create(
        model=model,
        max_tokens=200,
        messages=[{"role": "user", "content": USER_TEXT}],
        tools=TOOLS,
        tool_choice={"type": "none"},
    )
    assert [b.type for b in m.content] == ["text"]
    assert text_of(m) == expected_text(model, USER_TEXT)
    assert m.stop_reason == "end_turn"


# ------------------------------------------------------------------------- images


def b64_image() -> dict:
    return {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_1X1_B64}}


def url_image() -> dict:
    return {"type": "image", "source": {"type": "url", "url": IMAGE_URL}}


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("model", UPSTREAMS)
def test_base64_images(ant, sim, model, stream):
    content = [b64_image(), b64_image(), {"type": "text", "text": "Describe these pictures"}]
    m = create(ant, stream, model=model, messages=[{"role": "user", "content": content}])
    assert text_of(m) == expected_text(model, "Describe these pictures", " (2 images)")

    up = sim.last_request()["body"]
    fmt = upstream_format(model)
    if fmt == "openai":
        parts = [p for p in up["messages"][-1]["content"] if p["type"] == "image_url"]
        assert len(parts) == 2
        assert parts[0]["image_url"]["url"] == f"data:image/png;base64,{PNG_1X1_B64}"
    elif fmt == "gemini":
        imgs = [p["inlineData"] for p in up["contents"][0]["parts"] if "inlineData" in p]
        assert imgs == [{"mimeType": "image/png", "data": PNG_1X1_B64}] * 2


@pytest.mark.parametrize("model", UPSTREAMS)
def test_url_image(ant, sim, model):
    msgs = [{"role": "user", "content": [url_image(), {"type": "text", "text": "Describe these pictures"}]}]
    if upstream_format(model) == "gemini":
        with pytest.raises(anthropic.BadRequestError) as ei:
            ant.messages.create(model=model, max_tokens=100, messages=msgs)
        msg = str(ei.value.message).lower()
        assert "image" in msg and "url" in msg, ei.value.message
        body = ei.value.response.json()
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error", body
        assert sim.requests() == []
        return
    m = ant.messages.create(model=model, max_tokens=100, messages=msgs)
    assert text_of(m) == expected_text(model, "Describe these pictures", " (1 image)")
    up = sim.last_request()["body"]
    if upstream_format(model) == "openai":
        parts = [p for p in up["messages"][-1]["content"] if p["type"] == "image_url"]
        assert parts[0]["image_url"]["url"] == IMAGE_URL


# ------------------------------------------------------------------------ headers


@pytest.mark.parametrize("model", UPSTREAMS)
def test_raw_response_headers(ant, model):
    raw = ant.messages.with_raw_response.create(
        model=model, max_tokens=100, messages=[{"role": "user", "content": USER_TEXT}]
    )
    assert raw.status_code == 200
    assert raw.headers.get("x-bulwark-target") == model
    assert raw.headers.get("x-bulwark-attempts") == "1"
    assert text_of(raw.parse()) == expected_text(model, USER_TEXT)


@pytest.mark.parametrize("model", UPSTREAMS)
def test_streaming_raw_response_headers(ant, model):
    with ant.messages.with_streaming_response.create(
        model=model, max_tokens=100, messages=[{"role": "user", "content": USER_TEXT}], stream=True
    ) as raw:
        assert raw.status_code == 200
        assert raw.headers.get("content-type", "").startswith("text/event-stream")
        assert raw.headers.get("x-bulwark-target") == model
        assert raw.headers.get("x-bulwark-attempts") == "1"
        events = list(raw.parse())
    text = "".join(
        e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )
    assert text == expected_text(model, USER_TEXT)
    start = events[0]
    assert start.type == "message_start"
    delta = [e for e in events if e.type == "message_delta"]
    assert len(delta) == 1 and delta[0].delta.stop_reason == "end_turn"
    assert delta[0].usage.output_tokens == words(text)
    if upstream_format(model) == "anthropic":
        assert start.message.usage.input_tokens == words(USER_TEXT)
    # Other upstreams may report the prompt size only at the end of their
    # stream; then message_delta must carry it (as Anthropic's own does).
    input_tokens = delta[0].usage.input_tokens
    if input_tokens is None:
        input_tokens = start.message.usage.input_tokens
    assert input_tokens == words(USER_TEXT)


def test_route_name_serves_first_target(ant):
    raw = ant.messages.with_raw_response.create(
        model="smart", max_tokens=100, messages=[{"role": "user", "content": USER_TEXT}]
    )
    assert raw.headers.get("x-bulwark-target") == "sim-anthropic/claude-sonnet-4-5"
    assert raw.headers.get("x-bulwark-attempts") == "1"


# -------------------------------------------------------------------------- errors


def assert_anthropic_error(resp, status: int, error_type: str | None = None) -> dict:
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()
    assert body.get("type") == "error", body
    err = body.get("error")
    assert isinstance(err, dict) and isinstance(err.get("message"), str) and err["message"], body
    if error_type:
        assert err.get("type") == error_type, body
    return err


@pytest.mark.parametrize("name", ["no-such-route", "nope/claude-sonnet-4-5"])
@pytest.mark.parametrize("stream", STREAM)
def test_unknown_model_is_404(ant, name, stream):
    with pytest.raises(anthropic.NotFoundError) as ei:
        create(ant, stream, model=name, messages=[{"role": "user", "content": "hi"}])
    assert_anthropic_error(ei.value.response, 404, "not_found_error")


def test_wrong_field_type_is_400(ant):
    with pytest.raises(anthropic.BadRequestError) as ei:
        ant.messages.create(
            model="sim-anthropic/claude-sonnet-4-5",
            max_tokens=100,
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"temperature": "hot"},
        )
    assert_anthropic_error(ei.value.response, 400, "invalid_request_error")
    assert "temperature" in str(ei.value.message), ei.value.message


def test_max_tokens_wrong_type_is_400(ant):
    with pytest.raises(anthropic.BadRequestError) as ei:
        ant.messages.create(
            model="sim-openai/gpt-4o-mini",
            max_tokens=100,
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"max_tokens": "lots"},
        )
    assert "max_tokens" in str(ei.value.message), ei.value.message


def test_malformed_json_is_400_anthropic_shape(http):
    r = http.post(
        "/v1/messages",
        content=b'{"model": "sim-anthropic/claude-sonnet-4-5", "max_tokens": 10, "messages": [',
        headers={"content-type": "application/json", "x-api-key": "any", "anthropic-version": "2023-06-01"},
    )
    assert_anthropic_error(r, 400, "invalid_request_error")


def test_body_too_large_is_413(ant, sim):
    big = "word " * (MAX_REQUEST_BYTES // 5 + 100)
    with pytest.raises(anthropic.APIStatusError) as ei:
        ant.messages.create(
            model="sim-anthropic/claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": big}]
        )
    assert ei.value.status_code == 413
    assert_anthropic_error(ei.value.response, 413, "request_too_large")
    assert sim.requests() == []


@pytest.mark.parametrize("status", ALL_FAILING_STATUSES)
@pytest.mark.parametrize("stream", STREAM)
def test_all_targets_failing_is_5xx(ant, sim, sim_faults, status, stream):
    route, (m1, m2) = all_failing_route("ant", status, stream)
    sim_faults([{"match": {"model": m}, "fault": {"status": status}} for m in (m1, m2)])
    with pytest.raises(anthropic.APIStatusError) as ei:
        create(ant, stream, model=route, messages=[{"role": "user", "content": "hi"}])
    assert ei.value.status_code >= 500, ei.value
    assert isinstance(ei.value, anthropic.InternalServerError)
    assert_anthropic_error(ei.value.response, ei.value.status_code)
    seen = [r.get("model") for r in sim.requests()]
    assert seen == [m1, m2], seen


# ------------------------------------------------------------------------ fallback


@pytest.mark.parametrize("case", list(FALLBACK_FAULTS))
@pytest.mark.parametrize("stream", STREAM)
def test_fallback_to_second_target(ant, sim, sim_faults, case, stream):
    route, broken = fallback_route("ant", case, stream)
    sim_faults([{"match": {"model": broken}, "fault": FALLBACK_FAULTS[case]}])
    msgs = [{"role": "user", "content": USER_TEXT}]
    if stream:
        with ant.messages.with_streaming_response.create(
            model=route, max_tokens=100, messages=msgs, stream=True
        ) as raw:
            headers = raw.headers
            events = list(raw.parse())
        text = "".join(
            e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta"
        )
        assert [e.type for e in events][-1] == "message_stop"
    else:
        raw = ant.messages.with_raw_response.create(model=route, max_tokens=100, messages=msgs)
        headers = raw.headers
        text = text_of(raw.parse())
    assert headers.get("x-bulwark-target") == "sim-openai/gpt-4o-mini"
    assert headers.get("x-bulwark-attempts") == "2"
    assert text == expected_text("x/gpt-4o-mini", USER_TEXT)
    seen = [(r.get("format"), r.get("model")) for r in sim.requests()]
    assert seen == [("anthropic", broken), ("openai", "gpt-4o-mini")], seen


@pytest.mark.parametrize("stream", STREAM)
def test_fallback_when_stream_fails_before_content(ant, sim, sim_faults, stream):
    """The first target errors inside its stream right after message_start:
    no content reached the client, so the gateway can still move on."""
    route, broken = fallback_route("ant", "error-event", stream)
    sim_faults([{"match": {"model": broken}, "fault": {"error_event": {"after_chunks": 1}}}])
    with ant.messages.with_streaming_response.create(
        model=route, max_tokens=100, messages=[{"role": "user", "content": USER_TEXT}], stream=True
    ) as raw:
        headers = raw.headers
        events = list(raw.parse())
    assert headers.get("x-bulwark-target") == "sim-openai/gpt-4o-mini"
    assert headers.get("x-bulwark-attempts") == "2"
    text = "".join(
        e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )
    assert text == expected_text("x/gpt-4o-mini", USER_TEXT)
    assert [e.type for e in events].count("message_start") == 1


def test_thinking_dropped_for_a_model_that_does_not_reason(ant, sim):
    """gpt-4o-mini does not reason: the request is served without thinking,
    reported in `x-bulwark-dropped`."""
    raw = ant.messages.with_raw_response.create(
        model="sim-openai/gpt-4o-mini",
        max_tokens=2000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": USER_TEXT}],
    )
    assert raw.headers.get("x-bulwark-dropped") == "thinking", dict(raw.headers)
    assert text_of(raw.parse()) == expected_text("sim-openai/gpt-4o-mini", USER_TEXT)
    assert "reasoning_effort" not in sim.last_request()["body"]


def test_thinking_rejected_on_a_strict_route(ant, sim):
    with pytest.raises(anthropic.BadRequestError) as ei:
        ant.messages.create(
            model="strict-oai",
            max_tokens=2000,
            thinking={"type": "enabled", "budget_tokens": 1024},
            messages=[{"role": "user", "content": USER_TEXT}],
        )
    assert "thinking" in str(ei.value.message), ei.value.message
    assert sim.requests() == []


@pytest.mark.parametrize("model", UPSTREAMS)
def test_upstream_credentials(ant, sim, model):
    ant.messages.create(model=model, max_tokens=20, messages=[{"role": "user", "content": "hi"}])
    req = sim.last_request()
    assert req["auth_present"] is (not model.startswith("sim-compat/")), req


def test_models_endpoint_shape(http):
    r = http.get("/v1/models")
    assert r.status_code == 200
    body = r.json()
    assert body.get("object") == "list", body
    ids = [m["id"] for m in body["data"]]
    assert "smart" in ids and "sim-anthropic/claude-sonnet-4-5" in ids, ids
    assert all(m.get("object") == "model" for m in body["data"])


@pytest.mark.parametrize("model", UPSTREAMS)
def test_error_after_content_reaches_the_sdk(ant, sim_faults, model):
    """Once text has been streamed the gateway cannot switch targets: the
    failure must surface as an `error` event the SDK raises."""
    provider = model.split("/")[0]
    sim_faults([{"match": {"model": "midstream-broken"}, "fault": {"error_event": {"after_chunks": 5}}}])
    got = []
    with pytest.raises(anthropic.APIError):
        with ant.messages.stream(
            model=f"{provider}/midstream-broken",
            max_tokens=100,
            messages=[{"role": "user", "content": "one two three four five six seven"}],
        ) as s:
            for t in s.text_stream:
                got.append(t)
    text = "".join(got)
    assert text and expected_text("x/midstream-broken", "one two three four five six seven").startswith(text), text
