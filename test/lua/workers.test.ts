import { afterAll, describe, expect, it } from "vitest";
import { closeIdleWorkers } from "../../harness/gateway/lua/lua-worker.ts";
import { luaTarget, luaUnavailable } from "../helpers/lua.ts";
import { crashLoopInTwoWorkers, sharedHealthInTwoWorkers } from "../helpers/workers.ts";

const skip = luaUnavailable();
afterAll(closeIdleWorkers);

describe.skipIf(skip)(`several workers${skip ? ` (skipped: ${skip})` : ""}`, () => {
  it("each worker that served a request crashes after the PATCH under its own pid; recovery needs a request on each", async () => {
    const t = await luaTarget("3.15.0", { workers: 2 });
    try {
      const r = await crashLoopInTwoWorkers(t);
      expect(r.pids).toEqual([4242, 4243]);
      // Each worker built checkers of its own from its own config object.
      expect(r.workingBeforePatch).toEqual([2, 2]);
      expect(r.afterPatch).toEqual({ 4242: 3, 4243: 3 });
      expect(r.afterRequest).toEqual({ 4243: 3 });
    } finally {
      await t.close();
    }
  });

  it("workers share health state: a checker built in one worker sees targets another worker marked", async () => {
    const t = await luaTarget("3.18.0", { workers: 2, backends: [{ name: "openai", hosts: ["api.openai.com"], mode: { kind: "down" } }] });
    try {
      const r = await sharedHealthInTwoWorkers(t);
      // Only one worker holds the periodic lock and probes; both read the same unhealthy targets.
      for (const [w, statuses] of r.statuses.entries()) {
        expect(statuses.length, `worker ${w}`).toBeGreaterThan(0);
        expect(new Set(statuses), `worker ${w}`).toEqual(new Set(["unhealthy"]));
      }
      expect(r.probingPids.size).toBe(1);
    } finally {
      await t.close();
    }
  });
});
