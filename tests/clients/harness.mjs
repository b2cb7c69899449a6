// What the real-client tests share: a `bulwark sim` + `bulwark serve` pair on
// free ports with the three route kinds every client is tried on, and a way
// to find the Claude Code binary installed by scripts/clients-env.sh.
//
// Environment:
//   BULWARK_BIN   the bulwark binary (default: target/debug/bulwark; the Rust
//                 test crates/bulwark-cli/tests/real_clients.rs sets it)

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const CLIENTS_DIR = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(CLIENTS_DIR, "../..");
const BULWARK_BIN =
  process.env.BULWARK_BIN ?? path.join(process.env.CARGO_TARGET_DIR ?? path.join(ROOT, "target"), "debug/bulwark");
const STARTUP_TIMEOUT_MS = 30_000;

// The upstream model names: the sim puts them in its answers
// ("Simulated answer from <model>: ..."), so an answer names the target that
// produced it.
export const ANTHROPIC_MODEL = "claude-sonnet-4-5";
export const OPENAI_MODEL = "gpt-4o-mini";
// The first target of each failover route: the sim fails every request for
// it, in that provider's own way (Anthropic's 529 overloaded, OpenAI's 503).
export const BROKEN_MODEL = "broken-model";

// Route names, by what they prove.
export const ROUTES = {
  toAnthropic: "to-anthropic",
  toOpenai: "to-openai",
  failoverToOpenai: "failover-to-openai",
  failoverToAnthropic: "failover-to-anthropic",
};

// The routes a client of each wire format is tried on, with the upstream
// model whose answer must come back.
export function routeCases(clientFormat) {
  const anthropic = clientFormat === "anthropic";
  return [
    {
      kind: "same-format",
      route: anthropic ? ROUTES.toAnthropic : ROUTES.toOpenai,
      model: anthropic ? ANTHROPIC_MODEL : OPENAI_MODEL,
      fallback: false,
    },
    {
      kind: "cross-format",
      route: anthropic ? ROUTES.toOpenai : ROUTES.toAnthropic,
      model: anthropic ? OPENAI_MODEL : ANTHROPIC_MODEL,
      fallback: false,
    },
    {
      // The failover's second target is the other provider, so the answer
      // crosses formats too.
      kind: "failover",
      route: anthropic ? ROUTES.failoverToOpenai : ROUTES.failoverToAnthropic,
      model: anthropic ? OPENAI_MODEL : ANTHROPIC_MODEL,
      fallback: true,
    },
  ];
}

export const SIM_FAULTS = [
  { match: { format: "anthropic", model: BROKEN_MODEL }, fault: { status: 529 } },
  { match: { format: "openai", model: BROKEN_MODEL }, fault: { status: 503 } },
];

function gatewayConfig(simUrl) {
  return `listen: 127.0.0.1:0
store: "sqlite::memory:"
providers:
  sim-openai:    { kind: openai, base_url: "${simUrl}/v1", api_key: test }
  sim-anthropic: { kind: anthropic, base_url: "${simUrl}", api_key: test }
routes:
  ${ROUTES.toAnthropic}: { targets: [sim-anthropic/${ANTHROPIC_MODEL}] }
  ${ROUTES.toOpenai}: { targets: [sim-openai/${OPENAI_MODEL}] }
  ${ROUTES.failoverToOpenai}: { targets: [sim-anthropic/${BROKEN_MODEL}, sim-openai/${OPENAI_MODEL}], max_retries: 0 }
  ${ROUTES.failoverToAnthropic}: { targets: [sim-openai/${BROKEN_MODEL}, sim-anthropic/${ANTHROPIC_MODEL}], max_retries: 0 }
`;
}

// Every child started here, so that none outlives a test process that
// stops early (a failed assertion, an uncaught error).
const children = new Set();
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

// Starts `bulwark <args>` and resolves with the URL its listening line names.
function startProcess(name, args, ready, workdir) {
  return new Promise((resolve, reject) => {
    const child = spawn(BULWARK_BIN, args, {
      cwd: workdir,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn" },
    });
    children.add(child);
    child.on("exit", () => children.delete(child));
    let out = "";
    let err = "";
    let settled = false;
    const fail = (what) => {
      if (settled) return;
      settled = true;
      child.kill("SIGKILL");
      reject(new Error(`${name}: ${what}\ncommand: ${BULWARK_BIN} ${args.join(" ")}\n--- stdout ---\n${out}\n--- stderr ---\n${err.slice(-4000)}`));
    };
    const timer = setTimeout(() => fail(`no listening line within ${STARTUP_TIMEOUT_MS} ms`), STARTUP_TIMEOUT_MS);
    child.stderr.on("data", (d) => (err += d));
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(ready);
      if (m && !settled) {
        settled = true;
        clearTimeout(timer);
        resolve({ child, url: m[1].replace(/\/$/, ""), stderr: () => err });
      }
    });
    child.on("error", (e) => {
      clearTimeout(timer);
      fail(`cannot start: ${e.message} (build it with \`cargo build -p bulwark-cli\` or set BULWARK_BIN)`);
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      fail(`exited with status ${code} before listening`);
    });
  });
}

// A sim + gateway pair for one test; `stop()` ends both and removes the
// temporary directory.
export async function startStack() {
  if (!existsSync(BULWARK_BIN)) {
    throw new Error(`bulwark binary not found at ${BULWARK_BIN}: run \`cargo build -p bulwark-cli\` or set BULWARK_BIN`);
  }
  const workdir = mkdtempSync(path.join(tmpdir(), "bulwark-clients-"));
  const procs = [];
  const stop = () => {
    for (const p of procs) p.child.kill("SIGTERM");
    rmSync(workdir, { recursive: true, force: true });
  };
  try {
    const sim = await startProcess("sim", ["sim", "--listen", "127.0.0.1:0"], /bulwark-sim listening on (http:\/\/\S+)/, workdir);
    procs.push(sim);
    const put = await fetch(`${sim.url}/_sim/faults`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(SIM_FAULTS),
    });
    if (!put.ok) throw new Error(`PUT /_sim/faults -> ${put.status} ${await put.text()}`);
    const config = path.join(workdir, "gateway.yaml");
    writeFileSync(config, gatewayConfig(sim.url));
    const gateway = await startProcess("gateway", ["serve", "--config", config], /bulwark listening on (http:\/\/\S+)/, workdir);
    procs.push(gateway);
    return {
      simUrl: sim.url,
      gatewayUrl: gateway.url,
      workdir,
      gatewayStderr: gateway.stderr,
      // What the sim received, oldest first.
      async simRequests() {
        const r = await fetch(`${sim.url}/_sim/requests`);
        if (!r.ok) throw new Error(`GET /_sim/requests -> ${r.status}`);
        const data = await r.json();
        return Array.isArray(data) ? data : (data.requests ?? data.data ?? []);
      },
      stop,
    };
  } catch (e) {
    stop();
    throw e;
  }
}

// Checks the sim's log shows a failover: the broken first target was tried
// (and failed) before the second target answered.
export function assertFailoverInSimLog(requests, expectModel) {
  const models = requests.map((r) => `${r.model}:${r.outcome}`);
  const broken = requests.findIndex((r) => r.model === BROKEN_MODEL);
  const served = requests.findIndex((r) => r.model === expectModel && r.outcome === "ok");
  if (broken < 0 || served < 0 || broken > served) {
    throw new Error(`expected the sim to see ${BROKEN_MODEL} fail, then ${expectModel} answer; it saw [${models.join(", ")}]`);
  }
}

// The sim's answer for `model`: "Simulated answer from <model>: ...".
export function simAnswerPrefix(model) {
  return `Simulated answer from ${model}`;
}

// The Claude Code native binary. Its npm wrapper package puts the binary for
// this platform at bin/claude.exe in a postinstall step; when install
// scripts did not run, the platform package still has it.
export function claudeBinary() {
  const base = path.join(CLIENTS_DIR, "node_modules/@anthropic-ai");
  const candidates = [
    path.join(base, "claude-code/bin/claude.exe"),
    path.join(base, `claude-code-${process.platform}-${process.arch}/claude`),
  ];
  for (const c of candidates) {
    // The placeholder bin/claude.exe is a few bytes; the real one is hundreds of MB.
    if (existsSync(c) && statSync(c).size > 1_000_000) return c;
  }
  throw new Error(
    `Claude Code is not installed (looked at ${candidates.join(", ")}): run \`scripts/clients-env.sh\` to install the client environment`,
  );
}

// Loads an npm package of the client environment, or fails saying how to install it.
export async function requireClientPackage(name) {
  try {
    return await import(name);
  } catch (e) {
    throw new Error(`cannot load ${name} (${e.message}): run \`scripts/clients-env.sh\` to install the client environment`);
  }
}
