import type { TimerHandle } from "../clock/clock.ts";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CONFIG_ETCD_3_15, type ConfigChange, type ConfigEtcdBehaviour, type ConfigItem } from "../config/config-cache.ts";
import {
  LuaRequestError,
  type CheckerView,
  type Engine,
  type EngineEnv,
  type GatewayVersion,
  type Injection,
  type PluginCall,
  type PluginCallResult,
  type PluginCheck,
  type TargetHealth,
  type WorkerState,
} from "../engine.ts";
import type { GatewayRequest, GatewayResponse } from "../http-types.ts";
import type { LogLevel } from "../log/error-log.ts";
import { endpointNode, parseEndpointAsUrl, resolveDomain } from "../plugins/ai-proxy-multi/endpoint.ts";
import { forwardToInstance, INSTANCE_HEADER, requestContext } from "../plugins/ai-proxy-multi/forward.ts";
import type { DnsNode, Instance } from "../plugins/ai-proxy-multi/types.ts";
import type { CheckerAction, PoolsSnapshot, TimerName, TraceEvent } from "../trace.ts";
import { SharedDict } from "../shared-dict.ts";
import { PROFILES, RELEASES } from "../versions/index.ts";
import { takeWorker, type LuaLogEvent, type LuaWorker } from "./lua-worker.ts";
import { luaStage, type LuaStage } from "./stage.ts";
import { luaRuntime, type LuaRuntime } from "./runtime.ts";
import { resolveLuaTree, type LuaSources, type LuaTree } from "./sources.ts";
import { WorldCalls } from "./world-calls.ts";

/** The first worker's pid in log lines; worker k has BASE_PID + k. */
const BASE_PID = 4242;
/**
 * How long a worker waiting for the harness polls before it sleeps (runtime/spin-read.c). The
 * harness answers most calls within a few hundred microseconds; a worker that slept would first
 * have to be woken, which on a virtual machine costs tens to hundreds of microseconds per line.
 */
const pollUs = (): number => Math.max(0, Number(process.env.HARNESS_LUA_POLL_US ?? 1000) || 0);

/**
 * Whether workers run with LuaJIT's JIT compiler ("on", as in production) or on its interpreter
 * alone ("off", the default). The JIT changes no result, only speed, and a run is too short to win
 * back what recording traces costs (about 2 ms of a 15 ms #13101 run, measured in one process,
 * runs interleaved); nor can anything a worker inherits then move its heap through the JIT's hot
 * counters (Determinism in the README). HARNESS_LUA_JIT=on turns it on.
 */
const jitMode = (): "on" | "off" => (process.env.HARNESS_LUA_JIT === "on" ? "on" : "off");

/**
 * A command that takes longer than this (real time) means a hung worker: it is killed and the run
 * fails with its stderr. HARNESS_LUA_COMMAND_TIMEOUT_MS changes it (tests of a hang use a short one).
 */
const COMMAND_TIMEOUT_MS = Number(process.env.HARNESS_LUA_COMMAND_TIMEOUT_MS) || 15_000;

interface Slot {
  index: number;
  pid: number;
  worker: LuaWorker;
  /** When the worker next needs the clock (ms), as its last reply said. */
  next?: number;
  /** The time its last advance ran up to: a next timer never falls at or before it. */
  ranUntil: number;
  wake?: TimerHandle;
  /** A fire-and-forget command (config, events) failed: the next command reports it. */
  failure?: Error;
}

interface RequestResult {
  status?: number;
  body?: string;
  instance?: string;
  node?: DnsNode;
  conf?: Instance;
  lua_error?: string;
}

interface InspectResult {
  waiting: Record<string, string>;
  working: Record<string, { version: string; checker: string; dead: boolean; type: string; targets: { ip: string; port: number; hostname?: string; status: string; counter?: Record<string, number> }[] }>;
}

/**
 * APISIX's own Lua as the gateway's engine: one LuaJIT process per worker runs the unmodified
 * healthcheck_manager.lua, ai-proxy-multi.lua and lua-resty-healthcheck of a version, fed by the
 * gateway's config cache and clock; the mock backends answer its probes.
 */
export class LuaEngine implements Engine {
  readonly kind = "lua" as const;
  private readonly slots: Slot[] = [];
  private readonly calls: WorldCalls;
  private readonly sharedDicts = new Map<string, SharedDict>();
  private stopped = false;

  constructor(
    readonly tree: LuaTree,
    private readonly runtime: LuaRuntime,
    private readonly env: EngineEnv,
  ) {
    this.calls = new WorldCalls({ transport: env.transport, clock: env.clock, sharedDicts: this.sharedDicts });
  }

  get description(): string {
    const hc = `lua-resty-healthcheck ${this.tree.healthcheck.version}`;
    const order = this.env.order === "sorted" ? "tables walked in key order" : `hash seed ${this.runtime.preload ? this.env.seed : "unseeded"}`;
    return `lua ${this.tree.name} (${this.tree.origin}; ${hc}; ${this.env.workers} worker(s); ${order}; JIT ${jitMode()})`;
  }

  private argv(stage: LuaStage): string[] {
    return [...(this.runtime.setarch ?? []), this.runtime.luajit, stage.main];
  }

  private spawnEnv(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, LANG: "C" };
    if (this.runtime.preload) {
      env.LD_PRELOAD = this.runtime.preload;
      env.HARNESS_HASH_SEED = String(this.env.seed);
    }
    // runtime/key_order.lua replaces pairs/next before APISIX's modules load.
    if (this.env.order === "sorted") env.HARNESS_TABLE_ORDER = "sorted";
    return env;
  }

  async start(): Promise<void> {
    const stage = luaStage(this.tree);
    for (let i = 0; i < this.env.workers; i++) {
      const pid = BASE_PID + i;
      const index = i;
      const boot = {
        apisix_root: stage.apisixRoot,
        apisix_version: this.tree.name,
        dep_dirs: stage.depDirs,
        worker_id: i,
        worker_count: this.env.workers,
        pid,
        log_level: this.env.logLevel,
        jit: jitMode(),
        ...(this.runtime.lineReader ? { line_reader: this.runtime.lineReader, poll_us: pollUs() } : {}),
      };
      const worker = takeWorker({ argv: this.argv(stage), env: this.spawnEnv(), cwd: stage.cwd, commandTimeoutMs: COMMAND_TIMEOUT_MS, init: boot });
      worker.attach({
        call: (msg) => this.calls.answer(index, msg),
        log: (ev) => this.log(pid, ev),
        notify: (msg) => this.notify(index, msg),
      });
      this.slots.push({ index: i, pid, worker, ranUntil: -Infinity });
    }
    const start = { prefix: this.env.prefix, hosts: this.env.resolver.entries(), trace: this.env.trace.on };
    await Promise.all(this.slots.map((s) => this.run(s, "start", { ...start, seed: this.env.seed * 1000 + s.index })));
    this.env.config.subscribe((change) => this.configChanged(change));
  }

  private log(pid: number, ev: LuaLogEvent): void {
    const entry: Parameters<typeof this.env.log.writeEntry>[0] = { level: ev.level as LogLevel, message: ev.msg, suffix: ev.ctx, pid };
    if (ev.t !== undefined) entry.time = ev.t;
    if (!ev.raw) {
      entry.file = ev.file ?? "?";
      entry.line = ev.line ?? 0;
      if (ev.fn) entry.fn = ev.fn;
    }
    this.env.log.writeEntry(entry);
  }

  /** resty.events posts from one worker reach every other worker; timeline events go to the tracer. */
  private notify(from: number, msg: Record<string, unknown>): void {
    if (msg.ev === "trace") return this.traced(from, msg);
    if (msg.ev === "connect") return this.calls.connectAhead(from, msg);
    if (msg.ev !== "event") return;
    for (const s of this.slots) if (s.index !== from) this.background(s, "event", { source: msg.source, event: msg.event, data: msg.data });
  }

  private traced(from: number, m: Record<string, unknown>): void {
    const t = Number(m.t);
    const worker = this.env.workers > 1 ? { worker: from } : {};
    const str = (v: unknown): string => String(v);
    switch (m.kind) {
      case "tick": {
        const pools = m.pools as PoolsSnapshot;
        const e: TraceEvent = { lane: "tick", t, timer: m.timer as TimerName, ok: m.error === undefined, pools: { waiting: pools.waiting ?? {}, working: pools.working ?? {} }, ...worker };
        if (m.error !== undefined) e.error = str(m.error);
        return this.env.trace.stamped(e);
      }
      case "checker": {
        const e: TraceEvent = { lane: "checker", t, action: m.action as CheckerAction, checker: str(m.checker), resource: str(m.resource), ...worker };
        if (m.version !== undefined) e.version = str(m.version);
        if (m.previous !== undefined) e.previous = str(m.previous);
        return this.env.trace.stamped(e);
      }
      case "probe":
        return this.env.trace.stamped({ lane: "probe", t, checker: str(m.checker), target: str(m.target), result: str(m.result), ok: m.ok === true });
      case "health":
        return this.env.trace.stamped({ lane: "health", t, checker: str(m.checker), target: str(m.target), healthy: m.healthy === true });
    }
  }

  /** Run a command and re-arm the worker's clock timer from its reply. */
  private async run(slot: Slot, cmd: string, payload: Record<string, unknown> = {}): Promise<unknown> {
    if (slot.failure) {
      const f = slot.failure;
      slot.failure = undefined;
      throw f;
    }
    // With the connects the transport can answer ahead, so that a probe's socket need not wait for them.
    const reply = await slot.worker.command(cmd, { ...payload, now_ms: this.env.clock.now(), connects: this.env.transport.connectOutcomes() });
    slot.next = reply.next;
    this.arm(slot);
    return reply.result;
  }

  private background(slot: Slot, cmd: string, payload: Record<string, unknown>): void {
    this.run(slot, cmd, payload).catch((e: Error) => {
      if (!this.stopped) slot.failure ??= e;
    });
  }

  private arm(slot: Slot): void {
    slot.wake?.cancel();
    slot.wake = undefined;
    if (this.stopped || slot.next === undefined) return;
    const due = Math.max(slot.next, slot.ranUntil + 1);
    slot.wake = this.env.clock.after(Math.max(0, due - this.env.clock.now()), async () => {
      slot.wake = undefined;
      // Run ahead up to the clock's next other timer: nothing else can happen in between.
      slot.ranUntil = this.env.clock.horizon();
      await this.run(slot, "advance", { until_ms: slot.ranUntil });
    });
  }

  private configChanged(change: ConfigChange): void {
    const item = (i: ConfigItem) => ({ key: i.key, value: i.raw, modifiedIndex: i.modifiedIndex, createdIndex: i.createdIndex });
    const payload =
      change.kind === "reload"
        ? { reload: change.items.map(item), kept: change.kept }
        : change.kind === "put"
          ? { ops: [{ op: "put", ...item(change.item) }] }
          : { ops: [{ op: "delete", key: change.key }] };
    for (const s of this.slots) this.background(s, "config", payload);
  }

  async handle(route: ConfigItem, req: GatewayRequest, worker = 0): Promise<GatewayResponse> {
    const slot = this.slots[worker % this.slots.length]!;
    const r = (await this.run(slot, "request", { route: route.key, method: req.method, uri: req.path.split("?")[0], headers: req.headers, body: req.body })) as RequestResult;
    if (r.lua_error) throw new LuaRequestError(r.lua_error);
    if (r.status !== undefined) return { status: r.status, headers: { "content-type": "text/plain" }, body: r.body ?? "" };
    if (!r.conf) return { status: 500, headers: {}, body: "ai-proxy-multi picked no instance" };
    const node = r.node ?? this.defaultNode(r.conf);
    // The drivers are not loaded here: forward as the release (or the newest one) does.
    const proxy = (PROFILES.find((p) => p.name === this.tree.name.split("+")[0]) ?? RELEASES.at(-1)!).proxy;
    const res = await forwardToInstance(r.conf, node, req, { transport: this.env.transport, log: this.env.log, proxy, context: requestContext(req) });
    res.headers[INSTANCE_HEADER] = r.instance ?? r.conf.name;
    return res;
  }

  /** Where an instance without a resolved node goes (one instance: no pick_target ran). */
  private defaultNode(instance: Instance): DnsNode {
    return resolveDomain(endpointNode(instance, parseEndpointAsUrl), this.env.resolver).nodes[0]!;
  }

  async checkPlugin(name: string, conf: unknown): Promise<PluginCheck> {
    const r = (await this.run(this.slots[0]!, "check_schema", { plugin: name, conf: JSON.stringify(conf) })) as { ok: boolean; err?: string; conf?: string; unknown?: boolean };
    if (r.unknown) return { ok: false, error: `unknown plugin [${name}]` };
    if (!r.ok) return { ok: false, error: `failed to check the configuration of plugin ${name} err: ${r.err ?? "invalid"}` };
    return { ok: true, conf: r.conf !== undefined ? JSON.parse(r.conf) : conf };
  }

  async inspect(): Promise<WorkerState[]> {
    return Promise.all(
      this.slots.map(async (s) => {
        const r = (await this.run(s, "inspect")) as InspectResult;
        const working: WorkerState["pools"]["working"] = {};
        const checkers: CheckerView[] = [];
        for (const [path, w] of Object.entries(r.working ?? {})) {
          working[path] = { version: w.version, checker: w.checker, dead: w.dead };
          checkers.push({
            name: path,
            type: w.type,
            nodes: (w.targets ?? []).map((t) => {
              const n: CheckerView["nodes"][number] = { ip: t.ip, port: t.port, status: t.status, counter: t.counter ?? {} };
              if (t.hostname !== undefined) n.hostname = t.hostname;
              return n;
            }),
          });
        }
        return { worker: s.index, pid: s.pid, pools: { waiting: r.waiting ?? {}, working }, checkers };
      }),
    );
  }

  /** The soonest of the workers' manager timers, as their ngx.timer.every armed them (ngx_shim.lua). */
  async nextTick(): Promise<number | undefined> {
    const next = await Promise.all(this.slots.map(async (s) => ((await this.run(s, "next_tick")) as { next?: number }).next));
    const due = next.filter((n): n is number => typeof n === "number");
    return due.length ? Math.min(...due) : undefined;
  }

  /** Each worker's host table (what the DNS client answers from) takes the new addresses. */
  async dnsChanged(name: string, addresses: string[]): Promise<void> {
    await Promise.all(this.slots.map((s) => this.run(s, "dns", { name: name.toLowerCase(), ips: addresses })));
  }

  async inject(i: Injection): Promise<void> {
    const payload: Record<string, unknown> = { module: i.module, function: i.function, returns: (i.returns ?? []).map((v) => JSON.stringify(v ?? null)) };
    if (i.raises !== undefined) payload.raises = i.raises;
    if (i.after !== undefined) payload.after = i.after;
    await Promise.all(this.slots.map((s) => this.run(s, "inject", payload)));
  }

  async restore(module: string, fn: string): Promise<void> {
    await Promise.all(this.slots.map((s) => this.run(s, "restore", { module, function: fn })));
  }

  /** In worker 0, through lua-resty-healthcheck's own API (see main.lua's `health`). */
  async setTargetHealth(t: TargetHealth): Promise<void> {
    const payload: Record<string, unknown> = { checker: t.checker, ip: t.ip, port: t.port, healthy: t.healthy };
    if (t.hostname !== undefined) payload.hostname = t.hostname;
    await this.run(this.slots[0]!, "health", payload);
  }

  async call(c: PluginCall): Promise<PluginCallResult[]> {
    const payload: Record<string, unknown> = { module: c.module, function: c.function, times: c.times };
    if (c.arg !== undefined) payload.arg = JSON.stringify(c.arg);
    const out = (await this.run(this.slots[0]!, "call", payload)) as { result?: string; error?: string; raised?: string; arg: string }[];
    return out.map((r) => {
      const res: PluginCallResult = { result: r.result === undefined ? null : JSON.parse(r.result), error: r.error === undefined ? null : JSON.parse(r.error), arg: JSON.parse(r.arg) };
      if (r.raised !== undefined) res.raised = r.raised;
      return res;
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const s of this.slots) s.wake?.cancel();
    await Promise.all(this.slots.map((s) => s.worker.close()));
    this.calls.close();
  }
}

/**
 * How the tree's own core/config_etcd.lua follows etcd, read from its source: the lines of the log
 * calls the world reproduces, and whether load_full_data keeps unchanged objects (3.18.0+).
 */
export function configEtcdOf(tree: LuaTree): ConfigEtcdBehaviour {
  const file = join(tree.apisixRoot, "apisix/core/config_etcd.lua");
  if (!existsSync(file)) return CONFIG_ETCD_3_15;
  const lines = readFileSync(file, "utf8").split("\n");
  const lineOf = (needle: string, fallback: number): number => {
    const i = lines.findIndex((l) => l.includes(needle));
    return i >= 0 ? i + 1 : fallback;
  };
  const base = CONFIG_ETCD_3_15.lines;
  return {
    reloadKeepsUnchanged: lines.some((l) => /prev_item\.modifiedIndex == item\.modifiedIndex/.test(l)),
    lines: {
      canceled: lineOf('"watch canceled by etcd, res: "', base.canceled),
      compacted: lineOf('"etcd compacted, compact_revision="', base.compacted),
      smallerRevision: lineOf('"received smaller revision, rev="', base.smallerRevision),
      readdir: lineOf('", will read the configuration again via readdir"', base.readdir),
      watchdirErr: lineOf('"watchdir err: "', base.watchdirErr),
    },
  };
}

/** APISIX's Lua at a source as a version under test. */
export function luaVersion(tree: LuaTree, sources: LuaSources): GatewayVersion & { tree: LuaTree } {
  const runtime = luaRuntime();
  return {
    name: tree.name,
    engine: "lua",
    summary: `APISIX's Lua from ${tree.origin}`,
    serveArgs: ["--engine", "lua", "--apisix", sources.apisix, "--lua-deps", sources.luaDeps],
    configEtcd: configEtcdOf(tree),
    tree,
    createEngine: (env) => new LuaEngine(tree, runtime, env),
  };
}

/** `--versions` for the lua engine: each entry a version folder, a git ref, `worktree`, with `+patch`es. */
export function luaVersions(specs: string[], sources: LuaSources): (GatewayVersion & { tree: LuaTree })[] {
  luaRuntime();
  return specs.map((s) => luaVersion(resolveLuaTree(s, sources), sources));
}
