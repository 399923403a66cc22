/**
 * Wall times of one run of the #13101 steps in process (issue 7's measure: create, PUT, request,
 * 2 s, PATCH, 3 s, close), after 3 warm-up runs. lua-bench.ts times its rows with runTimes; run as
 * a script, this file times lua 3.15.0 on loopback in a process of its own, so that the benchmark
 * can do the same in a baseline tree (it only needs InprocTarget, reproduce13101 and luaVersions).
 *
 *   node bin/run-ts.js bench/lua-run-times.ts <apisix-src dir> <lua-deps dir> <version> <runs>
 *
 * Prints one JSON line: {"ms": [...]}.
 */
import { pathToFileURL } from "node:url";
import { MemoryStore } from "../harness/gateway/config/memory-store.ts";
import type { GatewayVersion } from "../harness/gateway/engine.ts";
import { luaVersions } from "../harness/gateway/lua/lua-engine.ts";
import { closeIdleWorkers } from "../harness/gateway/lua/lua-worker.ts";
import { knownBehaviour, REPRO_BACKENDS, reproduce13101 } from "../harness/repro/repro-13101.ts";
import { InprocTarget } from "../harness/targets/inproc.ts";

/** `runs` timed runs (after 3 warm-ups: the first runs compile the schemas and boot the first worker); a verdict other than `reproduces` says fails. */
export async function runTimes(version: GatewayVersion, network: "loopback" | "simulated", runs: number, reproduces: boolean): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < runs + 3; i++) {
    const t0 = performance.now();
    const target = await InprocTarget.create({ version, store: new MemoryStore(), backends: REPRO_BACKENDS, network });
    const obs = await reproduce13101(target);
    await target.close();
    if ((obs.verdict === "REPRODUCED") !== reproduces) throw new Error(`${version.name}: ${obs.verdict}`);
    if (i >= 3) ms.push(performance.now() - t0);
  }
  return ms;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [apisix, luaDeps, name = "3.15.0", runsArg = "20"] = process.argv.slice(2);
  if (!apisix || !luaDeps) throw new Error("usage: lua-run-times.ts <apisix-src dir> <lua-deps dir> [version] [runs]");
  const [version] = luaVersions([name], { apisix, luaDeps });
  const ms = await runTimes(version!, "loopback", Number(runsArg), knownBehaviour(name)?.verdict === "REPRODUCED");
  await closeIdleWorkers();
  process.stdout.write(JSON.stringify({ ms }) + "\n");
}
