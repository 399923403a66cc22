/**
 * What walking tables in key order (`--order sorted`: runtime/key_order.lua replaces pairs/next
 * in every lua worker) costs, and whether it changes the catalogue's verdicts: the #13101 steps
 * in process on lua 3.15.0, hash vs sorted (medians of 20 after 3 warm-ups, interleaved), and
 * `harness run scenarios/ --engine lua --versions all --store memory --seed 1` as a whole process
 * in each order (alternating rounds).
 *
 * usage: node bin/run-ts.js bench/order-bench.ts [rounds]   (default 3 catalogue rounds per order)
 */
import { spawn } from "node:child_process";
import { inOrder, type TableOrder } from "../harness/gateway/engine.ts";
import { MemoryStore } from "../harness/gateway/config/memory-store.ts";
import { luaVersions } from "../harness/gateway/lua/lua-engine.ts";
import { closeIdleWorkers } from "../harness/gateway/lua/lua-worker.ts";
import { REPRO_BACKENDS, reproduce13101 } from "../harness/repro/repro-13101.ts";
import { InprocTarget } from "../harness/targets/inproc.ts";
import { ROOT } from "./processes.ts";
import { fmtMs, median } from "./stats.ts";

const SOURCES = { apisix: `${ROOT}../shared/apisix-src`, luaDeps: `${ROOT}../shared/lua-deps` };
const ORDERS: TableOrder[] = ["hash", "sorted"];

function catalogue(order: TableOrder): Promise<{ ms: number; summary: string }> {
  return new Promise((resolve, reject) => {
    let stdout = "";
    const t0 = performance.now();
    const args = ["bin/harness.js", "run", "scenarios/", "--engine", "lua", "--versions", "all", "--store", "memory", "--seed", "1", "--order", order, "--reporter", "console"];
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "pipe", "ignore"] });
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.once("error", reject);
    child.once("close", () => resolve({ ms: performance.now() - t0, summary: stdout.trim().split("\n").find((l) => /^\d+ passed, \d+ failed/.test(l)) ?? "(no summary)" }));
  });
}

const rounds = Number(process.argv[2] ?? 3);
const [base] = luaVersions(["3.15.0"], SOURCES);
const runMs: Record<TableOrder, number[]> = { hash: [], sorted: [] };
for (let i = 0; i < 23; i++) {
  for (const order of ORDERS) {
    const t0 = performance.now();
    const target = await InprocTarget.create({ version: inOrder(base!, order), store: new MemoryStore(), backends: REPRO_BACKENDS });
    const obs = await reproduce13101(target);
    await target.close();
    if (obs.verdict !== "REPRODUCED") throw new Error(`lua 3.15.0 ${order}: ${obs.verdict}`);
    if (i >= 3) runMs[order].push(performance.now() - t0);
  }
}
await closeIdleWorkers();
for (const order of ORDERS) console.log(`#13101 run in process, lua 3.15.0, ${order}: median ${fmtMs(median(runMs[order]))}`);
console.log(`ratio sorted/hash: ${(median(runMs.sorted) / median(runMs.hash)).toFixed(2)}`);
const wall: Record<TableOrder, number[]> = { hash: [], sorted: [] };
for (let i = 0; i < rounds; i++) {
  for (const order of ORDERS) {
    const c = await catalogue(order);
    wall[order].push(c.ms);
    console.log(`catalogue x 4 releases, lua, ${order}, round ${i + 1}/${rounds}: ${fmtMs(c.ms)} (${c.summary})`);
  }
}
for (const order of ORDERS) console.log(`catalogue ${order}: median ${fmtMs(median(wall[order]))}`);
console.log(`ratio sorted/hash: ${(median(wall.sorted) / median(wall.hash)).toFixed(2)}`);
