import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadScenario } from "../../harness/runner/load.ts";
import { ScenarioExecution } from "../../harness/runner/execute.ts";
import { HttpTarget } from "../../harness/targets/http-target.ts";
import type { InprocTarget } from "../../harness/targets/inproc.ts";
import { CHAT, fixtureText, inproc } from "../helpers/inproc.ts";

let t: InprocTarget | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const get = async (g: InprocTarget, path: string) => {
  const res = await g.gateway.handleControl({ method: "GET", path, headers: {}, body: "" });
  return { status: res.status, body: JSON.parse(res.body) as unknown };
};

describe("the control API", () => {
  it("GET /v1/healthcheck answers as APISIX's does: ai-proxy-multi's checkers are never listed", async () => {
    t = await inproc("3.18.0");
    await t.admin("PUT", "/apisix/admin/routes/1", fixtureText("routes/two-backends.json"));
    await t.request("POST", "/ai/chat/completions", { "content-type": "application/json" }, CHAT);
    await t.wait(2000);
    expect(await get(t, "/v1/healthcheck")).toEqual({ status: 200, body: {} });
    // The harness's own view has them.
    const mine = await get(t, "/v1/harness/checkers");
    expect((mine.body as { name: string }[]).map((c) => c.name)).toEqual([
      "/apisix/routes/1#plugins['ai-proxy-multi'].instances[0]",
      "/apisix/routes/1#plugins['ai-proxy-multi'].instances[1]",
    ]);
    expect(Object.keys((await get(t, "/v1/harness/pools")).body as object)).toEqual(["waiting", "working"]);
    expect((await get(t, "/v1/harness/pools?worker=3")).status).toBe(400);
  });

  it("a checkers assertion on an external APISIX fails saying the checkers are not observable there", async () => {
    const target = new HttpTarget({ kind: "external", adminUrl: "http://127.0.0.1:1", gatewayUrl: "http://127.0.0.1:1", controlUrl: "http://127.0.0.1:1", apiKey: "k", harnessControl: false });
    const dir = mkdtempSync(join(tmpdir(), "harness-test-control-"));
    try {
      const file = join(dir, "s.yaml");
      writeFileSync(file, "name: checkers\nsteps:\n  - assert: {checkers: [{route: 1, instance: 0}]}\nexpect: {default: passes}\n");
      const run = await new ScenarioExecution(loadScenario(file), { version: "3.18.0", engine: "model", target, targetName: "external", store: "-", seed: 1, prefix: "/apisix" }).run();
      expect(run.outcome).toBe("error");
      expect(run.failure?.message).toContain("checkers are not observable on this target: APISIX's GET /v1/healthcheck does not list ai-proxy-multi's checkers");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
