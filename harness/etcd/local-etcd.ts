/**
 * A throwaway single-node etcd from a local binary (ETCD_BIN, or `etcd` on PATH; Debian's
 * etcd-server installs /usr/bin/etcd). Each instance gets free loopback ports and a temp data
 * dir. The process and the dir are owned through harness/proc: they go when stop() is called,
 * when this process exits, and when it is killed (the reaper), and an ETCD_BIN wrapper script is
 * stopped together with the etcd it started.
 */

import { accessSync, constants as fsConstants, statSync } from "node:fs";
import { rm } from "node:fs/promises";
import { get as httpGet } from "node:http";
import { createServer } from "node:net";
import { delimiter, join } from "node:path";
import { ownedTempDir, spawnOwned, type ExitStatus, type OwnedDir, type OwnedProcess } from "../proc/index.ts";

export interface EtcdBinary {
  /** Absolute path of the binary, when one was found. */
  path?: string;
  /** Why this binary (or why none), for the "which store and why" line. */
  reason: string;
}

function isExecutableFile(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** ETCD_BIN when it names an executable, else the first `etcd` on PATH. */
export function findEtcdBinary(env: NodeJS.ProcessEnv = process.env): EtcdBinary {
  const notes: string[] = [];
  const fromEnv = env.ETCD_BIN;
  if (fromEnv) {
    if (isExecutableFile(fromEnv)) return { path: fromEnv, reason: `ETCD_BIN=${fromEnv}` };
    notes.push(`ETCD_BIN=${fromEnv} is not an executable file`);
  }
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, "etcd");
    if (isExecutableFile(candidate)) {
      notes.push(`etcd on PATH`);
      return { path: candidate, reason: notes.join(", ") };
    }
  }
  notes.push("no etcd binary on PATH");
  return { reason: notes.join(", ") };
}

/** n distinct free loopback ports (nothing listens on them when it returns). All are held open at once so they cannot coincide. */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () =>
      new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
        const srv = createServer();
        srv.once("error", reject);
        srv.listen(0, "127.0.0.1", () => resolve(srv));
      }),
    ),
  );
  const ports = servers.map((s) => {
    const addr = s.address();
    if (!addr || typeof addr === "string") throw new Error("could not read a free port");
    return addr.port;
  });
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * GET a small JSON document; undefined on any failure. node:http rather than fetch: fetch's
 * first use loads undici (~40 ms), on the critical path of every command that starts etcd.
 */
function getJson(url: string, timeoutMs: number): Promise<{ status: number; body: unknown } | undefined> {
  return new Promise((resolve) => {
    const req = httpGet(url, { timeout: timeoutMs, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown });
        } catch {
          resolve(undefined);
        }
      });
      res.on("error", () => resolve(undefined));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(undefined));
  });
}

export interface LocalEtcdOptions {
  /** Binary to run; default: findEtcdBinary(). */
  bin?: string;
  /** How long to wait for /health. Default 10 s. */
  startTimeoutMs?: number;
  /** Extra etcd flags. */
  extraArgs?: string[];
  /** Give up starting (the command was interrupted). */
  signal?: AbortSignal;
  /** Called once etcd is spawned, before it is healthy: a caller can load its client meanwhile. */
  onSpawned?: () => void;
}

class PortTakenError extends Error {}

/** Keep only the tail of etcd's stderr: enough to explain a failure, bounded in memory. */
const STDERR_KEEP = 16 * 1024;

export class LocalEtcd {
  readonly bin: string;
  readonly dataDir: string;
  clientPort: number;
  peerPort: number;
  /** etcd's server version, from GET /version. */
  version = "unknown";
  /** Milliseconds from spawn to healthy, of the last (re)start. */
  startMs = 0;
  /** Milliseconds of the very first start (including port retries). */
  firstStartMs = 0;

  private proc: OwnedProcess | undefined;
  private stderrTail = "";
  private stopped = false;
  private stopping: Promise<void> | undefined;
  private readonly startTimeoutMs: number;
  private readonly extraArgs: string[];
  private readonly onSpawned: (() => void) | undefined;

  private constructor(
    bin: string,
    private readonly home: OwnedDir,
    opts: LocalEtcdOptions,
  ) {
    this.bin = bin;
    // etcd's data dir inside the owned temp dir, so the owner's pid is in the name of what is swept.
    this.dataDir = join(home.path, "data");
    this.clientPort = 0;
    this.peerPort = 0;
    this.startTimeoutMs = opts.startTimeoutMs ?? 10_000;
    this.extraArgs = opts.extraArgs ?? [];
    this.onSpawned = opts.onSpawned;
  }

  /** Start a fresh etcd; rejects with etcd's stderr when it does not become healthy. */
  static async start(opts: LocalEtcdOptions = {}): Promise<LocalEtcd> {
    const bin = opts.bin ?? findEtcdBinary().path;
    if (!bin) throw new Error(`cannot start etcd: ${findEtcdBinary().reason}`);
    const etcd = new LocalEtcd(bin, ownedTempDir("etcd"), opts);
    const t0 = performance.now();
    try {
      // Ports are picked, released, then bound by etcd: another process may grab one in
      // between. etcd then exits with "address already in use"; try again with new ports.
      for (let attempt = 1; ; attempt++) {
        [etcd.clientPort, etcd.peerPort] = (await freePorts(2)) as [number, number];
        try {
          await etcd.launch(opts.signal);
          break;
        } catch (err) {
          if (!(err instanceof PortTakenError) || attempt >= 5) throw err;
          await rm(etcd.dataDir, { recursive: true, force: true });
        }
      }
      etcd.firstStartMs = Math.round(performance.now() - t0);
      etcd.version = await etcd.fetchVersion();
      return etcd;
    } catch (err) {
      await etcd.stop();
      throw err;
    }
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.clientPort}`;
  }

  get pid(): number | undefined {
    return this.proc?.running ? this.proc.pid : undefined;
  }

  get running(): boolean {
    return this.proc?.running ?? false;
  }

  private args(): string[] {
    const client = `http://127.0.0.1:${this.clientPort}`;
    const peer = `http://127.0.0.1:${this.peerPort}`;
    return [
      "--name", "default",
      "--data-dir", this.dataDir,
      "--listen-client-urls", client,
      "--advertise-client-urls", client,
      "--listen-peer-urls", peer,
      "--initial-advertise-peer-urls", peer,
      "--initial-cluster", `default=${peer}`,
      // etcd 3.4 defaults to the deprecated capnslog logger, which ignores --log-level and
      // prints raft chatter plus a deprecation warning; zap + error keeps stderr for errors.
      "--logger", "zap",
      "--log-level", "error",
      // A single member cannot lose an election, so short raft timers are safe, and they make
      // startup ~3x and restart ~6x faster (restart waits a full election timeout, 1 s default).
      "--heartbeat-interval", "10",
      "--election-timeout", "100",
      ...this.extraArgs,
    ];
  }

  private async launch(signal?: AbortSignal): Promise<void> {
    this.stderrTail = "";
    const t0 = performance.now();
    // keepAlive false: if a caller forgets stop(), this process still ends and its exit handler
    // (or the reaper) stops etcd.
    const proc = spawnOwned(this.bin, this.args(), { stdio: ["ignore", "ignore", "pipe"], keepAlive: false });
    this.proc = proc;
    proc.child.stderr?.on("data", (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString()).slice(-STDERR_KEEP);
    });
    if (proc.pid !== undefined) this.onSpawned?.();
    const exitedEarly = (status: ExitStatus): Error => {
      const why = this.stderrTail.trim() || status.error?.message || "no output";
      if (/address already in use/i.test(why)) return new PortTakenError(why);
      const how = status.error ? "(could not be spawned)" : status.code !== null ? `with code ${status.code}` : `on ${status.signal}`;
      return new Error(`etcd (${this.bin}) exited during startup ${how}: ${why}`);
    };

    const deadline = t0 + this.startTimeoutMs;
    for (;;) {
      if (!proc.running) {
        const status = await proc.exited;
        // Let the last of stderr arrive before quoting it.
        await sleep(20);
        throw exitedEarly(status);
      }
      if (signal?.aborted) throw new Error("etcd start interrupted");
      if (await this.healthy()) break;
      if (performance.now() > deadline) {
        const why = this.stderrTail.trim() || "(no stderr output)";
        throw new Error(`etcd (${this.bin}) did not become healthy on ${this.endpoint} within ${this.startTimeoutMs} ms; stderr: ${why}`);
      }
      await sleep(10);
    }
    this.startMs = Math.round(performance.now() - t0);
  }

  private async healthy(): Promise<boolean> {
    const res = await getJson(`${this.endpoint}/health`, 500);
    return res !== undefined && res.status >= 200 && res.status < 300 && (res.body as { health?: string } | null)?.health === "true";
  }

  private async fetchVersion(): Promise<string> {
    const res = await getJson(`${this.endpoint}/version`, 1000);
    return (res?.body as { etcdserver?: string } | null)?.etcdserver ?? "unknown";
  }

  /** Stop etcd and delete its data dir. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.stopped = true;
    try {
      // The data dir goes with it: nothing to shut down gracefully for, so SIGKILL at once.
      await this.proc?.stop(0);
    } finally {
      await this.home.remove();
    }
  }

  /** A real etcd restart: same data dir and ports, new process. */
  async restartProcess(): Promise<void> {
    if (this.stopped) throw new Error("etcd was stopped; cannot restart it");
    await this.proc?.stop();
    await this.launch();
  }
}

export function startLocalEtcd(opts?: LocalEtcdOptions): Promise<LocalEtcd> {
  return LocalEtcd.start(opts);
}
