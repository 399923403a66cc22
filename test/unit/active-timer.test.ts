import { describe, expect, it } from "vitest";
import { SimulatedBackends } from "../../harness/backends/pool.ts";
import { VirtualClock } from "../../harness/gateway/clock/virtual-clock.ts";
import { Checker } from "../../harness/gateway/healthcheck/checker.ts";
import { ErrorLog } from "../../harness/gateway/log/error-log.ts";
import type { ActiveChecks } from "../../harness/gateway/plugins/ai-proxy-multi/types.ts";
import { Resolver } from "../../harness/gateway/resolver/resolver.ts";
import { getProfile } from "../../harness/gateway/versions/index.ts";
import { testLibrary } from "../helpers/healthcheck.ts";

/**
 * A single worker's active-check timer fires only at the ticks where something is due; the
 * same worker ticking every 0.1 s (as several workers do, competing for the lock through the
 * dict) must see the same probes, lines and purges.
 */
async function story(version: string, mode: "solo" | "shared"): Promise<{ lines: string[]; probes: number; states: string[] }> {
  const clock = new VirtualClock();
  const pool = new SimulatedBackends(new Resolver());
  const a = await pool.add({ name: "a", hosts: ["a.test"], mode: { kind: "healthy" } });
  const b = await pool.add({ name: "b", hosts: ["b.test"], mode: { kind: "healthy" } });
  const log = new ErrorLog({ clock, level: "warn" });
  const lib = testLibrary({ clock, transport: pool, log, behaviour: getProfile(version).healthcheck, seed: 3, mode });
  const checks = (healthy: number, unhealthy: number): { active: ActiveChecks } => ({
    active: { type: "http", healthy: { interval: healthy, successes: 2 }, unhealthy: { interval: unhealthy, http_failures: 2, tcp_failures: 1 } },
  });
  const make = (name: string, c: { active: ActiveChecks }, ip: string) => {
    const k = Checker.create(name, c, lib);
    k.addTarget(ip, 80);
    return k;
  };
  const states: string[] = [];
  const snapshot = (cs: Checker[]) => states.push(`${clock.now() % 1e6}: ${cs.map((c) => c.targetList().map((t) => t.status).join("/")).join(" ")}`);
  await clock.advance(300);
  const c1 = make("one", checks(1, 1), a.ip);
  await clock.advance(700);
  const c2 = make("two", checks(2, 1), b.ip);
  await clock.advance(1500);
  await pool.setMode("b", { kind: "down" });
  await clock.advance(4000);
  snapshot([c1, c2]);
  await pool.setMode("a", { kind: "status", status: 500 });
  await clock.advance(3000);
  snapshot([c1, c2]);
  c2.delayedClear(10);
  c2.stop();
  c1.delayedClear(10);
  c1.stop();
  await clock.advance(5000);
  const c3 = make("one", checks(3, 2), a.ip);
  await pool.setMode("a", { kind: "healthy" });
  await clock.advance(9000);
  snapshot([c1, c2, c3]);
  await clock.advance(6000);
  snapshot([c1, c2, c3]);
  lib.stop();
  return { lines: log.lines.map((l) => `${l.time % 1e6} ${l.message}`), probes: a.probes + b.probes, states };
}

describe("the active-check timer of a single worker", () => {
  // "two" is released (delayed_clear) and never built again: v3.2.0 purges only the first
  // checker of the worker per window (healthcheck.lua:1746-1777@v3.2.0), so its target stays;
  // v3.2.2's elected worker purges all of its checkers (:1755-1789@v3.2.2).
  for (const [version, last] of [["3.15.0", "healthy unhealthy healthy"], ["3.18.0", "healthy  healthy"]] as const) {
    it(`${version}: firing only when due gives the same probes, lines, states and purges as ticking every 0.1 s`, async () => {
      const solo = await story(version, "solo");
      const ticking = await story(version, "shared");
      expect(solo.lines.length).toBeGreaterThan(5);
      expect(solo.states.at(-1)).toMatch(new RegExp(`: ${last}$`));
      expect(solo).toEqual(ticking);
    });
  }
});
