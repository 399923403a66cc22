import { fileURLToPath } from "node:url";
import { closeFirstOnStop } from "../../proc/index.ts";
import { killWorker, LuaMaster, type ForkedWorker } from "./lua-master.ts";

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
  /** The working directory (the stage: stage.ts). */
  cwd?: string;
  /** Longest real time one command may take before the worker is declared hung. */
  commandTimeoutMs: number;
}

export interface CommandReply {
  result: unknown;
  /** The worker's next timer, ms on the clock (undefined: none). */
  next: number | undefined;
}

export class LuaWorkerError extends Error {}

/**
 * HARNESS_LUA_TRACE=1 prints every protocol line on stderr, cut at 120 characters;
 * HARNESS_LUA_TRACE=full prints them whole (to diff two runs' traces).
 */
const TRACE = process.env.HARNESS_LUA_TRACE === "1" || process.env.HARNESS_LUA_TRACE === "full";
const TRACE_WIDTH = process.env.HARNESS_LUA_TRACE === "full" ? Infinity : 120;

/**
 * One LuaJIT worker, forked by its master (lua-master.ts). Commands go one at a time (the Lua
 * side is single-threaded and blocks on its calls into the harness); each reply says when the
 * worker next needs the clock.
 */
export class LuaWorker {
  private forked: ForkedWorker | undefined;
  private buffer = "";
  private stderr = "";
  private seq = 0;
  private pending: { id: number; resolve: (r: CommandReply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout; cmd: string } | undefined;
  private queue: Promise<unknown>;
  private exited = false;
  private exitReason = "";
  private readonly gone: Promise<void>;
  private markGone: () => void = () => undefined;
  private hooks: WorkerHooks | undefined;

  constructor(
    private readonly master: LuaMaster,
    private readonly spec: Pick<WorkerSpawn, "commandTimeoutMs">,
  ) {
    this.gone = new Promise<void>((r) => (this.markGone = r));
    this.queue = master.fork().then(
      (w) => this.connected(w),
      (e: Error) => this.onExit(e.message.replace(/^LuaJIT /, "")),
    );
  }

  private connected(w: ForkedWorker): void {
    this.forked = w;
    w.io.setEncoding("utf8");
    w.io.on("data", (chunk: string) => this.onData(chunk));
    w.io.on("error", () => undefined);
    w.stderr.setEncoding("utf8");
    w.stderr.on("data", (chunk: string) => {
      if (this.stderr.length < 64_000) this.stderr += chunk;
    });
    w.io.once("close", () => void this.ended(w));
    w.io.resume();
    w.stderr.resume();
  }

  /** Its connection closed: the worker ended (or closed it and is made to). Report how, with its stderr. */
  private async ended(w: ForkedWorker): Promise<void> {
    const reason = await this.master.ended(w.pid);
    if (!w.stderr.closed) await new Promise<void>((r) => {
      const t = setTimeout(r, 200);
      w.stderr.once("close", () => (clearTimeout(t), r()));
    });
    this.onExit(reason);
  }

  get pid(): number | undefined {
    return this.forked?.pid;
  }

  /** Give the worker to an engine: its calls and log lines go there from now on. */
  attach(hooks: WorkerHooks): void {
    this.hooks = hooks;
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
    if (this.exited || !this.forked) return;
    if (TRACE) process.stderr.write(`${performance.now().toFixed(2)} lua< ${JSON.stringify(msg).slice(0, TRACE_WIDTH)}\n`);
    this.forked.io.write(JSON.stringify(msg) + "\n");
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
    if (TRACE) process.stderr.write(`${performance.now().toFixed(2)} lua> ${line.slice(0, TRACE_WIDTH)}\n`);
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
    this.markGone();
    const p = this.pending;
    if (p) {
      this.pending = undefined;
      clearTimeout(p.timer);
      p.reject(new LuaWorkerError(`LuaJIT worker ${reason} while running "${p.cmd}"${this.stderrTail()}`));
    }
  }

  get isDead(): boolean {
    return this.exited;
  }

  private kill(): void {
    if (this.forked && !this.exited) killWorker(this.forked.pid);
  }

  /**
   * Close its stdin: the worker exits on EOF. The run does not wait for the exit (about a
   * millisecond of process teardown); its master reaps it, kills it if it lingers, and does not
   * close before it is gone.
   */
  async close(): Promise<void> {
    await this.queue;
    if (this.exited) return;
    this.forked?.io.end();
    this.master.leave(this.gone, () => this.kill());
  }
}

/**
 * Workers fork from a booted master of the same boot message and environment (one master per
 * version, worker index and seed): a run pays neither LuaJIT's start nor module loading.
 */
const masters = new Map<string, LuaMaster>();

/**
 * Masters kept booted; beyond this, the least recently used one that is idle (no worker in use,
 * being forked or leaving) is closed. HARNESS_LUA_MASTERS sets it (a machine short of memory;
 * tests use 1 to make every new master close the others).
 */
const MAX_MASTERS = Math.max(1, Number(process.env.HARNESS_LUA_MASTERS) || 8);

export function takeWorker(spec: WorkerSpawn): LuaWorker {
  // At the command's end the masters reap their workers themselves, leaving no zombie for init.
  closeFirstOnStop(closeIdleWorkers);
  const key = JSON.stringify([spec.argv, spec.env, spec.init, spec.cwd]);
  let master = masters.get(key);
  masters.delete(key);
  if (!master || master.isDead) master = new LuaMaster(spec);
  masters.set(key, master);
  for (const [k, m] of masters) {
    if (masters.size <= MAX_MASTERS) break;
    if (m.inUse === 0 && m !== master) {
      masters.delete(k);
      void m.close();
    }
  }
  return new LuaWorker(master, spec);
}

/** Stop the masters (tests call this; a harness exit stops them anyway). Their workers end with them. */
export async function closeIdleWorkers(): Promise<void> {
  const all = [...masters.values()];
  masters.clear();
  await Promise.all(all.map((m) => m.close()));
}
