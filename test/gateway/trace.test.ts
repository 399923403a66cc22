import { afterEach, describe, expect, it } from "vitest";
import { MemoryStore } from "../../harness/gateway/config/memory-store.ts";
import type { TraceEvent } from "../../harness/gateway/trace.ts";
import { modelVersion } from "../../harness/gateway/model-engine.ts";
import { getProfile } from "../../harness/gateway/versions/index.ts";
import { InprocTarget } from "../../harness/targets/inproc.ts";
import { CHAT, fixtureText, path, TWO_BACKENDS } from "../helpers/inproc.ts";

let t: InprocTarget | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function traced(version: string): Promise<InprocTarget> {
  return InprocTarget.create({ version: modelVersion(getProfile(version)), store: new MemoryStore(), backends: TWO_BACKENDS, network: "simulated", trace: true });
}

/** PUT, request, 2 s, PATCH, 3 s: the #13101 steps, with the times the events must carry. */
async function steps13101(target: InprocTarget): Promise<{ start: number; events: TraceEvent[] }> {
  const start = target.now();
  await target.admin("PUT", "/apisix/admin/routes/1", fixtureText("routes/two-backends.json"));
  await target.request("POST", "/ai/chat/completions", {}, CHAT);
  await target.wait(2000);
  await target.admin("PATCH", "/apisix/admin/routes/1", '{"desc":"x"}');
  await target.wait(3000);
  return { start, events: (await target.timeline())! };
}

const of = <L extends TraceEvent["lane"]>(events: TraceEvent[], lane: L) => events.filter((e): e is Extract<TraceEvent, { lane: L }> => e.lane === lane);

describe("the gateway's timeline (trace events)", () => {
  it("is not recorded unless asked for", async () => {
    t = await InprocTarget.create({ version: modelVersion(getProfile("3.15.0")), store: new MemoryStore(), backends: TWO_BACKENDS, network: "simulated" });
    await t.admin("PUT", "/apisix/admin/routes/1", fixtureText("routes/two-backends.json"));
    expect(await t.timeline()).toBeUndefined();
  });

  it("3.15.0: admin writes, the request and its instance, two created checkers, failing working ticks after the PATCH, one error line per second", async () => {
    t = await traced("3.15.0");
    const { start, events } = await steps13101(t);
    expect(of(events, "admin").map((e) => [e.method, e.path, e.status, e.t - start])).toEqual([
      ["PUT", "/apisix/admin/routes/1", 201, 0],
      ["PATCH", "/apisix/admin/routes/1", 200, 2000],
    ]);
    const [req] = of(events, "request");
    expect(req).toMatchObject({ method: "POST", path: "/ai/chat/completions", status: 200 });
    expect(["a", "b"]).toContain(req!.instance);

    const created = of(events, "checker");
    expect(created.map((e) => [e.action, e.resource, e.t - start]).sort()).toEqual([
      ["created", path("1", 0), 1000],
      ["created", path("1", 1), 1000],
    ]);
    expect(new Set(created.map((e) => e.checker)).size).toBe(2);

    // After the create tick at 1 s both checkers are in the working pool and the waiting pool is empty.
    const createTick = of(events, "tick").find((e) => e.timer === "create" && e.t - start === 1000)!;
    expect(createTick.ok).toBe(true);
    expect(createTick.pools.waiting).toEqual({});
    expect(Object.values(createTick.pools.working).map((w) => w.checker).sort()).toEqual(created.map((e) => e.checker).sort());

    const failedTicks = of(events, "tick").filter((e) => !e.ok);
    expect(failedTicks.map((e) => [e.timer, e.t - start])).toEqual([
      ["working", 3000],
      ["working", 4000],
      ["working", 5000],
    ]);
    expect(failedTicks[0]!.error).toContain("attempt to index local 'upstream' (a nil value)");
    const errors = of(events, "log").filter((e) => e.level === "error");
    expect(errors.map((e) => e.t - start)).toEqual([3000, 4000, 5000]);
    expect(errors[0]!.text).toContain("healthcheck_manager.lua:292: failed to run timer_working_pool_check");

    // Both checkers probe their backend once a second from one interval after their start (2 s,
    // 3 s, 4 s, each a few ms after the active-check timer's tick), and every probe succeeds.
    const probes = of(events, "probe");
    expect(probes.length).toBe(6);
    expect(probes.every((p) => p.ok && p.result === "200")).toBe(true);
  });

  it("3.18.0: no failing tick, and the PATCH keeps both checkers (same identity, new version)", async () => {
    t = await traced("3.18.0");
    const { events } = await steps13101(t);
    expect(of(events, "tick").every((e) => e.ok)).toBe(true);
    expect(of(events, "log").filter((e) => e.level === "error")).toEqual([]);
    const lifecycle = of(events, "checker");
    const created = lifecycle.filter((e) => e.action === "created");
    const kept = lifecycle.filter((e) => e.action === "kept");
    expect(kept.map((e) => e.checker).sort()).toEqual(created.map((e) => e.checker).sort());
    expect(kept.every((k) => k.version !== created.find((c) => c.checker === k.checker)!.version)).toBe(true);
  });

  it("3.17.0: the PATCH destroys both checkers; the next request's checkers are new ones", async () => {
    t = await traced("3.17.0");
    await steps13101(t);
    await t.request("POST", "/ai/chat/completions", {}, CHAT);
    await t.wait(2000);
    const lifecycle = of((await t.timeline())!, "checker");
    const actions = lifecycle.map((e) => e.action);
    expect(actions.slice(0, 4)).toEqual(["created", "created", "destroyed", "destroyed"]);
    expect(actions.slice(4)).toEqual(["created", "created"]);
    const first = new Set(lifecycle.slice(0, 2).map((e) => e.checker));
    expect(lifecycle.slice(4).some((e) => first.has(e.checker))).toBe(false);
  });

  it("a backend going down shows failing probes and a health change for its target", async () => {
    t = await traced("3.18.0");
    await steps13101(t);
    await t.setBackend("a", { kind: "down" });
    await t.wait(3000);
    const events = (await t.timeline())!;
    const down = of(events, "health").filter((e) => !e.healthy);
    expect(down.length).toBeGreaterThanOrEqual(1);
    const target = down[0]!.target;
    expect(target).toMatch(/^127\.\d+\.\d+\.\d+:\d+$/);
    // 3.18.0 probes a domain node with its domain as Host header.
    expect(of(events, "probe").some((p) => p.target === `a.test(${target})` && !p.ok && p.result !== "200")).toBe(true);
    // The library's warn line counting the failure is on the log lane too.
    const ip = target.split(":")[0]!;
    expect(of(events, "log").some((e) => e.level === "warn" && e.text.includes(`unhealthy TCP increment (1/1) for '${ip}(${target})'`))).toBe(true);
  });
});
