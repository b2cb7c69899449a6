// The Vercel AI SDK (`ai` with `@ai-sdk/openai` over Chat Completions and
// `@ai-sdk/anthropic`) against bulwark serve + bulwark sim: generateText and
// streamText on a same-format, a cross-format and a failover route.
//
// `createOpenAI(...).chat(model)` is used on purpose: the default
// `openai(model)` speaks the Responses API, tested in
// ai_sdk_responses.test.mjs.

import assert from "node:assert/strict";
import { test } from "node:test";

import { assertFailoverInSimLog, requireClientPackage, routeCases, simAnswerPrefix, startStack } from "./harness.mjs";

const PROMPT = "Say hello to the gateway test";

const PROVIDERS = [
  {
    name: "openai-chat",
    format: "openai",
    async model(gatewayUrl, route) {
      const { createOpenAI } = await requireClientPackage("@ai-sdk/openai");
      return createOpenAI({ baseURL: `${gatewayUrl}/v1`, apiKey: "sk-test-not-a-real-key" }).chat(route);
    },
  },
  {
    name: "anthropic",
    format: "anthropic",
    async model(gatewayUrl, route) {
      const { createAnthropic } = await requireClientPackage("@ai-sdk/anthropic");
      return createAnthropic({ baseURL: `${gatewayUrl}/v1`, apiKey: "sk-ant-test-not-a-real-key" })(route);
    },
  },
];

// Checks Bulwark's answer headers say which target served, and whether it
// was a fallback.
function assertTargetHeaders(headers, c) {
  const target = headers?.["x-bulwark-target"];
  assert.ok(target?.endsWith(`/${c.model}`), `x-bulwark-target is ${target}, expected */${c.model}; headers: ${JSON.stringify(headers)}`);
  if (c.fallback) {
    assert.equal(headers["x-bulwark-fallback"], "true", `expected x-bulwark-fallback: true; headers: ${JSON.stringify(headers)}`);
  }
}

for (const p of PROVIDERS) {
  for (const c of routeCases(p.format)) {
    test(`ai-sdk ${p.name} generateText, ${c.kind} (route ${c.route})`, async () => {
      const { generateText } = await requireClientPackage("ai");
      const stack = await startStack();
      try {
        const result = await generateText({ model: await p.model(stack.gatewayUrl, c.route), prompt: PROMPT, maxRetries: 0 });
        assert.ok(result.text.startsWith(simAnswerPrefix(c.model)), `expected an answer from ${c.model}, got ${JSON.stringify(result.text)}`);
        assertTargetHeaders(result.response.headers, c);
        if (c.fallback) assertFailoverInSimLog(await stack.simRequests(), c.model);
      } finally {
        stack.stop();
      }
    });

    test(`ai-sdk ${p.name} streamText, ${c.kind} (route ${c.route})`, async () => {
      const { streamText } = await requireClientPackage("ai");
      const stack = await startStack();
      try {
        const errors = [];
        const result = streamText({
          model: await p.model(stack.gatewayUrl, c.route),
          prompt: PROMPT,
          maxRetries: 0,
          onError: ({ error }) => errors.push(error),
        });
        let text = "";
        for await (const delta of result.textStream) text += delta;
        assert.deepEqual(errors.map(String), [], "the stream reported errors");
        assert.ok(text.startsWith(simAnswerPrefix(c.model)), `expected an answer from ${c.model}, got ${JSON.stringify(text)}`);
        assertTargetHeaders((await result.response).headers, c);
        if (c.fallback) assertFailoverInSimLog(await stack.simRequests(), c.model);
      } finally {
        stack.stop();
      }
    });
  }
}

// A tool round trip: the sim calls the tool named after `sim:call` with the
// given arguments, the SDK runs it and sends its result back, and the sim's
// final answer quotes that result.
for (const p of PROVIDERS) {
  for (const c of routeCases(p.format)) {
    test(`ai-sdk ${p.name} tool round trip, ${c.kind} (route ${c.route})`, async () => {
      const { generateText, jsonSchema, stepCountIs, tool } = await requireClientPackage("ai");
      const stack = await startStack();
      try {
        const marker = "forecast-marker-5581";
        const calls = [];
        const weather = tool({
          description: "The weather in a city",
          inputSchema: jsonSchema({ type: "object", properties: { city: { type: "string" } }, required: ["city"] }),
          execute: async (input) => {
            calls.push(input);
            return `${marker}: sunny in ${input.city}`;
          },
        });
        const result = await generateText({
          model: await p.model(stack.gatewayUrl, c.route),
          prompt: 'sim:call weather {"city": "Paris"}',
          tools: { weather },
          stopWhen: stepCountIs(3),
          maxRetries: 0,
        });
        assert.deepEqual(calls, [{ city: "Paris" }], "the tool was not called once with the prompt's arguments");
        assert.ok(result.text.includes(marker), `expected the final answer to quote the tool result (${marker}), got ${JSON.stringify(result.text)}`);
        assert.ok(result.text.startsWith(simAnswerPrefix(c.model)), `expected an answer from ${c.model}, got ${JSON.stringify(result.text)}`);
        if (c.fallback) assertFailoverInSimLog(await stack.simRequests(), c.model);
      } finally {
        stack.stop();
      }
    });
  }
}
