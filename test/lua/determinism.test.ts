import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { MemoryStore } from "../../harness/gateway/config/memory-store.ts";
import { luaVersions } from "../../harness/gateway/lua/lua-engine.ts";
import { closeIdleWorkers } from "../../harness/gateway/lua/lua-worker.ts";
import { loadScenario } from "../../harness/runner/load.ts";
import { runSuite } from "../../harness/runner/suite.ts";
import { InprocFactory } from "../../harness/targets/inproc.ts";
import type { LuaSources } from "../../harness/gateway/lua/sources.ts";
import type { InprocTarget } from "../../harness/targets/inproc.ts";
import { logTexts, luaTarget, luaUnavailable, SOURCES } from "../helpers/lua.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const skip = luaUnavailable();
const links = mkdtempSync(join(tmpdir(), "harness-determinism-"));
afterAll(async () => {
  await closeIdleWorkers();
  rmSync(links, { recursive: true, force: true });
});

/** Eight instances with checks on one route: the creation timer walks them in pairs() order. */
const INSTANCES = Array.from({ length: 8 }, (_, i) => ({
  name: `i${i}`,
  provider: "openai",
  weight: 1,
  auth: { header: { Authorization: "Bearer k" } },
  checks: { active: { healthy: { interval: 1, successes: 1 }, unhealthy: { interval: 1, http_failures: 1 } } },
}));

/** Where Linux takes the next pid from (root only): the test sets it to give workers pids of a chosen length. */
const NS_LAST_PID = "/proc/sys/kernel/ns_last_pid";
function pidsUnsettable(): string | undefined {
  try {
    accessSync(NS_LAST_PID, constants.W_OK);
    return undefined;
  } catch {
    return `${NS_LAST_PID} is not writable here (not root, or not Linux)`;
  }
}

/** The order in which the checkers of the eight instances first logged, under one seed. */
async function creationOrder(seed: number, sources: LuaSources = SOURCES): Promise<{ order: string; log: string[] }> {
  const t: InprocTarget = await luaTarget("3.18.0", { seed, sources });
  try {
    await t.admin("PUT", "/apisix/admin/routes/1", JSON.stringify({ uri: "/ai/*", plugins: { "ai-proxy-multi": { instances: INSTANCES } } }));
    await t.request("POST", "/ai/chat/completions", { "content-type": "application/json" }, '{"messages":[{"role":"user","content":"hi"}]}');
    // Created at the first tick, first probed one healthy.interval later.
    await t.wait(3000);
    const log = await logTexts(t);
    const order = log.map((l) => /instances\[(\d)\]\) array headers is deprecated/.exec(l)?.[1]).filter(Boolean).join("");
    return { order, log };
  } finally {
    await t.close();
  }
}

describe.skipIf(skip)(`the run's seed decides pairs() order${skip ? ` (skipped: ${skip})` : ""}`, () => {
  it("one seed replays the same log line for line; other seeds walk the pools in other orders", async () => {
    const a = await creationOrder(11);
    const b = await creationOrder(11);
    expect(a.order).toHaveLength(8);
    expect(b.log).toEqual(a.log);
    const orders = new Set<string>();
    for (const seed of [1, 2, 3, 4, 5, 6]) orders.add((await creationOrder(seed)).order);
    expect(orders.size).toBeGreaterThan(1);
  });

  it("a seed replays the same run whatever the sources' path (another checkout, another machine)", async () => {
    // The same trees reached through a much longer path, as from another checkout.
    const deep = join(links, "a-checkout-in-a-folder-with-a-rather-long-name", "shared");
    mkdirSync(deep, { recursive: true });
    symlinkSync(resolve(SOURCES.apisix), join(deep, "apisix-src"));
    symlinkSync(resolve(SOURCES.luaDeps), join(deep, "lua-deps"));
    const elsewhere: LuaSources = { apisix: join(deep, "apisix-src"), luaDeps: join(deep, "lua-deps") };
    for (const seed of [1, 2, 3, 4]) {
      const here = await creationOrder(seed);
      const there = await creationOrder(seed, elsewhere);
      expect(there.log, `seed ${seed}`).toEqual(here.log);
    }
  });

  const noPids = pidsUnsettable();
  it.skipIf(noPids)(`a worker's pid does not reach the Lua heap: pids of 3, 4 and 5 digits give the same run${noPids ? ` (skipped: ${noPids})` : ""}`, async () => {
    const out = mkdtempSync(join(tmpdir(), "harness-test-pids-"));
    /** The JSON report of one crash-loop run, whose timeline names each checker by its address. */
    const reportWithPidsFrom = async (lastPid: number): Promise<unknown[]> => {
      writeFileSync(NS_LAST_PID, String(lastPid));
      const dir = join(out, String(lastPid));
      const res = await execa(process.execPath, ["bin/harness.js", "run", "scenarios/13101-crash-loop-after-patch.yaml", "--engine", "lua", "--versions", "3.15.0", "--store", "memory", "--seed", "5", "--reporter", "json", "--out", dir], { cwd: ROOT, reject: false });
      expect(res.exitCode, res.stderr).toBe(0);
      const report = JSON.parse(readFileSync(join(dir, "results.json"), "utf8")) as { runs: unknown[] };
      return JSON.parse(JSON.stringify(report.runs).replace(/"wallMs":\d+,?/g, "")) as unknown[];
    };
    try {
      const fiveDigits = await reportWithPidsFrom(20000);
      expect(JSON.stringify(fiveDigits)).toMatch(/checker@0x[0-9a-f]+/);
      expect(await reportWithPidsFrom(1000)).toEqual(fiveDigits);
      expect(await reportWithPidsFrom(100)).toEqual(fiveDigits);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it("a run replays the same whatever its master forked before it (the same scenario four times from one master)", async () => {
    // An etcd restart rebuilds the checkers late in the run, after the JIT has recorded traces:
    // the worker's heap then shows anything that made its traces come at other times.
    const scenario = loadScenario(join(ROOT, "scenarios/etcd-restart-resumes-watch.yaml"));
    const versions = luaVersions(["3.15.0"], SOURCES);
    const reports: string[] = [];
    await closeIdleWorkers();
    for (let i = 0; i < 4; i++) {
      const suite = await runSuite({ scenarios: [scenario], versions, factory: new InprocFactory(() => new MemoryStore(), "memory"), seed: 5, concurrency: 1 });
      reports.push(JSON.stringify(suite.runs[0]!.steps).replace(/"wallMs":\d+/g, ""));
    }
    expect(reports[0]).toMatch(/checker@0x[0-9a-f]+/);
    for (const r of reports.slice(1)) expect(r).toEqual(reports[0]);
  });
});
