import { createServer, type Server } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { LoopbackBackends } from "../../harness/backends/pool.ts";
import { Resolver } from "../../harness/gateway/resolver/resolver.ts";

/**
 * A backend that is down has closed its port, and in a run of many another run's backend may
 * listen on that port next. The gateway must still find it down.
 */
let pool: LoopbackBackends | undefined;
let squatter: Server | undefined;
afterEach(async () => {
  await pool?.close();
  await new Promise<void>((r) => (squatter ? squatter.close(() => r()) : r()));
  pool = undefined;
  squatter = undefined;
});

/** Another server, answering 200 on `port` (where the backend listened before it went down). */
async function squat(port: number): Promise<void> {
  squatter = createServer((_req, res) => res.end("not the backend"));
  await new Promise<void>((resolve, reject) => {
    squatter!.once("error", reject);
    squatter!.listen(port, "127.0.0.1", () => resolve());
  });
}

describe("a loopback backend that is down", () => {
  it("refuses probes and forwarded requests even when another server took its port", async () => {
    pool = new LoopbackBackends(new Resolver());
    const b = await pool.add({ name: "b", hosts: ["b.test"], mode: { kind: "healthy" } });
    const port = pool.portOf("b");
    await pool.setMode("b", { kind: "down" });
    await squat(port);

    const probe = await pool.probe({ ip: b.ip, port: 80, type: "http", path: "/", headers: [], timeoutMs: 1000 });
    expect(probe).toEqual({ kind: "refused", error: `connect ECONNREFUSED 127.0.0.1:${port}` });
    const connected = await pool.connectProbe({ ip: b.ip, port: 80, type: "tcp", path: "/", headers: [], timeoutMs: 1000 });
    expect(connected.result.kind).toBe("refused");
    await expect(pool.forward({ ip: b.ip, port: 80, scheme: "http", method: "POST", path: "/v1/chat/completions", headers: {}, body: "{}", timeoutMs: 1000 })).rejects.toMatchObject({ code: "ECONNREFUSED" });
    expect(b.probes + b.chatRequests).toBe(0);
  });

  it("answers again once it is back up", async () => {
    pool = new LoopbackBackends(new Resolver());
    const b = await pool.add({ name: "b", hosts: ["b.test"], mode: { kind: "down" } });
    expect((await pool.probe({ ip: b.ip, port: 80, type: "http", path: "/", headers: [], timeoutMs: 1000 })).kind).toBe("refused");
    await pool.setMode("b", { kind: "healthy" });
    expect(await pool.probe({ ip: b.ip, port: 80, type: "http", path: "/", headers: [], timeoutMs: 1000 })).toMatchObject({ kind: "status", status: 200 });
    expect(b.probes).toBe(1);
  });
});
