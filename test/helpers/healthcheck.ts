import type { VirtualClock } from "../../harness/gateway/clock/virtual-clock.ts";
import type { LibraryBehaviour } from "../../harness/gateway/healthcheck/behaviour.ts";
import { EventBus } from "../../harness/gateway/healthcheck/events.ts";
import { HEALTHCHECK_SHM } from "../../harness/gateway/healthcheck/health-shm.ts";
import { HealthcheckLibrary } from "../../harness/gateway/healthcheck/library.ts";
import { LuaRandom } from "../../harness/gateway/healthcheck/lua-random.ts";
import type { ErrorLog } from "../../harness/gateway/log/error-log.ts";
import type { Transport } from "../../harness/gateway/net/transport.ts";
import { SharedDict } from "../../harness/gateway/shared-dict.ts";

/** lua-resty-healthcheck in one worker (pid 4242) with a dict and events of its own. */
export function testLibrary(opts: { clock: VirtualClock; transport: Transport; log: ErrorLog; behaviour: LibraryBehaviour; seed?: number; mode?: "solo" | "shared" }): HealthcheckLibrary {
  return new HealthcheckLibrary({
    clock: opts.clock,
    transport: opts.transport,
    log: opts.log,
    dict: new SharedDict(HEALTHCHECK_SHM, opts.clock),
    events: new EventBus(opts.clock, 1).workers[0]!,
    behaviour: opts.behaviour,
    random: new LuaRandom(opts.seed ?? 1),
    pid: 4242,
    mode: opts.mode ?? "solo",
  });
}
