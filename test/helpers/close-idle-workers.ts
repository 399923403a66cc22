/**
 * A process that runs the #13101 steps once on the lua engine (which boots a successor worker,
 * idle and unreferenced), closes the idle workers and prints "closed". Run by
 * test/lua/faults.test.ts: closing must keep the process alive until the workers are gone.
 */
import { MemoryStore } from "../../harness/gateway/config/memory-store.ts";
import { luaVersions } from "../../harness/gateway/lua/lua-engine.ts";
import { closeIdleWorkers } from "../../harness/gateway/lua/lua-worker.ts";
import { REPRO_BACKENDS, reproduce13101 } from "../../harness/repro/repro-13101.ts";
import { InprocTarget } from "../../harness/targets/inproc.ts";
import { SOURCES } from "./lua.ts";

const [version] = luaVersions(["3.18.0"], SOURCES);
const target = await InprocTarget.create({ version: version!, store: new MemoryStore(), backends: REPRO_BACKENDS });
await reproduce13101(target);
await target.close();
// Let the successor worker finish booting, so it is idle (unreferenced) when closed.
await new Promise((r) => setTimeout(r, 300));
await closeIdleWorkers();
process.stdout.write("closed\n");
