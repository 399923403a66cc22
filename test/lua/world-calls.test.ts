import { describe, expect, it } from "vitest";
import { VirtualClock } from "../../harness/gateway/clock/virtual-clock.ts";
import { WorldCalls } from "../../harness/gateway/lua/world-calls.ts";
import type { ProbeRequest, ProbeResult, Transport } from "../../harness/gateway/net/transport.ts";

/** A transport whose connects get `result`; a connection answers 200 and counts its requests. */
function transport(result: ProbeResult): Transport & { exchanges: ProbeRequest[]; closed: number } {
  const t = {
    exchanges: [] as ProbeRequest[],
    closed: 0,
    connectOutcomes: () => ({}),
    probe: () => Promise.reject(new Error("a probe without a connect")),
    connectProbe: async () => (result.kind !== "status" ? { result } : { result, connection: { exchange: async (r: ProbeRequest) => (t.exchanges.push(r), { kind: "status" as const, status: 200 }), close: () => void (t.closed += 1) } }),
    forward: () => Promise.reject(new Error("no forwards here")),
    close: async () => undefined,
  };
  return t;
}

const REQUEST = "GET /health HTTP/1.1\r\nConnection: close\r\nHost: a.test\r\n\r\n";
const calls = (t: Transport) => new WorldCalls({ transport: t, clock: new VirtualClock(0), sharedDicts: new Map() });

describe("a probe's connect", () => {
  it("that the transport refuses to make (an address off loopback) fails that call only, and leaves nothing unhandled", async () => {
    const t = { ...transport({ kind: "status", status: 0 }), connectProbe: () => Promise.reject(new Error("refusing to connect to 10.0.0.1: only loopback addresses are allowed")) };
    const w = calls(t);
    await expect(w.answer(0, { call: "tcp", op: "connect", ip: "10.0.0.1", port: 80, timeout: 1000 })).rejects.toThrow(/only loopback/);
    // The next connect there, and the run's end, drop the failed one again.
    await expect(w.answer(0, { call: "tcp", op: "connect", ip: "10.0.0.1", port: 80, timeout: 1000 })).rejects.toThrow(/only loopback/);
    w.connectAhead(0, { ip: "10.0.0.1", port: 80, timeout: 1000 });
    w.close();
    await new Promise((r) => setTimeout(r, 10));
  });
});

describe("a probe's connect made ahead", () => {
  it("carries the socket's request", async () => {
    const t = transport({ kind: "status", status: 0 });
    const w = calls(t);
    w.connectAhead(0, { ip: "127.0.0.9", port: 80, timeout: 1000 });
    const reply = await w.answer(0, { call: "tcp", op: "exchange", ip: "127.0.0.9", port: 80, data: REQUEST, timeout: 1000 });
    expect(reply).toEqual({ data: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n" });
    expect(t.exchanges.map((r) => [r.path, r.hostHeader])).toEqual([["/health", "a.test"]]);
  });

  it("that failed after all (a backend taken down meanwhile) fails the request as a connection the peer ended", async () => {
    const refused = calls(transport({ kind: "refused", error: "connect ECONNREFUSED" }));
    refused.connectAhead(0, { ip: "127.0.0.9", port: 80, timeout: 1000 });
    expect(await refused.answer(0, { call: "tcp", op: "exchange", ip: "127.0.0.9", port: 80, data: REQUEST, timeout: 1000 })).toEqual({ err: "connection reset by peer" });
    const late = calls(transport({ kind: "timeout" }));
    late.connectAhead(0, { ip: "127.0.0.9", port: 80, timeout: 1000 });
    expect(await late.answer(0, { call: "tcp", op: "exchange", ip: "127.0.0.9", port: 80, data: REQUEST, timeout: 1000 })).toEqual({ err: "timeout" });
  });

  it("that no request followed (a TCP check) is ended by the next connect there, or when the run ends", async () => {
    const t = transport({ kind: "status", status: 0 });
    const w = calls(t);
    w.connectAhead(0, { ip: "127.0.0.9", port: 80, timeout: 1000 });
    w.connectAhead(0, { ip: "127.0.0.9", port: 80, timeout: 1000 });
    w.connectAhead(1, { ip: "127.0.0.9", port: 80, timeout: 1000 });
    await new Promise((r) => setTimeout(r, 0));
    expect(t.closed).toBe(1);
    w.close();
    await new Promise((r) => setTimeout(r, 0));
    expect(t.closed).toBe(3);
  });
});
