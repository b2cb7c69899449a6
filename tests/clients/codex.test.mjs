// Codex CLI (the real binary, `codex exec`) against bulwark serve + bulwark sim.
//
// Codex speaks only the OpenAI Responses API (`wire_api = "responses"`): each
// test gives it a private CODEX_HOME whose config names Bulwark as its model
// provider and a route as its model, and checks the answer came from the
// sim through the route's expected target. Codex prints `ERROR: ...` and may
// still exit 0 when the gateway refuses it, so the checks read the final
// message it writes with `--output-last-message`, not only its exit status.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";

import { CLIENTS_DIR, assertFailoverInSimLog, routeCases, simAnswerPrefix, startStack } from "./harness.mjs";

// A guard against a hung client, not an assertion on speed.
const CODEX_KILL_AFTER_MS = 240_000;

// The Codex CLI's launcher, installed by scripts/clients-env.sh; it starts
// the platform's native binary from its optional dependency.
function codexBinary() {
  const bin = path.join(CLIENTS_DIR, "node_modules/@openai/codex/bin/codex.js");
  if (!existsSync(bin)) {
    throw new Error(`Codex CLI is not installed (no ${bin}): run \`scripts/clients-env.sh\` to install the client environment`);
  }
  return bin;
}

// Codex's configuration: Bulwark as a Responses API provider. Codex's own
// retries are off, so what is tested is the gateway's failover.
function codexConfig(gatewayUrl, route) {
  return `model = "${route}"
model_provider = "bulwark"
approval_policy = "never"

[model_providers.bulwark]
name = "Bulwark"
base_url = "${gatewayUrl}/v1"
env_key = "BULWARK_TEST_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
`;
}

// A private CODEX_HOME, HOME and working directory for one run, so no user
// settings, credentials or sessions leak in.
function privateDirs(gatewayUrl, route) {
  const base = mkdtempSync(path.join(tmpdir(), "bulwark-codex-"));
  const dirs = {
    base,
    home: path.join(base, "home"),
    codexHome: path.join(base, "codex-home"),
    cwd: path.join(base, "project"),
    lastMessage: path.join(base, "last-message.txt"),
  };
  for (const d of [dirs.home, dirs.codexHome, dirs.cwd]) mkdirSync(d);
  writeFileSync(path.join(dirs.codexHome, "config.toml"), codexConfig(gatewayUrl, route));
  return dirs;
}

// Runs one `codex exec` turn; resolves with its exit code, output and the
// final message it wrote.
function runCodex(dirs, prompt) {
  const env = {
    PATH: process.env.PATH,
    LANG: "C.UTF-8",
    HOME: dirs.home,
    CODEX_HOME: dirs.codexHome,
    TMPDIR: process.env.TMPDIR ?? "/tmp",
    BULWARK_TEST_KEY: "sk-test-not-a-real-key",
  };
  // The sandbox needs user namespaces, which a CI container may not give;
  // the only command the tests let the model run is a read of a file the
  // test wrote in a private directory.
  const args = [
    codexBinary(),
    "exec",
    "--skip-git-repo-check",
    "--dangerously-bypass-approvals-and-sandbox",
    "--output-last-message",
    dirs.lastMessage,
    prompt,
  ];
  console.error(`# codex ${args.slice(1).map((a) => JSON.stringify(a)).join(" ")}`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: dirs.cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), CODEX_KILL_AFTER_MS);
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const last = existsSync(dirs.lastMessage) ? readFileSync(dirs.lastMessage, "utf8") : "";
      resolve({ code, signal, stdout, stderr, last });
    });
  });
}

// The final message, or a failure that shows what Codex printed instead.
function finalMessage(run) {
  const shown = `exit ${run.code}${run.signal ? ` (${run.signal})` : ""}\n--- last message ---\n${run.last}\n--- stdout (end) ---\n${run.stdout.slice(-1500)}\n--- stderr (end) ---\n${run.stderr.slice(-4000)}`;
  assert.equal(run.code, 0, `codex exec failed: ${shown}`);
  assert.doesNotMatch(`${run.stdout}\n${run.stderr}`, /^ERROR:/m, shown);
  return { last: run.last, shown };
}

for (const c of routeCases("openai")) {
  test(`codex exec answers through the gateway, ${c.kind} (route ${c.route})`, async () => {
    const stack = await startStack();
    const dirs = privateDirs(stack.gatewayUrl, c.route);
    try {
      const run = await runCodex(dirs, "Say hello to the gateway test");
      const { last, shown } = finalMessage(run);
      assert.ok(last.includes(simAnswerPrefix(c.model)), `expected an answer from ${c.model}: ${shown}`);
      const requests = await stack.simRequests();
      // Codex's request is long (its instructions and tools): the target
      // got it whole, not a stub of it.
      assert.ok(
        requests.some((r) => r.model === c.model && JSON.stringify(r.body ?? {}).includes("Say hello to the gateway test")),
        `the sim never received the prompt for ${c.model}`,
      );
      if (c.fallback) assertFailoverInSimLog(requests, c.model);
    } finally {
      stack.stop();
      rmSync(dirs.base, { recursive: true, force: true });
    }
  });
}

for (const c of routeCases("openai")) {
  test(`codex exec runs a shell tool round trip, ${c.kind} (route ${c.route})`, async () => {
    const stack = await startStack();
    const dirs = privateDirs(stack.gatewayUrl, c.route);
    try {
      const secret = "bulwark-codex-marker-6071";
      writeFileSync(path.join(dirs.cwd, "notes.txt"), `${secret}\n`);
      // The sim calls Codex's shell tool with these arguments; Codex runs it
      // and sends the output back, and the sim answers from it. Codex wraps
      // the output in a header (chunk id, wall time, exit code) longer than
      // the sim quotes, so the file's content is looked for in what the sim
      // received.
      const prompt = `sim:call exec_command ${JSON.stringify({ cmd: "cat notes.txt" })}`;
      const run = await runCodex(dirs, prompt);
      const { last, shown } = finalMessage(run);
      assert.ok(
        last.includes(`${simAnswerPrefix(c.model)}: the tool returned`),
        `expected ${c.model}'s answer to the tool's output: ${shown}`,
      );
      const requests = await stack.simRequests();
      const withToolResult = requests.filter((r) => JSON.stringify(r.body ?? {}).includes(secret));
      assert.ok(withToolResult.length > 0, `the sim never received the tool's output; it saw ${requests.length} requests`);
      if (c.fallback) assertFailoverInSimLog(requests, c.model);
    } finally {
      stack.stop();
      rmSync(dirs.base, { recursive: true, force: true });
    }
  });
}
