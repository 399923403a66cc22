/**
 * A throwaway single-node etcd from a local binary (ETCD_BIN, or `etcd` on PATH; Debian's
 * etcd-server installs /usr/bin/etcd). Each instance gets free loopback ports and a temp data
 * dir. Every running instance is tracked so that nothing is left behind: on process exit they
 * are killed synchronously, on SIGINT/SIGTERM/SIGHUP they are stopped and the process exits.
 */

import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants as fsConstants, rmSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { get as httpGet } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

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

/** Two distinct free loopback ports. Both are held open at once so they cannot coincide. */
async function freePorts(n: number): Promise<number[]> {
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
  /** Called once etcd is spawned, before it is healthy: a caller can load its client meanwhile. */
  onSpawned?: () => void;
}

/** How the etcd process ended: exit code or signal, or the error that kept it from being spawned. */
interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
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

  private proc: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private alive = false;
  private stderrTail = "";
  private stopped = false;
  private stopping: Promise<void> | undefined;
  private readonly startTimeoutMs: number;
  private readonly extraArgs: string[];
  private readonly onSpawned: (() => void) | undefined;

  private constructor(bin: string, dataDir: string, opts: LocalEtcdOptions) {
    this.bin = bin;
    this.dataDir = dataDir;
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
    const dataDir = await mkdtemp(join(tmpdir(), "harness-etcd-"));
    const etcd = new LocalEtcd(bin, dataDir, opts);
    register(etcd);
    const t0 = performance.now();
    try {
      // Ports are picked, released, then bound by etcd: another process may grab one in
      // between. etcd then exits with "address already in use"; try again with new ports.
      for (let attempt = 1; ; attempt++) {
        [etcd.clientPort, etcd.peerPort] = (await freePorts(2)) as [number, number];
        try {
          await etcd.launch();
          break;
        } catch (err) {
          if (!(err instanceof PortTakenError) || attempt >= 5) throw err;
          await rm(join(dataDir, "member"), { recursive: true, force: true });
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
    return this.alive ? this.proc?.pid : undefined;
  }

  get running(): boolean {
    return this.alive;
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

  private async launch(): Promise<void> {
    this.stderrTail = "";
    const t0 = performance.now();
    // node:child_process rather than execa: importing execa costs ~0.1 s, and etcd should be
    // starting while the rest of the harness loads. Cleanup is ours (exit/signal handlers below).
    const proc = spawn(this.bin, this.args(), { stdio: ["ignore", "ignore", "pipe"] });
    this.proc = proc;
    this.alive = true;
    proc.stderr?.on("data", (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString()).slice(-STDERR_KEEP);
    });
    // 'close' comes after stderr is drained; a spawn failure (ENOENT, EACCES) may give only 'error'.
    const exit = new Promise<Exit>((resolve) => {
      proc.once("error", (error) => resolve({ code: null, signal: null, error }));
      proc.once("close", (code, signal) => resolve({ code, signal }));
    });
    this.exited = exit.then(() => {
      this.alive = false;
    });
    // The health loop below sees alive=false and reports how it ended.
    // The child must not keep this process alive on its own: if a caller forgets stop(), the
    // process still exits and the 'exit' handler kills etcd.
    proc.unref();
    (proc.stderr as unknown as { unref?: () => void } | null)?.unref?.();
    if (proc.pid !== undefined) this.onSpawned?.();

    const deadline = t0 + this.startTimeoutMs;
    for (;;) {
      if (!this.alive) {
        const result = await exit;
        const why = this.stderrTail.trim() || result.error?.message || "no output";
        if (/address already in use/i.test(why)) throw new PortTakenError(why);
        const how = result.error ? "(could not be spawned)" : result.code !== null ? `with code ${result.code}` : `on ${result.signal}`;
        throw new Error(`etcd (${this.bin}) exited during startup ${how}: ${why}`);
      }
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

  /** SIGTERM, SIGKILL after 2 s, wait for the exit. */
  private async killProcess(): Promise<void> {
    const proc = this.proc;
    if (!proc || !this.alive) return this.exited;
    proc.kill("SIGTERM");
    // This timer is ref'd on purpose: the child is unref'd, so without it a script doing
    // `await etcd.stop()` as its last act could see node exit before the child did.
    const timer = setTimeout(() => proc.kill("SIGKILL"), 2000);
    try {
      await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stop etcd and delete its data dir. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.stopped = true;
    try {
      await this.killProcess();
    } finally {
      await rm(this.dataDir, { recursive: true, force: true });
      unregister(this);
    }
  }

  /** A real etcd restart: same data dir and ports, new process. */
  async restartProcess(): Promise<void> {
    if (this.stopped) throw new Error("etcd was stopped; cannot restart it");
    await this.killProcess();
    await this.launch();
  }

  /** For the 'exit' handler: no awaiting possible there. */
  killSync(): void {
    if (this.alive && this.proc?.pid) {
      try {
        process.kill(this.proc.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

export function startLocalEtcd(opts?: LocalEtcdOptions): Promise<LocalEtcd> {
  return LocalEtcd.start(opts);
}

// ---- nothing left behind ----------------------------------------------------------------

const running = new Set<LocalEtcd>();
const SIGNAL_CODES = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;
type HandledSignal = keyof typeof SIGNAL_CODES;
let handlersInstalled = false;

function onExit(): void {
  for (const etcd of running) etcd.killSync();
  running.clear();
}

const signalHandlers = Object.fromEntries(
  (Object.keys(SIGNAL_CODES) as HandledSignal[]).map((sig) => [
    sig,
    () => {
      const code = SIGNAL_CODES[sig];
      // Someone else also handles this signal (e.g. `harness serve` shutting down
      // gracefully): let them finish, but exit anyway if the process is still up after 3 s.
      const others = process.listeners(sig).filter((l) => l !== signalHandlers[sig]).length;
      void stopAllLocalEtcds().finally(() => {
        if (others === 0) process.exit(code);
        else setTimeout(() => process.exit(code), 3000).unref();
      });
    },
  ]),
) as Record<HandledSignal, () => void>;

function register(etcd: LocalEtcd): void {
  running.add(etcd);
  if (!handlersInstalled) {
    handlersInstalled = true;
    process.on("exit", onExit);
    for (const sig of Object.keys(SIGNAL_CODES) as HandledSignal[]) process.on(sig, signalHandlers[sig]);
  }
}

function unregister(etcd: LocalEtcd): void {
  running.delete(etcd);
  // Without running etcds, give the signals back their default behaviour.
  if (running.size === 0 && handlersInstalled) {
    handlersInstalled = false;
    process.off("exit", onExit);
    for (const sig of Object.keys(SIGNAL_CODES) as HandledSignal[]) process.off(sig, signalHandlers[sig]);
  }
}

/** How many etcds this process has running. */
export async function stopAllLocalEtcds(): Promise<void> {
  await Promise.all([...running].map((e) => e.stop().catch(() => undefined)));
}
