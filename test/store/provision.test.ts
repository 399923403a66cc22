/**
 * Which store a run gets, and that whatever was started is gone afterwards. etcd processes are
 * counted as children of this test process (`pgrep -x etcd -P <pid>`), so etcds started by test
 * files running in parallel do not disturb the counts.
 */

import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { dockerAvailable } from "../../harness/etcd/container.ts";
import { findEtcdBinary, freePorts, startLocalEtcd } from "../../harness/etcd/local-etcd.ts";
import { acquireStore, sharedStore } from "../../harness/etcd/provision.ts";

const etcdBin = findEtcdBinary();

/** etcd processes this test process started: "pid cmdline" lines. */
function etcdChildren(): { pid: number; cmd: string }[] {
  try {
    const out = execFileSync("pgrep", ["-a", "-x", "etcd", "-P", String(process.pid)], { encoding: "utf8" });
    return out
      .trim()
      .split("\n")
      .filter(Boolean)
      .map((line) => {
        const [pid, ...rest] = line.split(" ");
        return { pid: Number(pid), cmd: rest.join(" ") };
      });
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A loopback port nothing listens on. */
async function deadPort(): Promise<number> {
  return (await freePorts(1))[0]!;
}

/** A TCP server that accepts connections and never says anything (a hung etcd). */
async function silentServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const srv: Server = createServer((s) => void sockets.add(s));
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  return {
    port: (srv.address() as { port: number }).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  };
}

async function health(endpoint: string): Promise<boolean> {
  try {
    const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
    return ((await res.json()) as { health?: string }).health === "true";
  } catch {
    return false;
  }
}

function lines() {
  const out: string[] = [];
  return { out, log: (l: string) => void out.push(l) };
}

afterEach(() => {
  vi.unstubAllEnvs();
});

describe("acquireStore", () => {
  it('prefer "memory" gives a working in-memory store and says it was asked for', async () => {
    const { out, log } = lines();
    const before = etcdChildren().length;
    const p = await acquireStore({ prefer: "memory", log });
    expect(out).toEqual(["store: in-memory (requested: prefer memory)"]);
    expect(p.kind).toBe("memory");
    expect(p.source).toBe("memory");
    expect(p.store.kind).toBe("memory");
    expect(p.endpoints).toBeUndefined();
    expect(await p.store.revision()).toBe(1);
    expect(await p.store.put("/apisix/routes/1", "{}")).toBe(2);
    expect(etcdChildren().length).toBe(before);
    await p.release();
    await p.release(); // idempotent
    await expect(p.store.put("/apisix/routes/1", "{}")).rejects.toThrow(/closed/);
  });

  it.skipIf(!etcdBin.path)(
    `starts a local etcd binary (${etcdBin.path ?? etcdBin.reason}), names it and its port, and release() leaves nothing behind`,
    async () => {
      vi.stubEnv("ETCD_ENDPOINTS", undefined);
      const { out, log } = lines();
      const before = etcdChildren();
      const p = await acquireStore({ log });
      let released = false;
      try {
        expect(out).toHaveLength(1);
        const re = new RegExp(
          `^store: etcd (3\\.\\d+\\.\\d+) \\(local binary ${etcdBin.path!.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}, 127\\.0\\.0\\.1:(\\d+), started in (\\d+) ms\\)$`,
        );
        const m = re.exec(out[0]!);
        expect(m, out[0]).not.toBeNull();
        const [, version, port, ms] = m!;
        expect(execFileSync(etcdBin.path!, ["--version"], { encoding: "utf8" })).toContain(`etcd Version: ${version}`);
        expect(p.kind).toBe("etcd");
        expect(p.source).toBe("local-binary");
        expect(p.store.kind).toBe("etcd");
        expect(p.endpoints).toEqual([`http://127.0.0.1:${port}`]);
        expect(p.startMs).toBe(Number(ms));
        expect(p.startMs).toBeLessThan(10_000);

        // Exactly one new etcd child, listening on the port the line names.
        const started = etcdChildren().filter((c) => !before.some((b) => b.pid === c.pid));
        expect(started).toHaveLength(1);
        expect(started[0]!.cmd).toContain(`--listen-client-urls http://127.0.0.1:${port}`);
        const dataDir = /--data-dir (\S+)/.exec(started[0]!.cmd)![1]!;
        expect(dataDir.startsWith(join(tmpdir(), "harness-etcd-"))).toBe(true);
        expect(existsSync(dataDir)).toBe(true);

        // It is a real etcd: a write through the store is visible over etcd's own HTTP API.
        const rev = await p.store.put("/provision/k", "v");
        expect(rev).toBeGreaterThan(1);
        expect(await health(p.endpoints![0]!)).toBe(true);

        await p.release();
        released = true;
        await p.release(); // idempotent
        expect(etcdChildren().length).toBe(before.length);
        expect(pidAlive(started[0]!.pid)).toBe(false);
        expect(existsSync(dataDir)).toBe(false);
        expect(await health(`http://127.0.0.1:${port}`)).toBe(false);
      } finally {
        if (!released) await p.release();
      }
    },
  );

  it("falls back to memory, saying why, when ETCD_BIN is wrong, PATH has no etcd and Docker does not answer", async () => {
    const emptyDir = mkdtempSync(join(tmpdir(), "provision-empty-path-"));
    try {
      const port = await deadPort();
      vi.stubEnv("ETCD_BIN", "/nonexistent/etcd");
      vi.stubEnv("PATH", emptyDir);
      vi.stubEnv("ETCD_ENDPOINTS", undefined);
      vi.stubEnv("DOCKER_HOST", `tcp://127.0.0.1:${port}`);
      const { out, log } = lines();
      const before = etcdChildren().length;
      const t0 = performance.now();
      const p = await acquireStore({ log });
      const ms = performance.now() - t0;
      expect(ms).toBeLessThan(3000);
      expect(out).toHaveLength(1);
      expect(out[0]).toMatch(
        new RegExp(
          `^store: in-memory \\(ETCD_BIN=/nonexistent/etcd is not an executable file, no etcd binary on PATH, ETCD_ENDPOINTS unset, ` +
            `Docker not available: Docker engine not answering \\(tcp://127\\.0\\.0\\.1:${port}: connect ECONNREFUSED 127\\.0\\.0\\.1:${port}\\)\\)$`,
        ),
      );
      expect(p.kind).toBe("memory");
      expect(p.source).toBe("memory");
      expect(p.reason).toBe(out[0]!.slice("store: in-memory (".length, -1));
      expect(etcdChildren().length).toBe(before);
      expect(await p.store.put("/apisix/x", "1")).toBe(2);
      await p.release();
    } finally {
      rmSync(emptyDir, { recursive: true, force: true });
    }
  });

  it("fails loudly and quickly when ETCD_ENDPOINTS points at a dead port (no fallback)", async () => {
    const port = await deadPort();
    vi.stubEnv("ETCD_ENDPOINTS", `http://127.0.0.1:${port}`);
    const { out, log } = lines();
    const before = etcdChildren().length;
    const t0 = performance.now();
    await expect(acquireStore({ log })).rejects.toThrow(
      new RegExp(`^ETCD_ENDPOINTS=http://127\\.0\\.0\\.1:${port} is set but etcd does not answer there: .*ECONNREFUSED`),
    );
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(out).toEqual([]);
    // It must not quietly start its own etcd instead.
    expect(etcdChildren().length).toBe(before);
  });

  it("does not hang when ETCD_ENDPOINTS accepts connections but never answers", async () => {
    const silent = await silentServer();
    try {
      vi.stubEnv("ETCD_ENDPOINTS", `127.0.0.1:${silent.port}`);
      const t0 = performance.now();
      await expect(acquireStore({ log: () => {} })).rejects.toThrow(/ETCD_ENDPOINTS=127\.0\.0\.1:\d+ is set but etcd does not answer/);
      const ms = performance.now() - t0;
      expect(ms).toBeGreaterThan(1000); // it really waited for the deadline, not a refusal
      expect(ms).toBeLessThan(4000);
    } finally {
      await silent.close();
    }
  });

  it.skipIf(!etcdBin.path)("uses a live ETCD_ENDPOINTS etcd without starting one, and release() leaves that etcd running", async () => {
    const external = await startLocalEtcd({ bin: etcdBin.path! });
    try {
      vi.stubEnv("ETCD_ENDPOINTS", ` ${external.endpoint} `);
      const { out, log } = lines();
      const before = etcdChildren().length;
      const p = await acquireStore({ log });
      expect(out).toHaveLength(1);
      expect(out[0]).toMatch(new RegExp(`^store: etcd 3\\.\\d+\\.\\d+ \\(ETCD_ENDPOINTS=${external.endpoint}, answered in \\d+ ms\\)$`));
      expect(p.source).toBe("ETCD_ENDPOINTS");
      expect(p.endpoints).toEqual([external.endpoint]);
      expect(etcdChildren().length).toBe(before);
      const rev = await p.store.put("/provision/external", "1");
      await p.release();
      expect(await health(external.endpoint)).toBe(true);
      expect(external.running).toBe(true);
      // The write went to that etcd.
      const again = await acquireStore({ log: () => {} });
      expect((await again.store.get("/provision/external"))?.modRevision).toBe(rev);
      await again.release();
    } finally {
      await external.stop();
    }
  });
});

describe("dockerAvailable", () => {
  it("answers within 3 s on this machine, and says no with a reason when there is no engine", async () => {
    const t0 = performance.now();
    const res = await dockerAvailable();
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(res.reason.length).toBeGreaterThan(0);
    if (!process.env.DOCKER_HOST && !existsSync("/var/run/docker.sock")) {
      // This machine: docker CLI maybe, daemon no.
      expect(res).toEqual({ available: false, reason: expect.stringContaining("/var/run/docker.sock missing") });
    }
  });

  it("says yes for an engine that answers /_ping, and gives up on a silent one within 3 s", async () => {
    const dir = mkdtempSync(join(tmpdir(), "provision-docker-"));
    const fake = createHttpServer((req, res) => {
      res.writeHead(req.url === "/_ping" ? 200 : 404).end("OK");
    });
    const silentSockets = new Set<Socket>();
    const silent = createServer((s) => void silentSockets.add(s));
    try {
      const fakeSock = join(dir, "fake.sock");
      const silentSock = join(dir, "silent.sock");
      await new Promise<void>((r) => fake.listen(fakeSock, () => r()));
      await new Promise<void>((r) => silent.listen(silentSock, () => r()));

      expect(await dockerAvailable({ DOCKER_HOST: `unix://${fakeSock}` })).toEqual({ available: true, reason: `Docker engine at unix://${fakeSock}` });

      const t0 = performance.now();
      const res = await dockerAvailable({ DOCKER_HOST: `unix://${silentSock}` });
      expect(performance.now() - t0).toBeLessThan(3000);
      expect(res.available).toBe(false);
      expect(res.reason).toMatch(/no answer/);

      const missing = await dockerAvailable({ DOCKER_HOST: `unix://${join(dir, "missing.sock")}` });
      expect(missing).toEqual({ available: false, reason: `DOCKER_HOST=unix://${join(dir, "missing.sock")} but ${join(dir, "missing.sock")} does not exist` });
    } finally {
      for (const s of silentSockets) s.destroy();
      await new Promise<void>((r) => fake.close(() => r()));
      await new Promise<void>((r) => silent.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!etcdBin.path)("sharedStore", () => {
  it("starts one etcd for many callers, gives each its own prefix and client, and stops it after the last release", async () => {
    vi.stubEnv("ETCD_ENDPOINTS", undefined);
    const { out, log } = lines();
    const before = etcdChildren().length;
    const [a, b] = await Promise.all([sharedStore({ log }), sharedStore({ log })]);
    const c = await sharedStore({ log });
    try {
      expect(out).toHaveLength(1);
      expect(out[0]).toMatch(/^store: etcd .*local binary/);
      expect(etcdChildren().length).toBe(before + 1);
      expect(a.endpoints).toEqual(b.endpoints);
      expect(c.endpoints).toEqual(a.endpoints);
      const prefixes = [a.prefix, b.prefix, c.prefix];
      for (const x of prefixes) for (const y of prefixes) if (x !== y) expect(y.startsWith(x)).toBe(false);
      expect(new Set(prefixes).size).toBe(3);

      // Same etcd: a write by one is visible to another.
      const rev = await a.store.put(`${a.prefix}/k`, "from a");
      expect((await b.store.get(`${a.prefix}/k`))?.modRevision).toBe(rev);

      // Own client: restarting a's client breaks a's watch only.
      const broken: string[] = [];
      const seenByB: number[] = [];
      await a.store.watch(`${a.prefix}/`, rev + 1, { onBatch: () => {}, onBroken: (r) => void broken.push(`a:${r}`) });
      await b.store.watch(`${a.prefix}/`, rev + 1, { onBatch: (x) => void seenByB.push(x.revision), onBroken: (r) => void broken.push(`b:${r}`) });
      await a.store.restart();
      const rev2 = await c.store.put(`${a.prefix}/k`, "from c");
      const t0 = Date.now();
      while (seenByB.length === 0 && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 5));
      expect(broken).toEqual(["a:restart"]);
      expect(seenByB).toEqual([rev2]);

      await a.release();
      await b.release();
      expect(etcdChildren().length).toBe(before + 1); // c still holds it
      expect(await c.store.get(`${a.prefix}/k`)).toMatchObject({ value: "from c" });
    } finally {
      await a.release();
      await b.release();
      await c.release();
    }
    expect(etcdChildren().length).toBe(before);
  });
});
