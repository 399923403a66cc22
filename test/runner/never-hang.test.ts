/**
 * Every run ends: a long virtual wait lets the event loop (signals) run and stops on abort, a real
 * wait longer than setTimeout's limit is not cut to 1 ms, the watchdog fails a stuck run naming its
 * step, an interrupted suite reports only what it observed, and a store that stops answering
 * fails a run within 5 s, naming the store.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { sleep } from "../../harness/gateway/clock/real-clock.ts";
import { VirtualClock } from "../../harness/gateway/clock/virtual-clock.ts";
import { modelVersion } from "../../harness/gateway/model-engine.ts";
import { getProfile } from "../../harness/gateway/versions/index.ts";
import { startLocalEtcd } from "../../harness/etcd/local-etcd.ts";
import { EtcdStore } from "../../harness/etcd/etcd-store.ts";
import { loadScenario } from "../../harness/runner/load.ts";
import { runSuite, type TargetFactory } from "../../harness/runner/suite.ts";
import { InprocFactory, InprocTarget } from "../../harness/targets/inproc.ts";
import type { Target } from "../../harness/targets/target.ts";
import { hasEtcdBinary } from "../helpers/processes.ts";
import { TWO_BACKENDS } from "../helpers/inproc.ts";

const dir = mkdtempSync(join(tmpdir(), "harness-never-hang-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const v = (name: string) => modelVersion(getProfile(name));

function scenario(name: string, text: string) {
  const file = join(dir, name);
  writeFileSync(file, text);
  return loadScenario(file);
}

describe("waits end", () => {
  it("a long virtual advance lets timers of the event loop run, and an abort stops it", async () => {
    const clock = new VirtualClock();
    let ticks = 0;
    clock.every(1000, () => void ticks++);
    const controller = new AbortController();
    // A real-time timer stands for a signal handler: it can only run if the advance yields.
    setTimeout(() => controller.abort(new Error("stop")), 100);
    const t0 = Date.now();
    await expect(clock.advance(1e12, controller.signal)).rejects.toThrow("stop");
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(ticks).toBeGreaterThan(0);
    expect(ticks).toBeLessThan(1e9);
  });

  it("a real sleep longer than setTimeout's limit (2^31-1 ms) does not end after 1 ms", async () => {
    const controller = new AbortController();
    let ended = false;
    const long = sleep(2 ** 31 + 1000, controller.signal).then(
      () => (ended = true),
      () => "aborted",
    );
    await new Promise((r) => setTimeout(r, 50));
    expect(ended).toBe(false);
    controller.abort(new Error("enough"));
    expect(await long).toBe("aborted");
  });
});

/** A target whose admin calls never answer: a gateway that hangs. */
function hangingFactory(realTime = false): TargetFactory & { closed: number } {
  const f = {
    name: "hanging",
    realTime,
    store: "none",
    closed: 0,
    async create() {
      const target: Target = {
        kind: "external",
        description: "hangs",
        admin: () => new Promise(() => undefined),
        request: () => new Promise(() => undefined),
        wait: (ms, signal) => sleep(ms, signal),
        now: () => Date.now(),
        logLines: async () => [],
        checkers: async () => [],
        pools: async () => undefined,
        setBackend: async () => undefined,
        etcd: async () => undefined,
        received: async () => [],
        dns: async () => undefined,
        inject: async () => undefined,
        restore: async () => undefined,
        setHealth: async () => undefined,
        call: async () => [],
        nextTick: () => new Promise(() => undefined),
        addressOf: async (e) => e,
        close: async () => void f.closed++,
      };
      return { target, prefix: "/apisix" };
    },
  };
  return f;
}

describe("the per-run watchdog", () => {
  it("fails a stuck run with the step it was waiting for, and closes its target", async () => {
    const s = scenario("stuck.yaml", "name: stuck\nsteps:\n  - mark: start\n  - admin: {method: PUT, path: /apisix/admin/routes/1, body: {uri: /x}}\nexpect: {default: passes}\n");
    const factory = hangingFactory();
    const suite = await runSuite({ scenarios: [s], versions: [v("3.18.0")], factory, seed: 1, runTimeoutMs: 300 });
    expect(suite.runs).toHaveLength(1);
    expect(suite.runs[0]!.outcome).toBe("error");
    expect(suite.runs[0]!.failure!.message).toBe("line 4: run timed out after 300 ms (--run-timeout) while waiting for step 1: admin PUT /apisix/admin/routes/1 (line 4)");
    expect(factory.closed).toBe(1);
  });
});

describe("an interrupted suite", () => {
  it("starts nothing new, leaves out the runs it cut short, and says it was interrupted", async () => {
    const s = scenario("slow.yaml", "name: slow\nsteps:\n  - wait: 30s\nexpect: {default: passes}\n");
    const quick = scenario("quick.yaml", "name: quick\nsteps:\n  - mark: m\nexpect: {default: passes}\n");
    const factory = hangingFactory(true);
    const controller = new AbortController();
    const seen: string[] = [];
    const t0 = Date.now();
    const running = runSuite({ scenarios: [quick, s, quick], versions: [v("3.18.0")], factory, seed: 1, concurrency: 1, signal: controller.signal, onRun: (r) => void seen.push(r.scenario.name) });
    setTimeout(() => controller.abort(new Error("SIGINT")), 200);
    const suite = await running;
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(suite.interrupted).toEqual({ planned: 3 });
    expect(suite.ok).toBe(false);
    expect(suite.runs.map((r) => r.scenario.name)).toEqual(["quick"]);
    expect(seen).toEqual(["quick"]);
    expect(factory.closed).toBe(2);
  });
});

describe.skipIf(!hasEtcdBinary())("a store that stops answering", () => {
  it("an etcd restart step on a killed etcd fails within 5 s, naming the store (it used to wait forever)", async () => {
    const etcd = await startLocalEtcd();
    const store = new EtcdStore([etcd.endpoint], "test etcd");
    const target = await InprocTarget.create({ version: v("3.18.0"), store, ownsStore: true, backends: TWO_BACKENDS, network: "simulated" });
    try {
      await etcd.stop();
      const t0 = Date.now();
      const err = await target.etcd("restart").then(() => undefined, (e: Error) => e);
      expect(Date.now() - t0).toBeLessThan(7000);
      expect(err?.message).toMatch(new RegExp(`the gateway's etcd watch did not come back within 5000 ms: etcd at 127\\.0\\.0\\.1:${etcd.clientPort} does not answer`));
    } finally {
      await target.close();
      await etcd.stop();
    }
  });

  it("a catalogue run whose etcd dies fails its runs fast, each naming the store", async () => {
    const etcd = await startLocalEtcd();
    try {
      const s = scenario("ok.yaml", "name: ok\nbackends:\n  openai: {hosts: [api.openai.com]}\nsteps:\n  - admin: {method: PUT, path: /apisix/admin/routes/1, fixture: 13101/route.json}\nexpect: {default: passes}\n");
      await etcd.stop();
      const t0 = Date.now();
      const suite = await runSuite({ scenarios: [s], versions: [v("3.16.0"), v("3.18.0")], factory: new InprocFactory(() => new EtcdStore([etcd.endpoint], "etcd"), "etcd"), seed: 1 });
      expect(Date.now() - t0).toBeLessThan(5000);
      for (const r of suite.runs) expect(r.failure?.message).toContain(`etcd at 127.0.0.1:${etcd.clientPort} does not answer`);
    } finally {
      await etcd.stop();
    }
  });
});
