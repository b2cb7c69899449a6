#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora under fuzz/corpus/<target>/.

Request seeds are the captured client bodies of tests/corpus/ (those under
8 KiB: the Claude Code and Codex captures, 40-90 KiB each, would raise
libFuzzer's -max_len and slow every run; the proptests read them instead).
Upstream seeds are the answers each provider sends, streamed and complete,
in the shapes the decoders' unit tests use. A chunked target's input starts
with its cutting header (bulwark::fuzzing::split): a NUL for "whole", or a
count and piece lengths. Run from the repository root; cargo fuzz adds what
it finds to the same folders, and `cargo fuzz cmin` keeps them small.
"""

import glob
import hashlib
import json
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
MAX_SEED = 8 * 1024


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    folder = os.path.join(ROOT, target)
    os.makedirs(folder, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def sse(events):
    out = ""
    for name, data in events:
        if name:
            out += f"event: {name}\n"
        body = data if isinstance(data, str) else json.dumps(data)
        out += f"data: {body}\n\n"
    return out


def chunked(target, stream):
    """The stream whole, byte by byte, and in uneven pieces."""
    put(target, b"\x00" + stream.encode())
    put(target, b"\x01\x00" + stream.encode())
    put(target, b"\x03\x06\x00\x1f" + stream.encode())


DOORS = {
    "/v1/chat/completions": "openai",
    "/v1/messages": "anthropic",
    "/v1/responses": "responses",
}


def requests():
    for path in sorted(glob.glob("tests/corpus/*/*.json")):
        with open(path) as f:
            capture = json.load(f)
        body = json.dumps(capture["body"]).encode()
        door = DOORS.get(capture["path"])
        if door is None and ":" in capture["path"]:
            door = "gemini"
        if door and len(body) <= MAX_SEED:
            put(f"request_{door}", body)
    put("request_openai", json.dumps({"model": "m", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "hi"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": "auto", "max_tokens": 10, "temperature": 0.5, "stop": ["x"],
        "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}}}}))
    put("request_anthropic", json.dumps({"model": "m", "max_tokens": 100,
        "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [{"role": "user", "content": "hi"},
                     {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "s"},
                                                       {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}]},
                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "42"},
                                                  {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]}],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}], "tool_choice": {"type": "any"}, "stop_sequences": ["x"]}))
    put("request_responses", json.dumps({"model": "m", "instructions": "sys", "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "42"},
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "s"}]}],
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
        "reasoning": {"effort": "low"}, "text": {"format": {"type": "json_schema", "name": "s", "schema": {"type": "object"}}},
        "max_output_tokens": 50, "stream": True}))
    put("request_gemini", json.dumps({"systemInstruction": {"parts": [{"text": "sys"}]}, "contents": [
        {"role": "user", "parts": [{"text": "hi"}, {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}]},
        {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {"a": 1}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"r": 42}}}]}],
        "tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "OBJECT", "properties": {"a": {"type": "INTEGER"}}}}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
        "generationConfig": {"maxOutputTokens": 10, "temperature": 0.2, "stopSequences": ["x"], "responseMimeType": "application/json",
                             "responseSchema": {"type": "OBJECT"}, "thinkingConfig": {"thinkingBudget": 128, "includeThoughts": True}}}))


def openai():
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    def chunk(delta, finish=None, **extra):
        return (None, {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra})
    text = [chunk({"role": "assistant", "content": ""}), chunk({"content": "Hel"}), chunk({"content": "lo"}),
            chunk({}, "stop"), (None, {**base, "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}),
            (None, "[DONE]")]
    tools = [chunk({"role": "assistant", "tool_calls": [{"index": 0, "id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}}]}),
             chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\":"}}]}),
             chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
             chunk({"reasoning_content": "hm"}), chunk({}, "tool_calls"), (None, "[DONE]")]
    error = [chunk({"content": "Hi"}), (None, {"error": {"message": "overloaded", "type": "server_error"}})]
    for stream in (text, tools, error):
        chunked("stream_openai", sse(stream))
    complete = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello", "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
                    "finish_reason": "tool_calls"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}
    put("complete_openai", json.dumps(complete))
    put("complete_openai", json.dumps({"error": {"message": "bad", "type": "invalid_request_error"}}))
    put("complete_openai", sse(text))


def anthropic():
    msg = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [],
           "stop_reason": None, "usage": {"input_tokens": 3, "output_tokens": 1}}
    stream = [("message_start", {"type": "message_start", "message": msg}),
              ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
              ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hm"}}),
              ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig"}}),
              ("content_block_stop", {"type": "content_block_stop", "index": 0}),
              ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
              ("ping", {"type": "ping"}),
              ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hello"}}),
              ("content_block_stop", {"type": "content_block_stop", "index": 1}),
              ("content_block_start", {"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "t1", "name": "f", "input": {}}}),
              ("content_block_delta", {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"a\":1}"}}),
              ("content_block_stop", {"type": "content_block_stop", "index": 2}),
              ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 9}}),
              ("message_stop", {"type": "message_stop"})]
    error = stream[:3] + [("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})]
    chunked("stream_anthropic", sse(stream))
    chunked("stream_anthropic", sse(error))
    complete = {**msg, "content": [{"type": "thinking", "thinking": "hm", "signature": "s"}, {"type": "text", "text": "Hello"},
                                   {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}],
                "stop_reason": "tool_use", "usage": {"input_tokens": 3, "output_tokens": 9}}
    put("complete_anthropic", json.dumps(complete))
    put("complete_anthropic", json.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}))


def responses():
    head = {"id": "resp_1", "object": "response", "created_at": 1, "model": "m", "status": "in_progress", "output": []}
    done = {**head, "status": "completed", "output": [
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "hm"}]},
        {"type": "message", "id": "msg_1", "role": "assistant", "content": [{"type": "output_text", "text": "Hello", "annotations": []}]},
        {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "f", "arguments": "{\"a\":1}"}],
        "usage": {"input_tokens": 3, "output_tokens": 9, "total_tokens": 12}}
    def ev(kind, **body):
        return (kind, {"type": kind, **body})
    stream = [ev("response.created", sequence_number=0, response=head),
              ev("response.in_progress", response=head),
              ev("response.output_item.added", output_index=0, item={"type": "reasoning", "id": "rs_1", "summary": []}),
              ev("response.reasoning_summary_text.delta", output_index=0, delta="hm"),
              ev("response.output_item.added", output_index=1, item={"type": "message", "id": "msg_1", "role": "assistant", "content": []}),
              ev("response.output_text.delta", output_index=1, content_index=0, delta="Hel"),
              ev("response.output_text.delta", output_index=1, content_index=0, delta="lo"),
              ev("response.output_text.done", output_index=1, content_index=0, text="Hello"),
              ev("response.output_item.added", output_index=2, item={"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "f", "arguments": ""}),
              ev("response.function_call_arguments.delta", output_index=2, delta="{\"a\":1}"),
              ev("response.completed", response=done)]
    failed = stream[:3] + [ev("response.failed", response={**head, "status": "failed", "error": {"code": "server_error", "message": "boom"}})]
    incomplete = stream[:7] + [ev("response.incomplete", response={**head, "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}})]
    error = stream[:2] + [ev("error", code="rate_limit_exceeded", message="slow down")]
    for s in (stream, failed, incomplete, error):
        chunked("stream_responses", sse(s))
    put("complete_responses", json.dumps(done))
    put("complete_responses", json.dumps({**done, "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}))
    put("complete_responses", json.dumps({"error": {"message": "bad", "type": "invalid_request_error", "code": None}}))


def gemini():
    def part(parts, finish=None, usage=None):
        candidate = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        body = {"candidates": [candidate], "responseId": "r1", "modelVersion": "gemini-2.5-pro"}
        if usage:
            body["usageMetadata"] = usage
        return (None, body)
    usage = {"promptTokenCount": 3, "candidatesTokenCount": 2, "thoughtsTokenCount": 4, "totalTokenCount": 9}
    stream = [part([{"text": "Weighing it up.", "thought": True}]), part([{"text": "Hel"}]), part([{"text": "lo"}]),
              part([{"functionCall": {"name": "f", "args": {"a": 1}}}]), part([{"text": ""}], "STOP", usage)]
    blocked = [(None, {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": usage})]
    error = stream[:1] + [(None, {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED",
                                            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}]}})]
    for s in (stream, blocked, error):
        chunked("stream_gemini", sse(s))
    put("complete_gemini", json.dumps({**part([{"text": "hm", "thought": True}, {"text": "Hello"},
                                               {"functionCall": {"name": "f", "args": {"a": 1}}}], "STOP", usage)[1]}))
    put("complete_gemini", json.dumps([part([{"text": "Hel"}])[1], part([{"text": "lo"}], "MAX_TOKENS", usage)[1]]))
    put("complete_gemini", json.dumps(blocked[0][1]))


def converse():
    """Bedrock's Converse API: each event named by its `:event-type`, as
    `provider/cloud/eventstream.rs` hands its frames on."""
    usage = {"usage": {"inputTokens": 3, "outputTokens": 5, "totalTokens": 8}, "metrics": {"latencyMs": 1}}
    stream = [("messageStart", {"role": "assistant"}),
              ("contentBlockDelta", {"delta": {"reasoningContent": {"text": "hm"}}, "contentBlockIndex": 0}),
              ("contentBlockDelta", {"delta": {"reasoningContent": {"signature": "s"}}, "contentBlockIndex": 0}),
              ("contentBlockStop", {"contentBlockIndex": 0}),
              ("contentBlockDelta", {"delta": {"text": "Hel"}, "contentBlockIndex": 1}),
              ("contentBlockDelta", {"delta": {"text": "lo"}, "contentBlockIndex": 1}),
              ("contentBlockStop", {"contentBlockIndex": 1}),
              ("contentBlockStart", {"start": {"toolUse": {"toolUseId": "t1", "name": "f"}}, "contentBlockIndex": 2}),
              ("contentBlockDelta", {"delta": {"toolUse": {"input": "{\"a\":"}}, "contentBlockIndex": 2}),
              ("contentBlockDelta", {"delta": {"toolUse": {"input": "1}"}}, "contentBlockIndex": 2}),
              ("contentBlockStop", {"contentBlockIndex": 2}),
              ("messageStop", {"stopReason": "tool_use"}),
              ("metadata", usage)]
    filtered = stream[:1] + [("messageStop", {"stopReason": "guardrail_intervened"}), ("metadata", usage)]
    for s in (stream, filtered):
        chunked("stream_converse", sse(s))
    put("complete_converse", json.dumps({"output": {"message": {"role": "assistant", "content": [
        {"reasoningContent": {"reasoningText": {"text": "hm", "signature": "s"}}}, {"text": "Hello"},
        {"toolUse": {"toolUseId": "t1", "name": "f", "input": {"a": 1}}}]}},
        "stopReason": "tool_use", **usage}))
    put("complete_converse", json.dumps({"output": {"message": {"role": "assistant", "content": [{"text": "Hi"}]}},
                                         "stopReason": "max_tokens", **usage}))
    put("complete_converse", json.dumps({"message": "Too many tokens"}))


def streams_for_sse():
    for target in ("stream_openai", "stream_anthropic", "stream_responses", "stream_gemini"):
        for path in sorted(glob.glob(os.path.join(ROOT, target, "*")))[:3]:
            with open(path, "rb") as f:
                put("sse", f.read())
    put("sse", b"\x00: keep-alive\r\n\r\nevent: a\rdata: x\r\ndata:y\nid: 1\nretry: 5\n\ndata\n\n")
    put("sse", b"\x02\x00\x01data: \xe2\x82\xac \xff split\r\n\r\n")


def configs():
    with open("bulwark.example.yaml", "rb") as f:
        put("config", f.read())
    with open("README.md") as f:
        blocks = f.read().split("```yaml\n")[1:]
    for block in blocks:
        text = block.split("```", 1)[0]
        if "providers:" in text and len(text) <= MAX_SEED:
            put("config", text)
    # The gateway's own keys, as its unit tests write them.
    base = "providers:\n  a: { kind: openai }\nroutes:\n  r: { targets: [a/x] }\n"
    put("config", "listen: 127.0.0.1:${PORT}\nmax_request_bytes: ${MAX}\n" + base + "health: { window: 1.5m }\n")
    put("config", base + "keys:\n  team: { key: team-key-0123456789, routes: [r, a/y] }\nmetrics_key: scrape-secret-0123456789\n")
    put("config", "listen: nowhere\nlisen: x\nproviders:\n  a: { kind: anthropc }\nroutes:\n  r: { targets: [x/y] }\n"
                  "keys:\n  k: { key: short }\notel: { sample_ratio: 2 }\n")
    put("config", "anchors: &p { kind: openai }\nproviders:\n  a: *p\n  b: { <<: *p, base_url: 'http://h/v1' }\n"
                  "routes:\n  r:\n    targets: [a/x, b/y]\n    attempt_timeout: 2s\nshutdown_grace: 5s\nretention: 7d\n")


if __name__ == "__main__":
    requests()
    openai()
    anthropic()
    responses()
    gemini()
    converse()
    streams_for_sse()
    configs()
