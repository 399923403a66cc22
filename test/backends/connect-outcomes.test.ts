import { afterEach, describe, expect, it } from "vitest";
import type { BackendMode } from "../../harness/backends/backend.ts";
import { LoopbackBackends, SimulatedBackends, type BackendPool } from "../../harness/backends/pool.ts";
import { Resolver } from "../../harness/gateway/resolver/resolver.ts";

/**
 * connectOutcomes says which connects a prober may take as done before they are (the lua
 * engine's sockets go on at once there): every outcome it names must be the one connectProbe gets.
 */
const MODES: Record<string, BackendMode> = {
  healthy: { kind: "healthy" },
  status: { kind: "status", status: 503 },
  slow: { kind: "slow", delayMs: 5000 },
  down: { kind: "down" },
};

let pool: BackendPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

async function outcomes(make: () => BackendPool): Promise<{ told: Record<string, string>; got: Record<string, string> }> {
  pool = make();
  const ips: Record<string, string> = {};
  for (const [name, mode] of Object.entries(MODES)) ips[name] = (await pool.add({ name, hosts: [`${name}.test`], mode })).ip;
  const byIp = pool.connectOutcomes();
  const told: Record<string, string> = {};
  const got: Record<string, string> = {};
  for (const [name, ip] of Object.entries(ips)) {
    if (byIp[ip] !== undefined) told[name] = byIp[ip]!;
    const c = await pool.connectProbe({ ip, port: 80, type: "tcp", path: "/", headers: [], timeoutMs: 1000 });
    c.connection?.close();
    got[name] = c.result.kind === "status" ? "connected" : c.result.kind;
  }
  return { told, got };
}

describe("connectOutcomes", () => {
  it("loopback: every backend's connect is known, and is what connecting gets", async () => {
    const { told, got } = await outcomes(() => new LoopbackBackends(new Resolver()));
    expect(told).toEqual({ healthy: "connected", status: "connected", slow: "connected", down: "refused" });
    expect(got).toEqual(told);
  });

  it("simulated: a slow backend's connect is left unknown (it times out when the delay reaches the timeout)", async () => {
    const { told, got } = await outcomes(() => new SimulatedBackends(new Resolver()));
    expect(told).toEqual({ healthy: "connected", status: "connected", down: "refused" });
    expect(got).toEqual({ ...told, slow: "timeout" });
  });

  it("follows a backend's mode as it changes", async () => {
    const p = new LoopbackBackends(new Resolver());
    pool = p;
    const b = await p.add({ name: "b", hosts: ["b.test"], mode: { kind: "healthy" } });
    await p.setMode("b", { kind: "down" });
    expect(p.connectOutcomes()).toEqual({ [b.ip]: "refused" });
    await p.setMode("b", { kind: "healthy" });
    expect(p.connectOutcomes()).toEqual({ [b.ip]: "connected" });
  });
});
