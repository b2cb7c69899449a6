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
from google import genai
from google.genai import types
from langchain_anthropic import ChatAnthropic
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

PROXY = sys.argv[1].rstrip("/")
ANTHROPIC_MODEL = "claude-sonnet-4-5"
OPENAI_MODEL = "gpt-4o-mini"
GEMINI_MODEL = "gemini-2.5-flash"
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

    # google-genai at its default API version (`v1`). The sim serves only
    # `v1beta`, so these answers are errors; the second turn of the tool
    # round trip is built as an app would from the first turn's call.
    gem = genai.Client(
        api_key="capture-not-a-real-key",
        http_options=types.HttpOptions(base_url=PROXY, retry_options=types.HttpRetryOptions(attempts=1)),
    )
    gem_config = types.GenerateContentConfig(system_instruction="Be terse.", temperature=0.2, max_output_tokens=300)
    scenario("google-genai", "generate-content", lambda: gem.models.generate_content(
        model=GEMINI_MODEL, contents=PROMPT, config=gem_config))
    scenario("google-genai", "generate-content-stream", lambda: list(gem.models.generate_content_stream(
        model=GEMINI_MODEL, contents=PROMPT, config=gem_config)))

    def get_weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    tools_config = types.GenerateContentConfig(
        tools=[get_weather], automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True))
    question = types.Content(role="user", parts=[types.Part.from_text(text="What is the weather in Paris?")])
    scenario("google-genai", "function-call", lambda: gem.models.generate_content(
        model=GEMINI_MODEL, contents=[question], config=tools_config))
    call = types.Content(role="model", parts=[types.Part.from_function_call(name="get_weather", args={"city": "Paris"})])
    result = types.Content(role="user", parts=[
        types.Part.from_function_response(name="get_weather", response={"output": get_weather("Paris")})])
    scenario("google-genai", "function-response", lambda: gem.models.generate_content(
        model=GEMINI_MODEL, contents=[question, call, result], config=tools_config))


if __name__ == "__main__":
    main()
