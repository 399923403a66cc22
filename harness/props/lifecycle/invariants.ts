/**
 * What must hold after every command:
 *  1. no timer crash in the error log (`failed to run ...` / `attempt to index ...`; a guarded
 *     release's "[creating checker] unable to construct upstream" is not a crash);
 *  2. per route, once settled (a multi-instance route had a request after its last write and
 *     that request is >= 2 s old): every instance has a live working checker at the route's
 *     current version; a checker of a single-instance route (which the request path never asks
 *     for) is current if it exists (2 s after the write); 2 s after a write or a delete, no
 *     working checker belongs to a removed instance or to the deleted route;
 *  3. a target of a down backend, on a checker that has been current since some time s, is
 *     unhealthy once max(down since, s) + tcp_failures x healthy.interval + the probe timer's 0.1 s +
 *     one tick have passed.
 */
import { CHECK_DEFAULTS } from "../../gateway/healthcheck/checker.ts";
import { ModelEngine } from "../../gateway/model-engine.ts";
import type { LifecycleModel, LifecycleReal, RouteModel, Violation } from "./model.ts";
import { backendIp, type BackendName } from "./world.ts";

/** How long after a request (and after the last config change) the checkers must be in place. */
export const SETTLE_MS = 2000;
/** lua-resty-healthcheck's probe timer ticks every 0.1 s: a probe due at t runs by t + 100 ms. */
export const FIRST_PROBE_DELAY_MS = 100;
/** One manager tick of slack. */
export const TICK_MS = 1000;

const CRASH = /failed to run|attempt to index/;
const PATH = /\/routes\/([^/#]+)#plugins\['ai-proxy-multi'\]\.instances\[(\d+)\]$/;

export function resourcePath(prefix: string, route: string, instance: number): string {
  return `${prefix}/routes/${route}#plugins['ai-proxy-multi'].instances[${instance}]`;
}

/** Whether a checker version belongs to a route version: modifiedIndex followed by the nodes version. */
export function isCurrent(version: string, modifiedIndex: number | undefined): boolean {
  if (modifiedIndex === undefined) return false;
  const mi = String(modifiedIndex);
  return version.startsWith(mi) && /^\d?$/.test(version.slice(mi.length));
}

/**
 * Invariant 2 applies to a route once its checkers have had time to settle: a multi-instance route
 * needs a request after its last write and SETTLE_MS since that request; a single-instance route
 * (whose checkers only the timers maintain) needs SETTLE_MS since its last write.
 */
export function routeSettled(m: LifecycleModel, r: RouteModel): boolean {
  if (r.instances.length < 2) return m.now - r.lastWrite >= SETTLE_MS;
  return r.requestSeq > r.writeSeq && m.now - r.lastRequest >= SETTLE_MS;
}

/** How often each invariant had something to check (to show they are not vacuous). */
export interface InvariantCoverage {
  /** Steps checked. */
  steps: number;
  /** Steps where invariant 2 applied with at least one multi-instance route. */
  settled: number;
  /** Working checkers invariant 2 found in place and current. */
  currentCheckers: number;
  /** Down-backend targets past their deadline that invariant 3 found unhealthy. */
  downDetected: number;
}

export const coverage: InvariantCoverage = { steps: 0, settled: 0, currentCheckers: 0, downDetected: 0 };

export function resetCoverage(): void {
  coverage.steps = coverage.settled = coverage.currentCheckers = coverage.downDetected = 0;
}

export function checkCrash(r: LifecycleReal): Violation | undefined {
  const lines = r.target.gateway.log.lines;
  for (; r.logCursor < lines.length; r.logCursor++) {
    const l = lines[r.logCursor]!;
    if (l.level === "error" && CRASH.test(l.text)) {
      r.logCursor++;
      return { invariant: 1, kind: "crash", line: l.text };
    }
  }
  return undefined;
}

/** A working checker as the invariants read it. */
interface Working {
  version: string;
  dead: boolean;
  /** The checker's identity (`checker#N`). */
  checker: string;
  targets: Iterable<{ ip: string; port: number; healthy: boolean }>;
}

/**
 * The working checkers by resource path, in pool order. The model engine's are read from its
 * manager in place: building the control API's pools and checkers views after every command was
 * a sizeable part of a model run. Other engines answer through those views.
 */
async function workingCheckers(r: LifecycleReal): Promise<Map<string, Working>> {
  const out = new Map<string, Working>();
  const engine = r.target.gateway.engine;
  if (engine instanceof ModelEngine) {
    for (const [path, item] of engine.manager.workingPool) out.set(path, { version: item.version, dead: item.checker.dead, checker: String(item.checker), targets: item.checker.targetStates() });
    return out;
  }
  const [pools, checkers] = await Promise.all([r.target.pools(), r.target.checkers()]);
  const nodes = new Map(checkers.map((c) => [c.name, c.nodes.map((n) => ({ ip: n.ip, port: n.port, healthy: n.status === "healthy" }))]));
  for (const [path, w] of Object.entries(pools!.working)) out.set(path, { ...w, targets: nodes.get(path) ?? [] });
  return out;
}

export async function checkInvariants(m: LifecycleModel, r: LifecycleReal): Promise<Violation | undefined> {
  const crash = checkCrash(r);
  if (crash) return crash;
  const working = await workingCheckers(r);
  coverage.steps += 1;

  let multi = false;
  for (const [id, route] of m.routes) {
    if (!routeSettled(m, route)) continue;
    const mi = r.modifiedIndex.get(id);
    for (let i = 0; i < route.instances.length; i++) {
      const w = working.get(resourcePath(r.prefix, id, i));
      if (route.instances.length < 2 && !w) continue;
      if (!w || w.dead) return { invariant: 2, kind: "missing", route: id, instance: i, detail: `route ${id} instance ${i}: no working checker ${m.now - route.lastRequest} ms after a request (route modifiedIndex ${mi})` };
      if (!isCurrent(w.version, mi)) return { invariant: 2, kind: "stale", route: id, instance: i, detail: `route ${id} instance ${i}: working checker at version ${w.version}, route modifiedIndex is ${mi}` };
      if (route.instances.length >= 2) {
        multi = true;
        coverage.currentCheckers += 1;
      }
    }
  }
  if (multi) coverage.settled += 1;
  for (const [path, item] of working) {
    const p = PATH.exec(path);
    if (!p) continue;
    const [id, index] = [p[1]!, Number(p[2])];
    const route = m.routes.get(id);
    if (!route) {
      const deletedAt = m.deleted.get(id);
      if (deletedAt !== undefined && m.now - deletedAt >= SETTLE_MS) return { invariant: 2, kind: "leftover", route: id, instance: index, detail: `working checker ${item.checker} of route ${id} (instance ${index}), ${m.now - deletedAt} ms after the route was deleted` };
      continue;
    }
    if (index >= route.instances.length && m.now - route.lastWrite >= SETTLE_MS) return { invariant: 2, kind: "leftover", route: id, instance: index, detail: `working checker ${item.checker} of removed instance ${index} of route ${id} (${route.instances.length} left), ${m.now - route.lastWrite} ms after the write` };
  }

  // Invariant 3: walk the current checkers, remember since when each target has been seen.
  const seen = new Map<string, number>();
  for (const [name, w] of working) {
    const p = PATH.exec(name);
    if (!p || w.dead) continue;
    const [id, index] = [p[1]!, Number(p[2])];
    const route = m.routes.get(id);
    const ins = route?.instances[index];
    if (!route || !ins || !isCurrent(w.version, r.modifiedIndex.get(id))) continue;
    const active = ins.checks?.active;
    const failures = active?.unhealthy?.tcp_failures ?? CHECK_DEFAULTS.unhealthy.tcp_failures;
    const interval = (active?.healthy?.interval ?? CHECK_DEFAULTS.healthy.interval) * 1000;
    for (const node of w.targets) {
      const key = `${w.checker}|${node.ip}:${node.port}`;
      const since = r.seen.get(key) ?? m.now;
      seen.set(key, since);
      for (const [backend, downSince] of m.down) {
        if (backendIp(backend) !== node.ip) continue;
        const deadline = Math.max(downSince, since) + failures * interval + FIRST_PROBE_DELAY_MS + TICK_MS;
        if (m.now <= deadline) continue;
        if (!node.healthy) coverage.downDetected += 1;
        else {
          return {
            invariant: 3,
            kind: "not-unhealthy",
            route: id,
            instance: index,
            backend: backend as BackendName,
            detail: `route ${id} instance ${index} (${w.checker}, version ${w.version}): target ${node.ip}:${node.port} of backend ${backend} still healthy at ${m.now} ms; down since ${downSince} ms, checker current since ${since} ms, deadline ${deadline} ms (${failures} x ${interval} ms + ${FIRST_PROBE_DELAY_MS} + ${TICK_MS})`,
          };
        }
      }
    }
  }
  r.seen = seen;
  return undefined;
}
