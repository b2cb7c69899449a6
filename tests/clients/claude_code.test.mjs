// Claude Code (the real CLI, in print mode) against bulwark serve + bulwark sim.
//
// Each test runs `claude -p` with a private HOME and working directory,
// pointed at the gateway with a route name as its model, and checks the
// answer came from the sim through the route's expected target. Claude Code
// prints `API Error: <status> ...` and exits 0 when the gateway refuses it,
// so the checks read its JSON result, not only its exit status.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";

import { assertFailoverInSimLog, claudeBinary, routeCases, simAnswerPrefix, startStack } from "./harness.mjs";

// A guard against a hung client, not an assertion on speed.
const CLAUDE_KILL_AFTER_MS = 240_000;

// Runs one `claude -p` turn; resolves with its exit code, stdout and stderr.
function runClaude(gatewayUrl, route, prompt, cwd, home) {
  const bin = claudeBinary();
  const env = {
    PATH: process.env.PATH,
    LANG: "C.UTF-8",
    HOME: home,
    TMPDIR: process.env.TMPDIR ?? "/tmp",
    ANTHROPIC_BASE_URL: gatewayUrl,
    ANTHROPIC_API_KEY: "sk-ant-test-not-a-real-key",
    ANTHROPIC_MODEL: route,
    ANTHROPIC_SMALL_FAST_MODEL: route,
    // The newer name of the small-model setting; set too so that no
    // background call asks for a model the gateway has no route for.
    ANTHROPIC_DEFAULT_HAIKU_MODEL: route,
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
    DISABLE_TELEMETRY: "1",
    DISABLE_AUTOUPDATER: "1",
    // What is tested is the gateway's failover, not Claude Code's own
    // retries, which would otherwise repeat a failed call for minutes.
    CLAUDE_CODE_MAX_RETRIES: "0",
  };
  const args = ["-p", prompt, "--output-format", "json", "--allowedTools=Read"];
  console.error(`# claude ${args.map((a) => JSON.stringify(a)).join(" ")} (model ${route})`);
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), CLAUDE_KILL_AFTER_MS);
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

// Claude Code's `--output-format json` result object, or a failure that
// shows what it printed instead.
function parseResult(run) {
  const shown = `exit ${run.code}${run.signal ? ` (${run.signal})` : ""}\n--- stdout (end) ---\n${run.stdout.slice(-800)}\n--- stderr ---\n${run.stderr.slice(-4000)}`;
  let result;
  try {
    result = JSON.parse(run.stdout.trim().split("\n").at(-1));
  } catch {
    assert.fail(`Claude Code printed no JSON result: ${shown}`);
  }
  assert.equal(result.is_error, false, `Claude Code reported an error: ${result.result}\n${shown}`);
  assert.doesNotMatch(String(result.result), /API Error/, shown);
  return { result, shown };
}

// A private HOME and working directory for one run, so no user settings,
// credentials or project files leak in.
function privateDirs() {
  const base = mkdtempSync(path.join(tmpdir(), "bulwark-claude-"));
  const home = path.join(base, "home");
  const cwd = path.join(base, "project");
  mkdirSync(home);
  mkdirSync(cwd);
  return { base, home, cwd };
}

for (const c of routeCases("anthropic")) {
  test(`claude code answers through the gateway, ${c.kind} (route ${c.route})`, async () => {
    const stack = await startStack();
    const dirs = privateDirs();
    try {
      const run = await runClaude(stack.gatewayUrl, c.route, "Say hello to the gateway test", dirs.cwd, dirs.home);
      const { result, shown } = parseResult(run);
      assert.ok(String(result.result).includes(simAnswerPrefix(c.model)), `expected an answer from ${c.model}: ${shown}`);
      if (c.fallback) assertFailoverInSimLog(await stack.simRequests(), c.model);
    } finally {
      stack.stop();
      rmSync(dirs.base, { recursive: true, force: true });
    }
  });
}

for (const c of routeCases("anthropic")) {
  test(`claude code runs a Read tool round trip, ${c.kind} (route ${c.route})`, async () => {
    const stack = await startStack();
    const dirs = privateDirs();
    try {
      const secret = "bulwark-notes-marker-4217";
      const notes = path.join(dirs.cwd, "notes.txt");
      writeFileSync(notes, `${secret}\n`);
      const prompt = `sim:call Read ${JSON.stringify({ file_path: notes })}`;
      const run = await runClaude(stack.gatewayUrl, c.route, prompt, dirs.cwd, dirs.home);
      const { result, shown } = parseResult(run);
      // The sim quotes the tool result in its final answer, so the file's
      // content there proves Claude Code ran Read and sent the result back.
      assert.ok(String(result.result).includes(secret), `expected the final answer to quote ${notes}'s content (${secret}): ${shown}`);
      const requests = await stack.simRequests();
      const withToolResult = requests.filter((r) => JSON.stringify(r.body ?? {}).includes(secret));
      assert.ok(withToolResult.length > 0, `the sim never received the tool result; it saw ${requests.length} requests`);
      if (c.fallback) assertFailoverInSimLog(requests, c.model);
    } finally {
      stack.stop();
      rmSync(dirs.base, { recursive: true, force: true });
    }
  });
}
