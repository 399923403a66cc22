/**
 * Wall times of one lua-engine run of the #13101 steps in process (issue 7's measure: create,
 * PUT, request, 2 s, PATCH, 3 s, close; loopback backends), in a process of its own so that the
 * benchmark can run it in a baseline tree too (it only needs InprocTarget, reproduce13101 and
 * luaVersions).
 *
 *   node bin/run-ts.js bench/lua-run-times.ts <apisix-src dir> <lua-deps dir> <version> <runs>
 *
 * Prints one JSON line: {"ms": [...]}, after 3 warm-up runs.
 */
import { MemoryStore } from "../harness/gateway/config/memory-store.ts";
import { luaVersions } from "../harness/gateway/lua/lua-engine.ts";
import { closeIdleWorkers } from "../harness/gateway/lua/lua-worker.ts";
import { REPRO_BACKENDS, reproduce13101 } from "../harness/repro/repro-13101.ts";
import { InprocTarget } from "../harness/targets/inproc.ts";

const [apisix, luaDeps, name = "3.15.0", runsArg = "20"] = process.argv.slice(2);
if (!apisix || !luaDeps) throw new Error("usage: lua-run-times.ts <apisix-src dir> <lua-deps dir> [version] [runs]");
const [version] = luaVersions([name], { apisix, luaDeps });
const ms: number[] = [];
for (let i = 0; i < Number(runsArg) + 3; i++) {
  const t0 = performance.now();
  const target = await InprocTarget.create({ version: version!, store: new MemoryStore(), backends: REPRO_BACKENDS, network: "loopback" });
  await reproduce13101(target);
  await target.close();
  if (i >= 3) ms.push(performance.now() - t0);
}
await closeIdleWorkers();
process.stdout.write(JSON.stringify({ ms }) + "\n");
