import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { spawnOwned, type OwnedProcess } from "../../proc/index.ts";

/** The Lua side of the protocol lives here (main.lua and the shim modules). */
export const RUNTIME_DIR = fileURLToPath(new URL("./runtime/", import.meta.url));

/** A log line as the Lua side reports it: ngx_lua's caller info, or `raw` for lines nginx writes itself. */
export interface LuaLogEvent {
  /** The worker's clock when it logged (ms). */
  t?: number;
  level: string;
  file?: string;
  line?: number;
  fn?: string;
  msg: string;
  /** "context: ngx.timer", or the request's "client: ..., request: ..." part. */
  ctx: string;
  raw?: boolean;
}

/** What the Lua side may ask of the world while a command runs (it waits for the answer). */
export type LuaCall = Record<string, unknown> & { call: string };

export interface WorkerHooks {
  call(msg: LuaCall): Promise<unknown> | unknown;
  log(event: LuaLogEvent): void;
  /** Notifications other than log lines (events for the other workers). */
  notify(msg: Record<string, unknown>): void;
}

export interface WorkerSpawn {
  /** The command and arguments that start LuaJIT on main.lua (setarch and all). */
  argv: string[];
  env: NodeJS.ProcessEnv;
  /** The boot message (first line): what the worker loads, which worker it is. */
  init: Record<string, unknown>;
  /** Longest real time one command may take before the worker is declared hung. */
  commandTimeoutMs: number;
}

export interface CommandReply {
  result: unknown;
  /** The worker's next timer, ms on the clock (undefined: none). */
  next: number | undefined;
}

export class LuaWorkerError extends Error {}

/** HARNESS_LUA_TRACE=1 prints every protocol line on stderr. */
const TRACE = process.env.HARNESS_LUA_TRACE === "1";

/**
 * One LuaJIT process. Commands go one at a time (the Lua side is single-threaded and blocks on
 * its calls into the harness); each reply says when the worker next needs the clock.
 */
export class LuaWorker {
  private readonly owned: OwnedProcess;
  private readonly child: ChildProcess;
  private buffer = "";
  private stderr = "";
  private seq = 0;
  private pending: { id: number; resolve: (r: CommandReply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout; cmd: string } | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private exited = false;
  private exitReason = "";
  private hooks: WorkerHooks | undefined;

  constructor(private readonly spec: WorkerSpawn) {
    const [cmd, ...args] = spec.argv;
    // An owned process group: a Ctrl-C reaches the harness, which stops workers in its own
    // order, and the reaper stops them if the harness dies (a worker also exits on stdin EOF).
    this.owned = spawnOwned(cmd!, args, { env: spec.env, stdio: ["pipe", "pipe", "pipe"], keepAlive: false });
    this.child = this.owned.child;
    this.child.stdout!.setEncoding("utf8");
    this.child.stdout!.on("data", (chunk: string) => this.onData(chunk));
    this.child.stderr!.setEncoding("utf8");
    this.child.stderr!.on("data", (chunk: string) => {
      if (this.stderr.length < 64_000) this.stderr += chunk;
    });
    this.child.stdin!.on("error", () => undefined);
    this.child.on("error", (e) => this.onExit(`could not start ${cmd}: ${e.message}`));
    this.child.on("exit", (code, signal) => this.onExit(`exited (${signal ?? `code ${code}`})`));
    this.write(spec.init);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** An idle worker must not keep the harness running (it exits when our end of its stdin closes). */
  private setRef(ref: boolean): void {
    const handles = [this.child, this.child.stdin, this.child.stdout, this.child.stderr] as unknown as { ref?: () => void; unref?: () => void }[];
    for (const h of handles) (ref ? h?.ref : h?.unref)?.call(h);
  }

  /** Give the worker to an engine: its calls and log lines go there from now on. */
  attach(hooks: WorkerHooks): void {
    this.hooks = hooks;
    this.setRef(true);
  }

  /** Run a command after the ones before it. */
  command(cmd: string, payload: Record<string, unknown> = {}): Promise<CommandReply> {
    const run = this.queue.then(() => this.send(cmd, payload));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private send(cmd: string, payload: Record<string, unknown>): Promise<CommandReply> {
    if (this.exited) return Promise.reject(new LuaWorkerError(`LuaJIT worker ${this.exitReason}${this.stderrTail()}`));
    const id = ++this.seq;
    return new Promise<CommandReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending = undefined;
        this.kill();
        reject(new LuaWorkerError(`LuaJIT worker did not finish "${cmd}" within ${this.spec.commandTimeoutMs} ms and was killed${this.stderrTail()}`));
      }, this.spec.commandTimeoutMs);
      this.pending = { id, resolve, reject, timer, cmd };
      this.write({ ...payload, id, cmd });
    });
  }

  private stderrTail(): string {
    const s = this.stderr.trim();
    return s ? `; stderr: ${s.slice(-2000)}` : "";
  }

  private write(msg: unknown): void {
    if (this.exited) return;
    if (TRACE) process.stderr.write(`${performance.now().toFixed(2)} lua< ${JSON.stringify(msg).slice(0, 120)}\n`);
    this.child.stdin!.write(JSON.stringify(msg) + "\n");
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf("\n")) >= 0) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      if (line) this.onLine(line);
    }
  }

  private onLine(line: string): void {
    if (TRACE) process.stderr.write(`${performance.now().toFixed(2)} lua> ${line.slice(0, 120)}\n`);
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      this.stderr += `unreadable line from the worker: ${line.slice(0, 200)}\n`;
      return;
    }
    if (msg.ev === "log") return this.hooks?.log(msg as unknown as LuaLogEvent);
    if (msg.ev !== undefined) return this.hooks?.notify(msg);
    if (typeof msg.call === "string") {
      void this.answer(msg as LuaCall);
      return;
    }
    if (msg.done !== undefined) {
      const p = this.pending;
      if (!p || p.id !== msg.done) return;
      this.pending = undefined;
      clearTimeout(p.timer);
      if (msg.error !== undefined) p.reject(new LuaWorkerError(`Lua error in "${p.cmd}": ${String(msg.error)}`));
      else p.resolve({ result: msg.result, next: typeof msg.next === "number" ? msg.next : undefined });
    }
  }

  private async answer(msg: LuaCall): Promise<void> {
    let reply: unknown;
    try {
      if (!this.hooks) throw new Error("the worker is not attached to an engine");
      reply = await this.hooks.call(msg);
    } catch (e) {
      reply = { err: (e as Error).message };
    }
    this.write(reply ?? {});
  }

  private onExit(reason: string): void {
    if (this.exited) return;
    this.exited = true;
    this.exitReason = reason;
    const p = this.pending;
    if (p) {
      this.pending = undefined;
      clearTimeout(p.timer);
      // Let stderr drain before reporting it.
      setImmediate(() => p.reject(new LuaWorkerError(`LuaJIT worker ${reason} while running "${p.cmd}"${this.stderrTail()}`)));
    }
  }

  get isDead(): boolean {
    return this.exited;
  }

  private kill(): void {
    this.owned.signal("SIGKILL");
  }

  /** Close stdin (the worker exits on EOF); stop its group if it lingers. */
  async close(): Promise<void> {
    if (!this.exited) {
      this.child.stdin!.end();
      // A referenced timer: an idle worker's child and pipes are unreferenced, so with an
      // unreferenced timer nothing would keep the loop alive until the exit arrives.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.owned.exited, new Promise<void>((r) => (timer = setTimeout(r, 2000)))]);
      clearTimeout(timer);
    }
    await this.owned.stop(500);
  }
}

/**
 * Workers boot (start LuaJIT, load APISIX's modules) before a run needs them: taking one hands
 * out a booted worker of the same boot message and environment and boots its successor.
 */
const idle = new Map<string, LuaWorker>();

export function takeWorker(spec: WorkerSpawn): LuaWorker {
  const key = JSON.stringify([spec.argv, spec.env, spec.init]);
  const ready = idle.get(key);
  idle.delete(key);
  const next = (): void => {
    if (!idle.has(key) && idle.size < MAX_IDLE) idle.set(key, new LuaWorker(spec));
  };
  setImmediate(next);
  return ready && !ready.isDead ? ready : new LuaWorker(spec);
}

const MAX_IDLE = 8;

/** Stop the booted workers nobody took (tests call this; a harness exit closes them anyway). */
export async function closeIdleWorkers(): Promise<void> {
  const all = [...idle.values()];
  idle.clear();
  await Promise.all(all.map((w) => w.close()));
}
