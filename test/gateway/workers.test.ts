import { afterEach, describe, expect, it } from "vitest";
import type { InprocTarget } from "../../harness/targets/inproc.ts";
import { inproc } from "../helpers/inproc.ts";
import { fixtureText } from "../helpers/inproc.ts";

/** The model with several nginx workers, as test/lua/workers.test.ts runs APISIX's own Lua. */
const CHAT = fixtureText("13101/chat-request.json");
const JSON_HEADERS = { "content-type": "application/json" };
const OPENAI = [{ name: "openai", hosts: ["api.openai.com"], mode: { kind: "healthy" as const } }];

let t: InprocTarget | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe("several workers on the model", () => {
  it("each worker that served a request crashes after the PATCH under its own pid; recovery needs a request on each", async () => {
    t = await inproc("3.15.0", OPENAI, "simulated", 1, 2);
    const states = await t.gateway.workerStates();
    expect(states.map((s) => s.pid)).toEqual([4242, 4243]);
    await t.admin("PUT", "/apisix/admin/routes/1", fixtureText("13101/route.json"));
    await t.request("POST", "/ai/chat/completions", JSON_HEADERS, CHAT, 0);
    await t.request("POST", "/ai/chat/completions", JSON_HEADERS, CHAT, 1);
    await t.wait(2000);
    // Each worker built checkers of its own from its own config object.
    const built = await t.gateway.workerStates();
    for (const s of built) expect(Object.keys(s.pools.working)).toHaveLength(2);
    expect(built[0]!.pools.working).not.toEqual(built[1]!.pools.working);
    await t.admin("PATCH", "/apisix/admin/routes/1", fixtureText("13101/patch.json"));
    const patched = t.now();
    await t.wait(3000);
    const crashes = (await t.logLines()).filter((l) => l.time > patched && l.text.includes("failed to run timer_working_pool_check"));
    const byPid = (lines: typeof crashes, pid: number) => lines.filter((l) => l.text.includes(` ${pid}#${pid}: `)).length;
    expect(byPid(crashes, 4242)).toBe(3);
    expect(byPid(crashes, 4243)).toBe(3);

    await t.request("POST", "/ai/chat/completions", JSON_HEADERS, CHAT, 0);
    const recovered = t.now();
    await t.wait(3000);
    const after = (await t.logLines()).filter((l) => l.time > recovered && l.text.includes("failed to run timer_working_pool_check"));
    expect(byPid(after, 4242)).toBe(0);
    expect(byPid(after, 4243)).toBe(3);
  });

  it("a worker that never served the route has no checker for it; one request there queues its own", async () => {
    t = await inproc("3.18.0", OPENAI, "simulated", 1, 2);
    await t.admin("PUT", "/apisix/admin/routes/1", fixtureText("13101/route.json"));
    await t.request("POST", "/ai/chat/completions", JSON_HEADERS, CHAT, 0);
    await t.wait(2000);
    const [w0, w1] = await t.gateway.workerStates();
    expect(Object.keys(w0!.pools.working)).toHaveLength(2);
    expect(w1!.pools).toEqual({ waiting: {}, working: {} });
    await t.request("POST", "/ai/chat/completions", JSON_HEADERS, CHAT, 1);
    expect(Object.keys((await t.gateway.workerStates())[1]!.pools.waiting)).toHaveLength(2);
  });

  it("workers share health state: only the periodic-lock holder probes, both read the same unhealthy targets", async () => {
    t = await inproc("3.18.0", [{ name: "openai", hosts: ["api.openai.com"], mode: { kind: "down" } }], "simulated", 1, 2);
    await t.admin("PUT", "/apisix/admin/routes/1", fixtureText("13101/route.json"));
    await t.request("POST", "/ai/chat/completions", JSON_HEADERS, CHAT, 0);
    await t.request("POST", "/ai/chat/completions", JSON_HEADERS, CHAT, 1);
    await t.wait(4000);
    const states = await t.gateway.workerStates();
    for (const s of states) {
      const statuses = s.checkers.flatMap((c) => c.nodes.map((n) => n.status));
      expect(statuses.length, `worker ${s.worker}`).toBeGreaterThan(0);
      expect(new Set(statuses), `worker ${s.worker}`).toEqual(new Set(["unhealthy"]));
    }
    const probingPids = new Set(t.gateway.log.lines.filter((l) => l.text.includes("unhealthy TCP increment")).map((l) => l.pid));
    expect(probingPids.size).toBe(1);
  });

  it("a request goes to the worker the gateway names", async () => {
    t = await inproc("3.16.0", OPENAI, "simulated", 1, 3);
    await t.admin("PUT", "/apisix/admin/routes/1", fixtureText("13101/route.json"));
    await t.request("POST", "/ai/chat/completions", JSON_HEADERS, CHAT, 2);
    const waiting = (await t.gateway.workerStates()).map((s) => Object.keys(s.pools.waiting).length);
    expect(waiting).toEqual([0, 0, 2]);
  });
});
