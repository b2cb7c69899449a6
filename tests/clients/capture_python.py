"""The Python half of capture.mjs: drives LangChain and the official SDKs'
helpers against the recording proxy given as the only argument, telling it
before each scenario under which tests/corpus/<client>/<name> to file what
comes next. Errors are printed and ignored: what the client sent is what is
wanted, not its answer.
"""

from __future__ import annotations

import sys

import anthropic
import httpx
import openai
import pydantic
from langchain_anthropic import ChatAnthropic
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

PROXY = sys.argv[1].rstrip("/")
ANTHROPIC_MODEL = "claude-sonnet-4-5"
OPENAI_MODEL = "gpt-4o-mini"
PROMPT = "Say hello to the gateway test"


@tool
def weather(city: str) -> str:
    """The weather in a city."""
    return "sunny"


class Greeting(pydantic.BaseModel):
    greeting: str
    words: int


def scenario(client: str, name: str, run) -> None:
    print(f"==> {client}/{name}", file=sys.stderr, flush=True)
    httpx.post(f"{PROXY}/_capture/label", json={"client": client, "name": name}).raise_for_status()
    try:
        run()
    except Exception as e:  # noqa: BLE001 - the answer does not matter here
        print(f"  (client reported: {str(e).splitlines()[0] if str(e) else type(e).__name__})", file=sys.stderr)


def main() -> None:
    lc_oai = ChatOpenAI(base_url=PROXY + "/v1", api_key="sk-capture-not-a-real-key", model=OPENAI_MODEL, max_retries=0)
    lc_ant = ChatAnthropic(base_url=PROXY, api_key="sk-ant-capture-not-a-real-key", model=ANTHROPIC_MODEL, max_retries=0)
    for p, llm in (("openai", lc_oai), ("anthropic", lc_ant)):
        scenario("langchain", f"{p}-invoke", lambda: llm.invoke([("system", "Be terse."), ("user", PROMPT)]))
        scenario("langchain", f"{p}-stream", lambda: list(llm.stream(PROMPT)))
        scenario("langchain", f"{p}-bind-tools", lambda: llm.bind_tools([weather]).invoke("What is the weather in Paris?"))

    oai = openai.OpenAI(base_url=PROXY + "/v1", api_key="sk-capture-not-a-real-key", max_retries=0)
    scenario("openai-python", "chat-completions-parse", lambda: oai.chat.completions.parse(
        model=OPENAI_MODEL, messages=[{"role": "user", "content": "Greet the gateway test"}], response_format=Greeting))

    def oai_stream():
        for _ in oai.chat.completions.create(
            model=OPENAI_MODEL, messages=[{"role": "user", "content": PROMPT}],
            stream=True, stream_options={"include_usage": True},
        ):
            pass
    scenario("openai-python", "chat-completions-stream", oai_stream)

    # The Responses API: the sim does not serve it, so each scenario's one
    # request is captured and its answer is an error.
    scenario("openai-python", "responses-create", lambda: oai.responses.create(
        model=OPENAI_MODEL, instructions="Be terse.", input=PROMPT, max_output_tokens=300))

    def responses_stream():
        with oai.responses.stream(model=OPENAI_MODEL, input=PROMPT) as s:
            s.get_final_response()
    scenario("openai-python", "responses-stream", responses_stream)
    scenario("openai-python", "responses-parse", lambda: oai.responses.parse(
        model=OPENAI_MODEL, input="Greet the gateway test", text_format=Greeting))
    scenario("openai-python", "responses-create-tools", lambda: oai.responses.create(
        model=OPENAI_MODEL, input="What is the weather in Paris?",
        tools=[{"type": "function", "name": "weather", "description": "The weather in a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                               "required": ["city"], "additionalProperties": False}}]))

    ant = anthropic.Anthropic(base_url=PROXY, api_key="sk-ant-capture-not-a-real-key", max_retries=0)

    def ant_stream():
        with ant.messages.stream(model=ANTHROPIC_MODEL, max_tokens=256, messages=[{"role": "user", "content": PROMPT}]) as s:
            s.get_final_message()
    scenario("anthropic-python", "messages-stream-get-final-message", ant_stream)


if __name__ == "__main__":
    main()
