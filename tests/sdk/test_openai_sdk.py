"""The official OpenAI Python SDK against the gateway's OpenAI front door
(`POST /v1/chat/completions`, `GET /v1/models`), over every upstream kind.

The sim answers deterministically (see crates/bulwark-sim/src/answer.rs):
`Simulated answer from <upstream model>: <first 12 words of the last user text>`,
a token is a whitespace-separated word, prompt tokens are the words of every
input text (system prompt included), stop sequences cut the text, max_tokens
truncates it to that many words.
"""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from sdkutil import (
    ALL_FAILING_STATUSES,
    FALLBACK_FAULTS,
    CLOCK_ARGS,
    CLOCK_SCHEMA,
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

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather forecast for a city",
            "parameters": WEATHER_SCHEMA,
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "Current time in a timezone",
            "parameters": CLOCK_SCHEMA,
        },
    },
]


def words(*texts: str) -> int:
    return sum(len(t.split()) for t in texts)


def expected_text(model: str, user_text: str, suffix: str = "") -> str:
    echo = " ".join(user_text.split()[:12])
    return f"Simulated answer from {upstream_model(model)}: {echo}{suffix}"


class Collected:
    """A streamed chat completion accumulated by hand from the SDK's chunks."""

    def __init__(self, chunks):
        self.chunks = list(chunks)
        self.choice_chunks = [c for c in self.chunks if c.choices]
        self.text = "".join(c.choices[0].delta.content or "" for c in self.choice_chunks)
        self.finish_reasons = [
            c.choices[0].finish_reason for c in self.choice_chunks if c.choices[0].finish_reason
        ]
        self.usages = [c.usage for c in self.chunks if c.usage is not None]
        calls: dict[int, dict] = {}
        for c in self.choice_chunks:
            for tc in c.choices[0].delta.tool_calls or []:
                slot = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
                if tc.id:
                    slot["id"] = tc.id
                if tc.function is not None:
                    if tc.function.name:
                        slot["name"] = tc.function.name
                    slot["arguments"] += tc.function.arguments or ""
        self.tool_calls = [calls[i] for i in sorted(calls)]

    @property
    def finish_reason(self):
        assert len(self.finish_reasons) == 1, (
            f"expected exactly one chunk with a finish_reason, got {self.finish_reasons}"
        )
        return self.finish_reasons[0]


def chat(oai: openai.OpenAI, stream: bool, **kwargs):
    """Non-streamed: the ChatCompletion. Streamed: a Collected."""
    if stream:
        return Collected(oai.chat.completions.create(stream=True, **kwargs))
    return oai.chat.completions.create(**kwargs)


def check_stream_framing(col: Collected) -> None:
    assert col.chunks, "the stream produced no chunk"
    ids = {c.id for c in col.chunks}
    assert len(ids) == 1 and "" not in ids, f"chunk ids differ or are empty: {ids}"
    for c in col.chunks:
        assert c.object == "chat.completion.chunk", c
    first = col.choice_chunks[0].choices[0].delta
    assert first.role == "assistant", f"first delta has no assistant role: {first}"


# --------------------------------------------------------------------------- text


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("model", UPSTREAMS)
def test_text_with_system_prompt(oai, model, stream):
    r = chat(
        oai,
        stream,
        model=model,
        messages=[
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": USER_TEXT},
        ],
        stream_options={"include_usage": True} if stream else openai.omit,
    )
    want = expected_text(model, USER_TEXT)
    prompt_tokens = words(SYSTEM_PROMPT, USER_TEXT)
    if stream:
        check_stream_framing(r)
        assert r.text == want
        assert r.finish_reason == "stop"
        assert len(r.usages) == 1, r.usages
        usage = r.usages[0]
    else:
        assert r.object == "chat.completion"
        assert r.id
        assert len(r.choices) == 1
        ch = r.choices[0]
        assert ch.index == 0
        assert ch.message.role == "assistant"
        assert ch.message.content == want
        assert not ch.message.tool_calls
        assert ch.finish_reason == "stop"
        usage = r.usage
    assert usage.prompt_tokens == prompt_tokens
    assert usage.completion_tokens == words(want)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


@pytest.mark.parametrize("model", UPSTREAMS)
def test_deterministic_and_stream_equals_unary(oai, model):
    msgs = [{"role": "user", "content": "Tell me about deterministic simulators"}]
    a = oai.chat.completions.create(model=model, messages=msgs)
    b = oai.chat.completions.create(model=model, messages=msgs)
    s = Collected(oai.chat.completions.create(model=model, messages=msgs, stream=True))
    assert a.choices[0].message.content == b.choices[0].message.content
    assert s.text == a.choices[0].message.content


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("model", UPSTREAMS)
def test_multi_turn(oai, sim, model, stream):
    msgs = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Nice to meet you, Ada."},
        {"role": "user", "content": "What is my name?"},
    ]
    r = chat(oai, stream, model=model, messages=msgs)
    want = expected_text(model, "What is my name?")
    text = r.text if stream else r.choices[0].message.content
    assert text == want
    if not stream:
        assert r.usage.prompt_tokens == words(*(m["content"] for m in msgs))

    # The upstream saw every turn, in order, in its own format.
    up = sim.last_request()["body"]
    fmt = upstream_format(model)
    if fmt == "openai":
        assert [m["role"] for m in up["messages"]] == ["system", "user", "assistant", "user"]
    elif fmt == "anthropic":
        assert [m["role"] for m in up["messages"]] == ["user", "assistant", "user"]
        assert SYSTEM_PROMPT in json.dumps(up["system"])
    else:
        assert [c["role"] for c in up["contents"]] == ["user", "model", "user"]
        assert SYSTEM_PROMPT in json.dumps(up["systemInstruction"])


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("model", UPSTREAMS)
def test_max_tokens_truncates_with_length(oai, model, stream):
    r = chat(
        oai,
        stream,
        model=model,
        messages=[{"role": "user", "content": USER_TEXT}],
        max_tokens=3,
        stream_options={"include_usage": True} if stream else openai.omit,
    )
    if stream:
        assert r.text == "Simulated answer from"
        assert r.finish_reason == "length"
        usage = r.usages[-1]
    else:
        assert r.choices[0].message.content == "Simulated answer from"
        assert r.choices[0].finish_reason == "length"
        usage = r.usage
    assert usage.completion_tokens == 3


@pytest.mark.parametrize("model", UPSTREAMS)
def test_max_completion_tokens_truncates(oai, model):
    r = oai.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": USER_TEXT}],
        max_completion_tokens=4,
    )
    assert r.choices[0].message.content == f"Simulated answer from {upstream_model(model)}:"
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 4


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("model", UPSTREAMS)
def test_stop_sequence_cuts_text(oai, model, stream):
    r = chat(
        oai,
        stream,
        model=model,
        messages=[{"role": "user", "content": "alpha beta gamma delta"}],
        stop=["gamma", "zzz-never"],
    )
    want = f"Simulated answer from {upstream_model(model)}: alpha beta"
    if stream:
        assert r.text == want
        assert r.finish_reason == "stop"
    else:
        assert r.choices[0].message.content == want
        assert r.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("model", UPSTREAMS)
def test_sampling_parameters_translated_upstream(oai, sim, model):
    oai.chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": USER_TEXT},
        ],
        temperature=0.25,
        top_p=0.75,
        max_tokens=77,
        stop=["END", "STOP"],
    )
    req = sim.last_request()
    up = req["body"]
    fmt = upstream_format(model)
    if fmt == "openai":
        assert up["model"] == upstream_model(model)
        assert up["temperature"] == 0.25
        assert up["top_p"] == 0.75
        assert up.get("max_tokens", up.get("max_completion_tokens")) == 77
        assert up["stop"] in (["END", "STOP"],)
        assert up["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT} or (
            up["messages"][0]["role"] in ("system", "developer")
            and SYSTEM_PROMPT in json.dumps(up["messages"][0]["content"])
        )
    elif fmt == "anthropic":
        assert up["model"] == upstream_model(model)
        # System prompt moves to the top-level `system` field.
        assert SYSTEM_PROMPT in json.dumps(up["system"])
        assert all(m["role"] != "system" for m in up["messages"])
        assert up["max_tokens"] == 77
        assert up["temperature"] == 0.25
        assert up["top_p"] == 0.75
        assert up["stop_sequences"] == ["END", "STOP"]
        assert "stop" not in up
    else:
        assert upstream_model(model) in req.get("path", "") or req.get("model") == upstream_model(
            model
        )
        assert SYSTEM_PROMPT in json.dumps(up["systemInstruction"])
        gc = up["generationConfig"]
        assert gc["maxOutputTokens"] == 77
        assert gc["temperature"] == 0.25
        assert gc["topP"] == 0.75
        assert gc["stopSequences"] == ["END", "STOP"]


def test_anthropic_upstream_gets_default_max_tokens(oai, sim):
    """Anthropic requires max_tokens; an OpenAI client need not send it."""
    r = oai.chat.completions.create(
        model="sim-anthropic/claude-sonnet-4-5",
        messages=[{"role": "user", "content": USER_TEXT}],
    )
    assert r.choices[0].finish_reason == "stop"
    up = sim.last_request()["body"]
    assert isinstance(up.get("max_tokens"), int) and up["max_tokens"] > 0, up


# -------------------------------------------------------------------------- tools


def tool_turn_messages(call_id: str, name: str, arguments: str) -> list[dict]:
    return [
        {"role": "user", "content": "What's the weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": TOOL_RESULT_TEXT},
    ]


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("model", UPSTREAMS)
def test_tool_call_then_tool_result(oai, sim, model, stream):
    first = chat(
        oai,
        stream,
        model=model,
        messages=[{"role": "user", "content": "What's the weather in Paris? sim:call get_weather"}],
        tools=TOOLS,
    )
    if stream:
        check_stream_framing(first)
        assert first.finish_reason == "tool_calls"
        assert len(first.tool_calls) == 1, first.tool_calls
        call = first.tool_calls[0]
        call_id, name, arguments = call["id"], call["name"], call["arguments"]
        # Arguments arrive in fragments that the client must concatenate.
        assert first.text == ""
    else:
        ch = first.choices[0]
        assert ch.finish_reason == "tool_calls"
        assert ch.message.tool_calls and len(ch.message.tool_calls) == 1
        tc = ch.message.tool_calls[0]
        assert tc.type == "function"
        call_id, name, arguments = tc.id, tc.function.name, tc.function.arguments
        assert not ch.message.content
    assert call_id, "tool call has no id"
    assert name == "get_weather"
    assert isinstance(arguments, str)
    assert_tool_args(arguments, WEATHER_ARGS)

    # The tool declaration reached the upstream in its own format.
    up = sim.last_request()["body"]
    fmt = upstream_format(model)
    if fmt == "openai":
        assert [t["function"]["name"] for t in up["tools"]] == ["get_weather", "get_time"]
        assert up["tools"][0]["function"]["parameters"] == WEATHER_SCHEMA
    elif fmt == "anthropic":
        assert [t["name"] for t in up["tools"]] == ["get_weather", "get_time"]
        assert up["tools"][0]["input_schema"] == WEATHER_SCHEMA
    else:
        decls = [d for t in up["tools"] for d in t.get("functionDeclarations", [])]
        assert [d["name"] for d in decls] == ["get_weather", "get_time"]

    # Second turn: the tool result comes back; the model answers quoting it.
    second = chat(oai, stream, model=model, messages=tool_turn_messages(call_id, name, arguments), tools=TOOLS)
    text = second.text if stream else second.choices[0].message.content
    finish = second.finish_reason if stream else second.choices[0].finish_reason
    assert finish == "stop"
    prefix = f"Simulated answer from {upstream_model(model)}: the tool returned "
    fmt = upstream_format(model)
    if fmt == "gemini":
        # A Gemini functionResponse carries a JSON object, which the sim quotes
        # as JSON; how the gateway wraps the text in it is its own choice.
        assert text.startswith(prefix) and TOOL_RESULT_TEXT in text, text
    else:
        assert text == prefix + TOOL_RESULT_TEXT

    # The upstream got the call and its result linked together.
    up = sim.last_request()["body"]
    if fmt == "openai":
        assert up["messages"][1]["tool_calls"][0]["id"] == call_id
        assert up["messages"][2] == {"role": "tool", "tool_call_id": call_id, "content": TOOL_RESULT_TEXT} or (
            up["messages"][2]["role"] == "tool" and up["messages"][2]["tool_call_id"] == call_id
        )
    elif fmt == "anthropic":
        tu = [b for b in up["messages"][1]["content"] if b["type"] == "tool_use"]
        tr = [b for b in up["messages"][2]["content"] if b["type"] == "tool_result"]
        assert up["messages"][2]["role"] == "user"
        assert tu[0]["id"] == tr[0]["tool_use_id"]
        assert tu[0]["input"] == WEATHER_ARGS
        assert TOOL_RESULT_TEXT in json.dumps(tr[0]["content"])
    else:
        roles = [c["role"] for c in up["contents"]]
        assert roles[1] == "model", roles
        fc = [p["functionCall"] for p in up["contents"][1]["parts"] if "functionCall" in p]
        fr = [p["functionResponse"] for c in up["contents"][2:] for p in c["parts"] if "functionResponse" in p]
        assert fc and fc[0]["name"] == "get_weather" and fc[0]["args"] == WEATHER_ARGS
        assert fr and fr[0]["name"] == "get_weather"
        assert TOOL_RESULT_TEXT in json.dumps(fr[0]["response"])


@pytest.mark.parametrize("model", UPSTREAMS)
def test_named_tool_choice(oai, sim, model):
    r = oai.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "What time is it?"}],
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    tc = r.choices[0].message.tool_calls
    assert tc and tc[0].function.name == "get_time"
    assert_tool_args(tc[0].function.arguments, CLOCK_ARGS)
    up = sim.last_request()["body"]
    fmt = upstream_format(model)
    if fmt == "anthropic":
        assert up["tool_choice"] == {"type": "tool", "name": "get_time"}
    elif fmt == "gemini":
        fcc = up["toolConfig"]["functionCallingConfig"]
        assert fcc["mode"] == "ANY" and fcc["allowedFunctionNames"] == ["get_time"]


@pytest.mark.parametrize("model", UPSTREAMS)
def test_tool_choice_none_answers_text(oai, model):
    r = oai.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": USER_TEXT}],
        tools=TOOLS,
        tool_choice="none",
    )
    assert not r.choices[0].message.tool_calls
    assert r.choices[0].message.content == expected_text(model, USER_TEXT)
    assert r.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("model", UPSTREAMS)
def test_stream_helper_reassembles_tool_call(oai, model):
    with oai.chat.completions.stream(
        model=model,
        messages=[{"role": "user", "content": "What's the weather in Paris? sim:call get_weather"}],
        tools=TOOLS,
    ) as s:
        events = [e.type for e in s]
        final = s.get_final_completion()
    assert "tool_calls.function.arguments.delta" in events
    assert "tool_calls.function.arguments.done" in events
    ch = final.choices[0]
    assert ch.finish_reason == "tool_calls"
    assert len(ch.message.tool_calls) == 1
    assert ch.message.tool_calls[0].function.name == "get_weather"
    assert_tool_args(ch.message.tool_calls[0].function.arguments, WEATHER_ARGS)


@pytest.mark.parametrize("model", UPSTREAMS)
def test_stream_helper_text(oai, model):
    with oai.chat.completions.stream(
        model=model,
        messages=[{"role": "user", "content": USER_TEXT}],
        stream_options={"include_usage": True},
    ) as s:
        deltas = [e.delta for e in s if e.type == "content.delta"]
        final = s.get_final_completion()
    assert "".join(deltas) == expected_text(model, USER_TEXT)
    assert len(deltas) > 1, "the answer was not streamed incrementally"
    assert final.choices[0].message.content == expected_text(model, USER_TEXT)
    assert final.usage is not None and final.usage.completion_tokens > 0


# ------------------------------------------------------------------------- images


def image_parts(*urls: str) -> list[dict]:
    return [{"type": "text", "text": "Describe these pictures"}] + [
        {"type": "image_url", "image_url": {"url": u}} for u in urls
    ]


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("model", UPSTREAMS)
def test_base64_images(oai, sim, model, stream):
    data_url = f"data:image/png;base64,{PNG_1X1_B64}"
    r = chat(oai, stream, model=model, messages=[{"role": "user", "content": image_parts(data_url, data_url)}])
    text = r.text if stream else r.choices[0].message.content
    assert text == expected_text(model, "Describe these pictures", " (2 images)")

    up = sim.last_request()["body"]
    fmt = upstream_format(model)
    if fmt == "anthropic":
        imgs = [b for b in up["messages"][0]["content"] if b["type"] == "image"]
        assert len(imgs) == 2
        assert imgs[0]["source"] == {"type": "base64", "media_type": "image/png", "data": PNG_1X1_B64}
    elif fmt == "gemini":
        imgs = [p["inlineData"] for p in up["contents"][0]["parts"] if "inlineData" in p]
        assert len(imgs) == 2
        assert imgs[0] == {"mimeType": "image/png", "data": PNG_1X1_B64}


@pytest.mark.parametrize("model", UPSTREAMS)
def test_url_image(oai, sim, model):
    msgs = [{"role": "user", "content": image_parts(IMAGE_URL)}]
    if upstream_format(model) == "gemini":
        # Gemini's generateContent cannot fetch an arbitrary https URL.
        with pytest.raises(openai.BadRequestError) as ei:
            oai.chat.completions.create(model=model, messages=msgs)
        assert ei.value.status_code == 400
        msg = str(ei.value.message).lower()
        assert "image" in msg and "url" in msg, ei.value.message
        assert isinstance(ei.value.body, dict), ei.value.body
        return
    r = oai.chat.completions.create(model=model, messages=msgs)
    assert r.choices[0].message.content == expected_text(model, "Describe these pictures", " (1 image)")
    up = sim.last_request()["body"]
    if upstream_format(model) == "anthropic":
        img = [b for b in up["messages"][0]["content"] if b["type"] == "image"][0]
        assert img["source"] == {"type": "url", "url": IMAGE_URL}


# ------------------------------------------------------------------------ headers


@pytest.mark.parametrize("model", UPSTREAMS)
def test_raw_response_headers(oai, model):
    raw = oai.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": USER_TEXT}]
    )
    assert raw.status_code == 200
    assert raw.headers.get("x-bulwark-target") == model
    assert raw.headers.get("x-bulwark-attempts") == "1"
    assert raw.parse().choices[0].message.content == expected_text(model, USER_TEXT)


@pytest.mark.parametrize("model", UPSTREAMS)
def test_streaming_raw_response_headers(oai, model):
    with oai.chat.completions.with_streaming_response.create(
        model=model, messages=[{"role": "user", "content": USER_TEXT}], stream=True
    ) as raw:
        assert raw.status_code == 200
        assert raw.headers.get("content-type", "").startswith("text/event-stream")
        assert raw.headers.get("x-bulwark-target") == model
        assert raw.headers.get("x-bulwark-attempts") == "1"
        col = Collected(raw.parse())
    assert col.text == expected_text(model, USER_TEXT)


def test_route_name_serves_first_target(oai):
    raw = oai.chat.completions.with_raw_response.create(
        model="smart", messages=[{"role": "user", "content": USER_TEXT}]
    )
    assert raw.headers.get("x-bulwark-target") == "sim-anthropic/claude-sonnet-4-5"
    assert raw.headers.get("x-bulwark-attempts") == "1"
    assert raw.parse().choices[0].message.content == expected_text("x/claude-sonnet-4-5", USER_TEXT)


def test_models_list(oai):
    ids = {m.id for m in oai.models.list()}
    for want in ["smart", "fallback", "sim-openai/gpt-4o-mini", "sim-anthropic/claude-sonnet-4-5"]:
        assert want in ids, f"{want} missing from /v1/models: {sorted(ids)}"


def test_models_retrieve(oai):
    model = oai.models.retrieve("sim-openai/gpt-4o-mini")
    assert model.id == "sim-openai/gpt-4o-mini"
    assert model.object == "model"
    with pytest.raises(openai.NotFoundError) as raised:
        oai.models.retrieve("no-such-model")
    assert raised.value.code == "model_not_found"


# -------------------------------------------------------------------------- usage


@pytest.mark.parametrize("model", UPSTREAMS)
def test_stream_include_usage(oai, model):
    col = Collected(
        oai.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": USER_TEXT}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    last = col.chunks[-1]
    assert last.choices == [], f"final chunk should have empty choices: {last}"
    assert last.usage is not None
    assert last.usage.prompt_tokens == words(USER_TEXT)
    assert last.usage.completion_tokens == words(expected_text(model, USER_TEXT))
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    for c in col.chunks[:-1]:
        assert c.usage is None, f"only the final chunk carries usage: {c}"
        assert c.choices, f"only the final chunk may have empty choices: {c}"


@pytest.mark.parametrize("model", UPSTREAMS)
def test_stream_without_usage(oai, model):
    col = Collected(
        oai.chat.completions.create(
            model=model, messages=[{"role": "user", "content": USER_TEXT}], stream=True
        )
    )
    assert col.text == expected_text(model, USER_TEXT)
    for c in col.chunks:
        assert c.usage is None, f"usage sent without include_usage: {c}"
        assert c.choices, f"chunk without choices: {c}"


# -------------------------------------------------------------------------- errors


@pytest.mark.parametrize("name", ["no-such-route", "nope/gpt-4o-mini"])
@pytest.mark.parametrize("stream", STREAM)
def test_unknown_model_is_404(oai, name, stream):
    with pytest.raises(openai.NotFoundError) as ei:
        chat(oai, stream, model=name, messages=[{"role": "user", "content": "hi"}])
    assert ei.value.status_code == 404
    assert isinstance(ei.value.body, dict) and ei.value.body.get("message"), ei.value.body


def test_wrong_field_type_is_400(oai):
    with pytest.raises(openai.BadRequestError) as ei:
        oai.chat.completions.create(
            model="sim-openai/gpt-4o-mini",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"temperature": "hot"},
        )
    assert ei.value.status_code == 400
    assert "temperature" in str(ei.value.message), ei.value.message


def test_messages_wrong_type_is_400(oai):
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(
            model="sim-anthropic/claude-sonnet-4-5",
            messages=openai.omit,
            extra_body={"messages": "not a list"},
        )


def test_malformed_json_is_400_openai_shape(http):
    r = http.post(
        "/v1/chat/completions",
        content=b'{"model": "sim-openai/gpt-4o-mini", "messages": [',
        headers={"content-type": "application/json", "authorization": "Bearer any"},
    )
    assert r.status_code == 400, r.text
    body = r.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert isinstance(err.get("message"), str) and err["message"]
    assert err.get("type") == "invalid_request_error", err


def test_body_too_large_is_413(oai, sim):
    big = "word " * (MAX_REQUEST_BYTES // 5 + 100)
    with pytest.raises(openai.APIStatusError) as ei:
        oai.chat.completions.create(model="sim-openai/gpt-4o-mini", messages=[{"role": "user", "content": big}])
    assert ei.value.status_code == 413
    assert isinstance(ei.value.body, dict) and ei.value.body.get("message"), ei.value.body
    assert sim.requests() == [], "an oversized request must not reach the upstream"


def test_body_just_under_limit_is_accepted(oai):
    text = "word " * ((MAX_REQUEST_BYTES - 2000) // 5)
    r = oai.chat.completions.create(model="sim-openai/gpt-4o-mini", messages=[{"role": "user", "content": text}])
    assert r.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("status", ALL_FAILING_STATUSES)
@pytest.mark.parametrize("stream", STREAM)
def test_all_targets_failing_is_5xx(oai, sim, sim_faults, status, stream):
    route, (m1, m2) = all_failing_route("oai", status, stream)
    sim_faults([{"match": {"model": m}, "fault": {"status": status}} for m in (m1, m2)])
    with pytest.raises(openai.APIStatusError) as ei:
        chat(oai, stream, model=route, messages=[{"role": "user", "content": "hi"}])
    assert ei.value.status_code >= 500, ei.value
    assert isinstance(ei.value, openai.InternalServerError)
    body = ei.value.response.json()
    assert isinstance(body.get("error"), dict) and body["error"].get("message"), body
    # Both targets were tried, in order.
    seen = [r.get("model") or r.get("body", {}).get("model") for r in sim.requests()]
    assert seen == [m1, m2], seen


@pytest.mark.parametrize("model", ["sim-anthropic/claude-sonnet-4-5", "sim-gemini/gemini-2.5-flash"])
def test_untranslatable_field_rejected(oai, sim, model):
    with pytest.raises(openai.BadRequestError) as ei:
        oai.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}], logprobs=True
        )
    assert "logprobs" in str(ei.value.message), ei.value.message
    assert sim.requests() == [], "a rejected request must not reach the upstream"


def test_openai_only_field_passes_through_to_openai(oai, sim):
    r = oai.chat.completions.create(
        model="sim-openai/gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        logprobs=True,
        seed=7,
    )
    assert r.choices[0].message.content
    up = sim.last_request()["body"]
    assert up.get("logprobs") is True and up.get("seed") == 7, up


# ------------------------------------------------------------------------ fallback


@pytest.mark.parametrize("case", list(FALLBACK_FAULTS))
@pytest.mark.parametrize("stream", STREAM)
def test_fallback_to_second_target(oai, sim, sim_faults, case, stream):
    route, broken = fallback_route("oai", case, stream)
    sim_faults([{"match": {"model": broken}, "fault": FALLBACK_FAULTS[case]}])
    msgs = [{"role": "user", "content": USER_TEXT}]
    if stream:
        with oai.chat.completions.with_streaming_response.create(model=route, messages=msgs, stream=True) as raw:
            headers = raw.headers
            col = Collected(raw.parse())
        text = col.text
        assert col.finish_reason == "stop"
    else:
        raw = oai.chat.completions.with_raw_response.create(model=route, messages=msgs)
        headers = raw.headers
        text = raw.parse().choices[0].message.content
    assert headers.get("x-bulwark-target") == "sim-openai/gpt-4o-mini"
    assert headers.get("x-bulwark-attempts") == "2"
    assert text == expected_text("x/gpt-4o-mini", USER_TEXT)
    seen = [(r.get("format"), r.get("model") or r.get("body", {}).get("model")) for r in sim.requests()]
    assert seen == [("anthropic", broken), ("openai", "gpt-4o-mini")], seen


def test_fallback_route_from_config(oai, sim_faults):
    sim_faults([{"match": {"model": "broken-model"}, "fault": {"status": 529}}])
    raw = oai.chat.completions.with_raw_response.create(
        model="fallback", messages=[{"role": "user", "content": USER_TEXT}]
    )
    assert raw.headers.get("x-bulwark-target") == "sim-openai/gpt-4o-mini"
    assert raw.headers.get("x-bulwark-attempts") == "2"


@pytest.mark.parametrize("stream", STREAM)
def test_fallback_when_stream_fails_before_content(oai, sim, sim_faults, stream):
    """The first target errors inside its stream before any content: nothing
    reached the client yet, so the gateway can still move to the next target."""
    route, broken = fallback_route("oai", "error-event", stream)
    sim_faults([{"match": {"model": broken}, "fault": {"error_event": {"after_chunks": 1}}}])
    msgs = [{"role": "user", "content": USER_TEXT}]
    with oai.chat.completions.with_streaming_response.create(model=route, messages=msgs, stream=True) as raw:
        headers = raw.headers
        col = Collected(raw.parse())
    assert headers.get("x-bulwark-target") == "sim-openai/gpt-4o-mini"
    assert headers.get("x-bulwark-attempts") == "2"
    assert col.text == expected_text("x/gpt-4o-mini", USER_TEXT)
    assert col.finish_reason == "stop"


# ------------------------------------------------------------- more translation


@pytest.mark.parametrize("model", UPSTREAMS)
def test_upstream_credentials(oai, sim, model):
    """The gateway authenticates upstream with the provider's configured key,
    never with the client's, and speaks each provider's protocol version."""
    oai.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"authorization": "Bearer client-secret-must-not-leak"},
    )
    req = sim.last_request()
    if model.startswith("sim-compat/"):
        # No api_key configured for this provider: no credential at all.
        assert req["auth_present"] is False, req
    else:
        assert req["auth_present"] is True, req
    if upstream_format(model) == "anthropic":
        assert req["headers"].get("anthropic-version"), req["headers"]


@pytest.mark.parametrize("model", UPSTREAMS)
def test_two_tool_results_in_one_turn(oai, sim, model):
    """An assistant turn with two tool calls, answered by two tool messages."""
    args = json.dumps(WEATHER_ARGS)
    msgs = [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": args}},
                {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": '{"timezone": "CET"}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "Paris: sunny"},
        {"role": "tool", "tool_call_id": "call_b", "content": "Rome: noon"},
    ]
    r = oai.chat.completions.create(model=model, messages=msgs, tools=TOOLS)
    text = r.choices[0].message.content
    assert text.startswith(f"Simulated answer from {upstream_model(model)}: the tool returned"), text
    assert "Paris: sunny" in text and "Rome: noon" in text, text

    up = sim.last_request()["body"]
    fmt = upstream_format(model)
    if fmt == "anthropic":
        # Anthropic wants every tool_result of a turn in the one next user message.
        assert [m["role"] for m in up["messages"]] == ["user", "assistant", "user"], up["messages"]
        results = up["messages"][2]["content"]
        assert [b["tool_use_id"] for b in results if b["type"] == "tool_result"] == ["call_a", "call_b"]
        uses = [b for b in up["messages"][1]["content"] if b["type"] == "tool_use"]
        assert [u["id"] for u in uses] == ["call_a", "call_b"]
        assert uses[1]["input"] == {"timezone": "CET"}
    elif fmt == "gemini":
        assert [c["role"] for c in up["contents"]] == ["user", "model", "user"], up["contents"]
        names = [p["functionResponse"]["name"] for p in up["contents"][2]["parts"]]
        assert names == ["get_weather", "get_time"]


@pytest.mark.parametrize("model", UPSTREAMS)
def test_developer_role_text_parts_and_string_stop(oai, sim, model):
    r = oai.chat.completions.create(
        model=model,
        messages=[
            {"role": "developer", "content": SYSTEM_PROMPT},
            {"role": "user", "content": [{"type": "text", "text": "alpha beta"}, {"type": "text", "text": "gamma delta"}]},
        ],
        stop="gamma",
    )
    assert r.choices[0].message.content == f"Simulated answer from {upstream_model(model)}: alpha beta"
    assert r.usage.prompt_tokens == words(SYSTEM_PROMPT, "alpha beta gamma delta")
    up = sim.last_request()["body"]
    fmt = upstream_format(model)
    if fmt == "anthropic":
        assert SYSTEM_PROMPT in json.dumps(up["system"]) and up["stop_sequences"] == ["gamma"]
    elif fmt == "gemini":
        assert SYSTEM_PROMPT in json.dumps(up["systemInstruction"])
        assert up["generationConfig"]["stopSequences"] == ["gamma"]


@pytest.mark.parametrize("model", ["sim-anthropic/claude-sonnet-4-5", "sim-gemini/gemini-2.5-flash"])
def test_n_choices_rejected_where_inexpressible(oai, sim, model):
    with pytest.raises(openai.BadRequestError) as ei:
        oai.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], n=2)
    assert "n" in str(ei.value.message)
    assert sim.requests() == []


def test_concurrent_requests(oai):
    from concurrent.futures import ThreadPoolExecutor

    models = [p.values[0] for p in UPSTREAMS] * 4

    def one(i_model):
        i, model = i_model
        text = f"request number {i} here"
        stream = i % 2 == 1
        r = chat(oai, stream, model=model, messages=[{"role": "user", "content": text}])
        got = r.text if stream else r.choices[0].message.content
        return got, expected_text(model, text)

    with ThreadPoolExecutor(max_workers=16) as pool:
        for got, want in pool.map(one, enumerate(models)):
            assert got == want


@pytest.mark.parametrize("model", UPSTREAMS)
def test_error_after_content_reaches_the_sdk(oai, sim_faults, model):
    """Once text has been streamed the gateway cannot switch targets: the
    failure must surface as an in-stream error the SDK raises, never as a
    silently truncated answer."""
    provider = model.split("/")[0]
    target = f"{provider}/midstream-broken"
    sim_faults([{"match": {"model": "midstream-broken"}, "fault": {"error_event": {"after_chunks": 5}}}])
    got = []
    with pytest.raises(openai.APIError):
        for chunk in oai.chat.completions.create(
            model=target,
            messages=[{"role": "user", "content": "one two three four five six seven"}],
            stream=True,
        ):
            if chunk.choices:
                got.append(chunk.choices[0].delta.content or "")
    text = "".join(got)
    assert text and expected_text("x/midstream-broken", "one two three four five six seven").startswith(text), text
