"""The `google-genai` SDK against the gateway's Gemini front door
(`POST /v1beta/models/{model}:generateContent`, `:streamGenerateContent?alt=sse`,
`GET /v1beta/models`), on a same-format target (relayed), on OpenAI and
Anthropic targets (translated), and on failover routes whose first target
answers 529 or 503.

The sim answers `Simulated answer from <upstream model>: <first 12 words of
the last user text>`, calls a tool when the last user text says
`sim:call <name> {args}`, and quotes a tool's result in the next answer.
"""

from __future__ import annotations

import json

import pytest
from google import genai
from google.genai import errors, types

from sdkutil import (
    STREAM,
    TOOL_RESULT_TEXT,
    UPSTREAMS,
    WEATHER_ARGS,
    WEATHER_SCHEMA,
    fallback_route,
    upstream_format,
    upstream_model,
)

USER_TEXT = "Name three colours of the rainbow please"
CALL_TEXT = f"What is the weather? sim:call get_weather {json.dumps(WEATHER_ARGS)}"

WEATHER_TOOL = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            description="Weather forecast for a city",
            parameters_json_schema=WEATHER_SCHEMA,
        )
    ]
)
# The same tool as the SDK builds it from a Schema: Google's OpenAPI subset,
# whose upper-case type names the gateway rewrites for other providers.
WEATHER_TOOL_OPENAPI = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            description="Weather forecast for a city",
            parameters=types.Schema(
                type=types.Type.OBJECT,
                properties={
                    "city": types.Schema(type=types.Type.STRING),
                    "days": types.Schema(type=types.Type.INTEGER),
                    "latitude": types.Schema(type=types.Type.NUMBER),
                    "metric": types.Schema(type=types.Type.BOOLEAN),
                },
                required=["city", "days", "latitude", "metric"],
            ),
        )
    ]
)


def get_weather(city: str, days: int, latitude: float, metric: bool) -> str:
    """Weather forecast for a city."""
    return TOOL_RESULT_TEXT


# Passed as a tool itself, the function's declaration is written with
# proto field names (`parameters_json_schema`, `response_json_schema`).
NO_AUTO_CALLS = types.AutomaticFunctionCallingConfig(disable=True)


@pytest.fixture(scope="session")
def gem(gateway) -> genai.Client:
    client = genai.Client(
        api_key="any",
        http_options=types.HttpOptions(base_url=gateway, timeout=20_000),
    )
    yield client
    client.close()


def generate(gem: genai.Client, stream: bool, **kwargs) -> tuple[str, list]:
    """(the answer's text, its responses: one, or every streamed chunk)."""
    if stream:
        chunks = list(gem.models.generate_content_stream(**kwargs))
        return "".join(c.text or "" for c in chunks), chunks
    response = gem.models.generate_content(**kwargs)
    return response.text or "", [response]


def served_by(responses: list) -> str | None:
    http = responses[0].sdk_http_response
    return http.headers.get("x-bulwark-target") if http and http.headers else None


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("model", UPSTREAMS)
def test_generate_content(gem, sim, model, stream):
    text, responses = generate(
        gem,
        stream,
        model=model,
        contents=USER_TEXT,
        config=types.GenerateContentConfig(system_instruction="Be brief.", max_output_tokens=200),
    )
    assert text.startswith(f"Simulated answer from {upstream_model(model)}: {USER_TEXT}"), text
    assert served_by(responses) == model
    last = responses[-1]
    assert last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata.prompt_token_count > 0
    assert last.usage_metadata.candidates_token_count > 0
    request = sim.last_request(upstream_format(model))
    if upstream_format(model) == "gemini":
        # Relayed: the SDK's own body.
        assert request["body"]["systemInstruction"]["parts"][0]["text"] == "Be brief."
        assert request["body"]["generationConfig"]["maxOutputTokens"] == 200


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize(
    "tool",
    [WEATHER_TOOL, WEATHER_TOOL_OPENAPI, get_weather],
    ids=["json-schema", "openapi", "python-function"],
)
@pytest.mark.parametrize("model", UPSTREAMS)
def test_function_call_round_trip(gem, sim, model, tool, stream):
    config = types.GenerateContentConfig(tools=[tool], automatic_function_calling=NO_AUTO_CALLS)
    first = types.Content(role="user", parts=[types.Part.from_text(text=CALL_TEXT)])
    _, responses = generate(gem, stream, model=model, contents=[first], config=config)
    # A translated target was offered the tool with its JSON Schema,
    # whichever way the SDK wrote the declaration.
    request = sim.requests()[-1]
    schema = {
        "openai": lambda b: b["tools"][0]["function"]["parameters"],
        "anthropic": lambda b: b["tools"][0]["input_schema"],
        "gemini": lambda b: None,
    }[request["format"]](request["body"])
    if schema is not None:
        assert schema["properties"]["city"]["type"] == "string", schema
        assert sorted(schema["required"]) == sorted(WEATHER_SCHEMA["required"]), schema
    calls = [c for r in responses for c in (r.function_calls or [])]
    assert len(calls) == 1, responses
    assert calls[0].name == "get_weather"
    assert calls[0].args == WEATHER_ARGS
    model_turn = types.Content(role="model", parts=[types.Part(function_call=calls[0])])
    result = types.Content(
        role="user",
        parts=[types.Part.from_function_response(name="get_weather", response={"output": TOOL_RESULT_TEXT})],
    )
    text, _ = generate(gem, stream, model=model, contents=[first, model_turn, result], config=config)
    assert TOOL_RESULT_TEXT in text, text


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("case", ["529", "503"])
def test_failover_from_a_broken_first_target(gem, sim_faults, case, stream):
    route, broken = fallback_route("gem", case, stream)
    sim_faults([{"match": {"model": broken}, "fault": {"status": int(case)}}])
    text, responses = generate(gem, stream, model=route, contents=USER_TEXT)
    assert text.startswith(f"Simulated answer from gpt-4o-mini: {USER_TEXT}"), text
    headers = responses[0].sdk_http_response.headers
    assert headers.get("x-bulwark-target") == "sim-openai/gpt-4o-mini"
    assert headers.get("x-bulwark-fallback") == "true"


@pytest.mark.parametrize("stream", STREAM)
def test_failover_round_trip_with_a_function_call(gem, sim, sim_faults, stream):
    route, broken = fallback_route("gem", "529", stream)
    sim_faults([{"match": {"model": broken}, "fault": {"status": 529}}])
    test_function_call_round_trip(gem, sim, route, get_weather, stream)


@pytest.mark.parametrize("stream", STREAM)
def test_every_target_down_raises_server_error(gem, sim_faults, stream):
    route, broken = fallback_route("gem", "500", stream)
    sim_faults([
        {"match": {"model": broken}, "fault": {"status": 529}},
        {"match": {"model": "gpt-4o-mini"}, "fault": {"status": 503}},
    ])
    with pytest.raises(errors.ServerError) as raised:
        generate(gem, stream, model=route, contents=USER_TEXT)
    assert raised.value.code == 503
    assert raised.value.status == "UNAVAILABLE"


def test_a_broken_stream_raises_after_its_first_chunks(gem, sim_faults):
    sim_faults([{"match": {"model": "midstream-broken"}, "fault": {"error_event": {"after_chunks": 3}}}])
    got = []
    with pytest.raises(errors.APIError):
        for chunk in gem.models.generate_content_stream(
            model="sim-openai/midstream-broken", contents="one two three four five six seven"
        ):
            got.append(chunk.text)
    assert got, "the error came before any chunk"


def test_bad_request_raises_client_error(gem):
    with pytest.raises(errors.ClientError) as raised:
        gem.models.generate_content(
            model="sim-openai/gpt-4o-mini",
            contents=USER_TEXT,
            config=types.GenerateContentConfig(candidate_count=2),
        )
    assert raised.value.code == 400
    assert raised.value.status == "INVALID_ARGUMENT"
    assert "candidateCount" in raised.value.message


def test_models_list(gem):
    names = [m.name for m in gem.models.list()]
    assert "models/smart" in names, names
    assert "models/sim-openai/gpt-4o-mini" in names, names


def test_models_get(gem):
    model = gem.models.get(model="sim-openai/gpt-4o-mini")
    assert model.name == "models/sim-openai/gpt-4o-mini"
    assert "generateContent" in (model.supported_actions or [])
    with pytest.raises(errors.ClientError) as raised:
        gem.models.get(model="no-such-model")
    assert raised.value.code == 404
    assert raised.value.status == "NOT_FOUND"


@pytest.mark.parametrize("stream", STREAM)
def test_the_v1beta_api_version(gateway, stream):
    """`v1` is the SDK's default; `v1beta` (its default before 3.0, and what
    many apps pin) reaches the same door."""
    client = genai.Client(
        api_key="any",
        http_options=types.HttpOptions(base_url=gateway, api_version="v1beta", timeout=20_000),
    )
    try:
        text, responses = generate(client, stream, model="sim-gemini/gemini-2.5-flash", contents=USER_TEXT)
    finally:
        client.close()
    assert text.startswith(f"Simulated answer from gemini-2.5-flash: {USER_TEXT}"), text
    assert served_by(responses) == "sim-gemini/gemini-2.5-flash"


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize("model", UPSTREAMS)
def test_thoughts_reach_the_client_only_from_gemini(gem, model, stream):
    config = types.GenerateContentConfig(
        thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=1024)
    )
    text, responses = generate(gem, stream, model=model, contents=USER_TEXT, config=config)
    assert text.startswith(f"Simulated answer from {upstream_model(model)}: {USER_TEXT}"), text
    thoughts = [
        p.text
        for r in responses
        for c in (r.candidates or [])
        for p in ((c.content.parts if c.content else None) or [])
        if p.thought
    ]
    if upstream_format(model) == "gemini":
        # Relayed: Gemini's own thought parts, as Gemini sent them.
        assert "".join(thoughts).startswith("Simulated thinking from gemini-2.5-flash"), thoughts
    else:
        # Another format's thinking has no place in a Gemini answer.
        assert thoughts == [], thoughts
