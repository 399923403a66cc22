import { afterEach, describe, expect, it } from "vitest";
import { LoopbackBackends } from "../../harness/backends/pool.ts";
import { VirtualClock } from "../../harness/gateway/clock/virtual-clock.ts";
import { Checker } from "../../harness/gateway/healthcheck/checker.ts";
import { ErrorLog } from "../../harness/gateway/log/error-log.ts";
import type { ActiveChecks } from "../../harness/gateway/plugins/ai-proxy-multi/types.ts";
import { Resolver } from "../../harness/gateway/resolver/resolver.ts";

/**
 * The checker against a real HTTP backend on loopback, flipped between 200, 500 and a closed port.
 * Time is virtual; probes are real requests.
 */
describe("active checker thresholds against a real loopback backend", () => {
  let backends: LoopbackBackends;
  let checker: Checker | undefined;

  afterEach(async () => {
    checker?.stop();
    await backends.close();
  });

  async function setup(active: ActiveChecks) {
    const clock = new VirtualClock();
    backends = new LoopbackBackends(new Resolver());
    const b = await backends.add({ name: "llm", hosts: ["llm.test"], mode: { kind: "healthy" } });
    const log = new ErrorLog({ clock, level: "warn" });
    checker = new Checker("upstream#test", { active }, { clock, transport: backends, log });
    checker.addTarget(b.ip, 443);
    const status = () => checker!.getTargetStatus(b.ip, 443)[0];
    return { clock, b, log, status };
  }

  it("a new target starts healthy and stays healthy while the backend answers 200", async () => {
    const { clock, b, status } = await setup({ healthy: { interval: 1, successes: 2 }, unhealthy: { interval: 1, http_failures: 3 } });
    expect(status()).toBe(true);
    await clock.advance(3050);
    expect(status()).toBe(true);
    // first probe after 100 ms, then one per healthy interval: 0.1, 1.1, 2.1
    expect(b.probes).toBe(3);
    expect(checker!.status_ver).toBe(0);
  });

  it("http_failures failing statuses in a row make it unhealthy; successes good ones bring it back", async () => {
    const { clock, b, log, status } = await setup({ healthy: { interval: 1, successes: 2 }, unhealthy: { interval: 1, http_failures: 3 } });
    await clock.advance(200);
    await backends.setMode("llm", { kind: "status", status: 500 });
    await clock.advance(2000); // probes at 1.1, 2.1: two failures
    expect(status()).toBe(true);
    await clock.advance(1000); // 3.1: third failure
    expect(status()).toBe(false);
    expect(checker!.status_ver).toBe(1);
    expect(log.lines.at(-1)?.text).toMatch(/unhealthy HTTP increment \(3\/3\).*target is now unhealthy/);
    await backends.setMode("llm", { kind: "healthy" });
    await clock.advance(1000); // one success of two
    expect(status()).toBe(false);
    await clock.advance(1000);
    expect(status()).toBe(true);
    expect(checker!.status_ver).toBe(2);
    expect(b.probes).toBeGreaterThanOrEqual(6);
  });

  it("a status in neither list counts for nothing, and a success in between resets the failure count", async () => {
    const { clock, status } = await setup({ healthy: { interval: 1 }, unhealthy: { interval: 1, http_failures: 2 } });
    await clock.advance(200);
    await backends.setMode("llm", { kind: "status", status: 500 });
    await clock.advance(1000); // one failure
    await backends.setMode("llm", { kind: "healthy" });
    await clock.advance(1000); // success resets
    await backends.setMode("llm", { kind: "status", status: 500 });
    await clock.advance(1000); // one failure again
    expect(status()).toBe(true);
    await backends.setMode("llm", { kind: "status", status: 418 });
    await clock.advance(3000); // 418 is in neither list
    expect(status()).toBe(true);
  });

  it("a closed port counts tcp_failures; the unhealthy interval sets the probe rate while unhealthy", async () => {
    const { clock, b, status } = await setup({ healthy: { interval: 1 }, unhealthy: { interval: 3, tcp_failures: 2, http_failures: 5 } });
    await clock.advance(200);
    await backends.setMode("llm", { kind: "down" });
    await clock.advance(1000);
    expect(status()).toBe(true);
    await clock.advance(1000);
    expect(status()).toBe(false);
    const before = checker!.targetList()[0]!;
    expect(before.healthy).toBe(false);
    await backends.setMode("llm", { kind: "healthy" });
    const probesBefore = b.probes;
    await clock.advance(2800); // next probe is 3 s after the one that failed (at 5.1 s)
    expect(b.probes).toBe(probesBefore);
    await clock.advance(200);
    expect(b.probes).toBe(probesBefore + 1);
  });

  it("a backend slower than checks.timeout counts timeouts (real time: each probe waits out the timeout)", async () => {
    const { clock, status } = await setup({ timeout: 0.2, healthy: { interval: 1 }, unhealthy: { interval: 1, timeouts: 2 } });
    await clock.advance(200);
    await backends.setMode("llm", { kind: "slow", delayMs: 1000 });
    await clock.advance(1000);
    expect(checker!.targetList()[0]!.counter.timeout_failure).toBe(1);
    expect(status()).toBe(true);
    await clock.advance(1000);
    expect(status()).toBe(false);
  });

  it("a stopped checker sends no more probes", async () => {
    const { clock, b } = await setup({ healthy: { interval: 1 } });
    await clock.advance(1500);
    const n = b.probes;
    checker!.stop();
    await clock.advance(5000);
    expect(b.probes).toBe(n);
  });
});
