import { randomBytes } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import { constants } from "node:os";
import { pidRuns, spawnOwned, type OwnedProcess } from "../../proc/index.ts";

/**
 * A LuaJIT master (runtime/master.lua): it boots once (loads APISIX's modules) and forks a worker
 * per run, as nginx's master forks its workers. Forking a booted process costs well under a
 * millisecond, where starting LuaJIT and loading the modules costs ~10 ms of CPU and a spawn
 * from this (large) process blocks its event loop for several more.
 *
 * The workers reach this process through one abstract unix socket (Linux; nothing on disk): each
 * connects twice, for its stdin/stdout and its stderr, and names its pid in a first line.
 */

export interface MasterSpawn {
  /** The command and arguments that start LuaJIT on main.lua (setarch and all). */
  argv: string[];
  env: NodeJS.ProcessEnv;
  /** The boot message: what the master loads, which worker its forks are. */
  init: Record<string, unknown>;
  /** The working directory (the stage: stage.ts). */
  cwd?: string;
}

/** A forked worker's two connections. */
export interface ForkedWorker {
  pid: number;
  io: Socket;
  stderr: Socket;
}

export class LuaMasterError extends Error {}

const OP_FORK = 102;
const OP_WAIT = 119;
/** A `w` answer: the worker has not ended yet (the master waits with WNOHANG). */
const STILL_RUNNING = -2;

/** The socket the forked workers connect to, one per harness process. */
class WorkerSockets {
  // Of one length whatever the pid (the boot message carries it into the Lua heap: stage.ts).
  readonly name = `harness-lua-${String(process.pid).padStart(7, "0")}-${randomBytes(6).toString("hex")}`;
  private readonly server: Server;
  readonly listening: Promise<void>;
  private readonly arrived = new Map<number, Partial<Omit<ForkedWorker, "pid">>>();
  private readonly waiting = new Map<number, (w: ForkedWorker) => void>();

  constructor() {
    this.server = createServer((sock) => this.introduce(sock));
    this.listening = new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen({ path: `\0${this.name}` }, () => resolve());
    });
    this.server.unref();
  }

  /** The first line says whose connection it is: `worker <pid> io|stderr`. */
  private introduce(sock: Socket): void {
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const nl = head.indexOf(10);
      if (nl < 0) {
        if (head.length > 200) sock.destroy();
        return;
      }
      sock.off("data", onData);
      sock.pause();
      const m = /^worker (\d+) (io|stderr)$/.exec(head.subarray(0, nl).toString());
      if (!m) return void sock.destroy();
      if (nl + 1 < head.length) sock.unshift(head.subarray(nl + 1));
      const pid = Number(m[1]);
      const got = this.arrived.get(pid) ?? {};
      got[m[2] as "io" | "stderr"] = sock;
      this.arrived.set(pid, got);
      this.complete(pid);
    };
    sock.on("data", onData);
    sock.on("error", () => undefined);
  }

  private complete(pid: number): void {
    const got = this.arrived.get(pid);
    const resolve = this.waiting.get(pid);
    if (!got?.io || !got.stderr || !resolve) return;
    this.arrived.delete(pid);
    this.waiting.delete(pid);
    resolve({ pid, io: got.io, stderr: got.stderr });
  }

  /** The connections of worker `pid` once both have arrived. */
  take(pid: number): Promise<ForkedWorker> {
    return new Promise((resolve) => {
      this.waiting.set(pid, resolve);
      this.complete(pid);
    });
  }

  /** Give up on a worker that never connected (its master died). */
  forget(pid: number): void {
    this.waiting.delete(pid);
    for (const s of Object.values(this.arrived.get(pid) ?? {})) s?.destroy();
    this.arrived.delete(pid);
  }
}

let sockets: WorkerSockets | undefined;

/** SIGKILL to a forked worker (it may be gone already). */
export function killWorker(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
}

/** How a worker ended, as a child's exit reads: `code 3`, `SIGKILL`. */
export function describeWaitStatus(status: number): string {
  const signal = status & 0x7f;
  if (signal === 0) return `code ${(status >> 8) & 0xff}`;
  const name = Object.entries(constants.signals).find(([, n]) => n === signal)?.[0];
  return name ?? `signal ${signal}`;
}

export class LuaMaster {
  private readonly owned: OwnedProcess;
  private readonly sockets: WorkerSockets;
  private readonly ready: Promise<void>;
  private text = "";
  private records = Buffer.alloc(0);
  private isReady = false;
  /** Requests and forks in flight: while there are any, the master keeps the harness running. */
  private busy = 0;
  private readonly pending: { op: number; resolve: (v: number) => void; reject: (e: Error) => void }[] = [];
  private stderr = "";
  private exited = false;
  private exitReason = "";
  /** Forked workers that have not ended (the one forked ahead included; see inUse). */
  private live = 0;
  /** Forks so far (to tell a reused master from a one-off). */
  private forks = 0;
  /** fork() calls whose worker is not handed over yet. */
  private claims = 0;
  /** The worker forked ahead; undefined inside if that fork failed (the next fork then forks anew). */
  private spare: Promise<ForkedWorker | undefined> | undefined;
  /** A worker forked ahead is connected and nobody has taken it. */
  private spareLive = false;
  /** Workers told to exit that have not yet (close() waits for them). */
  private readonly leaving = new Set<Promise<void>>();

  constructor(spec: MasterSpawn) {
    sockets ??= new WorkerSockets();
    this.sockets = sockets;
    const [cmd, ...args] = spec.argv;
    // An owned process group: its workers are in it too, so the reaper stops them all if the
    // harness dies; an idle master does not keep the harness running.
    this.owned = spawnOwned(cmd!, args, { env: spec.env, cwd: spec.cwd, stdio: ["pipe", "pipe", "pipe"], keepAlive: false });
    const child = this.owned.child;
    let onReady: () => void = () => undefined;
    this.ready = new Promise<void>((resolve) => (onReady = resolve));
    child.stdout!.on("data", (chunk: Buffer) => this.onData(chunk, onReady));
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      if (this.stderr.length < 64_000) this.stderr += chunk;
    });
    child.stdin!.on("error", () => undefined);
    child.on("error", (e) => this.onExit(`could not start ${cmd}: ${e.message}`));
    child.on("exit", (code, signal) => this.onExit(`exited (${signal ?? `code ${code}`})`));
    void this.sockets.listening.then(
      () => this.write(Buffer.from(JSON.stringify({ ...spec.init, fork_server: this.sockets.name }) + "\n")),
      (e: Error) => this.onExit(`could not listen for its workers: ${e.message}`),
    );
  }

  get isDead(): boolean {
    return this.exited;
  }

  private write(b: Buffer): void {
    if (!this.exited) this.owned.child.stdin!.write(b);
  }

  /** Lines until "ready" (anything the boot printed is dropped, as before a worker is attached), then records. */
  private onData(chunk: Buffer, onReady: () => void): void {
    if (!this.isReady) {
      this.text += chunk.toString("latin1");
      const at = this.text.indexOf("ready\n");
      if (at < 0) return;
      this.isReady = true;
      chunk = Buffer.from(this.text.slice(at + 6), "latin1");
      this.text = "";
      onReady();
    }
    this.records = Buffer.concat([this.records, chunk]);
    while (this.records.length >= 8) {
      const op = this.records.readInt32LE(0);
      const value = this.records.readInt32LE(4);
      this.records = this.records.subarray(8);
      const p = this.pending.shift();
      if (!p || p.op !== op) {
        this.stderr += `the master answered an unexpected record ${op}/${value}\n`;
        continue;
      }
      p.resolve(value);
    }
  }

  /** While something is in flight, the master (an idle one is unreferenced) keeps the harness running. */
  private async inFlight<T>(work: () => Promise<T>): Promise<T> {
    const h = this.owned.child.stdout as unknown as { ref(): void; unref(): void };
    if (this.busy++ === 0) h.ref();
    try {
      return await work();
    } finally {
      if (--this.busy === 0) h.unref();
    }
  }

  private request(op: number, value: number): Promise<number> {
    return this.inFlight(async () => {
      await this.ready;
      if (this.exited) throw new LuaMasterError(this.deathNote());
      return new Promise<number>((resolve, reject) => {
        this.pending.push({ op, resolve, reject });
        const b = Buffer.alloc(8);
        b.writeInt32LE(op, 0);
        b.writeInt32LE(value, 4);
        this.write(b);
      });
    });
  }

  private stderrTail(): string {
    const s = this.stderr.trim();
    return s ? `; stderr: ${s.slice(-2000)}` : "";
  }

  private deathNote(): string {
    return `LuaJIT ${this.exitReason}${this.stderrTail()}`;
  }

  /**
   * A new worker, booted as this master is, with its connections. From a master's second fork on
   * (it is being reused), the next worker is forked ahead: forking and connecting takes about
   * 1.5 ms, which the run before hides. A worker forked ahead is the same as one forked later: the
   * master's serve loop allocates nothing and, with the JIT off, counts nothing between forks
   * (runtime/master.lua).
   */
  fork(): Promise<ForkedWorker> {
    // Counted at once: until the worker is handed over, the master must not look idle (an
    // idle master can be closed to make room for another, killing the worker it forks).
    this.claims += 1;
    const spare = this.spare;
    this.spare = undefined;
    this.spareLive = false;
    const next = spare
      ? spare.then((w) => {
          if (w && pidRuns(w.pid) && !w.io.destroyed) return w;
          if (w) this.dismiss(w);
          return this.forkNow();
        })
      : this.forkNow();
    if (this.forks++ >= 1) {
      const ahead: Promise<ForkedWorker | undefined> = next.then(
        () =>
          this.forkNow().then(
            (w) => {
              // Idle, it must not keep the harness running; fork() gives it back its references.
              w.io.unref();
              w.stderr.unref();
              if (this.spare === ahead) this.spareLive = true;
              return w;
            },
            () => undefined,
          ),
        () => undefined,
      );
      this.spare = ahead;
    }
    const handed = next.then((w) => {
      w.io.ref();
      w.stderr.ref();
      return w;
    });
    void handed.then(
      () => (this.claims -= 1),
      () => (this.claims -= 1),
    );
    return handed;
  }

  /** Workers in use, being forked or leaving (not the one forked ahead): a master with any is not closed. */
  get inUse(): number {
    return this.live + this.claims - (this.spareLive ? 1 : 0);
  }

  /** End a worker nobody took: it exits on EOF and is reaped as any other. */
  private dismiss(w: ForkedWorker): void {
    w.io.end();
    w.stderr.destroy();
    this.leave(
      this.ended(w.pid).then(() => undefined),
      () => killWorker(w.pid),
    );
  }

  private forkNow(): Promise<ForkedWorker> {
    return this.inFlight(async () => {
      const pid = await this.request(OP_FORK, 0);
      if (pid <= 0) throw new LuaMasterError("LuaJIT master could not fork a worker");
      this.live += 1;
      let done = false;
      try {
        return await Promise.race([this.sockets.take(pid), this.failedToConnect(pid, () => done)]);
      } catch (e) {
        this.sockets.forget(pid);
        throw e;
      } finally {
        done = true;
      }
    });
  }

  /**
   * Rejects if worker `pid` ends (or the master dies) before it connects; what it wrote to
   * stderr until then is in the master's stderr.
   */
  private async failedToConnect(pid: number, connected: () => boolean): Promise<never> {
    let timer: NodeJS.Timeout | undefined;
    const died = new Promise<void>((r) => void this.owned.exited.then(() => r()));
    while (!connected()) {
      const masterDied = await Promise.race([died.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 250).unref()))]);
      clearTimeout(timer);
      if (masterDied) break;
      if (connected()) break;
      const status = await this.request(OP_WAIT, pid).catch(() => -1);
      if (status !== STILL_RUNNING) {
        this.live -= 1;
        throw new LuaMasterError(`LuaJIT worker ${status >= 0 ? `exited (${describeWaitStatus(status)})` : "exited"} before it connected${this.stderrTail()}`);
      }
    }
    if (connected()) return new Promise<never>(() => undefined);
    this.live -= 1;
    throw new LuaMasterError(this.deathNote());
  }

  /**
   * How worker `pid` ended (`exited (code 3)`, `exited (SIGKILL)`), once its connection closed. The master waits
   * without blocking; a worker that lingers after closing its connection is killed after 1 s.
   */
  async ended(pid: number): Promise<string> {
    try {
      for (let i = 0; ; i++) {
        const status = await this.request(OP_WAIT, pid);
        if (status === -1) return "exited";
        if (status !== STILL_RUNNING) return `exited (${describeWaitStatus(status)})`;
        if (i === 100) process.kill(pid, "SIGKILL");
        // Its connection closes while it is still exiting: ask again soon, then less often.
        await new Promise((r) => setTimeout(r, Math.min(10, 1 << i)));
      }
    } catch {
      return "exited";
    } finally {
      this.live -= 1;
    }
  }

  private onExit(reason: string): void {
    if (this.exited) return;
    this.exited = true;
    this.exitReason = reason;
    // Let stderr drain before reporting it.
    setImmediate(() => {
      const e = new LuaMasterError(this.deathNote());
      for (const p of this.pending.splice(0)) p.reject(e);
    });
  }

  /** A worker told to exit: `gone` settles when it has; it is killed if it is still there after 2 s. */
  leave(gone: Promise<void>, kill: () => void): void {
    const timer = setTimeout(kill, 2000);
    const left: Promise<void> = gone.then(() => {
      clearTimeout(timer);
      this.leaving.delete(left);
    });
    this.leaving.add(left);
  }

  /** Close stdin once its leaving workers are gone (the master exits on EOF); stop the group if it lingers. */
  async close(): Promise<void> {
    const spare = await this.spare;
    this.spare = undefined;
    if (spare) {
      this.spareLive = false;
      this.dismiss(spare);
    }
    await Promise.all(this.leaving);
    if (!this.exited) {
      this.owned.child.stdin!.end();
      // A referenced timer: an idle master's child and pipes are unreferenced.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.owned.exited, new Promise<void>((r) => (timer = setTimeout(r, 2000)))]);
      clearTimeout(timer);
    }
    await this.owned.stop(500);
  }
}
