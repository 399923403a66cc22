/**
 * EtcdStore over etcd's v3 JSON gateway, beyond what the conformance suite asks of every store:
 * how the wire protocol is spoken (prefix ranges, watch messages split anywhere), what a watch
 * stream that etcd ends or breaks looks like, how an endpoint that is dead or silent fails, and
 * that close() leaves nothing that keeps the process alive. The odd streams come from a small
 * fake gateway on loopback; the rest from a real etcd.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTcpServer, type Socket } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { EtcdStore } from "../../harness/etcd/etcd-store.ts";
import { fromBase64, prefixRange, toBase64 } from "../../harness/etcd/gateway-client.ts";
import { findEtcdBinary, freePorts, startLocalEtcd, type LocalEtcd } from "../../harness/etcd/local-etcd.ts";
import { StoreError, type WatchBatch } from "../../harness/gateway/config/store.ts";
import { sleep, until } from "../helpers/wait.ts";

function recorder() {
  const batches: WatchBatch[] = [];
  const broken: string[] = [];
  return { batches, broken, handlers: { onBatch: (b: WatchBatch) => void batches.push(b), onBroken: (r: string) => void broken.push(r) } };
}

const line = (result: object): string => JSON.stringify({ result }) + "\n";
const created = line({ header: { revision: "7" }, created: true });

/** A fake etcd gateway: `watch` answers POST /v3/watch; every other path answers 404. */
async function fakeGateway(watch: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<{ endpoint: string; close(): Promise<void> }> {
  const srv: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      if (req.url === "/v3/watch") return watch(req, res, body);
      res.writeHead(404, { "content-type": "text/plain" }).end("404 page not found\n");
    });
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  const port = (srv.address() as { port: number }).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        srv.closeAllConnections();
        srv.close(() => r());
      }),
  };
}

/** A loopback port nothing listens on. */
async function deadPort(): Promise<number> {
  return (await freePorts(1))[0]!;
}

const opened: EtcdStore[] = [];
const cleanups: (() => Promise<void>)[] = [];
function store(endpoints: string[], opts?: ConstructorParameters<typeof EtcdStore>[2]): EtcdStore {
  const s = new EtcdStore(endpoints, "test store", opts);
  opened.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
  await Promise.all(cleanups.splice(0).map((f) => f()));
});

describe("prefixRange", () => {
  it("ends a prefix at its last byte plus one, and spells every key as [\\0, \\0)", () => {
    const decode = (r: { key: string; range_end: string }) => [Buffer.from(r.key, "base64"), Buffer.from(r.range_end, "base64")];
    expect(decode(prefixRange("/apisix/routes/"))).toEqual([Buffer.from("/apisix/routes/"), Buffer.from("/apisix/routes0")]);
    // é is C3 A9 in UTF-8: the range ends at C3 AA, a byte sequence, not a character + 1.
    expect(decode(prefixRange("/é"))).toEqual([Buffer.from("/é"), Buffer.from([0x2f, 0xc3, 0xaa])]);
    expect(decode(prefixRange(""))).toEqual([Buffer.from([0]), Buffer.from([0])]);
    expect(fromBase64(toBase64("\u{1F600}/k"))).toBe("\u{1F600}/k");
  });
});

describe("watch streams that are not the usual", () => {
  it("decodes a watch message split across writes, even inside a character, and asks for the prefix and revision it was given", async () => {
    let asked: unknown;
    const value = "caf\u00e9 \u{1F600}";
    const event = line({
      header: { revision: "9" },
      events: [{ kv: { key: toBase64("/p/k"), value: toBase64(value), create_revision: "8", mod_revision: "9" } }],
    });
    const bytes = Buffer.from(event);
    // The event is cut inside its JSON; the cancel after it inside the two bytes of an é (its
    // cancel_reason is plain text, unlike keys and values, which are base64).
    const reason = line({ header: {}, canceled: true, cancel_reason: "r\u00e9voqu\u00e9" });
    const reasonBytes = Buffer.from(reason);
    const cut = reasonBytes.indexOf(0xc3) + 1;
    const gw = await fakeGateway((_req, res, body) => {
      asked = JSON.parse(body);
      res.writeHead(200, { "content-type": "application/json" });
      res.write(created);
      res.write(bytes.subarray(0, 40));
      setTimeout(() => {
        res.write(Buffer.concat([bytes.subarray(40), reasonBytes.subarray(0, cut)]));
        setTimeout(() => res.write(reasonBytes.subarray(cut)), 20);
      }, 20);
    });
    cleanups.push(gw.close);
    const rec = recorder();
    await store([gw.endpoint]).watch("/p/", 8, rec.handlers);
    await until(() => rec.broken.length > 0, "the cancel after the event");
    expect(asked).toEqual({ create_request: { key: toBase64("/p/"), range_end: toBase64("/p0"), start_revision: "8" } });
    expect(rec.batches).toEqual([{ revision: 9, events: [{ type: "put", kv: { key: "/p/k", value, createRevision: 8, modRevision: 9 } }] }]);
    expect(rec.broken).toEqual(["watch cancelled by etcd: r\u00e9voqu\u00e9"]);
  });

  it("a watch stream that etcd ends is reported broken once, and nothing arrives after", async () => {
    const gw = await fakeGateway((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write(created);
      setTimeout(() => res.end(), 20);
    });
    cleanups.push(gw.close);
    const rec = recorder();
    await store([gw.endpoint]).watch("/p/", 0, rec.handlers);
    await until(() => rec.broken.length > 0, "onBroken");
    await sleep(100);
    expect(rec.broken).toEqual(["connection lost: etcd ended the watch stream"]);
    expect(rec.batches).toEqual([]);
  });

  it("a gateway error inside the stream breaks the watch with etcd's message", async () => {
    const gw = await fakeGateway((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write(created);
      res.write(JSON.stringify({ error: { grpc_code: 14, http_code: 503, message: "transport is closing", http_status: "Service Unavailable" } }) + "\n");
    });
    cleanups.push(gw.close);
    const rec = recorder();
    await store([gw.endpoint]).watch("/p/", 0, rec.handlers);
    await until(() => rec.broken.length > 0, "onBroken");
    expect(rec.broken).toEqual(["connection lost: etcd's gateway reported: transport is closing"]);
  });

  it("a watch etcd cancels before confirming it, or a gateway that answers 404, fails watch() naming the store", async () => {
    const refusing = await fakeGateway((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write(line({ header: {}, canceled: true, cancel_reason: "permission denied" }));
    });
    cleanups.push(refusing.close);
    const host = refusing.endpoint.slice("http://".length);
    await expect(store([refusing.endpoint]).watch("/p/", 0, recorder().handlers)).rejects.toThrow(
      new StoreError(`etcd at ${host}: etcd refused watch on /p/: permission denied`),
    );

    const other = await fakeGateway(() => undefined);
    cleanups.push(other.close);
    const notEtcd = store([other.endpoint]);
    const otherHost = other.endpoint.slice("http://".length);
    await expect(notEtcd.put("/k", "v")).rejects.toThrow(new StoreError(`etcd at ${otherHost}: HTTP 404: 404 page not found`));
  });

  it("a gateway that accepts the watch and never confirms it fails watch() after watchConnectTimeoutMs", async () => {
    const gw = await fakeGateway((_req, res) => void res.writeHead(200, { "content-type": "application/json" }).flushHeaders());
    cleanups.push(gw.close);
    const s = store([gw.endpoint], { watchConnectTimeoutMs: 300 });
    const err = await s.watch("/p/", 0, recorder().handlers).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as Error).message).toBe(`etcd at ${gw.endpoint.slice("http://".length)}: etcd watch on /p/ timed out after 300 ms`);
  });
});

describe("endpoints that do not answer", () => {
  it("a dead endpoint fails every call at once with a StoreError naming it, without waiting for the deadline", async () => {
    const port = await deadPort();
    const s = store([`http://127.0.0.1:${port}`], { callTimeoutMs: 60_000, watchConnectTimeoutMs: 60_000 });
    const refused = `etcd at 127.0.0.1:${port} does not answer (connect ECONNREFUSED 127.0.0.1:${port})`;
    // The deadlines are a minute: only a failure that does not wait for them ends within the test's time.
    await expect(s.put("/k", "v")).rejects.toThrow(new StoreError(refused));
    await expect(s.revision()).rejects.toThrow(new StoreError(refused));
    await expect(s.watch("/p/", 0, recorder().handlers)).rejects.toThrow(
      new StoreError(`etcd at 127.0.0.1:${port}: etcd failed to open watch on /p/: connect ECONNREFUSED 127.0.0.1:${port}`),
    );
  }, 10_000);

  it("a call under way when the store closes ends at once as 'store is closed'", async () => {
    const sockets = new Set<Socket>();
    const silent = createTcpServer((sock) => void sockets.add(sock));
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", () => r()));
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          for (const sock of sockets) sock.destroy();
          silent.close(() => r());
        }),
    );
    const s = store([`http://127.0.0.1:${(silent.address() as { port: number }).port}`], { callTimeoutMs: 60_000 });
    const pending = s.put("/k", "v").then(() => undefined, (e: unknown) => e);
    await until(() => sockets.size > 0, "the call's connection");
    await s.close();
    expect(await pending).toEqual(new StoreError("test store: store is closed"));
  }, 10_000);
});

const etcdBinary = findEtcdBinary();
describe.skipIf(!etcdBinary.path)(`on a real etcd${etcdBinary.path ? "" : ` (skipped: ${etcdBinary.reason})`}`, () => {
  let etcd: LocalEtcd;
  beforeAll(async () => {
    etcd = await startLocalEtcd({ bin: etcdBinary.path! });
  }, 20_000);
  afterAll(() => etcd?.stop());

  it("etcd's own refusal names the store and says etcd's reason, not that it does not answer", async () => {
    const s = store([etcd.endpoint]);
    const future = (await s.revision()) + 100;
    await expect(s.compact(future)).rejects.toThrow(new StoreError(`etcd at 127.0.0.1:${etcd.clientPort}: etcdserver: mvcc: required revision is a future revision`));
  });

  it("with a dead endpoint first, calls and watches go to the next one", async () => {
    const port = await deadPort();
    const s = store([`http://127.0.0.1:${port}`, etcd.endpoint]);
    expect(s.name).toBe(`etcd at 127.0.0.1:${port},127.0.0.1:${etcd.clientPort}`);
    const rec = recorder();
    await s.watch("/failover/", 0, rec.handlers);
    const rev = await s.put("/failover/k", "v");
    expect((await s.get("/failover/k"))?.modRevision).toBe(rev);
    await until(() => rec.batches.length > 0, "the event through the second endpoint");
    expect(rec.batches.map((b) => b.revision)).toEqual([rev]);
  });

  it("close() leaves no socket and no timer behind: the process could exit at once", async () => {
    const held = (): string[] => process.getActiveResourcesInfo().filter((r) => r === "TCPSocketWrap" || r === "Timeout");
    // What the previous test's stores held is let go first.
    await sleep(50);
    const before = held().length;
    const s = new EtcdStore([etcd.endpoint], "leak check");
    const rec = recorder();
    await s.watch("/leak/", 0, rec.handlers);
    await s.watch("", 0, rec.handlers);
    await Promise.all([s.put("/leak/a", "1"), s.put("/leak/b", "2"), s.range("/leak/"), s.status()]);
    await until(() => rec.batches.length >= 4, "the events of both watches");
    expect(held().length).toBeGreaterThan(before);
    await s.close();
    // Closed handles are released on the next turns of the event loop.
    await until(() => held().length <= before, "the sockets to close", 2000).catch(() => undefined);
    expect(held().length, held().join(", ")).toBeLessThanOrEqual(before);
    expect(rec.broken).toEqual([]);
  });
});
