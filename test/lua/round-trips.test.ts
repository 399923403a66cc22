import { readFileSync } from "node:fs";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import type { BackendSpec } from "../../harness/backends/backend.ts";
import { LoopbackBackends } from "../../harness/backends/pool.ts";
import { closeIdleWorkers, LuaWorker, type CommandReply } from "../../harness/gateway/lua/lua-worker.ts";
import { WorldCalls } from "../../harness/gateway/lua/world-calls.ts";
import { logTexts, luaTarget, luaUnavailable } from "../helpers/lua.ts";
import { descendants } from "../helpers/processes.ts";

/**
 * What the worker's line reader (runtime/spin-read.c) and the connects made ahead change: how
 * long a run waits, never what it does.
 */
const skip = luaUnavailable();
const fixture = (name: string): string => readFileSync(new URL(`../../fixtures/${name}`, import.meta.url), "utf8");
const CHAT = fixture("chat.json");
const JSON_HEADERS = { "content-type": "application/json" };

afterEach(() => {
  vi.restoreAllMocks();
  delete process.env.HARNESS_LUA_POLL_US;
});
afterAll(() => closeIdleWorkers());

/** Backend a answers, b is down; two-backends.json checks both every second. */
const A_UP_B_DOWN: BackendSpec[] = [
  { name: "a", hosts: ["a.test"], mode: { kind: "healthy" } },
  { name: "b", hosts: ["b.test"], mode: { kind: "down" } },
];

/** PUT, a request, 3 s of checks on loopback; the log, and the probes' calls into the harness by kind. */
async function checkedRun(): Promise<{ log: string[]; calls: Record<string, number>; probesOfA: number }> {
  const calls: Record<string, number> = {};
  const answer = WorldCalls.prototype.answer;
  vi.spyOn(WorldCalls.prototype, "answer").mockImplementation(function (this: WorldCalls, worker, msg) {
    const kind = `${msg.call}${msg.op !== undefined ? ` ${String(msg.op)}` : ""}`;
    calls[kind] = (calls[kind] ?? 0) + 1;
    return answer.call(this, worker, msg);
  });
  const ahead = WorldCalls.prototype.connectAhead;
  vi.spyOn(WorldCalls.prototype, "connectAhead").mockImplementation(function (this: WorldCalls, worker, msg) {
    calls["connect ahead"] = (calls["connect ahead"] ?? 0) + 1;
    return ahead.call(this, worker, msg);
  });
  const t = await luaTarget("3.15.0", { network: "loopback", backends: A_UP_B_DOWN });
  try {
    expect((await t.admin("PUT", "/apisix/admin/routes/1", fixture("routes/two-backends.json"))).status).toBe(201);
    // The first request builds the checkers; the round robin's start (the seed's) decides
    // whether a answers it (200) or b, refused (500).
    expect([200, 500]).toContain((await t.request("POST", "/ai/chat/completions", JSON_HEADERS, CHAT)).status);
    await t.wait(3000);
    const probesOfA = (await t.received()).filter((r) => r.backend === "a" && r.kind === "probe").length;
    return { log: await logTexts(t), calls, probesOfA };
  } finally {
    await t.close();
  }
}

describe.skipIf(skip)(`the lua engine's round trips${skip ? ` (skipped: ${skip})` : ""}`, () => {
  it("a probe's connect to a backend is not waited for, and the run logs what it logs when every connect is", async () => {
    const ahead = await checkedRun();
    expect(ahead.calls["tcp connect"]).toBeUndefined();
    expect(ahead.probesOfA).toBeGreaterThan(0);
    // Each probe of a sends its request on the connection made ahead; b's are refused at once.
    expect(ahead.calls["tcp exchange"]).toBe(ahead.probesOfA);
    expect(ahead.calls["connect ahead"]).toBeGreaterThan(ahead.probesOfA);
    expect(ahead.log.some((l) => /unhealthy TCP increment .* for '127\.0\.0\.\d+\(127\.0\.0\.\d+:80\)'/.test(l))).toBe(true);
    vi.restoreAllMocks();

    // The same run with no connect known ahead: each connect waits for the harness's answer.
    vi.spyOn(LoopbackBackends.prototype, "connectOutcomes").mockReturnValue({});
    const waited = await checkedRun();
    expect(waited.calls["connect ahead"]).toBeUndefined();
    expect(waited.calls["tcp connect"]).toBe(ahead.calls["connect ahead"]);
    expect(waited.log).toEqual(ahead.log);
    expect(waited.probesOfA).toBe(ahead.probesOfA);
  });

  it("a worker that sleeps instead of polling logs the same", async () => {
    // The poll time is in the boot message, so each setting has a master (a LuaJIT child of this process) of its own.
    const masters = () => descendants(process.pid).filter((p) => p.ppid === process.pid && p.comm === "luajit").length;
    await closeIdleWorkers();
    const polled = await checkedRun();
    expect(masters()).toBe(1);
    vi.restoreAllMocks();
    process.env.HARNESS_LUA_POLL_US = "0";
    const slept = await checkedRun();
    expect(masters()).toBe(2);
    expect(slept.log).toEqual(polled.log);
  });

  it("a line longer than the reader's first buffer (64 KiB) reaches the worker whole", async () => {
    const route = JSON.parse(fixture("routes/two-backends.json")) as { plugins: Record<string, { instances: Record<string, unknown>[] }> };
    // The worker answers a request with the picked instance's conf, as it decoded it from the route.
    const extra = "x".repeat(300_000);
    const replies: CommandReply[] = [];
    const command = LuaWorker.prototype.command;
    vi.spyOn(LuaWorker.prototype, "command").mockImplementation(function (this: LuaWorker, cmd, payload) {
      const reply = command.call(this, cmd, payload);
      if (cmd === "request") void reply.then((r) => replies.push(r));
      return reply;
    });
    for (const ins of route.plugins["ai-proxy-multi"]!.instances) ins.options = { extra };
    const t = await luaTarget("3.15.0", { network: "loopback", backends: [{ name: "a", hosts: ["a.test"], mode: { kind: "healthy" } }, { name: "b", hosts: ["b.test"], mode: { kind: "healthy" } }] });
    try {
      expect((await t.admin("PUT", "/apisix/admin/routes/1", JSON.stringify(route))).status).toBe(201);
      expect((await t.request("POST", "/ai/chat/completions", JSON_HEADERS, CHAT)).status).toBe(200);
      expect(replies).toHaveLength(1);
      expect((replies[0]!.result as { conf: { options: { extra: string } } }).conf.options.extra).toBe(extra);
    } finally {
      await t.close();
    }
  });
});
