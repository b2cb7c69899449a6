"""The response cache seen through the official SDKs: a cached answer,
replayed as a stream or whole, is parsed by each SDK exactly like a live one.
"""

import uuid


def _question() -> str:
    # A fresh question per test run, so earlier runs' entries cannot hit.
    return f"What does a bulwark protect? ({uuid.uuid4().hex[:8]})"


def test_openai_sdk_parses_a_replayed_answer(oai):
    messages = [{"role": "user", "content": _question()}]
    live = oai.chat.completions.with_raw_response.create(model="cached-oai", messages=messages, temperature=0)
    assert live.headers["x-bulwark-cache"] == "miss"
    live_text = live.parse().choices[0].message.content

    whole = oai.chat.completions.with_raw_response.create(model="cached-oai", messages=messages, temperature=0)
    assert whole.headers["x-bulwark-cache"] == "hit"
    assert whole.parse().choices[0].message.content == live_text

    # The same answer, replayed as a stream, with the usage chunk.
    with oai.chat.completions.with_streaming_response.create(
        model="cached-oai", messages=messages, temperature=0, stream=True, stream_options={"include_usage": True}
    ) as response:
        assert response.headers["x-bulwark-cache"] == "hit"
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == live_text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_anthropic_sdk_parses_a_replayed_answer(ant):
    # This SDK version has no typed `temperature`; it goes in the body as is.
    messages = [{"role": "user", "content": _question()}]
    live = ant.messages.with_raw_response.create(model="cached-ant", max_tokens=64, messages=messages, extra_body={"temperature": 0})
    assert live.headers["x-bulwark-cache"] == "miss"
    live_text = live.parse().content[0].text

    with ant.messages.stream(model="cached-ant", max_tokens=64, messages=messages, extra_body={"temperature": 0}) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == live_text
    assert final.content[0].text == live_text
    assert final.stop_reason == "end_turn"

    whole = ant.messages.with_raw_response.create(model="cached-ant", max_tokens=64, messages=messages, extra_body={"temperature": 0})
    assert whole.headers["x-bulwark-cache"] == "hit"
    assert whole.parse().content[0].text == live_text
