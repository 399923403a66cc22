import { afterAll, describe, expect, it } from "vitest";
import { closeIdleWorkers } from "../../harness/gateway/lua/lua-worker.ts";
import { TWO_BACKENDS } from "../helpers/inproc.ts";
import { luaTarget, luaUnavailable } from "../helpers/lua.ts";
import { staleInstances } from "../helpers/stale-picker.ts";

const skip = luaUnavailable();
afterAll(closeIdleWorkers);

/**
 * The stale server picker of apache/apisix#13505 on APISIX's own Lua: the same steps as the
 * model's test (test/gateway/picker.test.ts), the same answer.
 */
describe.skipIf(skip)(`the stale picker on APISIX's Lua${skip ? ` (skipped: ${skip})` : ""}`, () => {
  for (const version of ["3.15.0", "3.16.0", "3.17.0"]) {
    it(`${version}: b, known down, gets every second request after a config change`, async () => {
      const t = await luaTarget(version, { backends: TWO_BACKENDS });
      try {
        expect((await staleInstances(t)).filter((i) => i === "b")).toHaveLength(2);
        // The requests that went to b failed as the release's driver reports it (forwarding is the
        // harness's, shared with the model).
        const where = { "3.15.0": "openai-base.lua:340", "3.16.0": "openai-base.lua:366", "3.17.0": "base.lua:226" }[version];
        expect((await t.logLines()).some((l) => l.text.includes(`[lua] ${where}: failed to`) && l.text.includes("connection refused"))).toBe(true);
      } finally {
        await t.close();
      }
    });
  }

  it("3.18.0: b gets nothing", async () => {
    const t = await luaTarget("3.18.0", { backends: TWO_BACKENDS });
    try {
      expect(await staleInstances(t)).toEqual(["a", "a", "a", "a"]);
    } finally {
      await t.close();
    }
  });
});
