// The Vercel AI SDK's default OpenAI provider, `openai(model)`, which speaks
// the Responses API (`POST /v1/responses`), against bulwark serve + bulwark
// sim: generateText, streamText and a tool round trip (generated and
// streamed) on a same-format route (an OpenAI target), a cross-format route
// (an Anthropic target) and a failover route whose first target answers 529.
// The SDK validates every answer and event with its zod schemas, so a
// missing or mistyped field fails here.

import assert from "node:assert/strict";
import { test } from "node:test";

import { assertFailoverInSimLog, requireClientPackage, routeCases, simAnswerPrefix, startStack } from "./harness.mjs";

const PROMPT = "Say hello to the gateway test";

// Every URL the SDK called, to check it spoke the Responses API only.
const called = [];

async function responsesModel(gatewayUrl, route) {
  const { createOpenAI } = await requireClientPackage("@ai-sdk/openai");
  const recording = (url, init) => {
    called.push(String(url));
    return fetch(url, init);
  };
  // Calling the provider itself (not `.chat`) picks the Responses API.
  return createOpenAI({ baseURL: `${gatewayUrl}/v1`, apiKey: "sk-test-not-a-real-key", fetch: recording })(route);
}

function assertSpokeResponses() {
  assert.ok(called.length > 0, "the SDK made no request");
  for (const url of called.splice(0)) {
    assert.ok(new URL(url).pathname === "/v1/responses", `the SDK called ${url}, not /v1/responses`);
  }
}

function assertTargetHeaders(headers, c) {
  const target = headers?.["x-bulwark-target"];
  assert.ok(target?.endsWith(`/${c.model}`), `x-bulwark-target is ${target}, expected */${c.model}; headers: ${JSON.stringify(headers)}`);
  if (c.fallback) {
    assert.equal(headers["x-bulwark-fallback"], "true", `expected x-bulwark-fallback: true; headers: ${JSON.stringify(headers)}`);
  }
}

async function weatherTool(calls, marker) {
  const { jsonSchema, tool } = await requireClientPackage("ai");
  return tool({
    description: "The weather in a city",
    inputSchema: jsonSchema({ type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false }),
    execute: async (input) => {
      calls.push(input);
      return `${marker}: sunny in ${input.city}`;
    },
  });
}

for (const c of routeCases("openai")) {
  test(`ai-sdk openai(model) responses generateText, ${c.kind} (route ${c.route})`, async () => {
    const { generateText } = await requireClientPackage("ai");
    const stack = await startStack();
    try {
      const result = await generateText({ model: await responsesModel(stack.gatewayUrl, c.route), prompt: PROMPT, maxRetries: 0 });
      assert.ok(result.text.startsWith(simAnswerPrefix(c.model)), `expected an answer from ${c.model}, got ${JSON.stringify(result.text)}`);
      assert.equal(result.finishReason, "stop");
      assert.ok(result.usage.inputTokens > 0 && result.usage.outputTokens > 0, `usage: ${JSON.stringify(result.usage)}`);
      assertTargetHeaders(result.response.headers, c);
      assert.ok(result.response.id.startsWith("resp_"), `response id ${result.response.id}`);
      if (c.fallback) assertFailoverInSimLog(await stack.simRequests(), c.model);
      assertSpokeResponses();
    } finally {
      stack.stop();
    }
  });

  test(`ai-sdk openai(model) responses streamText, ${c.kind} (route ${c.route})`, async () => {
    const { streamText } = await requireClientPackage("ai");
    const stack = await startStack();
    try {
      const errors = [];
      const result = streamText({
        model: await responsesModel(stack.gatewayUrl, c.route),
        prompt: PROMPT,
        maxRetries: 0,
        onError: ({ error }) => errors.push(error),
      });
      let text = "";
      for await (const delta of result.textStream) text += delta;
      assert.deepEqual(errors.map(String), [], "the stream reported errors");
      assert.ok(text.startsWith(simAnswerPrefix(c.model)), `expected an answer from ${c.model}, got ${JSON.stringify(text)}`);
      assert.equal(await result.finishReason, "stop");
      const usage = await result.usage;
      assert.ok(usage.inputTokens > 0 && usage.outputTokens > 0, `usage: ${JSON.stringify(usage)}`);
      assertTargetHeaders((await result.response).headers, c);
      if (c.fallback) assertFailoverInSimLog(await stack.simRequests(), c.model);
      assertSpokeResponses();
    } finally {
      stack.stop();
    }
  });

  for (const streamed of [false, true]) {
    test(`ai-sdk openai(model) responses tool round trip (${streamed ? "streamText" : "generateText"}), ${c.kind} (route ${c.route})`, async () => {
      const { generateText, streamText, stepCountIs } = await requireClientPackage("ai");
      const stack = await startStack();
      try {
        const marker = "forecast-marker-7730";
        const calls = [];
        const options = {
          model: await responsesModel(stack.gatewayUrl, c.route),
          prompt: 'sim:call weather {"city": "Paris"}',
          tools: { weather: await weatherTool(calls, marker) },
          stopWhen: stepCountIs(3),
          maxRetries: 0,
        };
        let text;
        if (streamed) {
          const errors = [];
          const result = streamText({ ...options, onError: ({ error }) => errors.push(error) });
          text = "";
          for await (const delta of result.textStream) text += delta;
          assert.deepEqual(errors.map(String), [], "the stream reported errors");
        } else {
          text = (await generateText(options)).text;
        }
        assert.deepEqual(calls, [{ city: "Paris" }], "the tool was not called once with the prompt's arguments");
        assert.ok(text.includes(marker), `expected the final answer to quote the tool result (${marker}), got ${JSON.stringify(text)}`);
        assert.ok(text.startsWith(simAnswerPrefix(c.model)), `expected an answer from ${c.model}, got ${JSON.stringify(text)}`);
        if (c.fallback) assertFailoverInSimLog(await stack.simRequests(), c.model);
        assertSpokeResponses();
      } finally {
        stack.stop();
      }
    });
  }
}
