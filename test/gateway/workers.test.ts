import { afterEach, describe, expect, it } from "vitest";
import type { ModelEngine } from "../../harness/gateway/model-engine.ts";
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

  it("a full reload after a compaction rebuilds every worker's objects (3.15.0: both crash); 3.18.0 keeps the unchanged ones", async () => {
    const setup = async (target: InprocTarget) => {
      await target.admin("PUT", "/apisix/admin/routes/1", fixtureText("13101/route.json"));
      await target.request("POST", "/ai/chat/completions", JSON_HEADERS, CHAT, 0);
      await target.request("POST", "/ai/chat/completions", JSON_HEADERS, CHAT, 1);
      await target.wait(2000);
    };
    const reload = async (target: InprocTarget) => {
      await target.etcd("disconnect");
      await target.admin("PUT", "/apisix/admin/routes/2", fixtureText("routes/second-route.json"));
      await target.admin("PATCH", "/apisix/admin/routes/2", '{"desc":"while away"}');
      await target.etcd("compact");
      await target.etcd("reconnect");
    };
    const t15 = await inproc("3.15.0", OPENAI, "simulated", 1, 2);
    const t18 = await inproc("3.18.0", OPENAI, "simulated", 1, 2);
    try {
      await setup(t15);
      await reload(t15);
      const at = t15.now();
      await t15.wait(2000);
      const pids = new Set((await t15.logLines()).filter((l) => l.time > at && l.text.includes("failed to run timer_working_pool_check")).map((l) => /(\d+)#\1/.exec(l.text)![1]));
      expect(pids).toEqual(new Set(["4242", "4243"]));

      await setup(t18);
      const engine = t18.gateway.engine as ModelEngine;
      const key = t18.gateway.config.getRoute("1")!.key;
      // Worker 0 uses the config cache's objects, worker 1 its own.
      const route1 = () => engine.workers.map((w) => (w.config ? w.config.get(key) : t18.gateway.config.getRoute("1")));
      const before = route1();
      expect(before[1]).not.toBe(before[0]);
      await reload(t18);
      for (const [i, o] of route1().entries()) expect(o, `worker ${i}`).toBe(before[i]);
    } finally {
      await t15.close();
      await t18.close();
    }
  });
});
