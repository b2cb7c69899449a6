// Captures what real clients send: runs each client of tests/clients against
// a recording proxy in front of `bulwark sim`, and writes every request it
// receives to tests/corpus/<client>/<name>.json as
// {method, path, query, headers, body}, credentials removed.
// crates/bulwark-gateway/tests/corpus.rs replays the corpus through the gateway.
//
//   cd tests/clients && BULWARK_BIN=<target>/debug/bulwark node capture.mjs
//
// CAPTURE_ONLY=claude-code,ai-sdk,python (any of them) captures only those
// groups, leaving the rest of the corpus as it is.
//
// The proxy forwards every request to the sim unchanged and relays its
// answer, with one exception: an Anthropic request whose last user text says
// `sim:call <Tool> {json}` and that carries no tool result yet is answered by
// the proxy itself with that tool call (as Anthropic SSE or JSON), so that
// Claude Code runs the tool and sends its result back, and that second, real
// request is captured too. (The sim is learning the same rule; until then
// the proxy plays it.) Only answers are scripted; every captured request is
// what the client sent.

import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";

import { claudeBinary, CLIENTS_DIR, requireClientPackage, ROOT } from "./harness.mjs";

const CORPUS = path.join(ROOT, "tests/corpus");
const BULWARK_BIN = process.env.BULWARK_BIN ?? path.join(ROOT, "target/debug/bulwark");
// Credentials never enter the corpus; nor does `host`, which only names the
// proxy's random port.
const DROPPED_HEADERS = new Set(["authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie", "host"]);
const ANTHROPIC_MODEL = "claude-sonnet-4-5";
const OPENAI_MODEL = "gpt-4o-mini";
// A gateway route name, as users configure Claude Code's model with Bulwark.
const ROUTE_MODEL = "bulwark-route";

const ONLY = process.env.CAPTURE_ONLY ? new Set(process.env.CAPTURE_ONLY.split(",")) : null;
const wanted = (group) => !ONLY || ONLY.has(group);

let label = null; // { client, name }: where the next requests are filed
let captured = []; // requests of the current label

function startSim() {
  return new Promise((resolve, reject) => {
    const child = spawn(BULWARK_BIN, ["sim", "--listen", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.on("error", reject);
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/bulwark-sim listening on (http:\/\/\S+)/);
      if (m) resolve({ child, url: m[1].replace(/\/$/, "") });
    });
  });
}

function lastUserText(body) {
  const msgs = Array.isArray(body?.messages) ? body.messages : [];
  // Claude Code may end with a mid-conversation `system` message after the
  // user's turn, so the last *user* message is the one that counts.
  const last = msgs.findLast((m) => m.role === "user");
  if (!last) return { text: "", hasToolResult: false };
  const blocks = typeof last.content === "string" ? [{ type: "text", text: last.content }] : (last.content ?? []);
  return {
    text: blocks.filter((b) => b.type === "text").map((b) => b.text).join("\n"),
    hasToolResult: blocks.some((b) => b.type === "tool_result"),
  };
}

// The scripted Anthropic tool call for `sim:call <Tool> {json}`, or null.
function scriptedToolCall(req, body) {
  if (req.method !== "POST" || !req.url.startsWith("/v1/messages") || req.url.startsWith("/v1/messages/")) return null;
  const { text, hasToolResult } = lastUserText(body);
  const m = text.match(/sim:call (\w+)[ \t]*(\{.*\})?/);
  if (!m || hasToolResult) return null;
  return { name: m[1], input: m[2] ? JSON.parse(m[2]) : {} };
}

// Anthropic starts a thinking request's answer with a thinking block, which
// the client sends back in the tool loop (Anthropic refuses it otherwise).
const CAPTURE_THINKING = { type: "thinking", thinking: "Calling the tool.", signature: "sig_capture_01" };

function answerToolCall(res, body, call) {
  const id = "toolu_capture_01";
  const msgId = "msg_capture_01";
  const usage = { input_tokens: 1, output_tokens: 1 };
  const thinks = ["enabled", "adaptive"].includes(body?.thinking?.type);
  if (!body.stream) {
    res.writeHead(200, { "content-type": "application/json" });
    const content = [{ type: "tool_use", id, name: call.name, input: call.input }];
    if (thinks) content.unshift(CAPTURE_THINKING);
    res.end(JSON.stringify({
      id: msgId, type: "message", role: "assistant", model: body.model,
      content,
      stop_reason: "tool_use", stop_sequence: null, usage,
    }));
    return;
  }
  res.writeHead(200, { "content-type": "text/event-stream" });
  const send = (event, data) => res.write(`event: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`);
  send("message_start", { message: { id: msgId, type: "message", role: "assistant", model: body.model, content: [], stop_reason: null, stop_sequence: null, usage } });
  const index = thinks ? 1 : 0;
  if (thinks) {
    send("content_block_start", { index: 0, content_block: { type: "thinking", thinking: "", signature: "" } });
    send("content_block_delta", { index: 0, delta: { type: "thinking_delta", thinking: CAPTURE_THINKING.thinking } });
    send("content_block_delta", { index: 0, delta: { type: "signature_delta", signature: CAPTURE_THINKING.signature } });
    send("content_block_stop", { index: 0 });
  }
  send("content_block_start", { index, content_block: { type: "tool_use", id, name: call.name, input: {} } });
  send("content_block_delta", { index, delta: { type: "input_json_delta", partial_json: JSON.stringify(call.input) } });
  send("content_block_stop", { index });
  send("message_delta", { delta: { stop_reason: "tool_use", stop_sequence: null }, usage: { output_tokens: 1 } });
  send("message_stop", {});
  res.end();
}

function startProxy(simUrl) {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const raw = Buffer.concat(chunks);
      const url = new URL(req.url, "http://proxy");
      if (url.pathname === "/_capture/label") {
        label = JSON.parse(raw.toString("utf8"));
        res.writeHead(204).end();
        return;
      }
      let body = raw.toString("utf8");
      try {
        body = JSON.parse(body);
      } catch {
        // Not JSON: kept as text.
      }
      const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => !DROPPED_HEADERS.has(k)));
      const query = Object.fromEntries(url.searchParams);
      captured.push({ label, entry: { method: req.method, path: url.pathname, query, headers, body: raw.length ? body : null } });
      console.error(`  captured ${req.method} ${req.url}`);

      const call = typeof body === "object" ? scriptedToolCall(req, body) : null;
      if (call) {
        answerToolCall(res, body, call);
        return;
      }
      try {
        const fwdHeaders = { ...req.headers };
        delete fwdHeaders.host;
        delete fwdHeaders["content-length"];
        const upstream = await fetch(simUrl + req.url, { method: req.method, headers: fwdHeaders, body: raw.length ? raw : undefined });
        const outHeaders = {};
        upstream.headers.forEach((v, k) => {
          if (k !== "content-length" && k !== "content-encoding" && k !== "transfer-encoding") outHeaders[k] = v;
        });
        res.writeHead(upstream.status, outHeaders);
        if (upstream.body) for await (const chunk of upstream.body) res.write(chunk);
        res.end();
      } catch (e) {
        res.writeHead(502, { "content-type": "text/plain" }).end(String(e));
      }
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ server, url: `http://127.0.0.1:${server.address().port}` })));
}

// Files the captured requests, by the label each arrived under; a label
// with several requests gets numbered files.
function flush(expected) {
  const groups = new Map();
  for (const c of captured) {
    if (!c.label) continue;
    const key = `${c.label.client}/${c.label.name}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(c.entry);
  }
  captured = [];
  if (expected && !groups.has(`${expected.client}/${expected.name}`) && groups.size === 0) {
    console.error(`  WARNING: ${expected.client}/${expected.name} sent nothing`);
  }
  for (const [key, entries] of groups) {
    const [client, name] = key.split("/");
    const dir = path.join(CORPUS, client);
    mkdirSync(dir, { recursive: true });
    entries.forEach((entry, i) => {
      const file = entries.length === 1 ? name : `${name}-${i + 1}`;
      writeFileSync(path.join(dir, `${file}.json`), `${JSON.stringify(entry, null, 2)}\n`);
      console.error(`  wrote tests/corpus/${client}/${file}.json`);
    });
  }
}

async function scenario(client, name, run) {
  console.error(`==> ${client}/${name}`);
  label = { client, name };
  captured = [];
  try {
    await run();
  } catch (e) {
    // An error answer is fine here: what the client sent is what is wanted.
    console.error(`  (client reported: ${String(e.message ?? e).split("\n")[0]})`);
  }
  flush({ client, name });
  label = null;
}

function runProcess(cmd, args, options) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => process.stderr.write(d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, out }));
  });
}

async function claude(proxyUrl, prompt, extraArgs, files = {}, model = ANTHROPIC_MODEL) {
  const base = mkdtempSync(path.join(tmpdir(), "bulwark-capture-claude-"));
  const home = path.join(base, "home");
  const cwd = path.join(base, "project");
  mkdirSync(home);
  mkdirSync(cwd);
  for (const [f, content] of Object.entries(files)) writeFileSync(path.join(cwd, f), content);
  const realPrompt = prompt.replaceAll("$CWD", cwd);
  try {
    const r = await runProcess(claudeBinary(), ["-p", realPrompt, ...extraArgs], {
      cwd,
      env: {
        PATH: process.env.PATH, LANG: "C.UTF-8", HOME: home, TMPDIR: process.env.TMPDIR ?? "/tmp",
        ANTHROPIC_BASE_URL: proxyUrl, ANTHROPIC_API_KEY: "sk-ant-capture-not-a-real-key",
        ANTHROPIC_MODEL: model, ANTHROPIC_SMALL_FAST_MODEL: model, ANTHROPIC_DEFAULT_HAIKU_MODEL: model,
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1", DISABLE_TELEMETRY: "1", DISABLE_AUTOUPDATER: "1",
      },
    });
    console.error(`  claude exit ${r.code}: ${r.out.slice(0, 300).replaceAll("\n", " ")}`);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

async function main() {
  const sim = await startSim();
  const proxy = await startProxy(sim.url);
  console.error(`sim ${sim.url}, recording proxy ${proxy.url}`);
  try {
    // Claude Code: the paths in the file names are private temp dirs, so
    // the corpus holds them as the client sent them.
    if (wanted("claude-code")) {
      await scenario("claude-code", "print-json", () => claude(proxy.url, "Say hello to the gateway test", ["--output-format", "json"]));
      await scenario("claude-code", "print-stream-json", () => claude(proxy.url, "Say hello to the gateway test", ["--output-format", "stream-json", "--verbose"]));
      await scenario("claude-code", "tool-read", () =>
        claude(proxy.url, 'sim:call Read {"file_path": "$CWD/notes.txt"}', ["--output-format", "json", "--allowedTools=Read"], { "notes.txt": "bulwark-notes-marker-4217\n" }),
      );

      // Claude Code sends a different request for a model name it does not
      // know, which is what a gateway route name is: a mid-conversation
      // message with role `system`, and other betas.
      await scenario("claude-code", "route-model-print-json", () =>
        claude(proxy.url, "Say hello to the gateway test", ["--output-format", "json"], {}, ROUTE_MODEL),
      );
      await scenario("claude-code", "route-model-tool-read", () =>
        claude(proxy.url, 'sim:call Read {"file_path": "$CWD/notes.txt"}', ["--output-format", "json", "--allowedTools=Read"], { "notes.txt": "bulwark-notes-marker-4217\n" }, ROUTE_MODEL),
      );
    }

    // The Vercel AI SDK.
    if (wanted("ai-sdk")) {
      const { generateText, streamText, tool, jsonSchema } = await requireClientPackage("ai");
      const { createOpenAI } = await requireClientPackage("@ai-sdk/openai");
      const { createAnthropic } = await requireClientPackage("@ai-sdk/anthropic");
      const oai = createOpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "sk-capture-not-a-real-key" });
      const ant = createAnthropic({ baseURL: `${proxy.url}/v1`, apiKey: "sk-ant-capture-not-a-real-key" });
      const weather = tool({
        description: "The weather in a city",
        inputSchema: jsonSchema({ type: "object", properties: { city: { type: "string" } }, required: ["city"] }),
      });
      const models = [
        ["openai-chat", () => oai.chat(OPENAI_MODEL)],
        // The default provider speaks the Responses API. The sim does not, so
        // only the first request of each scenario is sent (and captured).
        ["openai-responses", () => oai(OPENAI_MODEL)],
        ["anthropic", () => ant(ANTHROPIC_MODEL)],
      ];
      for (const [p, model] of models) {
        await scenario("ai-sdk", `${p}-generate-text`, () => generateText({ model: model(), system: "Be terse.", prompt: "Say hello to the gateway test", maxRetries: 0 }));
        await scenario("ai-sdk", `${p}-stream-text`, async () => {
          const r = streamText({ model: model(), prompt: "Say hello to the gateway test", maxRetries: 0, onError: () => {} });
          for await (const _ of r.textStream);
        });
        await scenario("ai-sdk", `${p}-generate-text-tools`, () =>
          generateText({ model: model(), prompt: "What is the weather in Paris?", tools: { weather }, toolChoice: "auto", maxRetries: 0, temperature: 0.2, maxOutputTokens: 300 }),
        );
      }
    }

    // LangChain, google-genai and the official Python SDKs' helpers.
    if (wanted("python")) await scenario("python", "driver", async () => {
      const python = path.join(ROOT, ".venv/bin/python");
      const r = await runProcess(python, [path.join(CLIENTS_DIR, "capture_python.py"), proxy.url], { cwd: ROOT, env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" } });
      if (r.code !== 0) throw new Error(`capture_python.py exited ${r.code}`);
    });
  } finally {
    proxy.server.close();
    sim.child.kill("SIGTERM");
  }
  for (const client of readdirSync(CORPUS)) console.error(`${client}: ${readdirSync(path.join(CORPUS, client)).length} requests`);
}

await main();
