import { afterEach, describe, expect, it } from "vitest";
import type { InprocTarget } from "../../harness/targets/inproc.ts";
import { inproc } from "../helpers/inproc.ts";
import { fixtureText } from "../helpers/inproc.ts";
import { crashLoopInTwoWorkers, sharedHealthInTwoWorkers } from "../helpers/workers.ts";

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
    const r = await crashLoopInTwoWorkers(t);
    expect(r.pids).toEqual([4242, 4243]);
    // Each worker built checkers of its own from its own config object.
    expect(r.workingBeforePatch).toEqual([2, 2]);
    expect(r.afterPatch).toEqual({ 4242: 3, 4243: 3 });
    expect(r.afterRequest).toEqual({ 4243: 3 });
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
    const r = await sharedHealthInTwoWorkers(t);
    for (const [w, statuses] of r.statuses.entries()) {
      expect(statuses.length, `worker ${w}`).toBeGreaterThan(0);
      expect(new Set(statuses), `worker ${w}`).toEqual(new Set(["unhealthy"]));
    }
    expect(r.probingPids.size).toBe(1);
  });

  it("a request goes to the worker the gateway names", async () => {
    t = await inproc("3.16.0", OPENAI, "simulated", 1, 3);
    await t.admin("PUT", "/apisix/admin/routes/1", fixtureText("13101/route.json"));
    await t.request("POST", "/ai/chat/completions", JSON_HEADERS, CHAT, 2);
    const waiting = (await t.gateway.workerStates()).map((s) => Object.keys(s.pools.waiting).length);
    expect(waiting).toEqual([0, 0, 2]);
  });
});
