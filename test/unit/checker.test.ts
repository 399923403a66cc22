import { afterEach, describe, expect, it } from "vitest";
import { LoopbackBackends, SimulatedBackends, type BackendPool } from "../../harness/backends/pool.ts";
import { VirtualClock } from "../../harness/gateway/clock/virtual-clock.ts";
import type { LibraryBehaviour } from "../../harness/gateway/healthcheck/behaviour.ts";
import { Checker } from "../../harness/gateway/healthcheck/checker.ts";
import { EventBus } from "../../harness/gateway/healthcheck/events.ts";
import { HealthcheckLibrary } from "../../harness/gateway/healthcheck/library.ts";
import { ErrorLog } from "../../harness/gateway/log/error-log.ts";
import type { ActiveChecks } from "../../harness/gateway/plugins/ai-proxy-multi/types.ts";
import { Resolver } from "../../harness/gateway/resolver/resolver.ts";
import { getProfile } from "../../harness/gateway/versions/index.ts";
import { testLibrary } from "../helpers/healthcheck.ts";

/**
 * lua-resty-healthcheck v3.2.x as the model runs it (healthcheck.lua@v3.2.0 unless said): a
 * checker in one worker on a virtual clock, probing mock backends.
 */
const V3_2_0 = getProfile("3.15.0").healthcheck;
const NAME = "upstream#/apisix/routes/1#plugins['ai-proxy-multi'].instances[0]";

let backends: BackendPool | undefined;
afterEach(async () => {
  await backends?.close();
  backends = undefined;
});

interface World {
  clock: VirtualClock;
  log: ErrorLog;
  lib: HealthcheckLibrary;
  ip: string;
  pool: BackendPool;
  /** A checker with one target: the backend on port 80. */
  checker(active: ActiveChecks, name?: string): Checker;
  /** Log texts (without time, pid and connection). */
  lines(): string[];
}

async function world(opts: { loopback?: boolean; behaviour?: LibraryBehaviour } = {}): Promise<World> {
  const clock = new VirtualClock();
  const pool: BackendPool = opts.loopback ? new LoopbackBackends(new Resolver()) : new SimulatedBackends(new Resolver());
  backends = pool;
  const b = await pool.add({ name: "llm", hosts: ["llm.test"], mode: { kind: "healthy" } });
  const log = new ErrorLog({ clock, level: "warn" });
  const lib = testLibrary({ clock, transport: pool, log, behaviour: opts.behaviour ?? V3_2_0 });
  return {
    clock,
    log,
    lib,
    ip: b.ip,
    pool,
    checker(active, name = NAME) {
      const c = Checker.create(name, { active }, lib);
      c.addTarget(b.ip, 80);
      return c;
    },
    lines: () => log.lines.map((l) => l.text.replace(/^.*? \*\d+ /, "")),
  };
}

const INTERVALS = { healthy: { interval: 1, successes: 2 }, unhealthy: { interval: 1, http_failures: 3, tcp_failures: 2 } };

describe("lua-resty-healthcheck's checker in the model", () => {
  it("a new target reaches the checker's own view through an event, one 0-delay timer later, and bumps status_ver", async () => {
    const w = await world();
    const c = w.checker({ type: "tcp", ...INTERVALS });
    // The shm has it at once; this checker object hears of it when the event is delivered.
    expect(c.targetList().map((t) => t.status)).toEqual(["healthy"]);
    expect(c.getTargetStatus(w.ip, 80)).toEqual([undefined, "target not found"]);
    expect(c.status_ver).toBe(0);
    await w.clock.advance(0);
    expect(c.getTargetStatus(w.ip, 80)).toEqual([true]);
    expect(c.status_ver).toBe(1);
  });

  it("the first probe comes one interval after the start, at a tick of the shared 0.1 s timer", async () => {
    const w = await world();
    w.checker({ type: "tcp", healthy: { interval: 2 }, unhealthy: { interval: 2 } });
    await w.clock.advance(1999);
    expect(w.pool.get("llm").probes).toBe(0);
    await w.clock.advance(11);
    // One connect (a tcp check); the timer's first tick came 0.1 s + jitter (< 10 ms) after the start.
    expect(w.pool.get("llm").probes).toBe(1);
  });

  it("every counter step is a warn line of checker:log (healthcheck.lua:1383@v3.2.0); the status change itself logs nothing", async () => {
    const w = await world();
    const c = w.checker({ type: "http", ...INTERVALS });
    await w.clock.advance(1500);
    await w.pool.setMode("llm", { kind: "status", status: 500 });
    await w.clock.advance(3000);
    expect(c.getTargetStatus(w.ip, 80)).toEqual([false]);
    const prefix = `[lua] healthcheck.lua:1383: log(): [healthcheck] (${NAME})`;
    expect(w.lines()).toEqual([
      `${prefix} array headers is deprecated, context: ngx.timer`,
      `${prefix} unhealthy HTTP increment (1/3) for '${w.ip}(${w.ip}:80)', context: ngx.timer`,
      `${prefix} unhealthy HTTP increment (2/3) for '${w.ip}(${w.ip}:80)', context: ngx.timer`,
      `${prefix} unhealthy HTTP increment (3/3) for '${w.ip}(${w.ip}:80)', context: ngx.timer`,
    ]);
    expect(w.log.lines.some((l) => /target is now/.test(l.text))).toBe(false);
    await w.pool.setMode("llm", { kind: "healthy" });
    await w.clock.advance(2000);
    expect(w.lines().slice(4)).toEqual([`${prefix} healthy SUCCESS increment (1/2) for '${w.ip}(${w.ip}:80)', context: ngx.timer`, `${prefix} healthy SUCCESS increment (2/2) for '${w.ip}(${w.ip}:80)', context: ngx.timer`]);
    expect(c.getTargetStatus(w.ip, 80)).toEqual([true]);
  });

  it("the log line number is the pinned library's: :1385 at v3.2.1, :1384 at v3.2.2", async () => {
    for (const [version, line] of [["3.16.0", 1385], ["3.18.0", 1384]] as const) {
      const w = await world({ behaviour: getProfile(version).healthcheck });
      w.checker({ type: "http", ...INTERVALS });
      await w.clock.advance(1500);
      expect(w.lines()[0]).toContain(`healthcheck.lua:${line}: log(): [healthcheck]`);
      await w.pool.close();
    }
  });

  it("one failure of a healthy target makes it mostly_healthy (still usable, no status_ver bump); `successes` successes make it healthy again", async () => {
    const w = await world();
    const c = w.checker({ type: "http", ...INTERVALS });
    await w.clock.advance(0);
    await w.pool.setMode("llm", { kind: "status", status: 500 });
    await w.clock.advance(1500);
    expect(c.targetList()[0]!.status).toBe("mostly_healthy");
    expect(c.targetList()[0]!.counter.http_failure).toBe(1);
    expect(c.getTargetStatus(w.ip, 80)).toEqual([true]);
    expect(c.status_ver).toBe(1);
    await w.pool.setMode("llm", { kind: "healthy" });
    await w.clock.advance(1000);
    // A success clears the failure counters but is one of two.
    expect(c.targetList()[0]!.status).toBe("mostly_healthy");
    expect(c.targetList()[0]!.counter).toEqual({ success: 1, http_failure: 0, tcp_failure: 0, timeout_failure: 0 });
    await w.clock.advance(1000);
    expect(c.targetList()[0]!.status).toBe("healthy");
    expect(c.status_ver).toBe(1);
  });

  it("each failure kind has its own counter; a failure clears only the success counter", async () => {
    const w = await world();
    const c = w.checker({ type: "http", healthy: { interval: 1, successes: 3 }, unhealthy: { interval: 1, http_failures: 5, tcp_failures: 5 } });
    await w.pool.setMode("llm", { kind: "status", status: 500 });
    await w.clock.advance(2500);
    await w.pool.setMode("llm", { kind: "down" });
    await w.clock.advance(1000);
    expect(c.targetList()[0]!.counter).toEqual({ success: 0, http_failure: 2, tcp_failure: 1, timeout_failure: 0 });
    // Still counting towards 5 of each: mostly_healthy, not unhealthy.
    expect(c.targetList()[0]!.status).toBe("mostly_healthy");
  });

  it("without a `healthy` block the healthy class never probes (interval 0), so a down backend goes unnoticed", async () => {
    const w = await world();
    const c = w.checker({ type: "tcp", unhealthy: { interval: 1, tcp_failures: 1 } });
    await w.pool.setMode("llm", { kind: "down" });
    await w.clock.advance(5000);
    expect(w.pool.get("llm").probes).toBe(0);
    expect(c.getTargetStatus(w.ip, 80)).toEqual([true]);
  });

  it("a tcp checker never warns about headers; an http one warns once, at its first exchange", async () => {
    const w = await world();
    w.checker({ type: "tcp", ...INTERVALS }, `${NAME}-tcp`);
    w.checker({ type: "http", ...INTERVALS });
    await w.clock.advance(4500);
    expect(w.lines().filter((l) => l.includes("array headers is deprecated"))).toEqual([`[lua] healthcheck.lua:1383: log(): [healthcheck] (${NAME}) array headers is deprecated, context: ngx.timer`]);
  });

  it("a silent backend: connect succeeds, the status line times out, logged at error a timeout later; then TIMEOUT increments (real loopback HTTP)", async () => {
    const w = await world({ loopback: true });
    const c = w.checker({ type: "http", timeout: 0.2, healthy: { interval: 1 }, unhealthy: { interval: 1, timeouts: 2 } });
    await w.pool.setMode("llm", { kind: "slow", delayMs: 2000 });
    await w.clock.advance(1150);
    expect(w.log.lines.filter((l) => l.level === "error")).toEqual([]);
    await w.clock.advance(100);
    const errors = w.log.lines.filter((l) => l.level === "error");
    expect(errors.map((l) => l.text.replace(/^.*? \*\d+ /, ""))).toEqual([`[lua] healthcheck.lua:1383: log(): [healthcheck] (${NAME}) failed to receive status line from '${w.ip} (${w.ip}:80)': timeout, context: ngx.timer`]);
    expect(w.lines().at(-1)).toContain(`unhealthy TIMEOUT increment (1/2) for '${w.ip}(${w.ip}:80)'`);
    await w.clock.advance(1000);
    expect(c.getTargetStatus(w.ip, 80)).toEqual([false]);
  });

  it("an https check fails its TLS handshake with the plain-HTTP backends: an error line, then a TCP failure", async () => {
    const w = await world();
    const c = w.checker({ type: "https", ...INTERVALS });
    await w.clock.advance(1500);
    expect(w.lines()).toEqual([
      `[lua] healthcheck.lua:1383: log(): [healthcheck] (${NAME}) failed SSL handshake with '${w.ip} (${w.ip}:80)', using server name (sni) '${w.ip}': the harness has no TLS: use http checks against the mock backends, context: ngx.timer`,
      `[lua] healthcheck.lua:1383: log(): [healthcheck] (${NAME}) unhealthy TCP increment (1/2) for '${w.ip}(${w.ip}:80)', context: ngx.timer`,
    ]);
    expect(c.targetList()[0]!.counter.tcp_failure).toBe(1);
  });

  it("a stopped checker sends no more probes", async () => {
    const w = await world();
    const c = w.checker({ type: "tcp", ...INTERVALS });
    await w.clock.advance(2500);
    const n = w.pool.get("llm").probes;
    expect(n).toBeGreaterThan(0);
    c.stop();
    await w.clock.advance(5000);
    expect(w.pool.get("llm").probes).toBe(n);
  });
});

describe("health lives in the shared dict under the checker's name", () => {
  async function unhealthyChecker(w: World): Promise<Checker> {
    const c = w.checker({ type: "tcp", ...INTERVALS });
    await w.pool.setMode("llm", { kind: "down" });
    await w.clock.advance(2500);
    expect(c.getTargetStatus(w.ip, 80)).toEqual([false]);
    return c;
  }

  it("a checker built again for the same name inherits the targets' health at once, with no event (status_ver stays 0)", async () => {
    const w = await world();
    const old = await unhealthyChecker(w);
    old.delayedClear(10);
    old.stop();
    const rebuilt = w.checker({ type: "tcp", ...INTERVALS });
    expect(rebuilt.getTargetStatus(w.ip, 80)).toEqual([false]);
    await w.clock.advance(0);
    expect(rebuilt.status_ver).toBe(0);
    // add_target un-marked the target: no purge later.
    await w.clock.advance(20_000);
    expect(rebuilt.targetList().map((t) => [t.ip, t.status])).toEqual([[w.ip, "unhealthy"]]);
  });

  it("delayed_clear only marks: without a new checker, the cleanup purges the targets after 10 s, and the next checker starts fresh", async () => {
    const w = await world();
    const old = await unhealthyChecker(w);
    old.delayedClear(10);
    old.stop();
    await w.clock.advance(9000);
    expect(old.targetList()).toHaveLength(1);
    await w.clock.advance(4000);
    expect(old.targetList()).toEqual([]);
    const next = w.checker({ type: "tcp", ...INTERVALS });
    await w.clock.advance(0);
    expect(next.getTargetStatus(w.ip, 80)).toEqual([true]);
  });

  it("a checker of another worker (the same dict) sees the health this worker's probes found", async () => {
    const w = await world();
    await unhealthyChecker(w);
    const other = new HealthcheckLibrary({ ...w.lib.env, events: new EventBus(w.clock, 1).workers[0]!, pid: 4243 });
    const peer = Checker.create(NAME, { active: { type: "tcp", ...INTERVALS } }, other);
    expect(peer.getTargetStatus(w.ip, 80)).toEqual([false]);
  });
});
