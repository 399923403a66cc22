import { readFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { closeIdleWorkers } from "../../harness/gateway/lua/lua-worker.ts";
import { luaTarget, luaUnavailable } from "../helpers/lua.ts";

const skip = luaUnavailable();
afterAll(closeIdleWorkers);
const fixture = (p: string) => readFileSync(new URL(`../../fixtures/13101/${p}`, import.meta.url), "utf8");
const CHAT = fixture("chat-request.json");
const JSON_HEADERS = { "content-type": "application/json" };

describe.skipIf(skip)(`several workers${skip ? ` (skipped: ${skip})` : ""}`, () => {
  it("each worker that served a request crashes after the PATCH under its own pid; recovery needs a request on each", async () => {
    const t = await luaTarget("3.15.0", { workers: 2 });
    try {
      const states = await t.gateway.workerStates();
      expect(states.map((s) => s.pid)).toEqual([4242, 4243]);
      await t.admin("PUT", "/apisix/admin/routes/1", fixture("route.json"));
      await t.request("POST", "/ai/chat/completions", JSON_HEADERS, CHAT, 0);
      await t.request("POST", "/ai/chat/completions", JSON_HEADERS, CHAT, 1);
      await t.wait(2000);
      // Each worker built checkers of its own from its own config object.
      for (const s of await t.gateway.workerStates()) expect(Object.keys(s.pools.working)).toHaveLength(2);
      await t.admin("PATCH", "/apisix/admin/routes/1", fixture("patch.json"));
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
    } finally {
      await t.close();
    }
  });

  it("workers share health state: a checker built in one worker sees targets another worker marked", async () => {
    const t = await luaTarget("3.18.0", { workers: 2, backends: [{ name: "openai", hosts: ["api.openai.com"], mode: { kind: "down" } }] });
    try {
      await t.admin("PUT", "/apisix/admin/routes/1", fixture("route.json"));
      await t.request("POST", "/ai/chat/completions", JSON_HEADERS, CHAT, 0);
      await t.request("POST", "/ai/chat/completions", JSON_HEADERS, CHAT, 1);
      await t.wait(4000);
      // Only one worker holds the periodic lock and probes; both read the same unhealthy targets.
      const states = await t.gateway.workerStates();
      for (const s of states) {
        const statuses = s.checkers.flatMap((c) => c.nodes.map((n) => n.status));
        expect(statuses.length, `worker ${s.worker}`).toBeGreaterThan(0);
        expect(new Set(statuses), `worker ${s.worker}`).toEqual(new Set(["unhealthy"]));
      }
      const probingPids = new Set(t.gateway.log.lines.filter((l) => l.text.includes("unhealthy TCP increment")).map((l) => l.pid));
      expect(probingPids.size).toBe(1);
    } finally {
      await t.close();
    }
  });
});
