import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnServe } from "../../harness/targets/factories.ts";
import { etcdsOf } from "../helpers/processes.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const fixture = (p: string) => readFileSync(new URL(`../../fixtures/${p}`, import.meta.url), "utf8");
const KEY = "edd1c9f034335f136f87ad84b625c8f1";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * `harness serve` as a child process on real time, driven with the bug report's curl steps as
 * real HTTP requests; then `harness run --target external` pointed at another serve process.
 */
describe("serve: the bug report's curl steps against the reference gateway", () => {
  let served: Awaited<ReturnType<typeof spawnServe>>;
  beforeAll(async () => {
    served = await spawnServe({ version: "3.16.0", store: "etcd", prefix: "/apisix", world: { backends: [{ name: "openai", hosts: ["api.openai.com"], mode: { kind: "healthy" } }], hosts: {} } });
  }, 30_000);
  afterAll(async () => {
    await served?.stop();
  });

  it("PUT, request, wait 2 s, PATCH, wait 3 s: the error log shows the crash every second", async () => {
    const admin = `http://127.0.0.1:${served.ready.admin}/apisix/admin/routes/1`;
    const put = await fetch(admin, { method: "PUT", headers: { "X-API-KEY": KEY }, body: fixture("13101/route.json") });
    expect(put.status).toBe(201);
    const chat = await fetch(`http://127.0.0.1:${served.ready.gateway}/ai/chat/completions`, { method: "POST", headers: { "Content-Type": "application/json" }, body: '{"model":"gpt-4","messages":[{"role":"user","content":"hello"}]}' });
    expect(chat.status).toBe(200);
    expect(await chat.text()).toContain("hello from openai");
    await sleep(2000);
    // APISIX's control API never lists ai-proxy-multi's checkers; the harness's own view does.
    expect(await (await fetch(`http://127.0.0.1:${served.ready.control}/v1/healthcheck`)).json()).toEqual({});
    const checkers = (await (await fetch(`http://127.0.0.1:${served.ready.control}/v1/harness/checkers`)).json()) as { name: string }[];
    expect(checkers.map((c) => c.name)).toEqual(["/apisix/routes/1#plugins['ai-proxy-multi'].instances[0]", "/apisix/routes/1#plugins['ai-proxy-multi'].instances[1]"]);
    const patch = await fetch(admin, { method: "PATCH", headers: { "X-API-KEY": KEY }, body: '{"desc": "trigger config refresh"}' });
    expect(patch.status).toBe(200);
    await sleep(3300);
    const crashes = readFileSync(served.logFile, "utf8").split("\n").filter((l) => l.includes("failed to run timer_working_pool_check"));
    expect(crashes.length).toBeGreaterThanOrEqual(3);
    expect(crashes.length).toBeLessThanOrEqual(4);
    for (const l of crashes) {
      expect(l).toMatch(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[error\] \d+#\d+: \*\d+ \[lua\] healthcheck_manager\.lua:288: failed to run timer_working_pool_check: \/usr\/local\/apisix\/apisix\/healthcheck_manager\.lua:238: attempt to index local 'upstream' \(a nil value\), context: ngx\.timer$/);
    }
  });

  it("harness run --target external against a serve process meets the 3.16.0 expectation", async () => {
    const other = await spawnServe({ version: "3.16.0", store: "etcd", prefix: "/apisix-external", world: { backends: [{ name: "openai", hosts: ["api.openai.com"], mode: { kind: "healthy" } }], hosts: {} } });
    try {
      const res = await execa(
        "node",
        ["bin/harness.js", "run", "scenarios/13101-crash-loop-after-patch.yaml", "--target", "external", "--versions", "3.16.0", "--admin-url", `http://127.0.0.1:${other.ready.admin}`, "--gateway-url", `http://127.0.0.1:${other.ready.gateway}`, "--control-url", `http://127.0.0.1:${other.ready.control}`, "--reporter", "console"],
        { cwd: ROOT, reject: false },
      );
      expect(res.exitCode, res.stdout + res.stderr).toBe(0);
      expect(res.stdout).toMatch(/ok\s+3\.16\.0\s+reproduces \(expected reproduces\)/);
      expect(res.stdout).toContain("1 passed, 0 failed");
    } finally {
      await other.stop();
    }
  }, 30_000);

  it("stopping serve leaves no etcd process behind", async () => {
    await served.stop();
    expect(etcdsOf(served.pid!)).toEqual([]);
  });
});

/** RSS of a process in kB (Linux). */
function rssKb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
}

describe("serve: the Admin API and control API take only what they should", () => {
  let served: Awaited<ReturnType<typeof spawnServe>>;
  beforeAll(async () => {
    served = await spawnServe({ version: "3.18.0", store: "memory", prefix: "/apisix", world: { backends: [{ name: "openai", hosts: ["api.openai.com"], mode: { kind: "healthy" } }], hosts: {} } });
  }, 30_000);
  afterAll(async () => {
    await served?.stop();
  });
  const admin = () => `http://127.0.0.1:${served.ready.admin}/apisix/admin/routes/1`;
  const control = (p: string) => `http://127.0.0.1:${served.ready.control}${p}`;

  it("an unauthenticated 64 MB body is answered 401 without being read into memory (APISIX checks the key first)", async () => {
    const before = rssKb(served.pid!);
    const body = Buffer.alloc(64 * 1024 * 1024, 0x20);
    const res = await fetch(admin(), { method: "PUT", body });
    expect(res.status).toBe(401);
    expect(rssKb(served.pid!) - before).toBeLessThan(32 * 1024);
  });

  it("an authenticated body over 1.5 MiB is 400 with APISIX's message; the key also comes from ?api_key=", async () => {
    const res = await fetch(`${admin()}?api_key=${KEY}`, { method: "PUT", body: Buffer.alloc(2 * 1024 * 1024, 0x20) });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error_msg: "invalid request body: request size 2097152 is greater than the maximum size 1572864 allowed" });
    const ok = await fetch(`${admin()}?api_key=${KEY}`, { method: "PUT", body: fixture("13101/route.json") });
    expect(ok.status).toBe(201);
  });

  it("the control API refuses what it cannot use, at once", async () => {
    const t0 = Date.now();
    const applied = await fetch(control("/v1/harness/applied?revision=abc"));
    expect(applied.status).toBe(400);
    expect(Date.now() - t0).toBeLessThan(2000);
    const mode = await fetch(control("/v1/harness/backends/openai"), { method: "POST", body: '{"kind":"explode"}' });
    expect(mode.status).toBe(400);
    expect(((await mode.json()) as { error_msg: string }).error_msg).toMatch(/^expected \{"kind": "healthy"\}/);
    expect((await fetch(control("/v1/harness/backends/nobody"), { method: "POST", body: '{"kind":"down"}' })).status).toBe(404);
    expect((await fetch(control("/v1/harness/backends/openai"), { method: "POST", body: "{not json" })).status).toBe(400);
    expect((await fetch(control("/v1/harness/backends/openai"), { method: "POST", body: '{"kind":"status","status":503}' })).status).toBe(200);
  });

  it("the steering endpoints check their bodies, and say what is wrong", async () => {
    const post = async (path: string, body: string) => {
      const res = await fetch(control(path), { method: "POST", body });
      return [res.status, ((await res.json()) as { error_msg?: string }).error_msg];
    };
    expect(await post("/v1/harness/dns", '{"name": "x.test", "entries": ["10.0.0.1"]}')).toEqual([400, "resolver: x.test -> 10.0.0.1 is not a loopback address (127.0.0.0/8 or ::1)"]);
    expect(await post("/v1/harness/dns", '{"name": "x.test"}')).toEqual([400, "entries: expected a non-empty list of addresses or backend names"]);
    expect(await post("/v1/harness/inject", '{"module": "m", "function": "f"}')).toEqual([400, 'give "raises" or "returns", one of them']);
    expect(await post("/v1/harness/inject", '{"module": "apisix.core", "function": "f", "raises": "x"}')).toEqual([400, "the model engine can replace or call only apisix.plugins.ai-proxy-multi.construct_upstream (its profile's constructUpstream), not apisix.core.f; use --engine lua"]);
    expect(await post("/v1/harness/health", '{"route": "1", "instance": 0, "node": "nowhere.test", "port": 80, "healthy": false}')).toEqual([400, '"nowhere.test" is neither an address, a backend (openai) nor a known host name']);
    expect(await post("/v1/harness/call", '{"module": "apisix.plugins.ai-proxy-multi", "function": "construct_upstream", "times": 0}')).toEqual([400, "times: expected 1 to 100"]);
    expect(await post("/v1/harness/call", "{not json")).toEqual([400, expect.stringMatching(/^invalid request body: /)]);
  });
});

describe("harness run --target serve: every step that reaches into the gateway, on both engines", () => {
  const dir = mkdtempSync(join(tmpdir(), "serve-steps-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("log_level, dns, inject/restore, health, call, received, checker targets and admin body checks go through /v1/harness/", async () => {
    const file = join(dir, "steps.yaml");
    writeFileSync(
      file,
      `name: steering a serve process
log_level: info
backends:
  dead: {hosts: ["127.0.0.30"], mode: {status: 500}}
  ok: {hosts: ["127.0.0.31"]}
  b1: {hosts: ["127.0.0.11"]}
steps:
  - dns: {name: multi-ip.test, addresses: [b1]}
  - inject: {function: construct_upstream, returns: [null, boom]}
  - admin: {method: PUT, path: /apisix/admin/routes/1, fixture: routes/dead-and-ok.json, status: 201, json: [{path: "$.value.uri", equals: "/ai/*"}]}
  - health: {route: 1, instance: 0, node: "dead:16725", healthy: false}
  - health: {route: 1, instance: 1, node: "ok:16724", healthy: true}
  - request: {path: /ai/chat/completions, fixture: chat.json}
  - wait: 1500ms
  - assert: {log: {contains: "[creating checker] unable to construct upstream", level: error, atLeast: 1}}
  - assert: {log: {contains: "error: boom, context: ngx.timer", level: error, atLeast: 1}}
  - inject: {function: construct_upstream, restore: true}
  - call:
      function: construct_upstream
      arg: {name: d, provider: openai, weight: 1, options: {model: gpt-4}, override: {endpoint: "http://multi-ip.test:16724"}}
      json: [{path: "$.result.nodes[0].host", equals: "127.0.0.11"}]
  - request: {path: /ai/chat/completions, fixture: chat.json}
  - wait: 1500ms
  - request: {path: /ai/chat/completions, fixture: chat.json, instance: ok}
  - assert: {checkers: [{route: 1, instance: 0, targets: ["127.0.0.30:16725"]}, {route: 1, instance: 1, targets: ["ok:16724"]}]}
  - assert: {received: {backend: ok, kind: chat, path: /v1/chat/completions, headers: {authorization: "Bearer token"}, atLeast: 1}}
  - admin: {method: PUT, path: /apisix/admin/routes/1, body: {uri: "/ai/*", upstream: {type: roundrobin, nodes: {"127.0.0.31:16724": 1}}}}
  - wait: 1500ms
  - assert: {log: {contains: "try to release checker", level: info, atLeast: 1}}
expect: {default: passes}
`,
    );
    const run = (engine: string) => execa("node", ["bin/harness.js", "run", file, "--target", "serve", "--versions", "3.18.0", "--store", "memory", "--engine", engine], { cwd: ROOT, reject: false });
    const [model, lua] = await Promise.all([run("model"), run("lua")]);
    for (const res of [model, lua]) {
      expect(res.exitCode, res.stdout + res.stderr).toBe(0);
      expect(res.stdout).toContain("1 passed, 0 failed");
    }
  }, 60_000);
});

describe("serve: a fresh error log per session", () => {
  const cwd = mkdtempSync(join(tmpdir(), "serve-log-"));
  afterAll(() => rmSync(cwd, { recursive: true, force: true }));

  /** Start serve in `cwd`, return the log path it printed once ready, then Ctrl-C it. */
  async function session(args: string[]): Promise<{ logFile: string; emptyAtStart: boolean; exitCode: number | undefined; stderr: string }> {
    const sub = execa("node", [join(ROOT, "bin/harness.js"), "serve", "--version", "3.18.0", "--store", "memory", "--port", "0", "--admin-port", "0", "--control-port", "0", "--quiet", ...args], { cwd, reject: false });
    let err = "";
    const logFile = await new Promise<string>((resolve, reject) => {
      sub.stderr!.on("data", (c: Buffer) => {
        err += c.toString();
        const m = /^ {2}error log {3}(\S+) {2}\(new for this session\)$/m.exec(err);
        if (m && err.includes("Ctrl-C stops it")) resolve(m[1]!);
      });
      void sub.then(() => reject(new Error(`serve ended: ${err}`)));
    });
    const path = resolve(cwd, logFile);
    const emptyAtStart = existsSync(path) && statSync(path).size === 0;
    sub.kill("SIGINT");
    const res = await sub;
    return { logFile: path, emptyAtStart, exitCode: res.exitCode, stderr: res.stderr };
  }

  it("the default log is a new file each session, there (empty) from the start; a given one is emptied", async () => {
    const first = await session([]);
    const second = await session([]);
    expect(first.logFile).toMatch(/reports\/serve-error-3\.18\.0-.*\.log$/);
    expect(second.logFile).not.toBe(first.logFile);
    expect([first.emptyAtStart, second.emptyAtStart]).toEqual([true, true]);
    const given = join(cwd, "given.log");
    writeFileSync(given, "2026/01/01 00:00:00 [error] a line of an earlier session\n");
    const third = await session(["--log-file", given]);
    expect(third.logFile).toBe(given);
    expect(third.emptyAtStart).toBe(true);
    expect(third.exitCode).toBe(130);
    expect(third.stderr).toMatch(/^interrupted \(SIGINT\): stopping$/m);
  });
});
