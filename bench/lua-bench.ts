/**
 * The lua engine (issue 7's targets): one run of the #13101 steps in process on APISIX's own
 * 3.15.0 Lua (target: median <= 20 ms), and `harness run scenarios/ --engine lua --versions all`
 * as a whole process (target: <= 10 s wall).
 */
import { spawn } from "node:child_process";
import { MemoryStore } from "../harness/gateway/config/memory-store.ts";
import { luaVersions } from "../harness/gateway/lua/lua-engine.ts";
import { closeIdleWorkers } from "../harness/gateway/lua/lua-worker.ts";
import { REPRO_BACKENDS, reproduce13101 } from "../harness/repro/repro-13101.ts";
import { InprocTarget } from "../harness/targets/inproc.ts";
import { ROOT } from "./processes.ts";
import { fmtMs, max, median } from "./stats.ts";

const SOURCES = { apisix: `${ROOT}../shared/apisix-src`, luaDeps: `${ROOT}../shared/lua-deps` };

export interface LuaBench {
  runs: number;
  runMs: Record<string, number[]>;
  catalogueMs: number[];
  catalogueSummary: string;
}

/** `harness run scenarios/ --engine lua --versions all`: wall time and its summary line. */
function catalogue(out: string): Promise<{ ms: number; summary: string }> {
  return new Promise((resolve, reject) => {
    let stdout = "";
    const t0 = performance.now();
    const child = spawn(process.execPath, ["bin/harness.js", "run", "scenarios/", "--engine", "lua", "--versions", "all", "--out", out], { cwd: ROOT, stdio: ["ignore", "pipe", "ignore"] });
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.once("error", reject);
    child.once("close", () => resolve({ ms: performance.now() - t0, summary: stdout.trim().split("\n").find((l) => /^\d+ passed, \d+ failed/.test(l)) ?? "(no summary)" }));
  });
}

export async function benchLua(rounds: number, out: string, log: (s: string) => void): Promise<LuaBench> {
  const runs = 20;
  const r: LuaBench = { runs, runMs: {}, catalogueMs: [], catalogueSummary: "" };
  for (const version of ["3.15.0", "3.18.0"]) {
    const [v] = luaVersions([version], SOURCES);
    const times: number[] = [];
    // The first runs of a process compile the schemas and boot the first worker: warm up.
    for (let i = 0; i < runs + 3; i++) {
      const t0 = performance.now();
      const target = await InprocTarget.create({ version: v!, store: new MemoryStore(), backends: REPRO_BACKENDS });
      const obs = await reproduce13101(target);
      await target.close();
      if ((obs.verdict === "REPRODUCED") !== (version === "3.15.0")) throw new Error(`lua ${version}: ${obs.verdict}`);
      if (i >= 3) times.push(performance.now() - t0);
    }
    r.runMs[version] = times;
    log(`lua ${version}: one #13101 run in process, median ${fmtMs(median(times))}`);
  }
  await closeIdleWorkers();
  for (let i = 0; i < rounds; i++) {
    const c = await catalogue(out);
    r.catalogueMs.push(c.ms);
    r.catalogueSummary = c.summary;
    log(`lua catalogue round ${i + 1}/${rounds}: ${fmtMs(c.ms)} (${c.summary})`);
  }
  return r;
}

export function luaTable(r: LuaBench): string {
  const yes = (ok: boolean): string => (ok ? "yes" : "**no**");
  return [
    `The lua engine (APISIX's own Lua under LuaJIT): one run of the #13101 steps in process (create, PUT, request, 2 s, PATCH, 3 s, close; loopback backends; median of ${r.runs} after 3 warm-up runs), and the catalogue x 4 releases as a whole process (${r.catalogueMs.length} rounds).`,
    "",
    "| measurement | median | max | target | met |",
    "| --- | --- | --- | --- | --- |",
    ...Object.entries(r.runMs).map(([v, xs]) => `| one #13101 run, lua ${v} | ${fmtMs(median(xs))} | ${fmtMs(max(xs))} | ${v === "3.15.0" ? "≤ 20 ms" : ""} | ${v === "3.15.0" ? yes(median(xs) <= 20) : ""} |`),
    `| \`harness run scenarios/ --engine lua --versions all\` (real etcd) | ${fmtMs(median(r.catalogueMs))} | ${fmtMs(max(r.catalogueMs))} | ≤ 10 s | ${yes(median(r.catalogueMs) <= 10_000)} |`,
    "",
    `The catalogue's own result: ${r.catalogueSummary}.`,
  ].join("\n");
}
